import Checkpoints
import Distill
import DistillRecipes
import Energy
import Foundation
import NN

/// `distill label RUN_DIR…`: an energy label for the model a recipe produces, from its run
/// folders (the seeds of one recipe): accuracy over the seeds, inference and training energy,
/// size, the grid's CO₂e, the machine, and a grade A–G against a reference set of models
/// measured on this machine beside the model (`grade`). `json` is `label.json`, `svg` the label.
public struct EnergyLabel: Sendable {
  /// One model of the reference set and its measured inference energy.
  public struct Reference: Sendable {
    public var name: String
    public var microjoules: Double
  }

  /// The world's average carbon intensity of electricity generation in 2023, g CO₂e per kWh
  /// (lifecycle emissions): Ember, Global Electricity Review 2024.
  public static let defaultGridIntensity = 480.0
  public static let defaultGridSource = "Ember, Global Electricity Review 2024: world average 2023 (lifecycle)"

  public var recipe: String
  public var runs: [String]
  public var seeds: [UInt64]
  public var dataset: String
  public var testSplit: String
  public var inputShape: [Int]
  public var classes: Int
  /// The run's result model file (`student.h5`, `student-quantize.h5`) and each seed's model hash.
  public var modelFile: String
  public var modelHashes: [String]
  public var accuracy: (mean: Double, std: Double?)
  /// µJ per sample at batch 1024 and at batch 1 (means over the seeds), and the threads.
  public var inferenceMicrojoules: Double?
  public var singleSampleMicrojoules: Double?
  public var threads: Int?
  /// Mean training kJ per phase: teacher, student, each stage, in run order.
  public var training: [(phase: String, kilojoules: Double)]
  public var parameters: Int
  public var bytes: Int
  public var sparsity: Double?
  public var precision: String
  public var megaflops: Double?
  public var gridIntensity: Double
  public var gridSource: String
  public var energySource: String
  public var cpu: String
  public var cores: Int?
  public var software: [String: String]
  public var date: String
  /// The grade and how it was found.
  public var grade: Character
  public var gradedMicrojoules: Double
  public var references: [Reference]

  /// Grams CO₂e of the training (all phases, mean over the seeds) at `gridIntensity`.
  public var trainingGrams: Double { training.reduce(0) { $0 + $1.kilojoules } / 3600 * gridIntensity }
  /// Grams CO₂e of a million inferences at batch 1024.
  public var gramsPerMillionInferences: Double? { inferenceMicrojoules.map { $0 / 3.6e6 * gridIntensity } }

  /// The grade of inference energy `x` (µJ per sample) against a reference set measured with
  /// it: with lo and hi the reference set's least and greatest, t = log(x/lo) / log(hi/lo);
  /// A when x < lo, B–F for t in [0, 0.2), [0.2, 0.4), [0.4, 0.6), [0.6, 0.8), [0.8, 1], G when
  /// x > hi.
  public static func grade(_ x: Double, references: [Double]) -> Character {
    guard let lo = references.min(), let hi = references.max(), lo > 0, hi > lo else { return "?" }
    if x < lo { return "A" }
    if x > hi { return "G" }
    let t = log(x / lo) / log(hi / lo)
    return Array("BCDEF")[min(4, Int(t * 5))]
  }

  /// The reference set for a model of `inputShape` and `classes`: MLPs of 64, 256, 800-800 and
  /// 1200-1200 hidden units, and for images two CNNs (16-32 channels with a 64-unit layer, 32-64
  /// with 128, batch norm), Float, built with seed 0.
  public static func referenceModels(inputShape: [Int], classes: Int) throws -> [(String, Sequential)] {
    var specs: [(String, ModelSpec)] = [
      ("mlp 64", .mlp(MLPSpec(hidden: [64]))), ("mlp 256", .mlp(MLPSpec(hidden: [256]))),
      ("mlp 800-800", .mlp(MLPSpec(hidden: [800, 800]))), ("mlp 1200-1200", .mlp(MLPSpec(hidden: [1200, 1200]))),
    ]
    if inputShape.count == 3, inputShape[1] >= 8, inputShape[2] >= 8 {
      specs += [
        ("cnn 16-32", .cnn(CNNSpec(channels: [16, 32], hidden: [64], batchNorm: true))),
        ("cnn 32-64", .cnn(CNNSpec(channels: [32, 64], hidden: [128], batchNorm: true))),
      ]
    }
    let builder = ModelBuilder(file: "label reference", keyPath: "model")
    return try specs.map { ($0.0, try builder.build($0.1, inputShape: inputShape, classCount: classes, seed: 0)) }
  }

  /// Reads the runs (finished run folders of one recipe, one per seed) and measures the grade
  /// with `meter`. Throws `CompareError` for folders that are not finished runs or are not
  /// seeds of one recipe.
  public init(runs folders: [String], gridIntensity: Double? = nil, meter: any EnergyMeter) throws {
    guard !folders.isEmpty else { throw CompareError.noRuns }
    var summaries: [[String: Any]] = []
    for folder in folders {
      if let reason = ComparedRun.notARunReason(folder) { throw CompareError.badFile(path: folder, reason: reason) }
      let path = RunFolder(path: folder).summaryPath
      guard let data = FileManager.default.contents(atPath: path),
        let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["student"] is [String: Any]
      else { throw CompareError.badFile(path: path, reason: "is not a run's summary.json") }
      summaries.append(object)
    }
    let names = Set(summaries.map { $0["name"] as? String ?? "?" })
    let results = Set(summaries.map { $0["result"] as? String ?? "student.h5" })
    guard names.count == 1, results.count == 1 else {
      throw CompareError.badFile(
        path: folders.joined(separator: ", "),
        reason: "a label describes one recipe's model: give the seeds of one recipe (found recipes "
          + "\(names.sorted().joined(separator: ", ")) and models \(results.sorted().joined(separator: ", ")))")
    }
    recipe = names.first!
    runs = folders
    seeds = summaries.map { ($0["seed"] as? NSNumber).map { UInt64(truncating: $0) } ?? 0 }
    testSplit = summaries[0]["test_split"] as? String ?? "test"
    let result = results.first!
    modelFile = result
    // The model's figures: the last stage's object when the run has stages, else the student's.
    let models: [[String: Any]] = summaries.map { summary in
      (summary["stages"] as? [[String: Any]])?.last(where: { $0["model_file"] as? String == result })
        ?? summary["student"] as! [String: Any]
    }
    func numbers(_ key: String) -> [Double] { models.compactMap { ($0[key] as? NSNumber)?.doubleValue } }
    func mean(_ values: [Double]) -> Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }
    accuracy = meanAndStd(numbers("test_accuracy"))
    inferenceMicrojoules = mean(numbers("inference_uj_per_sample"))
    singleSampleMicrojoules = mean(numbers("inference_b1_uj_per_sample"))
    threads = numbers("inference_threads").first.map { Int($0) }
    let pruned = mean(numbers("pruned_weights")) ?? 0
    parameters = Int(((mean(numbers("parameters")) ?? 0) - pruned).rounded())
    sparsity = mean(numbers("sparsity"))
    // Training kJ per phase, from each run's metrics.jsonl, averaged over the seeds.
    var phases: [String] = []
    var totals: [String: Double] = [:]
    for folder in folders {
      let text = (try? String(contentsOfFile: RunFolder(path: folder).metricsPath, encoding: .utf8)) ?? ""
      for line in text.split(separator: "\n") {
        guard let record = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
          let model = record["model"] as? String, let joules = (record["joules"] as? NSNumber)?.doubleValue
        else { continue }
        if totals[model] == nil { phases.append(model) }
        totals[model, default: 0] += joules
      }
    }
    training = phases.map { ($0, totals[$0]! / Double(folders.count) / 1000) }
    energySource = Set(models.compactMap { $0["energy_source"] as? String }).count == 1
      ? models[0]["energy_source"] as? String ?? "estimate" : "mixed"
    let environment = summaries[0]["environment"] as? [String: Any]
    cpu = environment?["cpu"] as? String ?? "unknown (run before environments were recorded)"
    cores = (environment?["cores"] as? NSNumber)?.intValue
    software = environment?["software"] as? [String: String] ?? [:]
    date = environment?["finished"] as? String ?? "unknown"
    self.gridIntensity = gridIntensity ?? Self.defaultGridIntensity
    gridSource = gridIntensity == nil ? Self.defaultGridSource : "given with --grid-intensity"
    // The model files: hashes, size, architecture and the model to grade.
    var hashes: [String] = []
    for folder in folders { hashes.append(try Self.modelHash(folder + "/" + result)) }
    modelHashes = hashes
    let first = folders[0] + "/" + result
    bytes = ((try? FileManager.default.attributesOfItem(atPath: first))?[.size] as? Int) ?? 0
    let (model, description) = try loadModelFile(first)
    dataset = description.data.dataset.rawValue
    inputShape = description.inputShape
    classes = description.classes
    megaflops = (try? ComparedRun.flops(description)).map { Double($0) / 1e6 }
    let quantized = (try? isQuantizedModel(group: ModelRole.student.rawValue, in: first)) ?? false
    precision = quantized ? "int8 linear layers, float32 others" : Self.storedPrecision(first)
    // The grade: the model and its reference set measured side by side, now, on this machine.
    let references = try Self.referenceModels(inputShape: inputShape, classes: classes)
    let measured = pairedInferenceMicrojoules([model] + references.map(\.1), inputShape: inputShape, meter: meter)
    gradedMicrojoules = measured[0]
    self.references = zip(references, measured.dropFirst()).map { Reference(name: $0.0.0, microjoules: $0.1) }
    grade = Self.grade(measured[0], references: Array(measured.dropFirst()))
  }

  /// `float16` when the model group's first weight is stored as binary16 (an f16-mixed run's
  /// model file), else `float32`.
  static func storedPrecision(_ path: String) -> String {
    guard let group = try? HDF5File.openReadOnly(path).group(ModelRole.student.rawValue),
      let name = (try? group.memberNames())?.first(where: { $0.hasSuffix(".weight") }),
      let type = try? group.dataset(name).elementType
    else { return "float32" }
    if case .float(2) = type { return "float16" }
    return "float32"
  }

  /// FNV-1a 64 over the model group's datasets, in name order: each name, shape and values (as
  /// stored: float32 bits, or int8 bytes widened), so equal weights hash equally whatever
  /// HDF5's timestamps; `fnv1a64:<16 hex digits>`.
  static func modelHash(_ path: String) throws -> String {
    var bytes: [UInt8] = []
    func mix<S: Sequence>(_ more: S) where S.Element == UInt8 { bytes.append(contentsOf: more) }
    do {
      let group = try HDF5File.openReadOnly(path).group(ModelRole.student.rawValue)
      for name in try group.memberNames().sorted() {
        let dataset = try group.dataset(name)
        mix(name.utf8)
        mix(dataset.shape.description.utf8)
        if case .integer = dataset.elementType {
          for value in try dataset.readIntegers() { withUnsafeBytes(of: value.littleEndian) { mix($0) } }
        } else {
          for value in try dataset.readFloats() { withUnsafeBytes(of: value.bitPattern.littleEndian) { mix($0) } }
        }
      }
    } catch {
      throw CompareError.badFile(path: path, reason: "\(error)")
    }
    return "fnv1a64:" + String(format: "%016llx", Recipe.fnv1a64(bytes))
  }
}
