import XCTest

@testable import Distill
@testable import DistillRecipes

/// The `distillation` section with plug-in methods: method sections, combinations, the keys added
/// since the first schema, and each error with its file and key path.
final class MethodRecipeTests: XCTestCase {
  func distillation(_ text: String) -> String {
    edit("  method: kd\n  temperature: 20\n  alpha: 0.9\n", text)
  }

  func testMethodSectionDecodesGivenKeysAndDefaultsTheRest() throws {
    let recipe = try Recipe.parse(yaml: distillation("  method: dkd\n  dkd: {beta: 2, warmup: 5}\n"))
    XCTAssertEqual(recipe.distillation.methods, ["dkd"])
    let settings = recipe.distillation.settings(of: "dkd")
    XCTAssertEqual(settings.value("beta", in: DecoupledKD.info.keys), .number(2))
    XCTAssertEqual(settings.value("warmup", in: DecoupledKD.info.keys), .integer(5))
    XCTAssertEqual(settings.value("alpha", in: DecoupledKD.info.keys), .number(1))
    XCTAssertEqual(recipe.distillation.effectiveCEWeight, 1)
  }

  func testAListCombinesMethods() throws {
    let recipe = try Recipe.parse(yaml: distillation("  method: [kd, at]\n  at: {weight: 500}\n"))
    XCTAssertEqual(recipe.distillation.methods, ["kd", "at"])
    XCTAssertEqual(recipe.distillation.label, "kd+at")
    // The smallest of the methods' own CE weights: kd's 1 − α = 0.1.
    XCTAssertEqual(recipe.distillation.effectiveCEWeight, 1 - 0.9, accuracy: 1e-12)
  }

  func testLayerKeysTakeOneNumberOrAList() throws {
    let one = try Recipe.parse(yaml: distillation("  method: pkt\n  pkt: {teacher_layer: 3}\n"))
    XCTAssertEqual(one.distillation.settings(of: "pkt").value("teacher_layer", in: ProbabilisticKT.info.keys), .layers([3]))
    let list = try Recipe.parse(yaml: distillation("  method: at\n  at: {teacher_layers: [1, 4], student_layers: [1, 4]}\n"))
    XCTAssertEqual(list.distillation.settings(of: "at").given["teacher_layers"], .layers([1, 4]))
  }

  /// A method's keys enter the canonical form as given: a key left out stays out (so a key
  /// added to a method later changes no hash), and one spelled out at its default reads the
  /// same value but hashes as written, like `checkpoint.keep_last`.
  func testMethodKeysEnterTheCanonicalFormAsGiven() throws {
    let bare = try Recipe.parse(yaml: distillation("  method: dkd\n"))
    XCTAssertFalse(bare.canonicalJSON.contains("\"dkd\":{"), bare.canonicalJSON)
    let spelled = try Recipe.parse(yaml: distillation("  method: dkd\n  dkd: {beta: 8}\n"))
    XCTAssertEqual(
      spelled.distillation.settings(of: "dkd").value("beta", in: DecoupledKD.info.keys),
      bare.distillation.settings(of: "dkd").value("beta", in: DecoupledKD.info.keys))
    XCTAssertEqual(spelled.changedKeys(from: bare), ["distillation.dkd"])
    let changed = try Recipe.parse(yaml: distillation("  method: dkd\n  dkd: {beta: 2}\n"))
    XCTAssertEqual(changed.changedKeys(from: spelled), ["distillation.dkd.beta"])
  }

  /// The canonical JSON of a recipe with methods reads back as the same recipe (checkpoints
  /// store it, and resume decodes it).
  func testCanonicalJSONRoundTrips() throws {
    let recipe = try Recipe.parse(
      yaml: distillation(
        "  method: [dkd, at, crd]\n  logit_standardization: true\n  ce_weight: 0.5\n"
          + "  dkd: {beta: 2}\n  at: {teacher_layers: [1], student_layers: [2], p: 3}\n  crd: {negatives: 100}\n"))
    let again = try Recipe.parse(yaml: recipe.canonicalJSON)
    XCTAssertEqual(again, recipe)
    XCTAssertEqual(again.canonicalHash, recipe.canonicalHash)
  }

  // MARK: Errors

  func testUnknownMethodInAListSuggestsTheClosest() {
    assertRejects(
      distillation("  method: [kd, dkdd]\n"), kind: "invalidChoice", at: "distillation.method[1]",
      mentions: ["unknown value 'dkdd'; did you mean 'dkd'?"])
  }

  func testUnknownKeyInAMethodSectionSuggestsTheClosest() {
    assertRejects(
      distillation("  method: dkd\n  dkd: {betta: 2}\n"), kind: "unknownKey", at: "distillation.dkd.betta",
      mentions: ["did you mean 'beta'?"])
  }

  func testUnknownKeyInTheSectionSuggestsTheClosest() {
    assertRejects(
      distillation("  method: kd\n  ce_wieght: 0.5\n"), kind: "unknownKey", at: "distillation.ce_wieght",
      mentions: ["did you mean 'ce_weight'?"])
  }

  func testAMethodSectionWithoutItsMethodIsRefused() {
    assertRejects(
      distillation("  method: kd\n  dkd: {beta: 2}\n"), kind: "conflict", at: "distillation.dkd",
      mentions: ["used only when distillation.method names dkd"])
  }

  func testWrongTypeInAMethodSection() {
    assertRejects(
      distillation("  method: dkd\n  dkd: {warmup: soon}\n"), kind: "wrongType", at: "distillation.dkd.warmup",
      mentions: ["an integer"])
  }

  func testWeightsOutOfRange() {
    assertOutOfRange(distillation("  method: at\n  at: {weight: 0}\n"), at: "distillation.at.weight", requirement: "greater than 0")
    assertOutOfRange(distillation("  method: dkd\n  dkd: {beta: -1}\n"), at: "distillation.dkd.beta", requirement: "at least 0")
    assertOutOfRange(
      distillation("  method: crd\n  crd: {momentum: 1.5}\n"), at: "distillation.crd.momentum", requirement: "in [0, 1]")
    assertOutOfRange(
      distillation("  method: crd\n  crd: {negatives: 0}\n"), at: "distillation.crd.negatives", requirement: "in 1...1048576")
    assertOutOfRange(
      distillation("  method: crd\n  crd: {feat_dim: 100000}\n"), at: "distillation.crd.feat_dim", requirement: "in 1...65536")
    assertOutOfRange(
      distillation("  method: at\n  at: {teacher_layers: [-1]}\n"), at: "distillation.at.teacher_layers",
      requirement: "layer positions, each at least 0")
    assertOutOfRange(distillation("  method: kd\n  ce_weight: -0.1\n"), at: "distillation.ce_weight", requirement: "at least 0")
  }

  func testAlphaAboveOneNeedsAnExplicitCEWeight() throws {
    assertOutOfRange(distillation("  method: kd\n  alpha: 9\n"), at: "distillation.alpha", requirement: "in [0, 1]")
    XCTAssertNoThrow(try Recipe.parse(yaml: distillation("  method: kd\n  alpha: 9\n  ce_weight: 0.1\n")))
  }

  func testLogitStandardizationOnlyForKDAndDKD() {
    assertRejects(
      distillation("  method: at\n  logit_standardization: true\n"), kind: "conflict",
      at: "distillation.logit_standardization", mentions: ["kd and dkd only"])
  }

  func testNoneCannotBeCombined() {
    assertRejects(distillation("  method: [none, kd]\n"), kind: "conflict", at: "distillation.method", mentions: ["'none' cannot"])
  }

  func testAMethodListedTwiceIsRefused() {
    assertRejects(distillation("  method: [kd, at, kd]\n"), kind: "conflict", at: "distillation.method", mentions: ["listed twice"])
  }

  func testEveryMethodNeedsATeacher() {
    let start = baseYAML.range(of: "teacher:\n")!.lowerBound
    let end = baseYAML.range(of: "student:\n")!.lowerBound
    var yaml = distillation("  method: at\n")
    yaml.removeSubrange(start..<end)
    assertRejects(yaml, kind: "conflict", at: "distillation.method", mentions: ["method 'at' needs a teacher"])
  }
}
