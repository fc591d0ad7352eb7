import Autodiff
import Checkpoints
import Datasets
import Foundation
import NN
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// The run folder's `teacher.h5` / `student.h5`: `distill eval` on the file alone, and the
/// recipe keys that load them back (`teacher.from`, `student.init`), with their errors.
final class ModelFileTrainingTests: XCTestCase {
  private var folder = ""

  override func setUpWithError() throws {
    folder = NSTemporaryDirectory() + "distill-model-file-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: folder)
  }

  static let studentSection = """
    student:
      model: {mlp: {hidden: [16]}}
      train: {epochs: 3, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}, schedule: cosine}
    distillation: {method: kd, temperature: 4, alpha: 0.7}

    """

  /// A small teacher and student on all the embedded digits (a quarter held out, seed 3).
  static let recipeYAML =
    """
    name: tiny-digits
    seed: 3
    data: {dataset: digits, validation: 0.25}
    teacher:
      model: {mlp: {hidden: [64]}}
      train: {epochs: 3, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}, schedule: cosine}

    """ + studentSection

  /// The recipe trained once for the whole class: its run folder and summary.
  static let trained: Result<(folder: String, summary: RunSummary), any Error> = Result {
    let folder = NSTemporaryDirectory() + "distill-model-file-run-\(UUID().uuidString)"
    let recipe = try Recipe.parse(yaml: recipeYAML, file: "recipes/tiny.yaml")
    let summary = try Trainer(
      recipe: recipe, recipeFile: "recipes/tiny.yaml",
      options: TrainingOptions(dataPath: repositoryRoot, runFolder: folder)
    ).run()
    return (folder, summary)
  }

  override class func tearDown() {
    if case .success(let run) = trained { try? FileManager.default.removeItem(atPath: run.folder) }
  }

  /// Runs `yaml` (named `recipes/from.yaml`) into a fresh folder on all the digits.
  private func run(_ yaml: String, folder name: String = "run") throws -> (String, RunSummary) {
    let recipe = try Recipe.parse(yaml: yaml, file: "recipes/from.yaml")
    let out = folder + "/" + name
    let summary = try Trainer(
      recipe: recipe, recipeFile: "recipes/from.yaml",
      options: TrainingOptions(dataPath: repositoryRoot, runFolder: out)
    ).run()
    return (out, summary)
  }

  /// A recipe whose teacher section is `teacher` (one line, indented by two spaces).
  private func recipe(teacher: String, data: String = "{dataset: digits, validation: 0.25}") -> String {
    "name: from-file\nseed: 3\ndata: \(data)\nteacher: \(teacher)\n" + Self.studentSection
  }

  /// The model in `group` of `path`, as its own description builds it.
  private func stored(_ path: String, _ group: String) throws -> Sequential {
    let description = try XCTUnwrap(try StoredModel(path: path, group: group).description)
    let model = try ModelBuilder(file: path, keyPath: "model").build(
      description.model, inputShape: description.inputShape, classCount: description.classes, seed: 0)
    try loadModel(group: group, from: path, into: model)
    return model
  }

  private func assertSameWeights(
    _ a: Sequential, _ b: Sequential, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(a.stateDict.map(\.name), b.stateDict.map(\.name), file: file, line: line)
    for ((name, x), (_, y)) in zip(a.stateDict, b.stateDict) {
      XCTAssertEqual(x.storage.map(\.bitPattern), y.storage.map(\.bitPattern), name, file: file, line: line)
    }
  }

  // MARK: distill eval

  func testEvalOfTheFileAloneGivesTheSummaryFigures() throws {
    let (runFolder, summary) = try Self.trained.get()
    let student = try evaluateWeights(file: runFolder + "/student.h5")
    XCTAssertEqual(student.group, "student")
    XCTAssertEqual(student.evaluation, summary.student.test)
    XCTAssertEqual(student.split, "validation")
    XCTAssertEqual(student.dataset, "digits")
    XCTAssertEqual(student.seed, 3)
    XCTAssertNil(student.recipeMatches)
    XCTAssertEqual(student.evaluation.count, 447)
    let teacher = try evaluateWeights(file: runFolder + "/teacher.h5")
    XCTAssertEqual(teacher.group, "teacher")
    XCTAssertEqual(teacher.evaluation, summary.teacher?.test)

    // --recipe gives the same figures and recognises its own run.
    let recipe = try Recipe.parse(yaml: Self.recipeYAML, file: "recipes/tiny.yaml")
    let withRecipe = try evaluateWeights(
      file: runFolder + "/student.h5", recipe: recipe, recipeFile: "recipes/tiny.yaml")
    XCTAssertEqual(withRecipe.evaluation, summary.student.test)
    XCTAssertEqual(withRecipe.recipeMatches, true)
  }

  func testArchitectureAttributeIsCanonicalJSON() throws {
    let (runFolder, _) = try Self.trained.get()
    let text = try XCTUnwrap(try readArchitecture(group: "student", from: runFolder + "/student.h5"))
    let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    XCTAssertEqual(json["format"] as? String, "swift-distill-model-1")
    XCTAssertEqual(json["role"] as? String, "student")
    XCTAssertEqual(json["input_shape"] as? [Int], [64])
    XCTAssertEqual(json["classes"] as? Int, 10)
    XCTAssertEqual(json["seed"] as? Int, 3)
    XCTAssertEqual(json["recipe"] as? String, "tiny-digits")
    let data = try XCTUnwrap(json["data"] as? [String: Any])
    XCTAssertEqual(data["dataset"] as? String, "digits")
    XCTAssertEqual(data["validation"] as? Double, 0.25)
    XCTAssertEqual(data["path"] as? String, URL(fileURLWithPath: repositoryRoot).standardizedFileURL.path)
    let layers = try XCTUnwrap((json["model"] as? [String: Any])?["layers"] as? [[String: Any]])
    XCTAssertEqual(layers.map { $0.keys.first! }, ["flatten", "linear", "relu", "linear"])
    XCTAssertTrue(text.hasPrefix("{\"classes\":10,\"data\":{"), "canonical: sorted keys, no spaces: \(text)")
  }

  func testEvalOfAFileWithTwoModelsNeedsTheGroup() throws {
    let (runFolder, summary) = try Self.trained.get()
    let teacher = try stored(runFolder + "/teacher.h5", "teacher")
    let student = try stored(runFolder + "/student.h5", "student")
    let both = folder + "/both.h5"
    try saveModels(
      [
        ("teacher", teacher, try readArchitecture(group: "teacher", from: runFolder + "/teacher.h5")),
        ("student", student, try readArchitecture(group: "student", from: runFolder + "/student.h5")),
      ], to: both)
    XCTAssertThrowsError(try evaluateWeights(file: both)) {
      XCTAssertTrue("\($0)".contains("--group teacher|student"), "\($0)")
    }
    XCTAssertEqual(try evaluateWeights(file: both, group: "teacher").evaluation, summary.teacher?.test)
    XCTAssertEqual(try evaluateWeights(file: both, group: "/student").evaluation, summary.student.test)
    XCTAssertThrowsError(try evaluateWeights(file: both, group: "ghost")) {
      XCTAssertTrue("\($0)".contains("no group /ghost"), "\($0)")
    }
  }

  func testEvalOfAFileWithoutArchitectureNeedsARecipe() throws {
    let (runFolder, summary) = try Self.trained.get()
    let bare = folder + "/bare.h5"
    try saveModels([("student", try stored(runFolder + "/student.h5", "student"), nil)], to: bare)
    XCTAssertThrowsError(try evaluateWeights(file: bare)) {
      XCTAssertTrue("\($0)".contains("--recipe"), "\($0)")
    }
    let recipe = try Recipe.parse(yaml: Self.recipeYAML, file: "recipes/tiny.yaml")
    let result = try evaluateWeights(
      file: bare, recipe: recipe, recipeFile: "recipes/tiny.yaml", dataPath: repositoryRoot)
    XCTAssertEqual(result.evaluation, summary.student.test, "the recipe's seed draws the same split")
  }

  func testEvalOfAMissingFileNamesIt() {
    XCTAssertThrowsError(try evaluateWeights(file: folder + "/nothing.h5")) {
      XCTAssertEqual($0 as? CheckpointError, .fileNotFound(path: folder + "/nothing.h5"))
    }
  }

  // MARK: teacher.from

  func testTeacherFromOurFileSkipsTrainingAndGivesTheSameStudent() throws {
    let (runFolder, trained) = try Self.trained.get()
    let (out, summary) = try run(recipe(teacher: "{from: \(runFolder)/teacher.h5}"))
    // The teacher was tested, not trained.
    XCTAssertEqual(summary.teacher?.epochs, 0)
    XCTAssertEqual(summary.teacher?.test, trained.teacher?.test)
    let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.count, 3)
    XCTAssertFalse(lines.contains { $0.contains("\"teacher\"") })
    // The same student, bit for bit, as the run that trained this teacher.
    XCTAssertEqual(summary.student.test, trained.student.test)
    assertSameWeights(try stored(out + "/student.h5", "student"), try stored(runFolder + "/student.h5", "student"))
    // The run folder holds a copy of the teacher.
    assertSameWeights(try stored(out + "/teacher.h5", "teacher"), try stored(runFolder + "/teacher.h5", "teacher"))

    // The same with the architecture given in the recipe.
    let (out2, summary2) = try run(
      recipe(teacher: "{from: \(runFolder)/teacher.h5, model: {mlp: {hidden: [64]}}}"), folder: "with-model")
    XCTAssertEqual(summary2.student.test, trained.student.test)
    assertSameWeights(
      try stored(out2 + "/student.h5", "student"), try stored(runFolder + "/student.h5", "student"))
  }

  func testTeacherFromAMissingFileNamesTheKey() throws {
    let missing = folder + "/no-teacher.h5"
    XCTAssertThrowsError(try run(recipe(teacher: "{from: \(missing)}"))) {
      XCTAssertEqual(
        $0 as? TrainingError,
        .cannotLoadWeights(
          file: "recipes/from.yaml", keyPath: "teacher.from", underlying: .fileNotFound(path: missing)))
      XCTAssertTrue("\($0)".hasPrefix("recipes/from.yaml: teacher.from: \(missing): no such file"), "\($0)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/run"), "nothing is written")
  }

  func testTeacherFromANonHDF5FileNamesTheKey() throws {
    let text = folder + "/teacher.h5"
    try "not hdf5".write(toFile: text, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try run(recipe(teacher: "{from: \(text)}"))) {
      XCTAssertEqual(
        $0 as? TrainingError,
        .cannotLoadWeights(file: "recipes/from.yaml", keyPath: "teacher.from", underlying: .notHDF5(path: text)))
    }
  }

  func testTeacherFromAnotherArchitectureNamesTheKeyAndTheTensor() throws {
    let (runFolder, _) = try Self.trained.get()
    let file = runFolder + "/teacher.h5"
    XCTAssertThrowsError(try run(recipe(teacher: "{from: \(file), model: {mlp: {hidden: [32]}}}"))) {
      guard case .cannotLoadWeights("recipes/from.yaml", "teacher.from", let underlying)? = $0 as? TrainingError
      else { return XCTFail("expected cannotLoadWeights at teacher.from, got \($0)") }
      XCTAssertEqual(
        underlying, .wrongShape(path: file, object: "/teacher/1.weight", expected: [32, 64], found: [64, 64]))
      XCTAssertTrue("\($0)".contains("recipes/from.yaml: teacher.from: \(file): /teacher/1.weight"), "\($0)")
    }
    let longer = "[flatten, {linear: {out: 64}}, relu, {linear: {out: 10}}, relu, {linear: {out: 10}}]"
    XCTAssertThrowsError(try run(recipe(teacher: "{from: \(file), model: {layers: \(longer)}}"))) {
      guard case .cannotLoadWeights(_, "teacher.from", .missingKey(file, "/teacher", "5.weight", _))? =
        $0 as? TrainingError
      else { return XCTFail("expected a missing key at teacher.from, got \($0)") }
    }
    // The file's own architecture does not fit images of another shape.
    XCTAssertThrowsError(
      try run(recipe(teacher: "{from: \(file)}", data: "{dataset: digits, validation: 0.25, shape: [1, 8, 8]}"))
    ) {
      guard case .weightsMismatch("recipes/from.yaml", "teacher.from", file, let reason)? = $0 as? TrainingError
      else { return XCTFail("expected weightsMismatch at teacher.from, got \($0)") }
      XCTAssertTrue(reason.contains("[64]") && reason.contains("[1, 8, 8]"), reason)
    }
  }

  /// What h5py writes from a PyTorch `state_dict`: float16 datasets in a `/teacher` group, the
  /// BatchNorm counter as int64, no architecture attribute.
  func testTeacherFromAnH5pyFileNeedsTheModelAndLoadsFloat16() throws {
    let model: ModelSpec = .layers([
      .flatten, .linear(LinearSpec(out: 24)), .batchNorm(BatchNormSpec()), .relu, .linear(LinearSpec(out: 10)),
    ])
    let reference = try ModelBuilder(file: "t", keyPath: "m").build(
      model, inputShape: [64], classCount: 10, seed: 5)
    // Values exactly representable in float16, with non-trivial running statistics.
    var generator = SeededGenerator(seed: 9)
    var state: [String: Tensor] = [:]
    for (name, tensor) in reference.stateDict {
      var values = tensor.storage
      if name.hasSuffix("running_mean") { values = values.map { _ in Float.random(in: -0.5...0.5, using: &generator) } }
      if name.hasSuffix("running_var") { values = values.map { _ in Float.random(in: 0.5...2, using: &generator) } }
      state[name] = Tensor(shape: tensor.shape, storage: values.map { Float(Float16($0)) })
    }
    try reference.load(stateDict: state)
    let file = folder + "/torch-teacher.h5"
    try HDF5File.writeAtomically(to: file) { (f: HDF5File) throws(CheckpointError) in
      let group = try f.createGroup("teacher")
      for (name, tensor) in reference.stateDict {
        try group.writeDataset(name, floats: tensor.storage, shape: tensor.shape, precision: .f16)
      }
      try group.writeDataset("2.num_batches_tracked", integers: [120], shape: [])
    }

    XCTAssertThrowsError(try run(recipe(teacher: "{from: \(file)}"))) {
      guard case .weightsMismatch("recipes/from.yaml", "teacher.from", file, let reason)? = $0 as? TrainingError
      else { return XCTFail("expected weightsMismatch at teacher.from, got \($0)") }
      XCTAssertTrue(reason.contains("teacher.model"), reason)
      XCTAssertTrue(reason.contains("architecture"), reason)
    }

    let layers = "[flatten, {linear: {out: 24}}, batch_norm, relu, {linear: {out: 10}}]"
    let (out, summary) = try run(recipe(teacher: "{from: \(file), model: {layers: \(layers)}}"))
    let data = try TrainingData.load(
      DataSpec(dataset: .digits, validation: .fraction(0.25)), seed: 3, file: "t", dataPath: repositoryRoot)
    XCTAssertEqual(summary.teacher?.test, evaluate(reference, on: data.test))
    assertSameWeights(try stored(out + "/teacher.h5", "teacher"), reference)
  }

  // MARK: student.init

  func testStudentInitLoadsTheWeights() throws {
    let (runFolder, trained) = try Self.trained.get()
    let yaml = """
      name: from-init
      seed: 3
      data: {dataset: digits, validation: 0.25}
      student:
        model: {mlp: {hidden: [16]}}
        init: \(runFolder)/student.h5
        train: {epochs: 1, batch_size: 32, optimizer: {sgd: {lr: 1e-12}}}

      """
    let (out, summary) = try run(yaml)
    // A step of 1e-12 leaves the loaded weights where they were.
    let before = try stored(runFolder + "/student.h5", "student").stateDict
    let after = try stored(out + "/student.h5", "student").stateDict
    for ((name, a), (_, b)) in zip(before, after) {
      let largest = zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0
      XCTAssertLessThanOrEqual(largest, 1e-6, name)
    }
    XCTAssertEqual(summary.student.test.accuracy, trained.student.test.accuracy, accuracy: 1e-9)

    let wrong = yaml.replacingOccurrences(of: "hidden: [16]", with: "hidden: [8]")
    XCTAssertThrowsError(try run(wrong, folder: "wrong")) {
      guard case .cannotLoadWeights("recipes/from.yaml", "student.init", .wrongShape)? = $0 as? TrainingError
      else { return XCTFail("expected cannotLoadWeights(wrongShape) at student.init, got \($0)") }
    }
  }
}
