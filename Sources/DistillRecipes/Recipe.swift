import Foundation
import Yams

/// A training recipe: what data, which teacher and student, how each is trained and how the
/// student learns from the teacher. Written in YAML; the schema (every key, its type, default
/// and meaning) is documented once, in `recipes/README.md`.
///
/// `Recipe.load(path:)` reads, decodes and validates a recipe before any training starts, and
/// every problem is a `RecipeError` naming the file and the key path. Defaults are filled in
/// on decoding, so two recipes that differ only in spelled-out defaults are equal and have the
/// same `canonicalHash`.
public struct Recipe: Codable, Equatable, Sendable {
  /// The run's name; it names the run folder `checkpoints/<name>/`.
  public var name: String
  /// Seeds every random choice: initialisation, shuffling, dropout, augmentation. Default 0.
  public var seed: UInt64
  /// Which data set, where, and how much of it to hold out.
  public var data: DataSpec
  /// The teacher, trained here or loaded from weights; nil when no teacher is used.
  public var teacher: TeacherSpec?
  /// The student, always trained here.
  public var student: StudentSpec
  /// How the student learns from the teacher. Default: `method: none`.
  public var distillation: DistillationSpec
  /// Arithmetic precision of training. Default `f32`.
  public var precision: Precision
  /// Compression stages run on the distilled student, in order (`compress:`). Default: none.
  public var compress: [CompressionStageSpec]
  /// Checkpoint retention and activation recompute. Default: keep every epoch, no recompute.
  public var checkpoint: CheckpointSpec
  /// How energy is measured. Default: `meter: auto`.
  public var energy: EnergySpec

  /// A recipe from its parts; call `validate()` before training with it.
  public init(
    name: String, seed: UInt64 = 0, data: DataSpec, teacher: TeacherSpec? = nil, student: StudentSpec,
    distillation: DistillationSpec = DistillationSpec(), precision: Precision = .f32,
    checkpoint: CheckpointSpec = CheckpointSpec(), energy: EnergySpec = EnergySpec(),
    compress: [CompressionStageSpec] = []
  ) {
    self.compress = compress
    self.name = name
    self.seed = seed
    self.data = data
    self.teacher = teacher
    self.student = student
    self.distillation = distillation
    self.precision = precision
    self.checkpoint = checkpoint
    self.energy = energy
  }

  enum CodingKeys: String, RecipeKeys {
    case name, seed, data, teacher, student, distillation, compress, precision, checkpoint, energy
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    name = try c.decode(String.self, forKey: .name)
    seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
    data = try c.decode(DataSpec.self, forKey: .data)
    teacher = try c.decodeIfPresent(TeacherSpec.self, forKey: .teacher)
    student = try c.decode(StudentSpec.self, forKey: .student)
    distillation = try c.decodeIfPresent(DistillationSpec.self, forKey: .distillation) ?? DistillationSpec()
    compress = try c.decodeIfPresent([CompressionStageSpec].self, forKey: .compress) ?? []
    precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .f32
    checkpoint = try c.decodeIfPresent(CheckpointSpec.self, forKey: .checkpoint) ?? CheckpointSpec()
    energy = try c.decodeIfPresent(EnergySpec.self, forKey: .energy) ?? EnergySpec()
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(name, forKey: .name)
    try c.encode(seed, forKey: .seed)
    try c.encode(data, forKey: .data)
    try c.encodeIfPresent(teacher, forKey: .teacher)
    try c.encode(student, forKey: .student)
    try c.encode(distillation, forKey: .distillation)
    // Written only when given, so that recipes without stages keep their canonical hash.
    if !compress.isEmpty { try c.encode(compress, forKey: .compress) }
    try c.encode(precision, forKey: .precision)
    try c.encode(checkpoint, forKey: .checkpoint)
    try c.encode(energy, forKey: .energy)
  }
}

// MARK: - Loading

extension Recipe {
  /// Reads, decodes and validates the recipe at `path`, its distillation sections against
  /// `methods` (the training module's `Recipe.load(path:)` passes the registered ones).
  ///
  /// Throws `RecipeError`: `cannotRead` (missing or unreadable file), `syntax` (invalid YAML,
  /// with line and column), or the first schema or validation problem, with its key path.
  public static func load(path: String, methods: [MethodInfo], stages: [StageInfo] = []) throws -> Recipe {
    let text: String
    do {
      let attributes = try? FileManager.default.attributesOfItem(atPath: path)
      if let type = attributes?[.type] as? FileAttributeType, type != .typeRegular {
        throw RecipeError.cannotRead(
          file: path, reason: type == .typeDirectory ? "it is a folder, not a recipe file" : "not a regular file")
      }
      let size = attributes?[.size] as? Int ?? 0
      if size > RecipeLimits.maxBytes {
        throw RecipeError.cannotRead(
          file: path, reason: "the file has \(size) bytes; a recipe may have at most \(RecipeLimits.maxBytes) (1 MiB)")
      }
      text = try String(contentsOfFile: path, encoding: .utf8)
    } catch let error as RecipeError {
      throw error
    } catch {
      let reason =
        FileManager.default.fileExists(atPath: path) ? "not readable as UTF-8 text" : "no such file"
      throw RecipeError.cannotRead(file: path, reason: reason)
    }
    return try parse(yaml: text, file: path, methods: methods, stages: stages)
  }

  /// Decodes and validates a recipe from YAML text; `file` is the name errors give it, and
  /// `methods` the distillation methods its sections are checked against.
  public static func parse(
    yaml: String, file: String = "<recipe>", methods: [MethodInfo], stages: [StageInfo] = []
  ) throws -> Recipe {
    try RecipeLimits.check(yaml, file: file)
    let root: Node?
    do {
      root = try Yams.compose(yaml: yaml)
    } catch let error as YamlError {
      throw syntaxError(error, file: file, text: yaml)
    }
    guard let root, !RecipeNodeDecoder.isNull(root) else {
      throw RecipeError.wrongType(
        file: file, keyPath: "", expected: "a mapping of recipe keys", found: "an empty document")
    }
    try RecipeLimits.checkSize(of: root, file: file)
    let recipe = try Recipe(from: RecipeNodeDecoder(node: root, codingPath: [], file: file))
    try recipe.validate(file: file, methods: methods, stages: stages)
    return recipe
  }

  /// Yams' parse failures as `RecipeError.syntax`, with the line and column of the problem.
  private static func syntaxError(_ error: YamlError, file: String, text: String) -> RecipeError {
    switch error {
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
      .composer(let context, let problem, let mark, _):
      let detail = context.map { "\(problem) (\($0.text) at line \($0.mark.line))" } ?? problem
      return .syntax(file: file, line: mark.line, column: mark.column, problem: detail)
    case .reader(let problem, let offset, _, _):
      // `offset` counts characters from the start of the text.
      let lines = text.prefix(offset ?? 0).split(separator: "\n", omittingEmptySubsequences: false)
      return .syntax(file: file, line: lines.count, column: (lines.last?.count ?? 0) + 1, problem: problem)
    default:
      return .cannotRead(file: file, reason: "\(error)")
    }
  }
}

// MARK: - Teacher and student

/// The teacher: either built from `model` and trained with `train`, or loaded `from` a weights
/// file (ours, or written by h5py from a PyTorch `state_dict`); `model` may accompany `from` to
/// give the architecture the weights load into.
public struct TeacherSpec: Codable, Equatable, Sendable {
  /// The architecture.
  public var model: ModelSpec?
  /// A weights file (HDF5, `/teacher` group or root) to load instead of training.
  public var from: String?
  /// How to train the teacher; required with `model` unless `from` is given.
  public var train: TrainSpec?

  /// A teacher from its parts.
  public init(model: ModelSpec? = nil, from: String? = nil, train: TrainSpec? = nil) {
    self.model = model
    self.from = from
    self.train = train
  }

  enum CodingKeys: String, RecipeKeys { case model, from, train }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    model = try c.decodeIfPresent(ModelSpec.self, forKey: .model)
    from = try c.decodeIfPresent(String.self, forKey: .from)
    train = try c.decodeIfPresent(TrainSpec.self, forKey: .train)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encodeIfPresent(model, forKey: .model)
    try c.encodeIfPresent(from, forKey: .from)
    try c.encodeIfPresent(train, forKey: .train)
  }
}

/// The student: an architecture, optional starting weights, and how to train it.
public struct StudentSpec: Codable, Equatable, Sendable {
  /// The architecture.
  public var model: ModelSpec
  /// A weights file to start from instead of a fresh initialisation (YAML key `init`).
  public var initialWeights: String?
  /// How to train the student.
  public var train: TrainSpec

  /// A student from its parts.
  public init(model: ModelSpec, initialWeights: String? = nil, train: TrainSpec) {
    self.model = model
    self.initialWeights = initialWeights
    self.train = train
  }

  enum CodingKeys: String, RecipeKeys {
    case model
    case initialWeights = "init"
    case train
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    model = try c.decode(ModelSpec.self, forKey: .model)
    initialWeights = try c.decodeIfPresent(String.self, forKey: .initialWeights)
    train = try c.decode(TrainSpec.self, forKey: .train)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(model, forKey: .model)
    try c.encodeIfPresent(initialWeights, forKey: .initialWeights)
    try c.encode(train, forKey: .train)
  }
}
