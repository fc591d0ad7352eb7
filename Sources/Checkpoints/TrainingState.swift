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
  /// The optimizer's recipe name (`sgd`, `adam`, `adamw`) and its per-parameter state, keyed
  /// like `torch.optim` state entries (`0.weight.momentum_buffer`, `0.weight.exp_avg`, `…step`).
  public var optimizerName: String
  public var optimizer: [NamedArray] = []
  /// Tensors trained with the model but not part of it (the hint regressor).
  public var extraParameters: [NamedArray] = []
  /// Float master weights, keyed like the model's parameters; empty in Float32 training, where
  /// the model's own (Float32) datasets are the master weights.
  public var masterWeights: [NamedArray] = []
  /// The distillation methods' state that is not a parameter (memory banks, running statistics
  /// of their modules), names prefixed by the method's (`crd.memory_student`); `/state/method/arrays`.
  public var methodArrays: [NamedArray] = []
  /// The methods' random streams and counters as 64-bit words; `/state/method/words`.
  public var methodWords: [(name: String, words: [UInt64])] = []
  /// The compression stage's state (a stage phase only: pruning masks keyed by parameter
  /// name); `/state/stage/arrays` and `/state/stage/words`.
  public var stageArrays: [NamedArray] = []
  public var stageWords: [(name: String, words: [UInt64])] = []
  /// The final results of the phases before this one, beyond the teacher's (`teacherResult`):
  /// the student's and each earlier stage's, as named numbers, by phase; `/state/results/<phase>`.
  public var phaseResults: [String: [String: Double]] = [:]
  /// The dynamic loss scaler's state; Float32 training writes the initial state and never reads it.
  public var lossScale = LossScalerState.initial
  /// The augmenter's SplitMix64 state, when the phase's model trains with augmentation.
  public var augmenterState: UInt64?
  /// Each dropout layer's xoshiro256** state (4 words), keyed by the layer's path in the model
  /// (`"1"`, `"3"`, `"2.body.1"`).
  public var dropoutStates: [(layer: String, state: [UInt64])] = []
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
      && a.runSeconds == b.runSeconds && a.optimizerName == b.optimizerName && a.optimizer == b.optimizer
      && a.extraParameters == b.extraParameters && a.masterWeights == b.masterWeights
      && a.methodArrays == b.methodArrays && a.methodWords.map(\.name) == b.methodWords.map(\.name)
      && a.methodWords.map(\.words) == b.methodWords.map(\.words)
      && a.stageArrays == b.stageArrays && a.stageWords.map(\.name) == b.stageWords.map(\.name)
      && a.stageWords.map(\.words) == b.stageWords.map(\.words) && a.phaseResults == b.phaseResults
      && a.lossScale == b.lossScale && a.augmenterState == b.augmenterState
      && a.dropoutStates.map(\.layer) == b.dropoutStates.map(\.layer)
      && a.dropoutStates.map(\.state) == b.dropoutStates.map(\.state) && a.metrics == b.metrics
      && a.lastEpoch == b.lastEpoch && a.teacherResult == b.teacherResult && a.recipeHash == b.recipeHash
      && a.recipeJSON == b.recipeJSON && a.seedOverride == b.seedOverride
      && a.epochsOverride == b.epochsOverride && a.dataPath == b.dataPath && a.blasThreads == b.blasThreads
      && a.modelGroups == b.modelGroups
  }
}
