import Foundation
import Distill
import DistillRecipes

/// One run folder as `distill compare` sees it: the student's size and cost per sample, its
/// test accuracy, and what training and inference cost in joules.
///
/// Training joules are the sums of `metrics.jsonl`'s `joules` (the per-epoch record is the
/// source of truth); accuracy, parameters and inference energy come from `summary.json`; the
/// student's FLOPs from the architecture in `student.h5`.
public struct ComparedRun: Equatable, Sendable {
  public var folder: String
  /// The recipe's name (`summary.json` `name`).
  public var recipe: String
  /// The run's seed (`summary.json` `seed`); nil when the summary has none.
  public var seed: UInt64? = nil
  /// The data set the student was trained on (`digits`, `mnist`, `fashion-mnist`, `csv`), from
  /// the architecture attribute of `student.h5`; `?` when that cannot be read. Accuracies, and
  /// so accuracy per kJ and Pareto fronts, compare only within one data set.
  public var dataset: String = "?"
  public var method: String
  public var studentParameters: Int
  /// Forward FLOPs per sample of the student: 2·in·out per linear layer and
  /// 2·C_in·k_h·k_w·C_out·H_out·W_out per convolution (a multiply-add is two FLOPs; biases,
  /// activations, pooling and normalisation not counted: fvcore's convention, ×2).
  public var studentFLOPs: Int?
  /// Test accuracy of the student, in [0, 1], on `testSplit`.
  public var testAccuracy: Double
  public var testSplit: String
  /// Training energy of the student (all its epochs, per-epoch validation included), joules;
  /// nil when `metrics.jsonl` has no energy figures (runs from before energy measurement).
  public var studentJoules: Double?
  /// Teacher + student training energy, joules; nil as `studentJoules`. A teacher loaded with
  /// `teacher.from` was not trained by this run and adds nothing (`note` says so).
  public var totalJoules: Double?
  /// The student's inference energy per test sample, µJ.
  public var inferenceMicrojoulesPerSample: Double?
  /// `rapl`, `estimate`, or `mixed` when the run's lines disagree; nil without figures.
  public var energySource: String?
  /// Why a figure is missing, for the table's notes.
  public var note: String?
  /// The compression stage whose model this row is (`prune`, `quantize`), nil for the
  /// distilled student itself (`ComparedRun.rows(folder:)`).
  public var stage: String? = nil
  /// Joules of the run's `metrics.jsonl` lines by `model` (teacher, student, each stage).
  var joulesByModel: [String: Double] = [:]

  /// Percentage points of test accuracy per kJ of training (teacher + student):
  /// `100 · accuracy / (totalJoules / 1000)`.
  public var accuracyPerKilojoule: Double? {
    guard let total = totalJoules, total > 0 else { return nil }
    return testAccuracy * 100 / (total / 1000)
  }

  /// Whether the energy figures are estimates rather than RAPL measurements.
  public var isEstimate: Bool { energySource != "rapl" }
}

/// Why a folder cannot be compared.
public enum CompareError: Error, Equatable, CustomStringConvertible {
  /// The folder has no run: `summary.json` or `metrics.jsonl` is missing.
  case notARun(folder: String, missing: [String])
  /// A file of the run is not what `distill train` writes.
  case badFile(path: String, reason: String)
  /// No folders were given, or none of those given (`skipped`) is a finished run.
  case noRuns
  /// None of the folders given is a finished run; each entry says why.
  case nothingToCompare(skipped: [String])
  /// The same run folder was given twice (`first` and `folder` are the same folder).
  case duplicate(folder: String, first: String)

  public var description: String {
    switch self {
    case .notARun(let folder, let missing):
      return
        "\(folder): not a finished run (no \(missing.joined(separator: ", "))); give run folders that "
        + "distill train completed, e.g. checkpoints/digits-kd"
    case .badFile(let path, let reason):
      return "\(path): \(reason)"
    case .noRuns:
      return "no run folders given; e.g. distill compare checkpoints/*"
    case .nothingToCompare(let skipped):
      return "none of the \(skipped.count) paths given is a finished run: " + skipped.joined(separator: "; ")
    case .duplicate(let folder, let first):
      return "\(folder): the same run folder as \(first), given twice; give each run once"
    }
  }
}

extension ComparedRun {
  /// Why `path` is not a finished run folder to compare, or nil when it is one (a folder with
  /// `summary.json` and `metrics.jsonl`).
  public static func notARunReason(_ path: String) -> String? {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return "no such file or folder" }
    guard isFolder.boolValue else { return "a file, not a run folder" }
    let run = RunFolder(path: path)
    if !FileManager.default.fileExists(atPath: run.summaryPath) {
      return FileManager.default.fileExists(atPath: run.recipePath)
        ? "the run has not finished (no summary.json); continue it with distill resume \(path)"
        : "not a run folder (no summary.json, no recipe.yaml)"
    }
    return FileManager.default.fileExists(atPath: run.metricsPath) ? nil : "has no metrics.jsonl"
  }

  /// The rows of the run folder `folder`: the distilled student, then one per compression
  /// stage (`summary.json`'s `stages`), each with the test accuracy and inference energy of that
  /// stage's model, its parameters less those pruned, its FLOPs (from its model file's
  /// architecture), and the training joules it took to reach
  /// it: the student's and every stage's up to it (teacher included in `totalJoules`); the recipe
  /// column reads `name/label`. Throws `CompareError`.
  public static func rows(folder: String) throws -> [ComparedRun] {
    let student = try ComparedRun(folder: folder)
    let run = RunFolder(path: folder)
    let summary = try jsonObject(run.summaryPath)
    guard let stages = summary["stages"] as? [[String: Any]] else { return [student] }
    let joules = student.joulesByModel
    var rows = [student]
    var spent = 0.0
    // Weights an unstructured prune set to zero: they stay zero in later stages' models until
    // a stage builds a new network (structured pruning, low rank).
    var pruned = 0
    for (index, stage) in stages.enumerated() {
      guard let label = stage["stage"] as? String, let accuracy = (stage["test_accuracy"] as? NSNumber)?.doubleValue
      else {
        throw CompareError.badFile(path: run.summaryPath, reason: "stages[\(index)] lacks stage or test_accuracy")
      }
      spent += joules[label] ?? 0
      var row = student
      row.stage = label
      row.recipe = student.recipe + "/" + label
      row.testAccuracy = accuracy
      row.inferenceMicrojoulesPerSample = (stage["inference_uj_per_sample"] as? NSNumber)?.doubleValue
      if let zeros = (stage["pruned_weights"] as? NSNumber)?.intValue {
        pruned = zeros
      } else if stage["removed_neurons"] != nil || stage["parameters_kept"] != nil {
        pruned = 0
      }
      row.studentParameters = ((stage["parameters"] as? NSNumber)?.intValue ?? student.studentParameters) - pruned
      // The stage's own network (smaller after structured pruning or low rank).
      if let description = try? Self.description(studentFile: run.stageModelPath(label)) {
        row.studentFLOPs = try? Self.flops(description)
      }
      row.studentJoules = student.studentJoules.map { $0 + spent }
      row.totalJoules = student.totalJoules.map { $0 + spent }
      rows.append(row)
    }
    return rows
  }

  /// Reads the run folder `folder`: its distilled student (`rows(folder:)` adds the compression
  /// stages). Throws `CompareError`.
  public init(folder: String) throws {
    let run = RunFolder(path: folder)
    let missing = ["summary.json", "metrics.jsonl"].filter {
      !FileManager.default.fileExists(atPath: folder + "/" + $0)
    }
    guard missing.isEmpty else { throw CompareError.notARun(folder: folder, missing: missing) }
    let summary = try Self.jsonObject(run.summaryPath)
    guard let student = summary["student"] as? [String: Any], let name = summary["name"] as? String,
      let accuracy = (student["test_accuracy"] as? NSNumber)?.doubleValue
    else {
      throw CompareError.badFile(path: run.summaryPath, reason: "lacks name or student.test_accuracy")
    }
    let text: String
    do { text = try String(contentsOfFile: run.metricsPath, encoding: .utf8) } catch {
      throw CompareError.badFile(path: run.metricsPath, reason: "cannot read (\(error.localizedDescription))")
    }
    var joules: [String: Double] = [:]
    var sources = Set<String>()
    var missingEnergy = false
    for (index, line) in text.split(separator: "\n").enumerated() {
      guard let record = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        let model = record["model"] as? String
      else {
        throw CompareError.badFile(path: run.metricsPath, reason: "line \(index + 1) is not a metrics record")
      }
      if let value = (record["joules"] as? NSNumber)?.doubleValue,
        let source = record["energy_source"] as? String
      {
        joules[model, default: 0] += value
        sources.insert(source)
      } else {
        missingEnergy = true
      }
    }
    self.folder = folder
    self.joulesByModel = joules
    self.recipe = name
    self.seed = (summary["seed"] as? NSNumber).map { UInt64(truncating: $0) }
    self.method = summary["method"] as? String ?? "?"
    self.studentParameters = (student["parameters"] as? NSNumber)?.intValue ?? 0
    let description = try? Self.description(studentFile: run.modelPath(.student))
    self.dataset = description?.data.dataset.rawValue ?? "?"
    self.studentFLOPs = try? description.map(Self.flops)
    self.testAccuracy = accuracy
    self.testSplit = summary["test_split"] as? String ?? "test"
    self.inferenceMicrojoulesPerSample = (student["inference_uj_per_sample"] as? NSNumber)?.doubleValue
    // A student loaded with `student.init` and trained for 0 epochs (to be compressed) has no
    // lines: it cost this run nothing.
    let studentLoaded = (student["epochs"] as? NSNumber)?.intValue == 0
    if studentLoaded, !missingEnergy, joules["student"] == nil, !sources.isEmpty || joules.isEmpty {
      joules["student"] = 0
    }
    if missingEnergy || joules["student"] == nil {
      (studentJoules, totalJoules, energySource) = (nil, nil, nil)
      note = "metrics.jsonl has no joules (run before energy measurement): retrain to measure"
    } else {
      studentJoules = joules["student"]
      // The teacher's and the student's: a compression stage's lines count for its own row.
      totalJoules = (joules["teacher"] ?? 0) + joules["student"]!
      energySource = sources.count == 1 ? sources.first : sources.isEmpty ? student["energy_source"] as? String : "mixed"
      note = studentFLOPs == nil ? "student.h5 unreadable: FLOPs unknown" : nil
    }
    // A teacher loaded with `teacher.from` was trained elsewhere: say so rather than let the
    // row look cheaper than a run that trained its own.
    if let teacher = summary["teacher"] as? [String: Any], (teacher["epochs"] as? NSNumber)?.intValue == 0 {
      let loaded =
        "teacher loaded from a file (teacher.from): its training energy is not in teacher + student; "
        + "add the joules of the run that trained it"
      note = note.map { "\($0); \(loaded)" } ?? loaded
    }
    if studentLoaded {
      let loaded = "student loaded from a file (student.init, 0 epochs): its training energy is not counted"
      note = note.map { "\($0); \(loaded)" } ?? loaded
    }
  }

  private static func jsonObject(_ path: String) throws -> [String: Any] {
    guard let data = FileManager.default.contents(atPath: path),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { throw CompareError.badFile(path: path, reason: "is not a JSON object") }
    return object
  }

  /// What the architecture attribute of `studentFile` says about the student.
  static func description(studentFile: String) throws -> ModelDescription {
    guard let description = try ModelDescription.stored(in: studentFile, preferring: .student) else {
      throw CompareError.badFile(path: studentFile, reason: "has no architecture attribute")
    }
    return description
  }

  /// Forward FLOPs per sample of the model `description` describes (see `studentFLOPs`).
  static func flops(_ description: ModelDescription) throws -> Int {
    let builder = ModelBuilder(file: "student.h5", keyPath: "architecture")
    let layers = description.model.expandedLayers(classCount: description.classes)
    let shapes = try builder.outputShapes(
      of: description.model, inputShape: description.inputShape, classCount: description.classes)
    var input = description.inputShape
    var total = 0
    for (layer, output) in zip(layers, shapes) {
      switch layer {
      case .linear(let spec):
        // A factorised layer (`rank`) multiplies by A [rank, in], then by B [out, rank].
        let features = input.reduce(1, *)
        total += spec.rank.map { 2 * features * $0 + 2 * $0 * spec.out } ?? 2 * features * spec.out
      case .conv2d(let spec): total += 2 * input[0] * spec.kernel * spec.kernel * output.reduce(1, *)
      default: break
      }
      input = output
    }
    return total
  }
}
