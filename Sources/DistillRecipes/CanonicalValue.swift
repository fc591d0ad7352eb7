/// A JSON value in canonical form: what a recipe's `Encodable` conformance writes, kept as a
/// tree so it can be rendered (`json`) or compared key by key (`differences(from:)`).
///
/// Canonical JSON, as hashed by `Recipe.canonicalHash`: UTF-8, no whitespace, object keys sorted
/// by their UTF-8 bytes, strings escaped as JSON requires (`\"`, `\\`, `\n`, `\r`, `\t`, other
/// control characters as `\u00XX`, everything else literal), integers in decimal, and
/// floating-point numbers as Swift's shortest round-tripping `description` (`0.05`, `1e-08`,
/// `20.0`), so a Double always prints with a `.` or an exponent.
enum CanonicalValue: Equatable {
  case object([String: CanonicalValue])
  case array([CanonicalValue])
  case string(String)
  /// A number's canonical text.
  case number(String)
  case bool(Bool)
  case null

  /// The value `Encodable` writes.
  init(encoding value: some Encodable) throws {
    let encoder = CanonicalEncoder(codingPath: [])
    try value.encode(to: encoder)
    self = encoder.value
  }

  /// The canonical JSON text.
  var json: String {
    var text = ""
    write(to: &text)
    return text
  }

  private func write(to text: inout String) {
    switch self {
    case .object(let members):
      text += "{"
      for (i, key) in members.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
        if i > 0 { text += "," }
        Self.writeString(key, to: &text)
        text += ":"
        members[key]!.write(to: &text)
      }
      text += "}"
    case .array(let elements):
      text += "["
      for (i, element) in elements.enumerated() {
        if i > 0 { text += "," }
        element.write(to: &text)
      }
      text += "]"
    case .string(let string): Self.writeString(string, to: &text)
    case .number(let number): text += number
    case .bool(let bool): text += bool ? "true" : "false"
    case .null: text += "null"
    }
  }

  private static func writeString(_ string: String, to text: inout String) {
    text += "\""
    for scalar in string.unicodeScalars {
      switch scalar {
      case "\"": text += "\\\""
      case "\\": text += "\\\\"
      case "\n": text += "\\n"
      case "\r": text += "\\r"
      case "\t": text += "\\t"
      // Every C0 and C1 control, DEL, the line and paragraph separators and the BOM, escaped:
      // YAML, which reads this JSON back (resume, model files), refuses some of them
      // unescaped and reads others (NEL, U+2028) as line breaks.
      case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
        || scalar.value == 0x2028 || scalar.value == 0x2029 || scalar.value == 0xFEFF:
        let hex = String(scalar.value, radix: 16)
        text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: text.unicodeScalars.append(scalar)
      }
    }
    text += "\""
  }

  /// The key paths (`student.train.epochs`, `student.model.layers[2]`) where `self` and `old`
  /// differ, sorted: a member present on one side only, a list whose length changed, or a
  /// value that changed. `prefix` is the path of this value.
  func differences(from old: CanonicalValue, at prefix: String = "") -> [String] {
    switch (old, self) {
    case (.object(let before), .object(let after)):
      let keys = Set(before.keys).union(after.keys).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
      return keys.flatMap { key -> [String] in
        let path = RecipeKeyPath.join(prefix, key)
        guard let a = before[key], let b = after[key] else { return [path] }
        return b.differences(from: a, at: path)
      }
    case (.array(let before), .array(let after)) where before.count == after.count:
      return zip(before, after).enumerated().flatMap { i, pair in
        pair.1.differences(from: pair.0, at: prefix + "[\(i)]")
      }
    default:
      return old == self ? [] : [prefix]
    }
  }
}

/// An `Encoder` that builds a `CanonicalValue`. Each container writes into child encoders held
/// by reference, so nested containers fill in the tree in place.
final class CanonicalEncoder: Encoder {
  let codingPath: [any CodingKey]
  var userInfo: [CodingUserInfoKey: Any] { [:] }

  private enum Storage {
    case empty
    case object(Members)
    case array(Elements)
    case value(CanonicalValue)
  }
  final class Members { var children: [String: CanonicalEncoder] = [:] }
  final class Elements { var children: [CanonicalEncoder] = [] }
  private var storage = Storage.empty

  init(codingPath: [any CodingKey]) { self.codingPath = codingPath }

  /// What was encoded; an encoder nothing was written to reads as an empty object.
  var value: CanonicalValue {
    switch storage {
    case .empty: return .object([:])
    case .object(let members): return .object(members.children.mapValues(\.value))
    case .array(let elements): return .array(elements.children.map(\.value))
    case .value(let value): return value
    }
  }

  func set(_ value: CanonicalValue) { storage = .value(value) }

  func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
    if case .object(let members) = storage {
      return KeyedEncodingContainer(KeyedContainer(encoder: self, members: members))
    }
    let members = Members()
    storage = .object(members)
    return KeyedEncodingContainer(KeyedContainer(encoder: self, members: members))
  }

  func unkeyedContainer() -> any UnkeyedEncodingContainer {
    if case .array(let elements) = storage { return UnkeyedContainer(encoder: self, elements: elements) }
    let elements = Elements()
    storage = .array(elements)
    return UnkeyedContainer(encoder: self, elements: elements)
  }

  func singleValueContainer() -> any SingleValueEncodingContainer { SingleValue(encoder: self) }

  /// The canonical value of one scalar, or nil when `value` is not a scalar type.
  static func scalar(_ value: Any) -> CanonicalValue? {
    switch value {
    case let v as Bool: return .bool(v)
    case let v as String: return .string(v)
    case let v as Double: return .number("\(v)")
    case let v as Float: return .number("\(Double(v))")
    case let v as any BinaryInteger: return .number("\(v)")
    default: return nil
    }
  }

  /// Encodes `value` into a new child encoder at `key`.
  func child(_ value: some Encodable, at key: any CodingKey) throws -> CanonicalEncoder {
    let child = CanonicalEncoder(codingPath: codingPath + [key])
    if let scalar = Self.scalar(value) { child.set(scalar) } else { try value.encode(to: child) }
    return child
  }

  struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: CanonicalEncoder
    let members: Members
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil(forKey key: Key) throws {
      let child = CanonicalEncoder(codingPath: codingPath + [key])
      child.set(.null)
      members.children[key.stringValue] = child
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
      members.children[key.stringValue] = try encoder.child(value, at: key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
      -> KeyedEncodingContainer<NestedKey>
    {
      superEncoder(forKey: key).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
      superEncoder(forKey: key).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { encoder }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
      let child = CanonicalEncoder(codingPath: codingPath + [key])
      members.children[key.stringValue] = child
      return child
    }
  }

  struct UnkeyedContainer: UnkeyedEncodingContainer {
    let encoder: CanonicalEncoder
    let elements: Elements
    var codingPath: [any CodingKey] { encoder.codingPath }
    var count: Int { elements.children.count }

    mutating func encodeNil() throws {
      let child = CanonicalEncoder(codingPath: codingPath + [IndexKey(count)])
      child.set(.null)
      elements.children.append(child)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
      elements.children.append(try encoder.child(value, at: IndexKey(count)))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
      -> KeyedEncodingContainer<NestedKey>
    {
      superEncoder().container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
      superEncoder().unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
      let child = CanonicalEncoder(codingPath: codingPath + [IndexKey(count)])
      elements.children.append(child)
      return child
    }
  }

  struct SingleValue: SingleValueEncodingContainer {
    let encoder: CanonicalEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws { encoder.set(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
      if let scalar = CanonicalEncoder.scalar(value) {
        encoder.set(scalar)
      } else {
        try value.encode(to: encoder)
      }
    }
  }
}
