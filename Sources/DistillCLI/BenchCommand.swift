import ArgumentParser
import Autodiff
import Foundation
import NN

/// `distill bench`: training and inference throughput and peak memory for the workloads of
/// PyTorch's reference script (`../shared/peers/torch_bench.py`), measured the same way: synthetic
/// data of MNIST shape, SGD with momentum 0.9 and lr 0.01, batch 128 (1024 for inference), the
/// median samples/s over repeats after a warm-up, and the process's peak RSS so far.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Measure training and inference throughput (samples/s) and peak memory.",
    discussion: """
      Build with `swift build -c release` first: debug builds are 10–50× slower.
      Run PyTorch's script with the same thread count beside it for a fair ratio:
        /tmp/torchref/bin/python ../shared/peers/torch_bench.py --threads 2 --json > torch.json
        .build/release/distill bench --threads 2 --peer torch.json
      """)

  @Option(help: "OpenBLAS threads (PyTorch's script defaults to 2).")
  var threads: Int = 2

  @Flag(help: "Fewer steps and repeats (20 × 3 instead of 50 × 5), as the PyTorch script's --quick.")
  var quick = false

  @Flag(help: "Print one JSON object (same layout as torch_bench.py --json) instead of a table.")
  var json = false

  @Option(help: "Workloads to run, comma-separated (default: all of PyTorch's script's; deep_mlp_recompute only when named). \(Workload.allCases.map(\.rawValue).joined(separator: ", ")).")
  var only: String?

  @Option(help: "A JSON file written by torch_bench.py --json: print our/PyTorch ratios beside our figures.")
  var peer: String?

  func validate() throws {
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    if let only {
      for name in only.split(separator: ",") where Workload(rawValue: String(name)) == nil {
        throw ValidationError(
          "--only: unknown workload '\(name)'; choose from \(Workload.allCases.map(\.rawValue).joined(separator: ", "))")
      }
    }
  }

  func run() throws {
    BLAS.threadCount = threads
    let peerResults = try peer.map(loadPeerResults)
    let selected = only.map { $0.split(separator: ",").compactMap { Workload(rawValue: String($0)) } }
      ?? Workload.allCases.filter { $0 != .deepMLPRecompute }
    let (steps, repeats) = quick ? (20, 3) : (50, 5)
    var results: [(Workload, Measurement)] = []
    if !json {
      print("swift-distill bench: \(threads) OpenBLAS thread(s), \(steps) steps × \(repeats) repeats, release build")
    }
    for workload in selected {
      let measurement = workload.measure(steps: steps, repeats: repeats)
      results.append((workload, measurement))
      if !json {
        var line = "\(workload.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)) "
          + "\(format(measurement.median, width: 10)) samples/s  (min \(format(measurement.min)), max \(format(measurement.max)))"
          + "  peak RSS \(format(measurement.peakRSSMegabytes)) MB"
        if let torch = peerResults?[workload.rawValue] {
          line += "  | PyTorch \(format(torch)) → ratio \(format(measurement.median / torch, digits: 2))"
        }
        print(line)
        for (name, fields) in measurement.variants {
          print(
            "  \(name.padding(toLength: 6, withPad: " ", startingAt: 0))"
              + fields.map { "  \($0.0) \(format($0.1, digits: $0.0.contains("ratio") ? 3 : 1))" }.joined())
        }
      }
    }
    if json {
      var entries: [String] = []
      for (workload, m) in results {
        entries.append(
          "\"\(workload.rawValue)\": {\"samples_per_s\": \(format(m.median)), \"min\": \(format(m.min)), "
            + "\"max\": \(format(m.max)), \"peak_rss_mb\": \(format(m.peakRSSMegabytes))"
            + variantsJSON(m.variants) + "}")
      }
      print("{\"meta\": {\"swift_distill\": true, \"threads\": \(threads), \"steps\": \(steps), \"repeats\": \(repeats)},")
      print(" \"results\": {\n  " + entries.joined(separator: ",\n  ") + "\n }\n}")
    }
  }

  private func loadPeerResults(_ path: String) throws -> [String: Double] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ValidationError("--peer \(path): cannot read the file")
    }
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let results = object["results"] as? [String: [String: Any]]
    else {
      throw ValidationError("--peer \(path): not the JSON that torch_bench.py --json prints (no \"results\" object)")
    }
    return results.compactMapValues { ($0["samples_per_s"] as? NSNumber)?.doubleValue }
  }
}

/// `, "variants": {"name": {"field": value, …}, …}` for a workload that compares settings;
/// empty for the others, whose entries keep torch_bench.py's layout.
func variantsJSON(_ variants: [(name: String, fields: [(String, Double)])]) -> String {
  guard !variants.isEmpty else { return "" }
  let entries = variants.map { name, fields in
    "\"\(name)\": {" + fields.map { "\"\($0.0)\": \(format($0.1, digits: 4))" }.joined(separator: ", ") + "}"
  }
  return ", \"variants\": {" + entries.joined(separator: ", ") + "}"
}

func format(_ value: Double, width: Int = 0, digits: Int = 1) -> String {
  let text = String(format: "%.\(digits)f", value)
  return String(repeating: " ", count: max(0, width - text.count)) + text
}
