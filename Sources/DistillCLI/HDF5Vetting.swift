import ArgumentParser
import Checkpoints
import Foundation

/// `distill _read-hdf5 FILE` (hidden): reads every object of an HDF5 file and exits. The
/// `distill` process runs it as a child before reading any HDF5 file itself
/// (`installHDF5Vetting`), so that a file that makes libhdf5 crash or loop ends the child, not
/// the run.
struct ReadHDF5Command: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "_read-hdf5", abstract: "Read every object of an HDF5 file (used internally).",
    shouldDisplay: false)

  @Argument(help: "The HDF5 file.")
  var file: String

  func run() throws {
    do {
      try readEveryObject(in: file)
    } catch {
      // The reader in the parent reports it properly; here only surviving matters.
      throw ExitCode(2)
    }
  }
}

/// Makes this process read an HDF5 file only after a child `distill _read-hdf5 FILE` read all
/// of it without being killed by a signal and within `seconds(for:)`.
func installHDF5Vetting() {
  let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
  guard FileManager.default.isExecutableFile(atPath: executable.path) else { return }
  HDF5FileVetting.vet = { path in
    let child = Process()
    child.executableURL = executable
    child.arguments = ["_read-hdf5", path]
    child.standardInput = FileHandle.nullDevice
    child.standardOutput = FileHandle.nullDevice
    child.standardError = FileHandle.nullDevice
    var environment = ProcessInfo.processInfo.environment
    environment["SWIFT_BACKTRACE"] = "enable=no"  // a crash is expected to be quick and quiet here
    // Fill fresh allocations with a pattern, so that a pointer libhdf5 reads from memory it
    // never wrote is wild in the child too, whatever the parent's heap held there (a damaged
    // file's free of such a pointer crashed the parent but not an unperturbed child).
    environment["MALLOC_PERTURB_"] = "165"
    // Not a rank of an MPI job: a child that inherited mpirun's variables would try to join it.
    for key in environment.keys
    where ["OMPI_", "PMIX_", "PMI_", "ORTE_", "OPAL_"].contains(where: { key.hasPrefix($0) }) {
      environment[key] = nil
    }
    child.environment = environment
    let done = DispatchSemaphore(value: 0)
    child.terminationHandler = { _ in done.signal() }
    do {
      try child.run()
    } catch {
      return  // no child to run: read it here, as a library user would
    }
    let limit = vettingSeconds(for: path)
    if done.wait(timeout: .now() + limit) == .timedOut {
      kill(child.processIdentifier, SIGKILL)
      done.wait()
      throw CheckpointError.unreadable(
        path: path,
        detail: "libhdf5 did not finish reading it in \(Int(limit)) s (a damaged file whose metadata loops?)")
    }
    if child.terminationReason == .uncaughtSignal {
      throw CheckpointError.unreadable(
        path: path,
        detail: "libhdf5 crashed (signal \(child.terminationStatus)) reading it: the file is damaged; "
          + "use another copy or an earlier checkpoint")
    }
  }
}

/// 30 s (or `$DISTILL_HDF5_READ_SECONDS`, for tests and very slow disks), plus a second per
/// 10 MB of file: reading a whole 20 MB MNIST checkpoint takes well under a second.
private func vettingSeconds(for path: String) -> Double {
  let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
  let base = ProcessInfo.processInfo.environment["DISTILL_HDF5_READ_SECONDS"].flatMap(Double.init) ?? 30
  return max(base, 0.1) + Double(size) / 10_000_000
}
