import ArgumentParser
import Autodiff
import Distill
import Foundation

/// `distill`: train teacher and student networks, distil one into the other, and measure what
/// each epoch cost. Every subcommand is a thin layer over the `Distill` library.
@main
struct DistillCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "distill",
    abstract: "Knowledge distillation on the CPU, with the joules each result cost.",
    discussion: """
      Start with `distill bench` to see how fast this machine trains, side by
      side with PyTorch's reference script (scripts/torch_bench.py).
      """,
    subcommands: [
      BenchCommand.self, TrainCommand.self, ResumeCommand.self, EvalCommand.self, EnergyCommand.self,
      CompareCommand.self, LabelCommand.self, MethodsCommand.self, StagesCommand.self, AllreduceBenchCommand.self,
      ReadHDF5Command.self,
    ])

  static func main() {
    installHDF5Vetting()
    // Under `mpirun` (the MPI build) every rank joins the job here; a plain build refuses to run
    // as several ranks.
    do { try Cluster.start() } catch {
      printError(error)
      Foundation.exit(1)
    }
    main(nil)
    Cluster.finish()
  }
}
