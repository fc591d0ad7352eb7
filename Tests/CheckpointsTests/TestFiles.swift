import Checkpoints
import Foundation
import XCTest

/// A fresh temporary folder for one test, removed by `remove()`.
struct TemporaryFolder {
  let path: String

  init() {
    let base =
      NSTemporaryDirectory().hasSuffix("/")
      ? String(NSTemporaryDirectory().dropLast()) : NSTemporaryDirectory()
    var template = Array("\(base)/checkpoints-tests-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "mkdtemp failed")
    path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }

  func file(_ name: String) -> String { "\(path)/\(name)" }

  /// The names in the folder, hidden ones included, sorted.
  var contents: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }

  func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The `CheckpointError` that `body` throws, or nil after a test failure at the caller when it
/// throws none or another error. (Closures do not infer typed throws yet, so `body` is untyped.)
func checkpointError<T>(
  file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
) -> CheckpointError? {
  do {
    _ = try body()
    XCTFail("no error was thrown", file: file, line: line)
    return nil
  } catch let error as CheckpointError {
    return error
  } catch {
    XCTFail("\(error) is not a CheckpointError", file: file, line: line)
    return nil
  }
}

func bytes(of path: String) -> [UInt8] {
  [UInt8](FileManager.default.contents(atPath: path) ?? Data())
}

func write(_ bytes: [UInt8], to path: String) {
  precondition(FileManager.default.createFile(atPath: path, contents: Data(bytes)), "cannot write \(path)")
}
