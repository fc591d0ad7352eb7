import Datasets
import Foundation
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes
@testable import DistillReports

/// `distill compare` over real run folders written by the trainer on a digits subset, checked
/// against their `metrics.jsonl`.
final class CompareTests: XCTestCase {
  private var folder = ""

  override func setUpWithError() throws {
    folder = NSTemporaryDirectory() + "distill-compare-tests-\(UUID().uuidString)"
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: folder)
  }

  private func train(_ name: String, teacher: Bool, teacherFrom: String? = nil, compress: String = "") throws -> String {
    let teacherSection =
      teacherFrom.map { "teacher: {from: \($0)}" }
      ?? "teacher:\n  model: {mlp: {hidden: [32]}}\n  train: {epochs: 2, batch_size: 64, optimizer: {sgd: {lr: 0.1}}}"
    let yaml = """
      name: \(name)
      data: {dataset: digits, validation: 0.25}
      \(teacher ? teacherSection : "")
      student:
        model: {mlp: {hidden: [8]}}
        train: {epochs: 2, batch_size: 64, optimizer: {sgd: {lr: 0.1}}}
      distillation: {method: \(teacher ? "kd" : "none")}
      energy: {meter: estimate}
      \(compress)

      """
    let all = try loadEmbeddedDigits(root: repositoryRoot)
    let split = all.subset(Array(0..<400)).stratifiedSplit(validationFraction: 0.25, seed: 1)
    let data = TrainingData(
      train: split.train, validation: split.validation, test: split.validation, validationSplit: "validation",
      testSplit: "validation")
    let out = folder + "/" + name
    _ = try Trainer(
      recipe: try Recipe.parse(yaml: yaml, file: "\(name).yaml"), recipeFile: "\(name).yaml",
      recipeText: yaml,
      options: TrainingOptions(runFolder: out)
    ).run(data: data)
    return out
  }

  func testARunWithStagesGivesOneRowPerStageAndAnInferencePlot() throws {
    let run = try train(
      "staged", teacher: true,
      compress: "compress: [{prune: {amount: 0.5, epochs: 1, schedule: one_shot}}, {quantize: {calibration_samples: 50}}]")
    let report = try CompareReport(folders: [run])

    let byStage = Dictionary(uniqueKeysWithValues: report.runs.map { ($0.stage ?? "student", $0) })
    XCTAssertEqual(Set(byStage.keys), ["student", "prune", "quantize"])
    let joules = try metricsJoules(run)
    let (student, prune, quantize) = (byStage["student"]!, byStage["prune"]!, byStage["quantize"]!)
    // Each row's training energy: the student's, plus the stages up to it; the teacher in the total.
    XCTAssertEqual(student.studentJoules ?? -1, joules["student"]!, accuracy: 1e-9)
    XCTAssertEqual(student.totalJoules ?? -1, joules["student"]! + joules["teacher"]!, accuracy: 1e-9)
    XCTAssertEqual(prune.studentJoules ?? -1, joules["student"]! + joules["prune"]!, accuracy: 1e-9)
    XCTAssertEqual(quantize.totalJoules ?? -1, prune.totalJoules ?? -2, accuracy: 1e-9)  // no epochs
    XCTAssertEqual(prune.recipe, "staged/prune")
    let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/summary.json"))) as! [String: Any]
    let stages = summary["stages"] as! [[String: Any]]
    XCTAssertEqual(prune.testAccuracy, (stages[0]["test_accuracy"] as! NSNumber).doubleValue)
    XCTAssertEqual(prune.studentParameters, student.studentParameters - (stages[0]["pruned_weights"] as! NSNumber).intValue)
    XCTAssertEqual(quantize.inferenceMicrojoulesPerSample, (stages[1]["inference_uj_per_sample"] as! NSNumber).doubleValue)
    // The inference plot places every row by its µJ per sample and marks a front.
    let svg = report.inferenceSVG
    XCTAssertTrue(svg.contains("inference energy per sample"))
    XCTAssertEqual(svg.components(separatedBy: "<circle").count - 1, 3 + 1)  // three rows and the legend
    XCTAssertFalse(report.paretoFront(source: "estimate", dataset: "digits", axis: .inference).isEmpty)
    XCTAssertTrue(report.text.contains("(prune)") && report.text.contains("(quantize)"))
  }

  private func metricsJoules(_ run: String) throws -> [String: Double] {
    var sums: [String: Double] = [:]
    for line in try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n") {
      let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
      sums[record["model"] as! String, default: 0] += (record["joules"] as! NSNumber).doubleValue
    }
    return sums
  }

  func testTableMatchesMetricsAndMarksEstimatesAndOldRuns() throws {
    let kd = try train("kd-run", teacher: true)
    let alone = try train("alone-run", teacher: false)
    // A run from before energy measurement: the same files with null joules.
    let old = folder + "/old-run"
    try FileManager.default.copyItem(atPath: alone, toPath: old)
    let lines = try String(contentsOfFile: old + "/metrics.jsonl", encoding: .utf8)
    let nulled = lines.replacingOccurrences(
      of: #""joules": [0-9.e-]+"#, with: #""joules": null"#, options: .regularExpression)
    try nulled.write(toFile: old + "/metrics.jsonl", atomically: true, encoding: .utf8)

    let report = try CompareReport(folders: [old, kd, alone])
    XCTAssertEqual(report.runs.map(\.folder).last, old, "runs without figures come last")
    for run in report.runs.dropLast() {
      let sums = try metricsJoules(run.folder)
      XCTAssertEqual(run.studentJoules!, sums["student"]!, accuracy: 1e-9)
      XCTAssertEqual(run.totalJoules!, sums.values.reduce(0, +), accuracy: 1e-9)
      XCTAssertEqual(
        run.accuracyPerKilojoule!, run.testAccuracy * 100 / (run.totalJoules! / 1000), accuracy: 1e-9)
      XCTAssertEqual(run.energySource, "estimate")
      XCTAssertGreaterThan(run.inferenceMicrojoulesPerSample ?? 0, 0)
      // 64 → 8 → 10: 2·(64·8 + 8·10) FLOPs.
      XCTAssertEqual(run.studentFLOPs, 2 * (64 * 8 + 8 * 10))
      XCTAssertEqual(run.studentParameters, 64 * 8 + 8 + 8 * 10 + 10)
    }
    let ranked = report.runs.dropLast().map { $0.accuracyPerKilojoule! }
    XCTAssertEqual(ranked, ranked.sorted(by: >))
    XCTAssertNil(report.runs.last!.totalJoules)

    let text = report.text
    XCTAssertTrue(text.contains("kd-run*") && text.contains("alone-run*"), text)
    XCTAssertTrue(text.contains("* estimate: CPU seconds × watts per core, not a measurement"), text)
    XCTAssertTrue(text.contains("metrics.jsonl has no joules"), text)
    let csv = report.csv.split(separator: "\n")
    XCTAssertEqual(csv.count, 4)
    XCTAssertEqual(csv[0].split(separator: ",").count, 13)
    XCTAssertTrue(csv[0].hasPrefix("recipe,run,seed,data set,method,"), String(csv[0]))
    let kdRow = csv.first { $0.hasPrefix("kd-run,") }!.split(separator: ",", omittingEmptySubsequences: false)
    let kdRun = report.runs.first { $0.recipe == "kd-run" }!
    XCTAssertEqual(kdRow[1], Substring(kd), "every row names its run folder")
    XCTAssertEqual(kdRow[2], Substring(String(kdRun.seed ?? 0)))
    XCTAssertNotNil(kdRun.seed)
    XCTAssertEqual(kdRow[3], "digits")
    XCTAssertEqual(Double(kdRow[9])!, kdRun.totalJoules!, accuracy: 0.051)
    XCTAssertEqual(kdRow[12], "estimate")
    XCTAssertTrue(report.markdown.contains("| kd-run\\* | \(kd) | \(kdRun.seed!) | digits | kd |"), report.markdown)
    let svg = report.svg
    XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    XCTAssertTrue(svg.contains("kd-run [digits]") && svg.contains("alone-run [digits]")
        && svg.contains("estimate (CPU time × W/core)"))
    XCTAssertFalse(svg.contains("old-run"), "a run without figures has no point")
  }

  /// A run whose teacher came from a file counts only the student's training, and says so.
  func testALoadedTeacherIsNoted() throws {
    let kd = try train("kd-run", teacher: true)
    let reused = try train("reused-teacher", teacher: true, teacherFrom: kd + "/teacher.h5")
    let report = try CompareReport(folders: [kd, reused])
    let run = try XCTUnwrap(report.runs.first { $0.folder == reused })
    XCTAssertEqual(run.totalJoules!, try metricsJoules(reused)["student"]!, accuracy: 1e-9)
    XCTAssertEqual(run.totalJoules, run.studentJoules)
    XCTAssertTrue(run.note?.contains("teacher loaded from a file (teacher.from)") == true, run.note ?? "nil")
    XCTAssertNil(report.runs.first { $0.folder == kd }!.note)
    XCTAssertTrue(report.text.contains("reused-teacher (\(reused)): teacher loaded from a file"), report.text)
  }

  func testWhatIsNotARunIsSkippedWithAReasonAndTheSameRunTwiceIsRefused() throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let readme = folder + "/README.md"
    try "runs\n".write(toFile: readme, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try CompareReport(folders: [folder, readme, folder + "/missing"])) {
      XCTAssertEqual(
        $0 as? CompareError,
        .nothingToCompare(skipped: [
          "\(folder): skipped, not a run folder (no summary.json, no recipe.yaml)",
          "\(readme): skipped, a file, not a run folder",
          "\(folder)/missing: skipped, no such file or folder",
        ]))
    }
    XCTAssertThrowsError(try CompareReport(folders: [])) { XCTAssertEqual($0 as? CompareError, .noRuns) }
    let kd = try train("kd-run", teacher: true)
    let report = try CompareReport(folders: [readme, kd])
    XCTAssertEqual(report.runs.map(\.folder), [kd])
    XCTAssertEqual(report.skipped, ["\(readme): skipped, a file, not a run folder"])
    XCTAssertThrowsError(try CompareReport(folders: [kd, kd + "/../kd-run/"])) {
      XCTAssertEqual($0 as? CompareError, .duplicate(folder: kd + "/../kd-run/", first: kd))
    }
    // An interrupted run is skipped with the command that finishes it.
    try FileManager.default.removeItem(atPath: kd + "/summary.json")
    XCTAssertThrowsError(try CompareReport(folders: [kd])) {
      XCTAssertEqual(
        $0 as? CompareError,
        .nothingToCompare(skipped: [
          "\(kd): skipped, the run has not finished (no summary.json); continue it with distill resume \(kd)"
        ]))
    }
  }

  func testParetoFrontStaysWithinOneSourceAndOneDataSet() {
    func run(_ name: String, _ accuracy: Double, _ joules: Double, _ source: String, _ dataset: String = "digits")
      -> ComparedRun
    {
      ComparedRun(
        folder: name, recipe: name, dataset: dataset, method: "kd", studentParameters: 1, studentFLOPs: 2,
        testAccuracy: accuracy,
        testSplit: "test", studentJoules: joules, totalJoules: joules, inferenceMicrojoulesPerSample: 1,
        energySource: source, note: nil)
    }
    let report = CompareReport(runs: [
      run("a", 0.90, 100, "rapl"), run("m", 0.99, 50, "rapl", "mnist"), run("b", 0.95, 400, "rapl"),
      run("c", 0.89, 500, "rapl"),
      run("e", 0.99, 10, "estimate"),  // better than all, but an estimate: not on the RAPL front
    ])
    let names = { (indices: [Int]) in Set(indices.map { report.runs[$0].recipe }) }
    // m would dominate a and b, but its accuracy is on another data set.
    XCTAssertEqual(names(report.paretoFront(source: "rapl", dataset: "digits")), ["a", "b"])
    XCTAssertEqual(names(report.paretoFront(source: "rapl", dataset: "mnist")), ["m"])
    XCTAssertEqual(names(report.paretoFront(source: "estimate", dataset: "digits")), ["e"])
    XCTAssertEqual(report.runs.map(\.recipe), ["e", "a", "b", "c", "m"], "grouped by data set, then accuracy/kJ")
    XCTAssertEqual(report.datasets, ["digits", "mnist"])
    XCTAssertTrue(report.notes[0].contains("separate Pareto front"), report.notes[0])
    XCTAssertEqual(report.svg.components(separatedBy: "<polyline").count - 1, 1, "one front with more than one point")
  }

  /// Runs of one recipe over several seeds summarised per recipe: mean ± sample standard
  /// deviation of accuracy and error, mean joules; estimates and measurements never averaged
  /// together; one seed has no deviation.
  func testSeedsOfOneRecipeAreSummarisedAsMeanAndSampleStd() {
    func run(_ recipe: String, seed: UInt64, _ accuracy: Double, _ joules: Double, source: String = "rapl", method: String = "kd")
      -> ComparedRun
    {
      var run = ComparedRun(
        folder: "\(recipe)-\(seed)-\(source)", recipe: recipe, dataset: "fashion-mnist", method: method,
        studentParameters: 100, studentFLOPs: 2, testAccuracy: accuracy, testSplit: "test", studentJoules: joules,
        totalJoules: joules + 1000, inferenceMicrojoulesPerSample: 2, energySource: source, note: nil)
      run.seed = seed
      return run
    }
    let report = CompareReport(runs: [
      run("dkd", seed: 1, 0.90, 1000, method: "dkd"), run("dkd", seed: 2, 0.92, 2000, method: "dkd"),
      run("dkd", seed: 3, 0.94, 3000, method: "dkd"), run("kd", seed: 1, 0.91, 500),
      run("kd", seed: 1, 0.95, 400, source: "estimate"),
    ])
    let summaries = report.recipeSummaries
    XCTAssertEqual(summaries.count, 3, "kd measured and kd estimated stay apart")
    let dkd = summaries.first { $0.recipe == "dkd" }!
    XCTAssertEqual(dkd.seeds, [1, 2, 3])
    XCTAssertEqual(dkd.accuracy.mean, 92, accuracy: 1e-9)
    XCTAssertEqual(dkd.accuracy.std!, 2, accuracy: 1e-9)
    XCTAssertEqual(dkd.studentJoules!.mean, 2000, accuracy: 1e-9)
    XCTAssertEqual(dkd.studentJoules!.std!, 1000, accuracy: 1e-9)
    XCTAssertEqual(dkd.accuracyPerKilojoule!, 92 / 3, accuracy: 1e-9)
    XCTAssertNil(summaries.first { $0.recipe == "kd" && $0.energySource == "rapl" }!.accuracy.std)
    XCTAssertTrue(report.text.contains("Per recipe over its seeds"), report.text)
    XCTAssertTrue(report.text.contains("92.00 ± 2.00"), report.text)
    XCTAssertTrue(report.text.contains("8.00 ± 2.00"), "the test error too")
    XCTAssertTrue(report.markdown.contains("| dkd | fashion-mnist | dkd | 1,2,3 | 100 | 92.00 ± 2.00 | 8.00 ± 2.00 |"), report.markdown)
    let csv = report.recipesCSV.split(separator: "\n")
    XCTAssertEqual(csv.count, 4)
    XCTAssertTrue(csv[0].hasPrefix("recipe,data set,method,seeds,student params,test accuracy % mean,test accuracy % std"))
    XCTAssertTrue(csv.contains { $0.hasPrefix("dkd,fashion-mnist,dkd,1 2 3,100,92.00,2.00,8.00,2.00,2.000,1.000,3.000,1.000,30.67") }, "\(csv)")
    XCTAssertTrue(csv.contains { $0.hasPrefix("kd,fashion-mnist,kd,1,100,91.00,,9.00,,0.500,,1.500,,") }, "\(csv)")
    // Runs of one seed each: no second table.
    XCTAssertFalse(CompareReport(runs: [run("kd", seed: 1, 0.91, 500)]).text.contains("Per recipe"))
  }
}
