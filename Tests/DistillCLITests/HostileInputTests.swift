import Autodiff
import Checkpoints
import Datasets
import Foundation
import XCTest
import _TestSupport

/// Bad input fed to the real `distill` process (the release build in CI): each must end with
/// an exit status of 1–127, a message naming the file and the key or dataset, and no good data
/// lost. One test per defect class of the reliability issue.
final class HostileInputTests: XCTestCase {
  private var folder = ""

  override func setUpWithError() throws {
    folder = NSTemporaryDirectory() + "distill-hostile-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: folder)
  }

  // MARK: Helpers

  /// Runs `distill arguments…` in the test's folder.
  private func distill(_ arguments: [String], environment: [String: String] = [:]) throws -> (
    status: Int32, output: String, errors: String
  ) {
    try DistillProcess.run(arguments, in: folder, environment: environment)
  }

  /// Asserts a refusal: exit status 1–127 (not a signal, not 0) and every `needle` in the
  /// error output, which stays short.
  private func assertRefused(
    _ result: (status: Int32, output: String, errors: String), mentioning needles: [String],
    file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertTrue((1...127).contains(result.status), "exit status \(result.status): \(result.errors)", file: file, line: line)
    for needle in needles {
      XCTAssertTrue(result.errors.contains(needle), "'\(needle)' not in: \(result.errors)", file: file, line: line)
    }
    XCTAssertLessThan(result.errors.utf8.count, 4000, "an error message of \(result.errors.utf8.count) bytes", file: file, line: line)
  }

  private func write(_ text: String, to name: String) throws {
    try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
  }

  /// An IDX file (magic, big-endian dimensions, bytes), uncompressed.
  private func writeIDX(_ path: String, magic: UInt32, dimensions: [Int], bytes: [UInt8]) throws {
    var data = [UInt8]()
    for value in [magic] + dimensions.map(UInt32.init) {
      data += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
    try Data(data + bytes).write(to: URL(fileURLWithPath: path))
  }

  /// An MNIST-format folder: `train` images of `side`×`side`, `t10k` of `testSide`×`testSide`.
  private func writeMNISTFolder(_ name: String, train: Int = 40, side: Int = 8, test: Int = 10, testSide: Int = 8)
    throws -> String
  {
    let path = folder + "/" + name
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    var generator = SeededGenerator(seed: 3)
    for (prefix, count, s) in [("train", train, side), ("t10k", test, testSide)] {
      let pixels = (0..<(count * s * s)).map { _ in UInt8.random(in: 0...255, using: &generator) }
      try writeIDX(path + "/\(prefix)-images-idx3-ubyte", magic: 0x803, dimensions: [count, s, s], bytes: pixels)
      try writeIDX(
        path + "/\(prefix)-labels-idx1-ubyte", magic: 0x801, dimensions: [count],
        bytes: (0..<count).map { UInt8($0 % 10) })
    }
    return path
  }

  private func mnistRecipe(validation: String = "10", extra: String = "") -> String {
    """
    name: hostile-mnist
    seed: 1
    data: {dataset: mnist, validation: \(validation)}
    student:
      model: {mlp: {hidden: [8]}}
      train: {epochs: 1, batch_size: 16, optimizer: {sgd: {lr: 0.1}}}
    \(extra)
    """
  }

  /// A tiny digits recipe; `student` replaces the student's section.
  private func digitsRecipe(name: String = "hostile-digits", epochs: Int = 2, student: String? = nil, teacher: Bool = true)
    -> String
  {
    """
    name: \(name)
    seed: 1
    data: {dataset: digits, validation: 0.25}
    \(teacher ? """
    teacher:
      model: {mlp: {hidden: [32]}}
      train: {epochs: \(epochs), batch_size: 64, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}
    """ : "")
    student:
    \(student ?? "  model: {mlp: {hidden: [16]}}\n  train: {epochs: \(epochs), batch_size: 64, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}")
    distillation: {method: \(teacher ? "kd" : "none")}
    checkpoint: {keep_last: 2}

    """
  }

  private var common: [String] { ["--data", repositoryRoot, "--threads", "1", "--quiet"] }

  private func files(in path: String) -> Set<String> {
    Set((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
  }

  // MARK: Data

  func testTestImagesOfAnotherShapeOrNoneAreRefusedBeforeTraining() throws {
    for (name, testSide, testCount, needles) in [
      ("small", 4, 10, ["t10k-images-idx3-ubyte", "4×4", "8×8", "data.path"]),
      ("large", 16, 10, ["t10k-images-idx3-ubyte", "16×16", "8×8", "data.path"]),
      ("empty", 8, 0, ["test split has no samples", "data.path"]),
    ] {
      let data = try writeMNISTFolder(name, test: testCount, testSide: testSide)
      try write(mnistRecipe(), to: "mnist.yaml")
      let result = try distill(["train", "mnist.yaml", "--data", data, "--out", "run-\(name)", "--quiet"])
      assertRefused(result, mentioning: ["mnist.yaml"] + needles)
      XCTAssertFalse(
        FileManager.default.fileExists(atPath: folder + "/run-\(name)"), "a refused run leaves no folder")
    }
  }

  func testBenchRefusesUnknownPrecisionsConvolutionsAndPoolSizesBeforeMeasuring() throws {
    assertRefused(
      try distill(["bench", "--precision", "f32,fp8"]), mentioning: ["--precision", "fp8", "bf16-mixed"])
    assertRefused(
      try distill(["bench", "--convolution", "winograd"]), mentioning: ["--convolution", "winograd", "onednn-layers"])
    assertRefused(try distill(["bench", "--buffer-pool-mb=-1"]), mentioning: ["--buffer-pool-mb", "-1"])
  }

  func testLabelRefusesWhatIsNotOneRecipesRunsBeforeMeasuring() throws {
    assertRefused(try distill(["label"]), mentioning: ["run folders of one recipe"])
    assertRefused(try distill(["label", "nowhere"]), mentioning: ["nowhere", "no such file or folder"])
    assertRefused(
      try distill(["label", ".", "--grid-intensity=-5"]), mentioning: ["--grid-intensity", "-5"])
    try write("name: x\n", to: "recipe.yaml")
    assertRefused(try distill(["label", folder]), mentioning: [folder, "has not finished", "distill resume"])
  }

  func testHoldingOutEveryTrainingSampleIsRefused() throws {
    let data = try writeMNISTFolder("data", train: 20)
    for validation in ["20", "25"] {
      try write(mnistRecipe(validation: validation), to: "mnist.yaml")
      let result = try distill(["train", "mnist.yaml", "--data", data, "--out", "run", "--quiet"])
      assertRefused(result, mentioning: ["mnist.yaml", "data.validation", "none to train on"])
    }
    try write(digitsRecipe().replacingOccurrences(of: "validation: 0.25", with: "validation: 2000"), to: "d.yaml")
    assertRefused(
      try distill(["train", "d.yaml", "--out", "run"] + common), mentioning: ["d.yaml", "data.validation"])
  }

  func testAGzipBombOrBrokenGzipNamesTheFileWithoutALineZero() throws {
    let data = try writeMNISTFolder("data")
    let images = data + "/train-images-idx3-ubyte"
    try writeGzipFile(path: images + ".gz", bytes: Array(repeating: 7, count: 100))
    try FileManager.default.removeItem(atPath: images)
    // Cut the gzip stream in the middle.
    var bytes = try Data(contentsOf: URL(fileURLWithPath: images + ".gz"))
    bytes = bytes.prefix(bytes.count / 2)
    try bytes.write(to: URL(fileURLWithPath: images + ".gz"))
    try write(mnistRecipe(), to: "mnist.yaml")
    let result = try distill(["train", "mnist.yaml", "--data", data, "--out", "run", "--quiet"])
    assertRefused(result, mentioning: ["train-images-idx3-ubyte.gz", "ends early"])
    XCTAssertFalse(result.errors.contains(".gz:0:"), result.errors)
  }

  // MARK: Run folders

  func testASecondProcessOnTheSameRunFolderIsRefusedWithTheHoldersPIDAndADeadHolderNeverBlocks() throws {
    try write(
      digitsRecipe(
        epochs: 400,
        student: "  model: {mlp: {hidden: [16]}}\n  train: {epochs: 2, batch_size: 64, optimizer: {sgd: {lr: 0.05}}}"),
      to: "long.yaml")
    let first = try DistillProcess(["train", "long.yaml", "--out", "run"] + common, in: folder)
    let lock = folder + "/run/.lock"
    let deadline = Date(timeIntervalSinceNow: 60)
    while Date() < deadline
      && !(FileManager.default.fileExists(atPath: folder + "/run/latest.h5")
        && (try? String(contentsOfFile: lock, encoding: .utf8))?.contains("\(first.process.processIdentifier)") == true)
    {
      usleep(20_000)
    }
    XCTAssertTrue(first.isRunning, first.standardError)
    let pid = "PID \(first.process.processIdentifier)"
    assertRefused(
      try distill(["train", "long.yaml", "--out", "run", "--force"] + common), mentioning: ["run: ", pid])
    assertRefused(try distill(["resume", "run", "--quiet"]), mentioning: ["run", pid])
    assertRefused(try distill(["train", "long.yaml", "--out", "run"] + common), mentioning: [pid])
    // The holder is killed: its lock goes with it.
    first.send(SIGKILL)
    XCTAssertEqual(first.wait(), 128 + SIGKILL)
    let resumed = try DistillProcess(["resume", "run", "--quiet"], in: folder)
    usleep(500_000)
    XCTAssertTrue(resumed.isRunning || resumed.wait() == 0, resumed.standardError)
    resumed.send(SIGINT)
    XCTAssertEqual(resumed.wait(), 128 + SIGINT, resumed.standardError)
    XCTAssertNoThrow(try TrainingState.read(from: folder + "/run/latest.h5"))
    // Every metrics line is there once: no second writer interleaved.
    let lines = try String(contentsOfFile: folder + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
    let epochs = lines.compactMap { $0.range(of: "\"epoch\": ").map { line in line.upperBound } }
    XCTAssertEqual(lines.count, epochs.count)
    XCTAssertEqual(lines.count, Set(lines.map { String($0.prefix(40)) }).count, "an epoch written twice")
  }

  func testForceClearsEveryFileOfTheOldRunButKeepsFilesThatAreNotARuns() throws {
    try write(digitsRecipe(epochs: 4), to: "d.yaml")
    XCTAssertEqual(try distill(["train", "d.yaml", "--out", "run"] + common).status, 0)
    let run = folder + "/run"
    XCTAssertTrue(files(in: run).isSuperset(of: ["epoch-0007.h5", "epoch-0008.h5", "summary.json"]), "\(files(in: run))")
    try "my notes".write(toFile: run + "/notes.txt", atomically: true, encoding: .utf8)
    let result = try distill(["train", "d.yaml", "--out", "run", "--force", "--epochs", "1"] + common)
    XCTAssertEqual(result.status, 0, result.errors)
    XCTAssertEqual(
      files(in: run),
      ["recipe.yaml", "metrics.jsonl", "summary.json", "teacher.h5", "student.h5", "latest.h5", "epoch-0001.h5",
       "epoch-0002.h5", "notes.txt", ".lock"])
    XCTAssertEqual(try String(contentsOfFile: run + "/notes.txt", encoding: .utf8), "my notes")
    XCTAssertEqual(try TrainingState.read(from: run + "/latest.h5").runEpoch, 2)
    let metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
    XCTAssertEqual(metrics.split(separator: "\n").count, 2)
    XCTAssertEqual(files(in: folder).filter { $0.contains("replaced") }, [], "the old run is deleted")
  }

  func testTrainIntoAnInterruptedRunSuggestsResume() throws {
    try write(digitsRecipe(epochs: 300), to: "d.yaml")
    let process = try DistillProcess(["train", "d.yaml", "--out", "run"] + common, in: folder)
    while process.isRunning && !FileManager.default.fileExists(atPath: folder + "/run/latest.h5") { usleep(20_000) }
    process.send(SIGTERM)
    XCTAssertEqual(process.wait(), 128 + SIGTERM, process.standardError)
    let result = try distill(["train", "d.yaml", "--out", "run"] + common)
    assertRefused(result, mentioning: ["run: already holds a run", "distill resume run", "--force"])
    XCTAssertNoThrow(try TrainingState.read(from: folder + "/run/latest.h5"), "the refusal left the checkpoint")
  }

  func testACheckpointCopiedFromAnotherRecipeIsNotReportedAsAnEdit() throws {
    try write(digitsRecipe(name: "one", epochs: 1), to: "one.yaml")
    try write(digitsRecipe(name: "two", epochs: 1), to: "two.yaml")
    XCTAssertEqual(try distill(["train", "one.yaml", "--out", "one"] + common).status, 0)
    let two = try DistillProcess(["train", "two.yaml", "--out", "two", "--epochs", "200"] + common, in: folder)
    while two.isRunning && !FileManager.default.fileExists(atPath: folder + "/two/latest.h5") { usleep(20_000) }
    two.send(SIGTERM)
    _ = two.wait()
    try FileManager.default.removeItem(atPath: folder + "/two/latest.h5")
    for name in files(in: folder + "/two") where name.hasPrefix("epoch-") {
      try FileManager.default.removeItem(atPath: folder + "/two/" + name)
    }
    try FileManager.default.copyItem(atPath: folder + "/one/latest.h5", toPath: folder + "/two/latest.h5")
    let result = try distill(["resume", "two", "--quiet"])
    assertRefused(result, mentioning: ["two/latest.h5", "'one'", "'two'", "another run folder"])
    XCTAssertFalse(result.errors.contains("was edited"), result.errors)
  }

  // MARK: Sizes

  func testAModelTooLargeForThisMachineIsRefusedNamingTheKeyAndTheBytes() throws {
    let recipe = digitsRecipe(
      student: "  model: {mlp: {hidden: [1000000000]}}\n  train: {epochs: 1, batch_size: 64, optimizer: {sgd: {lr: 0.1}}}",
      teacher: false)
    try write(recipe, to: "huge.yaml")
    let result = try distill(["train", "huge.yaml", "--out", "run"] + common)
    assertRefused(result, mentioning: ["huge.yaml", "student.model.mlp", "parameters", "GiB", "Make the model or the batch size smaller"])
    try write(recipe.replacingOccurrences(of: "1000000000", with: "9223372036854775807"), to: "huger.yaml")
    assertRefused(
      try distill(["train", "huger.yaml", "--out", "run"] + common),
      mentioning: ["huger.yaml", "student.model.mlp.hidden[0]", "at most"])
  }

  func testAModelFileWhoseArchitectureIsTooLargeIsRefused() throws {
    try write(digitsRecipe(epochs: 1, teacher: false), to: "d.yaml")
    XCTAssertEqual(try distill(["train", "d.yaml", "--out", "run"] + common).status, 0)
    let original = folder + "/run/student.h5"
    let architecture = try XCTUnwrap(readArchitecture(group: "student", from: original))
    XCTAssertTrue(architecture.contains("\"out\":16}"), architecture)
    let hugeFile = folder + "/huge.h5"
    try copyModelFile(original, to: hugeFile) { group in
      try group.setAttribute(
        "architecture", string: architecture.replacingOccurrences(of: "\"out\":16}", with: "\"out\":1000000000}"))
    }
    let result = try distill(["eval", "huge.h5", "--data", repositoryRoot])
    assertRefused(result, mentioning: ["huge.h5", "parameters", "Make the model or the batch size smaller"])
  }

  func testNonFiniteWeightsAreRefusedWhereverWeightsAreLoaded() throws {
    try write(digitsRecipe(epochs: 1), to: "d.yaml")
    XCTAssertEqual(try distill(["train", "d.yaml", "--out", "run"] + common).status, 0)
    let nanFile = folder + "/nan.h5"
    try copyModelFile(folder + "/run/student.h5", to: nanFile, poison: "3.weight")
    assertRefused(
      try distill(["eval", "nan.h5", "--data", repositoryRoot]),
      mentioning: ["nan.h5", "/student/3.weight", "non-finite"])
    // As a teacher loaded by a recipe.
    try copyModelFile(folder + "/run/teacher.h5", to: folder + "/nan-teacher.h5", poison: "1.bias")
    let withTeacher = digitsRecipe(name: "from-nan").replacingOccurrences(
      of: "  model: {mlp: {hidden: [32]}}\n  train: {epochs: 2, batch_size: 64, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}",
      with: "  from: nan-teacher.h5")
    try write(withTeacher, to: "from.yaml")
    assertRefused(
      try distill(["train", "from.yaml", "--out", "from"] + common),
      mentioning: ["from.yaml", "teacher.from", "nan-teacher.h5", "/teacher/1.bias", "non-finite"])
    // In the checkpoints resume reads: the newest is skipped with a warning naming the
    // dataset; with every one poisoned, resume refuses.
    let run = folder + "/run"
    try FileManager.default.removeItem(atPath: run + "/summary.json")
    try poisonInPlace(run + "/latest.h5", group: "student", key: "1.weight")  // also epoch-0002.h5, a hard link
    let resumed = try distill(["resume", "run", "--quiet"])
    XCTAssertEqual(resumed.status, 0, resumed.errors)
    XCTAssertTrue(resumed.errors.contains("skipped an unreadable checkpoint"), resumed.errors)
    XCTAssertTrue(resumed.errors.contains("/student/1.weight holds 1 non-finite value"), resumed.errors)
    try FileManager.default.removeItem(atPath: run + "/summary.json")
    for name in files(in: run) where name.hasSuffix(".h5") && (name.hasPrefix("epoch-") || name == "latest.h5") {
      try poisonInPlace(run + "/" + name, group: "teacher", key: "1.weight")
    }
    assertRefused(
      try distill(["resume", "run", "--quiet"]),
      mentioning: ["no readable checkpoint", "latest.h5", "/teacher/1.weight", "non-finite"])
  }

  func testADivergedRunStopsNamingTheEpochAndStepAndKeepsTheLastGoodCheckpoint() throws {
    try write(
      digitsRecipe(
        student: "  model: {mlp: {hidden: [16]}}\n  train: {epochs: 2, batch_size: 64, optimizer: {sgd: {lr: 1.0e+30}}}"),
      to: "diverge.yaml")
    let result = try distill(["train", "diverge.yaml", "--out", "run"] + common)
    assertRefused(result, mentioning: ["diverge.yaml", "student diverged", "epoch 1", "optimizer step", "latest.h5"])
    let state = try TrainingState.read(from: folder + "/run/latest.h5")
    XCTAssertEqual([state.phase, "\(state.epoch)"], ["teacher", "2"], "the last good checkpoint is the teacher's")
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/run/summary.json"))
  }

  // MARK: Recipes

  func testDeepNestingHugeFilesAliasBombsAndHugeNamesAreRefusedWithShortMessages() throws {
    try write(String(repeating: "[", count: 10_000), to: "deep.yaml")
    assertRefused(try distill(["train", "deep.yaml"] + common), mentioning: ["deep.yaml:1:", "nested"])
    try write("name: x\nstudent:\n" + String(repeating: "- ", count: 5_000) + "a\n", to: "dash.yaml")
    assertRefused(try distill(["train", "dash.yaml"] + common), mentioning: ["dash.yaml:3:", "nested"])
    var blockNested = "name: x\n"
    for depth in 0..<200 { blockNested += String(repeating: " ", count: depth) + "k\(depth):\n" }
    try write(blockNested, to: "block.yaml")
    assertRefused(try distill(["train", "block.yaml"] + common), mentioning: ["block.yaml:", "nested"])
    try write("name: x\n# " + String(repeating: "x", count: 2 << 20) + "\n", to: "big.yaml")
    assertRefused(try distill(["train", "big.yaml"] + common), mentioning: ["big.yaml", "at most 1048576"])
    var bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in 1..<9 { bomb += "\(Character(UnicodeScalar(97 + level)!)): &\(Character(UnicodeScalar(97 + level)!)) [" + Array(repeating: "*\(Character(UnicodeScalar(96 + level)!))", count: 10).joined(separator: ", ") + "]\n" }
    try write(bomb, to: "bomb.yaml")
    assertRefused(try distill(["train", "bomb.yaml"] + common), mentioning: ["bomb.yaml", "100000"])
    try write(digitsRecipe(name: String(repeating: "n", count: 500_000)), to: "name.yaml")
    assertRefused(try distill(["train", "name.yaml"] + common), mentioning: ["name.yaml", "name", "at most 100 characters"])
  }

  func testFoldersDevicesAndPipesWhereFilesAreExpectedAreRefusedWithoutHanging() throws {
    let fifo = folder + "/pipe"
    XCTAssertEqual(mkfifo(fifo, 0o644), 0)
    try FileManager.default.createDirectory(atPath: folder + "/dir", withIntermediateDirectories: true)
    assertRefused(try distill(["train", "dir"]), mentioning: ["dir", "it is a folder, not a recipe file"])
    assertRefused(try distill(["train", "pipe"]), mentioning: ["pipe", "not a regular file"])
    assertRefused(try distill(["train", "/dev/zero"]), mentioning: ["/dev/zero", "not a regular file"])
    for path in ["pipe", "/dev/zero", "dir"] {
      assertRefused(try distill(["eval", path]), mentioning: [path])
    }
    assertRefused(try distill(["eval", "/dev/zero"]), mentioning: ["not a regular file"])
  }

  /// The files that crash or hang libhdf5 1.10.8 itself (found by Fuzz/FuzzModelFile): the
  /// executable reads each first in a child process and refuses it, never crashing or hanging.
  func testFilesThatCrashOrHangLibhdf5AreRefusedNotFatal() throws {
    let crashes = repositoryRoot + "/Fuzz/crashes/FuzzModelFile"
    let inputs = try FileManager.default.contentsOfDirectory(atPath: crashes).filter { $0.hasPrefix("hdf5-") }.sorted()
    XCTAssertGreaterThanOrEqual(inputs.count, 6)
    var refusedAsDamaged = 0
    for name in inputs {
      let started = Date()
      let result = try distill(
        ["eval", crashes + "/" + name, "--data", repositoryRoot], environment: ["DISTILL_HDF5_READ_SECONDS": "3"])
      assertRefused(result, mentioning: [name])
      XCTAssertLessThan(Date().timeIntervalSince(started), 20, name)
      if result.errors.contains("libhdf5 crashed") || result.errors.contains("libhdf5 did not finish") {
        refusedAsDamaged += 1
      }
    }
    XCTAssertGreaterThanOrEqual(refusedAsDamaged, 5, "the child process caught libhdf5's crashes and hangs")
  }

  func testAModelFileWhoseDescriptionHasANegativeShapeOrDeepNestingIsRefused() throws {
    try write(digitsRecipe(epochs: 1, teacher: false), to: "d.yaml")
    XCTAssertEqual(try distill(["train", "d.yaml", "--out", "run"] + common).status, 0)
    let original = folder + "/run/student.h5"
    let architecture = try XCTUnwrap(readArchitecture(group: "student", from: original))
    for (name, text, needles) in [
      ("negative.h5", architecture.replacingOccurrences(of: "\"input_shape\":[64]", with: "\"input_shape\":[-1,-8,8]"),
       ["input_shape[0]", "in 1...16777216"]),
      ("deep.h5", String(repeating: "[", count: 5_000), ["nested"]),
    ] {
      try copyModelFile(original, to: folder + "/" + name) { group in
        try group.setAttribute("architecture", string: text)
      }
      assertRefused(try distill(["eval", name, "--data", repositoryRoot]), mentioning: [name] + needles)
    }
  }

  // MARK: Reports

  func testCompareSkipsWhatIsNotARunLabelsSeedsAndRefusesTheSameRunTwice() throws {
    try write(digitsRecipe(epochs: 1), to: "d.yaml")
    XCTAssertEqual(try distill(["train", "d.yaml", "--out", "runs/d", "--seeds", "1,2"] + common).status, 0)
    try write("# the run folders\n", to: "runs/README.md")
    let result = try distill(["compare", "runs/README.md", "runs/d-seed1", "runs/d-seed2", "--out", "report"])
    XCTAssertEqual(result.status, 0, result.errors)
    XCTAssertTrue(result.errors.contains("note: runs/README.md: skipped"), result.errors)
    let csv = try String(contentsOfFile: folder + "/report/compare.csv", encoding: .utf8)
    XCTAssertTrue(csv.hasPrefix("recipe,run,seed,"), csv)
    XCTAssertTrue(csv.contains(",runs/d-seed1,1,") && csv.contains(",runs/d-seed2,2,"), csv)
    assertRefused(
      try distill(["compare", "runs/d-seed1", "runs/./d-seed1"]),
      mentioning: ["runs/./d-seed1", "runs/d-seed1", "given twice"])
    assertRefused(try distill(["compare", "runs/README.md"]), mentioning: ["runs/README.md", "skipped"])
  }

  func testTheFallbackWarningIsPrintedOncePerCommandNotPerSeed() throws {
    try write(digitsRecipe(epochs: 1, teacher: false), to: "d.yaml")
    let result = try distill(
      ["train", "d.yaml", "--out", "runs/d", "--seeds", "1,2,3", "--data", repositoryRoot, "--threads", "1"],
      environment: ["DISTILL_POWERCAP_ROOT": folder + "/no-powercap"])
    XCTAssertEqual(result.status, 0, result.errors)
    XCTAssertEqual(result.errors.components(separatedBy: "RAPL cannot be read").count - 1, 1, result.errors)
  }

  func testEvalOfATrainingCheckpointOffersOnlyModelGroups() throws {
    try write(digitsRecipe(epochs: 1), to: "d.yaml")
    XCTAssertEqual(try distill(["train", "d.yaml", "--out", "run"] + common).status, 0)
    let result = try distill(["eval", "run/latest.h5"])
    assertRefused(result, mentioning: ["run/latest.h5", "training checkpoint", "--group teacher|student"])
    XCTAssertFalse(result.errors.contains("state"), result.errors)
    XCTAssertEqual(try distill(["eval", "run/latest.h5", "--group", "student"]).status, 0)
  }

  // MARK: Energy

  func testAnImplausibleRAPLCounterStepFallsBackToTheEstimateNamingTheZone() throws {
    let root = folder + "/powercap"
    let zone = root + "/intel-rapl:0"
    try FileManager.default.createDirectory(atPath: zone, withIntermediateDirectories: true)
    for (name, value) in [
      ("name", "package-0"), ("max_energy_range_uj", "262143328850"), ("energy_uj", "100000000000"),
      ("constraint_0_max_power_uw", "250000000"),
    ] {
      try (value + "\n").write(toFile: zone + "/" + name, atomically: true, encoding: .utf8)
    }
    for (label, next) in [("backwards", "90000000000"), ("jump", "200000000000")] {
      try "100000000000\n".write(toFile: zone + "/energy_uj", atomically: true, encoding: .utf8)
      let process = try DistillProcess(
        ["energy", "--meter", "rapl", "--seconds", "1.5"], in: folder, environment: ["DISTILL_POWERCAP_ROOT": root])
      usleep(700_000)
      try (next + "\n").write(toFile: zone + "/energy_uj", atomically: true, encoding: .utf8)
      XCTAssertEqual(process.wait(), 0, process.standardError)
      XCTAssertTrue(process.standardOutput.contains("(estimate)"), "\(label): \(process.standardOutput)")
      XCTAssertTrue(process.standardError.contains("package-0"), "\(label): \(process.standardError)")
      XCTAssertTrue(process.standardError.contains("250 W maximum"), "\(label): \(process.standardError)")
      XCTAssertFalse(process.standardOutput.contains("(rapl)"), "\(label): \(process.standardOutput)")
    }
  }

  func testTheEstimateNoteDoesNotCallItsOwnReadingZero() throws {
    let result = try distill(
      ["energy", "--meter", "estimate", "--seconds", "0.2"], environment: ["DISTILL_POWERCAP_ROOT": folder])
    XCTAssertEqual(result.status, 0, result.errors)
    XCTAssertFalse(result.output.contains("≈ 0 J"), result.output)
    XCTAssertTrue(result.output.contains("not what the machine draws"), result.output)
    assertRefused(try distill(["energy", "--seconds", "nan"]), mentioning: ["--seconds"])
    assertRefused(try distill(["energy", "--watts-per-core", "1e9"]), mentioning: ["--watts-per-core", "below 10000"])
  }

  // MARK: Model-file surgery

  /// Copies the model file `source` to `target`, group by group, dataset by dataset;
  /// `poison` names a dataset of the first group whose first value becomes NaN; `edit` may
  /// change each new group (its attributes).
  private func copyModelFile(
    _ source: String, to target: String, poison: String? = nil, edit: (HDF5Group) throws -> Void = { _ in }
  ) throws {
    let root = try HDF5File.openReadOnly(source).rootGroup()
    var groups: [(String, String?, [(String, [Int], [Float])])] = []
    for name in try root.memberNames() {
      let group = try root.group(name)
      let architecture = group.hasAttribute("architecture") ? try group.stringAttribute("architecture") : nil
      var datasets: [(String, [Int], [Float])] = []
      for key in try group.memberNames() {
        let dataset = try group.dataset(key)
        var values = try dataset.readFloats()
        if key == poison && groups.isEmpty { values[0] = .nan }
        datasets.append((key, dataset.shape, values))
      }
      groups.append((name, architecture, datasets))
    }
    try HDF5File.writeAtomically(to: target) { file throws(CheckpointError) in
      for (name, architecture, datasets) in groups {
        let group = try file.createGroup(name)
        if let architecture { try group.setAttribute("architecture", string: architecture) }
        for (key, shape, values) in datasets { try group.writeDataset(key, floats: values, shape: shape) }
        do { try edit(group) } catch { throw .writeFailed(path: target, detail: "\(error)") }
      }
    }
  }

  /// Puts a NaN into the first value of `group/key` of the file at `path`, everything else
  /// (a checkpoint's /state included) unchanged: datasets are stored contiguous and
  /// uncompressed, so the first four values' bytes are found in the file and the first replaced.
  private func poisonInPlace(_ path: String, group: String, key: String) throws {
    let values = try HDF5File.openReadOnly(path).rootGroup().group(group).dataset(key).readFloats()
    let pattern = values.prefix(4).flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let start = try XCTUnwrap(
      (0...(bytes.count - pattern.count)).first { bytes[$0..<($0 + pattern.count)].elementsEqual(pattern) },
      "\(group)/\(key) not found in \(path)")
    let nan = withUnsafeBytes(of: Float.nan.bitPattern.littleEndian, Array.init)
    bytes.replaceSubrange(start..<(start + 4), with: nan)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
  }
}
