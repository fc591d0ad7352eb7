import Autodiff

// Ready-made networks for the recipes and benchmarks. Each is a plain `Sequential`, so its
// keys are those of the same `torch.nn.Sequential` in PyTorch.

extension Sequential {
  /// A multilayer perceptron: [Dropout(inputDropout)], then per hidden width Linear–ReLU–
  /// [Dropout(dropout)], then Linear to the classes; a dropout layer appears only when its
  /// probability is positive, and takes an index like any layer (Hinton et al.'s MNIST
  /// networks use inputDropout 0.2 and dropout 0.5).
  ///
  /// Weights are drawn from `SeededGenerator(seed: seed)` layer by layer; each dropout layer
  /// gets its own seed from a second generator, so adding dropout does not change the weights.
  ///
  /// Shape: `[N, inputFeatures]` → `[N, classes]`.
  public static func mlp(
    inputFeatures: Int, hidden: [Int], classes: Int, dropout: Float = 0, inputDropout: Float = 0,
    seed: UInt64
  ) -> Sequential {
    var weights = SeededGenerator(seed: seed)
    var dropoutSeeds = SeededGenerator(seed: seed ^ 0xD509_0D50)
    var layers: [any Layer] = []
    if inputDropout > 0 { layers.append(Dropout(probability: inputDropout, seed: dropoutSeeds.next())) }
    var width = inputFeatures
    for h in hidden {
      layers += [Linear(inputFeatures: width, outputFeatures: h, generator: &weights), ReLU()]
      if dropout > 0 { layers.append(Dropout(probability: dropout, seed: dropoutSeeds.next())) }
      width = h
    }
    layers.append(Linear(inputFeatures: width, outputFeatures: classes, generator: &weights))
    return Sequential(layers)
  }

  /// The LeNet-style benchmark CNN: conv(c→32, 3, p1)–ReLU–maxpool2, conv(32→64, 3, p1)–ReLU–
  /// maxpool2, Flatten, Linear(64·(s/4)²→128)–ReLU, Linear(128→classes). With the defaults
  /// (28×28 MNIST) the first Linear is 3136→128.
  ///
  /// Keys: `0.*`, `3.*` (convolutions), `7.*`, `9.*` (linear layers), weight and bias each.
  ///
  /// Shape: `[N, inputChannels, imageSize, imageSize]` → `[N, classes]`.
  public static func cnn(
    inputChannels: Int = 1, imageSize: Int = 28, channels: (Int, Int) = (32, 64), hidden: Int = 128,
    classes: Int = 10, seed: UInt64
  ) -> Sequential {
    var g = SeededGenerator(seed: seed)
    let side = imageSize / 4
    return Sequential(
      Conv2D(inChannels: inputChannels, outChannels: channels.0, kernelSize: 3, padding: 1, generator: &g),
      ReLU(), MaxPool2D(kernelSize: 2),
      Conv2D(inChannels: channels.0, outChannels: channels.1, kernelSize: 3, padding: 1, generator: &g),
      ReLU(), MaxPool2D(kernelSize: 2),
      Flatten(),
      Linear(inputFeatures: channels.1 * side * side, outputFeatures: hidden, generator: &g), ReLU(),
      Linear(inputFeatures: hidden, outputFeatures: classes, generator: &g))
  }

  /// A CIFAR-style ResNet (He et al., 2016, section 4.2): conv3×3(c→w₀)–BN–ReLU, then one
  /// stage per width of `blocksPerStage` basic `ResidualBlock`s (the first block of every stage
  /// after the first has stride 2), global average pooling and Linear(last width→classes).
  /// `blocksPerStage` 1 gives ResNet-8, 3 gives ResNet-20 (6n + 2 layers).
  ///
  /// Keys: `0.weight`, `1.*` (stem BN), then `3`, `4`, … one per block
  /// (`3.body.0.weight`, `4.shortcut.1.running_var`, …), then the pool and the final `.weight`,
  /// `.bias`.
  ///
  /// Shape: `[N, inputChannels, H, W]` → `[N, classes]`.
  public static func resnet(
    blocksPerStage: Int, widths: [Int] = [16, 32, 64], inputChannels: Int = 3, classes: Int = 10,
    seed: UInt64
  ) -> Sequential {
    precondition(blocksPerStage > 0 && !widths.isEmpty, "a ResNet needs blocks and stage widths")
    var g = SeededGenerator(seed: seed)
    var layers: [any Layer] = [
      Conv2D(
        inChannels: inputChannels, outChannels: widths[0], kernelSize: 3, padding: 1, bias: false,
        generator: &g),
      BatchNorm2D(widths[0]), ReLU(),
    ]
    var width = widths[0]
    for (stage, stageWidth) in widths.enumerated() {
      for block in 0..<blocksPerStage {
        let stride = stage > 0 && block == 0 ? 2 : 1
        layers.append(
          ResidualBlock.basic(inChannels: width, outChannels: stageWidth, stride: stride, generator: &g))
        width = stageWidth
      }
    }
    layers += [GlobalAvgPool2D(), Linear(inputFeatures: width, outputFeatures: classes, generator: &g)]
    return Sequential(layers)
  }
}
