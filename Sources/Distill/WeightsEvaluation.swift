import NN
import Checkpoints
import Foundation
import DistillRecipes

/// The test figures of a saved model (`distill eval`).
public struct WeightsEvaluation: Sendable {
  /// The model group evaluated (`student`).
  public var group: String
  public var evaluation: Evaluation
  /// `test`, or `validation` for a data set without a test split (digits, csv).
  public var split: String
  /// The data set (`digits`).
  public var dataset: String
  /// The seed the split was drawn with.
  public var seed: UInt64
  /// With a recipe: whether the weights were trained with this very recipe (same
  /// `canonicalHash`, after the training run's seed); nil without a recipe or when the file
  /// records none (h5py-written).
  public var recipeMatches: Bool?
}

/// Evaluates a model file (`teacher.h5`, `student.h5`, or one h5py wrote) on the test split.
///
/// - The model is the group `group` (`--group`), or the file's only group.
/// - Without `recipe`, the file's `architecture` attribute (`ModelDescription`) gives both the
///   model and the data: the data set, its settings, and the seed that drew the split, so the
///   digits are evaluated on the samples the run held out. `dataPath` (`--data`) overrides the
///   recorded location.
/// - With `recipe` (`--recipe`), the recipe's model of the group's role (`teacher`/`student`)
///   and its `data` section are used instead; the split seed is still the file's, when it
///   records one. `seed` overrides the split seed in both cases.
///
/// Throws `CheckpointError` for an unreadable file or weights that do not fit the model,
/// `TrainingError` otherwise (no group to take, no architecture and no recipe, data problems).
public func evaluateWeights(
  file weightsFile: String, group requested: String? = nil, recipe: Recipe? = nil, recipeFile: String? = nil,
  dataPath: String? = nil, seed: UInt64? = nil
) throws -> WeightsEvaluation {
  func bad(_ reason: String) -> TrainingError { .badWeights(file: weightsFile, reason: reason) }
  // A training checkpoint's /state group is the trainer's state, not a model: never offered.
  let groups = try StoredModel.rootContents(of: weightsFile).groups.filter { $0 != trainingStateGroup }
  let listed = groups.map { "/" + $0 }.joined(separator: ", ")
  let group: String
  if let requested {
    let name = requested.hasPrefix("/") ? String(requested.dropFirst()) : requested
    guard groups.contains(name) else {
      throw bad("has no group /\(name); its groups: \(groups.isEmpty ? "none" : listed)")
    }
    group = name
  } else if groups.count == 1 {
    group = groups[0]
  } else if groups.isEmpty {
    throw bad("holds no model group (expected /teacher or /student)")
  } else {
    let checkpoint = (try? StoredModel.rootContents(of: weightsFile).groups.contains(trainingStateGroup)) ?? false
    throw bad(
      (checkpoint ? "is a training checkpoint holding several models (\(listed))" : "holds several models (\(listed))")
        + "; choose one with --group \(groups.joined(separator: "|"))")
  }
  let stored = try StoredModel(path: weightsFile, group: group)
  let description = stored.description

  let model: ModelSpec
  var dataSpec: DataSpec
  let splitSeed: UInt64
  let errorsFile: String
  let keyPath: String
  var recipeMatches: Bool?
  if let recipe {
    let recipeFile = recipeFile ?? "<recipe>"
    let role = ModelRole(rawValue: description?.role ?? group)
    switch role {
    case .student?:
      model = recipe.student.model
    case .teacher?:
      guard let teacher = recipe.teacher?.model ?? description?.model else {
        throw bad("holds a teacher, but \(recipeFile) has no teacher.model to load it into")
      }
      model = teacher
    case nil:
      guard let own = description?.model else {
        throw bad("group /\(group) is neither teacher nor student and has no architecture attribute")
      }
      model = own
    }
    dataSpec = recipe.data
    if dataSpec.path == nil, let recorded = description?.data, recorded.dataset == dataSpec.dataset {
      dataSpec.path = recorded.path
    }
    splitSeed = seed ?? description?.seed ?? recipe.seed
    errorsFile = recipeFile
    keyPath = "\(role?.rawValue ?? "student").model"
    if let description {
      var asRun = recipe
      asRun.seed = description.seed
      recipeMatches = description.recipeHash == asRun.canonicalHash
    }
  } else {
    guard let description else {
      throw bad(
        "/\(group) has no \"\(architectureAttribute)\" attribute (written by h5py?); "
          + "give the recipe whose model it holds with --recipe")
    }
    model = description.model
    dataSpec = description.data
    splitSeed = seed ?? description.seed
    errorsFile = "\(weightsFile) (/\(group)@\(architectureAttribute))"
    keyPath = "model"
  }

  let data = try TrainingData.load(dataSpec, seed: splitSeed, file: errorsFile, dataPath: dataPath)
  if recipe == nil, let description,
    description.inputShape != data.sampleShape || description.classes != data.classCount
  {
    throw bad(
      "/\(group) was built for samples of shape \(description.inputShape) and \(description.classes) "
        + "classes, but the data has \(data.sampleShape) and \(data.classCount)")
  }
  let network = try ModelBuilder(file: errorsFile, keyPath: keyPath).build(
    model, inputShape: data.sampleShape, classCount: data.classCount, seed: 0)
  let loaded = try loadNetwork(group: group, from: weightsFile, into: network)
  return WeightsEvaluation(
    group: group, evaluation: evaluate(loaded, on: data.test), split: data.testSplit,
    dataset: dataSpec.dataset.rawValue, seed: splitSeed, recipeMatches: recipeMatches)
}

/// The model of group `group` (default: `student`) of a model file we wrote, built from its
/// `architecture` attribute and loaded, in evaluation mode: an int8 network for an int8 model
/// file. Throws `TrainingError.badWeights` for a file without the group or the attribute, and
/// the `CheckpointError` of weights that do not fit.
public func loadModelFile(_ path: String, group: String = ModelRole.student.rawValue) throws
  -> (model: Sequential, description: ModelDescription)
{
  guard let description = try StoredModel(path: path, group: group).description else {
    throw TrainingError.badWeights(file: path, reason: "/\(group) has no \"\(architectureAttribute)\" attribute")
  }
  let network = try ModelBuilder(file: path, keyPath: "architecture").build(
    description.model, inputShape: description.inputShape, classCount: description.classes, seed: 0)
  let model = try loadNetwork(group: group, from: path, into: network)
  model.eval()
  return (model, description)
}

/// `network` (built in Float from the group's architecture) with the weights of `group`: the
/// network itself for a model file, the int8 network for an int8 model file (a quantize stage's).
func loadNetwork(group: String, from path: String, into network: Sequential) throws -> Sequential {
  if try isQuantizedModel(group: group, in: path) {
    return try loadQuantizedModel(group: group, from: path, into: network)
  }
  try loadModel(group: group, from: path, into: network)
  return network
}
