/// How the student learns from the teacher (`distillation:`). Without this section the
/// student trains on labels alone (`method: none`).
///
/// The loss of a micro-batch is `ce_weight · CE(student, labels) + Σ term_m` over the methods
/// named in `method` (one name, or a list to combine them as torchdistill's weighted sum does),
/// each term weighted by its method's own weight key. A method's keys live in a section named
/// after it (`dkd: {beta: 8}`), except `kd`'s (`temperature`, `alpha`) and `hint`'s (`hint:`),
/// which keep the places the first schema gave them. The methods are in `DistillationMethods`.
public struct DistillationSpec: Encodable, Decodable, Equatable, Sendable {
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

  /// The methods as `summary.json` and `compare` show them: `none`, `kd`, `kd+at`.
  public var label: String { methods.isEmpty ? "none" : methods.joined(separator: "+") }

  /// Whether the run distils at all.
  public var usesTeacher: Bool { !methods.isEmpty }

  /// The settings of `method` (empty when its section was left out).
  public func settings(of method: String) -> MethodSettings { settings[method] ?? MethodSettings() }

  /// The cross-entropy weight in force: `ceWeight`, or the smallest of the methods' defaults
  /// (1 for `none`).
  public var effectiveCEWeight: Double {
    if let ceWeight { return ceWeight }
    let defaults = methods.map { name in
      name == KnowledgeDistillation.info.name ? 1 - alpha : DistillationMethods.named(name)?.info.ceWeight ?? 1
    }
    return defaults.min() ?? 1
  }

  /// Keys of the first schema, written in the canonical form whatever their value.
  enum LegacyKey: String, CaseIterable { case method, temperature, alpha, hint }
  /// Keys added since, written only when they differ from their default.
  enum AddedKey: String, CaseIterable {
    case ceWeight = "ce_weight"
    case logitStandardization = "logit_standardization"
  }

  /// The method names whose keys have a section of their own.
  static var sectionMethods: [MethodInfo] { DistillationMethods.infos.filter { !$0.topLevelKeys } }

  /// Every key `distillation:` accepts.
  static var allowedKeys: [String] {
    LegacyKey.allCases.map(\.rawValue) + AddedKey.allCases.map(\.rawValue) + sectionMethods.map(\.name)
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    let allowed = Self.allowedKeys
    for key in c.allKeys where !allowed.contains(key.stringValue) {
      throw RecipeError.unknownKey(
        file: decoder.recipeFile, keyPath: RecipeKeyPath.join(decoder.keyPath, key.stringValue), key: key.stringValue,
        suggestion: KeySuggestion.closest(to: key.stringValue, among: allowed), allowed: allowed)
    }
    methods = try Self.decodeMethods(c, decoder: decoder)
    temperature = try c.decodeIfPresent(Double.self, forKey: AnyKey("temperature")) ?? 4
    alpha = try c.decodeIfPresent(Double.self, forKey: AnyKey("alpha")) ?? 0.9
    hint = try c.decodeIfPresent(HintSpec.self, forKey: AnyKey("hint"))
    ceWeight = try c.decodeIfPresent(Double.self, forKey: AnyKey(AddedKey.ceWeight.rawValue))
    logitStandardization =
      try c.decodeIfPresent(Bool.self, forKey: AnyKey(AddedKey.logitStandardization.rawValue)) ?? false
    settings = [:]
    for info in Self.sectionMethods where c.contains(AnyKey(info.name)) {
      settings[info.name] = try Self.decodeSettings(
        c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey(info.name)), info: info,
        file: decoder.recipeFile, keyPath: RecipeKeyPath.join(decoder.keyPath, info.name))
    }
  }

  /// `method: kd` or `method: [kd, at]`, each name checked against the registry.
  private static func decodeMethods(_ c: KeyedDecodingContainer<AnyKey>, decoder: any Decoder) throws -> [String] {
    let key = AnyKey("method")
    let names: [String]
    if let single = try? c.decode(String.self, forKey: key) {
      names = [single]
    } else if c.contains(key), (try? c.decodeNil(forKey: key)) == false,
      let list = try? c.decode([String].self, forKey: key)
    {
      names = list
    } else {
      _ = try c.decode(String.self, forKey: key)  // throws missingKey or wrongType
      names = []
    }
    let allowed = DistillationMethods.names
    for (i, name) in names.enumerated() where !allowed.contains(name) {
      let path = RecipeKeyPath.join(decoder.keyPath, "method") + (names.count > 1 ? "[\(i)]" : "")
      throw RecipeError.invalidChoice(
        file: decoder.recipeFile, keyPath: path, value: name, allowed: allowed,
        suggestion: KeySuggestion.closest(to: name, among: allowed))
    }
    return names == ["none"] ? [] : names
  }

  private static func decodeSettings(
    _ c: KeyedDecodingContainer<AnyKey>, info: MethodInfo, file: String, keyPath: String
  ) throws -> MethodSettings {
    var given: [String: MethodValue] = [:]
    let allowed = info.keys.map(\.name)
    for key in c.allKeys {
      guard let declared = info.keys.first(where: { $0.name == key.stringValue }) else {
        throw RecipeError.unknownKey(
          file: file, keyPath: RecipeKeyPath.join(keyPath, key.stringValue), key: key.stringValue,
          suggestion: KeySuggestion.closest(to: key.stringValue, among: allowed), allowed: allowed)
      }
      switch declared.kind {
      case .number: given[key.stringValue] = .number(try c.decode(Double.self, forKey: key))
      case .integer: given[key.stringValue] = .integer(try c.decode(Int.self, forKey: key))
      case .flag: given[key.stringValue] = .flag(try c.decode(Bool.self, forKey: key))
      case .layers:
        if let one = try? c.decode(Int.self, forKey: key) {
          given[key.stringValue] = .layers([one])
        } else {
          given[key.stringValue] = .layers(try c.decode([Int].self, forKey: key))
        }
      }
    }
    return MethodSettings(given)
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
    for info in Self.sectionMethods {
      guard let section = settings[info.name]?.nonDefault(in: info.keys), !section.isEmpty else { continue }
      var s = c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey(info.name))
      for (key, value) in section.sorted(by: { $0.key < $1.key }) {
        switch value {
        case .number(let v): try s.encode(v, forKey: AnyKey(key))
        case .integer(let v): try s.encode(v, forKey: AnyKey(key))
        case .flag(let v): try s.encode(v, forKey: AnyKey(key))
        case .layers(let v): try s.encode(v, forKey: AnyKey(key))
        }
      }
    }
  }

  /// Equal when they mean the same: a method key given at its default equals it left out.
  public static func == (a: DistillationSpec, b: DistillationSpec) -> Bool {
    guard a.methods == b.methods, a.temperature == b.temperature, a.alpha == b.alpha, a.hint == b.hint,
      a.ceWeight == b.ceWeight, a.logitStandardization == b.logitStandardization
    else { return false }
    return sectionMethods.allSatisfy { info in
      a.settings(of: info.name).nonDefault(in: info.keys) == b.settings(of: info.name).nonDefault(in: info.keys)
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
