import Autodiff
import Foundation
import NN

// int8 model files (`student-quantize.h5`), layout in README.md here ("int8 model files"): the
// model group of a model file in which each quantized Linear `i` holds, instead of its float
// weight, `i.weight` (int8 [out, in]), `i.weight_scale` (float32 [out]), `i.input_scale`
// (float32 scalar) and `i.input_zero_point` (int64 scalar), beside its float32 `i.bias`; the
// group's attribute `quantization` names the scheme and the quantized layers.

/// The group attribute of an int8 model: `{"format": "swift-distill-int8-1", "layers": [1, 4], …}`.
public let quantizationAttribute = "quantization"

/// The `format` of `quantizationAttribute` this version writes and reads.
public let int8ModelFormat = "swift-distill-int8-1"

/// Writes `model` (whose quantized layers are `QuantizedLinear`s at top-level positions) as the
/// group `group` of a new model file at `path`, atomically: float layers as in `saveModels`
/// (float32), quantized ones as int8 weights with their scales and zero points.
public func saveQuantizedModel(
  _ model: Sequential, group groupName: String, architecture: String?, to path: String
) throws(CheckpointError) {
  var quantized: [Int] = []
  for (index, layer) in model.layers.enumerated() where layer is QuantizedLinear || layer is QuantizedConv2D {
    quantized.append(index)
  }
  let description =
    "{\"activations\":\"uint8 per tensor: q = clamp(rint(x * float32(1 / input_scale)) + input_zero_point, 0, 255), ties to even\","
    + "\"format\":\"\(int8ModelFormat)\",\"layers\":[\(quantized.map(String.init).joined(separator: ","))],"
    + "\"product\":\"y = input_scale * weight_scale[o] * sum_k (q_k - input_zero_point) * weight[o, k] + bias[o]; "
    + "conv2d: k runs over each output pixel's window, the padding holding input_zero_point (the real 0)\","
    + "\"weights\":\"int8 per output channel, symmetric: weight in [-127, 127], W ~ weight_scale[o] * weight\"}"
  try HDF5File.writeAtomically(to: path) { file throws(CheckpointError) in
    let group = try file.createGroup(groupName)
    if let architecture { try group.setAttribute(architectureAttribute, string: architecture) }
    try group.setAttribute(quantizationAttribute, string: description)
    for (index, layer) in model.layers.enumerated() {
      let int8: (weights: [Int8], shape: [Int], scales: [Float], input: ActivationQuantization, bias: [Float]?)
      if let q = layer as? QuantizedLinear {
        let p = q.product
        int8 = (p.weights, [p.outFeatures, p.inFeatures], p.weightScales, p.input, q.bias)
      } else if let q = layer as? QuantizedConv2D {
        let c = q.convolution
        int8 = (c.weights, [c.outChannels, c.inChannels, c.kernelSize, c.kernelSize], c.weightScales, c.input, q.bias)
      } else {
        for (key, tensor) in layer.stateDict {
          try group.writeDataset("\(index).\(key)", floats: tensor.storage, shape: tensor.shape)
        }
        continue
      }
      try group.writeDataset("\(index).weight", int8s: int8.weights, shape: int8.shape)
      if let bias = int8.bias { try group.writeDataset("\(index).bias", floats: bias, shape: [int8.shape[0]]) }
      try group.writeDataset("\(index).weight_scale", floats: int8.scales, shape: [int8.shape[0]])
      try group.writeDataset("\(index).input_scale", floats: [int8.input.scale], shape: [])
      try group.writeDataset("\(index).input_zero_point", integers: [Int64(int8.input.zeroPoint)], shape: [])
      try group.writeDataset("\(index).input_quant_max", integers: [Int64(int8.input.quantMax)], shape: [])
    }
  }
}

/// Whether the group `group` of the file at `path` holds an int8 model (`quantizationAttribute`).
public func isQuantizedModel(group: String, in path: String) throws(CheckpointError) -> Bool {
  try HDF5File.openReadOnly(path).group(group).hasAttribute(quantizationAttribute)
}

/// Loads the int8 model of `group` into `float`, the same network built in Float: its float
/// layers take their datasets (as `loadModel`), the quantized positions become
/// `QuantizedLinear`s; returns the quantized network. Every dataset is checked (shapes, int8
/// range, scales finite and > 0, zero point in 0…255) before anything changes, each error naming
/// the file and object.
public func loadQuantizedModel(group groupName: String, from path: String, into float: Sequential) throws(CheckpointError)
  -> Sequential
{
  let file = try HDF5File.openReadOnly(path)
  let group = try file.group(groupName)
  let text = try group.stringAttribute(quantizationAttribute)
  let object = "\(group.name)@\(quantizationAttribute)"
  guard let data = text.data(using: .utf8),
    let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
    json["format"] as? String == int8ModelFormat, let positions = json["layers"] as? [Int]
  else {
    throw .wrongDatatype(
      path: path, object: object, expected: "a JSON object with format \"\(int8ModelFormat)\" and layers",
      found: text.count > 60 ? String(text.prefix(57)) + "…" : text)
  }
  var layers = float.layers
  var expected = Set<String>()
  for position in positions {
    guard layers.indices.contains(position), layers[position] is Linear || layers[position] is Conv2D else {
      throw .invalidValue(
        path: path, object: object, value: "layer \(position)",
        expected: "the position of a linear or conv2d layer of the model")
    }
    let layer = layers[position]
    let conv = layer as? Conv2D
    let shape = layer.localParameters[0].tensor.shape
    let out = shape[0]
    func member(_ name: String) throws(CheckpointError) -> HDF5Dataset {
      let key = "\(position).\(name)"
      expected.insert(key)
      guard group.contains(key) else { throw .missingKey(path: path, group: group.name, key: key, expectedShape: []) }
      return try group.dataset(key)
    }
    let weights = try member("weight").readInt8s(expectedShape: shape)
    let scales = try member("weight_scale").readFiniteFloats(expectedShape: [out])
    let inputScale = try member("input_scale").readFiniteFloats(expectedShape: [])[0]
    let zero = try member("input_zero_point").readIntegers(expectedShape: [])[0]
    // 7-bit activations (`reduce_range`) or 8; files from before the key have 8.
    var quantMax: Int64 = 255
    if group.contains("\(position).input_quant_max") {
      quantMax = try member("input_quant_max").readIntegers(expectedShape: [])[0]
      guard quantMax == 255 || quantMax == 127 else {
        throw .invalidValue(
          path: path, object: "\(group.name)/\(position).input_quant_max", value: "\(quantMax)", expected: "255 or 127")
      }
    }
    for (name, values) in [("weight_scale", scales), ("input_scale", [inputScale])] where values.contains(where: { !($0 > 0) }) {
      throw .invalidValue(path: path, object: "\(group.name)/\(position).\(name)", value: "\(values.min()!)", expected: "scales > 0")
    }
    guard (0...quantMax).contains(zero) else {
      throw .invalidValue(
        path: path, object: "\(group.name)/\(position).input_zero_point", value: "\(zero)", expected: "in 0...\(quantMax)")
    }
    var bias: [Float]?
    if layer.localParameters.count > 1 { bias = try member("bias").readFiniteFloats(expectedShape: [out]) }
    let input = ActivationQuantization(scale: inputScale, zeroPoint: Int32(zero), quantMax: Int32(quantMax))
    if let conv {
      layers[position] = QuantizedConv2D(
        convolution: Int8Convolution(
          weights: weights, weightScales: scales, input: input, outChannels: out, inChannels: conv.inChannels,
          kernelSize: conv.kernelSize, stride: conv.stride, padding: conv.padding),
        bias: bias)
    } else {
      layers[position] = QuantizedLinear(
        product: Int8Product(weights: weights, weightScales: scales, input: input, outFeatures: out, inFeatures: shape[1]),
        bias: bias)
    }
  }
  // The float layers, strictly, as loadModel does.
  var values: [(Tensor, [Float])] = []
  for (index, layer) in layers.enumerated() where !(layer is QuantizedLinear || layer is QuantizedConv2D) {
    for (key, tensor) in layer.stateDict {
      let name = "\(index).\(key)"
      expected.insert(name)
      guard group.contains(name) else {
        throw .missingKey(path: path, group: group.name, key: name, expectedShape: tensor.shape)
      }
      values.append((tensor, try group.dataset(name).readFiniteFloats(expectedShape: tensor.shape)))
    }
  }
  for member in try group.memberNames() where !expected.contains(member) {
    throw .unexpectedKey(path: path, group: group.name, key: member, shape: (try? group.dataset(member))?.shape ?? [])
  }
  for (tensor, stored) in values { tensor.storage = stored }
  let model = Sequential(layers)
  model.eval()
  return model
}
