import Autodiff
import XCTest

/// Asserts that the analytic gradients of `function` match central differences within
/// |a − n| ≤ absoluteTolerance + relativeTolerance·|n| for every checked element.
/// Failures point at the calling test.
public func assertGradientsMatch(
  _ inputs: [Tensor], step: Float = 1e-3, absoluteTolerance: Double = 2e-3,
  relativeTolerance: Double = 1e-2, _ message: @autoclosure () -> String = "",
  file: StaticString = #filePath, line: UInt = #line, _ function: ([Tensor]) -> Tensor
) {
  let result = checkGradients(of: inputs, step: step, function)
  XCTAssertGreaterThan(result.checkedElements, 0, "no element checked", file: file, line: line)
  XCTAssertTrue(
    result.passes(absoluteTolerance, relativeTolerance), "\(message()) \(result)", file: file,
    line: line)
}

/// Asserts that two float arrays agree elementwise within |a − b| ≤ atol + rtol·|b|.
public func assertClose(
  _ actual: [Float], _ expected: [Float], absoluteTolerance: Float = 1e-6,
  relativeTolerance: Float = 1e-5, _ message: @autoclosure () -> String = "",
  file: StaticString = #filePath, line: UInt = #line
) {
  XCTAssertEqual(actual.count, expected.count, "element counts differ \(message())", file: file, line: line)
  var worst: (Int, Float, Float)?
  var worstExcess: Float = 0
  for (i, (a, b)) in zip(actual, expected).enumerated() {
    let excess = abs(a - b) - (absoluteTolerance + relativeTolerance * abs(b))
    if !(excess <= 0) && (worst == nil || excess > worstExcess || excess.isNaN) {
      worst = (i, a, b)
      worstExcess = excess
    }
  }
  if let (i, a, b) = worst {
    XCTFail("element \(i): \(a) vs expected \(b) \(message())", file: file, line: line)
  }
}

/// A tensor of normal values from a fixed seed, for tests.
public func randomTensor(
  _ shape: [Int], seed: UInt64, mean: Float = 0, std: Float = 1
) -> Tensor {
  var generator = SeededGenerator(seed: seed)
  return Tensor.normal(shape, mean: mean, std: std, generator: &generator)
}

/// The repository's root folder, found from this source file's path (tests read vendored
/// data from `datasets/` and fixtures from `Tests/Fixtures/`).
public let repositoryRoot: String = {
  var path = "\(#filePath)"
  for _ in 0..<3 {  // Tests/_TestSupport/Assertions.swift → repository root
    if let slash = path.lastIndex(of: "/") { path = String(path[..<slash]) }
  }
  return path
}()
