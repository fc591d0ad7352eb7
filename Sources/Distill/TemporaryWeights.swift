import Autodiff
import Foundation
import NN

/// TEMPORARY weights format, until the HDF5 issue (`Sources/Checkpoints`) writes `teacher.h5`
/// and `student.h5` as DESIGN.md describes; that issue replaces this file and its callers.
///
/// `<run folder>/<role>.weights.json` holds one model's `stateDict` (PyTorch key names and
/// layouts) as JSON:
///
///     {"format": "swift-distill-temporary-weights-1", "model": "student", "recipe": "digits-kd",
///      "recipe_hash": "…", "seed": 1,
///      "tensors": [{"name": "1.weight", "shape": [32, 64], "values": [0.1, …]}, …]}
///
/// Values are Float32 in row-major order, written in Swift's shortest round-trip form, so a
/// read gives back the same bits. Nothing outside this project should depend on it.
public enum TemporaryWeights {
  /// The `format` member every file has.
  public static let format = "swift-distill-temporary-weights-1"

  /// What a weights file holds.
  public struct Contents {
    public var role: ModelRole
    public var recipeName: String
    public var recipeHash: String
    public var seed: UInt64
    public var stateDict: [(name: String, tensor: Tensor)]
  }

  /// Writes `model`'s state dictionary to `path`.
  public static func write(_ model: any Layer, role: ModelRole, recipe: Recipe, to path: String) throws {
    var text = JSONObject([
      ("format", .string(format)), ("model", .string(role.rawValue)), ("recipe", .string(recipe.name)),
      ("recipe_hash", .string(recipe.canonicalHash)), ("seed", .int(Int(truncatingIfNeeded: recipe.seed))),
    ]).text
    text.removeLast()  // the closing brace; the tensors follow
    text += ", \"tensors\": ["
    for (i, (name, tensor)) in model.stateDict.enumerated() {
      text += i == 0 ? "\n" : ",\n"
      text +=
        "{\"name\": \(JSONObject.quoted(name)), "
        + "\"shape\": [\(tensor.shape.map(String.init).joined(separator: ", "))], \"values\": ["
      tensor.storage.withUnsafeBufferPointer { values in
        for (j, v) in values.enumerated() {
          if j > 0 { text += "," }
          text += v.isFinite ? v.description : "null"
        }
      }
      text += "]}"
    }
    text += "\n]}\n"
    do {
      try text.write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
      throw TrainingError.cannotWrite(path: path, reason: error.localizedDescription)
    }
  }

  /// Reads a file written by `write`; throws `TrainingError.badWeights` naming the file and
  /// what is wrong.
  public static func read(path: String) throws -> Contents {
    func bad(_ reason: String) -> TrainingError { .badWeights(file: path, reason: reason) }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw bad(FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
    }
    guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw bad("not JSON; expected a <role>.weights.json written by distill train (HDF5 files come later)")
    }
    guard object["format"] as? String == format else {
      throw bad("not a \(format) file (member 'format' is \(object["format"].map { "\($0)" } ?? "missing"))")
    }
    guard let roleName = object["model"] as? String, let role = ModelRole(rawValue: roleName) else {
      throw bad("member 'model' must be 'teacher' or 'student'")
    }
    guard let entries = object["tensors"] as? [[String: Any]] else {
      throw bad("member 'tensors' is missing")
    }
    var stateDict: [(name: String, tensor: Tensor)] = []
    for (i, entry) in entries.enumerated() {
      guard let name = entry["name"] as? String, let shape = entry["shape"] as? [Int],
        let values = entry["values"] as? [Any]
      else { throw bad("tensors[\(i)] needs 'name', 'shape' and 'values'") }
      guard shape.allSatisfy({ $0 >= 0 }), values.count == shape.reduce(1, *) else {
        throw bad("tensor \(name): \(values.count) values for shape \(shape)")
      }
      let floats = values.map { ($0 as? NSNumber)?.floatValue ?? .nan }
      stateDict.append((name, Tensor(shape: shape, storage: floats)))
    }
    return Contents(
      role: role, recipeName: object["recipe"] as? String ?? "",
      recipeHash: object["recipe_hash"] as? String ?? "",
      seed: (object["seed"] as? NSNumber)?.uint64Value ?? 0, stateDict: stateDict)
  }
}
