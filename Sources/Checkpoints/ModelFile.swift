import Autodiff
import NN

// Model files (`teacher.h5`, `student.h5`) in the layout of README.md here ("Model files"): one
// group per model, one dataset per `state_dict` key in PyTorch's layouts, the architecture as a
// string attribute of the group. README.md also shows the h5py/PyTorch side.

/// The name of the group attribute holding a model's architecture description.
public let architectureAttribute = "architecture"

/// The group of a pruned model's file that holds its masks (`/masks/<parameter>`, float32 0/1
/// in the parameter's shape), beside the model's group: not a model.
public let maskGroup = "masks"

/// Writes models to the HDF5 file at `path`, replacing it atomically (see
/// `HDF5File.writeAtomically`): a failure leaves any existing file as it was.
///
/// Each model becomes a group (`"teacher"` → `/teacher`) holding one dataset per `stateDict`
/// key (`0.weight`, `1.running_mean`, …) in `stateDict` order and the model's own shapes
/// (PyTorch's layouts: Linear `[out, in]`, Conv2d `[out, in, kh, kw]`), stored as `precision`.
/// A non-nil `architecture` (the recipe's model description, YAML or JSON) is stored as the
/// group's UTF-8 string attribute `architecture`, so the file alone describes the model.
///
/// PyTorch: `{k: torch.from_numpy(f["student"][k][()]) for k in f["student"]}` is the
/// model's `state_dict()` without BatchNorm's `num_batches_tracked`.
public func saveModels(
  _ models: [(group: String, model: any Layer, architecture: String?)],
  extraGroups: [(name: String, arrays: [NamedArray])] = [], to path: String, precision: StoragePrecision = .f32
) throws(CheckpointError) {
  try HDF5File.writeAtomically(to: path) { file throws(CheckpointError) in
    for (group, model, architecture) in models {
      try writeModelGroup(group, model: model, architecture: architecture, precision: precision, in: file)
    }
    for (name, arrays) in extraGroups {
      let group = try file.createGroup(name)
      for array in arrays { try group.writeDataset(array.name, floats: array.values, shape: array.shape) }
    }
  }
}

/// Writes one model group of a model file or checkpoint (see `saveModels`).
func writeModelGroup(
  _ groupName: String, model: any Layer, architecture: String?, precision: StoragePrecision, in file: HDF5File
) throws(CheckpointError) {
  let group = try file.createGroup(groupName)
  if let architecture { try group.setAttribute(architectureAttribute, string: architecture) }
  for (key, tensor) in model.stateDict {
    try group.writeDataset(key, floats: tensor.storage, shape: tensor.shape, precision: precision)
  }
}

/// Loads the model stored in `group` of the file at `path` into `model`
/// (`model.load_state_dict(state_dict, strict=True)`).
///
/// Every `stateDict` key of `model` must be a dataset of the group with the same shape, float16,
/// float32 or float64 (converted to `Float`); every dataset of the group must be a key of
/// `model`, except PyTorch's BatchNorm counters `*.num_batches_tracked`, which are ignored.
/// Errors name the file, group and key with the expected and found shape or type; on any
/// error `model` is unchanged.
public func loadModel(group: String, from path: String, into model: any Layer) throws(CheckpointError) {
  let file = try HDF5File.openReadOnly(path)
  let stored = try file.group(group)
  let expected = model.stateDict
  var loaded: [String: Tensor] = [:]
  for (key, tensor) in expected {
    guard stored.contains(key) else {
      throw .missingKey(path: path, group: stored.name, key: key, expectedShape: tensor.shape)
    }
    let values = try stored.dataset(key).readFiniteFloats(expectedShape: tensor.shape)
    loaded[key] = Tensor(shape: tensor.shape, storage: values)
  }
  let known = Set(expected.map(\.name))
  for member in try stored.memberNames() where !known.contains(member) {
    if member.split(separator: ".").last == "num_batches_tracked" { continue }
    let shape = (try? stored.dataset(member))?.shape ?? []
    throw .unexpectedKey(path: path, group: stored.name, key: member, shape: shape)
  }
  do {
    try model.load(stateDict: loaded)
  } catch {
    // Not reached after the checks above; kept so a future NN rule still names the file.
    switch error {
    case .missingKey(let key, let shape):
      throw .missingKey(path: path, group: stored.name, key: key, expectedShape: shape)
    case .unexpectedKey(let key, let shape):
      throw .unexpectedKey(path: path, group: stored.name, key: key, shape: shape)
    case .shapeMismatch(let key, let expected, let found):
      throw .wrongShape(path: path, object: stored.childName(key), expected: expected, found: found)
    case .duplicateKey:
      throw .hdf5(path: path, object: stored.name, operation: "load the state dict", detail: "\(error)")
    }
  }
}

/// The `architecture` attribute of the model group `group` in the file at `path`, or nil when
/// the group has none. Throws when the file or the group cannot be read.
public func readArchitecture(group: String, from path: String) throws(CheckpointError) -> String? {
  let stored = try HDF5File.openReadOnly(path).group(group)
  guard stored.hasAttribute(architectureAttribute) else { return nil }
  return try stored.stringAttribute(architectureAttribute)
}

/// Reads every dataset of every model group of the file at `path` (every group but a training
/// checkpoint's `/state`) and throws `.nonFinite`, naming the first dataset that holds a NaN or
/// an infinity: weights no run should start from.
public func requireFiniteModels(in path: String) throws(CheckpointError) {
  let root = try HDF5File.openReadOnly(path).rootGroup()
  for name in try root.memberNames() where name != trainingStateGroup {
    let group = try root.group(name)
    for key in try group.memberNames() { _ = try group.dataset(key).readFiniteFloats() }
  }
}
