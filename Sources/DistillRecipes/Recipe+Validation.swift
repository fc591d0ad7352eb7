extension Recipe {
  /// Throws the first of `problems(file:methods:)`, if any. `Recipe.load` and `Recipe.parse`
  /// call it; call it yourself on a recipe built or edited in code.
  public func validate(file: String = "<recipe>", methods: [MethodInfo], stages: [StageInfo] = []) throws {
    if let first = problems(file: file, methods: methods, stages: stages).first { throw first }
  }

  /// Every range and consistency problem, in document order (`name`, `data`, `teacher`,
  /// `student`, `distillation`, `checkpoint`, `energy`), as `invalidValue`, `missingKey` or
  /// `conflict` errors that name `file` and the key path. The checks, each documented with
  /// its key in `recipes/README.md`:
  ///
  /// - counts: `epochs`, `batch_size`, `accumulate`, `step_size`, layer sizes, `keep_last`,
  ///   `segments` ≥ 1; `validation`, `jitter`, `pad_crop`, `padding` ≥ 0;
  /// - rates: `lr`, `temperature`, `eps`, `gamma` > 0; `alpha`, `dampening` in [0, 1];
  ///   `dropout`, `momentum`, `betas`, `label_smoothing`, a validation fraction in [0, 1);
  /// - the teacher has `model` (with `train`) or `from` (without `train`);
  /// - every distillation method needs a teacher; `hint` needs `distillation.hint`, and only it
  ///   takes one; the methods named and their sections' keys are among `methods`' (with the
  ///   closest suggested), of the declared kinds and in range;
  /// - the `compress:` stages are among `stages` (the closest suggested), their keys declared,
  ///   of the declared kinds and in range;
  /// - an explicit `layers` list ends with a `linear` layer producing one output per class.
  public func problems(file: String = "<recipe>", methods: [MethodInfo], stages: [StageInfo] = []) -> [RecipeError] {
    var checks = RecipeChecks(file: file)
    checks.name(name)
    checks.data(data)
    let classCount = data.classCount
    if let teacher { checks.teacher(teacher, classCount: classCount) }
    checks.student(student, classCount: classCount)
    checks.distillation(distillation, teacher: teacher, student: student, methods: methods)
    checks.compression(compress, infos: stages)
    checks.checkpoint(checkpoint)
    checks.energy(energy)
    return checks.problems
  }
}
