import Autodiff

// Parameter-free elementwise layers, so that activations can sit in a `Sequential` and take an
// index there, as in PyTorch. Each has no parameters and behaves the same in both modes.

/// max(x, 0) elementwise (`torch.nn.ReLU`). Shape: any → the same.
public final class ReLU: Layer {
  public var isTraining = true
  public init() {}
  public func callAsFunction(_ x: Tensor) -> Tensor { x.relu() }
}

/// x·Φ(x) with the exact Gaussian CDF Φ (`torch.nn.GELU()`, approximate="none").
/// Shape: any → the same.
public final class GELU: Layer {
  public var isTraining = true
  public init() {}
  public func callAsFunction(_ x: Tensor) -> Tensor { x.gelu() }
}

/// tanh(x) elementwise (`torch.nn.Tanh`). Shape: any → the same.
public final class Tanh: Layer {
  public var isTraining = true
  public init() {}
  public func callAsFunction(_ x: Tensor) -> Tensor { x.tanh() }
}

/// 1 / (1 + e⁻ˣ) elementwise (`torch.nn.Sigmoid`). Shape: any → the same.
public final class Sigmoid: Layer {
  public var isTraining = true
  public init() {}
  public func callAsFunction(_ x: Tensor) -> Tensor { x.sigmoid() }
}

/// Keeps the batch axis and flattens the rest (`torch.nn.Flatten()`, start_dim=1).
///
/// Shape: `[N, d1, …, dn]` → `[N, d1·…·dn]`.
public final class Flatten: Layer {
  public var isTraining = true
  public init() {}
  public func callAsFunction(_ x: Tensor) -> Tensor { x.flattened() }
}
