import CBLAS

// Matrix products through OpenBLAS `cblas_sgemm`. Transposition is a flag to sgemm, never a
// copy, both in the forward product and in the two products of its gradient.

extension Tensor {
  /// The matrix product op(a)·op(b) of two 2-D tensors, where op transposes when asked
  /// (`torch.matmul(a.T if transposeA else a, b.T if transposeB else b)`).
  ///
  /// Shape: op(a) `[m, k]`, op(b) `[k, n]` → `[m, n]`.
  ///
  /// With C = op(A)·op(B): ∂op(A) = G·op(B)ᵀ and ∂op(B) = op(A)ᵀ·G, each written as one
  /// sgemm over the stored (untransposed) operands.
  public static func matmul(
    _ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false
  ) -> Tensor {
    let out = gemm(a, transposeA, b, transposeB)
    return out.recording([a, b], half: .always) { g in
      let gradA: Tensor? =
        a.requiresGrad
        ? (transposeA ? gemm(b, transposeB, g, true) : gemm(g, false, b, !transposeB)) : nil
      let gradB: Tensor? =
        b.requiresGrad
        ? (transposeB ? gemm(g, true, a, transposeA) : gemm(a, !transposeA, g, false)) : nil
      return [gradA, gradB]
    }
  }

  /// `a · b` for 2-D tensors.
  public func matmul(_ other: Tensor) -> Tensor { Tensor.matmul(self, other) }
}

/// op(a)·op(b) by `cblas_sgemm`, recording nothing.
func gemm(_ a: Tensor, _ transposeA: Bool, _ b: Tensor, _ transposeB: Bool) -> Tensor {
  precondition(a.rank == 2 && b.rank == 2, "matmul needs 2-D tensors, got \(a.shape) and \(b.shape)")
  let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
  let (k2, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
  precondition(k == k2, "matmul shapes \(a.shape)\(transposeA ? "ᵀ" : "") and \(b.shape)\(transposeB ? "ᵀ" : "") do not agree")
  return Tensor(shape: [m, n]) { c in
    a.storage.withUnsafeBufferPointer { pa in
      b.storage.withUnsafeBufferPointer { pb in
        sgemm(
          transposeA, transposeB, m: m, n: n, k: k, alpha: 1, pa.baseAddress!, lda: a.shape[1],
          pb.baseAddress!, ldb: b.shape[1], beta: 0, c.baseAddress!, ldc: n)
      }
    }
  }
}

/// C = α·op(A)·op(B) + β·C over row-major buffers: a thin, typed front to `cblas_sgemm`.
/// With β = 0, C need not be initialised.
public func sgemm(
  _ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
  _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, beta: Float,
  _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
  guard m > 0, n > 0 else { return }
  if k == 0 {  // an empty sum: C = β·C (sgemm would read nothing but must still scale)
    for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
    return
  }
  cblas_sgemm(
    CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
