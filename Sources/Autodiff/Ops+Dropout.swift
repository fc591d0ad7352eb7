// Inverted dropout with a mask drawn from a caller-owned generator, so that a saved generator
// state replays the same mask (activation recomputation relies on it).

extension Tensor {
  /// Inverted dropout (`torch.nn.functional.dropout(x, p, training=True)`): each element is
  /// kept with probability 1 − p and scaled by 1/(1 − p), or set to 0, so the expectation is x:
  ///
  ///     y = x · mᵢ / (1 − p),  mᵢ = 1 if uᵢ ≥ p else 0
  ///
  /// where uᵢ = `generator.nextUniform()` drawn once per element in row-major order. The same
  /// generator state therefore gives the same mask. p = 0 draws nothing and returns a recorded
  /// identity. ∂ = g · mᵢ / (1 − p).
  ///
  /// Shape: any → the same.
  public func dropout(probability p: Float, generator: inout SeededGenerator) -> Tensor {
    precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
    if p == 0 {
      return Tensor(shape: shape, storage: storage).recording([self]) { g in [g] }
    }
    let keptScale = 1 / (1 - p)
    var rng = generator  // a local copy stays in registers in the loop
    // The factor each element is multiplied by: 1/(1 − p) where kept, 0 where dropped.
    let factors = [Float](unsafeUninitializedCapacity: count) { f, initialized in
      for i in 0..<f.count { f[i] = rng.nextUniform() >= p ? keptScale : 0 }
      initialized = f.count
    }
    generator = rng
    let out = Tensor(shape: shape) { out in
      storage.withUnsafeBufferPointer { x in
        factors.withUnsafeBufferPointer { f in
          for i in 0..<out.count { out[i] = x[i] * f[i] }
        }
      }
    }
    return out.recording([self], savedBytes: factors.count * 4) { g in
      [
        Tensor(shape: g.shape) { dx in
          g.storage.withUnsafeBufferPointer { gp in
            factors.withUnsafeBufferPointer { f in
              for i in 0..<dx.count { dx[i] = gp[i] * f[i] }
            }
          }
        }
      ]
    }
  }
}
