// What a training checkpoint (`epoch-NNNN.h5`, `latest.h5`) holds besides the model weights:
// everything `distill resume` needs to continue exactly where a run stopped. The file layout is
// in README.md here ("Training checkpoints"); `TrainingState+File.swift` reads and writes it.

import NN

/// A named array: an optimizer state entry (`0.weight.momentum_buffer`), an extra trained
/// tensor (`hint_regressor.weight`) or a master weight, with its shape (`[]` for a scalar).
public struct NamedArray: Equatable, Sendable {
  public var name: String
  public var shape: [Int]
  public var values: [Float]

  public init(name: String, shape: [Int], values: [Float]) {
    precondition(values.count == shape.reduce(1, *), "\(name): \(values.count) values for shape \(shape)")
    self.name = name
    self.shape = shape
    self.values = values
  }
}

/// The training state of a run at one point: between two optimizer steps, either at the end of
/// an epoch (`batch == 0`) or within one (after a stop signal). The models' weights (and batch
/// norm buffers) are stored beside it, as in model files.
///
/// `epoch` and `batch` say where the phase's model is: epochs `0..<epoch` are done and epoch
/// `epoch` (0-based) has trained its first `batch` micro-batches, whose loss sum, sample count
/// and step count are `lossSum`, `samples`, `steps`. An uninterrupted run resumed from here
/// visits the same samples, draws the same random numbers and applies the same updates.
public struct TrainingState: Equatable, Sendable {
  /// The `format` attribute this version writes and reads.
  public static let currentFormat = "swift-distill-checkpoint-1"

  /// `"teacher"`, `"student"`, or a compression stage's label (`"prune"`, `"prune-2"`): what
  /// is being trained.
  public var phase: String
  /// Completed epochs of the phase's model.
  public var epoch: Int
  /// Micro-batches of epoch `epoch` (0-based) already trained; 0 at an epoch's end.
  public var batch: Int
  /// Optimizer steps of the phase's model so far, over all epochs.
  public var globalStep: Int
  /// Completed epochs of the whole run, the teacher's then the student's: the `NNNN` of
  /// `epoch-NNNN.h5`.
  public var runEpoch: Int
  /// The partial epoch's summed loss (Σ micro-batch mean loss × its size), samples and steps.
  public var lossSum: Double = 0
  public var samples: Int = 0
  public var steps: Int = 0
  /// Wall time spent in the partial epoch, in the phase's model, and in the run so far.
  public var epochSeconds: Double = 0
  /// Energy of the partial epoch's training so far (joules, and DRAM joules where the meter
  /// has a DRAM counter), which resume adds to that epoch's record. 0 / nil in checkpoints
  /// written at an epoch's end and in those of versions that did not record it.
  public var epochJoules: Double = 0
  public var epochDRAMJoules: Double?
  public var modelSeconds: Double = 0
  public var runSeconds: Double = 0
  /// The optimizer's recipe name (`sgd`, `adam`, `adamw`): the `optimizer` attribute.
  public var optimizerName: String
  /// Every stateful component's state, by the name of its group under `/state`
  /// (`ComponentState`): what `distill resume` hands back to each. The properties below read
  /// and write the components of this version's training by their groups.
  public var components: [String: ComponentState] = [:]
  /// The final results of the phases before this one, beyond the teacher's (`teacherResult`):
  /// the student's and each earlier stage's, as named numbers, by phase; `/state/results/<phase>`.
  public var phaseResults: [String: [String: Double]] = [:]
  /// The lines of `metrics.jsonl` so far.
  public var metrics: [String] = []
  /// The phase model's last completed epoch: `train_loss`, `val_accuracy`, `val_loss`,
  /// `val_samples` (empty before the first epoch ends).
  public var lastEpoch: [String: Double] = [:]
  /// The teacher's final result (student phase only), as named numbers.
  public var teacherResult: [String: Double]?
  /// `Recipe.canonicalHash` and `Recipe.canonicalJSON` of the recipe as run.
  public var recipeHash: String
  public var recipeJSON: String
  /// The command-line choices of the run, for resume to apply again: `--seed`, `--epochs`,
  /// `--data` (made absolute), and the BLAS thread count (results are bitwise reproducible at
  /// the same count).
  public var seedOverride: UInt64?
  public var epochsOverride: Int?
  public var dataPath: String?
  public var blasThreads: Int
  /// The data-parallel ranks the run trained on (`ranks`; 1 without MPI, and in checkpoints
  /// written before data parallelism, which lack the attribute): a resume must use as many.
  public var ranks = 1
  /// The gradient bucket size of a data-parallel run (`bucket_bytes`, written when `ranks` > 1):
  /// the sums' message sizes, which a resume keeps so that they add up in the same order.
  public var bucketBytes: Int?
  /// The model groups in the file (read only; `writeTrainingCheckpoint` writes the models given).
  public var modelGroups: [String] = []

  public init(
    phase: String, epoch: Int, batch: Int, globalStep: Int, runEpoch: Int, optimizerName: String,
    recipeHash: String, recipeJSON: String, blasThreads: Int
  ) {
    self.phase = phase
    self.epoch = epoch
    self.batch = batch
    self.globalStep = globalStep
    self.runEpoch = runEpoch
    self.optimizerName = optimizerName
    self.recipeHash = recipeHash
    self.recipeJSON = recipeJSON
    self.blasThreads = blasThreads
  }

  public static func == (a: TrainingState, b: TrainingState) -> Bool {
    a.phase == b.phase && a.epoch == b.epoch && a.batch == b.batch && a.globalStep == b.globalStep
      && a.runEpoch == b.runEpoch && a.lossSum.bitPattern == b.lossSum.bitPattern && a.samples == b.samples
      && a.steps == b.steps && a.epochSeconds == b.epochSeconds
      && a.epochJoules == b.epochJoules && a.epochDRAMJoules == b.epochDRAMJoules && a.modelSeconds == b.modelSeconds
      && a.runSeconds == b.runSeconds && a.optimizerName == b.optimizerName && a.components == b.components
      && a.phaseResults == b.phaseResults && a.metrics == b.metrics
      && a.lastEpoch == b.lastEpoch && a.teacherResult == b.teacherResult && a.recipeHash == b.recipeHash
      && a.recipeJSON == b.recipeJSON && a.seedOverride == b.seedOverride
      && a.epochsOverride == b.epochsOverride && a.dataPath == b.dataPath && a.blasThreads == b.blasThreads
      && a.ranks == b.ranks && a.bucketBytes == b.bucketBytes && a.modelGroups == b.modelGroups
  }
}

/// The components of this version's trainings, by their groups under `/state`.
extension TrainingState {
  /// The optimizer's per-parameter state (`/state/optimizer`), keyed like `torch.optim` state
  /// entries (`0.weight.momentum_buffer`, `0.weight.exp_avg`, `…step`).
  public var optimizer: [NamedArray] {
    get { components["optimizer"]?.arrays ?? [] }
    set { components["optimizer", default: ComponentState()].arrays = newValue }
  }
  /// Tensors trained with the model but not part of it (the hint regressor): `/state/extra_parameters`.
  public var extraParameters: [NamedArray] {
    get { components["extra_parameters"]?.arrays ?? [] }
    set { components["extra_parameters", default: ComponentState()].arrays = newValue }
  }
  /// Float master weights, keyed like the model's parameters (`/state/master`); empty in
  /// Float32 training, where the model's own (Float32) datasets are the master weights.
  public var masterWeights: [NamedArray] {
    get { components["master"]?.arrays ?? [] }
    set { components["master", default: ComponentState()].arrays = newValue }
  }
  /// The distillation methods' state that is not a parameter (memory banks, running statistics
  /// of their modules), names prefixed by the method's (`crd.memory_student`):
  /// `/state/method/arrays`; their random streams and counters, `/state/method/words`.
  public var methodArrays: [NamedArray] {
    get { components["method"]?.groups["arrays"]?.arrays ?? [] }
    set { setPair("method", arrays: newValue, words: nil) }
  }
  public var methodWords: [(name: String, words: [UInt64])] {
    get { Self.sortedWords(components["method"]?.groups["words"]?.words) }
    set { setPair("method", arrays: nil, words: newValue) }
  }
  /// The compression stage's state (a stage phase only: pruning masks keyed by parameter name):
  /// `/state/stage/arrays` and `/state/stage/words`.
  public var stageArrays: [NamedArray] {
    get { components["stage"]?.groups["arrays"]?.arrays ?? [] }
    set { setPair("stage", arrays: newValue, words: nil) }
  }
  public var stageWords: [(name: String, words: [UInt64])] {
    get { Self.sortedWords(components["stage"]?.groups["words"]?.words) }
    set { setPair("stage", arrays: nil, words: newValue) }
  }
  /// The dynamic loss scaler's state (`/state/loss_scale`); Float32 training writes the initial
  /// state and never reads it; absent, the initial state.
  public var lossScale: LossScalerState {
    get { LossScalerState(component: components["loss_scale"]) }
    set { components["loss_scale"] = newValue.component }
  }
  /// The augmenter's SplitMix64 state, when the phase's model trains with augmentation:
  /// `/state/rng/augmenter`.
  public var augmenterState: UInt64? {
    get { components["rng"]?.words["augmenter"]?.first }
    set { components["rng", default: ComponentState()].words["augmenter"] = newValue.map { [$0] } }
  }
  /// Each dropout layer's xoshiro256** state (4 words), keyed by the layer's path in the model
  /// (`"1"`, `"3"`, `"2.body.1"`): `/state/rng/dropout/<path>`, in name order.
  public var dropoutStates: [(layer: String, state: [UInt64])] {
    get { Self.sortedWords(components["rng"]?.groups["dropout"]?.words).map { ($0.name, $0.words) } }
    set {
      components["rng", default: ComponentState()].groups["dropout"] = ComponentState(
        words: Dictionary(newValue.map { ($0.layer, $0.state) }, uniquingKeysWith: { a, _ in a }))
    }
  }

  /// A component of two groups, `arrays` and `words` (methods, stages); removed when both are empty.
  private mutating func setPair(_ name: String, arrays: [NamedArray]?, words: [(name: String, words: [UInt64])]?) {
    var component = components[name] ?? ComponentState(groups: ["arrays": ComponentState(), "words": ComponentState()])
    if let arrays { component.groups["arrays"] = ComponentState(arrays: arrays) }
    if let words {
      component.groups["words"] = ComponentState(
        words: Dictionary(words.map { ($0.name, $0.words) }, uniquingKeysWith: { a, _ in a }))
    }
    components[name] = component.isEmpty ? nil : component
  }

  private static func sortedWords(_ words: [String: [UInt64]]?) -> [(name: String, words: [UInt64])] {
    (words ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
  }
}

extension LossScalerState {
  /// The scaler's group `/state/loss_scale`: attributes `scale` (float64), `growth_tracker` and
  /// `skipped_steps` (int64).
  public var component: ComponentState {
    ComponentState(
      numbers: ["scale": Double(scale)],
      integers: ["growth_tracker": Int64(growthTracker), "skipped_steps": Int64(skippedSteps)])
  }

  /// The state in `component` (absent entries as in the initial state; no group at all: the
  /// initial state).
  public init(component: ComponentState?) {
    self.init(
      scale: Float(component?.numbers["scale"] ?? Double(LossScalerState.initial.scale)),
      growthTracker: Int(component?.integers["growth_tracker"] ?? 0),
      skippedSteps: Int(component?.integers["skipped_steps"] ?? 0))
  }
}
