import Autodiff
import NN
import DistillRecipes

/// Hinton, Vinyals and Dean (2015): the student matches the teacher's temperature-softened
/// class probabilities. Term: `α · T² · (1/N) Σᵢ KL(softmax(tᵢ/T) ‖ softmax(sᵢ/T))`, the
/// cross-entropy on labels weighing 1 − α by default (mdistiller `KD.py`: CE 0.1, KD 0.9, T 4).
/// With `logit_standardization` both logits are z-scored per sample first (Sun et al. 2024).
final class KnowledgeDistillation: DistillationMethod {
  static let info = MethodInfo(
    name: "kd", title: "Knowledge distillation",
    paper: "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network, 2015",
    reference: "mdistiller/distillers/KD.py, mdistiller/engine/cfg.py (CFG.KD)",
    needs: "teacher and student logits",
    keys: [
      .number("temperature", 4, "softmax temperature T"),
      .number("alpha", 0.9, "weight of the soft term; CE weighs 1 − alpha; in [0, 1] unless ce_weight is given", .nonNegative),
    ],
    ceWeight: 0.1, topLevelKeys: true)

  let temperature: Float
  let weight: Float
  let standardize: Bool

  init(settings: MethodSettings, context: MethodContext) {
    temperature = Float(context.spec.temperature)
    weight = Float(context.spec.alpha)
    standardize = context.spec.logitStandardization
  }

  func loss(_ batch: MethodBatch) -> Tensor {
    var (student, teacher) = (batch.studentLogits, batch.teacherLogits!)
    if standardize { (student, teacher) = (student.standardizedRows(), teacher.standardizedRows()) }
    return softTargetDivergence(studentLogits: student, teacherLogits: teacher, temperature: temperature)
      * (weight * temperature * temperature)
  }
}

extension Tensor {
  /// Each row z-scored, `(x − mean) / (1e-7 + std)` with the unbiased standard deviation, as
  /// the logit-standardisation reference (`normalize` in its KD.py and DKD.py) does.
  func standardizedRows() -> Tensor {
    let k = shape[1]
    let centered = self - mean(alongAxis: 1, keepingDimensions: true)
    let std = ((centered * centered).sum(alongAxis: 1, keepingDimensions: true) * (1 / Float(k - 1))).sqrt()
    return centered / (std + 1e-7)
  }
}
