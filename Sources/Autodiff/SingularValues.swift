import CBLAS

/// The singular value decomposition of a row-major matrix, by LAPACK's `sgesdd` (OpenBLAS):
/// `W = U · diag(s) · Vᵀ`, singular values in decreasing order (`torch.linalg.svd(W,
/// full_matrices=False)`).
public struct SingularValueDecomposition {
  /// `[rows, k]` row-major, k = min(rows, columns): the left singular vectors as columns.
  public let u: [Float]
  /// `k` singular values, largest first.
  public let s: [Float]
  /// `[k, columns]` row-major: the right singular vectors as rows.
  public let vt: [Float]
  public let rows: Int
  public let columns: Int
  public var k: Int { s.count }

  /// Decomposes `matrix` (`rows × columns`, row-major). Nil when LAPACK reports that the
  /// iteration did not converge or an argument is wrong (a NaN or infinity in `matrix`).
  public init?(_ matrix: [Float], rows: Int, columns: Int) {
    precondition(matrix.count == rows * columns && rows > 0 && columns > 0, "SVD of \(matrix.count) values as \(rows)×\(columns)")
    // Row-major W [rows, columns] is column-major Wᵀ [columns, rows]. LAPACK factors
    // Wᵀ = U'·S·V'ᵀ, so W = V'·S·U'ᵀ: column-major V'ᵀ [k, rows] read row-major is V' = U of W
    // [rows, k], and column-major U' [columns, k] read row-major is U'ᵀ = Vᵀ of W [k, columns].
    var a = matrix
    var m = Int32(columns), n = Int32(rows)
    let k = min(rows, columns)
    var s = [Float](repeating: 0, count: k)
    var uPrime = [Float](repeating: 0, count: columns * k)
    var vtPrime = [Float](repeating: 0, count: k * rows)
    var lda = m, ldu = m, ldvt = Int32(k)
    var info: Int32 = 0
    var iwork = [Int32](repeating: 0, count: 8 * k)
    var query: Float = 0
    var lwork: Int32 = -1
    var job = Int8(UInt8(ascii: "S"))
    sgesdd_(&job, &m, &n, &a, &lda, &s, &uPrime, &ldu, &vtPrime, &ldvt, &query, &lwork, &iwork, &info, 1)
    guard info == 0 else { return nil }
    lwork = Int32(query)
    var work = [Float](repeating: 0, count: max(1, Int(lwork)))
    sgesdd_(&job, &m, &n, &a, &lda, &s, &uPrime, &ldu, &vtPrime, &ldvt, &work, &lwork, &iwork, &info, 1)
    guard info == 0 else { return nil }
    (self.u, self.s, self.vt, self.rows, self.columns) = (vtPrime, s, uPrime, rows, columns)
  }

  /// The smallest rank whose singular values keep at least `fraction` of the spectral energy
  /// Σ sᵢ² (at least 1).
  public func rank(keepingEnergy fraction: Double) -> Int {
    let energies = s.map { Double($0) * Double($0) }
    let total = energies.reduce(0, +)
    guard total > 0 else { return 1 }
    var kept = 0.0
    for (i, e) in energies.enumerated() {
      kept += e
      if kept >= fraction * total * (1 - 1e-12) { return i + 1 }
    }
    return k
  }

  /// The factors of the rank-`r` truncation W ≈ B·A, the singular values split evenly
  /// between them: A = diag(√s₁…√s_r)·Vᵀ[:r] `[r, columns]`, B = U[:, :r]·diag(√s₁…√s_r)
  /// `[rows, r]`.
  public func factors(rank r: Int) -> (a: [Float], b: [Float]) {
    precondition(r >= 1 && r <= k, "rank \(r) of a \(rows)×\(columns) matrix")
    let roots = s.prefix(r).map { $0.squareRoot() }
    var a = [Float](repeating: 0, count: r * columns)
    for i in 0..<r {
      for j in 0..<columns { a[i * columns + j] = roots[i] * vt[i * columns + j] }
    }
    var b = [Float](repeating: 0, count: rows * r)
    for i in 0..<rows {
      for j in 0..<r { b[i * r + j] = u[i * k + j] * roots[j] }
    }
    return (a, b)
  }
}
