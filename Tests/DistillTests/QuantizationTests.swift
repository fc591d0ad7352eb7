import Autodiff
import Checkpoints
import Foundation
import NN
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// The `quantize` stage: its recipe checks, a distil → prune → quantize run (int8 model file,
/// its accuracy through `distill eval`, the int8 network against the float one), the same file
/// after a stop and resume, and the int8 file's errors.
final class QuantizationTests: XCTestCase {
  private let folders = TemporaryFolders(prefix: "distill-quantization-tests")
  override func tearDown() { folders.removeAll() }

  static let yaml =
    PruningTests.recipeYAML
    + "compress:\n  - prune: {amount: 0.5, epochs: 1}\n  - quantize: {calibration_samples: 300}\n"

  func testRecipeChecksOfTheQuantizeStage() throws {
    func problem(_ compress: String) -> String {
      do {
        let trainer = try makeTrainer(PruningTests.recipeYAML + "compress:\n" + compress, folder: folders.make())
        _ = try trainer.run()
        return "no error"
      } catch {
        return "\(error)"
      }
    }
    let order = problem("  - quantize\n  - prune\n")
    XCTAssertTrue(order.contains("compress[0]") && order.contains("must be the last stage"), order)
    let percentile = problem("  - quantize: {observer: percentile, percentile: 40}\n")
    XCTAssertTrue(percentile.contains("compress[0].quantize.percentile") && percentile.contains("(50, 100]"), percentile)
    let layer = problem("  - quantize: {layers: [2]}\n")
    XCTAssertTrue(layer.contains("compress[0].quantize.layers") && layer.contains("relu"), layer)
    let conv = problem("  - quantize: {layers: [3]}\n").replacingOccurrences(of: "\n", with: " ")
    XCTAssertTrue(conv.contains("compress[0].quantize.layers") && conv.contains("linear and conv2d"), conv)
    let observer = problem("  - quantize: {observer: histogram}\n")
    XCTAssertTrue(observer.contains("compress[0].quantize.observer") && observer.contains("minmax, percentile"), observer)
  }

  /// The run straight through once for the whole class.
  static let straight: Result<(String, RunSummary), any Error> = Result {
    let folder = NSTemporaryDirectory() + "distill-quantization-straight-\(UUID().uuidString)"
    return (folder, try makeTrainer(yaml, folder: folder).run())
  }

  override class func tearDown() {
    if case .success(let (folder, _)) = straight { try? FileManager.default.removeItem(atPath: folder) }
  }

  func testDistilPruneQuantizeWritesAnInt8ModelThatEvaluatesAsTheStageSaid() throws {
    let (folder, summary) = try Self.straight.get()
    XCTAssertEqual(summary.stages.map(\.label), ["prune", "quantize"])
    XCTAssertEqual(summary.result, "student-quantize.h5")
    let stage = summary.stages[1]
    XCTAssertEqual(stage.figures["quantized_layers"], 2)
    XCTAssertEqual(stage.figures["int8_weights"], Double(24 * 64 + 10 * 24))
    // int8 costs little accuracy on this student.
    XCTAssertEqual(stage.result.test.accuracy, summary.stages[0].result.test.accuracy, accuracy: 0.03)
    let path = folder + "/student-quantize.h5"
    let file = try HDF5File.openReadOnly(path)
    let group = try file.group("student")
    XCTAssertTrue(group.hasAttribute(quantizationAttribute))
    let weights = try group.dataset("1.weight")
    XCTAssertEqual(weights.shape, [24, 64])
    guard case .integer(1, true) = weights.elementType else { return XCTFail("\(weights.elementType)") }
    XCTAssertEqual(try group.dataset("1.weight_scale").shape, [24])
    XCTAssertEqual(try group.dataset("4.input_zero_point").readIntegers(expectedShape: []).count, 1)
    // 7-bit activations where oneDNN's int8 kernels would saturate 8-bit ones (no VNNI).
    XCTAssertEqual(
      try group.dataset("4.input_quant_max").readIntegers(expectedShape: []), [Int64(ActivationQuantization.machineQuantMax)])
    // The pruned zeros stay zeros in int8.
    let pruned = try HDF5File.openReadOnly(folder + "/student-prune.h5").group("student").dataset("1.weight").readFloats()
    let int8 = try weights.readInt8s()
    for (w, q) in zip(pruned, int8) where w == 0 { XCTAssertEqual(q, 0) }
    // distill eval reads the int8 file and gets the stage's test accuracy.
    let evaluated = try evaluateWeights(file: path)
    XCTAssertEqual(evaluated.evaluation.accuracy, stage.result.test.accuracy, accuracy: 1e-12)
    XCTAssertEqual(evaluated.evaluation.loss, stage.result.test.loss, accuracy: 1e-6)
  }

  func testStoppedBeforeQuantizeThenResumedGivesTheSameInt8Model() throws {
    let (reference, _) = try Self.straight.get()
    let folder = folders.make()
    XCTAssertNil(
      try runStopping(makeTrainer(Self.yaml, folder: folder)) {
        if case .epoch(let r) = $0 { return r.stage == "prune" && r.epoch == 1 } else { return false }
      })
    let (trainer, point) = try resumable(folder)
    XCTAssertEqual(point.state.phase, "prune")
    XCTAssertNotNil(try runStopping(trainer, from: point))
    XCTAssertEqual(try datasetBits(reference + "/student-quantize.h5"), try datasetBits(folder + "/student-quantize.h5"))
    try assertSameResults(reference, folder)
  }

  /// Quantization-aware fine-tuning: the ranges move from the calibration, the int8 network is
  /// built from the fine-tuned weights, and a stop mid-epoch resumes bit for bit.
  func testQuantizationAwareFineTuningResumesExactly() throws {
    let yaml = PruningTests.recipeYAML + "compress: [{quantize: {calibration_samples: 200, epochs: 2}}]\n"
    let reference = folders.make()
    let summary = try makeTrainer(yaml, folder: reference).run()
    let stage = try XCTUnwrap(summary.stages.first)
    XCTAssertEqual(stage.result.epochs, 2)
    XCTAssertEqual(stage.result.test.accuracy, summary.student.test.accuracy, accuracy: 0.05)
    XCTAssertEqual(try evaluateWeights(file: reference + "/student-quantize.h5").evaluation.accuracy, stage.result.test.accuracy, accuracy: 1e-12)
    let folder = folders.make()
    XCTAssertNil(
      try runStopping(makeTrainer(yaml, folder: folder)) {
        if case .batch(let p) = $0 { return p.phase == "quantize" && p.epoch == 2 && p.batch == 9 } else { return false }
      })
    var (trainer, point) = try resumable(folder)
    XCTAssertEqual(point.state.phase, "quantize")
    XCTAssertEqual(point.state.stageArrays.map(\.name).sorted(), ["1.input_range", "4.input_range"])
    // A checkpoint without one layer's input range is refused, naming the object, and changes nothing.
    var broken = point.state
    broken.stageArrays.removeAll { $0.name == "4.input_range" }
    XCTAssertThrowsError(try trainer.resume(from: ResumePoint(path: point.path, state: broken, warnings: []))) {
      XCTAssertTrue("\($0)".contains("/state/stage/arrays/4.input_range") && "\($0)".contains("missing"), "\($0)")
    }
    (trainer, point) = try resumable(folder)
    XCTAssertNotNil(try runStopping(trainer, from: point))
    XCTAssertEqual(try datasetBits(reference + "/student-quantize.h5"), try datasetBits(folder + "/student-quantize.h5"))
    try assertSameResults(reference, folder)
  }

  func testFakeQuantizationIsTheStraightThroughEstimator() {
    let x = Tensor(shape: [2, 3], storage: [0.26, -0.74, 3.0, 1.25, 0.5, -9], requiresGrad: true)
    // Rows with scales 0.5 and 0.25, int8 range [-4, 4]: row 0 → 0.5, -0.5, 2 (clamped from 3);
    // row 1 → 1 (clamped from 5 steps), 0.5, -1 (clamped from -9).
    let y = x.fakeQuantized(scales: [0.5, 0.25], zeroPoint: 0, range: -4...4)
    XCTAssertEqual(y.storage, [0.5, -0.5, 2, 1, 0.5, -1])
    (y * Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])).sum().backward()
    XCTAssertEqual(x.grad?.storage, [1, 2, 0, 0, 5, 0])  // zero where clamped
    // Per tensor with a zero point, as activations: q = rint(x/0.1) + 3 in [0, 255].
    let a = Tensor(shape: [3], storage: [-0.3, -0.35, 30], requiresGrad: true)
    let b = a.fakeQuantized(scales: [0.1], zeroPoint: 3, range: 0...255)
    XCTAssertEqual(b.storage.map { ($0 * 1000).rounded() / 1000 }, [-0.3, -0.3, 25.2])
    b.sum().backward()
    XCTAssertEqual(a.grad?.storage, [1, 0, 0])  // -0.35 → rint(-3.5) = -4 + 3 = -1 < 0: clamped
  }

  func testABrokenInt8FileIsRefusedNamingTheObject() throws {
    let (folder, _) = try Self.straight.get()
    let source = folder + "/student-quantize.h5"
    /// A copy of the int8 file with one dataset replaced (`write` writes it) or left out.
    func broken(_ name: String, _ write: ((HDF5Group) throws(CheckpointError) -> Void)?) throws -> String {
      let path = folders.make() + ".h5"
      let stored = try HDF5File.openReadOnly(source).group("student")
      try HDF5File.writeAtomically(to: path) { file throws(CheckpointError) in
        let group = try file.createGroup("student")
        try group.setAttribute(architectureAttribute, string: try stored.stringAttribute(architectureAttribute))
        try group.setAttribute(quantizationAttribute, string: try stored.stringAttribute(quantizationAttribute))
        for member in try stored.memberNames() {
          let dataset = try stored.dataset(member)
          if member == name {
            try write?(group)
          } else if case .integer(1, _) = dataset.elementType {
            try group.writeDataset(member, int8s: try dataset.readInt8s(), shape: dataset.shape)
          } else if case .integer = dataset.elementType {
            try group.writeDataset(member, integers: try dataset.readIntegers(), shape: dataset.shape)
          } else {
            try group.writeDataset(member, floats: try dataset.readFloats(), shape: dataset.shape)
          }
        }
      }
      do {
        _ = try evaluateWeights(file: path)
        return "no error"
      } catch {
        return "\(error)"
      }
    }
    XCTAssertEqual(try broken("none", nil), "no error")
    let scale = try broken("1.weight_scale") { group throws(CheckpointError) in try group.writeDataset("1.weight_scale", floats: [Float](repeating: -1, count: 24), shape: [24]) }
    XCTAssertTrue(scale.contains("/student/1.weight_scale") && scale.contains("scales > 0"), scale)
    let zero = try broken("4.input_zero_point") { group throws(CheckpointError) in try group.writeDataset("4.input_zero_point", integers: [300], shape: []) }
    XCTAssertTrue(
      zero.contains("/student/4.input_zero_point") && zero.contains("0...\(ActivationQuantization.machineQuantMax)"), zero)
    let quantMax = try broken("4.input_quant_max") { group throws(CheckpointError) in
      try group.writeDataset("4.input_quant_max", integers: [200], shape: [])
    }
    XCTAssertTrue(quantMax.contains("/student/4.input_quant_max") && quantMax.contains("255 or 127"), quantMax)
    let wide = try broken("1.weight") { group throws(CheckpointError) in try group.writeDataset("1.weight", integers: [Int64](repeating: 200, count: 24 * 64), shape: [24, 64]) }
    XCTAssertTrue(wide.contains("/student/1.weight") && wide.contains("int8"), wide)
    let missing = try broken("4.input_scale", nil)
    XCTAssertTrue(missing.contains("4.input_scale"), missing)
    let shape = try broken("1.weight") { group throws(CheckpointError) in try group.writeDataset("1.weight", int8s: [Int8](repeating: 1, count: 24), shape: [24]) }
    XCTAssertTrue(shape.contains("/student/1.weight"), shape)
  }
}

extension QuantizationTests {
  static let cnnYAML = """
    name: quantize-cnn
    seed: 2
    data: {dataset: digits, validation: 0.25, shape: [1, 8, 8]}
    teacher:
      model: {mlp: {hidden: [48]}}
      train: {epochs: 1, batch_size: 32, optimizer: {sgd: {lr: 0.1, momentum: 0.9}}}
    student:
      model: {layers: [{conv2d: {out: 6, kernel: 3, padding: 1}}, batch_norm, relu, {max_pool: 2}, {conv2d: {out: 8, kernel: 3}}, relu, flatten, {linear: {out: 10}}]}
      train: {epochs: 2, batch_size: 32, optimizer: {sgd: {lr: 0.05, momentum: 0.9}}}
    distillation: {method: kd}

    """

  /// Post-training, named convolutions run in int8 too (oneDNN's u8 × s8 convolution); the file
  /// holds their int8 filters and evaluates as the stage said. Quantization-aware, a conv2d
  /// layer is refused; by default only the linear layers are quantized.
  func testConvolutionsAreQuantizedPostTraining() throws {
    let folder = folders.make()
    let summary = try makeTrainer(
      Self.cnnYAML + "compress: [{quantize: {calibration_samples: 200, layers: [0, 4, 7]}}]\n", folder: folder
    ).run()
    let stage = try XCTUnwrap(summary.stages.first)
    XCTAssertEqual(stage.figures["quantized_layers"], 3)
    XCTAssertEqual(stage.figures["int8_weights"], Double(6 * 9 + 8 * 6 * 9 + 10 * 8 * 2 * 2))
    XCTAssertEqual(stage.result.test.accuracy, summary.student.test.accuracy, accuracy: 0.03)
    let group = try HDF5File.openReadOnly(folder + "/student-quantize.h5").group("student")
    XCTAssertEqual(try group.dataset("0.weight").shape, [6, 1, 3, 3])
    guard case .integer(1, true) = try group.dataset("4.weight").elementType else { return XCTFail() }
    XCTAssertEqual(try group.dataset("4.weight_scale").shape, [8])
    XCTAssertEqual(try group.dataset("1.running_mean").shape, [6], "batch norm stays Float")
    let evaluated = try evaluateWeights(file: folder + "/student-quantize.h5")
    XCTAssertEqual(evaluated.evaluation.accuracy, stage.result.test.accuracy, accuracy: 1e-12)

    let refused = folders.make()
    XCTAssertThrowsError(
      try makeTrainer(Self.cnnYAML + "compress: [{quantize: {epochs: 1, layers: [0, 7]}}]\n", folder: refused).run()
    ) { XCTAssertTrue("\($0)".contains("compress[0].quantize.layers") && "\($0)".contains("post-training only"), "\($0)") }
    // By default, post-training or quantization-aware, the linear layers only.
    for epochs in [0, 1] {
      let trained = try makeTrainer(
        Self.cnnYAML + "compress: [{quantize: {epochs: \(epochs), calibration_samples: 200}}]\n", folder: folders.make()
      ).run()
      XCTAssertEqual(trained.stages.first?.figures["quantized_layers"], 1, "epochs \(epochs)")
    }
  }
}
