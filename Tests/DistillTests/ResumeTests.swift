import Checkpoints
import NN
import Foundation
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// Resume = uninterrupted: runs stopped at epoch ends and mid-epoch, resumed from their
/// checkpoints, end with the same weights bit for bit, the same metrics and the same summary.
final class ResumeTests: XCTestCase {
  private var folder = ""

  override func setUpWithError() throws {
    folder = NSTemporaryDirectory() + "distill-resume-tests-\(UUID().uuidString)"
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// The recipe run straight through once for the whole class.
  static let straight: Result<String, any Error> = Result {
    let folder = NSTemporaryDirectory() + "distill-resume-straight-\(UUID().uuidString)"
    _ = try makeTrainer(folder: folder).run()
    return folder
  }

  override class func tearDown() {
    if case .success(let folder) = straight { try? FileManager.default.removeItem(atPath: folder) }
  }

  func testStoppedAtEpochEndsThenResumedGivesTheUninterruptedResult() throws {
    let reference = try Self.straight.get()
    // Stop after the teacher's 2nd epoch, then after the student's 1st, then run to the end.
    XCTAssertNil(
      try runStopping(makeTrainer(folder: folder)) {
        if case .epoch(let r) = $0 { return r.model == .teacher && r.epoch == 2 } else { return false }
      })
    var (trainer, point) = try resumable(folder)
    XCTAssertEqual(point.path, folder + "/latest.h5")
    XCTAssertEqual(
      [point.state.phase, "\(point.state.epoch)", "\(point.state.batch)"], ["teacher", "2", "0"])
    XCTAssertEqual(point.warnings, [])
    XCTAssertNil(
      try runStopping(trainer, from: point) {
        if case .epoch(let r) = $0 { return r.model == .student && r.epoch == 1 } else { return false }
      })
    (trainer, point) = try resumable(folder)
    XCTAssertEqual(
      [point.state.phase, "\(point.state.epoch)", "\(point.state.runEpoch)"], ["student", "1", "4"])
    XCTAssertNotNil(try runStopping(trainer, from: point))
    try assertSameResults(reference, folder)
  }

  func testStoppedMidEpochThenResumedGivesTheUninterruptedResult() throws {
    let reference = try Self.straight.get()
    // Mid-epoch in the teacher (Adam), then mid-epoch in the student between the micro-batches
    // of one accumulated step: the stop waits for the step's end.
    XCTAssertNil(
      try runStopping(makeTrainer(folder: folder)) {
        if case .batch(let p) = $0 {
          return p.role == .teacher && p.epoch == 2 && p.batch == 7
        } else {
          return false
        }
      })
    var (trainer, point) = try resumable(folder)
    XCTAssertEqual(
      [point.state.phase, "\(point.state.epoch)", "\(point.state.batch)"], ["teacher", "1", "7"])
    XCTAssertEqual(point.state.samples, 7 * 32)
    XCTAssertNil(
      try runStopping(trainer, from: point) {
        if case .batch(let p) = $0 {
          return p.role == .student && p.epoch == 3 && p.batch == 11
        } else {
          return false
        }
      })
    (trainer, point) = try resumable(folder)
    XCTAssertEqual(
      [point.state.phase, "\(point.state.epoch)", "\(point.state.batch)"], ["student", "2", "12"])
    XCTAssertEqual(point.state.steps, 6)
    XCTAssertNotNil(try runStopping(trainer, from: point))
    try assertSameResults(reference, folder)
  }

  func testTheInterruptedEpochKeepsTheTimeAndEnergySpentBeforeTheStop() throws {
    XCTAssertNil(
      try runStopping(makeTrainer(folder: folder)) {
        if case .batch(let p) = $0 { return p.role == .teacher && p.epoch == 2 && p.batch == 7 }
        return false
      })
    let (trainer, point) = try resumable(folder)
    let (seconds, joules) = (point.state.epochSeconds, point.state.epochJoules)
    XCTAssertGreaterThan(seconds, 0)
    XCTAssertGreaterThan(joules, 0, "the partial epoch's training energy is in the checkpoint")
    XCTAssertNotNil(try runStopping(trainer, from: point))
    let record = try XCTUnwrap(
      withJSON(folder + "/metrics.jsonl").first { $0["model"] as? String == "teacher" && $0["epoch"] as? Int == 2 })
    let recordSeconds = try XCTUnwrap(record["seconds"] as? Double)
    let trainJoules = try XCTUnwrap(record["joules"] as? Double) - XCTUnwrap(record["eval_joules"] as? Double)
    XCTAssertGreaterThan(recordSeconds, seconds, "the epoch's seconds include those before the stop")
    XCTAssertGreaterThan(trainJoules, joules, "the epoch's joules include those before the stop")
    try assertTrainingJoulesAddUp(folder)
  }

  func testAFinishedRunSaysSo() throws {
    guard case .finished(let run) = try Trainer.prepareResume(runFolder: try Self.straight.get()) else {
      return XCTFail("a finished run was not reported finished")
    }
    XCTAssertEqual(run.path, try Self.straight.get())
  }

  func testKeepLastKeepsTheNewestEpochFilesAndLatestIsTheNewest() throws {
    let reference = try Self.straight.get()
    XCTAssertEqual(
      RunFolder(path: reference).epochCheckpoints().map(\.name), ["epoch-0006.h5", "epoch-0007.h5"])
    let latest = try TrainingState.read(from: reference + "/latest.h5")
    XCTAssertEqual(latest, try TrainingState.read(from: reference + "/epoch-0007.h5"))
    XCTAssertEqual([latest.phase, "\(latest.epoch)", "\(latest.batch)"], ["student", "4", "0"])
    XCTAssertEqual(latest.metrics.count, 7)
    XCTAssertEqual(latest.modelGroups, ["teacher", "student"])
    XCTAssertEqual(latest.dropoutStates.map(\.layer), ["3"])
    XCTAssertNotNil(latest.augmenterState)
    XCTAssertEqual(latest.optimizerName, "sgd")
    XCTAssertEqual(
      latest.optimizer.map(\.name),
      [
        "1.bias.momentum_buffer", "1.weight.momentum_buffer",
        "4.bias.momentum_buffer", "4.weight.momentum_buffer",
      ])
    XCTAssertEqual(latest.optimizer[1].shape, [16, 64])
    XCTAssertEqual(latest.lossScale, LossScalerState(scale: 65536, growthTracker: 0, skippedSteps: 0))
    XCTAssertEqual(latest.masterWeights, [])
    XCTAssertEqual(latest.recipeHash, try makeTrainer(folder: folder).recipe.canonicalHash)
    XCTAssertEqual(latest.teacherResult?["epochs"], 3)
  }

  func testLeftoverTemporaryFilesAreRemovedOnResume() throws {
    XCTAssertNil(
      try runStopping(makeTrainer(folder: folder)) {
        if case .epoch(let r) = $0 { return r.epoch == 1 } else { return false }
      })
    // A dead writer's files go; another process's (pid 1 is alive) and other files stay.
    let dead = ".latest.h5.tmp-2147483646-1f2e"
    let other = ".epoch-0002.h5.tmp-1-abc"
    let notes = ".notes"
    for name in [dead, other, notes] {
      XCTAssertTrue(FileManager.default.createFile(atPath: "\(folder)/\(name)", contents: Data()))
    }
    let (_, point) = try resumable(folder)
    XCTAssertEqual(point.warnings.count, 1)
    XCTAssertTrue(point.warnings[0].contains(dead), point.warnings[0])
    XCTAssertFalse(FileManager.default.fileExists(atPath: "\(folder)/\(dead)"))
    XCTAssertTrue(FileManager.default.fileExists(atPath: "\(folder)/\(other)"))
    XCTAssertTrue(FileManager.default.fileExists(atPath: "\(folder)/\(notes)"))
  }
}
