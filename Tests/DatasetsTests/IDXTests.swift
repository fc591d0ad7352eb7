import Datasets
import Foundation
import XCTest

final class IDXTests: XCTestCase {
  let fixtures: String = {
    var path = "\(#filePath)"
    for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path + "/Fixtures"
  }()

  /// A fresh folder, removed after the test.
  func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "distill-idx-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
  }

  /// An IDX file's bytes: big-endian magic, one big-endian UInt32 per dimension, then `data`.
  func idx(magic: UInt32, _ dimensions: [Int], _ data: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = []
    for word in [Int(magic)] + dimensions {
      bytes += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: word >> $0) }
    }
    return bytes + data
  }

  func write(_ bytes: [UInt8], to path: String, gzip: Bool = false) throws {
    if gzip {
      try writeGzipFile(path: path, bytes: bytes)
    } else {
      XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
    }
  }

  /// Three 2×4 images with every pixel value distinct, and their labels.
  let pixels: [UInt8] = (0..<24).map { UInt8($0 * 11) }
  let labels: [UInt8] = [0, 9, 3]

  /// Writes the three-image set into `folder` (as `images`/`labels` names) and returns the paths.
  func writeSmallSet(
    in folder: String, images: String = "images", labels labelsName: String = "labels", gzip: Bool = false,
    imageBytes: [UInt8]? = nil, labelBytes: [UInt8]? = nil
  ) throws -> (images: String, labels: String) {
    let paths = (folder + "/" + images, folder + "/" + labelsName)
    try write(imageBytes ?? idx(magic: 2051, [3, 2, 4], pixels), to: paths.0, gzip: gzip)
    try write(labelBytes ?? idx(magic: 2049, [3], labels), to: paths.1, gzip: gzip)
    return paths
  }

  func assertThrows(
    _ expected: DatasetError, _ body: () throws -> Dataset, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
      XCTAssertEqual(error as? DatasetError, expected, file: file, line: line)
    }
  }

  func testRawAndGzipFilesRoundTrip() throws {
    for gzip in [false, true] {
      let paths = try writeSmallSet(in: try temporaryFolder(), gzip: gzip)
      let data = try loadIDXDataset(images: paths.images, labels: paths.labels)
      XCTAssertEqual(data.sampleShape, [1, 2, 4])
      XCTAssertEqual(data.count, 3)
      XCTAssertEqual(data.classCount, 10)
      XCTAssertEqual(data.labels, [0, 9, 3])
      XCTAssertEqual(data.features, pixels.map { Float($0) / 255 })
      XCTAssertEqual(data.features.max(), 253.0 / 255)
      XCTAssertEqual(
        try readIDXFile(paths.images, magic: IDXMagic.images), IDXArray(shape: [3, 2, 4], bytes: pixels))
    }
  }

  func testGzipFileIsCompressed() throws {
    let path = try temporaryFolder() + "/zeros.gz"
    try writeGzipFile(path: path, bytes: [UInt8](repeating: 0, count: 100_000))
    let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
    XCTAssertLessThan(size, 1000)
    XCTAssertEqual(try readPossiblyCompressedFile(path), [UInt8](repeating: 0, count: 100_000))
  }

  func testWrongMagicIsAnError() throws {
    let folder = try temporaryFolder()
    // Labels where images are expected.
    let swapped = try writeSmallSet(in: folder, imageBytes: idx(magic: 2049, [3], labels))
    assertThrows(.wrongMagic(file: swapped.images, expected: 2051, found: 2049)) {
      try loadIDXDataset(images: swapped.images, labels: swapped.labels)
    }
    // Type byte 0x0D (float) instead of 0x08.
    let floats = try writeSmallSet(in: folder, imageBytes: idx(magic: 0x0D03, [3, 2, 4], pixels))
    assertThrows(.wrongMagic(file: floats.images, expected: 2051, found: 0x0D03)) {
      try loadIDXDataset(images: floats.images, labels: floats.labels)
    }
  }

  func testWrongDimensionCountIsAnError() throws {
    let paths = try writeSmallSet(in: try temporaryFolder(), imageBytes: idx(magic: 2050, [3, 8], pixels))
    assertThrows(.wrongMagic(file: paths.images, expected: 2051, found: 2050)) {
      try loadIDXDataset(images: paths.images, labels: paths.labels)
    }
  }

  func testTruncatedFileReportsExpectedAndActualBytes() throws {
    for gzip in [false, true] {
      let whole = idx(magic: 2051, [3, 2, 4], pixels)
      let paths = try writeSmallSet(
        in: try temporaryFolder(), gzip: gzip, imageBytes: Array(whole.dropLast(5)))
      assertThrows(.truncated(file: paths.images, expectedBytes: 16 + 24, actualBytes: 35)) {
        try loadIDXDataset(images: paths.images, labels: paths.labels)
      }
    }
  }

  func testTruncatedGzipStreamNamesTheFile() throws {
    let source = fixtures + "/mnist-t10k-first100/t10k-images-idx3-ubyte.gz"
    let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: source)))
    let paths = try writeSmallSet(in: try temporaryFolder(), imageBytes: Array(whole.prefix(whole.count / 2)))
    XCTAssertThrowsError(try loadIDXDataset(images: paths.images, labels: paths.labels)) { error in
      guard case .malformed(let file, _, let reason)? = error as? DatasetError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(file, paths.images)
      XCTAssertTrue(reason.contains("ends early"), reason)
    }
  }

  func testZeroImagesOfAnImpossibleSizeAreAnErrorNotAnOverflow() throws {
    // Found by Fuzz/FuzzIDX: 0 images of 2^32 − 1 × 2^32 − 1 pixels fit a file of no pixels.
    let folder = try temporaryFolder()
    let paths = try writeSmallSet(
      in: folder, imageBytes: idx(magic: 2051, [0, 0xFFFF_FFFF, 0xFFFF_FFFF], []),
      labelBytes: idx(magic: 2049, [0], []))
    assertThrows(
      .malformed(
        file: paths.images, line: 0,
        reason: "images of 4294967295×4294967295 pixels are larger than any data set's (at most 2^24 pixels)")
    ) { try loadIDXDataset(images: paths.images, labels: paths.labels) }
  }

  func testTruncatedHeaderIsTruncated() throws {
    let whole = idx(magic: 2051, [3, 2, 4], pixels)
    let paths = try writeSmallSet(in: try temporaryFolder(), imageBytes: Array(whole.prefix(10)))
    assertThrows(.truncated(file: paths.images, expectedBytes: 16, actualBytes: 10)) {
      try loadIDXDataset(images: paths.images, labels: paths.labels)
    }
  }

  func testZeroLengthFileIsTruncated() throws {
    let paths = try writeSmallSet(in: try temporaryFolder(), labelBytes: [])
    assertThrows(.truncated(file: paths.labels, expectedBytes: 8, actualBytes: 0)) {
      try loadIDXDataset(images: paths.images, labels: paths.labels)
    }
  }

  func testTrailingBytesAreMalformed() throws {
    let paths = try writeSmallSet(
      in: try temporaryFolder(), imageBytes: idx(magic: 2051, [3, 2, 4], pixels + [1, 2]))
    XCTAssertThrowsError(try loadIDXDataset(images: paths.images, labels: paths.labels)) { error in
      guard case .malformed(let file, _, let reason)? = error as? DatasetError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(file, paths.images)
      XCTAssertTrue(reason.contains("2 bytes after the 40"), reason)
    }
  }

  func testLabelOutOfRangeNamesIndexAndLabel() throws {
    let paths = try writeSmallSet(in: try temporaryFolder(), labelBytes: idx(magic: 2049, [3], [0, 10, 3]))
    assertThrows(.labelOutOfRange(file: paths.labels, index: 1, label: 10, classCount: 10)) {
      try loadIDXDataset(images: paths.images, labels: paths.labels)
    }
  }

  func testImageAndLabelCountMismatch() throws {
    let paths = try writeSmallSet(in: try temporaryFolder(), labelBytes: idx(magic: 2049, [2], [0, 1]))
    assertThrows(.countMismatch(imagesFile: paths.images, images: 3, labelsFile: paths.labels, labels: 2)) {
      try loadIDXDataset(images: paths.images, labels: paths.labels)
    }
  }

  func testMissingFolderNamesTheFolderAndEveryFileTried() {
    let folder = "/nonexistent/fashion-mnist"
    let expected = DatasetError.missingFiles(
      folder: folder,
      lookedFor: [
        "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte", "train-images.idx3-ubyte",
        "train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte", "train-labels.idx1-ubyte",
      ])
    assertThrows(expected) { try loadMNISTFamily(folder: folder, split: .train) }
    XCTAssertTrue("\(expected)".contains("/nonexistent/fashion-mnist"))
    XCTAssertTrue("\(expected)".contains("train-labels-idx1-ubyte.gz"))
  }

  func testMissingLabelsNamesOnlyTheLabelFiles() throws {
    let folder = try temporaryFolder()
    try write(idx(magic: 2051, [3, 2, 4], pixels), to: folder + "/t10k-images-idx3-ubyte.gz", gzip: true)
    assertThrows(
      .missingFiles(
        folder: folder,
        lookedFor: ["t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"])
    ) { try loadMNISTFamily(folder: folder, split: .test) }
  }

  func testMNISTFamilyAcceptsRawAndGzipNames() throws {
    let folder = try temporaryFolder()
    _ = try writeSmallSet(in: folder, images: "train-images-idx3-ubyte", labels: "train-labels.idx1-ubyte")
    _ = try writeSmallSet(
      in: folder, images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz", gzip: true)
    let train = try loadMNISTFamily(folder: folder + "/", split: .train)
    let test = try loadMNISTFamily(folder: folder, split: .test)
    XCTAssertEqual(train.labels, [0, 9, 3])
    XCTAssertEqual(test.features, train.features)
  }

  func testDebianFashionMNISTLayout() {
    // What `dpkg -c dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb` (bookworm) lists.
    XCTAssertEqual(debianFashionMNISTFolder, "/usr/share/datasets/fashion-mnist")
    for split in MNISTSplit.allCases {
      let names = mnistFamilyFileNames(split: split)
      XCTAssertEqual(names.images.first, "\(split == .train ? "train" : "t10k")-images-idx3-ubyte.gz")
      XCTAssertEqual(names.labels.first, "\(split == .train ? "train" : "t10k")-labels-idx1-ubyte.gz")
    }
  }

  /// The first 100 samples of MNIST t10k, checked against numbers computed in Python from the
  /// original file (Tests/Fixtures/mnist-t10k-first100/README.md).
  func testRealMNISTFixtureMatchesPython() throws {
    let data = try loadMNISTFamily(folder: fixtures + "/mnist-t10k-first100", split: .test)
    XCTAssertEqual(data.count, 100)
    XCTAssertEqual(data.sampleShape, [1, 28, 28])
    XCTAssertEqual(Array(data.labels.prefix(5)), [7, 2, 1, 0, 4])
    XCTAssertEqual(
      (0..<10).map { c in data.labels.filter { $0 == c }.count }, [8, 14, 8, 11, 14, 7, 10, 15, 2, 11])
    func pixelSum(_ range: Range<Int>) -> Int {
      data.features[range.lowerBound * 784..<range.upperBound * 784].reduce(0) {
        $0 + Int(($1 * 255).rounded())
      }
    }
    XCTAssertEqual([0, 1, 2, 99].map { pixelSum($0..<$0 + 1) }, [18454, 28850, 9871, 30655])
    XCTAssertEqual(pixelSum(0..<100), 2_396_707)
    XCTAssertEqual(data.features.min(), 0)
    XCTAssertEqual(data.features.max(), 1)
  }
}
