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
}
