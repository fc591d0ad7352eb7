// Operations that move elements without changing their values.

extension Tensor {
  /// The same elements viewed with another shape of equal element count (`torch.reshape`).
  /// One axis may be −1, inferred from the others. ∂ = g reshaped back.
  public func reshaped(_ newShape: [Int]) -> Tensor {
    var resolved = newShape
    if let unknown = newShape.firstIndex(of: -1) {
      let known = newShape.enumerated().filter { $0.offset != unknown }.reduce(1) { $0 * $1.element }
      precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
      resolved[unknown] = count / known
    }
    precondition(resolved.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
    let inputShape = shape
    return sharingElements(shape: resolved).recording([self]) { g in
      [Tensor(shape: inputShape, storage: g.storage)]
    }
  }

  /// Keeps the first axis and flattens the rest: `[N, d1, …, dn]` → `[N, d1·…·dn]`
  /// (`torch.flatten(x, 1)`).
  public func flattened() -> Tensor {
    precondition(rank >= 1, "flatten needs a batch axis")
    return reshaped([shape[0], count / Swift.max(shape[0], 1)])
  }

  /// The transpose of a 2-D tensor. ∂ = gᵀ.
  public func transposed() -> Tensor {
    precondition(rank == 2, "transposed() needs a 2-D tensor, got \(shape)")
    return permuted([1, 0])
  }

  /// The axes reordered: axis i of the result is axis `axes[i]` of this tensor
  /// (`torch.permute`). ∂ = g permuted by the inverse order.
  public func permuted(_ axes: [Int]) -> Tensor {
    precondition(axes.sorted() == Array(0..<rank), "\(axes) is not a permutation of \(rank) axes")
    let out = permutedCopy(axes)
    var inverse = [Int](repeating: 0, count: rank)
    for (i, a) in axes.enumerated() { inverse[a] = i }
    return out.recording([self]) { g in [g.permutedCopy(inverse)] }
  }

  /// The axes reordered, recording nothing.
  func permutedCopy(_ axes: [Int]) -> Tensor {
    let outShape = axes.map { shape[$0] }
    let inStrides = contiguousStrides(shape)
    let strides = axes.map { inStrides[$0] }
    return Tensor(shape: outShape) { out in
      storage.withUnsafeBufferPointer { x in
        stridedApply(outShape, strides, strides) { o, i, _ in out[o] = x[i] }
      }
    }
  }

  /// Tensors joined along `axis`; all other extents must agree (`torch.cat`). ∂ = the matching
  /// slice of g for each input.
  public static func concatenate(_ tensors: [Tensor], alongAxis axis: Int = 0) -> Tensor {
    precondition(!tensors.isEmpty, "concatenate needs at least one tensor")
    let first = tensors[0]
    let ax = axis < 0 ? axis + first.rank : axis
    for t in tensors {
      precondition(
        t.rank == first.rank
          && (0..<t.rank).allSatisfy { $0 == ax || t.shape[$0] == first.shape[$0] },
        "cannot concatenate \(t.shape) with \(first.shape) along axis \(axis)")
    }
    let outer = first.shape[..<ax].reduce(1, *)
    let inner = first.shape[(ax + 1)...].reduce(1, *)
    let widths = tensors.map { $0.shape[ax] * inner }
    let total = widths.reduce(0, +)
    var outShape = first.shape
    outShape[ax] = tensors.reduce(0) { $0 + $1.shape[ax] }
    let out = Tensor(shape: outShape) { out in
      var offset = 0
      for (t, w) in zip(tensors, widths) {
        t.storage.withUnsafeBufferPointer { x in
          for o in 0..<outer {
            for j in 0..<w { out[o * total + offset + j] = x[o * w + j] }
          }
        }
        offset += w
      }
    }
    return out.recording(tensors) { g in
      var offset = 0
      return zip(tensors, widths).map { t, w in
        defer { offset += w }
        guard t.requiresGrad else { return nil }
        return Tensor(shape: t.shape) { dx in
          g.storage.withUnsafeBufferPointer { gp in
            for o in 0..<outer {
              for j in 0..<w { dx[o * w + j] = gp[o * total + offset + j] }
            }
          }
        }
      }
    }
  }
}

extension Tensor {
  /// For a `[B, N]` tensor, `count` entries of each row picked by `indices` (`B · count` column
  /// positions, row-major): out[b, k] = x[b, indices[b·count + k]], `[B, count]`
  /// (`torch.gather(x, 1, index)`). ∂ scatters g back, adding where a column is picked twice.
  public func gatheredColumns(_ indices: [Int], count: Int) -> Tensor {
    precondition(rank == 2 && indices.count == shape[0] * count, "gatheredColumns: \(indices.count) indices for \(shape)")
    let (rows, columns) = (shape[0], shape[1])
    precondition(indices.allSatisfy { $0 >= 0 && $0 < columns }, "gatheredColumns: an index outside 0..<\(columns)")
    let x = storage
    var out = [Float](repeating: 0, count: rows * count)
    for b in 0..<rows {
      for k in 0..<count { out[b * count + k] = x[b * columns + indices[b * count + k]] }
    }
    return Tensor(shape: [rows, count], storage: out).recording([self], half: .never) { g in
      var gradient = [Float](repeating: 0, count: rows * columns)
      let gv = g.storage
      for b in 0..<rows {
        for k in 0..<count { gradient[b * columns + indices[b * count + k]] += gv[b * count + k] }
      }
      return [Tensor(shape: [rows, columns], storage: gradient)]
    }
  }
}
