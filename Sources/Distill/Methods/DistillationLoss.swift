import Autodiff
import NN
import DistillRecipes

/// A recipe's distillation methods as a loss, for programs that train without `Trainer`
/// (`distill bench`, a library user's own loop):
///
///     let loss = try DistillationLoss(
///       spec: recipe.distillation, teacher: (teacherModel, teacherSpec), student: (studentModel, studentSpec),
///       inputShape: [1, 28, 28], trainLabels: labels)
///     let value = loss(student: studentModel, input: x, labels: y, indices: batchIndices, epoch: 1)
///     value.backward(); loss.afterBackward()
///
/// The optimizer must also update `extraParameters` (the methods' modules).
public final class DistillationLoss {
  let run: DistillationRun

  /// Builds the methods of `spec` for the two networks (`ModelSpec`s as built by
  /// `ModelBuilder`, whose layer positions the methods' keys name) on samples of `inputShape`;
  /// `trainLabels` are the training split's labels by sample index (CRD draws its negatives from
  /// them). Throws `RecipeError` for settings that are invalid in themselves (an unknown method
  /// or key, a value out of range) and `TrainingError.methodMismatch` for settings the networks
  /// cannot satisfy.
  public init(
    spec: DistillationSpec, teacher: (model: Sequential, spec: ModelSpec), student: (model: Sequential, spec: ModelSpec),
    inputShape: [Int], trainLabels: [Int], labelSmoothing: Double = 0, seed: UInt64 = 0, file: String = "<recipe>"
  ) throws {
    // A spec built in code has not been through a recipe's validation.
    if let problem = spec.problems(file: file, methods: DistillationMethods.infos).first { throw problem }
    let context = try MethodContext(
      file: file, spec: spec, teacher: teacher, teacherFile: nil, student: student, inputShape: inputShape,
      classCount: (trainLabels.max() ?? 0) + 1, trainLabels: trainLabels, seed: seed)
    run = try DistillationRun(spec: spec, context: context, labelSmoothing: labelSmoothing)
  }

  /// The methods' trainable modules, named `module.parameter`.
  public var extraParameters: [(name: String, tensor: Tensor)] { run.extraParameters }

  /// The loss of one micro-batch: `indices` are the samples' positions in the training split,
  /// `epoch` is 1-based (DKD's warm-up).
  public func callAsFunction(student: Sequential, input: Tensor, labels: [Int], indices: [Int], epoch: Int) -> Tensor {
    run.loss(student, MicroBatch(input: input, labels: labels, indices: indices, epoch: epoch))
  }

  /// Call after each micro-batch's `backward()` (CRD updates its memory banks here).
  public func afterBackward() { run.afterBackward() }
}
