import Checkpoints
import Energy
import Foundation
import DistillRecipes

/// The checkpoint a run resumes from, read and checked (`Trainer.prepareResume`).
public struct ResumePoint: Sendable {
  /// The checkpoint file.
  public let path: String
  public let state: TrainingState
  /// What people should know: a checkpoint skipped as unreadable (and why), temporary files
  /// removed, a recipe accepted with `--force` despite changes.
  public internal(set) var warnings: [String]

  /// Where in its epoch the phase's model stopped.
  var progress: EpochProgress {
    EpochProgress(
      batch: state.batch, lossSum: state.lossSum, samples: state.samples, steps: state.steps,
      seconds: state.epochSeconds, joules: state.epochJoules, dramJoules: state.epochDRAMJoules)
  }

  /// The phase model's last completed epoch: validation and training loss.
  var lastEpoch: (validation: Evaluation?, loss: Double) {
    let last = state.lastEpoch
    guard let accuracy = last["val_accuracy"], let loss = last["val_loss"], let count = last["val_samples"]
    else {
      return (nil, .nan)
    }
    return (Evaluation(accuracy: accuracy, loss: loss, count: Int(count)), last["train_loss"] ?? .nan)
  }

  /// The result of an earlier phase saved in the checkpoint: the teacher's (`teacher`), the
  /// student's or a finished stage's (by label).
  func savedResult(_ phase: String) throws -> ModelResult {
    let object = phase == ModelRole.teacher.rawValue ? "/state/teacher_result" : "/state/results/\(phase)"
    guard let numbers = phase == ModelRole.teacher.rawValue ? state.teacherResult : state.phaseResults[phase] else {
      throw TrainingError.checkpointMismatch(
        file: path, object: object, reason: "is missing from a checkpoint of the \(state.phase) phase")
    }
    func value(_ key: String) throws -> Double {
      guard let value = numbers[key] else {
        throw TrainingError.checkpointMismatch(file: path, object: "\(object)/\(key)", reason: "is missing")
      }
      return value
    }
    var validation: Evaluation?
    if let accuracy = numbers["val_accuracy"], let loss = numbers["val_loss"],
      let count = numbers["val_samples"]
    {
      validation = Evaluation(accuracy: accuracy, loss: loss, count: Int(count))
    }
    return ModelResult(
      role: phase == ModelRole.teacher.rawValue ? .teacher : .student,
      test: Evaluation(
        accuracy: try value("test_accuracy"), loss: try value("test_loss"),
        count: Int(try value("test_samples"))),
      lastValidation: validation, epochs: Int(try value("epochs")), seconds: try value("seconds"),
      parameterCount: Int(try value("parameters")), finalTrainLoss: try value("train_loss"),
      energy: numbers["energy_rapl"].map { rapl in
        ModelEnergy(
          source: rapl == 1 ? .rapl : .estimate, trainingJoules: numbers["energy_training_joules"] ?? 0,
          trainingDRAMJoules: numbers["energy_training_dram_joules"],
          testJoules: numbers["energy_test_joules"] ?? 0,
          inferenceMicrojoulesPerSample: numbers["energy_inference_uj_per_sample"] ?? .nan,
          inferenceSamples: Int(numbers["energy_inference_samples"] ?? 0),
          singleSampleMicrojoules: numbers["energy_inference_b1_uj_per_sample"],
          singleSamples: numbers["energy_inference_b1_samples"].map { Int($0) },
          inferenceThreads: numbers["energy_inference_threads"].map { Int($0) })
      })
  }

  /// The energy of `role`'s epochs before the checkpoint, summed from the `metrics.jsonl` lines
  /// it holds, as one window, so that the model's training joules in `summary.json` count them.
  /// The part of an epoch interrupted mid-way is not in any line, so it is not counted.
  func energySoFar(of phase: String, source: EnergySource) -> [EnergyMeasurement] {
    var (joules, dram, seconds, lines) = (0.0, 0.0, 0.0, 0)
    var dramEverywhere = true
    for line in state.metrics {
      guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        object["model"] as? String == phase
      else { continue }
      lines += 1
      joules += object["joules"] as? Double ?? 0
      seconds += object["seconds"] as? Double ?? 0
      if let d = object["dram_joules"] as? Double { dram += d } else { dramEverywhere = false }
    }
    guard lines > 0 else { return [] }
    return [
      EnergyMeasurement(
        name: "\(phase) epochs before the checkpoint", from: EnergyReading(joules: 0, dramJoules: dramEverywhere ? 0 : nil, seconds: 0),
        to: EnergyReading(joules: joules, dramJoules: dramEverywhere ? dram : nil, seconds: seconds),
        source: source)
    ]
  }

  /// A model's result as the named numbers `teacherResult()` reads.
  static func numbers(of result: ModelResult) -> [String: Double] {
    var numbers = [
      "test_accuracy": result.test.accuracy, "test_loss": result.test.loss,
      "test_samples": Double(result.test.count),
      "epochs": Double(result.epochs), "seconds": result.seconds, "parameters": Double(result.parameterCount),
      "train_loss": result.finalTrainLoss,
    ]
    if let validation = result.lastValidation {
      numbers["val_accuracy"] = validation.accuracy
      numbers["val_loss"] = validation.loss
      numbers["val_samples"] = Double(validation.count)
    }
    if let energy = result.energy {
      numbers["energy_rapl"] = energy.source == .rapl ? 1 : 0
      numbers["energy_training_joules"] = energy.trainingJoules
      numbers["energy_training_dram_joules"] = energy.trainingDRAMJoules
      numbers["energy_test_joules"] = energy.testJoules
      numbers["energy_inference_uj_per_sample"] = energy.inferenceMicrojoulesPerSample
      numbers["energy_inference_samples"] = Double(energy.inferenceSamples)
      numbers["energy_inference_b1_uj_per_sample"] = energy.singleSampleMicrojoules
      numbers["energy_inference_b1_samples"] = energy.singleSamples.map(Double.init)
      numbers["energy_inference_threads"] = energy.inferenceThreads.map(Double.init)
    }
    return numbers
  }
}

/// What `distill resume` finds in a run folder.
public enum ResumePlan {
  /// The run already finished: its `summary.json` is there.
  case finished(RunFolder)
  /// The run can go on: `trainer.resume(from: point)`.
  case resume(Trainer, ResumePoint)
}

extension Trainer {
  /// Prepares `distill resume FOLDER`: reads the folder's `recipe.yaml`, removes temporary
  /// files of interrupted writes, picks the checkpoint (`latest.h5`, or else the newest
  /// readable `epoch-NNNN.h5`, with a warning naming each unreadable file and why), and applies
  /// the run's command-line choices again (`--seed`, `--epochs`, `--data`, saved in the
  /// checkpoint; `dataPath` replaces the data location). Throws `TrainingError.notARunFolder`,
  /// `.noCheckpoint`, or `.recipeChanged` (listing the changed keys) when the recipe was edited
  /// since the checkpoint, unless `force`.
  public static func prepareResume(runFolder path: String, dataPath: String? = nil, force: Bool = false)
    throws
    -> ResumePlan
  {
    let folder = RunFolder(path: path)
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
      throw TrainingError.notARunFolder(folder: path, reason: "no such folder")
    }
    guard FileManager.default.fileExists(atPath: folder.recipePath) else {
      throw TrainingError.notARunFolder(folder: path, reason: "it has no recipe.yaml")
    }
    if FileManager.default.fileExists(atPath: folder.summaryPath) { return .finished(folder) }
    // Rank 0 alone tidies the folder (a data-parallel resume); the others only read.
    let removed = Cluster.current.rank == 0 ? folder.removeLeftoverTemporaryFiles() : []
    var point = try findCheckpoint(in: folder)
    if !removed.isEmpty {
      point.warnings.insert(
        "removed \(removed.joined(separator: ", ")), left in \(path) by an interrupted write", at: 0)
    }
    let state = point.state
    let trainer = try Trainer(
      recipe: Recipe.load(path: folder.recipePath), recipeFile: folder.recipePath,
      options: TrainingOptions(
        dataPath: dataPath ?? state.dataPath, runFolder: path, seed: state.seedOverride,
        epochs: state.epochsOverride))
    if let bucketBytes = state.bucketBytes { trainer.bucketBytes = bucketBytes }
    if trainer.recipe.canonicalHash != state.recipeHash {
      let stored = try? Recipe.parse(yaml: state.recipeJSON, file: point.path)
      let keys = stored.map { trainer.recipe.changedKeys(from: $0) } ?? []
      if let stored, stored.name != trainer.recipe.name, !force {
        throw TrainingError.checkpointOfAnotherRecipe(
          checkpoint: point.path, checkpointRecipe: stored.name, file: folder.recipePath,
          recipe: trainer.recipe.name)
      }
      if !force {
        throw TrainingError.recipeChanged(file: folder.recipePath, checkpoint: point.path, keys: keys)
      }
      point.warnings.append(
        "\(folder.recipePath) was edited since \(point.path) (changed: \(keys.joined(separator: ", "))); "
          + "continuing with the edited recipe (--force), so the results will differ from an uninterrupted run"
      )
    }
    return .resume(trainer, point)
  }

  /// `latest.h5` when it reads and is at least as far as the newest epoch file; otherwise the
  /// newest readable epoch file. Unreadable files newer than the one taken become warnings.
  static func findCheckpoint(in folder: RunFolder) throws -> ResumePoint {
    var tried: [String] = []
    let latestPath = folder.latestCheckpointPath
    var latest: TrainingState?
    if FileManager.default.fileExists(atPath: latestPath) {
      do {
        latest = try readCheckpoint(latestPath)
      } catch {
        tried.append("\(error)")
      }
    }
    let epochs = folder.epochCheckpoints().reversed()
    if let latest, latest.runEpoch >= (epochs.first?.runEpoch ?? 0) {
      return ResumePoint(path: latestPath, state: latest, warnings: [])
    }
    for (runEpoch, name) in epochs {
      if let latest, latest.runEpoch >= runEpoch {
        return ResumePoint(path: latestPath, state: latest, warnings: unreadable(tried, instead: latestPath))
      }
      let path = folder.path + "/" + name
      do {
        let state = try readCheckpoint(path)
        return ResumePoint(path: path, state: state, warnings: unreadable(tried, instead: path))
      } catch {
        tried.append("\(error)")
      }
    }
    if let latest {
      return ResumePoint(path: latestPath, state: latest, warnings: unreadable(tried, instead: latestPath))
    }
    throw TrainingError.noCheckpoint(folder: folder.path, tried: tried)
  }

  /// A checkpoint's state, after checking that its model weights are all finite (a checkpoint
  /// with NaN weights is as unusable as an unreadable one).
  private static func readCheckpoint(_ path: String) throws -> TrainingState {
    let state = try TrainingState.read(from: path)
    try requireFiniteModels(in: path)
    return state
  }

  private static func unreadable(_ errors: [String], instead path: String) -> [String] {
    errors.map { "skipped an unreadable checkpoint: \($0); resuming from \(path) instead" }
  }
}
