import Autodiff
import Foundation

/// Adam (Kingma and Ba, 2015) with L2 weight decay added to the gradient, with exactly
/// `torch.optim.Adam`'s update (amsgrad off, not foreach) for each parameter p at its step t:
///
///   g = ∇p + λ·p
///   m = β₁·m + (1 − β₁)·g,   v = β₂·v + (1 − β₂)·g²
///   p = p − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
///
/// Hyper-parameters are `Double`, like PyTorch's Python floats: 1 − β, the bias corrections
/// and the step size are computed in `Double` and rounded to `Float` where PyTorch rounds them
/// (rounding β₂ = 0.999 first would make 1 − β₂ wrong by 1e-5). State: `"<name>.step"` (one
/// value, t, a float as in PyTorch), `"<name>.exp_avg"` (m) and `"<name>.exp_avg_sq"` (v).
public final class Adam: Optimizer {
  public var learningRate: Double
  public var beta1: Double
  public var beta2: Double
  public var epsilon: Double
  public var weightDecay: Double
  public let parameters: [(name: String, tensor: Tensor)]
  public var state: [String: [Float]] = [:]

  /// Creates the optimizer with PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
  /// no weight decay.
  public init(
    parameters: [(name: String, tensor: Tensor)], learningRate: Double = 1e-3, beta1: Double = 0.9,
    beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0
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
    for (name, p) in parameters where p.grad != nil {
      adamUpdate(
        name: name, parameter: p, state: &state, learningRate: learningRate, beta1: beta1,
        beta2: beta2, epsilon: epsilon, l2WeightDecay: weightDecay, gradientFactor: factor)
    }
  }
}

/// One Adam update of `parameter` in place, reading and advancing its entries in `state`.
/// Shared by `Adam` (L2 decay in the gradient) and `AdamW` (decay applied before; 0 here).
func adamUpdate(
  name: String, parameter p: Tensor, state: inout [String: [Float]], learningRate: Double,
  beta1: Double, beta2: Double, epsilon: Double, l2WeightDecay: Double, gradientFactor: Float = 1
) {
  guard let grad = p.grad else { return }
  precondition(grad.shape == p.shape, "gradient of \(name) has shape \(grad.shape), not \(p.shape)")
  let stepKey = name + ".step"
  let mKey = name + ".exp_avg"
  let vKey = name + ".exp_avg_sq"
  let t = (state[stepKey]?.first ?? 0) + 1
  var m = state.removeValue(forKey: mKey) ?? [Float](repeating: 0, count: p.count)
  var v = state.removeValue(forKey: vKey) ?? [Float](repeating: 0, count: p.count)
  let biasCorrection1 = 1 - pow(beta1, Double(t))
  let biasCorrection2 = 1 - pow(beta2, Double(t))
  let stepSize = Float(learningRate / biasCorrection1)
  let correction2Root = Float(biasCorrection2.squareRoot())
  let wd = Float(l2WeightDecay)
  let eps = Float(epsilon)
  let b2 = Float(beta2)
  let w1 = Float(1 - beta1)
  let w2 = Float(1 - beta2)
  grad.storage.withUnsafeBufferPointer { g in
    m.withUnsafeMutableBufferPointer { m in
      v.withUnsafeMutableBufferPointer { v in
        p.storage.withUnsafeMutableBufferPointer { x in
          // Elementwise: split across the BLAS threads for large parameters, same bits.
          ParallelLoop.run(x.count) { start, length in
            for i in start..<start + length {
              var d = g[i] * gradientFactor  // exact when the factor is 1
              if wd != 0 { d += wd * x[i] }
              m[i] += w1 * (d - m[i])  // torch's lerp(m, g, 1 − β₁) for a weight below ½
              v[i] = b2 * v[i] + w2 * d * d
              let denominator = v[i].squareRoot() / correction2Root + eps
              x[i] -= stepSize * (m[i] / denominator)
            }
          }
        }
      }
    }
  }
  state[stepKey] = [t]
  state[mKey] = m
  state[vKey] = v
}
