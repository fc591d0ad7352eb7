import Autodiff

/// Inverted dropout (`torch.nn.Dropout(p)`): in training mode each element is zeroed with
/// probability p and the survivors are scaled by 1/(1 − p), so the expected output equals the
/// input; in evaluation mode it is the identity.
///
/// The layer owns its random generator, seeded at creation, so a run is reproducible and the
/// generator's `state` can be saved with a checkpoint and restored to resume the same masks.
///
/// Shape: any → the same.
public final class Dropout: Layer {
  /// The probability p of zeroing an element, in [0, 1).
  public let probability: Float
  /// The source of the masks; advances on every training-mode call.
  public var generator: SeededGenerator
  public var isTraining = true

  public init(probability: Float = 0.5, seed: UInt64) {
    precondition(
      probability >= 0 && probability < 1, "dropout probability must be in [0, 1), got \(probability)")
    self.probability = probability
    generator = SeededGenerator(seed: seed)
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    guard isTraining && probability > 0 else { return x }
    return x.dropout(probability: probability, generator: &generator)
  }
}

extension Dropout: ForwardStateful {
  /// Saves the generator, so that a replay draws the same mask.
  public func saveForwardState() -> () -> Void {
    let saved = generator
    return { [self] in generator = saved }
  }
}
