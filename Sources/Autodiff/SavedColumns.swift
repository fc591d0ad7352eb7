/// The unrolled patches (im2col's X, chunk after chunk) that `conv2d` keeps for its weight
/// gradient ∂W = G·Xᵀ: Float, or binary16 under mixed precision, plus a Float scratch chunk
/// to unroll into before rounding (forward) or to widen into before the sgemm (backward).
///
/// Three modes: kept as Float (the scratch is not needed: chunks are unrolled in place), kept
/// as binary16, or not kept at all (an unrecorded forward pass only needs the scratch).
struct SavedColumns {
  private var floats: [Float]
  private var halfBits: [UInt16]
  private var scratch: [Float]
  private let keepsFloats: Bool
  private let keepsHalf: Bool

  /// Room for `count` kept elements (0 when nothing is kept), as binary16 when `half`, and a
  /// scratch of `scratch` Floats (the largest chunk) where chunks are not unrolled in place.
  init(count: Int, half: Bool, scratch scratchCount: Int) {
    keepsHalf = half && count > 0
    keepsFloats = !half && count > 0
    floats = keepsFloats ? Self.uninitialized(count) : []
    halfBits = keepsHalf ? [UInt16](unsafeUninitializedCapacity: count) { $1 = count } : []
    scratch = Self.uninitialized(scratchCount)
  }

  private static func uninitialized(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { $1 = count }
  }

  /// Bytes kept for the backward pass.
  var byteCount: Int { floats.count * 4 + halfBits.count * 2 }

  /// Lets `body` write the `count` Floats of the chunk that starts at `offset`: in place when
  /// kept as Float, else into the scratch, rounded afterwards into the kept binary16 buffer
  /// when kept as half.
  mutating func writing(chunk offset: Int, count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) {
    if keepsFloats {
      floats.withUnsafeMutableBufferPointer { body($0.baseAddress! + offset) }
      return
    }
    scratch.withUnsafeMutableBufferPointer { s in
      body(s.baseAddress!)
      if keepsHalf {
        halfBits.withUnsafeMutableBufferPointer { h in
          HalfPrecision.narrow(s.baseAddress!, into: h.baseAddress! + offset, count: count)
        }
      }
    }
  }

  /// Frees the scratch once the forward pass is done (the backward pass makes its own).
  mutating func releaseScratch() { scratch = [] }

  /// Calls `body` with the `count` kept Floats of the chunk that starts at `offset`, widened
  /// into the scratch when kept as binary16.
  mutating func reading(chunk offset: Int, count: Int, _ body: (UnsafePointer<Float>) -> Void) {
    if !keepsHalf {
      floats.withUnsafeBufferPointer { body($0.baseAddress! + offset) }
      return
    }
    if scratch.count < count { scratch = Self.uninitialized(count) }
    scratch.withUnsafeMutableBufferPointer { s in
      halfBits.withUnsafeBufferPointer { h in
        HalfPrecision.widen(h.baseAddress! + offset, into: s.baseAddress!, count: count)
      }
      body(UnsafePointer(s.baseAddress!))
    }
  }
}
