import ArgumentParser
import Autodiff
import Distill
import Foundation

/// `distill train RECIPE`: trains the recipe's teacher, then its student with the recipe's
/// distillation, and writes the run folder (`checkpoints/<name>/`: the recipe's copy,
/// `metrics.jsonl`, `summary.json`, the weights). With `--seeds`, once per seed, then the
/// teacher's and student's test accuracy as mean ± standard deviation.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train a recipe's teacher and distil it into the student.",
    discussion: """
      The recipe schema is in recipes/README.md. Test accuracy is that of the last epoch.
      Example: distill train recipes/digits-kd.yaml --seeds 1,2,3
      """)

  @Argument(help: "The recipe (YAML).")
  var recipe: String

  @Option(help: "Data location (overrides data.path): IDX folder, CSV file, or the folder holding datasets/.")
  var data: String?

  @Option(help: "Run folder (default: checkpoints/<recipe name>).")
  var out: String?

  @Option(help: "Replace the recipe's seed.")
  var seed: UInt64?

  @Option(
    help: "Seeds to run one after another, comma-separated (e.g. 1,2,3); run folders get a -seed<N> suffix.")
  var seeds: String?

  @Option(help: "Replace the teacher's and student's epochs.")
  var epochs: Int?

  @Option(help: "Threads of OpenBLAS and oneDNN (default: their own choice, one per core).")
  var threads: Int?

  @Flag(help: "Print only the final result.")
  var quiet = false

  @OptionGroup var parallel: DataParallelOptions

  @Flag(help: "Replace the results of an earlier run in the run folder.")
  var force = false

  func validate() throws {
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    try parallel.validate()
    if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
    if seeds != nil && seed != nil { throw ValidationError("give --seed or --seeds, not both") }
    if seeds != nil { _ = try seedList() }
  }

  private func seedList() throws -> [UInt64] {
    let parts = (seeds ?? "").split(separator: ",", omittingEmptySubsequences: false)
    let list = parts.compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
    guard !list.isEmpty, list.count == parts.count else {
      throw ValidationError(
        "--seeds takes non-negative whole numbers separated by commas, e.g. 1,2,3; got '\(seeds ?? "")'")
    }
    guard Set(list).count == list.count else {
      throw ValidationError("--seeds lists a seed twice: '\(seeds ?? "")'")
    }
    return list
  }

  func run() throws {
    if let threads { BLAS.threadCount = threads }
    let signals = StopSignals.install()
    do {
      if seeds != nil {
        try runSeeds(try seedList(), signals: signals)
      } else {
        let trainer = try Trainer(
          recipePath: recipe,
          options: TrainingOptions(dataPath: data, runFolder: out, force: force, seed: seed, epochs: epochs))
        trainer.stopRequest = signals.request
        parallel.apply(to: trainer)
        let summary = try trainer.run(onEvent: leadRankOnly(ProgressDisplay(mode: ProgressDisplay.mode(quiet: quiet)).handle))
        if leadsOutput { printResult(summary) }
      }
    } catch let error as ValidationError {
      throw error
    } catch let error as TrainingError {
      if case .stopped = error { exitAfterStop(error) }
      printError(error)
      throw ExitCode.failure
    } catch {
      printError(error)
      throw ExitCode.failure
    }
  }

  /// Every seed's run folder is checked before the first seed trains, so a refused folder
  /// does not surface after minutes of training.
  private func runSeeds(_ seeds: [UInt64], signals: StopSignals) throws {
    var trainers: [Trainer] = []
    let base = try out ?? "checkpoints/\(Recipe.load(path: recipe).name)"
    for seed in seeds {
      let trainer = try Trainer(
        recipePath: recipe,
        options: TrainingOptions(
          dataPath: data, runFolder: "\(base)-seed\(seed)", force: force, seed: seed, epochs: epochs))
      try trainer.runFolder.checkWritable(force: force)
      trainers.append(trainer)
    }
    var summaries: [RunSummary] = []
    let warnings = ProgressDisplay.PrintedWarnings()
    for trainer in trainers {
      trainer.stopRequest = signals.request
      parallel.apply(to: trainer)
      let display = ProgressDisplay(
        mode: ProgressDisplay.mode(quiet: quiet), prefix: "[seed \(trainer.recipe.seed)] ",
        printedWarnings: warnings)
      let summary = try trainer.run(onEvent: leadRankOnly(display.handle))
      if !quiet && leadsOutput { printResult(summary) }
      summaries.append(summary)
    }
    guard leadsOutput else { return }
    let first = summaries[0]
    print(
      "\(first.name): \(summaries.count) seeds (\(seeds.map(String.init).joined(separator: ", "))), "
        + "test accuracy on the \(first.testSplit) split, mean ± sample standard deviation:")
    if summaries.allSatisfy({ $0.teacher != nil }) {
      print("  teacher  \(meanAndDeviation(summaries.map { $0.teacher!.test.accuracy }))")
    }
    print(
      "  student  \(meanAndDeviation(summaries.map { $0.student.test.accuracy }))  "
        + "(distillation: \(first.method))"
    )
    for (index, stage) in first.stages.enumerated() where summaries.allSatisfy({ $0.stages.count > index }) {
      print("  \(stage.label)  \(meanAndDeviation(summaries.map { $0.stages[index].result.test.accuracy }))")
    }
    let seconds = summaries.map(\.seconds)
    print(
      "  wall time per run \(fixed(seconds.reduce(0, +) / Double(seconds.count), 1)) s, "
        + "total \(fixed(seconds.reduce(0, +), 1)) s"
    )
  }

}

/// The one-line result of a run.
func printResult(_ summary: RunSummary) {
  var parts: [String] = []
  if let teacher = summary.teacher { parts.append("teacher \(percent(teacher.test.accuracy))") }
  parts.append("student \(percent(summary.student.test.accuracy))")
  for stage in summary.stages {
    let sparsity = stage.figures["sparsity"].map { " at sparsity \(percent($0))" } ?? ""
    parts.append("\(stage.label) \(percent(stage.result.test.accuracy))\(sparsity)")
  }
  print(
    "\(summary.name) (seed \(summary.seed)): test accuracy \(parts.joined(separator: ", ")) "
      + "on the \(summary.testSplit) split, \(fixed(summary.seconds, 1)) s; "
    + "results in \(summary.runFolder)/" + (summary.stages.isEmpty ? "" : " (the run's model: \(summary.result))")
  )
}

/// `97.50 ± 0.31%`, the sample standard deviation (n − 1); `± 0` for one value.
func meanAndDeviation(_ fractions: [Double]) -> String {
  let n = Double(fractions.count)
  let mean = fractions.reduce(0, +) / n
  let variance = fractions.count > 1 ? fractions.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1) : 0
  return "\(fixed(mean * 100, 2)) ± \(fixed(variance.squareRoot() * 100, 2))%"
}

/// Prints an error's description (it names the file and key, or the folder) to standard error;
/// in a data-parallel run, prefixed with the rank.
func printError(_ error: any Error) {
  let rank = Cluster.current.size > 1 ? "rank \(Cluster.current.rank): " : ""
  FileHandle.standardError.write(Data("\(rank)error: \(error)\n".utf8))
}

/// Whether this process prints progress and results: every process but a data-parallel run's
/// ranks other than 0, which train silently (their errors are still printed).
var leadsOutput: Bool { Cluster.current.rank == 0 }

/// `handle` on rank 0; nothing on the other ranks.
func leadRankOnly(_ handle: @escaping (TrainingEvent) -> Void) -> (TrainingEvent) -> Void {
  leadsOutput ? handle : { _ in }
}

/// `--bucket-mb`, `--no-overlap`: how a data-parallel run (`mpirun -np N`) sums its gradients.
struct DataParallelOptions: ParsableArguments {
  @Option(
    name: .customLong("bucket-mb"),
    help: "Data-parallel runs (mpirun): gradient bucket size in MiB, summed over the ranks as backward goes (default 1).")
  var bucketMB: Double?

  @Flag(help: "Data-parallel runs (mpirun): sum every bucket after backward instead of during it.")
  var noOverlap = false

  func validate() throws {
    if let bucketMB, !(bucketMB > 0 && bucketMB <= 1024) {
      throw ValidationError("--bucket-mb must be more than 0 and at most 1024, got \(bucketMB)")
    }
  }

  func apply(to trainer: Trainer) {
    if let bucketMB { trainer.bucketBytes = max(4, Int(bucketMB * 1_048_576)) }
    trainer.overlap = !noOverlap
  }
}
