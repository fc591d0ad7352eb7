import Autodiff
import Datasets
import NN
import DistillRecipes

/// Accuracy and mean cross-entropy of a model over a data set.
public struct Evaluation: Equatable, Sendable {
  /// The fraction of samples whose largest logit is at their label, in [0, 1].
  public var accuracy: Double
  /// The mean cross-entropy over the samples (`F.cross_entropy`, no label smoothing).
  public var loss: Double
  /// The number of samples evaluated.
  public var count: Int
}

/// Evaluates `model` on every sample of `data` in evaluation mode (dropout off, batch norm on
/// its running statistics), recording nothing for differentiation; the model's mode is
/// restored afterwards. Batches of `batchSize` bound the memory used.
///
/// Shape: the model maps `[N] + data.sampleShape` → `[N, data.classCount]`.
public func evaluate(_ model: any Layer, on data: Dataset, batchSize: Int = 500) -> Evaluation {
  let wasTraining = model.isTraining
  model.eval()
  defer { model.isTraining = wasTraining }
  var batches = EpochBatches(dataset: data, batchSize: batchSize, seed: 0, epoch: 0, shuffled: false)
  var x: [Float] = []
  var y: [Int] = []
  var correct = 0
  var lossSum = 0.0
  noGrad {
    while let n = batches.next(features: &x, labels: &y) {
      let logits = model(Tensor(shape: [n] + data.sampleShape, storage: x))
      lossSum += Double(crossEntropy(logits: logits, labels: y).scalar) * Double(n)
      correct += countCorrect(logits: logits, labels: y)
    }
  }
  let count = max(data.count, 1)
  return Evaluation(
    accuracy: Double(correct) / Double(count), loss: lossSum / Double(count), count: data.count)
}

/// `evaluate(_:on:)` with the samples shared out over the ranks of a data-parallel run
/// (`shardRange`), the counts summed: every rank gets the whole split's result. One process
/// evaluates everything.
func evaluate(_ model: any Layer, on data: Dataset, across collectives: any Collectives) -> Evaluation {
  guard collectives.size > 1 else { return evaluate(model, on: data) }
  let rows = shardRange(rows: data.count, rank: collectives.rank, size: collectives.size)
  let part = evaluate(model, on: data.subset(Array(rows)))
  let sums = collectives.sum([part.accuracy * Double(part.count), part.loss * Double(part.count)])
  let count = max(data.count, 1)
  return Evaluation(accuracy: sums[0].rounded() / Double(count), loss: sums[1] / Double(count), count: data.count)
}

/// The number of rows of `logits` `[N, K]` whose largest entry (the first, on ties) is at the
/// row's label.
func countCorrect(logits: Tensor, labels: [Int]) -> Int {
  let classes = logits.shape[1]
  var correct = 0
  logits.storage.withUnsafeBufferPointer { l in
    for (row, label) in labels.enumerated() {
      var best = 0
      for k in 1..<classes where l[row * classes + k] > l[row * classes + best] { best = k }
      if best == label { correct += 1 }
    }
  }
  return correct
}
