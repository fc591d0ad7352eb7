import Foundation

extension EnergyLabel {
  /// `label.json`: every figure of the label, keys sorted.
  public var json: String {
    var object: [String: Any] = [
      "format": "swift-distill-label-1", "recipe": recipe, "runs": runs, "seeds": seeds.map { Int($0) },
      "task": "image classification, \(classes) classes", "dataset": dataset, "split": testSplit,
      "input_shape": inputShape, "model_file": modelFile, "model_hashes": modelHashes,
      "test_accuracy_mean": accuracy.mean, "parameters": parameters, "bytes_on_disk": bytes, "precision": precision,
      "training_kj": Dictionary(training.map { ($0.phase, $0.kilojoules) }, uniquingKeysWith: { a, _ in a }),
      "training_kj_total": training.reduce(0) { $0 + $1.kilojoules },
      "grid_intensity_g_per_kwh": gridIntensity, "grid_intensity_source": gridSource,
      "training_g_co2e": trainingGrams, "energy_source": energySource,
      "cpu": cpu, "software": software, "date": date,
      "grade": String(grade),
      "grade_rule": "inference µJ/sample at batch 1024 of the model and of the reference set, measured side by side "
        + "on this machine when labelling (median of 3 alternating rounds): with lo and hi the least and greatest "
        + "of the reference set, A below lo, G above hi, else B-F by t = log(x/lo)/log(hi/lo) in fifths",
      "grade_measured_uj_per_sample": gradedMicrojoules,
      "grade_references": references.map { ["model": $0.name, "uj_per_sample": $0.microjoules] as [String: Any] },
    ]
    if let std = accuracy.std { object["test_accuracy_std"] = std }
    if let v = inferenceMicrojoules { object["inference_uj_per_sample_batch1024"] = v }
    if let v = singleSampleMicrojoules { object["inference_uj_per_sample_batch1"] = v }
    if let v = threads { object["inference_threads"] = v }
    if let v = gramsPerMillionInferences { object["g_co2e_per_million_inferences"] = v }
    if let v = sparsity { object["sparsity"] = v }
    if let v = megaflops { object["mflops_per_sample"] = v }
    if let v = cores { object["cores"] = v }
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    return String(decoding: data, as: UTF8.self) + "\n"
  }

  /// The label as an SVG, laid out like an appliance energy label: the A–G scale with this
  /// model's grade, then its figures; an estimate says so in a red band at the top.
  public var svg: String {
    let width = 460.0
    var y = 0.0
    var out: [String] = []
    func f(_ v: Double) -> String { String(format: "%.1f", v) }
    func text(_ x: Double, _ y: Double, _ s: String, size: Int = 13, weight: String = "normal", anchor: String = "start", fill: String = "#111") {
      out.append(
        "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" font-weight=\"\(weight)\" text-anchor=\"\(anchor)\" fill=\"\(fill)\">"
          + CompareReport.escaped(s) + "</text>")
    }
    // Header.
    out.append("<rect x=\"0\" y=\"0\" width=\"\(f(width))\" height=\"54\" fill=\"#0b3d91\"/>")
    text(16, 24, "ENERGY LABEL", size: 18, weight: "bold", fill: "white")
    text(16, 44, "swift-distill · \(recipe)", size: 13, fill: "white")
    text(width - 16, 24, modelFile, size: 12, anchor: "end", fill: "white")
    text(width - 16, 44, "\(seeds.count) seed\(seeds.count == 1 ? "" : "s")", size: 12, anchor: "end", fill: "white")
    y = 54
    if energySource != "rapl" {
      out.append("<rect x=\"0\" y=\"\(f(y))\" width=\"\(f(width))\" height=\"34\" fill=\"#c62828\"/>")
      text(width / 2, y + 22, "ESTIMATE · not measured (CPU time × W per core)", size: 13, weight: "bold", anchor: "middle", fill: "white")
      y += 34
    }
    // The A–G scale.
    y += 14
    let colours = ["#00a651", "#4cb848", "#bfd730", "#fff200", "#fdb913", "#f37021", "#ed1c24"]
    for (i, letter) in "ABCDEFG".enumerated() {
      let barY = y + Double(i) * 30
      let barWidth = 120 + Double(i) * 28
      out.append(
        "<polygon points=\"16,\(f(barY)) \(f(16 + barWidth)),\(f(barY)) \(f(16 + barWidth + 12)),\(f(barY + 12)) "
          + "\(f(16 + barWidth)),\(f(barY + 24)) 16,\(f(barY + 24))\" fill=\"\(colours[i])\"/>")
      text(26, barY + 18, String(letter), size: 17, weight: "bold", fill: i == 3 ? "#333" : "white")
      if letter == grade {
        out.append(
          "<polygon points=\"\(f(width - 16)),\(f(barY - 4)) \(f(width - 96)),\(f(barY - 4)) \(f(width - 112)),\(f(barY + 12)) "
            + "\(f(width - 96)),\(f(barY + 28)) \(f(width - 16)),\(f(barY + 28))\" fill=\"#111\"/>")
        text(width - 56, barY + 21, String(letter), size: 24, weight: "bold", anchor: "middle", fill: "white")
      }
    }
    text(16, y + 7 * 30 + 12, "Grade: inference energy against \(references.count) reference models on this machine", size: 10, fill: "#555")
    y += 7 * 30 + 30
    // Figures.
    func row(_ label: String, _ value: String, bold: Bool = false) {
      text(16, y, label, size: 13, fill: "#333")
      text(width - 16, y, value, size: 13, weight: bold ? "bold" : "normal", anchor: "end")
      out.append("<line x1=\"16\" y1=\"\(f(y + 6))\" x2=\"\(f(width - 16))\" y2=\"\(f(y + 6))\" stroke=\"#ddd\"/>")
      y += 22
    }
    let accuracyText = String(format: "%.2f%%", accuracy.mean * 100)
      + (accuracy.std.map { String(format: " ± %.2f", $0 * 100) } ?? "")
    row("Test accuracy (\(dataset), \(testSplit) split)", accuracyText, bold: true)
    row("Inference, batch 1024", inferenceMicrojoules.map { String(format: "%.1f µJ/sample", $0) } ?? "—", bold: true)
    row("Inference, batch 1", singleSampleMicrojoules.map { String(format: "%.1f µJ/sample", $0) } ?? "—")
    row("CO₂e per million inferences", gramsPerMillionInferences.map { String(format: "%.3g g", $0) } ?? "—")
    let total = training.reduce(0) { $0 + $1.kilojoules }
    row("Training energy", String(format: "%.2f kJ", total), bold: true)
    row("  " + training.map(\.phase).joined(separator: " + "), training.map { String(format: "%.2f", $0.kilojoules) }.joined(separator: " + ") + " kJ")
    row("CO₂e of training", String(format: "%.3g g", trainingGrams))
    row("Parameters (non-zero)", "\(parameters)")
    row("Size on disk", String(format: "%.1f kB", Double(bytes) / 1000))
    row("Precision", precision)
    if let sparsity { row("Sparsity of pruned layers", String(format: "%.1f%%", sparsity * 100)) }
    row("Compute per sample", megaflops.map { String(format: "%.3f MFLOPs", $0) } ?? "—")
    y += 4
    let footer = [
      "Grid: \(Int(gridIntensity)) g CO₂e/kWh (" + (gridSource == Self.defaultGridSource ? "world 2023, Ember GER 2024" : gridSource) + ")",
      "Meter: \(energySource == "rapl" ? "RAPL (measured, CPU packages)" : "estimate (CPU time × W per core)")"
        + (threads.map { ", \($0) thread\($0 == 1 ? "" : "s")" } ?? ""),
      "CPU: \(cpu)" + (cores.map { ", \($0) cores" } ?? ""),
      "Software: " + software.sorted { $0.key < $1.key }.filter { $0.key != "openblas" }.map { "\($0.key) \($0.value)" }.joined(separator: ", "),
      "Date: \(date)",
      "Model: \(modelHashes.first ?? "?")" + (modelHashes.count > 1 ? " (seed \(seeds[0]); all in label.json)" : ""),
    ]
    for line in footer {
      text(16, y, line, size: 10, fill: "#555")
      y += 15
    }
    let height = y + 8
    return ([
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
        + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\">",
      "<rect width=\"100%\" height=\"100%\" fill=\"white\" stroke=\"#0b3d91\" stroke-width=\"3\"/>",
    ] + out + ["</svg>"]).joined(separator: "\n") + "\n"
  }
}
