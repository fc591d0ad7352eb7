import XCTest
import _TestSupport

@testable import Autodiff

/// The int8 convolution on oneDNN against its exact reference (int32 sums in Swift, the padding
/// the real 0 whatever the zero point), and against the Float convolution it approximates.
final class Int8ConvolutionTests: XCTestCase {
  func randomValues(_ count: Int, seed: UInt64, scale: Float = 1, offset: Float = 0) -> [Float] {
    uniformValues(count, seed: seed, scale: scale, offset: offset)
  }

  func convolution(_ w: [Float], out: Int, in c: Int, k: Int, stride: Int, padding: Int, input: ActivationQuantization)
    -> Int8Convolution
  {
    let (values, scales) = quantizeWeightsPerChannel(w, rows: out, columns: c * k * k)
    return Int8Convolution(
      weights: values, weightScales: scales, input: input, outChannels: out, inChannels: c, kernelSize: k,
      stride: stride, padding: padding)
  }

  func testOneDNNEqualsTheExactIntegerSumsWithPaddingAndZeroPoints() {
    let (out, c, k) = (5, 3, 3)
    let w = randomValues(out * c * k * k, seed: 1, scale: 0.3)
    for zero: Int32 in [0, 3, 128] {
      for (stride, padding) in [(1, 0), (1, 1), (2, 1), (2, 2)] {
        let conv = convolution(
          w, out: out, in: c, k: k, stride: stride, padding: padding, input: ActivationQuantization(scale: 0.02, zeroPoint: zero))
        for (batch, h, wide) in [(1, 7, 7), (3, 6, 9)] {
          var generator = SeededGenerator(seed: UInt64(batch * 100 + h))
          let x = (0..<(batch * c * h * wide)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
          let fast = conv.apply(quantized: x, batch: batch, height: h, width: wide)
          let exact = conv.reference(quantized: x, batch: batch, height: h, width: wide)
          XCTAssertEqual(fast.count, exact.count)
          for (a, b) in zip(fast, exact) {
            XCTAssertEqual(a, b, accuracy: abs(b) * 3e-7 + 1e-30, "zero \(zero), stride \(stride), padding \(padding), \(batch)×\(h)×\(wide)")
          }
        }
      }
    }
  }

  /// 7-bit activations (`reduce_range`) run on oneDNN on every CPU and sum exactly there.
  func testSevenBitActivationsRunOnOneDNNExactly() {
    let (out, c, k) = (5, 3, 3)
    let w = randomValues(out * c * k * k, seed: 2, scale: 0.3)
    for zero: Int32 in [0, 100] {
      let input = ActivationQuantization(scale: 0.02, zeroPoint: zero, quantMax: 127)
      let conv = convolution(w, out: out, in: c, k: k, stride: 1, padding: 1, input: input)
      var generator = SeededGenerator(seed: 5)
      let x = (0..<(2 * c * 6 * 6)).map { i in i % 2 == 0 ? 127 : UInt8(truncatingIfNeeded: generator.next()) & 0x7f }
      let fast = conv.apply(quantized: x, batch: 2, height: 6, width: 6)
      let exact = conv.reference(quantized: x, batch: 2, height: 6, width: 6)
      for (a, b) in zip(fast, exact) { XCTAssertEqual(a, b, accuracy: abs(b) * 3e-7 + 1e-30, "zero \(zero)") }
    }
  }

  func testTheConvolutionApproximatesTheFloatOne() {
    let (batch, c, h, wide, out, k, padding) = (2, 4, 8, 8, 6, 3, 1)
    let x = randomValues(batch * c * h * wide, seed: 5, scale: 1, offset: 0.2)  // negatives too: a zero point
    let w = randomValues(out * c * k * k, seed: 6, scale: 0.2)
    let input = ActivationQuantization(min: x.min()!, max: x.max()!)
    XCTAssertGreaterThan(input.zeroPoint, 0)
    let conv = convolution(w, out: out, in: c, k: k, stride: 1, padding: padding, input: input)
    let y = conv.apply(x, batch: batch, height: h, width: wide)
    var (worst, largest): (Float, Float) = (0, 0)
    for b in 0..<batch {
      for o in 0..<out {
        for i in 0..<h {
          for j in 0..<wide {
            var exact: Float = 0
            for ci in 0..<c {
              for u in 0..<k {
                for v in 0..<k {
                  let (r, s) = (i + u - padding, j + v - padding)
                  guard r >= 0 && r < h && s >= 0 && s < wide else { continue }
                  exact += x[((b * c + ci) * h + r) * wide + s] * w[((o * c + ci) * k + u) * k + v]
                }
              }
            }
            worst = max(worst, abs(y[((b * out + o) * h + i) * wide + j] - exact))
            largest = max(largest, abs(exact))
          }
        }
      }
    }
    XCTAssertLessThan(worst / largest, 0.03, "int8 error \(worst) against outputs up to \(largest)")
  }

  func testARefusedShapeIsComputedByTheReference() {
    // One 2×2 filter, no padding, on one 2×2 image: (1·1 − 2·2 + 3·3 + 4·4)·0.5 = 11 after the zero point 1.
    let conv = Int8Convolution(
      weights: [1, -2, 3, 4], weightScales: [0.5], input: ActivationQuantization(scale: 1, zeroPoint: 1), outChannels: 1,
      inChannels: 1, kernelSize: 2, stride: 1, padding: 0)
    let y = OneDNNRefusal.$isSimulated.withValue(true) { conv.apply(quantized: [2, 3, 4, 5], batch: 1, height: 2, width: 2) }
    XCTAssertEqual(y, [11])
  }
}
