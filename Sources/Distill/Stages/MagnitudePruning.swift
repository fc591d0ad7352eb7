import Autodiff
import Checkpoints
import Foundation
import NN
import DistillRecipes

/// Magnitude pruning (`compress: [prune: {…}]`): the weights of smallest magnitude of the
/// pruned layers (every linear and conv2d weight by default; biases and batch norm are kept)
/// are set to zero and held there by a 0/1 mask while the student fine-tunes, as
/// `torch.nn.utils.prune.l1_unstructured` (per layer) and `global_unstructured` (over all
/// pruned layers together) choose them.
///
/// Schedule: `one_shot` prunes to `amount` when the stage begins; `gradual` raises the sparsity
/// every `frequency` optimizer steps along Zhu & Gupta's (2017) cubic
///
///     s_t = s_f + (s_i − s_f) · (1 − t / (n Δt))³,   s_i = 0, s_f = amount, n Δt = ramp × steps,
///
/// reaching `amount` after `ramp` of the stage's steps and holding it for the rest. A weight
/// once pruned stays pruned (masks only grow).
///
/// The mask is kept in force by the hooks: gradients are multiplied by it after every
/// backward pass (so momentum and Adam moments stay zero where it is 0), and a new mask also
/// zeroes the weights (the Float masters in f16-mixed) and the optimizer state it removes.
/// Checkpoints hold the masks; the model file keeps the zeros and writes the masks in a
/// `masks` group beside the model (`/masks/<parameter>`, float32 0/1, the parameter's shape).
final class MagnitudePruning: CompressionStage {
  static let info = StageInfo(
    name: "prune", title: "Magnitude pruning (unstructured, per layer or global; one-shot or gradual)",
    reference: "Zhu & Gupta, To prune, or not to prune (ICLR workshop 2018, arXiv 1710.01878): gradual "
      + "schedule; torch.nn.utils.prune l1_unstructured and global_unstructured: the selection",
    summary: "zeroes the weights of smallest magnitude and keeps them zero with masks while fine-tuning",
    keys: [
      .number("amount", 0.5, "the fraction of the pruned weights set to zero (the final sparsity)", .belowOne),
      .choice(
        "scope", ["layer", "global"], "layer",
        "layer: each pruned layer loses `amount` of its weights; global: the smallest weights over all "
          + "pruned layers together"),
      .choice(
        "schedule", ["gradual", "one_shot"], "gradual",
        "gradual: Zhu & Gupta's cubic ramp from 0 to amount; one_shot: amount at once when the stage begins"),
      .number("ramp", 0.5, "gradual: the fraction of the stage's steps over which the sparsity reaches amount", .fraction),
      .integer(
        "frequency", 100, "gradual: optimizer steps between mask updates (Zhu & Gupta's Δt)", minimum: 1,
        maximum: 1 << 30),
      .choice(
        "structure", ["unstructured", "structured"], "unstructured",
        "unstructured: single weights; structured: whole neurons (rows of a linear weight) and channels (conv2d "
          + "filters) by L1 norm, removed from the network when the stage ends, so the layers really shrink"),
      .layers(
        "layers",
        "layer positions whose linear and conv2d weights are pruned (default: every one; structured: every one "
          + "but the last, which gives the class scores)"),
    ])

  /// The masked tensors: parameter name and tensor (unstructured: the pruned weights;
  /// structured: each pruned layer's weight and bias and the batch norm after it).
  let weights: [(name: String, tensor: Tensor)]
  /// Structured: the pruned layers, each with its row count and which of `weights` it masks.
  let groups: [StructuredGroup]
  /// The student's layer list as the stage received it (structured: `finalLayers` shrinks it).
  let layerSpecs: [LayerSpec]
  /// Each pruned weight's mask (1 kept, 0 pruned), in `weights` order.
  private(set) var masks: [[Float]]
  let amount: Double
  let global: Bool
  let gradual: Bool
  let frequency: Int
  /// The step at which the sparsity reaches `amount` (gradual).
  let rampSteps: Int

  init(context: StageContext) throws {
    let keys = Self.info.keys
    let settings = context.settings
    amount = settings.number("amount", in: keys)
    global = settings.word("scope", in: keys) == "global"
    frequency = settings.integer("frequency", in: keys)
    let ramp = settings.number("ramp", in: keys)
    gradual = settings.word("schedule", in: keys) == "gradual" && context.steps > 0
    rampSteps = max(1, Int((ramp * Double(context.steps)).rounded()))
    let given = settings.layers("layers", in: keys)
    let layers = context.model.layers
    layerSpecs = context.layers
    for position in given { try context.requireLayer(position) }
    if settings.word("structure", in: keys) == "structured" {
      if global {
        throw context.mismatch(
          "scope", "is global, but structured pruning ranks the neurons of each layer on their own (as "
            + "torch.nn.utils.prune.ln_structured); use scope: layer")
      }
      groups = try Self.structuredGroups(context: context, given: given, amount: amount)
      weights = groups.flatMap { $0.tensors }
      masks = weights.map { [Float](repeating: 1, count: $0.tensor.count) }
      return
    }
    groups = []
    var found: [(name: String, tensor: Tensor)] = []
    for position in given.isEmpty ? Array(layers.indices) : given {
      let inside = weightLayers(of: layers[position], path: "\(position)")
      if !given.isEmpty && inside.isEmpty {
        throw context.mismatch(
          "layers",
          "layer \(position) is \(context.layers.indices.contains(position) ? context.layers[position].kindName : "a layer without weights"), "
            + "which prune cannot handle; give linear and conv2d layers (or blocks holding them)")
      }
      found += inside.map { ($0.name, $0.weight) }
    }
    if found.isEmpty { throw context.mismatch("", "the student has no linear or conv2d layer to prune") }
    weights = found
    masks = found.map { [Float](repeating: 1, count: $0.tensor.count) }
  }

  func begin(_ training: ModelTraining, data: TrainingData) {
    if !gradual { prune(to: amount, training) }
  }

  func afterBackward(_ training: ModelTraining) {
    for (i, (_, tensor)) in weights.enumerated() {
      guard let grad = tensor.grad else { continue }
      Self.multiply(&grad.storage, by: masks[i])
    }
  }

  func afterStep(_ training: ModelTraining, step: Int) {
    if gradual, step <= rampSteps, step % frequency == 0 || step == rampSteps {
      prune(to: Self.sparsity(step: step, rampSteps: rampSteps, final: amount), training)
    }
  }

  /// Zhu & Gupta's target sparsity after `step` of a ramp of `rampSteps` to `final` from 0.
  static func sparsity(step: Int, rampSteps: Int, final: Double) -> Double {
    let progress = min(1, Double(step) / Double(rampSteps))
    return final * (1 - pow(1 - progress, 3))
  }

  /// Sets the masks to `selectMasks(…)` for `target`, then zeroes the newly pruned weights (the
  /// Float masters in f16-mixed) and their optimizer state.
  func prune(to target: Double, _ training: ModelTraining) {
    let mixed = training.optimizer as? MixedPrecisionOptimizer
    var masters = mixed?.masterWeights ?? [:]
    let values = weights.map { masters[$0.name] ?? $0.tensor.storage }
    masks =
      groups.isEmpty
      ? Self.selectMasks(values: values, pruned: masks, target: target, global: global)
      : structuredMasks(values: values, target: target)
    // The weights, the masters and the optimizer state where the masks are 0.
    var state = training.optimizer.state
    for (l, (name, tensor)) in weights.enumerated() {
      if masters[name] != nil {
        Self.multiply(&masters[name]!, by: masks[l])
      } else {
        Self.multiply(&tensor.storage, by: masks[l])
      }
      for key in state.keys where key.hasPrefix(name + ".") && state[key]!.count == masks[l].count {
        Self.multiply(&state[key]!, by: masks[l])
      }
    }
    training.optimizer.state = state
    if let mixed { mixed.masterWeights = masters }
  }

  /// Masks (1 kept, 0 pruned) that prune `target` of the weights in `values`: of each tensor
  /// (`round(target × count)`, half to even, as PyTorch's `_compute_nparams_toprune`), or of all
  /// together with `global`; the smallest magnitudes go first (ties: the earlier position,
  /// tensors in order), and weights `pruned` already (mask 0) before any other, so masks only
  /// grow. `prune.l1_unstructured` and `prune.global_unstructured` choose the same on
  /// untied magnitudes (Tests/Fixtures/prune_reference.json).
  static func selectMasks(values: [[Float]], pruned: [[Float]], target: Double, global: Bool) -> [[Float]] {
    var masks = pruned
    func key(_ l: Int, _ j: Int) -> Float { pruned[l][j] == 0 ? -1 : abs(values[l][j]) }
    if global {
      let total = values.reduce(0) { $0 + $1.count }
      var order: [(Int, Int)] = []
      order.reserveCapacity(total)
      for (l, v) in values.enumerated() { for j in v.indices { order.append((l, j)) } }
      order.sort { a, b in
        let (x, y) = (key(a.0, a.1), key(b.0, b.1))
        return x != y ? x < y : (a.0, a.1) < (b.0, b.1)
      }
      let k = Int((target * Double(total)).rounded(.toNearestOrEven))
      for (l, j) in order.prefix(k) { masks[l][j] = 0 }
    } else {
      for (l, v) in values.enumerated() {
        let order = v.indices.sorted { a, b in
          let (x, y) = (key(l, a), key(l, b))
          return x != y ? x < y : a < b
        }
        let k = Int((target * Double(v.count)).rounded(.toNearestOrEven))
        for j in order.prefix(k) { masks[l][j] = 0 }
      }
    }
    return masks
  }

  private static func multiply(_ values: inout [Float], by mask: [Float]) {
    values.withUnsafeMutableBufferPointer { v in
      mask.withUnsafeBufferPointer { m in
        for i in v.indices { v[i] *= m[i] }
      }
    }
  }

  var state: MethodState {
    MethodState(
      arrays: zip(weights, masks).map { NamedArray(name: $0.0.name, shape: $0.0.tensor.shape, values: $0.1) })
  }

  func restore(_ state: MethodState, file: String) throws {
    let stored = Dictionary(state.arrays.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    var restored: [[Float]] = []
    for (name, tensor) in weights {
      guard let array = stored[name] else {
        throw TrainingError.checkpointMismatch(
          file: file, object: "/state/stage/arrays", reason: "lacks the mask of \(name) \(tensor.shape)")
      }
      guard array.shape == tensor.shape, array.values.allSatisfy({ $0 == 0 || $0 == 1 }) else {
        throw TrainingError.checkpointMismatch(
          file: file, object: "/state/stage/arrays/\(name)",
          reason: "must hold 0s and 1s in the shape \(tensor.shape) of \(name), found shape \(array.shape)")
      }
      restored.append(array.values)
    }
    if stored.count != weights.count {
      let extra = Set(stored.keys).subtracting(weights.map(\.name)).sorted()
      throw TrainingError.checkpointMismatch(
        file: file, object: "/state/stage/arrays", reason: "holds masks of \(extra), which this stage does not prune")
    }
    masks = restored
  }

  /// The fraction of the pruned weights that are zero by mask.
  var sparsity: Double {
    let total = masks.reduce(0) { $0 + $1.count }
    let zeros = masks.reduce(0) { $0 + $1.lazy.filter { $0 == 0 }.count }
    return total > 0 ? Double(zeros) / Double(total) : 0
  }

  var figures: [(name: String, value: Double)] {
    let zeros = masks.reduce(0) { $0 + $1.lazy.filter { $0 == 0 }.count }
    guard !groups.isEmpty else { return [("sparsity", sparsity), ("pruned_weights", Double(zeros))] }
    let rows = groups.reduce(0) { $0 + $1.rows }
    let removed = groups.indices.reduce(0) { $0 + keptRows($1).filter { !$0 }.count }
    return [("sparsity", sparsity), ("removed_neurons", Double(removed)), ("neurons_kept", Double(rows - removed) / Double(rows))]
  }

  /// Unstructured: the masks beside the model (its zeros stay in place). Structured: none;
  /// the model file holds the smaller network.
  var modelFileGroups: [(name: String, arrays: [NamedArray])] {
    groups.isEmpty ? [(maskGroup, state.arrays)] : []
  }
}
