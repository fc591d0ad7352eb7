import Autodiff
import Checkpoints
import NN
import DistillRecipes

// The plug-in point for distillation methods. A method is one file in this folder: a type
// conforming to `DistillationMethod` (its recipe keys, what it reads from the two networks, its
// extra modules and state, and its loss) and a line in `DistillationMethods.all`. The checklist
// for adding one is in docs/DESIGN.md ("Adding a distillation method").

/// Everything a method may look at when a run builds it, before anything trains.
struct MethodContext {
  /// The recipe file and the key path of the method's settings, for errors.
  let file: String
  var keyPath: String
  let spec: DistillationSpec
  let teacher: Sequential
  /// The teacher's expanded layers and each layer's per-sample output shape.
  let teacherLayers: [LayerSpec]
  let teacherShapes: [[Int]]
  /// `teacher.from` when the teacher was loaded from a file (named in layer errors).
  let teacherFile: String?
  let student: Sequential
  let studentLayers: [LayerSpec]
  let studentShapes: [[Int]]
  let classCount: Int
  /// Samples in the training split (CRD's memory banks hold one row per sample).
  let trainCount: Int
  /// Labels of the training split, by sample index (CRD draws negatives of other classes).
  let trainLabels: [Int]
  /// Seeds the method's own initialisation and random streams (`derivedSeed`).
  let seed: UInt64

  /// An error about this method's settings that only the built networks reveal.
  func mismatch(_ key: String, _ reason: String) -> TrainingError {
    .methodMismatch(file: file, keyPath: key.isEmpty ? keyPath : keyPath + "." + key, reason: reason)
  }

  /// `given` checked against a network's layers, or `fallback` when empty.
  func layers(_ given: [Int], of role: ModelRole, key: String, fallback: () throws -> [Int]) throws -> [Int] {
    let count = role == .teacher ? teacherLayers.count : studentLayers.count
    if given.isEmpty { return try fallback() }
    for index in given where index >= count {
      let from = role == .teacher ? teacherFile.map { " (\($0))" } ?? "" : ""
      throw mismatch(key, "the \(role.rawValue)\(from) has \(count) layers, so there is no layer \(index)")
    }
    return given
  }

  /// Refuses a module of `parameters` weights (trained as a model's are: weights, gradients and
  /// two optimizer moments, 16 bytes each) larger than half of this machine's memory, naming `key`.
  func requireModule(parameters factors: [Int], _ key: String, _ what: String) throws {
    var count = 1
    var overflow = false
    for factor in factors {
      let (product, o) = count.multipliedReportingOverflow(by: factor)
      (count, overflow) = (product, overflow || o)
    }
    if overflow || count > ProcessMemory.physicalBytes / 32 {
      throw mismatch(
        key, "\(what) would have \(factors.map(String.init).joined(separator: " × ")) weights, more than half of "
          + "this machine's \(ProcessMemory.physicalBytes >> 20) MiB can train; pick smaller layers")
    }
  }

  /// One layer of `role`: the position `given` (at most one), or `fallback`'s choice; throws
  /// `mismatch` naming `key` when neither gives one.
  func layer(_ given: [Int], of role: ModelRole, key: String, fallback: () -> Int?) throws -> Int {
    guard given.count <= 1 else { throw mismatch(key, "give one layer position, not \(given)") }
    return try layers(given, of: role, key: key) {
      guard let index = fallback() else {
        throw mismatch(key, "the \(role.rawValue) has no layer this method can read by default; give \(key)")
      }
      return [index]
    }[0]
  }

  /// The stage outputs of a network: the last layer at each spatial resolution before a
  /// downsampling (`max_pool`, `avg_pool`) or `flatten`, i.e. the feature maps AT, NST and SP
  /// read (mdistiller's `feats[1:]` for a ResNet's stages).
  func stageOutputs(of role: ModelRole) -> [Int] {
    let layers = role == .teacher ? teacherLayers : studentLayers
    let shapes = role == .teacher ? teacherShapes : studentShapes
    var found: [Int] = []
    for (index, layer) in layers.enumerated() where index > 0 && shapes[index - 1].count == 3 {
      switch (layer, layers[index - 1]) {
      case (.flatten, .maxPool), (.flatten, .avgPool): break  // the pooled features, not a stage
      case (.maxPool, _), (.avgPool, _), (.flatten, _): found.append(index - 1)
      default: break
      }
    }
    return found
  }

  /// The penultimate features: the input of the last linear layer, skipping back over dropout
  /// (mdistiller's `pooled_feat`, what PKT, RKD and CRD read).
  func penultimate(of role: ModelRole) -> Int? {
    let layers = role == .teacher ? teacherLayers : studentLayers
    guard var index = layers.lastIndex(where: { if case .linear = $0 { true } else { false } }) else { return nil }
    index -= 1
    while index >= 0, case .dropout = layers[index] { index -= 1 }
    return index >= 0 ? index : nil
  }

  func shape(of role: ModelRole, layer: Int) -> [Int] {
    role == .teacher ? teacherShapes[layer] : studentShapes[layer]
  }
}

extension MethodContext {
  /// The context of `spec` for two built networks (`ModelSpec`s as `ModelBuilder` built them,
  /// whose layer positions the methods' keys name) on samples of `inputShape`; `teacherFile` is
  /// `teacher.from` when the teacher came from a file. Throws the builder's shape errors.
  init(
    file: String, spec: DistillationSpec, teacher: (model: Sequential, spec: ModelSpec), teacherFile: String?,
    student: (model: Sequential, spec: ModelSpec), inputShape: [Int], classCount: Int, trainLabels: [Int], seed: UInt64
  ) throws {
    let shapes = { (role: String, model: ModelSpec) in
      try ModelBuilder(file: file, keyPath: "\(role).model").outputShapes(
        of: model, inputShape: inputShape, classCount: classCount)
    }
    self.init(
      file: file, keyPath: "distillation", spec: spec, teacher: teacher.model,
      teacherLayers: teacher.spec.expandedLayers(classCount: classCount),
      teacherShapes: try shapes("teacher", teacher.spec), teacherFile: teacherFile, student: student.model,
      studentLayers: student.spec.expandedLayers(classCount: classCount),
      studentShapes: try shapes("student", student.spec), classCount: classCount, trainCount: trainLabels.count,
      trainLabels: trainLabels, seed: seed)
  }
}

/// One micro-batch, as a method's loss sees it.
struct MethodBatch {
  let studentLogits: Tensor
  /// Computed without recording; nil when no method of the run needs them.
  let teacherLogits: Tensor?
  /// Layer outputs by layer position: the student's recorded, the teacher's constants.
  let studentFeatures: [Int: Tensor]
  let teacherFeatures: [Int: Tensor]
  let labels: [Int]
  /// The samples' positions in the training split.
  let indices: [Int]
  /// 1-based.
  let epoch: Int
}

/// A method's state that is not a trainable parameter (memory banks, random streams, running
/// statistics of its modules): saved in checkpoints under `/state/method`, restored on resume.
struct MethodState: Equatable {
  var arrays: [NamedArray] = []
  var words: [String: [UInt64]] = [:]
}

/// A distillation method: built once per run from its settings and the two networks.
protocol DistillationMethod: AnyObject {
  static var info: MethodInfo { get }
  /// Builds the method for a run; throws `TrainingError` (naming the file and key) when its
  /// settings do not fit the networks.
  init(settings: MethodSettings, context: MethodContext) throws
  /// Layer positions whose outputs the loss reads, captured in the forward passes.
  var teacherLayers: [Int] { get }
  var studentLayers: [Int] { get }
  /// Whether the loss reads the teacher's logits.
  var needsTeacherLogits: Bool { get }
  /// Modules trained with the student (regressors, projection heads), saved in checkpoints but
  /// not in `student.h5`; their parameters are named `name.parameter`.
  var modules: [(name: String, layer: any Layer)] { get }
  /// The method's weighted term of the loss of `batch`, a scalar.
  func loss(_ batch: MethodBatch) -> Tensor
  var state: MethodState { get }
  /// Restores `state`, checking it first; throws `TrainingError.checkpointMismatch`.
  func restore(_ state: MethodState, file: String) throws
  /// Called after each micro-batch's backward pass (CRD writes its memory banks here, after
  /// the gradients that read them).
  func afterBackward()
  /// Whether the loss relates the samples of a batch to each other (similarity matrices, batch
  /// correlations, memory banks): in data-parallel training each rank computes it over its own
  /// shard, so the result differs from one process's.
  static var couplesSamples: Bool { get }
}

extension DistillationMethod {
  var teacherLayers: [Int] { [] }
  var studentLayers: [Int] { [] }
  var needsTeacherLogits: Bool { true }
  var modules: [(name: String, layer: any Layer)] { [] }
  var state: MethodState { MethodState() }
  func restore(_ state: MethodState, file: String) throws {}
  func afterBackward() {}
  static var couplesSamples: Bool { false }

  /// A number setting.
  static func number(_ key: String, _ settings: MethodSettings) -> Double { settings.number(key, in: info.keys) }

  static func integer(_ key: String, _ settings: MethodSettings) -> Int { settings.integer(key, in: info.keys) }

  static func flag(_ key: String, _ settings: MethodSettings) -> Bool {
    if case .flag(let value) = settings.value(key, in: info.keys) { return value }
    preconditionFailure("\(key) is not a flag key")
  }

  static func layers(_ key: String, _ settings: MethodSettings) -> [Int] { settings.layers(key, in: info.keys) }
}

/// The registry: every method a recipe can name, in the order `distill methods` lists them.
public enum DistillationMethods {
  static var all: [any DistillationMethod.Type] {
    [
    KnowledgeDistillation.self,
    DecoupledKD.self,
    DISTMethod.self,
    HintMethod.self,
    FitNets.self,
    AttentionTransfer.self,
    NeuronSelectivityTransfer.self,
    ProbabilisticKT.self,
    SimilarityPreserving.self,
    RelationalKD.self,
    ContrastiveRD.self,
    ]
  }

  /// What every registered method declares, in registry order; `none` is not a method.
  public static var infos: [MethodInfo] { all.map { $0.info } }

  static func named(_ name: String) -> (any DistillationMethod.Type)? {
    all.first { $0.info.name == name }
  }

  /// Every name `distillation.method` accepts: `none` and the registered methods.
  public static var names: [String] { ["none"] + all.map { $0.info.name } }
}
