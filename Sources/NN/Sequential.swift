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
    return applyInOrder(layers[...], to: x)
  }
}

/// Applies `layers` one after another to `x`, running each `Conv2D` followed by a `ReLU` (and
/// a `MaxPool2D`) as one oneDNN chain (`Tensor.convolutionBlock`, while
/// `Convolution.fusesBlocks`), which keeps the convolution's output in oneDNN's blocked layout;
/// where the chain cannot run, the layers run one by one. Same results within rounding.
func applyInOrder(_ layers: ArraySlice<any Layer>, to x: Tensor) -> Tensor {
  var y = x
  var i = layers.startIndex
  while i < layers.endIndex {
    if Convolution.fusesBlocks, let conv = layers[i] as? Conv2D, i + 1 < layers.endIndex, layers[i + 1] is ReLU {
      let pool = i + 2 < layers.endIndex ? layers[i + 2] as? MaxPool2D : nil
      if let out = y.convolutionBlock(
        weight: conv.weight, bias: conv.bias, stride: conv.stride, padding: conv.padding,
        pool: pool.map { ($0.kernelSize, $0.stride, $0.padding) })
      {
        y = out
        i += pool == nil ? 2 : 3
        continue
      }
    }
    y = layers[i](y)
    i += 1
  }
  return y
}
