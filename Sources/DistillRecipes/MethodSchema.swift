// What a distillation method declares about its recipe keys: names, kinds, defaults, ranges and
// help. `DistillationSpec` decodes a method's section (`distillation.dkd: {beta: 8}`) against
// this, and `distill methods` prints it.

/// What `distill methods`, the docs and the recipe decoder know of a method.
public struct MethodInfo: Sendable {
  /// The recipe name (`dkd`), also the key of its section (`distillation.dkd`).
  public let name: String
  public let title: String
  /// Authors, venue and year.
  public let paper: String
  /// The reference code the formulas and defaults were read from.
  public let reference: String
  /// What it reads: logits, labels, which features, extra modules, extra state.
  public let needs: String
  /// Its recipe keys, with defaults as the reference code sets them.
  public let keys: [MethodKey]
  /// The weight of the cross-entropy on labels the reference uses with this method alone (the
  /// default of `distillation.ce_weight`); `kd`'s is 1 − `alpha`.
  public let ceWeight: Double
  /// Whether it needs a teacher (every method but `none`).
  public let needsTeacher: Bool
  /// Its keys live at the top of `distillation:` (`kd`'s `temperature` and `alpha`, from the
  /// first schema) rather than in a section of their own.
  public let topLevelKeys: Bool

  public init(
    name: String, title: String, paper: String, reference: String, needs: String, keys: [MethodKey],
    ceWeight: Double = 1, needsTeacher: Bool = true, topLevelKeys: Bool = false
  ) {
    self.name = name
    self.title = title
    self.paper = paper
    self.reference = reference
    self.needs = needs
    self.keys = keys
    self.ceWeight = ceWeight
    self.needsTeacher = needsTeacher
    self.topLevelKeys = topLevelKeys
  }
}

/// A value of a method's recipe key, as the recipe wrote it: a whole number is an `integer`
/// (read as a number where the key is one), a list of whole numbers `layers`.
public enum MethodValue: Codable, Equatable, Sendable, CustomStringConvertible {
  case number(Double)
  case integer(Int)
  case flag(Bool)
  /// Layer positions in a model's expanded layer list; empty means "chosen by the method".
  case layers([Int])
  /// Words where a key wants one of the above: kept so that validation, which knows the key's
  /// kind, can say what was expected.
  case text(String)

  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if let value = try? c.decode(Bool.self) {
      self = .flag(value)
    } else if let value = try? c.decode(Int.self) {
      self = .integer(value)
    } else if let value = try? c.decode(Double.self) {
      self = .number(value)
    } else if let value = try? c.decode([Int].self) {
      self = .layers(value)
    } else if let value = try? c.decode(String.self) {
      self = .text(value)
    } else {
      throw decoder.typeMismatch(expected: "a number, true or false, or a list of layer positions")
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .number(let value): try c.encode(value)
    case .integer(let value): try c.encode(value)
    case .flag(let value): try c.encode(value)
    case .layers(let value): try c.encode(value)
    case .text(let value): try c.encode(value)
    }
  }

  /// The value read as a key of `kind` wants it, or nil when it is not one: an integer as a
  /// number, or as one layer position.
  func converted(to kind: MethodKey.Kind) -> MethodValue? {
    switch (kind, self) {
    case (.number, .number), (.integer, .integer), (.flag, .flag), (.layers, .layers): return self
    case (.choice(let words), .text(let word)): return words.contains(word) ? self : nil
    case (.number, .integer(let value)): return .number(Double(value))
    case (.layers, .integer(let value)): return .layers([value])
    default: return nil
    }
  }

  public var description: String {
    switch self {
    case .number(let value): return "\(value)"
    case .integer(let value): return "\(value)"
    case .flag(let value): return "\(value)"
    case .layers(let value): return value.isEmpty ? "auto" : "\(value)"
    case .text(let value): return value
    }
  }
}

/// One recipe key of a method.
public struct MethodKey: Sendable {
  public enum Kind: Sendable {
    case number, integer, flag, layers
    /// One of these words (a compression stage's `scope: global`).
    case choice([String])

    /// What the recipe must give, for errors.
    var expected: String {
      switch self {
      case .number: return "a finite number"
      case .integer: return "an integer"
      case .flag: return "true or false"
      case .layers: return "a list of layer positions"
      case .choice(let words): return "one of " + words.joined(separator: ", ")
      }
    }
  }

  /// The key as recipes write it (`beta`).
  public let name: String
  public let kind: Kind
  public let defaultValue: MethodValue
  /// One line for `distill methods` and the docs.
  public let help: String
  /// The requirement, in words, a valid value meets (`greater than 0`); nil for any value.
  public let requirement: String?
  /// The recipe must give it (`hint`'s layers); `defaultValue` is then unused.
  public var required = false
  let isValid: @Sendable (MethodValue) -> Bool

  /// A number key: `range` is `positive`, `nonNegative`, or any.
  public static func number(
    _ name: String, _ value: Double, _ help: String, _ range: NumberRange = .positive
  ) -> MethodKey {
    MethodKey(
      name: name, kind: .number, defaultValue: .number(value), help: help, requirement: range.requirement,
      isValid: { if case .number(let v) = $0 { return range.contains(v) } else { return false } })
  }

  /// An integer key at least `minimum` (and at most `maximum`, when given).
  public static func integer(
    _ name: String, _ value: Int, _ help: String, minimum: Int, maximum: Int? = nil, required: Bool = false
  ) -> MethodKey {
    let requirement = maximum.map { "in \(minimum)...\($0)" } ?? "at least \(minimum)"
    var key = MethodKey(
      name: name, kind: .integer, defaultValue: .integer(value), help: help, requirement: requirement,
      isValid: { if case .integer(let v) = $0 { return v >= minimum && v <= (maximum ?? .max) } else { return false } })
    key.required = required
    return key
  }

  public static func flag(_ name: String, _ value: Bool, _ help: String) -> MethodKey {
    MethodKey(name: name, kind: .flag, defaultValue: .flag(value), help: help, requirement: nil, isValid: { _ in true })
  }

  /// One of `words`, the first being the default unless `value` says otherwise.
  public static func choice(_ name: String, _ words: [String], _ value: String, _ help: String) -> MethodKey {
    precondition(words.contains(value), "\(name): default '\(value)' is not among \(words)")
    return MethodKey(
      name: name, kind: .choice(words), defaultValue: .text(value), help: help, requirement: nil,
      isValid: { if case .text(let v) = $0 { return words.contains(v) } else { return false } })
  }

  /// Layer positions (each ≥ 0; checked against the networks when the run builds them); the
  /// default, empty, lets the method choose.
  public static func layers(_ name: String, _ help: String) -> MethodKey {
    MethodKey(
      name: name, kind: .layers, defaultValue: .layers([]), help: help, requirement: "layer positions, each at least 0",
      isValid: { if case .layers(let v) = $0 { return v.allSatisfy { $0 >= 0 } } else { return false } })
  }
}

extension MethodKey {
  /// `teacher_layer` and `student_layer` (or `…_layers` when `plural`), each defaulting to
  /// `choice` (words for `distill methods`).
  public static func layerPair(_ choice: String, plural: Bool = false) -> [MethodKey] {
    let s = plural ? "s" : ""
    let extra = plural ? ", one per teacher layer" : ""
    return [
      .layers("teacher_layer\(s)", "teacher layer position\(s) (default: \(choice))"),
      .layers("student_layer\(s)", "student layer position\(s)\(extra) (default: \(choice))"),
    ]
  }
}

/// The ranges number keys take.
public enum NumberRange: Sendable {
  /// > 0, ≥ 0, [0, 1], [0, 1) (a fraction removed), (0, 1] (a fraction kept), any finite.
  case positive, nonNegative, unit, belowOne, fraction, any

  func contains(_ value: Double) -> Bool {
    switch self {
    case .positive: return value > 0
    case .nonNegative: return value >= 0
    case .unit: return (0...1).contains(value)
    case .belowOne: return (0..<1).contains(value)
    case .fraction: return value > 0 && value <= 1
    case .any: return value.isFinite
    }
  }

  var requirement: String? {
    switch self {
    case .positive: return "greater than 0"
    case .nonNegative: return "at least 0"
    case .unit: return "in [0, 1]"
    case .belowOne: return "in [0, 1)"
    case .fraction: return "in (0, 1]"
    case .any: return nil
    }
  }
}

/// The keys a recipe gave in one method's section, as given; keys left out take the method's
/// defaults (`value(_:in:)`). The canonical form holds the given keys only, so a key added to a
/// method later, with its default, changes no existing recipe's hash.
public struct MethodSettings: Equatable, Sendable {
  /// The keys as given.
  public var given: [String: MethodValue]

  public init(_ given: [String: MethodValue] = [:]) { self.given = given }

  /// `key` as a number (a `number` key), as given or its default.
  public func number(_ key: String, in schema: [MethodKey]) -> Double {
    guard case .number(let value) = value(key, in: schema) else { preconditionFailure("\(key) is not a number key") }
    return value
  }

  /// `key` as an integer (an `integer` key), as given or its default.
  public func integer(_ key: String, in schema: [MethodKey]) -> Int {
    guard case .integer(let value) = value(key, in: schema) else { preconditionFailure("\(key) is not an integer key") }
    return value
  }

  /// `key` as a word (a `choice` key), as given or its default.
  public func word(_ key: String, in schema: [MethodKey]) -> String {
    guard case .text(let value) = value(key, in: schema) else { preconditionFailure("\(key) is not a choice key") }
    return value
  }

  /// `key` as layer positions (a `layers` key), as given or its default (empty: the default choice).
  public func layers(_ key: String, in schema: [MethodKey]) -> [Int] {
    guard case .layers(let value) = value(key, in: schema) else { preconditionFailure("\(key) is not a layers key") }
    return value
  }

  /// The value of `key` as its declaration's kind: as given, or its default.
  public func value(_ key: String, in schema: [MethodKey]) -> MethodValue {
    guard let declared = schema.first(where: { $0.name == key }) else {
      preconditionFailure("method key '\(key)' is not declared")
    }
    // Validation has checked that a given value converts.
    return given[key].flatMap { $0.converted(to: declared.kind) } ?? declared.defaultValue
  }
}
