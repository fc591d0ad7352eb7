/// A network architecture (`model:`): a mapping with exactly one key, the shorthand `mlp` or
/// `cnn`, or an explicit `layers` list. Every form expands to a layer list
/// (`expandedLayers(classCount:)`) whose positions are the PyTorch `nn.Sequential` indices
/// that name parameters in weight files (`3.weight`) and layers in hints.
public enum ModelSpec: Codable, Equatable, Sendable {
  /// A multilayer perceptron.
  case mlp(MLPSpec)
  /// A LeNet-style convolutional network.
  case cnn(CNNSpec)
  /// An explicit list, the last layer a `linear` with one output per class.
  case layers([LayerSpec])

  /// The layer list this model builds; input sizes are inferred when it is built.
  ///
  /// - `mlp`: `flatten`, [`dropout(input_dropout)`], then per hidden width `h`: `linear(h)`,
  ///   activation, [`dropout(dropout)`]; then `linear(classCount)`.
  /// - `cnn`: per channel count `c`: `conv2d(c, kernel 3, padding 1)`, [`batch_norm`], `relu`,
  ///   `max_pool(2)`; then `flatten`; per hidden width `h`: `linear(h)`, `relu`,
  ///   [`dropout(dropout)`]; then `linear(classCount)`.
  /// - `layers`: the list as written.
  ///
  /// Bracketed dropouts appear only when their probability is above 0.
  public func expandedLayers(classCount: Int) -> [LayerSpec] {
    var list: [LayerSpec] = []
    switch self {
    case .mlp(let spec):
      list.append(.flatten)
      if spec.inputDropout > 0 { list.append(.dropout(spec.inputDropout)) }
      for width in spec.hidden {
        list += [.linear(LinearSpec(out: width)), spec.activation.layer]
        if spec.dropout > 0 { list.append(.dropout(spec.dropout)) }
      }
      list.append(.linear(LinearSpec(out: classCount)))
    case .cnn(let spec):
      for channels in spec.channels {
        list.append(.conv2d(Conv2DSpec(out: channels, kernel: 3, padding: 1)))
        if spec.batchNorm { list.append(.batchNorm(BatchNormSpec())) }
        list += [.relu, .maxPool(2)]
      }
      list.append(.flatten)
      for width in spec.hidden {
        list += [.linear(LinearSpec(out: width)), .relu]
        if spec.dropout > 0 { list.append(.dropout(spec.dropout)) }
      }
      list.append(.linear(LinearSpec(out: classCount)))
    case .layers(let layers):
      list = layers
    }
    return list
  }

  /// The largest size a layer may have (2³¹ − 1): larger could only come from a typo or a
  /// damaged file, and keeps the shape arithmetic from overflowing.
  public static let maxLayerSize = Int(Int32.max)

  enum CodingKeys: String, RecipeChoiceKeys { case mlp, cnn, layers }

  public init(from decoder: any Decoder) throws {
    let (key, c) = try decoder.decodeOneOf(CodingKeys.self)
    switch key {
    case .mlp: self = .mlp(try c.decode(MLPSpec.self, forKey: .mlp))
    case .cnn: self = .cnn(try c.decode(CNNSpec.self, forKey: .cnn))
    case .layers: self = .layers(try c.decode([LayerSpec].self, forKey: .layers))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    switch self {
    case .mlp(let spec): try c.encode(spec, forKey: .mlp)
    case .cnn(let spec): try c.encode(spec, forKey: .cnn)
    case .layers(let layers): try c.encode(layers, forKey: .layers)
    }
  }
}

/// A multilayer perceptron: `mlp: {hidden: [1200, 1200], dropout: 0.5, input_dropout: 0.2}`.
public struct MLPSpec: Codable, Equatable, Sendable {
  /// Hidden layer widths, each ≥ 1 (may be empty: a linear classifier). Required.
  public var hidden: [Int]
  /// Dropout probability after each hidden activation, in [0, 1). Default 0.
  public var dropout: Double
  /// Dropout probability on the input, in [0, 1). Default 0.
  public var inputDropout: Double
  /// The hidden activation. Default `relu`.
  public var activation: Activation

  /// MLP settings.
  public init(hidden: [Int], dropout: Double = 0, inputDropout: Double = 0, activation: Activation = .relu) {
    self.hidden = hidden
    self.dropout = dropout
    self.inputDropout = inputDropout
    self.activation = activation
  }

  enum CodingKeys: String, RecipeKeys {
    case hidden, dropout
    case inputDropout = "input_dropout"
    case activation
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    hidden = try c.decode([Int].self, forKey: .hidden)
    dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? 0
    inputDropout = try c.decodeIfPresent(Double.self, forKey: .inputDropout) ?? 0
    activation = try c.decodeIfPresent(Activation.self, forKey: .activation) ?? .relu
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(hidden, forKey: .hidden)
    try c.encode(dropout, forKey: .dropout)
    try c.encode(inputDropout, forKey: .inputDropout)
    try c.encode(activation, forKey: .activation)
  }
}

/// A LeNet-style CNN: `cnn: {channels: [32, 64], hidden: [128], batch_norm: true, dropout: 0.3}`.
public struct CNNSpec: Codable, Equatable, Sendable {
  /// Output channels of each 3×3 convolution block, each ≥ 1; at least one. Required.
  public var channels: [Int]
  /// Widths of the linear layers after flattening, each ≥ 1. Default `[]`.
  public var hidden: [Int]
  /// Batch normalisation after each convolution. Default false.
  public var batchNorm: Bool
  /// Dropout probability after each hidden linear layer's activation, in [0, 1). Default 0.
  public var dropout: Double

  /// CNN settings.
  public init(channels: [Int], hidden: [Int] = [], batchNorm: Bool = false, dropout: Double = 0) {
    self.channels = channels
    self.hidden = hidden
    self.batchNorm = batchNorm
    self.dropout = dropout
  }

  enum CodingKeys: String, RecipeKeys {
    case channels, hidden
    case batchNorm = "batch_norm"
    case dropout
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    channels = try c.decode([Int].self, forKey: .channels)
    hidden = try c.decodeIfPresent([Int].self, forKey: .hidden) ?? []
    batchNorm = try c.decodeIfPresent(Bool.self, forKey: .batchNorm) ?? false
    dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? 0
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(channels, forKey: .channels)
    try c.encode(hidden, forKey: .hidden)
    try c.encode(batchNorm, forKey: .batchNorm)
    try c.encode(dropout, forKey: .dropout)
  }
}

/// A hidden-layer activation for the `mlp` shorthand.
public enum Activation: String, CaseIterable, Codable, Sendable {
  /// max(0, x).
  case relu
  /// x·Φ(x) (PyTorch `GELU()`, exact form).
  case gelu
  /// tanh(x).
  case tanh

  /// The activation as a layer.
  public var layer: LayerSpec {
    switch self {
    case .relu: return .relu
    case .gelu: return .gelu
    case .tanh: return .tanh
    }
  }

  public init(from decoder: any Decoder) throws { self = try decoder.decodeChoice() }
}
