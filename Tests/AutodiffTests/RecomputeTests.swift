import Autodiff
import XCTest
import _TestSupport

/// `recomputed(_:parameters:saveState:_:)`: the gradients of a recomputed segment are those of
/// the segment itself, and the state protocol is followed (save before forward, restore around
/// the replay).
final class RecomputeTests: XCTestCase {
  /// A small segment with a parameter used twice: x·W, then exp, then times W's row sums.
  private func segment(_ w: Tensor) -> (Tensor) -> Tensor {
    { x in (Tensor.matmul(x, w) * 0.5).exp() + Tensor.matmul(x, w) }
  }

  func testGradientCheck() {
    assertGradientsMatch([randomTensor([3, 4], seed: 1), randomTensor([4, 2], seed: 2)]) { inputs in
      let w = inputs[1]
      let h = recomputed(inputs[0], parameters: [w], segment(w))
      return recomputed(h, parameters: [], { $0.tanh() * $0 })
    }
  }

  func testGradientsAreBitwiseThoseOfTheSegment() {
    let x = randomTensor([5, 4], seed: 3)
    var results: [[[Float]]] = []
    for recompute in [false, true] {
      let input = x.detached()
      input.requiresGrad = true
      let w = randomTensor([4, 3], seed: 4)
      w.requiresGrad = true
      let body = segment(w)
      let y = recompute ? recomputed(input, parameters: [w], body) : body(input)
      (y * randomTensor(y.shape, seed: 5)).sum().backward()
      results.append([y.storage, input.grad!.storage, w.grad!.storage])
    }
    XCTAssertEqual(results[0], results[1])
  }

  /// Under mixed precision the replay stores its products as binary16, as the forward would
  /// have; the gradients are those of the segment without recomputation up to binary16 rounding
  /// of its intermediates.
  func testReplayRunsInMixedPrecision() {
    let x = randomTensor([5, 4], seed: 3)
    var results: [[[Float]]] = []
    for recompute in [false, true] {
      let input = x.detached()
      input.storeAsHalf()
      input.requiresGrad = true
      let w = randomTensor([4, 3], seed: 4)
      w.storeAsHalf()
      w.requiresGrad = true
      let body = segment(w)
      var replayedProductIsHalf = false
      let y = withMixedPrecision {
        recompute
          ? recomputed(input, parameters: [w]) { h in
            let product = Tensor.matmul(h, w)
            if GradMode.isRecording { replayedProductIsHalf = product.isHalf }
            return body(h)
          }
          : body(input)
      }
      (y * randomTensor(y.shape, seed: 5)).sum().backward()
      if recompute { XCTAssertTrue(replayedProductIsHalf, "the replay must record in binary16") }
      results.append([y.storage, input.grad!.storage, w.grad!.storage])
    }
    for (a, b) in zip(results[0], results[1]) {
      assertClose(a, b, absoluteTolerance: 1e-2, relativeTolerance: 1e-2)
    }
  }

  func testParametersGetGradientsWhenTheInputNeedsNone() {
    let w = randomTensor([4, 3], seed: 6)
    w.requiresGrad = true
    let y = recomputed(randomTensor([2, 4], seed: 7), parameters: [w], segment(w))
    XCTAssertTrue(y.requiresGrad)
    y.sum().backward()
    XCTAssertEqual(w.grad?.shape, [4, 3])
  }

  func testIdentitySegmentAndNoGradAndUntrackedInputs() {
    let x = randomTensor([2, 2], seed: 8)
    x.requiresGrad = true
    let y = recomputed(x, parameters: []) { $0 }
    XCTAssertFalse(y === x, "the recorded output is a tensor of its own")
    XCTAssertTrue(x.isLeaf)
    (y * 3).sum().backward()
    XCTAssertEqual(x.grad?.storage, [3, 3, 3, 3])

    var calls = 0
    let plain = randomTensor([2, 2], seed: 9)
    _ = recomputed(
      plain, parameters: [],
      saveState: {
        calls += 1
        return {}
      }
    ) { $0.exp() }
    _ = noGrad {
      recomputed(
        x, parameters: [],
        saveState: {
          calls += 1
          return {}
        }
      ) { $0.exp() }
    }
    XCTAssertEqual(calls, 0, "nothing recorded, nothing saved")
  }

  func testStateIsReplayedAndThenRestored() {
    // A "random layer": adds the generator's next uniform value to every element.
    var generator = SeededGenerator(seed: 10)
    var drawn: [Float] = []
    let body: (Tensor) -> Tensor = { x in
      let value = generator.nextUniform()
      drawn.append(value)
      return x + value
    }
    let x = randomTensor([3], seed: 11)
    x.requiresGrad = true
    let y = recomputed(
      x, parameters: [],
      saveState: {
        let saved = generator
        return { generator = saved }
      }, body)
    let afterForward = generator
    _ = generator.next()  // the state moves on before backward, as another layer call would
    let current = generator
    y.sum().backward()
    XCTAssertEqual(drawn.count, 2)
    XCTAssertEqual(drawn[0], drawn[1], "the replay drew the forward pass's number")
    XCTAssertEqual(generator, current, "the replay left the state as it found it")
    XCTAssertNotEqual(afterForward, current)
    XCTAssertEqual(x.grad?.storage, [1, 1, 1])
  }
}
