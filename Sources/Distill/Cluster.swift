import Foundation

/// The processes one run trains on, and what they say to each other: one process (`SingleProcess`,
/// every build's default), or the ranks of an `mpirun` job (`MPICollectives`, in the MPI build).
///
/// Data parallelism (`ModelTraining`, `GradientReducer`): every rank holds the same weights,
/// takes its own rows of every micro-batch and sums its gradients with every other rank's before
/// the optimizer step, so all ranks take the same step. Every call here is collective: all ranks
/// make the same calls in the same order, or the job hangs; that is why every decision that ends a
/// loop (a stop request, a non-finite loss) is first agreed with `maximum`.
public protocol Collectives: AnyObject {
  /// This process's 0-based rank; rank 0 alone writes files.
  var rank: Int { get }
  /// How many processes train.
  var size: Int { get }
  /// How many machines (shared-memory nodes) they run on.
  var hosts: Int { get }
  /// Whether this rank reads the host's energy counters: the lowest rank on each host.
  var leadsHost: Bool { get }
  /// Sums `count` Floats at `buffer` over the ranks, in place; every rank gets the sum.
  func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
  /// Starts `sum(_:count:)` without waiting; the buffer must stay put until `wait`.
  func startSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingSum
  /// Lets started sums progress (MPI progresses non-blocking collectives only inside MPI calls).
  func poke(_ pending: [PendingSum])
  /// Waits until the sums are done.
  func wait(_ pending: [PendingSum])
  /// Element-wise sums and maxima of small vectors of Doubles (counters, flags).
  func sum(_ values: [Double]) -> [Double]
  func maximum(_ values: [Double]) -> [Double]
  /// Rank 0's `count` Floats at `buffer`, copied to every rank.
  func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int)
  /// Rank 0's bytes, copied to every rank.
  func broadcast(_ bytes: [UInt8]) -> [UInt8]
  /// Every rank's value, in rank order.
  func gather(_ value: UInt64) -> [UInt64]
  /// Waits until every rank gets here, sleeping rather than spinning (rank 0 measures inference
  /// energy alone meanwhile).
  func barrier()
}

/// A started `Collectives.startSum`; `index` is the implementation's handle.
public struct PendingSum: Sendable {
  public let index: Int
  public init(index: Int) { self.index = index }
}

/// The default: one process, to which every collective is the identity.
public final class SingleProcess: Collectives {
  public init() {}
  public var rank: Int { 0 }
  public var size: Int { 1 }
  public var hosts: Int { 1 }
  public var leadsHost: Bool { true }
  public func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
  public func startSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingSum { PendingSum(index: 0) }
  public func poke(_ pending: [PendingSum]) {}
  public func wait(_ pending: [PendingSum]) {}
  public func sum(_ values: [Double]) -> [Double] { values }
  public func maximum(_ values: [Double]) -> [Double] { values }
  public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
  public func broadcast(_ bytes: [UInt8]) -> [UInt8] { bytes }
  public func gather(_ value: UInt64) -> [UInt64] { [value] }
  public func barrier() {}
}

/// The process's cluster: `SingleProcess` unless the CLI started MPI (`Cluster.start`).
public enum Cluster {
  nonisolated(unsafe) public static var current: any Collectives = SingleProcess()

  /// Whether this binary was built with the `MPI` trait.
  public static var mpiBuilt: Bool {
    #if MPI
      return true
    #else
      return false
    #endif
  }

  /// The rank count `mpirun` (Open MPI) or another PMI launcher announced in the environment,
  /// or nil when the process was not started by one.
  public static var launcherSize: Int? {
    let environment = ProcessInfo.processInfo.environment
    for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"] {
      if let value = environment[key], let size = Int(value) { return size }
    }
    return nil
  }

  /// Starts MPI when the process was launched by `mpirun` and the binary has MPI; a process
  /// started by a launcher with more than one rank but built without MPI is refused, since each
  /// rank would train the whole run alone into the same folder.
  public static func start() throws {
    guard let size = launcherSize else { return }
    #if MPI
      current = MPICollectives.start()
    #else
      if size > 1 {
        throw ClusterError.notBuiltWithMPI(ranks: size)
      }
    #endif
  }

  /// Ends MPI (when started); the CLI calls it before exiting.
  public static func finish() {
    #if MPI
      (current as? MPICollectives)?.finish()
    #endif
  }

  /// Ends every rank at once after an error on this one, when others may be waiting in a
  /// collective for it (a single process just returns).
  public static func abortOthers(code: Int32) {
    #if MPI
      (current as? MPICollectives)?.abort(code: code)
    #endif
  }
}

/// Why a data-parallel run cannot go on.
public enum ClusterError: Error, CustomStringConvertible, Equatable {
  /// `mpirun -np N` (N > 1) started a binary built without the MPI trait.
  case notBuiltWithMPI(ranks: Int)
  /// A rank's recipe, data or options differ from rank 0's: `what` says which.
  case ranksDiffer(rank: Int, what: String)
  /// The checkpoint was written by a run on `saved` ranks; resuming on `now`.
  case rankCountChanged(file: String, saved: Int, now: Int)
  /// The ranks' weights differ after an epoch (a reduction that is not bitwise the same on
  /// every rank, or a bug): training on would average different models.
  case ranksDiverged(epoch: Int, phase: String)
  /// Rank 0 failed at something every rank waits for (the run folder); its error is printed.
  case rankZeroFailed(what: String)
  /// The recipe uses something that does not run data-parallel yet.
  case unsupported(file: String, key: String, reason: String)

  public var description: String {
    switch self {
    case .notBuiltWithMPI(let ranks):
      return "this distill was built without MPI, but mpirun started \(ranks) ranks: each would train the whole run "
        + "alone. Build the MPI binary (swift build -c release --traits MPI --scratch-path .build-mpi) and run "
        + "mpirun -np \(ranks) .build-mpi/release/distill …, or run this binary without mpirun"
    case .ranksDiffer(let rank, let what):
      return "rank \(rank) differs from rank 0 in \(what); every rank must read the same recipe, data and options "
        + "(the same files on every host, and the same command line)"
    case .rankCountChanged(let file, let saved, let now):
      return "\(file): the run trained on \(saved) rank\(saved == 1 ? "" : "s"), but this resume runs on \(now); "
        + "resume with mpirun -np \(saved)\(saved == 1 ? " or without mpirun" : "") so that it continues bit for bit "
        + "(the shards of every batch depend on the rank count)"
    case .ranksDiverged(let epoch, let phase):
      return "the ranks' \(phase) weights differ after epoch \(epoch): the gradient sums were not the same on every "
        + "rank; the run stops rather than average different models (please report this)"
    case .rankZeroFailed(let what):
      return "rank 0 could not \(what) (its error is printed above); this rank stops too"
    case .unsupported(let file, let key, let reason):
      return "\(file): \(key): \(reason)"
    }
  }
}

/// The rows of a batch of `rows` that `rank` of `size` takes: contiguous, in rank order, the
/// first `rows % size` ranks one row more (rows 0 ..< r₀, r₀ ..< r₁, …), so shards differ by at
/// most one row and concatenate to the batch.
public func shardRange(rows: Int, rank: Int, size: Int) -> Range<Int> {
  let (base, extra) = rows.quotientAndRemainder(dividingBy: size)
  let start = rank * base + min(rank, extra)
  return start..<(start + base + (rank < extra ? 1 : 0))
}

extension Collectives {
  /// Checks that every rank's `fingerprints` (name, hash) equal rank 0's; throws
  /// `ClusterError.ranksDiffer` on every rank, naming the first rank and item that differ.
  public func requireSame(_ fingerprints: [(what: String, hash: UInt64)]) throws {
    guard size > 1 else { return }
    for (what, hash) in fingerprints {
      let all = gather(hash)
      if let rank = all.firstIndex(where: { $0 != all[0] }) {
        throw ClusterError.ranksDiffer(rank: rank, what: what)
      }
    }
  }

  /// Whether any rank says yes.
  public func any(_ flag: Bool) -> Bool { maximum([flag ? 1 : 0])[0] > 0 }
}

/// FNV-1a over 64-bit words (a float's bits, a label), for the ranks to compare what they hold
/// (`Collectives.fingerprint`, `Trainer.fingerprint`): one word per step, not one byte.
struct WordHash {
  private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
  mutating func mix(_ word: UInt64) { value = (value ^ word) &* 0x0000_0100_0000_01b3 }
  mutating func mix(_ values: UnsafeBufferPointer<Float>) { for v in values { mix(UInt64(v.bitPattern)) } }
}
