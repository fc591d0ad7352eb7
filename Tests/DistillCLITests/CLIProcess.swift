import Foundation
import XCTest

/// The `distill` executable the CLI tests run: `DISTILL_EXECUTABLE` when set (CI points it at
/// the release build, `.build/release/distill`, the binary users run), else the one built
/// beside this test bundle (`.build/<triple>/debug/distill`; the test target depends on it, so
/// `swift test` builds it). Nil (and the tests fail, never skip) when it cannot be found.
let distillExecutable: String? = {
  if let given = ProcessInfo.processInfo.environment["DISTILL_EXECUTABLE"], !given.isEmpty {
    let path = URL(fileURLWithPath: given).standardizedFileURL.path
    return FileManager.default.isExecutableFile(atPath: path) ? path : nil
  }
  let candidates = [
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
    Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
  ].map { $0.appendingPathComponent("distill").path }
  return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

/// A `distill` process with its output collected into files.
final class DistillProcess {
  let process = Process()
  private let output: URL
  private let errors: URL

  /// Starts `distill arguments…` in `directory`; with a `launcher` (`mpirun -np 2 …`), starts
  /// `launcher… distill arguments…`.
  init(
    _ arguments: [String], in directory: String, environment: [String: String] = [:], launcher: [String] = [],
    file: StaticString = #filePath, line: UInt = #line
  ) throws
  {
    guard let executable = distillExecutable else {
      XCTFail(
        "the distill executable is not next to the test bundle (\(CommandLine.arguments[0]))", file: file,
        line: line)
      throw CocoaError(.fileNoSuchFile)
    }
    let id = UUID().uuidString
    output = URL(fileURLWithPath: NSTemporaryDirectory() + "distill-out-\(id)")
    errors = URL(fileURLWithPath: NSTemporaryDirectory() + "distill-err-\(id)")
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
    if let program = launcher.first {
      process.executableURL = URL(fileURLWithPath: program)
      process.arguments = Array(launcher.dropFirst()) + [executable] + arguments
    } else {
      process.executableURL = URL(fileURLWithPath: executable)
      process.arguments = arguments
    }
    if !environment.isEmpty {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    process.standardOutput = try FileHandle(forWritingTo: output)
    process.standardError = try FileHandle(forWritingTo: errors)
    try process.run()
  }

  deinit {
    try? FileManager.default.removeItem(at: output)
    try? FileManager.default.removeItem(at: errors)
  }

  var isRunning: Bool { process.isRunning }

  func send(_ signal: Int32) { kill(process.processIdentifier, signal) }

  /// Waits for the end; returns the exit status, or 128 + the signal that ended it.
  @discardableResult
  func wait() -> Int32 {
    process.waitUntilExit()
    return process.terminationReason == .uncaughtSignal
      ? 128 + process.terminationStatus : process.terminationStatus
  }

  var standardOutput: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
  var standardError: String { (try? String(contentsOf: errors, encoding: .utf8)) ?? "" }

  /// Runs `distill arguments…` to its end: (status, stdout, stderr).
  static func run(
    _ arguments: [String], in directory: String, environment: [String: String] = [:], launcher: [String] = []
  ) throws -> (Int32, String, String) {
    let p = try DistillProcess(arguments, in: directory, environment: environment, launcher: launcher)
    let status = p.wait()
    return (status, p.standardOutput, p.standardError)
  }
}

/// The temporary files of interrupted or ongoing atomic writes in `folder` (`.<name>.tmp-…`).
func temporaryFiles(in folder: String) -> Set<String> {
  Set(((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.contains(".tmp-") })
}
