import Autodiff
import NN
import XCTest
import _TestSupport

/// A convolution followed by a ReLU, or by a batch normalisation and a ReLU (and a max
/// pooling), runs as one oneDNN chain inside `Sequential`; it must give the results of the
/// layers run one by one (oneDNN convolution, then the engine's normalisation, ReLU and pooling)
/// and of the im2col reference: values, every gradient and the running statistics.
final class ConvolutionBlockTests: XCTestCase {
  override func tearDown() {
    Convolution.backend = .onednn
    Convolution.fusesBlocks = true
  }

  private func network(seed: UInt64, pool: MaxPool2D?, bias: Bool = true, batchNorm: Bool = false) -> Sequential {
    var generator = SeededGenerator(seed: seed)
    var layers: [any Layer] = [
      Conv2D(inChannels: 3, outChannels: 16, kernelSize: 3, padding: 1, bias: bias, generator: &generator)
    ]
    if batchNorm { layers.append(BatchNorm2D(16)) }
    layers.append(ReLU())
    if let pool { layers.append(pool) }
    layers.append(Conv2D(inChannels: 16, outChannels: 24, kernelSize: 3, stride: 2, padding: 1, generator: &generator))
    if batchNorm { layers.append(BatchNorm2D(24, momentum: 0.3, epsilon: 1e-3)) }
    layers += [ReLU(), Flatten()]
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

  /// Gives the batch normalisations of `model` non-trivial γ, β and running statistics.
  private func perturbNormalisations(_ model: Sequential, seed: UInt64) {
    for (k, layer) in model.layers.enumerated() {
      guard let norm = layer as? BatchNorm else { continue }
      let c = norm.features
      let offset = UInt64(10 * k) + seed
      norm.weight.storage = randomTensor([c], seed: offset, std: 0.3).storage.map { 1 + $0 }
      norm.bias.storage = randomTensor([c], seed: offset + 1, std: 0.3).storage
      norm.runningMean.storage = randomTensor([c], seed: offset + 2, std: 0.5).storage
      norm.runningVariance.storage = randomTensor([c], seed: offset + 3, std: 0.3).storage.map { 1 + abs($0) }
    }
  }

  private func runningStatistics(_ model: Sequential) -> [[Float]] {
    model.layers.compactMap { $0 as? BatchNorm }.flatMap { [$0.runningMean.storage, $0.runningVariance.storage] }
  }

  func testTheChainWithBatchNormMatchesTheLayersOneByOneAndIm2col() {
    let pools: [MaxPool2D?] = [MaxPool2D(kernelSize: 2), MaxPool2D(kernelSize: 3, stride: 2, padding: 1), nil]
    for (k, pool) in pools.enumerated() {
      for bias in [true, false] {
        let model = network(seed: UInt64(k + 31), pool: pool, bias: bias, batchNorm: true)
        perturbNormalisations(model, seed: UInt64(k))
        let initial = model.layers.compactMap { $0 as? BatchNorm }.map { ($0.runningMean.storage, $0.runningVariance.storage) }
        func reset() {
          for (norm, (mean, variance)) in zip(model.layers.compactMap { $0 as? BatchNorm }, initial) {
            (norm.runningMean.storage, norm.runningVariance.storage) = (mean, variance)
          }
        }
        let x = randomTensor([6, 3, 10, 10], seed: UInt64(40 + k))
        let fused = run(model, x, backend: .onednn, fused: true)
        let fusedStatistics = runningStatistics(model)
        for (backend, name) in [(ConvolutionBackend.onednn, "one by one"), (.im2col, "im2col")] {
          reset()
          let reference = run(model, x, backend: backend, fused: false)
          XCTAssertEqual(fused.count, reference.count)
          // The normalisation divides by the batch's spread: rounding differences of the
          // convolution (summation order) come out a little larger than without it. A
          // convolution bias before a normalisation has a gradient of exactly 0 (the batch mean
          // removes it), so both sides hold rounding noise there: compared on a floor of 0.1.
          for (part, (a, b)) in zip(fused, reference).enumerated() {
            let scale = max(b.map { abs($0) }.max() ?? 1, 0.1)
            assertClose(a, b, absoluteTolerance: 1e-4 * scale, relativeTolerance: 1e-4, "pool \(k) bias \(bias) part \(part) vs \(name)")
          }
          for (part, (a, b)) in zip(fusedStatistics, runningStatistics(model)).enumerated() {
            assertClose(a, b, absoluteTolerance: 1e-5, relativeTolerance: 1e-5, "pool \(k) bias \(bias) statistics \(part) vs \(name)")
          }
        }
        reset()
      }
    }
  }

  func testInEvaluationModeTheChainNormalisesWithTheRunningStatistics() {
    let model = network(seed: 8, pool: MaxPool2D(kernelSize: 2), batchNorm: true)
    perturbNormalisations(model, seed: 3)
    for case let norm as BatchNorm in model.layers { norm.isTraining = false }
    let before = runningStatistics(model)
    let x = randomTensor([4, 3, 10, 10], seed: 9)
    let fused = noGrad { model(x) }
    Convolution.fusesBlocks = false
    let layers = noGrad { model(x) }
    assertClose(fused.storage, layers.storage, absoluteTolerance: 1e-5, relativeTolerance: 1e-5)
    XCTAssertEqual(runningStatistics(model), before)
    // With a gradient to pass, the chain declines (it has no backward pass with given
    // statistics) and the layers run one by one.
    Convolution.fusesBlocks = true
    let norm = model.layers[1] as! BatchNorm
    let conv = model.layers[0] as! Conv2D
    let chainNorm = ChainBatchNorm(
      weight: norm.weight, bias: norm.bias, runningMean: norm.runningMean, runningVariance: norm.runningVariance,
      training: false, momentum: norm.momentum, epsilon: norm.epsilon)
    XCTAssertNil(x.convolutionBlock(weight: conv.weight, bias: conv.bias, padding: 1, norm: chainNorm, pool: nil))
    XCTAssertNotNil(
      noGrad { x.convolutionBlock(weight: conv.weight, bias: conv.bias, padding: 1, norm: chainNorm, pool: nil) })
    let y = model(x)
    y.backward(seed: randomTensor(y.shape, seed: 10))
    XCTAssertNotNil(norm.weight.grad)
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

  func testUnderF16MixedPrecisionAndBF16TheChainWithBatchNormMatchesItsLayers() {
    let x0 = randomTensor([4, 8, 10, 10], seed: 51)
    let w0 = randomTensor([16, 8, 3, 3], seed: 52, std: 0.3)
    let gamma0 = randomTensor([16], seed: 53, std: 0.3).storage.map { 1 + $0 }
    let beta0 = randomTensor([16], seed: 54, std: 0.3).storage
    func run(fused: Bool, half: Bool) -> [[Float]] {
      let x = Tensor(shape: x0.shape, storage: x0.storage)
      let w = Tensor(shape: w0.shape, storage: w0.storage, requiresGrad: true)
      let (gamma, beta) = (Tensor(shape: [16], storage: gamma0, requiresGrad: true), Tensor(shape: [16], storage: beta0, requiresGrad: true))
      let (mean, variance) = (Tensor.zeros([16]), Tensor.ones([16]))
      if half {
        x.storeAsHalf()
        w.storeAsHalf()
      }
      let body = { () -> Tensor in
        if fused,
          let y = x.convolutionBlock(
            weight: w, bias: nil, padding: 1,
            norm: ChainBatchNorm(
              weight: gamma, bias: beta, runningMean: mean, runningVariance: variance, training: true, momentum: 0.1,
              epsilon: 1e-5),
            pool: (2, 2, 0))
        {
          return y
        }
        return x.conv2d(weight: w, bias: nil, padding: 1)
          .batchNorm(weight: gamma, bias: beta, runningMean: mean, runningVariance: variance, training: true)
          .relu().maxPool2d(kernelSize: 2)
      }
      let y = half ? withMixedPrecision(true, body) : withBF16Autocast(true, body)
      y.backward(seed: randomTensor(y.shape, seed: 55))
      return [y.storage, w.grad!.storage, gamma.grad!.storage, beta.grad!.storage, mean.storage, variance.storage]
    }
    for half in [true, false] {
      let (fused, layers) = (run(fused: true, half: half), run(fused: false, half: half))
      // f16: both keep binary16 activations (the chain its convolution output, the layers
      // theirs); bf16: both round the convolution's operands to bfloat16 the same way.
      let tolerance: Float = half ? 2e-3 : 1e-4
      for (part, (a, b)) in zip(fused, layers).enumerated() {
        let scale = b.map { abs($0) }.max() ?? 1
        assertClose(a, b, absoluteTolerance: tolerance * scale, relativeTolerance: tolerance, "half \(half) part \(part)")
      }
    }
  }

  func testBackwardLeavesTheOutputGradientItReadsUntouched() {
    // Without a pool the ReLU's (or the normalisation's) backward pass runs in place on a copy
    // of the output gradient, never on the caller's buffer. (oneDNN picks blocked layouts for
    // these shapes, where a reorder made the copy anyway; the guard is for shapes where it
    // would pick NCHW and no reorder would stand between.)
    for outChannels in [3, 16] {
      for normalised in [false, true] {
        let x = randomTensor([2, 4, 6, 6], seed: 71)
        let w = Tensor(shape: [outChannels, 4, 3, 3], storage: randomTensor([outChannels, 4, 3, 3], seed: 72).storage, requiresGrad: true)
        let norm = ChainBatchNorm(
          weight: Tensor.ones([outChannels], requiresGrad: true), bias: Tensor.zeros([outChannels], requiresGrad: true),
          runningMean: Tensor.zeros([outChannels]), runningVariance: Tensor.ones([outChannels]), training: true,
          momentum: 0.1, epsilon: 1e-5)
        let y = x.convolutionBlock(weight: w, bias: nil, padding: 1, norm: normalised ? norm : nil, pool: nil)!
        let seed = randomTensor(y.shape, seed: 73)
        let before = seed.storage
        y.backward(seed: seed)
        XCTAssertEqual(seed.storage, before, "\(outChannels) channels, normalised \(normalised)")
        XCTAssertNotNil(w.grad)
      }
    }
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

  /// The same through the chain with a batch normalisation (batch statistics), for x, the
  /// convolution's weights and bias, γ and β.
  func testNumericalGradientsOfTheChainWithBatchNorm() {
    let x = randomTensor([3, 2, 5, 5], seed: 61)
    let w = randomTensor([3, 2, 3, 3], seed: 62, std: 0.5)
    let b = randomTensor([3], seed: 63)
    let gamma = Tensor(shape: [3], storage: [1.2, 0.7, 1.5])
    let beta = Tensor(shape: [3], storage: [0.3, -0.2, 0.1])
    let (mean, variance) = (Tensor.zeros([3]), Tensor.ones([3]))
    for pool: (kernelSize: Int, stride: Int, padding: Int)? in [nil, (2, 2, 0)] {
      assertGradientsMatch([x, w, b, gamma, beta], step: 1e-3, "pool \(String(describing: pool))") {
        $0[0].convolutionBlock(
          weight: $0[1], bias: $0[2], padding: 1,
          norm: ChainBatchNorm(
            weight: $0[3], bias: $0[4], runningMean: mean, runningVariance: variance, training: true, momentum: 0.1,
            epsilon: 1e-5),
          pool: pool)!
      }
    }
  }
}
