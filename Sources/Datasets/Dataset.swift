/// Labelled samples held as one flat `Float` array: sample `i` occupies
/// `features[i * sampleSize ..< (i + 1) * sampleSize]` in row-major order of `sampleShape`.
///
/// The data module knows nothing of tensors; trainers wrap batches as they need.
public struct Dataset: Sendable {
  /// The shape of one sample, e.g. `[64]` for 8×8 digits as vectors or `[1, 28, 28]` for MNIST.
  public var sampleShape: [Int]
  /// All samples, flattened and concatenated.
  public var features: [Float]
  /// One class index per sample, in 0..<classCount.
  public var labels: [Int]
  /// The number of classes.
  public var classCount: Int

  /// The number of elements in one sample.
  public var sampleSize: Int { sampleShape.reduce(1, *) }
  /// The number of samples.
  public var count: Int { labels.count }

  public init(sampleShape: [Int], features: [Float], labels: [Int], classCount: Int) {
    precondition(features.count == labels.count * sampleShape.reduce(1, *))
    self.sampleShape = sampleShape
    self.features = features
    self.labels = labels
    self.classCount = classCount
  }

  /// The samples at `indices`, in that order.
  public func subset(_ indices: [Int]) -> Dataset {
    let size = sampleSize
    var out = [Float]()
    out.reserveCapacity(indices.count * size)
    features.withUnsafeBufferPointer { f in
      for i in indices { out.append(contentsOf: f[i * size..<(i + 1) * size]) }
    }
    return Dataset(
      sampleShape: sampleShape, features: out, labels: indices.map { labels[$0] },
      classCount: classCount)
  }

  /// Every feature multiplied by `scale` (e.g. 1/16 for digits, 1/255 for MNIST pixels).
  public func scaled(by scale: Float) -> Dataset {
    var copy = self
    copy.features.withUnsafeMutableBufferPointer { f in
      for i in f.indices { f[i] *= scale }
    }
    return copy
  }

  /// A stratified split: `validationFraction` of each class, chosen by a seeded shuffle, goes
  /// to the second set; the rest, in their original order, to the first.
  public func stratifiedSplit(validationFraction: Double, seed: UInt64) -> (train: Dataset, validation: Dataset) {
    var rng = SplitMixGenerator(seed: seed)
    var train: [Int] = []
    var validation: [Int] = []
    // Each class's members in index order, gathered in one pass (not one pass per class: a
    // CSV file may declare a million classes).
    var byClass = [[Int]](repeating: [], count: classCount)
    for (index, label) in labels.enumerated() where (0..<classCount).contains(label) {
      byClass[label].append(index)
    }
    for c in 0..<classCount {
      var members = byClass[c]
      // Fisher–Yates with our own bounded draw (not the standard library's `shuffle`, whose
      // algorithm may change between Swift versions), so a seed names the same split forever.
      for i in stride(from: members.count - 1, to: 0, by: -1) {
        members.swapAt(i, rng.nextIndex(below: i + 1))
      }
      let k = Int((Double(members.count) * validationFraction).rounded())
      validation += members.prefix(k)
      train += members.dropFirst(k)
    }
    return (subset(train.sorted()), subset(validation.sorted()))
  }
}

/// A small seeded generator (SplitMix64) for data order; fixed across machines.
public struct SplitMixGenerator: RandomNumberGenerator, Sendable {
  public var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

extension SplitMixGenerator {
  /// A draw in `0..<bound` from the high 64 bits of `next() * bound` (Lemire's multiply-shift,
  /// without the rejection step: the bias is below `bound / 2^64`). Written out here rather than
  /// using the standard library's `next(upperBound:)`, so the sequence is ours to keep stable
  /// across Swift versions — a saved `state` must replay the same shuffles and augmentations.
  @inline(__always)
  public mutating func nextIndex(below bound: Int) -> Int {
    precondition(bound > 0)
    return Int(truncatingIfNeeded: UInt64(bound).multipliedFullWidth(by: next()).high)
  }
}
