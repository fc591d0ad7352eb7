import Distill
import DistillRecipes
import Foundation

/// One recipe over its seeds: the runs of one recipe name on one data set with one method and
/// one energy source (estimates and measurements never average together), as mean ± sample
/// standard deviation. The table a methods comparison reports (`distill compare`'s second table,
/// `compare-recipes.csv`).
public struct RecipeSummary: Sendable, Equatable {
  public var recipe: String
  public var dataset: String
  public var method: String
  public var energySource: String?
  /// The seeds of the runs, in the order given (nil for runs older than the seed field).
  public var seeds: [UInt64?]
  public var studentParameters: Int
  /// Test accuracy in percent: mean and sample standard deviation (nil for one run).
  public var accuracy: (mean: Double, std: Double?)
  /// Student and teacher + student training joules, mean and sample standard deviation; nil
  /// when any run lacks the figure.
  public var studentJoules: (mean: Double, std: Double?)?
  public var totalJoules: (mean: Double, std: Double?)?
  /// Mean accuracy (%) per mean kJ of teacher + student training.
  public var accuracyPerKilojoule: Double? {
    guard let total = totalJoules?.mean, total > 0 else { return nil }
    return accuracy.mean / (total / 1000)
  }
  public var inferenceMicrojoules: Double?

  public static func == (a: RecipeSummary, b: RecipeSummary) -> Bool {
    a.recipe == b.recipe && a.dataset == b.dataset && a.method == b.method && a.energySource == b.energySource
      && a.seeds == b.seeds && a.accuracy.mean == b.accuracy.mean && a.accuracy.std == b.accuracy.std
  }
}

/// Mean and sample standard deviation (n − 1); the deviation is nil for fewer than two values.
func meanAndStd(_ values: [Double]) -> (mean: Double, std: Double?) {
  let mean = values.reduce(0, +) / Double(values.count)
  guard values.count > 1 else { return (mean, nil) }
  let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
  return (mean, variance.squareRoot())
}

extension CompareReport {
  /// The runs grouped by recipe, data set, method and energy source, in table order (data
  /// set, then mean accuracy per kJ, best first).
  public var recipeSummaries: [RecipeSummary] {
    var groups: [String: [ComparedRun]] = [:]
    var order: [String] = []
    for run in runs {
      let key = [run.recipe, run.dataset, run.method, run.energySource ?? ""].joined(separator: "\u{1}")
      if groups[key] == nil { order.append(key) }
      groups[key, default: []].append(run)
    }
    let summaries = order.map { key -> RecipeSummary in
      let group = groups[key]!
      let first = group[0]
      func figure(_ values: [Double?]) -> (mean: Double, std: Double?)? {
        let present = values.compactMap { $0 }
        return present.count == values.count ? meanAndStd(present) : nil
      }
      return RecipeSummary(
        recipe: first.recipe, dataset: first.dataset, method: first.method, energySource: first.energySource,
        seeds: group.map(\.seed), studentParameters: first.studentParameters,
        accuracy: meanAndStd(group.map { $0.testAccuracy * 100 }), studentJoules: figure(group.map(\.studentJoules)),
        totalJoules: figure(group.map(\.totalJoules)),
        inferenceMicrojoules: figure(group.map(\.inferenceMicrojoulesPerSample))?.mean)
    }
    return summaries.sorted {
      Self.ranksBefore(($0.dataset, $0.accuracyPerKilojoule, $0.recipe), ($1.dataset, $1.accuracyPerKilojoule, $1.recipe))
    }
  }

  static let summaryHeader = [
    "recipe", "data set", "method", "seeds", "student params", "test accuracy %", "test error %", "student kJ",
    "teacher+student kJ", "accuracy %/kJ", "inference µJ/sample", "energy source",
  ]

  /// One row per recipe: `mean ± std` cells (`mean` alone for one seed); in CSV the mean and
  /// the deviation are separate columns.
  func summaryRows(csv: Bool = false) -> [[String]] {
    func number(_ x: Double?, _ digits: Int) -> String {
      guard let x, x.isFinite else { return csv ? "" : "—" }
      return String(format: "%.\(digits)f", x)
    }
    func spread(_ figure: (mean: Double, std: Double?)?, _ digits: Int) -> [String] {
      guard let figure else { return csv ? ["", ""] : ["—"] }
      if csv { return [number(figure.mean, digits), number(figure.std, digits)] }
      return [number(figure.mean, digits) + (figure.std.map { " ± " + String(format: "%.\(digits)f", $0) } ?? "")]
    }
    return recipeSummaries.map { s in
      let seeds = s.seeds.map { $0.map(String.init) ?? "?" }.joined(separator: csv ? " " : ",")
      let error = (mean: 100 - s.accuracy.mean, std: s.accuracy.std)
      let kilo = { (f: (mean: Double, std: Double?)?) in f.map { (mean: $0.mean / 1000, std: $0.std.map { $0 / 1000 }) } }
      return [s.recipe + (s.energySource != "rapl" && s.energySource != nil && !csv ? "*" : ""), s.dataset, s.method, seeds,
        String(s.studentParameters)]
        + spread(s.accuracy, 2) + spread(error, 2) + spread(kilo(s.studentJoules), 3) + spread(kilo(s.totalJoules), 3)
        + [number(s.accuracyPerKilojoule, 2), number(s.inferenceMicrojoules, 2), s.energySource ?? (csv ? "" : "—")]
    }
  }

  /// `compare-recipes.csv`: one line per recipe, means and sample standard deviations in
  /// separate columns (`…_mean`, `…_std`; the deviation empty for one seed).
  public var recipesCSV: String {
    let header = [
      "recipe", "data set", "method", "seeds", "student params", "test accuracy % mean", "test accuracy % std",
      "test error % mean", "test error % std", "student kJ mean", "student kJ std", "teacher+student kJ mean",
      "teacher+student kJ std", "accuracy %/kJ", "inference µJ/sample", "energy source",
    ]
    return ([header] + summaryRows(csv: true)).map { row in
      row.map { s in
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
          ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
      }.joined(separator: ",")
    }.joined(separator: "\n") + "\n"
  }

  /// Whether any recipe was run with more than one seed (the per-recipe table then follows the
  /// runs in the text and Markdown reports).
  var hasSeedGroups: Bool { recipeSummaries.contains { $0.seeds.count > 1 } }

  /// The per-recipe table, aligned for a terminal.
  var summaryText: String {
    let all = [Self.summaryHeader] + summaryRows()
    let widths = Self.summaryHeader.indices.map { c in all.map { $0[c].count }.max()! }
    var lines = all.map { row in
      row.enumerated().map { c, cell in
        let pad = String(repeating: " ", count: widths[c] - cell.count)
        return c < 4 || c == row.count - 1 ? cell + pad : pad + cell
      }.joined(separator: "  ").replacingOccurrences(of: " +$", with: "", options: .regularExpression)
    }
    lines.insert(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "), at: 1)
    return "Per recipe over its seeds (mean ± sample standard deviation):\n" + lines.joined(separator: "\n") + "\n"
  }

  /// The per-recipe table in Markdown.
  var summaryMarkdown: String {
    let line = { (row: [String]) in "| " + row.joined(separator: " | ") + " |" }
    let rule = "| " + Self.summaryHeader.indices.map { $0 < 4 || $0 == Self.summaryHeader.count - 1 ? "---" : "---:" }
      .joined(separator: " | ") + " |"
    return "Per recipe over its seeds (mean ± sample standard deviation):\n\n"
      + ([line(Self.summaryHeader), rule] + summaryRows().map { line($0.map { $0.replacingOccurrences(of: "*", with: "\\*") }) })
      .joined(separator: "\n") + "\n"
  }
}
