import Autodiff
import XCTest
import _TestSupport

final class PoolingTests: XCTestCase {
  /// Distinct values (a shuffled 0.1, 0.2, …) so that no window has a tie and no step of the
  /// gradient check changes a window's maximum.
  private func distinctTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    var values = (0..<shape.reduce(1, *)).map { Float($0) * 0.1 - 3 }
    for i in stride(from: values.count - 1, to: 0, by: -1) {
      values.swapAt(i, generator.nextInt(below: i + 1))
    }
    return Tensor(shape: shape, storage: values)
  }

  func testMaxPoolByHand() {
    let x = Tensor(shape: [1, 1, 4, 4], storage: (0..<16).map(Float.init))
    let y = x.maxPool2d(kernelSize: 2)
    XCTAssertEqual(y.shape, [1, 1, 2, 2])
    XCTAssertEqual(y.storage, [5, 7, 13, 15])
    // Overlapping windows, stride 1.
    XCTAssertEqual(x.maxPool2d(kernelSize: 3, stride: 1).storage, [10, 11, 14, 15])
    // Padding reads −∞, not 0: with all values negative the padding never wins.
    let negative = Tensor(shape: [1, 1, 3, 3], storage: (1...9).map { -Float($0) })
    XCTAssertEqual(negative.maxPool2d(kernelSize: 2, stride: 2, padding: 1).storage, [-1, -2, -4, -5])
  }

  func testMaxPoolTiesSendTheGradientToTheFirstMaximum() {
    for kernel in [2, 3] {  // the 2×2 fast path and the general loop
      let x = Tensor(repeating: 1, shape: [1, 1, kernel, kernel], requiresGrad: true)
      x.maxPool2d(kernelSize: kernel).sum().backward()
      XCTAssertEqual(x.grad?.storage, [1] + [Float](repeating: 0, count: kernel * kernel - 1))
    }
  }

  func testMaxPoolPropagatesNaN() {
    for kernel in [2, 3] {
      var values = [Float](repeating: 1, count: kernel * kernel)
      values[kernel] = .nan
      let y = Tensor(shape: [1, 1, kernel, kernel], storage: values).maxPool2d(kernelSize: kernel)
      XCTAssertTrue(y.storage[0].isNaN, "kernel \(kernel)")
    }
  }

  func testMaxPoolGradients() {
    let cases: [(shape: [Int], kernel: Int, stride: Int?, padding: Int)] = [
      ([2, 3, 4, 6], 2, nil, 0),  // the 2×2 fast path
      ([2, 2, 5, 7], 2, nil, 0),  // odd sizes: the last row and column are not pooled
      ([2, 2, 5, 6], 3, 2, 1),
      ([1, 2, 6, 5], 3, 1, 0),
      ([1, 1, 5, 5], 2, 1, 1),
    ]
    for (k, c) in cases.enumerated() {
      let x = distinctTensor(c.shape, seed: UInt64(k))
      // Piecewise linear with every maximum 0.1 clear of the next value: a step of 1e-2 is exact.
      assertGradientsMatch([x], step: 1e-2, "case \(k)") {
        $0[0].maxPool2d(kernelSize: c.kernel, stride: c.stride, padding: c.padding)
      }
    }
  }

  func testAvgPoolByHand() {
    let x = Tensor(shape: [1, 1, 4, 4], storage: (0..<16).map(Float.init))
    XCTAssertEqual(x.avgPool2d(kernelSize: 2).storage, [2.5, 4.5, 10.5, 12.5])
    // count_include_pad: the padding counts as zeros in the divisor 9.
    let ones = Tensor.ones([1, 1, 3, 3])
    assertClose(
      ones.avgPool2d(kernelSize: 3, stride: 1, padding: 1).storage,
      [4, 6, 4, 6, 9, 6, 4, 6, 4].map { $0 / 9 })
  }

  func testAvgPoolGradients() {
    let cases: [(shape: [Int], kernel: Int, stride: Int?, padding: Int)] = [
      ([2, 3, 4, 6], 2, nil, 0),
      ([2, 2, 5, 6], 3, 2, 1),
      ([1, 2, 6, 5], 3, 1, 1),
    ]
    for (k, c) in cases.enumerated() {
      let x = randomTensor(c.shape, seed: UInt64(10 + k))
      assertGradientsMatch([x], step: 1e-2, "case \(k)") {
        $0[0].avgPool2d(kernelSize: c.kernel, stride: c.stride, padding: c.padding)
      }
    }
  }

  func testGlobalAveragePool() {
    let x = Tensor(shape: [2, 2, 1, 3], storage: [1, 2, 3, 4, 5, 6, -1, -2, -3, 0, 0, 3])
    let y = x.globalAveragePool2d()
    XCTAssertEqual(y.shape, [2, 2])
    assertClose(y.storage, [2, 5, -2, 1])
    assertGradientsMatch([randomTensor([2, 3, 4, 5], seed: 20)], step: 1e-2) {
      $0[0].globalAveragePool2d()
    }
  }
}
