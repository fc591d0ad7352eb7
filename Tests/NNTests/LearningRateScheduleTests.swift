import NN
import XCTest
import _TestSupport

final class LearningRateScheduleTests: XCTestCase {
  func testStep() {
    let s = StepSchedule(stepSize: 3, gamma: 0.5)
    assertClose(
      (0..<7).map { Float(s.learningRate(epoch: $0, base: 0.8)) }, [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2])
  }

  func testCosineRunsFromBaseToMinimum() {
    let s = CosineSchedule(totalEpochs: 4, minimum: 0.1)
    assertClose(
      (0...4).map { Float(s.learningRate(epoch: $0, base: 1.1)) }, [1.1, 0.953_553_4, 0.6, 0.246_446_6, 0.1])
  }

  func testLinearWarmupHoldsItsEndFactor() {
    let s = LinearWarmup(startFactor: 0.25, endFactor: 1, totalEpochs: 3)
    assertClose((0..<5).map { Float(s.learningRate(epoch: $0, base: 0.4)) }, [0.1, 0.2, 0.3, 0.4, 0.4])
  }

  func testChainRestartsTheSecondScheduleAtTheMilestone() {
    let s = ChainedSchedule(
      LinearWarmup(startFactor: 0.5, totalEpochs: 2), until: 2, then: CosineSchedule(totalEpochs: 2))
    assertClose(
      (0..<5).map { Float(s.learningRate(epoch: $0, base: 1)) }, [0.5, 0.75, 1, 0.5, 0],
      absoluteTolerance: 1e-7)
  }
}
