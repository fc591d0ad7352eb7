import Autodiff
import DistillRecipes

/// DIST (Huang et al., NeurIPS 2022): the student's class probabilities correlate with the
/// teacher's, across classes for each sample (inter-class) and across samples for each class
/// (intra-class), by Pearson correlation:
///
///   term = weight · τ² · (β·(1 − mean_i ρ(yˢᵢ, yᵗᵢ)) + γ·(1 − mean_c ρ(yˢ_c, yᵗ_c))),
///   y = softmax(z/τ),  ρ(a, b) = ⟨a − ā, b − b̄⟩ / (‖a − ā‖·‖b − b̄‖ + 1e-8)
///
/// as the authors' `DIST` loss computes it. Needs batches of more than one sample.
final class DISTMethod: DistillationMethod {
  static var couplesSamples: Bool { true }
  static let info = MethodInfo(
    name: "dist", title: "DIST: distillation from a stronger teacher",
    paper: "Huang, You, Wang, Qian & Xu, Knowledge Distillation from A Stronger Teacher, NeurIPS 2022",
    reference: "hunto/image_classification_sota (DIST_KD's classification code) lib/models/losses/dist_kd.py; "
      + "CIFAR recipe configs/strategies/distill/dist_cifar.yaml: dist_t4 (tau 4), kd_loss_weight 2",
    needs: "teacher and student logits; batches of at least 2 samples",
    keys: [
      .number("beta", 1, "weight of the inter-class (per-sample) relation", .nonNegative),
      .number("gamma", 1, "weight of the intra-class (per-class) relation", .nonNegative),
      .number("tau", 1, "softmax temperature τ"),
      .number("weight", 1, "weight of the DIST term"),
    ])

  let beta: Float
  let gamma: Float
  let tau: Float
  let weight: Float

  init(settings: MethodSettings, context: MethodContext) {
    beta = Float(Self.number("beta", settings))
    gamma = Float(Self.number("gamma", settings))
    tau = Float(Self.number("tau", settings))
    weight = Float(Self.number("weight", settings))
  }

  /// 1 − the mean over rows of the Pearson correlation of `a`'s and `b`'s rows.
  static func relation(_ a: Tensor, _ b: Tensor) -> Tensor {
    let ca = a - a.mean(alongAxis: 1, keepingDimensions: true)
    let cb = b - b.mean(alongAxis: 1, keepingDimensions: true)
    let norms = ca.norms(alongAxis: 1) * cb.norms(alongAxis: 1)
    return 1 - ((ca * cb).sum(alongAxis: 1) / (norms + 1e-8)).mean()
  }

  func loss(_ batch: MethodBatch) -> Tensor {
    let ys = (batch.studentLogits / tau).softmax()
    let yt = noGrad { (batch.teacherLogits! / tau).softmax() }
    let inter = Self.relation(ys, yt)
    let intra = Self.relation(ys.transposed(), yt.transposed())
    return (inter * beta + intra * gamma) * (tau * tau * weight)
  }
}
