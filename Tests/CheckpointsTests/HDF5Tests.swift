import Autodiff
import CHDF5
@testable import Checkpoints
import XCTest
import _TestSupport

final class HDF5Tests: XCTestCase {
  var folder: TemporaryFolder!
  override func setUp() { folder = TemporaryFolder() }
  override func tearDown() { folder.remove() }

  func testFloat32AndFloat16DatasetsRoundTrip() throws {
    let path = folder.file("data.h5")
    let values = randomTensor([3, 4, 5], seed: 7, std: 100).storage + [65504, 1e-8, -0.0, 70000]
    let shape = [values.count]
    do {
      let file = try HDF5File.create(path)
      let group = try file.createGroup("g")
      try group.writeDataset("full", floats: values, shape: shape)
      try group.writeDataset("half", floats: values, shape: shape, precision: .f16)
      try group.writeDataset("scalar", floats: [2.5], shape: [])
      try group.writeDataset("empty", floats: [], shape: [0, 3])
      try group.writeDataset("count", integers: [1, -2, Int64.max], shape: [3])
    }
    let group = try HDF5File.openReadOnly(path).group("/g")
    let full = try group.dataset("full")
    XCTAssertEqual(full.shape, shape)
    XCTAssertEqual(full.elementType, .float(bytes: 4))
    XCTAssertEqual(try full.readFloats(), values)
    let half = try group.dataset("half")
    XCTAssertEqual(half.elementType, .float(bytes: 2))
    XCTAssertEqual(half.elementType.description, "float16")
    // Exactly HalfPrecision's rounding: nearest-even, 70000 overflows to +inf, 1e-8 to 0.
    let rounded = HalfPrecision.floats(fromHalfBits: HalfPrecision.halfBits(from: values))
    XCTAssertEqual(try half.readFloats().map(\.bitPattern), rounded.map(\.bitPattern))
    XCTAssertEqual(rounded.last, .infinity)
    XCTAssertEqual(try group.dataset("scalar").shape, [])
    XCTAssertEqual(try group.dataset("scalar").readFloats(), [2.5])
    XCTAssertEqual(try group.dataset("empty").shape, [0, 3])
    XCTAssertEqual(try group.dataset("empty").readFloats(), [])
    XCTAssertEqual(try group.dataset("count").readIntegers(), [1, -2, Int64.max])
  }

  func testNestedGroupsListMembersInCreationOrder() throws {
    let path = folder.file("groups.h5")
    let names = ["b", "a", "10.weight", "2.weight", "1.bias"]
    do {
      let file = try HDF5File.create(path)
      let inner = try file.createGroup("outer/middle/inner")
      XCTAssertEqual(inner.name, "/outer/middle/inner")
      for name in names { try inner.writeDataset(name, floats: [1], shape: [1]) }
      _ = try file.group("outer").createGroup("second")
      XCTAssertEqual(try file.group("outer").createGroup("/outer/third").name, "/outer/third")
    }
    let file = try HDF5File.openReadOnly(path)
    XCTAssertEqual(try file.group("outer/middle/inner").memberNames(), names)
    XCTAssertEqual(try file.group("/outer").memberNames(), ["middle", "second", "third"])
    XCTAssertEqual(try file.rootGroup().memberNames(), ["outer"])
    XCTAssertEqual(
      checkpointError { try file.group("outer/nothing/inner") },
      .missingGroup(path: path, group: "/outer/nothing"))
    XCTAssertEqual(
      checkpointError { try file.group("outer/middle/inner/b") },
      .wrongObjectType(path: path, object: "/outer/middle/inner/b", expected: "group", found: "dataset"))
    XCTAssertEqual(
      checkpointError { try file.group("outer").dataset("middle") },
      .wrongObjectType(path: path, object: "/outer/middle", expected: "dataset", found: "group"))
    XCTAssertEqual(
      checkpointError { try file.group("outer").dataset("gone") },
      .missingDataset(path: path, dataset: "/outer/gone"))
    if case .hdf5(_, let object, _, let detail)? = checkpointError({
      try HDF5File.create(folder.file("again.h5")).createGroup("x/y").file.createGroup("x/y")
    }) {
      XCTAssertEqual(object, "/x/y")
      XCTAssertFalse(detail.isEmpty)
    } else {
      XCTFail("creating an existing group should fail with .hdf5")
    }
  }

  func testAttributesRoundTripAndReportTheirErrors() throws {
    let path = folder.file("attributes.h5")
    let text = "layers:\n  - linear: {out: 10}  # Größe ✓\n"
    do {
      let group = try HDF5File.create(path).createGroup("model")
      try group.setAttribute("architecture", string: "replaced")
      try group.setAttribute("architecture", string: text)
      try group.setAttribute("epoch", integer: -12)
      try group.setAttribute("scale", double: 65536.5)
      try group.writeDataset("w", floats: [1, 2], shape: [2])
      try group.dataset("w").setAttribute("note", string: "")
    }
    let group = try HDF5File.openReadOnly(path).group("model")
    XCTAssertEqual(try group.stringAttribute("architecture"), text)
    XCTAssertEqual(try group.integerAttribute("epoch"), -12)
    XCTAssertEqual(try group.doubleAttribute("scale"), 65536.5)
    XCTAssertEqual(try group.doubleAttribute("epoch"), -12)
    XCTAssertEqual(try group.dataset("w").stringAttribute("note"), "")
    XCTAssertTrue(group.hasAttribute("epoch"))
    XCTAssertFalse(group.hasAttribute("nothing"))
    XCTAssertEqual(
      checkpointError { try group.stringAttribute("nothing") },
      .missingAttribute(path: path, object: "/model", attribute: "nothing"))
    XCTAssertEqual(
      checkpointError { try group.stringAttribute("scale") },
      .wrongDatatype(path: path, object: "/model@scale", expected: "string", found: "float64"))
    XCTAssertEqual(
      checkpointError { try group.integerAttribute("architecture") },
      .wrongDatatype(path: path, object: "/model@architecture", expected: "integer", found: "string"))
  }

  func testDatasetShapeAndTypeErrors() throws {
    let path = folder.file("errors.h5")
    do {
      let group = try HDF5File.create(path).createGroup("g")
      try group.writeDataset("w", floats: [Float](repeating: 1, count: 6), shape: [2, 3])
      try group.writeDataset("n", integers: [1], shape: [])
    }
    let group = try HDF5File.openReadOnly(path).group("g")
    XCTAssertEqual(
      checkpointError { try group.dataset("w").readFloats(expectedShape: [3, 2]) },
      .wrongShape(path: path, object: "/g/w", expected: [3, 2], found: [2, 3]))
    XCTAssertEqual(
      checkpointError { try group.dataset("w").readFloats(expectedShape: [6]) },
      .wrongShape(path: path, object: "/g/w", expected: [6], found: [2, 3]))
    XCTAssertEqual(
      checkpointError { try group.dataset("n").readFloats() },
      .wrongDatatype(path: path, object: "/g/n", expected: "float16, float32 or float64", found: "int64"))
    XCTAssertEqual(
      checkpointError { try group.dataset("w").readIntegers() },
      .wrongDatatype(path: path, object: "/g/w", expected: "integer", found: "float32"))
  }

  func testCreateWithoutOverwriteKeepsTheExistingFile() throws {
    let path = folder.file("kept.h5")
    try HDF5File.create(path).close()
    let before = bytes(of: path)
    guard
      case .writeFailed(let failedPath, _)? = checkpointError({ try HDF5File.create(path, overwrite: false) })
    else { return XCTFail("expected .writeFailed") }
    XCTAssertEqual(failedPath, path)
    XCTAssertEqual(bytes(of: path), before)
  }

  func testCloseFailsWhileObjectsAreOpenAndNothingLeaks() throws {
    let baseline = HDF5File.openObjectCount
    let path = folder.file("open.h5")
    let file = try HDF5File.create(path)
    var group: HDF5Group? = try file.createGroup("g")
    XCTAssertGreaterThan(HDF5File.openObjectCount, baseline)
    XCTAssertNotNil(checkpointError { try file.close() })
    XCTAssertTrue(file.isOpen)
    XCTAssertEqual(group?.name, "/g")
    group = nil
    try file.close()
    try file.close()
    XCTAssertFalse(file.isOpen)
    XCTAssertEqual(HDF5File.openObjectCount, baseline)
  }

  /// Many create/read cycles, every error path included, leave no HDF5 object open.
  func testNoHandleLeaksOverManyCyclesIncludingErrors() throws {
    let baseline = HDF5File.openObjectCount
    let text = folder.file("text.h5")
    write(Array("not HDF5\n".utf8), to: text)
    let empty = folder.file("empty.h5")
    write([], to: empty)
    let path = folder.file("cycle.h5")
    for cycle in 0..<200 {
      do {
        let group = try HDF5File.create(path).createGroup("a/b")
        try group.writeDataset(
          "w", floats: [Float(cycle), 1, 2, 3], shape: [2, 2], precision: cycle % 2 == 0 ? .f32 : .f16)
        try group.setAttribute("s", string: "cycle \(cycle)")
        try group.setAttribute("i", integer: Int64(cycle))
        _ = checkpointError { try group.createGroup("w/x") }  // a dataset in the path
        _ = checkpointError { try group.writeDataset("w", floats: [1], shape: [1]) }  // exists
      }
      let file = try HDF5File.openReadOnly(path)
      let group = try file.group("a/b")
      XCTAssertEqual(try group.dataset("w").readFloats(expectedShape: [2, 2])[0], Float(cycle))
      XCTAssertEqual(try group.stringAttribute("s"), "cycle \(cycle)")
      XCTAssertEqual(try group.memberNames(), ["w"])
      _ = checkpointError { try group.dataset("w").readFloats(expectedShape: [4]) }
      _ = checkpointError { try group.dataset("w").readIntegers() }
      _ = checkpointError { try group.dataset("missing") }
      _ = checkpointError { try group.integerAttribute("s") }
      _ = checkpointError { try group.stringAttribute("missing") }
      _ = checkpointError { try file.group("a/missing") }
      _ = checkpointError { try file.group("a/b/w") }
      _ = checkpointError { try HDF5File.openReadOnly(text) }
      _ = checkpointError { try HDF5File.openReadOnly(empty) }
      _ = checkpointError { try HDF5File.openReadOnly(folder.file("missing.h5")) }
      _ = checkpointError { try HDF5File.create(folder.file("no/such/folder.h5")) }
    }
    XCTAssertEqual(HDF5File.openObjectCount, baseline)
  }
}

/// HDF5's error stacks made readable.
final class HDF5ErrorTextTests: XCTestCase {
  func testASystemErrorInsideTheStackComesFirstAndLongStacksAreCut() {
    let diskFull =
      "H5Fclose(): closing file ID failed: H5F__dest(): problems closing file: H5FD_write(): driver write request failed: "
      + "H5FD__sec2_write(): file write failed: time = Tue Dec  1 17:00:00 2026, filename = '/tmp/x.h5', file descriptor = 5, "
      + "errno = 28, error message = 'No space left on device', buf = 0x55d0, total write size = 1048576, "
      + "bytes this sub-write = 1048576, bytes actually written = 18446744073709551615, offset = 0"
    XCTAssertEqual(HDF5Library.brief(diskFull), "No space left on device (HDF5: H5Fclose())")
    let long = (0..<40).map { "H5X\($0)(): step \($0) failed" }.joined(separator: ": ")
    let short = HDF5Library.brief(long)
    XCTAssertLessThan(short.count, 300)
    XCTAssertTrue(short.hasPrefix("H5X0(): … : step 39 failed"), short)
    XCTAssertEqual(HDF5Library.brief("H5Fopen(): unable to open file"), "H5Fopen(): unable to open file")
  }
}

/// A file can declare a dataset of any shape in a few bytes; reading it must not allocate for it.
final class HDF5DeclaredSizeTests: XCTestCase {
  func testADatasetDeclaringMoreElementsThanMemoryIsRefusedBeforeReading() throws {
    let folder = TemporaryFolder()
    defer { folder.remove() }
    let path = folder.file("huge.h5")
    // 2^20 × 2^20 float32 (4 TiB), contiguous with late allocation: the file stays tiny.
    HDF5Library.prepareThread()
    let file = H5Fcreate(path, distill_H5F_ACC_TRUNC(), distill_H5P_DEFAULT(), distill_H5P_DEFAULT())
    XCTAssertGreaterThanOrEqual(file, 0)
    var dims: [hsize_t] = [1 << 20, 1 << 20]
    let space = H5Screate_simple(2, &dims, nil)
    let dataset = H5Dcreate2(
      file, "weight", distill_H5T_NATIVE_FLOAT(), space, distill_H5P_DEFAULT(), distill_H5P_DEFAULT(),
      distill_H5P_DEFAULT())
    XCTAssertGreaterThanOrEqual(dataset, 0)
    _ = H5Dclose(dataset)
    _ = H5Sclose(space)
    _ = H5Fclose(file)
    let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
    XCTAssertLessThan(size, 1 << 16)
    XCTAssertThrowsError(try HDF5File.openReadOnly(path).rootGroup().dataset("weight")) {
      XCTAssertEqual(
        $0 as? CheckpointError,
        .tooLarge(path: path, object: "/weight", shape: [1 << 20, 1 << 20], limit: ProcessMemory.physicalBytes))
      XCTAssertTrue("\($0)".contains("declares shape [1048576, 1048576]"), "\($0)")
    }
  }
}
