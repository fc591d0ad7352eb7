import Autodiff
import Datasets
import Foundation
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// Checks `metrics.jsonl`'s energy fields against each other and `summary`: every line has a
/// source (the summary's), positive joules, `avg_watts = joules / seconds`, `eval_joules` within
/// `joules`, and each model's lines add up to its training joules in the summary.
func assertEnergyFields(
  _ lines: [[String: Any]], summary: RunSummary, file: StaticString = #filePath, line: UInt = #line
) {
  func number(_ value: Any?) -> Double { (value as? NSNumber)?.doubleValue ?? .nan }
  for record in lines {
    let (joules, seconds) = (number(record["joules"]), number(record["seconds"]))
    XCTAssertEqual(
      record["energy_source"] as? String, summary.student.energy?.source.rawValue, file: file, line: line)
    XCTAssertGreaterThanOrEqual(joules, 0, file: file, line: line)
    XCTAssertEqual(number(record["avg_watts"]), joules / seconds, accuracy: 1e-9, file: file, line: line)
    XCTAssertLessThanOrEqual(number(record["eval_joules"]), joules, file: file, line: line)
    XCTAssertNotNil(record["dram_joules"], file: file, line: line)
  }
  for result in [summary.teacher, summary.student].compactMap({ $0 }) {
    let own = lines.filter { $0["model"] as? String == result.role.rawValue }
    let total = own.reduce(0) { $0 + number($1["joules"]) }
    XCTAssertEqual(result.energy?.trainingJoules ?? .nan, total, accuracy: 1e-9, file: file, line: line)
    XCTAssertGreaterThan(result.energy?.inferenceSamples ?? 0, 0, file: file, line: line)
    // Batch 1 as well, on the threads the run used.
    XCTAssertGreaterThan(result.energy?.singleSamples ?? 0, 0, file: file, line: line)
    XCTAssertGreaterThanOrEqual(result.energy?.singleSampleMicrojoules ?? -1, 0, file: file, line: line)
    XCTAssertEqual(result.energy?.inferenceThreads, BLAS.threadCount, file: file, line: line)
  }
}

/// The trainer's energy meter: `rapl` without RAPL fails before training; `estimate` and a
/// fake powercap tree (`DISTILL_POWERCAP_ROOT`) label every figure with their source.
final class TrainerEnergyTests: XCTestCase {
  private var folder = ""

  override func setUpWithError() throws {
    folder = NSTemporaryDirectory() + "distill-energy-tests-\(UUID().uuidString)"
  }

  override func tearDownWithError() throws {
    unsetenv("DISTILL_POWERCAP_ROOT")
    try? FileManager.default.removeItem(atPath: folder)
  }

  private func run(energy: String) throws -> RunSummary {
    let yaml = """
      name: energy-digits
      data: {dataset: digits, validation: 0.25}
      student:
        model: {mlp: {hidden: [8]}}
        train: {epochs: 2, batch_size: 64, optimizer: {sgd: {lr: 0.1}}}
      energy: \(energy)

      """
    let recipe = try Recipe.parse(yaml: yaml, file: "recipes/energy.yaml")
    let all = try loadEmbeddedDigits(root: repositoryRoot)
    let split = all.subset(Array(0..<400)).stratifiedSplit(validationFraction: 0.25, seed: 1)
    let data = TrainingData(
      train: split.train, validation: split.validation, test: split.validation, validationSplit: "validation",
      testSplit: "validation")
    return try Trainer(
      recipe: recipe, recipeFile: "recipes/energy.yaml", recipeText: yaml,
      options: TrainingOptions(runFolder: folder)
    ).run(data: data)
  }

  private func metricsLines() throws -> [[String: Any]] {
    try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
      .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
  }

  func testRAPLWithoutPowercapFailsBeforeTraining() throws {
    let root = folder + "-no-powercap"
    setenv("DISTILL_POWERCAP_ROOT", root, 1)
    XCTAssertThrowsError(try run(energy: "{meter: rapl}")) { error in
      guard case .energyUnavailable(let file, let keyPath, let reason) = error as? TrainingError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual([file, keyPath], ["recipes/energy.yaml", "energy.meter"])
      XCTAssertTrue(reason.contains("\(root) does not exist"), reason)
      XCTAssertTrue("\(error)".contains("meter: auto"), "\(error)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/metrics.jsonl"), "nothing was written")
  }

  func testEstimateLabelsEveryFigure() throws {
    // One thread: at two, oneDNN's OpenMP worker spins between products, so the process's CPU
    // time is close to wall time × 2 and the bound below would hold with no margin for the
    // windows' edges (a failure seen once in five runs).
    let threads = BLAS.threadCount
    BLAS.threadCount = 1
    defer { BLAS.threadCount = threads }
    let summary = try run(energy: "{meter: estimate, watts_per_core: 10}")
    let lines = try metricsLines()
    assertEnergyFields(lines, summary: summary)
    XCTAssertTrue(
      lines.allSatisfy { $0["energy_source"] as? String == "estimate" && $0["dram_joules"] is NSNull })
    // CPU time cannot outrun wall time × CPUs, so neither can the estimate's watts.
    let cpus = Double(ProcessInfo.processInfo.activeProcessorCount)
    XCTAssertTrue(lines.allSatisfy { ($0["avg_watts"] as! NSNumber).doubleValue <= 10 * cpus * 1.05 })
    XCTAssertTrue(summary.energyMeter?.hasPrefix("estimate") ?? false)
    XCTAssertNil(summary.energyWarning)
  }

  func testRAPLFromAFakeTreeIsLabelledRAPL() throws {
    let root = folder + "-powercap"
    for (zone, name) in [("intel-rapl:0", "package-0"), ("intel-rapl:0/intel-rapl:0:0", "dram")] {
      let path = root + "/" + zone
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
      for (file, text) in [("name", name), ("energy_uj", "5000000"), ("max_energy_range_uj", "262143328850")]
      {
        try text.write(toFile: path + "/" + file, atomically: false, encoding: .utf8)
      }
    }
    defer { try? FileManager.default.removeItem(atPath: root) }
    setenv("DISTILL_POWERCAP_ROOT", root, 1)
    let summary = try run(energy: "{meter: rapl}")
    let lines = try metricsLines()
    assertEnergyFields(lines, summary: summary)
    // The fake counters stand still: zero joules, measured, with DRAM.
    XCTAssertTrue(
      lines.allSatisfy { $0["energy_source"] as? String == "rapl" && $0["dram_joules"] as? Double == 0 })
    XCTAssertEqual(summary.student.energy?.trainingDRAMJoules, 0)
    XCTAssertTrue(summary.energyMeter?.contains("package-0") ?? false)
  }
}
