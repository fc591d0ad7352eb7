import Synchronization

/// Float buffers of freed tensors, kept for the next tensor of the same size, as PyTorch's
/// caching allocator keeps freed blocks.
///
/// A training step frees and allocates the same large buffers (activations, gradients) every
/// step. Handed back to the C allocator, glibc returns blocks above its thresholds to the
/// kernel, so each step would page them in and zero them again (measured: a 784-800-800-10
/// MLP step 1.3–1.9× slower). Instead, a tensor of at least `minimumElements` elements gives
/// its buffer here when it is freed, and tensors created by the engine (`Tensor(shape:) { … }`,
/// `Tensor(repeating:shape:)`, the gradients of the ops) take a buffer of exactly their size
/// from here when there is one. Nothing to call: a program using the library gets this as the
/// `distill` executable does.
///
/// Bounded: at most `capacityBytes` are kept (default: an eighth of physical memory, at most
/// 1 GiB); past that, the sizes used longest ago are released first. `drain()` releases all.
public enum TensorBufferPool {
  /// Buffers smaller than this many elements (64 KiB) are left to the C allocator, whose
  /// small-block bins are fast and never returned to the kernel.
  public static let minimumElements = 16_384

  struct State {
    var buckets: [Int: [[Float]]] = [:]
    /// When each size was last given or taken (a counter), for releasing the oldest first.
    var lastUse: [Int: Int] = [:]
    var clock = 0
    var bytes = 0
    var capacity = min(1 << 30, ProcessMemory.physicalBytes / 8)
    var hits = 0
    var misses = 0
  }

  private static let state = Mutex(State())

  /// The most bytes of free buffers kept. Setting it releases buffers down to the new bound;
  /// 0 turns the pool off.
  public static var capacityBytes: Int {
    get { state.withLock { $0.capacity } }
    set {
      state.withLock { s in
        s.capacity = max(0, newValue)
        release(&s, toFit: 0)
      }
    }
  }

  /// Bytes of free buffers kept now.
  public static var pooledBytes: Int { state.withLock { $0.bytes } }

  /// Tensors of pooled size created from a kept buffer, and those that found none.
  public static var reuseCounts: (hits: Int, misses: Int) { state.withLock { ($0.hits, $0.misses) } }

  /// Releases every kept buffer to the C allocator.
  public static func drain() {
    state.withLock { s in
      s.buckets.removeAll()
      s.lastUse.removeAll()
      s.bytes = 0
    }
  }

  /// A kept buffer of exactly `count` elements (stale contents), or nil.
  static func take(count: Int) -> [Float]? {
    guard count >= minimumElements else { return nil }
    return state.withLock { s -> [Float]? in
      guard var list = s.buckets[count], let buffer = list.popLast() else {
        s.misses += 1
        return nil
      }
      s.buckets[count] = list.isEmpty ? nil : list
      s.bytes -= count * MemoryLayout<Float>.stride
      s.clock += 1
      s.lastUse[count] = s.clock
      s.hits += 1
      return buffer
    }
  }

  /// Keeps `buffer` for a later tensor of its size (if it is large enough and fits).
  static func give(_ buffer: [Float]) {
    let count = buffer.count
    guard count >= minimumElements else { return }
    let bytes = count * MemoryLayout<Float>.stride
    state.withLock { s in
      guard bytes <= s.capacity else { return }
      release(&s, toFit: bytes)
      s.buckets[count, default: []].append(buffer)
      s.bytes += bytes
      s.clock += 1
      s.lastUse[count] = s.clock
    }
  }

  /// Releases buffers of the sizes used longest ago until `extra` more bytes fit.
  private static func release(_ s: inout State, toFit extra: Int) {
    while s.bytes + extra > s.capacity, let oldest = s.lastUse.min(by: { $0.value < $1.value })?.key {
      let dropped = s.buckets.removeValue(forKey: oldest) ?? []
      s.bytes -= dropped.count * oldest * MemoryLayout<Float>.stride
      s.lastUse.removeValue(forKey: oldest)
    }
  }

  /// `count` elements written by `initializer`, in a kept buffer when there is one.
  @inline(__always)
  static func array(count: Int, _ initializer: (UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
    if var buffer = take(count: count) {
      buffer.withUnsafeMutableBufferPointer { initializer($0) }
      return buffer
    }
    return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
      initializer(buffer)
      initialized = count
    }
  }

  /// `count` copies of `value`, in a kept buffer when there is one.
  static func array(repeating value: Float, count: Int) -> [Float] {
    if var buffer = take(count: count) {
      buffer.withUnsafeMutableBufferPointer { $0.update(repeating: value) }
      return buffer
    }
    return [Float](repeating: value, count: count)
  }
}
