import Autodiff
import NN
import XCTest
import _TestSupport

final class OptimizerTests: XCTestCase {
  /// A two-element parameter whose gradient is set by hand before each step.
  private func parameter(_ values: [Float]) -> (name: String, tensor: Tensor) {
    ("w", Tensor(shape: [values.count], storage: values, requiresGrad: true))
  }

  private func setGrad(_ p: Tensor, _ g: [Float]) { p.grad = Tensor(shape: p.shape, storage: g) }

  func testPlainSGD() {
    let p = parameter([1, -2])
    let sgd = SGD(parameters: [p], learningRate: 0.5)
    setGrad(p.tensor, [0.25, -1])
    sgd.step()
    XCTAssertEqual(p.tensor.storage, [0.875, -1.5])
    XCTAssertTrue(sgd.state.isEmpty)
  }

  func testSGDMomentumDampeningAndDecay() {
    let p = parameter([1])
    let sgd = SGD(parameters: [p], learningRate: 0.1, momentum: 0.9, dampening: 0.5, weightDecay: 0.5)
    setGrad(p.tensor, [2])
    sgd.step()  // g = 2 + 0.5·1 = 2.5; b = 2.5; p = 1 − 0.25
    XCTAssertEqual(p.tensor.storage[0], 0.75, accuracy: 1e-7)
    XCTAssertEqual(sgd.state["w.momentum_buffer"]!, [2.5])
    setGrad(p.tensor, [1])
    sgd.step()  // g = 1 + 0.375 = 1.375; b = 0.9·2.5 + 0.5·1.375 = 2.9375; p = 0.75 − 0.29375
    XCTAssertEqual(sgd.state["w.momentum_buffer"]![0], 2.9375, accuracy: 1e-6)
    XCTAssertEqual(p.tensor.storage[0], 0.45625, accuracy: 1e-6)
  }

  func testNesterov() {
    let p = parameter([0])
    let sgd = SGD(parameters: [p], learningRate: 1, momentum: 0.5, nesterov: true)
    setGrad(p.tensor, [1])
    sgd.step()  // b = 1; g = 1 + 0.5 = 1.5
    XCTAssertEqual(p.tensor.storage, [-1.5])
    setGrad(p.tensor, [1])
    sgd.step()  // b = 1.5; g = 1 + 0.75
    XCTAssertEqual(p.tensor.storage, [-3.25])
  }

  func testAdamFirstStepMovesByTheLearningRateAgainstTheGradientSign() {
    // At t = 1 the bias corrections make m̂/√v̂ = g/|g|.
    let p = parameter([1, 1, 1])
    let adam = Adam(parameters: [p], learningRate: 0.01)
    setGrad(p.tensor, [3, -0.001, 50])
    adam.step()
    assertClose(p.tensor.storage, [0.99, 1.01, 0.99], absoluteTolerance: 1e-5)
    XCTAssertEqual(adam.state["w.step"], [1])
    assertClose(adam.state["w.exp_avg"]!, [0.3, -0.0001, 5])
    assertClose(adam.state["w.exp_avg_sq"]!, [0.009, 1e-9, 2.5])
    XCTAssertEqual(Set(adam.state.keys), ["w.step", "w.exp_avg", "w.exp_avg_sq"])
  }

  func testAdamWeightDecayEntersTheGradientButAdamWDecouplesIt() {
    // With a zero gradient, Adam's L2 term alone makes g = λ·p, a full-size step;
    // AdamW only shrinks p by η·λ·p and its moment stays zero.
    let a = parameter([2])
    let b = parameter([2])
    let adam = Adam(parameters: [a], learningRate: 0.1, weightDecay: 0.5)
    let adamW = AdamW(parameters: [b], learningRate: 0.1, weightDecay: 0.5)
    setGrad(a.tensor, [0])
    setGrad(b.tensor, [0])
    adam.step()
    adamW.step()
    XCTAssertEqual(a.tensor.storage[0], 1.9, accuracy: 1e-6)
    XCTAssertEqual(b.tensor.storage[0], 1.9, accuracy: 1e-6)
    XCTAssertEqual(adamW.state["w.exp_avg"], [0])
    XCTAssertEqual(adam.state["w.exp_avg"]![0], 0.1, accuracy: 1e-7)
  }

  func testDefaultsArePyTorchs() {
    let adam = Adam(parameters: [])
    XCTAssertEqual(
      [adam.learningRate, adam.beta1, adam.beta2, adam.epsilon, adam.weightDecay],
      [1e-3, 0.9, 0.999, 1e-8, 0])
    let adamW = AdamW(parameters: [])
    XCTAssertEqual(adamW.weightDecay, 0.01)
    let sgd = SGD(parameters: [], learningRate: 0.1)
    XCTAssertEqual([sgd.momentum, sgd.dampening, sgd.weightDecay], [0, 0, 0])
    XCTAssertFalse(sgd.nesterov)
  }

  func testParametersWithoutGradientAreSkipped() {
    let p = parameter([1])
    let q = (name: "v", tensor: Tensor(shape: [1], storage: [5], requiresGrad: true))
    let optimizers: [any Optimizer] = [
      SGD(parameters: [p, q], learningRate: 0.1, momentum: 0.9), Adam(parameters: [p, q]),
      AdamW(parameters: [p, q]),
    ]
    for optimizer in optimizers {
      setGrad(p.tensor, [1])
      optimizer.step()
      XCTAssertEqual(q.tensor.storage, [5])
      XCTAssertFalse(optimizer.state.keys.contains { $0.hasPrefix("v.") })
      optimizer.zeroGrad()
      XCTAssertNil(p.tensor.grad)
    }
  }

  func testStateRoundTripResumesIdentically() {
    // Two steps in one go equal one step, a state copy into a fresh optimizer, one more step.
    func run(split: Bool) -> [Float] {
      let p = parameter([0.5, -0.25])
      var adam = Adam(parameters: [p], learningRate: 0.05)
      for step in 0..<2 {
        if split && step == 1 {
          let saved = adam.state
          adam = Adam(parameters: [p], learningRate: 0.05)
          adam.state = saved
        }
        setGrad(p.tensor, [Float(step) + 0.5, -1])
        adam.step()
      }
      return p.tensor.storage
    }
    XCTAssertEqual(run(split: true), run(split: false))
  }

  func testMLPLearnsXOR() {
    var g = SeededGenerator(seed: 2)
    let model = Sequential(
      Linear(inputFeatures: 2, outputFeatures: 8, generator: &g), Tanh(),
      Linear(inputFeatures: 8, outputFeatures: 2, generator: &g))
    let x = Tensor(shape: [4, 2], storage: [0, 0, 0, 1, 1, 0, 1, 1])
    let labels = [0, 1, 1, 0]
    let optimizer = Adam(parameters: model.parameters, learningRate: 0.05)
    var losses: [Float] = []
    for _ in 0..<200 {
      let loss = crossEntropy(logits: model(x), labels: labels)
      losses.append(loss.scalar)
      optimizer.zeroGrad()
      loss.backward()
      optimizer.step()
    }
    let logits = noGrad { model(x) }
    let predictions = (0..<4).map { logits[$0, 1] > logits[$0, 0] ? 1 : 0 }
    XCTAssertEqual(predictions, labels)
    XCTAssertLessThan(losses.last!, 0.05)
    XCTAssertLessThan(losses.last!, losses.first! / 10)
  }

  /// The updates of large parameters are split across the BLAS threads; being elementwise, they
  /// give the same bits at any thread count.
  func testLargeParametersUpdateToTheSameBitsAtAnyThreadCount() {
    let threads = BLAS.threadCount
    defer { BLAS.threadCount = threads }
    let count = 300_000  // above ParallelLoop's 256 Ki threshold
    let makers: [(String, ([(name: String, tensor: Tensor)]) -> any Optimizer)] = [
      ("sgd", { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01) }),
      ("adam", { Adam(parameters: $0, learningRate: 0.01) }),
      ("adamw", { AdamW(parameters: $0, learningRate: 0.01, weightDecay: 0.1) }),
    ]
    for (name, make) in makers {
      var results: [[UInt32]] = []
      for threadCount in [1, 2] {
        BLAS.threadCount = threadCount
        let p = Tensor(shape: [count], storage: randomTensor([count], seed: 1).storage, requiresGrad: true)
        let optimizer = make([("p", p)])
        for step in 0..<2 {
          p.grad = randomTensor([count], seed: UInt64(2 + step))
          optimizer.step()
        }
        results.append(p.storage.map(\.bitPattern))
      }
      XCTAssertEqual(results[0], results[1], name)
    }
  }
}
