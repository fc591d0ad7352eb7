@testable import Autodiff
import XCTest
import _TestSupport

/// Where oneDNN refuses a shape, a convolution runs by im2col and a chain declines (its layers
/// then run one by one), with the same results; the refusal sticks for the process. Each test
/// uses shapes no other test uses, since refusals are remembered.
final class OneDNNRefusalTests: XCTestCase {
  override func tearDown() {
    Convolution.backend = .onednn
  }

  func testARefusedConvolutionRunsByIm2colWithTheSameResults() {
    let x0 = randomTensor([3, 5, 7, 7], seed: 201)
    let w0 = randomTensor([6, 5, 3, 3], seed: 202)
    let b0 = randomTensor([6], seed: 203)
    func run() -> [[Float]] {
      let (x, w, b) = (Tensor(shape: x0.shape, storage: x0.storage, requiresGrad: true),
                       Tensor(shape: w0.shape, storage: w0.storage, requiresGrad: true),
                       Tensor(shape: b0.shape, storage: b0.storage, requiresGrad: true))
      let y = x.conv2d(weight: w, bias: b, stride: 2, padding: 1)
      y.backward(seed: randomTensor(y.shape, seed: 204))
      return [y.storage, x.grad!.storage, w.grad!.storage, b.grad!.storage]
    }
    let refused = OneDNNRefusal.$isSimulated.withValue(true) { run() }
    Convolution.backend = .im2col
    let reference = run()
    // The products inside im2col were refused too (and so run by OpenBLAS in both runs).
    XCTAssertEqual(refused, reference, "the refused shape must run the im2col code itself")
    Convolution.backend = .onednn
    // Remembered: outside the simulation the shape still runs by im2col.
    XCTAssertEqual(run(), reference)
  }

  func testARefusedChainRunsItsLayersOneByOne() {
    let x = randomTensor([3, 2, 9, 9], seed: 211)
    let w = randomTensor([5, 2, 3, 3], seed: 212)
    let norm = ChainBatchNorm(
      weight: Tensor.ones([5]), bias: Tensor.zeros([5]), runningMean: Tensor.zeros([5]),
      runningVariance: Tensor.ones([5]), training: true, momentum: 0.1, epsilon: 1e-5)
    OneDNNRefusal.$isSimulated.withValue(true) {
      XCTAssertNil(x.convolutionBlock(weight: w, bias: nil, padding: 1, norm: norm, pool: (3, 3, 0)))
    }
    XCTAssertNil(x.convolutionBlock(weight: w, bias: nil, padding: 1, norm: norm, pool: (3, 3, 0)))
    // A chain of another shape is unaffected.
    XCTAssertNotNil(x.convolutionBlock(weight: w, bias: nil, padding: 1, norm: norm, pool: (2, 2, 0)))
  }
}
