// libFuzzer harness for the recipe reader: what `distill train RECIPE` does with a recipe
// before the first training step, minus the file system, the energy meter and the data.
//
//  1. `Recipe.parse(yaml:file:)`: YAML (Yams), strict decoding, `validate()` (`Recipe.load`
//     is this after reading the file as UTF-8, so non-UTF-8 inputs are skipped as it refuses
//     them); errors are rendered as the CLI prints them.
//  2. `Trainer(recipe:recipeFile:recipeText:options:)`: validation again, the run folder path.
//  3. `canonicalJSON` / `canonicalHash` (stored in checkpoints and model files).
//  4. Shape inference (`ModelBuilder.outputShapes`) of the teacher and student for the sample
//     shape the data set gives (digits [64], MNIST-family [1, 28, 28], csv [4] with
//     `data.classes` or 3 classes; `data.shape` when its size matches), the hint layers' sizes,
//     and `ModelBuilder.build` (weights are allocated and initialised) when the models have at
//     most FUZZ_BUILD_LIMIT parameters (default 2^20; 0: no limit, as `distill train`).
//
// Round-trip checks (FUZZ_ROUNDTRIP=0 turns them off), each a crash when it fails, because the
// project reads these texts back:
//  - the run folder's recipe.yaml (the text, a final newline, `# distill train:` notes) parses
//    to the same recipe (`distill resume` reads it);
//  - `canonicalJSON` parses to the same recipe (`resume` parses a checkpoint's copy);
//  - the model files' `architecture` attribute (`ModelDescription.json`) parses back to the same
//    description (`distill eval` reads what `train` wrote).
//
// FUZZ_AVOID (see FuzzSupport.avoiding) steers around known crashes: `yaml-depth` skips
// inputs with more than 500 `[`/`{`, `shape-overflow` skips models with a size above 2^24.
import Distill
import Foundation
import FuzzModels
import FuzzSupport
import NN
@testable import Distill

private let checkRoundTrips = !(getenv("FUZZ_ROUNDTRIP").map { String(cString: $0) == "0" } ?? false)
private let runFolder = scratchFolder("recipe") + "/run"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecipe(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = UnsafeBufferPointer(start: data, count: size)
  // FUZZ_AVOID=yaml-depth: skip deeply nested documents (Yams recurses once per level).
  if avoiding("yaml-depth"), bytes.lazy.filter({ $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "{") }).count > 500 {
    return 0
  }
  // As String(contentsOfFile:encoding: .utf8) in Recipe.load.
  guard let text = String(bytes: bytes, encoding: .utf8) else { return 0 }
  let recipe: Recipe
  do {
    recipe = try Recipe.parse(yaml: text, file: "fuzz.yaml")
  } catch {
    rendered(error, "parse")
    return 0
  }
  do {
    let trainer = try Trainer(
      recipe: recipe, recipeFile: "fuzz.yaml", recipeText: text, options: TrainingOptions(runFolder: runFolder))
    precondition(trainer.recipe == recipe, "Trainer changed a recipe without overrides")
  } catch {
    fatalError("Trainer refused a recipe that Recipe.parse accepted: \(error)")
  }
  let json = recipe.canonicalJSON
  _ = recipe.canonicalHash
  if checkRoundTrips {
    let failures = recipeRoundTrips(recipe, text: text, json: json) + descriptionRoundTrips(recipe)
    if !failures.isEmpty { fatalError("round trip: " + failures.joined(separator: "; ")) }
  }
  checkModels(recipe)
  note("[ok] \(recipe.name)")
  return 0
}

/// What fails to read back as `recipe`: the run folder's copy, `canonicalJSON`.
private func recipeRoundTrips(_ recipe: Recipe, text: String, json: String) -> [String] {
  var failures: [String] = []
  // RunFolder.prepare: the overrides as comments, then the text unchanged.
  let copy = "# distill train: seed: 2 (--seed)\n" + text
  do {
    let reread = try Recipe.parse(yaml: copy, file: "run/recipe.yaml")
    if reread != recipe {
      failures.append("the run folder's recipe.yaml reads as another recipe (\(reread.changedKeys(from: recipe)))")
    }
  } catch {
    failures.append("the run folder's recipe.yaml does not read: \(error)")
  }
  do {
    let reread = try Recipe.parse(yaml: json, file: "canonical.json")
    if reread != recipe {
      failures.append("canonicalJSON reads as another recipe (\(reread.changedKeys(from: recipe))): \(json)")
    }
  } catch {
    failures.append("canonicalJSON does not read: \(error): \(json)")
  }
  return failures
}

/// The per-sample shape and class count `TrainingData.load` would give, or nil when
/// `data.shape` does not fit (the trainer stops with `dataMismatch` then).
private func sampleShape(_ data: DataSpec) -> (shape: [Int], classes: Int)? {
  let base: [Int]
  switch data.dataset {
  case .digits: base = [64]
  case .mnist, .fashionMNIST: base = [1, 28, 28]
  case .csv: base = [4]
  }
  let classes = data.classCount ?? 3
  guard let shape = data.shape else { return (base, classes) }
  let (size, overflow) = shape.reduce((1, false)) { acc, n in
    let (p, o) = acc.0.multipliedReportingOverflow(by: n)
    return (p, acc.1 || o)
  }
  return !overflow && size == base.reduce(1, *) ? (shape, classes) : nil
}

private func checkModels(_ recipe: Recipe) {
  guard let (shape, classes) = sampleShape(recipe.data) else { return }
  var models: [(key: String, spec: ModelSpec, role: ModelRole)] = []
  if let teacher = recipe.teacher, teacher.from == nil, let model = teacher.model {
    models.append(("teacher.model", model, .teacher))
  }
  if recipe.student.initialWeights == nil { models.append(("student.model", recipe.student.model, .student)) }
  var shapes: [String: [[Int]]] = [:]
  var built: [String: (Sequential, ModelSpec)] = [:]
  for (key, spec, _) in models {
    // FUZZ_AVOID=shape-overflow: skip models with sizes that overflow shape inference.
    if avoiding("shape-overflow"), hasHugeSize(spec) { continue }
    let builder = ModelBuilder(file: "fuzz.yaml", keyPath: key)
    do {
      let outputs = try builder.outputShapes(of: spec, inputShape: shape, classCount: classes)
      precondition(outputs.count == spec.expandedLayers(classCount: classes).count, "one shape per layer")
      shapes[key] = outputs
      if buildLimit == 0 || parameterCount(spec, input: shape, outputs: outputs, classes: classes) <= buildLimit {
        let model = try builder.build(spec, inputShape: shape, classCount: classes, seed: recipe.seed)
        _ = model.parameterCount
        built[key] = (model, spec)
      }
    } catch {
      rendered(error, "model \(key)")
    }
  }
  // Trainer: the distillation methods built for the two networks (regressors, heads, memory
  // banks of a few samples); a setting that does not fit must be an error, never a crash.
  if recipe.distillation.usesTeacher, let teacher = built["teacher.model"], let student = built["student.model"] {
    do {
      _ = try DistillationLoss(
        spec: recipe.distillation, teacher: teacher, student: student, inputShape: shape,
        trainLabels: (0..<max(classes, 2) * 2).map { $0 % classes })
    } catch {
      rendered(error, "distillation")
    }
  }
}

/// What fails to read back: the `architecture` attribute of the model files the run writes.
private func descriptionRoundTrips(_ recipe: Recipe) -> [String] {
  guard let (shape, classes) = sampleShape(recipe.data) else { return [] }
  var models: [(ModelSpec, ModelRole)] = [(recipe.student.model, .student)]
  if let model = recipe.teacher?.model { models.append((model, .teacher)) }
  var failures: [String] = []
  for (spec, role) in models {
    var recorded = recipe.data
    // Trainer.absoluteDataPath
    if let path = recorded.path { recorded.path = URL(fileURLWithPath: path).standardizedFileURL.path }
    let description = ModelDescription(
      role: role, model: spec, inputShape: shape, classes: classes, data: recorded, recipe: recipe)
    let json = description.json
    do {
      let reread = try ModelDescription.parse(json, source: "\(role).h5 /\(role)@architecture")
      if reread != description { failures.append("the \(role)'s architecture attribute reads as another description: \(json)") }
    } catch {
      failures.append("the \(role)'s architecture attribute does not read: \(error)")
    }
  }
  return failures
}
