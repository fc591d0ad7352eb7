// Max and average pooling over kernel windows of NCHW batches, and global average pooling.
// Window sizes follow PyTorch with ceil_mode=False: Ho = ⌊(H + 2p − k) / s⌋ + 1.

extension Tensor {
  /// The maximum over each k×k window (`torch.nn.functional.max_pool2d(x, k, s, p)`):
  ///
  ///     y[n, c, i, j] = max_{0 ≤ u, v < k} x[n, c, i·s − p + u, j·s − p + v]
  ///
  /// where the padding reads as −∞. ∂: the whole of g[n, c, i, j] goes to the position of the
  /// window's maximum (the first one in row-major order on ties, as in PyTorch).
  ///
  /// Shape: `[N, C, H, W]` → `[N, C, Ho, Wo]`, Ho = ⌊(H + 2p − k) / s⌋ + 1 (likewise Wo);
  /// stride s defaults to k and p must be at most k / 2.
  public func maxPool2d(kernelSize: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    let geo = poolingGeometry(kernelSize: kernelSize, stride: stride, padding: padding)
    let (s, p, k) = (geo.stride, geo.padding, kernelSize)
    let (inPlane, outPlane) = (geo.height * geo.width, geo.outputPlane)
    // For each output element, the flat index of its maximum within the input plane.
    var argmax = [Int32](repeating: 0, count: geo.batch * geo.channels * outPlane)
    let out = Tensor(shape: [geo.batch, geo.channels, geo.outputHeight, geo.outputWidth]) { out in
      storage.withUnsafeBufferPointer { x in
        argmax.withUnsafeMutableBufferPointer { arg in
          for plane in 0..<(geo.batch * geo.channels) {
            let image = x.baseAddress! + plane * inPlane
            let (y, a) = (out.baseAddress! + plane * outPlane, arg.baseAddress! + plane * outPlane)
            if k == 2 && s == 2 && p == 0 {
              maxPool2x2(image, width: geo.width, y, a, outputHeight: geo.outputHeight, outputWidth: geo.outputWidth)
              continue
            }
            for i in 0..<geo.outputHeight {
              let rowStart = Swift.max(i * s - p, 0)
              let rowEnd = Swift.min(i * s - p + k, geo.height)
              for j in 0..<geo.outputWidth {
                let colStart = Swift.max(j * s - p, 0)
                let colEnd = Swift.min(j * s - p + k, geo.width)
                // p ≤ k/2 guarantees every window holds at least one pixel of the image.
                var best = rowStart * geo.width + colStart
                var bestValue = image[best]
                for r in rowStart..<rowEnd {
                  for c in colStart..<colEnd {
                    let v = image[r * geo.width + c]
                    if v > bestValue || (v.isNaN && !bestValue.isNaN) {  // a NaN propagates
                      bestValue = v
                      best = r * geo.width + c
                    }
                  }
                }
                y[i * geo.outputWidth + j] = bestValue
                a[i * geo.outputWidth + j] = Int32(best)
              }
            }
          }
        }
      }
    }
    return out.recording([self], savedBytes: argmax.count * 4) { g in
      var dx = TensorBufferPool.array(repeating: 0, count: self.count)
      g.storage.withUnsafeBufferPointer { gp in
        argmax.withUnsafeBufferPointer { arg in
          dx.withUnsafeMutableBufferPointer { d in
            for plane in 0..<(geo.batch * geo.channels) {
              let (inBase, outBase) = (plane * inPlane, plane * outPlane)
              for q in 0..<outPlane { d[inBase + Int(arg[outBase + q])] += gp[outBase + q] }
            }
          }
        }
      }
      return [Tensor(shape: self.shape, storage: dx)]
    }
  }

  /// The mean over each k×k window, padding counted as zeros in the divisor k²
  /// (`torch.nn.functional.avg_pool2d(x, k, s, p)` with its default count_include_pad=True):
  ///
  ///     y[n, c, i, j] = (1 / k²) · Σ_{0 ≤ u, v < k} x[n, c, i·s − p + u, j·s − p + v]
  ///
  /// ∂: g[n, c, i, j] / k² to every image pixel of the window.
  ///
  /// Shape: `[N, C, H, W]` → `[N, C, Ho, Wo]`, Ho = ⌊(H + 2p − k) / s⌋ + 1 (likewise Wo);
  /// stride s defaults to k and p must be at most k / 2.
  public func avgPool2d(kernelSize: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    let geo = poolingGeometry(kernelSize: kernelSize, stride: stride, padding: padding)
    let (s, p, k) = (geo.stride, geo.padding, kernelSize)
    let (inPlane, outPlane) = (geo.height * geo.width, geo.outputPlane)
    let scale = 1 / Float(k * k)
    let out = Tensor(shape: [geo.batch, geo.channels, geo.outputHeight, geo.outputWidth]) { out in
      storage.withUnsafeBufferPointer { x in
        for plane in 0..<(geo.batch * geo.channels) {
          let (image, y) = (x.baseAddress! + plane * inPlane, out.baseAddress! + plane * outPlane)
          for i in 0..<geo.outputHeight {
            let rowRange = Swift.max(i * s - p, 0)..<Swift.min(i * s - p + k, geo.height)
            for j in 0..<geo.outputWidth {
              let colRange = Swift.max(j * s - p, 0)..<Swift.min(j * s - p + k, geo.width)
              var total: Float = 0
              for r in rowRange { for c in colRange { total += image[r * geo.width + c] } }
              y[i * geo.outputWidth + j] = total * scale
            }
          }
        }
      }
    }
    return out.recording([self]) { g in
      var dx = TensorBufferPool.array(repeating: 0, count: self.count)
      g.storage.withUnsafeBufferPointer { gp in
        dx.withUnsafeMutableBufferPointer { d in
          for plane in 0..<(geo.batch * geo.channels) {
            let (image, gy) = (d.baseAddress! + plane * inPlane, gp.baseAddress! + plane * outPlane)
            for i in 0..<geo.outputHeight {
              let rowRange = Swift.max(i * s - p, 0)..<Swift.min(i * s - p + k, geo.height)
              for j in 0..<geo.outputWidth {
                let colRange = Swift.max(j * s - p, 0)..<Swift.min(j * s - p + k, geo.width)
                let share = gy[i * geo.outputWidth + j] * scale
                for r in rowRange { for c in colRange { image[r * geo.width + c] += share } }
              }
            }
          }
        }
      }
      return [Tensor(shape: self.shape, storage: dx)]
    }
  }

  /// The mean of each channel over all its pixels,
  /// y[n, c] = (1 / HW) · Σ_{h, w} x[n, c, h, w] (`torch.mean(x, dim=(2, 3))`, or
  /// `nn.AdaptiveAvgPool2d(1)` followed by flattening). Composed from `mean(alongAxes:)`.
  ///
  /// Shape: `[N, C, H, W]` → `[N, C]`.
  public func globalAveragePool2d() -> Tensor {
    precondition(rank == 4, "globalAveragePool2d needs [N, C, H, W], got \(shape)")
    return mean(alongAxes: [2, 3])
  }

  /// The common 2×2, stride 2, unpadded max-pool of one plane. The comparisons are written
  /// as selects without NaN tests, so that they compile without branches (random activations
  /// make branches unpredictable); a window holding a NaN (rare) is redone with the NaN rule.
  @inline(__always)
  private func maxPool2x2(
    _ image: UnsafePointer<Float>, width: Int, _ y: UnsafeMutablePointer<Float>,
    _ argmax: UnsafeMutablePointer<Int32>, outputHeight: Int, outputWidth: Int
  ) {
    for i in 0..<outputHeight {
      let top = 2 * i * width
      let bottom = top + width
      for j in 0..<outputWidth {
        // Candidates in row-major order; a later one wins only if strictly greater.
        let (ia, ib, ic, id) = (top + 2 * j, top + 2 * j + 1, bottom + 2 * j, bottom + 2 * j + 1)
        let (a, b, c, d) = (image[ia], image[ib], image[ic], image[id])
        var best = a
        var index = ia
        index = b > best ? ib : index
        best = b > best ? b : best
        index = c > best ? ic : index
        best = c > best ? c : best
        index = d > best ? id : index
        best = d > best ? d : best
        if (a + b + c + d).isNaN {  // a NaN (or +∞ and −∞): the first NaN wins, as in PyTorch
          (best, index) =
            a.isNaN ? (a, ia) : b.isNaN ? (b, ib) : c.isNaN ? (c, ic) : d.isNaN ? (d, id) : (best, index)
        }
        y[i * outputWidth + j] = best
        argmax[i * outputWidth + j] = Int32(index)
      }
    }
  }

  /// The window geometry of a pooling op, checking PyTorch's limits on its arguments.
  private func poolingGeometry(kernelSize: Int, stride: Int?, padding: Int) -> WindowGeometry {
    precondition(rank == 4, "pooling needs [N, C, H, W], got \(shape)")
    let s = stride ?? kernelSize
    precondition(kernelSize >= 1 && s >= 1, "pooling needs kernel size and stride ≥ 1")
    precondition(
      padding >= 0 && padding <= kernelSize / 2,
      "pooling padding must be in 0...\(kernelSize / 2) for kernel size \(kernelSize), got \(padding)")
    return WindowGeometry(
      inputShape: shape, kernelHeight: kernelSize, kernelWidth: kernelSize, stride: s,
      padding: padding)
  }
}
