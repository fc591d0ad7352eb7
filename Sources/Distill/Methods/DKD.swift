import Autodiff
import DistillRecipes

/// Decoupled knowledge distillation (Zhao et al., CVPR 2022): the KL divergence split into the
/// target class's binary part (TCKD) and the distribution over the other classes (NCKD),
/// weighted separately and ramped in over `warmup` epochs:
///
///   term = min(epoch / warmup, 1) · (α·TCKD + β·NCKD),
///   TCKD = T²/N Σᵢ KL([pₜ, 1 − pₜ]_teacher ‖ [pₜ, 1 − pₜ]_student),
///   NCKD = T²/N Σᵢ KL(softmax(t/T − 1000·gt) ‖ softmax(s/T − 1000·gt))
///
/// as mdistiller's `dkd_loss` computes it (epochs 1-based). With `logit_standardization` both
/// logits are z-scored first (Sun et al. 2024; their recipe: T 2, α and β × 9).
final class DecoupledKD: DistillationMethod {
  static let info = MethodInfo(
    name: "dkd", title: "Decoupled knowledge distillation",
    paper: "Zhao, Cui, Song, Qiu & Liang, Decoupled Knowledge Distillation, CVPR 2022",
    reference: "mdistiller/distillers/DKD.py, mdistiller/engine/cfg.py (CFG.DKD)",
    needs: "teacher and student logits, labels",
    keys: [
      .number("alpha", 1, "weight of TCKD, the target-class term", .nonNegative),
      .number("beta", 8, "weight of NCKD, the non-target-class term", .nonNegative),
      .number("temperature", 4, "softmax temperature T"),
      .integer("warmup", 20, "epochs over which the term ramps in linearly", minimum: 1),
    ],
    ceWeight: 1)

  let alpha: Float
  let beta: Float
  let temperature: Float
  let warmup: Int
  let standardize: Bool

  init(settings: MethodSettings, context: MethodContext) {
    alpha = Float(Self.number("alpha", settings))
    beta = Float(Self.number("beta", settings))
    temperature = Float(Self.number("temperature", settings))
    warmup = Self.integer("warmup", settings)
    standardize = context.spec.logitStandardization
  }

  func loss(_ batch: MethodBatch) -> Tensor {
    var (s, t) = (batch.studentLogits, batch.teacherLogits!)
    if standardize { (s, t) = (s.standardizedRows(), t.standardizedRows()) }
    let (n, classes) = (s.shape[0], s.shape[1])
    let scale = temperature * temperature / Float(n)
    let gt = oneHot(batch.labels, classes: classes)
    let other = 1 - gt
    func binary(_ p: Tensor) -> Tensor {
      Tensor.concatenate(
        [(p * gt).sum(alongAxis: 1, keepingDimensions: true), (p * other).sum(alongAxis: 1, keepingDimensions: true)],
        alongAxis: 1)
    }
    // The teacher's side, constants; p·log p counts as 0 where p underflows to 0 (kl_div's xlogy).
    let (teacherBinary, teacherBinaryLog, teacherOther, teacherOtherLog) = noGrad {
      let binaryProbabilities = binary((t / temperature).softmax())
      let masked = t / temperature - gt * 1000
      return (
        binaryProbabilities, binaryProbabilities.clamped(min: .leastNonzeroMagnitude).log(), masked.softmax(),
        masked.logSoftmax()
      )
    }
    let studentBinaryLog = binary((s / temperature).softmax()).log()
    let tckd = (teacherBinary * (teacherBinaryLog - studentBinaryLog)).sum() * scale
    let studentOtherLog = (s / temperature - gt * 1000).logSoftmax()
    let nckd = (teacherOther * (teacherOtherLog - studentOtherLog)).sum() * scale
    let ramp = min(Float(batch.epoch) / Float(warmup), 1)
    return (tckd * alpha + nckd * beta) * ramp
  }
}
