// The recipe's `compress:` list: compression stages run on the student after it is distilled,
// in order, each fine-tuned with the recipe's distillation. This module holds the stages as
// given and checks them against what the stages declare (`StageInfo`); the stages themselves
// (what they do to a model) are the training module's (`CompressionStages`).

/// What the recipe checks, `distill stages` and the docs know of a compression stage.
public struct StageInfo: Sendable {
  /// The recipe name (`prune`), also the key of its entry in `compress:` (`- prune: {…}`).
  public let name: String
  public let title: String
  /// The paper or documentation its rule comes from.
  public let reference: String
  /// What it does to the model, in a sentence.
  public let summary: String
  /// Its own keys; every stage also takes `StageInfo.commonKeys`.
  public let ownKeys: [MethodKey]
  /// The default of its `epochs` (5 for fine-tuning stages, 0 for post-training quantization).
  public let defaultEpochs: Int
  /// Its model is not a student a later stage could fine-tune (an int8 network): it must be the
  /// last stage.
  public let isFinal: Bool
  /// The default of its `lr_factor` (1; 0.1 for low-rank factors, which a full learning rate
  /// throws off: a step on B·A moves W by about the squared singular values more).
  public let defaultLearningRateFactor: Double

  public init(
    name: String, title: String, reference: String, summary: String, keys: [MethodKey], defaultEpochs: Int = 5,
    defaultLearningRateFactor: Double = 1, isFinal: Bool = false
  ) {
    self.isFinal = isFinal
    self.defaultLearningRateFactor = defaultLearningRateFactor
    self.name = name
    self.title = title
    self.reference = reference
    self.summary = summary
    self.ownKeys = keys
    self.defaultEpochs = defaultEpochs
  }

  /// Its own keys, then the common ones.
  public var keys: [MethodKey] {
    ownKeys + Self.commonKeys(epochs: defaultEpochs, learningRateFactor: defaultLearningRateFactor)
  }

  /// The keys of every stage: how long and how fast it fine-tunes, and how much accuracy it may
  /// lose; `epochs` and `lr_factor` default to the values given.
  public static func commonKeys(epochs: Int, learningRateFactor: Double = 1) -> [MethodKey] { [
    .integer(
      "epochs", epochs,
      "fine-tuning epochs, with the student's train section (optimizer, batch size, augmentation) and "
        + "the recipe's distillation; the learning-rate schedule restarts over these epochs",
      minimum: 0, maximum: 100_000),
    .number(
      "lr_factor", learningRateFactor, "the stage's learning rate is this times the student's lr (its schedule restarts)"),
    .number(
      "max_accuracy_drop", 100,
      "validation accuracy, in points, the stage may lose against the model before it; a stage that "
        + "loses more stops the run, keeping the previous model as its result (default 100: never stops)",
      .nonNegative),
  ] }
}

/// One entry of `compress:`: a stage's name and its keys as given (`- prune: {amount: 0.9}`,
/// or `- prune` for its defaults). The canonical form holds the given keys only, so a key added
/// to a stage later, with its default, changes no existing recipe's hash.
public struct CompressionStageSpec: Codable, Equatable, Sendable {
  public var name: String
  public var settings: MethodSettings

  public init(name: String, settings: MethodSettings = MethodSettings()) {
    self.name = name
    self.settings = settings
  }

  public init(from decoder: any Decoder) throws {
    if let word = try? decoder.singleValueContainer().decode(String.self) {
      name = word
      settings = MethodSettings()
      return
    }
    let c = try decoder.container(keyedBy: AnyKey.self)
    let keys = c.allKeys
    guard keys.count == 1, let key = keys.first else {
      throw RecipeError.wrongType(
        file: decoder.recipeFile, keyPath: RecipeKeyPath.render(decoder.codingPath), expected: "one stage, as '- prune: {amount: 0.9}'",
        found: keys.isEmpty ? "an empty mapping" : "the keys \(keys.map(\.stringValue).joined(separator: ", "))")
    }
    name = key.stringValue
    let section = try c.nestedContainer(keyedBy: AnyKey.self, forKey: key)
    var given: [String: MethodValue] = [:]
    for entry in section.allKeys { given[entry.stringValue] = try section.decode(MethodValue.self, forKey: entry) }
    settings = MethodSettings(given)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: AnyKey.self)
    var s = c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey(name))
    for (key, value) in settings.given { try s.encode(value, forKey: AnyKey(key)) }
  }

  /// The names the stages of a `compress:` list go by in metrics, checkpoints and file names:
  /// the stage's name, with `-2`, `-3`, … for its second and later uses (`prune`, `prune-2`).
  public static func labels(of stages: [CompressionStageSpec]) -> [String] {
    var seen: [String: Int] = [:]
    return stages.map { stage in
      let n = (seen[stage.name] ?? 0) + 1
      seen[stage.name] = n
      return n == 1 ? stage.name : "\(stage.name)-\(n)"
    }
  }
}

extension RecipeChecks {
  /// `compress:`: known stages (with the closest name suggested), their keys known, of the
  /// declared kinds and in range.
  mutating func compression(_ stages: [CompressionStageSpec], infos: [StageInfo]) {
    let names = infos.map(\.name)
    for (i, stage) in stages.enumerated() {
      let at = "compress[\(i)]"
      guard let info = infos.first(where: { $0.name == stage.name }) else {
        problems.append(
          .invalidChoice(
            file: file, keyPath: at, value: stage.name, allowed: names,
            suggestion: KeySuggestion.closest(to: stage.name, among: names)))
        continue
      }
      settings(stage.settings, keys: info.keys, at: "\(at).\(stage.name)")
      if info.isFinal && i + 1 < stages.count {
        conflict(
          at, "'\(stage.name)' must be the last stage: its model is not one a later stage can fine-tune; "
            + "move compress[\(i + 1)] (\(stages[i + 1].name)) before it")
      }
    }
  }

  /// The keys given in one section against their declarations.
  mutating func settings(_ settings: MethodSettings, keys declared: [MethodKey], at: String) {
    let keys = declared.map(\.name)
    for (given, value) in settings.given.sorted(by: { $0.key < $1.key }) {
      guard let key = declared.first(where: { $0.name == given }) else {
        problems.append(
          .unknownKey(
            file: file, keyPath: at + "." + given, key: given, suggestion: KeySuggestion.closest(to: given, among: keys),
            allowed: keys))
        continue
      }
      guard let converted = value.converted(to: key.kind) else {
        problems.append(
          .wrongType(file: file, keyPath: at + "." + given, expected: key.kind.expected, found: "'\(value)'"))
        continue
      }
      if !key.isValid(converted), let requirement = key.requirement { fail(at + "." + given, value.description, requirement) }
    }
  }
}
