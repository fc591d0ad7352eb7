import Autodiff
import NN
import XCTest
import _TestSupport

/// The `Layer` protocol's derived behaviour: key names and order, loading, modes.
final class LayerTests: XCTestCase {
  private func twoLayerModel(seed: UInt64 = 1) -> Sequential {
    var g = SeededGenerator(seed: seed)
    return Sequential(
      Linear(inputFeatures: 3, outputFeatures: 4, generator: &g), ReLU(),
      Sequential(Linear(inputFeatures: 4, outputFeatures: 2, bias: false, generator: &g), Tanh()))
  }

  func testLinearKeys() {
    var g = SeededGenerator(seed: 0)
    XCTAssertEqual(
      Linear(inputFeatures: 2, outputFeatures: 3, generator: &g).stateDict.map(\.name), ["weight", "bias"])
    XCTAssertEqual(
      Linear(inputFeatures: 2, outputFeatures: 3, bias: false, generator: &g).stateDict.map(\.name),
      ["weight"])
  }

  func testParameterFreeLayersHaveNoKeys() {
    for layer: any Layer in [ReLU(), GELU(), Tanh(), Sigmoid(), Flatten(), Sequential()] {
      XCTAssertTrue(layer.stateDict.isEmpty, "\(type(of: layer))")
    }
  }

  func testNestedSequentialKeysArePrefixedByIndex() {
    let model = twoLayerModel()
    XCTAssertEqual(model.stateDict.map(\.name), ["0.weight", "0.bias", "2.0.weight"])
    XCTAssertEqual(model.parameters.map(\.name), ["0.weight", "0.bias", "2.0.weight"])
    XCTAssertTrue(model.buffers.isEmpty)
    XCTAssertEqual(model.parameterCount, 3 * 4 + 4 + 4 * 2)
    XCTAssertTrue(model.stateDict[0].tensor === (model.layers[0] as! Linear).weight)
  }

  func testLoadCopiesEveryTensor() throws {
    let source = twoLayerModel(seed: 1)
    let target = twoLayerModel(seed: 2)
    XCTAssertNotEqual(source.stateDict[0].tensor.storage, target.stateDict[0].tensor.storage)
    try target.load(stateDict: source.stateDict)
    for (a, b) in zip(source.stateDict, target.stateDict) {
      XCTAssertEqual(a.name, b.name)
      XCTAssertEqual(a.tensor.storage, b.tensor.storage)
      XCTAssertFalse(a.tensor === b.tensor)
    }
    let x = randomTensor([5, 3], seed: 3)
    XCTAssertEqual(source(x).storage, target(x).storage)
  }

  func testLoadReportsMissingKeyAndChangesNothing() {
    let target = twoLayerModel(seed: 2)
    let before = target.stateDict.map(\.tensor.storage)
    var given = Dictionary(
      uniqueKeysWithValues: twoLayerModel(seed: 1).stateDict.map { ($0.name, $0.tensor) })
    given["2.0.weight"] = nil
    XCTAssertThrowsError(try target.load(stateDict: given)) { error in
      XCTAssertEqual(error as? NNError, .missingKey("2.0.weight", expectedShape: [2, 4]))
    }
    XCTAssertEqual(target.stateDict.map(\.tensor.storage), before)
  }

  func testLoadReportsShapeMismatch() {
    var given = Dictionary(uniqueKeysWithValues: twoLayerModel().stateDict.map { ($0.name, $0.tensor) })
    given["0.bias"] = Tensor.zeros([5])
    XCTAssertThrowsError(try twoLayerModel().load(stateDict: given)) { error in
      XCTAssertEqual(error as? NNError, .shapeMismatch("0.bias", expected: [4], found: [5]))
    }
  }

  func testLoadReportsUnexpectedKey() {
    var given = Dictionary(uniqueKeysWithValues: twoLayerModel().stateDict.map { ($0.name, $0.tensor) })
    given["2.0.bias"] = Tensor.zeros([2])
    XCTAssertThrowsError(try twoLayerModel().load(stateDict: given)) { error in
      XCTAssertEqual(error as? NNError, .unexpectedKey("2.0.bias", shape: [2]))
    }
  }

  func testLoadReportsDuplicateKey() {
    let state = twoLayerModel().stateDict
    XCTAssertThrowsError(try twoLayerModel().load(stateDict: state + [state[0]])) { error in
      XCTAssertEqual(error as? NNError, .duplicateKey("0.weight"))
    }
  }

  func testErrorMessagesNameTheKey() {
    XCTAssertTrue(
      NNError.missingKey("3.running_var", expectedShape: [8]).description.contains("3.running_var"))
    XCTAssertTrue(NNError.shapeMismatch("0.weight", expected: [2], found: [3]).description.contains("[3]"))
  }

  func testModePropagatesToDescendants() {
    let model = twoLayerModel()
    let inner = model.layers[2] as! Sequential
    XCTAssertTrue(model.isTraining && inner.layers[0].isTraining)
    model.eval()
    XCTAssertFalse(
      model.isTraining || inner.isTraining || inner.layers[0].isTraining || model.layers[1].isTraining)
    model.train()
    XCTAssertTrue(inner.layers[1].isTraining)
  }

  func testSequentialGradientCheck() {
    let model = twoLayerModel()
    let x = randomTensor([4, 3], seed: 5)
    assertGradientsMatch([x] + model.parameters.map(\.tensor)) { inputs in model(inputs[0]) }
  }
}
