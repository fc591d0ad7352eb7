import Checkpoints
import Datasets

/// Why a run could not start or go on, after the recipe itself was read and validated
/// (problems within the recipe file are `RecipeError`s). Every case names what to look at: the
/// recipe file and key path, the data folder, or the run folder, so the CLI prints the
/// description for people and tests match on the case.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
  /// A model's layers do not fit the data or each other: `layer` is the layer's position in
  /// the expanded layer list and its name (`"3 (conv2d)"`), `input` the per-sample shape it
  /// was given, `reason` what it needs.
  case shapeMismatch(file: String, keyPath: String, layer: String, input: [Int], reason: String)
  /// The data set needs a location that neither `--data` nor `data.path` gave.
  case dataLocationRequired(file: String, keyPath: String, dataset: String, hint: String)
  /// The data could not be read; `source` says where the location came from (`--data`,
  /// `data.path`, or the default), `underlying` names the files.
  case dataUnavailable(file: String, keyPath: String, source: String, underlying: DatasetError)
  /// The recipe's data settings do not fit the data that was loaded (`data.shape` with the
  /// wrong number of elements, no held-out split where one is needed).
  case dataMismatch(file: String, keyPath: String, reason: String)
  /// A recipe feature that the trainer does not implement yet; `needs` says what will bring it.
  case notImplemented(file: String, keyPath: String, feature: String, needs: String)
  /// The run folder already holds a run's results.
  case runFolderExists(folder: String, found: [String])
  /// A weights file could not be read or does not fit the model (`distill eval`).
  case badWeights(file: String, reason: String)
  /// The weights file a recipe names (`teacher.from`, `student.init`) could not be read or
  /// does not fit the model: `underlying` names the HDF5 file, object and what was expected.
  case cannotLoadWeights(file: String, keyPath: String, underlying: CheckpointError)
  /// The weights file a recipe names (`weights`) is readable but cannot be used as it stands:
  /// no group to take, no architecture where the recipe gives none, another data shape.
  case weightsMismatch(file: String, keyPath: String, weights: String, reason: String)
  /// The recipe asks for `energy: {meter: rapl}` and RAPL cannot be read; `reason` says why
  /// and how to enable it (`EnergyError`).
  case energyUnavailable(file: String, keyPath: String, reason: String)
  /// A file or folder of the run could not be written.
  case cannotWrite(path: String, reason: String)

  public var description: String {
    switch self {
    case .shapeMismatch(let file, let keyPath, let layer, let input, let reason):
      return "\(file): \(keyPath): layer \(layer) gets samples of shape \(input); \(reason)"
    case .dataLocationRequired(let file, let keyPath, let dataset, let hint):
      return "\(file): \(keyPath): data set '\(dataset)' needs a location; \(hint)"
    case .dataUnavailable(let file, let keyPath, let source, let underlying):
      return "\(file): \(keyPath) (from \(source)): \(underlying)"
    case .dataMismatch(let file, let keyPath, let reason):
      return "\(file): \(keyPath): \(reason)"
    case .notImplemented(let file, let keyPath, let feature, let needs):
      return "\(file): \(keyPath): \(feature) is not implemented yet (\(needs))"
    case .runFolderExists(let folder, let found):
      return
        "\(folder): already holds a run (\(found.joined(separator: ", "))); refusing to overwrite it. "
        + "Choose another folder with --out DIR, or pass --force to replace its results"
    case .badWeights(let file, let reason):
      return "\(file): \(reason)"
    case .cannotLoadWeights(let file, let keyPath, let underlying):
      return "\(file): \(keyPath): \(underlying)"
    case .weightsMismatch(let file, let keyPath, let weights, let reason):
      return "\(file): \(keyPath): \(weights): \(reason)"
    case .energyUnavailable(let file, let keyPath, let reason):
      return
        "\(file): \(keyPath): rapl: \(reason). Or set meter: auto to fall back to the CPU-time estimate "
        + "(labelled 'estimate')"
    case .cannotWrite(let path, let reason):
      return "\(path): cannot write (\(reason))"
    }
  }
}
