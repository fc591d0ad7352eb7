import Autodiff
import Checkpoints
import Foundation
import NN
import XCTest
import _TestSupport

@testable import Distill
import DistillReports
@testable import DistillRecipes

/// The stages that change the student's architecture: structured pruning (rows chosen as
/// `torch.nn.utils.prune.ln_structured`, the smaller network equal to the masked one) and
/// low-rank factorisation (LAPACK's SVD against `torch.linalg.svd`), each through a run, its
/// model files and a resume within and after it, and their recipe errors.
final class StructuredCompressionTests: XCTestCase {
  struct Fixture: Decodable {
    struct Values: Decodable {
      var shape: [Int]
      var values: [Float]
    }
    struct Structured: Decodable {
      var weight: Values
      var amount: Double
      var kept_rows: [Int]
    }
    struct SVD: Decodable {
      var matrix: Values
      var singular_values: Values
      var rank2: Values
    }
    var structured: [Structured]
    var svd: [SVD]
  }

  private let folders = TemporaryFolders(prefix: "distill-structured-tests")
  override func tearDown() { folders.removeAll() }

  func fixture() throws -> Fixture {
    let data = try Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/Tests/Fixtures/compress_reference.json"))
    return try JSONDecoder().decode(Fixture.self, from: data)
  }

  /// A stage built on `layers` (with one sample of `inputShape`) from `settings`.
  func stage<S: CompressionStage>(
    _ type: S.Type, _ layers: [LayerSpec], inputShape: [Int], _ settings: [String: MethodValue]
  ) throws -> (S, Sequential) {
    let model = try ModelBuilder(file: "r.yaml", keyPath: "student.model").build(
      .layers(layers), inputShape: inputShape, classCount: 2, seed: 1)
    let context = StageContext(
      file: "r.yaml", keyPath: "compress[0].\(S.info.name)", settings: MethodSettings(settings), model: model,
      layers: layers, steps: 10, seed: 1)
    return (try S(context: context), model)
  }

  // MARK: Against PyTorch

  func testStructuredSelectionIsLnStructuredOnItsFixture() throws {
    for case_ in try fixture().structured {
      let isConv = case_.weight.shape.count == 4
      let layers: [LayerSpec] =
        isConv
        ? [.conv2d(Conv2DSpec(out: 5, kernel: 3)), .relu, .flatten, .linear(LinearSpec(out: 2))]
        : [.linear(LinearSpec(out: 6)), .relu, .linear(LinearSpec(out: 2))]
      let (pruning, _) = try stage(
        MagnitudePruning.self, layers, inputShape: isConv ? [3, 5, 5] : [7],
        ["structure": .text("structured"), "amount": .number(case_.amount), "schedule": .text("one_shot")])
      var values = pruning.weights.map { $0.tensor.storage }
      values[0] = case_.weight.values
      let masks = pruning.structuredMasks(values: values, target: case_.amount)
      let unit = masks[0].count / case_.kept_rows.count
      XCTAssertEqual(
        (0..<case_.kept_rows.count).map { Int(masks[0][$0 * unit]) }, case_.kept_rows, "\(case_.weight.shape) \(case_.amount)")
      // The bias follows its row.
      XCTAssertEqual(masks[1].map { Int($0) }, case_.kept_rows)
    }
  }

  func testSingularValuesAndTruncationAreTorchsOnItsFixture() throws {
    for case_ in try fixture().svd {
      let (rows, columns) = (case_.matrix.shape[0], case_.matrix.shape[1])
      let svd = try XCTUnwrap(SingularValueDecomposition(case_.matrix.values, rows: rows, columns: columns))
      XCTAssertEqual(svd.s.count, min(rows, columns))
      for (a, b) in zip(svd.s, case_.singular_values.values) { XCTAssertEqual(a, b, accuracy: 2e-5 * max(1, b)) }
      let (a, b) = svd.factors(rank: 2)
      for i in 0..<rows {
        for j in 0..<columns {
          let product = (0..<2).reduce(Float(0)) { $0 + b[i * 2 + $1] * a[$1 * columns + j] }
          XCTAssertEqual(product, case_.rank2.values[i * columns + j], accuracy: 2e-5, "\(i),\(j)")
        }
      }
      // Full rank gives the matrix back; the energy rule picks the smallest rank that keeps it.
      let full = svd.factors(rank: svd.k)
      for i in 0..<rows {
        for j in 0..<columns {
          let product = (0..<svd.k).reduce(Float(0)) { $0 + full.b[i * svd.k + $1] * full.a[$1 * columns + j] }
          XCTAssertEqual(product, case_.matrix.values[i * columns + j], accuracy: 2e-5)
        }
      }
      let energies = svd.s.map { $0 * $0 }
      let total = energies.reduce(0, +)
      XCTAssertEqual(svd.rank(keepingEnergy: 1), svd.k)
      XCTAssertEqual(svd.rank(keepingEnergy: Double(energies[0] / total)), 1)
      XCTAssertEqual(svd.rank(keepingEnergy: Double(energies[0] / total) + 1e-4), 2)
    }
    XCTAssertNil(SingularValueDecomposition([1, .nan, 0, 1], rows: 2, columns: 2), "a NaN is refused, not decomposed")
  }

  /// The smaller network computes what the masked one computes: conv → batch norm → pool →
  /// flatten → linear → batch norm → linear, in evaluation mode, with trained-looking statistics.
  func testTheSmallerNetworkEqualsTheMaskedOne() throws {
    let layers: [LayerSpec] = [
      .conv2d(Conv2DSpec(out: 6, kernel: 3, padding: 1)), .batchNorm(BatchNormSpec()), .relu, .maxPool(2), .flatten,
      .linear(LinearSpec(out: 10)), .batchNorm(BatchNormSpec()), .relu, .dropout(0.2), .linear(LinearSpec(out: 2)),
    ]
    let (pruning, model) = try stage(
      MagnitudePruning.self, layers, inputShape: [2, 4, 4],
      ["structure": .text("structured"), "amount": .number(0.5), "schedule": .text("one_shot")])
    var generator = SeededGenerator(seed: 9)
    for (_, tensor) in model.buffers where tensor.count > 0 {
      tensor.storage = (0..<tensor.count).map { _ in Float.random(in: 0.5...1.5, using: &generator) }
    }
    // One-shot masks, applied to the tensors as `prune(to:)` does.
    let values = pruning.weights.map { $0.tensor.storage }
    let masks = pruning.structuredMasks(values: values, target: 0.5)
    for ((_, tensor), mask) in zip(pruning.weights, masks) { tensor.storage = zip(tensor.storage, mask).map { $0 * $1 } }
    try pruning.restore(
      MethodState(arrays: zip(pruning.weights, masks).map { NamedArray(name: $0.0.name, shape: $0.0.tensor.shape, values: $0.1) }),
      file: "test")
    model.eval()
    let small = pruning.finalModel(model)
    XCTAssertEqual(small.parameterCount < model.parameterCount, true)
    let specs = try XCTUnwrap(pruning.finalLayers)
    guard case .conv2d(let conv) = specs[0], case .linear(let linear) = specs[5] else { return XCTFail("\(specs)") }
    XCTAssertEqual([conv.out, linear.out], [3, 5])
    // It is what its layer list builds: the same keys and shapes.
    let rebuilt = try ModelBuilder(file: "r", keyPath: "m").build(.layers(specs), inputShape: [2, 4, 4], classCount: 2, seed: 1)
    XCTAssertEqual(rebuilt.stateDict.map { "\($0.name)\($0.tensor.shape)" }, small.stateDict.map { "\($0.name)\($0.tensor.shape)" })
    let x = Tensor(shape: [5, 2, 4, 4], storage: (0..<160).map { _ in Float.random(in: -1...1, using: &generator) })
    let (a, b) = noGrad { (model(x).storage, small(x).storage) }
    for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) }
  }

  // MARK: Runs

  static let recipeYAML = """
    name: structured-digits
    seed: 4
    data: {dataset: digits, validation: 0.25}
    teacher:
      model: {mlp: {hidden: [48]}}
      train: {epochs: 2, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}
    student:
      model: {mlp: {hidden: [32, 24], dropout: 0.1}}
      train: {epochs: 2, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}, schedule: cosine}
    distillation: {method: kd}
    compress:
      - prune: {structure: structured, amount: 0.5, epochs: 2, frequency: 5}
      - low_rank: {rank: 6, epochs: 2}
      - quantize

    """

  /// The recipe run straight through once for the whole class.
  static let straight: Result<(String, RunSummary), any Error> = Result {
    let folder = NSTemporaryDirectory() + "distill-structured-straight-\(UUID().uuidString)"
    return (folder, try makeTrainer(recipeYAML, folder: folder).run())
  }

  override class func tearDown() {
    if case .success(let (folder, _)) = straight { try? FileManager.default.removeItem(atPath: folder) }
  }

  func testPruneStructurallyThenFactoriseThenQuantizeWritesSmallerPlainModels() throws {
    let (folder, summary) = try Self.straight.get()
    XCTAssertEqual(summary.stages.map(\.label), ["prune", "low_rank", "quantize"])
    XCTAssertEqual(summary.result, "student-quantize.h5")
    let run = RunFolder(path: folder)
    // Structured: a dense 16-12 student, no masks group, evaluating as the stage said.
    let pruned = try HDF5File.openReadOnly(run.stageModelPath("prune"))
    XCTAssertEqual(try pruned.rootGroup().memberNames(), ["student"])
    let prunedGroup = try pruned.group("student")
    XCTAssertEqual(try prunedGroup.dataset("1.weight").shape, [16, 64])
    XCTAssertEqual(try prunedGroup.dataset("4.weight").shape, [12, 16])
    XCTAssertEqual(try prunedGroup.dataset("7.weight").shape, [10, 12])
    let prune = try XCTUnwrap(summary.stages.first)
    XCTAssertEqual(prune.figures["removed_neurons"], 28)
    XCTAssertEqual(prune.figures["neurons_kept"] ?? 0, 0.5, accuracy: 1e-12)
    XCTAssertEqual(
      try evaluateWeights(file: run.stageModelPath("prune")).evaluation.accuracy, prune.result.test.accuracy, accuracy: 1e-12)
    XCTAssertLessThan(prune.result.parameterCount, summary.student.parameterCount)
    // Low rank: the two hidden layers as rank-6 pairs, keys as PyTorch's nested Sequential.
    let factored = try HDF5File.openReadOnly(run.stageModelPath("low_rank")).group("student")
    XCTAssertEqual(try factored.dataset("1.0.weight").shape, [6, 64])
    XCTAssertEqual(try factored.dataset("1.1.weight").shape, [16, 6])
    XCTAssertEqual(try factored.dataset("1.1.bias").shape, [16])
    XCTAssertEqual(try factored.dataset("4.0.weight").shape, [6, 16])
    XCTAssertEqual(try factored.dataset("7.weight").shape, [10, 12])
    let architecture = try factored.stringAttribute("architecture")
    XCTAssertTrue(architecture.contains("\"rank\":6"), architecture)
    let lowRank = summary.stages[1]
    XCTAssertEqual(lowRank.figures["rank_1"], 6)
    XCTAssertEqual(lowRank.figures["parameters_kept"] ?? 0, Double(6 * (64 + 16) + 6 * (16 + 12)) / Double(64 * 16 + 16 * 12), accuracy: 1e-12)
    XCTAssertEqual(
      try evaluateWeights(file: run.stageModelPath("low_rank")).evaluation.accuracy, lowRank.result.test.accuracy,
      accuracy: 1e-12)
    // distill compare: each stage's row has its own network's FLOPs and parameters.
    let rows = try ComparedRun.rows(folder: folder)
    XCTAssertEqual(rows.map(\.studentFLOPs), [6112, 2672, 1536, 1536])
    XCTAssertEqual(rows.map(\.studentParameters), [summary.student.parameterCount] + summary.stages.map(\.result.parameterCount))
    // Every stage fine-tuned with the distillation, on the network it received.
    let lines = try withJSON(folder + "/metrics.jsonl")
    XCTAssertEqual(lines.filter { $0["model"] as? String == "low_rank" }.count, 2)
    XCTAssertEqual(summary.stages[2].result.test.accuracy, lowRank.result.test.accuracy, accuracy: 0.03)
  }

  func testStoppedWithinEachReshapingStageThenResumedGivesTheUninterruptedResult() throws {
    let (reference, _) = try Self.straight.get()
    let folder = folders.make()
    // Within the structured prune's ramp, then within the low-rank stage (its network is the
    // checkpoint's), then to the end.
    XCTAssertNil(
      try runStopping(makeTrainer(Self.recipeYAML, folder: folder)) {
        if case .batch(let p) = $0 { return p.phase == "prune" && p.epoch == 1 && p.batch == 12 } else { return false }
      })
    var (trainer, point) = try resumable(folder)
    XCTAssertEqual(point.state.phase, "prune")
    XCTAssertNil(
      try runStopping(trainer, from: point) {
        if case .batch(let p) = $0 { return p.phase == "low_rank" && p.epoch == 2 && p.batch == 5 } else { return false }
      })
    (trainer, point) = try resumable(folder)
    XCTAssertEqual(point.state.phase, "low_rank")
    XCTAssertNotNil(try runStopping(trainer, from: point))
    try assertSameResults(reference, folder)
    for name in ["student-prune.h5", "student-low_rank.h5", "student-quantize.h5"] {
      XCTAssertEqual(try datasetBits("\(reference)/\(name)"), try datasetBits("\(folder)/\(name)"), name)
    }
  }

  /// A student loaded with `student.init` trains for 0 epochs: tested as loaded, then compressed.
  func testALoadedStudentOfZeroEpochsIsCompressedAsLoaded() throws {
    let (reference, straight) = try Self.straight.get()
    let base = Self.recipeYAML.components(separatedBy: "compress:")[0]
    let loaded = base.replacingOccurrences(
      of: "  model: {mlp: {hidden: [32, 24], dropout: 0.1}}\n  train: {epochs: 2,",
      with: "  model: {mlp: {hidden: [32, 24], dropout: 0.1}}\n  init: \(reference)/student.h5\n  train: {epochs: 0,")
    XCTAssertNotEqual(loaded, base)
    let folder = folders.make()
    let summary = try makeTrainer(
      loaded + "compress: [{prune: {structure: structured, amount: 0.25, schedule: one_shot, epochs: 0}}]\n", folder: folder
    ).run()
    XCTAssertEqual(summary.student.test.accuracy, straight.student.test.accuracy, accuracy: 1e-12)
    XCTAssertEqual(summary.student.epochs, 0)
    XCTAssertEqual(summary.stages.map(\.label), ["prune"])
    XCTAssertFalse(try withJSON(folder + "/metrics.jsonl").contains { $0["model"] as? String == "student" })
    // distill compare counts the loaded student as 0 J, says so, and the stage's row as measured.
    let rows = try ComparedRun.rows(folder: folder)
    XCTAssertEqual(rows.first?.studentJoules, 0)
    XCTAssertNotNil(rows.first?.energySource)
    XCTAssertTrue(rows.first?.note?.contains("student.init") ?? false, "\(String(describing: rows.first?.note))")
    XCTAssertEqual(rows.count, 2)
    // Without init, 0 epochs is refused, saying when it is allowed.
    XCTAssertThrowsError(
      try Recipe.parse(yaml: base.replacingOccurrences(of: "schedule: cosine}", with: "schedule: cosine}").replacingOccurrences(
        of: "train: {epochs: 2, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}, schedule: cosine}",
        with: "train: {epochs: 0, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}, schedule: cosine}"), file: "r.yaml")
    ) { XCTAssertTrue("\($0)".contains("student.train.epochs") && "\($0)".contains("student.init"), "\($0)") }
  }

  // MARK: Bad input

  func testStructuredAndLowRankSettingsThatDoNotFitFailBeforeTraining() throws {
    let base = Self.recipeYAML.components(separatedBy: "compress:")[0]
    for (stages, key, expected) in [
      ("[{prune: {structure: structured, scope: global}}]", "compress[0].prune.scope", "scope: layer"),
      ("[{prune: {structure: structured, layers: [7]}}]", "compress[0].prune.layers", "class scores"),
      ("[{prune: {structure: structured, layers: [2]}}]", "compress[0].prune.layers", "layer 2 is relu"),
      ("[{prune: {structure: structured, amount: 0.99}}]", "compress[0].prune.amount", "at least one"),
      ("[{low_rank: {rank: 25}}]", "compress[0].low_rank.rank", "at most 24"),
      ("[{low_rank: {layers: [3]}}]", "compress[0].low_rank.layers", "layer 3 is dropout"),
      ("[{low_rank: {layers: [12]}}]", "compress[0].low_rank.layers", "no layer 12"),
    ] {
      let folder = folders.make()
      let trainer = try makeTrainer(base + "compress: \(stages)\n", folder: folder)
      XCTAssertThrowsError(try trainer.run(), stages) { error in
        let text = "\(error)"
        XCTAssertTrue(text.contains("recipes/resume.yaml: \(key)") && text.contains(expected), text)
      }
      XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/metrics.jsonl"), "nothing trained: \(stages)")
    }
    // A recipe's own factorised layer: a rank below 1 is refused when the recipe is read.
    XCTAssertThrowsError(
      try Recipe.parse(
        yaml: base.replacingOccurrences(of: "{mlp: {hidden: [32, 24], dropout: 0.1}}", with: "{layers: [flatten, {linear: {out: 10, rank: 0}}]}"),
        file: "r.yaml")
    ) { XCTAssertTrue("\($0)".contains("student.model.layers[1].linear.rank"), "\($0)") }
  }

  /// At full rank the factorised network computes the dense one (up to rounding); the default
  /// layers are every linear but the last.
  func testFullRankFactorisationKeepsTheFunction() throws {
    let layers: [LayerSpec] = [.linear(LinearSpec(out: 8)), .relu, .linear(LinearSpec(out: 5)), .tanh, .linear(LinearSpec(out: 2))]
    let (stage, model) = try stage(LowRankFactorization.self, layers, inputShape: [5], ["rank": .integer(5)])
    XCTAssertEqual(stage.positions, [0, 2])
    let reshaped = try XCTUnwrap(try stage.reshape(StudentNetwork(model: model, layers: layers), masters: nil))
    XCTAssertTrue(reshaped.model.layers[0] is LowRankLinear && reshaped.model.layers[2] is LowRankLinear)
    XCTAssertTrue(reshaped.model.layers[4] is Linear)
    guard case .linear(let spec) = reshaped.layers[2] else { return XCTFail() }
    XCTAssertEqual([spec.out, spec.rank], [5, 5])
    var generator = SeededGenerator(seed: 2)
    let x = Tensor(shape: [4, 5], storage: (0..<20).map { _ in Float.random(in: -1...1, using: &generator) })
    let (a, b) = noGrad { (model(x).storage, reshaped.model(x).storage) }
    for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) }
    XCTAssertEqual(stage.figures.first { $0.name == "parameters_kept" }?.value ?? 0, Double(5 * 13 + 5 * 13) / Double(40 + 40), accuracy: 1e-12)
  }

  func testFactorisingAnAlreadyFactorisedLayerIsRefused() throws {
    let layers: [LayerSpec] = [.linear(LinearSpec(out: 8, rank: 3)), .relu, .linear(LinearSpec(out: 2))]
    XCTAssertThrowsError(try stage(LowRankFactorization.self, layers, inputShape: [5], ["layers": .layers([0])])) {
      XCTAssertTrue("\($0)".contains("compress[0].low_rank.layers") && "\($0)".contains("already factorised"), "\($0)")
    }
  }
}
