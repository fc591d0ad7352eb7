import Autodiff
import NN

// FitNets hints (Romero et al., 2015): the student learns the labels and, at one of its layers,
// to reproduce the output of one of the teacher's layers (`distillation.hint`).

extension Sequential {
  /// Applies the layers in order and returns the output of layer `index` with the final output
  /// (the same values as `callAsFunction`, one pass). With `recomputeSegments` while recording,
  /// the segments are those of `callAsFunction(_:segments:)` cut once more after layer `index`,
  /// whose output the loss reads and so must stay in the graph.
  func forward(_ x: Tensor, capturing index: Int) -> (captured: Tensor, output: Tensor) {
    let recomputing = recomputeSegments != nil && GradMode.isRecording
    var ranges = recomputing ? segmentRanges(recomputeSegments!) : [0..<layers.count]
    let cut = index + 1
    if let k = ranges.firstIndex(where: { $0.lowerBound < cut && cut < $0.upperBound }) {
      let range = ranges[k]
      ranges.replaceSubrange(k...k, with: [range.lowerBound..<cut, cut..<range.upperBound])
    }
    var y = x
    var captured = x
    for (k, range) in ranges.enumerated() {
      y = applyLayers(range, to: y, recomputing: recomputing && k < ranges.count - 1)
      if range.upperBound == cut { captured = y }
    }
    return (captured, y)
  }
}

/// The hint loss of a micro-batch,
///
///   L = CE(s, y) + w · MSE(r(h_s), h_t)
///
/// with `h_s` the output of the student's layer `studentLayer` and `h_t` that of the teacher's
/// layer `teacherLayer` (run in evaluation mode without recording), both flattened to `[n, F]`,
/// and `r` the learned linear `regressor` (bias included) when their sizes differ, else the
/// identity. PyTorch: `F.cross_entropy(s, y, label_smoothing=ε) + w * F.mse_loss(r(h_s), h_t)`.
func hintLoss(
  teacher: Sequential, teacherLayer: Int, studentLayer: Int, regressor: Linear?, weight: Double,
  labelSmoothing: Double
) -> BatchLoss {
  let (w, smoothing) = (Float(weight), Float(labelSmoothing))
  return { student, input, labels in
    teacher.eval()
    let target = noGrad { teacher.forward(input, capturing: teacherLayer).captured.flattened() }
    let (features, logits) = student.forward(input, capturing: studentLayer)
    var mapped = features.flattened()
    if let regressor { mapped = regressor(mapped) }
    return crossEntropy(logits: logits, labels: labels, labelSmoothing: smoothing)
      + meanSquaredError(mapped, target) * w
  }
}
