import XCTest

@testable import Distill
@testable import DistillRecipes

/// `canonicalJSON`, `canonicalHash` and `changedKeys(from:)`.
final class RecipeFingerprintTests: XCTestCase {
  let minimal = """
    name: minimal
    data: {dataset: digits}
    student:
      model: {mlp: {hidden: [32]}}
      train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}
    """

  func testFNV1aReferenceValues() {
    // Reference values from the FNV authors' test suite.
    XCTAssertEqual(Recipe.fnv1a64("".utf8), 0xcbf2_9ce4_8422_2325)
    XCTAssertEqual(Recipe.fnv1a64("a".utf8), 0xaf63_dc4c_8601_ec8c)
    XCTAssertEqual(Recipe.fnv1a64("foobar".utf8), 0x8594_4171_f739_67e8)
  }

  /// Pins the canonical form: changing it changes every stored hash, so it must be deliberate.
  func testCanonicalJSONIsPinned() throws {
    let recipe = try Recipe.parse(yaml: minimal)
    XCTAssertEqual(
      recipe.canonicalJSON,
      #"{"checkpoint":{},"data":{"dataset":"digits","normalize":false,"validation":0},"#
        + #""distillation":{"alpha":0.9,"method":"none","temperature":4.0},"energy":{"meter":"auto"},"#
        + #""name":"minimal","precision":"f32","seed":0,"student":{"model":{"mlp":{"activation":"relu","#
        + #""dropout":0.0,"hidden":[32],"input_dropout":0.0}},"train":{"accumulate":1,"#
        + #""augment":{"flip":false,"jitter":0,"pad_crop":0},"batch_size":128,"epochs":1,"#
        + #""label_smoothing":0.0,"optimizer":{"sgd":{"dampening":0.0,"lr":0.1,"momentum":0.0,"#
        + #""nesterov":false,"weight_decay":0.0}},"schedule":{"constant":{}},"warmup_epochs":0}}}"#)
    XCTAssertEqual(recipe.canonicalHash, "f205f300a53e94eb")  // FNV-1a 64 of the text above
  }

  func testHashFormat() throws {
    for name in RecipeLoadingTests.shipped {
      let hash = try Recipe.load(path: "\(recipesFolder)/\(name).yaml").canonicalHash
      XCTAssertEqual(hash.count, 16)
      XCTAssertTrue(hash.allSatisfy { "0123456789abcdef".contains($0) }, hash)
    }
  }

  func testHashStableUnderKeyOrderAndStyle() throws {
    let reordered = """
      student:
        train:
          optimizer:
            sgd:
              lr: 0.1
          epochs: 1
        model:
          mlp:
            hidden:
              - 32
      data:
        dataset: digits
      name: minimal
      """
    XCTAssertEqual(
      try Recipe.parse(yaml: reordered).canonicalHash, try Recipe.parse(yaml: minimal).canonicalHash)
  }

  func testHashStableUnderSpelledOutDefaults() throws {
    let spelled = """
      name: minimal
      seed: 0
      data: {dataset: digits, validation: 0, normalize: false}
      student:
        model: {mlp: {hidden: [32], dropout: 0, activation: relu}}
        train: {epochs: 1, batch_size: 128, accumulate: 1, optimizer: {sgd: {lr: 0.1, momentum: 0.0}}, schedule: constant}
      distillation: {method: none, temperature: 4.0}
      precision: f32
      checkpoint: {}
      energy: {meter: auto}
      """
    XCTAssertEqual(
      try Recipe.parse(yaml: spelled).canonicalHash, try Recipe.parse(yaml: minimal).canonicalHash)
  }

  func testHashChangesWhenAValueChanges() throws {
    let base = try Recipe.parse(yaml: minimal)
    var seen: Set<String> = [base.canonicalHash]
    var edits: [Recipe] = []
    var recipe = base
    recipe.student.train.epochs = 2
    edits.append(recipe)
    recipe = base
    recipe.student.train.optimizer = .sgd(SGDSpec(lr: 0.1000001))
    edits.append(recipe)
    recipe = base
    recipe.seed = 1
    edits.append(recipe)
    recipe = base
    recipe.data.validation = .fraction(0)  // 0.0 is not the count 0
    edits.append(recipe)
    recipe = base
    recipe.student.initialWeights = "w.h5"
    edits.append(recipe)
    for edited in edits {
      XCTAssertTrue(seen.insert(edited.canonicalHash).inserted, edited.canonicalJSON)
    }
  }

  func testShippedRecipesHaveDistinctHashes() throws {
    let hashes = try RecipeLoadingTests.shipped.map {
      try Recipe.load(path: "\(recipesFolder)/\($0).yaml").canonicalHash
    }
    XCTAssertEqual(Set(hashes).count, hashes.count)
  }

  func testStringsAreEscaped() throws {
    var recipe = try Recipe.parse(yaml: minimal)
    recipe.student.initialWeights = "a \"b\"\\c\n\u{1}é"
    XCTAssertTrue(recipe.canonicalJSON.contains(#""init":"a \"b\"\\c\n\u0001é""#), recipe.canonicalJSON)
  }

  // MARK: changedKeys

  func testNoChanges() throws {
    let a = try Recipe.parse(yaml: baseYAML)
    XCTAssertEqual(a.changedKeys(from: a), [])
  }

  func testChangedValues() throws {
    let old = try Recipe.parse(yaml: baseYAML)
    let new = try Recipe.parse(
      yaml: edit("temperature: 20", "temperature: 4", in: edit("    epochs: 2\n", "    epochs: 5\n")))
    XCTAssertEqual(new.changedKeys(from: old), ["distillation.temperature", "student.train.epochs"])
  }

  func testChangedListElementAndLength() throws {
    let old = try Recipe.parse(yaml: baseYAML)
    let wider = try Recipe.parse(yaml: edit("[800, 800]", "[800, 400]"))
    XCTAssertEqual(wider.changedKeys(from: old), ["student.model.mlp.hidden[1]"])
    let deeper = try Recipe.parse(yaml: edit("[800, 800]", "[800, 800, 800]"))
    XCTAssertEqual(deeper.changedKeys(from: old), ["student.model.mlp.hidden"])
  }

  func testChangedChoice() throws {
    let old = try Recipe.parse(yaml: baseYAML)
    let new = try Recipe.parse(yaml: edit("sgd: {lr: 0.05, momentum: 0.8}", "adam: {}"))
    XCTAssertEqual(
      new.changedKeys(from: old), ["student.train.optimizer.adam", "student.train.optimizer.sgd"])
  }

  func testAddedAndRemovedSections() throws {
    let old = try Recipe.parse(yaml: baseYAML)
    var new = old
    new.teacher = nil
    new.distillation.methods = []
    new.checkpoint.keepLast = 2
    XCTAssertEqual(new.changedKeys(from: old), ["checkpoint.keep_last", "distillation.method", "teacher"])
    XCTAssertEqual(old.changedKeys(from: new), ["checkpoint.keep_last", "distillation.method", "teacher"])
  }

  func testChangedLayerInAList() throws {
    let list = "layers: [flatten, {linear: {out: 64}}, relu, {linear: {out: 10}}]"
    let old = try Recipe.parse(yaml: edit("mlp: {hidden: [800, 800]}", list))
    let new = try Recipe.parse(
      yaml: edit("mlp: {hidden: [800, 800]}", list.replacingOccurrences(of: "relu", with: "gelu")))
    XCTAssertEqual(
      new.changedKeys(from: old), ["student.model.layers[2].gelu", "student.model.layers[2].relu"])
  }
}

/// Schema evolution: adding a method or a key with a default must leave the canonical hash of
/// every existing recipe unchanged, so runs started before the change keep resuming. These are
/// the hashes of the shipped recipes, and of recipes using every key the first schema had, as
/// computed before distillation methods became plugins.
final class RecipeHashPinningTests: XCTestCase {
  static let shippedHashes = [
    "digits-kd": "adc4e8edac1f7349", "digits-student-baseline": "2f1f189300008188",
    "fashion-cnn-kd": "0d72c4724bcca0cf", "fashion-hinton": "8152d5c9b8563db1",
    "fashion-student-baseline": "56bb5dbb9d9d4113", "mnist-hinton": "f30eaa481965ca91",
    "mnist-student-baseline": "8bc05b96b659a6d9", "digits-compress": "5249fdef0b74ff56",
    "fashion-compress": "18e58791f7c83b15",
  ]

  /// A `hint` recipe as the first schema wrote it, and its hash then.
  static let hintRecipe = """
    name: hinted
    data: {dataset: digits}
    teacher:
      model: {mlp: {hidden: [64]}}
      train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}
    student:
      model: {mlp: {hidden: [16]}}
      train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}
    distillation: {method: hint, hint: {teacher_layer: 1, student_layer: 1, weight: 0.5}}
    """

  func testHintRecipeHashIsPinned() throws {
    XCTAssertEqual(try Recipe.parse(yaml: Self.hintRecipe).canonicalHash, "0a8cb6884044404b")
  }

  func testShippedRecipeHashesArePinned() throws {
    var found: [String: String] = [:]
    for name in RecipeLoadingTests.shipped {
      found[name] = try Recipe.load(path: "\(recipesFolder)/\(name).yaml").canonicalHash
    }
    XCTAssertEqual(found, Self.shippedHashes, "\(found.sorted { $0.key < $1.key })")
  }
}
