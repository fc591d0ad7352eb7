import Autodiff
import XCTest
import _TestSupport

/// The log of a step's matrix products that `distill bench` times alone for its ceiling.
final class MatrixProductLogTests: XCTestCase {
  func testAMatmulAndItsGradientLogThreeProductsWithTheirShapes() {
    let x = randomTensor([8, 5], seed: 1)
    let w = randomTensor([3, 5], seed: 2)
    x.requiresGrad = true
    w.requiresGrad = true
    let products = MatrixProductLog.recording { Tensor.matmul(x, w, transposeB: true).sum().backward() }
    XCTAssertEqual(products.map { [$0.m, $0.n, $0.k] }, [[8, 3, 5], [8, 5, 3], [3, 5, 8]])
    let flops: Double = products.map(\.flops).reduce(0, +)
    XCTAssertEqual(flops, 720)  // three products of 8·3·5 multiply-adds
    XCTAssertFalse(products.contains { $0.bf16 })
    let autocast = MatrixProductLog.recording { _ = withBF16Autocast { Tensor.matmul(x, w, transposeB: true) } }
    // oneDNN's bfloat16 product where the CPU has one; else the documented Float fallback.
    XCTAssertEqual(autocast.map(\.bf16), [MatrixProducts.bfloat16Available])
    // Nothing is logged outside `recording`, and a logged product can be timed alone.
    XCTAssertEqual(MatrixProductLog.recording {}, [])
    XCTAssertGreaterThan(MatrixProductLog.seconds(of: products[0], repeats: 1), 0)
    XCTAssertGreaterThan(MatrixProductLog.seconds(of: autocast[0], repeats: 1), 0)
  }
}
