import Autodiff

/// Updates parameters in place from their gradients (`torch.optim.Optimizer`).
///
/// An optimizer is built from named parameters (`model.parameters`); the names key its
/// per-parameter `state`, e.g. `"0.weight.momentum_buffer"` or `"3.bias.exp_avg"`, after
/// PyTorch's state entry names, so a checkpoint can save and restore it as named arrays.
/// Parameters whose `grad` is `nil` are skipped and get no state, as in PyTorch.
public protocol Optimizer: AnyObject {
  /// The learning rate of the next `step()`; LR schedules set it between epochs.
  var learningRate: Double { get set }
  /// The parameters updated, with the names that key `state`.
  var parameters: [(name: String, tensor: Tensor)] { get }
  /// Per-parameter state as `"<parameter name>.<entry>"` → values (row-major, the
  /// parameter's shape, or one value for a step count).
  var state: [String: [Float]] { get set }
  /// Applies one update to every parameter that has a gradient.
  func step()
  /// One step as if every gradient had been multiplied by `factor` first (a loss scaler's
  /// 1/S), without writing the gradients: SGD, Adam and AdamW fold the factor into their
  /// update loop (the same Float products as multiplying first, so the same weights); the
  /// default multiplies the gradients in place, then calls `step()`.
  func step(multiplyingGradientsBy factor: Float)
}

extension Optimizer {
  public func step(multiplyingGradientsBy factor: Float) {
    if factor != 1 { multiplyGradients(of: parameters, by: factor) }
    step()
  }

  /// Forgets every parameter's gradient (`optimizer.zero_grad(set_to_none=True)`).
  public func zeroGrad() {
    for (_, tensor) in parameters { tensor.zeroGrad() }
  }
}

/// Multiplies every gradient of `parameters` by `factor` in place (those without one are
/// skipped), split across the BLAS threads for large ones.
func multiplyGradients(of parameters: [(name: String, tensor: Tensor)], by factor: Float) {
  for (_, p) in parameters {
    guard let grad = p.grad else { continue }
    grad.storage.withUnsafeMutableBufferPointer { all in
      ParallelLoop.run(all.count) { start, length in
        for i in start..<start + length { all[i] *= factor }
      }
    }
  }
}

/// Checks that names are unique (they key optimizer state).
func checkUniqueNames(_ parameters: [(name: String, tensor: Tensor)]) {
  var seen = Set<String>()
  for (name, _) in parameters {
    precondition(seen.insert(name).inserted, "parameter name \"\(name)\" appears twice")
  }
}
