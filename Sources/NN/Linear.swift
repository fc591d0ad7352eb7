import Autodiff

/// A fully connected layer: y = x·Wᵀ + b (`torch.nn.Linear`).
///
/// Shape: input `[N, inputFeatures]` (or `[*, inputFeatures]`, any leading axes) → output
/// `[N, outputFeatures]` (`[*, outputFeatures]`).
///
/// Parameters, with PyTorch's default initialisation drawn from `generator`, weight first then
/// bias, each in row-major order:
/// - `weight` `[outputFeatures, inputFeatures]` ~ U(−k, k), k = 1/√inputFeatures
/// - `bias` `[outputFeatures]` ~ U(−k, k) (absent when `bias` is false)
public final class Linear: Layer {
  /// `[outputFeatures, inputFeatures]`.
  public let weight: Tensor
  /// `[outputFeatures]`, or `nil` without bias.
  public let bias: Tensor?
  public var isTraining = true
  /// Quantization-aware training: when set, the forward pass reads the input and the weights
  /// fake-quantized (see `LinearFakeQuantization`). nil (the default) for Float.
  public var fakeQuantization: LinearFakeQuantization?

  /// Creates a layer with PyTorch's default uniform initialisation.
  public init(
    inputFeatures: Int, outputFeatures: Int, bias: Bool = true, generator: inout SeededGenerator
  ) {
    let bound = 1 / Float(inputFeatures).squareRoot()
    weight = Tensor.uniform(
      [outputFeatures, inputFeatures], low: -bound, high: bound, generator: &generator,
      requiresGrad: true)
    self.bias =
      bias
      ? Tensor.uniform([outputFeatures], low: -bound, high: bound, generator: &generator, requiresGrad: true)
      : nil
  }

  public var inputFeatures: Int { weight.shape[1] }
  public var outputFeatures: Int { weight.shape[0] }

  public var localParameters: [(name: String, tensor: Tensor)] {
    [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    precondition(
      x.shape.last == inputFeatures, "Linear(\(inputFeatures)→\(outputFeatures)) got input \(x.shape)")
    var rows = x.rank == 2 ? x : x.reshaped([-1, inputFeatures])
    var w = weight
    if let fake = fakeQuantization {
      rows = fake.input(rows, observing: isTraining)
      w = fake.weight(weight)
    }
    var y = Tensor.matmul(rows, w, transposeB: true)
    if let bias { y = y + bias }
    return x.rank == 2 ? y : y.reshaped(Array(x.shape.dropLast()) + [outputFeatures])
  }
}
