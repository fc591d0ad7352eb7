/// Why a data file could not be read. Every case names the file, so the message a person sees
/// says which file to fix or replace.
public enum DatasetError: Error, Equatable, CustomStringConvertible {
  /// The file does not exist or cannot be opened.
  case cannotOpen(file: String, reason: String)
  /// The file ended before the data its header or format promises.
  case truncated(file: String, expectedBytes: Int, actualBytes: Int)
  /// A row or field does not parse (`line` counts from 1; 0 for a problem with the whole file,
  /// which the message then leaves out).
  case malformed(file: String, line: Int, reason: String)
  /// An IDX header whose magic number is not the expected one.
  case wrongMagic(file: String, expected: UInt32, found: UInt32)
  /// A label outside 0..<classCount.
  case labelOutOfRange(file: String, index: Int, label: Int, classCount: Int)
  /// Images and labels that do not pair up.
  case countMismatch(imagesFile: String, images: Int, labelsFile: String, labels: Int)
  /// A data set's folder lacks its files: `lookedFor` lists every name tried, in order.
  case missingFiles(folder: String, lookedFor: [String])

  public var description: String {
    switch self {
    case .cannotOpen(let file, let reason):
      return "\(file): cannot open (\(reason))"
    case .truncated(let file, let expected, let actual):
      return "\(file): truncated: expected \(expected) bytes of data, found \(actual); download the file again"
    case .malformed(let file, let line, let reason):
      return line > 0 ? "\(file):\(line): \(reason)" : "\(file): \(reason)"
    case .wrongMagic(let file, let expected, let found):
      return "\(file): not an IDX file of the expected kind: magic number \(found), expected \(expected)"
    case .labelOutOfRange(let file, let index, let label, let classCount):
      return "\(file): label \(label) at index \(index) is outside 0..<\(classCount)"
    case .countMismatch(let imagesFile, let images, let labelsFile, let labels):
      return "\(imagesFile) holds \(images) images but \(labelsFile) holds \(labels) labels"
    case .missingFiles(let folder, let lookedFor):
      return "\(folder): data set files not found; looked for \(lookedFor.joined(separator: ", "))"
    }
  }
}
