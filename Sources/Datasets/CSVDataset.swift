/// Reads a CSV data set: one sample per line, numeric features, the class label last
/// (or in `labelColumn`). Optionally gzip-compressed. Blank lines are skipped; a header row is
/// not expected.
///
/// Errors name the file and line: a non-numeric field, a row of the wrong width, a label that
/// is not a non-negative integer or is not below `classCount`.
public func loadCSVDataset(
  path: String, sampleShape: [Int]? = nil, labelColumn: Int? = nil, classCount: Int? = nil
) throws -> Dataset {
  let bytes = try readPossiblyCompressedFile(path)
  var features: [Float] = []
  var labels: [Int] = []
  var width: Int?
  var lineNumber = 0
  for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
    lineNumber += 1
    let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: " \r\t")
    if text.isEmpty { continue }
    let fields = text.split(separator: ",", omittingEmptySubsequences: false)
    if let width, fields.count != width {
      throw DatasetError.malformed(
        file: path, line: lineNumber, reason: "\(fields.count) fields, but earlier rows have \(width)")
    }
    width = fields.count
    guard fields.count >= 2 else {
      throw DatasetError.malformed(file: path, line: lineNumber, reason: "a row needs features and a label")
    }
    let labelIndex = labelColumn ?? fields.count - 1
    guard labelIndex >= 0, labelIndex < fields.count else {
      throw DatasetError.malformed(
        file: path, line: lineNumber,
        reason: "the label column \(labelIndex) is not among the row's \(fields.count) fields (0-based)")
    }
    for (i, field) in fields.enumerated() {
      let trimmed = field.trimmingCharacters(in: " ")
      let shown = trimmed.count > 40 ? String(trimmed.prefix(40)) + "…" : String(trimmed)
      if i == labelIndex {
        guard let label = Int(trimmed), label >= 0, label < maxCSVClasses else {
          throw DatasetError.malformed(
            file: path, line: lineNumber,
            reason: "label '\(shown)' is not an integer in 0..<\(maxCSVClasses)")
        }
        if let classCount, label >= classCount {
          throw DatasetError.labelOutOfRange(file: path, index: labels.count, label: label, classCount: classCount)
        }
        labels.append(label)
      } else {
        guard let value = Float(trimmed), value.isFinite else {
          throw DatasetError.malformed(
            file: path, line: lineNumber, reason: "field \(i + 1) '\(shown)' is not a finite number")
        }
        features.append(value)
      }
    }
  }
  guard let width else {
    throw DatasetError.malformed(file: path, line: 0, reason: "no data rows")
  }
  let shape = sampleShape ?? [width - 1]
  var needed: Int? = 1
  for size in shape {
    guard let n = needed, size >= 0 else { needed = nil; break }
    let (product, overflow) = n.multipliedReportingOverflow(by: size)
    needed = overflow ? nil : product
  }
  guard needed == width - 1 else {
    throw DatasetError.malformed(
      file: path, line: 1,
      reason: "rows have \(width - 1) features, sample shape \(shape) needs \(needed.map(String.init) ?? "too many")")
  }
  return Dataset(
    sampleShape: shape, features: features, labels: labels,
    classCount: classCount ?? ((labels.max() ?? 0) + 1))
}

extension String {
  fileprivate func trimmingCharacters(in set: String) -> String {
    let chars = Set(set)
    var s = Substring(self)
    while let c = s.first, chars.contains(c) { s.removeFirst() }
    while let c = s.last, chars.contains(c) { s.removeLast() }
    return String(s)
  }
}

extension Substring {
  fileprivate func trimmingCharacters(in set: String) -> String {
    String(self).trimmingCharacters(in: set)
  }
}

/// The UCI 8×8 digits set vendored in `datasets/digits/digits.csv.gz` (1797 samples, 64
/// features in 0…16, 10 classes), scaled to [0, 1]. `root` is the repository (or install)
/// folder that holds `datasets/`.
public func loadEmbeddedDigits(root: String) throws -> Dataset {
  try loadCSVDataset(path: root + "/datasets/digits/digits.csv.gz", classCount: 10).scaled(by: 1.0 / 16)
}

/// The most classes a CSV data set may have: labels are class indices, and each class is an
/// output of the model.
public let maxCSVClasses = 1 << 20
