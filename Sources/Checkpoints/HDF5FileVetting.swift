import CHDF5
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// libhdf5 (1.10.8, Debian 12's) has bugs that a damaged or hostile file triggers: endless
/// loops in its global heap, wild `memcpy` lengths, NULL dereferences, frees of wild pointers
/// (the inputs are in `Fuzz/crashes/FuzzModelFile/`). No check in Swift can stop libhdf5 from
/// crashing inside a call, so a program can have every file read once, first, somewhere a
/// crash or a hang cannot take it down: `vet` is called with a file's path before libhdf5 first
/// opens it for reading in this process (again only when the file's size or modification time
/// changed). The `distill` executable installs one that reads the whole file in a child process
/// (`readEveryObject`) under a time limit, and turns a child killed by a signal or the limit into
/// a `CheckpointError`. Without a `vet` (a library user that installs none), files are read
/// directly, as before.
public enum HDF5FileVetting {
  /// Checks the file at `path` before this process lets libhdf5 read it; throws to refuse it.
  nonisolated(unsafe) public static var vet: ((String) throws -> Void)?

  private struct Identity: Hashable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int
  }

  private static let lock = NSLock()
  nonisolated(unsafe) private static var vetted = Set<Identity>()

  static func vetOnce(_ path: String, _ info: stat) throws(CheckpointError) {
    guard let vet else { return }
    let identity = Identity(
      device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
      modifiedSeconds: info.st_mtim.tv_sec, modifiedNanoseconds: info.st_mtim.tv_nsec)
    lock.lock()
    let seen = vetted.contains(identity)
    lock.unlock()
    if seen { return }
    do {
      try vet(path)
    } catch let error as CheckpointError {
      throw error
    } catch {
      throw .unreadable(path: path, detail: "\(error)")
    }
    lock.lock()
    vetted.insert(identity)
    lock.unlock()
  }
}

/// Reads everything in the HDF5 file at `path` the way this project's readers do: every group
/// (to a depth of 32, so hard-link cycles end), every attribute as a string, an integer or a
/// float, every dataset of floats, integers or strings. Errors that libhdf5 reports are
/// skipped (the readers report them properly later); what this is for is to let libhdf5 crash
/// or hang here rather than in a process that matters (`HDF5FileVetting`). Throws only when
/// the file cannot be opened at all.
public func readEveryObject(in path: String) throws(CheckpointError) {
  let file = try HDF5File.openReadOnly(path, vetted: false)
  func visit(_ object: HDF5Object) {
    for name in (try? object.attributeNames()) ?? [] {
      if (try? object.stringAttribute(name)) == nil, (try? object.integerAttribute(name)) == nil {
        _ = try? object.doubleAttribute(name)
      }
    }
  }
  func walk(_ group: HDF5Group, depth: Int) {
    // Members before attributes: the order the readers use.
    let members = (try? group.memberNames()) ?? []
    visit(group)
    guard depth < 32 else { return }
    for member in members {
      _ = group.contains(member)
      if let child = try? group.group(member) {
        walk(child, depth: depth + 1)
      } else if let dataset = try? group.dataset(member) {
        visit(dataset)
        switch dataset.elementType {
        case .float: _ = try? dataset.readFloats()
        case .integer(8, false): _ = try? dataset.readUnsignedIntegers()
        case .integer: _ = try? dataset.readIntegers()
        case .string: _ = try? dataset.readStrings()
        case .other: break
        }
      }
    }
  }
  if let root = try? file.rootGroup() { walk(root, depth: 0) }
}
