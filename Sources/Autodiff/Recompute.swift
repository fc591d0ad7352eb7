// Activation recomputation (Chen et al., 2016, "Training Deep Nets with Sublinear Memory
// Cost"): a segment of the network runs without recording in the forward pass, so none of its
// intermediate results stay alive; its VJP runs the segment again, recording, and
// backpropagates through that fresh graph.

/// Applies `body` to `input` like `body(input)`, but keeps only `input` for the backward pass
/// instead of every intermediate result of `body` (`torch.utils.checkpoint.checkpoint(body,
/// input, use_reentrant=False)` with `preserve_rng_state=True`).
///
/// Forward: `body(input)` under `noGrad`; its intermediates are freed as soon as they are used.
/// Backward, given the output gradient g: `saveState` is called to remember the current state,
/// the state from before the forward pass is restored, `body` runs again on a fresh leaf with
/// `input`'s values, recording, the current state is put back, and `backward(seed: g)` through
/// that graph adds the gradients of `parameters` (leaves) into their `grad` and yields the input
/// gradient. The same operations run on the same values in the same order as without
/// recomputation, so every gradient is bitwise the one `body(input)` would have given.
///
/// - Parameters:
///   - parameters: the trainable tensors `body` reads (leaves); listed so that the output is
///     recorded when only they, not `input`, require gradients. They receive gradients through
///     the replay, never through this op's own VJP.
///   - saveState: remembers whatever state a forward pass of `body` reads and changes (dropout
///     generators, batch-norm running statistics) and returns a closure that puts it back. It is
///     called before the forward pass, so the replay draws the same random numbers, and again
///     before the replay, so the replay leaves the state as it found it (running statistics are
///     updated once). Default: no state.
///   - body: the segment; must be deterministic given `input`, the parameters and the state.
///
/// Under mixed precision the replay runs with it too, so the segment's recorded activations are
/// binary16 as they would be without recomputation; the forward pass, recording nothing, keeps
/// its intermediates in Float, so the gradients are close to (not bitwise) those without
/// recomputation there.
///
/// When nothing is being recorded (`noGrad`, or neither `input` nor any parameter requires a
/// gradient) this is `body(input)`.
///
/// Shape: whatever `body` takes → whatever it gives.
public func recomputed(
  _ input: Tensor, parameters: [Tensor], saveState: @escaping () -> (() -> Void) = { {} },
  _ body: @escaping (Tensor) -> Tensor
) -> Tensor {
  guard GradMode.isEnabled, input.requiresGrad || parameters.contains(where: \.requiresGrad) else {
    return body(input)
  }
  let restoreStateBeforeForward = saveState()
  var output = noGrad { body(input) }
  // An identity segment returns its input; the recorded result must be a tensor of its own.
  if output === input { output = Tensor(shape: input.shape, storage: input.storage) }
  let needsInputGradient = input.requiresGrad
  // The replay runs in the backward pass, outside the forward's `withMixedPrecision`; it stores
  // what it records as the forward would have.
  let mixedPrecision = MixedPrecision.isEnabled
  return output.recording([input] + parameters) { g in
    let restoreCurrentState = saveState()
    restoreStateBeforeForward()
    let replayInput = Tensor(shape: input.shape, storage: input.storage, requiresGrad: needsInputGradient)
    let replayed = GradMode.$isEnabled.withValue(true) {
      withMixedPrecision(mixedPrecision) { body(replayInput) }
    }
    restoreCurrentState()
    replayed.backward(seed: g)
    let inputGradient = needsInputGradient ? (replayInput.grad ?? Tensor.zeros(input.shape)) : nil
    return [inputGradient] + parameters.map { _ in nil }
  }
}
