import CDNNL

// 2-D convolution: by oneDNN's primitives (`Convolution.backend == .onednn`, the default; see
// OneDNN.swift), or lowered to matrix products (im2col), the reference. For im2col the batch is
// processed in chunks of a few images: each chunk's patches are unrolled into a matrix X, so the
// forward pass and each half of the gradient is one sgemm per chunk, wide enough for sgemm to
// run at full speed while the chunk's buffers stay in cache.

extension Tensor {
  /// 2-D cross-correlation of a batch of images with a bank of filters, plus one bias per
  /// output channel, with zero padding (`torch.nn.functional.conv2d(x, weight, bias, stride,
  /// padding)`):
  ///
  ///     y[n, o, i, j] = b[o] + Σ_c Σ_u Σ_v w[o, c, u, v] · x[n, c, i·s − p + u, j·s − p + v]
  ///
  /// where x reads as 0 outside the image.
  ///
  /// Shape:
  /// - self: `[N, C, H, W]`
  /// - weight: `[O, C, kh, kw]`
  /// - bias: `[O]`
  /// - result: `[N, O, Ho, Wo]` with Ho = ⌊(H + 2p − kh) / s⌋ + 1, Wo = ⌊(W + 2p − kw) / s⌋ + 1
  ///
  /// Lowering: for a chunk of images, im2col unrolls their patches into X `[C·kh·kw, images·Ho·Wo]`,
  /// so that with W viewed as `[O, C·kh·kw]` the chunk's output is the product Y = W·X
  /// `[O, images·Ho·Wo]`, scattered to NCHW with the bias added. With G the chunk's output
  /// gradient gathered to `[O, images·Ho·Wo]`: ∂W = Σ_chunks G·Xᵀ, ∂b = G summed over its
  /// columns, and ∂x = col2im(Wᵀ·G), where col2im (the adjoint of im2col) adds each column
  /// entry back onto the pixel it was copied from. X is kept from the forward pass for ∂W, as
  /// binary16 under mixed precision (widened chunk by chunk before its sgemm).
  public func conv2d(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
    precondition(rank == 4, "conv2d input must be [N, C, H, W], got \(shape)")
    precondition(
      weight.rank == 4 && weight.shape[1] == shape[1],
      "conv2d weight must be [O, \(shape[1]), kh, kw], got \(weight.shape)")
    precondition(stride >= 1 && padding >= 0, "conv2d needs stride ≥ 1 and padding ≥ 0")
    let geometry = WindowGeometry(
      inputShape: shape, kernelHeight: weight.shape[2], kernelWidth: weight.shape[3],
      stride: stride, padding: padding)
    let outChannels = weight.shape[0]
    if let bias {
      precondition(bias.shape == [outChannels], "conv2d bias must be [\(outChannels)], got \(bias.shape)")
    }
    if Convolution.backend == .onednn,
      let out = oneDNNConv2d(weight: weight, bias: bias, geometry: geometry, outChannels: outChannels)
    {
      return out
    }
    let chunks = ConvolutionChunks(geometry, outChannels: outChannels)
    let patch = geometry.patchSize
    let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
    // X of every chunk is kept for ∂W when the op is recorded: Float, or binary16 under mixed
    // precision (each chunk unrolled into Float scratch, multiplied, then rounded into the
    // saved buffer). Unrecorded, each chunk is unrolled into the scratch and forgotten.
    let records = GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad })
    let savesHalf = records && MixedPrecision.isEnabled
    var saved = SavedColumns(
      count: records ? patch * chunks.totalColumns : 0, half: savesHalf,
      scratch: records && !savesHalf ? 0 : patch * chunks.maxColumns)

    let out = Tensor(shape: [geometry.batch, outChannels, geometry.outputHeight, geometry.outputWidth]) {
      out in
      // Y = W·X per chunk into `product`, then y[n, o, :] = Y[o, columns of image n] + b[o].
      var product = [Float](repeating: 0, count: outChannels * chunks.maxColumns)
      let b = bias?.storage ?? [Float](repeating: 0, count: outChannels)
      storage.withUnsafeBufferPointer { x in
        weight.storage.withUnsafeBufferPointer { w in
          product.withUnsafeMutableBufferPointer { y in
            for k in 0..<chunks.count {
              let width = chunks.columns(k)
              saved.writing(chunk: chunks.columnsOffset(k), count: patch * width) { cols in
                chunks.unroll(k, from: x.baseAddress!, into: cols)
                sgemm(
                  false, false, m: outChannels, n: width, k: patch, alpha: 1, w.baseAddress!,
                  lda: patch, cols, ldb: width, beta: 0, y.baseAddress!, ldc: width)
              }
              chunks.scatter(k, y.baseAddress!, adding: b, into: out.baseAddress!)
            }
          }
        }
      }
    }
    saved.releaseScratch()
    let kept = saved

    return out.recording(inputs, half: .always, savedBytes: kept.byteCount) { g in
      var gathered = [Float](repeating: 0, count: outChannels * chunks.maxColumns)
      var columnGradient = [Float](repeating: 0, count: self.requiresGrad ? patch * chunks.maxColumns : 0)
      var biasSums = [Double](repeating: 0, count: outChannels)
      var dx = TensorBufferPool.array(repeating: 0, count: self.requiresGrad ? self.count : 0)
      let gradWeight = Tensor.zeros(weight.shape)
      var columns = kept  // a copy whose scratch (for widening half chunks) is this call's own
      g.storage.withUnsafeBufferPointer { gp in
        weight.storage.withUnsafeBufferPointer { w in
          gathered.withUnsafeMutableBufferPointer { gm in
            columnGradient.withUnsafeMutableBufferPointer { dc in
              dx.withUnsafeMutableBufferPointer { d in
                gradWeight.storage.withUnsafeMutableBufferPointer { dw in
                  for k in 0..<chunks.count {
                    let width = chunks.columns(k)
                    // G [O, images·Ho·Wo] of this chunk, and its row sums for ∂b.
                    chunks.gather(k, from: gp.baseAddress!, into: gm.baseAddress!, rowSums: &biasSums)
                    if weight.requiresGrad {  // ∂W += G·Xᵀ
                      columns.reading(chunk: chunks.columnsOffset(k), count: patch * width) { cols in
                        sgemm(
                          false, true, m: outChannels, n: patch, k: width, alpha: 1, gm.baseAddress!,
                          lda: width, cols, ldb: width, beta: k == 0 ? 0 : 1, dw.baseAddress!, ldc: patch)
                      }
                    }
                    if self.requiresGrad {  // ∂x = col2im(Wᵀ·G)
                      sgemm(
                        true, false, m: patch, n: width, k: outChannels, alpha: 1, w.baseAddress!,
                        lda: patch, gm.baseAddress!, ldb: width, beta: 0, dc.baseAddress!, ldc: width)
                      chunks.fold(k, dc.baseAddress!, into: d.baseAddress!)
                    }
                  }
                }
              }
            }
          }
        }
      }
      let gradBias: Tensor? =
        bias?.requiresGrad == true ? Tensor(shape: [outChannels], storage: biasSums.map { Float($0) }) : nil
      return [
        self.requiresGrad ? Tensor(shape: self.shape, storage: dx) : nil,
        weight.requiresGrad ? gradWeight : nil,
      ] + (bias == nil ? [] : [gradBias])
    }
  }
}

extension Tensor {
  /// `conv2d` by oneDNN, or nil when oneDNN cannot create primitives for this shape (the
  /// caller falls back to im2col). Nothing beyond the inputs is kept for backward: the
  /// backward-weights primitive reads x itself (binary16 under mixed precision, widened for the
  /// call), where im2col keeps the unrolled X, kh·kw times larger.
  fileprivate func oneDNNConv2d(weight: Tensor, bias: Tensor?, geometry: WindowGeometry, outChannels: Int) -> Tensor? {
    // Under bfloat16 autocast, decided here for the backward pass too; a shape oneDNN cannot
    // run in bfloat16 runs in Float.
    let keys = Convolution.bfloat16Choices(inChannels: geometry.channels).map {
      OneDNNConvolutionKey(
        geometry, outChannels: outChannels, hasBias: bias != nil, blocked: Convolution.blockedLayouts, bf16: $0)
    }
    let outShape = [geometry.batch, outChannels, geometry.outputHeight, geometry.outputWidth]
    let computed = oneDNNConvolutions.borrowFirst(keys) { conv in
      Tensor(shape: outShape) { y in
        storage.withUnsafeBufferPointer { x in
          weight.storage.withUnsafeBufferPointer { w in
            (bias?.storage).withUnsafeOptionalBuffer { b in
              checkOneDNN(
                distill_conv_forward(conv.handle, x.baseAddress, w.baseAddress, b, y.baseAddress), "convolution forward")
            }
          }
        }
      }
    }
    guard let (key, out) = computed else { return nil }
    let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
    return out.recording(inputs, half: .always) { g in
      var dx: Tensor?
      var dw: Tensor?
      var db: Tensor?
      let done: Void? = oneDNNConvolutions.borrow(key) { conv in
        g.storage.withUnsafeBufferPointer { dy in
          if self.requiresGrad {
            dx = Tensor(shape: self.shape) { dx in
              weight.storage.withUnsafeBufferPointer { w in
                checkOneDNN(
                  distill_conv_backward_data(conv.handle, w.baseAddress, dy.baseAddress, dx.baseAddress),
                  "convolution backward data")
              }
            }
          }
          if weight.requiresGrad || bias?.requiresGrad == true {
            var biasGradient = [Float](repeating: 0, count: bias == nil ? 0 : outChannels)
            let gradWeight = Tensor(shape: weight.shape) { dw in
              self.storage.withUnsafeBufferPointer { x in
                biasGradient.withUnsafeMutableBufferPointer { b in
                  checkOneDNN(
                    distill_conv_backward_weights(
                      conv.handle, x.baseAddress, dy.baseAddress, dw.baseAddress, bias == nil ? nil : b.baseAddress),
                    "convolution backward weights")
                }
              }
            }
            if weight.requiresGrad { dw = gradWeight }
            if bias?.requiresGrad == true { db = Tensor(shape: [outChannels], storage: biasGradient) }
          }
        }
      }
      precondition(done != nil, "oneDNN refused a convolution shape it had accepted for the forward pass")
      return [dx, dw] + (bias == nil ? [] : [db])
    }
  }
}

/// The batch normalisation inside a convolution chain (`Tensor.convolutionBlock`), with the
/// arguments of `Tensor.batchNorm`: γ (`weight`), β (`bias`), the running statistics (updated
/// in place in training), the mode, the momentum and ε.
public struct ChainBatchNorm {
  public let weight, bias, runningMean, runningVariance: Tensor
  public let training: Bool
  public let momentum, epsilon: Float

  public init(
    weight: Tensor, bias: Tensor, runningMean: Tensor, runningVariance: Tensor, training: Bool, momentum: Float,
    epsilon: Float
  ) {
    (self.weight, self.bias, self.runningMean, self.runningVariance) = (weight, bias, runningMean, runningVariance)
    (self.training, self.momentum, self.epsilon) = (training, momentum, epsilon)
  }
}

extension Tensor {
  /// `relu(conv2d(x, weight, bias, stride, padding))`, batch-normalised between the two when
  /// `norm` is given (`batchNorm(weight:bias:runningMean:runningVariance:training:momentum:epsilon:)`,
  /// running statistics updated alike), max-pooled when `pool` is given
  /// (`maxPool2d(kernelSize:stride:padding:)`), as one oneDNN chain whose convolution output
  /// never leaves oneDNN's blocked layout: only x, the weights and the (pooled) result are
  /// NCHW. Backward keeps, in that layout, the ReLU's output (with a normalisation: the
  /// convolution's output, the batch statistics and the ReLU's mask) and the pool's workspace
  /// (argmax).
  ///
  /// Returns nil, to run the ops one by one, when the chain cannot run here: the convolution
  /// backend is im2col, oneDNN refuses the shapes, or a normalisation in evaluation mode would
  /// have to pass a gradient (the chain normalises with given statistics in forward passes
  /// only). Under bfloat16 autocast the convolutions read bfloat16; under f16 mixed precision
  /// the result is stored as binary16 and so is the kept activation, as the ops one by one
  /// would keep theirs. The results equal those of the ops one by one within rounding (tested).
  public func convolutionBlock(
    weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0, norm: ChainBatchNorm? = nil,
    pool: (kernelSize: Int, stride: Int, padding: Int)?
  ) -> Tensor? {
    convolutionBlock(
      weight: weight, bias: bias, stride: stride, padding: padding, norm: norm, pool: pool, blockedInput: false,
      blockedOutput: false)
  }

  /// `convolutionBlock`, with self (`blockedInput`) or the result (`blockedOutput`) holding its
  /// elements in oneDNN's 16-channel blocks (nChw16c: element (n, c, h, w) at
  /// ((n·C/16 + c/16)·H·W + h·W + w)·16 + c%16, C a multiple of 16) instead of NCHW; their
  /// gradients likewise. Only `convolutionChains` passes such tensors, from one chain to the next.
  func convolutionBlock(
    weight: Tensor, bias: Tensor?, stride: Int, padding: Int, norm: ChainBatchNorm?,
    pool: (kernelSize: Int, stride: Int, padding: Int)?, blockedInput: Bool, blockedOutput: Bool
  ) -> Tensor? {
    guard Convolution.backend == .onednn, rank == 4, weight.rank == 4,
      weight.shape[1] == shape[1], stride >= 1, padding >= 0,
      shape[2] + 2 * padding >= weight.shape[2], shape[3] + 2 * padding >= weight.shape[3]
    else { return nil }
    let outChannels = weight.shape[0]
    if let bias, bias.shape != [outChannels] { return nil }
    let geometry = WindowGeometry(
      inputShape: shape, kernelHeight: weight.shape[2], kernelWidth: weight.shape[3], stride: stride,
      padding: padding)
    var outShape = [geometry.batch, outChannels, geometry.outputHeight, geometry.outputWidth]
    if let pool {
      // As maxPool2d: padding at most half the kernel, a window that fits.
      guard pool.kernelSize >= 1, pool.stride >= 1, pool.padding >= 0, pool.padding <= pool.kernelSize / 2,
        geometry.outputHeight + 2 * pool.padding >= pool.kernelSize,
        geometry.outputWidth + 2 * pool.padding >= pool.kernelSize
      else { return nil }
      outShape[2] = (geometry.outputHeight + 2 * pool.padding - pool.kernelSize) / pool.stride + 1
      outShape[3] = (geometry.outputWidth + 2 * pool.padding - pool.kernelSize) / pool.stride + 1
    }
    var inputs = bias.map { [self, weight, $0] } ?? [self, weight]
    var normMode = Int32(DISTILL_BLOCK_NO_NORM)
    if let norm {
      let vectors = [norm.weight, norm.bias, norm.runningMean, norm.runningVariance]
      guard vectors.allSatisfy({ $0.shape == [outChannels] }) else { return nil }
      inputs += [norm.weight, norm.bias]
      if norm.training {
        // As batchNorm: more than one value per channel.
        guard geometry.batch * geometry.outputPlane > 1 else { return nil }
        normMode = Int32(DISTILL_BLOCK_NORM_TRAINING)
      } else {
        guard !(GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad })) else { return nil }
        normMode = Int32(DISTILL_BLOCK_NORM_INFERENCE)
      }
    }
    // Under bfloat16 autocast, decided here for the backward pass too; in Float where oneDNN
    // cannot run the chain in bfloat16.
    let keys = Convolution.bfloat16Choices(inChannels: geometry.channels).map {
      OneDNNBlockKey(
        convolution: OneDNNConvolutionKey(
          geometry, outChannels: outChannels, hasBias: bias != nil, blocked: true, bf16: $0),
        poolKernel: pool?.kernelSize ?? 0, poolStride: pool?.stride ?? 0, poolPadding: pool?.padding ?? 0,
        norm: normMode, epsilon: norm?.epsilon ?? 0, inputBlocked: blockedInput, outputBlocked: blockedOutput)
    }
    let kept = KeptBuffers()
    // The normalisation's statistics: the batch's (written by the forward pass) in training,
    // the running ones otherwise.
    var mean = norm.map { $0.training ? [Float](repeating: 0, count: outChannels) : $0.runningMean.storage } ?? []
    var variance =
      norm.map { $0.training ? [Float](repeating: 0, count: outChannels) : $0.runningVariance.storage } ?? []
    let computed = oneDNNBlocks.borrowFirst(keys) { block -> Tensor in
      kept.first = TensorBufferPool.array(count: block.activationCount) { _ in }
      kept.second = TensorBufferPool.array(count: block.workspaceCount) { _ in }
      kept.third = TensorBufferPool.array(count: block.normWorkspaceCount) { _ in }
      return Tensor(shape: outShape) { out in
        storage.withUnsafeBufferPointer { x in
          weight.storage.withUnsafeBufferPointer { w in
            kept.first.withUnsafeMutableBufferPointer { a in
              kept.second.withUnsafeMutableBufferPointer { ws in
                let b = bias?.storage
                let status = b.withUnsafeOptionalBuffer { bp in
                  withChainNorm(norm, mean: &mean, variance: &variance, workspace: &kept.third) { normArguments in
                    withChainScratch(block, needed: norm != nil) { scratch in
                      distill_block_forward(
                        block.handle, x.baseAddress, w.baseAddress, bp, normArguments, a.baseAddress,
                        ws.baseAddress, scratch, out.baseAddress)
                    }
                  }
                }
                checkOneDNN(status, "convolution block forward")
              }
            }
          }
        }
      }
    }
    guard let (key, out) = computed else { return nil }
    if let norm, norm.training {
      updateRunningStatistics(
        norm, mean: mean, variance: variance, valuesPerChannel: geometry.batch * geometry.outputPlane)
    }
    // Under f16 mixed precision the kept activation is rounded to binary16 like the
    // activations other ops keep (without a normalisation only its sign matters).
    if MixedPrecision.isEnabled && GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
      kept.firstAsHalf = HalfPrecision.halfBits(from: kept.first)
      TensorBufferPool.give(kept.first)
      kept.first = []
    }
    let savedBytes =
      (kept.first.count + kept.second.count + kept.third.count + mean.count + variance.count)
      * MemoryLayout<Float>.stride + (kept.firstAsHalf?.count ?? 0) * 2
    let (keptMean, keptVariance) = (mean, variance)
    return out.recording(inputs, half: .always, savedBytes: savedBytes) { g in
      var dx: Tensor?
      var dw: Tensor?
      var db: Tensor?
      var normGradients: [Tensor?] = []
      let wantsWeights = weight.requiresGrad || bias?.requiresGrad == true
      let done: Void? = oneDNNBlocks.borrow(key) { block in
        var gradWeight = wantsWeights ? TensorBufferPool.array(count: weight.count) { _ in } : []
        var gradBias = [Float](repeating: 0, count: wantsWeights && bias != nil ? outChannels : 0)
        var gradInput = self.requiresGrad ? TensorBufferPool.array(count: self.count) { _ in } : []
        var gradScale = [Float](repeating: 0, count: norm == nil ? 0 : outChannels)
        var gradShift = gradScale
        let activation = kept.firstAsHalf.map { HalfPrecision.floats(fromHalfBits: $0) } ?? kept.first
        var (mean, variance) = (keptMean, keptVariance)
        g.storage.withUnsafeBufferPointer { dout in
          self.storage.withUnsafeBufferPointer { x in
            weight.storage.withUnsafeBufferPointer { w in
              activation.withUnsafeBufferPointer { a in
                kept.second.withUnsafeBufferPointer { ws in
                  gradInput.withUnsafeMutableBufferPointer { dxp in
                    gradWeight.withUnsafeMutableBufferPointer { dwp in
                      gradBias.withUnsafeMutableBufferPointer { dbp in
                        gradScale.withUnsafeMutableBufferPointer { dsp in
                          gradShift.withUnsafeMutableBufferPointer { dhp in
                            let status = withChainNorm(
                              norm, mean: &mean, variance: &variance, workspace: &kept.third
                            ) { normArguments in
                              withChainScratch(block) { scratch in
                                distill_block_backward(
                                  block.handle, x.baseAddress, w.baseAddress, normArguments, a.baseAddress,
                                  ws.baseAddress, scratch, dout.baseAddress, self.requiresGrad ? dxp.baseAddress : nil,
                                  wantsWeights ? dwp.baseAddress : nil,
                                  wantsWeights && bias != nil ? dbp.baseAddress : nil, dsp.baseAddress, dhp.baseAddress)
                              }
                            }
                            checkOneDNN(status, "convolution block backward")
                          }
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
        if self.requiresGrad { dx = Tensor(shape: self.shape, storage: gradInput) }
        if weight.requiresGrad { dw = Tensor(shape: weight.shape, storage: gradWeight) }
        if bias?.requiresGrad == true { db = Tensor(shape: [outChannels], storage: gradBias) }
        if let norm {
          normGradients = [
            norm.weight.requiresGrad ? Tensor(shape: [outChannels], storage: gradScale) : nil,
            norm.bias.requiresGrad ? Tensor(shape: [outChannels], storage: gradShift) : nil,
          ]
        }
      }
      precondition(done != nil, "oneDNN refused a convolution block it had accepted for the forward pass")
      return [dx, dw] + (bias == nil ? [] : [db]) + normGradients
    }
  }
}

/// Runs `body` with the chain's normalisation arguments (nil without a normalisation): γ and β
/// from `norm`, the statistics and the ReLU mask from the buffers given.
private func withChainNorm(
  _ norm: ChainBatchNorm?, mean: inout [Float], variance: inout [Float], workspace: inout [Float],
  _ body: (UnsafePointer<distill_block_norm>?) -> Int32
) -> Int32 {
  guard let norm else { return body(nil) }
  return norm.weight.storage.withUnsafeBufferPointer { scale in
    norm.bias.storage.withUnsafeBufferPointer { shift in
      mean.withUnsafeMutableBufferPointer { m in
        variance.withUnsafeMutableBufferPointer { v in
          workspace.withUnsafeMutableBufferPointer { ws in
            var arguments = distill_block_norm(
              scale: scale.baseAddress, shift: shift.baseAddress, mean: m.baseAddress, variance: v.baseAddress,
              workspace: UnsafeMutableRawPointer(ws.baseAddress))
            return body(&arguments)
          }
        }
      }
    }
  }
}

/// Runs `body` with a scratch buffer of the chain's activation size from `TensorBufferPool`
/// (given back afterwards; nil when not `needed`), so cached chains hold no large buffer
/// between calls.
private func withChainScratch(
  _ block: OneDNNBlock, needed: Bool = true, _ body: (UnsafeMutableRawPointer?) -> Int32
) -> Int32 {
  guard needed else { return body(nil) }
  var scratch = TensorBufferPool.array(count: block.activationCount) { _ in }
  defer { TensorBufferPool.give(scratch) }
  return scratch.withUnsafeMutableBytes { body($0.baseAddress) }
}

/// running = (1 − momentum)·running + momentum·batch statistic, with the unbiased variance
/// σ²·m/(m − 1) for the running variance, as `batchNorm` updates them.
private func updateRunningStatistics(
  _ norm: ChainBatchNorm, mean: [Float], variance: [Float], valuesPerChannel m: Int
) {
  let momentum = norm.momentum
  norm.runningMean.storage.withUnsafeMutableBufferPointer { rm in
    norm.runningVariance.storage.withUnsafeMutableBufferPointer { rv in
      for c in 0..<mean.count {
        let unbiased = Float(Double(variance[c]) * Double(m) / Double(m - 1))
        rm[c] = (1 - momentum) * rm[c] + momentum * mean[c]
        rv[c] = (1 - momentum) * rv[c] + momentum * unbiased
      }
    }
  }
}

/// Buffers an op keeps for its backward pass outside any tensor; they go back to
/// `TensorBufferPool` when the op's record (or the forward pass that did not record) ends.
final class KeptBuffers {
  // Properties rather than an array, so several can be written at once.
  var first: [Float] = []
  var second: [Float] = []
  var third: [Float] = []
  /// `first` rounded to binary16, kept instead of it under f16 mixed precision.
  var firstAsHalf: [UInt16]?
  deinit {
    TensorBufferPool.give(first)
    TensorBufferPool.give(second)
    TensorBufferPool.give(third)
  }
}

extension Optional where Wrapped == [Float] {
  /// Runs `body` with the array's base address, or nil for nil.
  fileprivate func withUnsafeOptionalBuffer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
    switch self {
    case .some(let array): return array.withUnsafeBufferPointer { body($0.baseAddress) }
    case .none: return body(nil)
    }
  }
}

/// The split of a batch into chunks of consecutive images for `conv2d`, and the per-chunk
/// copies between NCHW tensors and the chunk's matrices.
///
/// A chunk holds enough images for about 2048 output columns: sgemm of these shapes runs at
/// full speed from about 1500 columns (measured: conv 32→64 on 14×14 at batch 128 takes 5.8 ms
/// as one product, 5.9 ms in chunks of 8 images, 7.9 ms image by image), while a chunk's
/// matrices (a few MB at most for layers of this size) stay in cache between the product and
/// the copies around it.
struct ConvolutionChunks {
  let geometry: WindowGeometry
  let outChannels: Int
  /// Images per chunk (the last chunk may hold fewer).
  let imagesPerChunk: Int
  let count: Int

  init(_ geometry: WindowGeometry, outChannels: Int) {
    self.geometry = geometry
    self.outChannels = outChannels
    let plane = max(geometry.outputPlane, 1)
    imagesPerChunk = max(1, min(geometry.batch, (2048 + plane - 1) / plane))
    count = (geometry.batch + imagesPerChunk - 1) / imagesPerChunk
  }

  /// The images of chunk k.
  func images(_ k: Int) -> Range<Int> {
    k * imagesPerChunk..<min((k + 1) * imagesPerChunk, geometry.batch)
  }
  /// images·Ho·Wo for chunk k: the columns of its matrices.
  func columns(_ k: Int) -> Int { images(k).count * geometry.outputPlane }
  /// The columns of a full chunk.
  var maxColumns: Int { imagesPerChunk * geometry.outputPlane }
  /// N·Ho·Wo.
  var totalColumns: Int { geometry.batch * geometry.outputPlane }
  /// Where chunk k's X starts in the unrolled buffer of all chunks.
  func columnsOffset(_ k: Int) -> Int { geometry.patchSize * k * maxColumns }

  /// Writes chunk k's X `[C·kh·kw, columns(k)]` from the batch `x` `[N, C, H, W]` to `cols`.
  func unroll(_ k: Int, from x: UnsafePointer<Float>, into cols: UnsafeMutablePointer<Float>) {
    let imageSize = geometry.channels * geometry.height * geometry.width
    let first = images(k).lowerBound
    for n in images(k) {
      im2col(x + n * imageSize, geometry, cols + (n - first) * geometry.outputPlane, rowStride: columns(k))
    }
  }

  /// y[n, o, :] = Y[o, columns of image n] + b[o] for the images of chunk k, from the chunk's
  /// product Y `[O, columns(k)]`.
  func scatter(
    _ k: Int, _ product: UnsafePointer<Float>, adding bias: [Float], into y: UnsafeMutablePointer<Float>
  ) {
    let (plane, width, first) = (geometry.outputPlane, columns(k), images(k).lowerBound)
    for n in images(k) {
      for o in 0..<outChannels {
        let source = product + o * width + (n - first) * plane
        let destination = y + (n * outChannels + o) * plane
        let b = bias[o]
        for q in 0..<plane { destination[q] = source[q] + b }
      }
    }
  }

  /// The adjoint of `scatter`: G[o, columns of image n] = g[n, o, :] for the images of chunk
  /// k, adding each row's sum to `rowSums[o]`.
  func gather(
    _ k: Int, from g: UnsafePointer<Float>, into gathered: UnsafeMutablePointer<Float>,
    rowSums: inout [Double]
  ) {
    let (plane, width, first) = (geometry.outputPlane, columns(k), images(k).lowerBound)
    for n in images(k) {
      for o in 0..<outChannels {
        let source = g + (n * outChannels + o) * plane
        let destination = gathered + o * width + (n - first) * plane
        var total: Float = 0
        for q in 0..<plane {
          destination[q] = source[q]
          total += source[q]
        }
        rowSums[o] += Double(total)
      }
    }
  }

  /// Adds the column gradient of chunk k, `[C·kh·kw, columns(k)]`, onto the images of `dx`
  /// `[N, C, H, W]` (col2im image by image).
  func fold(_ k: Int, _ columnGradient: UnsafeMutablePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
    let imageSize = geometry.channels * geometry.height * geometry.width
    let first = images(k).lowerBound
    for n in images(k) {
      col2im(
        columnGradient + (n - first) * geometry.outputPlane, geometry, dx + n * imageSize,
        rowStride: columns(k))
    }
  }
}

/// The sizes of a kernel window swept over an NCHW batch, shared by convolution and pooling.
/// Output pixel (i, j) reads input pixels (i·s − p + u, j·s − p + v) for 0 ≤ u < kh, 0 ≤ v < kw.
struct WindowGeometry {
  let batch, channels, height, width: Int
  let kernelHeight, kernelWidth, stride, padding: Int
  let outputHeight, outputWidth: Int

  init(inputShape: [Int], kernelHeight: Int, kernelWidth: Int, stride: Int, padding: Int) {
    precondition(inputShape.count == 4, "expected an [N, C, H, W] input, got \(inputShape)")
    (batch, channels, height, width) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
    (self.kernelHeight, self.kernelWidth) = (kernelHeight, kernelWidth)
    (self.stride, self.padding) = (stride, padding)
    precondition(
      height + 2 * padding >= kernelHeight && width + 2 * padding >= kernelWidth,
      "a \(kernelHeight)×\(kernelWidth) kernel does not fit \(inputShape) with padding \(padding)")
    outputHeight = (height + 2 * padding - kernelHeight) / stride + 1
    outputWidth = (width + 2 * padding - kernelWidth) / stride + 1
  }

  /// C·kh·kw, the length of one unrolled patch.
  var patchSize: Int { channels * kernelHeight * kernelWidth }
  /// Ho·Wo.
  var outputPlane: Int { outputHeight * outputWidth }

  /// The output indices o < `outputExtent` whose input index o·s − p + `offset` lies in
  /// [0, `inputExtent`): the rows (or columns) that kernel row (or column) `offset` sees
  /// inside the image rather than in the padding.
  func insideRange(offset: Int, inputExtent: Int, outputExtent: Int) -> Range<Int> {
    let last = inputExtent - 1 + padding - offset  // o·s ≤ last
    guard last >= 0 else { return 0..<0 }
    let high = min(outputExtent, last / stride + 1)
    let low = offset >= padding ? 0 : (padding - offset + stride - 1) / stride
    return min(low, high)..<high
  }
}

/// Unrolls every kh×kw patch of one image `x` `[C, H, W]` into a column of `cols`
/// `[C·kh·kw, Ho·Wo]` (rows `rowStride` apart): row (c, u, v), column (i, j) holds
/// x[c, i·s − p + u, j·s − p + v], or 0 in the padding. Writes every element of those rows.
func im2col(
  _ x: UnsafePointer<Float>, _ geo: WindowGeometry, _ cols: UnsafeMutablePointer<Float>,
  rowStride: Int
) {
  let (s, p) = (geo.stride, geo.padding)
  let (width, outH, outW) = (geo.width, geo.outputHeight, geo.outputWidth)
  let sameWidth = s == 1 && outW == width
  for c in 0..<geo.channels {
    let image = x + c * geo.height * width
    for u in 0..<geo.kernelHeight {
      let rows = geo.insideRange(offset: u, inputExtent: geo.height, outputExtent: outH)
      for v in 0..<geo.kernelWidth {
        let inside = geo.insideRange(offset: v, inputExtent: width, outputExtent: outW)
        let shift = v - p  // input column = j·s + shift
        let d = cols + ((c * geo.kernelHeight + u) * geo.kernelWidth + v) * rowStride
        guard !rows.isEmpty && !inside.isEmpty else {
          d.update(repeating: 0, count: outH * outW)
          continue
        }
        d.update(repeating: 0, count: rows.lowerBound * outW)
        d.advanced(by: rows.upperBound * outW).update(repeating: 0, count: (outH - rows.upperBound) * outW)
        if sameWidth {
          // Output (i, j) reads input element (i + u − p)·W + j + shift = its own index
          // i·W + j plus a constant: the inside rows are one shifted block copy, after which
          // the |shift| columns at one edge that wrapped onto the neighbouring row are zeroed.
          let offset = (u - p) * width + shift
          let start = rows.lowerBound * outW + inside.lowerBound
          let end = (rows.upperBound - 1) * outW + inside.upperBound
          d.advanced(by: start).update(from: image + (start + offset), count: end - start)
          for i in rows {
            let row = d + i * outW
            for j in 0..<inside.lowerBound { row[j] = 0 }
            for j in inside.upperBound..<outW { row[j] = 0 }
          }
        } else {
          for i in rows {
            let (out, row) = (d + i * outW, image + (i * s - p + u) * width)
            for j in 0..<inside.lowerBound { out[j] = 0 }
            for j in inside { out[j] = row[j * s + shift] }
            for j in inside.upperBound..<outW { out[j] = 0 }
          }
        }
      }
    }
  }
}

/// The adjoint of `im2col`: adds each entry of `cols` `[C·kh·kw, Ho·Wo]` (rows `rowStride`
/// apart) onto the pixel of the image `dx` `[C, H, W]` it was copied from; entries that
/// `im2col` read from the padding are dropped. Accumulates into `dx`, and overwrites those
/// padding entries of `cols` with 0 (it is scratch space).
func col2im(
  _ cols: UnsafeMutablePointer<Float>, _ geo: WindowGeometry, _ dx: UnsafeMutablePointer<Float>,
  rowStride: Int
) {
  let (s, p) = (geo.stride, geo.padding)
  let (width, outH, outW) = (geo.width, geo.outputHeight, geo.outputWidth)
  let sameWidth = s == 1 && outW == width
  for c in 0..<geo.channels {
    let image = dx + c * geo.height * width
    for u in 0..<geo.kernelHeight {
      let rows = geo.insideRange(offset: u, inputExtent: geo.height, outputExtent: outH)
      for v in 0..<geo.kernelWidth {
        let inside = geo.insideRange(offset: v, inputExtent: width, outputExtent: outW)
        guard !rows.isEmpty && !inside.isEmpty else { continue }
        let shift = v - p
        let d = cols + ((c * geo.kernelHeight + u) * geo.kernelWidth + v) * rowStride
        if sameWidth {
          // As in im2col, one shifted block; the edge entries that would wrap onto the
          // neighbouring row are zeroed first, so they add nothing.
          for i in rows {
            let row = d + i * outW
            for j in 0..<inside.lowerBound { row[j] = 0 }
            for j in inside.upperBound..<outW { row[j] = 0 }
          }
          let offset = (u - p) * width + shift
          let start = rows.lowerBound * outW + inside.lowerBound
          let end = (rows.upperBound - 1) * outW + inside.upperBound
          // Pointers to both starts, so the loop indexes with its counter alone: no overflow
          // check in it, and it vectorises.
          let (source, target) = (UnsafePointer(d + start), image + (start + offset))
          for k in 0..<(end - start) { target[k] += source[k] }
        } else {
          for i in rows {
            let (entries, row) = (d + i * outW, image + (i * s - p + u) * width)
            for j in inside { row[j * s + shift] += entries[j] }
          }
        }
      }
    }
  }
}
