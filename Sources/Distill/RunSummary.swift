/// How one model of a run ended: its test figures (from the last epoch's weights, never a
/// best epoch chosen on test) and what training it took.
import DistillRecipes

public struct ModelResult: Equatable, Sendable {
  public var role: ModelRole
  /// Evaluated once after the last epoch, on `RunSummary.testSplit`.
  public var test: Evaluation
  /// The last epoch's per-epoch evaluation.
  public var lastValidation: Evaluation?
  public var epochs: Int
  /// Wall time of training and per-epoch evaluation.
  public var seconds: Double
  public var parameterCount: Int
  /// The last epoch's mean training loss.
  public var finalTrainLoss: Double
  /// Training, test and inference energy; nil where nothing was measured.
  public var energy: ModelEnergy? = nil
}

/// The outcome of a run, written to the run folder as `summary.json`.
public struct RunSummary: Equatable, Sendable {
  public var name: String
  public var seed: UInt64
  /// `Recipe.canonicalHash` of the recipe as run (with command-line overrides applied).
  public var recipeHash: String
  public var runFolder: String
  /// Where the test figures come from: `test`, or `validation` for a data set without a test
  /// split of its own (digits, csv), whose held-out split serves as the test split.
  public var testSplit: String
  /// The distillation methods the student was trained with (`DistillationSpec.label`: `none`,
  /// `kd`, `kd+at`).
  public var method: String
  public var teacher: ModelResult?
  public var student: ModelResult
  /// Wall time of the whole run, data loading included.
  public var seconds: Double
  /// Command-line overrides of the recipe (`seed: 2 (--seed)`).
  public var overrides: [String]
  /// The energy meter (`EnergyMeter.summary`).
  public var energyMeter: String? = nil
  /// Why the meter is the estimate when `auto` fell back to it.
  public var energyWarning: String? = nil
  /// The compression stages' results, in order (empty without `compress:`).
  public var stages: [StageResult] = []
  /// The model file that is the run's result: `student.h5`, the last stage's, or the one before
  /// a stage that lost more accuracy than its `max_accuracy_drop`.
  public var result = "student.h5"
  /// Why the stages stopped early (`TrainingError.stageLostAccuracy`'s message); nil otherwise.
  public var stopped: String? = nil
  /// The machine and software the run ended on; nil in summaries read back from older runs.
  public var environment: RunEnvironment? = nil
  /// The data-parallel ranks the run trained on (1 without `mpirun`), and their hosts.
  public var ranks = 1
  public var hosts = 1

  /// `summary.json`'s text.
  public var json: String {
    var members: [(String, JSONObject.Value)] = [
      ("name", .string(name)), ("seed", .int(Int(truncatingIfNeeded: seed))),
      ("recipe_hash", .string(recipeHash)),
      ("test_split", .string(testSplit)), ("method", .string(method)),
      ("teacher", teacher.map { .raw(Self.model($0).text) } ?? .null), ("student", .raw(Self.model(student).text)),
      ("seconds", .number(seconds)),
      ("overrides", .string(overrides.joined(separator: "; "))),
      ("energy_meter", energyMeter.map { .string($0) } ?? .null),
      ("energy_warning", energyWarning.map { .string($0) } ?? .null),
      ("environment", environment.map { .raw($0.json.text) } ?? .null),
      ("ranks", .int(ranks)), ("hosts", .int(hosts)),
    ]
    // Written only for runs with stages, so that other summaries keep their fields.
    if !stages.isEmpty {
      members += [
        ("stages", .raw("[" + stages.map { Self.stage($0).text }.joined(separator: ", ") + "]")),
        ("result", .string(result)),
        ("stopped", stopped.map { .string($0) } ?? .null),
      ]
    }
    return JSONObject(members).text
  }

  /// One model's object in `summary.json`.
  private static func model(_ result: ModelResult) -> JSONObject {
    let energy = result.energy
    var members: [(String, JSONObject.Value)] = [
      ("test_accuracy", .number(result.test.accuracy)), ("test_loss", .number(result.test.loss)),
      ("test_samples", .int(result.test.count)),
      ("val_accuracy", result.lastValidation.map { .number($0.accuracy) } ?? .null),
      ("train_loss", .number(result.finalTrainLoss)), ("epochs", .int(result.epochs)),
      ("seconds", .number(result.seconds)),
    ]
    members += [
      ("joules", energy.map { .number($0.trainingJoules) } ?? .null),
      ("energy_source", energy.map { .string($0.source.rawValue) } ?? .null),
      ("dram_joules", energy?.trainingDRAMJoules.map { .number($0) } ?? .null),
      ("test_joules", energy.map { .number($0.testJoules) } ?? .null),
      ("inference_uj_per_sample", energy.map { .number($0.inferenceMicrojoulesPerSample) } ?? .null),
      ("inference_samples", energy.map { .int($0.inferenceSamples) } ?? .null),
    ]
    members += [
      ("inference_b1_uj_per_sample", energy?.singleSampleMicrojoules.map { .number($0) } ?? .null),
      ("inference_b1_samples", energy?.singleSamples.map { .int($0) } ?? .null),
      ("inference_threads", energy?.inferenceThreads.map { .int($0) } ?? .null),
      ("parameters", .int(result.parameterCount)),
    ]
    return JSONObject(members)
  }

  /// A compression stage's object: its label and model file, the model's fields, its figures.
  private static func stage(_ stage: StageResult) -> JSONObject {
    var object = model(stage.result)
    object.members.insert(contentsOf: [("stage", .string(stage.label)), ("model_file", .string(stage.modelFile))], at: 0)
    object.members += stage.figures.sorted { $0.key < $1.key }.map { ($0.key, .number($0.value)) }
    return object
  }
}
