import Autodiff
import Foundation
import NN

/// One measured figure: samples per second over repeats, and the peak RSS after the workload.
struct Measurement {
  var median: Double
  var min: Double
  var max: Double
  var peakRSSMegabytes: Double
  /// Further figures per setting of a workload that compares settings (`deep_mlp_recompute`):
  /// the setting's name and its named values, in order.
  var variants: [(name: String, fields: [(String, Double)])] = []
}

/// The workloads of `../shared/peers/torch_bench.py`, with the same names.
enum Workload: String, CaseIterable {
  case mlp1200 = "mlp_1200"
  case mlp800 = "mlp_800"
  case kdStep = "kd_step"
  case cnn = "cnn"
  case inferMLP1200 = "infer_mlp_1200"
  case inferMLP800 = "infer_mlp_800"
  /// Ours alone: the deep MLP with and without activation recomputation (`BenchRecompute.swift`).
  case deepMLPRecompute = "deep_mlp_recompute"

  func measure(steps: Int, repeats: Int) -> Measurement {
    var generator = SeededGenerator(seed: 0)
    let batch = 128
    let x = Tensor.normal([batch, 784], generator: &generator)
    let labels = (0..<batch).map { _ in generator.nextInt(below: 10) }
    switch self {
    case .mlp1200, .mlp800:
      let model = benchMLP(hidden: self == .mlp1200 ? [1200, 1200] : [800, 800], generator: &generator)
      return timed(batch: batch, steps: steps, repeats: repeats, trainingStep(model, x, labels))
    case .cnn:
      let model = benchCNN(generator: &generator)
      let images = x.reshaped([batch, 1, 28, 28])
      return timed(batch: batch, steps: max(5, steps / 4), repeats: repeats, trainingStep(model, images, labels))
    case .kdStep:
      let teacher = benchMLP(hidden: [1200, 1200], generator: &generator)
      teacher.eval()
      let student = benchMLP(hidden: [800, 800], generator: &generator)
      let optimizer = SGD(parameters: student.parameters, learningRate: 0.01, momentum: 0.9)
      return timed(batch: batch, steps: steps, repeats: repeats) {
        let teacherLogits = noGrad { teacher(x) }
        optimizer.zeroGrad()
        distillationLoss(
          studentLogits: student(x), teacherLogits: teacherLogits, labels: labels, temperature: 4, alpha: 0.9
        ).backward()
        optimizer.step()
      }
    case .deepMLPRecompute:
      return DeepMLPRecompute.measure(steps: max(3, steps / 10), repeats: repeats)
    case .inferMLP1200, .inferMLP800:
      let model = benchMLP(hidden: self == .inferMLP1200 ? [1200, 1200] : [800, 800], generator: &generator)
      model.eval()
      let inputs = Tensor.normal([1024, 784], generator: &generator)
      return timed(batch: 1024, steps: steps, repeats: repeats) { _ = noGrad { model(inputs) } }
    }
  }
}

/// 784-hidden…-10 with ReLU, as the PyTorch script's `mlp(hidden)`.
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
/// linear(3136→128)+ReLU, linear(128→10).
func benchCNN(generator: inout SeededGenerator) -> Sequential {
  Sequential([
    Conv2D(inChannels: 1, outChannels: 32, kernelSize: 3, padding: 1, generator: &generator), ReLU(),
    MaxPool2D(kernelSize: 2),
    Conv2D(inChannels: 32, outChannels: 64, kernelSize: 3, padding: 1, generator: &generator), ReLU(),
    MaxPool2D(kernelSize: 2),
    Flatten(),
    Linear(inputFeatures: 3136, outputFeatures: 128, generator: &generator), ReLU(),
    Linear(inputFeatures: 128, outputFeatures: 10, generator: &generator),
  ])
}

/// One SGD step (momentum 0.9, lr 0.01) on cross-entropy, as the script's `train_step_fn`.
func trainingStep(_ model: Sequential, _ x: Tensor, _ labels: [Int]) -> () -> Void {
  let optimizer = SGD(parameters: model.parameters, learningRate: 0.01, momentum: 0.9)
  return {
    optimizer.zeroGrad()
    crossEntropy(logits: model(x), labels: labels).backward()
    optimizer.step()
  }
}

/// Runs `step` max(3, steps/5) times to warm up, then `repeats` times `steps` steps, timing
/// each repeat; samples/s = batch·steps / seconds.
func timed(batch: Int, steps: Int, repeats: Int, _ step: () -> Void) -> Measurement {
  for _ in 0..<max(3, steps / 5) { step() }
  var rates: [Double] = []
  let clock = ContinuousClock()
  for _ in 0..<repeats {
    let elapsed = clock.measure { for _ in 0..<steps { step() } }
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    rates.append(Double(batch * steps) / seconds)
  }
  rates.sort()
  return Measurement(
    median: rates[rates.count / 2], min: rates.first!, max: rates.last!,
    peakRSSMegabytes: peakResidentMegabytes())
}

/// The process's peak resident set size so far, in MB (`ru_maxrss`, KiB on Linux), as the
/// PyTorch script reports it.
func peakResidentMegabytes() -> Double {
  var usage = rusage()
  getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
  return Double(usage.ru_maxrss) / 1024
}
