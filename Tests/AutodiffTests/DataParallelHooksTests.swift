import Autodiff
import XCTest
import _TestSupport

/// What data-parallel training asks of the engine: dropout masks of a batch shard equal to the
/// whole batch's rows, and `backward(leafReady:)` reporting each leaf once its gradient is final.
final class DataParallelHooksTests: XCTestCase {
  /// Shards of 2 + 3 + 2 rows of a 7-row batch, each drawn from the same generator state, give
  /// the whole batch's mask row for row, and leave the generator where the whole batch does.
  func testDropoutOfAShardIsThatShardsRowsOfTheWholeBatchsMask() {
    let x = randomTensor([7, 5], seed: 1)
    var whole = SeededGenerator(seed: 9)
    let start = whole
    let full = x.dropout(probability: 0.4, generator: &whole)
    var offset = 0
    for rows in [2, 3, 2] {
      var generator = start
      let part = Tensor(shape: [rows, 5], storage: Array(x.storage[(offset * 5)..<((offset + rows) * 5)]))
      let y = BatchShard.$current.withValue(BatchShard(offset: offset, rows: 7)) {
        part.dropout(probability: 0.4, generator: &generator)
      }
      XCTAssertEqual(y.storage, Array(full.storage[(offset * 5)..<((offset + rows) * 5)]), "rows \(offset)..<\(offset + rows)")
      XCTAssertEqual(generator, whole, "the shard's generator must end where the whole batch's does")
      offset += rows
    }
  }

  /// Each leaf is reported exactly once, after the last node that reads it, with its final
  /// gradient; a leaf read by two nodes (w in both products) only after both.
  func testLeafReadyReportsEachLeafOnceWithItsFinalGradient() {
    let x = randomTensor([3, 4], seed: 2)
    let w = Tensor(shape: [4, 4], storage: randomTensor([4, 4], seed: 3).storage, requiresGrad: true)
    let v = Tensor(shape: [4, 2], storage: randomTensor([4, 2], seed: 4).storage, requiresGrad: true)
    let loss = x.matmul(w).relu().matmul(w).matmul(v).sum()
    var reported: [(ObjectIdentifier, [Float])] = []
    loss.backward(leafReady: { leaf in reported.append((ObjectIdentifier(leaf), leaf.grad!.storage)) })
    XCTAssertEqual(reported.count, 2)
    XCTAssertEqual(reported.map(\.0), [ObjectIdentifier(v), ObjectIdentifier(w)], "v is final first")
    XCTAssertEqual(reported[1].1, w.grad!.storage, "w's gradient was final when reported")
    XCTAssertEqual(reported[0].1, v.grad!.storage)

    // Without the hook, the same gradients.
    let w2 = Tensor(shape: [4, 4], storage: w.storage, requiresGrad: true)
    let v2 = Tensor(shape: [4, 2], storage: v.storage, requiresGrad: true)
    x.matmul(w2).relu().matmul(w2).matmul(v2).sum().backward()
    XCTAssertEqual(w2.grad!.storage, w.grad!.storage)
    XCTAssertEqual(v2.grad!.storage, v.grad!.storage)
  }
}
