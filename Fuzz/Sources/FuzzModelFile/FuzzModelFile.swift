// libFuzzer harness for the model-file reader: the fuzz input is written to a file and read
// the way the CLI reads a model file (teacher.h5, student.h5, or one h5py wrote):
//
//  - `distill eval FILE`: `evaluateWeights` (Sources/Distill/WeightsEvaluation.swift): the
//    file's groups, `readArchitecture` and the `architecture` attribute's JSON
//    (`ModelDescription`), the data it names, `ModelBuilder.build`, `loadModel(group:from:into:)`
//    and the test-split evaluation; with several groups, once per group (`--group`);
//  - `distill eval FILE --recipe R`: the same with a fixed recipe (digits, student mlp [4],
//    teacher mlp [3] gelu), the path h5py-written files take;
//  - `distill train` with `teacher.from` / `student.init`: `StoredModel.open`, which picks the
//    group.
//
// `--data` always points at a tiny data set written at start-up (digits: 30 samples,
// MNIST-family: 10 + 10 images, csv: 9 rows of 4 features and 3 classes), so the data paths a
// file names are never followed. Models above FUZZ_BUILD_LIMIT weights (see FuzzModels) are
// not evaluated. After every input no HDF5 object may be left open.
//
// Random bytes are almost never an HDF5 file: run it on corpus/FuzzModelFile, real model files
// written by the project's saveModels (FUZZ_WRITE_SEEDS=DIR writes them, see README.md).
import Checkpoints
import Datasets
import Distill
import Foundation
import FuzzModels
import FuzzSupport
import NN
@testable import Distill

private let folder = scratchFolder("model")
private let modelPath = folder + "/model.h5"
private let dataRoot = folder + "/data"

@_cdecl("LLVMFuzzerInitialize")
public func initialize(
  _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
  startModelHarness(dataRoot: dataRoot, writeSeeds: writeSeeds(to:))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  writeFile(modelPath, UnsafeBufferPointer(start: data, count: size))
  readModelFile(modelPath, dataRoot: dataRoot)
  return 0
}

// MARK: Seeds

// Files written with HDF5File directly are closed when the last of their objects goes away at
// the end of each `do` (closing earlier fails while a group is open).

/// Writes the seed corpus: model files as `distill train` writes them (`saveModels` with a
/// `ModelDescription`), and a few as h5py would (no architecture, datasets at the root).
private func writeSeeds(to folder: String) throws {
  makeFolders(folder)
  func recipe(_ yaml: String) throws -> Recipe { try Recipe.parse(yaml: yaml, file: "seed.yaml") }
  func model(_ spec: ModelSpec, _ shape: [Int], _ classes: Int, seed: UInt64 = 1) throws -> Sequential {
    try ModelBuilder(file: "seed.yaml", keyPath: "model").build(spec, inputShape: shape, classCount: classes, seed: seed)
  }
  func description(_ role: ModelRole, _ spec: ModelSpec, _ shape: [Int], _ classes: Int, _ recipe: Recipe) -> String {
    ModelDescription(role: role, model: spec, inputShape: shape, classes: classes, data: recipe.data, recipe: recipe)
      .json
  }
  let training = "train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}"

  // The fixed recipe's student and teacher, f32 and f16.
  let student = fixedRecipe.student.model
  let teacher = fixedRecipe.teacher!.model!
  let studentJSON = description(.student, student, [64], 10, fixedRecipe)
  try saveModels([("student", try model(student, [64], 10), studentJSON)], to: folder + "/student-mlp4-f32.h5")
  try saveModels(
    [("student", try model(student, [64], 10), studentJSON)], to: folder + "/student-mlp4-f16.h5", precision: .f16)
  try saveModels(
    [
      ("teacher", try model(teacher, [64], 10), description(.teacher, teacher, [64], 10, fixedRecipe)),
      ("student", try model(student, [64], 10), studentJSON),
    ], to: folder + "/teacher-and-student.h5")

  // A CNN on digits reshaped to [1, 8, 8], with batch norm and PyTorch's counter dataset.
  let cnnRecipe = try recipe(
    """
    name: cnn
    data: {dataset: digits, validation: 0.2, shape: [1, 8, 8]}
    student:
      model:
        layers: [{conv2d: {out: 2, kernel: 3}}, batch_norm, relu, {max_pool: 2}, flatten, {dropout: 0.1},
                 {linear: {out: 10}}]
      \(training)
    """)
  do {
    // As saveModels writes a group, plus the counter.
    let file = try HDF5File.create(folder + "/teacher-cnn-digits.h5")
    let group = try file.createGroup("teacher")
    try group.setAttribute(
      architectureAttribute, string: description(.teacher, cnnRecipe.student.model, [1, 8, 8], 10, cnnRecipe))
    for (key, tensor) in try model(cnnRecipe.student.model, [1, 8, 8], 10).stateDict {
      try group.writeDataset(key, floats: tensor.storage, shape: tensor.shape)
    }
    try group.writeDataset("1.num_batches_tracked", integers: [7], shape: [])
  }

  // MNIST: a strided convolution and average pooling keep it small.
  let mnistRecipe = try recipe(
    """
    name: mnist-small
    data: {dataset: mnist, validation: 0}
    student:
      model:
        layers: [{conv2d: {out: 1, kernel: 5, stride: 3, bias: false}}, {avg_pool: 2}, tanh, flatten, {linear: {out: 10}}]
      \(training)
    precision: f16-mixed
    """)
  try saveModels(
    [
      (
        "student", try model(mnistRecipe.student.model, [1, 28, 28], 10),
        description(.student, mnistRecipe.student.model, [1, 28, 28], 10, mnistRecipe)
      )
    ], to: folder + "/student-mnist-conv-f16.h5", precision: .f16)

  // csv: 4 features, 3 classes.
  let csvRecipe = try recipe(
    """
    name: csv
    data: {dataset: csv, path: data.csv, validation: 3, classes: 3, normalize: true}
    student:
      model: {mlp: {hidden: [3], dropout: 0.5}}
      \(training)
    """)
  try saveModels(
    [
      (
        "student", try model(csvRecipe.student.model, [4], 3),
        description(.student, csvRecipe.student.model, [4], 3, csvRecipe)
      )
    ], to: folder + "/student-csv.h5")

  // h5py-written: a group without architecture, and a state_dict at the root.
  try saveModels([("student", try model(student, [64], 10), nil)], to: folder + "/h5py-group-no-architecture.h5")
  do {
    let file = try HDF5File.create(folder + "/h5py-root-state-dict.h5")
    let root = try file.rootGroup()
    for (key, tensor) in try model(student, [64], 10).stateDict {
      try root.writeDataset(key, floats: tensor.storage, shape: tensor.shape)
    }
  }

  // An architecture attribute of another format version, and one in YAML flow style.
  do {
    let file = try HDF5File.create(folder + "/other-format.h5")
    let group = try file.createGroup("student")
    try group.setAttribute(
      architectureAttribute, string: studentJSON.replacingOccurrences(of: "swift-distill-model-1", with: "swift-distill-model-2"))
  }
  do {
    let file = try HDF5File.create(folder + "/yaml-architecture.h5")
    let group = try file.createGroup("teacher")
    try group.setAttribute(
      architectureAttribute,
      string: """
        {format: swift-distill-model-1, role: teacher, model: {layers: [flatten, {linear: {out: 10}}]},
         input_shape: [64], classes: 10, data: {dataset: digits, validation: 0.2}, seed: 1, recipe: y,
         recipe_hash: '0000000000000000'}
        """)
    let weights = Sequential.mlp(inputFeatures: 64, hidden: [], classes: 10, seed: 1)
    for (key, tensor) in weights.stateDict {
      try group.writeDataset(key.replacingOccurrences(of: "0.", with: "1."), floats: tensor.storage, shape: tensor.shape)
    }
  }
}
