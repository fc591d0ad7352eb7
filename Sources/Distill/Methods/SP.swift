import Autodiff
import DistillRecipes

/// Similarity-preserving distillation (Tung & Mori, ICCV 2019): the batch's Gram matrix of
/// flattened features, rows L2-normalised, matched between the networks:
///
///   term = weight · ‖normalize(FₜFₜᵀ) − normalize(FₛFₛᵀ)‖²_F / n²
///
/// as mdistiller's `sp_loss` computes it, on the last stage output (`feats[-1]`; the
/// penultimate features of a network without feature maps).
final class SimilarityPreserving: DistillationMethod {
  static var couplesSamples: Bool { true }
  static let info = MethodInfo(
    name: "sp", title: "Similarity-preserving distillation",
    paper: "Tung & Mori, Similarity-Preserving Knowledge Distillation, ICCV 2019",
    reference: "mdistiller/distillers/SP.py, mdistiller/engine/cfg.py (CFG.SP)",
    needs: "the last feature map of both networks (or their penultimate features); batches of at least 2",
    keys: [
      .number("weight", 3000, "weight of the SP term"),
    ] + MethodKey.layerPair("its last stage output, else its penultimate layer"))

  let weight: Float
  let teacherLayers: [Int]
  let studentLayers: [Int]
  var needsTeacherLogits: Bool { false }

  init(settings: MethodSettings, context: MethodContext) throws {
    weight = Float(Self.number("weight", settings))
    func pick(_ role: ModelRole) throws -> [Int] {
      let key = "\(role.rawValue)_layer"
      return [
        try context.layer(Self.layers(key, settings), of: role, key: key) {
          context.stageOutputs(of: role).last ?? context.penultimate(of: role)
        }
      ]
    }
    (teacherLayers, studentLayers) = (try pick(.teacher), try pick(.student))
  }

  static func gram(_ f: Tensor) -> Tensor {
    let rows = f.rows
    return Tensor.matmul(rows, rows, transposeB: true).l2Normalized(alongAxis: 1)
  }

  func loss(_ batch: MethodBatch) -> Tensor {
    let n = Float(batch.labels.count)
    let target = noGrad { Self.gram(batch.teacherFeatures[teacherLayers[0]]!) }
    let d = target - Self.gram(batch.studentFeatures[studentLayers[0]]!)
    return (d * d).sum() * (weight / (n * n))
  }
}
