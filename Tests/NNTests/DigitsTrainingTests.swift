import Autodiff
import Datasets
import NN
import XCTest
import _TestSupport

/// End-to-end training on real data: the UCI 8×8 digits vendored in `datasets/digits/`.
final class DigitsTrainingTests: XCTestCase {
  func testMLPReachesNinetyFivePercentOnHeldOutDigits() throws {
    let digits = try loadEmbeddedDigits(root: repositoryRoot)
    let (train, test) = digits.stratifiedSplit(validationFraction: 0.25, seed: 7)
    XCTAssertGreaterThan(test.count, 400)

    var generator = SeededGenerator(seed: 1)
    let model = Sequential(
      Linear(inputFeatures: 64, outputFeatures: 64, generator: &generator), ReLU(),
      Linear(inputFeatures: 64, outputFeatures: 10, generator: &generator))
    let optimizer = SGD(parameters: model.parameters, learningRate: 0.1, momentum: 0.9)

    let batchSize = 32
    var order = Array(0..<train.count)
    var shuffler = SplitMixGenerator(seed: 3)
    var firstEpochLoss: Float = 0
    var lastEpochLoss: Float = 0
    for epoch in 0..<15 {
      order.shuffle(using: &shuffler)
      var epochLoss: Float = 0
      for start in stride(from: 0, to: order.count, by: batchSize) {
        let batch = train.subset(Array(order[start..<min(start + batchSize, order.count)]))
        let x = Tensor(shape: [batch.count, 64], storage: batch.features)
        optimizer.zeroGrad()
        let loss = crossEntropy(logits: model(x), labels: batch.labels)
        loss.backward()
        optimizer.step()
        epochLoss += loss.scalar * Float(batch.count)
      }
      epochLoss /= Float(train.count)
      if epoch == 0 { firstEpochLoss = epochLoss }
      lastEpochLoss = epochLoss
    }
    XCTAssertLessThan(lastEpochLoss, firstEpochLoss / 5, "training loss should fall")

    model.eval()
    let logits = noGrad { model(Tensor(shape: [test.count, 64], storage: test.features)) }
    var correct = 0
    for i in 0..<test.count {
      let row = logits.storage[i * 10..<(i + 1) * 10]
      if row.firstIndex(of: row.max()!)! - i * 10 == test.labels[i] { correct += 1 }
    }
    let accuracy = Double(correct) / Double(test.count)
    XCTAssertGreaterThanOrEqual(accuracy, 0.95, "held-out accuracy \(accuracy) on \(test.count) digits")
  }
}
