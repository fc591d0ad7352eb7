import Checkpoints
import Datasets
import Foundation
import NN
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// `checkpoint: {recompute: {segments: N}}` changes memory use and time, never results: a run
/// with it writes the same weights, bit for bit, as the run without it.
final class RecomputeTrainingTests: XCTestCase {
  private var folders: [String] = []

  override func tearDownWithError() throws {
    for folder in folders { try? FileManager.default.removeItem(atPath: folder) }
  }

  /// The digits as `[1, 8, 8]` images, 400 of them, for a CNN teacher with batch norm and an
  /// MLP student with dropout.
  private func imageDigits() throws -> TrainingData {
    let all = try loadEmbeddedDigits(root: repositoryRoot)
    var images = all.subset(Array(stride(from: 0, to: 800, by: 2)))
    images.sampleShape = [1, 8, 8]
    let split = images.stratifiedSplit(validationFraction: 0.25, seed: 5)
    return TrainingData(
      train: split.train, validation: split.validation, test: split.validation, validationSplit: "validation",
      testSplit: "validation")
  }

  /// Runs `yaml` (with `checkpoint` appended when given) and returns the weights files' state
  /// dictionaries as bit patterns, teacher's then student's.
  private func trainedWeights(_ yaml: String, checkpoint: String?) throws -> [String: [UInt32]] {
    let text = yaml + (checkpoint.map { "checkpoint: \($0)\n" } ?? "")
    let folder = NSTemporaryDirectory() + "distill-recompute-tests-\(UUID().uuidString)"
    folders.append(folder)
    let recipe = try Recipe.parse(yaml: text, file: "recompute.yaml")
    XCTAssertEqual(recipe.checkpoint.recompute?.segments, checkpoint == nil ? nil : 2)
    let data = try imageDigits()
    _ = try Trainer(recipe: recipe, recipeFile: "recompute.yaml", options: TrainingOptions(runFolder: folder))
      .run(data: data)
    var weights: [String: [UInt32]] = [:]
    for (role, spec) in [("teacher", recipe.teacher!.model!), ("student", recipe.student.model)] {
      let model = try ModelBuilder(file: "t", keyPath: role).build(
        spec, inputShape: data.sampleShape, classCount: 10, seed: 1)
      try loadModel(group: role, from: folder + "/\(role).h5", into: model)
      for (name, tensor) in model.stateDict { weights["\(role)/\(name)"] = tensor.storage.map(\.bitPattern) }
    }
    return weights
  }

  private func assertSameWeights(
    _ yaml: String, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let plain = try trainedWeights(yaml, checkpoint: nil)
    let recomputed = try trainedWeights(yaml, checkpoint: "{recompute: {segments: 2}}")
    XCTAssertEqual(recomputed.keys.sorted(), plain.keys.sorted(), "same keys", file: file, line: line)
    XCTAssertTrue(plain.keys.contains("teacher/1.running_mean"), file: file, line: line)
    for (key, values) in plain {
      XCTAssertEqual(recomputed[key], values, "\(key) differs", file: file, line: line)
    }
  }

  func testKnowledgeDistillationWritesIdenticalWeights() throws {
    try assertSameWeights(
      """
      name: tiny-recompute
      seed: 4
      data: {dataset: digits, shape: [1, 8, 8]}
      teacher:
        model: {cnn: {channels: [4, 8], hidden: [16], batch_norm: true, dropout: 0.2}}
        train: {epochs: 2, batch_size: 32, optimizer: {sgd: {lr: 0.05, momentum: 0.9}}}
      student:
        model: {mlp: {hidden: [16, 16], dropout: 0.3, input_dropout: 0.1}}
        train: {epochs: 2, batch_size: 16, accumulate: 2, optimizer: {adam: {lr: 0.01}}}
      distillation: {method: kd, temperature: 4, alpha: 0.7}

      """)
  }

  func testHintDistillationWritesIdenticalWeights() throws {
    // The student's layer 3 (a ReLU) falls inside the first of two segments, so the captured
    // activation is cut out of a recomputed segment.
    try assertSameWeights(
      """
      name: tiny-recompute-hint
      seed: 4
      data: {dataset: digits, shape: [1, 8, 8]}
      teacher:
        model: {cnn: {channels: [4], hidden: [16], batch_norm: true}}
        train: {epochs: 1, batch_size: 32, optimizer: {sgd: {lr: 0.05, momentum: 0.9}}}
      student:
        model: {mlp: {hidden: [16, 16], dropout: 0.3}}
        train: {epochs: 2, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}
      distillation: {method: hint, hint: {teacher_layer: 3, student_layer: 3, weight: 0.5}}

      """)
  }

  func testFeatureMethodsCapturingSeveralLayersWriteIdenticalWeights() throws {
    // AT reads the student's two stage outputs (layers 2 and 6 of a CNN with batch norm), FitNets
    // one of them through its regressor, RKD the penultimate layer: three cuts inside the
    // recomputed segments of a combined method.
    try assertSameWeights(
      """
      name: tiny-recompute-features
      seed: 4
      data: {dataset: digits, shape: [1, 8, 8]}
      teacher:
        model: {cnn: {channels: [4, 8], hidden: [16], batch_norm: true}}
        train: {epochs: 1, batch_size: 32, optimizer: {sgd: {lr: 0.05, momentum: 0.9}}}
      student:
        model: {cnn: {channels: [4, 4], hidden: [16], batch_norm: true, dropout: 0.2}}
        train: {epochs: 2, batch_size: 32, optimizer: {sgd: {lr: 0.05, momentum: 0.9}}}
      distillation: {method: [at, fitnets, rkd], at: {weight: 10}, fitnets: {weight: 1}}

      """)
  }
}
