import Autodiff
import Checkpoints
import NN
import XCTest

/// The `/state` group of training checkpoints: every field round-trips exactly, and files that
/// are not checkpoints of this format are refused naming the file and object.
final class TrainingStateTests: XCTestCase {
  private func linear(_ inputs: Int, _ outputs: Int, seed: UInt64) -> Linear {
    var generator = SeededGenerator(seed: seed)
    return Linear(inputFeatures: inputs, outputFeatures: outputs, generator: &generator)
  }

  private let folder = TemporaryFolder()

  override func tearDown() { folder.remove() }

  private func sampleState() -> TrainingState {
    var state = TrainingState(
      phase: "student", epoch: 3, batch: 17, globalStep: 123, runEpoch: 8, optimizerName: "adam",
      recipeHash: "0123456789abcdef", recipeJSON: #"{"name":"x"}"#, blasThreads: 2)
    state.lossSum = 0.1 + 0.2  // not representable in Float: must come back bit for bit
    (state.samples, state.steps) = (544, 9)
    (state.epochSeconds, state.modelSeconds, state.runSeconds) = (1.5, 20.25, 31)
    state.optimizer = [
      NamedArray(name: "0.weight.exp_avg", shape: [2, 3], values: [1, -2, 3, .pi, -0, 1e-30]),
      NamedArray(name: "0.weight.step", shape: [], values: [42]),
    ]
    state.extraParameters = [NamedArray(name: "hint_regressor.bias", shape: [2], values: [0.5, -0.5])]
    state.masterWeights = [NamedArray(name: "0.weight", shape: [1], values: [0.25])]
    state.lossScale = LossScalerState(scale: 1024, growthTracker: 7, skippedSteps: 3)
    state.augmenterState = .max - 1
    state.dropoutStates = [("1", [1, .max, 3, 1 << 63]), ("2.body.1", [5, 6, 7, 8])]
    state.metrics = [#"{"model": "teacher", "epoch": 1}"#, "ünïcode ✓"]
    state.lastEpoch = ["train_loss": 0.3, "val_accuracy": 0.9, "val_loss": 0.4, "val_samples": 360]
    state.teacherResult = ["test_accuracy": 0.97, "epochs": 3]
    state.seedOverride = .max
    state.epochsOverride = 5
    state.dataPath = "/data/mnist"
    return state
  }

  func testEveryFieldRoundTripsExactly() throws {
    let model = Sequential(linear(3, 2, seed: 1))
    var state = sampleState()
    let path = folder.file("latest.h5")
    try writeTrainingCheckpoint(state, models: [("student", model, "{}")], to: path)
    state.modelGroups = ["student"]
    let read = try TrainingState.read(from: path)
    XCTAssertEqual(read, state)
    XCTAssertEqual(read.lossSum.bitPattern, (0.1 + 0.2).bitPattern)
    XCTAssertEqual(HDF5File.openObjectCount, 0, "every HDF5 object is closed")
    // The weights beside it are a model file's.
    let loaded = Sequential(linear(3, 2, seed: 9))
    try loadModel(group: "student", from: path, into: loaded)
    XCTAssertEqual(loaded.stateDict.map { $0.tensor.storage }, model.stateDict.map { $0.tensor.storage })
  }

  func testOptionalFieldsMayBeAbsent() throws {
    var state = TrainingState(
      phase: "teacher", epoch: 0, batch: 0, globalStep: 0, runEpoch: 0, optimizerName: "sgd", recipeHash: "h",
      recipeJSON: "{}", blasThreads: 1)
    let path = folder.file("empty.h5")
    try writeTrainingCheckpoint(state, models: [], to: path)
    state.modelGroups = []
    XCTAssertEqual(try TrainingState.read(from: path), state)
  }

  func testImplausibleCountersTimesAndScalesAreRefusedNamingTheAttribute() throws {
    var cases: [(String, (inout TrainingState) -> Void, String)] = [
      ("threads", { $0.blasThreads = 1 << 40 }, "/state@blas_threads"),
      ("epoch", { $0.epoch = -3 }, "/state@epoch"),
      ("batch", { $0.batch = 1 << 50 }, "/state@batch"),
      ("seconds", { $0.epochSeconds = .infinity }, "/state@epoch_seconds"),
      ("joules", { $0.epochJoules = -1 }, "/state@epoch_joules"),
    ]
    cases.append(("scale", { $0.lossScale = LossScalerState(scale: 0, growthTracker: 0, skippedSteps: 0) }, "/state/loss_scale"))
    for (label, damage, object) in cases {
      var state = sampleState()
      damage(&state)
      let path = folder.file("\(label).h5")
      try writeTrainingCheckpoint(state, models: [], to: path)
      XCTAssertThrowsError(try TrainingState.read(from: path), label) {
        guard case .invalidValue(let file, let named, _, _) = $0 as? CheckpointError else { return XCTFail("\($0)") }
        XCTAssertEqual(file, path, label)
        XCTAssertEqual(named, object, label)
      }
    }
    var nan = sampleState()
    nan.lossSum = .nan  // a skipped non-finite micro-batch in f16-mixed leaves it so: still readable
    let path = folder.file("nan-loss.h5")
    try writeTrainingCheckpoint(nan, models: [], to: path)
    XCTAssertNoThrow(try TrainingState.read(from: path))
  }

  func testAModelFileIsNotACheckpoint() throws {
    let path = folder.file("student.h5")
    try saveModels([("student", Sequential(linear(2, 2, seed: 1)), nil)], to: path)
    let error = checkpointError { try TrainingState.read(from: path) }
    XCTAssertEqual(error, .missingGroup(path: path, group: "/state (a training checkpoint's state)"))
  }

  func testAnotherFormatIsRefused() throws {
    let path = folder.file("future.h5")
    try HDF5File.writeAtomically(to: path) { file throws(CheckpointError) in
      try file.createGroup("state").setAttribute("format", string: "swift-distill-checkpoint-9")
    }
    let error = checkpointError { try TrainingState.read(from: path) }
    XCTAssertEqual(
      error,
      .wrongDatatype(
        path: path, object: "/state@format", expected: "format 'swift-distill-checkpoint-1'",
        found: "format 'swift-distill-checkpoint-9'"))
  }

  func testLinkAtomicallyReplacesTheTargetWithASecondName() throws {
    let (source, target) = (folder.file("epoch-0001.h5"), folder.file("latest.h5"))
    write([1, 2, 3], to: source)
    write([9], to: target)
    try HDF5File.linkAtomically(source, to: target)
    XCTAssertEqual(bytes(of: target), [1, 2, 3])
    XCTAssertEqual(folder.contents, ["epoch-0001.h5", "latest.h5"], "no temporary file left")
    let error = checkpointError { try HDF5File.linkAtomically(folder.file("missing.h5"), to: target) }
    guard case .writeFailed(let path, _) = error else { return XCTFail("\(String(describing: error))") }
    XCTAssertEqual(path, target)
    XCTAssertEqual(bytes(of: target), [1, 2, 3])
  }
}
