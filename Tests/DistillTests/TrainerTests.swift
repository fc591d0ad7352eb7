import Checkpoints
import Datasets
import Foundation
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// The trainer end to end on a subset of the embedded digits, the run folder it writes, and
/// its errors for data and folders.
final class TrainerTests: XCTestCase {
  private var folder = ""

  override func setUpWithError() throws {
    folder = NSTemporaryDirectory() + "distill-trainer-tests-\(UUID().uuidString)"
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// A small teacher and student, distilled; epochs kept low so a debug build takes seconds.
  let recipeYAML = """
    name: tiny-digits
    seed: 3
    data: {dataset: digits, validation: 0.25}
    teacher:
      model: {mlp: {hidden: [64]}}
      train: {epochs: 4, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}, schedule: cosine}
    student:
      model: {mlp: {hidden: [16]}}
      train: {epochs: 5, batch_size: 16, accumulate: 2, warmup_epochs: 1,
              optimizer: {sgd: {lr: 0.1, momentum: 0.9}}, schedule: cosine}
    distillation: {method: kd, temperature: 4, alpha: 0.7}

    """

  /// 800 of the 1797 digits, split as the recipe says.
  private func digitsSubset(seed: UInt64 = 3) throws -> TrainingData {
    let all = try loadEmbeddedDigits(root: repositoryRoot)
    let subset = all.subset(Array(stride(from: 0, to: all.count, by: 2)).prefix(800).map { $0 })
    let split = subset.stratifiedSplit(validationFraction: 0.25, seed: seed)
    return TrainingData(
      train: split.train, validation: split.validation, test: split.validation, validationSplit: "validation",
      testSplit: "validation")
  }

  private func trainer(force: Bool = false) throws -> Trainer {
    let recipe = try Recipe.parse(yaml: recipeYAML, file: "recipes/tiny.yaml")
    return try Trainer(
      recipe: recipe, recipeFile: "recipes/tiny.yaml", recipeText: recipeYAML,
      options: TrainingOptions(runFolder: folder, force: force))
  }

  func testTrainsTeacherAndStudentAndLogsEveryEpoch() throws {
    var events: [TrainingEvent] = []
    let summary = try trainer().run(data: digitsSubset()) { events.append($0) }

    XCTAssertGreaterThan(summary.teacher!.test.accuracy, 0.85)
    XCTAssertGreaterThan(summary.student.test.accuracy, 0.80)
    XCTAssertEqual(summary.testSplit, "validation")
    XCTAssertEqual(summary.student.test.count, 200)

    let lines = try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8)
      .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    XCTAssertEqual(lines.count, 4 + 5, "one line per epoch of each model")
    for field in [
      "model", "epoch", "train_loss", "val_accuracy", "val_loss", "seconds", "joules", "energy_source",
      "samples",
      "precision", "learning_rate", "seed",
    ] {
      for line in lines { XCTAssertNotNil(line[field], "metrics.jsonl lacks \(field)") }
    }
    XCTAssertEqual(
      lines.map { $0["model"] as? String },
      Array(repeating: "teacher", count: 4) + Array(repeating: "student", count: 5))
    XCTAssertEqual(lines.map { $0["epoch"] as? Int }, [1, 2, 3, 4, 1, 2, 3, 4, 5])
    assertEnergyFields(lines, summary: summary)
    XCTAssertTrue(lines.allSatisfy { $0["samples"] as? Int == 600 && $0["precision"] as? String == "f32" })
    XCTAssertTrue(lines.allSatisfy { $0["seed"] as? Int == 3 })

    // Losses fall and accuracy rises over training.
    for model in ["teacher", "student"] {
      let own = lines.filter { $0["model"] as? String == model }
      let loss = own.map { ($0["train_loss"] as! NSNumber).doubleValue }
      let accuracy = own.map { ($0["val_accuracy"] as! NSNumber).doubleValue }
      XCTAssertLessThan(loss.last!, loss.first! * 0.7, "\(model) training loss \(loss)")
      XCTAssertGreaterThan(accuracy.last!, accuracy.first!, "\(model) accuracy \(accuracy)")
    }
    // Warm-up: the student's first epoch runs at a third of the base rate.
    let studentRates = lines.suffix(5).map { ($0["learning_rate"] as! NSNumber).doubleValue }
    XCTAssertEqual(studentRates[0], 0.1 / 3, accuracy: 1e-12)
    XCTAssertEqual(studentRates[1], 0.1, accuracy: 1e-12)

    // The last line is the reported one; the summary repeats it.
    XCTAssertEqual(
      (lines.last!["val_accuracy"] as! NSNumber).doubleValue, summary.student.test.accuracy, accuracy: 1e-12)
    let summaryJSON =
      try JSONSerialization.jsonObject(
        with: Data(contentsOf: URL(fileURLWithPath: folder + "/summary.json"))) as! [String: Any]
    XCTAssertEqual(
      ((summaryJSON["student"] as! [String: Any])["test_accuracy"] as! NSNumber).doubleValue,
      summary.student.test.accuracy, accuracy: 1e-12)
    XCTAssertEqual(try String(contentsOfFile: folder + "/recipe.yaml", encoding: .utf8), recipeYAML)

    // Events: both models start, every epoch reports, both are tested.
    XCTAssertEqual(events.filter { if case .epoch = $0 { return true } else { return false } }.count, 9)
    XCTAssertEqual(events.filter { if case .tested = $0 { return true } else { return false } }.count, 2)
  }

  func testSavedWeightsReadBackBitForBit() throws {
    let recipe = try Recipe.parse(yaml: recipeYAML, file: "recipes/tiny.yaml")
    let trainer = try Trainer(
      recipe: recipe, recipeFile: "recipes/tiny.yaml", options: TrainingOptions(runFolder: folder))
    let data = try digitsSubset()
    let model = try ModelBuilder(file: "t", keyPath: "student.model").build(
      recipe.student.model, inputShape: [64], classCount: 10, seed: 42)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try trainer.saveWeights(model, role: .student, spec: recipe.student.model, data: data)
    let stored = try StoredModel(path: folder + "/student.h5", group: "student")
    let description = try XCTUnwrap(stored.description)
    XCTAssertEqual(description.role, "student")
    XCTAssertEqual(description.seed, 3)
    XCTAssertEqual(description.recipeHash, recipe.canonicalHash)
    XCTAssertEqual(description.model, .layers(recipe.student.model.expandedLayers(classCount: 10)))
    let read = try ModelBuilder(file: "t", keyPath: "m").build(
      description.model, inputShape: description.inputShape, classCount: description.classes, seed: 7)
    try loadModel(group: "student", from: folder + "/student.h5", into: read)
    XCTAssertEqual(read.stateDict.map(\.name), model.stateDict.map(\.name))
    for ((_, a), (_, b)) in zip(read.stateDict, model.stateDict) {
      XCTAssertEqual(a.shape, b.shape)
      XCTAssertEqual(a.storage.map(\.bitPattern), b.storage.map(\.bitPattern))
    }
  }

  // MARK: The run folder

  func testRefusesToOverwriteARunFolder() throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try "{}\n".write(toFile: folder + "/metrics.jsonl", atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try trainer().run(data: digitsSubset())) {
      XCTAssertEqual($0 as? TrainingError, .runFolderExists(folder: folder, found: ["metrics.jsonl"], resumable: false))
      let message = "\($0)"
      for part in [folder, "--out", "--force"] { XCTAssertTrue(message.contains(part), message) }
    }
    XCTAssertEqual(try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8), "{}\n")
  }

  func testForceReplacesOnlyTheResults() throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try "{}\n".write(toFile: folder + "/metrics.jsonl", atomically: true, encoding: .utf8)
    try "keep me".write(toFile: folder + "/notes.txt", atomically: true, encoding: .utf8)
    var recipe = try Recipe.parse(yaml: recipeYAML, file: "recipes/tiny.yaml")
    recipe.teacher = nil
    recipe.distillation = DistillationSpec(method: "none")
    recipe.student.train.epochs = 1
    recipe.student.train.warmupEpochs = 0
    _ = try Trainer(
      recipe: recipe, recipeFile: "t.yaml", options: TrainingOptions(runFolder: folder, force: true)
    )
    .run(data: digitsSubset())
    let lines = try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.count, 1)
    XCTAssertTrue(lines[0].contains("\"student\""))
    XCTAssertEqual(try String(contentsOfFile: folder + "/notes.txt", encoding: .utf8), "keep me")
  }

  // MARK: Data and unsupported features

  func testMissingMNISTFolderNamesTheFolderAndTheFiles() throws {
    let spec = DataSpec(dataset: .mnist, validation: .count(5000))
    let missing = folder + "/no-mnist-here"
    XCTAssertThrowsError(try TrainingData.load(spec, seed: 1, file: "recipes/m.yaml", dataPath: missing)) {
      guard case .dataUnavailable(let file, let keyPath, let source, let underlying)? = $0 as? TrainingError,
        case .missingFiles(let named, let lookedFor) = underlying
      else { return XCTFail("expected dataUnavailable(missingFiles), got \($0)") }
      XCTAssertEqual(file, "recipes/m.yaml")
      XCTAssertEqual(keyPath, "data.path")
      XCTAssertEqual(source, "--data")
      XCTAssertEqual(named, missing)
      XCTAssertTrue(lookedFor.contains("train-images-idx3-ubyte.gz"))
      XCTAssertTrue("\($0)".contains(missing), "\($0)")
      XCTAssertTrue("\($0)".contains("train-labels-idx1-ubyte"), "\($0)")
    }
  }

  func testMNISTWithoutALocationAsksForData() {
    let spec = DataSpec(dataset: .mnist)
    XCTAssertThrowsError(try TrainingData.load(spec, seed: 1, file: "recipes/m.yaml")) {
      guard case .dataLocationRequired(_, "data.path", "mnist", _)? = $0 as? TrainingError else {
        return XCTFail("expected dataLocationRequired, got \($0)")
      }
      XCTAssertTrue("\($0)".contains("--data"))
    }
  }

  /// Run from another folder, a binary copied elsewhere still finds the embedded digits above
  /// the recipe's folder (`recipes/digits-kd.yaml` → the repository); the list has no repeats.
  func testDigitsAreFoundAboveTheRecipesFolder() throws {
    let roots = TrainingData.defaultDigitsRoots(recipeFile: repositoryRoot + "/recipes/digits-kd.yaml")
    XCTAssertEqual(Set(roots).count, roots.count, "\(roots)")
    XCTAssertTrue(roots.contains(URL(fileURLWithPath: repositoryRoot).standardizedFileURL.path), "\(roots)")
    let spec = DataSpec(dataset: .digits, validation: .fraction(0.2))
    let data = try TrainingData.load(
      spec, seed: 1, file: repositoryRoot + "/recipes/digits-kd.yaml", digitsRoots: ["/nonexistent"] + roots)
    XCTAssertGreaterThan(data.train.count, 1000)
    XCTAssertThrowsError(try TrainingData.load(spec, seed: 1, file: "r.yaml", digitsRoots: [folder])) {
      XCTAssertTrue("\($0)".contains("the default: \(folder)"), "\($0)")
    }
  }

  func testDigitsNeedAHeldOutSplit() {
    let spec = DataSpec(dataset: .digits, validation: .count(0))
    XCTAssertThrowsError(try TrainingData.load(spec, seed: 1, file: "r.yaml", dataPath: repositoryRoot)) {
      guard case .dataMismatch(_, "data.validation", _)? = $0 as? TrainingError else {
        return XCTFail("expected dataMismatch at data.validation, got \($0)")
      }
    }
  }

  func testDigitsSplitIsStratifiedAndSeeded() throws {
    let spec = DataSpec(dataset: .digits, validation: .fraction(0.2), shape: [1, 8, 8])
    let a = try TrainingData.load(spec, seed: 1, file: "r.yaml", dataPath: repositoryRoot)
    let b = try TrainingData.load(spec, seed: 1, file: "r.yaml", dataPath: repositoryRoot)
    let c = try TrainingData.load(spec, seed: 2, file: "r.yaml", dataPath: repositoryRoot)
    XCTAssertEqual(a.train.count + a.validation.count, 1797)
    XCTAssertEqual(a.validation.count, 359)
    XCTAssertEqual(a.sampleShape, [1, 8, 8])
    XCTAssertEqual(a.validation.labels, b.validation.labels)
    XCTAssertEqual(a.validation.features, b.validation.features)
    XCTAssertNotEqual(a.validation.features, c.validation.features)
    XCTAssertEqual(
      a.test.features, a.validation.features, "digits: the held-out split is also the test split")
  }

  func testEpochsOverrideIsRevalidated() throws {
    var recipe = try Recipe.parse(yaml: recipeYAML, file: "recipes/tiny.yaml")
    recipe.student.train.warmupEpochs = 2
    XCTAssertThrowsError(
      try Trainer(recipe: recipe, recipeFile: "recipes/tiny.yaml", options: TrainingOptions(epochs: 2))
    ) {
      XCTAssertEqual(($0 as? RecipeError)?.keyPath, "student.train.warmup_epochs")
    }
  }
}

/// `method: hint` end to end: the regressor from the student's 16 hidden units to the teacher's
/// 64 trains with the student, and the student still learns the labels.
final class HintTrainingTests: XCTestCase {
  func testHintTrainsStudentAndRegressor() throws {
    let yaml = """
      name: tiny-hint
      seed: 2
      data: {dataset: digits, validation: 0.25}
      teacher:
        model: {mlp: {hidden: [64]}}
        train: {epochs: 3, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}
      student:
        model: {mlp: {hidden: [16]}}
        train: {epochs: 4, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}
      distillation: {method: hint, hint: {teacher_layer: 2, student_layer: 2, weight: 0.5}}

      """
    let folder = NSTemporaryDirectory() + "distill-hint-tests-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let all = try loadEmbeddedDigits(root: repositoryRoot)
    let split = all.subset(Array(0..<600)).stratifiedSplit(validationFraction: 0.25, seed: 2)
    let data = TrainingData(
      train: split.train, validation: split.validation, test: split.validation, validationSplit: "validation",
      testSplit: "validation")
    let recipe = try Recipe.parse(yaml: yaml, file: "hint.yaml")
    var losses: [Double] = []
    let summary = try Trainer(
      recipe: recipe, recipeFile: "hint.yaml", options: TrainingOptions(runFolder: folder)
    )
    .run(data: data) { if case .epoch(let r) = $0, r.model == .student { losses.append(r.trainLoss) } }
    XCTAssertEqual(summary.method, "hint")
    XCTAssertGreaterThan(summary.student.test.accuracy, 0.8)
    XCTAssertLessThan(losses.last!, losses.first!)
    // The weights file holds the student alone, without the regressor.
    let saved = try HDF5File.openReadOnly(folder + "/student.h5").group("student").memberNames()
    XCTAssertEqual(saved, ["1.weight", "1.bias", "3.weight", "3.bias"])
  }

  func testCapturingForwardMatchesTheLayers() throws {
    let model = try ModelBuilder(file: "t", keyPath: "m").build(
      .mlp(MLPSpec(hidden: [5])), inputShape: [4], classCount: 3, seed: 1)
    let x = randomTensor([2, 4], seed: 3)
    let (captured, output) = model.forward(x, capturing: [2])
    XCTAssertEqual(captured[2]?.shape, [2, 5])
    XCTAssertTrue(captured[2]!.storage.allSatisfy { $0 >= 0 }, "layer 2 is the ReLU")
    XCTAssertEqual(output.storage, model(x).storage)
    // Several layers in one pass, the same values as the layers applied one by one.
    let (several, again) = model.forward(x, capturing: [0, 2])
    XCTAssertEqual(several[0]?.storage, model.layers[0](x).storage)
    XCTAssertEqual(several[2]?.storage, captured[2]?.storage)
    XCTAssertEqual(again.storage, output.storage)
  }
}
