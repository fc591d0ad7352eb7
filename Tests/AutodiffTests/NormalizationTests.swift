import Autodiff
import XCTest
import _TestSupport

final class NormalizationTests: XCTestCase {
  func testTrainingNormalisesWithBatchStatisticsAndUpdatesRunningStatistics() {
    // One channel holding 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3.
    let x = Tensor(shape: [4, 1], storage: [1, 2, 3, 4])
    let weight = Tensor(shape: [1], storage: [2])
    let bias = Tensor(shape: [1], storage: [0.5])
    let runningMean = Tensor(shape: [1], storage: [0])
    let runningVariance = Tensor(shape: [1], storage: [1])
    let y = x.batchNorm(
      weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance,
      training: true, momentum: 0.1)
    let invStd = 1 / (1.25 + 1e-5 as Float).squareRoot()
    assertClose(y.storage, [-1.5, -0.5, 0.5, 1.5].map { 2 * $0 * invStd + 0.5 })
    assertClose(runningMean.storage, [0.25])  // 0.9·0 + 0.1·2.5
    assertClose(runningVariance.storage, [0.9 + 0.1 * 5 / 3])  // unbiased batch variance
    XCTAssertFalse(runningMean.requiresGrad)
  }

  func testEvaluationUsesRunningStatisticsAndLeavesThemAlone() {
    let x = Tensor(shape: [2, 2, 1, 2], storage: [1, 3, 0, 2, 5, 7, -4, 6])
    let weight = Tensor(shape: [2], storage: [2, 1])
    let bias = Tensor(shape: [2], storage: [1, 0])
    let runningMean = Tensor(shape: [2], storage: [1, -2])
    let runningVariance = Tensor(shape: [2], storage: [4, 1])
    let y = x.batchNorm(
      weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance,
      training: false)
    let s0 = 2 / (4 + 1e-5 as Float).squareRoot()
    let s1 = 1 / (1 + 1e-5 as Float).squareRoot()
    let expected: [Float] = [
      (1 - 1) * s0 + 1, (3 - 1) * s0 + 1, (0 + 2) * s1, (2 + 2) * s1,
      (5 - 1) * s0 + 1, (7 - 1) * s0 + 1, (-4 + 2) * s1, (6 + 2) * s1,
    ]
    assertClose(y.storage, expected)
    XCTAssertEqual(runningMean.storage, [1, -2])
    XCTAssertEqual(runningVariance.storage, [4, 1])
  }

  func testTrainingOutputHasZeroMeanAndUnitVariancePerChannel() {
    let x = randomTensor([6, 3, 4, 5], seed: 1, mean: 3, std: 2)
    let y = x.batchNorm(
      weight: .ones([3]), bias: .zeros([3]), runningMean: .zeros([3]), runningVariance: .ones([3]),
      training: true)
    let mean = y.mean(alongAxes: [0, 2, 3])
    let variance = (y * y).mean(alongAxes: [0, 2, 3])
    assertClose(mean.storage, [0, 0, 0], absoluteTolerance: 1e-5)
    assertClose(variance.storage, [1, 1, 1], absoluteTolerance: 1e-3)
  }

  /// The fused op against the same formula composed from elementary ops (the reference the
  /// fused kernel replaces), values and gradients.
  func testMatchesComposedFormula() {
    let epsilon: Float = 1e-5
    let x = randomTensor([4, 3, 2, 3], seed: 2, mean: 1, std: 2)
    let weight = randomTensor([3], seed: 3)
    let bias = randomTensor([3], seed: 4)
    let seed = randomTensor([4, 3, 2, 3], seed: 5)
    for t in [x, weight, bias] { t.requiresGrad = true }

    let fused = x.batchNorm(
      weight: weight, bias: bias, runningMean: .zeros([3]), runningVariance: .ones([3]),
      training: true, epsilon: epsilon)
    fused.backward(seed: seed)
    let fusedGrads = [x, weight, bias].map { $0.grad!.storage }
    for t in [x, weight, bias] { t.zeroGrad() }

    let mean = x.mean(alongAxes: [0, 2, 3], keepingDimensions: true)
    let centered = x - mean
    let variance = (centered * centered).mean(alongAxes: [0, 2, 3], keepingDimensions: true)
    let composed =
      centered / (variance + epsilon).sqrt() * weight.reshaped([1, 3, 1, 1])
      + bias.reshaped([1, 3, 1, 1])
    composed.backward(seed: seed)

    assertClose(fused.storage, composed.storage, absoluteTolerance: 1e-5, relativeTolerance: 1e-4)
    for (k, t) in [x, weight, bias].enumerated() {
      assertClose(fusedGrads[k], t.grad!.storage, absoluteTolerance: 1e-4, relativeTolerance: 1e-3, "input \(k)")
    }
  }

  func testTrainingGradients() {
    for shape in [[5, 3], [3, 2, 3, 2]] {
      let channels = shape[1]
      let x = randomTensor(shape, seed: 6, mean: 0.5, std: 1.5)
      let weight = randomTensor([channels], seed: 7)
      let bias = randomTensor([channels], seed: 8)
      let runningMean = Tensor.zeros([channels])
      let runningVariance = Tensor.ones([channels])
      assertGradientsMatch([x, weight, bias], "shape \(shape)") {
        $0[0].batchNorm(
          weight: $0[1], bias: $0[2], runningMean: runningMean, runningVariance: runningVariance,
          training: true)
      }
    }
  }

  func testEvaluationGradients() {
    let x = randomTensor([3, 2, 3, 2], seed: 9)
    let weight = randomTensor([2], seed: 10)
    let bias = randomTensor([2], seed: 11)
    let runningMean = Tensor(shape: [2], storage: [0.3, -0.2])
    let runningVariance = Tensor(shape: [2], storage: [0.5, 2])
    assertGradientsMatch([x, weight, bias]) {
      $0[0].batchNorm(
        weight: $0[1], bias: $0[2], runningMean: runningMean, runningVariance: runningVariance,
        training: false)
    }
    XCTAssertEqual(runningMean.storage, [0.3, -0.2])
  }
}
