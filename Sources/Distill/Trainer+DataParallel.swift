import Autodiff
import Datasets
import DistillRecipes
import Foundation

// What a data-parallel run (`mpirun -np N`, the MPI build) checks before and while it trains.
// docs/DESIGN.md → "Data parallelism" describes the whole scheme.

extension Trainer {
  /// Before anything trains: every rank read the same recipe, options and data as rank 0, and
  /// every micro-batch has at least one row for every rank. Throws `ClusterError` on every rank.
  func requireDataParallel(data: TrainingData) throws {
    let ranks = collectives.size
    guard ranks > 1 else { return }
    try collectives.requireSame([
      ("the recipe (\(recipeFile))", Recipe.fnv1a64(recipe.canonicalJSON.utf8)),
      (
        "the command line (--seed, --epochs, --data, --bucket-mb, --no-overlap)",
        Recipe.fnv1a64(
          "\(options.seed.map(String.init) ?? "-") \(options.epochs.map(String.init) ?? "-") \(bucketBytes) \(overlap)"
            .utf8)
      ),
      ("the training data (\(data.train.count) samples)", Self.fingerprint(data.train)),
      ("the \(data.validationSplit) data (\(data.validation.count) samples)", Self.fingerprint(data.validation)),
      ("the \(data.testSplit) data (\(data.test.count) samples)", Self.fingerprint(data.test)),
    ])
    let trains = [("teacher", recipe.teacher?.train), ("student", recipe.student.train)]
    for (role, train) in trains {
      guard let train else { continue }
      let last = data.train.count % train.batchSize
      if train.batchSize < ranks || (last > 0 && last < ranks) {
        let rows = train.batchSize < ranks ? train.batchSize : last
        throw ClusterError.unsupported(
          file: recipeFile, key: "\(role).train.batch_size",
          reason: "\(train.batchSize) over \(data.train.count) training samples makes a batch of \(rows) "
            + "sample\(rows == 1 ? "" : "s"), fewer than the \(ranks) ranks: every rank needs at least one row of "
            + "every batch. Choose a batch size of at least \(ranks) that leaves no smaller remainder, or fewer ranks")
      }
    }
  }

  /// Once the methods are built: a method that keeps state across batches (CRD's memory bank) is
  /// refused, and one that relates a batch's samples to each other is computed per shard, which
  /// `warning` says.
  func requireDataParallel(_ distillation: DistillationRun?) throws -> String? {
    guard collectives.size > 1, let distillation else { return nil }
    for (name, method) in distillation.methods {
      let state = method.state
      if !state.arrays.isEmpty || !state.words.isEmpty {
        throw ClusterError.unsupported(
          file: recipeFile, key: "distillation.method",
          reason: "\(name) keeps state across batches (a memory bank of every sample), which data-parallel training "
            + "does not share between ranks yet; train it without mpirun")
      }
    }
    let coupled = distillation.methods.filter { type(of: $0.method).couplesSamples }.map(\.name)
    guard !coupled.isEmpty else { return nil }
    return "\(coupled.joined(separator: ", ")) relate\(coupled.count == 1 ? "s" : "") the samples of a batch to each "
      + "other: each of the \(collectives.size) ranks computes \(coupled.count == 1 ? "it" : "them") over its own shard "
      + "(as batch norm's statistics), so results differ from one process's"
  }

  /// After an epoch: the ranks' weights are bitwise the same (their gradient sums were), or
  /// `ClusterError.ranksDiverged`.
  func requireSameWeights(_ training: ModelTraining, epoch: Int) throws {
    guard collectives.size > 1 else { return }
    let tensors = training.model.parameters.map(\.tensor) + training.buffers + training.extraParameters.map(\.tensor)
    let all = collectives.gather(collectives.fingerprint(tensors))
    if all.contains(where: { $0 != all[0] }) {
      throw ClusterError.ranksDiverged(epoch: epoch, phase: training.phase)
    }
  }

  /// FNV-1a over a data set's shape, features' bits and labels.
  static func fingerprint(_ data: Dataset) -> UInt64 {
    var hash = WordHash()
    for dimension in data.sampleShape { hash.mix(UInt64(dimension)) }
    data.features.withUnsafeBufferPointer { hash.mix($0) }
    for label in data.labels { hash.mix(UInt64(bitPattern: Int64(label))) }
    return hash.value
  }
}
