import Checkpoints
import Foundation
import XCTest
import _TestSupport

/// `distill train` / `distill resume` as separate processes: SIGKILL at random points while
/// checkpoints are being written, SIGINT and SIGTERM, and the exit status of a broken folder.
final class KillAndResumeTests: XCTestCase {
  private var folder = ""

  override func setUpWithError() throws {
    folder = NSTemporaryDirectory() + "distill-kill-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try recipe.write(toFile: folder + "/kill.yaml", atomically: true, encoding: .utf8)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// A teacher big enough that a checkpoint (weights and momentum, about 0.7 MB) takes a few
  /// milliseconds to write, and 32 short epochs: many writes to land in.
  let recipe = """
    name: kill
    seed: 7
    data: {dataset: digits, validation: 0.25}
    teacher:
      model: {mlp: {hidden: [256, 256], dropout: 0.2}}
      train: {epochs: 16, batch_size: 64, optimizer: {sgd: {lr: 0.05, momentum: 0.9}}, schedule: cosine}
    student:
      model: {mlp: {hidden: [32]}}
      train: {epochs: 16, batch_size: 64, optimizer: {sgd: {lr: 0.05, momentum: 0.9}}, schedule: cosine}
    distillation: {method: kd, temperature: 4, alpha: 0.9}
    checkpoint: {keep_last: 3}

    """

  private var common: [String] { ["--data", repositoryRoot, "--threads", "1", "--quiet"] }

  func testSIGKILLDuringCheckpointWritesThenResumeAlwaysContinuesToTheUninterruptedResult() throws {
    let run = folder + "/run"
    var generator = SystemRandomNumberGenerator()
    var kills = 0
    var killedMidWrite = 0
    var lastRunEpoch = -1
    var attempt = 0
    while kills < 20 {
      attempt += 1
      XCTAssertLessThan(attempt, 60, "the run finished before 20 kills")
      if attempt >= 60 { break }
      let started = FileManager.default.fileExists(atPath: run + "/latest.h5")
      let arguments = started ? ["resume", run] + common : ["train", "kill.yaml", "--out", "run"] + common
      let process = try DistillProcess(arguments, in: folder)
      // Kill during the 1st or 2nd checkpoint write seen (a new temporary file), after a
      // random 0–3 ms, so some kills land before the rename and some after.
      let target = Int.random(in: 1...2, using: &generator)
      // The first run is killed only once it has a checkpoint (before, there is nothing to resume).
      while !started && process.isRunning && !FileManager.default.fileExists(atPath: run + "/latest.h5") {
        usleep(100)
      }
      var seen = temporaryFiles(in: run)
      var writes = 0
      while process.isRunning && writes < target {
        let now = temporaryFiles(in: run)
        if !now.subtracting(seen).isEmpty { writes += 1 }
        seen = now
        usleep(100)
      }
      guard process.isRunning else {
        XCTAssertEqual(process.wait(), 0, process.standardError)
        break
      }
      usleep(UInt32.random(in: 0...3000, using: &generator))
      process.send(SIGKILL)
      XCTAssertEqual(process.wait(), 128 + SIGKILL)
      kills += 1
      if !temporaryFiles(in: run).isEmpty { killedMidWrite += 1 }
      // What resume will start from is a complete checkpoint, never behind the last one.
      if FileManager.default.fileExists(atPath: run + "/latest.h5") {
        let state = try TrainingState.read(from: run + "/latest.h5")
        XCTAssertGreaterThanOrEqual(state.runEpoch, lastRunEpoch)
        lastRunEpoch = state.runEpoch
      }
    }
    XCTAssertEqual(kills, 20)
    XCTAssertGreaterThan(killedMidWrite, 0, "no kill landed while a checkpoint was being written")
    print(
      "SIGKILL: \(kills) kills, \(killedMidWrite) left a half-written temporary file; last run epoch \(lastRunEpoch)"
    )

    let (status, output, errors) = try DistillProcess.run(["resume", run] + common, in: folder)
    XCTAssertEqual(status, 0, errors)
    XCTAssertTrue(output.contains("test accuracy"), output)
    XCTAssertEqual(temporaryFiles(in: run), [], "resume removes what the killed writes left")

    // The same weights as a run never interrupted.
    let (straight, _, straightErrors) = try DistillProcess.run(
      ["train", "kill.yaml", "--out", "straight"] + common, in: folder)
    XCTAssertEqual(straight, 0, straightErrors)
    for name in ["teacher.h5", "student.h5"] {
      let a = try HDF5File.openReadOnly("\(run)/\(name)").rootGroup()
      let b = try HDF5File.openReadOnly("\(folder)/straight/\(name)").rootGroup()
      let group = try a.memberNames()[0]
      XCTAssertEqual(try a.group(group).memberNames(), try b.group(group).memberNames())
      for key in try a.group(group).memberNames() {
        XCTAssertEqual(
          try a.group(group).dataset(key).readFloats().map(\.bitPattern),
          try b.group(group).dataset(key).readFloats().map(\.bitPattern), "\(name) \(key)")
      }
    }
  }

  func testSIGINTAndSIGTERMSaveACheckpointAndExitWith130And143() throws {
    let run = folder + "/run"
    for (index, signal) in [SIGINT, SIGTERM].enumerated() {
      let arguments =
        index == 0 ? ["train", "kill.yaml", "--out", "run"] + common : ["resume", run] + common
      let process = try DistillProcess(arguments, in: folder)
      // Wait for the first epoch checkpoint of this process, then signal mid-epoch.
      let before = (try? TrainingState.read(from: run + "/latest.h5"))?.runEpoch ?? 0
      while process.isRunning, ((try? TrainingState.read(from: run + "/latest.h5"))?.runEpoch ?? 0) <= before
      {
        usleep(2000)
      }
      usleep(20_000)
      process.send(signal)
      XCTAssertEqual(process.wait(), 128 + signal, process.standardError)
      let shown = index == 0 ? "run" : run  // as the command was given the folder
      XCTAssertTrue(process.standardOutput.contains("distill resume \(shown)\n"), process.standardOutput)
      XCTAssertTrue(process.standardError.contains("stopping after this step"), process.standardError)
      XCTAssertNoThrow(try TrainingState.read(from: run + "/latest.h5"))
    }
  }

  func testResumeOfABrokenFolderExitsNonZeroNamingTheFile() throws {
    let run = folder + "/broken"
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    try recipe.write(toFile: run + "/recipe.yaml", atomically: true, encoding: .utf8)
    try "not a checkpoint\n".write(toFile: run + "/latest.h5", atomically: true, encoding: .utf8)
    let (status, _, errors) = try DistillProcess.run(["resume", run], in: folder)
    XCTAssertEqual(status, 1)
    XCTAssertTrue(errors.contains("\(run)/latest.h5: not an HDF5 file"), errors)
    XCTAssertEqual(try String(contentsOfFile: run + "/latest.h5", encoding: .utf8), "not a checkpoint\n")
    let (missing, _, missingErrors) = try DistillProcess.run(["resume", folder + "/nothing"], in: folder)
    XCTAssertEqual(missing, 1)
    XCTAssertTrue(missingErrors.contains("not a run folder"), missingErrors)
  }
}
