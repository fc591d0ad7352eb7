/// The outcome of comparing analytic gradients with central differences.
public struct GradientCheckResult: CustomStringConvertible, Sendable {
  /// The largest |analytic − numerical| over all checked elements.
  public var maxAbsoluteError: Double
  /// The largest |analytic − numerical| / max(|numerical|, |analytic|, floor).
  public var maxRelativeError: Double
  /// Where the worst element is: (input index, flat element index, analytic, numerical).
  public var worst: (input: Int, element: Int, analytic: Double, numerical: Double)?
  /// How many elements were compared.
  public var checkedElements: Int

  public var description: String {
    let w = worst.map {
      "input \($0.input) element \($0.element): analytic \($0.analytic), numerical \($0.numerical)"
    } ?? "none"
    return "max abs error \(maxAbsoluteError), max rel error \(maxRelativeError) over \(checkedElements) elements (worst: \(w))"
  }

  /// Whether every element satisfies |a − n| ≤ absoluteTolerance + relativeTolerance·|n|.
  public var passes: (_ absoluteTolerance: Double, _ relativeTolerance: Double) -> Bool {
    let errors = elementErrors
    return { atol, rtol in errors.allSatisfy { abs($0.0 - $0.1) <= atol + rtol * abs($0.1) } }
  }

  var elementErrors: [(Double, Double)] = []
}

/// Checks the gradients of `function` with respect to `inputs` by central differences.
///
/// The scalar differentiated is L = Σᵢ f(x)ᵢ·rᵢ with fixed pseudo-random weights r in [−1, 1)
/// (so every output element matters, with different weights), summed in `Double`. For each
/// input element, the numerical derivative is (L(x + h) − L(x − h)) / 2h; the analytic one is
/// what `backward()` leaves in `grad`. `function` must be deterministic (seed any dropout
/// inside it afresh on each call). Inputs are made to require gradients.
///
/// - Parameters:
///   - step: h. Float32 forward passes limit accuracy to about 1e-7·|L|/h; 1e-2 to 1e-3 suits
///     functions whose inputs are O(1). Keep inputs further than h from kinks (relu at 0,
///     ties in max-pool).
///   - maxElementsPerInput: checks an evenly spaced subset of large inputs.
public func checkGradients(
  of inputs: [Tensor], step: Float = 1e-3, maxElementsPerInput: Int = 200,
  _ function: ([Tensor]) -> Tensor
) -> GradientCheckResult {
  for input in inputs {
    precondition(input.isLeaf, "checkGradients needs leaf inputs; pass x.detached() for a computed x")
    input.requiresGrad = true
    input.grad = nil
  }
  let probe = noGrad { function(inputs) }
  var weightGenerator = SeededGenerator(seed: 12_345)
  let weights = Tensor.uniform(probe.shape, low: -1, high: 1, generator: &weightGenerator)

  // Analytic gradients.
  let output = function(inputs)
  output.backward(seed: weights)
  let analytic = inputs.map { $0.grad?.storage ?? [Float](repeating: 0, count: $0.count) }

  func projectedLoss() -> Double {
    let out = noGrad { function(inputs) }
    var total = 0.0
    for i in 0..<out.count { total += Double(out.storage[i]) * Double(weights.storage[i]) }
    return total
  }

  var result = GradientCheckResult(
    maxAbsoluteError: 0, maxRelativeError: 0, worst: nil, checkedElements: 0)
  for (k, input) in inputs.enumerated() {
    let stride = max(1, input.count / maxElementsPerInput)
    for e in Swift.stride(from: 0, to: input.count, by: stride) {
      let original = input.storage[e]
      input.storage[e] = original + step
      let plus = projectedLoss()
      input.storage[e] = original - step
      let minus = projectedLoss()
      input.storage[e] = original
      // The step actually taken, after rounding x ± h to Float.
      let taken = Double(original + step) - Double(original - step)
      let numerical = (plus - minus) / taken
      let a = Double(analytic[k][e])
      let absolute = abs(a - numerical)
      let relative = absolute / max(abs(numerical), abs(a), 1e-3)
      result.elementErrors.append((a, numerical))
      result.checkedElements += 1
      if absolute.isNaN {  // a NaN anywhere is the worst error there is, and stays visible
        if !result.maxAbsoluteError.isNaN { result.worst = (k, e, a, numerical) }
        result.maxAbsoluteError = .nan
      } else if absolute > result.maxAbsoluteError {
        result.maxAbsoluteError = absolute
        result.worst = (k, e, a, numerical)
      }
      result.maxRelativeError = relative.isNaN || result.maxRelativeError.isNaN ? .nan : max(result.maxRelativeError, relative)
    }
  }
  return result
}
