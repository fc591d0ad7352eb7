import Autodiff
import DistillRecipes

/// Neuron selectivity transfer (Huang & Wang, 2017): the distributions of the two networks'
/// channel activations over positions matched by maximum mean discrepancy with a polynomial
/// kernel k(a, b) = ⟨a, b⟩², each channel's map L2-normalised:
///
///   term = weight · Σ_stages mean k(fᵗ, fᵗ) + mean k(fˢ, fˢ) − 2·mean k(fˢ, fᵗ)
///
/// as mdistiller's `nst_loss` computes it, over the stage outputs (`feats[1:]`).
final class NeuronSelectivityTransfer: DistillationMethod {
  static let info = MethodInfo(
    name: "nst", title: "Neuron selectivity transfer",
    paper: "Huang & Wang, Like What You Like: Knowledge Distill via Neuron Selectivity Transfer, 2017",
    reference: "mdistiller/distillers/NST.py, mdistiller/engine/cfg.py (CFG.NST)",
    needs: "feature maps of each stage of both networks (default: the last layer before each pooling or flatten)",
    keys: [
      .number("weight", 50, "weight of the NST term"),
    ] + MethodKey.layerPair("its stage outputs", plural: true))

  let weight: Float
  let pairs: StagePairs
  var teacherLayers: [Int] { pairs.teacher }
  var studentLayers: [Int] { pairs.student }
  var needsTeacherLogits: Bool { false }

  init(settings: MethodSettings, context: MethodContext) throws {
    weight = Float(Self.number("weight", settings))
    pairs = try StagePairs(settings, keys: Self.info.keys, context: context)
  }

  /// mean over [n, i, j] of ⟨a[n, j], b[n, i]⟩², a and b `[n, C, HW]`.
  static func polyKernelMean(_ a: Tensor, _ b: Tensor) -> Tensor {
    Tensor.batchedMatmul(b, a, transposeB: true).pow(2).mean()
  }

  func loss(_ batch: MethodBatch) -> Tensor {
    var total: Tensor?
    for (s, t) in pairs.maps(batch) {
      let fs = s.reshaped([s.shape[0], s.shape[1], s.shape[2] * s.shape[3]]).l2Normalized(alongAxis: 2)
      let (ft, teacherTerm) = noGrad {
        let ft = t.reshaped([t.shape[0], t.shape[1], t.shape[2] * t.shape[3]]).l2Normalized(alongAxis: 2)
        return (ft, Self.polyKernelMean(ft, ft))
      }
      let term = teacherTerm + Self.polyKernelMean(fs, fs) - Self.polyKernelMean(fs, ft) * 2
      total = total.map { $0 + term } ?? term
    }
    return total! * weight
  }
}
