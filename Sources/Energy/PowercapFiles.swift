#if canImport(Glibc)
  import Glibc
#endif

/// How the RAPL meter reads the powercap tree: the real files (`SystemPowercapFiles`) or, in
/// tests, a stand-in that fails on purpose (root reads every file, so `chmod 000` cannot
/// exercise the permission path in CI).
public protocol PowercapFiles: Sendable {
  /// The file's text, trailing newline removed. Throws `EnergyError.permissionDenied` for
  /// EACCES/EPERM and `EnergyError.unreadable` for anything else.
  func read(_ path: String) throws -> String
  /// The names in a folder (no `.`/`..`), or nil when it is not a readable folder.
  func list(_ folder: String) -> [String]?
  /// Whether `path` exists (a file, folder or link to one).
  func exists(_ path: String) -> Bool
}

/// The files themselves, through POSIX `open`/`read` (sysfs files report a size of 4096 and
/// must be read to end of file; errno tells a permission problem from others).
public struct SystemPowercapFiles: PowercapFiles {
  public init() {}

  public func read(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY)
    if fd < 0 {
      let code = errno
      if code == EACCES || code == EPERM { throw EnergyError.permissionDenied(path: path) }
      throw EnergyError.unreadable(path: path, reason: String(cString: strerror(code)))
    }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 256)
    while true {
      let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        let code = errno
        if code == EACCES || code == EPERM { throw EnergyError.permissionDenied(path: path) }
        throw EnergyError.unreadable(path: path, reason: String(cString: strerror(code)))
      }
      if n == 0 { break }
      bytes += buffer[0..<n]
    }
    var text = String(decoding: bytes, as: UTF8.self)
    while text.last == "\n" || text.last == " " { text.removeLast() }
    return text
  }

  public func list(_ folder: String) -> [String]? {
    guard let dir = opendir(folder) else { return nil }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
  }

  public func exists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0
  }
}
