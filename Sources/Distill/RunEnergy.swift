import Autodiff
import Datasets
import Energy
import NN
import DistillRecipes

/// The energy of one model of a run, as `summary.json` records it (`ModelResult.energy`).
public struct ModelEnergy: Equatable, Sendable {
  /// `rapl` or `estimate`.
  public var source: EnergySource
  /// Every epoch's training and per-epoch evaluation: the sum of the model's `joules` in
  /// `metrics.jsonl`. 0 for a teacher loaded with `teacher.from`.
  public var trainingJoules: Double
  /// DRAM over the same windows; nil without a DRAM counter.
  public var trainingDRAMJoules: Double?
  /// The final evaluation on the test split.
  public var testJoules: Double
  /// Inference energy per sample at batch 1024, µJ: a dedicated window of whole passes over the
  /// test split (forward in batches of `inferenceBatch`, evaluation mode, no tape), repeated
  /// until it lasts `inferenceMinimumSeconds`, divided by the samples it saw.
  public var inferenceMicrojoulesPerSample: Double
  /// The samples the batch-1024 window saw (passes × test samples).
  public var inferenceSamples: Int
  /// Inference energy per sample at batch 1, µJ: a window of single-sample forward passes over
  /// the test split in order (from its start again when it ends), until it lasts
  /// `inferenceMinimumSeconds`; nil in results of versions that did not measure it.
  public var singleSampleMicrojoules: Double? = nil
  /// The samples the batch-1 window saw.
  public var singleSamples: Int? = nil
  /// The BLAS/oneDNN threads both windows ran on.
  public var inferenceThreads: Int? = nil
}

/// The batch of the main inference window.
public let inferenceBatch = 1024

/// The shortest inference window, seconds: short windows are dominated by the counters'
/// update granularity (RAPL updates about every millisecond) and the clock reads.
let inferenceMinimumSeconds = 0.5

/// Opens the recipe's meter (`energy:`). `rapl` where RAPL cannot be read is
/// `TrainingError.energyUnavailable`, before anything trains.
func openRunMeter(_ spec: EnergySpec, file: String) throws -> SelectedMeter {
  let kind = MeterKind(rawValue: spec.meter.rawValue)!
  do {
    return try openMeter(kind, wattsPerCore: spec.wattsPerCore)
  } catch let error as EnergyError {
    throw TrainingError.energyUnavailable(file: file, keyPath: "energy.meter", reason: error.description)
  }
}

extension EpochRecord {
  /// Fills the energy fields from the epoch's training and evaluation windows; `seconds`
  /// becomes their length, so `avg_watts` is `joules / seconds` exactly.
  /// Sets the energy fields from the epoch's training and evaluation windows, plus `before`:
  /// what the epoch's training took before an interruption (a resumed epoch; zero otherwise).
  mutating func record(
    training: EnergyMeasurement, evaluation: EnergyMeasurement, before: EpochProgress = .init()
  ) {
    seconds = before.seconds + training.seconds + evaluation.seconds
    joules = before.joules + training.joules + evaluation.joules
    evalJoules = evaluation.joules
    // A window that fell back to the estimate (an implausible RAPL step) makes the epoch's
    // figure an estimate.
    energySource = (training.source == .rapl && evaluation.source == .rapl ? EnergySource.rapl : .estimate).rawValue
    if let a = training.dramJoules, let b = evaluation.dramJoules, let c = before.knownDRAMJoules {
      dramJoules = a + b + c
    }
  }
}

extension EpochProgress {
  /// The DRAM joules of the epoch before an interruption: 0 at an epoch's start, nil when a
  /// part of it had no DRAM counter.
  var knownDRAMJoules: Double? { batch > 0 ? dramJoules : 0 }

  /// Sets this stop's seconds and energy: those `before` it (an earlier interruption of the
  /// same epoch) plus the training `window` up to the stop.
  mutating func addEnergy(before: EpochProgress, window: EnergyMeasurement) {
    seconds = before.seconds + window.seconds
    joules = before.joules + window.joules
    dramJoules = window.dramJoules.flatMap { dram in before.knownDRAMJoules.map { dram + $0 } }
  }

  /// What the epoch's training took before an interruption, as one window.
  func window(name: String, source: EnergySource) -> EnergyMeasurement {
    EnergyMeasurement(
      name: name, from: EnergyReading(joules: 0, dramJoules: dramJoules.map { _ in 0 }, seconds: 0),
      to: EnergyReading(joules: joules, dramJoules: dramJoules, seconds: seconds), source: source)
  }
}

/// Measures `model`'s test evaluation and a dedicated inference window on `data.test`;
/// `training` are the model's epoch windows (empty for a loaded teacher).
func measureTest(
  _ model: Sequential, on test: Dataset, phase: String, meter: any EnergyMeter,
  training: [EnergyMeasurement], collectives: any Collectives = SingleProcess()
) -> (Evaluation, ModelEnergy) {
  let (evaluation, testWindow) = meter.measure("\(phase) test") { evaluate(model, on: test, across: collectives) }
  var (passes, single) = (0, 0)
  var inference = EnergyMeasurement(
    name: "", from: EnergyReading(joules: 0, seconds: 0), to: EnergyReading(joules: 0, seconds: 0), source: meter.source)
  var singleWindow = inference
  // Inference is measured by rank 0 alone on its own meter, the other ranks asleep in a barrier:
  // the figures are one process's, as on one machine.
  let local = (meter as? ClusterMeter)?.inner ?? meter
  if collectives.rank == 0 {
    // Outside the windows: one pass at batch 1024 and one single sample, so that the primitives
    // oneDNN compiles for these shapes (the int8 network's are new) are not what is measured.
    _ = evaluate(model, on: test, batchSize: inferenceBatch)
    noGrad {
      let wasTraining = model.isTraining
      model.eval()
      _ = model(Tensor(shape: [1] + test.sampleShape, storage: Array(test.features.prefix(test.sampleShape.reduce(1, *)))))
      model.isTraining = wasTraining
    }
    (_, inference) = local.measure("\(phase) inference, batch \(inferenceBatch)") {
      let start = local.read().seconds
      repeat {
        _ = evaluate(model, on: test, batchSize: inferenceBatch)
        passes += 1
      } while local.read().seconds - start < inferenceMinimumSeconds
    }
    (_, singleWindow) = local.measure("\(phase) inference, batch 1") {
      let wasTraining = model.isTraining
      model.eval()
      defer { model.isTraining = wasTraining }
      let shape = [1] + test.sampleShape
      let size = test.sampleShape.reduce(1, *)
      let start = local.read().seconds
      noGrad {
        repeat {
          // 16 samples between clock reads.
          for _ in 0..<16 {
            let i = single % test.count
            _ = model(Tensor(shape: shape, storage: Array(test.features[(i * size)..<((i + 1) * size)])))
            single += 1
          }
        } while local.read().seconds - start < inferenceMinimumSeconds
      }
    }
  }
  collectives.barrier()
  let samples = passes * test.count
  let drams = training.compactMap(\.dramJoules)
  let energy = ModelEnergy(
    source: meter.source, trainingJoules: training.reduce(0) { $0 + $1.joules },
    trainingDRAMJoules: drams.count == training.count && !drams.isEmpty ? drams.reduce(0, +) : nil,
    testJoules: testWindow.joules,
    inferenceMicrojoulesPerSample: samples > 0 ? inference.joules * 1e6 / Double(samples) : .nan,
    inferenceSamples: samples, singleSampleMicrojoules: single > 0 ? singleWindow.joules * 1e6 / Double(single) : .nan,
    singleSamples: single, inferenceThreads: BLAS.threadCount)
  return (evaluation, energy)
}

/// Inference energy per sample, µJ, of each of `models` at batch `batch` on `inputShape`
/// (random normal inputs: dense layers cost the same whatever the values), measured in
/// `rounds` alternating rounds of at least `seconds` each with `meter`; the median round of each
/// model. What `distill label` grades a model with, beside its reference set, on one machine.
public func pairedInferenceMicrojoules(
  _ models: [Sequential], inputShape: [Int], batch: Int = inferenceBatch, rounds: Int = 3, seconds: Double = 0.3,
  meter: any EnergyMeter
) -> [Double] {
  var generator = SeededGenerator(seed: 0)
  let input = Tensor.normal([batch] + inputShape, generator: &generator)
  for model in models { model.eval() }
  var measured = [[Double]](repeating: [], count: models.count)
  noGrad {
    for model in models { _ = model(input) }  // primitives created, buffers pooled
    for _ in 0..<rounds {
      for (i, model) in models.enumerated() {
        var passes = 0
        let (_, window) = meter.measure("label inference \(i)") {
          let start = meter.read().seconds
          repeat {
            _ = model(input)
            passes += 1
          } while meter.read().seconds - start < seconds
        }
        measured[i].append(window.joules * 1e6 / Double(passes * batch))
      }
    }
  }
  return measured.map { $0.sorted()[$0.count / 2] }
}

/// A run's meter on a data-parallel run: every rank's reading summed over the ranks, so a window
/// holds the whole job's energy. The CPU-time estimate sums every rank's CPU time; RAPL counts a
/// whole host's packages, so only the lowest rank of each host (`Collectives.leadsHost`) adds its
/// counters, and no package is counted twice. Ranks whose meters differ in kind (RAPL on one
/// host, the estimate on another) all count the estimate. `read()` is collective: every rank
/// reads at the same windows.
final class ClusterMeter: EnergyMeter, @unchecked Sendable {
  let inner: any EnergyMeter
  let collectives: any Collectives
  let source: EnergySource
  let summary: String

  init(_ inner: any EnergyMeter, collectives: any Collectives) {
    self.inner = inner
    self.collectives = collectives
    let rapl = collectives.sum([inner.source == .rapl ? 1 : 0])[0]
    source = Int(rapl) == collectives.size ? .rapl : .estimate
    let ranks = "\(collectives.size) ranks on \(collectives.hosts) host\(collectives.hosts == 1 ? "" : "s")"
    summary = source == .rapl
      ? "\(inner.summary); summed over \(ranks), read once per host"
      : "\(inner.source == .estimate ? inner.summary : "estimate: process CPU time") summed over \(ranks)"
        + (Int(rapl) > 0 ? " (RAPL on only some hosts: every rank counts its estimate)" : "")
  }

  func read() -> EnergyReading {
    let r = inner.read()
    let leads = collectives.leadsHost
    let joules: Double
    let dram: Double?
    if source == .rapl {
      (joules, dram) = (leads ? r.joules : 0, r.dramJoules.map { leads ? $0 : 0 })
    } else {
      (joules, dram) = (r.estimateJoules ?? r.joules, nil)
    }
    let sums = collectives.sum([
      joules, dram ?? 0, dram == nil ? 1 : 0, Double(r.implausibleSteps), r.estimateJoules ?? r.joules,
    ])
    var out = EnergyReading(joules: sums[0], dramJoules: sums[2] > 0 ? nil : sums[1], seconds: r.seconds)
    out.implausibleSteps = Int(sums[3])
    out.implausibleReason = r.implausibleReason
    out.estimateJoules = source == .rapl ? sums[4] : nil
    return out
  }

  func stop() {}
}
