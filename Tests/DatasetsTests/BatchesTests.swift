import Datasets
import XCTest

final class BatchesTests: XCTestCase {
  /// 103 samples of shape [2, 3]; sample i holds i, i + 0.01, … and label i % 10.
  let data: Dataset = {
    let count = 103
    let features = (0..<count).flatMap { i in (0..<6).map { Float(i) + Float($0) / 100 } }
    return Dataset(
      sampleShape: [2, 3], features: features, labels: (0..<count).map { $0 % 10 }, classCount: 10)
  }()

  /// All batches of one epoch: the sample index each row came from (read back from its first
  /// feature), and the batch sizes.
  func run(_ batches: inout EpochBatches) -> (rows: [Int], sizes: [Int]) {
    var x: [Float] = []
    var y: [Int] = []
    var rows: [Int] = []
    var sizes: [Int] = []
    while let n = batches.next(features: &x, labels: &y) {
      XCTAssertEqual(x.count, n * 6)
      XCTAssertEqual(y.count, n)
      for r in 0..<n {
        let i = Int(x[r * 6])
        rows.append(i)
        XCTAssertEqual(Array(x[r * 6..<(r + 1) * 6]), Array(data.features[i * 6..<(i + 1) * 6]))
        XCTAssertEqual(y[r], data.labels[i])
      }
      sizes.append(n)
    }
    return (rows, sizes)
  }

  func testEveryIndexExactlyOncePerEpochAndLastBatchSmaller() {
    var batches = EpochBatches(dataset: data, batchSize: 10, seed: 1, epoch: 0)
    XCTAssertEqual(batches.batchCount, 11)
    let (rows, sizes) = run(&batches)
    XCTAssertEqual(rows.sorted(), Array(0..<103))
    XCTAssertEqual(sizes, Array(repeating: 10, count: 10) + [3])
    XCTAssertEqual(rows, batches.order)
    XCTAssertNotEqual(rows, Array(0..<103))
  }

  func testDropLastPartialBatch() {
    var batches = EpochBatches(dataset: data, batchSize: 10, seed: 1, epoch: 0, dropsLastPartialBatch: true)
    XCTAssertEqual(batches.batchCount, 10)
    let (rows, sizes) = run(&batches)
    XCTAssertEqual(sizes, Array(repeating: 10, count: 10))
    XCTAssertEqual(Set(rows).count, 100)
    XCTAssertEqual(rows, Array(batches.order.prefix(100)))
  }

  func testOrderDependsOnSeedAndEpochOnly() {
    let order = epochOrder(count: 1000, seed: 5, epoch: 3)
    XCTAssertEqual(order.sorted(), Array(0..<1000))
    XCTAssertEqual(epochOrder(count: 1000, seed: 5, epoch: 3), order)
    XCTAssertNotEqual(epochOrder(count: 1000, seed: 5, epoch: 4), order)
    XCTAssertNotEqual(epochOrder(count: 1000, seed: 6, epoch: 3), order)
    // Consecutive epochs are unrelated orders, not shifts of one another: few fixed positions.
    let next = epochOrder(count: 1000, seed: 5, epoch: 4)
    XCTAssertLessThan(zip(order, next).filter { $0 == $1 }.count, 10)
    XCTAssertEqual(
      EpochBatches(dataset: data, batchSize: 7, seed: 5, epoch: 3).order,
      epochOrder(count: 103, seed: 5, epoch: 3))
  }

  func testResumeMidEpochContinuesTheSameOrder() {
    var whole = EpochBatches(dataset: data, batchSize: 8, seed: 2, epoch: 7)
    var resumed = EpochBatches(dataset: data, batchSize: 8, seed: 2, epoch: 7, startingAtBatch: 5)
    let all = run(&whole).rows
    XCTAssertEqual(run(&resumed).rows, Array(all.dropFirst(40)))
    XCTAssertEqual(resumed.nextBatch, 13)
  }

  func testUnshuffledVisitsDatasetOrder() {
    var batches = EpochBatches(dataset: data, batchSize: 32, seed: 9, epoch: 1, shuffled: false)
    XCTAssertEqual(run(&batches).rows, Array(0..<103))
  }

  func testReusedArraysAreNotReallocatedAndCallerBuffersWork() {
    var batches = EpochBatches(dataset: data, batchSize: 10, seed: 4, epoch: 0)
    var x: [Float] = []
    var y: [Int] = []
    _ = batches.next(features: &x, labels: &y)
    let address = x.withUnsafeBufferPointer { $0.baseAddress }
    while batches.next(features: &x, labels: &y) != nil {
      XCTAssertEqual(x.withUnsafeBufferPointer { $0.baseAddress }, address)
    }
    XCTAssertEqual(x.count, 18, "the last batch holds 3 samples")

    var raw = EpochBatches(dataset: data, batchSize: 10, seed: 4, epoch: 0)
    let features = UnsafeMutableBufferPointer<Float>.allocate(capacity: 60)
    let labels = UnsafeMutableBufferPointer<Int>.allocate(capacity: 10)
    defer {
      features.deallocate()
      labels.deallocate()
    }
    var rows: [Int] = []
    while let n = raw.next(features: features, labels: labels) {
      rows += (0..<n).map { Int(features[$0 * 6]) }
      XCTAssertEqual(Array(labels.prefix(n)), rows.suffix(n).map { $0 % 10 })
    }
    XCTAssertEqual(rows, raw.order)
  }
}
