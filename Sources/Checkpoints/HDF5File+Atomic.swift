import CHDF5

#if canImport(Glibc)
  import Glibc
#endif

extension HDF5File {
  /// Writes an HDF5 file so that `path` holds either its old content or the complete new file,
  /// never a part: `body` fills a new file at a temporary name in the same folder
  /// (`.<name>.tmp-<pid>-<random>`), which is flushed (`H5Fflush`), closed, `fsync`ed and then
  /// renamed over `path` (`rename(2)`, atomic within a file system); the folder is `fsync`ed
  /// last so the rename itself survives a crash. If anything fails the temporary file is
  /// removed, `path` is untouched and the error names `path`. (A crash can leave a temporary
  /// file behind, never a half-written `path`.)
  ///
  /// `body` must not keep groups or datasets of the file beyond its return (closing fails).
  public static func writeAtomically(
    to path: String, _ body: (HDF5File) throws(CheckpointError) -> Void
  ) throws(CheckpointError) {
    let (folder, temporary) = temporaryName(for: path)
    var created = false
    do throws(CheckpointError) {
      let file: HDF5File
      do throws(CheckpointError) {
        file = try HDF5File.create(temporary, overwrite: false)
      } catch {
        throw .writeFailed(
          path: path, detail: "cannot create a temporary file in \(folder): \(error.briefDetail)")
      }
      created = true
      do throws(CheckpointError) {
        try body(file)
        try file.flush()
        try file.close()
      } catch {
        throw error.replacingPath(with: path)  // name the file the caller asked for
      }
      try synchronize(temporary, for: path)
      guard rename(temporary, path) == 0 else {
        throw .writeFailed(
          path: path, detail: "cannot rename \(temporary) over it: \(HDF5Library.systemError())")
      }
    } catch {
      if created { _ = unlink(temporary) }
      throw error
    }
    synchronizeFolder(folder)
  }

  /// Makes `path` a second name (a hard link) of the complete file `source` in the same folder,
  /// atomically: the link is made at a temporary name (`.<name>.tmp-<pid>-<random>`) and renamed
  /// over `path`, so `path` holds its old content or `source`'s, never neither. No data is
  /// copied. Throws `.writeFailed` naming `path` where the file system has no hard links; the
  /// caller can then write the file again with `writeAtomically`.
  public static func linkAtomically(_ source: String, to path: String) throws(CheckpointError) {
    let (folder, temporary) = temporaryName(for: path)
    guard link(source, temporary) == 0 else {
      throw .writeFailed(path: path, detail: "cannot link \(source) as \(temporary): \(HDF5Library.systemError())")
    }
    guard rename(temporary, path) == 0 else {
      let detail = HDF5Library.systemError()
      _ = unlink(temporary)
      throw .writeFailed(path: path, detail: "cannot rename \(temporary) over it: \(detail)")
    }
    synchronizeFolder(folder)
  }

  /// The folder of `path` and a fresh temporary name beside it: `.<name>.tmp-<pid>-<random>`.
  static func temporaryName(for path: String) -> (folder: String, temporary: String) {
    let slash = path.lastIndex(of: "/")
    let folder = slash.map { String(path[..<$0]).isEmpty ? "/" : String(path[..<$0]) } ?? "."
    let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
    let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
    return (folder, "\(folder)/.\(base).tmp-\(getpid())-\(suffix)")
  }

  /// `fsync` of a folder, so a rename in it survives a crash; best effort (the new name is in
  /// place either way).
  static func synchronizeFolder(_ folder: String) {
    let directory = open(folder, O_RDONLY | O_DIRECTORY)
    if directory >= 0 {
      _ = fsync(directory)
      _ = Glibc.close(directory)
    }
  }

  /// `fsync` of the file at `file` (through a new descriptor, after HDF5 has closed it).
  private static func synchronize(_ file: String, for path: String) throws(CheckpointError) {
    let descriptor = open(file, O_RDONLY)
    guard descriptor >= 0 else {
      throw .writeFailed(path: path, detail: "cannot reopen \(file) to sync it: \(HDF5Library.systemError())")
    }
    defer { _ = Glibc.close(descriptor) }
    guard fsync(descriptor) == 0 else {
      throw .writeFailed(path: path, detail: "fsync of \(file) failed: \(HDF5Library.systemError())")
    }
  }
}

extension CheckpointError {
  /// The same error naming `path` as its file.
  func replacingPath(with path: String) -> CheckpointError {
    switch self {
    case .fileNotFound: return .fileNotFound(path: path)
    case .emptyFile: return .emptyFile(path: path)
    case .notHDF5: return .notHDF5(path: path)
    case .truncated(_, let detail): return .truncated(path: path, detail: detail)
    case .unreadable(_, let detail): return .unreadable(path: path, detail: detail)
    case .missingGroup(_, let group): return .missingGroup(path: path, group: group)
    case .missingDataset(_, let dataset): return .missingDataset(path: path, dataset: dataset)
    case .missingAttribute(_, let object, let attribute):
      return .missingAttribute(path: path, object: object, attribute: attribute)
    case .wrongObjectType(_, let object, let expected, let found):
      return .wrongObjectType(path: path, object: object, expected: expected, found: found)
    case .wrongShape(_, let object, let expected, let found):
      return .wrongShape(path: path, object: object, expected: expected, found: found)
    case .wrongDatatype(_, let object, let expected, let found):
      return .wrongDatatype(path: path, object: object, expected: expected, found: found)
    case .missingKey(_, let group, let key, let shape):
      return .missingKey(path: path, group: group, key: key, expectedShape: shape)
    case .unexpectedKey(_, let group, let key, let shape):
      return .unexpectedKey(path: path, group: group, key: key, shape: shape)
    case .writeFailed(_, let detail): return .writeFailed(path: path, detail: detail)
    case .tooLarge(_, let object, let shape, let limit):
      return .tooLarge(path: path, object: object, shape: shape, limit: limit)
    case .nonFinite(_, let object, let count, let firstIndex):
      return .nonFinite(path: path, object: object, count: count, firstIndex: firstIndex)
    case .invalidValue(_, let object, let value, let expected):
      return .invalidValue(path: path, object: object, value: value, expected: expected)
    case .hdf5(_, let object, let operation, let detail):
      return .hdf5(path: path, object: object, operation: operation, detail: detail)
    }
  }

  /// The explanation without the path, for wrapping in another error.
  var briefDetail: String {
    switch self {
    case .writeFailed(_, let detail), .unreadable(_, let detail), .truncated(_, let detail),
      .hdf5(_, _, _, let detail):
      return detail
    default:
      return description
    }
  }
}
