import Autodiff
import Foundation
import NN
import XCTest
import _TestSupport

final class ActivationTests: XCTestCase {
  func testGradients() {
    for layer: any Layer in [ReLU(), GELU(), Tanh(), Sigmoid(), Flatten()] {
      let x = randomTensor([3, 2, 4], seed: 11)
      assertGradientsMatch([x], "\(type(of: layer))") { inputs in layer(inputs[0]) }
    }
  }

  func testValues() {
    let x = Tensor(shape: [4], storage: [-2, -0.5, 0, 3])
    XCTAssertEqual(ReLU()(x).storage, [0, 0, 0, 3])
    assertClose(Sigmoid()(x).storage, x.storage.map { 1 / (1 + exp(-$0)) })
    assertClose(Tanh()(x).storage, x.storage.map { tanh($0) })
    assertClose(GELU()(x).storage, x.storage.map { $0 * 0.5 * (1 + erf($0 / Float(2).squareRoot())) })
    XCTAssertEqual(Flatten()(Tensor.zeros([2, 3, 4, 5])).shape, [2, 60])
  }
}
