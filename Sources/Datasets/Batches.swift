/// The order in which epoch `epoch` visits samples `0..<count`: a Fisher–Yates shuffle driven by
/// a `SplitMixGenerator` whose seed is derived from `(seed, epoch)` alone, so any epoch's order
/// can be rebuilt on resume without replaying earlier epochs. Different epochs get unrelated
/// orders (the epoch is hashed into the seed, not added to it).
public func epochOrder(count: Int, seed: UInt64, epoch: Int) -> [Int] {
  var seeds = SplitMixGenerator(seed: seed)
  var mixed = SplitMixGenerator(seed: seeds.next() ^ UInt64(bitPattern: Int64(epoch)))
  var generator = SplitMixGenerator(seed: mixed.next())
  var order = Array(0..<count)
  order.withUnsafeMutableBufferPointer { order in
    var i = count - 1
    while i > 0 {
      let j = generator.nextIndex(below: i + 1)
      order.swapAt(i, j)
      i -= 1
    }
  }
  return order
}

/// The mini-batches of one epoch over a `Dataset`, in a seeded order (`epochOrder`) or in
/// dataset order. Each `next` copies one batch's features (`[B, sampleShape…]`, row-major) and
/// labels into buffers the caller owns, allocating nothing per sample.
///
/// `batchCount` is `⌈count / batchSize⌉`, the last batch smaller, or `⌊count / batchSize⌋` when
/// `dropsLastPartialBatch`. PyTorch: `DataLoader(ds, batch_size, shuffle, drop_last)`.
///
/// Resume: `EpochBatches(…, epoch: e, startingAtBatch: b)` continues epoch `e` at batch `b` with
/// the same order an uninterrupted run had.
///
///     var batches = EpochBatches(dataset: train, batchSize: 128, seed: 1, epoch: epoch)
///     var x: [Float] = [], y: [Int] = []
///     while let n = batches.next(features: &x, labels: &y) { … }   // x: [n, 1, 28, 28], y: [n]
public struct EpochBatches: Sendable {
  public let dataset: Dataset
  public let batchSize: Int
  public let epoch: Int
  public let dropsLastPartialBatch: Bool
  /// The sample indices in visiting order.
  public let order: [Int]
  /// The index of the batch the next call to `next` returns.
  public private(set) var nextBatch: Int

  /// - Parameters:
  ///   - shuffled: `false` visits samples in dataset order (evaluation); `seed` is then unused.
  ///   - startingAtBatch: the first batch to return (resume mid-epoch).
  public init(
    dataset: Dataset, batchSize: Int, seed: UInt64, epoch: Int, shuffled: Bool = true,
    dropsLastPartialBatch: Bool = false, startingAtBatch: Int = 0
  ) {
    precondition(batchSize > 0, "batchSize must be positive, got \(batchSize)")
    self.dataset = dataset
    self.batchSize = batchSize
    self.epoch = epoch
    self.dropsLastPartialBatch = dropsLastPartialBatch
    self.order =
      shuffled ? epochOrder(count: dataset.count, seed: seed, epoch: epoch) : Array(0..<dataset.count)
    self.nextBatch = startingAtBatch
  }

  /// The number of batches in the epoch.
  public var batchCount: Int {
    dropsLastPartialBatch ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
  }

  /// The sample indices of batch `b`.
  public func indices(ofBatch b: Int) -> ArraySlice<Int> {
    order[b * batchSize..<min((b + 1) * batchSize, order.count)]
  }

  /// Copies the next batch into the front of `features` (room for `batchSize · sampleSize`
  /// values) and `labels` (room for `batchSize`), and returns its size `n`; `nil` after the last
  /// batch.
  public mutating func next(
    features: UnsafeMutableBufferPointer<Float>, labels: UnsafeMutableBufferPointer<Int>
  ) -> Int? {
    guard nextBatch < batchCount else { return nil }
    let indices = indices(ofBatch: nextBatch)
    nextBatch += 1
    dataset.copySamples(at: indices, features: features, labels: labels)
    return indices.count
  }

  /// Copies the next batch into `features` and `labels`, resized to exactly `n · sampleSize` and
  /// `n` elements (reallocating only when they grow past their capacity, so reusing the same two
  /// arrays across batches allocates once), and returns `n`; `nil` after the last batch.
  public mutating func next(features: inout [Float], labels: inout [Int]) -> Int? {
    guard nextBatch < batchCount else { return nil }
    let n = indices(ofBatch: nextBatch).count
    resize(&features, to: n * dataset.sampleSize)
    resize(&labels, to: n)
    return features.withUnsafeMutableBufferPointer { f in
      labels.withUnsafeMutableBufferPointer { l in next(features: f, labels: l) }
    }
  }
}

extension Dataset {
  /// Copies the samples at `indices`, in that order, into the front of `features`
  /// (`indices.count · sampleSize` values) and `labels` (`indices.count`).
  public func copySamples(
    at indices: ArraySlice<Int>, features: UnsafeMutableBufferPointer<Float>,
    labels: UnsafeMutableBufferPointer<Int>
  ) {
    let size = sampleSize
    precondition(
      features.count >= indices.count * size && labels.count >= indices.count, "batch buffers too small")
    self.features.withUnsafeBufferPointer { source in
      self.labels.withUnsafeBufferPointer { sourceLabels in
        for (row, i) in indices.enumerated() {
          precondition(i >= 0 && i < count, "sample index \(i) outside 0..<\(count)")
          // Both ranges are in bounds: checked just above and by the precondition on the buffers.
          (features.baseAddress! + row * size).update(from: source.baseAddress! + i * size, count: size)
          labels[row] = sourceLabels[i]
        }
      }
    }
  }
}

/// Sets `array.count` to `count`, keeping its capacity when it shrinks; new elements are 0.
private func resize<T: Numeric>(_ array: inout [T], to count: Int) {
  if array.count > count {
    array.removeLast(array.count - count)
  } else if array.count < count {
    array.append(contentsOf: repeatElement(0, count: count - array.count))
  }
}
