import XCTest

@testable import Distill
@testable import DistillRecipes

/// One test per range check of model descriptions, and the layer lists the shorthands expand to.
final class ModelValidationTests: XCTestCase {
  /// The base recipe with the student's model replaced by `model` (a flow-style value).
  func studentModel(_ model: String) -> String {
    edit("mlp: {hidden: [800, 800]}", model)
  }

  // MARK: Shorthands

  func testMLPHiddenWidthAtLeastOne() {
    assertOutOfRange(
      studentModel("mlp: {hidden: [800, 0]}"), at: "student.model.mlp.hidden[1]", requirement: "at least 1")
  }

  func testMLPDropoutBelowOne() {
    assertOutOfRange(
      studentModel("mlp: {hidden: [800], dropout: 1.0}"), at: "student.model.mlp.dropout",
      requirement: "in [0, 1)")
  }

  func testMLPInputDropoutNotNegative() {
    assertOutOfRange(
      studentModel("mlp: {hidden: [800], input_dropout: -0.1}"), at: "student.model.mlp.input_dropout",
      requirement: "in [0, 1)")
  }

  func testCNNNeedsChannels() {
    assertOutOfRange(
      studentModel("cnn: {channels: []}"), at: "student.model.cnn.channels",
      requirement: "a list of at least one")
  }

  func testCNNChannelsAtLeastOne() {
    assertOutOfRange(
      studentModel("cnn: {channels: [8, 0]}"), at: "student.model.cnn.channels[1]", requirement: "at least 1")
  }

  func testCNNHiddenWidthAtLeastOne() {
    assertOutOfRange(
      studentModel("cnn: {channels: [8], hidden: [-3]}"), at: "student.model.cnn.hidden[0]",
      requirement: "at least 1")
  }

  func testCNNDropoutBelowOne() {
    assertOutOfRange(
      studentModel("cnn: {channels: [8], dropout: 2}"), at: "student.model.cnn.dropout",
      requirement: "in [0, 1)")
  }

  // MARK: Explicit layers

  func testLayersNotEmpty() {
    assertOutOfRange(
      studentModel("layers: []"), at: "student.model.layers", requirement: "a list of at least one layer")
  }

  func testLinearOutAtLeastOne() {
    assertOutOfRange(
      studentModel("layers: [flatten, {linear: {out: 0}}, relu, {linear: {out: 10}}]"),
      at: "student.model.layers[1].linear.out", requirement: "at least 1")
  }

  func testConvolutionSettings() {
    let cases: [(String, String, String)] = [
      ("{out: 0, kernel: 3}", "out", "at least 1"),
      ("{out: 8, kernel: 0}", "kernel", "at least 1"),
      ("{out: 8, kernel: 3, padding: -1}", "padding", "at least 0"),
      ("{out: 8, kernel: 3, stride: 0}", "stride", "at least 1"),
    ]
    for (settings, key, requirement) in cases {
      assertOutOfRange(
        studentModel("layers: [{conv2d: \(settings)}, flatten, {linear: {out: 10}}]"),
        at: "student.model.layers[0].conv2d.\(key)", requirement: requirement)
    }
  }

  func testBatchNormEpsilonPositive() {
    assertOutOfRange(
      studentModel(
        "layers: [flatten, {linear: {out: 32}}, {batch_norm: {eps: 0}}, relu, {linear: {out: 10}}]"),
      at: "student.model.layers[2].batch_norm.eps", requirement: "greater than 0")
  }

  func testBatchNormMomentumInRange() {
    assertOutOfRange(
      studentModel(
        "layers: [flatten, {linear: {out: 32}}, {batch_norm: {momentum: 0}}, {linear: {out: 10}}]"),
      at: "student.model.layers[2].batch_norm.momentum", requirement: "in (0, 1]")
  }

  func testPoolSizesAtLeastOne() {
    assertOutOfRange(
      studentModel("layers: [{max_pool: 0}, flatten, {linear: {out: 10}}]"),
      at: "student.model.layers[0].max_pool",
      requirement: "at least 1")
    assertOutOfRange(
      studentModel("layers: [{avg_pool: -2}, flatten, {linear: {out: 10}}]"),
      at: "student.model.layers[0].avg_pool",
      requirement: "at least 1")
  }

  func testBarePoolNeedsASize() {
    assertRejects(
      studentModel("layers: [max_pool, flatten, {linear: {out: 10}}]"), kind: "wrongType",
      at: "student.model.layers[0].max_pool", mentions: ["expected an integer, found null"])
  }

  func testDropoutLayerBelowOne() {
    assertOutOfRange(
      studentModel("layers: [flatten, {dropout: 1.5}, {linear: {out: 10}}]"),
      at: "student.model.layers[1].dropout",
      requirement: "in [0, 1)")
  }

  func testLastLayerMustBeLinear() {
    assertRejects(
      studentModel("layers: [flatten, {linear: {out: 10}}, relu]"), kind: "conflict",
      at: "student.model.layers[2]",
      mentions: ["the last layer must be a linear layer"])
  }

  func testLastLayerProducesOneOutputPerClass() {
    assertOutOfRange(
      studentModel("layers: [flatten, {linear: {out: 12}}]"), at: "student.model.layers[1].linear.out",
      requirement: "10, one output per class")
  }

  func testTeacherModelIsCheckedToo() {
    assertOutOfRange(
      edit("dropout: 0.5, input_dropout: 0.2", "dropout: 0.5, input_dropout: 1"),
      at: "teacher.model.mlp.input_dropout",
      requirement: "in [0, 1)")
  }

  // MARK: Accepted forms and expansions

  func testEveryLayerForm() throws {
    let recipe = try Recipe.parse(
      yaml: studentModel(
        """
        layers:
              - conv2d: {out: 32, kernel: 3, padding: 1, stride: 1}
              - batch_norm
              - relu
              - max_pool: 2
              - conv2d: {out: 64, kernel: 3, bias: false}
              - batch_norm: {eps: 0.001, momentum: 0.01}
              - gelu
              - avg_pool: 2
              - flatten
              - dropout: 0.3
              - linear: {out: 128}
              - tanh: {}
              - linear: {out: 10, bias: false}
        """))
    XCTAssertEqual(
      recipe.student.model,
      .layers([
        .conv2d(Conv2DSpec(out: 32, kernel: 3, padding: 1, stride: 1)), .batchNorm(BatchNormSpec()), .relu,
        .maxPool(2), .conv2d(Conv2DSpec(out: 64, kernel: 3, bias: false)),
        .batchNorm(BatchNormSpec(eps: 0.001, momentum: 0.01)), .gelu, .avgPool(2), .flatten, .dropout(0.3),
        .linear(LinearSpec(out: 128)), .tanh, .linear(LinearSpec(out: 10, bias: false)),
      ]))
  }

  func testMLPExpansion() {
    let model = ModelSpec.mlp(
      MLPSpec(hidden: [1200, 1200], dropout: 0.5, inputDropout: 0.2, activation: .gelu))
    XCTAssertEqual(
      model.expandedLayers(classCount: 10),
      [
        .flatten, .dropout(0.2), .linear(LinearSpec(out: 1200)), .gelu, .dropout(0.5),
        .linear(LinearSpec(out: 1200)), .gelu, .dropout(0.5), .linear(LinearSpec(out: 10)),
      ])
    XCTAssertEqual(
      ModelSpec.mlp(MLPSpec(hidden: [])).expandedLayers(classCount: 3),
      [.flatten, .linear(LinearSpec(out: 3))])
  }

  func testCNNExpansionMatchesTheFashionRecipeComment() throws {
    let recipe = try Recipe.load(path: recipesFolder + "/fashion-cnn-kd.yaml")
    XCTAssertEqual(
      recipe.teacher?.model?.expandedLayers(classCount: 10),
      [
        .conv2d(Conv2DSpec(out: 32, kernel: 3, padding: 1)), .batchNorm(BatchNormSpec()), .relu, .maxPool(2),
        .conv2d(Conv2DSpec(out: 64, kernel: 3, padding: 1)), .batchNorm(BatchNormSpec()), .relu, .maxPool(2),
        .flatten, .linear(LinearSpec(out: 128)), .relu, .dropout(0.3), .linear(LinearSpec(out: 10)),
      ])
    XCTAssertEqual(
      ModelSpec.cnn(CNNSpec(channels: [4])).expandedLayers(classCount: 2),
      [
        .conv2d(Conv2DSpec(out: 4, kernel: 3, padding: 1)), .relu, .maxPool(2), .flatten,
        .linear(LinearSpec(out: 2)),
      ])
  }
}
