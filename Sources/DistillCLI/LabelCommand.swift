import ArgumentParser
import Autodiff
import Distill
import DistillReports
import Energy
import Foundation

/// `distill label RUN_DIR…`: the energy label of the model a recipe produces.
struct LabelCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "label",
    abstract: "Write the energy label (label.json, label.svg) of a recipe's model from its runs.",
    discussion: """
      Give the run folders of one recipe, one per seed (distill train --seeds 1,2,3). The label \
      shows the run's model (the last compression stage's, or the student): test accuracy \
      (mean ± sample std over the seeds), inference µJ per sample at batch 1024 and at batch 1, \
      training kJ per phase (teacher, student, each stage), grams CO₂e of training and per \
      million inferences at a grid intensity (default \(Int(EnergyLabel.defaultGridIntensity)) g/kWh: \
      \(EnergyLabel.defaultGridSource)), parameters, bytes on disk, sparsity, precision, MFLOPs per \
      sample, the energy meter (an estimate says so in red), CPU, software and date, and a grade \
      A–G: the model's inference energy against a reference set of models (MLPs of 64, 256, \
      800-800 and 1200-1200 units, and two CNNs for images) measured side by side with it on this \
      machine, now (a few seconds). Writes label.json and label.svg into --out (default: the \
      first run folder).

      Example: distill label runs/fashion-prune-seed1 runs/fashion-prune-seed2 runs/fashion-prune-seed3
      """)

  @Argument(help: "Run folders of one recipe (its seeds).")
  var runs: [String] = []

  @Option(help: "Grid carbon intensity, g CO₂e per kWh (default \(Int(EnergyLabel.defaultGridIntensity)): \(EnergyLabel.defaultGridSource)).")
  var gridIntensity: Double?

  @Option(help: "Folder for label.json and label.svg (default: the first run folder).")
  var out: String?

  @Option(help: "Threads for the grading measurement (default 1).")
  var threads: Int?

  func validate() throws {
    if runs.isEmpty { throw ValidationError("give the run folders of one recipe, e.g. distill label checkpoints/digits-kd") }
    if let gridIntensity, !(gridIntensity > 0 && gridIntensity.isFinite) {
      throw ValidationError("--grid-intensity must be a positive number of g CO₂e per kWh, got \(gridIntensity)")
    }
    if let threads, threads < 1 || threads > 4096 { throw ValidationError("--threads must be in 1...4096, got \(threads)") }
  }

  func run() throws {
    do {
      BLAS.threadCount = threads ?? 1
      let selected = try openMeter(.auto)
      defer { selected.meter.stop() }
      let label = try EnergyLabel(runs: runs, gridIntensity: gridIntensity, meter: selected.meter)
      let folder = out ?? runs[0]
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      try label.json.write(toFile: folder + "/label.json", atomically: true, encoding: .utf8)
      try label.svg.write(toFile: folder + "/label.svg", atomically: true, encoding: .utf8)
      print(
        "\(label.recipe): grade \(label.grade)"
          + (label.inferenceMicrojoules.map { String(format: ", %.1f µJ/sample at batch 1024", $0) } ?? "")
          + String(format: ", test accuracy %.2f%%", label.accuracy.mean * 100)
          + (label.energySource == "rapl" ? "" : " (energy figures are estimates)"))
      print("wrote \(folder)/label.json, \(folder)/label.svg")
    } catch {
      printError(error)
      throw ExitCode.failure
    }
  }
}
