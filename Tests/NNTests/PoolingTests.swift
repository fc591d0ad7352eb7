import Autodiff
import NN
import XCTest
import _TestSupport

final class PoolingTests: XCTestCase {
  func testValues() {
    let x = Tensor(shape: [1, 1, 4, 4], storage: (0..<16).map { Float($0) })
    let max = MaxPool2D(kernelSize: 2)
    XCTAssertEqual(max.stride, 2)
    XCTAssertEqual(max(x).shape, [1, 1, 2, 2])
    XCTAssertEqual(max(x).storage, [5, 7, 13, 15])
    XCTAssertEqual(AvgPool2D(kernelSize: 2)(x).storage, [2.5, 4.5, 10.5, 12.5])
    XCTAssertEqual(AvgPool2D(kernelSize: 3, stride: 1)(x).storage, [5, 6, 9, 10])
    XCTAssertEqual(GlobalAvgPool2D()(x).shape, [1, 1])
    XCTAssertEqual(GlobalAvgPool2D()(x).storage, [7.5])
  }

  func testNoKeys() {
    for layer: any Layer in [MaxPool2D(kernelSize: 2), AvgPool2D(kernelSize: 2), GlobalAvgPool2D()] {
      XCTAssertTrue(layer.stateDict.isEmpty)
    }
  }

  func testGradients() {
    let x = randomTensor([2, 3, 6, 6], seed: 1)
    for layer: any Layer in [
      MaxPool2D(kernelSize: 2), MaxPool2D(kernelSize: 3, stride: 2, padding: 1), AvgPool2D(kernelSize: 2),
      AvgPool2D(kernelSize: 3, stride: 2, padding: 1), GlobalAvgPool2D(),
    ] {
      assertGradientsMatch([x], "\(type(of: layer))") { layer($0[0]) }
    }
  }
}
