import RealModule

// Elementwise functions of one tensor, each with its derivative beside it.

extension Tensor {
  /// eˣ elementwise. ∂ = g·eˣ (reuses the output).
  public func exp() -> Tensor {
    mapped { Float.exp($0) }.recordingUsingOutput([self], half: .never) { g, out in [g.zipped(out) { $0 * $1 }] }
  }

  /// Natural logarithm elementwise. ∂ = g / x.
  public func log() -> Tensor {
    mapped { Float.log($0) }.recording([self], half: .never) { g in [g.zipped(self) { $0 / $1 }] }
  }

  /// √x elementwise. ∂ = g / (2√x).
  public func sqrt() -> Tensor {
    mapped { $0.squareRoot() }.recordingUsingOutput([self], half: .never) { g, out in [g.zipped(out) { $0 / (2 * $1) }] }
  }

  /// xᵖ elementwise for a constant exponent (`torch.pow(x, p)`): an integer p is repeated
  /// multiplication, defined for negative x too; any other p needs x ≥ 0 (NaN below, as in
  /// PyTorch). ∂ = g·p·xᵖ⁻¹.
  public func pow(_ p: Float) -> Tensor {
    let integral = p == p.rounded() && abs(p) < 16_777_216
    let n = integral ? Int(p) : 0
    @inline(__always) func power(_ x: Float, _ exponent: Float, _ integer: Int) -> Float {
      // Squares and cubes by multiplication, as PyTorch computes them (and ~10× faster than powf).
      switch integer {
      case 0 where integral: return 1
      case 1 where integral: return x
      case 2 where integral: return x * x
      case 3 where integral: return x * x * x
      default: return integral ? Float.pow(x, integer) : Float.pow(x, exponent)
      }
    }
    return mapped { power($0, p, n) }.recording([self], half: .never) { g in
      [g.zipped(self) { gi, x in gi * p * power(x, p - 1, n - 1) }]
    }
  }

  /// max(x, 0) elementwise (`torch.relu`). ∂ = g where x > 0, else 0.
  public func relu() -> Tensor {
    mapped { $0 > 0 ? $0 : 0 }.recordingUsingOutput([self]) { g, out in [g.zipped(out) { $1 > 0 ? $0 : 0 }] }
  }

  /// GELU with the exact Gaussian CDF, x·Φ(x) = x·½(1 + erf(x/√2)) (`torch.nn.GELU()`,
  /// approximate="none"). ∂ = g·(Φ(x) + x·φ(x)).
  public func gelu() -> Tensor {
    let invSqrt2: Float = 0.707_106_781_186_547_5
    let invSqrt2Pi: Float = 0.398_942_280_401_432_7
    return mapped { x in x * 0.5 * (1 + Float.erf(x * invSqrt2)) }.recording([self]) { g in
      [
        g.zipped(self) { gi, x in
          let cdf = 0.5 * (1 + Float.erf(x * invSqrt2))
          let pdf = invSqrt2Pi * Float.exp(-0.5 * x * x)
          return gi * (cdf + x * pdf)
        }
      ]
    }
  }

  /// tanh elementwise. ∂ = g·(1 − tanh²).
  public func tanh() -> Tensor {
    mapped { Float.tanh($0) }.recordingUsingOutput([self]) { g, out in [g.zipped(out) { $0 * (1 - $1 * $1) }] }
  }

  /// The logistic sigmoid 1 / (1 + e⁻ˣ), computed without overflow for large |x|.
  /// ∂ = g·σ·(1 − σ).
  public func sigmoid() -> Tensor {
    mapped { x in
      x >= 0 ? 1 / (1 + Float.exp(-x)) : Float.exp(x) / (1 + Float.exp(x))
    }.recordingUsingOutput([self]) { g, out in [g.zipped(out) { $0 * $1 * (1 - $1) }] }
  }
}

extension Tensor {
  /// max(x, m) elementwise (`torch.clamp(x, min=m)`). ∂ = g where x ≥ m, else 0 (PyTorch passes
  /// the gradient at x = m too).
  public func clamped(min m: Float) -> Tensor {
    mapped { Swift.max($0, m) }.recording([self], half: .never) { g in [g.zipped(self) { $1 >= m ? $0 : 0 }] }
  }

  /// The smooth L1 (Huber, β = 1) function elementwise: ½x² where |x| < 1, else |x| − ½
  /// (`F.smooth_l1_loss(a, b, reduction="none")` of x = a − b). ∂ = g·x where |x| < 1, else g·sign(x).
  public func smoothL1() -> Tensor {
    mapped { Swift.abs($0) < 1 ? 0.5 * $0 * $0 : Swift.abs($0) - 0.5 }.recording([self], half: .never) { g in
      [g.zipped(self) { gi, x in Swift.abs(x) < 1 ? gi * x : (x > 0 ? gi : -gi) }]
    }
  }
}
