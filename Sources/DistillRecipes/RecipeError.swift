/// Why a recipe was rejected. Every case names the recipe file; every case but `cannotRead` and
/// `syntax` names the key path (`student.train.optimizer.sgd.lr`, `student.model.layers[2]`)
/// of the offending key, so the message a person sees says where to look and what to change.
///
/// The schema these errors enforce is documented in `recipes/README.md`.
public enum RecipeError: Error, Equatable, CustomStringConvertible {
  /// The file does not exist or cannot be read as UTF-8 text.
  case cannotRead(file: String, reason: String)
  /// The text is not valid YAML; `line` and `column` count from 1.
  case syntax(file: String, line: Int, column: Int, problem: String)
  /// A key the schema does not know at this level; `suggestion` is the closest allowed key by
  /// edit distance, when one is close enough, and `allowed` lists every key allowed here.
  case unknownKey(file: String, keyPath: String, key: String, suggestion: String?, allowed: [String])
  /// The same key twice in one mapping.
  case duplicateKey(file: String, keyPath: String)
  /// A required key is absent; `keyPath` ends with the missing key.
  case missingKey(file: String, keyPath: String)
  /// A value of the wrong kind: `expected` and `found` are phrases like "an integer", "'ten'".
  case wrongType(file: String, keyPath: String, expected: String, found: String)
  /// A word outside the fixed set of choices (`method: kdd`), with the closest choice if any.
  case invalidChoice(file: String, keyPath: String, value: String, allowed: [String], suggestion: String?)
  /// A value of the right kind outside its allowed range: `requirement` completes "must be …".
  case invalidValue(file: String, keyPath: String, value: String, requirement: String)
  /// Keys that do not fit together (a teacher with both `from` and `train`, `kd` without a
  /// teacher); `reason` says what to do.
  case conflict(file: String, keyPath: String, reason: String)

  /// The recipe file the error is about.
  public var file: String {
    switch self {
    case .cannotRead(let file, _), .syntax(let file, _, _, _), .unknownKey(let file, _, _, _, _),
      .duplicateKey(let file, _), .missingKey(let file, _), .wrongType(let file, _, _, _),
      .invalidChoice(let file, _, _, _, _), .invalidValue(let file, _, _, _), .conflict(let file, _, _):
      return file
    }
  }

  /// The key path the error is about (`""` for the document as a whole); nil for read and
  /// syntax errors.
  public var keyPath: String? {
    switch self {
    case .cannotRead, .syntax:
      return nil
    case .unknownKey(_, let path, _, _, _), .duplicateKey(_, let path), .missingKey(_, let path),
      .wrongType(_, let path, _, _), .invalidChoice(_, let path, _, _, _), .invalidValue(_, let path, _, _),
      .conflict(_, let path, _):
      return path
    }
  }

  public var description: String {
    // Keys and values come from the file: quoted abbreviated, so a hostile file cannot make the
    // message itself unreadable.
    let short = { (text: String) in RecipeLimits.abbreviated(text) }
    let place = "\(file): \(keyPath.map { $0.isEmpty ? "(top level)" : short($0) } ?? "")"
    switch self {
    case .cannotRead(let file, let reason):
      return "\(file): cannot read recipe (\(reason))"
    case .syntax(let file, let line, let column, let problem):
      return "\(file):\(line):\(column): YAML syntax error: \(problem)"
    case .unknownKey(_, _, let key, let suggestion, let allowed):
      let key = short(key)
      if let suggestion {
        return "\(place): unknown key '\(key)'; did you mean '\(suggestion)'?"
      }
      if allowed.isEmpty { return "\(place): unknown key '\(key)'; this entry takes no keys" }
      return "\(place): unknown key '\(key)'; allowed here: \(allowed.joined(separator: ", "))"
    case .duplicateKey(_, let path):
      return "\(place): key '\(Self.lastComponent(of: path))' appears twice; keep one"
    case .missingKey(_, let path):
      return
        "\(place): missing required key '\(Self.lastComponent(of: path))'; add it (see recipes/README.md)"
    case .wrongType(_, _, let expected, let found):
      return "\(place): expected \(expected), found \(short(found))"
    case .invalidChoice(_, let path, let value, let allowed, let suggestion):
      let value = short(value)
      let choices = allowed.joined(separator: ", ")
      // The distillation methods have a command that describes them.
      let more = path.hasPrefix("distillation.method") ? "; `distill methods` describes each" : ""
      if let suggestion {
        return "\(place): unknown value '\(value)'; did you mean '\(suggestion)'? (one of \(choices))\(more)"
      }
      return "\(place): unknown value '\(value)'; choose one of \(choices)\(more)"
    case .invalidValue(_, _, let value, let requirement):
      return "\(place): invalid value \(value); must be \(requirement)"
    case .conflict(_, _, let reason):
      return "\(place): \(reason)"
    }
  }

  /// `"student.train.epochs"` → `"epochs"`, `"model.layers[2]"` → `"layers[2]"`.
  static func lastComponent(of path: String) -> String {
    path.split(separator: ".").last.map(String.init) ?? path
  }
}
