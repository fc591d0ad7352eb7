import ArgumentParser
import Distill
import DistillReports
import Foundation

/// `distill compare RUN_DIR…`: the runs' accuracy per kJ as a table (terminal, CSV,
/// Markdown), an SVG of accuracy against training joules and one against inference µJ per
/// sample, each with its Pareto front.
struct CompareCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compare",
    abstract: "Rank runs by test accuracy per kJ of training; write a table and SVG plots.",
    discussion: """
      Reads each run folder's summary.json, metrics.jsonl and student.h5. Rows are grouped \
      by the student's data set (accuracies on different data sets do not compare) and \
      ranked within it. Columns: recipe, data set, method, student parameters and MFLOPs per sample (2·in·out per linear layer, \
      2·Cin·kh·kw·Cout·Ho·Wo per convolution), test accuracy, training joules (student, and \
      teacher + student), accuracy %/kJ (teacher + student), inference µJ per test sample, \
      energy source. Rows marked * are estimates (CPU time × W/core), never ranked on one \
      Pareto front with RAPL measurements; the plot draws one front per source and data set. \
      Runs of one recipe with several seeds (distill train --seeds 1,2,3) are also summarised \
      per recipe: test accuracy and error as mean ± sample standard deviation, mean joules, \
      in a second table and in compare-recipes.csv. A run with compression stages (compress:) \
      adds one row per stage: that stage's model, its accuracy and inference energy, and the \
      training joules of the student and the stages up to it. Writes compare.csv, \
      compare-recipes.csv, compare.md, compare.svg (accuracy against training joules) and \
      compare-inference.svg (accuracy against inference µJ per sample, batch 1024) into --out \
      (default: the current directory).

      Example: distill compare checkpoints/* --out report
      """)

  @Argument(help: "Run folders written by distill train.")
  var runs: [String] = []

  @Option(help: "Folder for compare.csv, compare-recipes.csv, compare.md, compare.svg and compare-inference.svg (default: the current directory).")
  var out: String = "."

  func run() throws {
    do {
      let report = try CompareReport(folders: runs)
      for note in report.skipped { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
      print(report.text, terminator: "")
      try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
      for (name, text) in [
        ("compare.csv", report.csv), ("compare-recipes.csv", report.recipesCSV), ("compare.md", report.markdown),
        ("compare.svg", report.svg), ("compare-inference.svg", report.inferenceSVG),
      ] {
        try text.write(toFile: out + "/" + name, atomically: true, encoding: .utf8)
      }
      print("wrote \(out)/compare.csv, compare-recipes.csv, compare.md, compare.svg, compare-inference.svg")
    } catch {
      printError(error)
      throw ExitCode.failure
    }
  }
}
