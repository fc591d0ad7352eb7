import Autodiff
import XCTest
import _TestSupport

final class DropoutTests: XCTestCase {
  func testKeepsAboutOneMinusPAndScalesKeptElements() {
    var generator = SeededGenerator(seed: 1)
    let p: Float = 0.3
    let y = Tensor.ones([100, 100]).dropout(probability: p, generator: &generator)
    let kept = y.storage.filter { $0 != 0 }
    XCTAssertEqual(Float(kept.count) / 10_000, 1 - p, accuracy: 0.02)
    XCTAssertTrue(kept.allSatisfy { $0 == 1 / (1 - p) })
  }

  func testMaskFollowsTheGeneratorInRowMajorOrder() {
    let x = randomTensor([3, 4], seed: 2)
    var generator = SeededGenerator(seed: 3)
    var replay = generator
    let y = x.dropout(probability: 0.5, generator: &generator)
    for i in 0..<x.count {
      let expected: Float = replay.nextUniform() >= 0.5 ? x.storage[i] * 2 : 0
      XCTAssertEqual(y.storage[i], expected, "element \(i)")
    }
    XCTAssertEqual(generator, replay, "one draw per element")
  }

  func testSameGeneratorStateGivesSameMask() {
    let x = randomTensor([4, 5], seed: 4)
    var first = SeededGenerator(seed: 5)
    _ = first.next()
    var second = first
    let a = x.dropout(probability: 0.4, generator: &first)
    let b = x.dropout(probability: 0.4, generator: &second)
    XCTAssertEqual(a.storage, b.storage)
    let c = x.dropout(probability: 0.4, generator: &first)  // the stream has moved on
    XCTAssertNotEqual(a.storage, c.storage)
  }

  func testZeroProbabilityIsARecordedIdentity() {
    let x = Tensor(shape: [3], storage: [1, -2, 3], requiresGrad: true)
    var generator = SeededGenerator(seed: 6)
    let before = generator
    let y = x.dropout(probability: 0, generator: &generator)
    XCTAssertEqual(y.storage, x.storage)
    XCTAssertEqual(generator, before)
    (y * 2).sum().backward()
    XCTAssertEqual(x.grad?.storage, [2, 2, 2])
  }

  func testGradients() {
    let x = randomTensor([3, 2, 4], seed: 7)
    assertGradientsMatch([x]) {
      var generator = SeededGenerator(seed: 8)  // afresh on each call: the same mask every time
      return $0[0].dropout(probability: 0.3, generator: &generator)
    }
  }
}
