import Datasets
import Foundation
import XCTest

final class CSVDatasetTests: XCTestCase {
  let root: String = {
    var path = "\(#filePath)"
    for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path
  }()

  func temporaryFile(_ contents: [UInt8], suffix: String = ".csv") -> String {
    let path = NSTemporaryDirectory() + "distill-test-\(UUID().uuidString)\(suffix)"
    FileManager.default.createFile(atPath: path, contents: Data(contents))
    addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
  }

  func testEmbeddedDigitsHasThePublishedCounts() throws {
    let digits = try loadEmbeddedDigits(root: root)
    XCTAssertEqual(digits.count, 1797)
    XCTAssertEqual(digits.sampleShape, [64])
    XCTAssertEqual(digits.classCount, 10)
    let perClass = (0..<10).map { c in digits.labels.filter { $0 == c }.count }
    XCTAssertEqual(perClass, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    XCTAssertEqual(digits.features.min(), 0)
    XCTAssertEqual(digits.features.max(), 1)
  }

  func testStratifiedSplitIsSeededAndDisjoint() throws {
    let digits = try loadEmbeddedDigits(root: root)
    let (a1, b1) = digits.stratifiedSplit(validationFraction: 0.2, seed: 3)
    let (a2, b2) = digits.stratifiedSplit(validationFraction: 0.2, seed: 3)
    XCTAssertEqual(a1.features, a2.features)
    XCTAssertEqual(b1.labels, b2.labels)
    XCTAssertEqual(a1.count + b1.count, 1797)
    XCTAssertEqual(b1.count, 359, accuracy: 5)
    let (_, b3) = digits.stratifiedSplit(validationFraction: 0.2, seed: 4)
    XCTAssertNotEqual(b1.features, b3.features)
  }

  func testRowOfWrongWidthNamesFileAndLine() {
    let path = temporaryFile(Array("1,2,0\n3,4\n".utf8))
    XCTAssertThrowsError(try loadCSVDataset(path: path)) { error in
      guard case .malformed(let file, let line, _)? = error as? DatasetError else {
        return XCTFail("unexpected \(error)")
      }
      XCTAssertEqual(file, path)
      XCTAssertEqual(line, 2)
    }
  }

  func testNonNumericFieldAndBadLabel() {
    let text = temporaryFile(Array("1,x,0\n".utf8))
    XCTAssertThrowsError(try loadCSVDataset(path: text)) { error in
      XCTAssertTrue("\(error)".contains("'x' is not a finite number"), "\(error)")
    }
    let label = temporaryFile(Array("1,2,12\n".utf8))
    XCTAssertThrowsError(try loadCSVDataset(path: label, classCount: 10)) { error in
      XCTAssertEqual(error as? DatasetError, .labelOutOfRange(file: label, index: 0, label: 12, classCount: 10))
    }
  }

  func testMissingFileIsAClearError() {
    XCTAssertThrowsError(try loadCSVDataset(path: "/nonexistent/digits.csv")) { error in
      guard case .cannotOpen(let file, _)? = error as? DatasetError else { return XCTFail("\(error)") }
      XCTAssertEqual(file, "/nonexistent/digits.csv")
    }
  }

  func testTruncatedGzipIsAnError() throws {
    let whole = try Data(contentsOf: URL(fileURLWithPath: root + "/datasets/digits/digits.csv.gz"))
    let path = temporaryFile(Array(whole.prefix(whole.count / 2)), suffix: ".csv.gz")
    XCTAssertThrowsError(try loadCSVDataset(path: path)) { error in
      XCTAssertTrue("\(error)".contains(path), "\(error)")
    }
  }

  func testALabelColumnOutsideTheRowOrAHugeLabelIsAnErrorNotACrash() throws {
    let path = temporaryFile(Array("1,2,3\n4,5,6\n".utf8))
    XCTAssertThrowsError(try loadCSVDataset(path: path, labelColumn: 7)) {
      XCTAssertEqual(
        $0 as? DatasetError,
        .malformed(file: path, line: 1, reason: "the label column 7 is not among the row's 3 fields (0-based)"))
    }
    let huge = temporaryFile(Array("1,2,9223372036854775807\n".utf8))
    XCTAssertThrowsError(try loadCSVDataset(path: huge)) {
      XCTAssertEqual(
        $0 as? DatasetError,
        .malformed(file: huge, line: 1, reason: "label '9223372036854775807' is not an integer in 0..<1048576"))
    }
    let long = temporaryFile(Array(("1," + String(repeating: "x", count: 100_000) + ",3\n").utf8))
    XCTAssertThrowsError(try loadCSVDataset(path: long)) { XCTAssertLessThan("\($0)".count, 300) }
  }

  func testAGzipFileOverTheLimitIsAnErrorNamingTheFile() throws {
    let path = NSTemporaryDirectory() + "distill-test-\(UUID().uuidString).csv.gz"
    addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    try writeGzipFile(path: path, bytes: Array(repeating: UInt8(ascii: "1"), count: 3 << 20))
    XCTAssertThrowsError(try readPossiblyCompressedFile(path, limit: 1 << 20)) {
      guard case .malformed(let file, let line, let reason) = $0 as? DatasetError else { return XCTFail("\($0)") }
      XCTAssertEqual(file, path)
      XCTAssertEqual(line, 0)
      XCTAssertTrue(reason.contains("more than 1048576 bytes"), reason)
      XCTAssertFalse("\($0)".contains(":0:"), "\($0)")
    }
    XCTAssertEqual(try readPossiblyCompressedFile(path, limit: 3 << 20).count, 3 << 20)
  }
}
