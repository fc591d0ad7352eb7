import Autodiff
import NN
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// Layer lists → `Sequential`: inferred sizes, PyTorch key names, seeded initialisation, and
/// an error naming the recipe file and key path for every way shapes can fail to fit.
final class ModelBuilderTests: XCTestCase {
  let builder = ModelBuilder(file: "recipes/x.yaml", keyPath: "student.model")

  func testMLPShorthandKeysAndShapes() throws {
    let model = ModelSpec.mlp(MLPSpec(hidden: [32, 16], dropout: 0.5, inputDropout: 0.2))
    let network = try builder.build(model, inputShape: [1, 8, 8], classCount: 10, seed: 1)
    // 0 flatten, 1 dropout, 2 linear, 3 relu, 4 dropout, 5 linear, 6 relu, 7 dropout, 8 linear
    XCTAssertEqual(network.layers.count, 9)
    XCTAssertEqual(
      network.stateDict.map(\.name), ["2.weight", "2.bias", "5.weight", "5.bias", "8.weight", "8.bias"])
    XCTAssertEqual(
      network.stateDict.map(\.tensor.shape), [[32, 64], [32], [16, 32], [16], [10, 16], [10]])
    let shapes = try builder.outputShapes(of: model, inputShape: [1, 8, 8], classCount: 10)
    XCTAssertEqual(shapes, [[64], [64], [32], [32], [32], [16], [16], [16], [10]])
    let y = noGrad { network(Tensor(repeating: 0.5, shape: [3, 1, 8, 8])) }
    XCTAssertEqual(y.shape, [3, 10])
  }

  func testCNNShorthandInfersChannelsAndFlattenedSize() throws {
    let model = ModelSpec.cnn(CNNSpec(channels: [4, 8], hidden: [16], batchNorm: true))
    let network = try builder.build(model, inputShape: [1, 8, 8], classCount: 10, seed: 3)
    // 0 conv 1 bn 2 relu 3 pool 4 conv 5 bn 6 relu 7 pool 8 flatten 9 linear 10 relu 11 linear
    XCTAssertEqual(
      network.stateDict.map(\.name),
      [
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "4.weight", "4.bias",
        "5.weight", "5.bias", "5.running_mean", "5.running_var", "9.weight", "9.bias", "11.weight", "11.bias",
      ])
    XCTAssertEqual(network.stateDict[0].tensor.shape, [4, 1, 3, 3])
    XCTAssertEqual(network.stateDict[6].tensor.shape, [8, 4, 3, 3])
    XCTAssertEqual(network.stateDict[12].tensor.shape, [16, 8 * 2 * 2])
    XCTAssertTrue(network.layers[1] is BatchNorm2D)
    let y = noGrad { network(Tensor(repeating: 0.1, shape: [2, 1, 8, 8])) }
    XCTAssertEqual(y.shape, [2, 10])
  }

  func testExplicitLayersWithStridedConvolutionAndBatchNorm1D() throws {
    let model = ModelSpec.layers([
      .conv2d(Conv2DSpec(out: 3, kernel: 3, padding: 0, stride: 2)), .tanh, .avgPool(1), .flatten,
      .linear(LinearSpec(out: 5, bias: false)), .batchNorm(BatchNormSpec()), .gelu,
      .linear(LinearSpec(out: 4)),
    ])
    let shapes = try builder.outputShapes(of: model, inputShape: [2, 9, 7], classCount: 4)
    XCTAssertEqual(shapes[0], [3, 4, 3])  // ⌊(9 − 3)/2⌋ + 1, ⌊(7 − 3)/2⌋ + 1
    XCTAssertEqual(shapes[3], [36])
    let network = try builder.build(model, inputShape: [2, 9, 7], classCount: 4, seed: 0)
    XCTAssertEqual(
      network.stateDict.map(\.name),
      [
        "0.weight", "0.bias", "4.weight", "5.weight", "5.bias", "5.running_mean", "5.running_var", "7.weight",
        "7.bias",
      ])
    XCTAssertTrue(network.layers[5] is BatchNorm1D)
  }

  func testSameSeedSameWeightsAndDropoutDoesNotMoveThem() throws {
    let plain = try builder.build(.mlp(MLPSpec(hidden: [8])), inputShape: [6], classCount: 3, seed: 9)
    let again = try builder.build(.mlp(MLPSpec(hidden: [8])), inputShape: [6], classCount: 3, seed: 9)
    let dropped = try builder.build(
      .mlp(MLPSpec(hidden: [8], dropout: 0.3, inputDropout: 0.1)), inputShape: [6], classCount: 3, seed: 9)
    let other = try builder.build(.mlp(MLPSpec(hidden: [8])), inputShape: [6], classCount: 3, seed: 10)
    XCTAssertEqual(plain.parameters.map(\.tensor.storage), again.parameters.map(\.tensor.storage))
    XCTAssertEqual(plain.parameters.map(\.tensor.storage), dropped.parameters.map(\.tensor.storage))
    XCTAssertNotEqual(plain.parameters[0].tensor.storage, other.parameters[0].tensor.storage)
  }

  // MARK: Errors

  func testConvolutionOnFlatFeaturesNamesTheLayerAndSuggestsDataShape() {
    let model = ModelSpec.layers([
      .conv2d(Conv2DSpec(out: 4, kernel: 3)), .flatten, .linear(LinearSpec(out: 10)),
    ])
    assertShapeError(model, input: [64], keyPath: "student.model.layers[0]", contains: "data.shape")
  }

  func testCNNShorthandOnFlatFeaturesNamesTheShorthand() {
    let model = ModelSpec.cnn(CNNSpec(channels: [4]))
    assertShapeError(model, input: [64], keyPath: "student.model.cnn", contains: "0 (conv2d)")
  }

  func testLinearOnImagesAsksForFlatten() {
    let model = ModelSpec.layers([.linear(LinearSpec(out: 10))])
    assertShapeError(model, input: [1, 8, 8], keyPath: "student.model.layers[0]", contains: "flatten")
  }

  func testPoolLargerThanImage() {
    let model = ModelSpec.layers([.maxPool(4), .maxPool(4), .flatten, .linear(LinearSpec(out: 10))])
    assertShapeError(model, input: [1, 8, 8], keyPath: "student.model.layers[1]", contains: "2×2")
  }

  func testKernelLargerThanImage() {
    let model = ModelSpec.layers([
      .conv2d(Conv2DSpec(out: 2, kernel: 9)), .flatten, .linear(LinearSpec(out: 10)),
    ])
    assertShapeError(model, input: [1, 8, 8], keyPath: "student.model.layers[0]", contains: "kernel 9")
  }

  func testWrongClassCountAtTheEnd() {
    let model = ModelSpec.layers([.flatten, .linear(LinearSpec(out: 7))])
    assertShapeError(model, input: [64], keyPath: "student.model.layers[1]", contains: "[10]")
  }

  private func assertShapeError(
    _ model: ModelSpec, input: [Int], keyPath: String, contains text: String,
    file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertThrowsError(
      try builder.build(model, inputShape: input, classCount: 10, seed: 0), file: file, line: line
    ) {
      guard case .shapeMismatch(let recipeFile, let path, _, let given, _)? = $0 as? TrainingError else {
        return XCTFail("expected a shape mismatch, got \($0)", file: file, line: line)
      }
      XCTAssertEqual(recipeFile, "recipes/x.yaml", file: file, line: line)
      XCTAssertEqual(path, keyPath, file: file, line: line)
      XCTAssertFalse(given.isEmpty, file: file, line: line)
      let message = "\($0)"
      XCTAssertTrue(message.hasPrefix("recipes/x.yaml: \(keyPath): "), message, file: file, line: line)
      XCTAssertTrue(message.contains(text), message, file: file, line: line)
    }
  }
}
