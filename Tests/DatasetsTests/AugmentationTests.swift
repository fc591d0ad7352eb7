import Datasets
import XCTest

final class AugmentationTests: XCTestCase {
  /// A batch [n, c, h, w] of distinct non-zero values.
  func batch(_ shape: [Int]) -> [Float] {
    (0..<shape.reduce(1, *)).map { Float($0 + 1) }
  }

  /// `image[c, y, x] = old[c, y - dy, x - dx]`, 0 outside: the definition, written naively.
  func shifted(_ image: [Float], _ c: Int, _ h: Int, _ w: Int, dy: Int, dx: Int) -> [Float] {
    var out = [Float](repeating: 0, count: image.count)
    for ch in 0..<c {
      for y in 0..<h {
        for x in 0..<w where (0..<h).contains(y - dy) && (0..<w).contains(x - dx) {
          out[(ch * h + y) * w + x] = image[(ch * h + y - dy) * w + x - dx]
        }
      }
    }
    return out
  }

  func testZeroJitterAndZeroPaddingAreIdentity() {
    let shape = [3, 2, 5, 4]
    var x = batch(shape)
    var augmenter = Augmenter([.jitter(maxShift: 0), .padAndCrop(padding: 0)], seed: 7)
    augmenter.apply(to: &x, shape: shape)
    XCTAssertEqual(x, batch(shape))
    XCTAssertEqual(augmenter.generator.state, 7, "nothing is drawn for a zero shift")
  }

  func testJitterMovesAKnownPixelExactly() {
    // One bright pixel per channel at (3, 3) of a 7×7 image; both channels move together.
    let shape = [1, 2, 7, 7]
    var seen = Set<[Int]>()
    for seed in UInt64(0)..<200 {
      var x = [Float](repeating: 0, count: 98)
      x[3 * 7 + 3] = 1
      x[49 + 3 * 7 + 3] = 2
      var augmenter = Augmenter([.jitter(maxShift: 2)], seed: seed)
      var draws = augmenter.generator
      let dy = draws.nextIndex(below: 5) - 2
      let dx = draws.nextIndex(below: 5) - 2
      augmenter.apply(to: &x, shape: shape)
      XCTAssertEqual(x[(3 + dy) * 7 + 3 + dx], 1)
      XCTAssertEqual(x[49 + (3 + dy) * 7 + 3 + dx], 2)
      XCTAssertEqual(x.reduce(0, +), 3, "the pixel moved, nothing else changed")
      XCTAssertEqual(augmenter.generator.state, draws.state)
      seen.insert([dy, dx])
    }
    XCTAssertEqual(seen.count, 25, "every shift in -2...2 × -2...2 occurs")
  }

  func testJitterMatchesTheDefinitionPerImage() {
    let (n, c, h, w) = (6, 3, 5, 4)
    var x = batch([n, c, h, w])
    let original = x
    var augmenter = Augmenter([.jitter(maxShift: 3)], seed: 11)
    var draws = augmenter.generator
    augmenter.apply(to: &x, shape: [n, c, h, w])
    let size = c * h * w
    for i in 0..<n {
      let dy = draws.nextIndex(below: 7) - 3
      let dx = draws.nextIndex(below: 7) - 3
      let expected = shifted(Array(original[i * size..<(i + 1) * size]), c, h, w, dy: dy, dx: dx)
      XCTAssertEqual(Array(x[i * size..<(i + 1) * size]), expected, "image \(i), shift (\(dy), \(dx))")
    }
  }

  func testPadAndCropMatchesExplicitPaddingThenCropping() {
    let (n, c, h, w, k) = (5, 2, 4, 6, 2)
    var x = batch([n, c, h, w])
    let original = x
    var augmenter = Augmenter([.padAndCrop(padding: k)], seed: 5)
    var draws = augmenter.generator
    augmenter.apply(to: &x, shape: [n, c, h, w])
    let (ph, pw) = (h + 2 * k, w + 2 * k)
    for i in 0..<n {
      let oy = draws.nextIndex(below: 2 * k + 1)
      let ox = draws.nextIndex(below: 2 * k + 1)
      for ch in 0..<c {
        var padded = [Float](repeating: 0, count: ph * pw)
        for y in 0..<h {
          for x in 0..<w { padded[(y + k) * pw + x + k] = original[((i * c + ch) * h + y) * w + x] }
        }
        for y in 0..<h {
          for xx in 0..<w {
            XCTAssertEqual(x[((i * c + ch) * h + y) * w + xx], padded[(y + oy) * pw + xx + ox])
          }
        }
      }
    }
  }

  func testSameSeedGivesSameResult() {
    let shape = [8, 1, 6, 6]
    let list: [Augmentation] = [.padAndCrop(padding: 1), .horizontalFlip, .jitter(maxShift: 2)]
    var a = batch(shape)
    var b = batch(shape)
    var c = batch(shape)
    var first = Augmenter(list, seed: 42)
    var second = Augmenter(list, seed: 42)
    var other = Augmenter(list, seed: 43)
    first.apply(to: &a, shape: shape)
    second.apply(to: &b, shape: shape)
    other.apply(to: &c, shape: shape)
    XCTAssertEqual(a, b)
    XCTAssertNotEqual(a, c)
    // Resuming from a saved state replays the next batch too.
    var resumed = Augmenter(list, seed: 0)
    resumed.generator.state = first.generator.state
    var next1 = batch(shape)
    var next2 = batch(shape)
    first.apply(to: &next1, shape: shape)
    resumed.apply(to: &next2, shape: shape)
    XCTAssertEqual(next1, next2)
  }

  func testFlipTwiceWithTheSameCoinsIsIdentityAndFlipsMirror() {
    let (n, c, h, w) = (64, 2, 3, 5)
    let original = batch([n, c, h, w])
    var x = original
    var once = Augmenter([.horizontalFlip], seed: 9)
    var again = Augmenter([.horizontalFlip], seed: 9)
    once.apply(to: &x, shape: [n, c, h, w])
    let flippedOnce = x
    again.apply(to: &x, shape: [n, c, h, w])
    XCTAssertEqual(x, original)
    var flipped = 0
    let size = c * h * w
    for i in 0..<n {
      let image = Array(flippedOnce[i * size..<(i + 1) * size])
      let before = Array(original[i * size..<(i + 1) * size])
      let mirrored = (0..<size).map { j in before[j - j % w + (w - 1 - j % w)] }
      if image == mirrored {
        flipped += 1
      } else {
        XCTAssertEqual(image, before, "image \(i) is either flipped or untouched")
      }
    }
    XCTAssertGreaterThan(flipped, 16)
    XCTAssertLessThan(flipped, 48)
  }

  func testUnsafeBufferAndArrayEntryPointsAgree() {
    let shape = [4, 3, 8, 8]
    var a = batch(shape)
    var b = batch(shape)
    var first = Augmenter([.jitter(maxShift: 2), .horizontalFlip], seed: 3)
    var second = first
    first.apply(to: &a, shape: shape)
    b.withUnsafeMutableBufferPointer { second.apply(to: $0, shape: shape) }
    XCTAssertEqual(a, b)
  }
}
