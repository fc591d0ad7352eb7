import Autodiff
import Checkpoints
import Datasets
import Foundation
import NN
import DistillRecipes

/// Post-training int8 quantization (`compress: [quantize: {…}]`), as PyTorch's eager-mode
/// static quantization with a per-channel qconfig: the inputs of the quantized linear and
/// conv2d layers are observed on `calibration_samples` training samples (the float student in
/// evaluation mode), each layer's input gets a per-tensor uint8 scale and zero point from its
/// observed range, and its weights are quantized per output channel to int8 (symmetric). The
/// result is a network whose quantized layers are `QuantizedLinear`s on oneDNN's u8 × s8
/// product and `QuantizedConv2D`s on its u8 × s8 convolution (the other layers stay Float),
/// tested, measured (inference µJ) and written as an int8 model file
/// (`Sources/Checkpoints/README.md`, "int8 model files").
///
/// Observers: `minmax` takes the observed minimum and maximum (PyTorch's `MinMaxObserver`);
/// `percentile` clips at the `percentile`-th and (100 − `percentile`)-th percentiles of the
/// observed values, so that rare outliers do not stretch the scale. Either range is widened to
/// hold 0.
///
/// With `epochs` above 0, quantization-aware fine-tuning follows the calibration (PyTorch's
/// eager-mode QAT): the quantized layers train with their inputs and weights fake-quantized
/// (`LinearFakeQuantization`, straight-through estimator), each input range starting from the
/// calibration and moving with every training batch (moving-average min-max, 0.01), with the
/// recipe's distillation; the int8 network is then built from the fine-tuned weights and ranges.
/// The ranges are the stage's checkpointed state.
final class Int8Quantization: CompressionStage {
  static let info = StageInfo(
    name: "quantize", title: "int8 quantization (linear and conv2d layers)",
    reference: "torch.ao.quantization static quantization: MinMaxObserver (quint8, per_tensor_affine) for "
      + "activations, PerChannelMinMaxObserver (qint8, per_channel_symmetric) for weights; oneDNN u8 × s8 matmul",
    summary: "calibrates each linear and conv2d layer's input range on training samples and runs the layer in int8",
    keys: [
      .integer("calibration_samples", 1000, "training samples the activation ranges are observed on", minimum: 1, maximum: 1 << 24),
      .choice(
        "observer", ["minmax", "percentile"], "minmax",
        "minmax: the observed range; percentile: clipped at the percentile and its mirror"),
      .number("percentile", 99.99, "percentile observer: the upper percentile kept, in (50, 100]"),
      .layers(
        "layers",
        "positions of the linear and conv2d layers to quantize (default: every linear layer; conv2d post-training only)"),
    ], defaultEpochs: 0, isFinal: true)

  /// The student, whose linear layers the stage quantizes.
  let model: Sequential

  /// The positions quantized, in order.
  let positions: [Int]
  let calibrationSamples: Int
  let percentile: Double?
  let seed: UInt64
  /// Whether the stage fine-tunes (quantization-aware).
  let fineTunes: Bool
  /// Each quantized position's input range [min, max]: calibrated by `begin`, then, when the
  /// stage fine-tunes, the fake quantization's moving range.
  private(set) var ranges: [Int: (Float, Float)] = [:]

  init(context: StageContext) throws {
    let keys = Self.info.keys
    let settings = context.settings
    fineTunes = settings.integer("epochs", in: keys) > 0
    model = context.model
    calibrationSamples = settings.integer("calibration_samples", in: keys)
    let p = settings.number("percentile", in: keys)
    if settings.word("observer", in: keys) == "percentile" {
      guard p > 50 && p <= 100 else {
        throw context.mismatch("percentile", "is \(p); it must be in (50, 100] (99.99 keeps all but 0.01% at each end)")
      }
      percentile = p
    } else {
      percentile = nil
    }
    seed = context.seed
    let layers = context.model.layers
    let given = settings.layers("layers", in: keys)
    // Post-training: linear and conv2d layers; quantization-aware: linear layers (a conv2d
    // layer has no fake quantization).
    let fineTunes = fineTunes
    func quantizable(_ layer: any Layer) -> Bool { layer is Linear || (!fineTunes && layer is Conv2D) }
    for position in given {
      try context.requireLayer(position)
      guard quantizable(layers[position]) else {
        let kind =
          layers[position] is LowRankLinear
          ? "a factorised linear (rank)"
          : context.layers.indices.contains(position) ? context.layers[position].kindName : "this layer"
        throw context.mismatch(
          "layers",
          layers[position] is Conv2D
            ? "layer \(position) is conv2d, which quantize converts post-training only; with epochs above 0 "
              + "(quantization-aware) it quantizes linear layers: set epochs: 0 or leave layer \(position) out"
            : "layer \(position) is \(kind), which quantize cannot handle; it quantizes linear and conv2d layers")
      }
    }
    // By default the linear layers only: int8 convolutions, separate oneDNN primitives with
    // layout reorders around each, run slower than the fused Float chains (README, "int8
    // inference"); named in `layers`, they are quantized.
    positions = given.isEmpty ? layers.indices.filter { layers[$0] is Linear } : given.sorted()
    if positions.isEmpty { throw context.mismatch("", "the student has no linear layer to quantize") }
  }

  func begin(_ training: ModelTraining, data: TrainingData) {
    let model = training.model
    model.eval()
    // The calibration samples: the first `calibrationSamples` of a seeded order of the training split.
    var batches = EpochBatches(dataset: data.train, batchSize: 250, seed: seed, epoch: 0)
    let shape = data.train.sampleShape
    var x: [Float] = []
    var y: [Int] = []
    var observed = [Int: [Float]]()
    var seen = 0
    let captures = Set(positions.filter { $0 > 0 }.map { $0 - 1 })
    noGrad {
      while seen < calibrationSamples, let n = batches.next(features: &x, labels: &y) {
        let take = min(n, calibrationSamples - seen)
        let input = Tensor(shape: [take] + shape, storage: Array(x.prefix(take * shape.reduce(1, *))))
        let (captured, _) = model.forward(input, capturing: captures)
        for position in positions {
          let values = position == 0 ? input.storage : captured[position - 1]!.storage
          if percentile == nil, let range = observed[position] {
            observed[position] = [min(range[0], values.min() ?? 0), max(range[1], values.max() ?? 0)]
          } else if percentile == nil {
            observed[position] = [values.min() ?? 0, values.max() ?? 0]
          } else {
            observed[position, default: []] += values
          }
        }
        seen += take
      }
    }
    for position in positions {
      let values = observed[position] ?? [0]
      if let percentile {
        let sorted = values.sorted()
        func at(_ p: Double) -> Float { sorted[min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count - 1)).rounded())))] }
        ranges[position] = (at(100 - percentile), at(percentile))
      } else {
        ranges[position] = (values[0], values[1])
      }
    }
    if fineTunes { attachFakeQuantization() }
    model.train()
  }

  /// Sets each quantized Linear's fake quantization from `ranges` (QAT).
  private func attachFakeQuantization() {
    for position in positions {
      let (low, high) = ranges[position]!
      (model.layers[position] as! Linear).fakeQuantization = LinearFakeQuantization(
        inputMin: low, inputMax: high, quantMax: ActivationQuantization.machineQuantMax)
    }
  }

  /// The current input range of `position`: the fake quantization's while fine-tuning.
  private func range(_ position: Int) -> (Float, Float) {
    if let fake = (model.layers[position] as? Linear)?.fakeQuantization { return (fake.inputMin, fake.inputMax) }
    return ranges[position] ?? (0, 0)
  }

  /// The activation range of `position`: the fake quantization's while fine-tuning, else this
  /// machine's (`ActivationQuantization.machineQuantMax`: 7 bits where oneDNN's int8 kernels
  /// would saturate).
  private func quantMax(_ position: Int) -> Int32 {
    (model.layers[position] as? Linear)?.fakeQuantization?.quantMax ?? ActivationQuantization.machineQuantMax
  }

  /// The int8 network of `model`'s current weights and the current input ranges.
  func finalModel(_ model: Sequential) -> Sequential {
    var layers = model.layers
    for position in positions {
      let (low, high) = range(position)
      let input = ActivationQuantization(min: low, max: high, quantMax: quantMax(position))
      if let conv = model.layers[position] as? Conv2D {
        layers[position] = QuantizedConv2D(conv, input: input)
      } else {
        layers[position] = QuantizedLinear(model.layers[position] as! Linear, input: input)
      }
    }
    let network = Sequential(layers)
    network.eval()
    return network
  }

  var figures: [(name: String, value: Double)] {
    let int8 = positions.reduce(0) { $0 + (model.layers[$1].localParameters.first?.tensor.count ?? 0) }
    return [("quantized_layers", Double(positions.count)), ("int8_weights", Double(int8))]
  }

  var state: MethodState {
    MethodState(
      arrays: positions.map { p in
        let (low, high) = range(p)
        return NamedArray(name: "\(p).input_range", shape: [2], values: [low, high])
      })
  }

  func restore(_ state: MethodState, file: String) throws {
    let stored = Dictionary(state.arrays.map { ($0.name, $0.values) }, uniquingKeysWith: { a, _ in a })
    var restored: [Int: (Float, Float)] = [:]
    for position in positions {
      guard let values = stored["\(position).input_range"], values.count == 2, values[0] <= values[1] else {
        throw TrainingError.checkpointMismatch(
          file: file, object: "/state/stage/arrays/\(position).input_range",
          reason: "is missing or not a [min, max] pair; the quantize stage resumes only with its layers' input ranges")
      }
      restored[position] = (values[0], values[1])
    }
    ranges = restored
    if fineTunes { attachFakeQuantization() }
  }

  func writeModel(
    _ model: Sequential, group: String, architecture: String, to path: String, precision: StoragePrecision
  ) throws {
    try saveQuantizedModel(model, group: group, architecture: architecture, to: path)
  }
}
