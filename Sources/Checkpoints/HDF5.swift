import CHDF5

#if canImport(Glibc)
  import Glibc
#endif

// A small Swift layer over libhdf5's C API. Every HDF5 id lives in exactly one place: files,
// groups and datasets in an object whose `deinit` closes it (and which keeps its file alive),
// short-lived ids (dataspaces, datatypes, property lists, attributes) in a local closed by a
// `defer` right after it is created. So every id is closed on every path, errors included.
// HDF5's printing of errors is turned off; failures become `CheckpointError`s.

/// Library-wide HDF5 state and helpers.
enum HDF5Library {
  /// Little-endian IEEE binary16, the type h5py writes for `numpy.float16`; created once and
  /// locked (a locked type cannot be closed or changed by mistake).
  static let float16: hid_t = {
    prepareThread()
    let type = distill_make_H5T_IEEE_F16LE()
    precondition(type >= 0, "libhdf5 could not build the binary16 type")
    _ = H5Tlock(type)
    return type
  }()

  /// Turns off HDF5's error printing for the calling thread (its error stack is per thread).
  static func prepareThread() { _ = distill_H5E_silence() }

  /// The calling thread's HDF5 error stack as one line, and whether HDF5 found a truncated file.
  static func currentError() -> (detail: String, truncated: Bool) {
    var buffer = [CChar](repeating: 0, count: 2048)
    let truncated = distill_H5E_describe(&buffer, buffer.count) != 0
    let detail = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    return (detail.isEmpty ? "unknown HDF5 error" : brief(detail), truncated)
  }

  /// An HDF5 error stack made short enough to read: a system error inside it (`error message =
  /// 'No space left on device'`, which HDF5 buries in a line of buffer addresses and offsets)
  /// comes first, with the outermost call; any other stack longer than 300 characters keeps
  /// its outermost and innermost entries.
  static func brief(_ detail: String) -> String {
    let entries = detail.components(separatedBy: ": ")
    if let range = detail.range(of: "error message = '") {
      let rest = detail[range.upperBound...]
      let message = rest.prefix { $0 != "'" }
      return "\(message) (HDF5: \(entries.first ?? ""))"
    }
    guard detail.count > 300, entries.count > 1 else { return detail }
    return "\(entries.first!): … : \(String(entries.last!.prefix(200)))"
  }

  /// Empties the calling thread's HDF5 error stack (after a failure that was expected).
  static func clearErrors() { _ = distill_H5E_clear() }

  /// The description of the last C library error (`errno`).
  static func systemError(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
}

/// An HDF5 file, open for reading or for writing (`h5py.File(path, "r")` / `"w"`).
///
/// Groups and datasets opened from it keep it alive; it is closed by `close()` (which reports
/// errors) or, failing that, when the last reference goes away.
public final class HDF5File {
  /// The path the file was opened or created with.
  public let path: String
  /// Whether the file was created for writing.
  public let isWritable: Bool
  let id: hid_t
  /// Whether the file is still open (`close()` not yet called).
  public private(set) var isOpen = true

  private init(path: String, id: hid_t, isWritable: Bool) {
    self.path = path
    self.id = id
    self.isWritable = isWritable
  }

  deinit { if isOpen { _ = H5Fclose(id) } }

  /// The number of HDF5 objects (files, groups, datasets, named types, attributes) open in this
  /// process, over every file; for leak checks in tests. (libhdf5 offers no count of dataspaces,
  /// transient types or property lists; this layer closes each of those in a `defer` placed
  /// right after it is created.)
  public static var openObjectCount: Int {
    HDF5Library.prepareThread()
    return Int(H5Fget_obj_count(hid_t(distill_H5F_OBJ_ALL()), distill_H5F_OBJ_ALL()))
  }

  /// Creates a file for writing, replacing any file at `path` (`h5py.File(path, "w")`), or
  /// failing if one exists when `overwrite` is false. Groups list their members in creation
  /// order (h5py's `track_order=True`), so the file keeps `stateDict` order.
  public static func create(_ path: String, overwrite: Bool = true) throws(CheckpointError) -> HDF5File {
    HDF5Library.prepareThread()
    let creation = H5Pcreate(distill_H5P_FILE_CREATE())
    defer { if creation >= 0 { _ = H5Pclose(creation) } }
    let access = try closeOnlyWhenEmptyAccessList(path)
    defer { _ = H5Pclose(access) }
    guard creation >= 0, H5Pset_link_creation_order(creation, creationOrderFlags) >= 0 else {
      throw .writeFailed(path: path, detail: HDF5Library.currentError().detail)
    }
    let flags = overwrite ? distill_H5F_ACC_TRUNC() : distill_H5F_ACC_EXCL()
    let id = H5Fcreate(path, flags, creation, access)
    guard id >= 0 else { throw .writeFailed(path: path, detail: HDF5Library.currentError().detail) }
    return HDF5File(path: path, id: id, isWritable: true)
  }

  /// Opens an existing file read-only (`h5py.File(path, "r")`). A missing, empty, non-HDF5 or
  /// truncated file each gives its own error.
  public static func openReadOnly(_ path: String) throws(CheckpointError) -> HDF5File {
    try openReadOnly(path, vetted: true)
  }

  /// `openReadOnly`; with `vetted`, a file not seen before is first given to
  /// `HDF5FileVetting.vet` when one is installed (the CLI reads it in a child process).
  static func openReadOnly(_ path: String, vetted: Bool) throws(CheckpointError) -> HDF5File {
    HDF5Library.prepareThread()
    var info = stat()
    guard stat(path, &info) == 0 else {
      let code = errno
      if code == ENOENT { throw .fileNotFound(path: path) }
      throw .unreadable(path: path, detail: HDF5Library.systemError(code))
    }
    if (info.st_mode & S_IFMT) == S_IFDIR { throw .unreadable(path: path, detail: "it is a folder") }
    if (info.st_mode & S_IFMT) != S_IFREG {
      throw .unreadable(path: path, detail: "not a regular file (a device, a pipe or a socket)")
    }
    if info.st_size == 0 { throw .emptyFile(path: path) }
    if vetted { try HDF5FileVetting.vetOnce(path, info) }
    let signature = H5Fis_hdf5(path)
    if signature == 0 { throw .notHDF5(path: path) }
    if signature < 0 { throw .unreadable(path: path, detail: HDF5Library.currentError().detail) }
    let access = try closeOnlyWhenEmptyAccessList(path)
    defer { _ = H5Pclose(access) }
    let id = H5Fopen(path, distill_H5F_ACC_RDONLY(), access)
    guard id >= 0 else {
      let error = HDF5Library.currentError()
      if error.truncated { throw .truncated(path: path, detail: error.detail) }
      throw .unreadable(path: path, detail: error.detail)
    }
    return HDF5File(path: path, id: id, isWritable: false)
  }

  /// Link creation order tracked and indexed, as h5py's `track_order=True`.
  static var creationOrderFlags: UInt32 {
    distill_H5P_CRT_ORDER_TRACKED() | distill_H5P_CRT_ORDER_INDEXED()
  }

  /// File access with close degree "semi": `H5Fclose` fails while any object of the file is
  /// open instead of silently keeping the file open, so `close()` really closes it.
  private static func closeOnlyWhenEmptyAccessList(_ path: String) throws(CheckpointError) -> hid_t {
    let access = H5Pcreate(distill_H5P_FILE_ACCESS())
    guard access >= 0 else {
      throw .hdf5(
        path: path, object: "/", operation: "create a file access list",
        detail: HDF5Library.currentError().detail)
    }
    guard H5Pset_fclose_degree(access, H5F_CLOSE_SEMI) >= 0 else {
      _ = H5Pclose(access)
      throw .hdf5(
        path: path, object: "/", operation: "set the close degree",
        detail: HDF5Library.currentError().detail)
    }
    return access
  }

  /// The root group `/`.
  public func rootGroup() throws(CheckpointError) -> HDF5Group {
    HDF5Library.prepareThread()
    let group = H5Gopen2(id, "/", distill_H5P_DEFAULT())
    guard group >= 0 else { throw failure("open the root group", object: "/") }
    return HDF5Group(file: self, name: "/", id: group)
  }

  /// The group at `path` (`"student"`, `"/a/b"`); see `HDF5Group.group(_:)`.
  public func group(_ path: String) throws(CheckpointError) -> HDF5Group {
    try rootGroup().group(path)
  }

  /// Creates the group at `path` and any missing group above it; see `HDF5Group.createGroup(_:)`.
  public func createGroup(_ path: String) throws(CheckpointError) -> HDF5Group {
    try rootGroup().createGroup(path)
  }

  /// Writes everything HDF5 buffers for this file to the operating system (`H5Fflush`); the
  /// data may still sit in the OS cache (see `HDF5File.writeAtomically` for `fsync`).
  public func flush() throws(CheckpointError) {
    HDF5Library.prepareThread()
    guard H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0 else { throw failure("flush", object: "/") }
  }

  /// Closes the file. Fails (and leaves it open) while groups or datasets of it are still
  /// referenced. Closing twice does nothing.
  public func close() throws(CheckpointError) {
    guard isOpen else { return }
    HDF5Library.prepareThread()
    guard H5Fclose(id) >= 0 else { throw failure("close", object: "/") }
    isOpen = false
  }

  /// An `.hdf5` error for `operation` on `object`, with HDF5's explanation.
  func failure(_ operation: String, object: String) -> CheckpointError {
    .hdf5(path: path, object: object, operation: operation, detail: HDF5Library.currentError().detail)
  }
}

/// libhdf5's version, "major.minor.release" (for run records and energy labels).
public var hdf5LibraryVersion: String {
  var (major, minor, release): (UInt32, UInt32, UInt32) = (0, 0, 0)
  _ = H5get_libversion(&major, &minor, &release)
  return "\(major).\(minor).\(release)"
}
