/// Why a state dictionary could not be loaded into a layer. Every case names the key, so the
/// message says which tensor of which checkpoint to look at.
public enum NNError: Error, Equatable, CustomStringConvertible {
  /// The layer has a tensor with this key that the state dictionary lacks.
  case missingKey(String, expectedShape: [Int])
  /// The state dictionary has a key the layer does not.
  case unexpectedKey(String, shape: [Int])
  /// Both have the key, with different shapes.
  case shapeMismatch(String, expected: [Int], found: [Int])
  /// The same key was given twice.
  case duplicateKey(String)

  public var description: String {
    switch self {
    case .missingKey(let key, let shape):
      return "missing key \"\(key)\" (the model expects a tensor of shape \(shape))"
    case .unexpectedKey(let key, let shape):
      return "unexpected key \"\(key)\" (shape \(shape)) that the model does not have"
    case .shapeMismatch(let key, let expected, let found):
      return "\"\(key)\" has shape \(found), the model expects \(expected)"
    case .duplicateKey(let key):
      return "key \"\(key)\" is given more than once"
    }
  }
}
