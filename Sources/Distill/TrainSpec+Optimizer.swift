import Datasets
import Autodiff
import NN
import DistillRecipes

// The optimizer and learning-rate schedule a `train:` section describes
// (`recipes/README.md` → train, optimizer, schedule).

extension OptimizerSpec {
  /// The optimizer over `parameters`, with the recipe's hyper-parameters.
  public func makeOptimizer(parameters: [(name: String, tensor: Tensor)]) -> any Optimizer {
    switch self {
    case .sgd(let s):
      return SGD(
        parameters: parameters, learningRate: s.lr, momentum: s.momentum, dampening: s.dampening,
        nesterov: s.nesterov, weightDecay: s.weightDecay)
    case .adam(let a):
      return Adam(
        parameters: parameters, learningRate: a.lr, beta1: a.betas[0], beta2: a.betas[1], epsilon: a.eps,
        weightDecay: a.weightDecay)
    case .adamw(let a):
      return AdamW(
        parameters: parameters, learningRate: a.lr, beta1: a.betas[0], beta2: a.betas[1], epsilon: a.eps,
        weightDecay: a.weightDecay)
    }
  }
}

extension TrainSpec {
  /// The learning rate per epoch: `warmup_epochs` of linear warm-up (PyTorch `LinearLR`, start
  /// factor 1/3) followed by the schedule over the remaining epochs (`SequentialLR`); without
  /// warm-up, the schedule alone.
  public var learningRateSchedule: any LearningRateSchedule {
    let main: any LearningRateSchedule
    let remaining = max(epochs - warmupEpochs, 1)
    switch schedule {
    case .constant: main = ConstantSchedule()
    case .cosine(let c): main = CosineSchedule(totalEpochs: remaining, minimum: c.minLR)
    case .step(let s): main = StepSchedule(stepSize: s.stepSize, gamma: s.gamma)
    }
    guard warmupEpochs > 0 else { return main }
    return ChainedSchedule(
      LinearWarmup(startFactor: 1.0 / 3, endFactor: 1, totalEpochs: warmupEpochs), until: warmupEpochs,
      then: main)
  }
}

/// lr = base in every epoch (`torch.optim.lr_scheduler.ConstantLR` with factor 1, or no scheduler).
public struct ConstantSchedule: LearningRateSchedule {
  public init() {}
  public func learningRate(epoch: Int, base: Double) -> Double { base }
}

extension AugmentSpec {
  /// The transforms, in the order they apply, for `Datasets.Augmenter`.
  public var augmentations: [Augmentation] {
    var list: [Augmentation] = []
    if jitter > 0 { list.append(.jitter(maxShift: jitter)) }
    if flip { list.append(.horizontalFlip) }
    if padCrop > 0 { list.append(.padAndCrop(padding: padCrop)) }
    return list
  }
}
