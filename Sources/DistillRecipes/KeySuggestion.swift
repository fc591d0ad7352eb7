/// "Did you mean …?" for recipe keys and choices.
enum KeySuggestion {
  /// The allowed word closest to `word` by edit distance (case-insensitive, `-` and `_` equal),
  /// if it is close enough to be a likely typo: at most 1 edit for words up to 4 letters, 2 up
  /// to 8, 3 beyond. Ties go to the earlier word in `allowed`.
  static func closest(to word: String, among allowed: [String]) -> String? {
    let normalized = normalize(word)
    let limit = normalized.count <= 4 ? 1 : normalized.count <= 8 ? 2 : 3
    var best: (word: String, distance: Int)?
    for candidate in allowed {
      let distance = editDistance(normalized, normalize(candidate))
      if distance <= limit && distance < (best?.distance ?? Int.max) {
        best = (candidate, distance)
      }
    }
    return best?.word
  }

  /// Optimal string alignment distance: the fewest insertions, deletions, substitutions and
  /// swaps of two adjacent characters that turn `a` into `b` (`optimzer` → `optimizer` is 1).
  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    // d[i][j]: distance between the first i characters of a and the first j of b.
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
      for j in 1...b.count {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
        if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
          d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
        }
      }
    }
    return d[a.count][b.count]
  }

  private static func normalize(_ word: String) -> String {
    String(word.lowercased().map { $0 == "-" ? "_" : $0 })
  }
}
