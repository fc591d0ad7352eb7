// Inverted dropout with a mask drawn from a caller-owned generator, so that a saved generator
// state replays the same mask (activation recomputation relies on it).

/// The rows of a batch this process computes, in data-parallel training: the batch has `rows`
/// rows and this process holds rows `offset ..< offset + n`. Random draws per element (dropout)
/// skip the draws of the other ranks' rows, so every rank's generator stays in step with a
/// single process's and the masks are those one process would draw for the whole batch.
public struct BatchShard: Sendable, Equatable {
  public var offset: Int
  public var rows: Int
  public init(offset: Int, rows: Int) {
    self.offset = offset
    self.rows = rows
  }

  @TaskLocal public static var current: BatchShard?
}

extension Tensor {
  /// Inverted dropout (`torch.nn.functional.dropout(x, p, training=True)`): each element is
  /// kept with probability 1 − p and scaled by 1/(1 − p), or set to 0, so the expectation is x:
  ///
  ///     y = x · mᵢ / (1 − p),  mᵢ = 1 if uᵢ ≥ p else 0
  ///
  /// where uᵢ = `generator.nextUniform()` drawn once per element in row-major order. The same
  /// generator state therefore gives the same mask. p = 0 draws nothing and returns a recorded
  /// identity. ∂ = g · mᵢ / (1 − p). Under a `BatchShard` (data-parallel training, the first
  /// dimension being the batch's), the draws of the rows before and after this shard's are made
  /// and discarded, so the mask is this shard's rows of the whole batch's.
  ///
  /// Shape: any → the same.
  public func dropout(probability p: Float, generator: inout SeededGenerator) -> Tensor {
    precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
    if p == 0 {
      return Tensor(shape: shape, storage: storage).recording([self]) { g in [g] }
    }
    let keptScale = 1 / (1 - p)
    var rng = generator  // a local copy stays in registers in the loop
    let shard = BatchShard.current.flatMap { shard -> (before: Int, after: Int)? in
      guard let rows = shape.first, rows > 0 || count == 0 else { return nil }
      let perRow = rows > 0 ? count / rows : 0
      return (shard.offset * perRow, max(0, shard.rows - shard.offset - rows) * perRow)
    }
    if let shard { for _ in 0..<shard.before { _ = rng.nextUniform() } }
    defer {
      if let shard {
        for _ in 0..<shard.after { _ = rng.nextUniform() }
        generator = rng
      }
    }
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
