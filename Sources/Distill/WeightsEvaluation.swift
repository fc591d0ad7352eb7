import Foundation

/// The test figures of a saved model (`distill eval`).
public struct WeightsEvaluation: Sendable {
  public var role: ModelRole
  public var evaluation: Evaluation
  /// `test`, or `validation` for a data set without a test split (digits, csv).
  public var split: String
  /// The seed the split was drawn with.
  public var seed: UInt64
  /// Whether the weights were trained with this very recipe (same `canonicalHash`, after the
  /// training run's overrides).
  public var recipeMatches: Bool
}

/// Evaluates the weights in `weightsFile` (a `TemporaryWeights` file until HDF5 lands) on the
/// test split of `recipe`'s data. The model is the recipe's teacher or student, whichever the
/// file says it holds; the data split is drawn with the seed stored in the file unless `seed`
/// is given, so digits are evaluated on the same held-out samples the run was.
public func evaluateWeights(
  file weightsFile: String, recipe: Recipe, recipeFile: String, dataPath: String? = nil, seed: UInt64? = nil
) throws -> WeightsEvaluation {
  let contents = try TemporaryWeights.read(path: weightsFile)
  let model: ModelSpec
  switch contents.role {
  case .student:
    model = recipe.student.model
  case .teacher:
    guard let teacher = recipe.teacher?.model else {
      throw TrainingError.badWeights(
        file: weightsFile, reason: "holds a teacher, but \(recipeFile) has no teacher.model to load it into")
    }
    model = teacher
  }
  let splitSeed = seed ?? contents.seed
  let data = try TrainingData.load(recipe.data, seed: splitSeed, file: recipeFile, dataPath: dataPath)
  let network = try ModelBuilder(file: recipeFile, keyPath: "\(contents.role.rawValue).model").build(
    model, inputShape: data.sampleShape, classCount: data.classCount, seed: 0)
  do {
    try network.load(stateDict: contents.stateDict)
  } catch {
    throw TrainingError.badWeights(
      file: weightsFile, reason: "does not fit \(recipeFile)'s \(contents.role.rawValue) model: \(error)")
  }
  var asRun = recipe
  asRun.seed = contents.seed
  return WeightsEvaluation(
    role: contents.role, evaluation: evaluate(network, on: data.test), split: data.testSplit, seed: splitSeed,
    recipeMatches: contents.recipeHash == asRun.canonicalHash)
}
