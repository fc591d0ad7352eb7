import CKernels

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
          distill_float_to_half(base, dst, values.count)
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
          distill_half_to_float(base, dst, bits.count)
        }
      }
      initialized = bits.count
    }
  }
}

extension HalfPrecision {
  /// Widens `count` binary16 values at `source` to Float at `destination` (exact).
  @inline(__always)
  public static func widen(_ source: UnsafePointer<UInt16>, into destination: UnsafeMutablePointer<Float>, count: Int) {
    if count > 0 { distill_half_to_float(source, destination, count) }
  }

  /// Rounds `count` Floats at `source` to binary16 at `destination` (nearest, ties to even).
  @inline(__always)
  public static func narrow(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<UInt16>, count: Int) {
    if count > 0 { distill_float_to_half(source, destination, count) }
  }
}
