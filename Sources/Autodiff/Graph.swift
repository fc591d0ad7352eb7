/// The record of one operation: the tensors it read and its vector-Jacobian product.
///
/// Every op builds its output and, right there, a `Node` whose `vjp` maps the gradient of the
/// output (and the output itself) to the gradients of the inputs (`nil` for an input that
/// needs none). A node never holds its output: the output holds the node, and `backward()`
/// hands the output to `vjp`, so no reference cycle keeps a graph alive. The recorded
/// nodes form the tape: `backward()` visits them in reverse order of recording (a topological
/// order of the graph) and calls each `vjp` once.
final class Node {
  let inputs: [Tensor]
  let vjp: (_ outputGradient: Tensor, _ output: Tensor) -> [Tensor?]
  /// Bytes the VJP keeps besides its input tensors (conv2d's unrolled patches, max-pool's
  /// argmax), for `Tensor.graphMemory()`.
  var extraSavedBytes = 0

  init(inputs: [Tensor], vjp: @escaping (Tensor, Tensor) -> [Tensor?]) {
    self.inputs = inputs
    self.vjp = vjp
  }
}

/// Whether operations are recorded for differentiation in the current task or thread.
public enum GradMode {
  @TaskLocal static var isEnabled = true

  /// Whether operations are being recorded here.
  public static var isRecording: Bool { isEnabled }
}

/// Runs `body` without recording any operation (PyTorch's `torch.no_grad()`): for the teacher's
/// forward pass, for evaluation and for optimizer updates.
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
  try GradMode.$isEnabled.withValue(false) { try body() }
}

extension Tensor {
  /// Makes `output` record `vjp` when recording is on and any input requires a gradient.
  /// Returns `output` for chaining. Ops call this with the closure that maps the gradient of
  /// `output` to the gradients of `inputs`, in the same order.
  /// Under mixed precision (`withMixedPrecision`), a recorded output is stored as `half`
  /// says (see `HalfOutput`). `savedBytes` declares what `vjp` keeps besides its input tensors
  /// (see `Tensor.graphMemory()`).
  @discardableResult
  func recording(
    _ inputs: [Tensor], half: HalfOutput = .promote, savedBytes: Int = 0,
    vjp: @escaping (Tensor) -> [Tensor?]
  ) -> Tensor {
    recordingUsingOutput(inputs, half: half, savedBytes: savedBytes) { g, _ in vjp(g) }
  }

  /// Like `recording(_:vjp:)` for a VJP that reads the op's output (eˣ, softmax, …): the
  /// output is passed in rather than captured, since a closure that captured it would form a
  /// cycle (output → node → closure → output) and leak every recorded graph.
  @discardableResult
  func recordingUsingOutput(
    _ inputs: [Tensor], half: HalfOutput = .promote, savedBytes: Int = 0,
    vjp: @escaping (_ outputGradient: Tensor, _ output: Tensor) -> [Tensor?]
  ) -> Tensor {
    if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
      requiresGrad = true
      node = Node(inputs: inputs, vjp: vjp)
      node?.extraSavedBytes = savedBytes
      if MixedPrecision.isEnabled {
        switch half {
        case .always: storeAsHalf()
        case .promote:
          if inputs.allSatisfy(\.isHalf) { storeAsHalf() }
        case .never: break
        }
      }
    }
    return self
  }

  /// Whether this tensor is a leaf of the graph: it was not produced by a recorded operation.
  public var isLeaf: Bool { node == nil }

  /// Reverse-mode differentiation from this scalar: adds d(self)/d(leaf) into `grad` of every
  /// leaf that requires a gradient. With `seed`, differentiates `sum(self * seed)` instead,
  /// so non-scalar outputs can be differentiated along a direction.
  ///
  /// The recorded graph is released as backward walks it (`loss.backward()` in PyTorch, without
  /// `retain_graph=True`): afterwards this tensor and the intermediates behind it are detached
  /// (no node, `requiresGrad` false), so a second `backward()` through them does nothing.
  ///
  /// `leafReady`, when given, is called once for each leaf that requires a gradient, as soon as
  /// no node left to visit reads it: its `grad` is then final for this call (data-parallel
  /// training starts summing it over the ranks while backward goes on, as PyTorch's DDP does
  /// with its autograd hooks).
  public func backward(seed: Tensor? = nil, leafReady: ((Tensor) -> Void)? = nil) {
    let seed = seed ?? {
      precondition(count == 1, "backward() without a seed needs a scalar, got shape \(shape)")
      return Tensor(repeating: 1, shape: shape)
    }()
    precondition(seed.shape == shape, "seed shape \(seed.shape) differs from \(shape)")
    guard requiresGrad else { return }

    // Order the recorded nodes so that each comes after every node that reads its output.
    var order: [Tensor] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(Tensor, Bool)] = [(self, false)]
    while let (tensor, expanded) = stack.popLast() {
      if expanded {
        order.append(tensor)
        continue
      }
      guard let node = tensor.node, visited.insert(ObjectIdentifier(tensor)).inserted else {
        continue
      }
      stack.append((tensor, true))
      for input in node.inputs where input.node != nil && input.requiresGrad {
        stack.append((input, false))
      }
    }

    // Gradients of intermediate results live here only until their node has been visited.
    var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
    // VJPs may pass one tensor on to several inputs (the gradient of a + b is g for both);
    // a leaf's `grad` must be its own, since callers edit gradients in place (unscaling,
    // clipping). The caller's seed is never adopted either.
    var adopted: Set<ObjectIdentifier> = [ObjectIdentifier(seed)]
    func accumulate(_ g: Tensor, into leaf: Tensor) {
      if let grad = leaf.grad {
        // In place, as PyTorch accumulates `.grad` (gradient accumulation over micro-batches,
        // a weight used twice): no new buffer, the same sums as `adding`.
        grad.addInPlace(g)
      } else if adopted.insert(ObjectIdentifier(g)).inserted && !g.requiresGrad && g.node == nil {
        leaf.grad = g
      } else {
        leaf.grad = g.detached()
      }
    }
    if isLeaf {
      accumulate(seed, into: self)
      leafReady?(self)
    }
    // How many nodes still to visit read each leaf (only counted when someone asks).
    var readers: [ObjectIdentifier: Int] = [:]
    if leafReady != nil {
      for tensor in order {
        for input in tensor.node!.inputs where input.isLeaf && input.requiresGrad {
          readers[ObjectIdentifier(input), default: 0] += 1
        }
      }
    }
    // VJPs compute with plain tensors; nothing they do is recorded (no double backward).
    noGrad {
      // The graph is consumed as it is walked (PyTorch's `retain_graph=False`): once a node's
      // VJP has run, the node and whatever its VJP saved are released, so the activations of
      // the layers already differentiated are freed while backward goes on. Activation
      // recomputation relies on it: its peak is one segment's activations, not all of them.
      while let tensor = order.popLast() {
        let node = tensor.node
        tensor.node = nil
        tensor.requiresGrad = false
        // Whatever happens to this node, its leaves have one reader fewer once it is done.
        defer {
          if let leafReady, let node {
            for input in node.inputs where input.isLeaf && input.requiresGrad {
              let id = ObjectIdentifier(input)
              if let left = readers[id] {
                if left == 1 {
                  readers[id] = nil
                  leafReady(input)
                } else {
                  readers[id] = left - 1
                }
              }
            }
          }
        }
        guard let node, let outGrad = pending.removeValue(forKey: ObjectIdentifier(tensor)) else {
          continue
        }
        let inputGrads = node.vjp(outGrad, tensor)
        precondition(inputGrads.count == node.inputs.count, "vjp returned the wrong arity")
        // A tensor handed to several inputs (a + b of one shape gives g to both) is never a
        // leaf's own `.grad`: the leaf's later gradients are added to it in place, which must
        // not reach the gradient still pending for the other input.
        if inputGrads.count > 1 {
          var handed = Set<ObjectIdentifier>()
          for case let g? in inputGrads where !handed.insert(ObjectIdentifier(g)).inserted {
            adopted.insert(ObjectIdentifier(g))
          }
        }
        for (input, g) in zip(node.inputs, inputGrads) {
          guard let g, input.requiresGrad else { continue }
          precondition(g.shape == input.shape, "vjp gave \(g.shape) for an input of \(input.shape)")
          if input.isLeaf {
            accumulate(g, into: input)
          } else if let existing = pending[ObjectIdentifier(input)] {
            pending[ObjectIdentifier(input)] = existing.adding(g)
          } else {
            pending[ObjectIdentifier(input)] = g
          }
        }
      }
    }
  }

  /// self += other elementwise (one shape), recording nothing (for gradient bookkeeping). A
  /// half-stored tensor becomes Float.
  func addInPlace(_ other: Tensor) {
    precondition(shape == other.shape)
    other.storage.withUnsafeBufferPointer { b in
      storage.withUnsafeMutableBufferPointer { a in
        for i in 0..<a.count { a[i] += b[i] }
      }
    }
  }

  /// Elementwise sum of two tensors of one shape, recording nothing (for gradient bookkeeping).
  func adding(_ other: Tensor) -> Tensor {
    precondition(shape == other.shape)
    return Tensor(shape: shape) { out in
      storage.withUnsafeBufferPointer { a in
        other.storage.withUnsafeBufferPointer { b in
          for i in 0..<out.count { out[i] = a[i] + b[i] }
        }
      }
    }
  }
}
