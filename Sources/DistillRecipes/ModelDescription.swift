import Foundation
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

  /// The most classes a description may have: the CSV reader's limit (`Datasets.maxCSVClasses`,
  /// which a test keeps equal).
  public static let maxClasses = 1 << 20

  /// Reads a description from the attribute's text. `source` names it in errors
  /// (`student.h5 /student@architecture`). Throws `ModelDescriptionError` saying what is wrong:
  /// not JSON, not a description (the strict decoding recipes get), another format, or values
  /// out of range.
  public static func parse(_ text: String, source: String) throws(ModelDescriptionError) -> ModelDescription {
    let root: Node?
    do {
      try RecipeLimits.check(text, file: source)
      root = try Yams.compose(yaml: text)
      if let root { try RecipeLimits.checkSize(of: root, file: source) }
    } catch {
      throw ModelDescriptionError(reason: "\(source) is not JSON: \(error)")
    }
    guard let root else { throw ModelDescriptionError(reason: "\(source) is empty") }
    let description: ModelDescription
    do {
      description = try ModelDescription(from: RecipeNodeDecoder(node: root, codingPath: [], file: source))
    } catch {
      throw ModelDescriptionError(reason: "\(source) is not a swift-distill model description (\(error))")
    }
    guard description.format == currentFormat else {
      throw ModelDescriptionError(
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
    if !(1...maxClasses).contains(description.classes) {
      checks.fail("classes", "\(description.classes)", "in 1...\(maxClasses)")
    }
    if let problem = checks.problems.first { throw ModelDescriptionError(reason: "\(problem)") }
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

/// Why a model file's `architecture` attribute could not be read (`ModelDescription.parse`).
public struct ModelDescriptionError: Error, Equatable, CustomStringConvertible {
  public var reason: String
  public init(reason: String) { self.reason = reason }
  public var description: String { reason }
}

/// Which of the two models of a run.
public enum ModelRole: String, Sendable, CaseIterable {
  case teacher
  case student
}
