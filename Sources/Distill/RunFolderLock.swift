import CKernels
import Foundation
import DistillRecipes

#if canImport(Glibc)
  import Glibc
#endif

/// One writer per run folder: an exclusive advisory lock (`flock`) on `RUN/.lock`, held for the
/// whole of `distill train` and `distill resume`. A second process asking for it is refused at
/// once with the holder's PID, which the holder writes into the file. The kernel drops the lock
/// when its process ends, however it ends, so a lock left by a killed process never blocks: the
/// file may stay, but nobody holds it.
public final class RunFolderLock {
  /// The lock file's name inside the run folder.
  public static let fileName = ".lock"
  /// The run folder.
  public let folder: String
  private var descriptor: Int32
  /// Whether acquiring created the folder (then releasing removes it again if nothing else was
  /// written into it, so a run refused before its start leaves no empty folder behind).
  private let createdFolder: Bool

  /// Creates `folder` (and its parents) if needed and takes its lock. Throws
  /// `TrainingError.runFolderLocked` when another process holds it, `.cannotWrite` when the
  /// folder or the lock file cannot be made.
  public init(folder: String) throws {
    self.folder = folder
    var isFolder: ObjCBool = false
    let existed = FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder)
    if existed && !isFolder.boolValue {
      throw TrainingError.cannotWrite(path: folder, reason: "it is a file, not a folder")
    }
    do {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    } catch {
      throw TrainingError.cannotWrite(path: folder, reason: "cannot create the folder: \(error.localizedDescription)")
    }
    createdFolder = !existed
    descriptor = try Self.lock(folder)
    RunFolder(path: folder).removeLeftoverReplacements()
  }

  deinit { release() }

  /// Opens and locks `folder/.lock`, then writes this process's PID into it. Retries when the
  /// file was replaced between the open and the lock (`--force` swaps in a fresh folder).
  private static func lock(_ folder: String) throws -> Int32 {
    let path = folder + "/" + fileName
    for _ in 0..<10 {
      let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
      guard fd >= 0 else {
        throw TrainingError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
      }
      guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
        let failure = errno
        let holder = Self.holder(fd)
        close(fd)
        if failure == EWOULDBLOCK { throw TrainingError.runFolderLocked(folder: folder, pid: holder) }
        throw TrainingError.cannotWrite(path: path, reason: "cannot lock: \(String(cString: strerror(failure)))")
      }
      var locked = stat()
      var current = stat()
      guard fstat(fd, &locked) == 0, stat(path, &current) == 0, locked.st_ino == current.st_ino else {
        close(fd)
        continue
      }
      let text = "\(getpid())\n"
      if ftruncate(fd, 0) != 0 || pwrite(fd, text, text.utf8.count, 0) != text.utf8.count {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw TrainingError.cannotWrite(path: path, reason: reason)
      }
      return fd
    }
    throw TrainingError.cannotWrite(path: path, reason: "the lock file kept being replaced")
  }

  /// The PID written in a lock file, if any.
  private static func holder(_ fd: Int32) -> Int32? {
    var buffer = [UInt8](repeating: 0, count: 32)
    let count = pread(fd, &buffer, buffer.count, 0)
    guard count > 0 else { return nil }
    return Int32(String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
  }

  /// Replaces the run folder by an empty one in one atomic step and then deletes the old
  /// folder's run files (`--force`): a crash at any moment leaves either the old run or an
  /// empty folder under `folder`, never a mix. Files that are not a run's (anything
  /// `RunFolder.isRunFile` does not claim) are moved into the new folder. The lock moves to
  /// the new folder's lock file.
  func replaceWithEmptyFolder() throws {
    let url = URL(fileURLWithPath: folder).standardizedFileURL
    let aside = url.deletingLastPathComponent().appendingPathComponent(
      ".\(url.lastPathComponent).replaced-\(getpid())"
    ).path
    do {
      try? FileManager.default.removeItem(atPath: aside)
      try FileManager.default.createDirectory(atPath: aside, withIntermediateDirectories: false)
    } catch {
      throw TrainingError.cannotWrite(path: aside, reason: "cannot create the folder: \(error.localizedDescription)")
    }
    let fresh = try Self.lock(aside)
    if distill_exchange_paths(aside, folder) != 0 {
      // No atomic exchange on this file system: two renames; between them no folder exists,
      // which resume and train treat as an empty one.
      let old = aside + ".old"
      guard rename(folder, old) == 0 else {
        close(fresh)
        throw TrainingError.cannotWrite(path: folder, reason: "cannot move it aside: \(String(cString: strerror(errno)))")
      }
      guard rename(aside, folder) == 0 else {
        let reason = String(cString: strerror(errno))
        _ = rename(old, folder)
        close(fresh)
        throw TrainingError.cannotWrite(path: folder, reason: "cannot replace it: \(reason)")
      }
      _ = rename(old, aside)
    }
    close(descriptor)
    descriptor = fresh
    // `aside` now holds the old run; keep what is not a run's, delete the rest.
    let names = (try? FileManager.default.contentsOfDirectory(atPath: aside)) ?? []
    for name in names where !RunFolder.isRunFile(name) {
      _ = rename(aside + "/" + name, folder + "/" + name)
    }
    try? FileManager.default.removeItem(atPath: aside)
  }

  /// Gives the lock up (also on deinit). Removes the folder when this lock created it and it
  /// holds nothing but the lock file.
  public func release() {
    guard descriptor >= 0 else { return }
    let contents = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    if createdFolder && contents == [Self.fileName] {
      unlink(folder + "/" + Self.fileName)
      rmdir(folder)
    }
    close(descriptor)
    descriptor = -1
  }
}

extension RunFolder {
  /// Whether a file in a run folder is one a run writes (and `--force` may delete): the result
  /// files, `recipe.yaml`, `epoch-NNNN.h5`, the lock and temporary files of atomic writes.
  static func isRunFile(_ name: String) -> Bool {
    resultFiles.contains(name) || name == "recipe.yaml" || name == RunFolderLock.fileName
      || (name.hasPrefix("epoch-") && name.hasSuffix(".h5")) || (name.hasPrefix("student-") && name.hasSuffix(".h5")) || (name.hasPrefix(".") && name.contains(".tmp-"))
  }

  /// Removes `.<name>.replaced-<pid>` folders beside this one that an interrupted `--force`
  /// left, when their process is gone and they hold only a run's files.
  func removeLeftoverReplacements() {
    let url = URL(fileURLWithPath: path).standardizedFileURL
    let parent = url.deletingLastPathComponent().path
    let prefix = ".\(url.lastPathComponent).replaced-"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix(prefix) {
      let tail = name.dropFirst(prefix.count).split(separator: ".").first.map(String.init) ?? ""
      guard let pid = Int32(tail), pid != getpid(), kill(pid, 0) != 0 else { continue }
      let leftover = parent + "/" + name
      let contents = (try? FileManager.default.contentsOfDirectory(atPath: leftover)) ?? []
      if contents.allSatisfy(Self.isRunFile) { try? FileManager.default.removeItem(atPath: leftover) }
    }
  }
}
