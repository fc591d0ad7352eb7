import Autodiff
import Foundation
import NN
import DistillRecipes

// Structured magnitude pruning (`prune: {structure: structured}`): whole neurons of a linear
// layer (rows of its weight) and whole channels of a conv2d layer (its filters) are ranked by
// the L1 norm of their weights, as `torch.nn.utils.prune.ln_structured(n=1, dim=0)` ranks them,
// and the smallest `round(amount × rows)` are pruned, one-shot or along the gradual schedule.
//
// While the student fine-tunes, a pruned row is held at zero by masks on the row of the weight,
// its bias and the weight and bias of a batch norm that follows it, so the neuron's output is
// exactly 0 after the batch norm and the activations, pools and dropout after it (each maps 0 to
// 0); the next linear or conv2d layer then reads zeros from it. When the stage ends,
// `finalModel` removes those rows, the matching columns (input channels, or a channel's block
// of features after a flatten) of the next layer and the batch norm's entries: a smaller dense
// network that computes the same function, written as a plain model file.

/// One layer structured pruning shrinks: its position, its rows (neurons or channels), and the
/// tensors its row mask covers (its weight first).
struct StructuredGroup {
  let position: Int
  let rows: Int
  let tensors: [(name: String, tensor: Tensor)]
  /// The first of `tensors` in the stage's `weights`.
  let firstTensor: Int
}

extension MagnitudePruning {
  /// The layers to prune by rows: `given`, or every linear and conv2d layer but the last
  /// weight layer. Each must be a plain linear or conv2d layer followed (through batch norm,
  /// activations, pools, dropout and flatten only) by another, and keep at least one row.
  static func structuredGroups(context: StageContext, given: [Int], amount: Double) throws -> [StructuredGroup] {
    let layers = context.model.layers
    func kind(_ position: Int) -> String {
      context.layers.indices.contains(position) ? context.layers[position].kindName : "\(type(of: layers[position]))"
    }
    func isWeightLayer(_ layer: any Layer) -> Bool { layer is Linear || layer is Conv2D || layer is LowRankLinear }
    let weightPositions = layers.indices.filter { isWeightLayer(layers[$0]) }
    let chosen = given.isEmpty ? Array(weightPositions.dropLast()) : given.sorted()
    if chosen.isEmpty {
      throw context.mismatch(
        "", "the student has no linear or conv2d layer before its last to prune structurally (the last gives the class scores)")
    }
    var groups: [StructuredGroup] = []
    var first = 0
    for position in chosen {
      let layer = layers[position]
      guard layer is Linear || layer is Conv2D else {
        throw context.mismatch(
          "layers",
          "layer \(position) is \(layer is LowRankLinear ? "a factorised linear (rank)" : kind(position)), which structured "
            + "prune cannot handle; it removes neurons of linear and channels of conv2d layers")
      }
      guard position != weightPositions.last else {
        throw context.mismatch(
          "layers", "layer \(position) gives the class scores; removing its neurons would remove classes. Name earlier layers")
      }
      var tensors = layer.localParameters.map { ("\(position).\($0.name)", $0.tensor) }
      var next = position + 1
      while next < layers.count, !isWeightLayer(layers[next]) {
        switch layers[next] {
        case let norm as BatchNorm:
          tensors += norm.localParameters.map { ("\(next).\($0.name)", $0.tensor) }
        case is ReLU, is GELU, is Tanh, is Dropout, is MaxPool2D, is AvgPool2D, is Flatten: break
        default:
          throw context.mismatch(
            "layers",
            "layer \(next) (\(kind(next))) lies between layer \(position) and the next linear or conv2d layer; structured "
              + "prune can remove neurons only through batch_norm, relu, gelu, tanh, dropout, pools and flatten")
        }
        next += 1
      }
      guard next < layers.count, layers[next] is Linear || layers[next] is Conv2D else {
        throw context.mismatch(
          "layers", "layer \(position)'s outputs feed layer \(next), a factorised linear (rank); structured prune needs a "
            + "plain linear or conv2d layer after a pruned one (prune before low_rank)")
      }
      let rows = (layer as? Linear)?.outputFeatures ?? (layer as! Conv2D).outChannels
      let removed = Int((amount * Double(rows)).rounded(.toNearestOrEven))
      if removed >= rows {
        throw context.mismatch(
          "amount", "is \(amount), which would remove all \(rows) \(layer is Linear ? "neurons" : "channels") of layer "
            + "\(position) (round(\(amount) × \(rows)) = \(removed)); a structured prune must keep at least one")
      }
      groups.append(StructuredGroup(position: position, rows: rows, tensors: tensors, firstTensor: first))
      first += tensors.count
    }
    return groups
  }

  /// Whether each row of group `g` is kept (its weight mask's first element of the row is 1).
  func keptRows(_ g: Int) -> [Bool] {
    let group = groups[g]
    let mask = masks[group.firstTensor]
    let unit = mask.count / group.rows
    return (0..<group.rows).map { mask[$0 * unit] != 0 }
  }

  /// Masks pruning `round(target × rows)` rows of each group (half to even), the smallest L1
  /// norms of the weight's rows first (ties: the earlier row), rows pruned already before any
  /// other, each row's mask spread over the group's tensors.
  func structuredMasks(values: [[Float]], target: Double) -> [[Float]] {
    var result = masks
    for (g, group) in groups.enumerated() {
      let weight = values[group.firstTensor]
      let unit = weight.count / group.rows
      let kept = keptRows(g)
      let norms = (0..<group.rows).map { r -> Float in
        kept[r] ? weight[r * unit..<(r + 1) * unit].reduce(0) { $0 + abs($1) } : -1
      }
      let order = (0..<group.rows).sorted { norms[$0] != norms[$1] ? norms[$0] < norms[$1] : $0 < $1 }
      let k = Int((target * Double(group.rows)).rounded(.toNearestOrEven))
      var rowMask = [Float](repeating: 1, count: group.rows)
      for r in order.prefix(k) { rowMask[r] = 0 }
      for t in 0..<group.tensors.count {
        let count = result[group.firstTensor + t].count
        let per = count / group.rows
        result[group.firstTensor + t] = (0..<count).map { rowMask[$0 / per] }
      }
    }
    return result
  }

  /// The kept rows of every pruned position, structured; empty otherwise.
  private var keptByPosition: [Int: [Int]] {
    var kept: [Int: [Int]] = [:]
    for (g, group) in groups.enumerated() {
      let rows = keptRows(g)
      kept[group.position] = rows.indices.filter { rows[$0] }
    }
    return kept
  }

  var finalLayers: [LayerSpec]? {
    guard !groups.isEmpty else { return nil }
    var specs = layerSpecs
    for (position, rows) in keptByPosition {
      switch specs[position] {
      case .linear(var spec):
        spec.out = rows.count
        specs[position] = .linear(spec)
      case .conv2d(var spec):
        spec.out = rows.count
        specs[position] = .conv2d(spec)
      default: break
      }
    }
    return specs
  }

  /// Structured: the smaller network without the pruned rows (the weights copied, in the
  /// precision they are stored in; layers without weights are shared). Unstructured: `model`.
  func finalModel(_ model: Sequential) -> Sequential {
    guard !groups.isEmpty else { return model }
    let keptRows = keptByPosition
    var generator = SeededGenerator(seed: 0)
    var built: [any Layer] = []
    // The surviving features or channels of the activation between layers (nil: all), and
    // the channel count it had before pruning.
    var kept: [Int]?
    var channels = 0
    for (position, layer) in model.layers.enumerated() {
      switch layer {
      case let linear as Linear:
        let rows = keptRows[position] ?? Array(0..<linear.outputFeatures)
        let columns = kept ?? Array(0..<linear.inputFeatures)
        let small = Linear(
          inputFeatures: columns.count, outputFeatures: rows.count, bias: linear.bias != nil, generator: &generator)
        built.append(Self.copyRows(of: linear, into: small, rows: rows, columns: columns))
        kept = keptRows[position]
        channels = linear.outputFeatures
      case let conv as Conv2D:
        let rows = keptRows[position] ?? Array(0..<conv.outChannels)
        let inputs = kept ?? Array(0..<conv.inChannels)
        let area = conv.kernelSize * conv.kernelSize
        let small = Conv2D(
          inChannels: inputs.count, outChannels: rows.count, kernelSize: conv.kernelSize, stride: conv.stride,
          padding: conv.padding, bias: conv.bias != nil, generator: &generator)
        let columns = inputs.flatMap { c in (c * area)..<((c + 1) * area) }
        built.append(Self.copyRows(of: conv, into: small, rows: rows, columns: columns))
        kept = keptRows[position]
        channels = conv.outChannels
      case let norm as BatchNorm:
        guard let rows = kept else {
          built.append(norm)
          continue
        }
        let small: BatchNorm =
          norm is BatchNorm2D
          ? BatchNorm2D(rows.count, momentum: norm.momentum, epsilon: norm.epsilon)
          : BatchNorm1D(rows.count, momentum: norm.momentum, epsilon: norm.epsilon)
        for (from, to) in zip(norm.localBuffers, small.localBuffers) {
          Self.copy(from.tensor, rows: rows, columns: [0], into: to.tensor)
        }
        built.append(Self.copyRows(of: norm, into: small, rows: rows, columns: [0]))
      case is Flatten:
        built.append(layer)
        // Channel c of [C, H, W] becomes features c·H·W ..< (c + 1)·H·W: H·W from the next
        // linear layer's input width.
        if let rows = kept, let next = model.layers[(position + 1)...].first(where: { $0 is Linear || $0 is LowRankLinear }) {
          let features = (next as? Linear)?.inputFeatures ?? (next as! LowRankLinear).inputFeatures
          let area = features / max(channels, 1)
          kept = rows.flatMap { c in (c * area)..<((c + 1) * area) }
        }
      default:
        built.append(layer)
      }
    }
    let small = Sequential(built)
    small.isTraining = model.isTraining
    return small
  }

  /// Copies `rows` of each of `layer`'s parameters into `small`'s (of the weight, its
  /// `columns`; of a bias or a batch norm's vectors, the one element), and its mode; returns
  /// `small`.
  private static func copyRows(of layer: any Layer, into small: any Layer, rows: [Int], columns: [Int]) -> any Layer {
    for (from, to) in zip(layer.localParameters, small.localParameters) {
      copy(from.tensor, rows: rows, columns: from.tensor.shape.count > 1 ? columns : [0], into: to.tensor)
    }
    small.isTraining = layer.isTraining
    return small
  }

  /// Copies `rows` × `columns` of `source` (its first axis by the rest, row-major) into
  /// `target`, in the precision `source` is stored in.
  private static func copy(_ source: Tensor, rows: [Int], columns: [Int], into target: Tensor) {
    let values = source.storage
    let width = values.count / max(source.shape.first ?? 1, 1)
    var copied = [Float]()
    copied.reserveCapacity(rows.count * columns.count)
    for r in rows {
      for c in columns { copied.append(values[r * width + c]) }
    }
    target.storage = copied
    if source.isHalf { target.storeAsHalf() }
  }
}
