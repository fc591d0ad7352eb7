/// NumPy/PyTorch broadcasting: shapes are aligned at their last axes; an axis of extent 1 (or a
/// missing leading axis) stretches to match the other. `[N, C] + [C]` adds a bias to every row;
/// `[N, C, H, W] * [1, C, 1, 1]` scales each channel.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
  let rank = max(a.count, b.count)
  var out = [Int](repeating: 1, count: rank)
  for i in 0..<rank {
    let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
    let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
    precondition(da == db || da == 1 || db == 1, "shapes \(a) and \(b) do not broadcast")
    out[i] = max(da, db)
  }
  return out
}

/// Strides for reading a tensor of `shape` as if it had `target` shape: 0 along stretched axes.
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
  let contiguous = contiguousStrides(shape)
  let offset = target.count - shape.count
  return (0..<target.count).map { i in
    i < offset || (shape[i - offset] == 1 && target[i] != 1) ? 0 : contiguous[i - offset]
  }
}

/// A function of two `Float`s applied elementwise; generic code over it is specialised into a
/// plain loop per function.
protocol BinaryFunction {
  static func apply(_ a: Float, _ b: Float) -> Float
}

enum AddFunction: BinaryFunction {
  @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b }
}
enum SubtractFunction: BinaryFunction {
  @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b }
}
enum MultiplyFunction: BinaryFunction {
  @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b }
}
enum DivideFunction: BinaryFunction {
  @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b }
}

/// `F(a, b)` over the broadcast shape of `a` and `b`, recording nothing.
func broadcastApply<F: BinaryFunction>(_ a: Tensor, _ b: Tensor, _: F.Type) -> Tensor {
  let outShape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape)
  return Tensor(shape: outShape) { out in
    a.storage.withUnsafeBufferPointer { pa in
      b.storage.withUnsafeBufferPointer { pb in
        if a.count == out.count && b.count == out.count {  // same shape
          for i in 0..<out.count { out[i] = F.apply(pa[i], pb[i]) }
        } else if b.count == 1 {
          let y = pb[0]
          for i in 0..<out.count { out[i] = F.apply(pa[i], y) }
        } else if a.count == 1 {
          let x = pa[0]
          for i in 0..<out.count { out[i] = F.apply(x, pb[i]) }
        } else if a.count == out.count && out.count % b.count == 0
          && Array(a.shape.suffix(b.shape.count)) == b.shape
        {  // b repeats along leading axes: a bias over rows
          // Row slices as buffer pointers: the inner loop indexes with `j` alone, so it carries no
          // overflow check and vectorises (row × inner < out.count, checked by the condition).
          let inner = b.count
          for row in 0..<(out.count / inner) {
            let rowOut = UnsafeMutableBufferPointer(rebasing: out[(row * inner)..<((row + 1) * inner)])
            let rowA = UnsafeBufferPointer(rebasing: pa[(row * inner)..<((row + 1) * inner)])
            for j in 0..<inner { rowOut[j] = F.apply(rowA[j], pb[j]) }
          }
        } else if a.count == out.count, let block = Tensor.trailingBlock(of: outShape, summedTo: b.shape) {
          // b repeats along trailing axes ([n, C, HW] and [n, C, 1]): one value per block of a.
          for t in 0..<b.count {
            let blockOut = UnsafeMutableBufferPointer(rebasing: out[(t * block)..<((t + 1) * block)])
            let blockA = UnsafeBufferPointer(rebasing: pa[(t * block)..<((t + 1) * block)])
            let y = pb[t]
            for j in 0..<block { blockOut[j] = F.apply(blockA[j], y) }
          }
        } else {
          stridedApply(
            outShape, broadcastStrides(a.shape, to: outShape), broadcastStrides(b.shape, to: outShape)
          ) { o, ia, ib in out[o] = F.apply(pa[ia], pb[ib]) }
        }
      }
    }
  }
}

/// Walks every index of `shape` in row-major order, passing the flat output index and the flat
/// offsets into two inputs with the given strides. The general (slow) path of broadcasting.
func stridedApply(
  _ shape: [Int], _ stridesA: [Int], _ stridesB: [Int], _ body: (Int, Int, Int) -> Void
) {
  let total = shape.reduce(1, *)
  guard total > 0 else { return }
  let rank = shape.count
  if rank == 0 {
    body(0, 0, 0)
    return
  }
  var index = [Int](repeating: 0, count: rank)
  var offA = 0
  var offB = 0
  let inner = shape[rank - 1]
  let innerA = stridesA[rank - 1]
  let innerB = stridesB[rank - 1]
  var o = 0
  while o < total {
    for j in 0..<inner { body(o + j, offA + j * innerA, offB + j * innerB) }
    o += inner
    // Advance the odometer over the outer axes.
    var axis = rank - 2
    while axis >= 0 {
      index[axis] += 1
      offA += stridesA[axis]
      offB += stridesB[axis]
      if index[axis] < shape[axis] { break }
      offA -= stridesA[axis] * shape[axis]
      offB -= stridesB[axis] * shape[axis]
      index[axis] = 0
      axis -= 1
    }
  }
}

extension Tensor {
  /// Sums this tensor (a gradient of broadcast shape) down to `target`, the shape of the input
  /// that was broadcast: the adjoint of broadcasting. Records nothing.
  func summed(toShape target: [Int]) -> Tensor {
    if shape == target { return self }
    let targetCount = target.reduce(1, *)
    var result = TensorBufferPool.array(repeating: 0, count: targetCount)
    storage.withUnsafeBufferPointer { g in
      result.withUnsafeMutableBufferPointer { r in
        if targetCount == 1 {
          var s: Float = 0
          for i in 0..<g.count { s += g[i] }
          r[0] = s
        } else if Array(shape.suffix(target.count)) == target {  // sum over leading axes
          for row in 0..<(g.count / targetCount) {  // row slices, as in `broadcastApply`
            let rowG = UnsafeBufferPointer(rebasing: g[(row * targetCount)..<((row + 1) * targetCount)])
            for j in 0..<targetCount { r[j] += rowG[j] }
          }
        } else if let block = Self.trailingBlock(of: shape, summedTo: target) {
          // Sums over trailing axes ([n, C, HW] → [n, C, 1]): one contiguous block per result.
          for t in 0..<targetCount {
            let rowG = UnsafeBufferPointer(rebasing: g[(t * block)..<((t + 1) * block)])
            var sum: Float = 0
            for j in 0..<block { sum += rowG[j] }
            r[t] = sum
          }
        } else {
          let strides = broadcastStrides(target, to: shape)
          stridedApply(shape, strides, strides) { o, t, _ in r[t] += g[o] }
        }
      }
    }
    return Tensor(shape: target, storage: result)
  }

  /// The size of the blocks summed when `target` keeps `shape`'s leading axes and is 1 on all the
  /// trailing ones it reduces (`[n, C, HW]` → `[n, C, 1]` or `[n, C]`… with left-padding as in
  /// broadcasting); nil for any other reduction.
  static func trailingBlock(of shape: [Int], summedTo target: [Int]) -> Int? {
    guard target.count <= shape.count else { return nil }
    let padded = [Int](repeating: 1, count: shape.count - target.count) + target
    // Axes up to the last non-1 of the target are kept, the rest summed.
    let kept = (padded.lastIndex { $0 != 1 } ?? -1) + 1
    guard padded[..<kept] == shape[..<kept] else { return nil }
    return shape[kept...].reduce(1, *)
  }

  /// This tensor repeated along stretched axes to `target` shape: broadcasting itself, and the
  /// adjoint of `summed(toShape:)`. Records nothing.
  func broadcast(toShape target: [Int]) -> Tensor {
    if shape == target { return self }
    return broadcastApply(Tensor.zeros(target), self, AddFunction.self)
  }
}
