// Batch normalisation as one fused op with its analytic gradient. Per-channel sums are
// accumulated in Double, so the statistics of large batches do not lose digits.

extension Tensor {
  /// Batch normalisation over the batch and spatial axes of each channel
  /// (`torch.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, training,
  /// momentum, eps)`):
  ///
  ///     y = γ · (x − μ) / √(σ² + ε) + β
  ///
  /// - training: μ and σ² are the mean and biased variance of the channel over the batch
  ///   (m = N·H·W values, m > 1), and the running statistics are updated in place, without
  ///   recording, as running = (1 − momentum)·running + momentum·batch, using the unbiased
  ///   variance σ²·m/(m − 1) for `runningVariance`.
  /// - evaluation: μ and σ² are `runningMean` and `runningVariance`.
  ///
  /// Gradient, with x̂ = (x − μ)/√(σ² + ε) and sums over the m values of a channel:
  /// ∂β = Σ g, ∂γ = Σ g·x̂, and ∂x = γ/√(σ² + ε) · (g − ∂β/m − x̂·∂γ/m) in training
  /// (μ and σ² depend on x), ∂x = γ/√(σ² + ε) · g in evaluation. The running statistics
  /// receive no gradient.
  ///
  /// Shape:
  /// - self: `[N, C]` or `[N, C, H, W]`
  /// - weight (γ), bias (β), runningMean, runningVariance: `[C]`
  /// - result: the shape of self
  public func batchNorm(
    weight: Tensor, bias: Tensor, runningMean: Tensor, runningVariance: Tensor, training: Bool,
    momentum: Float = 0.1, epsilon: Float = 1e-5
  ) -> Tensor {
    precondition(rank == 2 || rank == 4, "batchNorm needs [N, C] or [N, C, H, W], got \(shape)")
    let (batch, channels) = (shape[0], shape[1])
    let spatial = rank == 4 ? shape[2] * shape[3] : 1
    for (name, t) in [
      ("weight", weight), ("bias", bias), ("runningMean", runningMean),
      ("runningVariance", runningVariance),
    ] {
      precondition(t.shape == [channels], "batchNorm \(name) must be [\(channels)], got \(t.shape)")
    }
    let m = batch * spatial  // values per channel

    // μ and 1/√(σ² + ε) per channel.
    var mean = [Float](repeating: 0, count: channels)
    var inverseStd = [Float](repeating: 0, count: channels)
    if training {
      precondition(m > 1, "batchNorm in training needs more than one value per channel, got \(shape)")
      var sums = [Double](repeating: 0, count: channels)
      var squares = [Double](repeating: 0, count: channels)
      storage.withUnsafeBufferPointer { x in
        for n in 0..<batch {
          for c in 0..<channels {
            let base = (n * channels + c) * spatial
            var total = 0.0
            for q in 0..<spatial { total += Double(x[base + q]) }
            sums[c] += total
          }
        }
        for c in 0..<channels { mean[c] = Float(sums[c] / Double(m)) }
        // Second pass about the mean: no cancellation of E[x²] − E[x]².
        for n in 0..<batch {
          for c in 0..<channels {
            let base = (n * channels + c) * spatial
            let mu = Double(sums[c] / Double(m))
            var total = 0.0
            for q in 0..<spatial {
              let d = Double(x[base + q]) - mu
              total += d * d
            }
            squares[c] += total
          }
        }
      }
      runningMean.storage.withUnsafeMutableBufferPointer { rm in
        runningVariance.storage.withUnsafeMutableBufferPointer { rv in
          for c in 0..<channels {
            let variance = squares[c] / Double(m)
            inverseStd[c] = Float(1 / (variance + Double(epsilon)).squareRoot())
            let unbiased = Float(squares[c] / Double(m - 1))
            rm[c] = (1 - momentum) * rm[c] + momentum * mean[c]
            rv[c] = (1 - momentum) * rv[c] + momentum * unbiased
          }
        }
      }
    } else {
      for c in 0..<channels {
        mean[c] = runningMean.storage[c]
        inverseStd[c] = 1 / (runningVariance.storage[c] + epsilon).squareRoot()
      }
    }

    // y = γ·x̂ + β = scale·x + shift per channel.
    let out = Tensor(shape: shape) { out in
      storage.withUnsafeBufferPointer { x in
        weight.storage.withUnsafeBufferPointer { gamma in
          bias.storage.withUnsafeBufferPointer { beta in
            for n in 0..<batch {
              for c in 0..<channels {
                let base = (n * channels + c) * spatial
                let scale = gamma[c] * inverseStd[c]
                let shift = beta[c] - mean[c] * scale
                for q in 0..<spatial { out[base + q] = x[base + q] * scale + shift }
              }
            }
          }
        }
      }
    }

    return out.recording([self, weight, bias]) { g in
      // ∂β = Σ g and ∂γ = Σ g·x̂ per channel, with x̂ recomputed from x.
      var gradBeta = [Double](repeating: 0, count: channels)
      var gradGamma = [Double](repeating: 0, count: channels)
      self.storage.withUnsafeBufferPointer { x in
        g.storage.withUnsafeBufferPointer { gp in
          for n in 0..<batch {
            for c in 0..<channels {
              let base = (n * channels + c) * spatial
              let (mu, invStd) = (mean[c], inverseStd[c])
              var (sumG, sumGX) = (0.0, 0.0)
              for q in 0..<spatial {
                let gq = Double(gp[base + q])
                sumG += gq
                sumGX += gq * Double((x[base + q] - mu) * invStd)
              }
              gradBeta[c] += sumG
              gradGamma[c] += sumGX
            }
          }
        }
      }
      var gradInput: Tensor?
      if self.requiresGrad {
        gradInput = Tensor(shape: self.shape) { dx in
          self.storage.withUnsafeBufferPointer { x in
            g.storage.withUnsafeBufferPointer { gp in
              weight.storage.withUnsafeBufferPointer { gamma in
                for n in 0..<batch {
                  for c in 0..<channels {
                    let base = (n * channels + c) * spatial
                    let (mu, invStd) = (mean[c], inverseStd[c])
                    let scale = gamma[c] * invStd
                    if training {
                      let meanG = Float(gradBeta[c] / Double(m))
                      let meanGX = Float(gradGamma[c] / Double(m))
                      for q in 0..<spatial {
                        let xHat = (x[base + q] - mu) * invStd
                        dx[base + q] = scale * (gp[base + q] - meanG - xHat * meanGX)
                      }
                    } else {
                      for q in 0..<spatial { dx[base + q] = scale * gp[base + q] }
                    }
                  }
                }
              }
            }
          }
        }
      }
      return [
        gradInput,
        weight.requiresGrad ? Tensor(shape: [channels], storage: gradGamma.map { Float($0) }) : nil,
        bias.requiresGrad ? Tensor(shape: [channels], storage: gradBeta.map { Float($0) }) : nil,
      ]
    }
  }
}
