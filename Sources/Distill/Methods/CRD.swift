import Autodiff
import Checkpoints
import Foundation
import NN
import DistillRecipes

/// Contrastive representation distillation (Tian, Krishnan & Isola, ICLR 2020) as mdistiller
/// runs it ("exact" mode): the penultimate features of both networks are embedded by trained
/// linear heads into L2-normalised `feat_dim` vectors, and each sample's student embedding is
/// contrasted against the teacher embedding of the same sample (stored in a memory bank, one row
/// per training sample) and of `negatives` samples of other classes, and vice versa:
///
///   out(v, M)[i, k] = exp(⟨M[idxᵢₖ], vᵢ⟩ / T) / Z,  idxᵢ₀ = the sample, idxᵢₖ drawn from other classes
///   term = weight · (NCE(out(vˢ, Mᵗ)) + NCE(out(vᵗ, Mˢ))),
///   NCE(x) = −(1/B) Σᵢ [log(xᵢ₀ / (xᵢ₀ + K/N + ε)) + Σₖ log((K/N) / (xᵢₖ + K/N + ε))]
///
/// Z is fixed from the first batch (mean(out)·N); after each micro-batch the banks' rows of its
/// samples move to the new embeddings with `momentum` and are renormalised. The banks, Z and the
/// negative-sampling stream are checkpointed; the heads train with the student.
final class ContrastiveRD: DistillationMethod {
  static var couplesSamples: Bool { true }
  static let info = MethodInfo(
    name: "crd", title: "Contrastive representation distillation",
    paper: "Tian, Krishnan & Isola, Contrastive Representation Distillation, ICLR 2020",
    reference: "mdistiller/distillers/CRD.py, mdistiller/engine/cfg.py (CFG.CRD); RepDistiller (negatives of other classes)",
    needs: "penultimate features of both networks, two linear embedding heads (extra modules), "
      + "two memory banks of one row per training sample and sample indices (extra state)",
    keys: [
      .integer("feat_dim", 128, "embedding dimension", minimum: 1, maximum: 65536),
      .integer("negatives", 16384, "negatives per sample (K)", minimum: 1, maximum: 1 << 20),
      .number("nce_temperature", 0.07, "temperature of the contrast"),
      .number("momentum", 0.5, "memory-bank momentum", .unit),
      .number("weight", 0.8, "weight of the CRD term"),
    ] + MethodKey.layerPair("the input of its last linear layer"),
    ceWeight: 1)

  let weight: Float
  let temperature: Float
  let momentum: Float
  let negatives: Int
  let featureDimension: Int
  let teacherLayers: [Int]
  let studentLayers: [Int]
  let embedStudent: Linear
  let embedTeacher: Linear
  /// One row per training sample: student embeddings (mdistiller's memory_v1) and teacher
  /// embeddings (memory_v2), `[N, feat_dim]`.
  let memoryStudent: Tensor
  let memoryTeacher: Tensor
  /// The normalisation constants of the two contrasts, < 0 until the first batch sets them.
  var zStudent: Float = -1
  var zTeacher: Float = -1
  var generator: SeededGenerator
  /// For each class, the samples of the other classes.
  let otherClasses: [[Int]]
  let labels: [Int]
  /// Tests set the contrast indices (`B · (negatives + 1)`) instead of drawing them.
  var fixedContrast: [Int]?
  /// The embeddings of the last micro-batch, written into the banks after its backward pass.
  private var pending: (indices: [Int], student: [Float], teacher: [Float])?
  var needsTeacherLogits: Bool { false }

  init(settings: MethodSettings, context: MethodContext) throws {
    weight = Float(Self.number("weight", settings))
    temperature = Float(Self.number("nce_temperature", settings))
    momentum = Float(Self.number("momentum", settings))
    negatives = Self.integer("negatives", settings)
    featureDimension = Self.integer("feat_dim", settings)
    (teacherLayers, studentLayers) = try penultimatePair(Self.layers, settings, context: context)
    let studentFeatures = context.shape(of: .student, layer: studentLayers[0]).reduce(1, *)
    let teacherFeatures = context.shape(of: .teacher, layer: teacherLayers[0]).reduce(1, *)
    try context.requireModule(parameters: [studentFeatures, featureDimension], "student_layer", "the student's embedding head")
    try context.requireModule(parameters: [teacherFeatures, featureDimension], "teacher_layer", "the teacher's embedding head")
    var weights = SeededGenerator(seed: derivedSeed(context.seed, "student.crd"))
    embedStudent = Linear(inputFeatures: studentFeatures, outputFeatures: featureDimension, generator: &weights)
    embedTeacher = Linear(inputFeatures: teacherFeatures, outputFeatures: featureDimension, generator: &weights)
    let n = context.trainCount
    // Two banks of N × feat_dim floats, and per step the N scores of each sample of a batch.
    let bankBytes = 2 * n * featureDimension * 4
    if bankBytes > ProcessMemory.physicalBytes / 2 {
      throw context.mismatch(
        "feat_dim",
        "the memory banks would take \(bankBytes >> 20) MiB (2 × \(n) samples × \(featureDimension) floats), more than "
          + "half of this machine's \(ProcessMemory.physicalBytes >> 20) MiB; make crd.feat_dim smaller")
    }
    let bound = 1 / (Float(featureDimension) / 3).squareRoot()
    memoryStudent = Tensor.uniform([n, featureDimension], low: -bound, high: bound, generator: &weights)
    memoryTeacher = Tensor.uniform([n, featureDimension], low: -bound, high: bound, generator: &weights)
    generator = SeededGenerator(seed: derivedSeed(context.seed, "student.crd.negatives"))
    labels = context.trainLabels
    var byClass = [[Int]](repeating: [], count: context.classCount)
    for (i, label) in labels.enumerated() { byClass[label].append(i) }
    otherClasses = (0..<context.classCount).map { c in (0..<context.classCount).filter { $0 != c }.flatMap { byClass[$0] } }
    if let empty = otherClasses.firstIndex(where: \.isEmpty), byClass[empty].count > 0 {
      throw context.mismatch("", "the training split has samples of one class only; CRD needs negatives of other classes")
    }
  }

  var modules: [(name: String, layer: any Layer)] { [("crd_embed_student", embedStudent), ("crd_embed_teacher", embedTeacher)] }

  /// `B · (K + 1)` bank rows: each sample first, then K samples of other classes.
  func contrastIndices(_ indices: [Int]) -> [Int] {
    if let fixedContrast { return fixedContrast }
    let width = negatives + 1
    var generator = self.generator
    defer { self.generator = generator }
    return [Int](unsafeUninitializedCapacity: indices.count * width) { drawn, initialized in
      for (row, i) in indices.enumerated() {
        drawn[row * width] = i
        otherClasses[labels[i]].withUnsafeBufferPointer { pool in
          let count = UInt64(pool.count)
          // Lemire's multiply-shift: the high word of r·count is uniform in 0..<count up to 2⁻⁶⁴·count.
          for k in 1..<width { drawn[row * width + k] = pool[Int(generator.next().multipliedFullWidth(by: count).high)] }
        }
      }
      initialized = indices.count * width
    }
  }

  /// `embed(x)` L2-normalised (mdistiller's `Embed`: no ε).
  static func embedded(_ x: Tensor, _ head: Linear) -> Tensor {
    let y = head(x.rows)
    return y / (y * y).sum(alongAxis: 1, keepingDimensions: true).sqrt()
  }

  /// mdistiller's `ContrastLoss`: the sum over the batch of log(x₀ / (x₀ + K/N + ε)) at the
  /// positives and log((K/N) / (xₖ + K/N + ε)) at the negatives, negated and divided by B; one
  /// logarithm per entry, of the ratio. (Σ log x₀ + B·K·log(K/N) − Σ log(x + K/N + ε) is the
  /// same sum, but two float sums of millions of terms near B·K·log(K/N) cancel to noise.)
  func nce(_ x: Tensor, samples: Int) -> Tensor {
    let noise = Float(negatives) / Float(samples)
    let (b, width) = (x.shape[0], x.shape[1])
    var numerators = [Float](repeating: noise, count: b * width)
    var isPositive = [Float](repeating: 0, count: b * width)
    for i in 0..<b { (numerators[i * width], isPositive[i * width]) = (0, 1) }
    // x at the positives, K/N at the negatives.
    let numerator = x * Tensor(shape: x.shape, storage: isPositive) + Tensor(shape: x.shape, storage: numerators)
    return (numerator / (x + (noise + 1e-7))).log().sum() * (-1 / Float(b))
  }

  func loss(_ batch: MethodBatch) -> Tensor {
    let contrast = contrastIndices(batch.indices)
    let n = memoryStudent.shape[0]
    let vs = Self.embedded(batch.studentFeatures[studentLayers[0]]!, embedStudent)
    let vt = Self.embedded(batch.teacherFeatures[teacherLayers[0]]!, embedTeacher)
    // All N products by one sgemm, then the drawn ones, then exp: cheaper than gathering
    // B·(K+1) bank rows when K is a sizeable fraction of N.
    var outStudent = (Tensor.matmul(vs, memoryTeacher, transposeB: true).gatheredColumns(contrast, count: negatives + 1)
      / temperature).exp()
    var outTeacher = (Tensor.matmul(vt, memoryStudent, transposeB: true).gatheredColumns(contrast, count: negatives + 1)
      / temperature).exp()
    if zStudent < 0 { zStudent = outStudent.storage.reduce(0, +) / Float(outStudent.count) * Float(n) }
    if zTeacher < 0 { zTeacher = outTeacher.storage.reduce(0, +) / Float(outTeacher.count) * Float(n) }
    outStudent = outStudent / zStudent
    outTeacher = outTeacher / zTeacher
    pending = (batch.indices, vs.storage, vt.storage)
    return (nce(outStudent, samples: n) + nce(outTeacher, samples: n)) * weight
  }

  /// Moves the banks' rows of the last micro-batch's samples towards its embeddings.
  func afterBackward() {
    guard let (indices, student, teacher) = pending else { return }
    pending = nil
    let d = featureDimension
    var updated = [Float](repeating: 0, count: d)
    for (bank, values) in [(memoryStudent, student), (memoryTeacher, teacher)] {
      // In place: a copy of the bank (N × feat_dim) per micro-batch would cost more than the update.
      bank.storage.withUnsafeMutableBufferPointer { storage in
        for (row, i) in indices.enumerated() {
          for j in 0..<d { updated[j] = storage[i * d + j] * momentum + values[row * d + j] * (1 - momentum) }
          let norm = updated.reduce(0) { $0 + $1 * $1 }.squareRoot()
          for j in 0..<d { storage[i * d + j] = updated[j] / norm }
        }
      }
    }
  }

  var state: MethodState {
    MethodState(
      arrays: [
        NamedArray(name: "memory_student", shape: memoryStudent.shape, values: memoryStudent.storage),
        NamedArray(name: "memory_teacher", shape: memoryTeacher.shape, values: memoryTeacher.storage),
        NamedArray(name: "z", shape: [2], values: [zStudent, zTeacher]),
      ],
      words: ["negatives_rng": [generator.state.0, generator.state.1, generator.state.2, generator.state.3]])
  }

  func restore(_ state: MethodState, file: String) throws {
    let arrays = Dictionary(state.arrays.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    for (name, bank) in [("memory_student", memoryStudent), ("memory_teacher", memoryTeacher)] {
      guard let stored = arrays[name] else {
        throw TrainingError.checkpointMismatch(file: file, object: "/state/method/arrays/crd.\(name)", reason: "is missing")
      }
      guard stored.shape == bank.shape else {
        throw TrainingError.checkpointMismatch(
          file: file, object: "/state/method/arrays/crd.\(name)",
          reason: "holds \(stored.shape[0]) samples of dimension \(stored.shape.last ?? 0), but the training split "
            + "has \(bank.shape[0]) samples and crd.feat_dim is \(bank.shape[1]); CRD resumes only on the same data")
      }
    }
    guard let z = arrays["z"], z.values.count == 2 else {
      throw TrainingError.checkpointMismatch(file: file, object: "/state/method/arrays/crd.z", reason: "is missing")
    }
    guard let words = state.words["negatives_rng"], words.count == 4 else {
      throw TrainingError.checkpointMismatch(file: file, object: "/state/method/words/crd.negatives_rng", reason: "is missing")
    }
    memoryStudent.storage = arrays["memory_student"]!.values
    memoryTeacher.storage = arrays["memory_teacher"]!.values
    (zStudent, zTeacher) = (z.values[0], z.values[1])
    generator = SeededGenerator(state: (words[0], words[1], words[2], words[3]))
  }
}
