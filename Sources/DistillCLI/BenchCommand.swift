import ArgumentParser
import Autodiff
import Foundation
import NN

/// `distill bench`: training and inference throughput and peak memory for the workloads of
/// PyTorch's reference script (`scripts/torch_bench.py`), measured the same way: synthetic
/// data of MNIST shape, SGD with momentum 0.9 and lr 0.01, batch 128 (1024 for inference), the
/// median samples/s over repeats after a warm-up, and the process's peak RSS so far.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Measure training and inference throughput (samples/s) and peak memory.",
    discussion: """
      Build with `swift build -c release` first: debug builds are 10–50× slower.
      Run PyTorch's script, scripts/torch_bench.py, with the same thread count
      beside it for a fair ratio (it needs a Python with torch, e.g. from
      python3 -m venv .venv-torch && .venv-torch/bin/pip install torch numpy):
        .venv-torch/bin/python scripts/torch_bench.py --threads 2 --json > torch.json
        .build/release/distill bench --threads 2 --peer torch.json
      or scripts/bench-side-by-side.sh 2 .venv-torch/bin/python, which does both.
      Mixed precision against Float32, side by side (timed in alternating rounds):
        .build/release/distill bench --only mlp_1200,cnn --precision f32,f16-mixed
      oneDNN's convolutions against the im2col reference, side by side:
        .build/release/distill bench --only cnn --convolution onednn,im2col
      Workloads without convolutions also print the fraction of the matrix-product ceiling
      they reach: the step's own products, each timed alone, set the ceiling.
      """)

  @Option(help: "Threads of OpenBLAS and oneDNN (PyTorch's script defaults to 2).")
  var threads: Int = 2

  @Flag(help: "Fewer steps and repeats (20 × 3 instead of 50 × 5), as the PyTorch script's --quick.")
  var quick = false

  @Option(help: "Timed rounds per workload (default 5, or 3 with --quick); more steady a noisy machine's medians.")
  var repeats: Int?

  @Flag(help: "Print one JSON object (same layout as torch_bench.py --json) instead of a table.")
  var json = false

  @Option(help: "Workloads to run, comma-separated (default: all of PyTorch's script's and the method steps dkd_step, at_step, crd_step, each timed against its reference; deep_mlp_recompute and kd_cnn_step alone only when named). \(Workload.allCases.map(\.rawValue).joined(separator: ", ")).")
  var only: String?

  @Option(help: "A JSON file written by torch_bench.py --json: print our/PyTorch ratios beside our figures.")
  var peer: String?

  @Option(
    help: """
      Precisions of the training workloads, comma-separated: f32, f16-mixed, bf16-mixed \
      (default f32). \
      With both, each workload's runs alternate round by round and a ratio line follows.
      """)
  var precision: String = "f32"

  @Option(
    help: """
      Convolution implementations for the convolutional workloads (cnn, cnn_bn, kd_cnn_step, \
      at_step), comma-separated: onednn (convolution, batch norm, ReLU and max pooling as one \
      oneDNN chain, consecutive chains passing their intermediates in oneDNN's layout), \
      onednn-unlinked (the same, each chain reading and writing NCHW), \
      onednn-layers (oneDNN convolutions, the other layers one by one), onednn-nchw (the same \
      without oneDNN's blocked layouts), im2col (default onednn). With more than one, their runs alternate round by round and a ratio \
      line follows.
      """)
  var convolution: String = "onednn"

  @Option(
    help: """
      Bytes the engine may keep of freed tensor buffers for reuse, in MiB (default: the \
      engine's own bound; 0 turns the pool off, to measure what it saves).
      """)
  var bufferPoolMb: Int?

  private var convolutions: [BenchConvolution] {
    convolution.split(separator: ",").compactMap { BenchConvolution(rawValue: String($0)) }
  }

  private var precisions: [BenchPrecision] {
    precision.split(separator: ",").compactMap { BenchPrecision(rawValue: String($0)) }
  }

  func validate() throws {
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    for name in precision.split(separator: ",") where BenchPrecision(rawValue: String(name)) == nil {
      throw ValidationError(
        "--precision: unknown precision '\(name)'; choose from \(BenchPrecision.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    for name in convolution.split(separator: ",") where BenchConvolution(rawValue: String(name)) == nil {
      throw ValidationError(
        "--convolution: unknown implementation '\(name)'; choose from \(BenchConvolution.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    guard !convolutions.isEmpty else {
      throw ValidationError("--convolution: give at least one of \(BenchConvolution.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    if let bufferPoolMb, bufferPoolMb < 0 || bufferPoolMb > 1 << 20 {
      throw ValidationError("--buffer-pool-mb must be between 0 and 1048576, got \(bufferPoolMb)")
    }
    if let repeats, repeats < 1 { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
    guard !precisions.isEmpty else {
      throw ValidationError("--precision: give at least one of \(BenchPrecision.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    if let only {
      for name in only.split(separator: ",") where Workload(rawValue: String(name)) == nil {
        throw ValidationError(
          "--only: unknown workload '\(name)'; choose from \(Workload.allCases.map(\.rawValue).joined(separator: ", "))")
      }
    }
  }

  func run() throws {
    BLAS.threadCount = threads
    if let bufferPoolMb { TensorBufferPool.capacityBytes = bufferPoolMb << 20 }
    let peerResults = try peer.map(loadPeerResults)
    let selected = only.map { $0.split(separator: ",").compactMap { Workload(rawValue: String($0)) } }
      ?? Workload.allCases.filter { ![.deepMLPRecompute, .kdCNNStep, .inferMLP800Single].contains($0) }
    let (steps, defaultRepeats) = quick ? (20, 3) : (50, 5)
    let repeats = self.repeats ?? defaultRepeats
    var results: [(key: String, measurement: Measurement)] = []
    if !json {
      print("swift-distill bench: \(threads) thread(s) (OpenBLAS and oneDNN), \(steps) steps × \(repeats) repeats, release build")
    }
    for workload in selected {
      // Each workload starts as a fresh process would: no tensor buffers kept from the last.
      TensorBufferPool.drain()
      if workload.measuresItself {
        let measurement = DeepMLPRecompute.measure(steps: max(3, steps / 10), repeats: repeats)
        results.append((workload.rawValue, measurement))
        if !json {
          print(tableLine(workload.rawValue, measurement, peer: nil))
          for (name, fields) in measurement.variants {
            print(
              "  \(name.padding(toLength: 6, withPad: " ", startingAt: 0))"
                + fields.map { "  \($0.0) \(format($0.1, digits: $0.0.contains("ratio") ? 3 : 1))" }.joined())
          }
        }
        continue
      }
      if let reference = workload.reference {
        // A method step and its reference, alternating round by round in each precision.
        for runPrecision in precisions {
          for conv in workload.convolves ? convolutions : [.onednn] {
          let suffix = (runPrecision == .f32 ? "" : "/\(runPrecision.rawValue)") + conv.suffix
          let measured = timedSideBySide(
            [reference.prepare(steps: steps, precision: runPrecision, convolution: conv),
             workload.prepare(steps: steps, precision: runPrecision, convolution: conv)],
            repeats: repeats)
          results.append((workload.rawValue + suffix, measured[1]))
          guard !json else { continue }
          print(tableLine(reference.rawValue + suffix + " (paired)", measured[0], peer: nil))
          print(tableLine(workload.rawValue + suffix, measured[1], peer: nil))
          if workload.isSpeedup {
            print(
              "  \(workload.rawValue) / \(reference.rawValue) samples/s: "
                + pairedRatios(measured[1].rounds, measured[0].rounds) + " (target ≥ \(workload.targetRatio))")
          } else {
            // Time per step relative to the reference: samples/s of the reference over the method's.
            print(
              "  \(workload.rawValue) / \(reference.rawValue) step time: "
                + pairedRatios(measured[0].rounds, measured[1].rounds) + " (target ≤ \(workload.targetRatio))")
          }
          }
        }
        continue
      }
      let runPrecisions = workload.trains ? precisions : [.f32]
      let runConvolutions = workload.convolves ? convolutions : [.onednn]
      let settings = runPrecisions.flatMap { p in runConvolutions.map { (precision: p, convolution: $0) } }
      let runs = settings.map { workload.prepare(steps: steps, precision: $0.precision, convolution: $0.convolution) }
      var measurements = timedSideBySide(runs, repeats: repeats)
      if !workload.convolves {
        for i in runs.indices { measurements[i].ceiling = matrixProductCeiling(runs[i]) }
      }
      for (setting, measurement) in zip(settings, measurements) {
        let key = (setting.precision == .f32 ? workload.rawValue : "\(workload.rawValue)/\(setting.precision.rawValue)")
          + setting.convolution.suffix
        results.append((key, measurement))
        if !json {
          print(tableLine(key, measurement, peer: peerResults?[key]))
          if let ceiling = measurement.ceiling {
            print(
              "  \(key): \(format(100 * measurement.median / ceiling))% of the matrix-product ceiling"
                + " (the step's products timed alone allow \(format(ceiling)) samples/s)")
          }
        }
      }
      if !json && runConvolutions.count > 1 {
        // Each implementation against the first, per precision, round by round.
        for p in runPrecisions {
          let mine = zip(settings, measurements).filter { $0.0.precision == p }
          for (setting, m) in mine.dropFirst() {
            print(
              "  \(setting.convolution.rawValue) / \(mine[0].0.convolution.rawValue) (\(p.rawValue)): samples/s "
                + pairedRatios(m.rounds, mine[0].1.rounds))
          }
        }
      }
      // Each precision against f32, with the first convolution implementation.
      var byPrecision: [BenchPrecision: Measurement] = [:]
      for (setting, m) in zip(settings, measurements) where setting.convolution == runConvolutions[0] {
        byPrecision[setting.precision] = m
      }
      if !json, let f32 = byPrecision[.f32], let mixed = byPrecision[.f16Mixed],
        let f32Bytes = f32.memory?.totalBytes, let mixedBytes = mixed.memory?.totalBytes
      {
        // Each round's ratio compares runs timed back to back, so load that changes between
        // rounds cancels; their median is the figure to read on a shared machine.
        let paired = zip(mixed.rounds, f32.rounds).map { $0 / $1 }.sorted()
        print(
          "  f16-mixed / f32: parameter + activation bytes ×\(format(Double(mixedBytes) / Double(f32Bytes), digits: 3))"
            + " (target ≤ 0.6); samples/s ×\(format(paired[paired.count / 2], digits: 3)) median of rounds"
            + " (\(paired.map { format($0, digits: 2) }.joined(separator: ", "))) (target ≥ 0.95)")
      }
      if !json, let f32 = byPrecision[.f32], let bf16 = byPrecision[.bf16Mixed] {
        print("  bf16-mixed / f32: samples/s " + pairedRatios(bf16.rounds, f32.rounds))
      }
    }
    if json {
      let entries = results.map { key, m in
        var fields = "\"samples_per_s\": \(format(m.median)), \"min\": \(format(m.min)), "
          + "\"max\": \(format(m.max)), \"peak_rss_mb\": \(format(m.peakRSSMegabytes))"
        if let memory = m.memory {
          fields += ", \"parameter_bytes\": \(memory.parameterBytes), \"activation_bytes\": \(memory.activationBytes)"
        }
        if let ceiling = m.ceiling { fields += ", \"matrix_product_ceiling\": \(format(ceiling))" }
        return "\"\(key)\": {\(fields)\(variantsJSON(m.variants))}"
      }
      print("{\"meta\": {\"swift_distill\": true, \"threads\": \(threads), \"steps\": \(steps), \"repeats\": \(repeats)},")
      print(" \"results\": {\n  " + entries.joined(separator: ",\n  ") + "\n }\n}")
    }
  }

  private func tableLine(_ key: String, _ m: Measurement, peer torch: Double?) -> String {
    var line = "\(key.padding(toLength: 22, withPad: " ", startingAt: 0)) "
      + "\(format(m.median, width: 10)) samples/s  (min \(format(m.min)), max \(format(m.max)))"
      + "  peak RSS \(format(m.peakRSSMegabytes)) MB"
    if let memory = m.memory {
      line += "  params \(format(Double(memory.parameterBytes) / 1e6, digits: 2)) MB"
        + " + activations \(format(Double(memory.activationBytes) / 1e6, digits: 2)) MB"
    }
    if let torch {
      line += "  | PyTorch \(format(torch)) → ratio \(format(m.median / torch, digits: 2))"
    }
    return line
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

/// "×median median of rounds (min …, max …)" of the round-by-round ratios numerator / denominator
/// (rounds timed side by side pair up, so load that changes between rounds cancels).
func pairedRatios(_ numerator: [Double], _ denominator: [Double]) -> String {
  let ratios = zip(numerator, denominator).map { $0 / $1 }.sorted()
  return "×\(format(ratios[ratios.count / 2], digits: 3)) median of rounds"
    + " (min \(format(ratios.first!, digits: 3)), max \(format(ratios.last!, digits: 3)))"
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
