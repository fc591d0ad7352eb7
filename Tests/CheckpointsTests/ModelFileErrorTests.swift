import Autodiff
import Checkpoints
import Foundation
import NN
import XCTest
import _TestSupport

/// One test per way a model file can be unusable: each gives its own `CheckpointError`
/// naming the file and object, and leaves the model (and any previous file) unchanged.
final class ModelFileErrorTests: XCTestCase {
  var folder: TemporaryFolder!
  override func setUp() { folder = TemporaryFolder() }
  override func tearDown() { folder.remove() }

  func mlp(seed: UInt64 = 1, hidden: Int = 8) -> Sequential {
    Sequential.mlp(inputFeatures: 6, hidden: [hidden], classes: 3, seed: seed)
  }

  /// Loading `path` into a fresh MLP fails with the returned error and changes nothing.
  func loadError(
    _ path: String, group: String = "student", file: StaticString = #filePath, line: UInt = #line
  )
    -> CheckpointError?
  {
    let model = mlp(seed: 99)
    let before = model.stateDict.map(\.tensor.storage)
    let error = checkpointError(file: file, line: line) {
      try loadModel(group: group, from: path, into: model)
    }
    XCTAssertEqual(model.stateDict.map(\.tensor.storage), before, "the model changed", file: file, line: line)
    return error
  }

  func saved(_ name: String, _ model: Sequential? = nil) throws -> String {
    let path = folder.file(name)
    try saveModels([(group: "student", model: model ?? mlp(), architecture: "mlp")], to: path)
    return path
  }

  func testMissingFile() {
    let path = folder.file("missing.h5")
    XCTAssertEqual(loadError(path), .fileNotFound(path: path))
    XCTAssertEqual(CheckpointError.fileNotFound(path: path).description, "\(path): no such file")
  }

  func testZeroLengthFile() {
    let path = folder.file("empty.h5")
    write([], to: path)
    XCTAssertEqual(loadError(path), .emptyFile(path: path))
  }

  func testTextFile() {
    let path = folder.file("notes.h5")
    write(Array("epoch,loss\n1,0.5\n".utf8), to: path)
    XCTAssertEqual(loadError(path), .notHDF5(path: path))
    XCTAssert(CheckpointError.notHDF5(path: path).description.contains("not an HDF5 file"))
  }

  func testTruncatedFile() throws {
    let whole = bytes(of: try saved("whole.h5"))
    let path = folder.file("half.h5")
    write(Array(whole.prefix(whole.count / 2)), to: path)
    guard case .truncated(let failedPath, let detail)? = loadError(path) else {
      return XCTFail("expected .truncated")
    }
    XCTAssertEqual(failedPath, path)
    XCTAssert(detail.contains("truncated"), detail)
  }

  func testMissingGroup() throws {
    let path = try saved("student.h5")
    XCTAssertEqual(loadError(path, group: "teacher"), .missingGroup(path: path, group: "/teacher"))
    XCTAssertEqual(
      checkpointError { try readArchitecture(group: "teacher", from: path) },
      .missingGroup(path: path, group: "/teacher"))
  }

  func testMissingKey() throws {
    let path = folder.file("partial.h5")
    do {
      let group = try HDF5File.create(path).createGroup("student")
      for (key, tensor) in mlp().stateDict where key != "2.bias" {
        try group.writeDataset(key, floats: tensor.storage, shape: tensor.shape)
      }
    }
    let error = loadError(path)
    XCTAssertEqual(error, .missingKey(path: path, group: "/student", key: "2.bias", expectedShape: [3]))
    XCTAssertEqual(
      error?.description,
      "\(path): /student has no dataset \"2.bias\"; the model expects one of shape [3]"
        + " (was the file written for another architecture?)")
  }

  func testWrongArchitectureNamesTheKeyAndBothShapes() throws {
    let path = try saved("wide.h5", mlp(hidden: 16))
    let error = loadError(path)
    XCTAssertEqual(
      error, .wrongShape(path: path, object: "/student/0.weight", expected: [8, 6], found: [16, 6]))
    XCTAssertEqual(error?.description, "\(path): /student/0.weight has shape [16, 6], expected [8, 6]")
  }

  func testExtraLayerIsAnUnexpectedKey() throws {
    let deeper = Sequential.mlp(inputFeatures: 6, hidden: [8, 3], classes: 3, seed: 1)
    let path = try saved("deeper.h5", deeper)
    // 2.weight is [3, 8] in both; 4.* exists only in the file.
    XCTAssertEqual(
      loadError(path), .unexpectedKey(path: path, group: "/student", key: "4.weight", shape: [3, 3]))
  }

  func testIntegerDatasetIsTheWrongDatatype() throws {
    let path = folder.file("ints.h5")
    do {
      let group = try HDF5File.create(path).createGroup("student")
      for (key, tensor) in mlp().stateDict {
        if key == "0.bias" {
          try group.writeDataset(key, integers: [Int64](repeating: 0, count: 8), shape: [8])
        } else {
          try group.writeDataset(key, floats: tensor.storage, shape: tensor.shape)
        }
      }
    }
    XCTAssertEqual(
      loadError(path),
      .wrongDatatype(
        path: path, object: "/student/0.bias", expected: "float16, float32 or float64", found: "int64"))
  }

  func testSaveIntoAMissingFolderFails() {
    let path = folder.file("no/such/folder/student.h5")
    guard
      case .writeFailed(let failedPath, let detail)? = checkpointError({
        try saved("no/such/folder/student.h5")
      })
    else { return XCTFail("expected .writeFailed") }
    XCTAssertEqual(failedPath, path)
    XCTAssert(detail.contains("No such file or directory"), detail)
  }

  func testFailedSaveMidWriteLeavesThePreviousFileByteIdentical() throws {
    let path = try saved("student.h5")
    let before = bytes(of: path)
    // The second group of the same name fails after the first one was written.
    let model = mlp(seed: 2)
    let error = checkpointError {
      try saveModels(
        [
          (group: "student", model: model, architecture: nil),
          (group: "student", model: model, architecture: nil),
        ],
        to: path, precision: .f16)
    }
    guard case .hdf5(let failedPath, let object, _, _)? = error else {
      return XCTFail("expected .hdf5, got \(String(describing: error))")
    }
    XCTAssertEqual(failedPath, path)
    XCTAssertEqual(object, "/student")
    XCTAssertEqual(bytes(of: path), before)
    XCTAssertEqual(folder.contents, ["student.h5"], "the temporary file was not removed")
  }

  func testSaveIntoAReadOnlyFolderLeavesThePreviousFileByteIdentical() throws {
    let path = try saved("student.h5")
    let before = bytes(of: path)
    chmod(folder.path, 0o555)
    defer { chmod(folder.path, 0o755) }
    if access(folder.path, W_OK) == 0 {
      throw XCTSkip("running as root: a read-only folder is still writable")
    }
    guard case .writeFailed(let failedPath, _)? = checkpointError({ try saved("student.h5", mlp(seed: 3)) })
    else { return XCTFail("expected .writeFailed") }
    XCTAssertEqual(failedPath, path)
    XCTAssertEqual(bytes(of: path), before)
  }

  func testRenameOntoAFolderFailsAndRemovesTheTemporaryFile() throws {
    let path = folder.file("student.h5")
    XCTAssertEqual(mkdir(path, 0o755), 0)
    write([1, 2, 3], to: "\(path)/keep")
    guard case .writeFailed(let failedPath, let detail)? = checkpointError({ try saved("student.h5") })
    else { return XCTFail("expected .writeFailed") }
    XCTAssertEqual(failedPath, path)
    XCTAssert(detail.contains("rename"), detail)
    XCTAssertEqual(folder.contents, ["student.h5"])
    XCTAssertEqual(bytes(of: "\(path)/keep"), [1, 2, 3])
  }

  func testNonFiniteWeightsAreRefusedNamingTheDataset() throws {
    for bad in [Float.nan, .infinity, -.infinity] {
      let model = mlp()
      var values = model.stateDict[2].tensor.storage
      values[3] = bad
      values[5] = bad
      let poisoned = Sequential.mlp(inputFeatures: 6, hidden: [8], classes: 3, seed: 1)
      var dict = Dictionary(uniqueKeysWithValues: model.stateDict.map { ($0.name, $0.tensor) })
      dict[model.stateDict[2].name] = Tensor(shape: model.stateDict[2].tensor.shape, storage: values)
      try poisoned.load(stateDict: dict)
      let path = try saved("bad-\(bad).h5", poisoned)
      XCTAssertEqual(
        loadError(path), .nonFinite(path: path, object: "/student/\(model.stateDict[2].name)", count: 2, firstIndex: 3))
      XCTAssertThrowsError(try requireFiniteModels(in: path)) {
        XCTAssertTrue("\($0)".contains("2 non-finite values"), "\($0)")
      }
    }
    XCTAssertNoThrow(try requireFiniteModels(in: try saved("good.h5")))
  }
}
