import Autodiff
import Datasets
import Foundation
import NN
import DistillRecipes

/// One micro-batch as a loss sees it: the (augmented) input `[n] + sampleShape`, the labels,
/// the samples' positions in the training split, and the 1-based epoch.
struct MicroBatch {
  let input: Tensor
  let labels: [Int]
  let indices: [Int]
  let epoch: Int
}

/// The loss of one micro-batch: runs `model` (in training mode) on the batch's input and
/// compares with the labels and whatever else the method uses; a scalar, the mean over the
/// micro-batch. The forward pass is the loss's, so a method can read intermediate layers.
typealias BatchLoss = (_ model: Sequential, _ batch: MicroBatch) -> Tensor

/// Where training is, after each micro-batch, for progress displays.
public struct BatchProgress: Sendable {
  public var role: ModelRole
  /// `teacher`, `student`, or a compression stage's label (`prune`): what is training.
  public var phase: String
  /// 1-based.
  public var epoch: Int
  public var epochs: Int
  /// Micro-batches done in this epoch, 1-based.
  public var batch: Int
  public var batches: Int
  /// Samples trained on in this epoch so far.
  public var samples: Int
  /// The mean training loss over this epoch's samples so far.
  public var loss: Double
  /// Seconds since the epoch started.
  public var epochSeconds: Double
  /// Seconds since this model's training started.
  public var modelSeconds: Double
}

/// What one epoch of training did.
public struct EpochTraining: Sendable {
  /// The mean loss over the epoch's samples, as trained (dropout on, augmented inputs).
  public var loss: Double
  /// Samples trained on.
  public var samples: Int
  /// Optimizer steps taken.
  public var steps: Int
  /// The learning rate of the epoch.
  public var learningRate: Double
  /// The loss scale after the epoch, in f16-mixed; nil in f32.
  public var lossScale: Double? = nil
  /// Optimizer steps skipped for inf/NaN gradients since the model's training began, in
  /// f16-mixed; nil in f32.
  public var skippedSteps: Int? = nil
  /// Where the epoch stopped when a stop was requested before its end; nil when it ended.
  public var stoppedAt: EpochProgress?
  /// Data-parallel runs: seconds this rank spent summing gradients over the ranks outside
  /// backward (starting buckets, waiting for their sums, copying them back; waiting includes
  /// waiting for slower ranks); nil on one process.
  public var allreduceSeconds: Double? = nil
  /// Set when training stopped on a non-finite loss (`ModelTraining.trainEpoch`): the 1-based
  /// micro-batch of the epoch and optimizer step of the model, and the loss.
  public var diverged: (batch: Int, step: Int, loss: Float)? = nil
}

/// How far an epoch has got, at a step boundary: its first `batch` micro-batches are trained,
/// with these sums. `EpochProgress()` is an epoch's start; a checkpoint saves and restores it.
public struct EpochProgress: Equatable, Sendable {
  /// Micro-batches trained.
  public var batch = 0
  /// Σ micro-batch mean loss × micro-batch size.
  public var lossSum = 0.0
  public var samples = 0
  /// Optimizer steps taken.
  public var steps = 0
  /// Wall time spent in the epoch so far (before an interruption, added to the epoch's record).
  public var seconds = 0.0
  /// Energy of the epoch's training so far (before an interruption, added to the epoch's
  /// record): joules, and DRAM joules where the meter has a DRAM counter.
  public var joules = 0.0
  public var dramJoules: Double? = nil

  public init(
    batch: Int = 0, lossSum: Double = 0, samples: Int = 0, steps: Int = 0, seconds: Double = 0,
    joules: Double = 0, dramJoules: Double? = nil
  ) {
    self.batch = batch
    self.lossSum = lossSum
    self.samples = samples
    self.steps = steps
    self.seconds = seconds
    self.joules = joules
    self.dramJoules = dramJoules
  }
}

/// Trains one model with one `train:` section: per epoch it sets the learning rate from the
/// schedule, visits the training split in a seeded order in micro-batches of `batch_size`, and
/// takes one optimizer step per `accumulate` micro-batches.
///
/// Gradient accumulation: the micro-batches of a step hold n₁ … n_k samples, n = Σ nᵢ; each
/// micro-batch's mean loss is scaled by nᵢ / n before `backward()`, so the summed gradient is
/// that of the mean loss over all n samples: one step with `batch_size` B and `accumulate` k
/// is the step of `batch_size` B·k and `accumulate` 1 (the same samples, since the epoch order
/// depends only on the seed and the epoch), while only one micro-batch's activations are alive at
/// a time. Exceptions, as in PyTorch: batch norm normalises each micro-batch by its own
/// statistics, and dropout draws its masks per micro-batch.
///
/// Mixed precision (`precision: f16-mixed`): the parameters are stored as binary16 with Float
/// masters in a `MixedPrecisionOptimizer`; each micro-batch enters as binary16 and runs under
/// `withMixedPrecision`, so the activations kept for backward are binary16; the loss is
/// multiplied by the `LossScaler`'s scale before `backward()`, and the accumulated Float
/// gradients are unscaled once per optimizer step, which is skipped when any holds inf/NaN.
///
/// bfloat16 autocast (`precision: bf16-mixed`): parameters, activations and gradients stay
/// Float; each micro-batch's forward pass runs under `withBF16Autocast`, so its matrix products
/// (and their gradients' products) take bfloat16 operands. No loss scale: bfloat16 keeps
/// Float's exponent range.
final class ModelTraining {
  let role: ModelRole
  let model: Sequential
  let spec: TrainSpec
  let optimizer: any Optimizer
  let schedule: any LearningRateSchedule
  let shuffleSeed: UInt64
  var augmenter: Augmenter?
  let loss: BatchLoss
  /// The dynamic loss scale, in f16-mixed only.
  let scaler: LossScaler?
  /// Whether the forward pass runs under bfloat16 autocast (bf16-mixed).
  let bf16: Bool
  /// Tensors trained along with the model's own (the distillation methods' modules), saved in
  /// checkpoints.
  let extraParameters: [(name: String, tensor: Tensor)]
  /// The student's distillation methods, whose state checkpoints hold; nil for a teacher or a
  /// student trained on labels alone.
  let distillation: DistillationRun?
  /// The compression stage this training fine-tunes for (its hooks run after every backward
  /// pass and optimizer step, its state is checkpointed); nil for the teacher and the student.
  let stage: StageRun?
  /// `teacher`, `student` or the stage's label: names this training in metrics, checkpoints
  /// and messages.
  var phase: String { stage?.label ?? role.rawValue }
  /// Added to the 1-based epoch the loss sees (`MicroBatch.epoch`): a stage's fine-tuning
  /// continues the student's epochs, so warm-ups (DKD's) stay finished.
  let lossEpochOffset: Int
  /// Optimizer steps taken over all epochs.
  var globalStep = 0
  /// The processes this training runs on (`Cluster`): one, or the ranks of a data-parallel run.
  var collectives: any Collectives = SingleProcess()
  /// Sums the step's gradients over the ranks; nil on one process.
  var reducer: GradientReducer?
  /// Tensors that are not trained but change in training (batch norm's running statistics):
  /// each rank's move with its own shard, so after every step rank 0's are copied to all, as
  /// DDP's `broadcast_buffers` does before every forward pass.
  var buffers: [Tensor] = []
  /// Optimizer steps in a row, up to now, that had a non-finite micro-batch loss (f16-mixed,
  /// where the loss scaler skips them).
  private var nonFiniteSteps = 0
  /// How many such steps in a row f16-mixed tolerates before the run counts as diverged: the
  /// loss scaler halves its scale at each, so 50 take a scale of 2^16 below 2^-33.
  static let nonFiniteStepLimit = 50

  /// - Parameters:
  ///   - shuffleSeed: seeds the order of samples in every epoch (`epochOrder`).
  ///   - augmentSeed: seeds the augmenter, used when `spec.augment` asks for any transform.
  ///   - distillation: the student's methods, whose modules train with the model.
  init(
    role: ModelRole, model: Sequential, spec: TrainSpec, shuffleSeed: UInt64, augmentSeed: UInt64,
    precision: Precision = .f32, distillation: DistillationRun? = nil, stage: StageRun? = nil,
    lossEpochOffset: Int = 0, loss: @escaping BatchLoss
  ) {
    self.distillation = distillation
    self.stage = stage
    self.lossEpochOffset = lossEpochOffset
    let extraParameters = distillation?.extraParameters ?? []
    self.role = role
    self.model = model
    self.spec = spec
    let optimizer = spec.optimizer.makeOptimizer(parameters: model.parameters + extraParameters)
    self.bf16 = precision == .bf16Mixed
    switch precision {
    case .f32, .bf16Mixed:
      self.optimizer = optimizer
      self.scaler = nil
    case .f16Mixed:
      self.optimizer = MixedPrecisionOptimizer(wrapping: optimizer)
      self.scaler = LossScaler()
    }
    self.schedule = spec.learningRateSchedule
    self.shuffleSeed = shuffleSeed
    let augmentations = spec.augment.augmentations
    self.augmenter = augmentations.isEmpty ? nil : Augmenter(augmentations, seed: augmentSeed)
    self.loss = loss
    self.extraParameters = extraParameters
  }

  /// The learning rate of `epoch` (0-based).
  func learningRate(epoch: Int) -> Double {
    schedule.learningRate(epoch: epoch, base: spec.optimizer.learningRate)
  }

  /// Trains one epoch (0-based `epoch`) over `data`, from `start` (a resumed epoch) on;
  /// `progress` is called after every micro-batch with `epochs` and `started` (when this model's
  /// training began) for display. `shouldStop` is asked after every optimizer step but the
  /// epoch's last; when it says yes the epoch ends there, `stoppedAt` saying where.
  /// Prepares data-parallel training over `collectives` (more than one rank): the gradient
  /// reducer over the model's and the methods' parameters, buckets of `bucketBytes`.
  func distribute(over collectives: any Collectives, bucketBytes: Int, overlap: Bool) {
    self.collectives = collectives
    guard collectives.size > 1 else { return }
    reducer = GradientReducer(
      parameters: model.parameters.map(\.tensor) + extraParameters.map(\.tensor), collectives: collectives,
      bucketBytes: bucketBytes, overlap: overlap)
    buffers = model.buffers.map(\.tensor)
  }

  func trainEpoch(
    _ epoch: Int, on data: Dataset, epochs: Int = 0, started: Date = Date(), from start: EpochProgress = .init(),
    shouldStop: () -> Bool = { false }, progress: (BatchProgress) -> Void = { _ in }
  ) -> EpochTraining {
    let epochStart = Date() - start.seconds
    let learningRate = learningRate(epoch: epoch)
    optimizer.learningRate = learningRate
    model.train()
    var batches = EpochBatches(
      dataset: data, batchSize: spec.batchSize, seed: shuffleSeed, epoch: epoch, startingAtBatch: start.batch)
    let batchCount = batches.batchCount
    let k = spec.accumulate
    let shape = data.sampleShape
    let ranks = collectives.size
    var x: [Float] = []
    var y: [Int] = []
    var (lossSum, samples, steps, batch) = (start.lossSum, start.samples, start.steps, start.batch)
    var stoppedAt: EpochProgress?
    var diverged: (batch: Int, step: Int, loss: Float)?
    steps: while batch < batchCount {
      // This step's micro-batches are batch ..< end; they hold `stepSamples` samples.
      let end = min(batch + k, batchCount)
      let stepSamples = min(end * spec.batchSize, data.count) - batch * spec.batchSize
      optimizer.zeroGrad()
      var finite = true
      while batch < end {
        let globalIndices = Array(batches.indices(ofBatch: batches.nextBatch))
        guard let n = batches.next(features: &x, labels: &y) else { break }
        batch += 1
        // Every rank augments the whole micro-batch, so the augmenter's draws stay those of one
        // process, and then takes its rows (`shardRange`); one process takes them all.
        augmenter?.apply(to: &x, shape: [n] + shape)
        let rows = ranks > 1 ? shardRange(rows: n, rank: collectives.rank, size: ranks) : 0..<n
        let local = rows.count
        let sampleSize = shape.reduce(1, *)
        let input = Tensor(
          shape: [local] + shape,
          storage: local == n ? x : Array(x[(rows.lowerBound * sampleSize)..<(rows.upperBound * sampleSize)]))
        let labels = local == n ? y : Array(y[rows])
        let indices = local == n ? globalIndices : Array(globalIndices[rows])
        let mixed = scaler != nil
        if mixed { input.storeAsHalf() }
        let micro = MicroBatch(input: input, labels: labels, indices: indices, epoch: lossEpochOffset + epoch + 1)
        let shard = ranks > 1 ? BatchShard(offset: rows.lowerBound, rows: n) : nil
        let batchLoss = BatchShard.$current.withValue(shard) {
          withBF16Autocast(bf16) { withMixedPrecision(mixed) { loss(model, micro) } }
        }
        // The ranks agree on the micro-batch's loss (Σ of mean × rows; a non-finite one makes it
        // non-finite, as on one process) and on whether any was non-finite, before anything that
        // depends on it.
        let localFinite = batchLoss.scalar.isFinite
        let agreed = collectives.sum([Double(batchLoss.scalar) * Double(local), localFinite ? 0 : 1])
        // A non-finite loss would make every weight NaN at the step. In f32 the run stops
        // before that step; in f16-mixed the loss scaler skips such steps, up to a limit.
        if agreed[1] > 0 {
          finite = false
          if scaler == nil || nonFiniteSteps + 1 >= Self.nonFiniteStepLimit {
            diverged = (batch + 1, globalStep + 1, localFinite ? .nan : batchLoss.scalar)
            break steps
          }
        }
        // Each rank's share of the step's samples: summed over the ranks (`reducer`), the
        // gradients are those of the mean loss over all of the step's samples.
        var stepLoss = batchLoss * (Float(local) / Float(stepSamples))
        if let scaler { stepLoss = scaler.scaled(stepLoss) }
        let last = batch == end
        BatchShard.$current.withValue(shard) {
          if let reducer, last {
            stepLoss.backward(leafReady: reducer.overlap ? { reducer.ready($0) } : nil)
          } else {
            stepLoss.backward()
          }
        }
        distillation?.afterBackward()
        stage?.stage.afterBackward(self)
        lossSum += agreed[0]
        samples += n
        progress(
          BatchProgress(
            role: role, phase: phase, epoch: epoch + 1, epochs: epochs, batch: batch, batches: batchCount, samples: samples,
            loss: lossSum / Double(samples), epochSeconds: Date().timeIntervalSince(epochStart),
            modelSeconds: Date().timeIntervalSince(started)))
      }
      if let reducer {
        reducer.finish()
        // The sums of buckets started during backward include what the stage's hook then changed
        // (pruning's masked gradients): it runs again on the sums (its hooks are idempotent).
        stage?.stage.afterBackward(self)
      }
      noGrad {
        if let scaler { scaler.step(optimizer) } else { optimizer.step() }
      }
      collectives.broadcast(buffers)
      nonFiniteSteps = finite ? 0 : nonFiniteSteps + 1
      steps += 1
      globalStep += 1
      stage?.stage.afterStep(self, step: globalStep)
      if batch < batchCount, collectives.any(shouldStop()) {
        stoppedAt = EpochProgress(
          batch: batch, lossSum: lossSum, samples: samples, steps: steps,
          seconds: Date().timeIntervalSince(epochStart))
        break
      }
    }
    optimizer.zeroGrad()
    let reduction = reducer?.takeTimes()
    return EpochTraining(
      loss: samples > 0 ? lossSum / Double(samples) : .nan, samples: samples, steps: steps,
      learningRate: learningRate, lossScale: scaler.map { Double($0.scale) },
      skippedSteps: scaler?.state.skippedSteps, stoppedAt: stoppedAt,
      allreduceSeconds: reduction.map { $0.wait + $0.launch }, diverged: diverged)
  }
}

/// The loss of a model trained on labels alone: cross-entropy with the recipe's label smoothing.
func labelLoss(labelSmoothing: Double) -> BatchLoss {
  let smoothing = Float(labelSmoothing)
  return { model, batch in
    crossEntropy(logits: model(batch.input), labels: batch.labels, labelSmoothing: smoothing)
  }
}
