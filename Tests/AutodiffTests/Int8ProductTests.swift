import XCTest
import _TestSupport

@testable import Autodiff
import CKernels

/// `count` values uniform in [offset − scale, offset + scale), drawn from `seed`.
func uniformValues(_ count: Int, seed: UInt64, scale: Float = 1, offset: Float = 0) -> [Float] {
  var generator = SeededGenerator(seed: seed)
  return (0..<count).map { _ -> Float in
    let unit = Float(generator.next() >> 40) / Float(1 << 24)
    return (unit * 2 - 1) * scale + offset
  }
}

/// The int8 product on oneDNN against its exact reference (int32 sums in Swift), the
/// quantization rules against PyTorch's, and the product against the Float one it approximates.
final class Int8ProductTests: XCTestCase {
  func randomValues(_ count: Int, seed: UInt64, scale: Float = 1, offset: Float = 0) -> [Float] {
    uniformValues(count, seed: seed, scale: scale, offset: offset)
  }

  func testOneDNNEqualsTheExactIntegerSumsForEveryBatchSize() {
    let (inFeatures, outFeatures) = (37, 19)
    let w = randomValues(outFeatures * inFeatures, seed: 1, scale: 0.3)
    let (values, scales) = quantizeWeightsPerChannel(w, rows: outFeatures, columns: inFeatures)
    for zero: Int32 in [0, 3, 128] {
      let product = Int8Product(
        weights: values, weightScales: scales, input: ActivationQuantization(scale: 0.02, zeroPoint: zero),
        outFeatures: outFeatures, inFeatures: inFeatures)
      for batch in [1, 2, 17, 64] {
        var generator = SeededGenerator(seed: UInt64(batch))
        let x = (0..<(batch * inFeatures)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let fast = product.apply(quantized: x, batch: batch)
        let exact = product.reference(quantized: x, batch: batch)
        // The same int32 sum times the same Float scale: equal up to oneDNN's order of the one
        // multiplication (f32 scale × s32 converted), i.e. within an ulp or two.
        for (a, b) in zip(fast, exact) { XCTAssertEqual(a, b, accuracy: abs(b) * 3e-7 + 1e-30, "batch \(batch), zero \(zero)") }
      }
    }
  }

  /// 7-bit activations (`reduce_range`, what `quantize` gives on a CPU without VNNI) run on
  /// oneDNN on every CPU, and its sums are exact there too: pairs of products fit in 16 bits.
  func testSevenBitActivationsRunOnOneDNNExactly() {
    let (inFeatures, outFeatures) = (37, 19)
    let (values, scales) = quantizeWeightsPerChannel(
      randomValues(outFeatures * inFeatures, seed: 11, scale: 0.3), rows: outFeatures, columns: inFeatures)
    for zero: Int32 in [0, 3, 100] {
      let input = ActivationQuantization(scale: 0.02, zeroPoint: zero, quantMax: 127)
      XCTAssertTrue(Int8Kernels.oneDNNIsExact(for: input))
      let product = Int8Product(
        weights: values, weightScales: scales, input: input, outFeatures: outFeatures, inFeatures: inFeatures)
      for batch in [1, 17, 64] {
        var generator = SeededGenerator(seed: UInt64(batch + 7))
        // The worst case for 16-bit pairs: inputs at 127 against weights at ±127, and random ones.
        let x = (0..<(batch * inFeatures)).map { i in i % 3 == 0 ? 127 : UInt8(truncatingIfNeeded: generator.next()) & 0x7f }
        let fast = product.apply(quantized: x, batch: batch)
        let exact = product.reference(quantized: x, batch: batch)
        for (a, b) in zip(fast, exact) { XCTAssertEqual(a, b, accuracy: abs(b) * 3e-7 + 1e-30, "batch \(batch), zero \(zero)") }
      }
    }
    // 8-bit activations run on oneDNN only where its sums are exact for them.
    XCTAssertEqual(Int8Kernels.oneDNNIsExact(for: ActivationQuantization(scale: 1, zeroPoint: 0)), Int8Kernels.oneDNNIsExact)
    XCTAssertEqual(ActivationQuantization.machineQuantMax, Int8Kernels.oneDNNIsExact ? 255 : 127)
  }

  /// PyTorch's `reduce_range`: the observer's range over 127 steps, the zero point within 0…127.
  func testReducedRangeRulesArePyTorchs() {
    let q = ActivationQuantization(min: -1, max: 3, quantMax: 127)
    XCTAssertEqual(q.scale, 4 / 127)
    XCTAssertEqual(q.zeroPoint, 32)  // 31.75 → 32
    var out = [UInt8](repeating: 0, count: 3)
    let input: [Float] = [-2, 0, 10]
    input.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { q.quantize(x, into: $0) } }
    XCTAssertEqual(out, [0, 32, 127])  // clamped at 127, not 255
  }

  func testQuantizationRulesArePyTorchs() {
    // MinMaxObserver for quint8: the range widened to 0, scale (max − min)/255, zero point round(−min/scale).
    let q = ActivationQuantization(min: -1, max: 3)
    XCTAssertEqual(q.scale, 4 / 255)
    XCTAssertEqual(q.zeroPoint, 64)  // 63.75 → 64
    XCTAssertEqual(ActivationQuantization(min: 0.5, max: 2).zeroPoint, 0)  // 0 included: [0, 2]
    XCTAssertEqual(ActivationQuantization(min: 0, max: 0).scale, 1)
    var out = [UInt8](repeating: 0, count: 5)
    let input: [Float] = [-2, -1, 0, 0.5 * 4 / 255, 10]
    input.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { q.quantize(x, into: $0) } }
    XCTAssertEqual(out, [0, 0, 64, 64, 255])  // 0.5 rounds to even (0), clamped at both ends
    let (values, scales) = quantizeWeightsPerChannel([0.5, -1, 0.25, 0, 0, 0], rows: 2, columns: 3)
    XCTAssertEqual(scales, [1 / 127, 1])
    XCTAssertEqual(values, [64, -127, 32, 0, 0, 0])  // 63.5 → 64 (even), 31.75 → 32
  }

  func testTheProductApproximatesTheFloatOne() {
    let (batch, inFeatures, outFeatures) = (32, 64, 16)
    let x = randomValues(batch * inFeatures, seed: 5, scale: 1, offset: 0.5).map { max(0, $0) }  // ReLU outputs
    let w = randomValues(outFeatures * inFeatures, seed: 6, scale: 0.2)
    let (values, scales) = quantizeWeightsPerChannel(w, rows: outFeatures, columns: inFeatures)
    let product = Int8Product(
      weights: values, weightScales: scales, input: ActivationQuantization(min: x.min()!, max: x.max()!),
      outFeatures: outFeatures, inFeatures: inFeatures)
    let y = product.apply(x, batch: batch)
    var worst: Float = 0
    var largest: Float = 0
    for i in 0..<batch {
      for o in 0..<outFeatures {
        var exact: Float = 0
        for k in 0..<inFeatures { exact += x[i * inFeatures + k] * w[o * inFeatures + k] }
        worst = max(worst, abs(y[i * outFeatures + o] - exact))
        largest = max(largest, abs(exact))
      }
    }
    XCTAssertLessThan(worst / largest, 0.02, "int8 error \(worst) against outputs up to \(largest)")
  }

  func testARefusedShapeIsComputedByTheReference() {
    let product = Int8Product(
      weights: [1, -2, 3, 4, 5, -6], weightScales: [0.5, 0.25], input: ActivationQuantization(scale: 1, zeroPoint: 1),
      outFeatures: 2, inFeatures: 3)
    let x: [UInt8] = [2, 3, 4]
    let y = OneDNNRefusal.$isSimulated.withValue(true) { product.apply(quantized: x, batch: 1) }
    // (1·1 − 2·2 + 3·3)·0.5 = 3, (4·1 + 5·2 − 6·3)·0.25 = −1
    XCTAssertEqual(y, [3, -1])
  }
}

extension Int8ProductTests {
  func testBothQuantizationPathsGiveTheSameBytes() throws {
    var generator = SeededGenerator(seed: 9)
    var values = (0..<1037).map { _ -> Float in Float(Int64(bitPattern: generator.next()) >> 40) / Float(1 << 14) }
    values += [.nan, .infinity, -.infinity, 1e30, -1e30, 0.5, 1.5, 2.5, -0.5, 0]
    let q = ActivationQuantization(scale: 0.5, zeroPoint: 7)
    func run(_ path: String) -> [UInt8] {
      var out = [UInt8](repeating: 0, count: values.count)
      values.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { q.quantize(x, into: $0) } }
      return out
    }
    defer { _ = distill_quantize_use_path("avx512") }
    XCTAssertEqual(distill_quantize_use_path("portable"), 0)
    let portable = run("portable")
    // NaN → 0, ±∞ clamp, and ties to even: 0.5·2 = 1 → 1 + 7; 1.5·2 = 3; 2.5·2 = 5; −0.5·2 = −1 → 6.
    XCTAssertEqual(Array(portable.suffix(10)), [0, 255, 0, 255, 0, 8, 10, 12, 6, 7])
    XCTAssertEqual(portable.prefix(3).count, 3)
    if distill_quantize_use_path("avx512") == 0 { XCTAssertEqual(run("avx512"), portable) }
    let ties = ActivationQuantization(scale: 2, zeroPoint: 0)  // x/2: 1 → 0.5 → 0, 3 → 1.5 → 2, 5 → 2.5 → 2
    var out = [UInt8](repeating: 0, count: 3)
    [Float(1), 3, 5].withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { ties.quantize(x, into: $0) } }
    XCTAssertEqual(out, [0, 2, 2])
  }
}
