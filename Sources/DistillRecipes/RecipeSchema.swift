// Small pieces the recipe types share to describe their part of the schema to the decoder.

/// The coding keys of one recipe mapping. `RecipeNodeDecoder` rejects any key of the YAML
/// mapping that is not among `allCases`, suggesting the closest one.
protocol RecipeKeys: CodingKey, CaseIterable {}

/// The keys of a one-of mapping such as `optimizer: {sgd: {…}}`: exactly one key must be
/// present, and a bare word (`schedule: cosine`, `- relu`) stands for `{word: {}}`.
protocol RecipeChoiceKeys: RecipeKeys {}

extension RecipeKeys {
  /// Every allowed key, in declaration order.
  static var names: [String] { allCases.map(\.stringValue) }
}

/// A position in a YAML list, as a coding key (`layers[2]`).
struct IndexKey: CodingKey {
  var intValue: Int?
  var stringValue: String { "\(intValue ?? 0)" }
  init(_ index: Int) { intValue = index }
  init?(intValue: Int) { self.intValue = intValue }
  init?(stringValue: String) { return nil }
}

/// Renders coding paths the way recipes and their errors write them.
enum RecipeKeyPath {
  /// `[student, train, optimizer, sgd, lr]` → `student.train.optimizer.sgd.lr`;
  /// list positions as `[i]`: `student.model.layers[2].linear.out`.
  static func render(_ path: [any CodingKey]) -> String {
    var text = ""
    for key in path {
      if let index = key.intValue {
        text += "[\(index)]"
      } else {
        text += text.isEmpty ? key.stringValue : "." + key.stringValue
      }
    }
    return text
  }

  /// `prefix` + `.key` (or just `key` at the top level).
  static func join(_ prefix: String, _ key: String) -> String {
    prefix.isEmpty ? key : prefix + "." + key
  }
}

extension CodingUserInfoKey {
  /// The recipe file being decoded (a `String`), so that errors raised inside `init(from:)` can
  /// name it.
  static let recipeFile = CodingUserInfoKey(rawValue: "distill.recipeFile")!
}

extension Decoder {
  /// The file being decoded, or `<recipe>` when the decoder was not given one.
  var recipeFile: String { userInfo[.recipeFile] as? String ?? "<recipe>" }

  /// This decoder's position as a recipe key path.
  var keyPath: String { RecipeKeyPath.render(codingPath) }

  /// `wrongType` at this decoder's position, describing the value found when it can.
  func typeMismatch(expected: String) -> RecipeError {
    if let decoder = self as? RecipeNodeDecoder { return decoder.wrongType(expected: expected) }
    return .wrongType(file: recipeFile, keyPath: keyPath, expected: expected, found: "another kind of value")
  }

  /// Decodes one word of a fixed set (`method: kd`), suggesting the closest on a typo.
  func decodeChoice<T: RawRepresentable & CaseIterable>(_ type: T.Type = T.self) throws -> T
  where T.RawValue == String {
    let word = try singleValueContainer().decode(String.self)
    if let value = T(rawValue: word) { return value }
    let allowed = T.allCases.map(\.rawValue)
    throw RecipeError.invalidChoice(
      file: recipeFile, keyPath: keyPath, value: word, allowed: allowed,
      suggestion: KeySuggestion.closest(to: word, among: allowed))
  }

  /// Opens a one-of mapping and returns its single key, with the container to decode the value.
  func decodeOneOf<Key: RecipeChoiceKeys>(_ type: Key.Type) throws -> (Key, KeyedDecodingContainer<Key>) {
    let container = try container(keyedBy: Key.self)
    let present = container.allKeys
    guard present.count == 1, let key = present.first else {
      let choices = Key.names.joined(separator: ", ")
      if present.isEmpty {
        throw RecipeError.wrongType(
          file: recipeFile, keyPath: keyPath, expected: "one of \(choices)", found: "an empty mapping")
      }
      let found = present.map { "'\($0.stringValue)'" }.joined(separator: " and ")
      throw RecipeError.conflict(
        file: recipeFile, keyPath: keyPath, reason: "give exactly one of \(choices), not \(found)")
    }
    return (key, container)
  }
}

/// The value of a key that takes no settings: `constant: {}`, `- relu` (or `- relu: {}`).
public struct EmptySpec: Codable, Equatable, Sendable {
  enum CodingKeys: RecipeKeys {}

  /// The empty value.
  public init() {}

  public init(from decoder: any Decoder) throws {
    _ = try decoder.container(keyedBy: CodingKeys.self)
  }

  public func encode(to encoder: any Encoder) throws {
    _ = encoder.container(keyedBy: CodingKeys.self)
  }
}
