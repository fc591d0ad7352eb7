/// How the student learns from the teacher (`distillation:`). Without this section the
/// student trains on labels alone (`method: none`).
///
/// The loss of a micro-batch is `ce_weight · CE(student, labels) + Σ term_m` over the methods
/// named in `method` (one name, or a list to combine them as torchdistill's weighted sum does),
/// each term weighted by its method's own weight key. A method's keys live in a section named
/// after it (`dkd: {beta: 8}`), except `kd`'s (`temperature`, `alpha`) and `hint`'s (`hint:`),
/// which keep the places the first schema gave them. This type holds the sections as given;
/// the methods, their keys and defaults are the training module's (`DistillationMethods`), and
/// `Recipe.problems(file:methods:)` checks the sections against them.
public struct DistillationSpec: Codable, Equatable, Sendable {
  /// The methods, in the order given; empty for `none`. Required when the section is present.
  public var methods: [String]
  /// `kd`'s softmax temperature T > 0. Default 4.
  public var temperature: Double
  /// `kd`'s weight α of the soft term `α·T²·KL(teacher_T ‖ student_T)`; the cross-entropy on
  /// labels then weighs 1 − α unless `ce_weight` says otherwise. In [0, 1] (at least 0 with an
  /// explicit `ce_weight`). Default 0.9.
  public var alpha: Double
  /// The layers whose outputs are matched, for `hint`; required then, refused otherwise.
  public var hint: HintSpec?
  /// The weight of the cross-entropy on labels, ≥ 0. Default: the methods' own (`MethodInfo`
  /// `ceWeight`; `kd`'s is 1 − α), the smallest of them when several are combined.
  public var ceWeight: Double?
  /// Logit standardisation (Sun et al. 2024): `kd` and `dkd` compare z-scored logits. Default false.
  public var logitStandardization: Bool
  /// The sections of the methods whose keys live in `distillation.<name>`.
  public var settings: [String: MethodSettings]
  /// Keys of the section that are neither its own nor a mapping, with what was found: a typo
  /// of an own key (`ce_wieght: 0.5`) or a method section written as a scalar. Validation
  /// reports them (it knows the method names to suggest); a valid recipe has none.
  var strayKeys: [String: String] = [:]

  /// Distillation settings; the default is no distillation.
  public init(
    methods: [String] = [], temperature: Double = 4, alpha: Double = 0.9, hint: HintSpec? = nil,
    ceWeight: Double? = nil, logitStandardization: Bool = false, settings: [String: MethodSettings] = [:]
  ) {
    self.methods = methods
    self.temperature = temperature
    self.alpha = alpha
    self.hint = hint
    self.ceWeight = ceWeight
    self.logitStandardization = logitStandardization
    self.settings = settings
  }

  /// One method by name (`"none"` for none).
  public init(method: String, temperature: Double = 4, alpha: Double = 0.9, hint: HintSpec? = nil) {
    self.init(methods: method == "none" ? [] : [method], temperature: temperature, alpha: alpha, hint: hint)
  }

  /// What is wrong with these settings that needs no networks, only the methods' declarations
  /// (`methods`): unknown method names or keys, values of the wrong kind or out of range,
  /// conflicting keys, each a `RecipeError` naming `file` and the key path. `Recipe.problems`
  /// includes them; a spec built in code (`DistillationLoss`) is checked with this alone.
  public func problems(file: String = "<recipe>", methods: [MethodInfo]) -> [RecipeError] {
    var checks = RecipeChecks(file: file)
    checks.methodProblems(self, methods: methods)
    return checks.problems
  }

  /// The methods as `summary.json` and `compare` show them: `none`, `kd`, `kd+at`.
  public var label: String { methods.isEmpty ? "none" : methods.joined(separator: "+") }

  /// Whether the run distils at all.
  public var usesTeacher: Bool { !methods.isEmpty }

  /// The settings of `method` (empty when its section was left out).
  public func settings(of method: String) -> MethodSettings { settings[method] ?? MethodSettings() }

  /// Keys of the first schema, written in the canonical form whatever their value.
  enum LegacyKey: String, CaseIterable { case method, temperature, alpha, hint }
  /// Keys added since, written only when they differ from their default.
  enum AddedKey: String, CaseIterable {
    case ceWeight = "ce_weight"
    case logitStandardization = "logit_standardization"
  }

  /// The keys of the section itself; every other key is a method's section, checked against
  /// the methods' declared keys by `Recipe.problems(file:methods:)`.
  static var ownKeys: [String] { LegacyKey.allCases.map(\.rawValue) + AddedKey.allCases.map(\.rawValue) }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    methods = try Self.decodeMethods(c)
    temperature = try c.decodeIfPresent(Double.self, forKey: AnyKey("temperature")) ?? 4
    alpha = try c.decodeIfPresent(Double.self, forKey: AnyKey("alpha")) ?? 0.9
    hint = try c.decodeIfPresent(HintSpec.self, forKey: AnyKey("hint"))
    ceWeight = try c.decodeIfPresent(Double.self, forKey: AnyKey(AddedKey.ceWeight.rawValue))
    logitStandardization =
      try c.decodeIfPresent(Bool.self, forKey: AnyKey(AddedKey.logitStandardization.rawValue)) ?? false
    settings = [:]
    for key in c.allKeys where !Self.ownKeys.contains(key.stringValue) {
      guard let section = try? c.nestedContainer(keyedBy: AnyKey.self, forKey: key) else {
        let found = (try? c.decode(MethodValue.self, forKey: key)).map { "'\($0)'" } ?? "a list"
        strayKeys[key.stringValue] = found
        continue
      }
      var given: [String: MethodValue] = [:]
      for name in section.allKeys { given[name.stringValue] = try section.decode(MethodValue.self, forKey: name) }
      settings[key.stringValue] = MethodSettings(given)
    }
  }

  /// `method: kd` or `method: [kd, at]`; the names are checked against the registered methods
  /// by `Recipe.problems(file:methods:)`.
  private static func decodeMethods(_ c: KeyedDecodingContainer<AnyKey>) throws -> [String] {
    let key = AnyKey("method")
    if let single = try? c.decode(String.self, forKey: key) { return single == "none" ? [] : [single] }
    if c.contains(key), (try? c.decodeNil(forKey: key)) == false, let list = try? c.decode([String].self, forKey: key) {
      return list
    }
    _ = try c.decode(String.self, forKey: key)  // throws missingKey or wrongType
    return []
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: AnyKey.self)
    if methods.count > 1 {
      try c.encode(methods, forKey: AnyKey("method"))
    } else {
      try c.encode(methods.first ?? "none", forKey: AnyKey("method"))
    }
    try c.encode(temperature, forKey: AnyKey("temperature"))
    try c.encode(alpha, forKey: AnyKey("alpha"))
    try c.encodeIfPresent(hint, forKey: AnyKey("hint"))
    try c.encodeIfPresent(ceWeight, forKey: AnyKey(AddedKey.ceWeight.rawValue))
    if logitStandardization { try c.encode(true, forKey: AnyKey(AddedKey.logitStandardization.rawValue)) }
    // A section's keys as given: a key added to a method later, with a default, changes no
    // existing recipe's canonical form.
    for (name, section) in settings where !section.given.isEmpty {
      var s = c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey(name))
      for (key, value) in section.given { try s.encode(value, forKey: AnyKey(key)) }
    }
  }
}

/// A coding key of any name, for mappings whose keys come from a registry.
struct AnyKey: CodingKey {
  var stringValue: String
  var intValue: Int? { nil }
  init(_ name: String) { stringValue = name }
  init?(stringValue: String) { self.stringValue = stringValue }
  init?(intValue: Int) { return nil }
}

/// Which layer outputs a `hint` distillation matches: positions in the expanded layer lists
/// (`ModelSpec.expandedLayers(classCount:)`), i.e. the PyTorch `nn.Sequential` names.
public struct HintSpec: Codable, Equatable, Sendable {
  /// Position of the teacher layer whose output is the target, ≥ 0. Required.
  public var teacherLayer: Int
  /// Position of the student layer whose output is matched, ≥ 0. Required.
  public var studentLayer: Int
  /// Weight of the hint term, > 0. Default 1.
  public var weight: Double

  /// Hint settings.
  public init(teacherLayer: Int, studentLayer: Int, weight: Double = 1) {
    self.teacherLayer = teacherLayer
    self.studentLayer = studentLayer
    self.weight = weight
  }

  enum CodingKeys: String, RecipeKeys {
    case teacherLayer = "teacher_layer"
    case studentLayer = "student_layer"
    case weight
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    teacherLayer = try c.decode(Int.self, forKey: .teacherLayer)
    studentLayer = try c.decode(Int.self, forKey: .studentLayer)
    weight = try c.decodeIfPresent(Double.self, forKey: .weight) ?? 1
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(teacherLayer, forKey: .teacherLayer)
    try c.encode(studentLayer, forKey: .studentLayer)
    try c.encode(weight, forKey: .weight)
  }
}
