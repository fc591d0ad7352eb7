import Autodiff

/// A linear layer factorised to rank r: y = (x·Aᵀ)·Bᵀ + b, W ≈ B·A, as
/// `nn.Sequential(nn.Linear(in, r, bias=False), nn.Linear(r, out))` (a recipe's
/// `linear: {out, rank}`; the `low_rank` compression stage builds it from a truncated SVD).
///
/// Shape: input `[N, inputFeatures]` → output `[N, outputFeatures]`.
///
/// Children: `0` = `A`, a `Linear(inputFeatures → rank)` without bias; `1` = `B`, a
/// `Linear(rank → outputFeatures)` with the bias. Parameters `0.weight` `[rank, in]`,
/// `1.weight` `[out, rank]`, `1.bias` `[out]`: PyTorch's keys for that `nn.Sequential`.
/// Initialisation draws A then B from `generator` as two PyTorch linears would.
public final class LowRankLinear: Layer {
  public let first: Linear
  public let second: Linear
  public var isTraining = true {
    didSet { (first.isTraining, second.isTraining) = (isTraining, isTraining) }
  }

  public init(inputFeatures: Int, outputFeatures: Int, rank: Int, bias: Bool = true, generator: inout SeededGenerator) {
    first = Linear(inputFeatures: inputFeatures, outputFeatures: rank, bias: false, generator: &generator)
    second = Linear(inputFeatures: rank, outputFeatures: outputFeatures, bias: bias, generator: &generator)
  }

  public var inputFeatures: Int { first.inputFeatures }
  public var outputFeatures: Int { second.outputFeatures }
  public var rank: Int { first.outputFeatures }

  public var children: [(name: String, layer: any Layer)] { [("0", first), ("1", second)] }

  public func callAsFunction(_ x: Tensor) -> Tensor { second(first(x)) }
}
