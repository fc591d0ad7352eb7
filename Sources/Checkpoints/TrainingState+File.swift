import Autodiff
import NN

// Reading and writing training checkpoints; the layout is README.md's "Training checkpoints".

/// The group holding a checkpoint's `TrainingState`.
public let trainingStateGroup = "state"

/// Writes a training checkpoint to `path`, atomically (`HDF5File.writeAtomically`: a crash or
/// failure leaves the previous file at `path` as it was): the `models` as in a model file
/// (`saveModels`, float32), then `state` in the group `/state`.
public func writeTrainingCheckpoint(
  _ state: TrainingState, models: [(group: String, model: any Layer, architecture: String?)], to path: String
) throws(CheckpointError) {
  try HDF5File.writeAtomically(to: path) { file throws(CheckpointError) in
    for (group, model, architecture) in models {
      try writeModelGroup(group, model: model, architecture: architecture, precision: .f32, in: file)
    }
    try state.write(to: file.createGroup(trainingStateGroup))
  }
}

extension TrainingState {
  /// Reads the `/state` group of the checkpoint at `path` and lists its model groups. Throws
  /// `CheckpointError` naming the file and the object for a missing, empty, truncated or
  /// non-HDF5 file, a file without `/state` (a model file, say), a format other than
  /// `currentFormat`, and any missing or mistyped entry.
  public static func read(from path: String) throws(CheckpointError) -> TrainingState {
    let file = try HDF5File.openReadOnly(path)
    let root = try file.rootGroup()
    guard root.contains(trainingStateGroup) else {
      throw .missingGroup(path: path, group: "/\(trainingStateGroup) (a training checkpoint's state)")
    }
    let group = try root.group(trainingStateGroup)
    let format = try group.stringAttribute("format")
    guard format == currentFormat else {
      throw .wrongDatatype(
        path: path, object: "/\(trainingStateGroup)@format", expected: "format '\(currentFormat)'",
        found: "format '\(format)'")
    }
    func integer(_ name: String) throws(CheckpointError) -> Int { Int(try group.integerAttribute(name)) }
    func double(_ name: String) throws(CheckpointError) -> Double { try group.doubleAttribute(name) }
    var state = TrainingState(
      phase: try group.stringAttribute("phase"), epoch: try integer("epoch"), batch: try integer("batch"),
      globalStep: try integer("global_step"), runEpoch: try integer("run_epoch"),
      optimizerName: try group.stringAttribute("optimizer"),
      recipeHash: try group.stringAttribute("recipe_hash"),
      recipeJSON: try group.stringAttribute("recipe"), blasThreads: try integer("blas_threads"))
    state.lossSum = try double("loss_sum")
    state.samples = try integer("samples")
    state.steps = try integer("steps")
    state.epochSeconds = try double("epoch_seconds")
    if group.hasAttribute("epoch_joules") { state.epochJoules = try double("epoch_joules") }
    if group.hasAttribute("epoch_dram_joules") { state.epochDRAMJoules = try double("epoch_dram_joules") }
    state.modelSeconds = try double("model_seconds")
    state.runSeconds = try double("run_seconds")
    if group.hasAttribute("seed_override") {
      state.seedOverride = UInt64(bitPattern: try group.integerAttribute("seed_override"))
    }
    if group.hasAttribute("epochs_override") { state.epochsOverride = try integer("epochs_override") }
    if group.hasAttribute("data_path") { state.dataPath = try group.stringAttribute("data_path") }
    if group.hasAttribute("ranks") { state.ranks = try integer("ranks") }
    if group.hasAttribute("bucket_bytes") { state.bucketBytes = try integer("bucket_bytes") }

    // Every other group is a component's (`ComponentState`), read the same way.
    for name in try group.memberNames() where group.isGroup(name) && !Self.ownGroups.contains(name) {
      state.components[name] = try ComponentState.read(group.group(name))
    }
    if group.contains("results") {
      let results = try group.group("results")
      for phase in try results.memberNames() { state.phaseResults[phase] = try readNumbers(results.group(phase)) }
    }
    state.metrics = try group.dataset("metrics").readStrings()
    state.lastEpoch = try readNumbers(group.group("last_epoch"))
    if group.contains("teacher_result") {
      state.teacherResult = try readNumbers(group.group("teacher_result"))
    }
    state.modelGroups = try root.memberNames().filter { $0 != trainingStateGroup }
    try state.requirePlausible(path: path)
    return state
  }

  /// Writes the state into `group` (`/state`).
  func write(to group: HDF5Group) throws(CheckpointError) {
    try group.setAttribute("format", string: Self.currentFormat)
    try group.setAttribute("phase", string: phase)
    for (name, value) in [
      ("epoch", epoch), ("batch", batch), ("global_step", globalStep), ("run_epoch", runEpoch),
      ("samples", samples), ("steps", steps), ("blas_threads", blasThreads),
      ("ranks", ranks),
    ] {
      try group.setAttribute(name, integer: Int64(value))
    }
    for (name, value) in [
      ("loss_sum", lossSum), ("epoch_seconds", epochSeconds), ("model_seconds", modelSeconds),
      ("run_seconds", runSeconds), ("epoch_joules", epochJoules),
    ] {
      try group.setAttribute(name, double: value)
    }
    if let epochDRAMJoules { try group.setAttribute("epoch_dram_joules", double: epochDRAMJoules) }
    if let bucketBytes { try group.setAttribute("bucket_bytes", integer: Int64(bucketBytes)) }
    try group.setAttribute("optimizer", string: optimizerName)
    try group.setAttribute("recipe_hash", string: recipeHash)
    try group.setAttribute("recipe", string: recipeJSON)
    if let seedOverride { try group.setAttribute("seed_override", integer: Int64(bitPattern: seedOverride)) }
    if let epochsOverride { try group.setAttribute("epochs_override", integer: Int64(epochsOverride)) }
    if let dataPath { try group.setAttribute("data_path", string: dataPath) }

    for (name, component) in components.sorted(by: { $0.key < $1.key }) {
      try component.write(to: group.createGroup(name))
    }
    if !phaseResults.isEmpty {
      let results = try group.createGroup("results")
      for (phase, numbers) in phaseResults.sorted(by: { $0.key < $1.key }) {
        try Self.write(numbers: numbers, to: results.createGroup(phase))
      }
    }
    try group.writeDataset("metrics", strings: metrics)
    try Self.write(numbers: lastEpoch, to: group.createGroup("last_epoch"))
    if let teacherResult { try Self.write(numbers: teacherResult, to: group.createGroup("teacher_result")) }
  }

  /// The groups of `/state` that are the state's own, not a component's.
  static let ownGroups: Set<String> = ["results", "last_epoch", "teacher_result"]

  /// Named numbers as scalar float64 datasets, in name order.
  private static func write(numbers: [String: Double], to group: HDF5Group) throws(CheckpointError) {
    for (name, value) in numbers.sorted(by: { $0.key < $1.key }) {
      try group.writeDataset(name, doubles: [value], shape: [])
    }
  }

  private static func readNumbers(_ group: HDF5Group) throws(CheckpointError) -> [String: Double] {
    var numbers: [String: Double] = [:]
    for name in try group.memberNames() {
      let dataset = try group.dataset(name)
      guard dataset.shape.isEmpty else {
        throw .wrongShape(path: dataset.file.path, object: dataset.name, expected: [], found: dataset.shape)
      }
      numbers[name] = try dataset.readDoubles()[0]
    }
    return numbers
  }
}

extension TrainingState {
  /// Throws `.invalidValue` for a counter, time or scale that no run writes: a damaged or
  /// hand-made checkpoint must not reach the trainer (a thread count of 10^12, say, would
  /// overflow on its way to OpenBLAS).
  func requirePlausible(path: String) throws(CheckpointError) {
    let group = "/\(trainingStateGroup)"
    let limit = 1 << 40
    for (name, value) in [
      ("epoch", epoch), ("batch", batch), ("global_step", globalStep), ("run_epoch", runEpoch),
      ("samples", samples), ("steps", steps),
    ] where !(0...limit).contains(value) {
      throw .invalidValue(path: path, object: "\(group)@\(name)", value: "\(value)", expected: "in 0...\(limit)")
    }
    if let bucketBytes, !(1...(1 << 40)).contains(bucketBytes) {
      throw .invalidValue(path: path, object: "\(group)@bucket_bytes", value: "\(bucketBytes)", expected: "in 1...2^40")
    }
    if !(1...1_000_000).contains(ranks) {
      throw .invalidValue(path: path, object: "\(group)@ranks", value: "\(ranks)", expected: "in 1...1000000")
    }
    if !(1...4096).contains(blasThreads) {
      throw .invalidValue(path: path, object: "\(group)@blas_threads", value: "\(blasThreads)", expected: "in 1...4096")
    }
    for (name, value) in [
      ("epoch_seconds", epochSeconds), ("model_seconds", modelSeconds),
      ("run_seconds", runSeconds), ("epoch_joules", epochJoules), ("epoch_dram_joules", epochDRAMJoules ?? 0),
    ] where !(value.isFinite && value >= 0) {
      throw .invalidValue(path: path, object: "\(group)@\(name)", value: "\(value)", expected: "a finite number ≥ 0")
    }
    if !(lossScale.scale.isFinite && lossScale.scale > 0) || lossScale.growthTracker < 0 || lossScale.skippedSteps < 0 {
      throw .invalidValue(
        path: path, object: "\(group)/loss_scale", value: "\(lossScale)", expected: "a finite scale > 0 and counts ≥ 0")
    }
  }
}
