import Autodiff

/// The maximum over each k×k window (`torch.nn.MaxPool2d(kernelSize, stride, padding)`);
/// padding counts as −∞. The gradient goes to the (first) maximum of each window.
///
/// Shape: `[N, C, H, W]` → `[N, C, H′, W′]`, H′ = ⌊(H + 2p − k)/s⌋ + 1, likewise W′.
public final class MaxPool2D: Layer {
  public let kernelSize: Int
  public let stride: Int
  public let padding: Int
  public var isTraining = true

  /// Creates the layer; the stride defaults to the kernel size, as in PyTorch.
  public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
    self.kernelSize = kernelSize
    self.stride = stride ?? kernelSize
    self.padding = padding
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    x.maxPool2d(kernelSize: kernelSize, stride: stride, padding: padding)
  }
}

/// The mean over each k×k window (`torch.nn.AvgPool2d(kernelSize, stride, padding)`, padding
/// counted as zeros in the mean, PyTorch's default `count_include_pad=True`).
///
/// Shape: `[N, C, H, W]` → `[N, C, H′, W′]`, H′ = ⌊(H + 2p − k)/s⌋ + 1, likewise W′.
public final class AvgPool2D: Layer {
  public let kernelSize: Int
  public let stride: Int
  public let padding: Int
  public var isTraining = true

  /// Creates the layer; the stride defaults to the kernel size, as in PyTorch.
  public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
    self.kernelSize = kernelSize
    self.stride = stride ?? kernelSize
    self.padding = padding
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    x.avgPool2d(kernelSize: kernelSize, stride: stride, padding: padding)
  }
}

/// The mean of each channel over all positions, y[n, c] = (1/HW) Σᵢⱼ x[n, c, i, j]
/// (`torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())`).
///
/// Shape: `[N, C, H, W]` → `[N, C]`.
public final class GlobalAvgPool2D: Layer {
  public var isTraining = true
  public init() {}

  public func callAsFunction(_ x: Tensor) -> Tensor { x.globalAveragePool2d() }
}
