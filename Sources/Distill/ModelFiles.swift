import Checkpoints
import Datasets
import Foundation
import NN
import Yams
import DistillRecipes

/// One model group of an HDF5 weights file, and what its `architecture` attribute says.
struct StoredModel {
  /// The file.
  var path: String
  /// The group's name below the root (`"teacher"`), or `"/"` for datasets at the root.
  var group: String
  /// The description, when the group has an `architecture` attribute (files we write);
  /// nil for a file h5py wrote from a PyTorch `state_dict`.
  var description: ModelDescription?

  /// The model groups at the root of the file at `path`, in file order (a pruned model's
  /// `masks` group is not one), and whether the root also holds datasets (a `state_dict`
  /// written without a group).
  static func rootContents(of path: String) throws -> (groups: [String], hasDatasets: Bool) {
    let root = try HDF5File.openReadOnly(path).rootGroup()
    var groups: [String] = []
    var hasDatasets = false
    for member in try root.memberNames() {
      if (try? root.group(member)) != nil {
        if member != maskGroup { groups.append(member) }
      } else {
        hasDatasets = true
      }
    }
    return (groups, hasDatasets)
  }

  /// The model for a recipe's `teacher.from` or `student.init`: the group named after `role`
  /// when there is one, else the file's only group, else the root when it holds datasets.
  /// Throws `CheckpointError` for an unreadable file, `TrainingError.badWeights` when no group
  /// fits or the architecture attribute is not ours.
  static func open(_ path: String, preferring role: ModelRole) throws -> StoredModel {
    let (groups, hasDatasets) = try rootContents(of: path)
    let group: String
    if groups.contains(role.rawValue) {
      group = role.rawValue
    } else if groups.count == 1 {
      group = groups[0]
    } else if groups.isEmpty && hasDatasets {
      group = "/"
    } else if groups.isEmpty {
      throw TrainingError.badWeights(file: path, reason: "holds no model (no groups, no datasets)")
    } else {
      throw TrainingError.badWeights(
        file: path,
        reason: "holds the groups \(groups.map { "/" + $0 }.joined(separator: ", ")) and none is /\(role.rawValue); "
          + "name the model's group \(role.rawValue)")
    }
    return try StoredModel(path: path, group: group)
  }

  /// The model in `group` of the file at `path` (which must exist).
  init(path: String, group: String) throws {
    self.path = path
    self.group = group
    if let text = try readArchitecture(group: group, from: path) {
      do {
        description = try ModelDescription.parse(
          text, source: "\(path) \(group == "/" ? "" : "/")\(group)@\(architectureAttribute)")
      } catch {
        throw TrainingError.badWeights(file: path, reason: error.reason)
      }
    } else {
      description = nil
    }
  }

  /// `/student`, or `/` for the root.
  var groupPath: String { group == "/" ? "/" : "/" + group }
}

extension Trainer {
  /// Opens the weights file a recipe names at `keyPath` (`teacher.from`, `student.init`) and
  /// picks its model group (`StoredModel.open`). Cheap: done before the data is loaded, so a
  /// missing or broken file fails at once. Throws `TrainingError.cannotLoadWeights` (wrapping
  /// the `CheckpointError`: file, object, HDF5's message) or `.weightsMismatch`, both naming the
  /// recipe file and `keyPath`.
  func openWeights(_ path: String, keyPath: String, role: ModelRole) throws -> StoredModel {
    try wrappingWeightErrors(path, keyPath: keyPath) { try StoredModel.open(path, preferring: role) }
  }

  /// Builds the model of `role` and loads `stored` into it. The architecture is the recipe's
  /// `model` when given, else the file's `architecture` attribute, which must then fit the
  /// data. Errors as `openWeights`.
  func loadWeights(
    _ stored: StoredModel, keyPath: String, role: ModelRole, model: ModelSpec?, sampleShape: [Int],
    classCount: Int
  ) throws -> (model: Sequential, spec: ModelSpec) {
    let path = stored.path
    func mismatch(_ reason: String) -> TrainingError {
      .weightsMismatch(file: recipeFile, keyPath: keyPath, weights: path, reason: reason)
    }
    let spec: ModelSpec
    let builder: ModelBuilder
    if let model {
      spec = model
      builder = ModelBuilder(file: recipeFile, keyPath: "\(role.rawValue).model")
    } else if let description = stored.description {
      guard description.inputShape == sampleShape, description.classes == classCount else {
        throw mismatch(
          "\(stored.groupPath) holds a model for samples of shape \(description.inputShape) and "
            + "\(description.classes) classes, but the data has \(sampleShape) and \(classCount)")
      }
      spec = description.model
      builder = ModelBuilder(file: recipeFile, keyPath: keyPath)
    } else {
      throw mismatch(
        "\(stored.groupPath) has no \"\(architectureAttribute)\" attribute (a file written by h5py?), "
          + "so the recipe must give the architecture: add \(role.rawValue).model with the layers "
          + "whose state_dict the file holds")
    }
    let network = try builder.build(
      spec, inputShape: sampleShape, classCount: classCount,
      seed: derivedSeed(recipe.seed, "\(role.rawValue).init"))
    try wrappingWeightErrors(path, keyPath: keyPath) {
      try Checkpoints.loadModel(group: stored.group, from: path, into: network)
    }
    return (network, spec)
  }

  func wrappingWeightErrors<T>(_ path: String, keyPath: String, _ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as CheckpointError {
      throw TrainingError.cannotLoadWeights(file: recipeFile, keyPath: keyPath, underlying: error)
    } catch TrainingError.badWeights(_, let reason) {
      throw TrainingError.weightsMismatch(file: recipeFile, keyPath: keyPath, weights: path, reason: reason)
    }
  }

  /// Writes `model` as `<run folder>/<role>.h5` (group `/<role>`) with its description
  /// (`ModelDescription`): float32, or float16 (h5py's binary16) for `precision: f16-mixed`,
  /// whose parameters are binary16 (buffers, Float, are rounded to it too).
  func saveWeights(_ model: Sequential, role: ModelRole, spec: ModelSpec, data: TrainingData) throws {
    guard writesFiles else { return }
    try saveModels(
      [(role.rawValue, model, modelDescription(role: role, spec: spec, data: data).json)],
      to: runFolder.modelPath(role), precision: recipe.precision == .f16Mixed ? .f16 : .f32)
  }

  /// The description of the model of `role` that this run writes with its weights.
  func modelDescription(role: ModelRole, spec: ModelSpec, data: TrainingData) -> ModelDescription {
    var recorded = recipe.data
    if let location = absoluteDataPath { recorded.path = location }
    return ModelDescription(
      role: role, model: spec, inputShape: data.sampleShape, classes: data.classCount, data: recorded,
      recipe: recipe)
  }

  /// The data location the run reads (`--data` or `data.path`), made absolute; nil for a default.
  var absoluteDataPath: String? {
    (options.dataPath ?? recipe.data.path).map { URL(fileURLWithPath: $0).standardizedFileURL.path }
  }
}

extension ModelDescription {
  /// The description in a model file of ours (`teacher.h5`, `student.h5`): of group `role` when
  /// the file has it, else of its only model group; nil when that group has no `architecture`
  /// attribute. Throws `TrainingError.badWeights` for a file that is not a model file.
  public static func stored(in path: String, preferring role: ModelRole) throws -> ModelDescription? {
    try StoredModel.open(path, preferring: role).description
  }
}
