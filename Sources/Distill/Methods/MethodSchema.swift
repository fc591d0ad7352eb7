// What a distillation method declares about its recipe keys: names, kinds, defaults, ranges and
// help. `DistillationSpec` decodes a method's section (`distillation.dkd: {beta: 8}`) against
// this, and `distill methods` prints it.

/// A value of a method's recipe key.
public enum MethodValue: Equatable, Sendable, CustomStringConvertible {
  case number(Double)
  case integer(Int)
  case flag(Bool)
  /// Layer positions in a model's expanded layer list; empty means "chosen by the method".
  case layers([Int])

  public var description: String {
    switch self {
    case .number(let value): return "\(value)"
    case .integer(let value): return "\(value)"
    case .flag(let value): return "\(value)"
    case .layers(let value): return value.isEmpty ? "auto" : "\(value)"
    }
  }
}

/// One recipe key of a method.
public struct MethodKey: Sendable {
  public enum Kind: Sendable {
    case number, integer, flag, layers

    /// What the recipe must give, for errors.
    var expected: String {
      switch self {
      case .number: return "a finite number"
      case .integer: return "an integer"
      case .flag: return "true or false"
      case .layers: return "a list of layer positions"
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

  /// An integer key at least `minimum`.
  public static func integer(
    _ name: String, _ value: Int, _ help: String, minimum: Int, required: Bool = false
  ) -> MethodKey {
    var key = MethodKey(
      name: name, kind: .integer, defaultValue: .integer(value), help: help, requirement: "at least \(minimum)",
      isValid: { if case .integer(let v) = $0 { return v >= minimum } else { return false } })
    key.required = required
    return key
  }

  public static func flag(_ name: String, _ value: Bool, _ help: String) -> MethodKey {
    MethodKey(name: name, kind: .flag, defaultValue: .flag(value), help: help, requirement: nil, isValid: { _ in true })
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
  static func layerPair(_ choice: String, plural: Bool = false) -> [MethodKey] {
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
  case positive, nonNegative, unit, any

  func contains(_ value: Double) -> Bool {
    switch self {
    case .positive: return value > 0
    case .nonNegative: return value >= 0
    case .unit: return (0...1).contains(value)
    case .any: return value.isFinite
    }
  }

  var requirement: String? {
    switch self {
    case .positive: return "greater than 0"
    case .nonNegative: return "at least 0"
    case .unit: return "in [0, 1]"
    case .any: return nil
    }
  }
}

/// The keys a recipe gave in one method's section. Keys left out take the method's defaults
/// (`value(_:in:)`); only the given keys that differ from their default count in the recipe's
/// canonical form, so a key added to a method later, with its default, changes no existing
/// recipe's hash.
public struct MethodSettings: Equatable, Sendable {
  /// The keys as given.
  public var given: [String: MethodValue]

  public init(_ given: [String: MethodValue] = [:]) { self.given = given }

  /// The value of `key`: as given, or its default.
  public func value(_ key: String, in schema: [MethodKey]) -> MethodValue {
    if let value = given[key] { return value }
    guard let declared = schema.first(where: { $0.name == key }) else {
      preconditionFailure("method key '\(key)' is not declared")
    }
    return declared.defaultValue
  }

  /// The given keys whose values differ from their defaults.
  func nonDefault(in schema: [MethodKey]) -> [String: MethodValue] {
    given.filter { key, value in schema.first { $0.name == key }?.defaultValue != value }
  }
}
