/// A dense, row-major, contiguous array of `Float` with a shape, that can take part in
/// reverse-mode automatic differentiation.
///
/// A tensor created by an operation on inputs that require gradients records that operation
/// (see `Graph.swift`); calling `backward()` on a scalar result fills `grad` on every leaf
/// tensor that has `requiresGrad == true`. Gradients accumulate across calls until `zeroGrad()`.
///
/// `Tensor` is a reference type: layers hold their parameters and optimizers update them in
/// place, like `torch.nn.Parameter`.
///
/// Shape: any rank; a scalar has shape `[]` and one element.
public final class Tensor {
  /// The extent of each dimension, outermost first.
  public private(set) var shape: [Int]
  /// The elements in row-major order; `storage.count == shape.reduce(1, *)`.
  ///
  /// A tensor stored in half precision (`isHalf`, see `Tensor+HalfStorage.swift`) keeps only
  /// its binary16 bits: reading `storage` then widens them into a temporary `[Float]` that
  /// lives only as long as the access (`t.storage.withUnsafeBufferPointer { … }` converts once,
  /// for the closure); writing `storage`, or mutating it in place, stores Float again.
  public var storage: [Float] {
    _read {
      if let bits = halfBits { yield HalfPrecision.floats(fromHalfBits: bits) } else { yield floats }
    }
    set {
      floats = newValue
      halfBits = nil
    }
    _modify {
      if let bits = halfBits {
        floats = HalfPrecision.floats(fromHalfBits: bits)
        halfBits = nil
      }
      yield &floats
    }
  }
  /// The Float elements; empty while the tensor is stored in half precision.
  @usableFromInline var floats: [Float]
  /// The binary16 bit patterns of the elements while the tensor is stored in half precision.
  @usableFromInline var halfBits: [UInt16]?
  /// Whether operations on this tensor are recorded so that gradients flow back to it.
  public var requiresGrad: Bool
  /// The accumulated gradient of the last `backward()` calls, same shape as the tensor.
  public var grad: Tensor? {
    didSet {
      if let grad, grad.countedBytes != 0, !grad.countedAsGradient {
        grad.countedAsGradient = true
        TensorMemory.becameGradient(bytes: grad.countedBytes)
      }
    }
  }
  /// The recorded operation that produced this tensor; `nil` for leaves and untracked results.
  var node: Node?
  /// Bytes counted by `TensorMemory` at creation (0 when it was not counting), and whether they
  /// are counted as a leaf's gradient.
  private var countedBytes = 0
  private var countedAsGradient = false

  /// Creates a tensor from its elements, which must number `shape.reduce(1, *)`.
  public init(shape: [Int], storage: [Float], requiresGrad: Bool = false) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
    precondition(
      storage.count == shape.reduce(1, *),
      "shape \(shape) needs \(shape.reduce(1, *)) elements, got \(storage.count)")
    self.shape = shape
    self.floats = storage
    self.halfBits = nil
    self.requiresGrad = requiresGrad
    countedBytes = TensorMemory.created(elements: storage.count)
  }

  /// Creates a tensor stored in half precision from binary16 bit patterns, which must number
  /// `shape.reduce(1, *)` (see `Tensor+HalfStorage.swift`).
  public init(shape: [Int], halfBits bits: [UInt16], requiresGrad: Bool = false) {
    precondition(
      bits.count == shape.reduce(1, *),
      "shape \(shape) needs \(shape.reduce(1, *)) elements, got \(bits.count)")
    self.shape = shape
    self.floats = []
    self.halfBits = bits
    self.requiresGrad = requiresGrad
    countedBytes = TensorMemory.created(elements: bits.count, bytesPerElement: 2)
  }

  deinit {
    if countedBytes != 0 { TensorMemory.freed(bytes: countedBytes, asGradient: countedAsGradient) }
    TensorBufferPool.give(floats)
  }

  /// Creates a tensor of the given shape with every element equal to `value`.
  public convenience init(repeating value: Float, shape: [Int], requiresGrad: Bool = false) {
    self.init(
      shape: shape, storage: TensorBufferPool.array(repeating: value, count: shape.reduce(1, *)),
      requiresGrad: requiresGrad)
  }

  /// A tensor of zeros.
  public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
    Tensor(repeating: 0, shape: shape, requiresGrad: requiresGrad)
  }

  /// A tensor of ones.
  public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
    Tensor(repeating: 1, shape: shape, requiresGrad: requiresGrad)
  }

  /// A scalar (shape `[]`).
  public convenience init(_ value: Float, requiresGrad: Bool = false) {
    self.init(shape: [], storage: [value], requiresGrad: requiresGrad)
  }

  /// Creates a tensor whose storage is written by `initializer`, without zero-filling first
  /// (in a buffer of a freed tensor when `TensorBufferPool` keeps one of this size).
  /// `initializer` must write every one of the `shape.reduce(1, *)` elements.
  public convenience init(
    shape: [Int], uninitialized initializer: (UnsafeMutableBufferPointer<Float>) -> Void
  ) {
    self.init(shape: shape, storage: TensorBufferPool.array(count: shape.reduce(1, *), initializer))
  }

  /// The number of elements.
  @inlinable public var count: Int { halfBits?.count ?? floats.count }
  /// The number of dimensions.
  public var rank: Int { shape.count }

  /// The value of a one-element tensor.
  public var scalar: Float {
    precondition(count == 1, "scalar of a tensor with shape \(shape)")
    return storage[0]
  }

  /// The element at a multi-dimensional index (slow; for tests and inspection).
  public subscript(_ index: Int...) -> Float {
    get { storage[flatIndex(index)] }
    set { storage[flatIndex(index)] = newValue }
  }

  private func flatIndex(_ index: [Int]) -> Int {
    precondition(index.count == shape.count, "index \(index) for shape \(shape)")
    var flat = 0
    for (i, d) in zip(index, shape) {
      precondition(i >= 0 && i < d, "index \(index) out of range for shape \(shape)")
      flat = flat * d + i
    }
    return flat
  }

  /// A new tensor with the same elements and shape that records nothing and needs no gradient.
  public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

  /// Forgets the accumulated gradient (PyTorch's `zero_grad(set_to_none=True)`).
  public func zeroGrad() { grad = nil }

  /// Replaces the shape of a tensor in place, keeping its elements (used by layers that own
  /// buffers; operations use `reshaped(_:)`, which records a gradient).
  public func setShape(_ newShape: [Int]) {
    precondition(newShape.reduce(1, *) == count, "cannot view \(shape) as \(newShape)")
    shape = newShape
  }
}

extension Tensor: CustomStringConvertible {
  public var description: String {
    let shown = storage.prefix(8).map { String($0) }.joined(separator: ", ")
    return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
  }
}

/// Row-major strides of a shape: the distance in elements between neighbours along each axis.
@inlinable func contiguousStrides(_ shape: [Int]) -> [Int] {
  var strides = [Int](repeating: 1, count: shape.count)
  var step = 1
  for axis in stride(from: shape.count - 1, through: 0, by: -1) {
    strides[axis] = step
    step *= shape[axis]
  }
  return strides
}
