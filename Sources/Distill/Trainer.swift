import Autodiff
import Datasets
import Energy
import Foundation
import NN
import DistillRecipes

/// Command-line choices that change how a recipe runs (`distill train --data --out --seed
/// --epochs --force`).
public struct TrainingOptions: Sendable {
  /// `--data`: the data location; wins over the recipe's `data.path`.
  public var dataPath: String?
  /// `--out`: the run folder; default `checkpoints/<name>` under the working directory.
  public var runFolder: String?
  /// `--force`: replace the results of an earlier run in the run folder.
  public var force: Bool
  /// `--seed`: replaces the recipe's `seed`.
  public var seed: UInt64?
  /// `--epochs`: replaces `epochs` of the teacher and the student.
  public var epochs: Int?

  public init(
    dataPath: String? = nil, runFolder: String? = nil, force: Bool = false, seed: UInt64? = nil,
    epochs: Int? = nil
  ) {
    self.dataPath = dataPath
    self.runFolder = runFolder
    self.force = force
    self.seed = seed
    self.epochs = epochs
  }
}

/// What a run reports while it goes, for progress displays.
public enum TrainingEvent: Sendable {
  /// A model's training begins: `phase` is `teacher`, `student` or a compression stage's label
  /// (`prune`), which then says what it did in `stage`.
  case modelStarted(phase: String, epochs: Int, parameterCount: Int, trainSamples: Int, stage: String? = nil)
  /// A micro-batch was trained on.
  case batch(BatchProgress)
  /// An epoch ended and was evaluated; the record is in `metrics.jsonl`.
  case epoch(EpochRecord)
  /// A model's final evaluation on `split`; `phase` as in `modelStarted`.
  case tested(phase: String, evaluation: Evaluation, split: String)
  /// The run's energy meter, before anything trains; `warning` says why it is not RAPL when
  /// `auto` fell back to the estimate.
  case energyMeter(source: EnergySource, summary: String, warning: String?)
  /// Something people should know that does not stop the run (a RAPL window that fell back
  /// to the estimate, and why).
  case warning(String)
}

/// Runs a recipe: loads the data, trains the teacher (or loads it from `teacher.from` and tests
/// it once), then the student (from a fresh initialisation or `student.init`) with the recipe's
/// distillation, evaluating both on the validation split every epoch and on the test split at
/// the end, and writes the run folder (`RunFolder`): `teacher.h5` and `student.h5` are model
/// files (`Checkpoints.saveModels`) whose `architecture` attribute is a `ModelDescription`.
///
/// Seeds: the run's seed chooses the validation split; each model's initialisation, sample order
/// and augmentation draw from their own seeds derived from it (`derivedSeed`), so the student
/// starts from the same weights whether or not a teacher was trained first.
public final class Trainer {
  /// The recipe as run, with the options' overrides applied.
  public let recipe: Recipe
  /// The recipe file, as errors name it.
  public let recipeFile: String
  public let options: TrainingOptions
  public let runFolder: RunFolder
  /// The overrides applied, for the record (`seed: 2 (--seed)`).
  public let overrides: [String]
  private let recipeText: String
  /// The run's energy meter, open while `run` or `resume` runs.
  private var meter: any EnergyMeter = EstimateMeter()
  /// Asked after every optimizer step: when set (the CLI's SIGINT/SIGTERM handler), the run
  /// writes `latest.h5` and throws `TrainingError.stopped`.
  public var stopRequest: StopRequest?
  /// The processes the run trains on: `Cluster.current`, one process unless the CLI started MPI
  /// (`mpirun -np N`, the MPI build). Rank 0 alone takes the folder's lock and writes files.
  public var collectives: any Collectives = Cluster.current
  /// Data parallelism: the size of the gradient buckets summed over the ranks, and whether a
  /// bucket's sum starts during backward (`GradientReducer`).
  public var bucketBytes = Trainer.defaultBucketBytes
  public var overlap = true
  /// 1 MiB: our students' gradients are 0.1–5 MB, so PyTorch DDP's 25 MB would make one bucket
  /// and leave nothing to overlap.
  public static let defaultBucketBytes = 1 << 20
  /// Whether this process writes the run folder (rank 0).
  var writesFiles: Bool { collectives.rank == 0 }

  /// Prepares a run of `recipe`, read from `recipeFile` (whose text, when given, is copied into
  /// the run folder; otherwise the recipe's canonical JSON is). Throws `RecipeError` when an
  /// override makes the recipe invalid; nothing is read or written yet.
  public init(
    recipe: Recipe, recipeFile: String, recipeText: String? = nil, options: TrainingOptions = .init()
  ) throws {
    var recipe = recipe
    var overrides: [String] = []
    if let seed = options.seed, seed != recipe.seed {
      recipe.seed = seed
      overrides.append("seed: \(seed) (--seed)")
    }
    if let epochs = options.epochs {
      recipe.teacher?.train?.epochs = epochs
      recipe.student.train.epochs = epochs
      overrides.append("epochs: \(epochs) for teacher and student (--epochs)")
    }
    try recipe.validate(file: recipeFile)
    self.recipe = recipe
    self.recipeFile = recipeFile
    self.recipeText = recipeText ?? recipe.canonicalJSON
    self.options = options
    self.overrides = overrides
    self.runFolder = RunFolder(path: options.runFolder ?? "checkpoints/\(recipe.name)")
  }

  /// Reads and validates the recipe at `path` (`Recipe.load`) and prepares its run.
  public convenience init(recipePath path: String, options: TrainingOptions = .init()) throws {
    let recipe = try Recipe.load(path: path)
    let text = try? String(contentsOfFile: path, encoding: .utf8)
    try self.init(recipe: recipe, recipeFile: path, recipeText: text, options: options)
  }

  /// Trains and evaluates; `onEvent` sees progress. Throws `TrainingError` (or `DatasetError`
  /// for a data file that is present but broken) before any training when the data, the models
  /// or the run folder are not usable. `data`, when given, replaces what the recipe's `data`
  /// section would load (tests train on a subset).
  ///
  /// After every epoch the run writes a training checkpoint (`epoch-NNNN.h5`, `latest.h5`;
  /// `RunCheckpoints`), from which `resume(from:)` continues exactly.
  public func run(data: TrainingData? = nil, onEvent: (TrainingEvent) -> Void = { _ in }) throws -> RunSummary
  {
    try execute(data: data, resume: nil, onEvent: onEvent)
  }

  /// Continues a run from a checkpoint (`Trainer.prepareResume`): the weights, optimizer,
  /// random generators and epoch position are restored, so the results are those the run
  /// would have had without the interruption.
  public func resume(
    from point: ResumePoint, data: TrainingData? = nil, onEvent: (TrainingEvent) -> Void = { _ in }
  ) throws -> RunSummary {
    try execute(data: data, resume: point, onEvent: onEvent)
  }

  private func execute(data: TrainingData?, resume: ResumePoint?, onEvent: (TrainingEvent) -> Void) throws
    -> RunSummary
  {
    let started = Date() - (resume?.state.runSeconds ?? 0)
    // Rank 0 takes the lock and checks the folder; the others wait for its verdict, so a refused
    // folder ends every rank with rank 0's error.
    let lockResult = Result { () throws -> RunFolderLock? in
      guard writesFiles else { return nil }
      let lock = try RunFolderLock(folder: runFolder.path)
      if resume == nil {
        do { try runFolder.checkWritable(force: options.force) } catch {
          lock.release()
          throw error
        }
      }
      return lock
    }
    if collectives.any((try? lockResult.get()) == nil && writesFiles) {
      _ = try lockResult.get()
      throw ClusterError.rankZeroFailed(what: "use the run folder \(runFolder.path)")
    }
    let lock = try lockResult.get()
    defer { lock?.release() }
    if let resume, resume.state.ranks != collectives.size {
      throw ClusterError.rankCountChanged(file: resume.path, saved: resume.state.ranks, now: collectives.size)
    }
    let selected = try openRunMeter(recipe.energy, file: recipeFile)
    meter = collectives.size > 1 ? ClusterMeter(selected.meter, collectives: collectives) : selected.meter
    defer { selected.meter.stop() }
    onEvent(.energyMeter(source: meter.source, summary: meter.summary, warning: selected.warning))
    // The phase a resumed run continues: the teacher's, the student's, or a stage's.
    let stageLabels = CompressionStageSpec.labels(of: recipe.compress)
    let resumeStage = try resume.flatMap { point -> Int? in
      let phase = point.state.phase
      if phase == ModelRole.teacher.rawValue || phase == ModelRole.student.rawValue { return nil }
      guard let index = stageLabels.firstIndex(of: phase) else {
        throw TrainingError.checkpointMismatch(
          file: point.path, object: "/state@phase",
          reason: "is '\(phase)', which is neither teacher, student nor a stage of the recipe's compress list "
            + "(\(stageLabels.isEmpty ? "none" : stageLabels.joined(separator: ", ")))")
      }
      return index
    }
    let studentPhase = resume.map { $0.state.phase != ModelRole.teacher.rawValue } ?? false
    // Weights files first: a missing one should not wait for the data to load. A run resumed
    // after its teacher phase takes its teacher from the checkpoint.
    let teacherFile = try studentPhase && recipe.teacher != nil
      ? openWeights(resume!.path, keyPath: "resume", role: .teacher)
      : recipe.teacher?.from.map { try openWeights($0, keyPath: "teacher.from", role: .teacher) }
    let studentFile = try recipe.student.initialWeights.map {
      try openWeights($0, keyPath: "student.init", role: .student)
    }
    let data =
      try data
      ?? TrainingData.load(recipe.data, seed: recipe.seed, file: recipeFile, dataPath: options.dataPath)
    try data.requireSamples(file: recipeFile)
    let classCount = data.classCount
    try requireDataParallel(data: data)

    // Build (or load) both models before training either, so a shape error or an unusable
    // weights file costs no training time, and before `prepare`, which may remove a file of ours
    // that `teacher.from` names.
    var teacher: (model: Sequential, spec: ModelSpec, train: TrainSpec?)?
    if let spec = recipe.teacher {
      if let stored = teacherFile {
        let loaded = try loadWeights(
          stored, keyPath: studentPhase ? "resume" : "teacher.from", role: .teacher, model: spec.model, sampleShape: data.sampleShape,
          classCount: classCount)
        teacher = (loaded.model, loaded.spec, nil)
      } else if let model = spec.model, let train = spec.train {
        let built = try ModelBuilder(file: recipeFile, keyPath: "teacher.model").build(
          model, inputShape: data.sampleShape, classCount: classCount,
          seed: derivedSeed(recipe.seed, "teacher.init"), batchSize: train.batchSize)
        teacher = (built, model, train)
      }
    }
    let student: Sequential
    if let stored = studentFile {
      student = try loadWeights(
        stored, keyPath: "student.init", role: .student, model: recipe.student.model,
        sampleShape: data.sampleShape, classCount: classCount
      ).model
    } else {
      student = try ModelBuilder(file: recipeFile, keyPath: "student.model").build(
        recipe.student.model, inputShape: data.sampleShape, classCount: classCount,
        seed: derivedSeed(recipe.seed, "student.init"), batchSize: recipe.student.train.batchSize)
    }
    for (role, train) in [(ModelRole.teacher, recipe.teacher?.train), (.student, recipe.student.train)] {
      if let train, !train.augment.augmentations.isEmpty, data.sampleShape.count != 3 {
        throw TrainingError.dataMismatch(
          file: recipeFile, keyPath: "\(role.rawValue).train.augment",
          reason: "augmentation needs image samples [C, H, W], but samples have shape \(data.sampleShape); "
            + "set data.shape or remove the augmentation")
      }
    }
    // The methods are built before anything trains, so a setting that does not fit the
    // networks (a layer the teacher of `teacher.from` lacks) costs no training time.
    let studentNetwork = StudentNetwork(
      model: student, layers: recipe.student.model.expandedLayers(classCount: classCount))
    let distill = { (network: StudentNetwork) throws -> DistillationRun? in
      try teacher.flatMap { teacher -> DistillationRun? in
        guard self.recipe.distillation.usesTeacher else { return nil }
        return try self.makeDistillation(
          teacher: teacher, student: network, data: data, fromFile: teacherFile != nil)
      }
    }
    let distillation = try distill(studentNetwork)
    if let warning = try requireDataParallel(distillation), writesFiles { onEvent(.warning(warning)) }
    // The stages too: a `layers` key naming a layer they cannot handle fails before training.
    let stages = try makeStages(student: studentNetwork, data: data)
    // Resumed within a stage after one that changed the network (`low_rank`, structured
    // pruning): the student is the checkpoint's network, built from its architecture.
    var resumedStudent = studentNetwork
    if resumeStage != nil {
      let stored = try openWeights(resume!.path, keyPath: "resume", role: .student)
      let loaded = try loadWeights(
        stored, keyPath: "resume", role: .student, model: nil, sampleShape: data.sampleShape, classCount: classCount)
      let layers = loaded.spec.expandedLayers(classCount: classCount)
      if layers != studentNetwork.layers { resumedStudent = StudentNetwork(model: loaded.model, layers: layers) }
    }

    // Resuming, the folder's files change only once the checkpoint has been restored (`fit`).
    // Every rank starts from rank 0's weights (built from the same seed, so this copies what is
    // already there, as DDP's constructor does).
    collectives.broadcast(
      [student.parameters, student.buffers, teacher?.model.parameters ?? [], teacher?.model.buffers ?? []]
        .flatMap { $0.map(\.tensor) } + (distillation?.extraParameters.map(\.tensor) ?? []))
    if resume == nil, let lock {
      try runFolder.prepare(recipeText: recipeText, notes: overrides, force: options.force, lock: lock)
    }
    let checkpoints = RunCheckpoints(
      trainer: self, data: data, started: started, metrics: resume?.state.metrics ?? [],
      teacher: teacher.map { ($0.model, $0.spec) }, epochOffsets: epochOffsets(stages: stages))

    var teacherResult: ModelResult?
    if let (model, spec, train) = teacher {
      if studentPhase {
        teacherResult = try resume!.savedResult(ModelRole.teacher.rawValue)
      } else if let train {
        let training = makeTraining(
          .teacher, model, train, loss: labelLoss(labelSmoothing: train.labelSmoothing))
        teacherResult = try fit(training, data: data, resume: resume, checkpoints: checkpoints, onEvent: onEvent)
      } else {
        teacherResult = testLoaded(model, data: data, onEvent: onEvent)
      }
      // A loaded teacher is copied too, so the run folder holds everything the run used.
      if !studentPhase || !FileManager.default.fileExists(atPath: runFolder.modelPath(.teacher)) {
        try saveWeights(model, role: .teacher, spec: spec, data: data)
      }
      checkpoints.teacherResult = teacherResult
    }

    let train = recipe.student.train
    let studentLoss = self.studentLoss(distillation)
    let studentResult: ModelResult
    /// The student's Float masters in f16-mixed, handed from phase to phase.
    var masters: [String: [Float]]?
    if resumeStage != nil {
      studentResult = try resume!.savedResult(ModelRole.student.rawValue)
    } else {
      let studentTraining = makeTraining(.student, student, train, distillation: distillation, loss: studentLoss)
      studentResult = try fit(
        studentTraining, data: data, resume: studentPhase ? resume : nil, checkpoints: checkpoints, onEvent: onEvent)
      try saveWeights(student, role: .student, spec: recipe.student.model, data: data)
      masters = (studentTraining.optimizer as? MixedPrecisionOptimizer)?.masterWeights
    }
    checkpoints.phaseResults[ModelRole.student.rawValue] = ResumePoint.numbers(of: studentResult)

    let compression = try compress(
      resumedStudent, stages: stages, after: studentResult, masters: masters, distillation: distillation,
      distill: distill, data: data, resume: resume, resumeStage: resumeStage, checkpoints: checkpoints,
      onEvent: onEvent)

    var summary = RunSummary(
      name: recipe.name, seed: recipe.seed, recipeHash: recipe.canonicalHash, runFolder: runFolder.path,
      testSplit: data.testSplit, method: recipe.distillation.label, teacher: teacherResult,
      student: studentResult,
      seconds: Date().timeIntervalSince(started), overrides: overrides)
    (summary.stages, summary.stopped) = (compression.results, compression.stopped?.description)
    summary.result = compression.result
    summary.environment = .current()
    (summary.ranks, summary.hosts) = (collectives.size, collectives.hosts)
    (summary.energyMeter, summary.energyWarning) = (meter.summary, selected.warning)
    if writesFiles { try runFolder.writeSummary(summary) }
    if let stopped = compression.stopped { throw stopped }
    return summary
  }

  func makeTraining(
    _ role: ModelRole, _ model: Sequential, _ spec: TrainSpec, distillation: DistillationRun? = nil,
    stage: StageRun? = nil, lossEpochOffset: Int = 0, loss: @escaping BatchLoss
  ) -> ModelTraining {
    // `checkpoint.recompute`: the model's recorded forward passes (training) keep only segment
    // inputs; evaluation runs under `noGrad` and is unaffected. Weights and keys are unchanged.
    model.recomputeSegments = recipe.checkpoint.recompute?.segments
    let phase = stage?.label ?? role.rawValue
    let training = ModelTraining(
      role: role, model: model, spec: spec, shuffleSeed: derivedSeed(recipe.seed, "\(phase).shuffle"),
      augmentSeed: derivedSeed(recipe.seed, "\(phase).augment"), precision: recipe.precision,
      distillation: distillation, stage: stage, lossEpochOffset: lossEpochOffset, loss: loss)
    training.distribute(over: collectives, bucketBytes: bucketBytes, overlap: overlap)
    return training
  }

  /// The recipe's distillation methods built for the two networks (`DistillationRun`).
  private func makeDistillation(
    teacher: (model: Sequential, spec: ModelSpec, train: TrainSpec?), student: StudentNetwork, data: TrainingData,
    fromFile: Bool
  ) throws -> DistillationRun {
    let context = try MethodContext(
      file: recipeFile, spec: recipe.distillation, teacher: (teacher.model, teacher.spec),
      teacherFile: fromFile ? recipe.teacher?.from : nil,
      student: (student.model, student.layers == recipe.student.model.expandedLayers(classCount: data.classCount)
        ? recipe.student.model : .layers(student.layers)),
      inputShape: data.sampleShape, classCount: data.classCount, trainLabels: data.train.labels, seed: recipe.seed)
    return try DistillationRun(
      spec: recipe.distillation, context: context, labelSmoothing: recipe.student.train.labelSmoothing)
  }

  /// Trains every epoch (from `resume`'s position, whose state it restores, when given),
  /// evaluating, logging and checkpointing each, then evaluates on the test split. Throws
  /// `TrainingError.stopped` after writing `latest.h5` when `stopRequest` is set.
  func fit(
    _ training: ModelTraining, data: TrainingData, resume: ResumePoint?, checkpoints: RunCheckpoints,
    onEvent: (TrainingEvent) -> Void
  ) throws -> ModelResult {
    let (role, phase, model, epochs) = (training.role, training.phase, training.model, training.spec.epochs)
    var (firstEpoch, progress) = (0, EpochProgress())
    var lastValidation: Evaluation?
    var lastLoss = Double.nan
    if let resume {
      try training.restore(from: resume.state, file: resume.path)
      if writesFiles { try runFolder.restoreMetrics(resume.state.metrics) }
      (firstEpoch, progress) = (min(resume.state.epoch, epochs), resume.progress)
      (lastValidation, lastLoss) = resume.lastEpoch
    }
    let started = Date() - (resume?.state.modelSeconds ?? 0)
    onEvent(
      .modelStarted(
        phase: phase, epochs: epochs, parameterCount: model.parameterCount, trainSamples: data.train.count,
        stage: training.stage.map { "\($0.info.title): \($0.info.summary)" }))
    var windows = resume.map { $0.energySoFar(of: phase, source: meter.source) } ?? []
    for epoch in firstEpoch..<epochs {
      let epochStart = Date() - progress.seconds
      let (trained, trainEnergy) = meter.measure("\(phase) epoch \(epoch + 1) train") {
        training.trainEpoch(
          epoch, on: data.train, epochs: epochs, started: started, from: progress,
          shouldStop: { stopRequest?.isRequested ?? false }, progress: { onEvent(.batch($0)) })
      }
      if let diverged = trained.diverged {
        let latest = runFolder.latestCheckpointPath
        throw TrainingError.diverged(
          role: phase, epoch: epoch + 1, batch: diverged.batch, step: diverged.step,
          loss: Double(diverged.loss), precision: recipe.precision.rawValue,
          checkpoint: FileManager.default.fileExists(atPath: latest) ? latest : nil, recipe: recipeFile)
      }
      // What the epoch did before an interruption (resume) counts with what it does now.
      let before = progress
      progress = EpochProgress()
      if var stoppedAt = trained.stoppedAt {
        stoppedAt.addEnergy(before: before, window: trainEnergy)
        try checkpoints.save(
          training, epoch: epoch, progress: stoppedAt, modelStarted: started, last: (lastValidation, lastLoss))
        throw stopped()
      }
      let (validation, evalEnergy) = meter.measure("\(phase) epoch \(epoch + 1) evaluation") {
        evaluate(model, on: data.validation, across: collectives)
      }
      try requireSameWeights(training, epoch: epoch + 1)
      for warning in [trainEnergy.warning, evalEnergy.warning].compactMap({ $0 }) { onEvent(.warning(warning)) }
      windows += [trainEnergy, evalEnergy]
      if before.batch > 0 {
        windows.append(before.window(name: "\(phase) epoch \(epoch + 1) before the interruption", source: trainEnergy.source))
      }
      var record = EpochRecord(
        model: role, epoch: epoch + 1, epochs: epochs, trainLoss: trained.loss, validation: validation,
        validationSplit: data.validationSplit, seconds: Date().timeIntervalSince(epochStart), joules: nil,
        energySource: nil, samples: trained.samples, precision: recipe.precision.rawValue,
        learningRate: trained.learningRate, seed: recipe.seed, lossScale: trained.lossScale,
        skippedSteps: trained.skippedSteps)
      record.stage = training.stage?.label
      (record.ranks, record.hosts) = (collectives.size, collectives.hosts)
      record.allreduceSeconds = trained.allreduceSeconds
      for (name, value) in training.stage?.stage.figures ?? [] { record.figures[name] = value }
      record.record(training: trainEnergy, evaluation: evalEnergy, before: before)
      if writesFiles { try runFolder.append(record) }
      onEvent(.epoch(record))
      lastValidation = validation
      lastLoss = trained.loss
      checkpoints.record(record)
      try checkpoints.save(
        training, epoch: epoch + 1, progress: EpochProgress(), modelStarted: started, last: (validation, trained.loss))
      let laterPhase = role == .teacher || (training.stage?.index ?? -1) + 1 < recipe.compress.count
      if collectives.any(stopRequest?.isRequested == true), epoch + 1 < epochs || laterPhase { throw stopped() }
    }
    let seconds = Date().timeIntervalSince(started)
    // A stage's result is the model it produces (a quantized network), tested and measured.
    let tested = training.stage?.stage.finalModel(model) ?? model
    let (test, energy) = measureTest(tested, on: data.test, phase: phase, meter: meter, training: windows, collectives: collectives)
    model.eval()
    onEvent(.tested(phase: phase, evaluation: test, split: data.testSplit))
    return ModelResult(
      role: role, test: test, lastValidation: lastValidation, epochs: epochs, seconds: seconds,
      parameterCount: training.stage?.stage.finalLayers != nil ? tested.parameterCount : model.parameterCount,
      finalTrainLoss: lastLoss, energy: energy)
  }

  /// The error that ends a run after a stop request, once `latest.h5` is written.
  private func stopped() -> TrainingError {
    .stopped(
      signal: stopRequest?.signal ?? 0, checkpoint: runFolder.latestCheckpointPath, folder: runFolder.path)
  }

  /// Tests a teacher loaded with `teacher.from` once, on the test split, as `fit` does after
  /// training: its result has 0 epochs and no training loss.
  private func testLoaded(_ model: Sequential, data: TrainingData, onEvent: (TrainingEvent) -> Void)
    -> ModelResult
  {
    let (test, energy) = measureTest(
      model, on: data.test, phase: ModelRole.teacher.rawValue, meter: meter, training: [], collectives: collectives)
    model.eval()
    onEvent(.tested(phase: ModelRole.teacher.rawValue, evaluation: test, split: data.testSplit))
    return ModelResult(
      role: .teacher, test: test, lastValidation: nil, epochs: 0, seconds: 0,
      parameterCount: model.parameterCount, finalTrainLoss: .nan, energy: energy)
  }
}

/// A seed for one purpose (`"student.init"`, `"teacher.shuffle"`) derived from the run's seed:
/// SplitMix64 of the seed XOR the FNV-1a hash of the purpose, so purposes draw unrelated streams.
public func derivedSeed(_ seed: UInt64, _ purpose: String) -> UInt64 {
  var generator = SplitMixGenerator(seed: seed ^ Recipe.fnv1a64(purpose.utf8))
  return generator.next()
}
