import CKernels
import Synchronization

/// Bytes of tensor storage alive at once, for memory benchmarks (`distill bench --only
/// deep_mlp_recompute`): off by default; while counting, every tensor created adds its bytes
/// (`4 · count`, or `2 · count` when created in half precision; a later `storeAsHalf()` is not
/// recounted) and removes them when it is freed, and the peak is kept.
///
/// Parameters' gradients (tensors assigned to a leaf's `grad`) are counted apart, so `peakBytes`
/// is the peak of everything else a step creates: activations the graph keeps for backward,
/// intermediate gradients and temporaries. Tensors created before `start()` are never counted.
/// Two tensors sharing one copy-on-write buffer (`reshaped`) are counted twice, and arrays that
/// VJP closures capture directly (dropout's factors) not at all; `heapPeakBytes` (glibc's
/// bytes in use, sampled at each tensor creation) sees every allocation, gradients included.
///
/// Cost when off: one relaxed atomic load per tensor created.
public enum TensorMemory {
  static let isCounting = Atomic<Bool>(false)
  static let live = Atomic<Int>(0)
  static let peak = Atomic<Int>(0)
  static let gradients = Atomic<Int>(0)
  static let heapAtStart = Atomic<Int>(0)
  static let heapPeak = Atomic<Int>(0)

  /// Starts counting from zero: tensors created from now on are counted.
  public static func start() {
    live.store(0, ordering: .relaxed)
    peak.store(0, ordering: .relaxed)
    gradients.store(0, ordering: .relaxed)
    let heap = distill_heap_bytes_in_use()
    heapAtStart.store(heap, ordering: .relaxed)
    heapPeak.store(heap, ordering: .relaxed)
    isCounting.store(true, ordering: .sequentiallyConsistent)
  }

  /// Stops counting new tensors (those counted still remove their bytes when freed).
  public static func stop() { isCounting.store(false, ordering: .sequentiallyConsistent) }

  /// The most bytes of counted tensors, gradients of leaves excluded, alive at once since `start()`.
  public static var peakBytes: Int { peak.load(ordering: .relaxed) }

  /// Bytes of counted tensors, gradients of leaves excluded, alive now.
  public static var liveBytes: Int { live.load(ordering: .relaxed) }

  /// Bytes of counted tensors held as leaves' gradients now.
  public static var gradientBytes: Int { gradients.load(ordering: .relaxed) }

  /// The most heap bytes in use (glibc `mallinfo2`: `uordblks + hblkhd`) seen at a tensor
  /// creation since `start()`, above the bytes in use at `start()`; 0 off glibc.
  public static var heapPeakBytes: Int {
    heapPeak.load(ordering: .relaxed) - heapAtStart.load(ordering: .relaxed)
  }

  /// Called by `Tensor.init`: the bytes to remember for `deinit` (0 when not counting).
  @inline(__always) static func created(elements: Int, bytesPerElement: Int = MemoryLayout<Float>.stride) -> Int {
    guard isCounting.load(ordering: .relaxed) else { return 0 }
    let bytes = max(1, elements * bytesPerElement)
    let now = live.add(bytes, ordering: .relaxed).newValue
    peak.max(now, ordering: .relaxed)
    heapPeak.max(distill_heap_bytes_in_use(), ordering: .relaxed)
    return bytes
  }

  /// Called by `Tensor.deinit` for a counted tensor.
  static func freed(bytes: Int, asGradient: Bool) {
    if asGradient {
      gradients.subtract(bytes, ordering: .relaxed)
    } else {
      live.subtract(bytes, ordering: .relaxed)
    }
  }

  /// Called when a counted tensor becomes a leaf's gradient: its bytes move to `gradientBytes`.
  static func becameGradient(bytes: Int) {
    live.subtract(bytes, ordering: .relaxed)
    gradients.add(bytes, ordering: .relaxed)
  }
}
