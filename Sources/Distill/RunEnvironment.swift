import Autodiff
import Checkpoints
import Foundation

/// This build of swift-distill, as run records and energy labels name it.
public let distillVersion = "0.14.0"

/// Where a run ran, as `summary.json`'s `environment` records it (and `distill label` shows):
/// the CPU model and logical cores, the threads of OpenBLAS and oneDNN, the software's versions
/// and when the run finished.
public struct RunEnvironment: Equatable, Sendable {
  public var cpu: String
  public var cores: Int
  public var threads: Int
  /// (name, version): swift-distill, oneDNN, OpenBLAS's configuration, libhdf5.
  public var software: [String: String]
  /// ISO 8601, UTC.
  public var finished: String

  /// This machine and process, now.
  public static func current() -> RunEnvironment {
    RunEnvironment(
      cpu: cpuModel(), cores: ProcessInfo.processInfo.activeProcessorCount, threads: BLAS.threadCount,
      software: [
        "swift-distill": distillVersion, "onednn": Convolution.oneDNNVersion, "openblas": BLAS.configuration,
        "hdf5": hdf5LibraryVersion,
      ],
      finished: ISO8601DateFormatter().string(from: Date()))
  }

  /// The first `model name` of /proc/cpuinfo, or "unknown".
  static func cpuModel() -> String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
      if let colon = line.firstIndex(of: ":") {
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      }
    }
    return "unknown"
  }

  var json: JSONObject {
    JSONObject([
      ("cpu", .string(cpu)), ("cores", .int(cores)), ("threads", .int(threads)),
      ("software", .raw(JSONObject(software.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }).text)),
      ("finished", .string(finished)),
    ])
  }
}
