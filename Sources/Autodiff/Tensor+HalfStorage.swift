// Half-precision storage of tensors, for mixed-precision training (Micikevicius et al., 2018):
// a tensor may keep its elements as IEEE binary16 bits (2 bytes each) instead of Float. Ops
// read every tensor through `storage`, which widens half elements into a temporary Float array
// for the duration of the access, so every product and sum still runs, and accumulates, in
// Float; only what a tensor keeps between ops is half.

extension Tensor {
  /// Whether the elements are held as binary16 (2 bytes each) rather than Float.
  public var isHalf: Bool { halfBits != nil }

  /// The binary16 bit patterns of a tensor stored in half precision; nil for a Float tensor.
  public var halfStorage: [UInt16]? { halfBits }

  /// Bytes the elements occupy: 2 per element in half precision, 4 in Float.
  public var storageBytes: Int { count * (isHalf ? 2 : 4) }

  /// Rounds the elements to binary16 (nearest, ties to even; beyond ±65504 → ±∞) and keeps
  /// only those bits (`tensor.half()` in PyTorch, in place). A no-op when already half.
  public func storeAsHalf() {
    guard halfBits == nil else { return }
    halfBits = HalfPrecision.halfBits(from: floats)
    floats = []
  }

  /// Replaces the elements by `bits`, binary16 bit patterns in row-major order.
  public func setHalfStorage(_ bits: [UInt16]) {
    precondition(bits.count == count, "\(bits.count) half values for shape \(shape)")
    halfBits = bits
    floats = []
  }

  /// Widens the elements back to Float storage (exact). A no-op for a Float tensor.
  public func storeAsFloat() {
    guard let bits = halfBits else { return }
    floats = HalfPrecision.floats(fromHalfBits: bits)
    halfBits = nil
  }

  /// A new tensor of `shape` sharing this tensor's elements, Float or half, without
  /// converting them (arrays are copied on write, so no element is copied here either).
  func sharingElements(shape newShape: [Int]) -> Tensor {
    guard let bits = halfBits else { return Tensor(shape: newShape, storage: floats) }
    return Tensor(shape: newShape, halfBits: bits)
  }

  /// The start of the element buffer (shared by tensors that share elements) and its size in
  /// bytes; a nil start for an empty tensor.
  var elementBuffer: (start: UnsafeRawPointer?, bytes: Int) {
    if let bits = halfBits {
      return (bits.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }, bits.count * 2)
    }
    return (floats.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }, floats.count * 4)
  }
}

/// Mixed-precision training's switch (the role of `torch.autocast`): while it is on, the result
/// of every recorded op is stored according to its `HalfOutput` policy, so the activations a
/// graph keeps for the backward pass occupy 2 bytes per element. Gradients are never half:
/// the backward pass records nothing.
public enum MixedPrecision {
  @TaskLocal static var isEnabled = false

  /// Whether recorded results are being stored in half precision here.
  public static var isActive: Bool { isEnabled }
}

/// Runs `body` with mixed precision on (when `enabled`): recorded results of products
/// (matmul, conv2d) are stored as binary16, elementwise results of half inputs stay half, and
/// reductions, exponentials, logarithms and softmax give Float, as autocast's op lists do.
public func withMixedPrecision<R>(_ enabled: Bool = true, _ body: () throws -> R) rethrows -> R {
  try MixedPrecision.$isEnabled.withValue(enabled) { try body() }
}

/// How a recorded op's result is stored under mixed precision.
enum HalfOutput {
  /// Half whenever mixed precision is on (products: matmul, conv2d; autocast's float16 list).
  case always
  /// Half when every tensor input is half (elementwise ops, pooling, shape ops, batch norm).
  case promote
  /// Always Float (sums, exp, log, softmax, division; autocast's float32 list).
  case never
}
