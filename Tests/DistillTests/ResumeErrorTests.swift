import Checkpoints
import Foundation
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// `Trainer.prepareResume` and `resume` with broken, foreign and missing checkpoints and an
/// edited recipe: each a clear error (or a fallback with a warning) naming the file, and no
/// good file changed.
final class ResumeErrorTests: XCTestCase {
  private var folder = ""

  override func setUpWithError() throws {
    folder = NSTemporaryDirectory() + "distill-resume-errors-\(UUID().uuidString)"
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// Stops the recipe after the student's first epoch: epoch-0003.h5, epoch-0004.h5 and
  /// latest.h5 (the same file as epoch-0004.h5) are there.
  private func stoppedRun(_ yaml: String = resumeRecipeYAML, in folder: String? = nil) throws {
    XCTAssertNil(
      try runStopping(makeTrainer(yaml, folder: folder ?? self.folder)) {
        if case .epoch(let r) = $0 { return r.model == .student && r.epoch == 1 } else { return false }
      })
  }

  /// Replaces the file at `name` in the folder (breaking a hard link) with `bytes`.
  private func replace(_ name: String, with bytes: [UInt8]) {
    let path = "\(folder)/\(name)"
    unlink(path)
    XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
  }

  private func bytes(_ name: String) -> [UInt8] {
    [UInt8](FileManager.default.contents(atPath: "\(folder)/\(name)") ?? Data())
  }

  /// Each broken latest.h5 is skipped with a warning that names it and says what is wrong;
  /// resume takes epoch-0004.h5.
  func testBrokenLatestFallsBackToTheNewestReadableEpochFile() throws {
    try stoppedRun()
    let good = bytes("latest.h5")
    let cases: [(String, [UInt8], String)] = [
      ("truncated", Array(good.prefix(good.count / 2)), "truncated"),
      ("zero-length", [], "empty"),
      ("text", Array("not a checkpoint\n".utf8), "not an HDF5 file"),
      ("model file", bytes("teacher.h5"), "no group /state"),
    ]
    for (label, content, reason) in cases {
      replace("latest.h5", with: content)
      let (_, point) = try resumable(folder)
      XCTAssertEqual(point.path, "\(folder)/epoch-0004.h5", label)
      XCTAssertEqual(point.warnings.count, 1, label)
      let warning = point.warnings.first ?? ""
      for part in ["\(folder)/latest.h5", reason, "epoch-0004.h5"] {
        XCTAssertTrue(warning.contains(part), "\(label): \(warning) lacks \(part)")
      }
      XCTAssertEqual(bytes("epoch-0004.h5"), good, "\(label): the good file changed")
    }
    // And the run goes on from it.
    let (trainer, point) = try resumable(folder)
    XCTAssertNotNil(try runStopping(trainer, from: point))
  }

  func testNoReadableCheckpointIsAnErrorListingEveryFile() throws {
    try stoppedRun()
    replace("latest.h5", with: Array("text".utf8))
    replace("epoch-0004.h5", with: [])
    let third = bytes("epoch-0003.h5")
    replace("epoch-0003.h5", with: Array(third.prefix(1000)))
    let metrics = bytes("metrics.jsonl")
    XCTAssertThrowsError(try Trainer.prepareResume(runFolder: folder)) {
      guard case .noCheckpoint(let f, let tried) = $0 as? TrainingError else { return XCTFail("\($0)") }
      XCTAssertEqual(f, folder)
      XCTAssertEqual(tried.count, 3)
      let message = "\($0)"
      for part in [
        "latest.h5: not an HDF5 file", "epoch-0004.h5: the file is empty",
        "epoch-0003.h5: the HDF5 file is truncated", "distill train",
      ] {
        XCTAssertTrue(message.contains(part), "\(message) lacks \(part)")
      }
    }
    XCTAssertEqual(bytes("metrics.jsonl"), metrics)
  }

  func testAFolderThatIsNoRunOrHasNoCheckpoint() throws {
    XCTAssertThrowsError(try Trainer.prepareResume(runFolder: folder)) {
      XCTAssertEqual($0 as? TrainingError, .notARunFolder(folder: folder, reason: "no such folder"))
    }
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    XCTAssertThrowsError(try Trainer.prepareResume(runFolder: folder)) {
      XCTAssertEqual($0 as? TrainingError, .notARunFolder(folder: folder, reason: "it has no recipe.yaml"))
    }
    try resumeRecipeYAML.write(toFile: folder + "/recipe.yaml", atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try Trainer.prepareResume(runFolder: folder)) {
      XCTAssertEqual($0 as? TrainingError, .noCheckpoint(folder: folder, tried: []))
      XCTAssertTrue("\($0)".contains("before its first epoch ended"), "\($0)")
    }
  }

  func testAnEditedRecipeIsRefusedWithTheChangedKeysUnlessForced() throws {
    try stoppedRun()
    let edited = resumeRecipeYAML.replacingOccurrences(of: "alpha: 0.7", with: "alpha: 0.8")
      .replacingOccurrences(of: "epochs: 4", with: "epochs: 5")
    try edited.write(toFile: folder + "/recipe.yaml", atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try Trainer.prepareResume(runFolder: folder)) {
      XCTAssertEqual(
        $0 as? TrainingError,
        .recipeChanged(
          file: folder + "/recipe.yaml", checkpoint: folder + "/latest.h5",
          keys: ["distillation.alpha", "student.train.epochs"]))
      XCTAssertTrue("\($0)".contains("--force"), "\($0)")
    }
    let (trainer, point) = try resumable(folder, force: true)
    XCTAssertTrue(
      point.warnings.contains { $0.contains("distillation.alpha, student.train.epochs") }, "\(point.warnings)"
    )
    let summary = try XCTUnwrap(try runStopping(trainer, from: point))
    XCTAssertEqual(summary.student.epochs, 5)
  }

  /// A checkpoint of another architecture (the student 24 wide, not 16) put in place of this
  /// run's: refused as an edited recipe; forced, an error naming the file and object, and the
  /// run folder's files unchanged.
  func testACheckpointOfAnotherArchitectureIsAnErrorAndChangesNothing() throws {
    try stoppedRun()
    let other = folder + "-other"
    defer { try? FileManager.default.removeItem(atPath: other) }
    try stoppedRun(resumeRecipeYAML.replacingOccurrences(of: "hidden: [16]", with: "hidden: [24]"), in: other)
    for name in ["epoch-0003.h5", "epoch-0004.h5"] { unlink("\(folder)/\(name)") }
    replace("latest.h5", with: [UInt8](FileManager.default.contents(atPath: other + "/latest.h5")!))
    let before = ["metrics.jsonl", "teacher.h5", "latest.h5", "recipe.yaml"].map { bytes($0) }
    XCTAssertThrowsError(try Trainer.prepareResume(runFolder: folder)) {
      guard case .recipeChanged(_, _, let keys) = $0 as? TrainingError else { return XCTFail("\($0)") }
      XCTAssertEqual(keys, ["student.model.mlp.hidden[0]"])
    }
    let (trainer, point) = try resumable(folder, force: true)
    XCTAssertThrowsError(try trainer.resume(from: point)) {
      let message = "\($0)"
      for part in [
        "\(folder)/latest.h5", "/state/optimizer/1.bias.momentum_buffer", "24 values, expected 16",
      ] {
        XCTAssertTrue(message.contains(part), "\(message) lacks \(part)")
      }
    }
    XCTAssertEqual(["metrics.jsonl", "teacher.h5", "latest.h5", "recipe.yaml"].map { bytes($0) }, before)
  }
}
