import Yams

/// Bounds on a recipe file that are checked before (and right after) the YAML parser sees it,
/// so that a hostile or broken file is an error naming the file and the line, never a stack
/// overflow or an allocation that ends the process. Recipes people write are a few kilobytes,
/// nested about eight levels deep, with tens of keys.
public enum RecipeLimits {
  /// The largest recipe file read: 1 MiB.
  public static let maxBytes = 1 << 20
  /// The deepest nesting of mappings and sequences accepted (the composer recurses once per level).
  public static let maxDepth = 100
  /// The most YAML nodes a recipe may expand to, aliases counted at every use (a "billion
  /// laughs" document of nested aliases stays small as text but not as a tree).
  public static let maxNodes = 100_000
  /// The longest run name (`name:`, which becomes a folder name): 100 characters.
  public static let maxNameLength = 100

  /// Throws `RecipeError.syntax` when `text` is larger than `maxBytes` or nests deeper than
  /// `maxDepth`, at the line where the limit is passed.
  static func check(_ text: String, file: String) throws {
    if text.utf8.count > maxBytes {
      throw RecipeError.cannotRead(
        file: file,
        reason: "the file has \(text.utf8.count) bytes; a recipe may have at most \(maxBytes) (1 MiB)")
    }
    if let (line, depth) = firstTooDeepLine(text) {
      throw RecipeError.syntax(
        file: file, line: line, column: 1,
        problem: "nested \(depth) levels deep here; a recipe may nest at most \(maxDepth) levels")
    }
  }

  /// The first line (1-based) where the nesting depth goes past `maxDepth`, with that depth.
  ///
  /// The depth counted is an upper bound of the composed tree's: open flow brackets (`[`, `{`,
  /// outside quotes and comments) plus the block levels, which are the indentation levels
  /// open at the line plus its compact entries (`- - x`, `? `).
  static func firstTooDeepLine(_ text: String) -> (line: Int, depth: Int)? {
    var indents: [Int] = []
    var flow = 0
    var lineNumber = 0
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      lineNumber += 1
      let bytes = Array(line.utf8)
      var i = 0
      while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
      let blank = i == bytes.count || bytes[i] == UInt8(ascii: "#") || bytes[i] == UInt8(ascii: "\r")
      if !blank && flow == 0 {
        while let last = indents.last, last >= i { indents.removeLast() }
        indents.append(i)
      }
      var compact = 0
      var j = i
      while j + 1 < bytes.count, bytes[j] == UInt8(ascii: "-") || bytes[j] == UInt8(ascii: "?"),
        bytes[j + 1] == UInt8(ascii: " ")
      {
        compact += 1
        j += 2
        while j < bytes.count, bytes[j] == UInt8(ascii: " ") { j += 1 }
      }
      var quote: UInt8? = nil
      var k = i
      var deepest = flow
      while k < bytes.count {
        let c = bytes[k]
        if let q = quote {
          if q == UInt8(ascii: "\""), c == UInt8(ascii: "\\") {
            k += 2
            continue
          }
          if c == q { quote = nil }
        } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
          quote = c
        } else if c == UInt8(ascii: "#"), k == 0 || bytes[k - 1] == UInt8(ascii: " ") {
          break
        } else if c == UInt8(ascii: "[") || c == UInt8(ascii: "{") {
          flow += 1
          deepest = max(deepest, flow)
        } else if c == UInt8(ascii: "]") || c == UInt8(ascii: "}") {
          flow = max(flow - 1, 0)
        }
        k += 1
      }
      let depth = indents.count + compact + deepest
      if depth > maxDepth { return (lineNumber, depth) }
    }
    return nil
  }

  /// Throws `RecipeError.invalidValue` for the whole document when `root` expands to more than
  /// `maxNodes` nodes (aliases counted at each use); stops counting there.
  static func checkSize(of root: Node, file: String) throws {
    var count = 0
    func visit(_ node: Node) -> Bool {
      count += 1
      if count > maxNodes { return false }
      switch node {
      case .mapping(let mapping):
        for (key, value) in mapping where !visit(key) || !visit(value) { return false }
      case .sequence(let sequence):
        for item in sequence where !visit(item) { return false }
      default:
        break
      }
      return true
    }
    if !visit(root) {
      throw RecipeError.invalidValue(
        file: file, keyPath: "", value: "a document of more than \(maxNodes) YAML nodes (aliases expanded)",
        requirement: "a recipe of at most \(maxNodes) nodes; are aliases (*name) nested inside each other?")
    }
  }

  /// `text` when it is at most `limit` characters, else its start, an ellipsis and its length:
  /// values quoted in error messages stay readable whatever a file holds.
  public static func abbreviated(_ text: String, limit: Int = 60) -> String {
    guard text.count > limit else { return text }
    return String(text.prefix(limit)) + "… (\(text.count) characters)"
  }
}
