import Autodiff
import XCTest

final class HalfPrecisionTests: XCTestCase {
  /// Every binary16 bit pattern widens exactly (checked against Swift's own Float16, which is
  /// correct if slow) and narrows back to itself; NaNs stay NaN.
  func testAllHalfValuesRoundTrip() {
    let all = (0...UInt16.max).map { $0 }
    let widened = HalfPrecision.floats(fromHalfBits: all)
    let back = HalfPrecision.halfBits(from: widened)
    for bits in all {
      let reference = Float(Float16(bitPattern: bits))
      let value = widened[Int(bits)]
      if reference.isNaN {
        XCTAssertTrue(value.isNaN, "pattern \(bits)")
        XCTAssertTrue(Float16(bitPattern: back[Int(bits)]).isNaN, "pattern \(bits)")
      } else {
        XCTAssertEqual(value.bitPattern, reference.bitPattern, "pattern \(bits)")
        XCTAssertEqual(back[Int(bits)], bits, "pattern \(bits)")
      }
    }
  }

  /// Narrowing rounds to nearest, ties to even, as Swift's `Float16(_:)` does: checked on
  /// midpoints between neighbouring halves, values just off them, and overflow/underflow.
  func testNarrowingRoundsToNearestEven() {
    var inputs: [Float] = [65504, 65519.99, 65520, 1e9, -1e9, 1e-8, 2.98e-8, 5.97e-8, -0.0, .infinity]
    for bits in stride(from: UInt16(0), to: 0x7bff, by: 7) {
      let low = Float(Float16(bitPattern: bits))
      let high = Float(Float16(bitPattern: bits + 1))
      let mid = (low + high) / 2
      inputs += [mid, mid.nextUp, mid.nextDown, -mid]
    }
    let ours = HalfPrecision.halfBits(from: inputs)
    for (x, h) in zip(inputs, ours) {
      XCTAssertEqual(h, Float16(x).bitPattern, "input \(x) (\(HalfPrecision.path) path)")
    }
  }
}
