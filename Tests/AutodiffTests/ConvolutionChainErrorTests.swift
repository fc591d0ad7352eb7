import CDNNL
import XCTest

/// The C chain refuses what it cannot do with a message instead of running it: an unknown
/// normalisation kind, a normalisation argument where none was created (or the reverse), and a
/// backward pass through a normalisation with given statistics.
final class ConvolutionChainErrorTests: XCTestCase {
  private func lastError() -> String { String(cString: distill_dnnl_last_error()) }

  private func chain(norm: Int32) -> OpaquePointer? {
    distill_block_create(2, 3, 6, 6, 4, 3, 3, 1, 1, 0, 0, 0, 0, 0, norm, 1e-5, 0, 0)
  }

  func testAnUnknownNormalisationKindIsRefused() {
    XCTAssertNil(chain(norm: 7))
    XCTAssertTrue(lastError().contains("unknown norm 7"), lastError())
  }

  func testNormalisationArgumentsMustMatchTheChain() {
    guard let plain = chain(norm: Int32(DISTILL_BLOCK_NO_NORM)),
      let inference = chain(norm: Int32(DISTILL_BLOCK_NORM_INFERENCE))
    else { return XCTFail("oneDNN refused the chains: \(lastError())") }
    defer {
      distill_block_destroy(plain)
      distill_block_destroy(inference)
    }
    var x = [Float](repeating: 1, count: 2 * 3 * 36)
    var w = [Float](repeating: 0.1, count: 4 * 3 * 9)
    var out = [Float](repeating: 0, count: 2 * 4 * 36)
    var activation = [Float](repeating: 0, count: distill_block_activation_bytes(plain) / 4 + 1)
    var scratch = activation
    var (scale, shift, mean, variance) = ([Float](repeating: 1, count: 4), [Float](repeating: 0, count: 4),
                                          [Float](repeating: 0, count: 4), [Float](repeating: 1, count: 4))
    var gradients = [Float](repeating: 0, count: 8)
    scale.withUnsafeMutableBufferPointer { s in
      shift.withUnsafeMutableBufferPointer { h in
        mean.withUnsafeMutableBufferPointer { m in
          variance.withUnsafeMutableBufferPointer { v in
            var norm = distill_block_norm(
              scale: s.baseAddress, shift: h.baseAddress, mean: m.baseAddress, variance: v.baseAddress, workspace: nil)
            // A normalisation given to a chain without one, and none given to a chain with one.
            XCTAssertNotEqual(distill_block_forward(plain, &x, &w, nil, &norm, &activation, nil, &scratch, &out), 0)
            XCTAssertTrue(lastError().contains("created without a batch normalisation, called with one"), lastError())
            XCTAssertNotEqual(distill_block_forward(inference, &x, &w, nil, nil, &activation, nil, &scratch, &out), 0)
            XCTAssertTrue(lastError().contains("created with a batch normalisation, called without one"), lastError())
            // Inference runs forward; it has no backward pass.
            XCTAssertEqual(distill_block_forward(inference, &x, &w, nil, &norm, &activation, nil, &scratch, &out), 0, lastError())
            gradients.withUnsafeMutableBufferPointer { g in
              XCTAssertNotEqual(
                distill_block_backward(
                  inference, &x, &w, &norm, &activation, nil, &scratch, &out, nil, nil, nil, g.baseAddress, g.baseAddress! + 4), 0)
            }
            XCTAssertTrue(lastError().contains("no backward pass"), lastError())
          }
        }
      }
    }
  }
}
