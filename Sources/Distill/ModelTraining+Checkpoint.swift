import Autodiff
import Checkpoints
import Datasets
import NN
import DistillRecipes

// What of a `ModelTraining` a checkpoint holds besides the model's weights: the optimizer's
// state, the tensors trained with the model, the random generators and the step count.

extension ModelTraining {
  /// The recipe name of the optimizer (`sgd`, `adam`, `adamw`); in f16-mixed, the one that
  /// updates the Float masters.
  var optimizerName: String {
    let updating = (optimizer as? MixedPrecisionOptimizer)?.base ?? optimizer
    return String(describing: type(of: updating)).lowercased()
  }

  /// The stateful parts of this training, each keeping its own group under `/state`.
  var checkpointComponents: [any TrainingComponent] {
    let mixed = optimizer as? MixedPrecisionOptimizer
    return [
      OptimizerComponent(optimizer: optimizer, role: role),
      ExtraParametersComponent(parameters: extraParameters),
      MasterWeightsComponent(mixed: mixed, optimizer: optimizer, role: role),
      LossScaleComponent(scaler: scaler),
      RandomStreamsComponent(training: self),
      PairComponent(
        group: "method", owner: distillation.map { run in (run.state, { try run.restore($0, file: $1) }) },
        absent: "holds distillation state, but the \(role.rawValue) trains without distillation"),
      PairComponent(
        group: "stage", owner: stage.map { run in (run.stage.state, { try run.stage.restore($0, file: $1) }) },
        absent: "holds a compression stage's state, but the checkpoint's phase is \(phase)"),
    ]
  }

  /// Copies every component's state and the step count into `state`.
  func capture(into state: inout TrainingState) {
    for component in checkpointComponents { state.components[component.group] = component.capture() }
    state.globalStep = globalStep
  }

  /// Restores the model's weights (group `role` of `file`) and every component's state from a
  /// checkpoint. Each component checks its group against this training before anything
  /// changes (a group no component claims is refused too); a mismatch throws
  /// `TrainingError.checkpointMismatch` (or the `CheckpointError` of the weights) naming the
  /// object. Then the weights load, and each component installs its state.
  func restore(from state: TrainingState, file: String) throws {
    guard state.optimizerName == optimizerName else {
      throw TrainingError.checkpointMismatch(
        file: file, object: "/state/optimizer",
        reason: "holds \(state.optimizerName) state, but the recipe trains with \(optimizerName)")
    }
    let components = checkpointComponents
    var installs: [() -> Void] = []
    for component in components {
      installs.append(try component.check(state.components[component.group], file: file))
    }
    let claimed = Set(components.map(\.group))
    if let stray = state.components.keys.sorted().first(where: { !claimed.contains($0) }) {
      throw TrainingError.checkpointMismatch(
        file: file, object: "/state/" + stray, reason: "is the state of no part of this \(role.rawValue)'s training")
    }
    // Everything fits; the weights last, as loading them checks (and throws) before changing any.
    try Checkpoints.loadModel(group: role.rawValue, from: file, into: model)
    for install in installs { install() }
    globalStep = state.globalStep
  }
}

/// A stateful part of a `ModelTraining` that keeps its own group under `/state` in checkpoints
/// (`ComponentState`): a new one is a type here and a line in `checkpointComponents`.
protocol TrainingComponent {
  /// Its group under `/state`.
  var group: String { get }
  /// Its state now; nil writes no group.
  func capture() -> ComponentState?
  /// Checks a checkpoint's group (nil when the checkpoint has none) against this training,
  /// changing nothing, and returns what installs it once every component and the weights
  /// have passed. Throws `TrainingError.checkpointMismatch` naming the object.
  func check(_ state: ComponentState?, file: String) throws -> () -> Void
}

extension TrainingComponent {
  func mismatch(_ file: String, _ entry: String?, _ reason: String) -> TrainingError {
    .checkpointMismatch(file: file, object: "/state/" + group + (entry.map { "/" + $0 } ?? ""), reason: reason)
  }
}

/// The optimizer's per-parameter state (`/state/optimizer`), keyed as `torch.optim`'s.
struct OptimizerComponent: TrainingComponent {
  let optimizer: any Optimizer
  let role: ModelRole
  var group: String { "optimizer" }

  func capture() -> ComponentState? {
    let shapes = Dictionary(optimizer.parameters.map { ($0.name, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a })
    let state = optimizer.state
    return ComponentState(
      arrays: state.keys.sorted().map { key in
        // Buffers in their parameter's shape, step counts as scalars.
        let values = state[key]!
        let parameterShape = parameterName(ofStateKey: key, in: shapes).flatMap { shapes[$0] }
        var shape = parameterShape.map { values.count == $0.reduce(1, *) ? $0 : [values.count] } ?? [values.count]
        if key.hasSuffix(".step") && values.count == 1 { shape = [] }
        return NamedArray(name: key, shape: shape, values: values)
      })
  }

  func check(_ state: ComponentState?, file: String) throws -> () -> Void {
    let parameters = Dictionary(optimizer.parameters.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    let shapes = parameters.mapValues(\.shape)
    var restored: [String: [Float]] = [:]
    for entry in state?.arrays ?? [] {
      guard let name = parameterName(ofStateKey: entry.name, in: shapes) else {
        throw mismatch(file, entry.name, "is the state of no parameter of the \(role.rawValue)")
      }
      let count = parameters[name]!.count
      guard entry.values.count == count || (entry.name.hasSuffix(".step") && entry.values.count == 1) else {
        throw mismatch(
          file, entry.name, "has \(entry.values.count) values, expected \(count) (parameter \(name) \(shapes[name]!))")
      }
      restored[entry.name] = entry.values
    }
    return { optimizer.state = restored }
  }
}

/// The distillation methods' modules trained with the model (`/state/extra_parameters`).
struct ExtraParametersComponent: TrainingComponent {
  let parameters: [(name: String, tensor: Tensor)]
  var group: String { "extra_parameters" }

  func capture() -> ComponentState? {
    ComponentState(arrays: parameters.map { NamedArray(name: $0.name, shape: $0.tensor.shape, values: $0.tensor.storage) })
  }

  func check(_ state: ComponentState?, file: String) throws -> () -> Void {
    let stored = Dictionary((state?.arrays ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    for (name, tensor) in parameters {
      guard let array = stored[name] else { throw mismatch(file, nil, "lacks \(name) \(tensor.shape)") }
      guard array.shape == tensor.shape else {
        throw mismatch(file, name, "has shape \(array.shape), expected \(tensor.shape)")
      }
    }
    return {
      for (name, tensor) in parameters { tensor.storage = stored[name]!.values }
    }
  }
}

/// The Float master weights of f16-mixed (`/state/master`; empty in f32). Installed after the
/// weights: the checkpoint's masters when it has them, else the weights just loaded (an f32
/// checkpoint resumed in f16-mixed with --force); an f32 run resumed from an f16-mixed
/// checkpoint takes the masters as its weights.
struct MasterWeightsComponent: TrainingComponent {
  let mixed: MixedPrecisionOptimizer?
  let optimizer: any Optimizer
  let role: ModelRole
  var group: String { "master" }

  func capture() -> ComponentState? {
    guard let mixed else { return ComponentState() }
    let masters = mixed.masterWeights
    return ComponentState(
      arrays: mixed.parameters.compactMap { name, tensor in
        masters[name].map { NamedArray(name: name, shape: tensor.shape, values: $0) }
      })
  }

  func check(_ state: ComponentState?, file: String) throws -> () -> Void {
    let shapes = Dictionary(optimizer.parameters.map { ($0.name, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a })
    for master in state?.arrays ?? [] {
      guard let shape = shapes[master.name] else {
        throw mismatch(file, master.name, "is the master weight of no parameter of the \(role.rawValue)")
      }
      guard master.values.count == shape.reduce(1, *) else {
        throw mismatch(file, master.name, "has \(master.values.count) values, expected \(shape.reduce(1, *)) (\(shape))")
      }
    }
    let masters = Dictionary((state?.arrays ?? []).map { ($0.name, $0.values) }, uniquingKeysWith: { a, _ in a })
    return {
      if let mixed {
        var weights: [String: [Float]] = [:]
        for (name, tensor) in mixed.parameters { weights[name] = masters[name] ?? tensor.storage }
        mixed.masterWeights = weights
      } else {
        for (name, tensor) in optimizer.parameters {
          if let values = masters[name] { tensor.storage = values }
        }
      }
    }
  }
}

/// The dynamic loss scaler (`/state/loss_scale`: attributes `scale`, `growth_tracker`,
/// `skipped_steps`); without a scaler (f32, bf16-mixed) the initial state is written and
/// nothing read.
struct LossScaleComponent: TrainingComponent {
  let scaler: LossScaler?
  var group: String { "loss_scale" }

  func capture() -> ComponentState? { (scaler?.state ?? .initial).component }

  func check(_ state: ComponentState?, file: String) throws -> () -> Void {
    let restored = LossScalerState(component: state)
    guard restored.scale > 0, restored.scale.isFinite else {
      throw mismatch(file, nil, "has scale \(restored.scale); it must be positive and finite")
    }
    return { scaler?.state = restored }
  }
}

/// The random streams (`/state/rng`): the augmenter's SplitMix64 state (`augmenter`, one word)
/// and each dropout layer's xoshiro256** state (`dropout/<path>`, four words).
struct RandomStreamsComponent: TrainingComponent {
  let training: ModelTraining
  var group: String { "rng" }

  func capture() -> ComponentState? {
    var words: [String: [UInt64]] = [:]
    for (path, layer) in dropoutLayers(of: training.model) {
      let s = layer.generator.state
      words[path] = [s.0, s.1, s.2, s.3]
    }
    return ComponentState(
      words: training.augmenter.map { ["augmenter": [$0.generator.state]] } ?? [:],
      groups: ["dropout": ComponentState(words: words)])
  }

  func check(_ state: ComponentState?, file: String) throws -> () -> Void {
    let augmenter = state?.words["augmenter"]
    if (training.augmenter == nil) != (augmenter == nil) {
      throw mismatch(
        file, "augmenter", training.augmenter == nil ? "is present, but the recipe has no augmentation" : "is missing")
    }
    if let augmenter, augmenter.count != 1 { throw mismatch(file, "augmenter", "has \(augmenter.count) words, expected 1") }
    let dropouts = dropoutLayers(of: training.model)
    let stored = state?.groups["dropout"]?.words ?? [:]
    guard Set(dropouts.map(\.path)) == Set(stored.keys) else {
      throw mismatch(
        file, "dropout",
        "holds generators for dropout layers \(stored.keys.sorted()), but the \(training.role.rawValue) has dropout "
          + "layers \(dropouts.map(\.path))")
    }
    for (path, words) in stored where words.count != 4 {
      throw mismatch(file, "dropout/\(path)", "has \(words.count) words, expected 4 (a xoshiro256** state)")
    }
    return {
      for (path, layer) in dropouts {
        let w = stored[path]!
        layer.generator = SeededGenerator(state: (w[0], w[1], w[2], w[3]))
      }
      if let seed = augmenter?.first { training.augmenter?.generator = SplitMixGenerator(seed: seed) }
    }
  }
}

/// A component whose state is a `MethodState` (`arrays` and `words` subgroups): the
/// distillation methods (`/state/method`) and the compression stage (`/state/stage`), each of
/// which checks and takes its state itself. Absent when the training has none; a checkpoint
/// holding one for a training without it is refused with `absent`.
struct PairComponent: TrainingComponent {
  let group: String
  let owner: (state: MethodState, restore: (MethodState, String) throws -> Void)?
  let absent: String

  func capture() -> ComponentState? {
    guard let state = owner?.state, !(state.arrays.isEmpty && state.words.isEmpty) else { return nil }
    return ComponentState(
      groups: ["arrays": ComponentState(arrays: state.arrays), "words": ComponentState(words: state.words)])
  }

  func check(_ state: ComponentState?, file: String) throws -> () -> Void {
    var stored = MethodState(arrays: state?.groups["arrays"]?.arrays ?? [])
    stored.words = state?.groups["words"]?.words ?? [:]
    guard let owner else {
      if !(stored.arrays.isEmpty && stored.words.isEmpty) { throw mismatch(file, nil, absent) }
      return {}
    }
    // The methods and stages check their state and take it at once (before the weights load).
    try owner.restore(stored, file)
    return {}
  }
}

/// The parameter an optimizer state key belongs to: the longest parameter name `p` with
/// `key == p + "." + entry` (`0.weight.momentum_buffer` → `0.weight`).
private func parameterName(ofStateKey key: String, in shapes: [String: [Int]]) -> String? {
  var end = key.endIndex
  while let dot = key[..<end].lastIndex(of: ".") {
    let candidate = String(key[..<dot])
    if shapes[candidate] != nil { return candidate }
    end = dot
  }
  return nil
}

/// Every dropout layer of `layer` with its path of child names (`"1"`, `"2.body.1"`), depth first.
func dropoutLayers(of layer: any Layer, path: String = "") -> [(path: String, layer: Dropout)] {
  var found: [(path: String, layer: Dropout)] = []
  for (name, child) in layer.children {
    let childPath = path.isEmpty ? name : "\(path).\(name)"
    if let dropout = child as? Dropout { found.append((childPath, dropout)) }
    found += dropoutLayers(of: child, path: childPath)
  }
  return found
}
