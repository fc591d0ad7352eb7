import Autodiff
import XCTest
import _TestSupport

final class ConvolutionTests: XCTestCase {
  /// Runs `body` once per implementation: oneDNN with its own layouts, oneDNN on NCHW, and the
  /// im2col reference; restores the default afterwards.
  private func forEachBackend(_ body: (String) -> Void) {
    defer {
      Convolution.backend = .onednn
      Convolution.blockedLayouts = true
    }
    for (backend, blocked) in [(ConvolutionBackend.onednn, true), (.onednn, false), (.im2col, true)] {
      Convolution.backend = backend
      Convolution.blockedLayouts = blocked
      body("\(backend.rawValue)\(backend == .onednn ? (blocked ? " blocked" : " nchw") : "")")
    }
  }

  /// y[n, o, i, j] = b[o] + Σ w[o, c, u, v]·x[n, c, i·s − p + u, j·s − p + v], by plain loops:
  /// the definition the im2col lowering must agree with.
  private func referenceConvolution(
    _ x: Tensor, _ w: Tensor, _ b: Tensor?, stride s: Int, padding p: Int
  ) -> [Float] {
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
    let (oh, ow) = ((h + 2 * p - kh) / s + 1, (wd + 2 * p - kw) / s + 1)
    var out = [Float](repeating: 0, count: n * o * oh * ow)
    for b0 in 0..<n {
      for o0 in 0..<o {
        for i in 0..<oh {
          for j in 0..<ow {
            var total = Double(b?.storage[o0] ?? 0)
            for c0 in 0..<c {
              for u in 0..<kh {
                for v in 0..<kw {
                  let (r, col) = (i * s - p + u, j * s - p + v)
                  guard r >= 0 && r < h && col >= 0 && col < wd else { continue }
                  total += Double(w[o0, c0, u, v]) * Double(x[b0, c0, r, col])
                }
              }
            }
            out[((b0 * o + o0) * oh + i) * ow + j] = Float(total)
          }
        }
      }
    }
    return out
  }

  func testTinyConvolutionByHand() {
    forEachBackend { backend in
      // w computes x[i, j] − x[i+1, j+1] over the window; padding 1 reads zeros around the image.
      let x = Tensor(shape: [1, 1, 3, 3], storage: [1, 2, 3, 4, 5, 6, 7, 8, 9])
      let w = Tensor(shape: [1, 1, 2, 2], storage: [1, 0, 0, -1])
      let b = Tensor(shape: [1], storage: [0.5])
      let valid = x.conv2d(weight: w, bias: b)
      XCTAssertEqual(valid.shape, [1, 1, 2, 2])
      XCTAssertEqual(valid.storage, [-3.5, -3.5, -3.5, -3.5], backend)
      let padded = x.conv2d(weight: w, bias: nil, padding: 1)
      XCTAssertEqual(padded.shape, [1, 1, 4, 4])
      XCTAssertEqual(padded.storage, [-1, -2, -3, 0, -4, -4, -4, 3, -7, -4, -4, 6, 0, 7, 8, 9], backend)
      let strided = x.conv2d(weight: w, bias: nil, stride: 2, padding: 1)
      XCTAssertEqual(strided.shape, [1, 1, 2, 2])
      XCTAssertEqual(strided.storage, [-1, -3, -7, -4], backend)
    }
  }

  func testMatchesDirectConvolution() {
    forEachBackend { backend in
      // Includes batches split into several chunks (5 images of 24×24 → chunks of 4 and 1),
      // strides, padding, non-square inputs and kernels.
      let cases: [(x: [Int], w: [Int], stride: Int, padding: Int, bias: Bool)] = [
        ([2, 3, 5, 6], [4, 3, 3, 3], 1, 0, true),
        ([2, 3, 5, 6], [4, 3, 3, 3], 1, 1, false),
        ([2, 3, 7, 6], [2, 3, 3, 3], 2, 1, true),
        ([1, 2, 6, 7], [3, 2, 2, 3], 2, 0, true),
        ([5, 1, 24, 24], [3, 1, 3, 3], 1, 1, true),
        ([3, 2, 9, 8], [2, 2, 5, 5], 1, 2, true),
        ([2, 1, 4, 4], [1, 1, 3, 3], 3, 2, false),
      ]
      for (k, c) in cases.enumerated() {
        let x = randomTensor(c.x, seed: UInt64(10 + k))
        let w = randomTensor(c.w, seed: UInt64(20 + k))
        let b = c.bias ? randomTensor([c.w[0]], seed: UInt64(30 + k)) : nil
        let y = x.conv2d(weight: w, bias: b, stride: c.stride, padding: c.padding)
        let expected = referenceConvolution(x, w, b, stride: c.stride, padding: c.padding)
        XCTAssertEqual(y.count, expected.count, "\(backend) case \(k)")
        assertClose(y.storage, expected, absoluteTolerance: 1e-5, relativeTolerance: 1e-5, "\(backend) case \(k)")
      }
    }
  }

  func testGradients() {
    forEachBackend { backend in
      let cases: [(x: [Int], w: [Int], stride: Int, padding: Int, bias: Bool)] = [
        ([2, 3, 5, 6], [4, 3, 3, 3], 1, 0, true),
        ([2, 3, 5, 6], [4, 3, 3, 3], 1, 1, true),
        ([2, 3, 5, 6], [4, 3, 3, 3], 2, 0, false),
        ([2, 3, 7, 6], [2, 3, 3, 3], 2, 1, true),
        ([1, 2, 6, 7], [3, 2, 2, 3], 1, 1, false),
        ([5, 1, 24, 24], [2, 1, 3, 3], 1, 1, true),  // several chunks
      ]
      for (k, c) in cases.enumerated() {
        let x = randomTensor(c.x, seed: UInt64(40 + k))
        let w = randomTensor(c.w, seed: UInt64(50 + k), std: 0.5)
        // The convolution is linear in each input, so a large step has no truncation error.
        if c.bias {
          let b = randomTensor([c.w[0]], seed: UInt64(60 + k))
          assertGradientsMatch([x, w, b], step: 1e-2, "\(backend) case \(k)") {
            $0[0].conv2d(weight: $0[1], bias: $0[2], stride: c.stride, padding: c.padding)
          }
        } else {
          assertGradientsMatch([x, w], step: 1e-2, "\(backend) case \(k)") {
            $0[0].conv2d(weight: $0[1], bias: nil, stride: c.stride, padding: c.padding)
          }
        }
      }
    }
  }

  func testInputWithoutGradientStillGivesWeightGradients() {
    forEachBackend { backend in
      // The first layer of a network: the images need no gradient, the filters do.
      let x = randomTensor([2, 1, 5, 5], seed: 70)
      let w = Tensor(shape: [2, 1, 3, 3], storage: randomTensor([18], seed: 71).storage, requiresGrad: true)
      let b = Tensor(shape: [2], storage: [0, 0], requiresGrad: true)
      x.conv2d(weight: w, bias: b, padding: 1).sum().backward()
      XCTAssertNil(x.grad)
      XCTAssertEqual(w.grad?.shape, [2, 1, 3, 3])
      XCTAssertEqual(b.grad?.storage, [50, 50], backend)  // Σ over 2 images × 25 pixels
    }
  }

  /// oneDNN against the im2col reference on the shapes of the shipped CNNs (28×28 and 14×14
  /// maps, 1→16 and 16→32 channels, a batch that is not a multiple of oneDNN's blocks), value
  /// and all three gradients, within 1e-5 relative to each result's largest entry.
  func testOneDNNMatchesIm2colOnNetworkShapes() {
    defer {
      Convolution.backend = .onednn
      Convolution.blockedLayouts = true
    }
    let cases: [(x: [Int], w: [Int], stride: Int, padding: Int)] = [
      ([13, 1, 28, 28], [16, 1, 3, 3], 1, 1),
      ([13, 16, 14, 14], [32, 16, 3, 3], 1, 1),
      ([6, 20, 9, 9], [24, 20, 3, 3], 2, 1),
      ([4, 8, 7, 7], [8, 8, 1, 1], 1, 0),
    ]
    for (k, c) in cases.enumerated() {
      let x0 = randomTensor(c.x, seed: UInt64(80 + k))
      let w0 = randomTensor(c.w, seed: UInt64(90 + k), std: 0.3)
      let b0 = randomTensor([c.w[0]], seed: UInt64(100 + k))
      let seed = randomTensor(x0.conv2d(weight: w0, bias: b0, stride: c.stride, padding: c.padding).shape, seed: 7)
      func run(_ backend: ConvolutionBackend, blocked: Bool) -> [[Float]] {
        Convolution.backend = backend
        Convolution.blockedLayouts = blocked
        let x = Tensor(shape: x0.shape, storage: x0.storage, requiresGrad: true)
        let w = Tensor(shape: w0.shape, storage: w0.storage, requiresGrad: true)
        let b = Tensor(shape: b0.shape, storage: b0.storage, requiresGrad: true)
        let y = x.conv2d(weight: w, bias: b, stride: c.stride, padding: c.padding)
        let value = y.storage
        y.backward(seed: seed)
        return [value, x.grad!.storage, w.grad!.storage, b.grad!.storage]
      }
      let reference = run(.im2col, blocked: true)
      for blocked in [true, false] {
        let got = run(.onednn, blocked: blocked)
        for (part, name) in ["y", "dx", "dw", "db"].enumerated() {
          let scale = reference[part].map { abs($0) }.max() ?? 1
          assertClose(
            got[part], reference[part], absoluteTolerance: 1e-5 * scale, relativeTolerance: 1e-5,
            "case \(k) \(name) blocked \(blocked)")
        }
      }
    }
  }
}
