import RealModule

/// swift-distill's own seeded random number generator: xoshiro256** (Blackman and Vigna, 2018),
/// its state filled from the seed by SplitMix64. Pure integer arithmetic, so a seed gives the
/// same numbers on every machine and every OS, which `SystemRandomNumberGenerator` does not.
///
/// - `nextUniform()` gives a `Float` in [0, 1) from the top 24 bits of one output.
/// - `nextNormal()` gives a standard normal `Float` by the Box–Muller transform, computed in
///   `Double` from two outputs (one pair of outputs per value; no cached second value, so the
///   state alone determines what comes next).
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
  /// The four 64-bit words of xoshiro256** state; saved in checkpoints to resume the stream.
  public var state: (UInt64, UInt64, UInt64, UInt64)

  /// Creates a generator whose state is the first four outputs of SplitMix64 seeded with `seed`.
  public init(seed: UInt64) {
    var s = seed
    func splitMix() -> UInt64 {
      s &+= 0x9E37_79B9_7F4A_7C15
      var z = s
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    state = (splitMix(), splitMix(), splitMix(), splitMix())
  }

  /// Restores a generator from a saved state.
  public init(state: (UInt64, UInt64, UInt64, UInt64)) { self.state = state }

  public static func == (a: SeededGenerator, b: SeededGenerator) -> Bool {
    a.state.0 == b.state.0 && a.state.1 == b.state.1 && a.state.2 == b.state.2
      && a.state.3 == b.state.3
  }

  @inline(__always) private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
    (x << k) | (x >> (64 - k))
  }

  /// The next 64 random bits.
  public mutating func next() -> UInt64 {
    let result = Self.rotl(state.1 &* 5, 7) &* 9
    let t = state.1 << 17
    state.2 ^= state.0
    state.3 ^= state.1
    state.1 ^= state.2
    state.0 ^= state.3
    state.2 ^= t
    state.3 = Self.rotl(state.3, 45)
    return result
  }

  /// A `Float` uniformly distributed in [0, 1), with 24 random bits.
  public mutating func nextUniform() -> Float {
    Float(next() >> 40) * (1.0 / 16_777_216.0)
  }

  /// A `Float` uniformly distributed in [low, high).
  public mutating func nextUniform(in low: Float, _ high: Float) -> Float {
    low + (high - low) * nextUniform()
  }

  /// A standard normal `Float` (mean 0, standard deviation 1), by Box–Muller.
  public mutating func nextNormal() -> Float {
    // u1 in (0, 1] so that log(u1) is finite.
    let u1 = (Double(next() >> 11) + 1) * (1.0 / 9_007_199_254_740_992.0)
    let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    return Float((-2 * Double.log(u1)).squareRoot() * Double.cos(2 * Double.pi * u2))
  }

  /// An integer uniformly distributed in 0..<bound, without modulo bias (Lemire's method).
  public mutating func nextInt(below bound: Int) -> Int {
    precondition(bound > 0)
    let b = UInt64(bound)
    var m = next().multipliedFullWidth(by: b)
    if m.low < b {
      let threshold = (0 &- b) % b
      while m.low < threshold { m = next().multipliedFullWidth(by: b) }
    }
    return Int(m.high)
  }
}

extension Tensor {
  /// A tensor of independent uniform values in [low, high), drawn in row-major order.
  public static func uniform(
    _ shape: [Int], low: Float = 0, high: Float = 1, generator: inout SeededGenerator,
    requiresGrad: Bool = false
  ) -> Tensor {
    let t = Tensor(shape: shape) { buffer in
      for i in buffer.indices { buffer[i] = generator.nextUniform(in: low, high) }
    }
    t.requiresGrad = requiresGrad
    return t
  }

  /// A tensor of independent normal values with the given mean and standard deviation.
  public static func normal(
    _ shape: [Int], mean: Float = 0, std: Float = 1, generator: inout SeededGenerator,
    requiresGrad: Bool = false
  ) -> Tensor {
    let t = Tensor(shape: shape) { buffer in
      for i in buffer.indices { buffer[i] = mean + std * generator.nextNormal() }
    }
    t.requiresGrad = requiresGrad
    return t
  }
}
