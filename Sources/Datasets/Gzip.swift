import CZlib

#if canImport(Glibc)
  import Glibc
#endif

/// Reads a whole file, decompressing it when it is gzip-compressed (zlib's `gzread` passes
/// uncompressed files through unchanged, so `.gz` and raw files read alike).
///
/// A gzip stream that ends early is an error (`DatasetError.truncated`), not a short read; so is
/// one that decompresses to more than `limit` bytes (default: half the machine's memory), which
/// no data set here could be and a "gzip bomb" would.
public func readPossiblyCompressedFile(_ path: String, limit: Int = defaultReadLimit) throws -> [UInt8] {
  guard let file = gzopen(path, "rb") else {
    throw DatasetError.cannotOpen(file: path, reason: "no such file, or not readable")
  }
  defer { gzclose(file) }
  var bytes: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 1 << 16)
  while true {
    let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
    if n < 0 {
      var code: Int32 = 0
      let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
      throw DatasetError.malformed(file: path, line: 0, reason: "cannot decompress: \(message)")
    }
    if n == 0 { break }
    if bytes.count + Int(n) > limit {
      throw DatasetError.malformed(
        file: path, line: 0,
        reason: "decompresses to more than \(limit) bytes, more than a data set this machine can hold "
          + "(a damaged file?)")
    }
    bytes.append(contentsOf: chunk[0..<Int(n)])
  }
  // gzread returns 0 at a premature end of a compressed stream; gzerror says Z_BUF_ERROR then.
  var code: Int32 = 0
  _ = gzerror(file, &code)
  if code == Z_BUF_ERROR {
    throw DatasetError.malformed(
      file: path, line: 0,
      reason: "compressed stream ends early (file truncated?); download it again")
  }
  return bytes
}

/// Writes `bytes` gzip-compressed (zlib's default level, 6) to `path`, replacing any file there.
/// For tests and tools that make `.gz` fixtures; `readPossiblyCompressedFile` reads them back.
public func writeGzipFile(path: String, bytes: [UInt8]) throws {
  guard let file = gzopen(path, "wb") else {
    throw DatasetError.cannotOpen(file: path, reason: "cannot create the file")
  }
  var failed = false
  bytes.withUnsafeBytes { raw in
    var offset = 0
    while offset < raw.count {
      let n = min(raw.count - offset, 1 << 30)
      let written = gzwrite(file, raw.baseAddress! + offset, UInt32(n))
      if written <= 0 {
        failed = true
        return
      }
      offset += Int(written)
    }
  }
  let closed = gzclose(file)
  if failed || closed != Z_OK {
    throw DatasetError.cannotOpen(file: path, reason: "cannot write the compressed data (disk full?)")
  }
}

/// Half the machine's physical memory: the most `readPossiblyCompressedFile` reads by default.
public let defaultReadLimit: Int = {
  let pages = sysconf(Int32(_SC_PHYS_PAGES))
  let size = sysconf(Int32(_SC_PAGESIZE))
  guard pages > 0, size > 0 else { return Int.max }
  return pages.multipliedReportingOverflow(by: size).partialValue / 2
}()
