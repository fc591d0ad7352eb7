// Range checks of model descriptions: the shorthands and explicit layer lists. Sizes are also
// bounded above (`maxSize`): larger could only be a typo, and the model builder then checks what
// the sizes that pass need in memory against the machine's (`ModelBuilder.requireMemory`).

extension RecipeChecks {
  /// `1 ≤ value ≤ ModelSpec.maxLayerSize`.
  mutating func size(_ value: Int, _ minimum: Int, _ path: String) {
    atLeast(value, minimum, path)
    if value > ModelSpec.maxLayerSize { fail(path, "\(value)", "at most \(ModelSpec.maxLayerSize)") }
  }

  /// Checks `model` at key path `at`; `classCount`, when known, is what the last layer must produce.
  mutating func model(_ model: ModelSpec, _ at: String, classCount: Int?) {
    switch model {
    case .mlp(let mlp):
      let at = at + ".mlp"
      for (i, width) in mlp.hidden.enumerated() { size(width, 1, at + ".hidden[\(i)]") }
      unit(mlp.dropout, at + ".dropout")
      unit(mlp.inputDropout, at + ".input_dropout")
    case .cnn(let cnn):
      let at = at + ".cnn"
      if cnn.channels.isEmpty { fail(at + ".channels", "[]", "a list of at least one channel count") }
      for (i, channels) in cnn.channels.enumerated() { size(channels, 1, at + ".channels[\(i)]") }
      for (i, width) in cnn.hidden.enumerated() { size(width, 1, at + ".hidden[\(i)]") }
      unit(cnn.dropout, at + ".dropout")
    case .layers(let layers):
      self.layers(layers, at + ".layers", classCount: classCount)
    }
  }

  mutating func layers(_ layers: [LayerSpec], _ at: String, classCount: Int?) {
    guard let last = layers.last else {
      fail(at, "[]", "a list of at least one layer, the last a linear layer")
      return
    }
    for (i, layer) in layers.enumerated() { self.layer(layer, "\(at)[\(i)]") }
    let lastPath = "\(at)[\(layers.count - 1)]"
    guard case .linear(let linear) = last else {
      conflict(lastPath, "the last layer must be a linear layer with one output per class")
      return
    }
    if let classCount, linear.out != classCount, linear.out >= 1 {
      fail(lastPath + ".linear.out", "\(linear.out)", "\(classCount), one output per class")
    }
  }

  mutating func layer(_ layer: LayerSpec, _ at: String) {
    switch layer {
    case .linear(let linear):
      size(linear.out, 1, at + ".linear.out")
      if let rank = linear.rank { size(rank, 1, at + ".linear.rank") }
    case .conv2d(let conv):
      size(conv.out, 1, at + ".conv2d.out")
      size(conv.kernel, 1, at + ".conv2d.kernel")
      size(conv.padding, 0, at + ".conv2d.padding")
      size(conv.stride, 1, at + ".conv2d.stride")
    case .batchNorm(let norm):
      positive(norm.eps, at + ".batch_norm.eps")
      if !(norm.momentum > 0 && norm.momentum <= 1) {
        fail(at + ".batch_norm.momentum", "\(norm.momentum)", "in (0, 1]")
      }
    case .maxPool(let kernel):
      size(kernel, 1, at + ".max_pool")
    case .avgPool(let kernel):
      size(kernel, 1, at + ".avg_pool")
    case .dropout(let p):
      unit(p, at + ".dropout")
    case .flatten, .relu, .gelu, .tanh:
      break
    }
  }
}
