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
  public static func widen(_ source: UnsafePointer<UInt16>, into destination: UnsafeMutablePointer<Float>, count: Int) {
    inParallel(count) { start, length in distill_half_to_float(source + start, destination + start, length) }
  }

  /// Rounds `count` Floats at `source` to binary16 at `destination` (nearest, ties to even).
  public static func narrow(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<UInt16>, count: Int) {
    inParallel(count) { start, length in distill_float_to_half(source + start, destination + start, length) }
  }

  /// Calls `convert(start, length)` over `0..<count`: in one piece below 256 Ki elements,
  /// else in one piece per BLAS thread, run concurrently (the conversions are memory-bound
  /// and sit between products that use every BLAS thread; on the 784-1200-1200-10 MLP in
  /// f16-mixed with 2 threads they take ~7% of a step in one piece; split, the f16-mixed/f32
  /// throughput ratio measured 0.93–0.94 against 0.90–0.95, within this machine's noise).
  private static func inParallel(_ count: Int, _ convert: (Int, Int) -> Void) {
    let pieces = count >= 1 << 18 ? min(BLAS.threadCount, 8) : 1
    if pieces <= 1 {
      if count > 0 { convert(0, count) }
      return
    }
    // Piece boundaries on multiples of 64 elements, so no two threads write one cache line.
    let step = (count / pieces + 63) & ~63
    withoutActuallyEscaping(convert) { convert in
      let work = UncheckedSendable(convert)
      DispatchQueue.concurrentPerform(iterations: pieces) { piece in
        let start = piece * step
        let length = min(step, count - start)
        if length > 0 { work.value(start, length) }
      }
    }
  }
}

/// A value handed to other threads where the caller guarantees that it is safe: the pieces of
/// a conversion read and write disjoint ranges of buffers that outlive the call.
private struct UncheckedSendable<Value>: @unchecked Sendable {
  let value: Value
  init(_ value: Value) { self.value = value }
}
