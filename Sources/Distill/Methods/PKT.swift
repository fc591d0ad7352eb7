import Autodiff
import DistillRecipes

/// Probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018): the cosine similarities
/// between the samples of a batch, scaled to [0, 1] and normalised per row into conditional
/// probabilities, matched by KL divergence:
///
///   term = weight · mean(pᵗ · log((pᵗ + ε) / (pˢ + ε))),  ε = 1e-7
///
/// as mdistiller's `pkt_loss` computes it, on the penultimate features (`pooled_feat`).
final class ProbabilisticKT: DistillationMethod {
  static var couplesSamples: Bool { true }
  static let info = MethodInfo(
    name: "pkt", title: "Probabilistic knowledge transfer",
    paper: "Passalis & Tefas, Learning Deep Representations with Probabilistic Knowledge Transfer, ECCV 2018",
    reference: "mdistiller/distillers/PKT.py, mdistiller/engine/cfg.py (CFG.PKT)",
    needs: "penultimate features of both networks (the input of the last linear layer); batches of at least 2",
    keys: [
      .number("weight", 30000, "weight of the PKT term"),
    ] + MethodKey.layerPair("the input of its last linear layer"))

  let weight: Float
  let teacherLayers: [Int]
  let studentLayers: [Int]
  var needsTeacherLogits: Bool { false }

  init(settings: MethodSettings, context: MethodContext) throws {
    weight = Float(Self.number("weight", settings))
    (teacherLayers, studentLayers) = try penultimatePair(Self.layers, settings, context: context)
  }

  static func conditional(_ f: Tensor) -> Tensor {
    let normalized = f / (f.norms(alongAxis: 1, keepingDimensions: true) + 1e-7)
    let similarity = (Tensor.matmul(normalized, normalized, transposeB: true) + 1) * 0.5
    return similarity / similarity.sum(alongAxis: 1, keepingDimensions: true)
  }

  func loss(_ batch: MethodBatch) -> Tensor {
    let ps = Self.conditional(batch.studentFeatures[studentLayers[0]]!.rows)
    let (pt, ptLog) = noGrad {
      let pt = Self.conditional(batch.teacherFeatures[teacherLayers[0]]!.rows)
      return (pt, (pt + 1e-7).log())
    }
    return (pt * (ptLog - (ps + 1e-7).log())).mean() * weight
  }
}

/// One feature layer of each network for the relational methods: the `teacher_layer` and
/// `student_layer` given (`layers` reads a key of `settings`), or the penultimate features
/// (`MethodContext.penultimate`).
func penultimatePair(
  _ layers: (String, MethodSettings) -> [Int], _ settings: MethodSettings, context: MethodContext
) throws -> ([Int], [Int]) {
  (
    [try context.layer(layers("teacher_layer", settings), of: .teacher, key: "teacher_layer") { context.penultimate(of: .teacher) }],
    [try context.layer(layers("student_layer", settings), of: .student, key: "student_layer") { context.penultimate(of: .student) }]
  )
}
