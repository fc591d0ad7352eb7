import Autodiff

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2
/// weight decay, with exactly `torch.optim.SGD`'s update for each parameter p:
///
///   g = ∇p + λ·p
///   b = g on the first step, else μ·b + (1 − τ)·g      (only when μ ≠ 0)
///   g = g + μ·b if nesterov, else b                     (only when μ ≠ 0)
///   p = p − η·g
///
/// with learning rate η, momentum μ, dampening τ and weight decay λ. Hyper-parameters are
/// `Double`, like PyTorch's Python floats, and each coefficient is rounded to `Float` where
/// PyTorch rounds it (after computing 1 − τ in `Double`). State: the momentum buffer b,
/// `"<name>.momentum_buffer"`, created on a parameter's first step.
public final class SGD: Optimizer {
  public var learningRate: Double
  public var momentum: Double
  public var dampening: Double
  public var nesterov: Bool
  public var weightDecay: Double
  public let parameters: [(name: String, tensor: Tensor)]
  public var state: [String: [Float]] = [:]

  /// Creates the optimizer with PyTorch's defaults (no momentum, dampening or decay).
  public init(
    parameters: [(name: String, tensor: Tensor)], learningRate: Double, momentum: Double = 0,
    dampening: Double = 0, nesterov: Bool = false, weightDecay: Double = 0
  ) {
    precondition(
      !nesterov || (momentum > 0 && dampening == 0), "Nesterov momentum needs momentum > 0 and no dampening")
    checkUniqueNames(parameters)
    self.parameters = parameters
    self.learningRate = learningRate
    self.momentum = momentum
    self.dampening = dampening
    self.nesterov = nesterov
    self.weightDecay = weightDecay
  }

  public func step() {
    let lr = Float(learningRate)
    let mu = Float(momentum)
    let keep = Float(1 - dampening)
    let wd = Float(weightDecay)
    let nesterov = self.nesterov
    for (name, p) in parameters {
      guard let grad = p.grad else { continue }
      precondition(grad.shape == p.shape, "gradient of \(name) has shape \(grad.shape), not \(p.shape)")
      let key = name + ".momentum_buffer"
      let isFirst = state[key] == nil
      var buffer = mu != 0 ? (state.removeValue(forKey: key) ?? [Float](repeating: 0, count: p.count)) : []
      grad.storage.withUnsafeBufferPointer { g in
        buffer.withUnsafeMutableBufferPointer { b in
          p.storage.withUnsafeMutableBufferPointer { x in
            for i in 0..<x.count {
              var d = g[i]
              if wd != 0 { d += wd * x[i] }
              if mu != 0 {
                b[i] = isFirst ? d : mu * b[i] + keep * d
                d = nesterov ? d + mu * b[i] : b[i]
              }
              x[i] -= lr * d
            }
          }
        }
      }
      if mu != 0 { state[key] = buffer }
    }
  }
}
