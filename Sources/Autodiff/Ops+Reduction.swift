// Sums and means over axes. The gradient of a reduction repeats the output gradient along the
// reduced axes (the adjoint of summing is broadcasting).

extension Tensor {
  /// The sum over `axes` (all axes when empty). With `keepingDimensions`, reduced axes stay
  /// with extent 1, like `torch.sum(x, dim, keepdim=True)`.
  ///
  /// Shape: `[d0, …, dn]` → the same with the reduced axes removed (or set to 1).
  public func sum(alongAxes axes: [Int] = [], keepingDimensions: Bool = false) -> Tensor {
    let reduced = Set(normalizedAxes(axes))
    let keptShape = shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
    let outShape =
      keepingDimensions ? keptShape : shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
    // A new tensor even when nothing is reduced: `summed` returns `self` then, and the
    // result must not be the input itself.
    let out = Tensor(shape: outShape, storage: summed(toShape: keptShape).storage)
    let inputShape = shape
    return out.recording([self], half: .never) { g in
      let kept = Tensor(shape: keptShape, storage: g.storage)
      return [kept.broadcast(toShape: inputShape)]
    }
  }

  /// The sum along one axis.
  public func sum(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
    sum(alongAxes: [axis], keepingDimensions: keepingDimensions)
  }

  /// The mean over `axes` (all axes when empty): the sum divided by the number of elements
  /// reduced.
  public func mean(alongAxes axes: [Int] = [], keepingDimensions: Bool = false) -> Tensor {
    let reduced = normalizedAxes(axes)
    let n = reduced.reduce(1) { $0 * shape[$1] }
    return sum(alongAxes: reduced, keepingDimensions: keepingDimensions) * (1 / Float(n))
  }

  /// The mean along one axis.
  public func mean(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
    mean(alongAxes: [axis], keepingDimensions: keepingDimensions)
  }

  /// Axes made non-negative (−1 is the last) and sorted; all axes when `axes` is empty.
  func normalizedAxes(_ axes: [Int]) -> [Int] {
    if axes.isEmpty { return Array(0..<rank) }
    return Set(
      axes.map { axis in
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "axis \(axis) out of range for shape \(shape)")
        return a
      }
    ).sorted()
  }
}
