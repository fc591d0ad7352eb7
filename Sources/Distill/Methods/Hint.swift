import Autodiff
import NN
import DistillRecipes

/// FitNets hints as the first schema had them (`method: hint`, `distillation.hint`): at one
/// layer, the student reproduces one of the teacher's layer outputs, both flattened, through a
/// learned linear map when their sizes differ. Term: `weight · MSE(r(h_s), h_t)`
/// (`F.mse_loss`). `fitnets` is the reference's version (a 1×1 convolution regressor for
/// feature maps, weight 100).
final class HintMethod: DistillationMethod {
  static let info = MethodInfo(
    name: "hint", title: "FitNets hints, linear regressor (first schema)",
    paper: "Romero et al., FitNets: Hints for Thin Deep Nets, ICLR 2015",
    reference: "mdistiller/distillers/FitNet.py (loss); regressor: a Linear on flattened outputs",
    needs: "one teacher layer output, one student layer output, a Linear regressor when sizes differ",
    keys: [
      .integer("teacher_layer", 0, "teacher layer position, in the expanded layer list", minimum: 0, required: true),
      .integer("student_layer", 0, "student layer position, in the expanded layer list", minimum: 0, required: true),
      .number("weight", 1, "weight of the hint term"),
    ],
    topLevelKeys: true)

  let teacherLayers: [Int]
  let studentLayers: [Int]
  let regressor: Linear?
  let weight: Float
  var needsTeacherLogits: Bool { false }

  init(settings: MethodSettings, context: MethodContext) throws {
    // Validation guarantees the section.
    let hint = context.spec.hint!
    // Validation checks the position only against a recipe's own teacher.model.
    teacherLayers = try context.layers([hint.teacherLayer], of: .teacher, key: "hint.teacher_layer") { [] }
    studentLayers = [hint.studentLayer]
    let from = context.studentShapes[hint.studentLayer].reduce(1, *)
    let to = context.teacherShapes[hint.teacherLayer].reduce(1, *)
    if from != to {
      try context.requireModule(parameters: [from, to], "student_layer", "the linear regressor")
      var generator = SeededGenerator(seed: derivedSeed(context.seed, "student.hint"))
      regressor = Linear(inputFeatures: from, outputFeatures: to, generator: &generator)
    } else {
      regressor = nil
    }
    weight = Float(hint.weight)
  }

  var modules: [(name: String, layer: any Layer)] { regressor.map { [("hint_regressor", $0)] } ?? [] }

  func loss(_ batch: MethodBatch) -> Tensor {
    let target = batch.teacherFeatures[teacherLayers[0]]!.flattened()
    var mapped = batch.studentFeatures[studentLayers[0]]!.flattened()
    if let regressor { mapped = regressor(mapped) }
    return meanSquaredError(mapped, target) * weight
  }
}
