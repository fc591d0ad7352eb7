import Foundation
import XCTest

@testable import Distill
@testable import DistillRecipes

/// One test per way a recipe fails to read or decode: files, YAML syntax, unknown, duplicate and
/// missing keys, wrong types, unknown choices and one-of mappings.
final class RecipeDecodingErrorTests: XCTestCase {
  func testBaseRecipeIsValid() throws {
    let recipe = try Recipe.parse(yaml: baseYAML, file: brokenFile)
    XCTAssertEqual(recipe.name, "test-recipe")
  }

  // MARK: Files and syntax

  func testMissingFile() {
    let path = NSTemporaryDirectory() + "distill-no-such-recipe-\(UUID().uuidString).yaml"
    XCTAssertThrowsError(try Recipe.load(path: path)) { error in
      XCTAssertEqual(error as? RecipeError, .cannotRead(file: path, reason: "no such file"))
      XCTAssertEqual("\(error)", "\(path): cannot read recipe (no such file)")
    }
  }

  func testFileThatIsNotUTF8() throws {
    let path = NSTemporaryDirectory() + "distill-binary-\(UUID().uuidString).yaml"
    try Data([0x6e, 0x61, 0xff, 0xfe, 0x0a]).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    XCTAssertThrowsError(try Recipe.load(path: path)) { error in
      XCTAssertEqual(error as? RecipeError, .cannotRead(file: path, reason: "not readable as UTF-8 text"))
    }
  }

  func testSyntaxErrorNamesFileAndLine() {
    // Line 5 opens a flow mapping that never closes.
    let yaml = edit("  validation: 5000\n", "  validation: {count: 5000\n")
    XCTAssertThrowsError(try Recipe.parse(yaml: yaml, file: brokenFile)) { error in
      guard case .syntax(let file, let line, _, _)? = error as? RecipeError else {
        return XCTFail("expected a syntax error, got \(error)")
      }
      XCTAssertEqual(file, brokenFile)
      XCTAssertGreaterThanOrEqual(line, 5)
      XCTAssertTrue("\(error)".hasPrefix("\(brokenFile):\(line):"), "\(error)")
      XCTAssertTrue("\(error)".contains("YAML syntax error: "), "\(error)")
      XCTAssertTrue("\(error)".contains("flow mapping at line 5"), "\(error)")
    }
  }

  func testSyntaxErrorOnBadIndentationPointsAtItsLine() {
    let yaml = "name: x\nseed: 1\n  data: 2\n"
    XCTAssertThrowsError(try Recipe.parse(yaml: yaml, file: brokenFile)) { error in
      guard case .syntax(_, let line, _, _)? = error as? RecipeError else {
        return XCTFail("expected a syntax error, got \(error)")
      }
      XCTAssertEqual(line, 3, "\(error)")
    }
  }

  func testLoadReadsAFile() throws {
    let path = NSTemporaryDirectory() + "distill-recipe-\(UUID().uuidString).yaml"
    try baseYAML.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    XCTAssertEqual(try Recipe.load(path: path), try Recipe.parse(yaml: baseYAML))
    let broken = edit("seed: 7", "sead: 7")
    try broken.write(toFile: path, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try Recipe.load(path: path)) { error in
      XCTAssertTrue("\(error)".hasPrefix("\(path): sead: unknown key 'sead'"), "\(error)")
    }
  }

  func testEmptyDocument() {
    assertRejects("# nothing here\n", kind: "wrongType", at: "", mentions: ["an empty document"])
  }

  func testTopLevelMustBeAMapping() {
    assertRejects(
      "- name\n- seed\n", kind: "wrongType", at: "", mentions: ["expected a mapping, found a list"])
  }

  func testMappingKeysMustBeScalars() {
    assertRejects(
      edit("  dataset: mnist\n", "  dataset: mnist\n  [a, b]: 1\n"), kind: "wrongType", at: "data",
      mentions: ["expected plain words as keys, found a list as a key"])
  }

  // MARK: Unknown and duplicate keys

  func testUnknownTopLevelKeySuggestsClosest() {
    assertRejects(
      edit("seed: 7", "sead: 7"), kind: "unknownKey", at: "sead",
      mentions: ["unknown key 'sead'; did you mean 'seed'?"])
  }

  func testUnknownNestedKeySuggestsClosest() {
    let yaml = edit("    optimizer:\n      sgd: {lr: 0.05", "    optimzer:\n      sgd: {lr: 0.05")
    XCTAssertThrowsError(try Recipe.parse(yaml: yaml, file: "recipes/x.yaml")) { error in
      XCTAssertEqual(
        "\(error)",
        "recipes/x.yaml: student.train.optimzer: unknown key 'optimzer'; did you mean 'optimizer'?")
    }
  }

  func testUnknownKeyWithoutCloseMatchListsAllowedKeys() {
    assertRejects(
      edit("  validation: 5000\n", "  validation: 5000\n  colour: red\n"), kind: "unknownKey",
      at: "data.colour",
      mentions: ["allowed here: dataset, path, validation, normalize, shape, label_column, classes"])
  }

  func testUnknownKeyMatchesDashesAndCase() {
    assertRejects(
      edit("  batch_size: 64", "  Batch-Size: 64"), kind: "unknownKey", at: "student.train.Batch-Size",
      mentions: ["did you mean 'batch_size'?"])
  }

  func testUnknownOneOfChoiceSuggestsClosest() {
    assertRejects(
      edit("sgd: {lr: 0.05", "sgdd: {lr: 0.05"), kind: "unknownKey", at: "student.train.optimizer.sgdd",
      mentions: ["did you mean 'sgd'?"])
  }

  func testUnknownBareLayerSuggestsClosest() {
    let yaml = edit("mlp: {hidden: [800, 800]}", "layers: [flatten, relux, {linear: {out: 10}}]")
    assertRejects(
      yaml, kind: "unknownKey", at: "student.model.layers[1].relux", mentions: ["did you mean 'relu'?"])
  }

  func testKeyOnAnEntryThatTakesNone() {
    let yaml = edit(
      "mlp: {hidden: [800, 800]}", "layers: [flatten, {relu: {inplace: true}}, {linear: {out: 10}}]")
    assertRejects(
      yaml, kind: "unknownKey", at: "student.model.layers[1].relu.inplace", mentions: ["takes no keys"])
  }

  func testDuplicateKey() {
    assertRejects(
      edit("seed: 7\n", "seed: 7\nseed: 8\n"), kind: "duplicateKey", at: "seed", mentions: ["twice"])
  }

  // MARK: Missing keys

  func testMissingName() {
    assertRejects(edit("name: test-recipe\n", ""), kind: "missingKey", at: "name", mentions: ["'name'"])
  }

  func testMissingNestedKey() {
    assertRejects(
      edit("    epochs: 2\n", ""), kind: "missingKey", at: "student.train.epochs",
      mentions: ["missing required key 'epochs'"])
  }

  func testMissingLearningRate() {
    assertRejects(
      edit("sgd: {lr: 0.05, momentum: 0.8}", "sgd: {momentum: 0.8}"), kind: "missingKey",
      at: "student.train.optimizer.sgd.lr")
  }

  func testMissingStudent() {
    let start = baseYAML.range(of: "student:\n")!.lowerBound
    let end = baseYAML.range(of: "distillation:\n")!.lowerBound
    var yaml = baseYAML
    yaml.removeSubrange(start..<end)
    assertRejects(yaml, kind: "missingKey", at: "student")
  }

  func testMissingDistillationMethod() {
    assertRejects(edit("  method: kd\n", ""), kind: "missingKey", at: "distillation.method")
  }

  func testMissingConvolutionKernel() {
    let yaml = edit("mlp: {hidden: [800, 800]}", "layers: [{conv2d: {out: 8}}, flatten, {linear: {out: 10}}]")
    assertRejects(yaml, kind: "missingKey", at: "student.model.layers[0].conv2d.kernel")
  }

  func testMissingStepSize() {
    assertRejects(
      edit("{step: {step_size: 1, gamma: 0.5}}", "{step: {gamma: 0.5}}"), kind: "missingKey",
      at: "student.train.schedule.step.step_size")
  }

  // MARK: Wrong types

  func testWordWhereIntegerExpected() {
    assertRejects(
      edit("    epochs: 2\n", "    epochs: ten\n"), kind: "wrongType", at: "student.train.epochs",
      mentions: ["expected an integer, found 'ten'"])
  }

  func testFractionWhereIntegerExpected() {
    assertRejects(
      edit("    epochs: 2\n", "    epochs: 2.5\n"), kind: "wrongType", at: "student.train.epochs",
      mentions: ["expected an integer, found '2.5'"])
  }

  func testNullWhereIntegerExpected() {
    assertRejects(
      edit("    epochs: 2\n", "    epochs:\n"), kind: "wrongType", at: "student.train.epochs",
      mentions: ["found null"])
  }

  func testWordWhereNumberExpected() {
    assertRejects(
      edit("lr: 0.05", "lr: fast"), kind: "wrongType", at: "student.train.optimizer.sgd.lr",
      mentions: ["expected a finite number, found 'fast'"])
  }

  func testQuotedNumberIsAString() {
    assertRejects(
      edit("lr: 0.05", "lr: \"0.05\""), kind: "wrongType", at: "student.train.optimizer.sgd.lr",
      mentions: ["expected a finite number"])
  }

  func testInfiniteNumber() {
    assertRejects(edit("lr: 0.05", "lr: inf"), kind: "wrongType", at: "student.train.optimizer.sgd.lr")
  }

  func testYesIsNotABoolean() {
    assertRejects(
      edit("nesterov: true", "nesterov: yes"), kind: "wrongType", at: "teacher.train.optimizer.sgd.nesterov",
      mentions: ["expected true or false, found 'yes'"])
  }

  func testNegativeSeed() {
    assertRejects(
      edit("seed: 7", "seed: -7"), kind: "wrongType", at: "seed",
      mentions: ["expected a non-negative integer"])
  }

  func testScalarWhereMappingExpected() {
    assertRejects(
      edit("data:\n  dataset: mnist\n  validation: 5000\n", "data: mnist\n"), kind: "wrongType", at: "data",
      mentions: ["expected a mapping, found 'mnist'"])
  }

  func testScalarWhereListExpected() {
    assertRejects(
      edit("[800, 800]", "800"), kind: "wrongType", at: "student.model.mlp.hidden",
      mentions: ["expected a list, found '800'"])
  }

  func testListElementPath() {
    assertRejects(
      edit("[800, 800]", "[800, wide]"), kind: "wrongType", at: "student.model.mlp.hidden[1]",
      mentions: ["found 'wide'"])
  }

  func testValidationNeitherCountNorFraction() {
    assertRejects(
      edit("validation: 5000", "validation: lots"), kind: "wrongType", at: "data.validation",
      mentions: ["a sample count (integer) or a fraction in [0, 1)"])
  }

  // MARK: Choices and one-of mappings

  func testUnknownChoiceSuggestsClosest() {
    assertRejects(
      edit("method: kd", "method: kdd"), kind: "invalidChoice", at: "distillation.method",
      mentions: ["unknown value 'kdd'; did you mean 'kd'? (one of \(DistillationMethods.names.joined(separator: ", ")))"])
  }

  func testUnknownChoiceWithoutCloseMatchListsChoices() {
    assertRejects(
      edit("dataset: mnist", "dataset: cifar10"), kind: "invalidChoice", at: "data.dataset",
      mentions: ["choose one of digits, mnist, fashion-mnist, csv"])
  }

  func testUnknownPrecision() {
    assertRejects(
      edit("precision: f32", "precision: f16"), kind: "invalidChoice", at: "precision",
      mentions: ["f16-mixed"])
  }

  func testUnknownActivation() {
    assertRejects(
      edit("mlp: {hidden: [800, 800]}", "mlp: {hidden: [800, 800], activation: gelu2}"),
      kind: "invalidChoice",
      at: "student.model.mlp.activation", mentions: ["did you mean 'gelu'?"])
  }

  func testUnknownEnergyMeter() {
    assertRejects(
      edit("precision: f32\n", "precision: f32\nenergy: {meter: rapll}\n"), kind: "invalidChoice",
      at: "energy.meter", mentions: ["did you mean 'rapl'?"])
  }

  func testOneOfMappingMayNotBeEmpty() {
    assertRejects(
      edit("    optimizer:\n      sgd: {lr: 0.05, momentum: 0.8}\n", "    optimizer: {}\n"),
      kind: "wrongType",
      at: "student.train.optimizer", mentions: ["expected one of sgd, adam, adamw, found an empty mapping"])
  }

  func testOneOfMappingTakesOneKey() {
    assertRejects(
      edit("sgd: {lr: 0.05, momentum: 0.8}", "sgd: {lr: 0.05}\n      adam: {}"), kind: "conflict",
      at: "student.train.optimizer", mentions: ["give exactly one of sgd, adam, adamw, not 'sgd' and 'adam'"])
  }

  func testModelTakesOneForm() {
    assertRejects(
      edit("mlp: {hidden: [800, 800]}", "mlp: {hidden: [800]}\n    cnn: {channels: [8]}"), kind: "conflict",
      at: "student.model", mentions: ["not 'mlp' and 'cnn'"])
  }
}
