import Autodiff
import NN
import XCTest
import _TestSupport

final class ConvolutionTests: XCTestCase {
  func testKeys() {
    var g = SeededGenerator(seed: 0)
    XCTAssertEqual(
      Conv2D(inChannels: 2, outChannels: 3, kernelSize: 3, generator: &g).stateDict.map(\.name),
      ["weight", "bias"])
    let noBias = Conv2D(inChannels: 2, outChannels: 3, kernelSize: 1, bias: false, generator: &g)
    XCTAssertEqual(noBias.stateDict.map(\.name), ["weight"])
    XCTAssertEqual(noBias.weight.shape, [3, 2, 1, 1])
  }

  /// y[n, o, i, j] = b[o] + Σ W[o, c, u, v]·x[n, c, s·i + u − p, s·j + v − p], directly.
  private func naiveConvolution(_ x: Tensor, _ layer: Conv2D) -> [Float] {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, k, s, p) = (layer.outChannels, layer.kernelSize, layer.stride, layer.padding)
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
    var out: [Float] = []
    for b in 0..<n {
      for f in 0..<o {
        for i in 0..<oh {
          for j in 0..<ow {
            var total = layer.bias?.storage[f] ?? 0
            for ch in 0..<c {
              for u in 0..<k {
                for v in 0..<k {
                  let (r, q) = (s * i + u - p, s * j + v - p)
                  guard r >= 0 && r < h && q >= 0 && q < w else { continue }
                  total += layer.weight[f, ch, u, v] * x[b, ch, r, q]
                }
              }
            }
            out.append(total)
          }
        }
      }
    }
    return out
  }

  func testForwardMatchesTheDefinition() {
    var g = SeededGenerator(seed: 1)
    for (stride, padding) in [(1, 1), (2, 1), (2, 0)] {
      let layer = Conv2D(
        inChannels: 2, outChannels: 3, kernelSize: 3, stride: stride, padding: padding, generator: &g)
      let x = randomTensor([2, 2, 6, 5], seed: 2)
      let y = layer(x)
      XCTAssertEqual(y.shape, [2, 3, (6 + 2 * padding - 3) / stride + 1, (5 + 2 * padding - 3) / stride + 1])
      assertClose(y.storage, naiveConvolution(x, layer), "stride \(stride) padding \(padding)")
    }
  }

  func testGradients() {
    var g = SeededGenerator(seed: 3)
    let layer = Conv2D(inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: 1, generator: &g)
    let x = randomTensor([2, 2, 5, 5], seed: 4)
    assertGradientsMatch([x, layer.weight, layer.bias!]) { layer($0[0]) }
    let pointwise = Conv2D(inChannels: 3, outChannels: 2, kernelSize: 1, bias: false, generator: &g)
    assertGradientsMatch([randomTensor([1, 3, 4, 4], seed: 5), pointwise.weight]) { pointwise($0[0]) }
  }

  func testInitialisationIsPyTorchsUniform() {
    var g = SeededGenerator(seed: 6)
    let layer = Conv2D(inChannels: 4, outChannels: 64, kernelSize: 3, generator: &g)
    let bound: Float = 1 / 6  // 1/√(4·3·3)
    XCTAssertTrue(layer.weight.storage.allSatisfy { abs($0) <= bound })
    XCTAssertTrue(layer.bias!.storage.allSatisfy { abs($0) <= bound })
    let w = layer.weight.storage.map(Double.init)
    let mean = w.reduce(0, +) / Double(w.count)
    let variance = w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(w.count)
    XCTAssertEqual(mean, 0, accuracy: 0.01)
    XCTAssertEqual(variance, Double(bound * bound) / 3, accuracy: 0.001)
    var replay = SeededGenerator(seed: 6)
    let first = (0..<3).map { _ in replay.nextUniform(in: -bound, bound) }
    XCTAssertEqual(Array(layer.weight.storage.prefix(3)), first)
  }
}
