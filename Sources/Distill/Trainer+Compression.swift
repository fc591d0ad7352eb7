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
  func makeStages(student: StudentNetwork, data: TrainingData) throws -> [StageRun] {
    try recipe.compress.indices.map { try makeStage($0, student: student, data: data) }
  }

  /// Stage `index` of `compress:` built for `student` (the recipe's, or the network an
  /// earlier stage handed on).
  func makeStage(_ index: Int, student: StudentNetwork, data: TrainingData, resuming: Bool = false) throws -> StageRun {
    let labels = CompressionStageSpec.labels(of: recipe.compress)
    let train = recipe.student.train
    let batches = (data.train.count + train.batchSize - 1) / train.batchSize
    let stepsPerEpoch = (batches + train.accumulate - 1) / train.accumulate
    let spec = recipe.compress[index]
    guard let type = CompressionStages.named(spec.name) else {
      // Validation refuses unknown names; a recipe built in code could still hold one.
      throw TrainingError.methodMismatch(
        file: recipeFile, keyPath: "compress[\(index)]", reason: "'\(spec.name)' is not a compression stage")
    }
    let epochs = spec.settings.integer("epochs", in: type.info.keys)
    let context = StageContext(
      file: recipeFile, keyPath: "compress[\(index)].\(spec.name)", settings: spec.settings, model: student.model,
      layers: student.layers, steps: epochs * stepsPerEpoch, seed: derivedSeed(recipe.seed, "\(labels[index]).stage"),
      resuming: resuming)
    return StageRun(
      index: index, label: labels[index], spec: spec, stage: try type.init(context: context), student: student.model)
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
  /// resumes within one; then `student` is the network of the checkpoint), each fine-tuning
  /// with the student's loss (`distillation`, or the labels alone) and writing its model file;
  /// stops after a stage that loses more validation accuracy than its `max_accuracy_drop`.
  /// `masters`: the student's Float masters in f16-mixed. A stage that changes the network
  /// (`reshape`, or a `finalModel` with other widths) hands the next one the new network, and
  /// the distillation is built again for it (`distill`), its own modules freshly initialised.
  func compress(
    _ student: StudentNetwork, stages: [StageRun], after studentResult: ModelResult, masters: [String: [Float]]?,
    distillation: DistillationRun?, distill: (StudentNetwork) throws -> DistillationRun?, data: TrainingData,
    resume: ResumePoint?, resumeStage: Int?, checkpoints: RunCheckpoints, onEvent: (TrainingEvent) -> Void
  ) throws -> CompressionOutcome {
    var outcome = CompressionOutcome()
    var (current, masters, distillation) = (student, masters, distillation)
    // A student trained for 0 epochs (loaded with `student.init`) has no epoch's validation.
    var previous = (
      label: ModelRole.student.rawValue,
      accuracy: studentResult.lastValidation?.accuracy
        ?? (stages.isEmpty ? nil : evaluate(student.model, on: data.validation).accuracy)
    )
    var lossEpochOffset = recipe.student.train.epochs
    /// A new network: the masters and the distillation's modules start again from it.
    func handOn(_ network: StudentNetwork) throws {
      current = network
      masters = nil
      distillation = try distill(network)
    }
    if resumeStage != nil, let first = stages.first, current.model !== first.student {
      distillation = try distill(current)
    }
    for var stage in stages {
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
        // Built for the recipe's student before training; again for the network it receives.
        let resumeHere = resumeStage == stage.index ? resume : nil
        if stage.student !== current.model {
          stage = try makeStage(stage.index, student: current, data: data, resuming: resumeHere != nil)
        }
        if resumeHere == nil, let reshaped = try stage.stage.reshape(current, masters: masters) {
          try handOn(reshaped)
        }
        checkpoints.studentLayers = current.layers
        var train = recipe.student.train
        train.epochs = stage.epochs
        train.optimizer = train.optimizer.scalingLearningRate(by: stage.learningRateFactor)
        let training = makeTraining(
          .student, current.model, train, distillation: distillation, stage: stage, lossEpochOffset: lossEpochOffset,
          loss: studentLoss(distillation))
        if let masters, let mixed = training.optimizer as? MixedPrecisionOptimizer { mixed.masterWeights = masters }
        if resumeHere == nil { stage.stage.begin(training, data: data) }
        let fitted = try fit(training, data: data, resume: resumeHere, checkpoints: checkpoints, onEvent: onEvent)
        masters = (training.optimizer as? MixedPrecisionOptimizer)?.masterWeights
        try saveStageModel(current, stage: stage, data: data)
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
        ?? (done ? nil : evaluate(stage.stage.finalModel(current.model), on: data.validation).accuracy)
      if let before = previous.accuracy, let accuracy, (before - accuracy) * 100 > stage.maxAccuracyDrop {
        outcome.stopped = .stageLostAccuracy(
          file: recipeFile, keyPath: stage.keyPath + ".max_accuracy_drop", stage: stage.label,
          before: before, after: accuracy, limit: stage.maxAccuracyDrop, previous: previous.label,
          kept: outcome.result, folder: runFolder.path)
        return outcome
      }
      previous = (stage.label, accuracy)
      outcome.result = file
      // Structured pruning hands on the smaller network.
      if !done, !stage.info.isFinal, let layers = stage.stage.finalLayers {
        try handOn(StudentNetwork(model: stage.stage.finalModel(current.model), layers: layers))
      }
    }
    return outcome
  }

  /// The student's loss: the distillation's, or the labels alone without one.
  func studentLoss(_ distillation: DistillationRun?) -> BatchLoss {
    distillation.map { run in { run.loss($0, $1) } }
      ?? labelLoss(labelSmoothing: recipe.student.train.labelSmoothing)
  }

  /// Writes `student-<label>.h5`: the stage's model (`finalModel`) with its layer list as the
  /// architecture (zeros included), and the stage's groups beside it (`masks`).
  func saveStageModel(_ student: StudentNetwork, stage: StageRun, data: TrainingData) throws {
    guard writesFiles else { return }
    let layers = stage.stage.finalLayers ?? student.layers
    try stage.stage.writeModel(
      stage.stage.finalModel(student.model), group: ModelRole.student.rawValue,
      architecture: modelDescription(role: .student, spec: .layers(layers), data: data).json,
      to: runFolder.stageModelPath(stage.label), precision: recipe.precision == .f16Mixed ? .f16 : .f32)
  }
}
