// Fake quantization for quantization-aware training, with the straight-through estimator.

extension Tensor {
  /// Quantizes and dequantizes in Float (`torch.fake_quantize_per_tensor_affine`, or with one
  /// scale per row `torch.fake_quantize_per_channel_affine` on axis 0): with s the scale of the
  /// element's row (or the one scale), q = rint(x · (1/s)) + zeroPoint (ties to even, as
  /// `ActivationQuantization.quantize`), y = (clamp(q, range) − zeroPoint) · s.
  ///
  /// ∂ (straight-through estimator, as PyTorch's): g where q lies within `range`, 0 where it was
  /// clamped. The rounding's own derivative (0 almost everywhere) is not what training wants, so
  /// the tests check this rule rather than finite differences.
  public func fakeQuantized(scales: [Float], zeroPoint: Int32, range: ClosedRange<Int32>) -> Tensor {
    precondition(scales.count == 1 || (rank >= 1 && scales.count == shape[0]), "\(scales.count) scales for \(shape)")
    precondition(scales.allSatisfy { $0 > 0 && $0.isFinite }, "scales must be positive")
    let rowLength = scales.count == 1 ? count : count / Swift.max(shape[0], 1)
    let inverses = scales.map { 1 / $0 }
    let (zero, low, high) = (Float(zeroPoint), Float(range.lowerBound), Float(range.upperBound))
    var inside = [Float](repeating: 0, count: count)
    let output = Tensor(shape: shape) { out in
      storage.withUnsafeBufferPointer { x in
        for i in 0..<out.count {
          let row = scales.count == 1 ? 0 : i / rowLength
          let q = (x[i] * inverses[row]).rounded(.toNearestOrEven) + zero
          let clamped = Swift.min(Swift.max(q, low), high)
          inside[i] = q == clamped ? 1 : 0
          out[i] = (clamped - zero) * scales[row]
        }
      }
    }
    return output.recording([self], half: .never) { g in
      [g.zipped(Tensor(shape: g.shape, storage: inside)) { $0 * $1 }]
    }
  }
}
