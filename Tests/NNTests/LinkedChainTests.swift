@testable import Autodiff
import NN
import XCTest
import _TestSupport

/// Consecutive chains hand their intermediates over in oneDNN's 16-channel blocks
/// (`Tensor.convolutionChains`); the reorders they skip only move elements, so the results must
/// be those of the chains reading and writing NCHW, bit for bit, and where a chain declines
/// the intermediate goes back to NCHW.
final class LinkedChainTests: XCTestCase {
  override func tearDown() {
    Convolution.linksChains = Convolution.linksNatively
    Convolution.fusesBlocks = true
  }

  /// conv(3→16)+BN+ReLU+pool, conv(16→32)+BN+ReLU+pool, conv(32→16)+ReLU, then a linear head.
  private func network(seed: UInt64) -> Sequential {
    var g = SeededGenerator(seed: seed)
    return Sequential([
      Conv2D(inChannels: 3, outChannels: 16, kernelSize: 3, padding: 1, generator: &g), BatchNorm2D(16), ReLU(),
      MaxPool2D(kernelSize: 2),
      Conv2D(inChannels: 16, outChannels: 32, kernelSize: 3, padding: 1, generator: &g), BatchNorm2D(32), ReLU(),
      MaxPool2D(kernelSize: 2),
      Conv2D(inChannels: 32, outChannels: 16, kernelSize: 3, padding: 1, generator: &g), ReLU(),
      Flatten(), Linear(inputFeatures: 16 * 3 * 3, outputFeatures: 4, generator: &g),
    ])
  }

  private func run(_ model: Sequential, linked: Bool, precision: String = "f32") -> [[Float]] {
    Convolution.linksChains = linked
    for p in model.parameters { p.tensor.zeroGrad() }
    let x = Tensor(shape: [4, 3, 12, 12], storage: randomTensor([4, 3, 12, 12], seed: 7).storage, requiresGrad: true)
    let body = { model(x) }
    let y = precision == "bf16" ? withBF16Autocast(true, body) : precision == "f16" ? withMixedPrecision(true, body) : body()
    y.backward(seed: randomTensor(y.shape, seed: 8))
    let statistics = model.layers.compactMap { $0 as? BatchNorm }.flatMap { [$0.runningMean.storage, $0.runningVariance.storage] }
    return [y.storage, x.grad!.storage] + model.parameters.map { $0.tensor.grad!.storage } + statistics
  }

  func testLinkedChainsGiveTheUnlinkedResultsBitForBit() {
    for precision in ["f32", "bf16", "f16"] {
      let (a, b) = (network(seed: 1), network(seed: 1))
      let linked = run(a, linked: true, precision: precision)
      let unlinked = run(b, linked: false, precision: precision)
      XCTAssertEqual(linked.count, unlinked.count)
      for (part, (l, u)) in zip(linked, unlinked).enumerated() {
        if Convolution.linksNatively {
          XCTAssertEqual(l, u, "\(precision) part \(part)")
        } else {
          // AVX2 kernels read the 16-channel blocks in another order: the same to rounding
          // (binary16 activations round that difference up to an ulp of binary16). The scale is
          // the whole part's: a gradient that cancels to rounding noise (a convolution's bias
          // before batch norm) is compared with the noise's size.
          let scale = u.map { abs($0) }.max() ?? 1
          let relative: Float = precision == "f16" ? 2e-3 : 1e-4
          assertClose(l, u, absoluteTolerance: max(relative * scale, precision == "f16" ? 1e-5 : 1e-6), relativeTolerance: relative, "\(precision) part \(part)")
        }
      }
    }
  }

  func testLinkedChainsInEvaluationModeGiveTheUnlinkedOutputBitForBit() {
    // A frozen teacher's forward pass: normalisations with the running statistics, no graph.
    let model = network(seed: 3)
    _ = run(model, linked: true)  // moves the running statistics away from 0 and 1
    model.eval()
    let x = randomTensor([5, 3, 12, 12], seed: 11)
    Convolution.linksChains = true
    let linked = noGrad { model(x) }.storage
    Convolution.linksChains = false
    if Convolution.linksNatively {
      XCTAssertEqual(noGrad { model(x) }.storage, linked)
    } else {
      assertClose(noGrad { model(x) }.storage, linked, absoluteTolerance: 1e-5, relativeTolerance: 1e-4)
    }
  }

  func testAChainThatDeclinesGetsItsInputBackInNCHW() {
    // The second chain's normalisation is in evaluation mode while gradients flow: that chain
    // declines, so the first chain's blocked output must go back to NCHW for the layers.
    let model = network(seed: 2)
    (model.layers[5] as! BatchNorm).isTraining = false
    let fused = run(model, linked: true)
    Convolution.fusesBlocks = false
    let layers = run(network(seed: 2).with { ($0.layers[5] as! BatchNorm).isTraining = false }, linked: true)
    for (part, (a, b)) in zip(fused, layers).enumerated() {
      let scale = max(b.map { abs($0) }.max() ?? 1, 0.1)
      assertClose(a, b, absoluteTolerance: 1e-4 * scale, relativeTolerance: 1e-4, "part \(part)")
    }
  }

  func testChannelBlocksRoundTrip() {
    let shape = [2, 32, 3, 5]
    let x = randomTensor(shape, seed: 9).storage
    var blocked = [Float](repeating: 0, count: x.count)
    var back = blocked
    x.withUnsafeBufferPointer { src in blocked.withUnsafeMutableBufferPointer { ChannelBlocks16.block(src, into: $0, shape: shape) } }
    // Element (n=1, c=17, h=2, w=3) sits in block 1 of image 1, at pixel 2·5+3, lane 1.
    let blockedIndex: Int = ((1 * 2 + 1) * 15 + 2 * 5 + 3) * 16 + 1
    let plainIndex: Int = ((1 * 32 + 17) * 3 + 2) * 5 + 3
    XCTAssertEqual(blocked[blockedIndex], x[plainIndex])
    blocked.withUnsafeBufferPointer { src in back.withUnsafeMutableBufferPointer { ChannelBlocks16.unblock(src, into: $0, shape: shape) } }
    XCTAssertEqual(back, x)
  }
}

extension Sequential {
  fileprivate func with(_ change: (Sequential) -> Void) -> Sequential {
    change(self)
    return self
  }
}

/// The recorded move out of 16-channel blocks: central differences give its gradient (the
/// move back into blocks).
final class ChannelBlocksGradientTests: XCTestCase {
  func testNumericalGradientOfTheMoveOutOfBlocks() {
    let x = randomTensor([2, 16, 2, 3], seed: 31)
    let weights = randomTensor([2, 16, 2, 3], seed: 32)
    // A weighted sum, so every element's gradient differs and a wrong permutation shows.
    assertGradientsMatch([x], step: 1e-2) { ($0[0].fromChannelBlocks16() * weights).sum() }
  }
}
