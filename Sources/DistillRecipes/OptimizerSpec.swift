/// The optimizer: a mapping with exactly one key, `sgd`, `adam` or `adamw`, whose value holds
/// its hyper-parameters (`optimizer: {sgd: {lr: 0.05, momentum: 0.9, nesterov: true}}`).
/// Defaults are PyTorch's.
public enum OptimizerSpec: Codable, Equatable, Sendable {
  /// `torch.optim.SGD`.
  case sgd(SGDSpec)
  /// `torch.optim.Adam` (L2 weight decay added to the gradient).
  case adam(AdamSpec)
  /// `torch.optim.AdamW` (decoupled weight decay, default 0.01).
  case adamw(AdamSpec)

  /// The base learning rate.
  public var learningRate: Double {
    switch self {
    case .sgd(let spec): return spec.lr
    case .adam(let spec), .adamw(let spec): return spec.lr
    }
  }

  /// The same optimizer with its base learning rate times `factor` (a compression stage's
  /// `lr_factor`).
  public func scalingLearningRate(by factor: Double) -> OptimizerSpec {
    switch self {
    case .sgd(var spec):
      spec.lr *= factor
      return .sgd(spec)
    case .adam(var spec):
      spec.lr *= factor
      return .adam(spec)
    case .adamw(var spec):
      spec.lr *= factor
      return .adamw(spec)
    }
  }

  enum CodingKeys: String, RecipeChoiceKeys { case sgd, adam, adamw }

  public init(from decoder: any Decoder) throws {
    let (key, c) = try decoder.decodeOneOf(CodingKeys.self)
    switch key {
    case .sgd: self = .sgd(try c.decode(SGDSpec.self, forKey: .sgd))
    case .adam: self = .adam(try AdamSpec(from: try c.superDecoder(forKey: .adam), defaultWeightDecay: 0))
    case .adamw:
      self = .adamw(try AdamSpec(from: try c.superDecoder(forKey: .adamw), defaultWeightDecay: 0.01))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    switch self {
    case .sgd(let spec): try c.encode(spec, forKey: .sgd)
    case .adam(let spec): try c.encode(spec, forKey: .adam)
    case .adamw(let spec): try c.encode(spec, forKey: .adamw)
    }
  }
}

/// Stochastic gradient descent with momentum, as `torch.optim.SGD`:
/// `b ← μ·b + (1 − dampening)·(g + λ·w)`; `w ← w − lr·(nesterov ? g + λ·w + μ·b : b)`.
public struct SGDSpec: Codable, Equatable, Sendable {
  /// Learning rate, > 0. Required.
  public var lr: Double
  /// Momentum μ in [0, 1). Default 0.
  public var momentum: Double
  /// Dampening of the momentum buffer, in [0, 1]. Default 0.
  public var dampening: Double
  /// L2 penalty λ ≥ 0 added to the gradient. Default 0.
  public var weightDecay: Double
  /// Nesterov momentum; needs momentum > 0 and dampening 0. Default false.
  public var nesterov: Bool

  /// SGD settings; defaults are PyTorch's.
  public init(
    lr: Double, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0, nesterov: Bool = false
  ) {
    self.lr = lr
    self.momentum = momentum
    self.dampening = dampening
    self.weightDecay = weightDecay
    self.nesterov = nesterov
  }

  enum CodingKeys: String, RecipeKeys {
    case lr, momentum, dampening
    case weightDecay = "weight_decay"
    case nesterov
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    lr = try c.decode(Double.self, forKey: .lr)
    momentum = try c.decodeIfPresent(Double.self, forKey: .momentum) ?? 0
    dampening = try c.decodeIfPresent(Double.self, forKey: .dampening) ?? 0
    weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? 0
    nesterov = try c.decodeIfPresent(Bool.self, forKey: .nesterov) ?? false
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(lr, forKey: .lr)
    try c.encode(momentum, forKey: .momentum)
    try c.encode(dampening, forKey: .dampening)
    try c.encode(weightDecay, forKey: .weightDecay)
    try c.encode(nesterov, forKey: .nesterov)
  }
}

/// Adam / AdamW settings, as `torch.optim.Adam` / `torch.optim.AdamW`.
public struct AdamSpec: Codable, Equatable, Sendable {
  /// Learning rate, > 0. Default 0.001.
  public var lr: Double
  /// `[β1, β2]`, each in [0, 1). Default `[0.9, 0.999]`.
  public var betas: [Double]
  /// ε > 0 added to the denominator. Default 1e-8.
  public var eps: Double
  /// Weight decay ≥ 0: L2 for Adam (default 0), decoupled for AdamW (default 0.01).
  public var weightDecay: Double

  /// Adam settings; the defaults are PyTorch's for Adam (pass `weightDecay: 0.01` for AdamW's).
  public init(
    lr: Double = 0.001, betas: [Double] = [0.9, 0.999], eps: Double = 1e-8, weightDecay: Double = 0
  ) {
    self.lr = lr
    self.betas = betas
    self.eps = eps
    self.weightDecay = weightDecay
  }

  enum CodingKeys: String, RecipeKeys {
    case lr, betas, eps
    case weightDecay = "weight_decay"
  }

  public init(from decoder: any Decoder) throws {
    try self.init(from: decoder, defaultWeightDecay: 0)
  }

  /// Decodes, with `defaultWeightDecay` where `weight_decay` is absent (0 Adam, 0.01 AdamW).
  init(from decoder: any Decoder, defaultWeightDecay: Double) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    lr = try c.decodeIfPresent(Double.self, forKey: .lr) ?? 0.001
    betas = try c.decodeIfPresent([Double].self, forKey: .betas) ?? [0.9, 0.999]
    eps = try c.decodeIfPresent(Double.self, forKey: .eps) ?? 1e-8
    weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? defaultWeightDecay
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(lr, forKey: .lr)
    try c.encode(betas, forKey: .betas)
    try c.encode(eps, forKey: .eps)
    try c.encode(weightDecay, forKey: .weightDecay)
  }
}
