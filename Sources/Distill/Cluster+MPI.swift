#if MPI
  import CMPI
  import Foundation

  /// `Collectives` over Open MPI's `MPI_COMM_WORLD` (the MPI build, started by `mpirun`).
  ///
  /// Sums are `MPI_Allreduce`/`MPI_Iallreduce` with `MPI_SUM` in place; Open MPI's algorithms for
  /// them hand every rank the same bits (the trainer checks this after every epoch:
  /// `ClusterError.ranksDiverged`). Hosts are found by splitting the world into shared-memory
  /// communicators (`MPI_Comm_split_type` with `MPI_COMM_TYPE_SHARED`); the lowest world rank of
  /// each leads its host. Errors abort the job (MPI's default handler): a rank that dies takes the
  /// others with it, and `mpirun` exits non-zero.
  final class MPICollectives: Collectives {
    let rank: Int
    let size: Int
    let hosts: Int
    let leadsHost: Bool
    private let world = distill_mpi_comm_world()
    /// Started non-blocking sums, by `PendingSum.index`; finished ones are `MPI_REQUEST_NULL`.
    private var requests: [MPI_Request?] = []

    private init(rank: Int, size: Int, hosts: Int, leadsHost: Bool) {
      (self.rank, self.size, self.hosts, self.leadsHost) = (rank, size, hosts, leadsHost)
    }

    /// `MPI_Init_thread` asking for `MPI_THREAD_SERIALIZED` (only the training thread calls MPI).
    static func start() -> MPICollectives {
      var provided: Int32 = 0
      MPI_Init_thread(nil, nil, distill_mpi_thread_serialized(), &provided)
      let world = distill_mpi_comm_world()
      var (rank, size): (Int32, Int32) = (0, 0)
      MPI_Comm_rank(world, &rank)
      MPI_Comm_size(world, &size)
      var node = distill_mpi_comm_null()
      MPI_Comm_split_type(world, distill_mpi_comm_type_shared(), rank, distill_mpi_info_null(), &node)
      var nodeRank: Int32 = 0
      MPI_Comm_rank(node, &nodeRank)
      MPI_Comm_free(&node)
      var leaders: Double = nodeRank == 0 ? 1 : 0
      MPI_Allreduce(distill_mpi_in_place(), &leaders, 1, distill_mpi_double(), distill_mpi_sum(), world)
      return MPICollectives(rank: Int(rank), size: Int(size), hosts: Int(leaders), leadsHost: nodeRank == 0)
    }

    func finish() { MPI_Finalize() }

    func abort(code: Int32) { MPI_Abort(world, code) }

    func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
      MPI_Allreduce(distill_mpi_in_place(), buffer, Int32(count), distill_mpi_float(), distill_mpi_sum(), world)
    }

    func startSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingSum {
      var request: MPI_Request? = distill_mpi_request_null()
      MPI_Iallreduce(
        distill_mpi_in_place(), buffer, Int32(count), distill_mpi_float(), distill_mpi_sum(), world, &request)
      requests.append(request)
      return PendingSum(index: requests.count - 1)
    }

    func poke(_ pending: [PendingSum]) {
      for p in pending {
        var request: MPI_Request? = requests[p.index]
        guard request != nil, request != distill_mpi_request_null() else { continue }
        var done: Int32 = 0
        MPI_Test(&request, &done, distill_mpi_status_ignore())
        requests[p.index] = request
      }
    }

    func wait(_ pending: [PendingSum]) {
      for p in pending {
        var request: MPI_Request? = requests[p.index]
        guard request != nil else { continue }
        MPI_Wait(&request, distill_mpi_status_ignore())
        requests[p.index] = nil
      }
      if requests.allSatisfy({ $0 == nil }) { requests.removeAll(keepingCapacity: true) }
    }

    func sum(_ values: [Double]) -> [Double] { reduce(values, distill_mpi_sum()) }
    func maximum(_ values: [Double]) -> [Double] { reduce(values, distill_mpi_max()) }

    private func reduce(_ values: [Double], _ op: MPI_Op) -> [Double] {
      var out = values
      MPI_Allreduce(distill_mpi_in_place(), &out, Int32(out.count), distill_mpi_double(), op, world)
      return out
    }

    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
      MPI_Bcast(buffer, Int32(count), distill_mpi_float(), 0, world)
    }

    func broadcast(_ bytes: [UInt8]) -> [UInt8] {
      var count = Int64(bytes.count)
      MPI_Bcast(&count, 1, distill_mpi_uint64(), 0, world)
      var out = rank == 0 ? bytes : [UInt8](repeating: 0, count: Int(count))
      if count > 0 { MPI_Bcast(&out, Int32(count), distill_mpi_byte(), 0, world) }
      return out
    }

    func barrier() {
      var request: MPI_Request? = distill_mpi_request_null()
      MPI_Ibarrier(world, &request)
      var done: Int32 = 0
      while true {
        MPI_Test(&request, &done, distill_mpi_status_ignore())
        if done != 0 { break }
        usleep(2000)
      }
    }

    func gather(_ value: UInt64) -> [UInt64] {
      var mine = value
      var all = [UInt64](repeating: 0, count: size)
      MPI_Allgather(&mine, 1, distill_mpi_uint64(), &all, 1, distill_mpi_uint64(), world)
      return all
    }
  }
#endif
