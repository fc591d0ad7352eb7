import Autodiff
import DistillRecipes

/// Attention transfer (Zagoruyko & Komodakis, ICLR 2017): at each stage the student's spatial
/// attention map, the channel mean of |f|ᵖ flattened and L2-normalised, matches the teacher's:
///
///   term = weight · Σ_stages mean((a(fˢ) − a(fᵗ))²),  a(f) = normalize(mean_c fᵖ)
///
/// as mdistiller's `at_loss` computes it, over the stage outputs (`feats[1:]`).
final class AttentionTransfer: DistillationMethod {
  static let info = MethodInfo(
    name: "at", title: "Attention transfer",
    paper: "Zagoruyko & Komodakis, Paying More Attention to Attention, ICLR 2017",
    reference: "mdistiller/distillers/AT.py, mdistiller/engine/cfg.py (CFG.AT)",
    needs: "feature maps of each stage of both networks (default: the last layer before each pooling or flatten)",
    keys: [
      .number("p", 2, "exponent of the attention map"),
      .number("weight", 1000, "weight of the AT term"),
    ] + MethodKey.layerPair("its stage outputs", plural: true))

  let p: Float
  let weight: Float
  let pairs: StagePairs
  var teacherLayers: [Int] { pairs.teacher }
  var studentLayers: [Int] { pairs.student }
  var needsTeacherLogits: Bool { false }

  init(settings: MethodSettings, context: MethodContext) throws {
    p = Float(Self.number("p", settings))
    weight = Float(Self.number("weight", settings))
    pairs = try StagePairs(settings, keys: Self.info.keys, context: context)
  }

  func attention(_ f: Tensor) -> Tensor {
    f.pow(p).mean(alongAxis: 1).rows.l2Normalized(alongAxis: 1)
  }

  func loss(_ batch: MethodBatch) -> Tensor {
    var total: Tensor?
    for (s, t) in pairs.maps(batch) {
      let target = noGrad { attention(t) }
      let d = attention(s) - target
      let term = (d * d).mean()
      total = total.map { $0 + term } ?? term
    }
    return total! * weight
  }
}
