import Autodiff
import Datasets
import NN
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// `accumulate: k` with micro-batches of B is the same optimizer step as one batch of k·B:
/// micro-batch losses are scaled by their share of the step's samples, so the gradients sum to
/// the big batch's mean. Checked through `ModelTraining.trainEpoch`, with SGD momentum (the
/// second step depends on the first step's buffer) and no dropout.
final class GradientAccumulationTests: XCTestCase {
  /// 70 samples: with B = 8 and k = 4 the steps hold 32, 32 and 6 samples, as with B = 32.
  let data: Dataset = {
    var generator = SeededGenerator(seed: 5)
    let features = (0..<70 * 12).map { _ in generator.nextUniform(in: -1, 1) }
    let labels = (0..<70).map { $0 % 3 }
    return Dataset(sampleShape: [12], features: features, labels: labels, classCount: 3)
  }()

  func testAccumulatedMicroBatchesEqualOneLargeBatch() throws {
    let accumulated = try train(batchSize: 8, accumulate: 4, epochs: 2)
    let large = try train(batchSize: 32, accumulate: 1, epochs: 2)
    XCTAssertEqual(accumulated.steps, 3)
    XCTAssertEqual(large.steps, 3)
    for ((name, a), (_, b)) in zip(accumulated.model.parameters, large.model.parameters) {
      assertClose(a.storage, b.storage, absoluteTolerance: 1e-5, relativeTolerance: 0, name)
    }
    XCTAssertEqual(accumulated.loss, large.loss, accuracy: 1e-5)
    // And the comparison is not vacuous: training moved the weights.
    let untouched = try model()
    XCTAssertGreaterThan(
      zip(untouched.parameters[0].tensor.storage, large.model.parameters[0].tensor.storage)
        .map { abs($0 - $1) }.max()!, 1e-3)
  }

  func testAccumulationWithDistillationLoss() throws {
    // KD as the trainer runs it (`DistillationRun`), the teacher in evaluation mode.
    let spec = ModelSpec.mlp(MLPSpec(hidden: [16]))
    let distillation = try DistillationLoss(
      spec: DistillationSpec(method: "kd", temperature: 3, alpha: 0.7), teacher: (try model(seed: 77), spec),
      student: (try model(), spec), inputShape: [12], trainLabels: [0, 1, 2], labelSmoothing: 0.1)
    let loss: BatchLoss = { distillation.run.loss($0, $1) }
    let accumulated = try train(batchSize: 5, accumulate: 3, epochs: 1, loss: loss)
    let large = try train(batchSize: 15, accumulate: 1, epochs: 1, loss: loss)
    for ((name, a), (_, b)) in zip(accumulated.model.parameters, large.model.parameters) {
      assertClose(a.storage, b.storage, absoluteTolerance: 1e-5, relativeTolerance: 0, name)
    }
  }

  private func model(seed: UInt64 = 11) throws -> Sequential {
    try ModelBuilder(file: "test", keyPath: "student.model").build(
      .mlp(MLPSpec(hidden: [16])), inputShape: [12], classCount: 3, seed: seed)
  }

  private func train(batchSize: Int, accumulate: Int, epochs: Int, loss: BatchLoss? = nil) throws
    -> (model: Sequential, steps: Int, loss: Double)
  {
    let network = try model()
    let spec = TrainSpec(
      epochs: epochs, batchSize: batchSize, accumulate: accumulate,
      optimizer: .sgd(SGDSpec(lr: 0.1, momentum: 0.9, nesterov: true)))
    let training = ModelTraining(
      role: .student, model: network, spec: spec, shuffleSeed: 3, augmentSeed: 4,
      loss: loss ?? labelLoss(labelSmoothing: 0))
    var steps = 0
    var lastLoss = 0.0
    for epoch in 0..<epochs {
      let result = training.trainEpoch(epoch, on: data)
      steps = result.steps
      lastLoss = result.loss
    }
    return (network, steps, lastLoss)
  }
}
