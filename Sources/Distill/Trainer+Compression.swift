import Checkpoints
import Foundation
import NN
import DistillRecipes

/// How one compression stage of a run ended (`summary.json`'s `stages`).
public struct StageResult: Equatable, Sendable {
  /// The stage's label (`prune`, `prune-2`) and its name in `compress:` (`prune`).
  public var label: String
  public var name: String
  /// The fine-tuned student after the stage: test figures, training energy, inference µJ.
  public var result: ModelResult
  /// The stage's figures (`sparsity`, `pruned_weights`).
  public var figures: [String: Double]
  /// The model file in the run folder (`student-prune.h5`).
  public var modelFile: String

  /// As saved in a checkpoint's `/state/results/<label>`: the result's numbers and
  /// `figure.<name>` for each figure.
  var numbers: [String: Double] {
    var numbers = ResumePoint.numbers(of: result)
    for (name, value) in figures { numbers["figure.\(name)"] = value }
    return numbers
  }

  public static func == (a: StageResult, b: StageResult) -> Bool {
    a.label == b.label && a.name == b.name && a.result == b.result && a.figures == b.figures
      && a.modelFile == b.modelFile
  }
}

/// What the compression stages of a run did.
struct CompressionOutcome {
  var results: [StageResult] = []
  /// The model file that is the run's result: the last stage's, or the one before a stage that
  /// lost more accuracy than its `max_accuracy_drop`.
  var result = "student.h5"
  /// Set when a stage lost too much accuracy: the run stops there (after `summary.json`).
  var stopped: TrainingError?
}

extension RunFolder {
  /// The model file of a compression stage: `student-<label>.h5`.
  public func stageModelPath(_ label: String) -> String { path + "/student-\(label).h5" }
}

extension Trainer {
  /// The recipe's `compress:` stages built for `student`, before anything trains.
  func makeStages(student: Sequential, data: TrainingData) throws -> [StageRun] {
    let labels = CompressionStageSpec.labels(of: recipe.compress)
    let train = recipe.student.train
    let batches = (data.train.count + train.batchSize - 1) / train.batchSize
    let stepsPerEpoch = (batches + train.accumulate - 1) / train.accumulate
    let layers = recipe.student.model.expandedLayers(classCount: data.classCount)
    return try recipe.compress.enumerated().map { index, spec in
      guard let type = CompressionStages.named(spec.name) else {
        // Validation refuses unknown names; a recipe built in code could still hold one.
        throw TrainingError.methodMismatch(
          file: recipeFile, keyPath: "compress[\(index)]", reason: "'\(spec.name)' is not a compression stage")
      }
      let epochs = spec.settings.integer("epochs", in: type.info.keys)
      let context = StageContext(
        file: recipeFile, keyPath: "compress[\(index)].\(spec.name)", settings: spec.settings, model: student,
        layers: layers, steps: epochs * stepsPerEpoch, seed: derivedSeed(recipe.seed, "\(labels[index]).stage"))
      return StageRun(index: index, label: labels[index], spec: spec, stage: try type.init(context: context))
    }
  }

  /// The run epoch before each phase's first (`RunCheckpoints`).
  func epochOffsets(stages: [StageRun]) -> [String: Int] {
    let teacherEpochs = recipe.teacher?.from == nil ? recipe.teacher?.train?.epochs ?? 0 : 0
    var offsets = [ModelRole.teacher.rawValue: 0, ModelRole.student.rawValue: teacherEpochs]
    var next = teacherEpochs + recipe.student.train.epochs
    for stage in stages {
      offsets[stage.label] = next
      next += stage.epochs
    }
    return offsets
  }

  /// Runs the stages in order on the distilled `student` (from `resumeStage` on, when a run
  /// resumes within one), each fine-tuning with the student's loss (`distillation` and `loss`)
  /// and writing its model file; stops after a stage that loses more validation accuracy than its
  /// `max_accuracy_drop`. `masters`: the student's Float masters in f16-mixed.
  func compress(
    _ student: Sequential, stages: [StageRun], after studentResult: ModelResult, masters: [String: [Float]]?,
    distillation: DistillationRun?, loss: @escaping BatchLoss, data: TrainingData, resume: ResumePoint?,
    resumeStage: Int?, checkpoints: RunCheckpoints, onEvent: (TrainingEvent) -> Void
  ) throws -> CompressionOutcome {
    var outcome = CompressionOutcome()
    var masters = masters
    var previous = (label: ModelRole.student.rawValue, accuracy: studentResult.lastValidation?.accuracy)
    var lossEpochOffset = recipe.student.train.epochs
    for stage in stages {
      defer { lossEpochOffset += stage.epochs }
      let file = URL(fileURLWithPath: runFolder.stageModelPath(stage.label)).lastPathComponent
      let result: StageResult
      let done = resumeStage.map { stage.index < $0 } ?? false
      if done {
        let saved = try resume!.savedResult(stage.label)
        var figures: [String: Double] = [:]
        for (key, value) in resume!.state.phaseResults[stage.label] ?? [:] where key.hasPrefix("figure.") {
          figures[String(key.dropFirst("figure.".count))] = value
        }
        result = StageResult(label: stage.label, name: stage.spec.name, result: saved, figures: figures, modelFile: file)
      } else {
        var train = recipe.student.train
        train.epochs = stage.epochs
        train.optimizer = train.optimizer.scalingLearningRate(by: stage.learningRateFactor)
        let training = makeTraining(
          .student, student, train, distillation: distillation, stage: stage, lossEpochOffset: lossEpochOffset,
          loss: loss)
        if let masters, let mixed = training.optimizer as? MixedPrecisionOptimizer { mixed.masterWeights = masters }
        let resumeHere = resumeStage == stage.index ? resume : nil
        if resumeHere == nil { stage.stage.begin(training, data: data) }
        let fitted = try fit(training, data: data, resume: resumeHere, checkpoints: checkpoints, onEvent: onEvent)
        masters = (training.optimizer as? MixedPrecisionOptimizer)?.masterWeights
        try saveStageModel(student, stage: stage, data: data)
        result = StageResult(
          label: stage.label, name: stage.spec.name, result: fitted,
          figures: Dictionary(stage.stage.figures.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
          modelFile: file)
      }
      checkpoints.phaseResults[stage.label] = result.numbers
      outcome.results.append(result)
      // A stage of 0 epochs has no epoch's validation: evaluated here (finished ones passed).
      let accuracy =
        result.result.lastValidation?.accuracy
        ?? (done ? nil : evaluate(stage.stage.finalModel(student), on: data.validation).accuracy)
      if let before = previous.accuracy, let accuracy, (before - accuracy) * 100 > stage.maxAccuracyDrop {
        outcome.stopped = .stageLostAccuracy(
          file: recipeFile, keyPath: stage.keyPath + ".max_accuracy_drop", stage: stage.label,
          before: before, after: accuracy, limit: stage.maxAccuracyDrop, previous: previous.label,
          kept: outcome.result, folder: runFolder.path)
        return outcome
      }
      previous = (stage.label, accuracy)
      outcome.result = file
    }
    return outcome
  }

  /// Writes `student-<label>.h5`: the student's group as `student.h5` has it (zeros included)
  /// and the stage's groups beside it (`masks`).
  func saveStageModel(_ model: Sequential, stage: StageRun, data: TrainingData) throws {
    try stage.stage.writeModel(
      stage.stage.finalModel(model), group: ModelRole.student.rawValue,
      architecture: modelDescription(role: .student, spec: recipe.student.model, data: data).json,
      to: runFolder.stageModelPath(stage.label), precision: recipe.precision == .f16Mixed ? .f16 : .f32)
  }
}
