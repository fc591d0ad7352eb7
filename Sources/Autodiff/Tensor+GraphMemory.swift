// What a recorded graph keeps alive for its backward pass, in bytes, for the memory figures of
// `distill bench` (f32 against f16-mixed).

/// The memory a recorded graph holds: its trainable leaves and everything else it keeps for
/// the backward pass.
public struct GraphMemory: Equatable, Sendable {
  /// Bytes of the leaves that require gradients (the parameters) the graph reads.
  public var parameterBytes: Int
  /// Bytes of every other tensor the graph holds (inputs, intermediate results, the output)
  /// plus what VJPs keep besides tensors (conv2d's unrolled patches, max-pool's argmax).
  public var activationBytes: Int
  /// parameterBytes + activationBytes.
  public var totalBytes: Int { parameterBytes + activationBytes }

  public init(parameterBytes: Int, activationBytes: Int) {
    self.parameterBytes = parameterBytes
    self.activationBytes = activationBytes
  }
}

extension Tensor {
  /// The bytes held by the graph that produced this tensor, this tensor included: called on a
  /// loss before `backward()`, the parameters plus saved activations of the step, at their
  /// peak. Tensors sharing one element buffer (`reshaped`) count once; a half-precision
  /// tensor counts 2 bytes per element, a Float one 4.
  public func graphMemory() -> GraphMemory {
    var memory = GraphMemory(parameterBytes: 0, activationBytes: 0)
    var seen = Set<ObjectIdentifier>()
    var buffers = Set<UnsafeRawPointer>()
    var stack: [Tensor] = [self]
    while let tensor = stack.popLast() {
      guard seen.insert(ObjectIdentifier(tensor)).inserted else { continue }
      let (start, bytes) = tensor.elementBuffer
      if let start, buffers.insert(start).inserted {
        if tensor.isLeaf && tensor.requiresGrad {
          memory.parameterBytes += bytes
        } else {
          memory.activationBytes += bytes
        }
      }
      if let node = tensor.node {
        memory.activationBytes += node.extraSavedBytes
        stack += node.inputs
      }
    }
    return memory
  }
}
