import Autodiff
import NN
import XCTest
import _TestSupport

/// Activation recomputation (`Sequential.recomputeSegments`) must change nothing but memory and
/// time: the same operations run on the same values in the same order, so outputs, every
/// gradient, dropout generators and batch-norm running statistics are compared bitwise.
final class RecomputeTests: XCTestCase {
  /// An MLP with input dropout and dropout after every hidden layer: 11 layers.
  private func dropoutMLP() -> Sequential {
    Sequential.mlp(
      inputFeatures: 12, hidden: [16, 16, 16], classes: 5, dropout: 0.5, inputDropout: 0.2, seed: 7)
  }

  /// A CNN with batch norm and a residual block (whose body holds two more batch norms).
  private func batchNormCNN() -> Sequential {
    var g = SeededGenerator(seed: 11)
    return Sequential(
      Conv2D(inChannels: 2, outChannels: 4, kernelSize: 3, padding: 1, generator: &g),
      BatchNorm2D(4), ReLU(),
      ResidualBlock.basic(inChannels: 4, outChannels: 4, generator: &g),
      MaxPool2D(kernelSize: 2),
      Conv2D(inChannels: 4, outChannels: 3, kernelSize: 3, padding: 1, generator: &g),
      BatchNorm2D(3), ReLU(), Dropout(probability: 0.3, seed: 5),
      Flatten(),
      Linear(inputFeatures: 3 * 4 * 4, outputFeatures: 6, generator: &g),
      BatchNorm1D(6), ReLU(),
      Linear(inputFeatures: 6, outputFeatures: 3, generator: &g))
  }

  /// Everything a training step leaves behind: the output, the input gradient, every
  /// parameter's gradient and every buffer (state-dict order), and the dropout generators.
  private struct StepResult: Equatable {
    var output: [Float]
    var inputGradient: [Float]
    var parameterGradients: [[Float]]
    var buffers: [[Float]]
    var generators: [SeededGenerator]
  }

  /// Runs `steps` forward/backward passes of `model` on `x` (gradients accumulating), the loss
  /// a fixed random weighting of the output, with `segments` (nil: no recomputation).
  private func train(_ model: Sequential, _ x: Tensor, segments: Int?, steps: Int = 2) -> StepResult {
    model.recomputeSegments = segments
    let input = Tensor(shape: x.shape, storage: x.storage, requiresGrad: true)
    var output: Tensor!
    for _ in 0..<steps {
      output = model(input)
      let weights = randomTensor(output.shape, seed: 99)
      (output * weights).sum().backward()
    }
    return StepResult(
      output: output.storage, inputGradient: input.grad!.storage,
      parameterGradients: model.parameters.map { $0.tensor.grad?.storage ?? [] },
      buffers: model.buffers.map(\.tensor.storage),
      generators: model.layers.compactMap { ($0 as? Dropout)?.generator })
  }

  private func assertRecomputeMatches(
    _ makeModel: () -> Sequential, input: Tensor, segmentCounts: [Int],
    file: StaticString = #filePath, line: UInt = #line
  ) {
    let expected = train(makeModel(), input, segments: nil)
    XCTAssertTrue(expected.parameterGradients.allSatisfy { !$0.isEmpty }, file: file, line: line)
    for segments in segmentCounts {
      let actual = train(makeModel(), input, segments: segments)
      XCTAssertEqual(actual.output, expected.output, "output, \(segments) segments", file: file, line: line)
      XCTAssertEqual(
        actual.inputGradient, expected.inputGradient, "input gradient, \(segments) segments", file: file,
        line: line)
      for (i, (a, e)) in zip(actual.parameterGradients, expected.parameterGradients).enumerated() {
        XCTAssertEqual(a, e, "gradient of parameter \(i), \(segments) segments", file: file, line: line)
      }
      XCTAssertEqual(
        actual.buffers, expected.buffers, "buffers, \(segments) segments", file: file, line: line)
      XCTAssertEqual(
        actual.generators, expected.generators, "dropout generators, \(segments) segments", file: file,
        line: line)
    }
  }

  func testMLPWithDropoutGradientsAreBitwiseEqual() {
    let model = dropoutMLP()
    let n = model.layers.count
    XCTAssertEqual(n, 11)
    // 1, 2, ⌊√n⌋, n segments, and more segments than layers.
    assertRecomputeMatches(
      dropoutMLP, input: randomTensor([8, 12], seed: 1), segmentCounts: [1, 2, 3, n, n + 5])
  }

  func testCNNWithBatchNormGradientsAndRunningStatisticsAreBitwiseEqual() {
    let n = batchNormCNN().layers.count
    XCTAssertEqual(n, 14)
    assertRecomputeMatches(
      batchNormCNN, input: randomTensor([4, 2, 8, 8], seed: 2), segmentCounts: [1, 2, 4, n])
  }

  func testDropoutReplaysTheSameMasks() {
    // Dropout alone in the first segment: the input gradient is the mask / (1 − p).
    let plain = Sequential(Dropout(probability: 0.5, seed: 3), Tanh())
    let recomputing = Sequential(Dropout(probability: 0.5, seed: 3), Tanh())
    recomputing.recomputeSegments = 2
    let x = randomTensor([32, 32], seed: 4)
    var gradients: [[Float]] = []
    for model in [plain, recomputing] {
      let input = Tensor(shape: x.shape, storage: x.storage, requiresGrad: true)
      let output = model(input)
      output.sum().backward()
      gradients.append(input.grad!.storage)
    }
    XCTAssertEqual(gradients[0], gradients[1])
    XCTAssertTrue(gradients[1].contains(0) && gradients[1].contains { $0 > 0 }, "some dropped, some kept")
    XCTAssertEqual(
      (recomputing.layers[0] as! Dropout).generator, (plain.layers[0] as! Dropout).generator,
      "the replay leaves the generator where the forward pass left it")
  }

  func testBatchNormRunningStatisticsMoveOncePerForward() {
    let bn = BatchNorm1D(3)
    let model = Sequential(bn, ReLU(), Linear(inputFeatures: 3, outputFeatures: 2, generator: &rng))
    model.recomputeSegments = 2
    let x = randomTensor([6, 3], seed: 5, mean: 2, std: 3)
    // The expected statistics: one plain forward of a fresh batch norm.
    let reference = BatchNorm1D(3)
    _ = noGrad { reference(x) }
    model(x).sum().backward()
    XCTAssertEqual(bn.runningMean.storage, reference.runningMean.storage)
    XCTAssertEqual(bn.runningVariance.storage, reference.runningVariance.storage)
    XCTAssertNotNil(bn.weight.grad, "the first segment's parameters get gradients")
  }

  private var rng = SeededGenerator(seed: 13)

  func testKeysAreUnchangedAndNoGradRunsPlainly() {
    let plain = dropoutMLP()
    let recomputing = dropoutMLP()
    recomputing.recomputeSegments = 3
    XCTAssertEqual(recomputing.stateDict.map(\.name), plain.stateDict.map(\.name))
    recomputing.eval()
    plain.eval()
    let x = randomTensor([4, 12], seed: 6)
    XCTAssertEqual(noGrad { recomputing(x) }.storage, noGrad { plain(x) }.storage)
  }

  func testSegmentRangesCoverTheLayersInOrder() {
    let model = dropoutMLP()  // 11 layers
    XCTAssertEqual(model.segmentRanges(1), [0..<11])
    XCTAssertEqual(model.segmentRanges(3), [0..<3, 3..<7, 7..<11])
    XCTAssertEqual(model.segmentRanges(11), (0..<11).map { $0..<($0 + 1) })
    XCTAssertEqual(model.segmentRanges(20), (0..<11).map { $0..<($0 + 1) })
  }

  func testSegmentsNeverCutAConvolutionChain() {
    // 0 conv 1 bn 2 relu 3 pool | 4 conv 5 relu | 6 flatten 7 linear: the chains are 0..<4
    // and 4..<6.
    let model = Sequential([
      Conv2D(inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1, generator: &rng), BatchNorm2D(4), ReLU(),
      MaxPool2D(kernelSize: 2), Conv2D(inChannels: 4, outChannels: 4, kernelSize: 3, padding: 1, generator: &rng),
      ReLU(), Flatten(), Linear(inputFeatures: 16, outputFeatures: 2, generator: &rng),
    ])
    XCTAssertEqual(model.segmentRanges(2), [0..<4, 4..<8])
    XCTAssertEqual(model.segmentRanges(3), [0..<4, 4..<6, 6..<8])  // cuts 2, 5 move to 4, 6
    XCTAssertEqual(model.segmentRanges(8), [0..<4, 4..<6, 6..<7, 7..<8])
  }

  func testRecomputationLowersPeakActivationMemory() {
    // 16 × (Linear 64→64, ReLU) + Linear 64→4: 33 layers, batch 32.
    var layers: [any Layer] = []
    for _ in 0..<16 { layers += [Linear(inputFeatures: 64, outputFeatures: 64, generator: &rng), ReLU()] }
    layers.append(Linear(inputFeatures: 64, outputFeatures: 4, generator: &rng))
    let model = Sequential(layers)
    let x = randomTensor([32, 64], seed: 9)
    var peaks: [Int] = []
    for segments in [nil, 6] as [Int?] {
      model.recomputeSegments = segments
      for p in model.parameters { p.tensor.zeroGrad() }
      TensorMemory.start()
      model(x).sum().backward()
      TensorMemory.stop()
      peaks.append(TensorMemory.peakBytes)
    }
    defer { TensorMemory.stop() }
    // Without: about 3 tensors of 32 × 64 per layer pair (product, sum with the bias, ReLU),
    // all alive when backward starts. With 6 segments: 5 segment inputs plus one segment's
    // 3 pairs, recomputed, plus the gradients in flight.
    XCTAssertGreaterThan(peaks[0], 16 * 3 * 32 * 64 * 4)
    XCTAssertLessThan(Double(peaks[1]), 0.5 * Double(peaks[0]), "peaks \(peaks)")
  }

  func testGradientCheckThroughRecomputedSegments() {
    let model = Sequential(
      Linear(inputFeatures: 4, outputFeatures: 5, generator: &rng), Tanh(),
      Linear(inputFeatures: 5, outputFeatures: 3, generator: &rng), Tanh(),
      Linear(inputFeatures: 3, outputFeatures: 2, generator: &rng))
    model.recomputeSegments = 3
    let parameters = model.parameters.map(\.tensor)
    assertGradientsMatch([randomTensor([3, 4], seed: 8)] + parameters) { inputs in model(inputs[0]) }
  }
}
