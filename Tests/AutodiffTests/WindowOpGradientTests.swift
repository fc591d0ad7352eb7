import Autodiff
import XCTest
import _TestSupport

/// Numerical gradient checks for the windowed and normalising ops: conv2d, pooling, batch
/// norm and dropout, over the cases their fast paths distinguish (stride 1 and 2, padding 0 and
/// 1, with and without bias, several channels, non-square images).
final class WindowOpGradientTests: XCTestCase {
  func testConv2dAcrossStridesPaddingsAndBias() {
    for (stride, padding, withBias) in [(1, 1, true), (1, 0, false), (2, 1, true), (2, 0, true), (3, 2, false)] {
      let x = randomTensor([2, 3, 5, 7], seed: 1)
      let w = randomTensor([4, 3, 3, 2], seed: 2, std: 0.5)
      let b = randomTensor([4], seed: 3)
      let name = "conv2d stride \(stride) padding \(padding) bias \(withBias)"
      assertGradientsMatch(withBias ? [x, w, b] : [x, w], name) {
        $0[0].conv2d(weight: $0[1], bias: withBias ? $0[2] : nil, stride: stride, padding: padding)
      }
    }
  }

  func testConv2dMatchesTheDefinition() {
    // 1 image, 1 channel 3×3, a 2×2 kernel, padding 1, stride 2 → 2×2 output.
    let x = Tensor(shape: [1, 1, 3, 3], storage: [1, 2, 3, 4, 5, 6, 7, 8, 9])
    let w = Tensor(shape: [1, 1, 2, 2], storage: [1, 10, 100, 1000])
    let y = x.conv2d(weight: w, bias: Tensor(shape: [1], storage: [0.5]), stride: 2, padding: 1)
    XCTAssertEqual(y.shape, [1, 1, 2, 2])
    // (0,0): only x[0,0] under w[1,1]; (0,1): x[0,1] w[1,0] + x[0,2] w[1,1]; …
    let expected: [Float] = [1000.5, 3200.5, 7040.5, 9865.5]  // 1000·1; 100·2 + 1000·3; 10·4 + 1000·7; 5 + 60 + 800 + 9000
    XCTAssertEqual(y.storage, expected)
  }

  func testPoolingGradients() {
    // A permutation of distinct values: no ties, so max-pool's argmax is stable under ±h.
    var generator = SeededGenerator(seed: 4)
    var values = (0..<(2 * 2 * 6 * 5)).map { Float($0) * 0.05 }
    for i in stride(from: values.count - 1, to: 0, by: -1) { values.swapAt(i, generator.nextInt(below: i + 1)) }
    let x = Tensor(shape: [2, 2, 6, 5], storage: values)
    assertGradientsMatch([x], step: 1e-2, "maxPool2d 2×2") { $0[0].maxPool2d(kernelSize: 2) }
    assertGradientsMatch([x], step: 1e-2, "maxPool2d 3, stride 2, padding 1") {
      $0[0].maxPool2d(kernelSize: 3, stride: 2, padding: 1)
    }
    assertGradientsMatch([x], "avgPool2d 2×2") { $0[0].avgPool2d(kernelSize: 2) }
    assertGradientsMatch([x], "avgPool2d 3, stride 1, padding 1") {
      $0[0].avgPool2d(kernelSize: 3, stride: 1, padding: 1)
    }
    assertGradientsMatch([x], "globalAveragePool2d") { $0[0].globalAveragePool2d() }
  }

  func testPoolingValues() {
    let x = Tensor(shape: [1, 1, 2, 4], storage: [1, 5, 2, 0, 3, 4, 8, -1])
    XCTAssertEqual(x.maxPool2d(kernelSize: 2).storage, [5, 8])
    XCTAssertEqual(x.avgPool2d(kernelSize: 2).storage, [3.25, 2.25])
    XCTAssertEqual(x.globalAveragePool2d().storage, [2.75])
    // PyTorch's count_include_pad=True: the corner window of a padded 3×3 average sees 4 of 9.
    let ones = Tensor.ones([1, 1, 2, 2])
    let corner: Float = 4.0 / 9.0
    XCTAssertEqual(ones.avgPool2d(kernelSize: 3, stride: 1, padding: 1).storage, [corner, corner, corner, corner])
  }

  func testBatchNormGradientsInTrainingAndEvaluation() {
    for shape in [[6, 3], [3, 2, 2, 3]] {
      let x = randomTensor(shape, seed: 5, mean: 1, std: 2)
      let weight = randomTensor([shape[1]], seed: 6, mean: 1)
      let bias = randomTensor([shape[1]], seed: 7)
      for training in [true, false] {
        // Fresh running statistics for every call, so the function stays deterministic.
        assertGradientsMatch([x, weight, bias], "batchNorm \(shape) training \(training)") {
          $0[0].batchNorm(
            weight: $0[1], bias: $0[2], runningMean: Tensor(repeating: 0.3, shape: [shape[1]]),
            runningVariance: Tensor(repeating: 1.5, shape: [shape[1]]), training: training)
        }
      }
    }
  }

  func testBatchNormUpdatesRunningStatisticsLikePyTorch() {
    // Channel values 1, 2, 3, 6: mean 3, biased variance 3.5, unbiased 14/3.
    let x = Tensor(shape: [4, 1], storage: [1, 2, 3, 6])
    let (mean, variance) = (Tensor.zeros([1]), Tensor.ones([1]))
    let y = x.batchNorm(
      weight: Tensor.ones([1]), bias: Tensor.zeros([1]), runningMean: mean, runningVariance: variance,
      training: true, momentum: 0.1)
    XCTAssertEqual(mean.storage[0], 0.3, accuracy: 1e-6)
    let expectedVariance: Float = 0.9 + 0.1 * 14 / 3
    XCTAssertEqual(variance.storage[0], expectedVariance, accuracy: 1e-6)
    let firstNormalised: Float = -2 / (3.5 + 1e-5).squareRoot()
    XCTAssertEqual(y.storage[0], firstNormalised, accuracy: 1e-5)
  }

  func testDropoutGradientAndReplay() {
    let x = randomTensor([4, 25], seed: 8)
    assertGradientsMatch([x], "dropout") {
      var generator = SeededGenerator(seed: 9)
      return $0[0].dropout(probability: 0.3, generator: &generator)
    }
    var first = SeededGenerator(seed: 10)
    var second = SeededGenerator(seed: 10)
    let a = Tensor.ones([1000]).dropout(probability: 0.25, generator: &first)
    let b = Tensor.ones([1000]).dropout(probability: 0.25, generator: &second)
    XCTAssertEqual(a.storage, b.storage, "the same generator state replays the same mask")
    let kept = a.storage.filter { $0 != 0 }
    XCTAssertEqual(Double(kept.count) / 1000, 0.75, accuracy: 0.04)
    XCTAssertTrue(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
  }
}
