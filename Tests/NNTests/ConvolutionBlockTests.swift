import Autodiff
import NN
import XCTest
import _TestSupport

/// A convolution followed by a ReLU (and a max pooling) runs as one oneDNN chain inside
/// `Sequential`; it must give the results of the layers run one by one (oneDNN convolution,
/// then the engine's ReLU and pooling) and of the im2col reference, values and every gradient.
final class ConvolutionBlockTests: XCTestCase {
  override func tearDown() {
    Convolution.backend = .onednn
    Convolution.fusesBlocks = true
  }

  private func network(seed: UInt64, pool: MaxPool2D?, bias: Bool = true) -> Sequential {
    var generator = SeededGenerator(seed: seed)
    var layers: [any Layer] = [
      Conv2D(inChannels: 3, outChannels: 16, kernelSize: 3, padding: 1, bias: bias, generator: &generator), ReLU(),
    ]
    if let pool { layers.append(pool) }
    layers += [
      Conv2D(inChannels: 16, outChannels: 24, kernelSize: 3, stride: 2, padding: 1, generator: &generator), ReLU(),
      Flatten(),
    ]
    let side = pool.map { (10 + 2 * $0.padding - $0.kernelSize) / $0.stride + 1 } ?? 10
    let features = 24 * ((side - 1) / 2 + 1) * ((side - 1) / 2 + 1)
    layers.append(Linear(inputFeatures: features, outputFeatures: 5, generator: &generator))
    return Sequential(layers)
  }

  /// Output, input gradient and parameter gradients of one forward and backward pass.
  private func run(_ model: Sequential, _ x0: Tensor, backend: ConvolutionBackend, fused: Bool) -> [[Float]] {
    Convolution.backend = backend
    Convolution.fusesBlocks = fused
    for p in model.parameters { p.tensor.zeroGrad() }
    let x = Tensor(shape: x0.shape, storage: x0.storage, requiresGrad: true)
    let y = model(x)
    let seed = randomTensor(y.shape, seed: 99)
    let value = y.storage
    y.backward(seed: seed)
    return [value, x.grad!.storage] + model.parameters.map { $0.tensor.grad!.storage }
  }

  func testTheChainMatchesTheLayersOneByOneAndIm2col() {
    let pools: [MaxPool2D?] = [MaxPool2D(kernelSize: 2), MaxPool2D(kernelSize: 3, stride: 2, padding: 1), nil]
    for (k, pool) in pools.enumerated() {
      for bias in [true, false] {
        let model = network(seed: UInt64(k + 1), pool: pool, bias: bias)
        let x = randomTensor([5, 3, 10, 10], seed: UInt64(10 + k))
        let fused = run(model, x, backend: .onednn, fused: true)
        for (backend, name) in [(ConvolutionBackend.onednn, "one by one"), (.im2col, "im2col")] {
          let reference = run(model, x, backend: backend, fused: false)
          XCTAssertEqual(fused.count, reference.count)
          for (part, (a, b)) in zip(fused, reference).enumerated() {
            let scale = b.map { abs($0) }.max() ?? 1
            assertClose(a, b, absoluteTolerance: 1e-5 * scale, relativeTolerance: 1e-5, "pool \(k) bias \(bias) part \(part) vs \(name)")
          }
        }
      }
    }
  }

  func testTheChainRecordsOnlyWhatBackwardNeedsAndRunsWithoutRecording() {
    let model = network(seed: 3, pool: MaxPool2D(kernelSize: 2))
    let x = randomTensor([4, 3, 10, 10], seed: 4)
    let inference = noGrad { model(x) }
    Convolution.fusesBlocks = false
    let reference = noGrad { model(x) }
    assertClose(inference.storage, reference.storage, absoluteTolerance: 1e-5, relativeTolerance: 1e-5)
    XCTAssertFalse(inference.requiresGrad)
  }

  func testAChainIsNotFusedWhereAMethodReadsTheReLUsOutput() {
    // Sequential's ranges are cut after a captured layer, so the chain never spans a capture:
    // the ReLU's output read there is the unfused one.
    let model = network(seed: 5, pool: MaxPool2D(kernelSize: 2))
    let x = randomTensor([2, 3, 10, 10], seed: 6)
    let head = Sequential(Array(model.layers[0..<2]))
    let fusedReLU = head(x)  // conv + ReLU as a chain without a pool
    Convolution.fusesBlocks = false
    let plainReLU = head(x)
    assertClose(fusedReLU.storage, plainReLU.storage, absoluteTolerance: 1e-5, relativeTolerance: 1e-5)
  }

  func testUnderF16MixedPrecisionTheChainKeepsBinary16AndMatchesItsLayers() {
    let x0 = randomTensor([4, 3, 10, 10], seed: 11)
    let w0 = randomTensor([8, 3, 3, 3], seed: 12, std: 0.3)
    func run(fused: Bool) -> (y: Tensor, grads: [[Float]], saved: Int) {
      let (x, w) = (Tensor(shape: x0.shape, storage: x0.storage), Tensor(shape: w0.shape, storage: w0.storage, requiresGrad: true))
      x.storeAsHalf()
      w.storeAsHalf()
      let y = withMixedPrecision { () -> Tensor in
        if fused, let y = x.convolutionBlock(weight: w, bias: nil, padding: 1, pool: (2, 2, 0)) { return y }
        return x.conv2d(weight: w, bias: nil, padding: 1).relu().maxPool2d(kernelSize: 2)
      }
      let saved = y.graphMemory().activationBytes
      y.backward(seed: randomTensor(y.shape, seed: 13))
      return (y, [y.storage, w.grad!.storage], saved)
    }
    let (fused, layers) = (run(fused: true), run(fused: false))
    XCTAssertTrue(fused.y.isHalf)
    // Both round the same Float results to binary16 at the end; the gradients go through a
    // binary16 ReLU output in both.
    for (part, (a, b)) in zip(fused.grads, layers.grads).enumerated() {
      let scale = b.map { abs($0) }.max() ?? 1
      assertClose(a, b, absoluteTolerance: 1e-3 * scale, relativeTolerance: 1e-3, "part \(part)")
    }
    // The chain keeps its input, the binary16 output, the binary16 ReLU output (a little
    // larger: oneDNN pads 8 channels to 16) and the pool's workspace; the layers keep
    // more (the convolution's output, the ReLU's output, the argmax).
    XCTAssertLessThan(fused.saved, layers.saved)
  }

  func testIm2colRunsTheLayersOneByOne() {
    let x = randomTensor([2, 3, 6, 6], seed: 7)
    let w = randomTensor([4, 3, 3, 3], seed: 8)
    XCTAssertNotNil(x.convolutionBlock(weight: w, bias: nil, padding: 1, pool: nil))
    Convolution.backend = .im2col
    XCTAssertNil(x.convolutionBlock(weight: w, bias: nil, padding: 1, pool: nil))
    Convolution.backend = .onednn
    // A pool whose padding exceeds half its kernel is left to maxPool2d's own check.
    XCTAssertNil(x.convolutionBlock(weight: w, bias: nil, padding: 1, pool: (2, 2, 2)))
  }

  /// Central differences through the chain itself (Float), without a pool and with two: small
  /// seeded inputs where no convolution output lies within the step of ReLU's kink or of a
  /// max-pool tie.
  func testNumericalGradientsOfTheChain() {
    let x = randomTensor([2, 2, 5, 5], seed: 21)
    let w = randomTensor([3, 2, 3, 3], seed: 22, std: 0.5)
    let b = randomTensor([3], seed: 23)
    for pool: (kernelSize: Int, stride: Int, padding: Int)? in [nil, (2, 2, 0), (3, 2, 1)] {
      assertGradientsMatch([x, w, b], step: 1e-3, "pool \(String(describing: pool))") {
        $0[0].convolutionBlock(weight: $0[1], bias: $0[2], padding: 1, pool: pool)!
      }
    }
  }
}
