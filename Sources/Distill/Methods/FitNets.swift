import Autodiff
import Checkpoints
import NN
import DistillRecipes

/// FitNets (Romero et al., ICLR 2015) as mdistiller runs it: at one layer the student's output,
/// through a trained regressor, matches the teacher's by mean squared error:
///
///   term = weight · MSE(r(fˢ), fᵗ)
///
/// For feature maps the regressor is mdistiller's `ConvReg`: a convolution (1×1 when the
/// spatial sizes agree, k×k with k = 1 + Hˢ − Hᵗ when the student's are larger), batch norm and
/// ReLU; for flat features a linear layer. The regressor trains with the student, is saved in
/// checkpoints (its batch-norm statistics as method state) and is not part of `student.h5`.
final class FitNets: DistillationMethod {
  static let info = MethodInfo(
    name: "fitnets", title: "FitNets hints",
    paper: "Romero et al., FitNets: Hints for Thin Deep Nets, ICLR 2015",
    reference: "mdistiller/distillers/FitNet.py, mdistiller/distillers/_common.py (ConvReg), cfg.py (CFG.FITNET)",
    needs: "one feature layer of each network (default: the middle stage output), a regressor (extra module)",
    keys: [
      .number("weight", 100, "weight of the hint term"),
    ] + MethodKey.layerPair("its middle stage output, else its penultimate layer"))

  let weight: Float
  let teacherLayers: [Int]
  let studentLayers: [Int]
  let regressor: Sequential
  var needsTeacherLogits: Bool { false }

  init(settings: MethodSettings, context: MethodContext) throws {
    weight = Float(Self.number("weight", settings))
    func pick(_ role: ModelRole) throws -> Int {
      let key = "\(role.rawValue)_layer"
      return try context.layer(Self.layers(key, settings), of: role, key: key) {
        let stages = context.stageOutputs(of: role)
        return stages.isEmpty ? context.penultimate(of: role) : stages[stages.count / 2]
      }
    }
    let (t, s) = (try pick(.teacher), try pick(.student))
    (teacherLayers, studentLayers) = ([t], [s])
    let (ts, ss) = (context.shape(of: .teacher, layer: t), context.shape(of: .student, layer: s))
    var generator = SeededGenerator(seed: derivedSeed(context.seed, "student.fitnets"))
    switch (ss.count, ts.count) {
    case (3, 3):
      let kernel = 1 + ss[1] - ts[1]
      guard kernel >= 1, ss[2] - ts[2] == ss[1] - ts[1] else {
        throw context.mismatch(
          "student_layer",
          "the student's layer \(s) gives \(ss) and the teacher's layer \(t) gives \(ts); the regressor maps a "
            + "student map to a teacher map of the same or smaller size, shrunk equally in height and width")
      }
      try context.requireModule(parameters: [ss[0], kernel, kernel, ts[0]], "student_layer", "the convolution regressor")
      regressor = Sequential(
        Conv2D(inChannels: ss[0], outChannels: ts[0], kernelSize: kernel, generator: &generator), BatchNorm2D(ts[0]),
        ReLU())
    case (1, 1):
      try context.requireModule(parameters: [ss[0], ts[0]], "student_layer", "the linear regressor")
      regressor = Sequential(Linear(inputFeatures: ss[0], outputFeatures: ts[0], generator: &generator))
    default:
      throw context.mismatch(
        "student_layer",
        "the student's layer \(s) gives \(ss) and the teacher's layer \(t) gives \(ts); pair two feature maps "
          + "[C, H, W] or two flat layers")
    }
  }

  var modules: [(name: String, layer: any Layer)] { [("fitnets_regressor", regressor)] }

  func loss(_ batch: MethodBatch) -> Tensor {
    let mapped = regressor(batch.studentFeatures[studentLayers[0]]!)
    return meanSquaredError(mapped, batch.teacherFeatures[teacherLayers[0]]!) * weight
  }

  var state: MethodState {
    MethodState(arrays: regressor.buffers.map { NamedArray(name: "regressor.\($0.name)", shape: $0.tensor.shape, values: $0.tensor.storage) })
  }

  func restore(_ state: MethodState, file: String) throws {
    try restoreBuffers(of: regressor, prefix: "regressor.", from: state, file: file, method: Self.info.name)
  }
}

/// Copies a module's buffers back from a method's checkpointed state, checking every name and
/// shape before changing any.
func restoreBuffers(of module: any Layer, prefix: String, from state: MethodState, file: String, method: String) throws {
  let stored = Dictionary(state.arrays.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
  for (name, tensor) in module.buffers {
    guard let array = stored[prefix + name] else {
      throw TrainingError.checkpointMismatch(
        file: file, object: "/state/method/arrays/\(method).\(prefix)\(name)", reason: "is missing")
    }
    guard array.shape == tensor.shape else {
      throw TrainingError.checkpointMismatch(
        file: file, object: "/state/method/arrays/\(method).\(prefix)\(name)",
        reason: "has shape \(array.shape), expected \(tensor.shape)")
    }
  }
  for (name, tensor) in module.buffers { tensor.storage = stored[prefix + name]!.values }
}
