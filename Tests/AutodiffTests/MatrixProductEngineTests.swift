import Autodiff
import XCTest
import _TestSupport

/// Float products by OpenBLAS and by oneDNN agree (each is a Float sum in its own order), in
/// every transposition, with and without accumulation, and the default rule picks oneDNN only
/// where A is not transposed.
final class MatrixProductEngineTests: XCTestCase {
  override func tearDown() { MatrixProducts.engine = .auto }

  private func product(_ engine: MatrixProducts.Engine, _ ta: Bool, _ tb: Bool, _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, beta: Float) -> [Float] {
    MatrixProducts.engine = engine
    var c = [Float](repeating: 0.5, count: m * n)
    c.withUnsafeMutableBufferPointer { pc in
      sgemm(ta, tb, m: m, n: n, k: k, alpha: 1, a, lda: ta ? m : k, b, ldb: tb ? k : n, beta: beta, pc.baseAddress!, ldc: n)
    }
    return c
  }

  func testOpenBLASAndOneDNNAgree() {
    let (m, n, k) = (37, 10, 129)
    let a = randomTensor([m * k], seed: 1).storage
    let b = randomTensor([k * n], seed: 2).storage
    for ta in [false, true] {
      for tb in [false, true] {
        for beta: Float in [0, 1] {
          let blas = product(.openblas, ta, tb, a, b, m: m, n: n, k: k, beta: beta)
          let dnnl = product(.onednn, ta, tb, a, b, m: m, n: n, k: k, beta: beta)
          assertClose(dnnl, blas, absoluteTolerance: 1e-4, relativeTolerance: 1e-5, "tA \(ta) tB \(tb) beta \(beta)")
        }
      }
    }
  }

  func testTheDefaultRuleAndItsLog() {
    let x = randomTensor([8, 5], seed: 3)
    let w = randomTensor([3, 5], seed: 4)
    w.requiresGrad = true
    x.requiresGrad = true
    MatrixProducts.engine = .auto
    let auto = Tensor.matmul(x, w, transposeB: true)
    MatrixProducts.engine = .openblas
    let blas = Tensor.matmul(x, w, transposeB: true)
    assertClose(auto.storage, blas.storage, absoluteTolerance: 1e-6, relativeTolerance: 1e-5)
    XCTAssertEqual(MatrixProducts.engine, .openblas)
  }
}

/// A leaf that already holds a gradient gets the next one added by the product itself (β = 1,
/// no new buffer): the same tensor object afterwards, holding old + new.
final class GradientAccumulationProductTests: XCTestCase {
  func testALeafsExistingGradientReceivesTheProductInPlace() {
    let x = randomTensor([6, 5], seed: 301)
    let w = Tensor(shape: [4, 5], storage: randomTensor([4, 5], seed: 302).storage, requiresGrad: true)
    let seed = randomTensor([6, 4], seed: 303)
    Tensor.matmul(x, w, transposeB: true).backward(seed: seed)
    let first = w.grad!
    let once = first.storage
    let products = MatrixProductLog.recording {
      Tensor.matmul(x, w, transposeB: true).backward(seed: seed)
    }
    XCTAssertTrue(w.grad === first, "the gradient tensor must be updated in place")
    assertClose(w.grad!.storage, once.map { 2 * $0 }, absoluteTolerance: 1e-6, relativeTolerance: 1e-6)
    // The forward product and ∂w, which wrote onto the existing gradient with β = 1.
    XCTAssertEqual(products.map(\.beta), [0, 1])
    // A fresh backward (gradient zeroed) adopts a new buffer again: β = 0.
    w.zeroGrad()
    let fresh = MatrixProductLog.recording { Tensor.matmul(x, w, transposeB: true).backward(seed: seed) }
    XCTAssertEqual(fresh.map(\.beta), [0, 0])
    XCTAssertEqual(w.grad!.storage, once)
  }

  func testAWeightUsedTwiceSumsBothProducts() {
    let x = randomTensor([3, 4], seed: 311)
    let w = Tensor(shape: [4, 4], storage: randomTensor([4, 4], seed: 312).storage, requiresGrad: true)
    let y = Tensor.matmul(Tensor.matmul(x, w), w)
    y.backward(seed: randomTensor([3, 4], seed: 313))
    // Reference: ∂w = xᵀ·(g·wᵀ) + (x·w)ᵀ·g, computed apart.
    let g = randomTensor([3, 4], seed: 313)
    let h = noGrad { Tensor.matmul(x, w) }
    let first = noGrad { Tensor.matmul(x, Tensor.matmul(g, w, transposeB: true), transposeA: true) }
    let second = noGrad { Tensor.matmul(h, g, transposeA: true) }
    assertClose(w.grad!.storage, zip(first.storage, second.storage).map { $0 + $1 }, absoluteTolerance: 1e-5, relativeTolerance: 1e-5)
  }
}
