import Autodiff
import Checkpoints
import NN
import DistillRecipes

extension Sequential {
  /// Applies the layers in order and returns the outputs of the layers at `indices` with the
  /// final output (the same values as `callAsFunction`, one pass). With `recomputeSegments`
  /// while recording, the segments are those of `callAsFunction(_:segments:)` cut once more
  /// after each captured layer, whose output the loss reads and so must stay in the graph.
  func forward(_ x: Tensor, capturing indices: Set<Int>) -> (captured: [Int: Tensor], output: Tensor) {
    let recomputing = recomputeSegments != nil && GradMode.isRecording
    var ranges = recomputing ? segmentRanges(recomputeSegments!) : [0..<layers.count]
    for cut in indices.map({ $0 + 1 }).sorted() {
      if let k = ranges.firstIndex(where: { $0.lowerBound < cut && cut < $0.upperBound }) {
        let range = ranges[k]
        ranges.replaceSubrange(k...k, with: [range.lowerBound..<cut, cut..<range.upperBound])
      }
    }
    var y = x
    var captured: [Int: Tensor] = [:]
    for (k, range) in ranges.enumerated() {
      y = applyLayers(range, to: y, recomputing: recomputing && k < ranges.count - 1)
      if indices.contains(range.upperBound - 1) { captured[range.upperBound - 1] = y }
    }
    return (captured, y)
  }
}

/// The methods of a run, built for its two networks, and the student's loss they make:
///
///   L = Σₘ termₘ + ce_weight · CE(s, y)
///
/// one forward pass of each network per micro-batch capturing every layer any method reads
/// (the teacher's in evaluation mode without recording), the cross-entropy with the recipe's
/// label smoothing, left out when its weight is 0.
final class DistillationRun {
  let teacher: Sequential
  let methods: [(name: String, method: any DistillationMethod)]
  let ceWeight: Float
  let labelSmoothing: Float
  private let teacherLayers: Set<Int>
  private let studentLayers: Set<Int>
  private let needsTeacherLogits: Bool

  init(spec: DistillationSpec, context: MethodContext, labelSmoothing: Double) throws {
    teacher = context.teacher
    var methods: [(String, any DistillationMethod)] = []
    for name in spec.methods {
      // Validation (Recipe.problems, DistillationSpec.problems) admits registered names only.
      guard let type = DistillationMethods.named(name) else {
        preconditionFailure("distillation method '\(name)' reached the trainer unvalidated")
      }
      var methodContext = context
      methodContext.keyPath = type.info.topLevelKeys ? "distillation" : "distillation.\(name)"
      methods.append((name, try type.init(settings: spec.settings(of: name), context: methodContext)))
    }
    self.methods = methods
    ceWeight = Float(spec.effectiveCEWeight)
    self.labelSmoothing = Float(labelSmoothing)
    teacherLayers = Set(methods.flatMap { $0.1.teacherLayers })
    studentLayers = Set(methods.flatMap { $0.1.studentLayers })
    needsTeacherLogits = methods.contains { $0.1.needsTeacherLogits }
  }

  /// The modules every method trains with the student, named `module.parameter`.
  var extraParameters: [(name: String, tensor: Tensor)] {
    methods.flatMap { _, method in
      method.modules.flatMap { name, layer in layer.parameters.map { ("\(name).\($0.name)", $0.tensor) } }
    }
  }

  /// The student's loss of one micro-batch.
  func loss(_ student: Sequential, _ batch: MicroBatch) -> Tensor {
    teacher.eval()
    for (_, method) in methods { for (_, module) in method.modules { module.train() } }
    var teacherLogits: Tensor?
    var teacherFeatures: [Int: Tensor] = [:]
    if needsTeacherLogits || !teacherLayers.isEmpty {
      noGrad {
        let (captured, output) = teacher.forward(batch.input, capturing: teacherLayers)
        (teacherFeatures, teacherLogits) = (captured, output)
      }
    }
    let (studentFeatures, logits) = studentLayers.isEmpty
      ? ([:], student(batch.input)) : student.forward(batch.input, capturing: studentLayers)
    let view = MethodBatch(
      studentLogits: logits, teacherLogits: needsTeacherLogits ? teacherLogits : nil,
      studentFeatures: studentFeatures, teacherFeatures: teacherFeatures, labels: batch.labels,
      indices: batch.indices, epoch: batch.epoch)
    var total: Tensor?
    for (_, method) in methods {
      let term = method.loss(view)
      total = total.map { $0 + term } ?? term
    }
    guard ceWeight > 0 else { return total ?? logits.sum() * 0 }
    var ce = crossEntropy(logits: logits, labels: batch.labels, labelSmoothing: labelSmoothing)
    if ceWeight != 1 { ce = ce * ceWeight }
    return total.map { $0 + ce } ?? ce
  }

  /// After each micro-batch's backward pass.
  func afterBackward() {
    for (_, method) in methods { method.afterBackward() }
  }

  /// Every method's state, its names prefixed with the method's (`crd.memory_student`).
  var state: MethodState {
    var all = MethodState()
    for (name, method) in methods {
      let state = method.state
      all.arrays += state.arrays.map { NamedArray(name: "\(name).\($0.name)", shape: $0.shape, values: $0.values) }
      for (key, words) in state.words { all.words["\(name).\(key)"] = words }
    }
    return all
  }

  /// Restores every method's state from `state` (as `state` wrote it), checking each first.
  func restore(_ state: MethodState, file: String) throws {
    for (name, method) in methods {
      let prefix = name + "."
      var own = MethodState()
      own.arrays = state.arrays.filter { $0.name.hasPrefix(prefix) }.map {
        NamedArray(name: String($0.name.dropFirst(prefix.count)), shape: $0.shape, values: $0.values)
      }
      for (key, words) in state.words where key.hasPrefix(prefix) { own.words[String(key.dropFirst(prefix.count))] = words }
      try method.restore(own, file: file)
    }
  }
}
