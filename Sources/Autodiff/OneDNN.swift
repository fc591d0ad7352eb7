import CDNNL
import CKernels
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

  /// Whether `Sequential` runs a convolution followed by a ReLU, or by a batch norm and a ReLU
  /// (and a max pooling), as one oneDNN chain (`Tensor.convolutionBlock`) when it can. Default
  /// true.
  public static var fusesBlocks: Bool {
    get { fuses.load(ordering: .relaxed) }
    set { fuses.store(newValue, ordering: .relaxed) }
  }
  private static let fuses = Atomic<Bool>(true)

  /// Whether `Tensor.convolutionChains` hands intermediates from one chain to the next in
  /// oneDNN's 16-channel blocks instead of NCHW. Default true where those blocks are oneDNN's
  /// own (`linksNatively`: AVX-512), and there the results are the same bit for bit; false on
  /// CPUs with 8-wide vectors (AVX2), whose kernels read 16-channel blocks with another
  /// summation order (the same results to rounding) and no speed-up.
  public static var linksChains: Bool {
    get { links.load(ordering: .relaxed) }
    set { links.store(newValue, ordering: .relaxed) }
  }
  private static let links = Atomic<Bool>(linksNatively)
  /// Whether this CPU's oneDNN kernels work in 16-channel blocks (AVX-512).
  public static let linksNatively = distill_cpu_has_avx512() != 0

  /// Whether oneDNN has bfloat16 convolutions on this CPU (AVX-512 and later; oneDNN 2.x has none
  /// for AVX2). Without them a convolution under autocast runs in Float, unrounded, as a shape
  /// oneDNN refuses does.
  public static let bfloat16Available: Bool = {
    let geometry = WindowGeometry(inputShape: [2, 8, 8, 8], kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1)
    let key = OneDNNConvolutionKey(geometry, outChannels: 8, hasBias: false, blocked: true, bf16: true)
    return OneDNNConvolution(key) != nil
  }()

  /// Whether a convolution with `inChannels` input channels reads bfloat16 under autocast.
  /// With fewer than 8 input channels (a network's first layer on images) oneDNN's bfloat16
  /// kernels are slower than its Float ones (1 → 32 channels on 28×28, batch 128, 1 thread:
  /// 3.6 ms against 2.2 ms forward, 1.3 against 1.05 for the weight gradient), and the layer
  /// holds a small share of the FLOPs, so it stays Float, which is also more exact.
  static func runsInBFloat16(inChannels: Int) -> Bool { inChannels >= 8 }

  /// The precisions, preferred first, in which a convolution of `inChannels` input channels
  /// tries oneDNN (`bf16` flags of its keys): bfloat16 then Float under autocast where
  /// `runsInBFloat16`, else Float alone. The choice is made in the forward pass and kept for
  /// backward.
  static func bfloat16Choices(inChannels: Int) -> [Bool] {
    BF16Autocast.isEnabled && runsInBFloat16(inChannels: inChannels) && bfloat16Available ? [true, false] : [false]
  }

  /// oneDNN's version, "major.minor.patch".
  public static var oneDNNVersion: String { String(cString: distill_dnnl_version()) }
}

/// The shape of one convolution as oneDNN's primitives see it.
struct OneDNNConvolutionKey: Hashable {
  let batch, channels, height, width, outChannels, kernelHeight, kernelWidth, stride, padding: Int
  let hasBias, blocked: Bool
  /// Whether the convolutions read bfloat16 (autocast).
  let bf16: Bool

  init(_ geometry: WindowGeometry, outChannels: Int, hasBias: Bool, blocked: Bool, bf16: Bool) {
    (batch, channels, height, width) = (geometry.batch, geometry.channels, geometry.height, geometry.width)
    (kernelHeight, kernelWidth) = (geometry.kernelHeight, geometry.kernelWidth)
    (stride, padding) = (geometry.stride, geometry.padding)
    self.outChannels = outChannels
    (self.hasBias, self.blocked, self.bf16) = (hasBias, blocked, bf16)
  }
}

/// One shape's oneDNN primitives (forward, backward data, backward weights), used by one
/// thread at a time: `oneDNNConvolutions.borrow` hands each out to a single caller.
final class OneDNNConvolution: OneDNNPrimitives, @unchecked Sendable {
  let key: OneDNNConvolutionKey
  let handle: OpaquePointer

  init?(_ key: OneDNNConvolutionKey) {
    guard
      let handle = distill_conv_create(
        key.batch, key.channels, key.height, key.width, key.outChannels, key.kernelHeight,
        key.kernelWidth, key.stride, key.padding, key.hasBias ? 1 : 0, key.blocked ? 1 : 0, key.bf16 ? 1 : 0)
    else { return nil }
    self.key = key
    self.handle = handle
  }

  deinit { distill_conv_destroy(handle) }
}

/// Stops with oneDNN's message if a call on primitives that were created fine fails (which
/// means the machine ran out of memory for oneDNN's scratch buffers).
func checkOneDNN(_ status: Int32, _ what: String) {
  if status != 0 {
    fatalError("oneDNN \(what) failed: \(String(cString: distill_dnnl_last_error()))")
  }
}

/// For tests of the fallback paths: while `isSimulated`, every cache treats a shape it has no
/// primitives for yet as refused by oneDNN (warned about once and remembered, as a real
/// refusal is), so the engine's own ops run it from then on.
enum OneDNNRefusal {
  @TaskLocal static var isSimulated = false
}

/// oneDNN primitives for one shape, created from their key (nil when oneDNN refuses it).
protocol OneDNNPrimitives: AnyObject, Sendable {
  associatedtype Key: Hashable & Sendable
  var key: Key { get }
  init?(_ key: Key)
}

/// The primitives of the shapes seen so far, kept for reuse: creating them costs far more
/// than one small convolution. At most `capacity` idle sets are kept (the oldest shape is
/// dropped first), so a program that sweeps through many shapes does not grow without bound.
/// Each set is lent to one caller at a time (a second concurrent caller of the same shape gets
/// a set of its own).
final class OneDNNCache<Primitives: OneDNNPrimitives>: Sendable {
  let capacity = 64
  private let idle = Mutex<[Primitives]>([])
  /// Shapes oneDNN refused, already reported on stderr, that fall back to the engine's own ops.
  private let refused = Mutex<Set<Primitives.Key>>([])

  /// `borrow` with the first of `keys` oneDNN accepts (a preferred form, then fallbacks, such
  /// as bfloat16 then Float); returns that key with `body`'s result, or nil when it refuses all.
  func borrowFirst<R>(_ keys: [Primitives.Key], _ body: (Primitives) -> R) -> (key: Primitives.Key, result: R)? {
    for key in keys {
      if let result = borrow(key, body) { return (key, result) }
    }
    return nil
  }

  /// Runs `body` with the primitives of `key` (reused or created), or returns nil when oneDNN
  /// cannot create them: the caller then uses the engine's own ops, and the first refusal of
  /// each shape is reported on stderr with oneDNN's message.
  func borrow<R>(_ key: Primitives.Key, _ body: (Primitives) -> R) -> R? {
    OneDNNThreads.sync()
    var primitives = idle.withLock { list -> Primitives? in
      guard let i = list.lastIndex(where: { $0.key == key }) else { return nil }
      return list.remove(at: i)
    }
    if primitives == nil {
      if refused.withLock({ $0.contains(key) }) { return nil }
      primitives = OneDNNRefusal.isSimulated ? nil : Primitives(key)
      if primitives == nil {
        let message =
          OneDNNRefusal.isSimulated ? "a refusal simulated by a test" : String(cString: distill_dnnl_last_error())
        if refused.withLock({ $0.insert(key).inserted }) {
          let line = "warning: oneDNN cannot run \(key) (\(message)); using the engine's own ops for it\n"
          _ = line.withCString { write(2, $0, strlen($0)) }
        }
        return nil
      }
    }
    let result = body(primitives!)
    idle.withLock { list in
      list.append(primitives!)
      if list.count > capacity { list.removeFirst(list.count - capacity) }
    }
    return result
  }
}

let oneDNNConvolutions = OneDNNCache<OneDNNConvolution>()

/// oneDNN's OpenMP thread count.
enum OneDNNThreads {
  private static let threadsSet = Atomic<Int>(0)

  /// Gives oneDNN's OpenMP threads the count OpenBLAS uses (`BLAS.threadCount`), checked at
  /// each borrow so a later change of the count reaches both libraries.
  static func sync() {
    let wanted = BLAS.threadCount
    if threadsSet.load(ordering: .relaxed) != wanted {
      _ = distill_dnnl_set_threads(Int32(wanted))
      threadsSet.store(wanted, ordering: .relaxed)
    }
  }
}

/// The shape of a convolution (+ batch normalisation) + ReLU (+ max pooling) chain.
struct OneDNNBlockKey: Hashable, Sendable {
  let convolution: OneDNNConvolutionKey
  /// Kernel, stride and padding of the max pooling; kernel 0 without one.
  let poolKernel, poolStride, poolPadding: Int
  /// DISTILL_BLOCK_NO_NORM, DISTILL_BLOCK_NORM_TRAINING or DISTILL_BLOCK_NORM_INFERENCE, and
  /// the normalisation's ε (0 without one).
  let norm: Int32
  let epsilon: Float
  /// Whether the input (and its gradient) and the output (and its gradient) are in oneDNN's
  /// 16-channel blocks rather than NCHW (chains linked by `convolutionChains`).
  let inputBlocked, outputBlocked: Bool
}

/// One chain's primitives (`distill_block`), lent to one caller at a time.
final class OneDNNBlock: OneDNNPrimitives, @unchecked Sendable {
  let key: OneDNNBlockKey
  let handle: OpaquePointer
  /// Elements (Float-sized) of the buffers a forward pass keeps for backward: the activation,
  /// the pool's workspace, the normalisation's ReLU mask.
  let activationCount, workspaceCount, normWorkspaceCount: Int

  init?(_ key: OneDNNBlockKey) {
    let c = key.convolution
    guard
      let handle = distill_block_create(
        c.batch, c.channels, c.height, c.width, c.outChannels, c.kernelHeight, c.kernelWidth, c.stride,
        c.padding, c.hasBias ? 1 : 0, key.poolKernel, key.poolStride, key.poolPadding, c.bf16 ? 1 : 0,
        key.norm, key.epsilon, key.inputBlocked ? 1 : 0, key.outputBlocked ? 1 : 0)
    else { return nil }
    self.key = key
    self.handle = handle
    let float = MemoryLayout<Float>.stride
    activationCount = (distill_block_activation_bytes(handle) + float - 1) / float
    workspaceCount = (distill_block_workspace_bytes(handle) + float - 1) / float
    normWorkspaceCount = (distill_block_norm_workspace_bytes(handle) + float - 1) / float
  }

  deinit { distill_block_destroy(handle) }
}

let oneDNNBlocks = OneDNNCache<OneDNNBlock>()

/// The shape and kind of one matrix product run by oneDNN.
struct OneDNNMatmulKey: Hashable, Sendable {
  let m, n, k, lda, ldb, ldc: Int
  let transposeA, transposeB, bf16, accumulate: Bool
}

/// One product's oneDNN primitive (`distill_matmul`), lent to one caller at a time.
final class OneDNNMatmul: OneDNNPrimitives, @unchecked Sendable {
  let key: OneDNNMatmulKey
  let handle: OpaquePointer

  init?(_ key: OneDNNMatmulKey) {
    guard
      let handle = distill_matmul_create(
        key.m, key.n, key.k, key.transposeA ? 1 : 0, key.transposeB ? 1 : 0, key.lda, key.ldb, key.ldc,
        key.bf16 ? 1 : 0, key.accumulate ? 1 : 0)
    else { return nil }
    self.key = key
    self.handle = handle
  }

  deinit { distill_matmul_destroy(handle) }
}

let oneDNNMatmuls = OneDNNCache<OneDNNMatmul>()

/// bfloat16 autocast (`precision: bf16-mixed`), as `torch.autocast("cpu", dtype=torch.bfloat16)`:
/// matrix products (`matmul`, and with it `Linear`) and convolutions (`conv2d`,
/// `convolutionBlock`) round their operands to bfloat16 and accumulate in Float, in the forward
/// pass and in the products of their gradient; everything else, the results, the saved
/// activations, the gradients and the weights stay Float. No loss scaling is needed: bfloat16 has Float's exponent range.
public enum BF16Autocast {
  @TaskLocal static var isEnabled = false

  /// Whether products recorded here run in bfloat16.
  public static var isActive: Bool { isEnabled }
}

/// Runs `body` with bfloat16 autocast on (when `enabled`); see `BF16Autocast`.
public func withBF16Autocast<R>(_ enabled: Bool = true, _ body: () throws -> R) rethrows -> R {
  try BF16Autocast.$isEnabled.withValue(enabled) { try body() }
}
