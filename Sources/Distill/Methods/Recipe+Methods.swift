// The recipe API with the registered distillation methods filled in: what programs that train
// call (`distill`, the tests), so every recipe they read has its distillation sections checked.
import DistillRecipes


extension Recipe {
  /// `Recipe.load(path:methods:stages:)` with every registered method (`DistillationMethods.infos`)
  /// and compression stage (`CompressionStages.infos`).
  public static func load(path: String) throws -> Recipe {
    try load(path: path, methods: DistillationMethods.infos, stages: CompressionStages.infos)
  }

  /// `Recipe.parse(yaml:file:methods:)` with every registered method.
  public static func parse(yaml: String, file: String = "<recipe>") throws -> Recipe {
    try parse(yaml: yaml, file: file, methods: DistillationMethods.infos, stages: CompressionStages.infos)
  }

  /// `validate(file:methods:)` with every registered method.
  public func validate(file: String = "<recipe>") throws {
    try validate(file: file, methods: DistillationMethods.infos, stages: CompressionStages.infos)
  }

  /// `problems(file:methods:)` with every registered method.
  public func problems(file: String = "<recipe>") -> [RecipeError] {
    problems(file: file, methods: DistillationMethods.infos, stages: CompressionStages.infos)
  }
}

extension DistillationSpec {
  /// The cross-entropy weight in force: `ceWeight`, or the smallest of the methods' defaults
  /// (`MethodInfo.ceWeight`; `kd`'s is 1 − `alpha`), 1 for `none`.
  public var effectiveCEWeight: Double {
    if let ceWeight { return ceWeight }
    let defaults = methods.map { name in
      name == KnowledgeDistillation.info.name ? 1 - alpha : DistillationMethods.named(name)?.info.ceWeight ?? 1
    }
    return defaults.min() ?? 1
  }
}
