import ArgumentParser
import Autodiff
import Distill
import Foundation

/// `distill resume RUN_DIR`: continues a stopped or crashed run from its newest readable
/// checkpoint, with exactly the results an uninterrupted run would have had (at the same
/// thread count, which the checkpoint records and this command uses unless `--threads`).
struct ResumeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "resume",
    abstract: "Continue a stopped or crashed run from its latest checkpoint.",
    discussion: """
      Reads RUN_DIR/recipe.yaml and RUN_DIR/latest.h5 (or, when that is unreadable, the newest \
      readable epoch-NNNN.h5, with a warning). A recipe edited since the checkpoint is refused, \
      with the changed keys, unless --force. The run's --seed, --epochs, --data and thread count \
      are applied again.

      Example: distill resume checkpoints/digits-kd
      """)

  @Argument(help: "The run folder (what distill train wrote: checkpoints/<recipe name> or --out).")
  var runFolder: String

  @Flag(help: "Resume even though recipe.yaml was edited since the checkpoint.")
  var force = false

  @Option(help: "Data location (overrides the one the run used).")
  var data: String?

  @Option(help: "Threads of OpenBLAS and oneDNN (default: the count the run used, for bitwise-identical results).")
  var threads: Int?

  @Flag(help: "Print only the final result.")
  var quiet = false

  @Flag(help: "Data-parallel runs (mpirun): sum every bucket after backward instead of during it.")
  var noOverlap = false

  func validate() throws {
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
  }

  func run() throws {
    let signals = StopSignals.install()
    do {
      switch try Trainer.prepareResume(runFolder: runFolder, dataPath: data, force: force) {
      case .finished(let folder):
        if leadsOutput { print("\(folder.path): the run already finished (\(folder.summaryPath) exists); nothing to resume") }
      case .resume(let trainer, let point):
        if leadsOutput { for warning in point.warnings { printWarning(warning) } }
        BLAS.threadCount = threads ?? point.state.blasThreads
        if threads != nil && threads != point.state.blasThreads && leadsOutput {
          printWarning(
            "the run used \(point.state.blasThreads) BLAS threads; with \(threads!) the results can differ "
              + "in the last bits from an uninterrupted run")
        }
        let state = point.state
        if !quiet && leadsOutput {
          print(
            "resuming \(trainer.recipe.name) from \(point.path): \(state.phase) epoch \(state.epoch)"
              + (state.batch > 0 ? ", batch \(state.batch) of epoch \(state.epoch + 1)" : " done"))
        }
        trainer.stopRequest = signals.request
        trainer.overlap = !noOverlap
        let summary = try trainer.resume(
          from: point, onEvent: leadRankOnly(ProgressDisplay(mode: ProgressDisplay.mode(quiet: quiet)).handle))
        if leadsOutput { printResult(summary) }
      }
    } catch let error as TrainingError {
      if case .stopped = error { exitAfterStop(error) }
      printError(error)
      throw ExitCode.failure
    } catch {
      printError(error)
      throw ExitCode.failure
    }
  }
}

/// Prints a warning to standard error.
func printWarning(_ text: String) {
  FileHandle.standardError.write(Data("warning: \(text)\n".utf8))
}
