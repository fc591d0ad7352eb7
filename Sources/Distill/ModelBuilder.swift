import Foundation
import Autodiff
import NN
import DistillRecipes

/// Builds a `Sequential` network from a recipe's layer list (`ModelSpec.expandedLayers`),
/// inferring every input size (features, channels, image side) from the shape of one sample.
///
/// Layer `i` of the list is child `"i"` of the `Sequential`, so parameter keys are those of the
/// equivalent `torch.nn.Sequential` (`1.weight`, `3.running_mean`). Initialisation is
/// PyTorch's (see `Linear`, `Conv2D`), drawn layer by layer from `SeededGenerator(seed: seed)`;
/// each dropout layer takes its own seed from a second generator, so adding or removing dropout
/// does not change the weights (the same scheme as `Sequential.mlp`).
///
/// Shapes here are per sample, without the batch axis: `[F]` for features, `[C, H, W]` for
/// images. `linear` needs `[F]`; `conv2d` and the pools need `[C, H, W]`; `batch_norm` takes
/// either (`BatchNorm1d` / `BatchNorm2d`); `flatten` turns any shape into `[C·H·W]`.
public struct ModelBuilder {
  /// The recipe file errors name.
  public var file: String
  /// The key path of the model (`student.model`), to which errors add the layer.
  public var keyPath: String

  public init(file: String, keyPath: String) {
    self.file = file
    self.keyPath = keyPath
  }

  /// The per-sample output shape of every layer of `model` given samples of `inputShape`, in
  /// order; throws `TrainingError.shapeMismatch` at the first layer that does not fit, or when
  /// the last output is not `[classCount]`.
  public func outputShapes(of model: ModelSpec, inputShape: [Int], classCount: Int) throws -> [[Int]] {
    let layers = model.expandedLayers(classCount: classCount)
    var shapes: [[Int]] = []
    var shape = inputShape
    for (index, layer) in layers.enumerated() {
      // Sizes beyond 2^31 could only come from a damaged file or a typo; refusing them here
      // keeps the shape arithmetic below from overflowing.
      if let size = layer.sizes.first(where: { $0 > Self.maxSize }) {
        throw TrainingError.modelTooLarge(
          file: file, keyPath: path(of: index, in: model),
          reason: "layer \(describe(index, layer)) has a size of \(size), more than \(Self.maxSize)")
      }
      shape = try outputShape(of: layer, at: index, in: model, input: shape)
      shapes.append(shape)
    }
    if shape != [classCount] {
      throw TrainingError.shapeMismatch(
        file: file, keyPath: path(of: layers.count - 1, in: model),
        layer: describe(layers.count - 1, layers.last), input: shapes.dropLast().last ?? inputShape,
        reason: "the model must end in [\(classCount)], one output per class, but gives \(shape)")
    }
    return shapes
  }

  /// The network for `model` on samples of `inputShape`, initialised from `seed`.
  ///
  /// Shape: `[N] + inputShape` → `[N, classCount]`.
  ///
  /// Before allocating anything it estimates the memory that training the model with batches
  /// of `batchSize` takes (`requiredBytes`) and throws `TrainingError.modelTooLarge`, naming
  /// the largest layer and the bytes, when that exceeds the machine's physical memory.
  public func build(_ model: ModelSpec, inputShape: [Int], classCount: Int, seed: UInt64, batchSize: Int = 1)
    throws -> Sequential
  {
    let shapes = try outputShapes(of: model, inputShape: inputShape, classCount: classCount)
    try requireMemory(model, shapes: shapes, inputShape: inputShape, classCount: classCount, batchSize: batchSize)
    var weights = SeededGenerator(seed: seed)
    var dropoutSeeds = SeededGenerator(seed: seed ^ 0xD509_0D50)
    var built: [any Layer] = []
    for (index, layer) in model.expandedLayers(classCount: classCount).enumerated() {
      let input = index == 0 ? inputShape : shapes[index - 1]
      switch layer {
      case .linear(let spec):
        if let rank = spec.rank {
          built.append(
            LowRankLinear(
              inputFeatures: input[0], outputFeatures: spec.out, rank: rank, bias: spec.bias, generator: &weights))
        } else {
          built.append(
            Linear(inputFeatures: input[0], outputFeatures: spec.out, bias: spec.bias, generator: &weights))
        }
      case .conv2d(let spec):
        built.append(
          Conv2D(
            inChannels: input[0], outChannels: spec.out, kernelSize: spec.kernel, stride: spec.stride,
            padding: spec.padding, bias: spec.bias, generator: &weights))
      case .batchNorm(let spec):
        let (momentum, epsilon) = (Float(spec.momentum), Float(spec.eps))
        built.append(
          input.count == 1
            ? BatchNorm1D(input[0], momentum: momentum, epsilon: epsilon)
            : BatchNorm2D(input[0], momentum: momentum, epsilon: epsilon))
      case .maxPool(let k): built.append(MaxPool2D(kernelSize: k))
      case .avgPool(let k): built.append(AvgPool2D(kernelSize: k))
      case .dropout(let p): built.append(Dropout(probability: Float(p), seed: dropoutSeeds.next()))
      case .flatten: built.append(Flatten())
      case .relu: built.append(ReLU())
      case .gelu: built.append(GELU())
      case .tanh: built.append(Tanh())
      }
    }
    return Sequential(built)
  }

  // MARK: Memory

  /// The largest size (features, channels, kernel, padding, stride, pool window) a layer may have.
  static let maxSize = ModelSpec.maxLayerSize

  /// The bytes training needs: parameters × 16 (the Float weights, their gradients and up to two
  /// optimizer moments) plus, per sample of a batch, every layer's output × 8 (the activation
  /// and its gradient). Nil when that overflows `Int`. Also returns the layer with the largest
  /// share, for the error message.
  func requiredBytes(_ model: ModelSpec, shapes: [[Int]], inputShape: [Int], classCount: Int, batchSize: Int)
    -> (bytes: Int?, parameters: Int?, largest: Int)
  {
    // Nil wherever a sum or product overflows `Int`: then the model is too large anyway.
    var (parameters, bytes): (Int?, Int?) = (0, 0)
    var (largest, largestBytes) = (0, -1)
    func add(_ a: Int?, _ b: Int?) -> Int? {
      guard let a, let b else { return nil }
      let (sum, overflow) = a.addingReportingOverflow(b)
      return overflow ? nil : sum
    }
    func product(_ values: [Int]) -> Int? { ProcessMemory.elementCount(values) }
    for (index, layer) in model.expandedLayers(classCount: classCount).enumerated() {
      let input = index == 0 ? inputShape : shapes[index - 1]
      var count: Int? = 0
      switch layer {
      case .linear(let spec):
        let weights = spec.rank.map { add(product([input[0], $0]), product([$0, spec.out])) } ?? product([input[0], spec.out])
        count = add(weights, spec.bias ? spec.out : 0)
      case .conv2d(let spec):
        count = add(product([input[0], spec.out, spec.kernel, spec.kernel]), spec.bias ? spec.out : 0)
      case .batchNorm: count = product([4, input[0]])
      default: break
      }
      let layerBytes = add(
        count.flatMap { product([$0, 16]) },
        product(shapes[index]).flatMap { product([$0, 8, max(batchSize, 1)]) })
      parameters = add(parameters, count)
      bytes = add(bytes, layerBytes)
      if layerBytes ?? .max > largestBytes { (largest, largestBytes) = (index, layerBytes ?? .max) }
    }
    return (bytes, parameters, largest)
  }

  /// Throws `TrainingError.modelTooLarge` when `requiredBytes` exceeds physical memory.
  func requireMemory(_ model: ModelSpec, shapes: [[Int]], inputShape: [Int], classCount: Int, batchSize: Int)
    throws
  {
    let (bytes, parameters, largest) = requiredBytes(
      model, shapes: shapes, inputShape: inputShape, classCount: classCount, batchSize: batchSize)
    let limit = ProcessMemory.physicalBytes
    if let bytes, bytes <= limit { return }
    let layer = describe(largest, model.expandedLayers(classCount: classCount)[largest])
    throw TrainingError.modelTooLarge(
      file: file, keyPath: path(of: largest, in: model),
      reason: "the model has \(parameters.map { "\($0)" } ?? "more than 2^63") parameters and needs about "
        + "\(bytes.map(byteText) ?? "more than 8 EiB") to train (weights, gradients, optimizer state and the "
        + "activations of a batch of \(batchSize)), most of it for layer \(layer); this machine has "
        + "\(byteText(limit)) of memory. Make the model or the batch size smaller")
  }

  // MARK: Shape inference

  private func outputShape(of layer: LayerSpec, at index: Int, in model: ModelSpec, input: [Int]) throws
    -> [Int]
  {
    func mismatch(_ reason: String) -> TrainingError {
      .shapeMismatch(
        file: file, keyPath: path(of: index, in: model), layer: describe(index, layer), input: input,
        reason: reason)
    }
    let imageHint = "it needs images [C, H, W]; set data.shape (e.g. [1, 8, 8] for the digits)"
    switch layer {
    case .linear(let spec):
      guard input.count == 1 else {
        throw mismatch("a linear layer needs flat features [F]; put a flatten before it")
      }
      return [spec.out]
    case .conv2d(let spec):
      guard input.count == 3 else { throw mismatch(imageHint) }
      let (h, w) = (input[1], input[2])
      let outH = (h + 2 * spec.padding - spec.kernel) / spec.stride + 1
      let outW = (w + 2 * spec.padding - spec.kernel) / spec.stride + 1
      guard h + 2 * spec.padding >= spec.kernel, w + 2 * spec.padding >= spec.kernel else {
        throw mismatch(
          "kernel \(spec.kernel) is larger than the padded image "
            + "\(h + 2 * spec.padding)×\(w + 2 * spec.padding)"
        )
      }
      return [spec.out, outH, outW]
    case .maxPool(let k), .avgPool(let k):
      guard input.count == 3 else { throw mismatch(imageHint) }
      guard input[1] >= k, input[2] >= k else {
        throw mismatch("a \(k)×\(k) pooling window does not fit a \(input[1])×\(input[2]) image")
      }
      return [input[0], input[1] / k, input[2] / k]
    case .batchNorm:
      guard input.count == 1 || input.count == 3 else {
        throw mismatch("batch norm needs features [F] or images [C, H, W]")
      }
      return input
    case .flatten:
      guard let count = ProcessMemory.elementCount(input), count <= Self.maxSize else {
        throw TrainingError.modelTooLarge(
          file: file, keyPath: path(of: index, in: model),
          reason: "flattening \(input) gives more than \(Self.maxSize) features")
      }
      return [count]
    case .dropout, .relu, .gelu, .tanh:
      return input
    }
  }

  /// `student.model.layers[3]` for an explicit list; `student.model.mlp` for a shorthand,
  /// whose layers have no key of their own.
  func path(of index: Int, in model: ModelSpec) -> String {
    switch model {
    case .layers: return "\(keyPath).layers[\(index)]"
    case .mlp: return "\(keyPath).mlp"
    case .cnn: return "\(keyPath).cnn"
    }
  }

  /// `"3 (conv2d)"`: the position in the expanded list and the layer's name.
  func describe(_ index: Int, _ layer: LayerSpec?) -> String {
    guard let layer else { return "\(index)" }
    let name: String
    switch layer {
    case .linear: name = "linear"
    case .conv2d: name = "conv2d"
    case .batchNorm: name = "batch_norm"
    case .maxPool: name = "max_pool"
    case .avgPool: name = "avg_pool"
    case .dropout: name = "dropout"
    case .flatten: name = "flatten"
    case .relu: name = "relu"
    case .gelu: name = "gelu"
    case .tanh: name = "tanh"
    }
    return "\(index) (\(name))"
  }
}

/// `1.5 GiB`, `320.0 MiB`: a byte count for people.
func byteText(_ bytes: Int) -> String {
  let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
  var value = Double(bytes)
  var unit = 0
  while value >= 1024 && unit < units.count - 1 {
    value /= 1024
    unit += 1
  }
  return unit == 0 ? "\(bytes) bytes" : String(format: "%.1f %@", value, units[unit])
}
