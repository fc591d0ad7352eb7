import Autodiff

/// A `Linear` quantized for inference (PyTorch's `torch.ao.nn.quantized.Linear` with a
/// per-channel qconfig): the input is quantized per tensor to uint8 (`input`: scale and zero
/// point, calibrated beforehand), the weights per output channel to int8 (symmetric), the
/// product is summed in int32 on oneDNN (`Int8Product`), scaled back to Float and the Float
/// bias added:
///
///     y = (s_x · s_w,o) · Σₖ (q(x)ₖ − z_x) · W_q[o, k] + b_o
///
/// Inference only: nothing is recorded for gradients, and it has no trainable parameters.
/// Shape as `Linear`: `[N, in]` (or `[*, in]`) → `[N, out]`.
public final class QuantizedLinear: Layer {
  public let product: Int8Product
  /// `[outputFeatures]` Float, or nil.
  public let bias: [Float]?
  public var isTraining = false

  public init(product: Int8Product, bias: [Float]?) {
    precondition(bias.map { $0.count == product.outFeatures } ?? true)
    self.product = product
    self.bias = bias
  }

  /// `linear`'s weights quantized per channel, its bias kept, with inputs quantized by `input`.
  public convenience init(_ linear: Linear, input: ActivationQuantization) {
    let (values, scales) = quantizeWeightsPerChannel(
      linear.weight.storage, rows: linear.outputFeatures, columns: linear.inputFeatures)
    self.init(
      product: Int8Product(
        weights: values, weightScales: scales, input: input, outFeatures: linear.outputFeatures,
        inFeatures: linear.inputFeatures),
      bias: linear.bias?.storage)
  }

  public var inputFeatures: Int { product.inFeatures }
  public var outputFeatures: Int { product.outFeatures }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    precondition(
      x.shape.last == inputFeatures, "QuantizedLinear(\(inputFeatures)→\(outputFeatures)) got input \(x.shape)")
    let rows = x.count / inputFeatures
    var y = product.apply(x.storage, batch: rows)
    if let bias {
      y.withUnsafeMutableBufferPointer { out in
        for r in 0..<rows {
          for o in 0..<outputFeatures { out[r * outputFeatures + o] += bias[o] }
        }
      }
    }
    return Tensor(shape: Array(x.shape.dropLast()) + [outputFeatures], storage: y)
  }
}

/// A `Conv2D` quantized for inference (PyTorch's `torch.ao.nn.quantized.Conv2d` with a
/// per-channel qconfig): the input quantized per tensor to uint8, the filters per output
/// channel to int8 (symmetric, over each filter's C·k·k weights), the sums in int32 on oneDNN
/// (`Int8Convolution`, the padding the real 0), scaled back to Float and the Float bias added.
/// Inference only. Shape as `Conv2D`: `[N, C, H, W]` → `[N, O, H', W']`.
public final class QuantizedConv2D: Layer {
  public let convolution: Int8Convolution
  /// `[outChannels]` Float, or nil.
  public let bias: [Float]?
  public var isTraining = false

  public init(convolution: Int8Convolution, bias: [Float]?) {
    precondition(bias.map { $0.count == convolution.outChannels } ?? true)
    self.convolution = convolution
    self.bias = bias
  }

  /// `conv`'s filters quantized per output channel, its bias kept, with inputs quantized by `input`.
  public convenience init(_ conv: Conv2D, input: ActivationQuantization) {
    let area = conv.inChannels * conv.kernelSize * conv.kernelSize
    let (values, scales) = quantizeWeightsPerChannel(conv.weight.storage, rows: conv.outChannels, columns: area)
    self.init(
      convolution: Int8Convolution(
        weights: values, weightScales: scales, input: input, outChannels: conv.outChannels,
        inChannels: conv.inChannels, kernelSize: conv.kernelSize, stride: conv.stride, padding: conv.padding),
      bias: conv.bias?.storage)
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    let c = convolution
    precondition(x.rank == 4 && x.shape[1] == c.inChannels, "QuantizedConv2D(\(c.inChannels)→\(c.outChannels)) got input \(x.shape)")
    let (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
    var y = c.apply(x.storage, batch: batch, height: height, width: width)
    let (oh, ow) = c.outputSize(height: height, width: width)
    if let bias {
      let area = oh * ow
      y.withUnsafeMutableBufferPointer { out in
        for b in 0..<batch {
          for o in 0..<c.outChannels {
            let base = (b * c.outChannels + o) * area
            for i in 0..<area { out[base + i] += bias[o] }
          }
        }
      }
    }
    return Tensor(shape: [batch, c.outChannels, oh, ow], storage: y)
  }
}

/// Quantization-aware training of one `Linear` (`Linear.fakeQuantization`): its forward pass
/// reads its input fake-quantized per tensor to uint8 with the observed range, and its weights
/// fake-quantized per output channel to int8 (symmetric, scales from the current weights), with
/// the straight-through estimator (`Tensor.fakeQuantized`), as PyTorch's QAT modules do. In
/// training mode each forward pass moves the observed range towards the batch's minimum and
/// maximum with `averagingConstant` (PyTorch's `MovingAverageMinMaxObserver`, 0.01).
public final class LinearFakeQuantization {
  public var inputMin: Float
  public var inputMax: Float
  public let averagingConstant: Float
  /// The input's largest quantized value: 255, or 127 for 7-bit activations
  /// (`ActivationQuantization.machineQuantMax`).
  public let quantMax: Int32

  public init(inputMin: Float, inputMax: Float, averagingConstant: Float = 0.01, quantMax: Int32 = 255) {
    self.inputMin = inputMin
    self.inputMax = inputMax
    self.averagingConstant = averagingConstant
    self.quantMax = quantMax
  }

  /// The activation quantization of the range observed so far.
  public var input: ActivationQuantization { ActivationQuantization(min: inputMin, max: inputMax, quantMax: quantMax) }

  /// `x` fake-quantized, after moving the range towards `x`'s when `observing`.
  func input(_ x: Tensor, observing: Bool) -> Tensor {
    if observing {
      let values = x.storage
      if let low = values.min(), let high = values.max(), low.isFinite, high.isFinite {
        inputMin += averagingConstant * (low - inputMin)
        inputMax += averagingConstant * (high - inputMax)
      }
    }
    let q = input
    return x.fakeQuantized(scales: [q.scale], zeroPoint: q.zeroPoint, range: 0...q.quantMax)
  }

  /// `weight` `[out, in]` fake-quantized per row, symmetric int8.
  func weight(_ weight: Tensor) -> Tensor {
    let (_, scales) = quantizeWeightsPerChannel(weight.storage, rows: weight.shape[0], columns: weight.shape[1])
    return weight.fakeQuantized(scales: scales, zeroPoint: 0, range: -127...127)
  }
}
