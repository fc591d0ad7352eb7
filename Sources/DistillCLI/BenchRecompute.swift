import Autodiff
import Foundation
import NN

// The activation-recomputation benchmark (`deep_mlp_recompute`): a deep MLP trained with and
// without `Sequential.recomputeSegments`, side by side in one process.

/// The figures of one recompute setting of the deep MLP.
struct RecomputeFigures {
  /// Segments, or nil for no recomputation.
  var segments: Int?
  /// Seconds per training step, one value per repeat.
  var stepSeconds: [Double]
  /// `TensorMemory.peakBytes` over one forward and backward pass: the activations (and other
  /// non-gradient tensors) alive at once.
  var peakActivationBytes: Int
  /// `TensorMemory.heapPeakBytes` over the same pass: every heap byte, gradients included.
  var peakHeapBytes: Int

  var medianStepSeconds: Double { median(stepSeconds) }
}

/// The deep MLP of the issue: input 1024, 24 × (Linear 1024→1024, ReLU), Linear 1024→10;
/// 49 layers, batch 256, SGD (momentum 0.9, lr 0.01) on cross-entropy.
enum DeepMLPRecompute {
  static let depth = 24
  static let width = 1024
  static let batch = 256
  /// None, 2, ⌊√49⌋ − 2 = 5 (√24 hidden layers), and 24 segments.
  static let settings: [Int?] = [nil, 2, 5, 24]

  /// Measures every setting: one counted forward/backward pass for memory, then `repeats`
  /// rounds that time `steps` steps of each setting in turn (interleaved, so a slow spell of the
  /// shared machine hits every setting alike), after one warm-up step each. `time_ratio` is the
  /// median over rounds of (this setting's step time / no recomputation's, same round);
  /// `time_ratio_of_minima` compares the fastest rounds, the least disturbed by other load.
  static func measure(steps: Int, repeats: Int) -> Measurement {
    var generator = SeededGenerator(seed: 0)
    var layers: [any Layer] = []
    for _ in 0..<depth {
      layers += [Linear(inputFeatures: width, outputFeatures: width, generator: &generator), ReLU()]
    }
    layers.append(Linear(inputFeatures: width, outputFeatures: 10, generator: &generator))
    let model = Sequential(layers)
    let x = Tensor.normal([batch, width], generator: &generator)
    let labels = (0..<batch).map { _ in generator.nextInt(below: 10) }
    let optimizer = SGD(parameters: model.parameters, learningRate: 0.01, momentum: 0.9)
    let step = {
      optimizer.zeroGrad()
      crossEntropy(logits: model(x), labels: labels).backward()
      optimizer.step()
    }

    var figures: [RecomputeFigures] = settings.map { segments in
      model.recomputeSegments = segments
      step()  // warm-up: momentum buffers exist, the allocator has seen a step
      optimizer.zeroGrad()
      TensorMemory.start()
      crossEntropy(logits: model(x), labels: labels).backward()
      TensorMemory.stop()
      return RecomputeFigures(
        segments: segments, stepSeconds: [], peakActivationBytes: TensorMemory.peakBytes,
        peakHeapBytes: TensorMemory.heapPeakBytes)
    }
    let clock = ContinuousClock()
    for _ in 0..<repeats {
      for i in figures.indices {
        model.recomputeSegments = figures[i].segments
        let elapsed = clock.measure { for _ in 0..<steps { step() } }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        figures[i].stepSeconds.append(seconds / Double(steps))
      }
    }
    let rates = figures[0].stepSeconds.map { Double(batch) / $0 }.sorted()
    var measurement = Measurement(
      median: rates[rates.count / 2], min: rates.first!, max: rates.last!,
      peakRSSMegabytes: peakResidentMegabytes())
    let base = figures[0]
    measurement.variants = figures.map { f in
      (
        f.segments.map(String.init) ?? "none",
        [
          ("step_ms", f.medianStepSeconds * 1000),
          ("step_ms_min", f.stepSeconds.min()! * 1000),
          ("step_ms_max", f.stepSeconds.max()! * 1000),
          ("time_ratio", median(zip(f.stepSeconds, base.stepSeconds).map { $0 / $1 })),
          ("time_ratio_of_minima", f.stepSeconds.min()! / base.stepSeconds.min()!),
          ("peak_activation_mb", Double(f.peakActivationBytes) / 1_048_576),
          ("memory_ratio", Double(f.peakActivationBytes) / Double(base.peakActivationBytes)),
          ("peak_heap_mb", Double(f.peakHeapBytes) / 1_048_576),
        ]
      )
    }
    return measurement
  }
}

/// The middle value (the upper one of the two middle values for an even count).
func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
