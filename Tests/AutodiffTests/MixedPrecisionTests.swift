import Autodiff
import XCTest
import _TestSupport

/// Half-precision storage of tensors, the storage policy of recorded ops under
/// `withMixedPrecision`, gradients in mixed mode, and `graphMemory()`.
final class MixedPrecisionTests: XCTestCase {
  func testHalfTensorReadsRoundedValuesAndWritesFloat() {
    let t = Tensor(shape: [3], storage: [1.0001, 65519, 1e-8])
    t.storeAsHalf()
    XCTAssertTrue(t.isHalf)
    XCTAssertEqual(t.count, 3)
    XCTAssertEqual(t.storageBytes, 6)
    XCTAssertEqual(t.storage, [1, 65504, 0])
    t.storage[0] = 3  // an in-place write stores Float again
    XCTAssertFalse(t.isHalf)
    XCTAssertEqual(t.storage, [3, 65504, 0])
    XCTAssertEqual(t.storageBytes, 12)
  }

  /// Conversions of large buffers run in pieces on the BLAS threads; every piece must match a
  /// conversion of small slices (which run in one piece).
  func testLargeConversionsMatchPieceByPiece() {
    let values = (0..<300_003).map { Float($0 % 4099) * 0.37 - 700 }
    let bits = HalfPrecision.halfBits(from: values)
    let sliced = stride(from: 0, to: values.count, by: 1000).flatMap {
      HalfPrecision.halfBits(from: Array(values[$0..<min($0 + 1000, values.count)]))
    }
    XCTAssertEqual(bits, sliced)
    let widened = HalfPrecision.floats(fromHalfBits: bits)
    let slicedWidened = stride(from: 0, to: bits.count, by: 1000).flatMap {
      HalfPrecision.floats(fromHalfBits: Array(bits[$0..<min($0 + 1000, bits.count)]))
    }
    XCTAssertEqual(widened, slicedWidened)
  }

  func testRecordedResultsFollowAutocastsPolicy() {
    let x = randomTensor([4, 3], seed: 1)
    let w = randomTensor([5, 3], seed: 2)
    w.requiresGrad = true
    withMixedPrecision {
      let y = Tensor.matmul(x, w, transposeB: true)
      XCTAssertTrue(y.isHalf, "products are half")
      XCTAssertTrue(y.relu().isHalf, "elementwise ops of half inputs stay half")
      XCTAssertTrue((y * 2).isHalf)
      XCTAssertTrue(y.reshaped([20]).isHalf)
      XCTAssertFalse((y + randomTensor([4, 5], seed: 3)).isHalf, "half with Float gives Float")
      XCTAssertFalse(y.exp().isHalf, "exp, log, softmax and sums give Float")
      XCTAssertFalse(y.logSoftmax().isHalf)
      XCTAssertFalse(y.softmax().isHalf)
      XCTAssertFalse(y.sum().isHalf)
      XCTAssertFalse(noGrad { Tensor.matmul(x, w, transposeB: true) }.isHalf, "unrecorded results stay Float")
    }
    XCTAssertFalse(Tensor.matmul(x, w, transposeB: true).isHalf, "nothing is half outside mixed precision")
  }

  func testReshapeSharesHalfElements() {
    let w = randomTensor([4, 6], seed: 4)
    w.requiresGrad = true
    w.storeAsHalf()
    let y = withMixedPrecision { (w * 1).reshaped([3, 8]) }
    XCTAssertTrue(y.isHalf)
    let memory = y.graphMemory()
    XCTAssertEqual(memory.parameterBytes, 48)
    XCTAssertEqual(memory.activationBytes, 48, "w·1 and its reshape share one 24-element half buffer")
  }

  func testGraphMemoryCountsBytesOnce() {
    let x = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
    let w = Tensor(shape: [4, 3], storage: (0..<12).map { Float($0) / 10 }, requiresGrad: true)
    let f32 = Tensor.matmul(x, w, transposeB: true).sum()
    XCTAssertEqual(f32.graphMemory(), GraphMemory(parameterBytes: 48, activationBytes: 24 + 32 + 4))
    w.storeAsHalf()
    x.storeAsHalf()
    let mixed = withMixedPrecision { Tensor.matmul(x, w, transposeB: true).sum() }
    XCTAssertEqual(mixed.graphMemory(), GraphMemory(parameterBytes: 24, activationBytes: 12 + 16 + 4))
  }

  func testIm2colConvolutionKeepsItsColumnsInHalf() {
    Convolution.backend = .im2col
    defer { Convolution.backend = .onednn }
    let x = randomTensor([2, 3, 6, 6], seed: 5)
    let w = randomTensor([4, 3, 3, 3], seed: 6)
    w.requiresGrad = true
    let columns = 27 * 2 * 36  // C·kh·kw × N·Ho·Wo
    let f32 = x.conv2d(weight: w, bias: nil, padding: 1).graphMemory()
    XCTAssertEqual(f32.activationBytes, x.storageBytes + 2 * 4 * 36 * 4 + columns * 4)
    let mixed = withMixedPrecision { x.conv2d(weight: w, bias: nil, padding: 1) }
    XCTAssertTrue(mixed.isHalf)
    XCTAssertEqual(mixed.graphMemory().activationBytes, x.storageBytes + 2 * 4 * 36 * 2 + columns * 2)
  }

  func testOneDNNConvolutionKeepsNothingButItsInputs() {
    let x = randomTensor([2, 3, 6, 6], seed: 5)
    let w = randomTensor([4, 3, 3, 3], seed: 6)
    w.requiresGrad = true
    let f32 = x.conv2d(weight: w, bias: nil, padding: 1).graphMemory()
    XCTAssertEqual(f32.activationBytes, x.storageBytes + 2 * 4 * 36 * 4)
    let mixed = withMixedPrecision { x.conv2d(weight: w, bias: nil, padding: 1) }
    XCTAssertTrue(mixed.isHalf)
    XCTAssertEqual(mixed.graphMemory().activationBytes, x.storageBytes + 2 * 4 * 36 * 2)
  }

  // MARK: Gradients in mixed mode

  func testMatmulAndElementwiseGradientsInMixedMode() {
    let x = randomTensor([5, 4], seed: 7)
    let w = randomTensor([3, 4], seed: 8)
    let b = randomTensor([3], seed: 9)
    assertGradientsMatch([x, w, b], step: 1e-2, absoluteTolerance: 1e-2, relativeTolerance: 1e-2) { t in
      withMixedPrecision { (Tensor.matmul(t[0], t[1], transposeB: true) + t[2]).tanh() * 3 }
    }
  }

  func testConvolutionGradientsInMixedMode() {
    let x = randomTensor([2, 3, 5, 5], seed: 10)
    let w = randomTensor([4, 3, 3, 3], seed: 11, std: 0.3)
    let b = randomTensor([4], seed: 12)
    assertGradientsMatch([x, w, b], step: 1e-2, absoluteTolerance: 2e-2, relativeTolerance: 1e-2) { t in
      withMixedPrecision { t[0].conv2d(weight: t[1], bias: t[2], stride: 2, padding: 1) }
    }
  }

  func testBatchNormAndPoolingGradientsInMixedMode() {
    let x = randomTensor([3, 2, 4, 4], seed: 13)
    let mixing = randomTensor([2, 2, 1, 1], seed: 19)
    let gamma = randomTensor([2], seed: 14, mean: 1, std: 0.1)
    let beta = randomTensor([2], seed: 15)
    assertGradientsMatch(
      [x, mixing, gamma, beta], step: 1e-2, absoluteTolerance: 2e-2, relativeTolerance: 2e-2
    ) { t in
      withMixedPrecision {
        // A 1×1 convolution first, so that batch norm and pooling read binary16.
        let mixed = t[0].conv2d(weight: t[1], bias: nil)
        XCTAssertEqual(mixed.isHalf, GradMode.isRecording)
        return mixed.batchNorm(
          weight: t[2], bias: t[3], runningMean: .zeros([2]), runningVariance: .ones([2]), training: true
        ).avgPool2d(kernelSize: 2)
      }
    }
  }

  func testReluMaxPoolAndSoftmaxGradientsInMixedMode() {
    let x = randomTensor([2, 3, 4, 4], seed: 16)
    let mixing = randomTensor([3, 3, 1, 1], seed: 18)
    let w = randomTensor([5, 12], seed: 17, std: 0.5)
    assertGradientsMatch([x, mixing, w], step: 1e-3, absoluteTolerance: 1e-2, relativeTolerance: 1e-2) { t in
      withMixedPrecision {
        // A 1×1 convolution first, so that relu and max-pool read and keep binary16.
        let pooled = t[0].conv2d(weight: t[1], bias: nil).relu().maxPool2d(kernelSize: 2).flattened()
        XCTAssertEqual(pooled.isHalf, GradMode.isRecording)
        return Tensor.matmul(pooled, t[2], transposeB: true).softmax()
      }
    }
  }

  /// A small CNN's parameter gradients in mixed mode (binary16 parameters, input and
  /// activations) against Float32 gradients at the same (rounded) parameters and input.
  func testNetworkGradientsMatchFloat32WithinHalfPrecision() {
    func network(_ p: [Tensor], _ x: Tensor) -> Tensor {
      let h = x.conv2d(weight: p[0], bias: p[1], padding: 1).relu().maxPool2d(kernelSize: 2)
      let features = h.batchNorm(
        weight: p[2], bias: p[3], runningMean: .zeros([4]), runningVariance: .ones([4]), training: true
      ).flattened()
      let logits = Tensor.matmul(features, p[4], transposeB: true) + p[5]
      return logits.logSoftmax().sum() * -0.125
    }
    let shapes = [[4, 2, 3, 3], [4], [4], [4], [5, 64], [5]]
    let parameters = shapes.enumerated().map { i, shape in
      let t = randomTensor(shape, seed: 20 + UInt64(i), std: 0.4)
      t.storeAsHalf()  // both runs start from the same binary16 values
      t.storeAsFloat()
      t.requiresGrad = true
      return t
    }
    let x = randomTensor([8, 2, 8, 8], seed: 30)
    x.storeAsHalf()
    x.storeAsFloat()

    network(parameters, x).backward()
    let reference = parameters.map { $0.grad!.storage }
    for p in parameters {
      p.grad = nil
      p.storeAsHalf()
    }
    x.storeAsHalf()
    withMixedPrecision { network(parameters, x) }.backward()
    for (i, p) in parameters.enumerated() {
      XCTAssertFalse(p.grad!.isHalf, "gradients are Float")
      let scale = reference[i].map(abs).max()!
      assertClose(
        p.grad!.storage, reference[i], absoluteTolerance: 5e-3 * scale, relativeTolerance: 1e-2,
        "parameter \(i)")
    }
  }
}
