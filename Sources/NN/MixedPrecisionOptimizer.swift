import Autodiff

/// The optimizer side of mixed-precision training (Micikevicius et al., 2018): the model's
/// parameters hold binary16 copies, used by the forward and backward passes, while this wrapper
/// keeps a Float master copy of each and lets `base` update the masters in Float with Float
/// gradients and Float state; after each step every updated parameter gets the master rounded
/// to binary16 again (nearest, ties to even).
///
///     p₁₆ = round₁₆(p₃₂),  p₃₂ ← base's update of p₃₂ with ∇p (Float)
///
/// Creating the wrapper takes each parameter's current values as its master and stores the
/// parameter in half precision. Load weights before wrapping, or through `masterWeights`.
/// `state` is the base optimizer's (Float), keyed as there.
public final class MixedPrecisionOptimizer: Optimizer {
  /// The optimizer that updates the Float masters.
  public let base: any Optimizer
  private var masters: [String: [Float]] = [:]

  /// Wraps `base`, taking its parameters' values as Float masters and storing the parameters
  /// as binary16.
  public init(wrapping base: any Optimizer) {
    self.base = base
    for (name, p) in base.parameters {
      masters[name] = p.storage
      p.storeAsHalf()
    }
  }

  public var learningRate: Double {
    get { base.learningRate }
    set { base.learningRate = newValue }
  }
  public var parameters: [(name: String, tensor: Tensor)] { base.parameters }
  public var state: [String: [Float]] {
    get { base.state }
    set { base.state = newValue }
  }

  /// The Float master weights by parameter name (for checkpoints). Setting them also rounds
  /// each into its parameter's binary16 copy; every name must be a parameter's, with its count.
  public var masterWeights: [String: [Float]] {
    get { masters }
    set {
      for (name, p) in parameters {
        guard let values = newValue[name] else { continue }
        precondition(
          values.count == p.count, "master weights of \(name): \(values.count) values for \(p.shape)")
        masters[name] = values
        p.storage = values
        p.storeAsHalf()
      }
    }
  }

  /// Moves each master into its parameter (no copy), lets `base` step in Float, and moves the
  /// masters back out, leaving each parameter with its rounded binary16 copy.
  public func step() { step(multiplyingGradientsBy: 1) }

  public func step(multiplyingGradientsBy factor: Float) {
    for (name, p) in parameters where p.grad != nil {
      if let master = masters.removeValue(forKey: name) { p.storage = master }
    }
    base.step(multiplyingGradientsBy: factor)
    for (name, p) in parameters where !p.isHalf {
      masters[name] = p.storage
      p.storeAsHalf()
    }
  }
}
