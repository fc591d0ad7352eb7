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
