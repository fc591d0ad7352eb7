import Autodiff
import DistillRecipes

/// Relational knowledge distillation (Park et al., CVPR 2019): the pairwise distances between
/// the samples of a batch (each set divided by its mean) and the angles their triples form,
/// matched by the smooth L1 loss:
///
///   term = weight · (distance_weight · smoothL1(d̂ˢ, d̂ᵗ) + angle_weight · smoothL1(∠ˢ, ∠ᵗ))
///
/// as mdistiller's `rkd_loss` computes it (distances not squared, clamped at ε = 1e-12, the
/// diagonal 0), on the penultimate features (`pooled_feat`).
final class RelationalKD: DistillationMethod {
  static var couplesSamples: Bool { true }
  static let info = MethodInfo(
    name: "rkd", title: "Relational knowledge distillation",
    paper: "Park, Kim, Lu & Cho, Relational Knowledge Distillation, CVPR 2019",
    reference: "mdistiller/distillers/RKD.py, mdistiller/engine/cfg.py (CFG.RKD)",
    needs: "penultimate features of both networks (the input of the last linear layer); batches of at least 3",
    keys: [
      .number("distance_weight", 25, "weight of the distance term", .nonNegative),
      .number("angle_weight", 50, "weight of the angle term", .nonNegative),
      .number("weight", 1, "weight of the RKD term"),
    ] + MethodKey.layerPair("the input of its last linear layer"))

  let distanceWeight: Float
  let angleWeight: Float
  let weight: Float
  let teacherLayers: [Int]
  let studentLayers: [Int]
  var needsTeacherLogits: Bool { false }

  init(settings: MethodSettings, context: MethodContext) throws {
    distanceWeight = Float(Self.number("distance_weight", settings))
    angleWeight = Float(Self.number("angle_weight", settings))
    weight = Float(Self.number("weight", settings))
    (teacherLayers, studentLayers) = try penultimatePair(Self.layers, settings, context: context)
  }

  /// Pairwise Euclidean distances `[n, n]`, clamped at 1e-12 before the root, the diagonal 0,
  /// divided by the mean of the positive entries.
  static func distances(_ e: Tensor) -> Tensor {
    let n = e.shape[0]
    let square = (e * e).sum(alongAxis: 1)
    let products = Tensor.matmul(e, e, transposeB: true)
    let d = (square.reshaped([n, 1]) + square.reshaped([1, n]) - products * 2).clamped(min: 1e-12).sqrt()
    var offDiagonal = [Float](repeating: 1, count: n * n)
    for i in 0..<n { offDiagonal[i * n + i] = 0 }
    let masked = d * Tensor(shape: [n, n], storage: offDiagonal)
    // Every off-diagonal entry is at least 1e-6, so the positive ones are the off-diagonal ones.
    return masked / (masked.sum() * (1 / Float(n * (n - 1))))
  }

  /// cos of the angle at sample i between j and k, for all (i, j, k), flattened.
  static func angles(_ e: Tensor) -> Tensor {
    let (n, d) = (e.shape[0], e.shape[1])
    let differences = (e.reshaped([1, n, d]) - e.reshaped([n, 1, d])).l2Normalized(alongAxis: 2)
    return Tensor.batchedMatmul(differences, differences, transposeB: true).reshaped([n * n * n])
  }

  func loss(_ batch: MethodBatch) -> Tensor {
    let (s, t) = (batch.studentFeatures[studentLayers[0]]!.rows, batch.teacherFeatures[teacherLayers[0]]!.rows)
    let (targetDistances, targetAngles) = noGrad { (Self.distances(t), Self.angles(t)) }
    let distance = (Self.distances(s) - targetDistances).smoothL1().mean()
    let angle = (Self.angles(s) - targetAngles).smoothL1().mean()
    return (distance * distanceWeight + angle * angleWeight) * weight
  }
}
