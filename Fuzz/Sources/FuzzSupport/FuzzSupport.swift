// Shared by the harnesses: scratch files for readers that take a path, and a little cursor
// that takes option bytes off the front of a fuzz input.
#if canImport(Glibc)
  import Glibc
#endif

/// A folder of this process's own under `$TMPDIR` (default `/tmp`), created on first use:
/// `distill-fuzz-<harness>-<pid>`. libFuzzer's `-fork`/`-jobs` children each get their own.
/// It is removed when the process exits normally (not after a crash).
public func scratchFolder(_ harness: String) -> String {
  let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
  let folder = "\(base)/distill-fuzz-\(harness)-\(getpid())"
  mkdir(folder, 0o700)
  scratchFolders.append(folder)
  if scratchFolders.count == 1 { atexit { for folder in scratchFolders { removeTree(folder) } } }
  return folder
}

nonisolated(unsafe) private var scratchFolders: [String] = []

/// `rm -rf path`, for the scratch folders (files and folders only).
private func removeTree(_ path: String) {
  var info = stat()
  guard lstat(path, &info) == 0 else { return }
  if (info.st_mode & S_IFMT) == S_IFDIR, let dir = opendir(path) {
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
      if name != "." && name != ".." { removeTree(path + "/" + name) }
    }
    closedir(dir)
    rmdir(path)
  } else {
    unlink(path)
  }
}

/// Writes `bytes` to `path`, replacing the file; traps when it cannot (a broken harness set-up,
/// not a finding).
public func writeFile<C: Collection>(_ path: String, _ bytes: C) where C.Element == UInt8 {
  guard let file = fopen(path, "wb") else { fatalError("harness: cannot write \(path)") }
  let array = Array(bytes)
  if !array.isEmpty {
    let written = array.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    precondition(written == array.count, "harness: short write to \(path)")
  }
  fclose(file)
}

/// Makes `path` (and the folders above it, inside an existing one) a folder.
public func makeFolders(_ path: String) {
  var prefix = ""
  for part in path.split(separator: "/") {
    prefix += "/" + part
    mkdir(prefix, 0o700)
  }
}

/// Option bytes taken off the front of a fuzz input; past the end every read gives 0, so
/// short inputs are still valid.
public struct InputCursor {
  public let bytes: [UInt8]
  public private(set) var offset = 0

  public init(_ data: UnsafePointer<UInt8>, _ size: Int) {
    bytes = Array(UnsafeBufferPointer(start: data, count: size))
  }

  public mutating func byte() -> UInt8 {
    guard offset < bytes.count else { return 0 }
    defer { offset += 1 }
    return bytes[offset]
  }

  /// Big-endian `UInt32` from the next four bytes.
  public mutating func uint32() -> UInt32 {
    (0..<4).reduce(UInt32(0)) { value, _ in value << 8 | UInt32(byte()) }
  }

  /// Everything not yet taken.
  public var rest: ArraySlice<UInt8> { bytes[min(offset, bytes.count)...] }

  /// Takes the next `count` bytes (fewer at the end).
  public mutating func take(_ count: Int) -> ArraySlice<UInt8> {
    let end = min(bytes.count, offset + max(count, 0))
    defer { offset = end }
    return bytes[min(offset, bytes.count)..<end]
  }
}

/// `true` when the environment variable `name` is set to a non-empty value other than `0`.
public func environmentFlag(_ name: String) -> Bool {
  guard let value = getenv(name).map({ String(cString: $0) }) else { return false }
  return !value.isEmpty && value != "0"
}

/// The environment variable `name` as an integer, or `fallback`.
public func environmentInteger(_ name: String, _ fallback: Int) -> Int {
  getenv(name).flatMap { Int(String(cString: $0)) } ?? fallback
}

private let verbose = environmentFlag("FUZZ_VERBOSE")

/// Renders `error` as the CLI prints it (`error: \(error)`), so description code runs too;
/// prints it with FUZZ_VERBOSE=1 (for checking what a seed reaches).
public func rendered(_ error: any Error, _ step: String) {
  let text = "\(error)"
  if verbose { print("[\(step)] \(text)") }
}

/// Prints `message` with FUZZ_VERBOSE=1.
public func note(_ message: @autoclosure () -> String) {
  if verbose { print(message()) }
}

/// Whether FUZZ_AVOID (a comma-separated list) names `finding`: harnesses then steer around a
/// known crash (README.md lists the names) so a run can find others before it is fixed.
public func avoiding(_ finding: String) -> Bool {
  avoided.contains(finding)
}

private let avoided: Set<String> = Set(
  (getenv("FUZZ_AVOID").map { String(cString: $0) } ?? "").split(separator: ",").map { String($0) })
