import Autodiff
import Checkpoints
import NN
import XCTest
import _TestSupport

/// Conv–BN–ReLU–pool–Flatten–Linear over 1×8×8 images; keys 0.*, 1.* (with running stats), 5.*.
func smallCNN(seed: UInt64) -> Sequential {
  var g = SeededGenerator(seed: seed)
  return Sequential(
    Conv2D(inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1, generator: &g),
    BatchNorm2D(4), ReLU(), MaxPool2D(kernelSize: 2), Flatten(),
    Linear(inputFeatures: 4 * 4 * 4, outputFeatures: 10, generator: &g))
}

final class ModelFileTests: XCTestCase {
  var folder: TemporaryFolder!
  override func setUp() { folder = TemporaryFolder() }
  override func tearDown() { folder.remove() }

  /// A trained-looking CNN: one training-mode forward moves BatchNorm's running statistics
  /// away from their initial 0 and 1.
  func trainedCNN(seed: UInt64) -> Sequential {
    let model = smallCNN(seed: seed)
    _ = model(randomTensor([6, 1, 8, 8], seed: seed + 100, mean: 0.5, std: 2))
    model.eval()
    return model
  }

  func testMLPRoundTripsExactlyInFloat32() throws {
    let path = folder.file("mlp.h5")
    let saved = Sequential.mlp(inputFeatures: 64, hidden: [32, 16], classes: 10, seed: 1)
    try saveModels([(group: "student", model: saved, architecture: nil)], to: path, precision: .f32)
    let loaded = Sequential.mlp(inputFeatures: 64, hidden: [32, 16], classes: 10, seed: 2)
    try loadModel(group: "student", from: path, into: loaded)
    for ((name, a), (_, b)) in zip(saved.stateDict, loaded.stateDict) {
      XCTAssertEqual(a.storage, b.storage, name)
    }
    let x = randomTensor([5, 64], seed: 3)
    XCTAssertEqual(saved(x).storage, loaded(x).storage)
    XCTAssertNil(try readArchitecture(group: "student", from: path))
  }

  func testCNNWithBatchNormRoundTripsInFloat32AndFloat16() throws {
    let saved = trainedCNN(seed: 4)
    XCTAssertNotEqual(saved.stateDict.first { $0.name == "1.running_mean" }?.tensor.storage, [0, 0, 0, 0])
    for precision in StoragePrecision.allCases {
      let path = folder.file("cnn-\(precision).h5")
      try saveModels([(group: "/teacher", model: saved, architecture: "cnn")], to: path, precision: precision)
      let loaded = smallCNN(seed: 5)
      try loadModel(group: "teacher", from: path, into: loaded)
      for ((name, a), (_, b)) in zip(saved.stateDict, loaded.stateDict) {
        let expected =
          precision == .f32
          ? a.storage : HalfPrecision.floats(fromHalfBits: HalfPrecision.halfBits(from: a.storage))
        XCTAssertEqual(b.storage, expected, "\(precision) \(name)")
      }
      if precision == .f16 {
        loaded.eval()
        let x = randomTensor([3, 1, 8, 8], seed: 6)
        assertClose(loaded(x).storage, saved(x).storage, absoluteTolerance: 1e-2, relativeTolerance: 1e-2)
      }
      let group = try HDF5File.openReadOnly(path).group("teacher")
      XCTAssertEqual(try group.dataset("0.weight").elementType, .float(bytes: precision == .f32 ? 4 : 2))
    }
  }

  func testFileKeysFollowStateDictOrderWithPyTorchShapes() throws {
    let path = folder.file("both.h5")
    let teacher = trainedCNN(seed: 7)
    let student = Sequential.mlp(
      inputFeatures: 64, hidden: Array(repeating: 8, count: 6), classes: 10, seed: 8)
    try saveModels(
      [
        (group: "teacher", model: teacher, architecture: "teacher: cnn"),
        (group: "student", model: student, architecture: "{\"mlp\": [8, 8]}"),
      ],
      to: path)
    let file = try HDF5File.openReadOnly(path)
    XCTAssertEqual(try file.rootGroup().memberNames(), ["teacher", "student"])
    XCTAssertEqual(
      try file.group("teacher").memberNames(),
      ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "5.weight", "5.bias"])
    // Past index 9, name order would put "10.weight" before "2.weight".
    XCTAssertEqual(try file.group("student").memberNames(), student.stateDict.map(\.name))
    XCTAssertEqual(try file.group("teacher").dataset("0.weight").shape, [4, 1, 3, 3])
    XCTAssertEqual(try file.group("teacher").dataset("5.weight").shape, [10, 64])
    XCTAssertEqual(try readArchitecture(group: "teacher", from: path), "teacher: cnn")
    XCTAssertEqual(try readArchitecture(group: "/student", from: path), "{\"mlp\": [8, 8]}")
  }

  func testSavingAgainReplacesTheFileAndLeavesNoTemporaryFiles() throws {
    let path = folder.file("student.h5")
    let first = Sequential.mlp(inputFeatures: 4, hidden: [3], classes: 2, seed: 9)
    let second = Sequential.mlp(inputFeatures: 4, hidden: [3], classes: 2, seed: 10)
    try saveModels([(group: "student", model: first, architecture: nil)], to: path)
    try saveModels([(group: "student", model: second, architecture: nil)], to: path)
    XCTAssertEqual(folder.contents, ["student.h5"])
    let loaded = Sequential.mlp(inputFeatures: 4, hidden: [3], classes: 2, seed: 11)
    try loadModel(group: "student", from: path, into: loaded)
    XCTAssertEqual(loaded.stateDict.map(\.tensor.storage), second.stateDict.map(\.tensor.storage))
  }

  func testModelsLoadFromAFileWithPyTorchsBatchNormCounter() throws {
    // A file as h5py writes it from a PyTorch state_dict: num_batches_tracked (int64 scalar)
    // beside the running statistics, and member names in h5py's default (name) order.
    let path = folder.file("torch.h5")
    let source = trainedCNN(seed: 12)
    do {
      let group = try HDF5File.create(path).createGroup("teacher")
      for (key, tensor) in source.stateDict.reversed() {
        try group.writeDataset(key, floats: tensor.storage, shape: tensor.shape)
      }
      try group.writeDataset("1.num_batches_tracked", integers: [1], shape: [])
    }
    let loaded = smallCNN(seed: 13)
    try loadModel(group: "teacher", from: path, into: loaded)
    XCTAssertEqual(loaded.stateDict.map(\.tensor.storage), source.stateDict.map(\.tensor.storage))
  }
}
