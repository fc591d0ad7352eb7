import CKernels
import Dispatch

/// Float ↔ IEEE binary16 conversion over whole buffers, done by the C kernels with runtime
/// CPU-feature dispatch (AVX-512, F16C, or a portable fallback), because Swift does not emit
/// F16C instructions for `Float16(x)` unless the whole build targets them (measured here:
/// 0.34 G elements/s plain against 4.8 G/s with F16C).
///
/// Rounding is to nearest, ties to even; overflow gives ±infinity; every binary16 value
/// converts to `Float` exactly.
public enum HalfPrecision {
  /// The conversion path this CPU uses: `"avx512"`, `"f16c"` or `"portable"`.
  public static var path: String { String(cString: distill_half_conversion_path()) }

  /// Makes the conversions use `path` (`"avx512"`, `"f16c"`, `"portable"`, or `"auto"` for the
  /// CPU's best); false, changing nothing, when this CPU lacks it. For tests that check every
  /// path a machine has; not thread-safe against conversions running at the same time.
  @discardableResult
  public static func usePath(_ path: String) -> Bool { distill_half_use_conversion_path(path) == 1 }

  /// Floats rounded to binary16, as bit patterns.
  public static func halfBits(from values: [Float]) -> [UInt16] {
    [UInt16](unsafeUninitializedCapacity: values.count) { out, initialized in
      values.withUnsafeBufferPointer { src in
        if let base = src.baseAddress, let dst = out.baseAddress {
          narrow(base, into: dst, count: values.count)
        }
      }
      initialized = values.count
    }
  }

  /// binary16 bit patterns widened to Float (exact).
  public static func floats(fromHalfBits bits: [UInt16]) -> [Float] {
    [Float](unsafeUninitializedCapacity: bits.count) { out, initialized in
      bits.withUnsafeBufferPointer { src in
        if let base = src.baseAddress, let dst = out.baseAddress {
          widen(base, into: dst, count: bits.count)
        }
      }
      initialized = bits.count
    }
  }
}

extension HalfPrecision {
  /// Widens `count` binary16 values at `source` to Float at `destination` (exact).
  public static func widen(
    _ source: UnsafePointer<UInt16>, into destination: UnsafeMutablePointer<Float>, count: Int
  ) {
    ParallelLoop.run(count) { start, length in
      distill_half_to_float(source + start, destination + start, length)
    }
  }

  /// Rounds `count` Floats at `source` to binary16 at `destination` (nearest, ties to even).
  public static func narrow(
    _ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<UInt16>, count: Int
  ) {
    ParallelLoop.run(count) { start, length in
      distill_float_to_half(source + start, destination + start, length)
    }
  }

}

/// Memory-bound loops over large buffers, split across the BLAS threads: they sit between
/// products that keep every BLAS thread busy, and would otherwise run on one core while the
/// others wait (half↔float conversions, loss-scale unscaling).
public enum ParallelLoop {
  /// Calls `body(start, length)` over `0..<count`: in one piece below 256 Ki elements, else
  /// in one piece per BLAS thread (at most 8), run concurrently. Pieces start at multiples of
  /// 64 elements, so two threads never write one cache line of a Float or UInt16 buffer.
  /// `body` must only touch its own range of shared buffers.
  ///
  /// Measured on the 784-1200-1200-10 MLP in f16-mixed with 2 threads: conversions and
  /// unscaling take ~10% of a step in one piece.
  public static func run(_ count: Int, _ body: (_ start: Int, _ length: Int) -> Void) {
    let pieces = count >= 1 << 18 ? min(BLAS.threadCount, 8) : 1
    if pieces <= 1 {
      if count > 0 { body(0, count) }
      return
    }
    let step = (count / pieces + 63) & ~63
    withoutActuallyEscaping(body) { body in
      let work = UncheckedSendable(body)
      DispatchQueue.concurrentPerform(iterations: pieces) { piece in
        let start = piece * step
        let length = min(step, count - start)
        if length > 0 { work.value(start, length) }
      }
    }
  }
}

/// A value handed to other threads where the caller guarantees that it is safe: the pieces of
/// a `ParallelLoop` read and write disjoint ranges of buffers that outlive the call.
private struct UncheckedSendable<Value>: @unchecked Sendable {
  let value: Value
  init(_ value: Value) { self.value = value }
}

/// Float → bfloat16 rounding over whole buffers by the C kernels (AVX512-BF16's VCVTNEPS2BF16,
/// or a portable loop giving the same bits): to nearest, ties to even; subnormal inputs and
/// results become signed zero, NaN a quiet NaN. Used by bfloat16 autocast (`BF16Autocast`).
public enum BFloat16 {
  /// The rounding path this CPU uses: `"avx512bf16"` or `"portable"`.
  public static var path: String { String(cString: distill_bfloat16_conversion_path()) }

  /// Makes the rounding use `path` (`"avx512bf16"`, `"portable"`, or `"auto"`); false, changing
  /// nothing, when this CPU lacks it. For tests; not thread-safe against running conversions.
  @discardableResult
  public static func usePath(_ path: String) -> Bool { distill_bfloat16_use_conversion_path(path) == 1 }

  /// Floats rounded to bfloat16, as bit patterns (a Float's upper 16 bits).
  public static func bits(from values: [Float]) -> [UInt16] {
    values.withUnsafeBufferPointer { BFloat16Matrix.bits($0) }
  }
}
