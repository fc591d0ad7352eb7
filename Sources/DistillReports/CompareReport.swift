import Foundation
import Distill
import DistillRecipes

/// `distill compare`'s table: runs grouped by data set (accuracies on different data sets do
/// not compare) and within each sorted by accuracy per kJ (best first; runs without energy
/// figures last), written for a terminal, as CSV and as Markdown. Estimated rows are marked
/// `*` and the source column says `estimate`; measured and estimated runs are never ranked on
/// one Pareto front (`paretoFront` works within one source and one data set).
public struct CompareReport: Sendable {
  public var runs: [ComparedRun]
  /// Paths given that are not finished runs, each with why (`init(folders:)` skips them).
  public var skipped: [String] = []

  /// Sorts `runs` by data set, then by accuracy per kJ, descending; ties and runs without
  /// figures by name.
  public init(runs: [ComparedRun]) {
    self.runs = runs.sorted {
      Self.ranksBefore(($0.dataset, $0.accuracyPerKilojoule, $0.recipe), ($1.dataset, $1.accuracyPerKilojoule, $1.recipe))
    }
  }

  /// The table order: by data set, then accuracy per kJ descending (rows without it last),
  /// then name.
  static func ranksBefore(_ a: (String, Double?, String), _ b: (String, Double?, String)) -> Bool {
    if a.0 != b.0 { return a.0 < b.0 }
    switch (a.1, b.1) {
    case (let x?, let y?) where x != y: return x > y
    case (.some, nil): return true
    case (nil, .some): return false
    default: return a.2 < b.2
    }
  }

  /// Reads every finished run among `folders` (`ComparedRun(folder:)`); paths that are not
  /// finished runs (a README beside the runs, an interrupted run) are skipped and listed in
  /// `skipped`. Throws `CompareError.noRuns` or `.nothingToCompare` when nothing is left,
  /// `.duplicate` when one folder is given twice (under any spelling), and the error of a
  /// run whose files are broken.
  public init(folders: [String]) throws {
    guard !folders.isEmpty else { throw CompareError.noRuns }
    var runs: [ComparedRun] = []
    var skipped: [String] = []
    var seen: [String: String] = [:]
    for folder in folders {
      if let reason = ComparedRun.notARunReason(folder) {
        skipped.append("\(folder): skipped, \(reason)")
        continue
      }
      let identity = URL(fileURLWithPath: folder).resolvingSymlinksInPath().standardizedFileURL.path
      if let first = seen[identity] { throw CompareError.duplicate(folder: folder, first: first) }
      seen[identity] = folder
      runs.append(contentsOf: try ComparedRun.rows(folder: folder))
    }
    guard !runs.isEmpty else { throw CompareError.nothingToCompare(skipped: skipped) }
    self.init(runs: runs)
    self.skipped = skipped
  }

  static let header = [
    "recipe", "run", "seed", "data set", "method", "student params", "student MFLOPs/sample", "test accuracy %", "student J",
    "teacher+student J", "accuracy %/kJ", "inference µJ/sample", "energy source",
  ]

  /// The leading columns that hold text (left-aligned): recipe, run, seed, data set, method.
  static let textColumns = 5

  /// One row of text cells per run; estimated rows' recipe gets a `*`.
  func rows(csv: Bool = false) -> [[String]] {
    func number(_ x: Double?, _ digits: Int) -> String {
      guard let x, x.isFinite else { return csv ? "" : "—" }
      return String(format: "%.\(digits)f", x)
    }
    return runs.map { run in
      [
        run.recipe + (run.isEstimate && run.energySource != nil && !csv ? "*" : ""),
        run.folder + (run.stage.map { " (\($0))" } ?? ""),
        run.seed.map(String.init) ?? (csv ? "" : "—"), run.dataset, run.method,
        String(run.studentParameters), number(run.studentFLOPs.map { Double($0) / 1e6 }, 3),
        number(run.testAccuracy * 100, 2), number(run.studentJoules, 1), number(run.totalJoules, 1),
        number(run.accuracyPerKilojoule, 2), number(run.inferenceMicrojoulesPerSample, 2),
        run.energySource ?? (csv ? "" : "—"),
      ]
    }
  }

  /// The notes under the table: what `*` means, and why figures are missing.
  public var notes: [String] {
    var notes: [String] = []
    if runs.contains(where: { $0.isEstimate && $0.energySource != nil }) {
      notes.append(
        "* estimate: CPU seconds × watts per core, not a measurement"
          + (runs.contains { $0.energySource == "rapl" }
            ? "; not comparable with the measured (rapl) rows, and ranked on a separate Pareto front" : ""))
    }
    for run in runs { if let note = run.note { notes.append("\(run.recipe) (\(run.folder)): \(note)") } }
    notes.append(
      "accuracy %/kJ: test accuracy in percent per kJ of training, teacher + student; "
        + "rows are ranked within their data set only")
    return notes
  }

  /// Aligned columns for a terminal, then the notes.
  public var text: String {
    let all = [Self.header] + rows()
    let widths = Self.header.indices.map { c in all.map { $0[c].count }.max()! }
    var lines = all.map { row in
      row.enumerated().map { c, cell in
        let pad = String(repeating: " ", count: widths[c] - cell.count)
        return c < Self.textColumns || c == row.count - 1 ? cell + pad : pad + cell
      }.joined(separator: "  ").replacingOccurrences(of: " +$", with: "", options: .regularExpression)
    }
    lines.insert(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "), at: 1)
    let seeds = hasSeedGroups ? ["", summaryText] : []
    return (lines + seeds + [""] + notes).joined(separator: "\n") + "\n"
  }

  /// RFC 4180 CSV: a header line, one line per run; missing figures are empty cells.
  public var csv: String {
    func cell(_ s: String) -> String {
      s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
        ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
    return ([Self.header] + rows(csv: true)).map { $0.map(cell).joined(separator: ",") }.joined(
      separator: "\n")
      + "\n"
  }

  /// A Markdown table, then the notes as a list.
  public var markdown: String {
    let line = { (row: [String]) in "| " + row.joined(separator: " | ") + " |" }
    let rule =
      "| "
      + Self.header.indices.map { $0 < Self.textColumns || $0 == Self.header.count - 1 ? "---" : "---:" }
      .joined(separator: " | ") + " |"
    let body = rows().map { line($0.map { $0.replacingOccurrences(of: "*", with: "\\*") }) }
    let seeds = hasSeedGroups ? ["", summaryMarkdown] : []
    return
      ([line(Self.header), rule] + body + seeds + [""] + notes.map { "- " + ($0.hasPrefix("*") ? "\\" + $0 : $0) })
      .joined(separator: "\n") + "\n"
  }

  /// The data sets of `runs`, in table order.
  public var datasets: [String] {
    var seen = Set<String>()
    return runs.map(\.dataset).filter { seen.insert($0).inserted }
  }

  /// Indices of `runs` on the Pareto front of (`axis`'s joules ↓, test accuracy ↑) among the
  /// runs on `dataset` whose source is `source`: no other such run is at least as accurate for
  /// no more joules, and strictly better in one. `axis`: training joules, teacher + student
  /// (the default), or inference µJ per sample.
  public func paretoFront(source: String, dataset: String, axis: ComparePlotAxis = .training) -> [Int] {
    let group = runs.indices.filter {
      runs[$0].energySource == source && runs[$0].dataset == dataset && axis.value(runs[$0]) != nil
    }
    return group.filter { i in
      let (a, j) = (runs[i].testAccuracy, axis.value(runs[i])!)
      return !group.contains { k in
        let (b, l) = (runs[k].testAccuracy, axis.value(runs[k])!)
        return k != i && b >= a && l <= j && (b > a || l < j)
      }
    }
  }
}
