import XCTest

@testable import Distill
@testable import DistillRecipes

/// One test per range or consistency check outside the model sections (those are in
/// `ModelValidationTests`); each checks the file, the key path and the requirement in the message.
final class RecipeValidationTests: XCTestCase {
  // MARK: Name and data

  func testNameMustBeAFolderName() {
    assertOutOfRange(edit("name: test-recipe", "name: runs/x"), at: "name", requirement: "a folder name")
  }

  func testNegativeValidationCount() {
    assertOutOfRange(
      edit("validation: 5000", "validation: -1"), at: "data.validation", requirement: "at least 0")
  }

  func testValidationFractionBelowOne() {
    assertOutOfRange(
      edit("validation: 5000", "validation: 1.0"), at: "data.validation", requirement: "in [0, 1)")
  }

  func testEmptyDataPath() {
    assertOutOfRange(
      edit("dataset: mnist", "dataset: mnist\n  path: ''"), at: "data.path",
      requirement: "a non-empty file path")
  }

  func testEmptyShape() {
    assertOutOfRange(
      edit("dataset: mnist", "dataset: mnist\n  shape: []"), at: "data.shape",
      requirement: "a list of at least one")
  }

  func testZeroShapeDimension() {
    assertOutOfRange(
      edit("dataset: mnist", "dataset: mnist\n  shape: [1, 0, 28]"), at: "data.shape[1]",
      requirement: "at least 1")
  }

  func testLabelColumnOnlyForCSV() {
    assertRejects(
      edit("dataset: mnist", "dataset: mnist\n  label_column: 0"), kind: "conflict", at: "data.label_column",
      mentions: ["only a csv data set"])
  }

  func testClassesOnlyForCSV() {
    assertRejects(
      edit("dataset: mnist", "dataset: mnist\n  classes: 10"), kind: "conflict", at: "data.classes",
      mentions: ["only a csv data set"])
  }

  func testNegativeLabelColumn() {
    assertOutOfRange(
      edit("dataset: mnist", "dataset: csv\n  label_column: -1"), at: "data.label_column",
      requirement: "at least 0")
  }

  func testTooFewClasses() {
    assertOutOfRange(
      edit("dataset: mnist", "dataset: csv\n  classes: 1"), at: "data.classes", requirement: "at least 2")
  }

  // MARK: Teacher and student

  func testTeacherNeedsModelOrFrom() {
    let yaml = edit(
      "  model:\n    mlp: {hidden: [1200, 1200], dropout: 0.5, input_dropout: 0.2}\n  train:\n    epochs: 3\n",
      "  train:\n    epochs: 3\n")
    assertRejects(yaml, kind: "conflict", at: "teacher", mentions: ["give 'model' and 'train'", "or 'from'"])
  }

  func testTeacherFromIsNotTrained() {
    assertRejects(
      edit("teacher:\n", "teacher:\n  from: teacher.h5\n"), kind: "conflict", at: "teacher.train",
      mentions: ["not trained"])
  }

  func testTeacherModelNeedsTrain() {
    let start = baseYAML.range(of: "  train:\n    epochs: 3\n")!.lowerBound
    let end = baseYAML.range(of: "student:\n")!.lowerBound
    var yaml = baseYAML
    yaml.removeSubrange(start..<end)
    assertRejects(yaml, kind: "missingKey", at: "teacher.train")
  }

  func testTeacherFromWithModelAndNoTrainIsValid() throws {
    let start = baseYAML.range(of: "  train:\n    epochs: 3\n")!.lowerBound
    let end = baseYAML.range(of: "student:\n")!.lowerBound
    var yaml = baseYAML
    yaml.replaceSubrange(start..<end, with: "  from: weights/teacher.h5\n")
    let recipe = try Recipe.parse(yaml: yaml)
    XCTAssertEqual(recipe.teacher?.from, "weights/teacher.h5")
    XCTAssertNil(recipe.teacher?.train)
  }

  func testEmptyTeacherFrom() {
    assertOutOfRange(
      "name: x\ndata: {dataset: digits}\nteacher: {from: ''}\n"
        + "student: {model: {mlp: {hidden: [8]}}, train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}}\n",
      at: "teacher.from", requirement: "a non-empty file path")
  }

  func testEmptyStudentInit() {
    assertOutOfRange(
      edit("    mlp: {hidden: [800, 800]}\n", "    mlp: {hidden: [800, 800]}\n  init: ''\n"),
      at: "student.init",
      requirement: "a non-empty file path")
  }

  // MARK: Training

  func testZeroEpochs() {
    assertOutOfRange(
      edit("    epochs: 2\n", "    epochs: 0\n"), at: "student.train.epochs", requirement: "at least 1")
  }

  func testZeroBatchSize() {
    assertOutOfRange(
      edit("batch_size: 64", "batch_size: 0"), at: "student.train.batch_size", requirement: "at least 1")
  }

  func testZeroAccumulate() {
    assertOutOfRange(
      edit("accumulate: 2", "accumulate: 0"), at: "student.train.accumulate", requirement: "at least 1")
  }

  func testWarmupMustBeShorterThanTraining() {
    assertOutOfRange(
      edit("accumulate: 2", "accumulate: 2\n    warmup_epochs: 2"), at: "student.train.warmup_epochs",
      requirement: "at least 0 and less than epochs (2)")
  }

  func testNegativeWarmup() {
    assertOutOfRange(
      edit("accumulate: 2", "accumulate: 2\n    warmup_epochs: -1"), at: "student.train.warmup_epochs",
      requirement: "at least 0")
  }

  func testNegativeJitter() {
    assertOutOfRange(
      edit("jitter: 2", "jitter: -2"), at: "teacher.train.augment.jitter", requirement: "at least 0")
  }

  func testNegativePadCrop() {
    assertOutOfRange(
      edit("{jitter: 2}", "{jitter: 2, pad_crop: -4}"), at: "teacher.train.augment.pad_crop",
      requirement: "at least 0")
  }

  func testLabelSmoothingBelowOne() {
    assertOutOfRange(
      edit("accumulate: 2", "accumulate: 2\n    label_smoothing: 1"), at: "student.train.label_smoothing",
      requirement: "in [0, 1)")
  }

  // MARK: Optimizers and schedules

  func testZeroLearningRate() {
    assertOutOfRange(
      edit("lr: 0.05", "lr: 0"), at: "student.train.optimizer.sgd.lr", requirement: "greater than 0")
  }

  func testMomentumBelowOne() {
    assertOutOfRange(
      edit("momentum: 0.8", "momentum: 1"), at: "student.train.optimizer.sgd.momentum",
      requirement: "in [0, 1)")
  }

  func testDampeningInUnitInterval() {
    assertOutOfRange(
      edit("momentum: 0.8", "momentum: 0.8, dampening: 1.5"), at: "student.train.optimizer.sgd.dampening",
      requirement: "in [0, 1]")
  }

  func testNegativeWeightDecay() {
    assertOutOfRange(
      edit("momentum: 0.8", "momentum: 0.8, weight_decay: -0.1"),
      at: "student.train.optimizer.sgd.weight_decay",
      requirement: "at least 0")
  }

  func testNesterovNeedsMomentum() {
    assertRejects(
      edit("momentum: 0.8", "nesterov: true"), kind: "conflict", at: "student.train.optimizer.sgd.nesterov",
      mentions: ["momentum > 0 and dampening 0"])
  }

  func testAdamLearningRate() {
    assertOutOfRange(
      edit("sgd: {lr: 0.05, momentum: 0.8}", "adam: {lr: -0.001}"), at: "student.train.optimizer.adam.lr",
      requirement: "greater than 0")
  }

  func testAdamTakesTwoBetas() {
    assertOutOfRange(
      edit("sgd: {lr: 0.05, momentum: 0.8}", "adam: {betas: [0.9, 0.99, 0.999]}"),
      at: "student.train.optimizer.adam.betas", requirement: "two numbers")
  }

  func testAdamBetaBelowOne() {
    assertOutOfRange(
      edit("sgd: {lr: 0.05, momentum: 0.8}", "adamw: {betas: [0.9, 1.0]}"),
      at: "student.train.optimizer.adamw.betas[1]", requirement: "in [0, 1)")
  }

  func testAdamEpsilonPositive() {
    assertOutOfRange(
      edit("sgd: {lr: 0.05, momentum: 0.8}", "adam: {eps: 0}"), at: "student.train.optimizer.adam.eps",
      requirement: "greater than 0")
  }

  func testAdamWNegativeWeightDecay() {
    assertOutOfRange(
      edit("sgd: {lr: 0.05, momentum: 0.8}", "adamw: {weight_decay: -1}"),
      at: "student.train.optimizer.adamw.weight_decay", requirement: "at least 0")
  }

  func testNegativeCosineMinimum() {
    assertOutOfRange(
      edit("{cosine: {}}", "{cosine: {min_lr: -0.1}}"), at: "teacher.train.schedule.cosine.min_lr",
      requirement: "at least 0")
  }

  func testCosineMinimumAboveLearningRate() {
    assertOutOfRange(
      edit("{cosine: {}}", "{cosine: {min_lr: 0.5}}"), at: "teacher.train.schedule.cosine.min_lr",
      requirement: "at most the learning rate (0.1)")
  }

  func testZeroStepSize() {
    assertOutOfRange(
      edit("step_size: 1", "step_size: 0"), at: "student.train.schedule.step.step_size",
      requirement: "at least 1")
  }

  func testZeroGamma() {
    assertOutOfRange(
      edit("gamma: 0.5", "gamma: 0"), at: "student.train.schedule.step.gamma", requirement: "greater than 0")
  }

  // MARK: Distillation

  func testKDNeedsATeacher() {
    let start = baseYAML.range(of: "teacher:\n")!.lowerBound
    let end = baseYAML.range(of: "student:\n")!.lowerBound
    var yaml = baseYAML
    yaml.removeSubrange(start..<end)
    assertRejects(
      yaml, kind: "conflict", at: "distillation.method", mentions: ["method 'kd' needs a teacher"])
  }

  func testZeroTemperature() {
    assertOutOfRange(
      edit("temperature: 20", "temperature: 0"), at: "distillation.temperature", requirement: "greater than 0"
    )
  }

  func testAlphaInUnitInterval() {
    assertOutOfRange(edit("alpha: 0.9", "alpha: 1.5"), at: "distillation.alpha", requirement: "in [0, 1]")
  }

  func testHintMethodNeedsHintLayers() {
    assertRejects(edit("method: kd", "method: hint"), kind: "missingKey", at: "distillation.hint")
  }

  func testHintOnlyWithHintMethod() {
    assertRejects(
      edit("alpha: 0.9", "alpha: 0.9\n  hint: {teacher_layer: 3, student_layer: 2}"), kind: "conflict",
      at: "distillation.hint", mentions: ["only with method: hint"])
  }

  func testHintWeightPositive() {
    let yaml = edit("method: kd", "method: hint\n  hint: {teacher_layer: 3, student_layer: 2, weight: 0}")
    assertOutOfRange(yaml, at: "distillation.hint.weight", requirement: "greater than 0")
  }

  func testHintTeacherLayerInRange() {
    // The teacher expands to 9 layers: flatten, dropout, (linear, relu, dropout) × 2, linear.
    let yaml = edit("method: kd", "method: hint\n  hint: {teacher_layer: 9, student_layer: 2}")
    assertOutOfRange(yaml, at: "distillation.hint.teacher_layer", requirement: "a layer position in 0..<9")
  }

  func testHintStudentLayerInRange() {
    let yaml = edit("method: kd", "method: hint\n  hint: {teacher_layer: 3, student_layer: -1}")
    assertOutOfRange(yaml, at: "distillation.hint.student_layer", requirement: "a layer position in 0..<6")
  }

  func testValidHint() throws {
    let yaml = edit("method: kd", "method: hint\n  hint: {teacher_layer: 3, student_layer: 2}")
    let recipe = try Recipe.parse(yaml: yaml)
    XCTAssertEqual(recipe.distillation.hint, HintSpec(teacherLayer: 3, studentLayer: 2, weight: 1))
  }

  // MARK: Checkpoint and energy

  func testKeepLastAtLeastOne() {
    assertOutOfRange(
      edit("precision: f32\n", "precision: f32\ncheckpoint: {keep_last: 0}\n"), at: "checkpoint.keep_last",
      requirement: "at least 1")
  }

  func testRecomputeSegmentsAtLeastOne() {
    assertOutOfRange(
      edit("precision: f32\n", "precision: f32\ncheckpoint: {recompute: {segments: 0}}\n"),
      at: "checkpoint.recompute.segments", requirement: "at least 1")
  }

  func testWattsPerCorePositive() {
    assertOutOfRange(
      edit("precision: f32\n", "precision: f32\nenergy: {meter: estimate, watts_per_core: 0}\n"),
      at: "energy.watts_per_core", requirement: "greater than 0")
  }

  // MARK: All problems at once

  func testProblemsListsEveryProblemInDocumentOrder() throws {
    var recipe = try Recipe.parse(yaml: baseYAML)
    recipe.student.train.epochs = 0
    recipe.distillation.alpha = 2
    recipe.data.validation = .count(-5)
    let paths = recipe.problems(file: "f.yaml").compactMap(\.keyPath)
    XCTAssertEqual(paths, ["data.validation", "student.train.epochs", "distillation.alpha"])
    XCTAssertThrowsError(try recipe.validate(file: "f.yaml")) { error in
      XCTAssertEqual((error as? RecipeError)?.keyPath, "data.validation")
    }
  }
}
