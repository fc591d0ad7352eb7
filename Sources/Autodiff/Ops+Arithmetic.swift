// Elementwise arithmetic with broadcasting. Each op computes its output and records, right
// there, the vector-Jacobian product: the output gradient mapped back to each input's shape.

extension Tensor {
  /// `a + b` with broadcasting. ∂/∂a = g, ∂/∂b = g, each summed back to its input's shape.
  public static func + (a: Tensor, b: Tensor) -> Tensor {
    broadcastApply(a, b, AddFunction.self).recording([a, b]) { g in
      [g.summed(toShape: a.shape), g.summed(toShape: b.shape)]
    }
  }

  /// `a - b` with broadcasting. ∂/∂a = g, ∂/∂b = −g.
  public static func - (a: Tensor, b: Tensor) -> Tensor {
    broadcastApply(a, b, SubtractFunction.self).recording([a, b]) { g in
      [g.summed(toShape: a.shape), b.requiresGrad ? g.scaled(by: -1).summed(toShape: b.shape) : nil]
    }
  }

  /// `a * b` elementwise with broadcasting. ∂/∂a = g·b, ∂/∂b = g·a.
  public static func * (a: Tensor, b: Tensor) -> Tensor {
    broadcastApply(a, b, MultiplyFunction.self).recording([a, b]) { g in
      [
        a.requiresGrad ? broadcastApply(g, b, MultiplyFunction.self).summed(toShape: a.shape) : nil,
        b.requiresGrad ? broadcastApply(g, a, MultiplyFunction.self).summed(toShape: b.shape) : nil,
      ]
    }
  }

  /// `a / b` elementwise with broadcasting. ∂/∂a = g / b, ∂/∂b = −g·a / b².
  public static func / (a: Tensor, b: Tensor) -> Tensor {
    broadcastApply(a, b, DivideFunction.self).recordingUsingOutput([a, b], half: .never) { g, out in
      let gOverB = broadcastApply(g, b, DivideFunction.self)
      return [
        a.requiresGrad ? gOverB.summed(toShape: a.shape) : nil,
        // −g·a/b² = −(g/b)·(a/b) = −(g/b)·out
        b.requiresGrad
          ? broadcastApply(gOverB, out, MultiplyFunction.self).scaled(by: -1).summed(toShape: b.shape)
          : nil,
      ]
    }
  }

  /// `−a`.
  public static prefix func - (a: Tensor) -> Tensor { a * -1 }

  /// `a + s` for a scalar `s`. ∂/∂a = g.
  public static func + (a: Tensor, s: Float) -> Tensor {
    a.mapped { $0 + s }.recording([a]) { g in [g] }
  }
  public static func + (s: Float, a: Tensor) -> Tensor { a + s }
  /// `a − s` for a scalar `s`.
  public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
  /// `s − a` for a scalar `s`.
  public static func - (s: Float, a: Tensor) -> Tensor { (a * -1) + s }

  /// `a · s` for a scalar `s`. ∂/∂a = g·s.
  public static func * (a: Tensor, s: Float) -> Tensor {
    a.scaled(by: s).recording([a]) { g in [g.scaled(by: s)] }
  }
  public static func * (s: Float, a: Tensor) -> Tensor { a * s }
  /// `a / s` for a scalar `s`.
  public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }

  /// Every element multiplied by `s`, recording nothing.
  func scaled(by s: Float) -> Tensor { mapped { $0 * s } }

  /// `transform` applied to every element, recording nothing. `transform` is inlined into the
  /// loop where the call site is visible to the optimiser (every use in this module).
  @inline(__always)
  func mapped(_ transform: (Float) -> Float) -> Tensor {
    Tensor(shape: shape) { out in
      storage.withUnsafeBufferPointer { x in
        for i in 0..<out.count { out[i] = transform(x[i]) }
      }
    }
  }

  /// `transform(self[i], other[i])` for two tensors of one shape, recording nothing.
  @inline(__always)
  func zipped(_ other: Tensor, _ transform: (Float, Float) -> Float) -> Tensor {
    precondition(shape == other.shape, "shapes \(shape) and \(other.shape) differ")
    return Tensor(shape: shape) { out in
      storage.withUnsafeBufferPointer { x in
        other.storage.withUnsafeBufferPointer { y in
          for i in 0..<out.count { out[i] = transform(x[i], y[i]) }
        }
      }
    }
  }
}
