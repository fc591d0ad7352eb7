import Autodiff
import XCTest

/// The engine's pool of freed tensor buffers: reuse, values never leaking from a reused buffer,
/// the bound, and buffers shared with arrays outside the tensor. Sizes are unusual so that
/// other tests' tensors do not meet these buckets.
final class TensorBufferPoolTests: XCTestCase {
  override func tearDown() {
    TensorBufferPool.capacityBytes = min(1 << 30, ProcessMemory.physicalBytes / 8)
  }

  func testAFreedTensorsBufferServesTheNextTensorOfItsSize() {
    let count = TensorBufferPool.minimumElements + 777
    do { _ = Tensor(repeating: 7, shape: [count]) }
    let before = TensorBufferPool.reuseCounts.hits
    let pooled = TensorBufferPool.pooledBytes
    XCTAssertGreaterThanOrEqual(pooled, count * 4)
    let t = Tensor(shape: [count]) { out in for i in 0..<out.count { out[i] = Float(i) } }
    XCTAssertEqual(TensorBufferPool.reuseCounts.hits, before + 1)
    XCTAssertEqual(TensorBufferPool.pooledBytes, pooled - count * 4)
    XCTAssertEqual(t.storage[count - 1], Float(count - 1))
  }

  func testReusedBuffersHoldOnlyTheirNewValues() {
    let count = TensorBufferPool.minimumElements + 778
    do { _ = Tensor(repeating: 7, shape: [count]) }
    XCTAssertEqual(Set(Tensor.zeros([count]).storage), [0])
    do { _ = Tensor(repeating: 7, shape: [count]) }
    XCTAssertEqual(Set(Tensor(repeating: -2, shape: [2, count / 2 + 0]).storage.prefix(count / 2 * 2)), [-2])
    // A gradient buffer (pooling's ∂x starts from zeros) after a freed tensor of its size.
    let x = Tensor.uniform([1, 1, 4, count / 4 / 4 * 4], low: -1, high: 1, generator: &generator)
    x.requiresGrad = true
    do { _ = Tensor(repeating: 7, shape: [x.count]) }
    x.maxPool2d(kernelSize: 2).sum().backward()
    XCTAssertEqual(x.grad!.storage.reduce(0, +), Float(x.count / 4))
    XCTAssertEqual(Set(x.grad!.storage), [0, 1])
  }

  func testSmallTensorsAreLeftToTheAllocator() {
    let pooled = TensorBufferPool.pooledBytes
    do { _ = Tensor(repeating: 1, shape: [TensorBufferPool.minimumElements - 1]) }
    XCTAssertEqual(TensorBufferPool.pooledBytes, pooled)
  }

  func testThePoolKeepsAtMostItsCapacityAndReleasesTheOldestSizesFirst() {
    let (a, b) = (TensorBufferPool.minimumElements + 779, TensorBufferPool.minimumElements + 780)
    TensorBufferPool.drain()
    TensorBufferPool.capacityBytes = (a + b) * 4 + 100
    do { _ = Tensor(repeating: 1, shape: [a]) }
    do { _ = Tensor(repeating: 1, shape: [b]) }
    XCTAssertEqual(TensorBufferPool.pooledBytes, (a + b) * 4)
    // A third size does not fit beside both: a, used longest ago, goes.
    let c = TensorBufferPool.minimumElements + 781
    do { _ = Tensor(repeating: 1, shape: [c]) }
    XCTAssertEqual(TensorBufferPool.pooledBytes, (b + c) * 4)
    let hits = TensorBufferPool.reuseCounts.hits
    _ = Tensor.zeros([a])
    XCTAssertEqual(TensorBufferPool.reuseCounts.hits, hits, "a was released")
    // Lowering the capacity releases at once; 0 turns the pool off.
    TensorBufferPool.capacityBytes = 0
    XCTAssertEqual(TensorBufferPool.pooledBytes, 0)
    do { _ = Tensor(repeating: 1, shape: [a]) }
    XCTAssertEqual(TensorBufferPool.pooledBytes, 0)
  }

  func testABufferSharedWithAnArrayOutsideIsNeverWrittenThrough() {
    let count = TensorBufferPool.minimumElements + 782
    let outside = [Float](repeating: 3, count: count)
    do { _ = Tensor(shape: [count], storage: outside) }  // its buffer goes to the pool, still shared
    let t = Tensor(shape: [count]) { out in out.update(repeating: 9) }
    XCTAssertEqual(Set(t.storage), [9])
    XCTAssertEqual(Set(outside), [3], "writing a reused buffer copies it when another array shares it")
  }

  private var generator = SeededGenerator(seed: 1)
}
