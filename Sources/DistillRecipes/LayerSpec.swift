/// One entry of an explicit `layers:` list. Layers without settings are bare words (`- relu`,
/// `- flatten`, `- batch_norm`); the others are one-key mappings (`- linear: {out: 128}`,
/// `- conv2d: {out: 32, kernel: 3, padding: 1}`, `- max_pool: 2`, `- dropout: 0.3`).
/// Input sizes (features, channels) are inferred from the previous layer when the model is built.
public enum LayerSpec: Codable, Equatable, Sendable {
  /// `nn.Linear(in, out, bias)`.
  case linear(LinearSpec)
  /// `nn.Conv2d(in, out, kernel, stride, padding, bias)`.
  case conv2d(Conv2DSpec)
  /// `nn.BatchNorm1d` after a linear layer or `nn.BatchNorm2d` after a convolution.
  case batchNorm(BatchNormSpec)
  /// `nn.MaxPool2d(k)`: k×k windows, stride k.
  case maxPool(Int)
  /// `nn.AvgPool2d(k)`: k×k windows, stride k.
  case avgPool(Int)
  /// `nn.Dropout(p)`, p in [0, 1).
  case dropout(Double)
  /// `nn.Flatten()`: `[N, C, H, W]` → `[N, C·H·W]`.
  case flatten
  /// `nn.ReLU()`.
  case relu
  /// `nn.GELU()`.
  case gelu
  /// `nn.Tanh()`.
  case tanh

  /// The layer's name in recipes (`linear`, `batch_norm`, `max_pool`).
  public var kindName: String {
    switch self {
    case .linear: return CodingKeys.linear.rawValue
    case .conv2d: return CodingKeys.conv2d.rawValue
    case .batchNorm: return CodingKeys.batchNorm.rawValue
    case .maxPool: return CodingKeys.maxPool.rawValue
    case .avgPool: return CodingKeys.avgPool.rawValue
    case .dropout: return CodingKeys.dropout.rawValue
    case .flatten: return CodingKeys.flatten.rawValue
    case .relu: return CodingKeys.relu.rawValue
    case .gelu: return CodingKeys.gelu.rawValue
    case .tanh: return CodingKeys.tanh.rawValue
    }
  }

  enum CodingKeys: String, RecipeChoiceKeys {
    case linear, conv2d
    case batchNorm = "batch_norm"
    case maxPool = "max_pool"
    case avgPool = "avg_pool"
    case dropout, flatten, relu, gelu, tanh
  }

  public init(from decoder: any Decoder) throws {
    let (key, c) = try decoder.decodeOneOf(CodingKeys.self)
    switch key {
    case .linear: self = .linear(try c.decode(LinearSpec.self, forKey: key))
    case .conv2d: self = .conv2d(try c.decode(Conv2DSpec.self, forKey: key))
    case .batchNorm: self = .batchNorm(try c.decode(BatchNormSpec.self, forKey: key))
    case .maxPool: self = .maxPool(try c.decode(Int.self, forKey: key))
    case .avgPool: self = .avgPool(try c.decode(Int.self, forKey: key))
    case .dropout: self = .dropout(try c.decode(Double.self, forKey: key))
    case .flatten, .relu, .gelu, .tanh:
      _ = try c.decode(EmptySpec.self, forKey: key)
      switch key {
      case .flatten: self = .flatten
      case .relu: self = .relu
      case .gelu: self = .gelu
      default: self = .tanh
      }
    }
  }

  /// Always a one-key mapping (`{relu: {}}` for bare words), so the encoding is canonical.
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    switch self {
    case .linear(let spec): try c.encode(spec, forKey: .linear)
    case .conv2d(let spec): try c.encode(spec, forKey: .conv2d)
    case .batchNorm(let spec): try c.encode(spec, forKey: .batchNorm)
    case .maxPool(let kernel): try c.encode(kernel, forKey: .maxPool)
    case .avgPool(let kernel): try c.encode(kernel, forKey: .avgPool)
    case .dropout(let p): try c.encode(p, forKey: .dropout)
    case .flatten: try c.encode(EmptySpec(), forKey: .flatten)
    case .relu: try c.encode(EmptySpec(), forKey: .relu)
    case .gelu: try c.encode(EmptySpec(), forKey: .gelu)
    case .tanh: try c.encode(EmptySpec(), forKey: .tanh)
    }
  }
}

/// A fully connected layer: `linear: {out: 128}`. With `rank: r` it is the low-rank
/// factorisation `W ≈ B·A` of such a layer (the `low_rank` compression stage writes it): two
/// layers in a row, `nn.Sequential(nn.Linear(in, r, bias=False), nn.Linear(r, out, bias))`,
/// whose parameters are `i.0.weight` [r, in], `i.1.weight` [out, r] and `i.1.bias`.
public struct LinearSpec: Codable, Equatable, Sendable {
  /// Output features, ≥ 1. Required.
  public var out: Int
  /// Whether the layer adds a bias. Default true.
  public var bias: Bool
  /// The inner width of a factorised layer, ≥ 1; nil (absent) for a plain linear layer.
  public var rank: Int?

  /// Linear layer settings.
  public init(out: Int, bias: Bool = true, rank: Int? = nil) {
    self.out = out
    self.bias = bias
    self.rank = rank
  }

  enum CodingKeys: String, RecipeKeys { case out, bias, rank }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    out = try c.decode(Int.self, forKey: .out)
    bias = try c.decodeIfPresent(Bool.self, forKey: .bias) ?? true
    rank = try c.decodeIfPresent(Int.self, forKey: .rank)
  }

  /// `rank` only when set, so a plain layer's canonical form (and every existing recipe's hash)
  /// is unchanged.
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(out, forKey: .out)
    try c.encode(bias, forKey: .bias)
    try c.encodeIfPresent(rank, forKey: .rank)
  }
}

/// A 2-D convolution: `conv2d: {out: 32, kernel: 3, padding: 1, stride: 1}`.
public struct Conv2DSpec: Codable, Equatable, Sendable {
  /// Output channels, ≥ 1. Required.
  public var out: Int
  /// Square kernel size, ≥ 1. Required.
  public var kernel: Int
  /// Zeros added on every side, ≥ 0. Default 0.
  public var padding: Int
  /// Step between windows, ≥ 1. Default 1.
  public var stride: Int
  /// Whether the layer adds a bias. Default true.
  public var bias: Bool

  /// Convolution settings; defaults are `nn.Conv2d`'s.
  public init(out: Int, kernel: Int, padding: Int = 0, stride: Int = 1, bias: Bool = true) {
    self.out = out
    self.kernel = kernel
    self.padding = padding
    self.stride = stride
    self.bias = bias
  }

  enum CodingKeys: String, RecipeKeys { case out, kernel, padding, stride, bias }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    out = try c.decode(Int.self, forKey: .out)
    kernel = try c.decode(Int.self, forKey: .kernel)
    padding = try c.decodeIfPresent(Int.self, forKey: .padding) ?? 0
    stride = try c.decodeIfPresent(Int.self, forKey: .stride) ?? 1
    bias = try c.decodeIfPresent(Bool.self, forKey: .bias) ?? true
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(out, forKey: .out)
    try c.encode(kernel, forKey: .kernel)
    try c.encode(padding, forKey: .padding)
    try c.encode(stride, forKey: .stride)
    try c.encode(bias, forKey: .bias)
  }
}

/// Batch normalisation settings: `- batch_norm` or `- batch_norm: {eps: 1e-5, momentum: 0.1}`.
public struct BatchNormSpec: Codable, Equatable, Sendable {
  /// Added to the variance, > 0. Default 1e-5.
  public var eps: Double
  /// Weight of the new batch in the running statistics, in (0, 1] (PyTorch's convention).
  /// Default 0.1.
  public var momentum: Double

  /// Batch-norm settings; defaults are PyTorch's.
  public init(eps: Double = 1e-5, momentum: Double = 0.1) {
    self.eps = eps
    self.momentum = momentum
  }

  enum CodingKeys: String, RecipeKeys { case eps, momentum }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    eps = try c.decodeIfPresent(Double.self, forKey: .eps) ?? 1e-5
    momentum = try c.decodeIfPresent(Double.self, forKey: .momentum) ?? 0.1
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(eps, forKey: .eps)
    try c.encode(momentum, forKey: .momentum)
  }
}

extension LayerSpec {
  /// The layer's integer sizes (output features or channels, kernel, padding, stride, pool
  /// window), for bounds checks.
  public var sizes: [Int] {
    switch self {
    case .linear(let spec): return [spec.out] + (spec.rank.map { [$0] } ?? [])
    case .conv2d(let spec): return [spec.out, spec.kernel, spec.padding, spec.stride]
    case .maxPool(let k), .avgPool(let k): return [k]
    case .batchNorm, .dropout, .flatten, .relu, .gelu, .tanh: return []
    }
  }
}
