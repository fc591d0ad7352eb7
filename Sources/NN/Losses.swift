import Autodiff

// Losses, composed from Autodiff primitives (log-softmax, products with constant targets,
// sums), so their gradients need no rule of their own.

/// The mean cross-entropy of `logits` against integer class labels, optionally with label
/// smoothing (`torch.nn.functional.cross_entropy(logits, labels, label_smoothing=ε)`):
///
///   L = −(1/N) Σᵢ Σₖ qᵢₖ · log softmax(logitsᵢ)ₖ,  qᵢ = (1 − ε)·onehot(labelsᵢ) + ε/K
///
/// Shape: `logits` `[N, K]`, `labels` N values in `0..<K` → a scalar.
public func crossEntropy(logits: Tensor, labels: [Int], labelSmoothing: Float = 0) -> Tensor {
  let targets = smoothedOneHot(labels: labels, logitsShape: logits.shape, smoothing: labelSmoothing)
  return -(logits.logSoftmax() * targets).sum() * (1 / Float(labels.count))
}

/// Hinton et al.'s (2015) distillation loss: the temperature-softened teacher distribution
/// taught to the student, mixed with the ordinary cross-entropy on the labels,
///
///   L = α·T²·(1/N) Σᵢ KL(softmax(tᵢ/T) ‖ softmax(sᵢ/T)) + (1 − α)·CE(s, y)
///
/// with KL(p ‖ q) = Σₖ pₖ (log pₖ − log qₖ). The T² keeps the soft term's gradients at the
/// same scale as T changes. The teacher's logits are constants: no gradient reaches them.
/// PyTorch equivalent:
/// `α·T²·F.kl_div(F.log_softmax(s/T, 1), F.softmax(t/T, 1), reduction="batchmean")
///  + (1 − α)·F.cross_entropy(s, y)`.
///
/// Shape: `studentLogits` and `teacherLogits` `[N, K]`, `labels` N values in `0..<K` → a scalar.
public func distillationLoss(
  studentLogits: Tensor, teacherLogits: Tensor, labels: [Int], temperature: Float, alpha: Float
) -> Tensor {
  // `softTargetDivergence` checks the shapes and the temperature.
  let soft = softTargetDivergence(studentLogits: studentLogits, teacherLogits: teacherLogits, temperature: temperature)
    * (alpha * temperature * temperature)
  if alpha == 1 { return soft }
  return soft + crossEntropy(logits: studentLogits, labels: labels) * (1 - alpha)
}

/// The mean over samples of KL(softmax(tᵢ/T) ‖ softmax(sᵢ/T)), the teacher's side constant
/// (`F.kl_div(F.log_softmax(s/T, 1), F.softmax(t/T, 1), reduction="batchmean")`): the soft term
/// of `distillationLoss` before its α·T².
public func softTargetDivergence(studentLogits: Tensor, teacherLogits: Tensor, temperature: Float) -> Tensor {
  precondition(
    studentLogits.shape == teacherLogits.shape,
    "student logits \(studentLogits.shape) and teacher logits \(teacherLogits.shape) differ")
  precondition(temperature > 0, "temperature must be positive, got \(temperature)")
  let n = Float(studentLogits.shape[0])
  // The teacher's side: constants, computed without recording.
  let (teacherProbabilities, teacherLogProbabilities) = noGrad {
    let scaled = teacherLogits.detached() / temperature
    return (scaled.softmax(), scaled.logSoftmax())
  }
  let studentLogProbabilities = (studentLogits / temperature).logSoftmax()
  // Σ p·(log p − log q) elementwise, as torch's kl_div sums it (log-softmax keeps log p finite
  // where p underflows to 0, so 0·log 0 counts as 0).
  return (teacherProbabilities * (teacherLogProbabilities - studentLogProbabilities)).sum() * (1 / n)
}

/// The mean squared difference, L = (1/n) Σ (aᵢ − bᵢ)² (`torch.nn.functional.mse_loss`), e.g.
/// for hint losses between intermediate features.
///
/// Shape: two tensors of one shape → a scalar.
public func meanSquaredError(_ predictions: Tensor, _ targets: Tensor) -> Tensor {
  precondition(
    predictions.shape == targets.shape,
    "meanSquaredError of shapes \(predictions.shape) and \(targets.shape)")
  let difference = predictions - targets
  return (difference * difference).mean()
}

/// The constant target distribution (1 − ε)·onehot(y) + ε/K as a `[N, K]` tensor.
func smoothedOneHot(labels: [Int], logitsShape: [Int], smoothing: Float) -> Tensor {
  precondition(logitsShape.count == 2, "logits must be [N, K], got \(logitsShape)")
  let (n, classes) = (logitsShape[0], logitsShape[1])
  precondition(labels.count == n, "\(labels.count) labels for \(n) rows of logits")
  precondition(smoothing >= 0 && smoothing <= 1, "label smoothing must be in [0, 1], got \(smoothing)")
  for (i, label) in labels.enumerated() {
    precondition(label >= 0 && label < classes, "label \(label) at index \(i) is outside 0..<\(classes)")
  }
  let off = smoothing / Float(classes)
  let on = 1 - smoothing + off
  let targets = Tensor(repeating: off, shape: [n, classes])
  targets.storage.withUnsafeMutableBufferPointer { t in
    for (i, label) in labels.enumerated() { t[i * classes + label] = on }
  }
  return targets
}
