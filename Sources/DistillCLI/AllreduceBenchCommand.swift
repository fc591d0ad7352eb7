import ArgumentParser
import Distill
import Foundation

/// `distill allreduce-bench` (under `mpirun`, the MPI build): times the gradient sum
/// (`MPI_Allreduce`, Float, in place) at sizes from 4 KiB to 64 MiB, so a ring model
/// (2(N−1)/N · bytes / bandwidth + 2(N−1) · latency) can be fitted to this machine's transport
/// (`scripts/mpi-scaling.sh`). Rank 0 prints one CSV line per size.
struct AllreduceBenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "allreduce-bench",
    abstract: "Time the all-reduce of gradients between the ranks of an mpirun job (MPI build).",
    discussion: """
      Run it under mpirun: mpirun -np 2 .build-mpi/release/distill allreduce-bench. Prints \
      bytes, ranks, and the minimum and median seconds per all-reduce over the repetitions (each \
      preceded by a barrier) as CSV.
      """)

  @Option(help: "Seconds of repetitions per size (at least 5 repetitions).")
  var seconds = 0.3

  @Option(help: "Largest size, MiB (sizes go up by 4x from 4 KiB).")
  var maxMB = 64

  func validate() throws {
    guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60], got \(seconds)") }
    guard (1...1024).contains(maxMB) else { throw ValidationError("--max-mb must be in 1...1024, got \(maxMB)") }
  }

  func run() throws {
    let cluster = Cluster.current
    guard cluster.size > 1 else {
      throw ValidationError(
        "allreduce-bench needs at least 2 ranks: run it as mpirun -np 2 \(CommandLine.arguments[0]) allreduce-bench"
          + (Cluster.mpiBuilt ? "" : " with the MPI build (swift build -c release --traits MPI --scratch-path .build-mpi)"))
    }
    if cluster.rank == 0 { print("bytes,ranks,seconds_min,seconds_median,repetitions") }
    var bytes = 4096
    while bytes <= maxMB << 20 {
      var buffer = [Float](repeating: 1, count: bytes / 4)
      var times: [Double] = []
      let started = Date()
      var repetitions = 0
      // Every rank decides together whether to go on (rank 0's clock), so all make the same calls.
      while true {
        let go = cluster.maximum([repetitions < 5 || Date().timeIntervalSince(started) < seconds ? 1 : 0])[0]
        if go == 0 || repetitions >= 10_000 { break }
        _ = cluster.sum([0])
        let clock = Date()
        buffer.withUnsafeMutableBufferPointer { cluster.sum($0.baseAddress!, count: $0.count) }
        times.append(Date().timeIntervalSince(clock))
        repetitions += 1
        if repetitions % 8 == 0 { buffer.withUnsafeMutableBufferPointer { $0.update(repeating: 1) } }
      }
      // The slowest rank's time is the all-reduce's.
      let slowest = cluster.maximum(times)
      let sorted = slowest.sorted()
      if cluster.rank == 0 {
        print("\(bytes),\(cluster.size),\(sorted[0]),\(sorted[sorted.count / 2]),\(sorted.count)")
      }
      bytes *= 4
    }
  }
}
