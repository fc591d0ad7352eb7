import Autodiff
import NN
import XCTest
import _TestSupport

final class BatchNormTests: XCTestCase {
  func testKeysAndInitialValues() {
    for bn in [BatchNorm1D(3), BatchNorm2D(3)] as [BatchNorm] {
      XCTAssertEqual(bn.stateDict.map(\.name), ["weight", "bias", "running_mean", "running_var"])
      XCTAssertEqual(bn.parameters.map(\.name), ["weight", "bias"])
      XCTAssertEqual(bn.buffers.map(\.name), ["running_mean", "running_var"])
      XCTAssertEqual(bn.stateDict.map(\.tensor.storage), [[1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1]])
      XCTAssertEqual(bn.momentum, 0.1)
      XCTAssertEqual(bn.epsilon, 1e-5)
      XCTAssertFalse(bn.runningMean.requiresGrad)
    }
  }

  /// Per-channel values of a `[N, C, H, W]` tensor.
  private func channel(_ t: Tensor, _ c: Int) -> [Double] {
    let (n, channels) = (t.shape[0], t.shape[1])
    let plane = t.count / (n * channels)
    return (0..<n).flatMap { b in (0..<plane).map { Double(t.storage[(b * channels + c) * plane + $0]) } }
  }

  func testTrainingNormalisesWithBatchStatisticsAndUpdatesRunningOnes() {
    let bn = BatchNorm2D(2)
    let x = randomTensor([3, 2, 2, 2], seed: 1, mean: 1, std: 2)
    let y = bn(x)
    for c in 0..<2 {
      let out = channel(y, c)
      let input = channel(x, c)
      let count = Double(out.count)
      XCTAssertEqual(out.reduce(0, +) / count, 0, accuracy: 1e-5)
      XCTAssertEqual(out.map { $0 * $0 }.reduce(0, +) / count, 1, accuracy: 1e-3)  // ε = 1e-5
      let mean = input.reduce(0, +) / count
      let unbiased = input.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (count - 1)
      XCTAssertEqual(Double(bn.runningMean.storage[c]), 0.1 * mean, accuracy: 1e-5)
      XCTAssertEqual(Double(bn.runningVariance.storage[c]), 0.9 + 0.1 * unbiased, accuracy: 1e-5)
    }
  }

  func testEvaluationUsesRunningStatisticsAndKeepsThem() {
    let bn = BatchNorm1D(2)
    bn.runningMean.storage = [1, -2]
    bn.runningVariance.storage = [4, 0.25]
    bn.weight.storage = [2, 1]
    bn.bias.storage = [0, 0.5]
    bn.eval()
    let x = Tensor(shape: [2, 2], storage: [3, -2, 1, 0])
    let expected: [Float] = [
      2 * (3 - 1) / (4 + 1e-5 as Float).squareRoot(), 0.5, 0,
      (0 + 2) / (0.25 + 1e-5 as Float).squareRoot() + 0.5,
    ]
    assertClose(bn(x).storage, expected)
    XCTAssertEqual(bn.runningMean.storage, [1, -2])
    XCTAssertEqual(bn.runningVariance.storage, [4, 0.25])
  }

  func testGradients() {
    let bn2 = BatchNorm2D(3)
    bn2.weight.storage = [0.5, 1.5, -1]
    bn2.bias.storage = [0.1, 0, -0.2]
    let x = randomTensor([2, 3, 3, 2], seed: 2)
    assertGradientsMatch([x, bn2.weight, bn2.bias]) { bn2($0[0]) }
    bn2.eval()
    assertGradientsMatch([x, bn2.weight, bn2.bias]) { bn2($0[0]) }
    let bn1 = BatchNorm1D(4)
    assertGradientsMatch([randomTensor([5, 4], seed: 3), bn1.weight, bn1.bias]) { bn1($0[0]) }
  }
}
