import Autodiff
import Checkpoints
import Datasets
import Foundation
import NN
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// `precision: f16-mixed` end to end: the run trains as well as f32 on a digits subset, logs
/// the loss scale and skipped steps, and writes float16 model files that load back.
final class MixedPrecisionTrainingTests: XCTestCase {
  private var folder = ""

  override func setUpWithError() throws {
    folder = NSTemporaryDirectory() + "distill-mixed-tests-\(UUID().uuidString)"
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: folder)
  }

  private let recipeYAML = """
    name: tiny-digits-mixed
    seed: 3
    data: {dataset: digits, validation: 0.25}
    precision: f16-mixed
    teacher:
      model: {mlp: {hidden: [64]}}
      train: {epochs: 3, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}
    student:
      model: {mlp: {hidden: [16]}}
      train: {epochs: 3, batch_size: 16, accumulate: 2, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}
    distillation: {method: kd, temperature: 4, alpha: 0.7}

    """

  func testMixedRunTrainsLogsTheScaleAndWritesFloat16Weights() throws {
    let all = try loadEmbeddedDigits(root: repositoryRoot)
    let subset = all.subset(Array(stride(from: 0, to: all.count, by: 2)).prefix(800).map { $0 })
    let split = subset.stratifiedSplit(validationFraction: 0.25, seed: 3)
    let data = TrainingData(
      train: split.train, validation: split.validation, test: split.validation, validationSplit: "validation",
      testSplit: "validation")
    let recipe = try Recipe.parse(yaml: recipeYAML, file: "recipes/mixed.yaml")
    let summary = try Trainer(
      recipe: recipe, recipeFile: "recipes/mixed.yaml", recipeText: recipeYAML,
      options: TrainingOptions(runFolder: folder)
    ).run(data: data)
    XCTAssertGreaterThan(summary.teacher!.test.accuracy, 0.85)
    XCTAssertGreaterThan(summary.student.test.accuracy, 0.8)

    let lines = try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8)
      .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    XCTAssertEqual(lines.count, 6)
    for line in lines {
      XCTAssertEqual(line["precision"] as? String, "f16-mixed")
      XCTAssertEqual((line["loss_scale"] as? NSNumber)?.doubleValue, 65536, "no overflow, no growth yet")
      XCTAssertEqual(line["skipped_steps"] as? Int, 0)
    }

    for role in ["teacher", "student"] {
      let path = folder + "/\(role).h5"
      let group = try HDF5File.openReadOnly(path).group(role)
      for name in try group.memberNames() {
        XCTAssertEqual(try group.dataset(name).elementType, .float(bytes: 2), "\(role).h5 \(name) is float16")
      }
    }
    // The file loads into a Float model (as `distill eval` does) with the trained binary16 values.
    let loaded = try ModelBuilder(file: "t", keyPath: "student.model").build(
      recipe.student.model, inputShape: [64], classCount: 10, seed: 9)
    try loadModel(group: "student", from: folder + "/student.h5", into: loaded)
    XCTAssertFalse(loaded.parameters.contains { $0.tensor.isHalf })
    for (name, tensor) in loaded.parameters {
      let values = tensor.storage
      XCTAssertEqual(
        HalfPrecision.floats(fromHalfBits: HalfPrecision.halfBits(from: values)), values,
        "\(name) is binary16")
    }
  }

  func testFloat32RecordsLeaveTheScaleNull() {
    var record = EpochRecord(
      model: .student, epoch: 1, epochs: 1, trainLoss: 0.5,
      validation: Evaluation(accuracy: 0.9, loss: 0.3, count: 10), validationSplit: "validation", seconds: 1,
      joules: nil, energySource: nil, samples: 10, precision: "f32", learningRate: 0.1, seed: 1)
    let tail = ", \"ranks\": 1, \"hosts\": 1, \"allreduce_seconds\": null}"
    XCTAssertTrue(record.jsonLine.hasSuffix("\"loss_scale\": null, \"skipped_steps\": null" + tail), record.jsonLine)
    record.lossScale = 32768
    record.skippedSteps = 2
    XCTAssertTrue(record.jsonLine.hasSuffix("\"loss_scale\": 32768.0, \"skipped_steps\": 2" + tail), record.jsonLine)
  }
}
