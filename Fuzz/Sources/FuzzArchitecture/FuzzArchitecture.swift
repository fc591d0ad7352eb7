// libFuzzer harness for what `distill eval` builds from a model file's `architecture`
// attribute, past libhdf5: the fuzz input is the attribute's text, written with the project's
// HDF5 layer into a well-formed model file, which is then read exactly as FuzzModelFile reads
// its inputs (FuzzModels.readModelFile: `evaluateWeights` with and without `--recipe`,
// `StoredModel.open`). When the text is a description whose model fits its own input shape and
// FUZZ_BUILD_LIMIT, the file also holds that model's weights (as `saveModels` writes them), so
// loading and the test-split evaluation run too.
//
// FuzzModelFile mutates whole HDF5 files, and most of what it finds is inside libhdf5; this
// one reaches ModelDescription parsing, the data a description names (`TrainingData.load` on
// tiny digits / MNIST / csv sets), `ModelBuilder` and `loadModel`.
//
// Input layout (see corpus/FuzzArchitecture/):
//   byte 0     bits 0-1 the group: student, teacher, model, student; bit 2 float16 weights;
//              bit 3 no weights even when the description builds
//   the rest   the attribute (UTF-8; HDF5 strings end at a NUL, so the text does too)
import Checkpoints
import Distill
import Foundation
import FuzzModels
import FuzzSupport
import NN
@testable import Distill

private let folder = scratchFolder("architecture")
private let modelPath = folder + "/model.h5"
private let dataRoot = folder + "/data"

@_cdecl("LLVMFuzzerInitialize")
public func initialize(
  _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
  startModelHarness(dataRoot: dataRoot, writeSeeds: writeSeeds(to:))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzArchitecture(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  var input = InputCursor(data, size)
  let flags = input.byte()
  let text = String(decoding: input.rest.prefix { $0 != 0 }, as: UTF8.self)
  let group = ["student", "teacher", "model", "student"][Int(flags & 3)]
  do {
    try writeModelFile(text: text, group: group, precision: flags & 4 != 0 ? .f16 : .f32, weights: flags & 8 == 0)
  } catch {
    fatalError("harness: cannot write the model file: \(error)")
  }
  readModelFile(modelPath, dataRoot: dataRoot)
  return 0
}

/// A model file with `text` as the `architecture` attribute of `group`, and the weights of the
/// model it describes when it builds.
private func writeModelFile(text: String, group name: String, precision: StoragePrecision, weights: Bool) throws {
  let file = try HDF5File.create(modelPath)
  let group = try file.createGroup(name)
  try group.setAttribute(architectureAttribute, string: text)
  guard weights, let description = try? ModelDescription.parse(text, source: "fuzz") else { return }
  if avoiding("shape-overflow"), hasHugeSize(description.model) { return }
  guard (try? withinBuildLimit(description.model, inputShape: description.inputShape, classes: description.classes)) == true,
    let model = try? ModelBuilder(file: "fuzz", keyPath: "model").build(
      description.model, inputShape: description.inputShape, classCount: description.classes, seed: 1)
  else { return }
  for (key, tensor) in model.stateDict {
    try group.writeDataset(key, floats: tensor.storage, shape: tensor.shape, precision: precision)
  }
}

/// Writes the seed corpus: the descriptions `distill train` writes for a few recipes.
private func writeSeeds(to folder: String) throws {
  makeFolders(folder)
  let recipes: [(name: String, flags: UInt8, role: ModelRole, shape: [Int], classes: Int, yaml: String)] = [
    ("digits-mlp", 0, .student, [64], 10, "data: {dataset: digits, validation: 0.2}\nstudent: {model: {mlp: {hidden: [4]}}, TRAIN}"),
    (
      "digits-cnn-f16", 4 | 1, .teacher, [1, 8, 8], 10,
      "data: {dataset: digits, validation: 0.2, shape: [1, 8, 8], normalize: true}\nstudent: {model: {layers: [{conv2d: {out: 2, kernel: 3, padding: 1, stride: 2}}, {batch_norm: {eps: 0.001, momentum: 0.5}}, relu, {max_pool: 2}, flatten, {dropout: 0.1}, {linear: {out: 10, bias: false}}]}, TRAIN}"
    ),
    (
      "mnist-conv", 0, .student, [1, 28, 28], 10,
      "data: {dataset: mnist, validation: 0}\nstudent: {model: {layers: [{conv2d: {out: 1, kernel: 5, stride: 3}}, {avg_pool: 2}, tanh, flatten, {linear: {out: 10}}]}, TRAIN}"
    ),
    (
      "fashion-mlp-gelu", 2, .student, [1, 28, 28], 10,
      "data: {dataset: fashion-mnist, validation: 4}\nstudent: {model: {mlp: {hidden: [2], activation: gelu, input_dropout: 0.2}}, TRAIN}"
    ),
    (
      "csv-label-column", 0, .student, [4], 3,
      "data: {dataset: csv, path: data.csv, validation: 3, label_column: 4, classes: 3}\nstudent: {model: {mlp: {hidden: [3]}}, TRAIN}"
    ),
    (
      "csv-no-weights", 8, .teacher, [4], 3,
      "data: {dataset: csv, validation: 0.5, classes: 3}\nstudent: {model: {cnn: {channels: [1], hidden: [2]}}, TRAIN}"
    ),
  ]
  for seed in recipes {
    let yaml = "name: \(seed.name)\nseed: 5\n" + seed.yaml.replacingOccurrences(
      of: "TRAIN", with: "train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}")
    let recipe = try Recipe.parse(yaml: yaml, file: "\(seed.name).yaml")
    var data = recipe.data
    if data.path != nil { data.path = "/data/" + data.path! }
    let json = ModelDescription(
      role: seed.role, model: recipe.student.model, inputShape: seed.shape, classes: seed.classes, data: data,
      recipe: recipe
    ).json
    writeFile(folder + "/" + seed.name, [seed.flags] + Array(json.utf8))
  }
  // Not JSON but YAML flow style, which the reader accepts too; and another format version.
  writeFile(
    folder + "/yaml-flow", [0] + Array("{format: swift-distill-model-1, role: student, model: {layers: [flatten, {linear: {out: 10}}]}, input_shape: [64], classes: 10, data: {dataset: digits, validation: 0.2}, seed: 1, recipe: y, recipe_hash: '0'}".utf8))
  writeFile(folder + "/other-format", [1] + Array("{\"format\":\"swift-distill-model-2\"}".utf8))
}
