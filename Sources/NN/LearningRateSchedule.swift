import Foundation

/// A learning rate as a function of the epoch (0-based) and the optimizer's base rate, in
/// closed form: what PyTorch's `torch.optim.lr_scheduler` classes give after `epoch` calls of
/// `scheduler.step()`. Set `optimizer.learningRate = schedule.learningRate(epoch: e, base: lr)`
/// at the start of epoch e. In `Double`, like PyTorch's Python floats.
public protocol LearningRateSchedule: Sendable {
  /// The learning rate for `epoch`, given the base learning rate.
  func learningRate(epoch: Int, base: Double) -> Double
}

/// lr = base · γ^⌊epoch / stepSize⌋ (`torch.optim.lr_scheduler.StepLR`).
public struct StepSchedule: LearningRateSchedule {
  public var stepSize: Int
  public var gamma: Double

  public init(stepSize: Int, gamma: Double = 0.1) {
    precondition(stepSize > 0, "step size must be positive, got \(stepSize)")
    self.stepSize = stepSize
    self.gamma = gamma
  }

  public func learningRate(epoch: Int, base: Double) -> Double {
    base * pow(gamma, Double(epoch / stepSize))
  }
}

/// Cosine annealing from the base rate down to `minimum` over `totalEpochs`
/// (`torch.optim.lr_scheduler.CosineAnnealingLR(T_max=totalEpochs, eta_min=minimum)`, closed
/// form): lr = η_min + (base − η_min)·(1 + cos(π·epoch/T_max))/2.
public struct CosineSchedule: LearningRateSchedule {
  public var totalEpochs: Int
  public var minimum: Double

  public init(totalEpochs: Int, minimum: Double = 0) {
    precondition(totalEpochs > 0, "total epochs must be positive, got \(totalEpochs)")
    self.totalEpochs = totalEpochs
    self.minimum = minimum
  }

  public func learningRate(epoch: Int, base: Double) -> Double {
    minimum + (base - minimum) * (1 + cos(Double.pi * Double(epoch) / Double(totalEpochs))) / 2
  }
}

/// A linear ramp of the factor applied to the base rate, held at `endFactor` after
/// `totalEpochs` (`torch.optim.lr_scheduler.LinearLR`): lr = base · (s + (e − s)·min(epoch, T)/T).
/// With `startFactor` < 1 and `endFactor` = 1 it is the usual warm-up.
public struct LinearWarmup: LearningRateSchedule {
  public var startFactor: Double
  public var endFactor: Double
  public var totalEpochs: Int

  /// Creates the schedule with `LinearLR`'s defaults (1/3 → 1 over 5 epochs).
  public init(startFactor: Double = 1.0 / 3, endFactor: Double = 1, totalEpochs: Int = 5) {
    precondition(totalEpochs > 0, "total epochs must be positive, got \(totalEpochs)")
    self.startFactor = startFactor
    self.endFactor = endFactor
    self.totalEpochs = totalEpochs
  }

  public func learningRate(epoch: Int, base: Double) -> Double {
    let progress = Double(min(epoch, totalEpochs)) / Double(totalEpochs)
    return base * (startFactor + (endFactor - startFactor) * progress)
  }
}

/// One schedule until `milestone`, another from there on, restarted at its epoch 0
/// (`torch.optim.lr_scheduler.SequentialLR([first, then], milestones=[milestone])`):
/// lr = first(epoch) for epoch < milestone, else then(epoch − milestone). Typically a
/// `LinearWarmup` over `milestone` epochs followed by a `CosineSchedule`.
public struct ChainedSchedule: LearningRateSchedule {
  public var first: any LearningRateSchedule
  public var milestone: Int
  public var then: any LearningRateSchedule

  public init(_ first: any LearningRateSchedule, until milestone: Int, then: any LearningRateSchedule) {
    precondition(milestone >= 0, "milestone must not be negative, got \(milestone)")
    self.first = first
    self.milestone = milestone
    self.then = then
  }

  public func learningRate(epoch: Int, base: Double) -> Double {
    epoch < milestone
      ? first.learningRate(epoch: epoch, base: base)
      : then.learningRate(epoch: epoch - milestone, base: base)
  }
}
