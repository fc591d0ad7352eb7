import Checkpoints
import Foundation
import NN
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// The `prune` stage: its selection against PyTorch's `torch.nn.utils.prune`, Zhu & Gupta's
/// schedule, its recipe checks, and a run with stages: masks held through fine-tuning, model
/// files, `max_accuracy_drop`, and resume bit for bit within a stage.
final class PruningTests: XCTestCase {
  struct Fixture: Decodable {
    struct Values: Decodable {
      var shape: [Int]
      var values: [Float]
    }
    struct Case: Decodable {
      var scope: String
      var amount: Double
      var masks: [Values]
    }
    var weights: [Values]
    var cases: [Case]
  }

  private let folders = TemporaryFolders(prefix: "distill-pruning-tests")
  override func tearDown() { folders.removeAll() }

  func testMasksAreTorchPrunesOnItsFixture() throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/Tests/Fixtures/prune_reference.json"))
    let fixture = try JSONDecoder().decode(Fixture.self, from: data)
    let values = fixture.weights.map(\.values)
    let ones = values.map { [Float](repeating: 1, count: $0.count) }
    XCTAssertEqual(fixture.cases.count, 6)
    for c in fixture.cases {
      let masks = MagnitudePruning.selectMasks(values: values, pruned: ones, target: c.amount, global: c.scope == "global")
      XCTAssertEqual(masks, c.masks.map(\.values), "\(c.scope) \(c.amount)")
    }
    // 15 × 0.3 = 4.5 weights of the second layer: PyTorch rounds half to even, so 4.
    let layer = MagnitudePruning.selectMasks(values: values, pruned: ones, target: 0.3, global: false)
    XCTAssertEqual(layer.map { $0.filter { $0 == 0 }.count }, [9, 4])
  }

  func testMasksOnlyGrowAndPrunedWeightsGoFirst() {
    // The second weight is pruned already though it is now the largest (no longer zero): it
    // stays pruned, and one more, the smallest of the rest, joins it.
    let masks = MagnitudePruning.selectMasks(
      values: [[0.5, 9, -0.1, 0.3]], pruned: [[1, 0, 1, 1]], target: 0.5, global: false)
    XCTAssertEqual(masks, [[1, 0, 0, 1]])
    // Ties go to the earlier position.
    XCTAssertEqual(
      MagnitudePruning.selectMasks(values: [[1, -1, 1, 2]], pruned: [[1, 1, 1, 1]], target: 0.5, global: false),
      [[0, 0, 1, 1]])
  }

  func testZhuGuptaScheduleRisesCubicallyToTheFinalSparsity() {
    let s = { MagnitudePruning.sparsity(step: $0, rampSteps: 100, final: 0.9) }
    XCTAssertEqual(s(0), 0)
    XCTAssertEqual(s(50), 0.9 * (1 - 0.125), accuracy: 1e-12)
    XCTAssertEqual(s(100), 0.9, accuracy: 1e-12)
    XCTAssertEqual(s(250), 0.9, accuracy: 1e-12)
    XCTAssertGreaterThan(s(10) - s(0), s(60) - s(50))  // fastest at the start
  }

  // MARK: Recipes

  static let recipeYAML = """
    name: prune-digits
    seed: 3
    data: {dataset: digits, validation: 0.25}
    teacher:
      model: {mlp: {hidden: [48]}}
      train: {epochs: 2, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}
    student:
      model: {mlp: {hidden: [24], dropout: 0.1}}
      train: {epochs: 2, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}, schedule: cosine}
    distillation: {method: kd}

    """

  func testRecipeChecksStagesBeforeAnything() throws {
    func problem(_ compress: String) -> String {
      do {
        _ = try Recipe.parse(yaml: Self.recipeYAML + "compress:\n" + compress, file: "r.yaml")
        return "no error"
      } catch {
        return "\(error)"
      }
    }
    XCTAssertNoThrow(try Recipe.parse(yaml: Self.recipeYAML + "compress: [prune]\n", file: "r.yaml"))
    let unknown = problem("  - prun: {amount: 0.5}\n")
    XCTAssertTrue(unknown.contains("r.yaml") && unknown.contains("compress[0]") && unknown.contains("prune"), unknown)
    let amount = problem("  - prune: {amount: 1}\n")
    XCTAssertTrue(amount.contains("compress[0].prune.amount") && amount.contains("[0, 1)"), amount)
    XCTAssertTrue(problem("  - prune: {amount: -0.1}\n").contains("[0, 1)"))
    let key = problem("  - prune: {amout: 0.5}\n")
    XCTAssertTrue(key.contains("compress[0].prune.amout") && key.contains("amount"), key)
    let word = problem("  - prune: {scope: everywhere}\n")
    XCTAssertTrue(word.contains("compress[0].prune.scope") && word.contains("layer, global"), word)
    let two = problem("  - {prune: {}, low_rank: {}}\n")
    XCTAssertTrue(two.contains("compress[0]") && two.contains("one stage"), two)
    XCTAssertTrue(problem("  - prune: {epochs: -1}\n").contains("compress[0].prune.epochs"))
    XCTAssertTrue(problem("  - prune: {ramp: 0}\n").contains("(0, 1]"))
  }

  func testRecipesWithoutStagesKeepTheirHash() throws {
    let plain = try Recipe.parse(yaml: Self.recipeYAML, file: "r.yaml")
    let empty = try Recipe.parse(yaml: Self.recipeYAML + "compress: []\n", file: "r.yaml")
    XCTAssertEqual(plain.canonicalHash, empty.canonicalHash)
    XCTAssertFalse(plain.canonicalJSON.contains("compress"))
    let staged = try Recipe.parse(yaml: Self.recipeYAML + "compress: [prune]\n", file: "r.yaml")
    XCTAssertNotEqual(plain.canonicalHash, staged.canonicalHash)
    XCTAssertEqual(staged.changedKeys(from: plain), ["compress"])
  }

  func testAStageOnALayerItCannotHandleFailsBeforeTraining() throws {
    for (layers, expected) in [("[2]", "layer 2 is relu"), ("[9]", "no layer 9")] {
      let folder = folders.make()
      let trainer = try makeTrainer(Self.recipeYAML + "compress: [{prune: {layers: \(layers)}}]\n", folder: folder)
      XCTAssertThrowsError(try trainer.run()) { error in
        let text = "\(error)"
        XCTAssertTrue(text.contains("recipes/resume.yaml: compress[0].prune.layers") && text.contains(expected), text)
      }
      XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/metrics.jsonl"), "nothing trained")
    }
  }

  // MARK: Runs

  func testPrunedStudentKeepsItsZerosMasksAndReportsEachStage() throws {
    let folder = folders.make()
    let yaml =
      Self.recipeYAML
      + "compress:\n  - prune: {amount: 0.8, epochs: 2, frequency: 5}\n"
      + "  - prune: {amount: 0.9, scope: global, schedule: one_shot, epochs: 1, lr_factor: 0.1}\n"
    let summary = try makeTrainer(yaml, folder: folder).run()
    XCTAssertEqual(summary.stages.map(\.label), ["prune", "prune-2"])
    XCTAssertEqual(summary.result, "student-prune-2.h5")
    XCTAssertNil(summary.stopped)
    let run = RunFolder(path: folder)
    for (label, amount) in [("prune", 0.8), ("prune-2", 0.9)] {
      let file = try HDF5File.openReadOnly(run.stageModelPath(label))
      let masks = try file.group(maskGroup)
      let student = try file.group("student")
      var (zeros, total) = (0, 0)
      for name in ["1.weight", "4.weight"] {  // flatten, linear, relu, dropout, linear
        let mask = try masks.dataset(name).readFloats()
        let weight = try student.dataset(name).readFloats()
        XCTAssertEqual(mask.count, weight.count)
        for (m, w) in zip(mask, weight) where m == 0 { XCTAssertEqual(w, 0, "\(label) \(name): a pruned weight moved") }
        zeros += mask.filter { $0 == 0 }.count
        total += mask.count
      }
      XCTAssertEqual(Double(zeros) / Double(total), amount, accuracy: 0.005, label)
      let stage = try XCTUnwrap(summary.stages.first { $0.label == label })
      XCTAssertEqual(stage.figures["sparsity"] ?? -1, Double(zeros) / Double(total), accuracy: 1e-12)
      // The file loads as a plain student (the masks group is not a model).
      let evaluated = try evaluateWeights(file: run.stageModelPath(label))
      XCTAssertEqual(evaluated.evaluation.accuracy, stage.result.test.accuracy, accuracy: 1e-12)
    }
    let lines = try withJSON(folder + "/metrics.jsonl")
    XCTAssertEqual(lines.map { $0["model"] as? String ?? "" }, ["teacher", "teacher", "student", "student", "prune", "prune", "prune-2"])
    XCTAssertEqual(lines.last?["sparsity"] as? Double ?? -1, 0.9, accuracy: 0.005)
    let json = try withJSON(folder + "/summary.json")[0]
    XCTAssertEqual((json["stages"] as? [[String: Any]])?.map { $0["stage"] as? String ?? "" }, ["prune", "prune-2"])
    XCTAssertEqual(json["result"] as? String, "student-prune-2.h5")
    // The stage's training joules are the sum of its lines, as for the teacher and student.
    for stage in summary.stages {
      let sum = lines.filter { $0["model"] as? String == stage.label }.compactMap { $0["joules"] as? Double }.reduce(0, +)
      XCTAssertEqual(stage.result.energy?.trainingJoules ?? -1, sum, accuracy: 1e-9 * max(1, sum))
    }
  }

  func testAStageThatLosesTooMuchStopsAndKeepsThePreviousModel() throws {
    let folder = folders.make()
    let yaml = Self.recipeYAML + "compress: [{prune: {amount: 0.99, schedule: one_shot, epochs: 0, max_accuracy_drop: 1}}]\n"
    XCTAssertThrowsError(try makeTrainer(yaml, folder: folder).run()) { error in
      guard case TrainingError.stageLostAccuracy(_, let keyPath, let stage, let before, let after, let limit, _, let kept, _) = error
      else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(keyPath, "compress[0].prune.max_accuracy_drop")
      XCTAssertEqual(stage, "prune")
      XCTAssertGreaterThan((before - after) * 100, limit)
      XCTAssertEqual(kept, "student.h5")
      XCTAssertTrue("\(error)".contains("recipes/resume.yaml: compress[0].prune.max_accuracy_drop"), "\(error)")
    }
    let json = try withJSON(folder + "/summary.json")[0]
    XCTAssertEqual(json["result"] as? String, "student.h5")
    XCTAssertTrue((json["stopped"] as? String ?? "").contains("max_accuracy_drop"))
    XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/student.h5"))
  }

  static let resumeYAML =
    recipeYAML + "compress:\n  - prune: {amount: 0.7, epochs: 2, frequency: 7}\n  - prune: {amount: 0.85, epochs: 1}\n"

  /// The recipe run straight through once for the whole class.
  static let straight: Result<String, any Error> = Result {
    let folder = NSTemporaryDirectory() + "distill-pruning-straight-\(UUID().uuidString)"
    _ = try makeTrainer(resumeYAML, folder: folder).run()
    return folder
  }

  override class func tearDown() {
    if case .success(let folder) = straight { try? FileManager.default.removeItem(atPath: folder) }
  }

  func testStoppedWithinAndBetweenStagesThenResumedGivesTheUninterruptedResult() throws {
    let reference = try Self.straight.get()
    let folder = folders.make()
    // Mid-epoch in the first stage's gradual ramp, then at the end of its last epoch (the
    // next stage not begun), then to the end.
    XCTAssertNil(
      try runStopping(makeTrainer(Self.resumeYAML, folder: folder)) {
        if case .batch(let p) = $0 { return p.phase == "prune" && p.epoch == 1 && p.batch == 20 } else { return false }
      })
    var (trainer, point) = try resumable(folder)
    XCTAssertEqual([point.state.phase, "\(point.state.epoch)", "\(point.state.batch)"], ["prune", "0", "20"])
    XCTAssertFalse(point.state.stageArrays.isEmpty)
    XCTAssertNotNil(point.state.phaseResults["student"])
    XCTAssertNil(
      try runStopping(trainer, from: point) {
        if case .epoch(let r) = $0 { return r.stage == "prune" && r.epoch == 2 } else { return false }
      })
    (trainer, point) = try resumable(folder)
    XCTAssertEqual([point.state.phase, "\(point.state.epoch)", "\(point.state.runEpoch)"], ["prune", "2", "6"])
    XCTAssertNotNil(try runStopping(trainer, from: point))
    try assertSameResults(reference, folder)
    for name in ["student-prune.h5", "student-prune-2.h5"] {
      XCTAssertEqual(try datasetBits("\(reference)/\(name)"), try datasetBits("\(folder)/\(name)"), name)
    }
  }

  func testAResumedStageRefusesACheckpointWithoutItsMasks() throws {
    let folder = folders.make()
    XCTAssertNil(
      try runStopping(makeTrainer(Self.resumeYAML, folder: folder)) {
        if case .batch(let p) = $0 { return p.phase == "prune" && p.batch == 3 } else { return false }
      })
    var (trainer, point) = try resumable(folder)
    let original = point
    point = ResumePoint(path: point.path, state: { var s = point.state; s.stageArrays = []; return s }(), warnings: [])
    XCTAssertThrowsError(try trainer.resume(from: point)) { error in
      XCTAssertTrue("\(error)".contains("/state/stage/arrays") && "\(error)".contains("lacks the mask"), "\(error)")
    }
    // A mask of a parameter the stage does not prune.
    var extra = original.state
    extra.stageArrays.append(NamedArray(name: "9.weight", shape: [2], values: [1, 0]))
    XCTAssertThrowsError(try trainer.resume(from: ResumePoint(path: point.path, state: extra, warnings: []))) { error in
      XCTAssertTrue("\(error)".contains("/state/stage/arrays") && "\(error)".contains("9.weight"), "\(error)")
    }
    // A phase that names no stage of the recipe.
    var phase = original.state
    phase.phase = "distil-more"
    XCTAssertThrowsError(try trainer.resume(from: ResumePoint(path: point.path, state: phase, warnings: []))) { error in
      XCTAssertTrue(
        "\(error)".contains("/state@phase") && "\(error)".contains("distil-more") && "\(error)".contains("prune, prune-2"),
        "\(error)")
    }
    // A group no component of the training claims, and a dropout stream of the wrong size.
    var stray = original.state
    stray.components["observers"] = ComponentState(words: ["count": [1]])
    XCTAssertThrowsError(try trainer.resume(from: ResumePoint(path: point.path, state: stray, warnings: []))) { error in
      XCTAssertTrue("\(error)".contains("/state/observers") && "\(error)".contains("no part"), "\(error)")
    }
    var short = original.state
    short.dropoutStates = short.dropoutStates.map { ($0.layer, Array($0.state.prefix(2))) }
    XCTAssertThrowsError(try trainer.resume(from: ResumePoint(path: point.path, state: short, warnings: []))) { error in
      XCTAssertTrue("\(error)".contains("/state/rng/dropout/") && "\(error)".contains("expected 4"), "\(error)")
    }
    // None of them changed the folder: the checkpoint still resumes.
    (trainer, point) = try resumable(folder)
    XCTAssertNotNil(try runStopping(trainer, from: point))
  }
}

extension PruningTests {
  /// f16-mixed: the masks reach the Float masters (pruned masters stay exactly 0, so the binary16
  /// weights do), and a stop within the gradual ramp resumes bit for bit.
  func testPruningUnderF16MixedHoldsTheMastersAtZeroAndResumesExactly() throws {
    let yaml = Self.recipeYAML + "precision: f16-mixed\ncompress: [{prune: {amount: 0.6, epochs: 2, frequency: 5}}]\n"
    let reference = folders.make()
    _ = try makeTrainer(yaml, folder: reference).run()
    let folder = folders.make()
    XCTAssertNil(
      try runStopping(makeTrainer(yaml, folder: folder)) {
        if case .batch(let p) = $0 { return p.phase == "prune" && p.epoch == 1 && p.batch == 17 } else { return false }
      })
    let (trainer, point) = try resumable(folder)
    XCTAssertEqual(point.state.phase, "prune")
    let masks = Dictionary(uniqueKeysWithValues: point.state.stageArrays.map { ($0.name, $0.values) })
    for master in point.state.masterWeights where masks[master.name] != nil {
      for (m, w) in zip(masks[master.name]!, master.values) where m == 0 {
        XCTAssertEqual(w, 0, "\(master.name): a pruned master weight is not zero")
      }
    }
    XCTAssertNotNil(try runStopping(trainer, from: point))
    XCTAssertEqual(try datasetBits(reference + "/student-prune.h5"), try datasetBits(folder + "/student-prune.h5"))
    let file = try HDF5File.openReadOnly(folder + "/student-prune.h5").group("student")
    let mask = try HDF5File.openReadOnly(folder + "/student-prune.h5").group(maskGroup).dataset("1.weight").readFloats()
    for (m, w) in zip(mask, try file.dataset("1.weight").readFloats()) where m == 0 { XCTAssertEqual(w, 0) }
  }
}
