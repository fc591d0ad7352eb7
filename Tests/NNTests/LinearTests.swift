import Autodiff
import NN
import XCTest
import _TestSupport

final class LinearTests: XCTestCase {
  func testForwardIsAffine() {
    var g = SeededGenerator(seed: 1)
    let layer = Linear(inputFeatures: 2, outputFeatures: 3, generator: &g)
    layer.weight.storage = [1, 2, 3, 4, 5, 6]
    layer.bias!.storage = [0.5, -1, 0]
    let x = Tensor(shape: [2, 2], storage: [1, 0, -1, 2])
    XCTAssertEqual(layer(x).shape, [2, 3])
    XCTAssertEqual(layer(x).storage, [1.5, 2, 5, 3.5, 4, 7])
  }

  func testLeadingAxesAreKept() {
    var g = SeededGenerator(seed: 1)
    let layer = Linear(inputFeatures: 4, outputFeatures: 3, generator: &g)
    let x = randomTensor([2, 5, 4], seed: 2)
    let y = layer(x)
    XCTAssertEqual(y.shape, [2, 5, 3])
    assertClose(y.storage, layer(x.reshaped([10, 4])).storage)
  }

  func testGradients() {
    var g = SeededGenerator(seed: 3)
    let layer = Linear(inputFeatures: 5, outputFeatures: 4, generator: &g)
    let x = randomTensor([3, 5], seed: 4)
    assertGradientsMatch([x, layer.weight, layer.bias!]) { inputs in layer(inputs[0]) }
    let noBias = Linear(inputFeatures: 5, outputFeatures: 2, bias: false, generator: &g)
    assertGradientsMatch([x, noBias.weight]) { inputs in noBias(inputs[0]) }
  }

  func testInitialisationIsPyTorchsUniform() {
    var g = SeededGenerator(seed: 7)
    let layer = Linear(inputFeatures: 100, outputFeatures: 200, generator: &g)
    let bound: Float = 1 / 10
    for t in [layer.weight, layer.bias!] {
      XCTAssertTrue(t.storage.allSatisfy { abs($0) <= bound })
      XCTAssertTrue(t.requiresGrad)
    }
    // U(−k, k): mean 0, variance k²/3; 20 000 draws give the mean to ±0.002 (3σ).
    let w = layer.weight.storage.map(Double.init)
    let mean = w.reduce(0, +) / Double(w.count)
    let variance = w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(w.count)
    XCTAssertEqual(mean, 0, accuracy: 0.002)
    XCTAssertEqual(variance, 0.01 / 3, accuracy: 0.0001)
    XCTAssertGreaterThan(w.max()!, 0.099)
    XCTAssertLessThan(w.min()!, -0.099)
  }

  func testInitialisationDrawsWeightThenBiasFromTheGenerator() {
    var g = SeededGenerator(seed: 9)
    let layer = Linear(inputFeatures: 4, outputFeatures: 3, generator: &g)
    var replay = SeededGenerator(seed: 9)
    let expected = (0..<15).map { _ in replay.nextUniform(in: -0.5, 0.5) }
    XCTAssertEqual(layer.weight.storage + layer.bias!.storage, expected)
    XCTAssertEqual(g, replay)
  }
}
