import Autodiff
import Foundation
import NN
import XCTest
import _TestSupport

final class LossTests: XCTestCase {
  /// −log softmax(row)[label], in Double.
  private func negativeLogLikelihood(_ row: [Float], _ label: Int) -> Double {
    let m = Double(row.max()!)
    let logZ = m + log(row.map { exp(Double($0) - m) }.reduce(0, +))
    return logZ - Double(row[label])
  }

  func testCrossEntropyIsMeanNegativeLogLikelihood() {
    let logits = randomTensor([4, 5], seed: 1)
    let labels = [0, 3, 4, 1]
    let expected =
      (0..<4).map { i in
        negativeLogLikelihood(Array(logits.storage[i * 5..<(i + 1) * 5]), labels[i])
      }.reduce(0, +) / 4
    XCTAssertEqual(Double(crossEntropy(logits: logits, labels: labels).scalar), expected, accuracy: 1e-6)
  }

  func testLabelSmoothingMatchesItsDefinition() {
    // PyTorch: (1 − ε)·NLL + ε·mean over classes of −log p.
    let logits = randomTensor([3, 4], seed: 2)
    let labels = [2, 0, 3]
    let epsilon: Float = 0.2
    var expected = 0.0
    for i in 0..<3 {
      let row = Array(logits.storage[i * 4..<(i + 1) * 4])
      let uniform = (0..<4).map { negativeLogLikelihood(row, $0) }.reduce(0, +) / 4
      expected += (1 - Double(epsilon)) * negativeLogLikelihood(row, labels[i]) + Double(epsilon) * uniform
    }
    let loss = crossEntropy(logits: logits, labels: labels, labelSmoothing: epsilon)
    XCTAssertEqual(Double(loss.scalar), expected / 3, accuracy: 1e-6)
  }

  func testCrossEntropyGradients() {
    let logits = randomTensor([4, 6], seed: 3)
    assertGradientsMatch([logits]) { crossEntropy(logits: $0[0], labels: [5, 0, 2, 2]) }
    assertGradientsMatch([logits]) { crossEntropy(logits: $0[0], labels: [1, 1, 3, 4], labelSmoothing: 0.1) }
  }

  func testDistillationLossComponents() {
    let student = randomTensor([3, 4], seed: 4)
    let teacher = randomTensor([3, 4], seed: 5, std: 3)
    let labels = [1, 0, 3]
    // α = 0: plain cross-entropy.
    XCTAssertEqual(
      distillationLoss(
        studentLogits: student, teacherLogits: teacher, labels: labels, temperature: 4, alpha: 0
      )
      .scalar,
      crossEntropy(logits: student, labels: labels).scalar, accuracy: 1e-6)
    // A student equal to its teacher: KL = 0.
    XCTAssertEqual(
      distillationLoss(
        studentLogits: teacher, teacherLogits: teacher, labels: labels, temperature: 2, alpha: 1
      )
      .scalar, 0, accuracy: 1e-6)
    // α = 1: T²·batch-mean KL, in Double.
    let t: Double = 3
    var kl = 0.0
    for i in 0..<3 {
      let s = student.storage[i * 4..<(i + 1) * 4].map { Double($0) / t }
      let q = teacher.storage[i * 4..<(i + 1) * 4].map { Double($0) / t }
      let logZs = log(s.map(exp).reduce(0, +))
      let logZq = log(q.map(exp).reduce(0, +))
      for k in 0..<4 { kl += exp(q[k] - logZq) * ((q[k] - logZq) - (s[k] - logZs)) }
    }
    XCTAssertEqual(
      Double(
        distillationLoss(
          studentLogits: student, teacherLogits: teacher, labels: labels, temperature: 3, alpha: 1
        )
        .scalar), t * t * kl / 3, accuracy: 1e-5)
  }

  func testDistillationLossGradientsReachOnlyTheStudent() {
    let student = randomTensor([3, 5], seed: 6)
    let teacher = randomTensor([3, 5], seed: 7, std: 2)
    teacher.requiresGrad = true
    assertGradientsMatch([student]) {
      distillationLoss(
        studentLogits: $0[0], teacherLogits: teacher, labels: [4, 0, 2], temperature: 2.5, alpha: 0.7)
    }
    distillationLoss(
      studentLogits: student, teacherLogits: teacher, labels: [4, 0, 2], temperature: 2, alpha: 0.5
    )
    .backward()
    XCTAssertNil(teacher.grad)
  }

  func testMeanSquaredError() {
    let a = Tensor(shape: [2, 2], storage: [1, 2, 3, 4])
    let b = Tensor(shape: [2, 2], storage: [0, 2, 5, 3])
    XCTAssertEqual(meanSquaredError(a, b).scalar, (1 + 0 + 4 + 1) / 4)
    assertGradientsMatch([randomTensor([3, 4], seed: 8), randomTensor([3, 4], seed: 9)]) {
      meanSquaredError($0[0], $0[1])
    }
  }
}
