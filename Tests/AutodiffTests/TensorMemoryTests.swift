import Autodiff
import XCTest
import _TestSupport

/// `TensorMemory` counts the bytes of tensors created while counting, keeps their peak, and
/// counts leaves' gradients apart.
final class TensorMemoryTests: XCTestCase {
  override func tearDown() { TensorMemory.stop() }

  func testCountsLiveBytesAndPeakAndGradientsApart() {
    let before = Tensor.zeros([1000])  // created before counting: never counted
    TensorMemory.start()
    XCTAssertEqual(TensorMemory.liveBytes, 0)
    var a: Tensor? = Tensor.zeros([100])
    XCTAssertEqual(TensorMemory.liveBytes, 400)
    var b: Tensor? = Tensor.zeros([50])
    XCTAssertEqual(TensorMemory.liveBytes, 600)
    a = nil
    XCTAssertEqual(TensorMemory.liveBytes, 200)
    XCTAssertEqual(TensorMemory.peakBytes, 600)
    _ = a
    before.grad = b
    XCTAssertEqual(TensorMemory.liveBytes, 0, "a leaf's gradient is counted apart")
    XCTAssertEqual(TensorMemory.gradientBytes, 200)
    b = nil
    before.grad = nil
    XCTAssertEqual(TensorMemory.gradientBytes, 0)
    XCTAssertEqual(TensorMemory.peakBytes, 600)
    TensorMemory.stop()
    _ = Tensor.zeros([100])
    XCTAssertEqual(TensorMemory.liveBytes, 0, "not counting")
    XCTAssertEqual(TensorMemory.peakBytes, 600)
  }

  func testAGraphKeepsItsActivationsUntilBackward() {
    let w = randomTensor([64, 64], seed: 1)
    w.requiresGrad = true
    let x = randomTensor([32, 64], seed: 2)
    TensorMemory.start()
    var y = x
    for _ in 0..<4 { y = Tensor.matmul(y, w).tanh() }
    // Each of the 4 layers keeps its product and its tanh: 8 tensors of 32 × 64 floats.
    XCTAssertEqual(TensorMemory.liveBytes, 8 * 32 * 64 * 4)
    y.sum().backward()
    XCTAssertGreaterThan(TensorMemory.gradientBytes, 0)
    // Backward released the graph: only the last output, which this test holds, is left.
    XCTAssertEqual(TensorMemory.liveBytes, 32 * 64 * 4)
    XCTAssertFalse(y.requiresGrad)
  }

  func testASecondBackwardThroughAReleasedGraphAddsNothing() {
    let w = randomTensor([3], seed: 3)
    w.requiresGrad = true
    let loss = (w * w).sum()
    loss.backward()
    let first = w.grad!.storage
    loss.backward()
    XCTAssertEqual(w.grad!.storage, first)
    XCTAssertTrue(loss.isLeaf)
  }
}
