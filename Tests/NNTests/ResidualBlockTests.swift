import Autodiff
import NN
import XCTest
import _TestSupport

final class ResidualBlockTests: XCTestCase {
  private let bn = ["weight", "bias", "running_mean", "running_var"]

  func testKeysWithProjection() {
    var g = SeededGenerator(seed: 0)
    let block = ResidualBlock.basic(inChannels: 4, outChannels: 8, stride: 2, generator: &g)
    XCTAssertEqual(
      block.stateDict.map(\.name),
      ["body.0.weight"] + bn.map { "body.1.\($0)" } + ["body.3.weight"] + bn.map { "body.4.\($0)" }
        + ["shortcut.0.weight"] + bn.map { "shortcut.1.\($0)" })
    XCTAssertEqual(block.shortcut?.stateDict.first?.tensor.shape, [8, 4, 1, 1])
  }

  func testKeysWithIdentityShortcut() {
    var g = SeededGenerator(seed: 0)
    let block = ResidualBlock.basic(inChannels: 4, outChannels: 4, generator: &g)
    XCTAssertNil(block.shortcut)
    XCTAssertEqual(
      block.stateDict.map(\.name),
      ["body.0.weight"] + bn.map { "body.1.\($0)" } + ["body.3.weight"] + bn.map { "body.4.\($0)" })
  }

  func testIdentityShortcutAddsTheInput() {
    var g = SeededGenerator(seed: 1)
    let block = ResidualBlock(body: Sequential(Linear(inputFeatures: 3, outputFeatures: 3, generator: &g)))
    let linear = block.body.layers[0] as! Linear
    linear.weight.storage = [Float](repeating: 0, count: 9)
    linear.bias!.storage = [1, -5, 0]
    let x = Tensor(shape: [1, 3], storage: [1, 2, -3])
    XCTAssertEqual(block(x).storage, [2, 0, 0])
  }

  func testModeReachesBothBranches() {
    var g = SeededGenerator(seed: 2)
    let block = ResidualBlock.basic(inChannels: 2, outChannels: 3, stride: 2, generator: &g)
    block.eval()
    XCTAssertFalse(block.body.layers[1].isTraining)
    XCTAssertFalse(block.shortcut!.layers[1].isTraining)
  }

  func testGradients() {
    var g = SeededGenerator(seed: 3)
    let block = ResidualBlock.basic(inChannels: 2, outChannels: 3, stride: 2, generator: &g)
    let x = randomTensor([2, 2, 4, 4], seed: 4)
    assertGradientsMatch([x] + block.parameters.map(\.tensor)) { block($0[0]) }
    block.eval()
    assertGradientsMatch([x] + block.parameters.map(\.tensor)) { block($0[0]) }
  }
}
