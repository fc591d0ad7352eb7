import Foundation
import XCTest

@testable import Distill
@testable import DistillRecipes

/// The shipped recipes, defaults, shorthand forms and Codable round trips.
final class RecipeLoadingTests: XCTestCase {
  static let shipped = [
    "digits-kd", "digits-student-baseline", "fashion-cnn-kd", "fashion-student-baseline", "fashion-hinton",
    "mnist-hinton", "mnist-student-baseline", "digits-compress", "fashion-compress",
  ]

  /// The methods table's recipes (`recipes/methods/`): each loads, names its method as its file
  /// does, and reads the one shared teacher.
  func testMethodRecipesLoadAndShareTheTeacher() throws {
    let folder = recipesFolder + "/methods"
    let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }.sorted()
    XCTAssertGreaterThanOrEqual(files.count, 16)
    var methods = Set<String>()
    for file in files {
      let recipe = try Recipe.load(path: folder + "/" + file)
      XCTAssertEqual(recipe.name, "methods-" + file.dropLast(5), file)
      XCTAssertEqual(recipe.teacher?.from, "checkpoints/fashion-cnn-kd/teacher.h5", file)
      XCTAssertEqual(recipe.data.dataset, .fashionMNIST, file)
      methods.formUnion(recipe.distillation.methods)
    }
    XCTAssertEqual(methods, Set(DistillationMethods.infos.map(\.name)).subtracting(["hint"]), "every method but the first schema's hint")
  }

  func load(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> Recipe {
    do {
      return try Recipe.load(path: "\(recipesFolder)/\(name).yaml")
    } catch {
      XCTFail("\(error)", file: file, line: line)
      throw error
    }
  }

  func testEveryShippedRecipeLoadsAndValidates() throws {
    for name in Self.shipped {
      let recipe = try load(name)
      XCTAssertEqual(recipe.name, name, "a recipe's name should match its file name")
      XCTAssertEqual(recipe.problems(), [])
    }
  }

  func testEveryRecipeInTheFolderIsShippedAndValid() throws {
    let files = try FileManager.default.contentsOfDirectory(atPath: recipesFolder).filter {
      $0.hasSuffix(".yaml")
    }
    XCTAssertEqual(Set(files.map { String($0.dropLast(5)) }), Set(Self.shipped))
  }

  func testMNISTHintonSettings() throws {
    let recipe = try load("mnist-hinton")
    XCTAssertEqual(recipe.data, DataSpec(dataset: .mnist, validation: .count(5000)))
    let sgd = OptimizerSpec.sgd(SGDSpec(lr: 0.05, momentum: 0.9, nesterov: true))
    XCTAssertEqual(
      recipe.teacher,
      TeacherSpec(
        model: .mlp(MLPSpec(hidden: [1200, 1200], dropout: 0.5, inputDropout: 0.2)),
        train: TrainSpec(
          epochs: 30, batchSize: 128, optimizer: sgd, schedule: .cosine(CosineSpec()),
          augment: AugmentSpec(jitter: 2))))
    XCTAssertEqual(recipe.student.model, .mlp(MLPSpec(hidden: [800, 800])))
    XCTAssertEqual(recipe.distillation, DistillationSpec(method: "kd", temperature: 20, alpha: 0.9))
    XCTAssertEqual(recipe.teacher?.train?.augment.augmentations, [.jitter(maxShift: 2)])
  }

  func testBaselinesHaveNoTeacher() throws {
    for name in ["mnist-student-baseline", "fashion-student-baseline"] {
      let recipe = try load(name)
      XCTAssertNil(recipe.teacher)
      XCTAssertEqual(recipe.distillation.methods, [])
    }
    // The baselines train exactly the students of the distillation recipes.
    XCTAssertEqual(try load("mnist-student-baseline").student, try load("mnist-hinton").student)
    XCTAssertEqual(try load("fashion-student-baseline").student, try load("fashion-cnn-kd").student)
    XCTAssertEqual(try load("fashion-student-baseline").student, try load("fashion-hinton").student)
  }

  func testDefaults() throws {
    let recipe = try Recipe.parse(
      yaml: """
        name: minimal
        data: {dataset: digits}
        student:
          model: {mlp: {hidden: [32]}}
          train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}
        """)
    XCTAssertEqual(
      recipe,
      Recipe(
        name: "minimal", seed: 0, data: DataSpec(dataset: .digits, validation: .count(0), normalize: false),
        student: StudentSpec(
          model: .mlp(MLPSpec(hidden: [32], dropout: 0, inputDropout: 0, activation: .relu)),
          train: TrainSpec(
            epochs: 1, batchSize: 128, accumulate: 1,
            optimizer: .sgd(SGDSpec(lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false)),
            schedule: .constant, warmupEpochs: 0, augment: AugmentSpec(), labelSmoothing: 0)),
        distillation: DistillationSpec(method: "none", temperature: 4, alpha: 0.9),
        precision: .f32, checkpoint: CheckpointSpec(keepLast: nil, recompute: nil),
        energy: EnergySpec(meter: .auto, wattsPerCore: nil)))
    XCTAssertNil(recipe.teacher)
  }

  func testOptimizerDefaults() throws {
    let adam = try Recipe.parse(yaml: edit("sgd: {lr: 0.05, momentum: 0.8}", "adam: {}"))
    XCTAssertEqual(
      adam.student.train.optimizer,
      .adam(AdamSpec(lr: 0.001, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0)))
    let adamw = try Recipe.parse(yaml: edit("sgd: {lr: 0.05, momentum: 0.8}", "adamw: {lr: 0.002}"))
    XCTAssertEqual(adamw.student.train.optimizer, .adamw(AdamSpec(lr: 0.002, weightDecay: 0.01)))
    XCTAssertEqual(adamw.student.train.optimizer.learningRate, 0.002)
    let bare = try Recipe.parse(yaml: edit("sgd: {lr: 0.05, momentum: 0.8}", "adamw:"))
    XCTAssertEqual(bare.student.train.optimizer, .adamw(AdamSpec(weightDecay: 0.01)))
  }

  func testScheduleForms() throws {
    let forms: [(String, ScheduleSpec)] = [
      ("cosine", .cosine(CosineSpec(minLR: 0))),
      ("{cosine: }", .cosine(CosineSpec(minLR: 0))),
      ("{cosine: {min_lr: 0.001}}", .cosine(CosineSpec(minLR: 0.001))),
      ("constant", .constant),
      ("{constant: {}}", .constant),
      ("{step: {step_size: 10}}", .step(StepSpec(stepSize: 10, gamma: 0.1))),
    ]
    for (text, expected) in forms {
      let recipe = try Recipe.parse(yaml: edit("{step: {step_size: 1, gamma: 0.5}}", text))
      XCTAssertEqual(recipe.student.train.schedule, expected, text)
    }
  }

  func testValidationCountOrFraction() throws {
    XCTAssertEqual(try Recipe.parse(yaml: baseYAML).data.validation, .count(5000))
    let fraction = try Recipe.parse(yaml: edit("validation: 5000", "validation: 0.1"))
    XCTAssertEqual(fraction.data.validation, .fraction(0.1))
    XCTAssertEqual(fraction.data.validation.count(of: 60000), 6000)
    XCTAssertEqual(ValidationSplit.count(5000).count(of: 1797), 1797)
  }

  func testRunSettings() throws {
    let recipe = try Recipe.parse(
      yaml: edit(
        "precision: f32\n",
        "precision: f16-mixed\ncheckpoint: {keep_last: 3, recompute: {segments: 4}}\n"
          + "energy: {meter: rapl, watts_per_core: 7.5}\n"))
    XCTAssertEqual(recipe.precision, .f16Mixed)
    XCTAssertEqual(recipe.checkpoint, CheckpointSpec(keepLast: 3, recompute: RecomputeSpec(segments: 4)))
    XCTAssertEqual(recipe.energy, EnergySpec(meter: .rapl, wattsPerCore: 7.5))
  }

  func testCSVData() throws {
    let recipe = try Recipe.parse(
      yaml: edit(
        "  dataset: mnist\n  validation: 5000\n",
        "  dataset: csv\n  path: data/iris.csv\n  label_column: 0\n  classes: 3\n  shape: [4]\n  normalize: true\n"
      ))
    XCTAssertEqual(
      recipe.data,
      DataSpec(dataset: .csv, path: "data/iris.csv", normalize: true, shape: [4], labelColumn: 0, classes: 3))
    XCTAssertEqual(recipe.data.classCount, 3)
  }

  func testRoundTripThroughFoundationJSON() throws {
    for name in Self.shipped {
      let recipe = try load(name)
      let json = try JSONEncoder().encode(recipe)
      XCTAssertEqual(try JSONDecoder().decode(Recipe.self, from: json), recipe, name)
    }
    let layers = try Recipe.parse(
      yaml: edit(
        "mlp: {hidden: [800, 800]}",
        "layers: [{conv2d: {out: 4, kernel: 3}}, batch_norm, relu, flatten, {linear: {out: 10}}]"))
    let json = try JSONEncoder().encode(layers)
    XCTAssertEqual(try JSONDecoder().decode(Recipe.self, from: json), layers)
  }

  func testAnchorsAndAliasesShareSettings() throws {
    let recipe = try Recipe.parse(
      yaml: """
        name: shared
        data: {dataset: digits}
        teacher:
          model: {mlp: {hidden: [64]}}
          train: &train {epochs: 2, optimizer: {sgd: {lr: 0.1}}, schedule: cosine}
        student:
          model: {mlp: {hidden: [16]}}
          train: *train
        distillation: {method: kd}
        """)
    XCTAssertEqual(recipe.teacher?.train, recipe.student.train)
    XCTAssertEqual(recipe.student.train.schedule, .cosine(CosineSpec()))
  }

  func testRecipeBuiltInCodeValidates() throws {
    let recipe = Recipe(
      name: "in-code", data: DataSpec(dataset: .digits),
      student: StudentSpec(
        model: .mlp(MLPSpec(hidden: [16])), train: TrainSpec(epochs: 1, optimizer: .sgd(SGDSpec(lr: 0.1)))))
    XCTAssertNoThrow(try recipe.validate())
  }
}
