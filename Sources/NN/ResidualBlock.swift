import Autodiff

/// A residual block, y = relu(body(x) + shortcut(x)), with the identity as the shortcut when
/// there is none (He et al., 2016). `basic(...)` builds the CIFAR ResNet-8/20 block.
///
/// Keys: `body.<i>.<name>` then `shortcut.<i>.<name>`. The equivalent PyTorch module, whose
/// `state_dict()` has the same keys in the same order:
///
/// ```python
/// class ResidualBlock(nn.Module):
///     def __init__(self, body: nn.Sequential, shortcut: nn.Sequential | None = None):
///         super().__init__()
///         self.body = body
///         self.shortcut = shortcut
///     def forward(self, x):
///         s = x if self.shortcut is None else self.shortcut(x)
///         return torch.relu(self.body(x) + s)
/// ```
///
/// Shape: `body` and `shortcut` must map the input to the same shape, which is the output's.
public final class ResidualBlock: Layer {
  /// The residual branch.
  public let body: Sequential
  /// The projection of the input, or `nil` for the identity.
  public let shortcut: Sequential?

  public init(body: Sequential, shortcut: Sequential? = nil) {
    self.body = body
    self.shortcut = shortcut
  }

  public var isTraining = true {
    didSet {
      body.isTraining = isTraining
      shortcut?.isTraining = isTraining
    }
  }

  public var children: [(name: String, layer: any Layer)] {
    [("body", body as any Layer)] + (shortcut.map { [("shortcut", $0 as any Layer)] } ?? [])
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    (body(x) + (shortcut?(x) ?? x)).relu()
  }

  /// The basic block of CIFAR ResNets: body conv3×3(stride)–BN–ReLU–conv3×3–BN, convolutions
  /// without bias; when the stride is not 1 or the channel count changes, the shortcut is
  /// conv1×1(stride)–BN (He et al.'s option B), otherwise the identity.
  ///
  /// Keys: `body.0.weight`, `body.1.{weight,bias,running_mean,running_var}`, `body.3.weight`,
  /// `body.4.*`, and with a projection `shortcut.0.weight`, `shortcut.1.*`.
  ///
  /// Shape: `[N, inChannels, H, W]` → `[N, outChannels, ⌈H/stride⌉, ⌈W/stride⌉]`.
  public static func basic(
    inChannels: Int, outChannels: Int, stride: Int = 1, generator: inout SeededGenerator
  ) -> ResidualBlock {
    let body = Sequential(
      Conv2D(
        inChannels: inChannels, outChannels: outChannels, kernelSize: 3, stride: stride, padding: 1,
        bias: false, generator: &generator),
      BatchNorm2D(outChannels), ReLU(),
      Conv2D(
        inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1, bias: false,
        generator: &generator),
      BatchNorm2D(outChannels))
    guard stride != 1 || inChannels != outChannels else { return ResidualBlock(body: body) }
    let shortcut = Sequential(
      Conv2D(
        inChannels: inChannels, outChannels: outChannels, kernelSize: 1, stride: stride, bias: false,
        generator: &generator),
      BatchNorm2D(outChannels))
    return ResidualBlock(body: body, shortcut: shortcut)
  }
}
