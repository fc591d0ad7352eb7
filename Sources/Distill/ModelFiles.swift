import Checkpoints
import Datasets
import Foundation
import NN
import Yams

/// What a model file of ours (`teacher.h5`, `student.h5`) says about its model: the group's
/// `architecture` attribute (`Checkpoints.saveModels`), a canonical JSON document (the rules
/// of `Recipe.canonicalJSON`: keys sorted, no whitespace, every default spelled out):
///
///     {"classes":10,"data":{"dataset":"digits","normalize":false,"path":"/abs/root","validation":0.2},
///      "format":"swift-distill-model-1","input_shape":[64],
///      "model":{"layers":[{"flatten":{}},{"linear":{"bias":true,"out":32}},{"relu":{}},…]},
///      "recipe":"digits-kd","recipe_hash":"…","role":"student","seed":1}
///
/// - `model`: the recipe's model expanded to its layer list (`ModelSpec.expandedLayers`), a
///   valid recipe `model:` value; layer `i` owns the datasets `i.weight`, `i.bias`, ….
/// - `input_shape`, `classes`: the per-sample shape and the class count it was built for.
/// - `data`, `seed`: the recipe's `data` section and the run's seed, which together give the
///   same splits again (digits and csv: the held-out split drawn with `seed`). `data.path` is
///   the location the run read (`--data` or `data.path`, made absolute), absent for a default.
/// - `recipe`, `recipe_hash`: the run's name and `Recipe.canonicalHash` (overrides applied).
/// - `role`: `teacher` or `student`.
///
/// `recipes/README.md` ("Model files") documents it for users; h5py reads it as
/// `json.loads(f["student"].attrs["architecture"])`.
public struct ModelDescription: Codable, Equatable, Sendable {
  /// The `format` of descriptions this version writes and reads.
  public static let currentFormat = "swift-distill-model-1"

  public var format: String
  public var role: String
  /// Always an explicit `.layers` list.
  public var model: ModelSpec
  public var inputShape: [Int]
  public var classes: Int
  public var data: DataSpec
  public var seed: UInt64
  public var recipe: String
  public var recipeHash: String

  /// The description of `model` as `recipe` builds it for samples of `inputShape`.
  public init(
    role: ModelRole, model: ModelSpec, inputShape: [Int], classes: Int, data: DataSpec, recipe: Recipe
  ) {
    self.format = Self.currentFormat
    self.role = role.rawValue
    self.model = .layers(model.expandedLayers(classCount: classes))
    self.inputShape = inputShape
    self.classes = classes
    self.data = data
    self.seed = recipe.seed
    self.recipe = recipe.name
    self.recipeHash = recipe.canonicalHash
  }

  /// The attribute's text: canonical JSON.
  public var json: String {
    // The recipe types' encode(to:) never throw, and CanonicalEncoder itself never throws.
    try! CanonicalValue(encoding: self).json
  }

  /// Reads a description from the attribute's text. `source` names it in errors
  /// (`student.h5 /student@architecture`). Throws `RecipeError` (strict, as for recipes), or
  /// `TrainingError.badWeights` for another format.
  static func parse(_ text: String, source: String, weightsFile: String) throws -> ModelDescription {
    let root: Node?
    do {
      try RecipeLimits.check(text, file: source)
      root = try Yams.compose(yaml: text)
      if let root { try RecipeLimits.checkSize(of: root, file: source) }
    } catch {
      throw TrainingError.badWeights(file: weightsFile, reason: "\(source) is not JSON: \(error)")
    }
    guard let root else { throw TrainingError.badWeights(file: weightsFile, reason: "\(source) is empty") }
    let description: ModelDescription
    do {
      description = try ModelDescription(from: RecipeNodeDecoder(node: root, codingPath: [], file: source))
    } catch {
      throw TrainingError.badWeights(
        file: weightsFile, reason: "\(source) is not a swift-distill model description (\(error))")
    }
    guard description.format == currentFormat else {
      throw TrainingError.badWeights(
        file: weightsFile,
        reason: "\(source) has format '\(description.format)'; this version reads '\(currentFormat)'")
    }
    // The same range checks a recipe gets, and sane sample shapes: a file is input too.
    var checks = RecipeChecks(file: source)
    checks.data(description.data)
    checks.model(description.model, "model", classCount: description.classes)
    if !(1...4).contains(description.inputShape.count) {
      checks.fail("input_shape", "\(description.inputShape)", "a list of 1 to 4 dimensions")
    }
    for (i, size) in description.inputShape.enumerated() where !(1...(1 << 24)).contains(size) {
      checks.fail("input_shape[\(i)]", "\(size)", "in 1...\(1 << 24)")
    }
    if !(1...maxCSVClasses).contains(description.classes) {
      checks.fail("classes", "\(description.classes)", "in 1...\(maxCSVClasses)")
    }
    if let problem = checks.problems.first {
      throw TrainingError.badWeights(file: weightsFile, reason: "\(problem)")
    }
    return description
  }

  enum CodingKeys: String, RecipeKeys {
    case format, role, model
    case inputShape = "input_shape"
    case classes, data, seed, recipe
    case recipeHash = "recipe_hash"
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    format = try c.decode(String.self, forKey: .format)
    role = try c.decode(String.self, forKey: .role)
    model = try c.decode(ModelSpec.self, forKey: .model)
    inputShape = try c.decode([Int].self, forKey: .inputShape)
    classes = try c.decode(Int.self, forKey: .classes)
    data = try c.decode(DataSpec.self, forKey: .data)
    seed = try c.decode(UInt64.self, forKey: .seed)
    recipe = try c.decode(String.self, forKey: .recipe)
    recipeHash = try c.decode(String.self, forKey: .recipeHash)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(format, forKey: .format)
    try c.encode(role, forKey: .role)
    try c.encode(model, forKey: .model)
    try c.encode(inputShape, forKey: .inputShape)
    try c.encode(classes, forKey: .classes)
    try c.encode(data, forKey: .data)
    try c.encode(seed, forKey: .seed)
    try c.encode(recipe, forKey: .recipe)
    try c.encode(recipeHash, forKey: .recipeHash)
  }
}

/// One model group of an HDF5 weights file, and what its `architecture` attribute says.
struct StoredModel {
  /// The file.
  var path: String
  /// The group's name below the root (`"teacher"`), or `"/"` for datasets at the root.
  var group: String
  /// The description, when the group has an `architecture` attribute (files we write);
  /// nil for a file h5py wrote from a PyTorch `state_dict`.
  var description: ModelDescription?

  /// The groups at the root of the file at `path`, in file order, and whether the root also
  /// holds datasets (a `state_dict` written without a group).
  static func rootContents(of path: String) throws -> (groups: [String], hasDatasets: Bool) {
    let root = try HDF5File.openReadOnly(path).rootGroup()
    var groups: [String] = []
    var hasDatasets = false
    for member in try root.memberNames() {
      if (try? root.group(member)) != nil { groups.append(member) } else { hasDatasets = true }
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
      description = try ModelDescription.parse(
        text, source: "\(path) \(group == "/" ? "" : "/")\(group)@\(architectureAttribute)", weightsFile: path)
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
