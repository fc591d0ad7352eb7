// The recipe's run-wide settings: precision, checkpointing, energy measurement.

/// The arithmetic precision of training (`precision:`).
public enum Precision: String, CaseIterable, Codable, Sendable {
  /// Float32 throughout.
  case f32
  /// Parameters and saved activations in Float16, sums in Float, Float master weights in the
  /// optimizer and a dynamic loss scale.
  case f16Mixed = "f16-mixed"
  /// Float parameters, activations and gradients; matrix products take their operands rounded
  /// to bfloat16 and accumulate in Float (autocast); no loss scale.
  case bf16Mixed = "bf16-mixed"

  public init(from decoder: any Decoder) throws { self = try decoder.decodeChoice() }
}

/// Checkpoint retention and activation recompute (`checkpoint:`).
public struct CheckpointSpec: Codable, Equatable, Sendable {
  /// Keep only the newest K epoch files (K ≥ 1); `latest.h5` is always kept. Default (nil):
  /// `defaultKeepLast`.
  public var keepLast: Int?
  /// The epoch files kept when the recipe does not say: 3, so that an unreadable newest file
  /// still leaves older ones to resume from while a 60-epoch MNIST run does not fill gigabytes.
  public static let defaultKeepLast = 3
  /// Recompute activations in the backward pass instead of storing them. Default: off.
  public var recompute: RecomputeSpec?

  /// Checkpoint settings; the defaults keep every epoch and recompute nothing.
  public init(keepLast: Int? = nil, recompute: RecomputeSpec? = nil) {
    self.keepLast = keepLast
    self.recompute = recompute
  }

  enum CodingKeys: String, RecipeKeys {
    case keepLast = "keep_last"
    case recompute
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    keepLast = try c.decodeIfPresent(Int.self, forKey: .keepLast)
    recompute = try c.decodeIfPresent(RecomputeSpec.self, forKey: .recompute)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encodeIfPresent(keepLast, forKey: .keepLast)
    try c.encodeIfPresent(recompute, forKey: .recompute)
  }
}

/// Activation recompute (gradient checkpointing): the layer list is cut into `segments`
/// pieces; only each piece's input is kept, and its activations are recomputed in backward.
public struct RecomputeSpec: Codable, Equatable, Sendable {
  /// Number of segments, ≥ 1. Required.
  public var segments: Int

  /// Recompute settings.
  public init(segments: Int) { self.segments = segments }

  enum CodingKeys: String, RecipeKeys { case segments }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    segments = try c.decode(Int.self, forKey: .segments)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(segments, forKey: .segments)
  }
}

/// How energy is measured (`energy:`).
public struct EnergySpec: Codable, Equatable, Sendable {
  /// Which meter. Default `auto`.
  public var meter: EnergyMeterChoice
  /// Watts per busy core for the CPU-time estimate, > 0. Default: the Energy module's.
  public var wattsPerCore: Double?

  /// Energy settings.
  public init(meter: EnergyMeterChoice = .auto, wattsPerCore: Double? = nil) {
    self.meter = meter
    self.wattsPerCore = wattsPerCore
  }

  enum CodingKeys: String, RecipeKeys {
    case meter
    case wattsPerCore = "watts_per_core"
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    meter = try c.decodeIfPresent(EnergyMeterChoice.self, forKey: .meter) ?? .auto
    wattsPerCore = try c.decodeIfPresent(Double.self, forKey: .wattsPerCore)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(meter, forKey: .meter)
    try c.encodeIfPresent(wattsPerCore, forKey: .wattsPerCore)
  }
}

/// The energy meters a recipe can ask for.
public enum EnergyMeterChoice: String, CaseIterable, Codable, Sendable {
  /// RAPL where readable, else the CPU-time estimate (labelled as such).
  case auto
  /// RAPL only; an error where it cannot be read.
  case rapl
  /// The CPU-time estimate only.
  case estimate

  public init(from decoder: any Decoder) throws { self = try decoder.decodeChoice() }
}
