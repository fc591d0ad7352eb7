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

  public init(inputMin: Float, inputMax: Float, averagingConstant: Float = 0.01) {
    self.inputMin = inputMin
    self.inputMax = inputMax
    self.averagingConstant = averagingConstant
  }

  /// The activation quantization of the range observed so far.
  public var input: ActivationQuantization { ActivationQuantization(min: inputMin, max: inputMax) }

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
    return x.fakeQuantized(scales: [q.scale], zeroPoint: q.zeroPoint, range: 0...255)
  }

  /// `weight` `[out, in]` fake-quantized per row, symmetric int8.
  func weight(_ weight: Tensor) -> Tensor {
    let (_, scales) = quantizeWeightsPerChannel(weight.storage, rows: weight.shape[0], columns: weight.shape[1])
    return weight.fakeQuantized(scales: scales, zeroPoint: 0, range: -127...127)
  }
}
