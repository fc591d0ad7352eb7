import Foundation
import Distill
import DistillRecipes

/// What the x axis of a compare plot shows: the training energy that produced each model
/// (teacher + student, and the compression stages up to it), or the model's inference energy
/// per sample.
public enum ComparePlotAxis: Sendable {
  case training, inference

  func value(_ run: ComparedRun) -> Double? {
    switch self {
    case .training: return run.totalJoules
    case .inference: return run.inferenceMicrojoulesPerSample
    }
  }

  var title: String {
    switch self {
    case .training: return "Test accuracy against training energy (teacher + student)"
    case .inference: return "Test accuracy against inference energy per sample"
    }
  }

  var axisLabel: String {
    switch self {
    case .training: return "training energy, joules (log scale)"
    case .inference: return "inference energy per sample, µJ (log scale, batch 1024)"
    }
  }

  func tickLabel(_ value: Double) -> String {
    switch self {
    case .training: return CompareReport.joulesLabel(value)
    case .inference: return CompareReport.trimmed(value) + " µJ"
    }
  }
}

extension CompareReport {
  /// An SVG plot of test accuracy (%) against training joules, teacher + student (and the
  /// compression stages up to a stage's model), on a log scale: one point per row labelled with
  /// its run folder (and stage) and data set, filled for RAPL measurements and hollow for
  /// estimates (the legend says which; labels add `(estimate)` when the plot mixes sources);
  /// the Pareto front of each source on each data set joined by a line of the source's colour
  /// (accuracies on different data sets do not compare). Rows without energy figures are left
  /// out (the table lists them).
  public var svg: String { plot(.training) }

  /// The same plot against each model's inference energy per sample (batch 1024): which model
  /// costs the fewest joules every time it runs, for its accuracy.
  public var inferenceSVG: String { plot(.inference) }

  func plot(_ axis: ComparePlotAxis) -> String {
    let (width, height) = (760.0, 480.0)
    let (left, right, top, bottom) = (70.0, 40.0, 40.0, 60.0)
    let plotted = runs.indices.filter { axis.value(runs[$0]).map { $0 > 0 } ?? false }
    let logs = plotted.map { log10(axis.value(runs[$0])!) }
    var (x0, x1) = (floor(logs.min() ?? 0), ceil(logs.max() ?? 1))
    if x1 <= x0 { x1 = x0 + 1 }
    let accuracies = plotted.map { runs[$0].testAccuracy * 100 }
    let step = Self.niceStep(((accuracies.max() ?? 100) - (accuracies.min() ?? 0)) / 5)
    var y0 = floor(((accuracies.min() ?? 0) - step / 2) / step) * step
    var y1 = ceil(((accuracies.max() ?? 100) + step / 2) / step) * step
    (y0, y1) = (max(y0, 0), min(max(y1, y0 + step), 100 + step))
    func x(_ joules: Double) -> Double { left + (log10(joules) - x0) / (x1 - x0) * (width - left - right) }
    func y(_ percent: Double) -> Double { top + (y1 - percent) / (y1 - y0) * (height - top - bottom) }
    func f(_ v: Double) -> String { String(format: "%.1f", v) }

    var out = [
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
        + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
      "<text x=\"\(f(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
        + "\(axis.title)</text>",
    ]
    // Axes, decade ticks with 2× and 5× minor ticks, accuracy grid.
    out.append(
      "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(width - left - right))\" "
        + "height=\"\(f(height - top - bottom))\" fill=\"none\" stroke=\"#333\"/>")
    for decade in Int(x0)...Int(x1) {
      for m in [1.0, 2.0, 5.0] where Double(decade) + log10(m) <= x1 {
        let px = x(m * pow(10, Double(decade)))
        out.append(
          "<line x1=\"\(f(px))\" y1=\"\(f(top))\" x2=\"\(f(px))\" y2=\"\(f(height - bottom))\" "
            + "stroke=\"#ddd\"\(m == 1 ? "" : " stroke-dasharray=\"2,3\"")/>")
        out.append(
          "<text x=\"\(f(px))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\">"
            + "\(axis.tickLabel(m * pow(10, Double(decade))))</text>")
      }
    }
    var tick = y0
    while tick <= y1 + 1e-9 {
      out.append(
        "<line x1=\"\(f(left))\" y1=\"\(f(y(tick)))\" x2=\"\(f(width - right))\" y2=\"\(f(y(tick)))\" stroke=\"#eee\"/>"
      )
      out.append(
        "<text x=\"\(f(left - 6))\" y=\"\(f(y(tick) + 4))\" text-anchor=\"end\">\(Self.trimmed(tick))</text>")
      tick += step
    }
    out.append(
      "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(height - 18))\" text-anchor=\"middle\">"
        + "\(axis.axisLabel)</text>")
    out.append(
      "<text transform=\"translate(18 \(f((top + height - bottom) / 2))) rotate(-90)\" "
        + "text-anchor=\"middle\">test accuracy, %</text>")
    // Pareto fronts, one per source and data set, then the points and their labels.
    let colours = ["rapl": "#1f77b4", "estimate": "#d62728", "mixed": "#7f7f7f"]
    var fronts = Set<Int>()
    for source in ["rapl", "estimate", "mixed"] {
      for dataset in datasets {
        let front = paretoFront(source: source, dataset: dataset, axis: axis).sorted {
          axis.value(runs[$0])! < axis.value(runs[$1])!
        }
        fronts.formUnion(front)
        guard front.count > 1 else { continue }
        let points = front.map { "\(f(x(axis.value(runs[$0])!))),\(f(y(runs[$0].testAccuracy * 100)))" }
        out.append(
          "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(colours[source]!)\" "
            + "stroke-width=\"2\" opacity=\"0.6\"/>")
      }
    }
    let sources = Set(plotted.map { runs[$0].energySource ?? "mixed" })
    let mixesSources = sources.count > 1
    // The legend's corner (a line per source at the top left) is taken from the start.
    // Every point's circle too, so that no label covers another run's point.
    var placedLabels: [(Double, Double, Double, Double)] =
      [(left, top, left + 460, top + 6 + 18 * Double(sources.count))]
      + plotted.map { i in
        let (px, py) = (x(axis.value(runs[i])!), y(runs[i].testAccuracy * 100))
        return (px - 7, py - 7, px + 7, py + 7)
      }
    for i in plotted {
      let run = runs[i]
      let source = run.energySource ?? "mixed"
      let onFront = fronts.contains(i)
      let (px, py) = (x(axis.value(run)!), y(run.testAccuracy * 100))
      let colour = colours[source] ?? "#7f7f7f"
      out.append(
        "<circle cx=\"\(f(px))\" cy=\"\(f(py))\" r=\"\(onFront ? 6 : 4)\" stroke=\"\(colour)\" stroke-width=\"2\" "
          + "fill=\"\(source == "rapl" ? colour : "white")\"><title>\(Self.escaped(run.folder))</title></circle>"
      )
      // Hollow circles and the legend mark estimates; the label says so too when the plot
      // mixes sources, where a glance at the text must tell them apart.
      let label = URL(fileURLWithPath: run.folder).lastPathComponent + (run.stage.map { " › \($0)" } ?? "")
        + " [\(run.dataset)]" + (run.isEstimate && mixesSources ? " (\(source))" : "")
        + (onFront ? " ★" : "")
      // The first of eight places (right or left of the point, above or below it) that stays
      // inside the picture and clear of the labels placed so far; about 6.5 px per character.
      let labelWidth = 6.5 * Double(label.count)
      let places = [true, false].flatMap { right in [-8.0, 18.0, -22.0, 32.0].map { (right, $0) } }.map {
        right, dy in (right: right, x: right ? px + 8 : px - 8, y: py + dy)
      }
      func box(_ p: (right: Bool, x: Double, y: Double)) -> (Double, Double, Double, Double) {
        (p.right ? p.x : p.x - labelWidth, p.y - 12, p.right ? p.x + labelWidth : p.x, p.y + 3)
      }
      func fits(_ p: (right: Bool, x: Double, y: Double)) -> Bool {
        let (x0, y0, x1, y1) = box(p)
        return x0 >= 2 && x1 <= width - 2 && y0 >= top && y1 <= height - bottom
      }
      func clear(_ p: (right: Bool, x: Double, y: Double)) -> Bool {
        let (x0, y0, x1, y1) = box(p)
        return !placedLabels.contains { b in x0 < b.2 && b.0 < x1 && y0 < b.3 && b.1 < y1 }
      }
      // A point off the front whose label would cover another goes unlabelled (its circle
      // keeps the run folder as a tooltip): with many runs, overlapping text reads as nothing.
      guard let place = places.first(where: { fits($0) && clear($0) }) ?? (onFront ? places.first(where: fits) ?? places[0] : nil)
      else { continue }
      placedLabels.append(box(place))
      out.append(
        "<text x=\"\(f(place.x))\" y=\"\(f(place.y))\""
          + "\(place.right ? "" : " text-anchor=\"end\"")\(onFront ? " font-weight=\"bold\"" : "")>"
          + "\(Self.escaped(label))</text>")
    }
    // Legend.
    let legend = [
      ("rapl", "measured (RAPL)"), ("estimate", "estimate (CPU time × W/core)"),
    ].filter { s in plotted.contains { runs[$0].energySource == s.0 } }
    for (n, (source, text)) in legend.enumerated() {
      let ly = top + 14 + Double(n) * 18
      out.append(
        "<circle cx=\"\(f(left + 14))\" cy=\"\(f(ly - 4))\" r=\"5\" stroke=\"\(colours[source]!)\" stroke-width=\"2\" "
          + "fill=\"\(source == "rapl" ? colours[source]! : "white")\"/>")
      out.append(
        "<text x=\"\(f(left + 26))\" y=\"\(f(ly))\">\(text); ★ and line: Pareto front per data set</text>")
    }
    out.append("</svg>")
    return out.joined(separator: "\n") + "\n"
  }

  /// 1, 2 or 5 times a power of ten, at least `raw`.
  static func niceStep(_ raw: Double) -> Double {
    guard raw > 0 else { return 1 }
    let power = pow(10, floor(log10(raw)))
    return [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw }!
  }

  static func joulesLabel(_ joules: Double) -> String {
    joules >= 1000 ? trimmed(joules / 1000) + " kJ" : trimmed(joules) + " J"
  }

  static func trimmed(_ v: Double) -> String {
    v == v.rounded() ? String(Int(v)) : String(format: "%g", v)
  }

  static func escaped(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
}
