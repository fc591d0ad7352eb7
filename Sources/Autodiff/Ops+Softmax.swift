import RealModule

// Softmax and log-softmax over the last axis, computed stably by subtracting each row's
// maximum before exponentiating.

extension Tensor {
  /// softmax(x)ᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m), m = maxⱼ xⱼ, over the last axis
  /// (`torch.softmax(x, -1)`). ∂ = y ⊙ (g − Σ g⊙y).
  public func softmax() -> Tensor {
    let out = rowwise { row, out in
      var m = -Float.infinity
      for x in row { m = Swift.max(m, x) }
      var s: Float = 0
      for j in 0..<row.count {
        let e = Float.exp(row[j] - m)
        out[j] = e
        s += e
      }
      let inv = 1 / s
      for j in 0..<row.count { out[j] *= inv }
    }
    return out.recordingUsingOutput([self], half: .never) { g, out in
      [
        g.rowwise(with: out) { gRow, yRow, dx in
          var dot: Float = 0
          for j in 0..<gRow.count { dot += gRow[j] * yRow[j] }
          for j in 0..<gRow.count { dx[j] = yRow[j] * (gRow[j] - dot) }
        }
      ]
    }
  }

  /// log softmax(x)ᵢ = xᵢ − m − log Σⱼ exp(xⱼ − m) over the last axis
  /// (`torch.log_softmax(x, -1)`). ∂ = g − softmax(x)·Σ g.
  public func logSoftmax() -> Tensor {
    let out = rowwise { row, out in
      var m = -Float.infinity
      for x in row { m = Swift.max(m, x) }
      var s: Float = 0
      for x in row { s += Float.exp(x - m) }
      let logZ = m + Float.log(s)
      for j in 0..<row.count { out[j] = row[j] - logZ }
    }
    return out.recordingUsingOutput([self], half: .never) { g, out in
      [
        g.rowwise(with: out) { gRow, logY, dx in
          var total: Float = 0
          for x in gRow { total += x }
          for j in 0..<gRow.count { dx[j] = gRow[j] - Float.exp(logY[j]) * total }
        }
      ]
    }
  }

  /// Applies `body` to each row (the last axis) of this tensor, writing a row of the result.
  func rowwise(
    _ body: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void
  ) -> Tensor {
    let width = shape.last ?? 1
    return Tensor(shape: shape) { out in
      storage.withUnsafeBufferPointer { x in
        for r in 0..<(count / Swift.max(width, 1)) {
          body(
            UnsafeBufferPointer(rebasing: x[r * width..<(r + 1) * width]),
            UnsafeMutableBufferPointer(rebasing: out[r * width..<(r + 1) * width]))
        }
      }
    }
  }

  /// Like `rowwise(_:)` with a second tensor of the same shape read row by row.
  func rowwise(
    with other: Tensor,
    _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>)
      -> Void
  ) -> Tensor {
    precondition(shape == other.shape)
    let width = shape.last ?? 1
    return Tensor(shape: shape) { out in
      storage.withUnsafeBufferPointer { x in
        other.storage.withUnsafeBufferPointer { y in
          for r in 0..<(count / Swift.max(width, 1)) {
            let range = r * width..<(r + 1) * width
            body(
              UnsafeBufferPointer(rebasing: x[range]), UnsafeBufferPointer(rebasing: y[range]),
              UnsafeMutableBufferPointer(rebasing: out[range]))
          }
        }
      }
    }
  }
}
