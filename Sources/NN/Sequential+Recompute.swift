import Autodiff

// Activation recomputation for a `Sequential` (`torch.utils.checkpoint.checkpoint_sequential`):
// the layer list is cut into segments; each segment but the last runs through `recomputed`, so
// the forward pass keeps only the segments' inputs and the backward pass recomputes each
// segment's activations just before it needs them.

/// A layer whose training forward pass changes state of its own besides computing its output:
/// `Dropout` advances its generator, `BatchNorm` moves its running statistics. Activation
/// recomputation saves this state before a segment's forward pass and restores it around the
/// replay, so the replay draws the same random numbers and the running statistics move once.
public protocol ForwardStateful: Layer {
  /// Remembers the state as it is now and returns a closure that puts it back.
  func saveForwardState() -> () -> Void
}

extension Layer {
  /// This layer and all its descendants that have forward state, depth first.
  var forwardStatefulLayers: [any ForwardStateful] {
    var found: [any ForwardStateful] = []
    if let stateful = self as? any ForwardStateful { found.append(stateful) }
    for (_, child) in children { found += child.forwardStatefulLayers }
    return found
  }
}

extension Sequential {
  /// The layer index ranges of `segments` contiguous segments of as equal a length as possible:
  /// segment i is ⌊i·n/s⌋ ..< ⌊(i + 1)·n/s⌋ for n layers and s = min(segments, n) segments,
  /// except that no cut falls inside a convolution chain (`Conv2D`, optionally `BatchNorm2D`,
  /// `ReLU`, optionally `MaxPool2D`, which `Sequential` runs as one oneDNN op): such a cut moves
  /// to the chain's end, and a segment left empty is dropped. So recomputation runs the very
  /// chains the plain forward pass runs, and its results stay bitwise the same (oneDNN's batch
  /// normalisation inside a chain and the engine's outside it round differently).
  public func segmentRanges(_ segments: Int) -> [Range<Int>] {
    precondition(segments >= 1, "segments must be ≥ 1, got \(segments)")
    let n = layers.count
    let s = max(1, min(segments, n))
    // The index each position inside a chain moves to (the chain's end).
    var chainEnd = Array(0...n)
    var i = 0
    while i < n {
      if let chain = ConvolutionChainLayers(startingAt: i, in: layers[...]) {
        for k in (i + 1)..<chain.end { chainEnd[k] = chain.end }
        i = chain.end
      } else {
        i += 1
      }
    }
    let cuts = (0...s).map { chainEnd[$0 * n / s] }
    return zip(cuts, cuts.dropFirst()).compactMap { $0 < $1 ? $0..<$1 : nil }
  }

  /// Applies the layers in `range` to `x`; with `recomputing`, through `recomputed`: only `x`
  /// (and the forward state of the segment's `ForwardStateful` layers) is kept for backward.
  public func applyLayers(_ range: Range<Int>, to x: Tensor, recomputing: Bool) -> Tensor {
    let segment = Array(layers[range])
    guard recomputing else { return applyInOrder(segment[...], to: x) }
    let stateful = segment.flatMap(\.forwardStatefulLayers)
    return recomputed(
      x, parameters: segment.flatMap { $0.parameters.map(\.tensor) },
      saveState: {
        let restores = stateful.map { $0.saveForwardState() }
        return { for restore in restores { restore() } }
      }
    ) { input in applyInOrder(segment[...], to: input) }
  }

  /// y = self(x) with activation recomputation over `segments` segments (`segmentRanges`):
  /// every segment but the last keeps only its input in the forward pass and recomputes its
  /// activations in backward. The last segment runs normally, since backward needs its
  /// activations first (recomputing them would only cost time), so `segments` 1 recomputes
  /// nothing, as in `checkpoint_sequential`. Outputs and gradients are bitwise those of
  /// `self(x)`; dropout masks are replayed and batch-norm running statistics move once.
  ///
  /// Memory: with n layers of similar size in s segments, about s segment inputs plus one
  /// segment's activations, n/s, are alive at once instead of all n; √n segments minimise the
  /// sum. Time: one more forward pass of the first s − 1 segments.
  ///
  /// Shape: as `callAsFunction(_:)`.
  public func callAsFunction(_ x: Tensor, segments: Int) -> Tensor {
    let ranges = segmentRanges(segments)
    var y = x
    for (i, range) in ranges.enumerated() {
      y = applyLayers(range, to: y, recomputing: i < ranges.count - 1)
    }
    return y
  }
}
