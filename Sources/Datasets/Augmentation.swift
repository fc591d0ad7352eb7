/// One random transform applied independently to each image of a batch `[N, C, H, W]`; all
/// channels of an image move together.
public enum Augmentation: Sendable, Hashable {
  /// Shifts each image by whole pixels `(dy, dx)`, each drawn uniformly from
  /// `-maxShift...maxShift`, independently per image and axis; pixels shifted in are 0:
  /// `out[c, y, x] = in[c, y - dy, x - dx]`, or 0 outside the image. The "jitter by up to two
  /// pixels in any direction" of Hinton et al. 2015 (MNIST teacher) is `jitter(maxShift: 2)`.
  case jitter(maxShift: Int)
  /// Mirrors each image left-right with probability 1/2: `out[c, y, x] = in[c, y, W - 1 - x]`.
  /// PyTorch: `torchvision.transforms.RandomHorizontalFlip()`.
  case horizontalFlip
  /// Pads each image with `padding` zeros on every side, then crops a random `H × W` window at
  /// offset `(oy, ox)`, each uniform in `0...2·padding` (CIFAR style). PyTorch:
  /// `RandomCrop(size, padding: padding)`. This equals a shift by `(padding - oy, padding - ox)`,
  /// so it has the same distribution as `jitter(maxShift: padding)`; it is kept as its own case
  /// so recipes read as the papers they follow, and it draws its offsets as described here.
  case padAndCrop(padding: Int)
}

/// Applies a list of augmentations, in order, to batches of images `[N, C, H, W]` in place,
/// drawing from a seeded `SplitMixGenerator`. Its `generator.state` is the whole random state: a
/// checkpoint that saves it and restores it replays the same transforms.
///
/// Draws per image, for each augmentation in turn over the whole batch: `jitter` two
/// (`dy` then `dx`, none when `maxShift` is 0), `horizontalFlip` one, `padAndCrop` two (`oy` then
/// `ox`, none when `padding` is 0). No allocation per image: one scratch plane `H × W` is kept and
/// reused across calls.
public struct Augmenter: Sendable {
  /// The transforms, applied in this order.
  public var augmentations: [Augmentation]
  /// The random state; save `generator.state` to resume.
  public var generator: SplitMixGenerator
  private var scratch: [Float] = []

  public init(_ augmentations: [Augmentation], seed: UInt64) {
    self.augmentations = augmentations
    self.generator = SplitMixGenerator(seed: seed)
  }

  /// Transforms every image of `batch`, shape `[N, C, H, W]`, in place.
  public mutating func apply(to batch: inout [Float], shape: [Int]) {
    batch.withUnsafeMutableBufferPointer { apply(to: $0, shape: shape) }
  }

  /// Transforms every image of `batch`, shape `[N, C, H, W]`, in place.
  public mutating func apply(to batch: UnsafeMutableBufferPointer<Float>, shape: [Int]) {
    precondition(shape.count == 4, "augmentation needs a batch shape [N, C, H, W], got \(shape)")
    precondition(batch.count == shape.reduce(1, *), "batch of \(batch.count) values for shape \(shape)")
    let (count, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
    if scratch.count < height * width {
      scratch = [Float](repeating: 0, count: height * width)
    }
    guard let base = batch.baseAddress else { return }
    let imageSize = channels * height * width
    for augmentation in augmentations {
      for n in 0..<count {
        let image = base + n * imageSize
        switch augmentation {
        case .jitter(let k):
          precondition(k >= 0, "jitter(maxShift: \(k)) needs maxShift >= 0")
          if k == 0 { continue }
          let dy = generator.nextIndex(below: 2 * k + 1) - k
          let dx = generator.nextIndex(below: 2 * k + 1) - k
          shift(image, channels: channels, height: height, width: width, dy: dy, dx: dx)
        case .padAndCrop(let padding):
          precondition(padding >= 0, "padAndCrop(padding: \(padding)) needs padding >= 0")
          if padding == 0 { continue }
          let oy = generator.nextIndex(below: 2 * padding + 1)
          let ox = generator.nextIndex(below: 2 * padding + 1)
          shift(image, channels: channels, height: height, width: width, dy: padding - oy, dx: padding - ox)
        case .horizontalFlip:
          if generator.next() >> 63 == 0 { continue }
          flipHorizontally(image, rows: channels * height, width: width)
        }
      }
    }
  }

  /// `image[c, y, x] = old[c, y - dy, x - dx]`, 0 where that falls outside; plane by plane through
  /// the scratch plane.
  private mutating func shift(
    _ image: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int, dy: Int, dx: Int
  ) {
    // Destination columns that have a source column: x - dx in 0..<width.
    let x0 = min(max(dx, 0), width)
    let x1 = max(min(width + dx, width), x0)
    scratch.withUnsafeMutableBufferPointer { scratch in
      let old = scratch.baseAddress!  // holds at least height * width values (checked in apply)
      for c in 0..<channels {
        let plane = image + c * height * width
        old.update(from: plane, count: height * width)
        for y in 0..<height {
          let row = plane + y * width
          let sourceY = y - dy
          guard sourceY >= 0, sourceY < height, x1 > x0 else {
            row.update(repeating: 0, count: width)
            continue
          }
          row.update(repeating: 0, count: x0)
          (row + x0).update(from: old + sourceY * width + (x0 - dx), count: x1 - x0)
          (row + x1).update(repeating: 0, count: width - x1)
        }
      }
    }
  }
}

/// Reverses each of `rows` consecutive rows of `width` values in place.
private func flipHorizontally(_ image: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
  for r in 0..<rows {
    let row = image + r * width
    var (i, j) = (0, width - 1)
    while i < j {
      (row[i], row[j]) = (row[j], row[i])
      i += 1
      j -= 1
    }
  }
}
