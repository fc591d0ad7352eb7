/// How the student learns from the teacher (`distillation:`). Without this section the
/// student trains on labels alone (`method: none`).
public struct DistillationSpec: Codable, Equatable, Sendable {
  /// The method. Required when the section is present.
  public var method: DistillationMethod
  /// Softmax temperature T > 0 for `kd`. Default 4.
  public var temperature: Double
  /// Weight α in [0, 1] of the soft (teacher) term for `kd`:
  /// `α·T²·KL(teacher_T ‖ student_T) + (1 − α)·CE(student, labels)` (`NN.distillationLoss`).
  /// Default 0.9.
  public var alpha: Double
  /// The layers whose outputs are matched, for `hint`; required then, refused otherwise.
  public var hint: HintSpec?

  /// Distillation settings; the default is no distillation.
  public init(
    method: DistillationMethod = .none, temperature: Double = 4, alpha: Double = 0.9, hint: HintSpec? = nil
  ) {
    self.method = method
    self.temperature = temperature
    self.alpha = alpha
    self.hint = hint
  }

  enum CodingKeys: String, RecipeKeys { case method, temperature, alpha, hint }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    method = try c.decode(DistillationMethod.self, forKey: .method)
    temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? 4
    alpha = try c.decodeIfPresent(Double.self, forKey: .alpha) ?? 0.9
    hint = try c.decodeIfPresent(HintSpec.self, forKey: .hint)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(method, forKey: .method)
    try c.encode(temperature, forKey: .temperature)
    try c.encode(alpha, forKey: .alpha)
    try c.encodeIfPresent(hint, forKey: .hint)
  }
}

/// The distillation methods.
public enum DistillationMethod: String, CaseIterable, Codable, Sendable {
  /// Labels only: cross-entropy (a baseline; a teacher, if any, is still trained).
  case none
  /// Hinton et al. 2015: temperature-softened teacher probabilities plus labels.
  case kd
  /// FitNets (Romero et al. 2015): cross-entropy plus `weight` × the mean squared error between
  /// a teacher layer's output and a student layer's output (through a learned linear map when
  /// their sizes differ).
  case hint

  public init(from decoder: any Decoder) throws { self = try decoder.decodeChoice() }
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
