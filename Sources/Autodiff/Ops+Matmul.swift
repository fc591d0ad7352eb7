import CBLAS
import CDNNL
import CKernels
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

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
    if BF16Autocast.isEnabled { return bf16Matmul(a, b, transposeA: transposeA, transposeB: transposeB) }
    let out = gemm(a, transposeA, b, transposeB)
    return out.recording([a, b], half: .always) { g in
      // A leaf that already holds a gradient (the later micro-batches of gradient
      // accumulation) gets its product added by the product itself (β = 1), instead of a new
      // buffer that backward would then add; nil is returned for it.
      var gradA: Tensor?
      if a.requiresGrad {
        let target = accumulableGradient(of: a)
        gradA =
          transposeA ? gemm(b, transposeB, g, true, into: target) : gemm(g, false, b, !transposeB, into: target)
      }
      var gradB: Tensor?
      if b.requiresGrad {
        let target = accumulableGradient(of: b)
        gradB = transposeB ? gemm(g, true, a, transposeA, into: target) : gemm(a, !transposeA, g, false, into: target)
      }
      return [gradA, gradB]
    }
  }

  /// `matmul` under bfloat16 autocast: both operands are rounded to bfloat16 once, in the
  /// forward pass, and those copies (half the bytes of Float) serve the forward product and
  /// the two products of the gradient, whose G is rounded once too; every product accumulates
  /// in Float and gives Float. The backward products stay bfloat16 even when `backward()` runs
  /// outside the autocast scope, as in PyTorch.
  private static func bf16Matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) -> Tensor {
    let a16 = BFloat16Matrix(a)
    let b16 = BFloat16Matrix(b)
    let out = BFloat16Matrix.product(a16, transposeA, b16, transposeB)
    let savedBytes = a.requiresGrad || b.requiresGrad ? (a16.bits.count + b16.bits.count) * 2 : 0
    return out.recording([a, b], half: .always, savedBytes: savedBytes) { g in
      let g16 = BFloat16Matrix(g)
      let gradA: Tensor? =
        a.requiresGrad
        ? (transposeA
          ? BFloat16Matrix.product(b16, transposeB, g16, true) : BFloat16Matrix.product(g16, false, b16, !transposeB))
        : nil
      let gradB: Tensor? =
        b.requiresGrad
        ? (transposeB
          ? BFloat16Matrix.product(g16, true, a16, transposeA) : BFloat16Matrix.product(a16, !transposeA, g16, false))
        : nil
      return [gradA, gradB]
    }
  }

  /// `a · b` for 2-D tensors.
  public func matmul(_ other: Tensor) -> Tensor { Tensor.matmul(self, other) }
}

/// op(a)·op(b) by `cblas_sgemm`, recording nothing.
func gemm(_ a: Tensor, _ transposeA: Bool, _ b: Tensor, _ transposeB: Bool) -> Tensor {
  gemm(a, transposeA, b, transposeB, into: nil)!
}

/// op(a)·op(b) by `cblas_sgemm`, recording nothing: a new tensor, or, given `target` (Float,
/// of the product's shape), added onto it in place (β = 1) and nil returned.
func gemm(_ a: Tensor, _ transposeA: Bool, _ b: Tensor, _ transposeB: Bool, into target: Tensor?) -> Tensor? {
  precondition(a.rank == 2 && b.rank == 2, "matmul needs 2-D tensors, got \(a.shape) and \(b.shape)")
  let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
  let (k2, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
  precondition(k == k2, "matmul shapes \(a.shape)\(transposeA ? "ᵀ" : "") and \(b.shape)\(transposeB ? "ᵀ" : "") do not agree")
  func product(beta: Float, into c: UnsafeMutableBufferPointer<Float>) {
    a.storage.withUnsafeBufferPointer { pa in
      b.storage.withUnsafeBufferPointer { pb in
        sgemm(
          transposeA, transposeB, m: m, n: n, k: k, alpha: 1, pa.baseAddress!, lda: a.shape[1],
          pb.baseAddress!, ldb: b.shape[1], beta: beta, c.baseAddress!, ldc: n)
      }
    }
  }
  if let target {
    precondition(target.shape == [m, n] && !target.isHalf, "accumulating a product into \(target.shape)")
    target.storage.withUnsafeMutableBufferPointer { product(beta: 1, into: $0) }
    return nil
  }
  return Tensor(shape: [m, n]) { product(beta: 0, into: $0) }
}

/// The gradient `t` already holds, when backward would add t's next gradient onto it in place
/// (a leaf with a Float gradient of its shape), so that a product can add itself there
/// directly; nil otherwise.
func accumulableGradient(of t: Tensor) -> Tensor? {
  guard t.isLeaf, let grad = t.grad, grad.shape == t.shape, !grad.isHalf, grad.isLeaf, !grad.requiresGrad
  else { return nil }
  return grad
}

/// C = α·op(A)·op(B) + β·C over row-major buffers: a thin, typed front to `cblas_sgemm`.
/// With β = 0, C need not be initialised. (bfloat16 products: `BFloat16Matrix.multiply`.)
public func sgemm(
  _ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
  _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, beta: Float,
  _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
  guard m > 0, n > 0 else { return }
  MatrixProductLog.record(transposeA, transposeB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, beta: beta, bf16: false)
  if k > 0 && alpha == 1 && (beta == 0 || beta == 1)
    && MatrixProducts.runsOnOneDNN(transposeA: transposeA, m: m, n: n, k: k)
  {
    let key = OneDNNMatmulKey(
      m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, transposeA: transposeA, transposeB: transposeB, bf16: false,
      accumulate: beta == 1)
    let done: Void? = oneDNNMatmuls.borrow(key) { mm in
      checkOneDNN(distill_matmul_run(mm.handle, a, b, c), "matrix product")
    }
    if done != nil { return }
  }
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

/// A matrix rounded to bfloat16 (the upper 16 bits of each Float, to nearest, ties to even),
/// for autocast products.
struct BFloat16Matrix {
  let shape: [Int]
  let bits: [UInt16]

  init(_ t: Tensor) {
    precondition(t.rank == 2, "bfloat16 products need 2-D tensors, got \(t.shape)")
    shape = t.shape
    bits = t.storage.withUnsafeBufferPointer { BFloat16Matrix.bits($0) }
  }

  /// `values` rounded to bfloat16.
  static func bits(_ values: UnsafeBufferPointer<Float>) -> [UInt16] {
    [UInt16](unsafeUninitializedCapacity: values.count) { out, initialized in
      if let source = values.baseAddress { distill_float_to_bfloat16(source, out.baseAddress!, values.count) }
      initialized = values.count
    }
  }

  /// op(a)·op(b) as a Float tensor.
  static func product(_ a: BFloat16Matrix, _ transposeA: Bool, _ b: BFloat16Matrix, _ transposeB: Bool) -> Tensor {
    let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (k2, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    precondition(k == k2, "matmul shapes \(a.shape)\(transposeA ? "ᵀ" : "") and \(b.shape)\(transposeB ? "ᵀ" : "") do not agree")
    return Tensor(shape: [m, n]) { c in
      multiply(
        transposeA, transposeB, m: m, n: n, k: k, a.bits, lda: a.shape[1], b.bits, ldb: b.shape[1],
        accumulate: false, c.baseAddress!, ldc: n)
    }
  }

  /// C = op(A)·op(B) (or C += … when `accumulate`) for bfloat16 A and B, accumulating in Float:
  /// oneDNN's bfloat16 matmul, or, where oneDNN refuses the shape, the operands widened back to
  /// Float (exactly) and `cblas_sgemm`.
  static func multiply(
    _ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int, _ a: [UInt16], lda: Int, _ b: [UInt16],
    ldb: Int, accumulate: Bool, _ c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    guard m > 0, n > 0 else { return }
    if k > 0 && MatrixProducts.bfloat16Available {
      let key = OneDNNMatmulKey(
        m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, transposeA: transposeA, transposeB: transposeB, bf16: true,
        accumulate: accumulate)
      let done: Void? = oneDNNMatmuls.borrow(key) { mm in
        a.withUnsafeBufferPointer { pa in
          b.withUnsafeBufferPointer { pb in
            checkOneDNN(distill_matmul_run(mm.handle, pa.baseAddress, pb.baseAddress, c), "bfloat16 matrix product")
          }
        }
      }
      if done != nil {
        MatrixProductLog.record(
          transposeA, transposeB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, beta: accumulate ? 1 : 0,
          bf16: true)
        return
      }
    }
    // (`sgemm` logs the product it runs.)
    let wideA = a.map { Float(bitPattern: UInt32($0) << 16) }
    let wideB = b.map { Float(bitPattern: UInt32($0) << 16) }
    sgemm(
      transposeA, transposeB, m: m, n: n, k: k, alpha: 1, wideA, lda: lda, wideB, ldb: ldb, beta: accumulate ? 1 : 0,
      c, ldc: ldc)
  }
}

/// The matrix products a piece of code runs, for benchmarks that time a step's products alone
/// (`distill bench`'s fraction of the matrix-product ceiling). Off unless `recording` runs;
/// costs one relaxed atomic load per product when off.
public enum MatrixProductLog {
  /// One product as `sgemm` (or the bfloat16 path) was called.
  public struct Product: Hashable, Sendable {
    public let transposeA, transposeB: Bool
    public let m, n, k, lda, ldb, ldc: Int
    public let beta: Float
    public let bf16: Bool
    /// 2·m·n·k.
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
  }

  private static let isOn = Atomic<Bool>(false)
  private static let products = Mutex<[Product]>([])

  /// Runs `body` and returns the products it ran, in order.
  public static func recording(_ body: () -> Void) -> [Product] {
    products.withLock { $0 = [] }
    isOn.store(true, ordering: .sequentiallyConsistent)
    body()
    isOn.store(false, ordering: .sequentiallyConsistent)
    return products.withLock { list in
      defer { list = [] }
      return list
    }
  }

  @inline(__always)
  static func record(
    _ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, beta: Float,
    bf16: Bool
  ) {
    guard isOn.load(ordering: .relaxed) else { return }
    let product = Product(
      transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, beta: beta,
      bf16: bf16)
    products.withLock { $0.append(product) }
  }

  /// Seconds `product` takes alone, the median of `repeats` timings after one warm-up, on
  /// buffers of its shapes filled with small values (the same engine path as in the step:
  /// `cblas_sgemm`, or oneDNN's bfloat16 matmul).
  public static func seconds(of product: Product, repeats: Int = 5) -> Double {
    let aCount = (product.transposeA ? product.k : product.m) * product.lda
    let bCount = (product.transposeB ? product.n : product.k) * product.ldb
    let a = [Float](repeating: 0.5, count: aCount)
    let b = [Float](repeating: 0.25, count: bCount)
    var c = [Float](repeating: 0, count: product.m * product.ldc)
    let a16 = product.bf16 ? a.withUnsafeBufferPointer { BFloat16Matrix.bits($0) } : []
    let b16 = product.bf16 ? b.withUnsafeBufferPointer { BFloat16Matrix.bits($0) } : []
    let clock = ContinuousClock()
    var times: [Double] = []
    for round in 0...repeats {
      let elapsed = clock.measure {
        c.withUnsafeMutableBufferPointer { pc in
          if product.bf16 {
            BFloat16Matrix.multiply(
              product.transposeA, product.transposeB, m: product.m, n: product.n, k: product.k, a16, lda: product.lda,
              b16, ldb: product.ldb, accumulate: product.beta == 1, pc.baseAddress!, ldc: product.ldc)
          } else {
            sgemm(
              product.transposeA, product.transposeB, m: product.m, n: product.n, k: product.k, alpha: 1, a,
              lda: product.lda, b, ldb: product.ldb, beta: product.beta, pc.baseAddress!, ldc: product.ldc)
          }
        }
      }
      if round > 0 {
        times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
      }
    }
    return times.sorted()[times.count / 2]
  }
}

/// Which library runs a Float matrix product. `.auto` (the default) follows a fixed rule
/// measured on the shipped networks (batch 128, oneDNN 2.6 against OpenBLAS 0.3.21):
/// - at 1 thread, oneDNN's matmul when A is not transposed (the forward products and ∂x: 1.0–1.2×
///   faster at 1200-wide layers, 1.3–1.7× at the 10-wide output layer) and OpenBLAS `sgemm`
///   when it is (the weight gradients Gᵀ·X, where OpenBLAS was 1.0–2× faster);
/// - at more threads, oneDNN for every product, so a step has one worker pool (oneDNN's
///   OpenMP threads) instead of two that spin while the other works: mixing the two at 2
///   threads made mlp_1200 1.9× slower than OpenBLAS alone, and oneDNN alone is 1.35× faster
///   than OpenBLAS alone (cnn 1.18×, where the convolutions are oneDNN's anyway).
/// A fixed rule, not a timing at run time, so a recipe gives the same bits every run at one
/// thread count. `DISTILL_F32_MATMUL=openblas|onednn|auto` in the environment sets it for a process
/// (read once, for benchmarks).
public enum MatrixProducts {
  public enum Engine: String, Sendable { case auto, openblas, onednn }

  /// Whether oneDNN has bfloat16 matrix products on this CPU (AVX-512 and later). Without them a
  /// product under autocast widens its bfloat16 operands back to Float (exactly) and runs
  /// `cblas_sgemm`: the same operands and Float accumulation, logged as a Float product.
  public static let bfloat16Available: Bool = {
    let key = OneDNNMatmulKey(
      m: 4, n: 4, k: 4, lda: 4, ldb: 4, ldc: 4, transposeA: false, transposeB: false, bf16: true, accumulate: false)
    return OneDNNMatmul(key) != nil
  }()

  private static let current = Atomic<Int>({
    switch getenv("DISTILL_F32_MATMUL").map({ String(cString: $0) }) {
    case "openblas": return 1
    case "onednn": return 2
    default: return 0
    }
  }())

  /// The engine of Float products from now on (process-wide).
  public static var engine: Engine {
    get { [Engine.auto, .openblas, .onednn][current.load(ordering: .relaxed)] }
    set { current.store(newValue == .auto ? 0 : newValue == .openblas ? 1 : 2, ordering: .relaxed) }
  }

  @inline(__always)
  static func runsOnOneDNN(transposeA: Bool, m: Int, n: Int, k: Int) -> Bool {
    switch current.load(ordering: .relaxed) {
    case 1: return false
    case 2: return true
    default: return !transposeA || BLAS.threadCount > 1
    }
  }
}
