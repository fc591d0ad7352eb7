import Autodiff
import DistillRecipes

// Small pieces the feature methods share, each as its reference code writes it.

extension Tensor {
  /// `F.normalize(x, p=2, dim=axis)`: x / max(‖x‖₂, 1e-12) along `axis`, computed as
  /// x / √max(‖x‖², 1e-24) so that a zero vector (RKD's differences of a sample with itself)
  /// gets the zero gradient PyTorch gives it rather than 0·∞.
  func l2Normalized(alongAxis axis: Int) -> Tensor {
    self / (self * self).sum(alongAxis: axis, keepingDimensions: true).clamped(min: 1e-24).sqrt()
  }

  /// ‖x‖₂ along `axis` (`x.norm(dim=axis)`), its gradient 0 where the norm is 0 as PyTorch's
  /// (√ of a squared sum clamped at 1e-30, which changes no value a float32 norm can tell apart
  /// from 0 in these losses).
  func norms(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
    (self * self).sum(alongAxis: axis, keepingDimensions: keepingDimensions).clamped(min: 1e-30).sqrt()
  }

  /// Rows flattened: `[n, …] → [n, F]`.
  var rows: Tensor { reshaped([shape[0], count / shape[0]]) }
}

/// The one-hot matrix `[n, classes]` of `labels`, a constant.
func oneHot(_ labels: [Int], classes: Int) -> Tensor {
  var values = [Float](repeating: 0, count: labels.count * classes)
  for (i, label) in labels.enumerated() { values[i * classes + label] = 1 }
  return Tensor(shape: [labels.count, classes], storage: values)
}

/// Feature-map pairs of the stage methods (AT, NST): the layers given, or each network's stage
/// outputs (`MethodContext.stageOutputs`), checked to be feature maps whose spatial sizes differ
/// by an integer factor (matched by average pooling, as the references'
/// `F.adaptive_avg_pool2d` does in that case).
struct StagePairs {
  let teacher: [Int]
  let student: [Int]
  /// Per pair, the pooling factor applied to the student's map (> 1) or the teacher's (< −1).
  let pooling: [Int]

  /// The pairs of the `teacher_layers` and `student_layers` keys of `settings`.
  init(_ settings: MethodSettings, keys: [MethodKey], context: MethodContext) throws {
    func given(_ key: String) -> [Int] {
      if case .layers(let value) = settings.value(key, in: keys) { return value }
      return []
    }
    let teacher = try context.layers(given("teacher_layers"), of: .teacher, key: "teacher_layers") {
      context.stageOutputs(of: .teacher)
    }
    let student = try context.layers(given("student_layers"), of: .student, key: "student_layers") {
      context.stageOutputs(of: .student)
    }
    guard !teacher.isEmpty, !student.isEmpty else {
      let role = teacher.isEmpty ? "teacher" : "student"
      throw context.mismatch(
        "\(role)_layers",
        "the \(role) has no feature maps (no layer of shape [C, H, W] before a pooling or flatten layer); "
          + "this method needs convolutional networks, or give \(role)_layers")
    }
    guard teacher.count == student.count else {
      throw context.mismatch(
        "student_layers",
        "the teacher's feature layers \(teacher) and the student's \(student) differ in number; "
          + "give teacher_layers and student_layers of equal length")
    }
    var pooling: [Int] = []
    for (t, s) in zip(teacher, student) {
      let (ts, ss) = (context.shape(of: .teacher, layer: t), context.shape(of: .student, layer: s))
      guard ts.count == 3, ss.count == 3 else {
        let (role, layer, shape) = ts.count != 3 ? ("teacher", t, ts) : ("student", s, ss)
        throw context.mismatch("\(role)_layers", "layer \(layer) of the \(role) gives \(shape), not a feature map [C, H, W]")
      }
      if ss[1] == ts[1] && ss[2] == ts[2] {
        pooling.append(1)
      } else if ss[1] % ts[1] == 0 && ss[1] / ts[1] == ss[2] / ts[2] && ss[2] % ts[2] == 0 {
        pooling.append(ss[1] / ts[1])
      } else if ts[1] % ss[1] == 0 && ts[1] / ss[1] == ts[2] / ss[2] && ts[2] % ss[2] == 0 {
        pooling.append(-(ts[1] / ss[1]))
      } else {
        throw context.mismatch(
          "student_layers",
          "the teacher's layer \(t) gives \(ts) and the student's layer \(s) gives \(ss): spatial sizes that "
            + "differ by no integer factor cannot be matched")
      }
    }
    self.teacher = teacher
    self.student = student
    self.pooling = pooling
  }

  /// The pairs of `batch`, pooled to one spatial size.
  func maps(_ batch: MethodBatch) -> [(student: Tensor, teacher: Tensor)] {
    zip(zip(student, teacher), pooling).map { layers, factor in
      var (s, t) = (batch.studentFeatures[layers.0]!, batch.teacherFeatures[layers.1]!)
      if factor > 1 { s = s.avgPool2d(kernelSize: factor) }
      if factor < -1 { t = t.avgPool2d(kernelSize: -factor) }
      return (s, t)
    }
  }
}
