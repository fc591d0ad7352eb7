import Autodiff
import NN
import XCTest
import _TestSupport

/// The ready-made networks' keys are a contract with PyTorch and with saved checkpoints.
final class BuilderTests: XCTestCase {
  private let bn = ["weight", "bias", "running_mean", "running_var"]

  func testMLPKeys() {
    let plain = Sequential.mlp(inputFeatures: 6, hidden: [5, 4], classes: 3, seed: 1)
    XCTAssertEqual(
      plain.stateDict.map(\.name), ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"])
    XCTAssertEqual(plain.stateDict.map(\.tensor.shape), [[5, 6], [5], [4, 5], [4], [3, 4], [3]])
    let withDropout = Sequential.mlp(
      inputFeatures: 6, hidden: [5, 4], classes: 3, dropout: 0.5, inputDropout: 0.2, seed: 1)
    XCTAssertEqual(
      withDropout.stateDict.map(\.name), ["1.weight", "1.bias", "4.weight", "4.bias", "7.weight", "7.bias"])
    XCTAssertTrue(withDropout.layers[0] is Dropout && withDropout.layers[6] is Dropout)
    // Dropout does not change the weights drawn.
    XCTAssertEqual(withDropout.stateDict.map(\.tensor.storage), plain.stateDict.map(\.tensor.storage))
    XCTAssertEqual(plain.parameterCount, 35 + 24 + 15)
  }

  func testMLPDropoutOnlyInTraining() {
    let model = Sequential.mlp(inputFeatures: 4, hidden: [16], classes: 2, dropout: 0.5, seed: 2)
    let x = randomTensor([3, 4], seed: 3)
    XCTAssertNotEqual(model(x).storage, model(x).storage)
    model.eval()
    XCTAssertEqual(model(x).storage, model(x).storage)
  }

  func testCNNKeysAndShapes() {
    let model = Sequential.cnn(seed: 4)
    XCTAssertEqual(
      model.stateDict.map(\.name),
      ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias"])
    XCTAssertEqual(
      model.stateDict.map(\.tensor.shape),
      [[32, 1, 3, 3], [32], [64, 32, 3, 3], [64], [128, 3136], [128], [10, 128], [10]])
    XCTAssertEqual(model.parameterCount, 320 + 18_496 + 401_536 + 1_290)
    XCTAssertEqual(model(Tensor.zeros([1, 1, 28, 28])).shape, [1, 10])
  }

  func testResNetKeys() {
    let model = Sequential.resnet(blocksPerStage: 1, widths: [4, 8], seed: 5)
    func block(_ i: Int, shortcut: Bool) -> [String] {
      ["\(i).body.0.weight"] + bn.map { "\(i).body.1.\($0)" } + ["\(i).body.3.weight"]
        + bn.map { "\(i).body.4.\($0)" }
        + (shortcut ? ["\(i).shortcut.0.weight"] + bn.map { "\(i).shortcut.1.\($0)" } : [])
    }
    XCTAssertEqual(
      model.stateDict.map(\.name),
      ["0.weight"] + bn.map { "1.\($0)" } + block(3, shortcut: false) + block(4, shortcut: true)
        + ["6.weight", "6.bias"])
    XCTAssertEqual(model(randomTensor([2, 3, 8, 8], seed: 6)).shape, [2, 10])
    // ResNet-20: 3 stages of 3 blocks, ≈0.27 M parameters as in He et al.
    XCTAssertEqual(Sequential.resnet(blocksPerStage: 3, seed: 7).parameterCount, 272_474)
  }
}
