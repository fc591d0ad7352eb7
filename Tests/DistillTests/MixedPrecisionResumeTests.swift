import Checkpoints
import Foundation
import XCTest
import _TestSupport
import Autodiff
import NN

@testable import Distill
@testable import DistillRecipes

/// `precision: f16-mixed` runs stopped mid-epoch and resumed end as the uninterrupted run does,
/// bit for bit: the checkpoint holds the Float master weights (`/state/master`) and the loss
/// scaler's state (`/state/loss_scale`) besides the binary16 weights.
final class MixedPrecisionResumeTests: XCTestCase {
  private let yaml = resumeRecipeYAML + "precision: f16-mixed\n"
  private let folders = TemporaryFolders(prefix: "distill-mixed-resume")

  override func tearDownWithError() throws { folders.removeAll() }

  private func newFolder() -> String { folders.make() }

  func testStoppedMidEpochThenResumedGivesTheUninterruptedResult() throws {
    let reference = newFolder()
    XCTAssertNotNil(try runStopping(makeTrainer(yaml, folder: reference)))
    let folder = newFolder()
    XCTAssertNil(
      try runStopping(makeTrainer(yaml, folder: folder)) {
        if case .batch(let p) = $0 { return p.role == .teacher && p.epoch == 2 && p.batch == 7 }
        return false
      })
    var (trainer, point) = try resumable(folder)
    XCTAssertEqual([point.state.phase, "\(point.state.epoch)", "\(point.state.batch)"], ["teacher", "1", "7"])
    // Adam's masters: one per parameter of the teacher, Float, in the parameters' shapes.
    XCTAssertEqual(point.state.masterWeights.map(\.name), ["1.weight", "1.bias", "4.weight", "4.bias"])
    XCTAssertEqual(point.state.masterWeights[0].shape, [64, 64])
    // Each master rounds to the binary16 weight the checkpoint holds, and some are not binary16
    // values themselves (they carry the Float updates the rounding would lose).
    let weight = try HDF5File.openReadOnly(point.path).rootGroup().group("teacher").dataset("1.weight").readFloats()
    let master = point.state.masterWeights[0].values
    let rounded = HalfPrecision.floats(fromHalfBits: HalfPrecision.halfBits(from: master))
    XCTAssertEqual(rounded.map(\.bitPattern), weight.map(\.bitPattern))
    XCTAssertNotEqual(rounded, master)
    XCTAssertEqual(point.state.lossScale.scale, 65536)
    // No inf/NaN on these data: every step was finite, and 2,000 of them were not reached.
    XCTAssertEqual(point.state.lossScale.growthTracker, point.state.globalStep)
    XCTAssertEqual(point.state.lossScale.skippedSteps, 0)
    XCTAssertNil(
      try runStopping(trainer, from: point) {
        if case .batch(let p) = $0 { return p.role == .student && p.epoch == 3 && p.batch == 11 }
        return false
      })
    (trainer, point) = try resumable(folder)
    XCTAssertEqual([point.state.phase, "\(point.state.epoch)", "\(point.state.batch)"], ["student", "2", "12"])
    XCTAssertEqual(point.state.optimizerName, "sgd")
    XCTAssertEqual(point.state.lossScale.growthTracker, point.state.globalStep)
    XCTAssertNotNil(try runStopping(trainer, from: point))
    try assertSameResults(reference, folder)
  }

  /// A master weight of the wrong size is refused, naming the object, before anything changes.
  func testAMasterOfTheWrongSizeIsRefused() throws {
    var generator = SeededGenerator(seed: 1)
    let model = Sequential(Linear(inputFeatures: 64, outputFeatures: 10, generator: &generator))
    let spec = try XCTUnwrap(Recipe.parse(yaml: yaml, file: "recipes/resume.yaml").teacher?.train)
    let training = ModelTraining(
      role: .teacher, model: model, spec: spec, shuffleSeed: 1, augmentSeed: 2, precision: .f16Mixed,
      loss: labelLoss(labelSmoothing: 0))
    let before = model.parameters.map(\.tensor.storage)
    var state = TrainingState(
      phase: "teacher", epoch: 0, batch: 0, globalStep: 0, runEpoch: 0, optimizerName: "adam",
      recipeHash: "", recipeJSON: "", blasThreads: 1)
    state.masterWeights = [NamedArray(name: "0.weight", shape: [3], values: [0, 0, 0])]
    XCTAssertThrowsError(try training.restore(from: state, file: "x.h5")) { error in
      XCTAssertTrue("\(error)".contains("/state/master/0.weight"), "\(error)")
      XCTAssertTrue("\(error)".contains("has 3 values, expected 640"), "\(error)")
    }
    state.masterWeights = []
    state.lossScale.scale = Float.infinity
    XCTAssertThrowsError(try training.restore(from: state, file: "x.h5")) { error in
      XCTAssertTrue("\(error)".contains("/state/loss_scale"), "\(error)")
    }
    XCTAssertEqual(model.parameters.map(\.tensor.storage), before)
  }
}
