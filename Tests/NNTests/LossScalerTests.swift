import Autodiff
import Foundation
import NN
import XCTest
import _TestSupport

/// `LossScaler` against GradScaler's semantics, and `MixedPrecisionOptimizer`'s master weights.
final class LossScalerTests: XCTestCase {
  /// A 3→2 linear layer whose parameters are binary16 under a mixed-precision SGD with momentum.
  private func mixedLayer() -> (Linear, MixedPrecisionOptimizer) {
    var generator = SeededGenerator(seed: 5)
    let layer = Linear(inputFeatures: 3, outputFeatures: 2, generator: &generator)
    let optimizer = MixedPrecisionOptimizer(
      wrapping: SGD(parameters: layer.parameters, learningRate: 0.1, momentum: 0.9))
    return (layer, optimizer)
  }

  func testDefaultsAreGradScalers() {
    let scaler = LossScaler()
    XCTAssertEqual(scaler.scale, 65536)
    XCTAssertEqual(scaler.growthFactor, 2)
    XCTAssertEqual(scaler.backoffFactor, 0.5)
    XCTAssertEqual(scaler.growthInterval, 2000)
    XCTAssertEqual(scaler.state, LossScalerState(scale: 65536, growthTracker: 0, skippedSteps: 0))
  }

  func testPlantedInfinitySkipsTheStepHalvesTheScaleAndLeavesWeightsUntouched() {
    let (layer, optimizer) = mixedLayer()
    let scaler = LossScaler()
    let halfBefore = layer.parameters.map { $0.tensor.halfStorage! }
    let mastersBefore = optimizer.masterWeights
    layer.weight.grad = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, .infinity, 6])
    layer.bias!.grad = Tensor(shape: [2], storage: [1, 1])

    XCTAssertFalse(scaler.step(optimizer), "a step with an infinite gradient must be skipped")

    XCTAssertEqual(scaler.state, LossScalerState(scale: 32768, growthTracker: 0, skippedSteps: 1))
    XCTAssertEqual(layer.parameters.map { $0.tensor.halfStorage! }, halfBefore)
    XCTAssertEqual(optimizer.masterWeights, mastersBefore)
    XCTAssertTrue(optimizer.state.isEmpty, "no momentum buffer may be created by a skipped step")

    // A NaN is caught the same way, in any parameter.
    layer.weight.grad = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
    layer.bias!.grad = Tensor(shape: [2], storage: [.nan, 1])
    XCTAssertFalse(scaler.step(optimizer))
    XCTAssertEqual(scaler.state, LossScalerState(scale: 16384, growthTracker: 0, skippedSteps: 2))
    XCTAssertEqual(optimizer.masterWeights, mastersBefore)
  }

  func testScaleGrowsAfterTheIntervalOfFiniteSteps() {
    let (layer, optimizer) = mixedLayer()
    let scaler = LossScaler(initialScale: 8, growthInterval: 3)
    func finiteStep() -> Bool {
      layer.weight.grad = Tensor(repeating: 8, shape: [2, 3])
      layer.bias!.grad = Tensor(repeating: 8, shape: [2])
      return scaler.step(optimizer)
    }
    XCTAssertTrue(finiteStep())
    XCTAssertTrue(finiteStep())
    XCTAssertEqual(scaler.state, LossScalerState(scale: 8, growthTracker: 2, skippedSteps: 0))
    XCTAssertTrue(finiteStep())
    XCTAssertEqual(scaler.state, LossScalerState(scale: 16, growthTracker: 0, skippedSteps: 0))
    // A skipped step resets the count: three more finite steps are needed to grow again.
    scaler.update(foundNonFinite: true)
    XCTAssertEqual(scaler.state, LossScalerState(scale: 8, growthTracker: 0, skippedSteps: 1))
    XCTAssertTrue(finiteStep())
    XCTAssertTrue(finiteStep())
    XCTAssertEqual(scaler.scale, 8)
    XCTAssertTrue(finiteStep())
    XCTAssertEqual(scaler.scale, 16)
  }

  func testGrowthStopsBeforeInfinity() {
    let scaler = LossScaler(initialScale: .greatestFiniteMagnitude, growthInterval: 1)
    scaler.update(foundNonFinite: false)
    XCTAssertEqual(scaler.scale, .greatestFiniteMagnitude)
    XCTAssertEqual(scaler.state.growthTracker, 0)
  }

  func testUnscaleDividesEveryGradientInPlace() {
    let a = Tensor.zeros([3], requiresGrad: true)
    let b = Tensor.zeros([2], requiresGrad: true)
    let c = Tensor.zeros([1], requiresGrad: true)  // no gradient: skipped
    a.grad = Tensor(shape: [3], storage: [2, -4, 6])
    b.grad = Tensor(shape: [2], storage: [0.25, 1e-30])
    let scaler = LossScaler(initialScale: 4)
    XCTAssertFalse(scaler.unscaleGradients(of: [("a", a), ("b", b), ("c", c)]))
    XCTAssertEqual(a.grad!.storage, [0.5, -1, 1.5])
    XCTAssertEqual(b.grad!.storage, [0.0625, 2.5e-31])
    XCTAssertNil(c.grad)
    b.grad = Tensor(shape: [2], storage: [-.infinity, 1])
    XCTAssertTrue(scaler.unscaleGradients(of: [("a", a), ("b", b)]))
  }

  /// A gradient large enough to be unscaled in pieces on several threads (with more than one
  /// BLAS thread): every piece is unscaled and an inf in the last piece is found.
  func testUnscaleOfALargeGradientCoversEveryPiece() {
    let count = 300_001
    let p = Tensor.zeros([count], requiresGrad: true)
    p.grad = Tensor(shape: [count], storage: (0..<count).map { Float($0 % 7) * 8 })
    let scaler = LossScaler(initialScale: 8)
    XCTAssertFalse(scaler.unscaleGradients(of: [("p", p)]))
    XCTAssertEqual(p.grad!.storage, (0..<count).map { Float($0 % 7) })
    p.grad!.storage[count - 2] = .nan
    XCTAssertTrue(scaler.unscaleGradients(of: [("p", p)]))
  }

  func testStateRoundTripsThroughJSON() throws {
    let state = LossScalerState(scale: 1024, growthTracker: 17, skippedSteps: 3)
    let decoded = try JSONDecoder().decode(LossScalerState.self, from: JSONEncoder().encode(state))
    XCTAssertEqual(decoded, state)
    let scaler = LossScaler()
    scaler.state = decoded
    XCTAssertEqual(scaler.scale, 1024)
  }

  func testMixedOptimizerUpdatesFloatMastersAndWritesRoundedHalves() {
    let (layer, optimizer) = mixedLayer()
    XCTAssertTrue(layer.weight.isHalf && layer.bias!.isHalf)
    // A Float SGD on copies of the masters is the reference.
    let reference = optimizer.masterWeights
    let weight = Tensor(shape: [2, 3], storage: reference["weight"]!, requiresGrad: true)
    let bias = Tensor(shape: [2], storage: reference["bias"]!, requiresGrad: true)
    let sgd = SGD(parameters: [("weight", weight), ("bias", bias)], learningRate: 0.1, momentum: 0.9)
    for step in 0..<3 {
      let gw = (0..<6).map { Float($0 - 2) * 0.01 * Float(step + 1) }
      let gb: [Float] = [0.3, -0.2]
      layer.weight.grad = Tensor(shape: [2, 3], storage: gw)
      layer.bias!.grad = Tensor(shape: [2], storage: gb)
      weight.grad = Tensor(shape: [2, 3], storage: gw)
      bias.grad = Tensor(shape: [2], storage: gb)
      optimizer.step()
      sgd.step()
    }
    XCTAssertEqual(optimizer.masterWeights["weight"]!, weight.storage, "masters follow Float SGD exactly")
    XCTAssertEqual(optimizer.masterWeights["bias"]!, bias.storage)
    XCTAssertEqual(layer.weight.halfStorage!, HalfPrecision.halfBits(from: weight.storage))
    XCTAssertEqual(layer.bias!.halfStorage!, HalfPrecision.halfBits(from: bias.storage))
    XCTAssertEqual(optimizer.state["weight.momentum_buffer"]!, sgd.state["weight.momentum_buffer"]!)
  }

  func testSettingMasterWeightsRoundsTheParameters() {
    let (layer, optimizer) = mixedLayer()
    var masters = optimizer.masterWeights
    masters["bias"] = [1.0001, -2]
    optimizer.masterWeights = masters
    XCTAssertEqual(optimizer.masterWeights["bias"]!, [1.0001, -2])
    XCTAssertTrue(layer.bias!.isHalf)
    XCTAssertEqual(layer.bias!.storage, [1, -2], "1.0001 rounds to 1 in binary16")
  }

  /// The scaler folds 1/S into the optimizer's update: the weights equal those of unscaling the
  /// gradients first and stepping, bit for bit, for every optimizer and option (and for an
  /// optimizer of the caller's own, through the protocol's default).
  func testFoldedUnscalingGivesTheWeightsOfUnscalingFirst() {
    final class PlainDescent: Optimizer {
      var learningRate = 0.1
      let parameters: [(name: String, tensor: Tensor)]
      var state: [String: [Float]] = [:]
      init(_ parameters: [(name: String, tensor: Tensor)]) { self.parameters = parameters }
      func step() {
        for (_, p) in parameters {
          let g = p.grad!.storage
          p.storage.withUnsafeMutableBufferPointer { x in for i in 0..<x.count { x[i] -= 0.1 * g[i] } }
        }
      }
    }
    let makers: [(String, ([(name: String, tensor: Tensor)]) -> any Optimizer)] = [
      ("sgd", { SGD(parameters: $0, learningRate: 0.1) }),
      ("sgd momentum decay", { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01) }),
      ("sgd nesterov", { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, nesterov: true) }),
      ("adam", { Adam(parameters: $0, learningRate: 0.01, weightDecay: 0.01) }),
      ("adamw", { AdamW(parameters: $0, learningRate: 0.01, weightDecay: 0.01) }),
      ("mixed sgd", { MixedPrecisionOptimizer(wrapping: SGD(parameters: $0, learningRate: 0.1, momentum: 0.9)) }),
      ("own", { PlainDescent($0) }),
    ]
    for (name, make) in makers {
      var weights: [[[Float]]] = []
      for folded in [false, true] {
        var generator = SeededGenerator(seed: 7)
        let layer = Linear(inputFeatures: 5, outputFeatures: 3, generator: &generator)
        let optimizer = make(layer.parameters)
        let scaler = LossScaler(initialScale: 1024)
        for step in 0..<3 {
          optimizer.zeroGrad()
          let x = randomTensor([4, 5], seed: UInt64(step))
          scaler.scaled((layer(x) * layer(x)).sum()).backward()
          if folded {
            XCTAssertTrue(scaler.step(optimizer))
          } else {
            XCTAssertFalse(scaler.unscaleGradients(of: optimizer.parameters))
            optimizer.step()
            scaler.update(foundNonFinite: false)
          }
        }
        weights.append(layer.parameters.map { $0.tensor.storage })
      }
      XCTAssertEqual(
        weights[0].map { $0.map(\.bitPattern) }, weights[1].map { $0.map(\.bitPattern) }, "\(name)")
    }
  }
}
