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

  public func step() { step(multiplyingGradientsBy: 1) }

  public func step(multiplyingGradientsBy factor: Float) {
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
            // One loop per combination of the loop-invariant options, each free of branches,
            // so the compiler vectorises it (the options are constants inside `update`); the
            // update is elementwise, so it is split across the BLAS threads for large
            // parameters (the same operations on every element: the same bits at any count).
            let f = factor
            ParallelLoop.run(x.count) { start, length in
              let xs = UnsafeMutableBufferPointer(rebasing: x[start..<start + length])
              let gs = UnsafeBufferPointer(rebasing: g[start..<start + length])
              let bs = b.isEmpty ? b : UnsafeMutableBufferPointer(rebasing: b[start..<start + length])
              switch (wd != 0, mu != 0, isFirst, nesterov) {
              case (false, false, _, _): update(xs, gs, f, bs, lr, wd, mu, keep, decay: false, momentum: false)
              case (true, false, _, _): update(xs, gs, f, bs, lr, wd, mu, keep, decay: true, momentum: false)
              case (false, true, true, false): update(xs, gs, f, bs, lr, wd, mu, keep, decay: false, first: true)
              case (false, true, true, true): update(xs, gs, f, bs, lr, wd, mu, keep, decay: false, first: true, nesterov: true)
              case (false, true, false, false): update(xs, gs, f, bs, lr, wd, mu, keep, decay: false)
              case (false, true, false, true): update(xs, gs, f, bs, lr, wd, mu, keep, decay: false, nesterov: true)
              case (true, true, true, false): update(xs, gs, f, bs, lr, wd, mu, keep, decay: true, first: true)
              case (true, true, true, true): update(xs, gs, f, bs, lr, wd, mu, keep, decay: true, first: true, nesterov: true)
              case (true, true, false, false): update(xs, gs, f, bs, lr, wd, mu, keep, decay: true)
              case (true, true, false, true): update(xs, gs, f, bs, lr, wd, mu, keep, decay: true, nesterov: true)
              }
            }
          }
        }
      }
      if mu != 0 { state[key] = buffer }
    }
  }
}

/// One SGD update of every element, PyTorch's rule: d = g + wd·x; b = d on the first step,
/// else μ·b + (1 − dampening)·d; d = d + μ·b with Nesterov, else b; x −= lr·d. The Boolean
/// options are constants at each call site, so each specialisation is one straight loop.
@inline(__always)
private func update(
  _ x: UnsafeMutableBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>, _ factor: Float,
  _ b: UnsafeMutableBufferPointer<Float>, _ lr: Float, _ wd: Float, _ mu: Float, _ keep: Float,
  decay: Bool, momentum: Bool = true, first: Bool = false, nesterov: Bool = false
) {
  for i in 0..<x.count {
    var d = g[i] * factor  // exact when factor is 1
    if decay { d += wd * x[i] }
    if momentum {
      let v = first ? d : mu * b[i] + keep * d
      b[i] = v
      d = nesterov ? d + mu * v : v
    }
    x[i] -= lr * d
  }
}

