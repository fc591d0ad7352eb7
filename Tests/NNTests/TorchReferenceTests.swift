import Autodiff
import Foundation
import NN
import XCTest
import _TestSupport

/// PyTorch as the oracle: `Tests/Fixtures/torch_reference.json`, written by
/// `Tests/Fixtures/make_torch_reference.py`, holds for each case a model's initial
/// `state_dict`, an input batch, the losses of k training steps and the final `state_dict`.
/// We load the initial state into our equivalent `Sequential`, take the same k steps with our
/// loss and optimizer, and require every loss and every final tensor to agree within 1e-5
/// relative (1e-6 absolute). A missing fixture fails the test.
///
/// One exception, found by analysis rather than allowed by habit: with Adam's L2 decay,
/// g = ∇p + λp can cancel almost exactly (mlp_adam_wd, `0.weight[24, 56]`: ∇p = 4.9995e-4,
/// λp = −4.9996e-4, g ≈ −1.4e-8, next to ε). Adam then divides that g by its own magnitude,
/// so the 1e-7 rounding of ∇p becomes a 1e-3 relative change of the step: float64 NumPy
/// lands as far from PyTorch as we do. Elements whose g, at any step, is smaller than 1e-3 of
/// |∇p| + |λp| (cancellation κ > 1000) are compared to 1% of the learning rate instead, and
/// at most a few may be.
final class TorchReferenceTests: XCTestCase {
  private static let relativeTolerance: Float = 1e-5
  private static let absoluteTolerance: Float = 1e-6

  private func loadReference(file: StaticString = #filePath, line: UInt = #line) throws -> TorchReference {
    let path = repositoryRoot + "/Tests/Fixtures/torch_reference.json"
    guard let data = FileManager.default.contents(atPath: path) else {
      XCTFail("missing fixture \(path); run Tests/Fixtures/make_torch_reference.py", file: file, line: line)
      throw CocoaError(.fileNoSuchFile)
    }
    return try JSONDecoder().decode(TorchReference.self, from: data)
  }

  /// Our `Sequential` with the same layers, and so the same `state_dict` keys, as the script's
  /// `make_model(kind)`.
  private func makeModel(_ kind: String) -> Sequential? {
    var g = SeededGenerator(seed: 0)  // overwritten by the fixture's initial state
    switch kind {
    case "mlp":
      return Sequential(
        Linear(inputFeatures: 64, outputFeatures: 32, generator: &g), ReLU(),
        Linear(inputFeatures: 32, outputFeatures: 16, generator: &g), ReLU(),
        Linear(inputFeatures: 16, outputFeatures: 10, generator: &g))
    case "cnn":
      return Sequential(
        Conv2D(inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1, generator: &g), ReLU(),
        MaxPool2D(kernelSize: 2),
        Conv2D(inChannels: 4, outChannels: 8, kernelSize: 3, padding: 1, generator: &g), ReLU(),
        MaxPool2D(kernelSize: 2),
        Flatten(),
        Linear(inputFeatures: 32, outputFeatures: 16, generator: &g), ReLU(),
        Linear(inputFeatures: 16, outputFeatures: 10, generator: &g))
    case "cnn_bn":
      return Sequential(
        Conv2D(inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1, generator: &g), BatchNorm2D(4),
        ReLU(),
        AvgPool2D(kernelSize: 2),
        Conv2D(inChannels: 4, outChannels: 8, kernelSize: 3, stride: 2, padding: 1, generator: &g),
        BatchNorm2D(8), ReLU(),
        Flatten(),
        Linear(inputFeatures: 32, outputFeatures: 10, generator: &g))
    default:
      return nil
    }
  }

  private func makeOptimizer(_ spec: TorchReference.OptimizerSpec, _ model: Sequential) -> (any Optimizer)? {
    switch spec.type {
    case "sgd":
      return SGD(
        parameters: model.parameters, learningRate: spec.lr, momentum: spec.momentum ?? 0,
        dampening: spec.dampening ?? 0, nesterov: spec.nesterov ?? false, weightDecay: spec.weightDecay)
    case "adam", "adamw":
      let (betas, eps) = (spec.betas ?? [0.9, 0.999], spec.eps ?? 1e-8)
      return spec.type == "adam"
        ? Adam(
          parameters: model.parameters, learningRate: spec.lr, beta1: betas[0], beta2: betas[1], epsilon: eps,
          weightDecay: spec.weightDecay)
        : AdamW(
          parameters: model.parameters, learningRate: spec.lr, beta1: betas[0], beta2: betas[1], epsilon: eps,
          weightDecay: spec.weightDecay)
    default:
      return nil
    }
  }

  /// The largest |a − b| / (atol + rtol·|b|): ≤ 1 passes.
  private func worstRatio(_ actual: [Float], _ expected: [Float]) -> Float {
    zip(actual, expected).reduce(0) { worst, pair in
      max(worst, abs(pair.0 - pair.1) / (Self.absoluteTolerance + Self.relativeTolerance * abs(pair.1)))
    }
  }

  func testTrainingStepsMatchPyTorch() throws {
    let reference = try loadReference()
    XCTAssertEqual(reference.cases.count, 10)
    var worst: (ratio: Float, at: String) = (0, "")
    for testCase in reference.cases {
      guard let model = makeModel(testCase.model) else {
        XCTFail("\(testCase.name): unknown model \(testCase.model)")
        continue
      }
      model.isTraining = testCase.train
      let initial = testCase.initial.mapValues { Tensor(shape: $0.shape, storage: $0.values) }
      try model.load(stateDict: initial)
      guard let optimizer = makeOptimizer(testCase.optimizer, model) else {
        XCTFail("\(testCase.name): unknown optimizer \(testCase.optimizer.type)")
        continue
      }
      let x = Tensor(shape: testCase.input.shape, storage: testCase.input.values)
      let teacher = testCase.teacherLogits.map { Tensor(shape: $0.shape, storage: $0.values) }
      var losses: [Float] = []
      var illConditioned: [String: Set<Int>] = [:]
      for _ in 0..<testCase.steps {
        optimizer.zeroGrad()
        let logits = model(x)
        let loss: Tensor
        switch testCase.loss.type {
        case "ce":
          loss = crossEntropy(
            logits: logits, labels: testCase.labels, labelSmoothing: testCase.loss.labelSmoothing ?? 0)
        case "kd":
          loss = distillationLoss(
            studentLogits: logits, teacherLogits: teacher!, labels: testCase.labels,
            temperature: testCase.loss.temperature!, alpha: testCase.loss.alpha!)
        default:
          XCTFail("\(testCase.name): unknown loss \(testCase.loss.type)")
          return
        }
        losses.append(loss.scalar)
        loss.backward()
        if testCase.optimizer.type == "adam" && testCase.optimizer.weightDecay != 0 {
          let decay = Float(testCase.optimizer.weightDecay)
          for (name, p) in model.parameters {
            for (i, (gradient, value)) in zip(p.grad!.storage, p.storage).enumerated()
            where abs(gradient + decay * value) < 1e-3 * (abs(gradient) + abs(decay * value)) {
              illConditioned[name, default: []].insert(i)
            }
          }
        }
        optimizer.step()
      }
      assertClose(
        losses, testCase.losses, absoluteTolerance: Self.absoluteTolerance,
        relativeTolerance: Self.relativeTolerance, "\(testCase.name) losses")
      let ratio = worstRatio(losses, testCase.losses)
      if ratio > worst.ratio { worst = (ratio, "\(testCase.name) losses") }

      var caseWorst = ratio
      defer { print("\(testCase.name): worst deviation \(caseWorst) of the tolerance") }
      let ours = model.stateDict
      XCTAssertEqual(Set(ours.map(\.name)), Set(testCase.final.keys), "\(testCase.name) keys")
      XCTAssertLessThanOrEqual(illConditioned.values.reduce(0) { $0 + $1.count }, 3, "\(testCase.name)")
      for (name, tensor) in ours {
        guard var expected = testCase.final[name] else { continue }
        XCTAssertEqual(tensor.shape, expected.shape, "\(testCase.name) \(name)")
        var actual = tensor.storage
        for i in (illConditioned[name] ?? []).sorted(by: >) where i < expected.values.count {
          XCTAssertEqual(
            actual[i], expected.values[i], accuracy: Float(testCase.optimizer.lr) * 0.01,
            "\(testCase.name) \(name)[\(i)] (ill-conditioned)")
          print(
            "\(testCase.name) \(name)[\(i)]: ill-conditioned, \(actual[i]) vs PyTorch \(expected.values[i])")
          actual.remove(at: i)
          expected.values.remove(at: i)
        }
        assertClose(
          actual, expected.values, absoluteTolerance: Self.absoluteTolerance,
          relativeTolerance: Self.relativeTolerance, "\(testCase.name) \(name)")
        let ratio = worstRatio(actual, expected.values)
        caseWorst = max(caseWorst, ratio)
        if ratio > worst.ratio { worst = (ratio, "\(testCase.name) \(name)") }
      }
    }
    print("worst deviation from PyTorch \(reference.torch): \(worst.ratio) of the tolerance, at \(worst.at)")
  }

  func testSchedulesMatchPyTorch() throws {
    let schedules = try loadReference().schedules
    let base = 0.1
    let cases: [(String, any LearningRateSchedule)] = [
      ("step", StepSchedule(stepSize: 3, gamma: 0.1)),
      ("cosine", CosineSchedule(totalEpochs: 10, minimum: 0.001)),
      ("warmup_linear", LinearWarmup(startFactor: 0.1, endFactor: 1, totalEpochs: 4)),
    ]
    for (name, schedule) in cases {
      guard let expected = schedules[name] else {
        XCTFail("fixture has no schedule \(name)")
        continue
      }
      let ours = (0..<expected.lrs.count).map { Float(schedule.learningRate(epoch: $0, base: base)) }
      assertClose(ours, expected.lrs.map(Float.init), absoluteTolerance: 1e-9, relativeTolerance: 1e-6, name)
    }
    XCTAssertEqual(schedules["step"]?.params["step_size"], 3)
    XCTAssertEqual(schedules["cosine"]?.params["T_max"], 10)
    XCTAssertEqual(schedules["warmup_linear"]?.params["total_iters"], 4)
  }

  func testFunctionsMatchPyTorch() throws {
    let functions = try loadReference().functions
    let x = Tensor(shape: [functions.x.count], storage: functions.x)
    let tolerance = (absolute: Self.absoluteTolerance, relative: Self.relativeTolerance)
    assertClose(
      GELU()(x).storage, functions.gelu, absoluteTolerance: tolerance.absolute,
      relativeTolerance: tolerance.relative, "gelu")
    assertClose(
      Tanh()(x).storage, functions.tanh, absoluteTolerance: tolerance.absolute,
      relativeTolerance: tolerance.relative, "tanh")
    assertClose(
      Sigmoid()(x).storage, functions.sigmoid, absoluteTolerance: tolerance.absolute,
      relativeTolerance: tolerance.relative, "sigmoid")
    let rows = Tensor(shape: functions.softmaxRows.input.shape, storage: functions.softmaxRows.input.values)
    assertClose(
      rows.softmax().storage, functions.softmaxRows.softmax, absoluteTolerance: tolerance.absolute,
      relativeTolerance: tolerance.relative, "softmax")
    assertClose(
      rows.logSoftmax().storage, functions.softmaxRows.logSoftmax, absoluteTolerance: tolerance.absolute,
      relativeTolerance: tolerance.relative, "log_softmax")
  }
}

/// The fixture's schema (see `make_torch_reference.py`).
struct TorchReference: Decodable {
  struct TensorValues: Decodable {
    var shape: [Int]
    var values: [Float]
  }

  struct LossSpec: Decodable {
    var type: String
    var labelSmoothing: Float?
    var temperature: Float?
    var alpha: Float?
    enum CodingKeys: String, CodingKey {
      case type, temperature, alpha
      case labelSmoothing = "label_smoothing"
    }
  }

  struct OptimizerSpec: Decodable {
    var type: String
    var lr: Double
    var momentum: Double?
    var dampening: Double?
    var nesterov: Bool?
    var weightDecay: Double
    var betas: [Double]?
    var eps: Double?
    enum CodingKeys: String, CodingKey {
      case type, lr, momentum, dampening, nesterov, betas, eps
      case weightDecay = "weight_decay"
    }
  }

  struct Case: Decodable {
    var name: String
    var model: String
    var train: Bool
    var loss: LossSpec
    var optimizer: OptimizerSpec
    var steps: Int
    var input: TensorValues
    var labels: [Int]
    var teacherLogits: TensorValues?
    var initial: [String: TensorValues]
    var losses: [Float]
    var final: [String: TensorValues]
    enum CodingKeys: String, CodingKey {
      case name, model, train, loss, optimizer, steps, input, labels, initial, losses, final
      case teacherLogits = "teacher_logits"
    }
  }

  struct Schedule: Decodable {
    var params: [String: Double]
    var lrs: [Double]
  }

  struct Functions: Decodable {
    struct SoftmaxRows: Decodable {
      var input: TensorValues
      var softmax: [Float]
      var logSoftmax: [Float]
      enum CodingKeys: String, CodingKey {
        case input, softmax
        case logSoftmax = "log_softmax"
      }
    }
    var x: [Float]
    var gelu: [Float]
    var tanh: [Float]
    var sigmoid: [Float]
    var softmaxRows: SoftmaxRows
    enum CodingKeys: String, CodingKey {
      case x, gelu, tanh, sigmoid
      case softmaxRows = "softmax_rows"
    }
  }

  var torch: String
  var cases: [Case]
  var schedules: [String: Schedule]
  var functions: Functions
}
