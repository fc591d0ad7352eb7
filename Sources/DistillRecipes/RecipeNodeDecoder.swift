import Yams

/// A strict `Decoder` over a Yams node tree, so that the recipe types' ordinary `init(from:)`
/// both decodes and checks a recipe. Every failure is a `RecipeError` that names the file and
/// the key path:
///
/// - a mapping whose keys are `RecipeKeys` may hold only those keys (`unknownKey`, with the
///   closest allowed key as a suggestion), each once (`duplicateKey`);
/// - a required key that is absent is `missingKey`; an optional key with a null value is absent;
/// - scalars convert only to their own kind: plain (unquoted) `12` is an integer, `0.5` or `12`
///   a number, `true`/`false` a Boolean, any scalar a string; non-finite numbers are refused;
/// - a null value where a mapping or list is expected reads as an empty one (`cosine:`), and a
///   bare word where a one-of mapping (`RecipeChoiceKeys`) is expected reads as `{word: {}}`.
struct RecipeNodeDecoder: Decoder, SingleValueDecodingContainer {
  let node: Node
  let codingPath: [any CodingKey]
  let file: String

  var userInfo: [CodingUserInfoKey: Any] { [.recipeFile: file] }

  func child(_ node: Node, at key: any CodingKey) -> RecipeNodeDecoder {
    RecipeNodeDecoder(node: node, codingPath: codingPath + [key], file: file)
  }

  func wrongType(expected: String) -> RecipeError {
    .wrongType(file: file, keyPath: keyPath, expected: expected, found: Self.describe(node))
  }

  // MARK: Decoder

  func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
    KeyedDecodingContainer(try KeyedNodeContainer<Key>(decoder: self))
  }

  func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
    if Self.isNull(node) { return UnkeyedNodeContainer(decoder: self, elements: []) }
    guard case .sequence(let sequence) = node else { throw wrongType(expected: "a list") }
    return UnkeyedNodeContainer(decoder: self, elements: Array(sequence))
  }

  func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

  // MARK: SingleValueDecodingContainer

  func decodeNil() -> Bool { Self.isNull(node) }

  func decode(_ type: Bool.Type) throws -> Bool {
    switch plainScalar() {
    case "true", "True", "TRUE": return true
    case "false", "False", "FALSE": return false
    default: throw wrongType(expected: "true or false")
    }
  }

  func decode(_ type: String.Type) throws -> String {
    guard case .scalar(let scalar) = node, !Self.isNull(node) else { throw wrongType(expected: "a string") }
    return scalar.string
  }

  func decode(_ type: Double.Type) throws -> Double {
    guard let text = plainScalar(), let value = Double(text), value.isFinite else {
      throw wrongType(expected: "a finite number")
    }
    return value
  }

  func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

  func decode<T: Decodable>(_ type: T.Type) throws -> T {
    // Array's and the recipe types' own init(from:) come back here through this decoder.
    try T(from: self)
  }

  func decode(_ type: Int.Type) throws -> Int { try integer() }
  func decode(_ type: Int8.Type) throws -> Int8 { try integer() }
  func decode(_ type: Int16.Type) throws -> Int16 { try integer() }
  func decode(_ type: Int32.Type) throws -> Int32 { try integer() }
  func decode(_ type: Int64.Type) throws -> Int64 { try integer() }
  func decode(_ type: UInt.Type) throws -> UInt { try integer() }
  func decode(_ type: UInt8.Type) throws -> UInt8 { try integer() }
  func decode(_ type: UInt16.Type) throws -> UInt16 { try integer() }
  func decode(_ type: UInt32.Type) throws -> UInt32 { try integer() }
  func decode(_ type: UInt64.Type) throws -> UInt64 { try integer() }

  private func integer<T: FixedWidthInteger>() throws -> T {
    guard let text = plainScalar(), let value = T(text) else {
      throw wrongType(expected: T.isSigned ? "an integer" : "a non-negative integer")
    }
    return value
  }

  /// The text of an unquoted, non-null scalar: the only kind that may be a number or Boolean.
  private func plainScalar() -> String? {
    guard case .scalar(let scalar) = node, Self.isPlain(scalar), !Self.isNull(node) else { return nil }
    return scalar.string
  }

  // MARK: Describing nodes

  static func isPlain(_ scalar: Node.Scalar) -> Bool {
    scalar.style == .plain || scalar.style == .any
  }

  /// YAML's null: an empty plain scalar, `~` or `null`.
  static func isNull(_ node: Node) -> Bool {
    guard case .scalar(let scalar) = node, isPlain(scalar) else { return false }
    return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
  }

  /// How a node reads in an error message: `'ten'`, `null`, `a mapping`, `a list`.
  static func describe(_ node: Node) -> String {
    switch node {
    case .scalar(let scalar):
      return isNull(node) ? "null" : "'\(scalar.string)'"
    case .mapping:
      return "a mapping"
    case .sequence:
      return "a list"
    }
  }
}

/// The keys and values of one YAML mapping, checked against `Key` when it is `RecipeKeys`.
struct KeyedNodeContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
  let decoder: RecipeNodeDecoder
  /// Values by key, in document order.
  let entries: [(key: String, value: Node)]
  var codingPath: [any CodingKey] { decoder.codingPath }

  init(decoder: RecipeNodeDecoder) throws {
    self.decoder = decoder
    var pairs: [(key: String, value: Node)] = []
    switch decoder.node {
    case .mapping(let mapping):
      for (keyNode, value) in mapping {
        guard case .scalar(let scalar) = keyNode else {
          throw RecipeError.wrongType(
            file: decoder.file, keyPath: decoder.keyPath, expected: "plain words as keys",
            found: RecipeNodeDecoder.describe(keyNode) + " as a key")
        }
        pairs.append((scalar.string, value))
      }
    case .scalar(let scalar) where RecipeNodeDecoder.isNull(decoder.node):
      _ = scalar  // a null value reads as an empty mapping
    case .scalar(let scalar) where Key.self is any RecipeChoiceKeys.Type:
      pairs.append((scalar.string, Node("", .implicit, .plain)))  // `- relu` means `- relu: {}`
    default:
      throw decoder.wrongType(expected: "a mapping")
    }
    var seen = Set<String>()
    for (key, _) in pairs where !seen.insert(key).inserted {
      throw RecipeError.duplicateKey(
        file: decoder.file, keyPath: RecipeKeyPath.join(decoder.keyPath, key))
    }
    if let schema = Key.self as? any RecipeKeys.Type {
      let allowed = schema.names
      for (key, _) in pairs where !allowed.contains(key) {
        throw RecipeError.unknownKey(
          file: decoder.file, keyPath: RecipeKeyPath.join(decoder.keyPath, key), key: key,
          suggestion: KeySuggestion.closest(to: key, among: allowed), allowed: allowed)
      }
    }
    entries = pairs
  }

  var allKeys: [Key] { entries.compactMap { Key(stringValue: $0.key) } }

  func contains(_ key: Key) -> Bool { value(for: key) != nil }

  private func value(for key: Key) -> Node? {
    entries.first { $0.key == key.stringValue }?.value
  }

  /// The decoder for `key`'s value; a missing key, or a null value, is `missingKey`.
  private func childDecoder(_ key: Key) throws -> RecipeNodeDecoder {
    guard let node = value(for: key) else {
      throw RecipeError.missingKey(
        file: decoder.file, keyPath: RecipeKeyPath.join(decoder.keyPath, key.stringValue))
    }
    return decoder.child(node, at: key)
  }

  func decodeNil(forKey key: Key) throws -> Bool {
    value(for: key).map(RecipeNodeDecoder.isNull) ?? true
  }

  func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
    try T(from: try childDecoder(key))
  }

  func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try childDecoder(key).decode(type) }
  func decode(_ type: String.Type, forKey key: Key) throws -> String { try childDecoder(key).decode(type) }
  func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try childDecoder(key).decode(type) }
  func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try childDecoder(key).decode(type) }
  func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try childDecoder(key).decode(type) }
  func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try childDecoder(key).decode(type) }
  func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try childDecoder(key).decode(type) }
  func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try childDecoder(key).decode(type) }
  func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try childDecoder(key).decode(type) }
  func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try childDecoder(key).decode(type) }
  func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try childDecoder(key).decode(type) }
  func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try childDecoder(key).decode(type) }
  func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try childDecoder(key).decode(type) }
  func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try childDecoder(key).decode(type) }

  func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
    -> KeyedDecodingContainer<NestedKey>
  {
    try childDecoder(key).container(keyedBy: type)
  }

  func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
    try childDecoder(key).unkeyedContainer()
  }

  func superDecoder() throws -> any Decoder { decoder }

  func superDecoder(forKey key: Key) throws -> any Decoder {
    // A null or absent value reads as an empty mapping here, so defaults apply (`adamw:`).
    decoder.child(value(for: key) ?? Node("", .implicit, .plain), at: key)
  }
}

/// The elements of one YAML list, decoded in order.
struct UnkeyedNodeContainer: UnkeyedDecodingContainer {
  let decoder: RecipeNodeDecoder
  let elements: [Node]
  private(set) var currentIndex = 0

  init(decoder: RecipeNodeDecoder, elements: [Node]) {
    self.decoder = decoder
    self.elements = elements
  }

  var codingPath: [any CodingKey] { decoder.codingPath }
  var count: Int? { elements.count }
  var isAtEnd: Bool { currentIndex >= elements.count }

  private mutating func next() throws -> RecipeNodeDecoder {
    guard !isAtEnd else {
      throw RecipeError.missingKey(
        file: decoder.file, keyPath: decoder.keyPath + "[\(currentIndex)]")
    }
    defer { currentIndex += 1 }
    return decoder.child(elements[currentIndex], at: IndexKey(currentIndex))
  }

  mutating func decodeNil() throws -> Bool {
    guard !isAtEnd, RecipeNodeDecoder.isNull(elements[currentIndex]) else { return false }
    currentIndex += 1
    return true
  }

  mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: try next()) }

  mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
    -> KeyedDecodingContainer<NestedKey>
  {
    try next().container(keyedBy: type)
  }

  mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
    try next().unkeyedContainer()
  }

  mutating func superDecoder() throws -> any Decoder { try next() }
}
