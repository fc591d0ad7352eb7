@testable import Autodiff
import XCTest
import _TestSupport

/// Numerical gradient checks (central differences) and values of the ops the distillation
/// methods added: clamp, smooth L1, batched products and column gathers.
final class MethodOpGradientTests: XCTestCase {
  /// Values whose distance from `points` exceeds the finite-difference step.
  func awayFrom(_ points: [Float], _ shape: [Int], seed: UInt64, scale: Float = 2) -> Tensor {
    let t = randomTensor(shape, seed: seed)
    for i in 0..<t.count {
      var v = t.storage[i] * scale
      for p in points where abs(v - p) < 0.05 { v = p + 0.1 }
      t.storage[i] = v
    }
    return t
  }

  func testClampGradientAndValues() {
    let x = awayFrom([0.2], [3, 4], seed: 1)
    assertGradientsMatch([x], "clamp(min: 0.2)") { $0[0].clamped(min: 0.2) }
    XCTAssertEqual(Tensor(shape: [3], storage: [-1, 0.2, 3]).clamped(min: 0.2).storage, [0.2, 0.2, 3])
  }

  func testSmoothL1GradientAndValues() {
    let x = awayFrom([-1, 1], [4, 5], seed: 2)
    assertGradientsMatch([x], "smoothL1") { $0[0].smoothL1() }
    // F.smooth_l1_loss(x, 0, reduction="none") at -2, -0.5, 0.5, 3.
    XCTAssertEqual(Tensor(shape: [4], storage: [-2, -0.5, 0.5, 3]).smoothL1().storage, [1.5, 0.125, 0.125, 2.5])
  }

  func testBatchedMatmulGradients() {
    let (a, b, c) = (randomTensor([3, 2, 4], seed: 3), randomTensor([3, 4, 5], seed: 4), randomTensor([3, 5, 4], seed: 5))
    assertGradientsMatch([a, b], "bmm") { Tensor.batchedMatmul($0[0], $0[1]) }
    assertGradientsMatch([a, c], "bmm with bᵀ") { Tensor.batchedMatmul($0[0], $0[1], transposeB: true) }
  }

  func testBatchedMatmulValues() {
    let a = Tensor(shape: [2, 1, 2], storage: [1, 2, 3, 4])
    let b = Tensor(shape: [2, 2, 1], storage: [5, 6, 7, 8])
    XCTAssertEqual(Tensor.batchedMatmul(a, b).storage, [17, 53])
    XCTAssertEqual(Tensor.batchedMatmul(a, a, transposeB: true).storage, [5, 25])
  }

  func testGatheredColumnsGradientAndValues() {
    let x = randomTensor([2, 5], seed: 6)
    // Column 1 of row 0 is picked twice: its gradient adds up.
    let indices = [1, 1, 4, 0, 3, 2]
    assertGradientsMatch([x], "gatheredColumns") { $0[0].gatheredColumns(indices, count: 3) }
    let values = Tensor(shape: [2, 3], storage: [0, 1, 2, 3, 4, 5]).gatheredColumns([2, 0, 1, 1], count: 2)
    XCTAssertEqual(values.storage, [2, 0, 4, 4])
  }

  /// Broadcasting over trailing axes (`[n, C, HW] / [n, C, 1]`, as the feature methods' norms
  /// do): the gradient of the smaller operand sums contiguous blocks (`summed(toShape:)`'s
  /// fast path), checked numerically and against the general strided sum.
  func testTrailingAxisBroadcastGradients() {
    let x = randomTensor([2, 3, 4], seed: 7)
    let norms = awayFrom([0], [2, 3, 1], seed: 8)
    assertGradientsMatch([x, norms], "[2,3,4] / [2,3,1]") { $0[0] / $0[1] }
    let rows = awayFrom([0], [2, 1, 1], seed: 9)
    assertGradientsMatch([x, rows], "[2,3,4] * [2,1,1]") { $0[0] * $0[1] }
    // The blocks: the sums of 4 consecutive elements, and of 12.
    let g = Tensor(shape: [2, 3, 4], storage: (0..<24).map(Float.init))
    XCTAssertEqual(g.summed(toShape: [2, 3, 1]).storage, [6, 22, 38, 54, 70, 86])
    XCTAssertEqual(g.summed(toShape: [2, 1, 1]).storage, [66, 210])
    // Not trailing (axis 0 reduced as well): the general path, same sums as by hand.
    XCTAssertEqual(g.summed(toShape: [3, 1]).storage, [6 + 54, 22 + 70, 38 + 86])
  }
}
