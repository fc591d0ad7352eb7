import Autodiff

/// Adam with decoupled weight decay (Loshchilov and Hutter, 2019), with exactly
/// `torch.optim.AdamW`'s update: first p = p·(1 − η·λ), then the `Adam` update of p with the
/// plain gradient (no decay term in g). Same state entries as `Adam`.
public final class AdamW: Optimizer {
  public var learningRate: Double
  public var beta1: Double
  public var beta2: Double
  public var epsilon: Double
  public var weightDecay: Double
  public let parameters: [(name: String, tensor: Tensor)]
  public var state: [String: [Float]] = [:]

  /// Creates the optimizer with PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
  /// weight decay 0.01.
  public init(
    parameters: [(name: String, tensor: Tensor)], learningRate: Double = 1e-3, beta1: Double = 0.9,
    beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01
  ) {
    checkUniqueNames(parameters)
    self.parameters = parameters
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.weightDecay = weightDecay
  }

  public func step() { step(multiplyingGradientsBy: 1) }

  public func step(multiplyingGradientsBy factor: Float) {
    let shrink = Float(1 - learningRate * weightDecay)
    for (name, p) in parameters where p.grad != nil {
      if weightDecay != 0 {
        p.storage.withUnsafeMutableBufferPointer { x in
          for i in 0..<x.count { x[i] *= shrink }
        }
      }
      adamUpdate(
        name: name, parameter: p, state: &state, learningRate: learningRate, beta1: beta1,
        beta2: beta2, epsilon: epsilon, l2WeightDecay: 0, gradientFactor: factor)
    }
  }
}
