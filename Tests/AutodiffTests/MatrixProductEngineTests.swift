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
