import CDNNL
import CKernels
import Foundation
import Synchronization

/// Per-tensor asymmetric quantization of activations to uint8 (PyTorch's `quint8` with
/// `per_tensor_affine`): q = clamp(rint(x · (1 / scale)) + zeroPoint, 0, quantMax), rounding half
/// to even (as fbgemm's quantize, which multiplies by the inverse scale), and
/// x ≈ scale · (q − zeroPoint). `quantMax` is 255, or 127 for 7-bit activations (PyTorch's
/// `reduce_range`), which keep oneDNN's u8 × s8 kernels exact on CPUs without an int8 dot product
/// (`Int8Kernels`).
public struct ActivationQuantization: Equatable, Sendable {
  public var scale: Float
  public var zeroPoint: Int32
  public var quantMax: Int32

  public init(scale: Float, zeroPoint: Int32, quantMax: Int32 = 255) {
    precondition(quantMax == 255 || quantMax == 127, "quant max \(quantMax)")
    precondition(
      scale > 0 && scale.isFinite && (0...quantMax).contains(zeroPoint), "scale \(scale), zero point \(zeroPoint)")
    self.scale = scale
    self.zeroPoint = zeroPoint
    self.quantMax = quantMax
  }

  /// The parameters covering [min, max] widened to hold 0 (PyTorch's `MinMaxObserver` for
  /// `quint8`, with `reduce_range` when `quantMax` is 127): scale = (max − min) / quantMax, zero
  /// point = clamp(round(−min / scale), 0, quantMax); a range of width 0 takes scale 1 (as
  /// PyTorch's `eps` floor would, for a constant 0).
  public init(min: Float, max: Float, quantMax: Int32 = 255) {
    let low = Swift.min(min, 0)
    let high = Swift.max(max, 0)
    let scale = high > low ? (high - low) / Float(quantMax) : 1
    let zero = (-low / scale).rounded(.toNearestOrEven)
    self.init(scale: scale, zeroPoint: Int32(Swift.max(0, Swift.min(Float(quantMax), zero))), quantMax: quantMax)
  }

  /// The activation range a model quantized on this machine uses: 8 bits where oneDNN's int8
  /// kernels are exact (`Int8Kernels.oneDNNIsExact`), else 7 (`reduce_range`, as PyTorch's fbgemm
  /// qconfig on x86), so that they are.
  public static var machineQuantMax: Int32 { Int8Kernels.oneDNNIsExact ? 255 : 127 }

  /// `values` quantized: clamp(rint(x · (1 / scale)) + zeroPoint, 0, quantMax), ties to even, NaN
  /// to 0 (a C kernel, AVX-512 where the CPU has it).
  public func quantize(_ values: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<UInt8>) {
    precondition(out.count >= values.count)
    distill_quantize_u8(values.baseAddress, out.baseAddress, values.count, 1 / scale, zeroPoint, quantMax)
  }
}

/// Symmetric per-output-channel quantization of a Linear's weights `[out, in]` to int8 in
/// [−127, 127]: scaleₒ = max |W[o, :]| / 127 (1 for an all-zero row), W_q = round(W / scaleₒ),
/// half to even. Returns the int8 values row-major and the scales.
public func quantizeWeightsPerChannel(_ weights: [Float], rows: Int, columns: Int) -> (values: [Int8], scales: [Float]) {
  precondition(weights.count == rows * columns)
  var values = [Int8](repeating: 0, count: weights.count)
  var scales = [Float](repeating: 1, count: rows)
  for r in 0..<rows {
    let row = weights[(r * columns)..<((r + 1) * columns)]
    let largest = row.reduce(0) { Swift.max($0, abs($1)) }
    let scale = largest > 0 ? largest / 127 : 1
    scales[r] = scale
    for (c, w) in row.enumerated() {
      values[r * columns + c] = Int8(Swift.max(-127, Swift.min(127, (w / scale).rounded(.toNearestOrEven))))
    }
  }
  return (values, scales)
}

/// A quantized matrix product: y = x · Wᵀ for a Linear `[out, in]`, with x quantized per
/// tensor to uint8 and W per output channel to int8, summed exactly in int32 and scaled to
/// Float: y[i, o] = (inputScale · weightScaleₒ) · Σₖ (x_q[i, k] − zeroPoint) · W_q[o, k].
///
/// Runs on oneDNN's u8 × s8 matmul (VNNI where the CPU has it), one primitive per batch size
/// (kept, the weights reordered once); where oneDNN refuses a shape, the same sums in Swift
/// (`reference`), which the tests compare the oneDNN result with.
public final class Int8Product: @unchecked Sendable {
  public let outFeatures: Int
  public let inFeatures: Int
  /// `[out, in]` row-major.
  public let weights: [Int8]
  public let weightScales: [Float]
  public let input: ActivationQuantization
  /// `input.scale × weightScales`: the output scale of each column.
  let outputScales: [Float]
  /// One primitive per batch size; refused batch sizes are computed by `reference` instead.
  private let primitives = Int8Primitives<Int>(destroy: { distill_int8_matmul_destroy($0) })

  public init(weights: [Int8], weightScales: [Float], input: ActivationQuantization, outFeatures: Int, inFeatures: Int) {
    precondition(weights.count == outFeatures * inFeatures && weightScales.count == outFeatures)
    self.weights = weights
    self.weightScales = weightScales
    self.input = input
    self.outFeatures = outFeatures
    self.inFeatures = inFeatures
    outputScales = weightScales.map { $0 * input.scale }
  }

  /// `x` `[batch, in]` (Float) through the product: `[batch, out]`.
  public func apply(_ x: [Float], batch: Int) -> [Float] {
    precondition(x.count == batch * inFeatures)
    var quantized = [UInt8](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { values in quantized.withUnsafeMutableBufferPointer { input.quantize(values, into: $0) } }
    return apply(quantized: quantized, batch: batch)
  }

  /// Already quantized inputs `[batch, in]` through the product.
  public func apply(quantized x: [UInt8], batch: Int) -> [Float] {
    var y = [Float](repeating: 0, count: batch * outFeatures)
    if let handle = primitive(batch: batch) {
      let status = x.withUnsafeBufferPointer { a in
        y.withUnsafeMutableBufferPointer { c in distill_int8_matmul_run(handle.handle, a.baseAddress, c.baseAddress) }
      }
      checkOneDNN(status, "int8 matmul")
      return y
    }
    return reference(quantized: x, batch: batch)
  }

  /// The same product in Swift: int32 sums, then one Float multiplication per output.
  public func reference(quantized x: [UInt8], batch: Int) -> [Float] {
    var y = [Float](repeating: 0, count: batch * outFeatures)
    let zero = input.zeroPoint
    for i in 0..<batch {
      for o in 0..<outFeatures {
        var sum: Int32 = 0
        for k in 0..<inFeatures {
          sum &+= (Int32(x[i * inFeatures + k]) - zero) * Int32(weights[o * inFeatures + k])
        }
        y[i * outFeatures + o] = outputScales[o] * Float(sum)
      }
    }
    return y
  }

  private func primitive(batch: Int) -> Int8Primitives<Int>.Box? {
    primitives.primitive(
      for: batch, input: input, describing: "the int8 product [\(batch), \(inFeatures)] × [\(inFeatures), \(outFeatures)]"
    ) {
      weights.withUnsafeBufferPointer { w in
        outputScales.withUnsafeBufferPointer { s in
          distill_int8_matmul_create(batch, outFeatures, inFeatures, w.baseAddress, s.baseAddress, input.zeroPoint)
        }
      }
    }
  }
}

/// The oneDNN primitives of one quantized layer, one per input shape (`Key`): created on first
/// use and kept; a shape oneDNN refuses is reported once on standard error and remembered, so
/// the caller computes it in Swift from then on.
final class Int8Primitives<Key: Hashable & Sendable>: @unchecked Sendable {
  /// A primitive of ours, freed with it.
  final class Box: @unchecked Sendable {
    let handle: OpaquePointer
    let destroy: (OpaquePointer) -> Void
    init(_ handle: OpaquePointer, destroy: @escaping (OpaquePointer) -> Void) {
      self.handle = handle
      self.destroy = destroy
    }
    deinit { destroy(handle) }
  }

  private let destroy: (OpaquePointer) -> Void
  private let kept = Mutex<[Key: Box]>([:])
  private let refused = Mutex<Set<Key>>([])

  init(destroy: @escaping (OpaquePointer) -> Void) { self.destroy = destroy }

  /// The primitive for `key`, made by `create` the first time (nil: refused, or a refusal
  /// simulated by the tests); `what` names the operation in the warning.
  func primitive(
    for key: Key, input: ActivationQuantization, describing what: String, create: () -> OpaquePointer?
  ) -> Box? {
    guard Int8Kernels.oneDNNIsExact(for: input) else { return nil }
    if let box = kept.withLock({ $0[key] }) { return box }
    if refused.withLock({ $0.contains(key) }) || OneDNNRefusal.isSimulated { return nil }
    guard let handle = create() else {
      let message = String(cString: distill_dnnl_last_error())
      if refused.withLock({ $0.insert(key).inserted }) {
        FileHandle.standardError.write(Data("warning: oneDNN refused \(what) (\(message)); computing it in Swift\n".utf8))
      }
      return nil
    }
    let box = Box(handle, destroy: destroy)
    kept.withLock { $0[key] = box }
    return box
  }
}

/// Where the int8 products and convolutions run.
public enum Int8Kernels {
  /// Whether oneDNN's u8 × s8 kernels give exact int32 sums here: on a CPU with an int8
  /// dot-product instruction (AVX-512 VNNI, AVX-VNNI). Without one, oneDNN adds pairs of u8 × s8
  /// products in 16 bits with saturation (`vpmaddubsw`: 2 · 255 · 127 > 32767), which oneDNN
  /// documents and PyTorch's fbgemm avoids with 7-bit activations (`reduce_range`); our models'
  /// files made on such a CPU use 7-bit activations (`ActivationQuantization.machineQuantMax`),
  /// which oneDNN sums exactly; 8-bit ones are summed by the engine's own kernel (`reference`),
  /// slower but the same numbers.
  public static let oneDNNIsExact = distill_cpu_has_int8_dot_product() != 0

  /// Whether oneDNN sums products with inputs quantized by `input` exactly here: always with an
  /// int8 dot product, else for 7-bit inputs (2 · 127 · 127 < 32767).
  public static func oneDNNIsExact(for input: ActivationQuantization) -> Bool {
    oneDNNIsExact || input.quantMax <= 127
  }
}

