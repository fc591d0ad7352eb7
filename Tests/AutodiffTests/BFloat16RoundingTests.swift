import Autodiff
import XCTest

/// bfloat16 rounding: every path this CPU has gives the bits of the definition (round to
/// nearest even; subnormals to signed zero, as VCVTNEPS2BF16 does; NaN stays a quiet NaN) on a
/// sweep of the Float bit patterns and on the edge cases.
final class BFloat16RoundingTests: XCTestCase {
  private func expected(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(bits >> 16) | 0x0040 }
    if x.isSubnormal || x == 0 { return UInt16(bits >> 16) & 0x8000 }
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return UInt16(rounded >> 16)
  }

  func testEveryPathGivesTheDefinitionsBits() {
    defer { BFloat16.usePath("auto") }
    var values: [Float] = [
      0, -0, 1, -1, .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
      .leastNormalMagnitude, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, Float(bitPattern: 0x007F_FFFF),
      Float(bitPattern: 0x3F80_8000),  // 1 + 2⁻⁸: a tie, to even (1)
      Float(bitPattern: 0x3F81_8000),  // a tie, to even (up)
      Float(bitPattern: 0x7F7F_FFFF),  // rounds to infinity
      Float(bitPattern: 0x7FA0_0001),  // signalling NaN
    ]
    // A sweep of the bit patterns (every 4099th, both signs), with neighbours of the ties.
    for bits in stride(from: UInt32(0), to: 0xFFFF_FFFF - 4099, by: 4099) {
      values.append(Float(bitPattern: bits))
      values.append(Float(bitPattern: (bits & 0xFFFF_0000) | 0x8000))
    }
    var checked = 0
    for path in ["portable", "avx512bf16"] where BFloat16.usePath(path) {
      let got = BFloat16.bits(from: values)
      for (x, bits) in zip(values, got) where bits != expected(x) {
        XCTFail("\(path): \(x) (0x\(String(x.bitPattern, radix: 16))) → 0x\(String(bits, radix: 16)), expected 0x\(String(expected(x), radix: 16))")
        break
      }
      checked += 1
    }
    XCTAssertGreaterThanOrEqual(checked, 1)
    XCTAssertFalse(BFloat16.usePath("sse9"))
  }
}
