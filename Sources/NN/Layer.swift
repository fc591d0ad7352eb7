import Autodiff

/// A building block of a network: a function of one tensor with named trainable parameters,
/// named buffers (state that is saved but not trained, like batch norm's running statistics)
/// and named child layers (`torch.nn.Module`).
///
/// A conforming class states only what is its own: `localParameters`, `localBuffers` and
/// `children`. Everything recursive (`parameters`, `buffers`, `stateDict`, `load(stateDict:)`,
/// `parameterCount`) is derived from those three here, so a checkpoint key is always
/// `<child name>.<child name>.<tensor name>`, exactly as PyTorch builds it.
///
/// Layers are classes: they own their parameter tensors, which optimizers update in place.
public protocol Layer: AnyObject {
  /// Applies the layer.
  func callAsFunction(_ x: Tensor) -> Tensor

  /// This layer's own trainable tensors, children's excluded, in PyTorch's registration order
  /// (`weight` before `bias`).
  var localParameters: [(name: String, tensor: Tensor)] { get }

  /// This layer's own buffers, children's excluded (e.g. `running_mean`, `running_var`).
  var localBuffers: [(name: String, tensor: Tensor)] { get }

  /// The direct sub-layers with their names (`"0"`, `"1"`, … in a `Sequential`), in order.
  var children: [(name: String, layer: any Layer)] { get }

  /// Whether the layer is in training mode (`module.training`): dropout drops and batch norm
  /// uses and updates batch statistics. Setting it on a container sets it on every descendant,
  /// like `module.train(mode)` / `module.eval()`. New layers start in training mode.
  var isTraining: Bool { get set }
}

extension Layer {
  public var localParameters: [(name: String, tensor: Tensor)] { [] }
  public var localBuffers: [(name: String, tensor: Tensor)] { [] }
  public var children: [(name: String, layer: any Layer)] { [] }

  /// Every trainable tensor with its dotted name, in `named_parameters()` order: a layer's own
  /// parameters first, then each child's, depth first.
  public var parameters: [(name: String, tensor: Tensor)] {
    var result = localParameters
    for (childName, child) in children {
      result += child.parameters.map { ("\(childName).\($0.name)", $0.tensor) }
    }
    return result
  }

  /// Every buffer with its dotted name, in `named_buffers()` order.
  public var buffers: [(name: String, tensor: Tensor)] {
    var result = localBuffers
    for (childName, child) in children {
      result += child.buffers.map { ("\(childName).\($0.name)", $0.tensor) }
    }
    return result
  }

  /// Every saved tensor with its dotted name in PyTorch's `state_dict()` order: per layer its
  /// parameters, then its buffers, then each child's state, depth first (`0.weight`, `0.bias`,
  /// `1.weight`, `1.bias`, `1.running_mean`, `1.running_var`, …). PyTorch's
  /// `num_batches_tracked` is not modelled. The tensors are the layer's own, not copies.
  public var stateDict: [(name: String, tensor: Tensor)] {
    var result = localParameters + localBuffers
    for (childName, child) in children {
      result += child.stateDict.map { ("\(childName).\($0.name)", $0.tensor) }
    }
    return result
  }

  /// The number of trainable scalars (`sum(p.numel() for p in model.parameters())`).
  public var parameterCount: Int { parameters.reduce(0) { $0 + $1.tensor.count } }

  /// Puts the layer and its descendants in training mode (`module.train()`).
  public func train() { isTraining = true }

  /// Puts the layer and its descendants in evaluation mode (`module.eval()`).
  public func eval() { isTraining = false }

  /// Copies the values of `stateDict` into this layer's tensors, matched by name
  /// (`module.load_state_dict(state_dict, strict=True)`). Every key must be present, no key
  /// may be extra and every shape must match; otherwise nothing is changed and the first
  /// problem, in this layer's key order, is thrown (missing and mismatched keys before
  /// unexpected ones). Gradients are left as they are.
  public func load(stateDict: [String: Tensor]) throws(NNError) {
    let own = self.stateDict
    for (name, tensor) in own {
      guard let given = stateDict[name] else {
        throw .missingKey(name, expectedShape: tensor.shape)
      }
      guard given.shape == tensor.shape else {
        throw .shapeMismatch(name, expected: tensor.shape, found: given.shape)
      }
    }
    let known = Set(own.map(\.name))
    if let extra = stateDict.keys.sorted().first(where: { !known.contains($0) }) {
      throw .unexpectedKey(extra, shape: stateDict[extra]!.shape)
    }
    for (name, tensor) in own { tensor.storage = stateDict[name]!.storage }
  }

  /// `load(stateDict:)` from an ordered list of named tensors, as `stateDict` returns it.
  /// A name given twice is an error.
  public func load(stateDict: [(name: String, tensor: Tensor)]) throws(NNError) {
    var byName: [String: Tensor] = [:]
    for (name, tensor) in stateDict {
      guard byName.updateValue(tensor, forKey: name) == nil else { throw .duplicateKey(name) }
    }
    try load(stateDict: byName)
  }
}
