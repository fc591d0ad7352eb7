import Autodiff
import NN
import XCTest
import _TestSupport

final class DropoutTests: XCTestCase {
  func testTrainingDropsAndScalesAndEvaluationIsIdentity() {
    let dropout = Dropout(probability: 0.25, seed: 1)
    XCTAssertTrue(dropout.stateDict.isEmpty)
    let x = Tensor(repeating: 2, shape: [100, 100])
    let y = dropout(x)
    let dropped = y.storage.filter { $0 == 0 }.count
    XCTAssertEqual(Double(dropped) / 10_000, 0.25, accuracy: 0.015)  // ±3.5σ
    XCTAssertTrue(y.storage.allSatisfy { $0 == 0 || abs($0 - 2 / 0.75) < 1e-6 })
    XCTAssertNotEqual(dropout(x).storage, y.storage, "each call draws a new mask")
    dropout.eval()
    let before = dropout.generator
    XCTAssertEqual(dropout(x).storage, x.storage)
    XCTAssertEqual(dropout.generator, before, "evaluation draws nothing")
  }

  func testSameSeedSameMasks() {
    let x = randomTensor([8, 8], seed: 2)
    XCTAssertEqual(
      Dropout(probability: 0.5, seed: 3)(x).storage, Dropout(probability: 0.5, seed: 3)(x).storage)
    XCTAssertEqual(Dropout(probability: 0, seed: 3)(x).storage, x.storage)
  }

  func testGradient() {
    let dropout = Dropout(probability: 0.4, seed: 4)
    let start = dropout.generator
    assertGradientsMatch([randomTensor([4, 6], seed: 5)]) { inputs in
      dropout.generator = start  // the same mask on every evaluation
      return dropout(inputs[0])
    }
  }
}
