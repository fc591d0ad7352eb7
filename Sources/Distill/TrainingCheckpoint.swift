import Autodiff
import Checkpoints
import Foundation
import NN
import DistillRecipes

// Training checkpoints of a run folder: written after every epoch (`epoch-NNNN.h5`, with
// `latest.h5` a second name of the newest) and on a stop request mid-epoch (`latest.h5`
// only). Layout: Sources/Checkpoints/README.md ("Training checkpoints").

extension RunFolder {
  /// `latest.h5`: the newest checkpoint.
  public var latestCheckpointPath: String { path + "/latest.h5" }

  /// `epoch-NNNN.h5`: the checkpoint after the run's `runEpoch`-th epoch (teacher epochs first,
  /// then the student's).
  public func epochCheckpointPath(_ runEpoch: Int) -> String {
    path + "/" + String(format: "epoch-%04d.h5", runEpoch)
  }

  /// The epoch checkpoints in the folder as (run epoch, file name), oldest first.
  public func epochCheckpoints() -> [(runEpoch: Int, name: String)] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    return names.compactMap { name -> (Int, String)? in
      guard name.hasPrefix("epoch-"), name.hasSuffix(".h5"),
        let number = Int(name.dropFirst(6).dropLast(3)), number >= 0
      else { return nil }
      return (number, name)
    }.sorted { $0.0 < $1.0 }
  }

  /// Removes all but the newest `keep` epoch checkpoints (`checkpoint.keep_last`); `latest.h5`
  /// stays. Returns the names removed.
  @discardableResult
  public func pruneEpochCheckpoints(keep: Int) -> [String] {
    let all = epochCheckpoints()
    let removed = all.dropLast(max(keep, 0)).map(\.name)
    for name in removed { try? FileManager.default.removeItem(atPath: path + "/" + name) }
    return removed
  }

  /// Removes the temporary files that interrupted atomic writes left behind
  /// (`.<name>.tmp-<pid>-<hex>`, see `HDF5File.writeAtomically`), except those of a process
  /// that is still running (another run writing into this folder). Returns the names removed.
  @discardableResult
  public func removeLeftoverTemporaryFiles() -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    var removed: [String] = []
    for name in names where name.hasPrefix(".") {
      guard let marker = name.range(of: ".tmp-", options: .backwards) else { continue }
      let parts = name[marker.upperBound...].split(separator: "-")
      guard parts.count == 2, let pid = Int32(parts[0]), UInt32(parts[1], radix: 16) != nil else { continue }
      if pid != getpid() && kill(pid, 0) == 0 { continue }  // still being written by a live process
      if (try? FileManager.default.removeItem(atPath: path + "/" + name)) != nil { removed.append(name) }
    }
    return removed.sorted()
  }
}

/// Writes a run's checkpoints: knows what the trainer knows beyond one `ModelTraining` (the
/// teacher during the student's phase, the metrics so far, the teacher's result).
final class RunCheckpoints {
  private let trainer: Trainer
  private let data: TrainingData
  private let runStarted: Date
  private let teacher: (model: Sequential, spec: ModelSpec)?
  /// The run epoch before each phase's first (`teacher` 0, `student` the teacher's epochs,
  /// 0 when it is loaded; a stage, all epochs before it): the run epoch of the phase's epoch e is
  /// the phase's offset + e.
  private let epochOffsets: [String: Int]
  /// The lines of `metrics.jsonl` so far.
  private(set) var metrics: [String]
  /// Set when the teacher's phase ends; saved in the student's checkpoints.
  var teacherResult: ModelResult?
  /// The student's and each finished stage's result, by phase, set as each ends; saved in the
  /// checkpoints of the stages after them.
  var phaseResults: [String: [String: Double]] = [:]
  /// The student's layer list once a compression stage changed it (`low_rank`, structured
  /// pruning): the architecture the student's checkpoints record; nil for the recipe's.
  var studentLayers: [LayerSpec]?
  /// Wall time of the last write, for reports.
  private(set) var lastWriteSeconds = 0.0

  init(
    trainer: Trainer, data: TrainingData, started: Date, metrics: [String],
    teacher: (model: Sequential, spec: ModelSpec)?, epochOffsets: [String: Int]
  ) {
    self.trainer = trainer
    self.data = data
    self.runStarted = started
    self.metrics = metrics
    self.teacher = teacher
    self.epochOffsets = epochOffsets
  }

  /// Notes an epoch's `metrics.jsonl` line.
  func record(_ record: EpochRecord) { metrics.append(record.jsonLine) }

  /// Writes the state of `training` after `epoch` complete epochs and `progress` into the next:
  /// at an epoch's end `epoch-NNNN.h5` and `latest.h5` (a hard link to it, or a second write
  /// where the file system has none), then prunes to `checkpoint.keep_last`; mid-epoch
  /// `latest.h5` alone. `last` is the last completed epoch's validation and training loss.
  func save(
    _ training: ModelTraining, epoch: Int, progress: EpochProgress, modelStarted: Date,
    last: (validation: Evaluation?, loss: Double)
  ) throws {
    // Rank 0 alone writes; every rank holds the same state (`Collectives`).
    guard trainer.collectives.rank == 0 else { return }
    let begun = Date()
    let recipe = trainer.recipe
    let runEpoch = (epochOffsets[training.phase] ?? 0) + epoch
    var state = TrainingState(
      phase: training.phase, epoch: epoch, batch: progress.batch, globalStep: training.globalStep,
      runEpoch: runEpoch, optimizerName: training.optimizerName, recipeHash: recipe.canonicalHash,
      recipeJSON: recipe.canonicalJSON, blasThreads: BLAS.threadCount)
    (state.lossSum, state.samples, state.steps) = (progress.lossSum, progress.samples, progress.steps)
    (state.epochSeconds, state.epochJoules, state.epochDRAMJoules) = (
      progress.seconds, progress.joules, progress.dramJoules
    )
    state.modelSeconds = begun.timeIntervalSince(modelStarted)
    state.runSeconds = begun.timeIntervalSince(runStarted)
    training.capture(into: &state)
    state.metrics = metrics
    if let validation = last.validation {
      state.lastEpoch = [
        "train_loss": last.loss, "val_accuracy": validation.accuracy, "val_loss": validation.loss,
        "val_samples": Double(validation.count),
      ]
    }
    if training.role == .student { state.teacherResult = teacherResult.map(ResumePoint.numbers(of:)) }
    if training.stage != nil { state.phaseResults = phaseResults }
    state.seedOverride = trainer.options.seed
    state.epochsOverride = trainer.options.epochs
    state.dataPath = trainer.absoluteDataPath
    state.ranks = trainer.collectives.size
    if state.ranks > 1 { state.bucketBytes = trainer.bucketBytes }

    var models: [(group: String, model: any Layer, architecture: String?)] = []
    if let teacher {
      let description = trainer.modelDescription(role: .teacher, spec: teacher.spec, data: data)
      models.append((ModelRole.teacher.rawValue, teacher.model, description.json))
    }
    if training.role == .student {
      let description = trainer.modelDescription(
        role: .student, spec: studentLayers.map { .layers($0) } ?? recipe.student.model, data: data)
      models.append((ModelRole.student.rawValue, training.model, description.json))
    }
    let folder = trainer.runFolder
    let latest = folder.latestCheckpointPath
    if progress.batch == 0 {
      let path = folder.epochCheckpointPath(runEpoch)
      try writeTrainingCheckpoint(state, models: models, to: path)
      do {
        try HDF5File.linkAtomically(path, to: latest)
      } catch {
        try writeTrainingCheckpoint(state, models: models, to: latest)
      }
      folder.pruneEpochCheckpoints(keep: recipe.checkpoint.keepLast ?? CheckpointSpec.defaultKeepLast)
    } else {
      try writeTrainingCheckpoint(state, models: models, to: latest)
    }
    lastWriteSeconds = Date().timeIntervalSince(begun)
  }
}
