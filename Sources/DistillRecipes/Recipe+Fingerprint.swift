// A recipe's identity for resume checks: a stable hash, and which keys changed.

extension Recipe {
  /// The recipe as canonical JSON (see `CanonicalValue`): every key with its default filled in,
  /// object keys sorted, no whitespace. Key order and spelled-out defaults in the YAML do not
  /// change it; any value that changes the meaning of the recipe does.
  public var canonicalJSON: String { canonicalValue.json }

  /// FNV-1a 64-bit hash of `canonicalJSON`'s UTF-8 bytes, as 16 lowercase hex digits.
  /// Stored in checkpoints so `resume` can tell whether the recipe was edited since.
  ///
  /// FNV-1a: `h = 0xcbf29ce484222325`; for each byte `b`: `h = (h ^ b) &* 0x100000001b3`.
  public var canonicalHash: String {
    let hash = Self.fnv1a64(canonicalJSON.utf8)
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
  }

  /// The key paths whose values differ between `old` and this recipe, sorted
  /// (`["distillation.temperature", "student.train.epochs"]`); empty when they have the same
  /// `canonicalHash`. A key added or removed, or a list whose length changed, is reported at its
  /// own path; a changed one-of choice (`sgd` → `adam`) as both the old and the new key.
  public func changedKeys(from old: Recipe) -> [String] {
    canonicalValue.differences(from: old.canonicalValue)
  }

  /// FNV-1a, 64-bit (Fowler, Noll, Vo).
  public static func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
      hash ^= UInt64(byte)
      hash = hash &* 0x0000_0100_0000_01b3
    }
    return hash
  }

  private var canonicalValue: CanonicalValue {
    // The recipe types' encode(to:) never throw, and CanonicalEncoder itself never throws.
    try! CanonicalValue(encoding: self)
  }
}
