import ArgumentParser
import Autodiff
import Distill
import Foundation

/// `distill eval WEIGHTS.h5 [--recipe R] [--group G] [--data PATH]`: accuracy and loss of a
/// model file on the test split. A file `distill train` wrote describes its model and data
/// (the `architecture` attribute, `ModelDescription`), so it needs nothing else; an h5py-written
/// file needs `--recipe`.
struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Evaluate a model file (teacher.h5, student.h5) on its test split.",
    discussion: """
      A file written by distill train records its architecture, data set and split seed, so \
      the file alone is enough (digits: the run's held-out split). --recipe overrides the model \
      and data (and is required for files h5py wrote from PyTorch); --data overrides the data \
      location. A file with several model groups needs --group.

      Example: distill eval checkpoints/digits-kd/student.h5
      """)

  @Argument(help: "The model file (<run folder>/student.h5 or teacher.h5).")
  var weights: String

  @Option(help: "A recipe whose model and data to use instead of the file's own description.")
  var recipe: String?

  @Option(help: "The model group to evaluate (teacher or student) when the file holds several.")
  var group: String?

  @Option(help: "Data location (overrides the recorded one and data.path), as for distill train.")
  var data: String?

  @Option(help: "Seed of the held-out split (default: the seed stored with the weights).")
  var seed: UInt64?

  @Option(help: "Threads of OpenBLAS and oneDNN (default: their own choice, one per core).")
  var threads: Int?

  func run() throws {
    if let threads { BLAS.threadCount = max(threads, 1) }
    do {
      let loaded = try self.recipe.map { try Recipe.load(path: $0) }
      let result = try evaluateWeights(
        file: weights, group: group, recipe: loaded, recipeFile: self.recipe, dataPath: data, seed: seed)
      print(
        "\(result.group) \(weights): test accuracy \(percent(result.evaluation.accuracy)), "
          + "loss \(fixed(result.evaluation.loss, 4)) on \(result.evaluation.count) samples of the "
          + "\(result.split) split of \(result.dataset) (split seed \(result.seed))")
      if let recipe, result.recipeMatches == false {
        print("note: the weights were trained with a different version of \(recipe) (recipe hash differs)")
      }
    } catch {
      printError(error)
      throw ExitCode.failure
    }
  }
}
