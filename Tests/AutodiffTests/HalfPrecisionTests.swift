import Autodiff
import XCTest

final class HalfPrecisionTests: XCTestCase {
  /// Every conversion path this CPU has (the portable one always; F16C and AVX-512 on most
  /// x86-64 machines), each checked in turn, then the CPU's best again.
  private func forEachPath(_ body: () -> Void) {
    defer { HalfPrecision.usePath("auto") }
    var checked: [String] = []
    for path in ["portable", "f16c", "avx512"] where HalfPrecision.usePath(path) {
      XCTAssertEqual(HalfPrecision.path, path)
      body()
      checked.append(path)
    }
    XCTAssertTrue(checked.contains("portable"), "the portable path must always be available")
    XCTAssertFalse(HalfPrecision.usePath("sse9"))
  }

  func testEveryPathOfThisCPU() {
    forEachPath {
      checkAllHalfValuesRoundTrip()
      checkNarrowingRoundsToNearestEven()
    }
  }

  /// Every binary16 bit pattern widens exactly (checked against Swift's own Float16, which is
  /// correct if slow) and narrows back to itself; NaNs stay NaN.
  func testAllHalfValuesRoundTrip() { checkAllHalfValuesRoundTrip() }

  private func checkAllHalfValuesRoundTrip() {
    let all = (0...UInt16.max).map { $0 }
    let widened = HalfPrecision.floats(fromHalfBits: all)
    let back = HalfPrecision.halfBits(from: widened)
    for bits in all {
      let path = HalfPrecision.path
      let reference = Float(Float16(bitPattern: bits))
      let value = widened[Int(bits)]
      if reference.isNaN {
        XCTAssertTrue(value.isNaN, "pattern \(bits) (\(path) path)")
        XCTAssertTrue(Float16(bitPattern: back[Int(bits)]).isNaN, "pattern \(bits) (\(path) path)")
      } else {
        XCTAssertEqual(value.bitPattern, reference.bitPattern, "pattern \(bits) (\(path) path)")
        XCTAssertEqual(back[Int(bits)], bits, "pattern \(bits) (\(path) path)")
      }
    }
  }

  /// Narrowing rounds to nearest, ties to even, as Swift's `Float16(_:)` does: checked on
  /// midpoints between neighbouring halves, values just off them, and overflow/underflow.
  func testNarrowingRoundsToNearestEven() { checkNarrowingRoundsToNearestEven() }

  private func checkNarrowingRoundsToNearestEven() {
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
