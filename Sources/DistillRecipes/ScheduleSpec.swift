/// How the learning rate changes from epoch to epoch (after any warm-up): a mapping with exactly
/// one key, `constant`, `cosine` or `step` (`schedule: {cosine: {}}`, or just `schedule: cosine`).
public enum ScheduleSpec: Codable, Equatable, Sendable {
  /// The base learning rate throughout.
  case constant
  /// Half a cosine from the base rate down to `minLR` over the epochs after warm-up
  /// (`CosineAnnealingLR` with `T_max` = those epochs, `eta_min` = `minLR`).
  case cosine(CosineSpec)
  /// The rate times `gamma` every `stepSize` epochs (`StepLR`).
  case step(StepSpec)

  enum CodingKeys: String, RecipeChoiceKeys { case constant, cosine, step }

  public init(from decoder: any Decoder) throws {
    let (key, c) = try decoder.decodeOneOf(CodingKeys.self)
    switch key {
    case .constant:
      _ = try c.decode(EmptySpec.self, forKey: .constant)
      self = .constant
    case .cosine: self = .cosine(try c.decode(CosineSpec.self, forKey: .cosine))
    case .step: self = .step(try c.decode(StepSpec.self, forKey: .step))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    switch self {
    case .constant: try c.encode(EmptySpec(), forKey: .constant)
    case .cosine(let spec): try c.encode(spec, forKey: .cosine)
    case .step(let spec): try c.encode(spec, forKey: .step)
    }
  }
}

/// Cosine annealing settings.
public struct CosineSpec: Codable, Equatable, Sendable {
  /// The rate reached at the last epoch, ≥ 0 (PyTorch `eta_min`). Default 0.
  public var minLR: Double

  /// Cosine settings; default `minLR` 0.
  public init(minLR: Double = 0) { self.minLR = minLR }

  enum CodingKeys: String, RecipeKeys { case minLR = "min_lr" }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    minLR = try c.decodeIfPresent(Double.self, forKey: .minLR) ?? 0
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(minLR, forKey: .minLR)
  }
}

/// Step decay settings.
public struct StepSpec: Codable, Equatable, Sendable {
  /// Epochs between decays, ≥ 1. Required.
  public var stepSize: Int
  /// The factor applied at each decay, > 0. Default 0.1.
  public var gamma: Double

  /// Step-decay settings; default `gamma` 0.1 (PyTorch's).
  public init(stepSize: Int, gamma: Double = 0.1) {
    self.stepSize = stepSize
    self.gamma = gamma
  }

  enum CodingKeys: String, RecipeKeys {
    case stepSize = "step_size"
    case gamma
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    stepSize = try c.decode(Int.self, forKey: .stepSize)
    gamma = try c.decodeIfPresent(Double.self, forKey: .gamma) ?? 0.1
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(stepSize, forKey: .stepSize)
    try c.encode(gamma, forKey: .gamma)
  }
}
