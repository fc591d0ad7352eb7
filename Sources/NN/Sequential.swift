import Autodiff

/// Layers applied one after another, y = fₙ(…f₁(f₀(x))) (`torch.nn.Sequential`).
///
/// Child `i` is named `"i"`, so keys read `0.weight`, `2.bias`, `1.running_mean`, exactly as
/// in the `state_dict()` of the equivalent `torch.nn.Sequential`; parameter-free layers
/// (activations, pools, dropout) take an index too.
///
/// Shape: whatever the first layer takes → whatever the last layer gives.
public final class Sequential: Layer {
  /// The layers, in application order.
  public let layers: [any Layer]

  public init(_ layers: [any Layer]) { self.layers = layers }
  public convenience init(_ layers: any Layer...) { self.init(layers) }

  public var isTraining = true {
    didSet { for layer in layers { layer.isTraining = isTraining } }
  }

  /// Activation recomputation while recording: the layers are cut into this many segments and
  /// only the segments' inputs are kept for backward (see `Sequential+Recompute.swift`).
  /// `nil` (the default) keeps every activation. Changes memory use and time, not results.
  public var recomputeSegments: Int? {
    didSet { precondition(recomputeSegments.map { $0 >= 1 } ?? true, "recomputeSegments must be ≥ 1") }
  }

  public var children: [(name: String, layer: any Layer)] {
    layers.enumerated().map { (String($0.offset), $0.element) }
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    if let segments = recomputeSegments, GradMode.isRecording {
      return self(x, segments: segments)
    }
    return layers.reduce(x) { $1($0) }
  }
}
