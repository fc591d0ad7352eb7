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

/// A run of layers that `applyInOrder` executes as one oneDNN chain: a `Conv2D`, optionally a
/// `BatchNorm2D`, a `ReLU`, optionally a `MaxPool2D`.
struct ConvolutionChainLayers {
  let convolution: Conv2D
  let norm: BatchNorm2D?
  let pool: MaxPool2D?
  /// The index after the chain's last layer.
  let end: Int

  /// The chain's arguments for `Tensor.convolutionChains`.
  var spec: ConvolutionChainSpec {
    ConvolutionChainSpec(
      weight: convolution.weight, bias: convolution.bias, stride: convolution.stride, padding: convolution.padding,
      norm: norm.map {
        ChainBatchNorm(
          weight: $0.weight, bias: $0.bias, runningMean: $0.runningMean, runningVariance: $0.runningVariance,
          training: $0.isTraining, momentum: $0.momentum, epsilon: $0.epsilon)
      },
      pool: pool.map { ($0.kernelSize, $0.stride, $0.padding) })
  }

  /// The chain that starts at `start` in `layers`, if one does.
  init?(startingAt start: Int, in layers: ArraySlice<any Layer>) {
    guard let convolution = layers[start] as? Conv2D else { return nil }
    var next = start + 1
    norm = next < layers.endIndex ? layers[next] as? BatchNorm2D : nil
    if norm != nil { next += 1 }
    guard next < layers.endIndex, layers[next] is ReLU else { return nil }
    next += 1
    pool = next < layers.endIndex ? layers[next] as? MaxPool2D : nil
    self.convolution = convolution
    end = next + (pool == nil ? 0 : 1)
  }
}

/// Applies `layers` one after another to `x`, running each `Conv2D` followed by a `ReLU`, or
/// by a `BatchNorm2D` and a `ReLU` (and then a `MaxPool2D`), as one oneDNN chain
/// (`Tensor.convolutionBlock`, while `Convolution.fusesBlocks`), which keeps the convolution's
/// output in oneDNN's blocked layout, and consecutive chains in a row
/// (`Tensor.convolutionChains`), which pass their intermediates in that layout too; where a
/// chain cannot run, its layers run one by one. Same results within rounding.
func applyInOrder(_ layers: ArraySlice<any Layer>, to x: Tensor) -> Tensor {
  var y = x
  var i = layers.startIndex
  while i < layers.endIndex {
    if Convolution.fusesBlocks {
      // The chains that follow each other from here, run in a row (`convolutionChains` hands
      // the intermediates over in oneDNN's layout).
      var chains: [ConvolutionChainLayers] = []
      var next = i
      while next < layers.endIndex, let chain = ConvolutionChainLayers(startingAt: next, in: layers) {
        chains.append(chain)
        next = chain.end
      }
      if !chains.isEmpty, let (out, count) = y.convolutionChains(chains.map(\.spec)) {
        y = out
        i = chains[count - 1].end
        continue
      }
    }
    y = layers[i](y)
    i += 1
  }
  return y
}
