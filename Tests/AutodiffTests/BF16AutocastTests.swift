import XCTest
import _TestSupport

@testable import Autodiff

/// bfloat16 autocast: products of operands rounded to bfloat16 (8 significant bits), summed in
/// Float. Compared with the same product of the rounded operands in Double (which must agree to
/// Float rounding), and with the Float product (which it may miss by the operands' rounding).
final class BF16AutocastTests: XCTestCase {
  /// x rounded to the nearest bfloat16, ties to even (x's upper 16 bits after rounding).
  private func bf16(_ x: Float) -> Float {
    let bits = x.bitPattern
    let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000
    return Float(bitPattern: rounded)
  }

  /// op(a)·op(b) of the bfloat16-rounded operands, in Double.
  private func reference(_ a: Tensor, _ ta: Bool, _ b: Tensor, _ tb: Bool) -> [Float] {
    let (m, k) = ta ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let n = tb ? b.shape[0] : b.shape[1]
    var out = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
      for j in 0..<n {
        var total = 0.0
        for p in 0..<k {
          let x = ta ? a[p, i] : a[i, p]
          let y = tb ? b[j, p] : b[p, j]
          total += Double(bf16(x)) * Double(bf16(y))
        }
        out[i * n + j] = Float(total)
      }
    }
    return out
  }

  func testProductsRoundTheirOperandsToBFloat16AndSumInFloat() {
    for (k, (ta, tb)) in [(false, false), (false, true), (true, false), (true, true)].enumerated() {
      let a = randomTensor(ta ? [37, 19] : [19, 37], seed: UInt64(1 + k))
      let b = randomTensor(tb ? [23, 37] : [37, 23], seed: UInt64(11 + k))
      let y = withBF16Autocast { Tensor.matmul(a, b, transposeA: ta, transposeB: tb) }
      let float = Tensor.matmul(a, b, transposeA: ta, transposeB: tb)
      assertClose(y.storage, reference(a, ta, b, tb), absoluteTolerance: 1e-5, relativeTolerance: 1e-5, "case \(k)")
      // Against Float: each product is off by about 2⁻⁸ relative (two operands rounded to 8
      // significant bits); 37 terms of N(0,1)·N(0,1) put the sum's error near 0.015 (one
      // standard deviation): 0.15 is ten.
      assertClose(y.storage, float.storage, absoluteTolerance: 0.15, relativeTolerance: 0, "case \(k) vs Float")
      XCTAssertNotEqual(y.storage, float.storage, "bfloat16 products must differ from Float ones somewhere")
    }
  }

  func testGradientsAreBFloat16ProductsToo() {
    let a = randomTensor([8, 16], seed: 21)
    let w = randomTensor([5, 16], seed: 22)
    a.requiresGrad = true
    w.requiresGrad = true
    let seed = randomTensor([8, 5], seed: 23)
    let y = withBF16Autocast { Tensor.matmul(a, w, transposeB: true) }
    y.backward(seed: seed)  // outside the autocast scope: the products stay bfloat16
    assertClose(a.grad!.storage, reference(seed, false, w, false), absoluteTolerance: 1e-5, relativeTolerance: 1e-5)
    assertClose(w.grad!.storage, reference(seed, true, a, false), absoluteTolerance: 1e-5, relativeTolerance: 1e-5)
  }

  func testAccumulatingProductsAddOntoTheirTarget() {
    let a = randomTensor([6, 9], seed: 31)
    let b = randomTensor([9, 4], seed: 32)
    var c = [Float](repeating: 1.5, count: 24)
    let (a16, b16) = (BFloat16.bits(from: a.storage), BFloat16.bits(from: b.storage))
    c.withUnsafeMutableBufferPointer { pc in
      BFloat16Matrix.multiply(false, false, m: 6, n: 4, k: 9, a16, lda: 9, b16, ldb: 4, accumulate: true, pc.baseAddress!, ldc: 4)
    }
    assertClose(c, reference(a, false, b, false).map { $0 + 1.5 }, absoluteTolerance: 1e-5, relativeTolerance: 1e-5)
  }

  func testAutocastIsOffOutsideItsScope() {
    XCTAssertFalse(BF16Autocast.isActive)
    withBF16Autocast { XCTAssertTrue(BF16Autocast.isActive) }
    let a = randomTensor([4, 4], seed: 41)
    XCTAssertEqual(Tensor.matmul(a, a).storage, withBF16Autocast(false) { Tensor.matmul(a, a) }.storage)
  }

  /// A copy of `t` rounded to bfloat16, as a Float tensor that needs a gradient.
  private func rounded(_ t: Tensor) -> Tensor {
    Tensor(shape: t.shape, storage: t.storage.map(bf16), requiresGrad: true)
  }

  /// Convolutions under autocast read x, w (and in backward the output gradient) rounded to
  /// bfloat16 and accumulate in Float: the Float convolution (im2col) of the rounded tensors,
  /// seeded with the rounded gradient, is the reference for the value and both gradients. On a
  /// CPU where oneDNN has no bfloat16 convolutions (AVX2), they run in Float, unrounded: the
  /// reference is then the Float convolution itself.
  func testConvolutionsReadBFloat16AndAccumulateInFloat() {
    let round = Convolution.bfloat16Available
    func rounded(_ t: Tensor) -> Tensor {
      Tensor(shape: t.shape, storage: round ? t.storage.map(bf16) : t.storage, requiresGrad: true)
    }
    defer { Convolution.backend = .onednn }
    for (k, c) in [([4, 8, 9, 9], [8, 8, 3, 3], 1, 1), ([3, 16, 8, 8], [32, 16, 3, 3], 2, 1)].enumerated() {
      let x = randomTensor(c.0, seed: UInt64(50 + k))
      let w = randomTensor(c.1, seed: UInt64(60 + k), std: 0.3)
      let b = randomTensor([c.1[0]], seed: UInt64(70 + k))
      x.requiresGrad = true
      w.requiresGrad = true
      b.requiresGrad = true
      let y = withBF16Autocast { x.conv2d(weight: w, bias: b, stride: c.2, padding: c.3) }
      let seed = randomTensor(y.shape, seed: 80)
      y.backward(seed: seed)

      Convolution.backend = .im2col
      let (rx, rw, rb) = (rounded(x), rounded(w), Tensor(shape: b.shape, storage: b.storage, requiresGrad: true))
      let reference = rx.conv2d(weight: rw, bias: rb, stride: c.2, padding: c.3)
      reference.backward(seed: Tensor(shape: seed.shape, storage: round ? seed.storage.map(bf16) : seed.storage))
      Convolution.backend = .onednn
      for (name, got, want) in [
        ("y", y.storage, reference.storage), ("dx", x.grad!.storage, rx.grad!.storage),
        ("dw", w.grad!.storage, rw.grad!.storage), ("db", b.grad!.storage, rb.grad!.storage),
      ] {
        let scale = want.map { abs($0) }.max() ?? 1
        assertClose(got, want, absoluteTolerance: 1e-5 * scale, relativeTolerance: 1e-5, "case \(k) \(name)")
      }
    }
  }

  /// The fused chain under autocast equals the layers one by one under autocast (the same
  /// roundings: x and w in forward, the convolution's output gradient in backward).
  func testTheConvolutionChainMatchesItsLayersUnderAutocast() {
    let x0 = randomTensor([5, 8, 10, 10], seed: 91)
    let w0 = randomTensor([16, 8, 3, 3], seed: 92, std: 0.3)
    let b0 = randomTensor([16], seed: 93)
    func run(fused: Bool) -> [[Float]] {
      let (x, w, b) = (Tensor(shape: x0.shape, storage: x0.storage, requiresGrad: true),
                       Tensor(shape: w0.shape, storage: w0.storage, requiresGrad: true),
                       Tensor(shape: b0.shape, storage: b0.storage, requiresGrad: true))
      let y = withBF16Autocast { () -> Tensor in
        if fused, let y = x.convolutionBlock(weight: w, bias: b, padding: 1, pool: (2, 2, 0)) { return y }
        return x.conv2d(weight: w, bias: b, padding: 1).relu().maxPool2d(kernelSize: 2)
      }
      y.backward(seed: randomTensor(y.shape, seed: 94))
      return [y.storage, x.grad!.storage, w.grad!.storage, b.grad!.storage]
    }
    let (fused, layers) = (run(fused: true), run(fused: false))
    for (part, (a, b)) in zip(fused, layers).enumerated() {
      let scale = b.map { abs($0) }.max() ?? 1
      assertClose(a, b, absoluteTolerance: 1e-5 * scale, relativeTolerance: 1e-5, "part \(part)")
    }
    // And it is not the Float chain, where oneDNN has bfloat16 convolutions (else it is).
    let float = x0.convolutionBlock(weight: w0, bias: b0, padding: 1, pool: (2, 2, 0))!.storage
    if Convolution.bfloat16Available { XCTAssertNotEqual(float, fused[0]) } else { XCTAssertEqual(float, fused[0]) }
  }

  /// A convolution with fewer than 8 input channels (a first layer on images) stays Float
  /// under autocast: oneDNN's bfloat16 kernels are slower there.
  func testAFirstLayerConvolutionStaysFloat() {
    let x = randomTensor([4, 3, 9, 9], seed: 101)
    let w = randomTensor([8, 3, 3, 3], seed: 102)
    let float = x.conv2d(weight: w, bias: nil, padding: 1).storage
    XCTAssertEqual(withBF16Autocast { x.conv2d(weight: w, bias: nil, padding: 1) }.storage, float)
    let wide = randomTensor([4, 8, 9, 9], seed: 103)
    let w8 = randomTensor([8, 8, 3, 3], seed: 104)
    let (autocast, plain) = (
      withBF16Autocast { wide.conv2d(weight: w8, bias: nil, padding: 1) }.storage,
      wide.conv2d(weight: w8, bias: nil, padding: 1).storage
    )
    if Convolution.bfloat16Available { XCTAssertNotEqual(autocast, plain) } else { XCTAssertEqual(autocast, plain) }
  }
}
