import Autodiff
import XCTest
import _TestSupport

/// Numerical gradient checks (central differences) for the core ops: arithmetic with
/// broadcasting, unary functions, softmax, reductions, matrix products and shape ops.
final class CoreOpGradientTests: XCTestCase {
  /// Inputs in [0.5, 1.5]·sign, away from 0 so kinks (relu) and poles (log, 1/x) stay further
  /// than the step.
  func awayFromZero(_ shape: [Int], seed: UInt64) -> Tensor {
    let t = randomTensor(shape, seed: seed)
    for i in 0..<t.count { t.storage[i] = (t.storage[i] >= 0 ? 1 : -1) * (0.5 + abs(t.storage[i]).truncatingRemainder(dividingBy: 1)) }
    return t
  }

  func testArithmeticSameShape() {
    let (a, b) = (randomTensor([3, 4], seed: 1), awayFromZero([3, 4], seed: 2))
    assertGradientsMatch([a, b], "add") { $0[0] + $0[1] }
    assertGradientsMatch([a, b], "subtract") { $0[0] - $0[1] }
    assertGradientsMatch([a, b], "multiply") { $0[0] * $0[1] }
    assertGradientsMatch([a, b], "divide") { $0[0] / $0[1] }
  }

  func testArithmeticWithBiasBroadcasting() {
    let (x, bias) = (randomTensor([5, 3], seed: 3), awayFromZero([3], seed: 4))
    assertGradientsMatch([x, bias], "[N,C] + [C]") { $0[0] + $0[1] }
    assertGradientsMatch([x, bias], "[N,C] - [C]") { $0[0] - $0[1] }
    assertGradientsMatch([x, bias], "[N,C] * [C]") { $0[0] * $0[1] }
    assertGradientsMatch([x, bias], "[N,C] / [C]") { $0[0] / $0[1] }
    assertGradientsMatch([bias, x], "[C] - [N,C]") { $0[0] - $0[1] }
  }

  func testArithmeticWithChannelAndGeneralBroadcasting() {
    let (x, scale) = (randomTensor([2, 3, 2, 2], seed: 5), awayFromZero([1, 3, 1, 1], seed: 6))
    assertGradientsMatch([x, scale], "[N,C,H,W] * [1,C,1,1]") { $0[0] * $0[1] }
    assertGradientsMatch([x, scale], "[N,C,H,W] + [1,C,1,1]") { $0[0] + $0[1] }
    let (column, row) = (randomTensor([4, 1], seed: 7), awayFromZero([1, 3], seed: 8))
    assertGradientsMatch([column, row], "[4,1] / [1,3]") { $0[0] / $0[1] }
  }

  func testScalarArithmetic() {
    let x = randomTensor([2, 3], seed: 9)
    assertGradientsMatch([x], "x + s") { $0[0] + 2.5 }
    assertGradientsMatch([x], "s - x") { 1.5 - $0[0] }
    assertGradientsMatch([x], "x * s") { $0[0] * -3 }
    assertGradientsMatch([x], "x / s") { $0[0] / 4 }
    assertGradientsMatch([x], "-x") { -$0[0] }
  }

  func testUnaryFunctions() {
    let x = randomTensor([3, 5], seed: 10)
    let positive = awayFromZero([3, 5], seed: 11).pow(2)  // integer power of negatives: positive
    let awayFromKink = awayFromZero([3, 5], seed: 12)
    assertGradientsMatch([x], "exp") { $0[0].exp() }
    assertGradientsMatch([positive], "log") { $0[0].log() }
    assertGradientsMatch([positive], "sqrt") { $0[0].sqrt() }
    assertGradientsMatch([positive], "pow 1.5") { $0[0].pow(1.5) }
    assertGradientsMatch([x], "pow 3 of negatives too") { $0[0].pow(3) }
    assertGradientsMatch([awayFromKink], "pow -2") { $0[0].pow(-2) }
    assertGradientsMatch([awayFromKink], "relu") { $0[0].relu() }
    assertGradientsMatch([x], "gelu") { $0[0].gelu() }
    assertGradientsMatch([x], "tanh") { $0[0].tanh() }
    assertGradientsMatch([(x * 4).detached()], "sigmoid") { $0[0].sigmoid() }
  }

  func testSoftmaxAndLogSoftmax() {
    let x = randomTensor([4, 6], seed: 13, std: 2)
    assertGradientsMatch([x], "softmax") { $0[0].softmax() }
    assertGradientsMatch([x], "logSoftmax") { $0[0].logSoftmax() }
    let images = randomTensor([2, 2, 5], seed: 14)
    assertGradientsMatch([images], "softmax over the last of three axes") { $0[0].softmax() }
  }

  func testReductions() {
    let x = randomTensor([2, 3, 4], seed: 15)
    assertGradientsMatch([x], "sum all") { $0[0].sum() }
    assertGradientsMatch([x], "sum axis 1") { $0[0].sum(alongAxis: 1) }
    assertGradientsMatch([x], "sum axes 0,2 kept") { $0[0].sum(alongAxes: [0, 2], keepingDimensions: true) }
    assertGradientsMatch([x], "mean all") { $0[0].mean() }
    assertGradientsMatch([x], "mean axis -1") { $0[0].mean(alongAxis: -1) }
    assertGradientsMatch([x], "mean axes 1,2 kept") { $0[0].mean(alongAxes: [1, 2], keepingDimensions: true) }
  }

  func testMatmulWithEveryTransposeCombination() {
    for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
      let a = randomTensor(transposeA ? [4, 3] : [3, 4], seed: 16)
      let b = randomTensor(transposeB ? [5, 4] : [4, 5], seed: 17)
      assertGradientsMatch([a, b], "matmul transposeA \(transposeA) transposeB \(transposeB)") {
        Tensor.matmul($0[0], $0[1], transposeA: transposeA, transposeB: transposeB)
      }
    }
  }

  func testShapeOps() {
    let x = randomTensor([2, 3, 4], seed: 18)
    assertGradientsMatch([x], "reshaped") { $0[0].reshaped([4, -1]) }
    assertGradientsMatch([x], "flattened") { $0[0].flattened() * $0[0].flattened() }
    assertGradientsMatch([x], "permuted") { $0[0].permuted([2, 0, 1]) }
    let m = randomTensor([3, 5], seed: 19)
    assertGradientsMatch([m], "transposed") { $0[0].transposed() }
    let (a, b) = (randomTensor([2, 3], seed: 20), randomTensor([4, 3], seed: 21))
    assertGradientsMatch([a, b], "concatenate axis 0") { Tensor.concatenate([$0[0], $0[1]], alongAxis: 0) }
    let c = randomTensor([2, 5], seed: 22)
    assertGradientsMatch([a, c], "concatenate axis 1") { Tensor.concatenate([$0[0], $0[1]], alongAxis: 1) }
  }

  /// The checker itself must be able to fail: a wrong derivative is caught.
  func testCheckerCatchesAWrongDerivative() {
    let x = randomTensor([3, 3], seed: 23)
    // x * stopGradient(x) has true derivative 2x but the recorded one is x.
    let result = checkGradients(of: [x]) { $0[0] * $0[0].detached() }
    XCTAssertFalse(result.passes(2e-3, 1e-2), "\(result)")
  }
}

/// Forward values of the core ops against hand-computed numbers.
final class CoreOpValueTests: XCTestCase {
  func testBroadcastValues() {
    let x = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
    let b = Tensor(shape: [3], storage: [10, 20, 30])
    XCTAssertEqual((x + b).storage, [11, 22, 33, 14, 25, 36])
    let column = Tensor(shape: [2, 1], storage: [2, 3])
    XCTAssertEqual((x * column).storage, [2, 4, 6, 12, 15, 18])
    XCTAssertEqual((column / Tensor(shape: [1, 2], storage: [1, 2])).storage, [2, 1, 3, 1.5])
  }

  func testSoftmaxIsStableAndNormalised() {
    let x = Tensor(shape: [2, 3], storage: [1000, 1001, 1002, -1000, 0, 1000])
    let y = x.softmax()
    XCTAssertTrue(y.storage.allSatisfy { $0.isFinite })
    XCTAssertEqual(y.storage[0..<3].reduce(0, +), 1, accuracy: 1e-6)
    XCTAssertEqual(y.storage[2], 0.665_240_96, accuracy: 1e-6)
    let logY = x.logSoftmax()
    XCTAssertEqual(logY.storage[3], -2000, accuracy: 1e-2)
    XCTAssertEqual(logY.storage[5], 0, accuracy: 1e-6)
  }

  func testReductionValues() {
    let x = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
    XCTAssertEqual(x.sum().scalar, 21)
    XCTAssertEqual(x.sum(alongAxis: 0).storage, [5, 7, 9])
    XCTAssertEqual(x.mean(alongAxis: 1, keepingDimensions: true).shape, [2, 1])
    XCTAssertEqual(x.mean(alongAxis: 1).storage, [2, 5])
  }

  func testPowerOfNegativeBaseWithIntegerExponent() {
    let x = Tensor(shape: [3], storage: [-2, -0.5, 3])
    XCTAssertEqual(x.pow(2).storage, [4, 0.25, 9])
    XCTAssertEqual(x.pow(3).storage, [-8, -0.125, 27])
    XCTAssertTrue(x.pow(0.5).storage[0].isNaN)  // as torch.pow(-2., 0.5)
  }

  func testMatmulValues() {
    let a = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
    let b = Tensor(shape: [3, 2], storage: [7, 8, 9, 10, 11, 12])
    XCTAssertEqual(Tensor.matmul(a, b).storage, [58, 64, 139, 154])
    XCTAssertEqual(Tensor.matmul(b, a, transposeA: true, transposeB: true).storage, [58, 139, 64, 154])
    XCTAssertEqual(a.transposed().storage, [1, 4, 2, 5, 3, 6])
    XCTAssertEqual(Tensor.concatenate([a, a], alongAxis: 1).storage, [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6])
  }
}
