import CDNNL
import Foundation

/// A quantized convolution (square kernel, the same stride and padding on both axes), the
/// `Int8Product` of a `Conv2D`: x `[N, C, H, W]` quantized per tensor to uint8, W `[O, C, k, k]`
/// per output channel to int8 (`quantizeWeightsPerChannel` over its rows of C·k·k), summed
/// exactly in int32 and scaled to Float:
///
///     y[b, o, i, j] = (inputScale · weightScaleₒ) · Σ_{c,u,v} (x_q[b, c, i·s+u−p, j·s+v−p] − zeroPoint) · W_q[o, c, u, v]
///
/// where the padding holds the real 0 (x_q = zeroPoint). Runs on oneDNN's u8 × s8 convolution
/// (VNNI where the CPU has it), one primitive per input shape (kept, the weights reordered
/// once); where oneDNN refuses one, the same sums in Swift (`reference`), which the tests
/// compare the oneDNN result with.
public final class Int8Convolution: @unchecked Sendable {
  public let outChannels: Int
  public let inChannels: Int
  public let kernelSize: Int
  public let stride: Int
  public let padding: Int
  /// `[out, in, k, k]` row-major.
  public let weights: [Int8]
  public let weightScales: [Float]
  public let input: ActivationQuantization
  let outputScales: [Float]
  /// One primitive per input shape [batch, height, width].
  private let primitives = Int8Primitives<[Int]>(destroy: { distill_int8_conv_destroy($0) })

  public init(
    weights: [Int8], weightScales: [Float], input: ActivationQuantization, outChannels: Int, inChannels: Int,
    kernelSize: Int, stride: Int, padding: Int
  ) {
    precondition(weights.count == outChannels * inChannels * kernelSize * kernelSize && weightScales.count == outChannels)
    precondition(kernelSize >= 1 && stride >= 1 && padding >= 0)
    self.weights = weights
    self.weightScales = weightScales
    self.input = input
    (self.outChannels, self.inChannels, self.kernelSize, self.stride, self.padding) = (
      outChannels, inChannels, kernelSize, stride, padding
    )
    outputScales = weightScales.map { $0 * input.scale }
  }

  /// The output's height and width for an input of `height` × `width`.
  public func outputSize(height: Int, width: Int) -> (Int, Int) {
    ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
  }

  /// `x` `[batch, in, height, width]` (Float) through the convolution: `[batch, out, oh, ow]`.
  public func apply(_ x: [Float], batch: Int, height: Int, width: Int) -> [Float] {
    precondition(x.count == batch * inChannels * height * width)
    var quantized = [UInt8](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { values in quantized.withUnsafeMutableBufferPointer { input.quantize(values, into: $0) } }
    return apply(quantized: quantized, batch: batch, height: height, width: width)
  }

  /// Already quantized inputs through the convolution.
  public func apply(quantized x: [UInt8], batch: Int, height: Int, width: Int) -> [Float] {
    let (oh, ow) = outputSize(height: height, width: width)
    var y = [Float](repeating: 0, count: batch * outChannels * oh * ow)
    if let box = primitive([batch, height, width]) {
      let status = x.withUnsafeBufferPointer { a in
        y.withUnsafeMutableBufferPointer { c in distill_int8_conv_run(box.handle, a.baseAddress, c.baseAddress) }
      }
      checkOneDNN(status, "int8 convolution")
      return y
    }
    return reference(quantized: x, batch: batch, height: height, width: width)
  }

  /// The same sums in Swift: int32, the padding contributing 0, one Float multiplication per output.
  public func reference(quantized x: [UInt8], batch: Int, height: Int, width: Int) -> [Float] {
    let (oh, ow) = outputSize(height: height, width: width)
    let k = kernelSize
    var y = [Float](repeating: 0, count: batch * outChannels * oh * ow)
    let zero = input.zeroPoint
    for b in 0..<batch {
      for o in 0..<outChannels {
        for i in 0..<oh {
          for j in 0..<ow {
            var sum: Int32 = 0
            for c in 0..<inChannels {
              for u in 0..<k {
                let row = i * stride + u - padding
                guard row >= 0 && row < height else { continue }
                for v in 0..<k {
                  let column = j * stride + v - padding
                  guard column >= 0 && column < width else { continue }
                  let q = Int32(x[((b * inChannels + c) * height + row) * width + column]) - zero
                  sum &+= q * Int32(weights[((o * inChannels + c) * k + u) * k + v])
                }
              }
            }
            y[((b * outChannels + o) * oh + i) * ow + j] = outputScales[o] * Float(sum)
          }
        }
      }
    }
    return y
  }

  private func primitive(_ key: [Int]) -> Int8Primitives<[Int]>.Box? {
    primitives.primitive(
      for: key, input: input, describing: "the int8 convolution of [\(key[0]), \(inChannels), \(key[1]), \(key[2])]"
    ) {
      weights.withUnsafeBufferPointer { w in
        outputScales.withUnsafeBufferPointer { s in
          distill_int8_conv_create(
            key[0], inChannels, key[1], key[2], outChannels, kernelSize, stride, padding, w.baseAddress, s.baseAddress,
            input.zeroPoint)
        }
      }
    }
  }
}
