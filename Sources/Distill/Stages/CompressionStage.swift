import Autodiff
import Checkpoints
import NN
import DistillRecipes

// The plug-in point for compression stages. A stage is one file in this folder: a type
// conforming to `CompressionStage` (its recipe keys, what it does to the student when it
// begins, the hooks it keeps while the student fine-tunes, its state, its figures) and a line in
// `CompressionStages.all`. The checklist is in docs/DESIGN.md ("Adding a compression stage").

/// The student as a stage receives it and hands it on: the network and its layer list (the
/// architecture its model files and checkpoints record).
struct StudentNetwork {
  var model: Sequential
  var layers: [LayerSpec]
}

/// What a stage may look at when a run builds it, before anything trains.
struct StageContext {
  /// The recipe file and the key path of the stage's settings (`compress[0].prune`), for errors.
  let file: String
  let keyPath: String
  let settings: MethodSettings
  /// The student as the stages receive it, and its expanded layer list (the positions a
  /// stage's `layers` key names).
  let model: Sequential
  let layers: [LayerSpec]
  /// Optimizer steps the stage's fine-tuning takes (epochs × steps per epoch).
  let steps: Int
  /// Seeds the stage's own random choices (its calibration samples): derived from the run's
  /// seed and the stage's label.
  let seed: UInt64
  /// The run resumes within this stage: `model` is the checkpoint's network, which a stage
  /// that reshapes (`reshape`) has reshaped already.
  var resuming = false

  /// Throws when the student has no layer at `position` (a `layers` entry).
  func requireLayer(_ position: Int) throws {
    let count = model.layers.count
    if position >= count {
      throw mismatch("layers", "the student has \(count) layers (positions 0…\(count - 1)), so there is no layer \(position)")
    }
  }

  /// An error about this stage's settings that only the built student reveals.
  func mismatch(_ key: String, _ reason: String) -> TrainingError {
    .methodMismatch(file: file, keyPath: key.isEmpty ? keyPath : keyPath + "." + key, reason: reason)
  }
}

/// A compression stage: built once per run, before anything trains, from its settings and the
/// student; then, when the run reaches it, it changes the student (`begin`) and keeps its
/// change in force while the student fine-tunes with the recipe's distillation.
protocol CompressionStage: AnyObject {
  static var info: StageInfo { get }
  /// Builds the stage; throws `TrainingError` naming the file and key when its settings do not
  /// fit the student.
  init(context: StageContext) throws
  /// The stage begins, with the run's data at hand (not called again when a run resumes within
  /// the stage).
  func begin(_ training: ModelTraining, data: TrainingData)
  /// After each micro-batch's backward pass; in data-parallel training also once more on the
  /// step's gradients summed over the ranks, so it must be idempotent (masking is).
  func afterBackward(_ training: ModelTraining)
  /// After each optimizer step; `step` counts the stage's steps, 1-based.
  func afterStep(_ training: ModelTraining, step: Int)
  /// Saved in checkpoints under `/state/stage`, restored on resume.
  var state: MethodState { get }
  /// Restores `state`, checking it first; throws `TrainingError.checkpointMismatch`.
  func restore(_ state: MethodState, file: String) throws
  /// Named figures for `metrics.jsonl` and `summary.json` (`sparsity`).
  var figures: [(name: String, value: Double)] { get }
  /// Groups written beside the model in the stage's model file (`masks`).
  var modelFileGroups: [(name: String, arrays: [NamedArray])] { get }
  /// Before the stage fine-tunes (not when a run resumes within it): a stage that changes the
  /// student's architecture (`low_rank`) returns the new network, built from `student`'s
  /// weights (`masters`, the Float masters, in f16-mixed), and its layer list; nil keeps the
  /// student. The stage's hooks then see the new network.
  func reshape(_ student: StudentNetwork, masters: [String: [Float]]?) throws -> StudentNetwork?
  /// The model the stage produces from the fine-tuned `model`: tested, measured and saved as
  /// the stage's result, and the student the next stage receives (`model` itself, a smaller
  /// network without the pruned neurons, or a quantized network built from it).
  func finalModel(_ model: Sequential) -> Sequential
  /// `finalModel`'s layer list when it differs from the list the stage received (structured
  /// pruning's smaller widths); nil when it is the same.
  var finalLayers: [LayerSpec]? { get }
  /// Writes `model` (`finalModel`'s) as the group `group` of the model file at `path`: by
  /// default as `saveModels` does, with `modelFileGroups` beside it.
  func writeModel(
    _ model: Sequential, group: String, architecture: String, to path: String, precision: StoragePrecision) throws
}

extension CompressionStage {
  func afterBackward(_ training: ModelTraining) {}
  func afterStep(_ training: ModelTraining, step: Int) {}
  var state: MethodState { MethodState() }
  func restore(_ state: MethodState, file: String) throws {}
  var figures: [(name: String, value: Double)] { [] }
  var modelFileGroups: [(name: String, arrays: [NamedArray])] { [] }
  func reshape(_ student: StudentNetwork, masters: [String: [Float]]?) throws -> StudentNetwork? { nil }
  func finalModel(_ model: Sequential) -> Sequential { model }
  var finalLayers: [LayerSpec]? { nil }
  func writeModel(
    _ model: Sequential, group: String, architecture: String, to path: String, precision: StoragePrecision
  ) throws {
    try saveModels([(group, model, architecture)], extraGroups: modelFileGroups, to: path, precision: precision)
  }
}

/// The registry: every stage a recipe's `compress:` can name, in the order `distill stages`
/// lists them.
public enum CompressionStages {
  static var all: [any CompressionStage.Type] {
    [MagnitudePruning.self, LowRankFactorization.self, Int8Quantization.self]
  }

  /// What every registered stage declares, in registry order.
  public static var infos: [StageInfo] { all.map { $0.info } }

  static func named(_ name: String) -> (any CompressionStage.Type)? {
    all.first { $0.info.name == name }
  }
}

/// One stage of a run's `compress:` list, built: its label (`prune`, `prune-2`), settings and
/// the stage itself.
struct StageRun {
  let index: Int
  let label: String
  let spec: CompressionStageSpec
  let stage: any CompressionStage
  /// The network the stage was built for (its hooks hold that network's tensors).
  let student: Sequential
  var info: StageInfo { type(of: stage).info }
  var epochs: Int { spec.settings.integer("epochs", in: info.keys) }
  var learningRateFactor: Double { spec.settings.number("lr_factor", in: info.keys) }
  var maxAccuracyDrop: Double { spec.settings.number("max_accuracy_drop", in: info.keys) }
  var keyPath: String { "compress[\(index)].\(spec.name)" }
}

/// Every Linear and Conv2D below `layer` (itself included), with the parameter name of its
/// weight (`3.weight`, `2.body.0.weight`), depth first.
func weightLayers(of layer: any Layer, path: String) -> [(name: String, weight: Tensor, layer: any Layer)] {
  if let linear = layer as? Linear { return [(path + ".weight", linear.weight, linear)] }
  if let conv = layer as? Conv2D { return [(path + ".weight", conv.weight, conv)] }
  var found: [(name: String, weight: Tensor, layer: any Layer)] = []
  for (name, child) in layer.children {
    found += weightLayers(of: child, path: path.isEmpty ? name : "\(path).\(name)")
  }
  return found
}
