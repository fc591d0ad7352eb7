// Shared by the harnesses that build models (FuzzRecipe, FuzzModelFile).
import Distill
import FuzzSupport

/// Models with more weights than this are not built (`ModelBuilder.build` allocates and
/// initialises every weight): FUZZ_BUILD_LIMIT, default 2^20; 0 means no limit, as
/// `distill train` and `eval`, where a width like 10^9 aborts on allocation (a known issue).
public let buildLimit = environmentInteger("FUZZ_BUILD_LIMIT", 1 << 20)

/// Whether `model` on samples of `inputShape` is small enough to build (see `buildLimit`).
/// Throws what `ModelBuilder.outputShapes` throws for a model that does not fit the shape.
public func withinBuildLimit(_ model: ModelSpec, inputShape: [Int], classes: Int) throws -> Bool {
  if buildLimit == 0 { return true }
  let outputs = try ModelBuilder(file: "fuzz", keyPath: "model").outputShapes(
    of: model, inputShape: inputShape, classCount: classes)
  return parameterCount(model, input: inputShape, outputs: outputs, classes: classes) <= buildLimit
}

/// The number of weights `ModelBuilder.build` allocates for `model`, given the output shapes
/// `outputs` of its layers; `Int.max` when it overflows.
public func parameterCount(_ model: ModelSpec, input: [Int], outputs: [[Int]], classes: Int) -> Int {
  var total = 0
  for (index, layer) in model.expandedLayers(classCount: classes).enumerated() {
    let inShape = index == 0 ? input : outputs[index - 1]
    var count: (partialValue: Int, overflow: Bool) = (0, false)
    switch layer {
    case .linear(let linear):
      count = inShape[0].multipliedReportingOverflow(by: linear.out)
    case .conv2d(let conv):
      count = conv.out.multipliedReportingOverflow(by: inShape[0])
      for _ in 0..<2 where !count.overflow { count = count.partialValue.multipliedReportingOverflow(by: conv.kernel) }
    case .batchNorm:
      count = inShape[0].multipliedReportingOverflow(by: 4)
    default:
      break
    }
    let sum = total.addingReportingOverflow(count.partialValue)
    if count.overflow || sum.overflow { return Int.max }
    total = sum.partialValue
  }
  return total
}
