import Autodiff

/// A 2-D convolution (cross-correlation, as in every deep-learning library) over a batch of
/// multi-channel images (`torch.nn.Conv2d(inChannels, outChannels, kernelSize, stride,
/// padding, bias=bias)`):
///
///   y[n, o, i, j] = b[o] + Σ_c Σ_u Σ_v W[o, c, u, v] · x[n, c, s·i + u − p, s·j + v − p]
///
/// with zero padding p on every side and stride s.
///
/// Shape: input `[N, inChannels, H, W]` → output `[N, outChannels, H′, W′]`,
/// H′ = ⌊(H + 2p − k)/s⌋ + 1, likewise W′.
///
/// Parameters, with PyTorch's default initialisation drawn from `generator`, weight first then
/// bias, each in row-major order:
/// - `weight` `[outChannels, inChannels, k, k]` ~ U(−b, b), b = 1/√(inChannels·k·k)
/// - `bias` `[outChannels]` ~ U(−b, b) (absent when `bias` is false, as before batch norm)
public final class Conv2D: Layer {
  /// `[outChannels, inChannels, kernelSize, kernelSize]`.
  public let weight: Tensor
  /// `[outChannels]`, or `nil` without bias.
  public let bias: Tensor?
  public let stride: Int
  public let padding: Int
  public var isTraining = true

  /// Creates a layer with PyTorch's default uniform initialisation.
  public init(
    inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
    bias: Bool = true, generator: inout SeededGenerator
  ) {
    precondition(stride > 0 && padding >= 0, "stride must be positive and padding non-negative")
    let bound = 1 / Float(inChannels * kernelSize * kernelSize).squareRoot()
    weight = Tensor.uniform(
      [outChannels, inChannels, kernelSize, kernelSize], low: -bound, high: bound,
      generator: &generator, requiresGrad: true)
    self.bias =
      bias
      ? Tensor.uniform([outChannels], low: -bound, high: bound, generator: &generator, requiresGrad: true)
      : nil
    self.stride = stride
    self.padding = padding
  }

  public var inChannels: Int { weight.shape[1] }
  public var outChannels: Int { weight.shape[0] }
  public var kernelSize: Int { weight.shape[2] }

  public var localParameters: [(name: String, tensor: Tensor)] {
    [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
  }
}
