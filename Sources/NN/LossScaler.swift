import Autodiff
import Foundation

/// The state of a `LossScaler`, small and `Codable` so a checkpoint can save and restore it
/// (PyTorch's `GradScaler.state_dict()`: `scale`, `_growth_tracker`; plus the skipped count).
public struct LossScalerState: Codable, Equatable, Sendable {
  /// The factor S the loss is multiplied by before `backward()`.
  public var scale: Float
  /// Consecutive optimizer steps with finite gradients since the scale last changed.
  public var growthTracker: Int
  /// Optimizer steps skipped because a gradient held inf or NaN, since training began.
  public var skippedSteps: Int

  public init(scale: Float, growthTracker: Int = 0, skippedSteps: Int = 0) {
    self.scale = scale
    self.growthTracker = growthTracker
    self.skippedSteps = skippedSteps
  }

  /// GradScaler's start: 2¹⁶, no growth yet, nothing skipped.
  public static let initial = LossScalerState(scale: 65536)
}

/// Dynamic loss scaling for mixed-precision training (Micikevicius et al., 2018), with the
/// semantics and defaults of `torch.cuda.amp.GradScaler(init_scale=2**16, growth_factor=2,
/// backoff_factor=0.5, growth_interval=2000)`:
///
/// - `scaled(loss)` = loss · S, so small gradients survive half-precision activations;
/// - `step(optimizer)` divides every gradient by S in place (`unscale_`), in Float, once per
///   optimizer step (after all accumulated micro-batches); if any gradient element is inf or
///   NaN, the step is skipped (parameters and optimizer state untouched) and S = S·0.5;
///   otherwise the optimizer steps, and after `growthInterval` consecutive such steps
///   S = S·2 (only if S·2 is finite), as `torch._amp_update_scale_` does.
public final class LossScaler {
  /// Scale, growth tracker and skipped steps; assign to restore a checkpoint.
  public var state: LossScalerState
  /// The factor S grows by after `growthInterval` finite steps (2).
  public let growthFactor: Float
  /// The factor S shrinks by when a step is skipped (0.5).
  public let backoffFactor: Float
  /// Consecutive finite steps before S grows (2000).
  public let growthInterval: Int

  /// Creates a scaler with GradScaler's defaults.
  public init(
    initialScale: Float = LossScalerState.initial.scale, growthFactor: Float = 2, backoffFactor: Float = 0.5,
    growthInterval: Int = 2000
  ) {
    precondition(initialScale > 0 && initialScale.isFinite, "the initial loss scale must be positive")
    precondition(growthFactor > 1 && backoffFactor > 0 && backoffFactor < 1 && growthInterval >= 1)
    state = LossScalerState(scale: initialScale)
    self.growthFactor = growthFactor
    self.backoffFactor = backoffFactor
    self.growthInterval = growthInterval
  }

  /// The current scale S.
  public var scale: Float { state.scale }

  /// loss · S, recorded, for `backward()` (`scaler.scale(loss)`).
  public func scaled(_ loss: Tensor) -> Tensor { loss * state.scale }

  /// Multiplies every gradient of `parameters` by 1/S in place (the reciprocal taken in
  /// Double and rounded to Float, as PyTorch does) and returns whether any element, before
  /// unscaling, was inf or NaN (`scaler.unscale_(optimizer)`). Parameters without a gradient
  /// are skipped.
  public func unscaleGradients(of parameters: [(name: String, tensor: Tensor)]) -> Bool {
    let foundNonFinite = Self.holdsNonFinite(parameters)
    multiplyGradients(of: parameters, by: inverseScale)
    return foundNonFinite
  }

  /// 1/S, the reciprocal taken in Double and rounded to Float, as PyTorch does.
  private var inverseScale: Float { Float(1 / Double(state.scale)) }

  /// Whether any gradient of `parameters` holds inf or NaN, read only, split across the BLAS
  /// threads for large gradients. The exponent field is all ones exactly for ±inf and NaN; an
  /// integer maximum over it vectorises, where a Float test per element would not.
  static func holdsNonFinite(_ parameters: [(name: String, tensor: Tensor)]) -> Bool {
    var largestExponent: UInt32 = 0
    for (_, p) in parameters {
      guard let grad = p.grad else { continue }
      grad.storage.withUnsafeBufferPointer { all in
        let pieces = LargestExponents()
        ParallelLoop.run(all.count) { start, length in
          var exponent: UInt32 = 0
          for i in start..<start + length { exponent = max(exponent, all[i].bitPattern & 0x7F80_0000) }
          pieces.record(exponent)
        }
        largestExponent = max(largestExponent, pieces.value)
      }
    }
    return largestExponent == 0x7F80_0000
  }

  /// Updates S after a step: backs off and counts a skip when `foundNonFinite`, else counts a
  /// finite step and grows S after `growthInterval` of them (`scaler.update()`).
  public func update(foundNonFinite: Bool) {
    if foundNonFinite {
      state.scale *= backoffFactor
      state.growthTracker = 0
      state.skippedSteps += 1
      return
    }
    state.growthTracker += 1
    if state.growthTracker == growthInterval {
      let grown = state.scale * growthFactor
      if grown.isFinite { state.scale = grown }
      state.growthTracker = 0
    }
  }

  /// Takes `optimizer`'s step with its gradients multiplied by 1/S, unless one holds inf or NaN,
  /// and updates S (`scaler.step(optimizer); scaler.update()`). Returns whether the optimizer
  /// stepped. The gradients themselves are left as they are (scaled).
  @discardableResult
  public func step(_ optimizer: any Optimizer) -> Bool {
    // One read of the gradients for inf/NaN; the unscaling is folded into the optimizer's
    // update loop (the same products as `unscaleGradients` then `step()`: the same weights).
    let foundNonFinite = Self.holdsNonFinite(optimizer.parameters)
    if !foundNonFinite { optimizer.step(multiplyingGradientsBy: inverseScale) }
    update(foundNonFinite: foundNonFinite)
    return !foundNonFinite
  }
}

/// The largest exponent field seen by the pieces of one `ParallelLoop`, merged under a lock.
private final class LargestExponents: @unchecked Sendable {
  private let lock = NSLock()
  private(set) var value: UInt32 = 0

  func record(_ exponent: UInt32) {
    lock.lock()
    value = max(value, exponent)
    lock.unlock()
  }
}
