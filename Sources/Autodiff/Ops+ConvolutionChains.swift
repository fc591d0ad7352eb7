// Several convolution chains in a row, passing each intermediate in oneDNN's 16-channel blocks
// instead of reordering it to NCHW and back between them.

/// One chain of `Tensor.convolutionChains`: the arguments of `Tensor.convolutionBlock`.
public struct ConvolutionChainSpec {
  public let weight: Tensor
  public let bias: Tensor?
  public let stride, padding: Int
  public let norm: ChainBatchNorm?
  public let pool: (kernelSize: Int, stride: Int, padding: Int)?

  public init(
    weight: Tensor, bias: Tensor?, stride: Int, padding: Int, norm: ChainBatchNorm?,
    pool: (kernelSize: Int, stride: Int, padding: Int)?
  ) {
    (self.weight, self.bias, self.stride, self.padding, self.norm, self.pool) =
      (weight, bias, stride, padding, norm, pool)
  }
}

extension Tensor {
  /// Runs `chains` one after another from self (each as `convolutionBlock`), handing each
  /// intermediate to the next chain in oneDNN's 16-channel blocks (when its channels are a
  /// multiple of 16) rather than reordering it to NCHW and back: the results are those of the
  /// chains run one by one (the reorders only move elements). Returns the output of the first
  /// `count` chains, in NCHW; `count` is less than `chains.count` when a chain declines (the
  /// caller runs the rest its own way), and the result is nil when the first declines.
  public func convolutionChains(_ chains: [ConvolutionChainSpec]) -> (output: Tensor, count: Int)? {
    var y = self
    var blocked = false  // whether y is in 16-channel blocks
    var count = 0
    for (k, chain) in chains.enumerated() {
      let channels = chain.weight.rank == 4 ? chain.weight.shape[0] : 0
      let link = Convolution.linksChains && k + 1 < chains.count && channels % 16 == 0
      func run(_ input: Tensor, blockedInput: Bool, blockedOutput: Bool) -> Tensor? {
        input.convolutionBlock(
          weight: chain.weight, bias: chain.bias, stride: chain.stride, padding: chain.padding, norm: chain.norm,
          pool: chain.pool, blockedInput: blockedInput, blockedOutput: blockedOutput)
      }
      if let out = run(y, blockedInput: blocked, blockedOutput: link) {
        (y, blocked) = (out, link)
      } else {
        // Declined as linked: back to NCHW, and the chain as it runs alone.
        if blocked { (y, blocked) = (y.fromChannelBlocks16(), false) }
        guard let out = run(y, blockedInput: false, blockedOutput: false) else { break }
        y = out
      }
      count += 1
    }
    if blocked { y = y.fromChannelBlocks16() }
    return count == 0 ? nil : (y, count)
  }

  /// The NCHW tensor whose elements self holds in 16-channel blocks (see `convolutionBlock`'s
  /// `blockedInput`), recorded: its gradient goes back into blocks.
  func fromChannelBlocks16() -> Tensor {
    let out = Tensor(shape: shape) { out in
      storage.withUnsafeBufferPointer { ChannelBlocks16.unblock($0, into: out, shape: shape) }
    }
    return out.recording([self], half: .always) { g in
      [Tensor(shape: g.shape) { dx in g.storage.withUnsafeBufferPointer { ChannelBlocks16.block($0, into: dx, shape: g.shape) } }]
    }
  }
}

/// Moves between NCHW and oneDNN's nChw16c (C a multiple of 16).
enum ChannelBlocks16 {
  static func unblock(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>, shape: [Int]) {
    move(x, y, shape: shape, toBlocks: false)
  }

  static func block(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>, shape: [Int]) {
    move(x, y, shape: shape, toBlocks: true)
  }

  private static func move(
    _ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>, shape: [Int], toBlocks: Bool
  ) {
    let (n, c, plane) = (shape[0], shape[1], shape[2] * shape[3])
    precondition(c % 16 == 0 && x.count == y.count && x.count == n * c * plane, "16-channel blocks of \(shape)")
    for image in 0..<n {
      for group in 0..<(c / 16) {
        let blockBase = (image * c / 16 + group) * plane * 16
        for lane in 0..<16 {
          let planeBase = (image * c + group * 16 + lane) * plane
          for p in 0..<plane {
            if toBlocks { y[blockBase + p * 16 + lane] = x[planeBase + p] } else { y[planeBase + p] = x[blockBase + p * 16 + lane] }
          }
        }
      }
    }
  }
}
