import CDNNL
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// How `conv2d` computes: with oneDNN's convolution primitives (the default), or by lowering
/// to matrix products (im2col + OpenBLAS `sgemm`), the reference the tests compare against.
public enum ConvolutionBackend: String, CaseIterable, Sendable {
  case onednn
  case im2col
}

/// The engine's choice of convolution implementation, for the whole process.
public enum Convolution {
  private static let current = Atomic<Int>(0)

  /// Which implementation `conv2d` uses from now on (default `.onednn`). Both give the same
  /// results to rounding (within 1e-5 relative, tested); a recorded op keeps the backend its
  /// forward pass used.
  public static var backend: ConvolutionBackend {
    get { current.load(ordering: .relaxed) == 0 ? .onednn : .im2col }
    set { current.store(newValue == .onednn ? 0 : 1, ordering: .relaxed) }
  }

  /// Whether oneDNN may pick its own blocked layouts inside each convolution (reordering from
  /// and to NCHW at the call's edges), instead of running on NCHW directly. Default true.
  public static var blockedLayouts: Bool {
    get { blocked.load(ordering: .relaxed) }
    set { blocked.store(newValue, ordering: .relaxed) }
  }
  private static let blocked = Atomic<Bool>(true)

  /// oneDNN's version, "major.minor.patch".
  public static var oneDNNVersion: String { String(cString: distill_dnnl_version()) }
}

/// The shape of one convolution as oneDNN's primitives see it.
struct OneDNNConvolutionKey: Hashable {
  let batch, channels, height, width, outChannels, kernelHeight, kernelWidth, stride, padding: Int
  let hasBias, blocked: Bool

  init(_ geometry: WindowGeometry, outChannels: Int, hasBias: Bool, blocked: Bool) {
    (batch, channels, height, width) = (geometry.batch, geometry.channels, geometry.height, geometry.width)
    (kernelHeight, kernelWidth) = (geometry.kernelHeight, geometry.kernelWidth)
    (stride, padding) = (geometry.stride, geometry.padding)
    self.outChannels = outChannels
    (self.hasBias, self.blocked) = (hasBias, blocked)
  }
}

/// One shape's oneDNN primitives (forward, backward data, backward weights), used by one
/// thread at a time: `OneDNNConvolutions.borrow` hands each out to a single caller.
final class OneDNNConvolution: @unchecked Sendable {
  let key: OneDNNConvolutionKey
  let handle: OpaquePointer

  init?(_ key: OneDNNConvolutionKey) {
    guard
      let handle = distill_conv_create(
        key.batch, key.channels, key.height, key.width, key.outChannels, key.kernelHeight,
        key.kernelWidth, key.stride, key.padding, key.hasBias ? 1 : 0, key.blocked ? 1 : 0)
    else { return nil }
    self.key = key
    self.handle = handle
  }

  deinit { distill_conv_destroy(handle) }

  /// Stops with oneDNN's message if a call on primitives that were created fine fails (which
  /// means the machine ran out of memory for oneDNN's scratch buffers).
  static func check(_ status: Int32, _ what: String) {
    if status != 0 {
      fatalError("oneDNN \(what) failed: \(String(cString: distill_dnnl_last_error()))")
    }
  }
}

/// The primitives of the shapes seen so far, kept for reuse: creating them costs far more
/// than one small convolution. At most `capacity` idle sets are kept (the oldest shape is
/// dropped first), so a program that sweeps through many shapes does not grow without bound.
enum OneDNNConvolutions {
  static let capacity = 64
  private static let idle = Mutex<[OneDNNConvolution]>([])
  private static let threadsSet = Atomic<Int>(0)
  /// Shapes oneDNN refused, already reported on stderr, that fall back to im2col.
  private static let refused = Mutex<Set<OneDNNConvolutionKey>>([])

  /// Runs `body` with the primitives of `key` (reused or created), or returns nil when oneDNN
  /// cannot create them: the caller then uses im2col, and the first refusal of each shape is
  /// reported on stderr with oneDNN's message.
  static func borrow<R>(_ key: OneDNNConvolutionKey, _ body: (OneDNNConvolution) -> R) -> R? {
    syncThreads()
    var conv = idle.withLock { list -> OneDNNConvolution? in
      guard let i = list.lastIndex(where: { $0.key == key }) else { return nil }
      return list.remove(at: i)
    }
    if conv == nil {
      if refused.withLock({ $0.contains(key) }) { return nil }
      conv = OneDNNConvolution(key)
      if conv == nil {
        let message = String(cString: distill_dnnl_last_error())
        if refused.withLock({ $0.insert(key).inserted }) {
          let line = "warning: oneDNN cannot run the convolution \(key) (\(message)); using im2col for it\n"
          _ = line.withCString { write(2, $0, strlen($0)) }
        }
        return nil
      }
    }
    let result = body(conv!)
    idle.withLock { list in
      list.append(conv!)
      if list.count > capacity { list.removeFirst(list.count - capacity) }
    }
    return result
  }

  /// Gives oneDNN's OpenMP threads the count OpenBLAS uses (`BLAS.threadCount`), checked at
  /// each borrow so a later change of the count reaches both libraries.
  static func syncThreads() {
    let wanted = BLAS.threadCount
    if threadsSet.load(ordering: .relaxed) != wanted {
      _ = distill_dnnl_set_threads(Int32(wanted))
      threadsSet.store(wanted, ordering: .relaxed)
    }
  }
}
