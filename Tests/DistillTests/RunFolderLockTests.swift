import Foundation
import XCTest

@testable import Distill
@testable import DistillRecipes

/// One writer per run folder, and `--force` replacing a run without ever leaving a mix.
final class RunFolderLockTests: XCTestCase {
  private var parent = ""

  override func setUpWithError() throws {
    parent = NSTemporaryDirectory() + "distill-lock-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: parent)
  }

  func testASecondLockOnTheSameFolderIsRefusedWithTheHoldersPIDUntilReleased() throws {
    let run = parent + "/run"
    let first = try RunFolderLock(folder: run)
    XCTAssertEqual(try String(contentsOfFile: run + "/.lock", encoding: .utf8), "\(getpid())\n")
    XCTAssertThrowsError(try RunFolderLock(folder: run)) {
      XCTAssertEqual($0 as? TrainingError, .runFolderLocked(folder: run, pid: getpid()))
      XCTAssertTrue("\($0)".contains("PID \(getpid())"), "\($0)")
    }
    first.release()
    XCTAssertFalse(FileManager.default.fileExists(atPath: run), "a folder the lock made and nothing used is removed")
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    try "x".write(toFile: run + "/recipe.yaml", atomically: true, encoding: .utf8)
    let second = try RunFolderLock(folder: run)
    second.release()
    XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/recipe.yaml"), "a folder that existed stays")
  }

  func testAFileWhereTheFolderShouldBeIsAnError() throws {
    let path = parent + "/file"
    try "x".write(toFile: path, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try RunFolderLock(folder: path)) {
      XCTAssertEqual($0 as? TrainingError, .cannotWrite(path: path, reason: "it is a file, not a folder"))
    }
  }

  func testReplacingSwapsInAnEmptyFolderKeepsForeignFilesAndHoldsTheLock() throws {
    let run = parent + "/run"
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    for name in ["recipe.yaml", "metrics.jsonl", "summary.json", "epoch-0200.h5", "latest.h5", ".x.tmp-1-ab", "notes.txt"] {
      try name.write(toFile: run + "/" + name, atomically: true, encoding: .utf8)
    }
    let lock = try RunFolderLock(folder: run)
    try lock.replaceWithEmptyFolder()
    XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: run)), [".lock", "notes.txt"])
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), ["run"], "the old run is gone")
    XCTAssertThrowsError(try RunFolderLock(folder: run), "the new folder's lock is held") {
      XCTAssertEqual($0 as? TrainingError, .runFolderLocked(folder: run, pid: getpid()))
    }
    lock.release()
    XCTAssertNoThrow(try RunFolderLock(folder: run).release())
  }

  func testALeftoverOfAnInterruptedReplacementIsRemovedWhenItsProcessIsGone() throws {
    let run = parent + "/run"
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    // PID 2^22 + 1 is above Linux's largest PID, so no process has it.
    let dead = parent + "/.run.replaced-4194305"
    let foreign = parent + "/.run.replaced-4194306"
    for (folder, files) in [(dead, ["metrics.jsonl", "epoch-0003.h5"]), (foreign, ["metrics.jsonl", "notes.txt"])] {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      for name in files { try name.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8) }
    }
    try RunFolderLock(folder: run).release()
    XCTAssertFalse(FileManager.default.fileExists(atPath: dead))
    XCTAssertTrue(FileManager.default.fileExists(atPath: foreign), "a leftover holding a file not a run's stays")
  }
}
