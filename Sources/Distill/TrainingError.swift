import Checkpoints
import Datasets
import Foundation
import DistillRecipes

/// Why a run could not start or go on, after the recipe itself was read and validated
/// (problems within the recipe file are `RecipeError`s). Every case names what to look at: the
/// recipe file and key path, the data folder, or the run folder, so the CLI prints the
/// description for people and tests match on the case.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
  /// A model's layers do not fit the data or each other: `layer` is the layer's position in
  /// the expanded layer list and its name (`"3 (conv2d)"`), `input` the per-sample shape it
  /// was given, `reason` what it needs.
  case shapeMismatch(file: String, keyPath: String, layer: String, input: [Int], reason: String)
  /// A model (from a recipe or a model file's architecture) is larger than this machine could
  /// train: `keyPath` names the layer, `reason` the sizes and bytes.
  case modelTooLarge(file: String, keyPath: String, reason: String)
  /// The data set needs a location that neither `--data` nor `data.path` gave.
  case dataLocationRequired(file: String, keyPath: String, dataset: String, hint: String)
  /// The data could not be read; `source` says where the location came from (`--data`,
  /// `data.path`, or the default), `underlying` names the files.
  case dataUnavailable(file: String, keyPath: String, source: String, underlying: DatasetError)
  /// The recipe's data settings do not fit the data that was loaded (`data.shape` with the
  /// wrong number of elements, no held-out split where one is needed).
  case dataMismatch(file: String, keyPath: String, reason: String)
  /// The run folder already holds a run's results; `resumable` when that run stopped before
  /// its end and has a checkpoint (`distill resume` continues it).
  case runFolderExists(folder: String, found: [String], resumable: Bool)
  /// Another process (`pid`, when it wrote one) holds the run folder's lock (`RunFolderLock`).
  case runFolderLocked(folder: String, pid: Int32?)
  /// A weights file could not be read or does not fit the model (`distill eval`).
  case badWeights(file: String, reason: String)
  /// The weights file a recipe names (`teacher.from`, `student.init`) could not be read or
  /// does not fit the model: `underlying` names the HDF5 file, object and what was expected.
  case cannotLoadWeights(file: String, keyPath: String, underlying: CheckpointError)
  /// The weights file a recipe names (`weights`) is readable but cannot be used as it stands:
  /// no group to take, no architecture where the recipe gives none, another data shape.
  case weightsMismatch(file: String, keyPath: String, weights: String, reason: String)
  /// A distillation method's settings do not fit the networks as built (a layer position
  /// beyond a network's layers, feature shapes that cannot be matched): `keyPath` names the
  /// setting.
  case methodMismatch(file: String, keyPath: String, reason: String)
  /// The recipe asks for `energy: {meter: rapl}` and RAPL cannot be read; `reason` says why
  /// and how to enable it (`EnergyError`).
  case energyUnavailable(file: String, keyPath: String, reason: String)
  /// A file or folder of the run could not be written.
  case cannotWrite(path: String, reason: String)
  /// A stop was requested (`signal`: SIGINT or SIGTERM, 0 when asked otherwise) and the run
  /// saved its state in `checkpoint`; `distill resume folder` continues it.
  case stopped(signal: Int32, checkpoint: String, folder: String)
  /// `distill resume`: the folder is not a run folder (no `recipe.yaml`).
  case notARunFolder(folder: String, reason: String)
  /// `distill resume`: no checkpoint in the folder could be read; `tried` lists each file with
  /// the reason (empty when there is none at all).
  case noCheckpoint(folder: String, tried: [String])
  /// `distill resume`: the recipe was edited since the checkpoint was written; `keys` are the
  /// key paths whose values differ.
  case recipeChanged(file: String, checkpoint: String, keys: [String])
  /// Training produced a non-finite loss (f32), or one for `ModelTraining.nonFiniteStepLimit`
  /// optimizer steps in a row (f16-mixed), at the model's `epoch` (1-based), micro-batch `batch`
  /// of it and optimizer step `step`; the weights were not updated with it, and `checkpoint` is
  /// the last one written (nil when the first epoch had not ended).
  case diverged(
    role: String, epoch: Int, batch: Int, step: Int, loss: Double, precision: String, checkpoint: String?,
    recipe: String)
  /// `distill resume`: the checkpoint was written by a run of another recipe (`checkpointRecipe`
  /// is its name) than the folder's `recipe.yaml` (`recipe`): copied from another run folder?
  case checkpointOfAnotherRecipe(checkpoint: String, checkpointRecipe: String, file: String, recipe: String)
  /// A checkpoint's training state does not fit the run's model or optimizer: `object` is the
  /// HDF5 object, `reason` what was expected and found.
  case checkpointMismatch(file: String, object: String, reason: String)
  /// A compression stage lost more validation accuracy (fractions `before` → `after`) than its
  /// `max_accuracy_drop` (points, at `keyPath`); the run stopped after it, keeping the model file
  /// `kept` of the phase before it (`previous`) as its result, recorded in `summary.json`.
  case stageLostAccuracy(
    file: String, keyPath: String, stage: String, before: Double, after: Double, limit: Double, previous: String,
    kept: String, folder: String)

  public var description: String {
    switch self {
    case .shapeMismatch(let file, let keyPath, let layer, let input, let reason):
      return "\(file): \(keyPath): layer \(layer) gets samples of shape \(input); \(reason)"
    case .modelTooLarge(let file, let keyPath, let reason):
      return "\(file): \(keyPath): \(reason)"
    case .dataLocationRequired(let file, let keyPath, let dataset, let hint):
      return "\(file): \(keyPath): data set '\(dataset)' needs a location; \(hint)"
    case .dataUnavailable(let file, let keyPath, let source, let underlying):
      return "\(file): \(keyPath) (from \(source)): \(underlying)"
    case .dataMismatch(let file, let keyPath, let reason):
      return "\(file): \(keyPath): \(reason)"
    case .runFolderExists(let folder, let found, let resumable):
      return
        "\(folder): already holds a run (\(found.joined(separator: ", "))); refusing to overwrite it. "
        + (resumable ? "It stopped before its end: continue it with distill resume \(folder), or " : "")
        + "choose another folder with --out DIR, or pass --force to replace its results"
    case .runFolderLocked(let folder, let pid):
      let holder = pid.map { "another distill process (PID \($0))" } ?? "another distill process"
      return "\(folder): \(holder) is training in this run folder; wait for it to end"
        + (pid.map { " or stop it (kill -INT \($0))" } ?? "") + ", or use another folder (--out DIR)"
    case .badWeights(let file, let reason):
      return "\(file): \(reason)"
    case .cannotLoadWeights(let file, let keyPath, let underlying):
      return "\(file): \(keyPath): \(underlying)"
    case .weightsMismatch(let file, let keyPath, let weights, let reason):
      return "\(file): \(keyPath): \(weights): \(reason)"
    case .methodMismatch(let file, let keyPath, let reason):
      return "\(file): \(keyPath): \(reason)"
    case .energyUnavailable(let file, let keyPath, let reason):
      return
        "\(file): \(keyPath): rapl: \(reason). Or set meter: auto to fall back to the CPU-time estimate "
        + "(labelled 'estimate')"
    case .cannotWrite(let path, let reason):
      return "\(path): cannot write (\(reason))"
    case .stopped(let signal, let checkpoint, let folder):
      let cause = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "request"
      return "stopped by \(cause); the state is saved in \(checkpoint). Continue with: distill resume \(folder)"
    case .notARunFolder(let folder, let reason):
      return "\(folder): not a run folder (\(reason)); give the folder distill train wrote (--out, "
        + "default checkpoints/<recipe name>)"
    case .noCheckpoint(let folder, let tried):
      if tried.isEmpty {
        return "\(folder): holds no checkpoint (latest.h5, epoch-NNNN.h5): the run stopped before its first "
          + "epoch ended; start it again with distill train <recipe> --out \(folder) --force"
      }
      return "\(folder): no readable checkpoint: " + tried.joined(separator: "; ")
        + ". Start the run again with distill train <recipe> --out \(folder) --force"
    case .recipeChanged(let file, let checkpoint, let keys):
      return "\(file) was edited since \(checkpoint) was written; changed: "
        + (keys.isEmpty ? "(unknown keys)" : keys.joined(separator: ", "))
        + ". Undo the edit to resume exactly, or pass --force to continue with the edited recipe"
    case .diverged(let role, let epoch, let batch, let step, let loss, let precision, let checkpoint, let recipe):
      let limit = precision == "f32" ? "" : " for \(ModelTraining.nonFiniteStepLimit) optimizer steps in a row"
      return "\(recipe): the \(role) diverged: its training loss was \(loss)\(limit) at epoch \(epoch), "
        + "micro-batch \(batch) (optimizer step \(step)); the weights were not updated with it. "
        + (checkpoint.map { "The last good checkpoint is \($0). " } ?? "No epoch had ended, so there is no checkpoint. ")
        + "Lower the learning rate ("
        + (role == "teacher" || role == "student" ? "\(role).train.optimizer.lr" : "the \(role) stage's lr_factor")
        + ") or the distillation weights, then train again"
    case .checkpointOfAnotherRecipe(let checkpoint, let checkpointRecipe, let file, let recipe):
      return "\(checkpoint) was written by a run of the recipe '\(RecipeLimits.abbreviated(checkpointRecipe))', "
        + "but \(file) is the recipe '\(RecipeLimits.abbreviated(recipe))' (was the checkpoint copied from "
        + "another run folder?); resume the folder of the run that wrote it, or pass --force to continue "
        + "with this folder's recipe"
    case .checkpointMismatch(let file, let object, let reason):
      return "\(file): \(object): \(reason) (was the checkpoint written by another recipe?)"
    case .stageLostAccuracy(let file, let keyPath, let stage, let before, let after, let limit, let previous, let kept, let folder):
      return "\(file): \(keyPath): the \(stage) stage took validation accuracy from "
        + String(format: "%.2f%% (%@) to %.2f%%, a drop of %.2f points, more than the %g allowed", before * 100, previous, after * 100, (before - after) * 100, limit)
        + "; the run stopped there and its result is \(folder)/\(kept) (summary.json says so). "
        + "Give the stage more epochs, a gentler setting, or a larger max_accuracy_drop"
    }
  }
}
