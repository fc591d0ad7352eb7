import Autodiff

/// Batch normalisation over the channel axis (axis 1) (Ioffe and Szegedy, 2015):
///
///   y = (x − μ) / √(σ² + ε) · γ + β
///
/// In training mode μ and σ² are the batch's mean and biased variance per channel, and the
/// running statistics move towards them: r = (1 − m)·r + m·batch statistic (the unbiased
/// variance for `running_var`, as PyTorch does). In evaluation mode the running statistics are
/// used instead. Shared by `BatchNorm1D` and `BatchNorm2D`, which differ only in the input
/// rank they accept.
///
/// Parameters: `weight` γ `[C]` = 1, `bias` β `[C]` = 0. Buffers: `running_mean` `[C]` = 0,
/// `running_var` `[C]` = 1. PyTorch's `num_batches_tracked` is not modelled.
public class BatchNorm: Layer {
  /// γ, `[C]`.
  public let weight: Tensor
  /// β, `[C]`.
  public let bias: Tensor
  /// `[C]`, updated in place in training mode.
  public let runningMean: Tensor
  /// `[C]`, updated in place in training mode.
  public let runningVariance: Tensor
  /// The weight m of the newest batch in the running statistics.
  public let momentum: Float
  /// ε, added to the variance.
  public let epsilon: Float
  public var isTraining = true
  private let acceptedRanks: Set<Int>

  init(features: Int, momentum: Float, epsilon: Float, acceptedRanks: Set<Int>) {
    weight = Tensor.ones([features], requiresGrad: true)
    bias = Tensor.zeros([features], requiresGrad: true)
    runningMean = Tensor.zeros([features])
    runningVariance = Tensor.ones([features])
    self.momentum = momentum
    self.epsilon = epsilon
    self.acceptedRanks = acceptedRanks
  }

  /// The number of channels C.
  public var features: Int { weight.count }

  public var localParameters: [(name: String, tensor: Tensor)] { [("weight", weight), ("bias", bias)] }
  public var localBuffers: [(name: String, tensor: Tensor)] {
    [("running_mean", runningMean), ("running_var", runningVariance)]
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    precondition(
      acceptedRanks.contains(x.rank) && x.shape[1] == features,
      "\(type(of: self))(\(features)) got input of shape \(x.shape)")
    return x.batchNorm(
      weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance,
      training: isTraining, momentum: momentum, epsilon: epsilon)
  }
}

extension BatchNorm: ForwardStateful {
  /// Saves the running statistics, so that a replay in training mode does not move them again.
  public func saveForwardState() -> () -> Void {
    let (mean, variance) = (runningMean.storage, runningVariance.storage)
    return { [self] in
      runningMean.storage = mean
      runningVariance.storage = variance
    }
  }
}

/// Batch normalisation of features (`torch.nn.BatchNorm1d(features, eps, momentum)`); see
/// `BatchNorm` for the formula, parameters and buffers.
///
/// Shape: `[N, C]` → the same.
public final class BatchNorm1D: BatchNorm {
  public init(_ features: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
    super.init(features: features, momentum: momentum, epsilon: epsilon, acceptedRanks: [2])
  }
}

/// Batch normalisation of image channels (`torch.nn.BatchNorm2d(features, eps, momentum)`),
/// statistics over the batch and both spatial axes; see `BatchNorm` for the formula,
/// parameters and buffers.
///
/// Shape: `[N, C, H, W]` → the same.
public final class BatchNorm2D: BatchNorm {
  public init(_ features: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
    super.init(features: features, momentum: momentum, epsilon: epsilon, acceptedRanks: [4])
  }
}
