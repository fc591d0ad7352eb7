// Shared by the harnesses that build models (FuzzRecipe, FuzzModelFile, FuzzArchitecture).
import Checkpoints
import Distill
import Foundation
import FuzzSupport
@testable import Distill

/// Models with more weights than this are not built (`ModelBuilder.build` allocates and
/// initialises every weight): FUZZ_BUILD_LIMIT, default 2^20; 0 means no limit, as
/// `distill train` and `eval`, where a width like 10^9 aborts on allocation (a known issue).
public let buildLimit = environmentInteger("FUZZ_BUILD_LIMIT", 1 << 20)

/// Whether `model` on samples of `inputShape` is small enough to build (see `buildLimit`).
/// Throws what `ModelBuilder.outputShapes` throws for a model that does not fit the shape.
public func withinBuildLimit(_ model: ModelSpec, inputShape: [Int], classes: Int) throws -> Bool {
  if buildLimit == 0 { return true }
  let outputs = try ModelBuilder(file: "fuzz", keyPath: "model").outputShapes(
    of: model, inputShape: inputShape, classCount: classes)
  return parameterCount(model, input: inputShape, outputs: outputs, classes: classes) <= buildLimit
}

/// The number of weights `ModelBuilder.build` allocates for `model`, given the output shapes
/// `outputs` of its layers; `Int.max` when it overflows.
public func parameterCount(_ model: ModelSpec, input: [Int], outputs: [[Int]], classes: Int) -> Int {
  var total = 0
  for (index, layer) in model.expandedLayers(classCount: classes).enumerated() {
    let inShape = index == 0 ? input : outputs[index - 1]
    var count: (partialValue: Int, overflow: Bool) = (0, false)
    switch layer {
    case .linear(let linear):
      count = inShape[0].multipliedReportingOverflow(by: linear.out)
    case .conv2d(let conv):
      count = conv.out.multipliedReportingOverflow(by: inShape[0])
      for _ in 0..<2 where !count.overflow { count = count.partialValue.multipliedReportingOverflow(by: conv.kernel) }
    case .batchNorm:
      count = inShape[0].multipliedReportingOverflow(by: 4)
    default:
      break
    }
    let sum = total.addingReportingOverflow(count.partialValue)
    if count.overflow || sum.overflow { return Int.max }
    total = sum.partialValue
  }
  return total
}

/// Whether a layer has a size above 2^24 (FUZZ_AVOID=shape-overflow skips such models, whose
/// shape inference can overflow): `out`, `kernel`, `padding`, `stride`, pool window.
public func hasHugeSize(_ model: ModelSpec) -> Bool {
  let limit = 1 << 24
  return model.expandedLayers(classCount: 10).contains { layer in
    switch layer {
    case .linear(let linear): return linear.out > limit
    case .conv2d(let conv): return [conv.out, conv.kernel, conv.padding, conv.stride].contains { $0 > limit }
    case .maxPool(let k), .avgPool(let k): return k > limit
    default: return false
    }
  }
}

// MARK: Reading model files as `distill eval` and `train` do

/// The recipe given with `--recipe`: its models fit the seeds written by `writeSeeds`.
public let fixedRecipe: Recipe = {
  try! Recipe.parse(
    yaml: """
      name: fixed
      seed: 3
      data: {dataset: digits, validation: 0.2}
      teacher:
        model: {mlp: {hidden: [3], activation: gelu}}
        train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}
      student:
        model: {mlp: {hidden: [4]}}
        train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}
      distillation: {method: kd}
      """, file: "fixed.yaml")
}()

/// Reads the model file at `modelPath` as the CLI does (see FuzzModelFile.swift), with `--data`
/// at the tiny data sets of `writeEvalData(to:)` under `dataRoot`. Traps when an HDF5 object
/// stays open afterwards.
public func readModelFile(_ modelPath: String, dataRoot: String) {
  defer { precondition(HDF5File.openObjectCount == 0, "HDF5 objects left open: \(HDF5File.openObjectCount)") }
  let csvPath = dataRoot + "/data.csv"
  var groups: [String] = []
  do {
    groups = try StoredModel.rootContents(of: modelPath).groups
  } catch {
    rendered(error, "groups")
  }
  // distill train: teacher.from / student.init.
  for role in ModelRole.allCases {
    do {
      let stored = try StoredModel.open(modelPath, preferring: role)
      _ = stored.groupPath
    } catch {
      rendered(error, "open \(role)")
    }
  }
  // distill eval FILE [--group G]
  let choices: [String?] = groups.count > 1 ? groups.prefix(4).map { $0 } : [nil]
  for group in choices {
    var dataPath = dataRoot
    if let name = group ?? groups.first, let description = try? StoredModel(path: modelPath, group: name).description {
      if description.data.dataset == .csv { dataPath = csvPath }
      guard (try? withinBuildLimit(description.model, inputShape: description.inputShape, classes: description.classes)) != false
      else {
        note("[skipped] the model is over FUZZ_BUILD_LIMIT")
        continue
      }
    }
    do {
      let result = try evaluateWeights(file: modelPath, group: group, dataPath: dataPath)
      precondition((0...1).contains(result.evaluation.accuracy), "accuracy outside [0, 1]")
      note("[ok] eval /\(result.group): \(result.evaluation)")
    } catch {
      rendered(error, "eval")
    }
  }
  // distill eval FILE --recipe fixed.yaml [--group G]
  let group = groups.count > 1 ? groups.first : nil
  if let name = group ?? groups.first, let stored = try? StoredModel(path: modelPath, group: name),
    ModelRole(rawValue: stored.description?.role ?? name) == nil, let description = stored.description,
    (try? withinBuildLimit(description.model, inputShape: [64], classes: 10)) == false
  {
    note("[skipped] --recipe: the file's own model is over FUZZ_BUILD_LIMIT")
    return
  }
  do {
    let result = try evaluateWeights(
      file: modelPath, group: group, recipe: fixedRecipe, recipeFile: "fixed.yaml", dataPath: dataRoot)
    note("[ok] eval --recipe /\(result.group): \(result.evaluation)")
  } catch {
    rendered(error, "eval --recipe")
  }
}

// MARK: Data

/// Writes the data sets `--data` points at under `dataRoot`, small so that an input is read
/// in milliseconds: digits (`datasets/digits/digits.csv.gz`), MNIST-family IDX files, `data.csv`.
public func writeEvalData(to dataRoot: String) {
  let csvPath = dataRoot + "/data.csv"
  makeFolders(dataRoot + "/datasets/digits")
  // digits: 30 samples of 64 features in 0...16, three per class, so that validation: 0.2
  // holds out one per class (the file may be plain text).
  var digits = ""
  for i in 0..<30 {
    digits += (0..<64).map { String((i * 5 + $0 * 3) % 17) }.joined(separator: ",") + ",\(i % 10)\n"
  }
  writeFile(dataRoot + "/datasets/digits/digits.csv.gz", Array(digits.utf8))
  // MNIST family: 10 images 28x28 with labels 0-9 in each split.
  for prefix in ["train", "t10k"] {
    var images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28]
    images += (0..<(10 * 784)).map { UInt8(truncatingIfNeeded: $0 * 7) }
    writeFile(dataRoot + "/\(prefix)-images-idx3-ubyte", images)
    writeFile(dataRoot + "/\(prefix)-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 10] + (0..<10).map { UInt8($0) })
  }
  // csv: 9 rows, 4 features, 3 classes.
  let csv = (0..<9).map { i in "\(i),\(i * 2 % 5),0.5,\(Double(i) / 3),\(i % 3)" }.joined(separator: "\n")
  writeFile(csvPath, Array(csv.utf8))
}


/// The start-up both model-file harnesses share (`LLVMFuzzerInitialize`): the tiny data sets
/// under `dataRoot`, or, with `FUZZ_WRITE_SEEDS=DIR`, the harness's seed files written to DIR
/// and an exit instead of fuzzing.
public func startModelHarness(dataRoot: String, writeSeeds: (String) throws -> Void) -> CInt {
  writeEvalData(to: dataRoot)
  if let seeds = getenv("FUZZ_WRITE_SEEDS").map({ String(cString: $0) }), !seeds.isEmpty {
    do {
      try writeSeeds(seeds)
    } catch {
      print("cannot write the seeds: \(error)")
      exit(1)
    }
    print("wrote the seed files to \(seeds)")
    exit(0)
  }
  return 0
}
