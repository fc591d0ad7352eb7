import Autodiff
import Checkpoints
import Energy
import XCTest
import _TestSupport

@testable import Distill

/// The parts of data-parallel training that need no MPI, against fake collectives: the shards
/// of a batch, the gradient buckets, the energy sum over ranks and hosts, the checks at the
/// start. The runs under `mpirun` are `DistillCLITests/DataParallelTests` (the MPI build).
final class DataParallelUnitTests: XCTestCase {
  /// A fake rank `rank` of `size` whose peers hold the same values as it does: a sum multiplies
  /// by `size`; `gathered` stands for the peers' values.
  final class MirrorCollectives: Collectives {
    let rank: Int
    let size: Int
    let hosts: Int
    let leadsHost: Bool
    var gathered: [UInt64]?
    var started = 0
    var startedDuringBackward: [Int] = []
    var sums: [[Double]] = []
    init(rank: Int = 0, size: Int, hosts: Int = 1, leadsHost: Bool = true) {
      (self.rank, self.size, self.hosts, self.leadsHost) = (rank, size, hosts, leadsHost)
    }
    func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
      for i in 0..<count { buffer[i] *= Float(size) }
    }
    func startSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingSum {
      sum(buffer, count: count)
      started += 1
      return PendingSum(index: started)
    }
    func poke(_ pending: [PendingSum]) {}
    func wait(_ pending: [PendingSum]) {}
    func sum(_ values: [Double]) -> [Double] {
      sums.append(values)
      return values.map { $0 * Double(size) }
    }
    func maximum(_ values: [Double]) -> [Double] { values }
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    func broadcast(_ bytes: [UInt8]) -> [UInt8] { bytes }
    func gather(_ value: UInt64) -> [UInt64] { gathered ?? Array(repeating: value, count: size) }
    func barrier() {}
  }

  func testShardsAreContiguousDifferByAtMostOneRowAndCoverTheBatch() {
    for rows in [1, 2, 7, 25, 64, 100] {
      for size in 1...5 where size <= rows {
        let shards = (0..<size).map { shardRange(rows: rows, rank: $0, size: size) }
        XCTAssertEqual(shards.first?.lowerBound, 0)
        XCTAssertEqual(shards.last?.upperBound, rows)
        for (a, b) in zip(shards, shards.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
        let counts = shards.map(\.count)
        XCTAssertLessThanOrEqual(counts.max()! - counts.min()!, 1, "\(rows) rows over \(size)")
        XCTAssertGreaterThan(counts.min()!, 0)
      }
    }
    XCTAssertEqual(shardRange(rows: 25, rank: 0, size: 3), 0..<9)
    XCTAssertEqual(shardRange(rows: 25, rank: 2, size: 3), 17..<25)
  }

  /// Buckets hold the parameters in reverse order up to the bucket size; a bucket starts as soon
  /// as its last parameter is final during backward; `finish` writes the sums back, and a
  /// parameter no rank has a gradient for keeps none.
  func testBucketsStartDuringBackwardAndWriteTheSumsBack() {
    let layers = (0..<3).map { i in Tensor(shape: [4, 4], storage: randomTensor([4, 4], seed: UInt64(i)).storage, requiresGrad: true) }
    let unused = Tensor(shape: [3], storage: [1, 2, 3], requiresGrad: true)
    let parameters = layers + [unused]
    let fake = MirrorCollectives(size: 2)
    // 16 floats = 64 bytes per layer: buckets of 64 bytes hold one parameter each.
    let reducer = GradientReducer(parameters: parameters, collectives: fake, bucketBytes: 64, overlap: true)
    XCTAssertEqual(reducer.buckets, [[3], [2], [1], [0]])
    let x = randomTensor([2, 4], seed: 7)
    let loss = x.matmul(layers[0]).matmul(layers[1]).matmul(layers[2]).sum()
    var startedWhenReady: [Int] = []
    loss.backward(leafReady: { leaf in
      reducer.ready(leaf)
      startedWhenReady.append(fake.started)
    })
    // layers[2] is final first, then [1], then [0]; each starts its bucket at once.
    XCTAssertEqual(startedWhenReady, [1, 2, 3])
    let local = layers.map { $0.grad!.storage }
    reducer.finish()
    XCTAssertEqual(fake.started, 4, "the unused parameter's bucket starts in finish")
    for (layer, before) in zip(layers, local) { XCTAssertEqual(layer.grad!.storage, before.map { $0 * 2 }) }
    XCTAssertNil(unused.grad, "no rank had a gradient for it: the optimizer must skip it")
  }

  func testWithoutOverlapEverythingStartsInFinish() {
    let w = Tensor(shape: [4, 4], storage: randomTensor([4, 4], seed: 1).storage, requiresGrad: true)
    let fake = MirrorCollectives(size: 3)
    let reducer = GradientReducer(parameters: [w], collectives: fake, bucketBytes: 1 << 20, overlap: false)
    randomTensor([2, 4], seed: 2).matmul(w).sum().backward(leafReady: { reducer.ready($0) })
    XCTAssertEqual(fake.started, 0)
    let local = w.grad!.storage
    reducer.finish()
    XCTAssertEqual(fake.started, 1)
    XCTAssertEqual(w.grad!.storage, local.map { $0 * 3 })
  }

  /// The estimate counts every rank's CPU time; RAPL counts a host's packages once, from the
  /// rank that leads the host.
  func testClusterMeterCountsEveryRanksEstimateAndEachHostsRAPLOnce() {
    final class FixedMeter: EnergyMeter, @unchecked Sendable {
      let source: EnergySource
      var summary: String { "fixed" }
      init(_ source: EnergySource) { self.source = source }
      func read() -> EnergyReading {
        var reading = EnergyReading(joules: 10, dramJoules: source == .rapl ? 2 : nil, seconds: 1)
        if source == .rapl { reading.estimateJoules = 3 }
        return reading
      }
      func stop() {}
    }
    let estimate = ClusterMeter(FixedMeter(.estimate), collectives: MirrorCollectives(size: 4))
    XCTAssertEqual(estimate.source, .estimate)
    XCTAssertEqual(estimate.read().joules, 40)
    XCTAssertTrue(estimate.summary.contains("summed over 4 ranks on 1 host"), estimate.summary)

    let leader = ClusterMeter(FixedMeter(.rapl), collectives: MirrorCollectives(size: 2, leadsHost: true))
    XCTAssertEqual(leader.source, .rapl)
    XCTAssertEqual(leader.read().joules, 20, "a fake of two host leaders: 10 J each")
    XCTAssertEqual(leader.read().dramJoules, 4)
    let follower = MirrorCollectives(size: 2, leadsHost: false)
    let counted = ClusterMeter(FixedMeter(.rapl), collectives: follower)
    XCTAssertEqual(counted.read().joules, 0, "a rank that does not lead its host adds nothing")
    XCTAssertEqual(counted.read().estimateJoules, 6, "but its CPU-time estimate, the fallback, counts")
  }

  func testRanksThatDifferAreNamed() {
    let fake = MirrorCollectives(size: 3)
    fake.gathered = [5, 5, 6]
    XCTAssertThrowsError(try fake.requireSame([("the training data", 5)])) { error in
      XCTAssertEqual(error as? ClusterError, .ranksDiffer(rank: 2, what: "the training data"))
      XCTAssertTrue("\(error)".contains("rank 2 differs from rank 0 in the training data"))
    }
    fake.gathered = nil
    XCTAssertNoThrow(try fake.requireSame([("the training data", 5)]))
  }

  func testRankCountIsKeptInCheckpointsAndChecked() throws {
    var state = TrainingState(
      phase: "student", epoch: 1, batch: 0, globalStep: 3, runEpoch: 1, optimizerName: "sgd", recipeHash: "h",
      recipeJSON: "{}", blasThreads: 1)
    state.ranks = 3
    state.bucketBytes = 4096
    state.metrics = []
    state.lastEpoch = [:]
    let path = NSTemporaryDirectory() + "ranks-\(UUID().uuidString).h5"
    defer { try? FileManager.default.removeItem(atPath: path) }
    try writeTrainingCheckpoint(state, models: [], to: path)
    let read = try TrainingState.read(from: path)
    XCTAssertEqual(read.ranks, 3)
    XCTAssertEqual(read.bucketBytes, 4096)
    let message = ClusterError.rankCountChanged(file: path, saved: 3, now: 2).description
    XCTAssertTrue(message.contains("trained on 3 ranks, but this resume runs on 2"), message)
    XCTAssertTrue(message.contains("mpirun -np 3"), message)
  }
}
