import Autodiff
import Checkpoints
import Foundation
import NN
import DistillRecipes

/// Low-rank factorisation (`compress: [low_rank: {…}]`): each factorised linear layer's weight
/// W `[out, in]` is replaced by its truncated singular value decomposition W ≈ B·A (LAPACK's
/// `sgesdd` from OpenBLAS), A = √Σ_r·V_rᵀ `[r, in]` and B = U_r·√Σ_r `[out, r]`, as two linear
/// layers in a row (`LowRankLinear`; the layer list records it as `linear: {out, rank}`, which
/// PyTorch builds as `nn.Sequential(nn.Linear(in, r, bias=False), nn.Linear(r, out))`); the
/// student then fine-tunes with the recipe's distillation.
///
/// The rank is `rank` when given, else the smallest that keeps `keep_energy` of the spectral
/// energy Σ sᵢ² of the layer's singular values. A layer whose rank does not make it smaller
/// (r·(in + out) ≥ in·out) is still factorised, as asked; the stage's `parameters_kept`
/// figure says what the factorisation saved.
final class LowRankFactorization: CompressionStage {
  static let info = StageInfo(
    name: "low_rank", title: "Low-rank factorisation of linear layers (truncated SVD)",
    reference: "Denton et al., Exploiting linear structure within convolutional networks (NeurIPS 2014); "
      + "torch.linalg.svd; LAPACK sgesdd",
    summary: "replaces each linear layer's W by the two factors of its truncated SVD and fine-tunes",
    keys: [
      .number(
        "keep_energy", 0.95,
        "without rank: the fraction of the spectral energy (sum of squared singular values) the rank keeps",
        .fraction),
      .integer(
        "rank", 0, "the rank of every factorised layer; 0 chooses it by keep_energy, layer by layer", minimum: 0,
        maximum: 1 << 30),
      .layers("layers", "positions of the linear layers to factorise (default: every linear layer but the last)"),
    ], defaultLearningRateFactor: 0.1)

  let positions: [Int]
  /// The recipe file and the stage's key path, for errors.
  let file: String
  let keyPath: String
  let fixedRank: Int?
  let keepEnergy: Double
  /// The rank each position got (set by `reshape`, restored on resume), and the parameters
  /// of the factorised layers before and after.
  private(set) var ranks: [Int: Int] = [:]
  private(set) var weightsBefore = 0
  private(set) var weightsAfter = 0

  init(context: StageContext) throws {
    let keys = Self.info.keys
    let settings = context.settings
    let rank = settings.integer("rank", in: keys)
    (file, keyPath) = (context.file, context.keyPath)
    fixedRank = rank > 0 ? rank : nil
    keepEnergy = settings.number("keep_energy", in: keys)
    let layers = context.model.layers
    let given = settings.layers("layers", in: keys)
    for position in given {
      try context.requireLayer(position)
      if layers[position] is LowRankLinear && !context.resuming {
        throw context.mismatch("layers", "layer \(position) is already factorised (linear with a rank)")
      }
      guard layers[position] is Linear || layers[position] is LowRankLinear else {
        let kind = context.layers.indices.contains(position) ? context.layers[position].kindName : "this layer"
        throw context.mismatch(
          "layers", "layer \(position) is \(kind), which low_rank cannot handle; it factorises linear layers")
      }
    }
    // Resuming, the factorised layers are this stage's own.
    let linear = layers.indices.filter { layers[$0] is Linear || (context.resuming && layers[$0] is LowRankLinear) }
    positions = given.isEmpty ? Array(linear.dropLast()) : given.sorted()
    if positions.isEmpty {
      throw context.mismatch(
        "", "the student has no linear layer to factorise (the last, which gives the class scores, is kept unless named in layers)")
    }
    if let fixedRank {
      for position in positions {
        guard let layer = layers[position] as? Linear else { continue }
        let most = min(layer.inputFeatures, layer.outputFeatures)
        if fixedRank > most {
          throw context.mismatch(
            "rank",
            "is \(fixedRank), larger than layer \(position) (linear \(layer.inputFeatures) → \(layer.outputFeatures)) allows: "
              + "its rank is at most \(most)")
        }
      }
    }
  }

  /// The factorisation is `reshape`'s, before the training exists.
  func begin(_ training: ModelTraining, data: TrainingData) {}

  func reshape(_ student: StudentNetwork, masters: [String: [Float]]?) throws -> StudentNetwork? {
    var layers = student.model.layers
    var specs = student.layers
    (weightsBefore, weightsAfter) = (0, 0)
    for position in positions {
      guard let linear = layers[position] as? Linear, case .linear(var spec) = specs[position] else { continue }
      let (rows, columns) = (linear.outputFeatures, linear.inputFeatures)
      let weight = masters?["\(position).weight"] ?? linear.weight.storage
      guard let svd = SingularValueDecomposition(weight, rows: rows, columns: columns) else {
        throw TrainingError.methodMismatch(
          file: file, keyPath: keyPath,
          reason: "LAPACK's SVD of layer \(position)'s weight [\(rows), \(columns)] failed: the weights hold a NaN or an infinity")
      }
      let rank = fixedRank ?? svd.rank(keepingEnergy: keepEnergy)
      let (a, b) = svd.factors(rank: rank)
      var generator = SeededGenerator(seed: 0)
      let factored = LowRankLinear(
        inputFeatures: columns, outputFeatures: rows, rank: rank, bias: linear.bias != nil, generator: &generator)
      factored.first.weight.storage = a
      factored.second.weight.storage = b
      if let bias = linear.bias { factored.second.bias!.storage = masters?["\(position).bias"] ?? bias.storage }
      layers[position] = factored
      spec.rank = rank
      specs[position] = .linear(spec)
      ranks[position] = rank
      weightsBefore += rows * columns
      weightsAfter += rank * (rows + columns)
    }
    let model = Sequential(layers)
    model.isTraining = student.model.isTraining
    return StudentNetwork(model: model, layers: specs)
  }

  var state: MethodState {
    let sorted = ranks.keys.sorted()
    return MethodState(arrays: [
      NamedArray(name: "positions", shape: [sorted.count], values: sorted.map { Float($0) }),
      NamedArray(name: "ranks", shape: [sorted.count], values: sorted.map { Float(ranks[$0]!) }),
      NamedArray(name: "weights", shape: [2], values: [Float(weightsBefore), Float(weightsAfter)]),
    ])
  }

  func restore(_ state: MethodState, file: String) throws {
    let arrays = Dictionary(state.arrays.map { ($0.name, $0.values) }, uniquingKeysWith: { a, _ in a })
    guard let stored = arrays["positions"], let ranks = arrays["ranks"], let weights = arrays["weights"],
      stored.map({ Int($0) }) == positions, ranks.count == positions.count, weights.count == 2,
      ranks.allSatisfy({ $0 >= 1 && $0 == $0.rounded() })
    else {
      throw TrainingError.checkpointMismatch(
        file: file, object: "/state/stage/arrays",
        reason: "must hold the factorised positions \(positions), a rank of at least 1 for each, and the weight counts")
    }
    self.ranks = Dictionary(uniqueKeysWithValues: zip(positions, ranks.map { Int($0) }))
    (weightsBefore, weightsAfter) = (Int(weights[0]), Int(weights[1]))
  }

  var figures: [(name: String, value: Double)] {
    guard weightsBefore > 0 else { return [] }
    return [("parameters_kept", Double(weightsAfter) / Double(weightsBefore))]
      + ranks.keys.sorted().map { ("rank_\($0)", Double(ranks[$0]!)) }
  }
}
