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

extension Tensor {
  /// Batched products of 3-D tensors, `a[i] · b[i]` (or with `b[i]ᵀ`) for each i
  /// (`torch.bmm(a, b)`, `torch.bmm(a, b.transpose(1, 2))`): `[B, M, K] · [B, K, N] → [B, M, N]`.
  /// ∂a[i] = g[i]·op(b[i])ᵀ, ∂b[i] = a[i]ᵀ·g[i] (transposed back when `transposeB`).
  public static func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeB: Bool = false) -> Tensor {
    precondition(a.rank == 3 && b.rank == 3 && a.shape[0] == b.shape[0], "batchedMatmul of \(a.shape) and \(b.shape)")
    let out = batchedGemm(a, false, b, transposeB)
    return out.recording([a, b], half: .never) { g in
      let gradA: Tensor? = a.requiresGrad ? batchedGemm(g, false, b, !transposeB) : nil
      let gradB: Tensor? =
        b.requiresGrad ? (transposeB ? batchedGemm(g, true, a, false) : batchedGemm(a, true, g, false)) : nil
      return [gradA, gradB]
    }
  }
}

/// op(a[i])·op(b[i]) for each i by `cblas_sgemm`, recording nothing.
func batchedGemm(_ a: Tensor, _ transposeA: Bool, _ b: Tensor, _ transposeB: Bool) -> Tensor {
  let batches = a.shape[0]
  let (m, k) = transposeA ? (a.shape[2], a.shape[1]) : (a.shape[1], a.shape[2])
  let (k2, n) = transposeB ? (b.shape[2], b.shape[1]) : (b.shape[1], b.shape[2])
  precondition(k == k2, "batchedMatmul shapes \(a.shape) and \(b.shape) do not agree")
  let (aSize, bSize) = (a.shape[1] * a.shape[2], b.shape[1] * b.shape[2])
  return Tensor(shape: [batches, m, n]) { c in
    a.storage.withUnsafeBufferPointer { pa in
      b.storage.withUnsafeBufferPointer { pb in
        for i in 0..<batches {
          sgemm(
            transposeA, transposeB, m: m, n: n, k: k, alpha: 1, pa.baseAddress! + i * aSize, lda: a.shape[2],
            pb.baseAddress! + i * bSize, ldb: b.shape[2], beta: 0, c.baseAddress! + i * m * n, ldc: n)
        }
      }
    }
  }
}
