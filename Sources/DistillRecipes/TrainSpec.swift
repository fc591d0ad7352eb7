
/// How one model is trained (`teacher.train:`, `student.train:`).
public struct TrainSpec: Codable, Equatable, Sendable {
  /// Passes over the training split (at least 1). Required.
  public var epochs: Int
  /// Samples per micro-batch (at least 1). Default 128.
  public var batchSize: Int
  /// Micro-batches whose gradients are summed before one optimizer step (at least 1), so the
  /// effective batch is `batchSize × accumulate`. Default 1.
  public var accumulate: Int
  /// The optimizer and its hyper-parameters. Required.
  public var optimizer: OptimizerSpec
  /// How the learning rate changes per epoch after warm-up. Default `constant`.
  public var schedule: ScheduleSpec
  /// Epochs of linear warm-up before `schedule` (PyTorch `LinearLR`, start factor 1/3),
  /// in `0..<epochs`. Default 0.
  public var warmupEpochs: Int
  /// Random transforms of training images. Default: none.
  public var augment: AugmentSpec
  /// Label smoothing of the cross-entropy term (PyTorch `label_smoothing`), in [0, 1). Default 0.
  public var labelSmoothing: Double

  /// A training section from its parts.
  public init(
    epochs: Int, batchSize: Int = 128, accumulate: Int = 1, optimizer: OptimizerSpec,
    schedule: ScheduleSpec = .constant, warmupEpochs: Int = 0, augment: AugmentSpec = AugmentSpec(),
    labelSmoothing: Double = 0
  ) {
    self.epochs = epochs
    self.batchSize = batchSize
    self.accumulate = accumulate
    self.optimizer = optimizer
    self.schedule = schedule
    self.warmupEpochs = warmupEpochs
    self.augment = augment
    self.labelSmoothing = labelSmoothing
  }

  enum CodingKeys: String, RecipeKeys {
    case epochs
    case batchSize = "batch_size"
    case accumulate, optimizer, schedule
    case warmupEpochs = "warmup_epochs"
    case augment
    case labelSmoothing = "label_smoothing"
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    epochs = try c.decode(Int.self, forKey: .epochs)
    batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? 128
    accumulate = try c.decodeIfPresent(Int.self, forKey: .accumulate) ?? 1
    optimizer = try c.decode(OptimizerSpec.self, forKey: .optimizer)
    schedule = try c.decodeIfPresent(ScheduleSpec.self, forKey: .schedule) ?? .constant
    warmupEpochs = try c.decodeIfPresent(Int.self, forKey: .warmupEpochs) ?? 0
    augment = try c.decodeIfPresent(AugmentSpec.self, forKey: .augment) ?? AugmentSpec()
    labelSmoothing = try c.decodeIfPresent(Double.self, forKey: .labelSmoothing) ?? 0
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(epochs, forKey: .epochs)
    try c.encode(batchSize, forKey: .batchSize)
    try c.encode(accumulate, forKey: .accumulate)
    try c.encode(optimizer, forKey: .optimizer)
    try c.encode(schedule, forKey: .schedule)
    try c.encode(warmupEpochs, forKey: .warmupEpochs)
    try c.encode(augment, forKey: .augment)
    try c.encode(labelSmoothing, forKey: .labelSmoothing)
  }
}

/// Random transforms applied to each training image (never to validation or test data), in
/// the order jitter, flip, pad-crop. See `Datasets.Augmentation` for the exact definitions.
public struct AugmentSpec: Codable, Equatable, Sendable {
  /// Shift by up to this many pixels in each direction (Hinton et al.'s MNIST jitter is 2).
  /// Default 0: off.
  public var jitter: Int
  /// Mirror left-right with probability 1/2. Default false.
  public var flip: Bool
  /// Pad by this many zeros, then crop a random window of the original size. Default 0: off.
  public var padCrop: Int

  /// Augmentation settings; the defaults turn everything off.
  public init(jitter: Int = 0, flip: Bool = false, padCrop: Int = 0) {
    self.jitter = jitter
    self.flip = flip
    self.padCrop = padCrop
  }

  enum CodingKeys: String, RecipeKeys {
    case jitter, flip
    case padCrop = "pad_crop"
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    jitter = try c.decodeIfPresent(Int.self, forKey: .jitter) ?? 0
    flip = try c.decodeIfPresent(Bool.self, forKey: .flip) ?? false
    padCrop = try c.decodeIfPresent(Int.self, forKey: .padCrop) ?? 0
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(jitter, forKey: .jitter)
    try c.encode(flip, forKey: .flip)
    try c.encode(padCrop, forKey: .padCrop)
  }
}
