/// Collects a recipe's validation problems, each a `RecipeError` naming the file and key path.
/// The range checks of every section live here and in `RecipeChecks+Model.swift`; the order
/// of the calls in `Recipe.problems(file:)` is the order problems are reported.
struct RecipeChecks {
  let file: String
  var problems: [RecipeError] = []

  init(file: String) { self.file = file }

  // MARK: Primitive checks

  mutating func fail(_ path: String, _ value: String, _ requirement: String) {
    problems.append(
      .invalidValue(
        file: file, keyPath: path, value: RecipeLimits.abbreviated(value), requirement: requirement))
  }

  mutating func conflict(_ path: String, _ reason: String) {
    problems.append(.conflict(file: file, keyPath: path, reason: reason))
  }

  mutating func missing(_ path: String) {
    problems.append(.missingKey(file: file, keyPath: path))
  }

  /// `value ≥ minimum`.
  mutating func atLeast(_ value: Int, _ minimum: Int, _ path: String) {
    if value < minimum { fail(path, "\(value)", "at least \(minimum)") }
  }

  /// `value > 0`.
  mutating func positive(_ value: Double, _ path: String) {
    if !(value > 0) { fail(path, "\(value)", "greater than 0") }
  }

  /// `value ≥ 0`.
  mutating func nonNegative(_ value: Double, _ path: String) {
    if !(value >= 0) { fail(path, "\(value)", "at least 0") }
  }

  /// A probability-like value: in [0, 1), or [0, 1] when `closed`.
  mutating func unit(_ value: Double, _ path: String, closed: Bool = false) {
    let ok = closed ? (0...1).contains(value) : (0..<1).contains(value)
    if !ok { fail(path, "\(value)", closed ? "in [0, 1]" : "in [0, 1)") }
  }

  /// A non-empty path string.
  mutating func path(_ value: String?, _ path: String) {
    if let value, value.isEmpty { fail(path, "''", "a non-empty file path") }
  }

  // MARK: Sections

  mutating func name(_ name: String) {
    let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    if name.count > RecipeLimits.maxNameLength {
      fail("name", "'\(name)'", "at most \(RecipeLimits.maxNameLength) characters (it names the run folder)")
    } else if name.isEmpty || name.hasPrefix(".") || !name.allSatisfy(allowed.contains) {
      fail("name", "'\(name)'", "a folder name: letters, digits, '.', '_' and '-', not starting with '.'")
    }
  }

  mutating func data(_ data: DataSpec) {
    path(data.path, "data.path")
    switch data.validation {
    case .count(let n): atLeast(n, 0, "data.validation")
    case .fraction(let f): unit(f, "data.validation")
    }
    if let shape = data.shape {
      if shape.isEmpty { fail("data.shape", "[]", "a list of at least one dimension") }
      for (i, size) in shape.enumerated() {
        atLeast(size, 1, "data.shape[\(i)]")
        if size > 1 << 24 { fail("data.shape[\(i)]", "\(size)", "at most \(1 << 24)") }
      }
    }
    if data.dataset != .csv {
      if data.labelColumn != nil { conflict("data.label_column", "only a csv data set takes 'label_column'") }
      if data.classes != nil { conflict("data.classes", "only a csv data set takes 'classes'") }
    }
    if let column = data.labelColumn { atLeast(column, 0, "data.label_column") }
    if let classes = data.classes { atLeast(classes, 2, "data.classes") }
  }

  mutating func teacher(_ teacher: TeacherSpec, classCount: Int?) {
    if teacher.model == nil && teacher.from == nil {
      conflict("teacher", "give 'model' and 'train' to train a teacher, or 'from' to load one")
    }
    if teacher.from != nil && teacher.train != nil {
      conflict(
        "teacher.train",
        "a teacher loaded with 'from' is not trained; remove 'train', or 'from' to train it here")
    }
    if teacher.model != nil && teacher.from == nil && teacher.train == nil { missing("teacher.train") }
    path(teacher.from, "teacher.from")
    if let model = teacher.model { self.model(model, "teacher.model", classCount: classCount) }
    if let train = teacher.train { self.train(train, "teacher.train") }
  }

  mutating func student(_ student: StudentSpec, classCount: Int?) {
    model(student.model, "student.model", classCount: classCount)
    path(student.initialWeights, "student.init")
    // A student loaded with `student.init` may train for 0 epochs: it is tested as loaded
    // (and handed to the `compress:` stages).
    train(student.train, "student.train", loaded: student.initialWeights != nil)
  }

  mutating func train(_ train: TrainSpec, _ at: String, loaded: Bool = false) {
    if loaded {
      atLeast(train.epochs, 0, at + ".epochs")
    } else if train.epochs < 1 {
      fail(
        at + ".epochs", "\(train.epochs)",
        at.hasPrefix("student") ? "at least 1 (0 only for a student loaded with student.init)" : "at least 1")
    }
    atLeast(train.batchSize, 1, at + ".batch_size")
    atLeast(train.accumulate, 1, at + ".accumulate")
    optimizer(train.optimizer, at + ".optimizer")
    schedule(train.schedule, at + ".schedule", lr: train.optimizer.learningRate)
    if train.warmupEpochs < 0 || (train.epochs >= 1 && train.warmupEpochs >= train.epochs) {
      fail(
        at + ".warmup_epochs", "\(train.warmupEpochs)", "at least 0 and less than epochs (\(train.epochs))")
    }
    atLeast(train.augment.jitter, 0, at + ".augment.jitter")
    atLeast(train.augment.padCrop, 0, at + ".augment.pad_crop")
    unit(train.labelSmoothing, at + ".label_smoothing")
  }

  mutating func optimizer(_ optimizer: OptimizerSpec, _ at: String) {
    switch optimizer {
    case .sgd(let sgd):
      let at = at + ".sgd"
      positive(sgd.lr, at + ".lr")
      unit(sgd.momentum, at + ".momentum")
      unit(sgd.dampening, at + ".dampening", closed: true)
      nonNegative(sgd.weightDecay, at + ".weight_decay")
      if sgd.nesterov && (sgd.momentum <= 0 || sgd.dampening != 0) {
        conflict(at + ".nesterov", "Nesterov momentum needs momentum > 0 and dampening 0")
      }
    case .adam(let adam):
      self.adam(adam, at + ".adam")
    case .adamw(let adam):
      self.adam(adam, at + ".adamw")
    }
  }

  mutating func adam(_ adam: AdamSpec, _ at: String) {
    positive(adam.lr, at + ".lr")
    if adam.betas.count != 2 {
      fail(at + ".betas", "\(adam.betas)", "two numbers [beta1, beta2]")
    } else {
      for (i, beta) in adam.betas.enumerated() { unit(beta, at + ".betas[\(i)]") }
    }
    positive(adam.eps, at + ".eps")
    nonNegative(adam.weightDecay, at + ".weight_decay")
  }

  mutating func schedule(_ schedule: ScheduleSpec, _ at: String, lr: Double) {
    switch schedule {
    case .constant:
      break
    case .cosine(let cosine):
      nonNegative(cosine.minLR, at + ".cosine.min_lr")
      if cosine.minLR > lr {
        fail(at + ".cosine.min_lr", "\(cosine.minLR)", "at most the learning rate (\(lr))")
      }
    case .step(let step):
      atLeast(step.stepSize, 1, at + ".step.step_size")
      positive(step.gamma, at + ".step.gamma")
    }
  }

  mutating func distillation(
    _ distillation: DistillationSpec, teacher: TeacherSpec?, student: StudentSpec, methods infos: [MethodInfo]
  ) {
    let methods = distillation.methods
    methodProblems(distillation, methods: infos)
    if let method = methods.first, teacher == nil {
      conflict(
        "distillation.method",
        "method '\(method)' needs a teacher; add a 'teacher' section or use method: none")
    }
    switch (methods.contains("hint"), distillation.hint) {
    case (true, nil):
      missing("distillation.hint")
    case (true, let hint?):
      positive(hint.weight, "distillation.hint.weight")
      // Any class count gives the same number of layers.
      if let model = teacher?.model {
        layerIndex(hint.teacherLayer, in: model, "distillation.hint.teacher_layer")
      } else {
        atLeast(hint.teacherLayer, 0, "distillation.hint.teacher_layer")
      }
      layerIndex(hint.studentLayer, in: student.model, "distillation.hint.student_layer")
    case (false, .some):
      conflict("distillation.hint", "'hint' is used only with method: hint")
    case (false, nil):
      break
    }
  }

  /// The checks of `distillation` that need no networks, only the methods' declarations: the
  /// names in `method`, the shared keys, each section's keys, their kinds and ranges
  /// (`DistillationSpec.problems(file:methods:)`).
  mutating func methodProblems(_ distillation: DistillationSpec, methods infos: [MethodInfo]) {
    let methods = distillation.methods
    let names = ["none"] + infos.map(\.name)
    for (i, name) in methods.enumerated() where !names.contains(name) {
      problems.append(
        .invalidChoice(
          file: file, keyPath: "distillation.method" + (methods.count > 1 ? "[\(i)]" : ""), value: name,
          allowed: names, suggestion: KeySuggestion.closest(to: name, among: names)))
    }
    if methods.count > 1 {
      if methods.contains("none") {
        conflict("distillation.method", "'none' cannot be combined with other methods; give the methods alone")
      }
      if let repeated = methods.first(where: { name in methods.filter { $0 == name }.count > 1 }) {
        conflict("distillation.method", "'\(repeated)' is listed twice; list each method once")
      }
    }
    positive(distillation.temperature, "distillation.temperature")
    if distillation.ceWeight == nil {
      unit(distillation.alpha, "distillation.alpha", closed: true)
    } else {
      nonNegative(distillation.alpha, "distillation.alpha")
    }
    if let ce = distillation.ceWeight { nonNegative(ce, "distillation.ce_weight") }
    if distillation.logitStandardization, !methods.contains("kd"), !methods.contains("dkd") {
      conflict("distillation.logit_standardization", "logit standardisation applies to methods kd and dkd only")
    }
    let sections = infos.filter { !$0.topLevelKeys }
    let allowed = DistillationSpec.ownKeys + sections.map(\.name)
    for (name, found) in distillation.strayKeys.sorted(by: { $0.key < $1.key }) {
      if sections.contains(where: { $0.name == name }) {
        problems.append(.wrongType(file: file, keyPath: "distillation.\(name)", expected: "a mapping", found: found))
      } else {
        problems.append(
          .unknownKey(
            file: file, keyPath: "distillation.\(name)", key: name,
            suggestion: KeySuggestion.closest(to: name, among: allowed), allowed: allowed))
      }
    }
    for (name, settings) in distillation.settings.sorted(by: { $0.key < $1.key }) {
      let at = "distillation.\(name)"
      guard let info = sections.first(where: { $0.name == name }) else {
        problems.append(
          .unknownKey(
            file: file, keyPath: at, key: name, suggestion: KeySuggestion.closest(to: name, among: allowed),
            allowed: allowed))
        continue
      }
      if !methods.contains(name) {
        conflict(at, "'\(name)' settings are used only when distillation.method names \(name)")
      }
      self.settings(settings, keys: info.keys, at: at)
    }
  }

  mutating func layerIndex(_ index: Int, in model: ModelSpec, _ at: String) {
    let count = model.expandedLayers(classCount: 1).count
    if !(0..<count).contains(index) {
      fail(
        at, "\(index)", "a layer position in 0..<\(count) of the expanded layer list (see recipes/README.md)")
    }
  }

  mutating func checkpoint(_ checkpoint: CheckpointSpec) {
    if let keep = checkpoint.keepLast { atLeast(keep, 1, "checkpoint.keep_last") }
    if let recompute = checkpoint.recompute {
      atLeast(recompute.segments, 1, "checkpoint.recompute.segments")
    }
  }

  mutating func energy(_ energy: EnergySpec) {
    if let watts = energy.wattsPerCore { positive(watts, "energy.watts_per_core") }
  }
}
