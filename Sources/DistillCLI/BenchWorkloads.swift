import Autodiff
import Distill
import Foundation
import NN

/// One measured figure: samples per second over repeats, the peak RSS after the workload,
/// and for training workloads the bytes the step's graph holds (`Tensor.graphMemory()`).
struct Measurement {
  var median: Double
  var min: Double
  var max: Double
  var peakRSSMegabytes: Double
  var memory: GraphMemory? = nil
  /// samples/s of each timed round, in order (rounds of runs timed side by side pair up).
  var rounds: [Double] = []
  /// The samples/s the step's matrix products alone allow (each timed by itself), for the
  /// workloads without convolutions; nil for the others.
  var ceiling: Double? = nil
  /// Further figures per setting of a workload that compares settings (`deep_mlp_recompute`):
  /// the setting's name and its named values, in order.
  var variants: [(name: String, fields: [(String, Double)])] = []
}

/// The arithmetic of a measured training step (`distill bench --precision`).
enum BenchPrecision: String, CaseIterable {
  case f32
  /// Binary16 parameters and activations, Float master weights, dynamic loss scale.
  case f16Mixed = "f16-mixed"
  /// Float parameters and activations, products of bfloat16-rounded operands (autocast).
  case bf16Mixed = "bf16-mixed"
}

/// The convolution implementation of a measured run (`distill bench --convolution`).
enum BenchConvolution: String, CaseIterable {
  /// oneDNN, convolution (+ batch norm) + ReLU (+ max pooling) fused into one chain in blocked
  /// layouts, consecutive chains handing over their intermediates in those layouts.
  case onednn
  /// As `onednn`, each chain reading and writing NCHW.
  case onednnUnlinked = "onednn-unlinked"
  /// oneDNN convolutions alone, the ReLU and pooling by the engine's ops.
  case onednnLayers = "onednn-layers"
  /// As `onednnLayers`, oneDNN running on NCHW directly.
  case onednnNCHW = "onednn-nchw"
  /// The im2col reference.
  case im2col

  /// The suffix of a result's key: none for the default.
  var suffix: String { self == .onednn ? "" : "/\(rawValue)" }

  /// Makes this implementation the engine's, for the steps that follow.
  func select() {
    Convolution.backend = self == .im2col ? .im2col : .onednn
    Convolution.blockedLayouts = self != .onednnNCHW
    Convolution.fusesBlocks = self == .onednn || self == .onednnUnlinked
    Convolution.linksChains = self == .onednn
  }
}

/// The samples/s a step's matrix products allow when each runs alone on buffers of its shapes
/// (the same engine path as in the step): batch / Σ seconds.
func matrixProductCeiling(_ run: PreparedRun) -> Double {
  let products = MatrixProductLog.recording { run.step() }
  let seconds = products.reduce(0) { $0 + MatrixProductLog.seconds(of: $1) }
  return seconds > 0 ? Double(run.batch) / seconds : .infinity
}

/// One workload prepared in one precision: `step` runs one training (or inference) step;
/// `memory` is the graph memory of one training step's loss, before its backward pass.
struct PreparedRun {
  var batch: Int
  var steps: Int
  var step: () -> Void
  var memory: GraphMemory?
}

/// The workloads of `scripts/torch_bench.py`, with the same names.
enum Workload: String, CaseIterable {
  case mlp1200 = "mlp_1200"
  case mlp800 = "mlp_800"
  case kdStep = "kd_step"
  case cnn = "cnn"
  /// cnn with a batch normalisation after each convolution (the shape of the shipped CNNs).
  case cnnBN = "cnn_bn"
  case inferMLP1200 = "infer_mlp_1200"
  case inferMLP800 = "infer_mlp_800"
  /// infer_mlp_800 one sample at a time (Float), the reference of `int8MLP800Single`.
  case inferMLP800Single = "infer_mlp_800_b1"
  /// The 784-800-800-10 MLP after post-training int8 quantization (`QuantizedLinear`, the
  /// `quantize` stage's network), at batch 1024 and 1, each paired with its Float reference.
  case int8MLP800 = "int8_mlp_800"
  case int8MLP800Single = "int8_mlp_800_b1"
  /// Ours alone: the deep MLP with and without activation recomputation (`BenchRecompute.swift`).
  case deepMLPRecompute = "deep_mlp_recompute"
  /// A distillation method's student step, timed in alternating rounds with its `reference`:
  /// DKD and CRD on kd_step's MLP pair, AT on a CNN pair (`kd_cnn_step` is KD on that pair).
  case dkdStep = "dkd_step"
  case kdCNNStep = "kd_cnn_step"
  case atStep = "at_step"
  case crdStep = "crd_step"

  /// The workload a method step is compared with, round by round.
  var reference: Workload? {
    switch self {
    case .dkdStep, .crdStep: return .kdStep
    case .atStep: return .kdCNNStep
    case .int8MLP800: return .inferMLP800
    case .int8MLP800Single: return .inferMLP800Single
    default: return nil
    }
  }

  /// What a method step may cost relative to its reference (issue targets: logit methods
  /// ≤ 1.1×, feature methods ≤ 1.5×); for the int8 workloads, the speed-up over Float they
  /// should reach (≥ 3× at batch 1024, ≥ 1.5× at batch 1).
  var targetRatio: Double {
    switch self {
    case .dkdStep: return 1.1
    case .int8MLP800: return 3
    default: return 1.5
    }
  }

  /// Whether the workload is compared with its reference by speed-up (int8) rather than cost.
  var isSpeedup: Bool { self == .int8MLP800 || self == .int8MLP800Single }

  /// Whether the workload's models convolve (and so can be run with each `BenchConvolution`).
  var convolves: Bool { [.cnn, .cnnBN, .kdCNNStep, .atStep].contains(self) }

  /// Whether the workload trains (and so has a precision and a graph to measure).
  var trains: Bool { ![.inferMLP1200, .inferMLP800, .inferMLP800Single, .int8MLP800, .int8MLP800Single].contains(self) }

  /// Whether the workload compares settings of its own, timed by itself in f32
  /// (`DeepMLPRecompute.measure`), rather than a step `prepare` builds.
  var measuresItself: Bool { self == .deepMLPRecompute }

  /// The model, data and step of the workload in `precision` with `convolution`, each model
  /// built from seed 0; each step selects `convolution` first, so runs of different
  /// implementations can alternate.
  func prepare(steps: Int, precision: BenchPrecision, convolution: BenchConvolution) -> PreparedRun {
    convolution.select()
    var run = prepare(steps: steps, precision: precision)
    let step = run.step
    run.step = {
      convolution.select()
      step()
    }
    return run
  }

  private func prepare(steps: Int, precision: BenchPrecision) -> PreparedRun {
    var generator = SeededGenerator(seed: 0)
    let batch = 128
    let x = Tensor.normal([batch, 784], generator: &generator)
    let labels = (0..<batch).map { _ in generator.nextInt(below: 10) }
    switch self {
    case .mlp1200, .mlp800:
      let model = benchMLP(hidden: self == .mlp1200 ? [1200, 1200] : [800, 800], generator: &generator)
      let training = TrainingStep(model: model, input: x, precision: precision) {
        crossEntropy(logits: $0(x), labels: labels)
      }
      return PreparedRun(batch: batch, steps: steps, step: training.run, memory: training.memory())
    case .cnn, .cnnBN:
      let model = benchCNN(batchNorm: self == .cnnBN, generator: &generator)
      let images = x.reshaped([batch, 1, 28, 28])
      let training = TrainingStep(model: model, input: images, precision: precision) {
        crossEntropy(logits: $0(images), labels: labels)
      }
      return PreparedRun(
        batch: batch, steps: max(5, steps / 4), step: training.run, memory: training.memory())
    case .kdStep, .dkdStep, .crdStep:
      // The MLP pair of torch_bench.py's kd_step, built as recipes build them (a flatten first),
      // the loss as `distill train` computes it (`DistillationLoss`).
      let method = [.kdStep: "kd", .dkdStep: "dkd", .crdStep: "crd"][self]!
      return distillationStep(
        method: method, teacher: .mlp(MLPSpec(hidden: [1200, 1200])), student: .mlp(MLPSpec(hidden: [800, 800])),
        input: x, steps: steps, precision: precision, generator: &generator)
    case .kdCNNStep, .atStep:
      // torch_bench.py's cnn as the teacher, a CNN of half its channels as the student.
      return distillationStep(
        method: self == .atStep ? "at" : "kd", teacher: .cnn(CNNSpec(channels: [32, 64], hidden: [128])),
        student: .cnn(CNNSpec(channels: [16, 32], hidden: [64])), input: x.reshaped([batch, 1, 28, 28]),
        steps: max(5, steps / 4), precision: precision, generator: &generator)
    case .deepMLPRecompute:
      preconditionFailure("deep_mlp_recompute times its settings itself (DeepMLPRecompute.measure)")
    case .inferMLP1200, .inferMLP800, .inferMLP800Single, .int8MLP800, .int8MLP800Single:
      let model = benchMLP(hidden: self == .inferMLP1200 ? [1200, 1200] : [800, 800], generator: &generator)
      model.eval()
      let single = self == .inferMLP800Single || self == .int8MLP800Single
      let inputs = Tensor.normal([1024, 784], generator: &generator)
      let network = self == .int8MLP800 || self == .int8MLP800Single ? quantizedBenchMLP(model, calibration: inputs) : model
      if single {
        // One sample per call, 256 calls a step: latency-bound serving.
        let samples = (0..<256).map { Tensor(shape: [1, 784], storage: Array(inputs.storage[($0 * 784)..<(($0 + 1) * 784)])) }
        return PreparedRun(
          batch: 256, steps: steps, step: { noGrad { for x in samples { _ = network(x) } } }, memory: nil)
      }
      return PreparedRun(batch: 1024, steps: steps, step: { _ = noGrad { network(inputs) } }, memory: nil)
    }
  }
}

/// A student step of distillation `method` (defaults as `distill methods` lists them) from a
/// frozen teacher; the memory banks of CRD hold 55,000 samples, as MNIST's training split after
/// 5,000 held out, and each step's batch is a fresh draw of sample positions.
func distillationStep(
  method: String, teacher: ModelSpec, student: ModelSpec, input: Tensor, steps: Int,
  precision: BenchPrecision, generator: inout SeededGenerator
) -> PreparedRun {
  let batch = input.shape[0]
  let shape = Array(input.shape.dropFirst())
  let builder = ModelBuilder(file: "bench", keyPath: "model")
  let teacherModel = try! builder.build(teacher, inputShape: shape, classCount: 10, seed: 1)
  let studentModel = try! builder.build(student, inputShape: shape, classCount: 10, seed: 2)
  teacherModel.eval()
  let trainLabels = (0..<55_000).map { $0 % 10 }
  let loss = try! DistillationLoss(
    spec: DistillationSpec(method: method), teacher: (teacherModel, teacher), student: (studentModel, student),
    inputShape: shape, trainLabels: trainLabels)
  var draws = SeededGenerator(seed: generator.next())
  let training = TrainingStep(
    model: studentModel, input: input, precision: precision, extraParameters: loss.extraParameters,
    afterBackward: loss.afterBackward
  ) { student in
    let indices = (0..<batch).map { _ in draws.nextInt(below: trainLabels.count) }
    return loss(student: student, input: input, labels: indices.map { trainLabels[$0] }, indices: indices, epoch: 1)
  }
  return PreparedRun(batch: batch, steps: steps, step: training.run, memory: training.memory())
}

/// One SGD step (momentum 0.9, lr 0.01) on a model's loss, as the script's `train_step_fn`;
/// in bf16-mixed under `withBF16Autocast` (PyTorch: autocast with bfloat16, no scaler);
/// in f16-mixed as `distill train` runs it: binary16 parameters and input, the forward pass
/// under `withMixedPrecision`, a Float master copy in `MixedPrecisionOptimizer`, and the loss
/// scaled by a `LossScaler` (PyTorch: autocast + GradScaler).
final class TrainingStep {
  let model: Sequential
  let optimizer: any Optimizer
  let scaler: LossScaler?
  let loss: (Sequential) -> Tensor
  let afterBackward: () -> Void
  let bf16: Bool

  init(
    model: Sequential, input: Tensor, precision: BenchPrecision, extraParameters: [(name: String, tensor: Tensor)] = [],
    afterBackward: @escaping () -> Void = {}, loss: @escaping (Sequential) -> Tensor
  ) {
    self.model = model
    self.loss = loss
    self.afterBackward = afterBackward
    let sgd = SGD(parameters: model.parameters + extraParameters, learningRate: 0.01, momentum: 0.9)
    self.bf16 = precision == .bf16Mixed
    switch precision {
    case .f32, .bf16Mixed:
      optimizer = sgd
      scaler = nil
    case .f16Mixed:
      input.storeAsHalf()
      optimizer = MixedPrecisionOptimizer(wrapping: sgd)
      scaler = LossScaler()
    }
  }

  private func forward() -> Tensor { withBF16Autocast(bf16) { withMixedPrecision(scaler != nil) { loss(model) } } }

  func run() {
    optimizer.zeroGrad()
    let value = forward()
    if let scaler {
      scaler.scaled(value).backward()
      afterBackward()
      scaler.step(optimizer)
    } else {
      value.backward()
      afterBackward()
      optimizer.step()
    }
  }

  /// The bytes one step's graph holds at its peak (after the forward pass).
  func memory() -> GraphMemory { forward().graphMemory() }
}

/// 784-hidden…-10 with ReLU, as the PyTorch script's `mlp(hidden)`.
/// `model` with every Linear quantized as the `quantize` stage does (min-max ranges of each
/// layer's inputs over `calibration`).
func quantizedBenchMLP(_ model: Sequential, calibration: Tensor) -> Sequential {
  var layers = model.layers
  var x = calibration
  noGrad {
    for (i, layer) in model.layers.enumerated() {
      if let linear = layer as? Linear {
        layers[i] = QuantizedLinear(
          linear,
          input: ActivationQuantization(
            min: x.storage.min()!, max: x.storage.max()!, quantMax: ActivationQuantization.machineQuantMax))
      }
      x = layer(x)
    }
  }
  let network = Sequential(layers)
  network.eval()
  return network
}

func benchMLP(hidden: [Int], generator: inout SeededGenerator) -> Sequential {
  var layers: [any Layer] = []
  var width = 784
  for h in hidden {
    layers += [Linear(inputFeatures: width, outputFeatures: h, generator: &generator), ReLU()]
    width = h
  }
  layers.append(Linear(inputFeatures: width, outputFeatures: 10, generator: &generator))
  return Sequential(layers)
}

/// The PyTorch script's `cnn()`: conv(1→32,3,p1)+ReLU+maxpool2, conv(32→64,3,p1)+ReLU+maxpool2,
/// linear(3136→128)+ReLU, linear(128→10); with `batchNorm`, its `cnn(bn=True)`: a batch
/// normalisation after each convolution.
func benchCNN(batchNorm: Bool = false, generator: inout SeededGenerator) -> Sequential {
  var layers: [any Layer] = []
  for (input, output) in [(1, 32), (32, 64)] {
    layers.append(Conv2D(inChannels: input, outChannels: output, kernelSize: 3, padding: 1, generator: &generator))
    if batchNorm { layers.append(BatchNorm2D(output)) }
    layers += [ReLU(), MaxPool2D(kernelSize: 2)]
  }
  layers += [
    Flatten(),
    Linear(inputFeatures: 3136, outputFeatures: 128, generator: &generator), ReLU(),
    Linear(inputFeatures: 128, outputFeatures: 10, generator: &generator),
  ]
  return Sequential(layers)
}

/// Warms each run up (max(3, steps/5) steps), then times `repeats` rounds in which every run
/// takes its `steps` steps in turn, so runs compared side by side share the machine's load;
/// samples/s = batch·steps / seconds, median over rounds.
func timedSideBySide(_ runs: [PreparedRun], repeats: Int) -> [Measurement] {
  for run in runs { for _ in 0..<max(3, run.steps / 5) { run.step() } }
  var rates = [[Double]](repeating: [], count: runs.count)
  let clock = ContinuousClock()
  for _ in 0..<repeats {
    for (i, run) in runs.enumerated() {
      let elapsed = clock.measure { for _ in 0..<run.steps { run.step() } }
      let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
      rates[i].append(Double(run.batch * run.steps) / seconds)
    }
  }
  return zip(runs, rates).map { run, rates in
    let sorted = rates.sorted()
    return Measurement(
      median: sorted[sorted.count / 2], min: sorted.first!, max: sorted.last!,
      peakRSSMegabytes: peakResidentMegabytes(), memory: run.memory, rounds: rates)
  }
}

/// The process's peak resident set size so far, in MB (`ru_maxrss`, KiB on Linux), as the
/// PyTorch script reports it.
func peakResidentMegabytes() -> Double {
  var usage = rusage()
  getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
  return Double(usage.ru_maxrss) / 1024
}
