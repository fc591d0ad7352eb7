import ArgumentParser
import Autodiff
import Distill
import Foundation

/// `distill eval WEIGHTS --recipe R`: accuracy and loss of saved weights on the recipe's test
/// split. Until the HDF5 issue lands, WEIGHTS is the temporary `<role>.weights.json` that
/// `distill train` writes into the run folder (see `TemporaryWeights`).
struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Evaluate saved weights on a recipe's test split.",
    discussion: """
      WEIGHTS is a run folder's teacher.weights.json or student.weights.json (a temporary
      format until HDF5 checkpoints land); the file says which of the recipe's models it holds.
      Example: distill eval checkpoints/digits-kd/student.weights.json --recipe recipes/digits-kd.yaml
      """)

  @Argument(help: "The weights file (<run folder>/student.weights.json or teacher.weights.json).")
  var weights: String

  @Option(help: "The recipe the weights were trained with (the run folder's recipe.yaml will do).")
  var recipe: String

  @Option(help: "Data location (overrides data.path), as for distill train.")
  var data: String?

  @Option(help: "Seed of the validation split (default: the seed stored with the weights).")
  var seed: UInt64?

  @Option(help: "OpenBLAS threads (default: OpenBLAS's own choice).")
  var threads: Int?

  func run() throws {
    if let threads { BLAS.threadCount = max(threads, 1) }
    do {
      let recipe = try Recipe.load(path: self.recipe)
      let result = try evaluateWeights(
        file: weights, recipe: recipe, recipeFile: self.recipe, dataPath: data, seed: seed)
      print(
        "\(result.role.rawValue) \(weights): test accuracy \(percent(result.evaluation.accuracy)), "
          + "loss \(fixed(result.evaluation.loss, 4)) on \(result.evaluation.count) samples of the "
          + "\(result.split) split (split seed \(result.seed))")
      if !result.recipeMatches {
        print(
          "note: the weights were trained with a different version of \(self.recipe) (recipe hash differs)")
      }
    } catch {
      printError(error)
      throw ExitCode.failure
    }
  }
}
