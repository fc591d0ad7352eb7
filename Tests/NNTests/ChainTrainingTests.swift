import Autodiff
import NN
import XCTest
import _TestSupport

/// Training through the chains follows training through the layers one by one: the methods
/// table's CNN student (conv → batch norm → ReLU → pool, twice), SGD with Nesterov momentum,
/// the same batches.
final class ChainTrainingTests: XCTestCase {
  override func tearDown() { Convolution.fusesBlocks = true }

  private func losses(fused: Bool, steps: Int) -> (losses: [Float], evaluation: [Float]) {
    Convolution.fusesBlocks = fused
    var generator = SeededGenerator(seed: 5)
    let model = Sequential([
      Conv2D(inChannels: 1, outChannels: 16, kernelSize: 3, padding: 1, generator: &generator), BatchNorm2D(16), ReLU(),
      MaxPool2D(kernelSize: 2),
      Conv2D(inChannels: 16, outChannels: 32, kernelSize: 3, padding: 1, generator: &generator), BatchNorm2D(32), ReLU(),
      MaxPool2D(kernelSize: 2), Flatten(),
      Linear(inputFeatures: 32 * 7 * 7, outputFeatures: 64, generator: &generator), ReLU(),
      Linear(inputFeatures: 64, outputFeatures: 10, generator: &generator),
    ])
    let optimizer = SGD(parameters: model.parameters, learningRate: 0.05, momentum: 0.9, nesterov: true)
    var losses: [Float] = []
    for step in 0..<steps {
      let x = randomTensor([32, 1, 28, 28], seed: UInt64(100 + step))
      let labels = (0..<32).map { ($0 * 7 + step) % 10 }
      for p in model.parameters { p.tensor.zeroGrad() }
      let loss = crossEntropy(logits: model(x), labels: labels)
      loss.backward()
      optimizer.step()
      losses.append(loss.storage[0])
    }
    model.eval()
    let evaluation = noGrad { model(randomTensor([16, 1, 28, 28], seed: 99)) }.storage
    return (losses, evaluation)
  }

  func testTrainingThroughChainsFollowsTheLayers() {
    let (fused, layers) = (losses(fused: true, steps: 12), losses(fused: false, steps: 12))
    assertClose(fused.losses, layers.losses, absoluteTolerance: 1e-3, relativeTolerance: 1e-3, "losses")
    let scale = layers.evaluation.map { abs($0) }.max() ?? 1
    assertClose(fused.evaluation, layers.evaluation, absoluteTolerance: 1e-3 * scale, relativeTolerance: 1e-3, "evaluation")
  }
}
