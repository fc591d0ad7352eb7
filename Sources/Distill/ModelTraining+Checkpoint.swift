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

  /// The Float master weights in f16-mixed; nil in f32.
  private var mixedPrecision: MixedPrecisionOptimizer? { optimizer as? MixedPrecisionOptimizer }

  /// Copies the optimizer state, extra parameters, generator states and step count into `state`;
  /// in f16-mixed also the Float master weights and the loss scaler's state.
  func capture(into state: inout TrainingState) {
    let shapes = Dictionary(
      optimizer.parameters.map { ($0.name, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a })
    state.optimizer = optimizer.state.keys.sorted().map { key in
      // Buffers in their parameter's shape, step counts as scalars.
      let values = optimizer.state[key]!
      let parameterShape = parameterName(ofStateKey: key, in: shapes).flatMap { shapes[$0] }
      var shape =
        parameterShape.map { values.count == $0.reduce(1, *) ? $0 : [values.count] } ?? [values.count]
      if key.hasSuffix(".step") && values.count == 1 { shape = [] }
      return NamedArray(name: key, shape: shape, values: values)
    }
    state.extraParameters = extraParameters.map {
      NamedArray(name: $0.name, shape: $0.tensor.shape, values: $0.tensor.storage)
    }
    state.augmenterState = augmenter?.generator.state
    state.dropoutStates = dropoutLayers(of: model).map { path, layer in
      let s = layer.generator.state
      return (path, [s.0, s.1, s.2, s.3])
    }
    state.globalStep = globalStep
    if let mixed = mixedPrecision {
      let masters = mixed.masterWeights
      state.masterWeights = mixed.parameters.compactMap { name, tensor in
        masters[name].map { NamedArray(name: name, shape: tensor.shape, values: $0) }
      }
    } else {
      state.masterWeights = []
    }
    if let scaler { state.lossScale = scaler.state }
    let methodState = distillation?.state ?? MethodState()
    state.methodArrays = methodState.arrays
    state.methodWords = methodState.words.keys.sorted().map { ($0, methodState.words[$0]!) }
    let stageState = stage?.stage.state ?? MethodState()
    state.stageArrays = stageState.arrays
    state.stageWords = stageState.words.keys.sorted().map { ($0, stageState.words[$0]!) }
  }

  /// Restores the model's weights (group `role` of `file`), the optimizer state, the extra
  /// parameters, the generators and the step count from a checkpoint. Everything is checked
  /// against this training's model and optimizer before anything changes; a mismatch throws
  /// `TrainingError.checkpointMismatch` (or the `CheckpointError` of the weights) naming the
  /// object.
  func restore(from state: TrainingState, file: String) throws {
    func mismatch(_ object: String, _ reason: String) -> TrainingError {
      .checkpointMismatch(file: file, object: "/state/" + object, reason: reason)
    }
    guard state.optimizerName == optimizerName else {
      throw mismatch(
        "optimizer", "holds \(state.optimizerName) state, but the recipe trains with \(optimizerName)")
    }
    let parameters = Dictionary(
      optimizer.parameters.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    let shapes = parameters.mapValues(\.shape)
    var optimizerState: [String: [Float]] = [:]
    for entry in state.optimizer {
      guard let name = parameterName(ofStateKey: entry.name, in: shapes) else {
        throw mismatch("optimizer/\(entry.name)", "is the state of no parameter of the \(role.rawValue)")
      }
      let count = parameters[name]!.count
      guard entry.values.count == count || (entry.name.hasSuffix(".step") && entry.values.count == 1) else {
        throw mismatch(
          "optimizer/\(entry.name)",
          "has \(entry.values.count) values, expected \(count) (parameter \(name) \(shapes[name]!))")
      }
      optimizerState[entry.name] = entry.values
    }
    let extras = Dictionary(state.extraParameters.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    for (name, tensor) in extraParameters {
      guard let stored = extras[name] else {
        throw mismatch("extra_parameters", "lacks \(name) \(tensor.shape)")
      }
      guard stored.shape == tensor.shape else {
        throw mismatch("extra_parameters/\(name)", "has shape \(stored.shape), expected \(tensor.shape)")
      }
    }
    let dropouts = dropoutLayers(of: model)
    guard dropouts.map(\.path) == state.dropoutStates.map(\.layer) else {
      throw mismatch(
        "rng/dropout",
        "holds generators for dropout layers \(state.dropoutStates.map(\.layer)), "
          + "but the \(role.rawValue) has dropout layers \(dropouts.map(\.path))")
    }
    for master in state.masterWeights {
      guard let shape = shapes[master.name] else {
        throw mismatch("master/\(master.name)", "is the master weight of no parameter of the \(role.rawValue)")
      }
      guard master.values.count == shape.reduce(1, *) else {
        throw mismatch(
          "master/\(master.name)", "has \(master.values.count) values, expected \(shape.reduce(1, *)) (\(shape))")
      }
    }
    guard state.lossScale.scale > 0, state.lossScale.scale.isFinite else {
      throw mismatch("loss_scale", "has scale \(state.lossScale.scale); it must be positive and finite")
    }
    if (augmenter == nil) != (state.augmenterState == nil) {
      throw mismatch(
        "rng/augmenter", augmenter == nil ? "is present, but the recipe has no augmentation" : "is missing")
    }
    var methodState = MethodState(arrays: state.methodArrays)
    for (name, words) in state.methodWords { methodState.words[name] = words }
    if let distillation {
      try distillation.restore(methodState, file: file)
    } else if !state.methodArrays.isEmpty {
      throw mismatch("method", "holds distillation state, but the \(role.rawValue) trains without distillation")
    }
    var stageState = MethodState(arrays: state.stageArrays)
    for (name, words) in state.stageWords { stageState.words[name] = words }
    if let stage {
      try stage.stage.restore(stageState, file: file)
    } else if !state.stageArrays.isEmpty || !state.stageWords.isEmpty {
      throw mismatch("stage", "holds a compression stage's state, but the checkpoint's phase is \(phase)")
    }
    // Everything fits; the weights last, as loading them checks (and throws) before changing any.
    try Checkpoints.loadModel(group: role.rawValue, from: file, into: model)
    // The Float masters: the checkpoint's when it has them (an f16-mixed run), else the weights
    // just loaded (a checkpoint of an f32 run resumed in f16-mixed with --force). An f32 run
    // resumed from an f16-mixed checkpoint takes the masters as its weights.
    let masters = Dictionary(state.masterWeights.map { ($0.name, $0.values) }, uniquingKeysWith: { a, _ in a })
    if let mixed = mixedPrecision {
      var weights: [String: [Float]] = [:]
      for (name, tensor) in mixed.parameters { weights[name] = masters[name] ?? tensor.storage }
      mixed.masterWeights = weights
    } else {
      for (name, tensor) in optimizer.parameters {
        if let values = masters[name] { tensor.storage = values }
      }
    }
    scaler?.state = state.lossScale
    optimizer.state = optimizerState
    for (name, tensor) in extraParameters { tensor.storage = extras[name]!.values }
    for ((_, layer), (_, words)) in zip(dropouts, state.dropoutStates) {
      layer.generator = SeededGenerator(state: (words[0], words[1], words[2], words[3]))
    }
    if let seed = state.augmenterState { augmenter?.generator = SplitMixGenerator(seed: seed) }
    globalStep = state.globalStep
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
