#if MPI
  import Checkpoints
  import Foundation
  import XCTest
  import _TestSupport

  /// Data-parallel training under `mpirun` (the MPI build: `swift test --traits MPI`): N ranks
  /// against one process, SIGKILL of one rank and resume, and the errors of a job whose ranks
  /// disagree. The runs train on a generated CSV, small enough for seconds per run.
  final class DataParallelTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
      folder = NSTemporaryDirectory() + "distill-mpi-tests-\(UUID().uuidString)"
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      try Self.csv(rows: 300, features: 16, classes: 4, seed: 3).write(
        toFile: folder + "/small.csv", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
      try? FileManager.default.removeItem(atPath: folder)
    }

    /// `mpirun` with what containers need: no CMA single-copy (no ptrace rights), root allowed,
    /// more ranks than cores.
    private func mpirun(_ ranks: Int) -> [String] {
      let path = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
      XCTAssertNotNil(path, "mpirun is not installed (Debian: openmpi-bin)")
      return [path ?? "mpirun", "--oversubscribe", "-np", "\(ranks)"]
    }

    private let environment = [
      "OMPI_MCA_btl_vader_single_copy_mechanism": "none", "OMPI_ALLOW_RUN_AS_ROOT": "1",
      "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    ]

    /// Features drawn from a normal distribution; the label is the index of the largest of the
    /// first `classes` features (learnable, not trivial).
    static func csv(rows: Int, features: Int, classes: Int, seed: UInt64) -> String {
      var state = seed
      func uniform() -> Double {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return (Double(state >> 11) + 0.5) / 9_007_199_254_740_992
      }
      var lines: [String] = []
      for _ in 0..<rows {
        let x = (0..<features).map { _ in (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform()) }
        let label = (0..<classes).max { x[$0] < x[$1] }!
        lines.append(x.map { String(format: "%.5f", $0) }.joined(separator: ",") + ",\(label)")
      }
      return lines.joined(separator: "\n") + "\n"
    }

    /// A teacher with dropout and a KD student; 250 training samples, so one epoch of batch 25
    /// is 10 optimizer steps (with `accumulate` 2 and batch 25, 5).
    private func recipe(precision: String = "f32", batch: Int = 25, accumulate: Int = 1, epochs: Int = 1) -> String {
      """
      name: dp
      seed: 5
      data: {dataset: csv, path: small.csv, validation: 50}
      teacher:
        model: {mlp: {hidden: [32, 32], dropout: 0.2}}
        train: {epochs: \(epochs), batch_size: \(batch), accumulate: \(accumulate), optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}
      student:
        model: {mlp: {hidden: [16]}}
        train: {epochs: \(epochs), batch_size: \(batch), accumulate: \(accumulate), optimizer: {adam: {lr: 0.01}}}
      distillation: {method: kd, temperature: 4, alpha: 0.9}
      precision: \(precision)

      """
    }

    /// Every weight of `group` in a model file, by key.
    private func weights(_ path: String, _ group: String) throws -> [String: [Float]] {
      let file = try HDF5File.openReadOnly(path)
      defer { try? file.close() }
      let g = try file.group(group)
      var out: [String: [Float]] = [:]
      for name in try g.memberNames() { out[name] = try g.dataset(name).readFloats() }
      return out
    }

    /// max |a − b| / max |a| over each tensor, the largest over the tensors.
    private func relativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Double {
      XCTAssertEqual(Set(a.keys), Set(b.keys))
      var worst = 0.0
      for (key, x) in a {
        guard let y = b[key], y.count == x.count else {
          XCTFail("\(key) differs in size")
          continue
        }
        let scale = Double(x.map { abs($0) }.max() ?? 0)
        let difference = zip(x, y).map { Double(abs($0 - $1)) }.max() ?? 0
        worst = max(worst, scale > 0 ? difference / scale : difference)
      }
      return worst
    }

    private func train(_ recipeText: String, name: String, ranks: Int, extra: [String] = []) throws -> String {
      try recipeText.write(toFile: folder + "/\(name).yaml", atomically: true, encoding: .utf8)
      let (status, _, errors) = try DistillProcess.run(
        ["train", "\(name).yaml", "--out", name, "--threads", "1", "--quiet"] + extra, in: folder,
        environment: environment, launcher: ranks > 1 ? mpirun(ranks) : [])
      XCTAssertEqual(status, 0, "\(name): \(errors)")
      return folder + "/" + name
    }

    /// The equivalence: N ranks, each with its shard of every batch, end where one
    /// process with the whole batch ends, after 10 steps: within 1e-5 relative in f32, bf16-mixed
    /// and with accumulation; in f16-mixed within one binary16 rounding (the files hold binary16).
    /// Batches of 25 over 2 or 3 ranks make uneven shards (13 + 12, 9 + 8 + 8).
    func testRanksMatchOneProcessWithTheWholeBatch() throws {
      let cases: [(ranks: Int, precision: String, accumulate: Int, tolerance: Double)] = [
        (2, "f32", 1, 1e-5), (3, "f32", 1, 1e-5), (3, "f32", 2, 1e-5), (2, "bf16-mixed", 1, 1e-5),
        (3, "f16-mixed", 1, 1e-3),
      ]
      for (ranks, precision, accumulate, tolerance) in cases {
        let text = recipe(precision: precision, accumulate: accumulate)
        let label = "\(precision)-acc\(accumulate)"
        let one = try train(text, name: "one-\(label)-\(ranks)", ranks: 1)
        let many = try train(text, name: "many-\(label)-\(ranks)", ranks: ranks)
        for role in ["teacher", "student"] {
          let difference = relativeDifference(
            try weights(one + "/\(role).h5", role), try weights(many + "/\(role).h5", role))
          XCTAssertLessThanOrEqual(difference, tolerance, "\(ranks) ranks, \(label), \(role)")
        }
        // The records say how many ranks trained.
        let summary = try String(contentsOfFile: many + "/summary.json", encoding: .utf8)
        XCTAssertTrue(summary.contains("\"ranks\": \(ranks), \"hosts\": 1"), summary)
        let metrics = try String(contentsOfFile: many + "/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"ranks\": \(ranks), \"hosts\": 1"), metrics)
      }
    }

    /// A pruning stage (gradual, masks on the gradients) fine-tunes over 2 ranks as one process
    /// does: the masks apply to the summed gradients too (the same masks, weights within 1e-5).
    /// With SGD: Adam turns a gradient at rounding-noise level (a unit the pruning left nearly
    /// dead) into a step of ±lr whatever its sign, which moved one weight by 1e-3 relative.
    func testPruningFineTunesAsOneProcess() throws {
      let text = recipe().replacingOccurrences(of: "adam: {lr: 0.01}", with: "sgd: {lr: 0.1, momentum: 0.9}")
        + "compress:\n  - prune: {amount: 0.5, epochs: 1, frequency: 2}\n"
      let one = try train(text, name: "prune-one", ranks: 1)
      let two = try train(text, name: "prune-two", ranks: 2)
      let difference = relativeDifference(
        try weights(one + "/student-prune.h5", "student"), try weights(two + "/student-prune.h5", "student"))
      XCTAssertLessThanOrEqual(difference, 1e-5)
    }

    /// Which of `mpirun`'s children is rank `rank` (its environment says), or nil.
    private func rankProcess(of launcher: Int32, rank: Int) -> Int32? {
      let children = (try? String(contentsOfFile: "/proc/\(launcher)/task/\(launcher)/children", encoding: .utf8)) ?? ""
      for pid in children.split(separator: " ").compactMap({ Int32($0) }) {
        guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
        let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
      }
      return nil
    }

    /// SIGKILL of one rank ends the whole job with a non-zero status; the last checkpoint is
    /// intact, and resuming on as many ranks ends with the weights of an uninterrupted run, bit
    /// for bit. Resuming on another rank count is refused.
    func testSIGKILLOfOneRankEndsTheJobAndResumeContinuesBitForBit() throws {
      try Self.csv(rows: 2050, features: 32, classes: 6, seed: 4).write(
        toFile: folder + "/small.csv", atomically: true, encoding: .utf8)
      var text = recipe(batch: 48, epochs: 10)
      text = text.replacingOccurrences(of: "hidden: [32, 32]", with: "hidden: [128, 128]")
      try text.write(toFile: folder + "/dp.yaml", atomically: true, encoding: .utf8)
      let whole = try train(text, name: "whole", ranks: 2)

      let run = folder + "/run"
      let job = try DistillProcess(
        ["train", "dp.yaml", "--out", "run", "--threads", "1", "--quiet"], in: folder, environment: environment,
        launcher: mpirun(2))
      // Kill rank 1 once the third epoch checkpoint exists (the teacher is part-way).
      while job.isRunning && !FileManager.default.fileExists(atPath: run + "/epoch-0003.h5") { usleep(1000) }
      XCTAssertTrue(job.isRunning, "the run ended before it could be killed: \(job.standardError)")
      let victim = try XCTUnwrap(rankProcess(of: job.process.processIdentifier, rank: 1), "rank 1 not found")
      kill(victim, SIGKILL)
      XCTAssertNotEqual(job.wait(), 0, "mpirun should fail when a rank is killed")
      XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/summary.json"))
      let state = try TrainingState.read(from: run + "/latest.h5")
      XCTAssertEqual(state.ranks, 2)

      // Another rank count is refused, naming the count to use, and changes nothing.
      let before = try Data(contentsOf: URL(fileURLWithPath: run + "/latest.h5"))
      let (refused, _, refusal) = try DistillProcess.run(
        ["resume", "run", "--quiet"], in: folder, environment: environment, launcher: mpirun(3))
      XCTAssertNotEqual(refused, 0)
      XCTAssertTrue(refusal.contains("trained on 2 ranks, but this resume runs on 3"), refusal)
      XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: run + "/latest.h5")), before)

      let (status, _, errors) = try DistillProcess.run(
        ["resume", "run", "--quiet"], in: folder, environment: environment, launcher: mpirun(2))
      XCTAssertEqual(status, 0, errors)
      for role in ["teacher", "student"] {
        XCTAssertEqual(
          try weights(run + "/\(role).h5", role), try weights(whole + "/\(role).h5", role),
          "\(role): the resumed run's weights differ from the uninterrupted run's")
      }
    }

    /// A rank whose data differ from rank 0's stops the job at the start with an error naming
    /// the rank and what differs; nothing is trained or written.
    func testARankWithOtherDataIsRefusedAtTheStart() throws {
      try recipe().write(toFile: folder + "/dp.yaml", atomically: true, encoding: .utf8)
      // Rank 1 reads another file: mpirun's per-rank command lines (MPMD, `:`).
      try Self.csv(rows: 300, features: 16, classes: 4, seed: 99).write(
        toFile: folder + "/other.csv", atomically: true, encoding: .utf8)
      let executable = try XCTUnwrap(distillExecutable)
      let common = ["train", "dp.yaml", "--out", "run", "--threads", "1", "--quiet"]
      let launcher = mpirun(1) + [executable] + common + ["--data", "small.csv", ":", "-np", "1"]
      let (status, _, errors) = try DistillProcess.run(
        common + ["--data", "other.csv"], in: folder, environment: environment, launcher: launcher)
      XCTAssertNotEqual(status, 0)
      XCTAssertTrue(errors.contains("rank 1 differs from rank 0 in the training data"), errors)
      XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/run/metrics.jsonl"))
    }

    /// A batch that leaves a rank without rows is refused before training, naming the key.
    func testABatchSmallerThanTheRankCountIsRefused() throws {
      try recipe(batch: 2).write(toFile: folder + "/dp.yaml", atomically: true, encoding: .utf8)
      let (status, _, errors) = try DistillProcess.run(
        ["train", "dp.yaml", "--out", "run", "--threads", "1", "--quiet"], in: folder, environment: environment,
        launcher: mpirun(3))
      XCTAssertNotEqual(status, 0)
      XCTAssertTrue(errors.contains("dp.yaml: teacher.train.batch_size: 2"), errors)
      XCTAssertTrue(errors.contains("fewer than the 3 ranks"), errors)
    }

    /// CRD's memory bank is not shared between ranks: refused with the reason.
    func testAMethodWithStateAcrossBatchesIsRefused() throws {
      let text = recipe().replacingOccurrences(
        of: "distillation: {method: kd, temperature: 4, alpha: 0.9}", with: "distillation: {method: crd}")
      try text.write(toFile: folder + "/dp.yaml", atomically: true, encoding: .utf8)
      let (status, _, errors) = try DistillProcess.run(
        ["train", "dp.yaml", "--out", "run", "--threads", "1", "--quiet"], in: folder, environment: environment,
        launcher: mpirun(2))
      XCTAssertNotEqual(status, 0)
      XCTAssertTrue(errors.contains("crd keeps state across batches"), errors)
    }
  }
#endif
