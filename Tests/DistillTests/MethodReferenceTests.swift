import Autodiff
import NN
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// Every distillation method's loss and gradients against a PyTorch transcription of its
/// reference code (`Tests/Fixtures/method_reference.json`, written by
/// `Tests/Fixtures/make_method_reference.py`), within 1e-5 relative.
final class MethodReferenceTests: XCTestCase {
  struct Fixture: Decodable {
    struct Values: Decodable {
      var shape: [Int]
      var values: [Float]
      var tensor: Tensor { Tensor(shape: shape, storage: values) }
    }
    struct Case: Decodable {
      var loss: Float
      var gradients: [String: Values]
    }
    var inputs: [String: Values]
    var labels: [Int]
    var cases: [String: Case]
    var fitnets_regressor: [String: Values]
    var crd: CRD
    struct CRD: Decodable {
      var labels: [Int]
      var batch: [Int]
      var contrast: [Int]
      var memory_student: Values
      var memory_teacher: Values
      var embed_student_weight: Values
      var embed_student_bias: Values
      var embed_teacher_weight: Values
      var embed_teacher_bias: Values
      var z: [Float]
      var memory_student_after: Values
      var memory_teacher_after: Values
    }
  }

  static let fixture: Fixture = {
    let data = try! Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/Tests/Fixtures/method_reference.json"))
    return try! JSONDecoder().decode(Fixture.self, from: data)
  }()

  /// The two small CNNs whose layer outputs the fixture's inputs stand for: teacher stages at
  /// layers 1 ([6, 8, 8]) and 4 ([8, 4, 4]), penultimate 8 ([16]); student stages 1 ([4, 8, 8])
  /// and 4 ([4, 4, 4]), penultimate 8 ([12]).
  static func context(_ spec: DistillationSpec, trainLabels: [Int] = Array(repeating: 0, count: 100)) throws
    -> MethodContext
  {
    let (teacherSpec, studentSpec) = (
      ModelSpec.cnn(CNNSpec(channels: [6, 8], hidden: [16])), ModelSpec.cnn(CNNSpec(channels: [4, 4], hidden: [12]))
    )
    let builder = ModelBuilder(file: "r.yaml", keyPath: "m")
    let input = [1, 8, 8]
    return try MethodContext(
      file: "r.yaml", spec: spec,
      teacher: (try builder.build(teacherSpec, inputShape: input, classCount: 10, seed: 1), teacherSpec),
      teacherFile: nil, student: (try builder.build(studentSpec, inputShape: input, classCount: 10, seed: 2), studentSpec),
      inputShape: input, classCount: 10, trainLabels: trainLabels, seed: 1)
  }

  /// Builds `name` from `spec`, runs its loss on the fixture's inputs at `epoch`, and compares
  /// the loss and the gradients of every student input with the case `reference`.
  func check(
    _ name: String, _ spec: DistillationSpec, reference: String, epoch: Int = 1,
    indices: [Int]? = nil, trainLabels: [Int] = Array(repeating: 0, count: 100), parameters: [String: Tensor] = [:],
    prepare: (any DistillationMethod) -> Void = { _ in }, afterLoss: (any DistillationMethod) -> Void = { _ in },
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let f = Self.fixture
    let method = try DistillationMethods.named(name)!.init(
      settings: spec.settings(of: name), context: Self.context(spec, trainLabels: trainLabels))
    prepare(method)
    func leaf(_ key: String) -> Tensor {
      let t = f.inputs[key]!.tensor
      t.requiresGrad = true
      return t
    }
    let student = [
      "student_logits": leaf("student_logits"), "student_stage0": leaf("student_stage0"),
      "student_stage1": leaf("student_stage1"), "student_penultimate": leaf("student_penultimate"),
    ]
    let batch = MethodBatch(
      studentLogits: student["student_logits"]!, teacherLogits: f.inputs["teacher_logits"]!.tensor,
      studentFeatures: [1: student["student_stage0"]!, 4: student["student_stage1"]!, 8: student["student_penultimate"]!],
      teacherFeatures: [
        1: f.inputs["teacher_stage0"]!.tensor, 4: f.inputs["teacher_stage1"]!.tensor,
        8: f.inputs["teacher_penultimate"]!.tensor,
      ],
      labels: f.labels, indices: indices ?? Array(0..<f.labels.count), epoch: epoch)
    let loss = method.loss(batch)
    let expected = f.cases[reference]!
    // 3e-5: the products under the similarity losses sum in an order that depends on the CPU's
    // vector width (AVX2 or AVX-512); PKT's sum of log ratios moved by 1.4e-5 between the two.
    XCTAssertEqual(loss.scalar, expected.loss, accuracy: 3e-5 * abs(expected.loss), "\(reference) loss", file: file, line: line)
    loss.backward()
    for (key, tensor) in student {
      guard let gradient = expected.gradients[key] else {
        XCTAssertTrue(
          tensor.grad == nil || tensor.grad!.storage.allSatisfy { $0 == 0 }, "\(reference): \(key) gets no gradient",
          file: file, line: line)
        continue
      }
      XCTAssertNotNil(tensor.grad, "\(reference): no gradient for \(key)", file: file, line: line)
      guard let grad = tensor.grad else { continue }
      assertClose(grad.storage, gradient.values, relative: 1e-5, "\(reference) ∂\(key)", file: file, line: line)
    }
    for (key, tensor) in parameters {
      guard let gradient = expected.gradients[key], let grad = tensor.grad else {
        XCTFail("\(reference): no gradient for \(key)", file: file, line: line)
        continue
      }
      assertClose(grad.storage, gradient.values, relative: 1e-5, "\(reference) ∂\(key)", file: file, line: line)
    }
    afterLoss(method)
  }

  /// Elementwise |a − b| ≤ relative · max|b| (gradients have entries near 0, where a pointwise
  /// relative bound means nothing).
  func assertClose(
    _ a: [Float], _ b: [Float], relative: Float, _ message: String, file: StaticString, line: UInt
  ) {
    XCTAssertEqual(a.count, b.count, message, file: file, line: line)
    let scale = b.map { abs($0) }.max() ?? 0
    let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst, relative * scale, "\(message): max difference \(worst), scale \(scale)", file: file, line: line)
  }

  func testKD() throws { try check("kd", DistillationSpec(method: "kd"), reference: "kd") }

  func testKDWithLogitStandardization() throws {
    var spec = DistillationSpec(method: "kd", temperature: 2, alpha: 9)
    spec.ceWeight = 0.1
    spec.logitStandardization = true
    try check("kd", spec, reference: "kd_standardized")
  }

  func testDKDDuringWarmUp() throws {
    try check("dkd", DistillationSpec(method: "dkd"), reference: "dkd", epoch: 5)
  }

  func testDKDWithLogitStandardization() throws {
    var spec = DistillationSpec(method: "dkd")
    spec.logitStandardization = true
    spec.settings["dkd"] = MethodSettings([
      "alpha": .number(9), "beta": .number(72), "temperature": .number(2), "warmup": .integer(1),
    ])
    try check("dkd", spec, reference: "dkd_standardized", epoch: 3)
  }

  func testDIST() throws {
    var spec = DistillationSpec(method: "dist")
    spec.settings["dist"] = MethodSettings(["tau": .number(4), "weight": .number(2)])
    try check("dist", spec, reference: "dist")
  }

  func testAT() throws { try check("at", DistillationSpec(method: "at"), reference: "at") }
  func testNST() throws { try check("nst", DistillationSpec(method: "nst"), reference: "nst") }
  func testPKT() throws { try check("pkt", DistillationSpec(method: "pkt"), reference: "pkt") }
  func testSP() throws { try check("sp", DistillationSpec(method: "sp"), reference: "sp") }
  func testRKD() throws { try check("rkd", DistillationSpec(method: "rkd"), reference: "rkd") }

  func testFitNets() throws {
    let regressor = Self.fixture.fitnets_regressor
    try check("fitnets", DistillationSpec(method: "fitnets"), reference: "fitnets") { method in
      let conv = (method as! FitNets).regressor.layers[0] as! Conv2D
      conv.weight.storage = regressor["weight"]!.values
      conv.bias!.storage = regressor["bias"]!.values
    }
  }

  func testCRD() throws {
    let crd = Self.fixture.crd
    var spec = DistillationSpec(method: "crd")
    spec.settings["crd"] = MethodSettings(["feat_dim": .integer(5), "negatives": .integer(6)])
    var method: ContrastiveRD!
    try check(
      "crd", spec, reference: "crd", indices: crd.batch, trainLabels: crd.labels,
      prepare: { built in
        method = (built as! ContrastiveRD)
        method.embedStudent.weight.storage = crd.embed_student_weight.values
        method.embedStudent.bias!.storage = crd.embed_student_bias.values
        method.embedTeacher.weight.storage = crd.embed_teacher_weight.values
        method.embedTeacher.bias!.storage = crd.embed_teacher_bias.values
        method.memoryStudent.storage = crd.memory_student.values
        method.memoryTeacher.storage = crd.memory_teacher.values
        method.fixedContrast = crd.contrast
      },
      afterLoss: { built in
        let method = built as! ContrastiveRD
        XCTAssertEqual(method.zStudent, crd.z[0], accuracy: 1e-5 * crd.z[0])
        XCTAssertEqual(method.zTeacher, crd.z[1], accuracy: 1e-5 * crd.z[1])
        for (key, tensor) in [
          ("crd_ws", method.embedStudent.weight), ("crd_bs", method.embedStudent.bias!),
          ("crd_wt", method.embedTeacher.weight), ("crd_bt", method.embedTeacher.bias!),
        ] {
          let expected = Self.fixture.cases["crd"]!.gradients[key]!.values
          self.assertClose(tensor.grad?.storage ?? [], expected, relative: 1e-5, "crd ∂\(key)", file: #filePath, line: #line)
        }
        method.afterBackward()
        self.assertClose(method.memoryStudent.storage, crd.memory_student_after.values, relative: 1e-5, "crd memory_student", file: #filePath, line: #line)
        self.assertClose(method.memoryTeacher.storage, crd.memory_teacher_after.values, relative: 1e-5, "crd memory_teacher", file: #filePath, line: #line)
      })
  }

  /// The NCE loss at the reference's size (16,384 negatives, scores near 1/N): each term is
  /// small, and a float sum that cancels two sums of millions of terms would be noise; the loss
  /// matches a Double computation and stays positive.
  func testCRDContrastLossHoldsAtTheReferenceSize() throws {
    let labels = (0..<55_000).map { $0 % 10 }
    let crd = try ContrastiveRD(
      settings: MethodSettings(), context: Self.context(DistillationSpec(method: "crd"), trainLabels: labels))
    let (b, width) = (16, 16_385)
    var generator = SeededGenerator(seed: 3)
    let values = (0..<(b * width)).map { _ in generator.nextUniform() * 4e-5 }
    let loss = crd.nce(Tensor(shape: [b, width], storage: values), samples: 55_000).scalar
    let noise = 16_384.0 / 55_000
    var expected = 0.0
    for (i, x) in values.enumerated() {
      let x = Double(x)
      expected += i % width == 0 ? Foundation.log(x / (x + noise + 1e-7)) : Foundation.log(noise / (x + noise + 1e-7))
    }
    expected /= -Double(b)
    XCTAssertGreaterThan(loss, 0)
    XCTAssertEqual(Double(loss), expected, accuracy: 1e-4 * expected)
  }

  /// CRD's negatives are samples of other classes, drawn from the method's own stream.
  func testCRDDrawsNegativesOfOtherClasses() throws {
    let labels = (0..<40).map { $0 % 4 }
    var spec = DistillationSpec(method: "crd")
    spec.settings["crd"] = MethodSettings(["negatives": .integer(50)])
    let crd = try ContrastiveRD(settings: spec.settings(of: "crd"), context: Self.context(spec, trainLabels: labels))
    let drawn = crd.contrastIndices([5, 6])
    XCTAssertEqual(drawn.count, 2 * 51)
    XCTAssertEqual(drawn[0], 5)
    XCTAssertEqual(drawn[51], 6)
    XCTAssertTrue(drawn[1..<51].allSatisfy { labels[$0] != labels[5] })
    XCTAssertTrue(drawn[52...].allSatisfy { labels[$0] != labels[6] })
    XCTAssertGreaterThan(Set(drawn[1..<51]).count, 10, "drawn, not repeated")
  }

  /// `DistillationLoss`, the public way to use the methods without `Trainer`, checks a spec
  /// built in code as a recipe would be.
  func testDistillationLossRefusesAnInvalidSpecBuiltInCode() throws {
    let context = try Self.context(DistillationSpec(method: "kd"))
    let teacher = (context.teacher, ModelSpec.cnn(CNNSpec(channels: [6, 8], hidden: [16])))
    let student = (context.student, ModelSpec.cnn(CNNSpec(channels: [4, 4], hidden: [12])))
    for (spec, keyPath) in [
      (DistillationSpec(method: "atention"), "distillation.method"),
      (DistillationSpec(methods: ["at"], settings: ["at": MethodSettings(["weight": .number(-1)])]), "distillation.at.weight"),
      (DistillationSpec(methods: ["at"], settings: ["at": MethodSettings(["wieght": .number(1)])]), "distillation.at.wieght"),
    ] {
      XCTAssertThrowsError(
        try DistillationLoss(spec: spec, teacher: teacher, student: student, inputShape: [1, 8, 8], trainLabels: Array(0..<10))
      ) { error in
        XCTAssertEqual((error as? RecipeError)?.keyPath, keyPath, "\(error)")
      }
    }
    XCTAssertNoThrow(
      try DistillationLoss(
        spec: DistillationSpec(method: "at"), teacher: teacher, student: student, inputShape: [1, 8, 8],
        trainLabels: Array(0..<10)))
  }

  /// A regressor or head too large to train is refused, naming the key, before any allocation.
  func testAModuleTooLargeForTheMachineIsRefused() throws {
    let context = try Self.context(DistillationSpec(method: "fitnets"))
    XCTAssertNoThrow(try context.requireModule(parameters: [800, 1200], "student_layer", "the regressor"))
    for factors in [[1 << 20, 1 << 20], [Int.max, 2]] {
      XCTAssertThrowsError(try context.requireModule(parameters: factors, "student_layer", "the regressor")) { error in
        guard case .methodMismatch(_, let path, let reason) = error as? TrainingError else { return XCTFail("\(error)") }
        XCTAssertEqual(path, "distillation.student_layer")
        XCTAssertTrue(reason.contains("the regressor would have"), reason)
      }
    }
  }

  /// The stage outputs and penultimate layers the feature methods read by default.
  func testDefaultFeatureLayers() throws {
    let context = try Self.context(DistillationSpec(method: "at"))
    XCTAssertEqual(context.stageOutputs(of: .teacher), [1, 4])
    XCTAssertEqual(context.stageOutputs(of: .student), [1, 4])
    XCTAssertEqual(context.penultimate(of: .teacher), 8)
    let fitnets = try FitNets(settings: MethodSettings(), context: context)
    XCTAssertEqual(fitnets.teacherLayers, [4])
    XCTAssertEqual(fitnets.studentLayers, [4])
  }
}
