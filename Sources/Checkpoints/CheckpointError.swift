/// Everything that can go wrong reading or writing a checkpoint or model file. Every case names
/// the file (`path`) and, where there is one, the HDF5 object by its absolute name
/// (`/student/0.weight`), with what was expected; `description` is the message for people.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
  /// Nothing exists at `path`.
  case fileNotFound(path: String)
  /// The file has zero bytes (typically a write that never got going).
  case emptyFile(path: String)
  /// The file does not start with the HDF5 signature (a text file, another format).
  case notHDF5(path: String)
  /// The file has the HDF5 signature but ends before the size its superblock records.
  case truncated(path: String, detail: String)
  /// The file exists but could not be opened (permissions, a folder, damaged metadata).
  case unreadable(path: String, detail: String)
  /// The file has no group with this name.
  case missingGroup(path: String, group: String)
  /// The file has no dataset with this name.
  case missingDataset(path: String, dataset: String)
  /// The object has no attribute with this name.
  case missingAttribute(path: String, object: String, attribute: String)
  /// The object exists but is of another kind (`"group"`, `"dataset"`, …).
  case wrongObjectType(path: String, object: String, expected: String, found: String)
  /// The dataset's shape (and so its rank) is not the expected one.
  case wrongShape(path: String, object: String, expected: [Int], found: [Int])
  /// The dataset or attribute holds another element type (`"float16 or float32"` vs `"int64"`).
  case wrongDatatype(path: String, object: String, expected: String, found: String)
  /// A model's group lacks a dataset for one of the model's `stateDict` keys.
  case missingKey(path: String, group: String, key: String, expectedShape: [Int])
  /// A model's group holds a dataset that is none of the model's `stateDict` keys.
  case unexpectedKey(path: String, group: String, key: String, shape: [Int])
  /// Writing `path` failed; the file that was there before, if any, is unchanged.
  case writeFailed(path: String, detail: String)
  /// The dataset declares more elements than this machine's memory (`limit` bytes) could hold.
  case tooLarge(path: String, object: String, shape: [Int], limit: Int)
  /// The dataset holds `count` NaN or infinite values, the first at flat index `firstIndex`:
  /// weights of a diverged run, or a damaged file.
  case nonFinite(path: String, object: String, count: Int, firstIndex: Int)
  /// A value outside the range its meaning allows (a negative epoch, a thread count of 10^12).
  case invalidValue(path: String, object: String, value: String, expected: String)
  /// Any other libhdf5 failure: the operation, the object and HDF5's own explanation.
  case hdf5(path: String, object: String, operation: String, detail: String)

  public var description: String {
    switch self {
    case .fileNotFound(let path):
      return "\(path): no such file"
    case .emptyFile(let path):
      return "\(path): the file is empty (0 bytes), not an HDF5 file (an interrupted write?)"
    case .notHDF5(let path):
      return "\(path): not an HDF5 file (it does not start with the HDF5 signature)"
    case .truncated(let path, let detail):
      return "\(path): the HDF5 file is truncated, shorter than its header says (\(detail))"
    case .unreadable(let path, let detail):
      return "\(path): cannot open the HDF5 file: \(detail)"
    case .missingGroup(let path, let group):
      return "\(path): there is no group \(group)"
    case .missingDataset(let path, let dataset):
      return "\(path): there is no dataset \(dataset)"
    case .missingAttribute(let path, let object, let attribute):
      return "\(path): \(object) has no attribute \"\(attribute)\""
    case .wrongObjectType(let path, let object, let expected, let found):
      return "\(path): \(object) is a \(found), expected a \(expected)"
    case .wrongShape(let path, let object, let expected, let found):
      return "\(path): \(object) has shape \(found), expected \(expected)"
    case .wrongDatatype(let path, let object, let expected, let found):
      return "\(path): \(object) holds \(found) values, expected \(expected)"
    case .missingKey(let path, let group, let key, let shape):
      return "\(path): \(group) has no dataset \"\(key)\"; the model expects one of shape \(shape)"
        + " (was the file written for another architecture?)"
    case .unexpectedKey(let path, let group, let key, let shape):
      return "\(path): \(group)/\(key) (shape \(shape)) is not a tensor of the model"
        + " (was the file written for another architecture?)"
    case .writeFailed(let path, let detail):
      return "\(path): cannot write: \(detail); any file that was there is unchanged"
    case .tooLarge(let path, let object, let shape, let limit):
      return "\(path): \(object) declares shape \(shape), more than this machine's "
        + "\(limit / (1 << 20)) MiB of memory could hold (a damaged or hostile file?)"
    case .nonFinite(let path, let object, let count, let firstIndex):
      return "\(path): \(object) holds \(count) non-finite value\(count == 1 ? "" : "s") (NaN or ±inf; the "
        + "first at flat index \(firstIndex)): these weights are broken (a diverged run, or a damaged file); "
        + "use an earlier checkpoint or train again"
    case .invalidValue(let path, let object, let value, let expected):
      return "\(path): \(object) is \(value), expected \(expected) (a damaged file?)"
    case .hdf5(let path, let object, let operation, let detail):
      return "\(path): \(object): \(operation) failed: \(detail)"
    }
  }
}
