import Autodiff
import Checkpoints
import Energy
import NN
import Foundation
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes
@testable import DistillReports

/// `distill label`: the grade rule, a label of two seeds of a distil → prune → quantize recipe
/// checked against their summaries and metrics, and what is not one recipe's runs.
final class EnergyLabelTests: XCTestCase {
  private let folders = TemporaryFolders(prefix: "distill-label-tests")
  override func tearDown() { folders.removeAll() }

  func testGradesFollowTheLogBandsOfTheReferenceSet() {
    let references = [10.0, 1000]  // t = log(x/10)/log(100)
    XCTAssertEqual(EnergyLabel.grade(9.9, references: references), "A")
    XCTAssertEqual(EnergyLabel.grade(10, references: references), "B")
    XCTAssertEqual(EnergyLabel.grade(25, references: references), "B")  // t 0.199
    XCTAssertEqual(EnergyLabel.grade(26, references: references), "C")  // t 0.207
    XCTAssertEqual(EnergyLabel.grade(100, references: references), "D")  // t 0.5
    XCTAssertEqual(EnergyLabel.grade(1000, references: references), "F")
    XCTAssertEqual(EnergyLabel.grade(1001, references: references), "G")
    XCTAssertEqual(EnergyLabel.grade(5, references: [5]), "?")
  }

  func testALabelOfTwoSeedsAgreesWithTheirRuns() throws {
    let yaml = QuantizationTests.yaml
    var runs: [String] = []
    for seed: UInt64 in [1, 2] {
      let folder = folders.make()
      let recipe = try Recipe.parse(yaml: yaml, file: "r.yaml")
      _ = try Trainer(
        recipe: recipe, recipeFile: "r.yaml", recipeText: yaml,
        options: TrainingOptions(dataPath: repositoryRoot, runFolder: folder, seed: seed)
      ).run()
      runs.append(folder)
    }
    let label = try EnergyLabel(runs: runs, gridIntensity: 100, meter: EstimateMeter())
    let summaries = try runs.map { try withJSON($0 + "/summary.json")[0] }
    let stages = summaries.map { ($0["stages"] as! [[String: Any]]).last! }
    let accuracies = stages.map { ($0["test_accuracy"] as! NSNumber).doubleValue }
    XCTAssertEqual(label.modelFile, "student-quantize.h5")
    XCTAssertEqual(label.seeds, [1, 2])
    XCTAssertEqual(label.accuracy.mean, (accuracies[0] + accuracies[1]) / 2, accuracy: 1e-12)
    XCTAssertNotNil(label.accuracy.std)
    XCTAssertEqual(label.training.map(\.phase), ["teacher", "student", "prune"])
    let teacherJoules = try runs.map { run in
      try withJSON(run + "/metrics.jsonl").filter { $0["model"] as? String == "teacher" }
        .reduce(0.0) { $0 + ($1["joules"] as! NSNumber).doubleValue }
    }
    XCTAssertEqual(label.training[0].kilojoules, (teacherJoules[0] + teacherJoules[1]) / 2 / 1000, accuracy: 1e-12)
    XCTAssertEqual(label.trainingGrams, label.training.reduce(0) { $0 + $1.kilojoules } / 3600 * 100, accuracy: 1e-12)
    XCTAssertEqual(label.precision, "int8 linear layers, float32 others")
    XCTAssertEqual(label.modelHashes.count, 2)
    XCTAssertNotEqual(label.modelHashes[0], label.modelHashes[1], "two seeds, two models")
    XCTAssertEqual(try EnergyLabel.modelHash(runs[0] + "/student-quantize.h5"), label.modelHashes[0], "stable")
    XCTAssertEqual(label.references.count, 4)  // flat digits samples: the four MLPs
    XCTAssertTrue("ABCDEFG".contains(label.grade))
    XCTAssertEqual(label.grade, EnergyLabel.grade(label.gradedMicrojoules, references: label.references.map(\.microjoules)))
    XCTAssertEqual(label.cpu, RunEnvironment.cpuModel())
    XCTAssertEqual(label.software["swift-distill"], distillVersion)
    // The files: every figure in the JSON, the estimate unmistakable on the picture.
    let json = try JSONSerialization.jsonObject(with: Data(label.json.utf8)) as! [String: Any]
    XCTAssertEqual(json["grade"] as? String, String(label.grade))
    XCTAssertEqual(json["energy_source"] as? String, "estimate")
    XCTAssertEqual((json["grid_intensity_g_per_kwh"] as! NSNumber).doubleValue, 100)
    XCTAssertNotNil(json["inference_uj_per_sample_batch1"])
    XCTAssertTrue(label.svg.contains("ESTIMATE"))
    XCTAssertTrue(label.svg.contains("96") || label.svg.contains("%"))
  }

  func testRunsOfTwoRecipesAreRefused() throws {
    let (first, second) = (folders.make(), folders.make())
    for (folder, name) in [(first, "one"), (second, "two")] {
      let yaml = PruningTests.recipeYAML.replacingOccurrences(of: "name: prune-digits", with: "name: \(name)")
      _ = try makeTrainer(yaml, folder: folder).run()
    }
    XCTAssertThrowsError(try EnergyLabel(runs: [first, second], meter: EstimateMeter())) { error in
      XCTAssertTrue("\(error)".contains("one recipe") && "\(error)".contains("one, two"), "\(error)")
    }
    XCTAssertThrowsError(try EnergyLabel(runs: [], meter: EstimateMeter()))
  }
}

extension EnergyLabelTests {
  func testThePrecisionIsReadFromTheModelFile() throws {
    var generator = SeededGenerator(seed: 1)
    let model = Sequential(Conv2D(inChannels: 1, outChannels: 2, kernelSize: 3, generator: &generator), ReLU())
    for (precision, expected) in [(StoragePrecision.f16, "float16"), (.f32, "float32")] {
      let path = folders.make() + ".h5"
      try saveModels([("student", model, nil)], to: path, precision: precision)
      XCTAssertEqual(EnergyLabel.storedPrecision(path), expected)  // its first weight is 0.weight
    }
  }
}
