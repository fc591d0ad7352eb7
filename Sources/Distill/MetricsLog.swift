import Foundation
import DistillRecipes

/// One epoch of one model, as a line of `metrics.jsonl`. The fields are docs/DESIGN.md's
/// ("metrics.jsonl") plus `val_loss`, `learning_rate`, `seed` and `val_split`:
///
/// | field | meaning |
/// | --- | --- |
/// | `model` | `teacher`, `student`, or a compression stage's label (`prune`, `prune-2`) |
/// | `epoch` | 1-based |
/// | `train_loss` | mean training loss over the epoch's samples (dropout on, augmented) |
/// | `val_accuracy`, `val_loss` | evaluated after the epoch, in evaluation mode |
/// | `val_split` | `validation`, or `test` when nothing was held out of the training file |
/// | `seconds` | wall time of the epoch: training and evaluation (the energy windows' length) |
/// | `joules` | energy of the epoch, training and evaluation, DRAM excluded (`Energy`) |
/// | `energy_source` | `rapl` (measured) or `estimate` (CPU time × watts per core) |
/// | `avg_watts` | `joules / seconds` |
/// | `eval_joules` | the evaluation's part of `joules` |
/// | `dram_joules` | DRAM energy over the epoch (RAPL with a DRAM zone), else null |
/// | `samples` | training samples processed in the epoch |
/// | `precision` | `f32` or `f16-mixed` |
/// | `learning_rate` | the epoch's learning rate |
/// | `seed` | the run's seed |
/// | `loss_scale` | f16-mixed: the dynamic loss scale after the epoch; null in f32 |
/// | `skipped_steps` | f16-mixed: optimizer steps skipped for inf/NaN gradients since the model's training began; null in f32 |
/// | `ranks`, `hosts` | the processes that trained the epoch (data-parallel under `mpirun`; 1 and 1 otherwise) and the machines they ran on |
/// | `allreduce_seconds` | data-parallel: rank 0's seconds summing gradients outside backward (waits for slower ranks included); null on one process |
/// | stage figures | a stage's epochs only: `sparsity`, `pruned_weights` (pruning) |
public struct EpochRecord: Equatable, Sendable {
  public var model: ModelRole
  /// A compression stage's label (`prune`) for its fine-tuning epochs, written as `model`;
  /// nil for the teacher's and the student's own epochs.
  public var stage: String? = nil
  /// A stage's figures after the epoch (`sparsity`), written after the table's fields, by name.
  public var figures: [String: Double] = [:]
  public var epoch: Int
  public var epochs: Int
  public var trainLoss: Double
  public var validation: Evaluation
  public var validationSplit: String
  public var seconds: Double
  public var joules: Double?
  public var energySource: String?
  public var samples: Int
  public var precision: String
  public var learningRate: Double
  public var seed: UInt64
  /// f16-mixed: the loss scale after the epoch.
  public var lossScale: Double? = nil
  /// f16-mixed: optimizer steps skipped for inf/NaN gradients so far.
  public var skippedSteps: Int? = nil
  /// The evaluation's part of `joules`.
  public var evalJoules: Double? = nil
  /// DRAM energy of the epoch, where the meter has a DRAM counter.
  public var dramJoules: Double? = nil
  /// The data-parallel ranks that trained the epoch, and the hosts they ran on.
  public var ranks = 1
  public var hosts = 1
  /// Data-parallel: rank 0's seconds summing gradients outside backward.
  public var allreduceSeconds: Double? = nil

  /// `joules / seconds`; nil without joules.
  public var averageWatts: Double? { joules.map { seconds > 0 ? $0 / seconds : 0 } }

  /// The record as one line of JSON, fields in the order of the table above.
  public var jsonLine: String {
    let stageFigures = figures.sorted { $0.key < $1.key }.map { ($0.key, JSONObject.Value.number($0.value)) }
    let fields: [(String, JSONObject.Value)] = [
      ("model", .string(stage ?? model.rawValue)), ("epoch", .int(epoch)), ("train_loss", .number(trainLoss)),
      ("val_accuracy", .number(validation.accuracy)), ("val_loss", .number(validation.loss)),
      ("val_split", .string(validationSplit)), ("seconds", .number(seconds)),
      ("joules", joules.map(JSONObject.Value.number) ?? .null),
      ("energy_source", energySource.map(JSONObject.Value.string) ?? .null),
      ("avg_watts", averageWatts.map(JSONObject.Value.number) ?? .null),
      ("eval_joules", evalJoules.map(JSONObject.Value.number) ?? .null),
      ("dram_joules", dramJoules.map(JSONObject.Value.number) ?? .null), ("samples", .int(samples)),
      ("precision", .string(precision)), ("learning_rate", .number(learningRate)),
      ("seed", .int(Int(truncatingIfNeeded: seed))),
      ("loss_scale", lossScale.map(JSONObject.Value.number) ?? .null),
      ("skipped_steps", skippedSteps.map(JSONObject.Value.int) ?? .null),
      ("ranks", .int(ranks)), ("hosts", .int(hosts)),
      ("allreduce_seconds", allreduceSeconds.map(JSONObject.Value.number) ?? .null),
    ]
    return JSONObject(fields + stageFigures).text
  }
}

/// A run folder (`checkpoints/<name>/`, docs/DESIGN.md → "Run folder"): the recipe's copy, one
/// `metrics.jsonl` line per epoch, `summary.json` at the end, and the weights.
///
/// A folder that already holds results (`metrics.jsonl`, `summary.json`, weights) is never
/// written over silently: `prepare` refuses unless `force`, and with `force` removes only those
/// files of ours, nothing else.
public struct RunFolder: Sendable {
  /// The folder's path.
  public let path: String

  /// The files a run writes; their presence means the folder holds a run.
  static let resultFiles = [
    "metrics.jsonl", "summary.json", "teacher.h5", "student.h5", "latest.h5",
  ]

  public init(path: String) { self.path = path }

  public var metricsPath: String { path + "/metrics.jsonl" }
  public var summaryPath: String { path + "/summary.json" }
  public var recipePath: String { path + "/recipe.yaml" }
  /// The model file of `role`: `teacher.h5` or `student.h5` (see `ModelDescription`).
  public func modelPath(_ role: ModelRole) -> String { path + "/\(role.rawValue).h5" }

  /// The result files present in the folder, by name.
  public func existingResults() -> [String] {
    Self.resultFiles.filter { FileManager.default.fileExists(atPath: path + "/" + $0) }
  }

  /// Throws `TrainingError.runFolderExists` when the folder holds results and `force` is off
  /// (saying whether the run there finished or can be resumed).
  public func checkWritable(force: Bool) throws {
    let found = existingResults()
    if !found.isEmpty && !force {
      let resumable =
        !found.contains("summary.json") && FileManager.default.fileExists(atPath: recipePath)
        && (found.contains("latest.h5") || !epochCheckpoints().isEmpty)
      throw TrainingError.runFolderExists(folder: path, found: found, resumable: resumable)
    }
  }

  /// Writes the recipe's copy (`notes` as YAML comments, then `recipeText` unchanged) and an empty
  /// `metrics.jsonl` into the folder, whose lock the caller holds. With `force` (after
  /// `checkWritable`) a folder holding an earlier run is first replaced by an empty one
  /// (`RunFolderLock.replaceWithEmptyFolder`): the old run's files, its epoch checkpoints
  /// included, are all gone before anything new is written.
  public func prepare(recipeText: String, notes: [String], force: Bool, lock: RunFolderLock) throws {
    try checkWritable(force: force)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    if force && names.contains(where: { Self.isRunFile($0) && $0 != RunFolderLock.fileName }) {
      try lock.replaceWithEmptyFolder()
    }
    do {
      // The notes go first, as comments: appended, they would need a newline after the text,
      // which changes a recipe that ends in a `|+` block without one (and so its hash).
      let text = notes.map { "# distill train: \($0)\n" }.joined() + recipeText
      try text.write(toFile: recipePath, atomically: true, encoding: .utf8)
    } catch {
      throw TrainingError.cannotWrite(path: path, reason: "\(error.localizedDescription)")
    }
    guard FileManager.default.createFile(atPath: metricsPath, contents: nil) else {
      throw TrainingError.cannotWrite(path: metricsPath, reason: "cannot create the file")
    }
  }

  /// Replaces `metrics.jsonl` with `lines` (a checkpoint's copy, on resume), atomically, and
  /// removes a `summary.json` of an earlier end.
  public func restoreMetrics(_ lines: [String]) throws {
    do {
      try lines.map { $0 + "\n" }.joined().write(toFile: metricsPath, atomically: true, encoding: .utf8)
      if FileManager.default.fileExists(atPath: summaryPath) { try FileManager.default.removeItem(atPath: summaryPath) }
    } catch {
      throw TrainingError.cannotWrite(path: metricsPath, reason: "\(error.localizedDescription)")
    }
  }

  /// Appends one line to `metrics.jsonl`.
  public func append(_ record: EpochRecord) throws {
    try append(line: record.jsonLine, to: metricsPath)
  }

  /// Writes `summary.json`.
  public func writeSummary(_ summary: RunSummary) throws {
    do {
      try (summary.json + "\n").write(toFile: summaryPath, atomically: true, encoding: .utf8)
    } catch {
      throw TrainingError.cannotWrite(path: summaryPath, reason: "\(error.localizedDescription)")
    }
  }

  private func append(line: String, to file: String) throws {
    guard let handle = FileHandle(forWritingAtPath: file) else {
      throw TrainingError.cannotWrite(path: file, reason: "cannot open for appending")
    }
    defer { try? handle.close() }
    do {
      try handle.seekToEnd()
      try handle.write(contentsOf: Data((line + "\n").utf8))
    } catch {
      throw TrainingError.cannotWrite(path: file, reason: "\(error.localizedDescription)")
    }
  }
}

/// A JSON object whose members keep the order they were given in (for files people read).
/// Non-finite numbers are written as `null`, which JSON requires.
struct JSONObject {
  enum Value {
    case string(String)
    case int(Int)
    case number(Double)
    case bool(Bool)
    case null
    /// JSON text written as it is: a nested object or a list, each rendered with `text`.
    case raw(String)
  }

  var members: [(String, Value)]

  init(_ members: [(String, Value)]) { self.members = members }

  var text: String {
    var out = "{"
    for (i, (key, value)) in members.enumerated() {
      if i > 0 { out += ", " }
      out += Self.quoted(key) + ": " + Self.render(value)
    }
    return out + "}"
  }

  static func render(_ value: Value) -> String {
    switch value {
    case .string(let s): return quoted(s)
    case .int(let n): return String(n)
    case .number(let x): return x.isFinite ? "\(x)" : "null"
    case .bool(let b): return b ? "true" : "false"
    case .null: return "null"
    case .raw(let json): return json
    }
  }

  static func quoted(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }
}
