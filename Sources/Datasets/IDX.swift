#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// IDX magic numbers for unsigned-byte data. The 32-bit big-endian magic is `0x00 0x00 0x08 d`:
/// two zero bytes, the type byte `0x08` (unsigned byte), then the number of dimensions `d`.
/// So comparing the whole magic checks the type and the dimension count at once.
public enum IDXMagic {
  /// `0x00000803`: unsigned bytes, three dimensions `[N, rows, columns]`.
  public static let images: UInt32 = 2051
  /// `0x00000801`: unsigned bytes, one dimension `[N]`.
  public static let labels: UInt32 = 2049
}

/// An IDX array of unsigned bytes: the dimensions from its header and the data in row-major
/// order (`bytes.count == shape.reduce(1, *)`).
public struct IDXArray: Sendable, Equatable {
  public var shape: [Int]
  public var bytes: [UInt8]

  public init(shape: [Int], bytes: [UInt8]) {
    precondition(bytes.count == shape.reduce(1, *), "\(bytes.count) bytes for IDX shape \(shape)")
    self.shape = shape
    self.bytes = bytes
  }
}

/// Reads an IDX file of unsigned bytes (raw or gzip-compressed), the format of the MNIST
/// files: a big-endian header — the magic, then one `UInt32` per dimension — followed by the
/// data.
///
/// The file's (decompressed) size must be exactly `4 + 4·d + ∏ dims`:
/// - shorter is `DatasetError.truncated`, with the byte count the header promises (the header
///   alone while it is incomplete) and the count found;
/// - longer is `DatasetError.malformed` (trailing bytes);
/// - a magic other than `magic` is `DatasetError.wrongMagic` (wrong type byte or dimensions).
public func readIDXFile(_ path: String, magic: UInt32) throws -> IDXArray {
  var file = try readPossiblyCompressedFile(path)
  let dimensions = Int(magic & 0xFF)
  let headerSize = 4 + 4 * dimensions
  guard file.count >= 4 else {
    throw DatasetError.truncated(file: path, expectedBytes: headerSize, actualBytes: file.count)
  }
  let found = bigEndianUInt32(file, at: 0)
  guard found == magic else {
    throw DatasetError.wrongMagic(file: path, expected: magic, found: found)
  }
  guard file.count >= headerSize else {
    throw DatasetError.truncated(file: path, expectedBytes: headerSize, actualBytes: file.count)
  }
  var shape: [Int] = []
  var dataSize = 1
  for d in 0..<dimensions {
    let n = Int(bigEndianUInt32(file, at: 4 + 4 * d))
    let (product, overflow) = dataSize.multipliedReportingOverflow(by: n)
    guard !overflow, product <= Int.max - headerSize else {
      throw DatasetError.malformed(file: path, line: 0, reason: "IDX dimensions \(shape + [n]) are too large")
    }
    shape.append(n)
    dataSize = product
  }
  let expected = headerSize + dataSize
  if file.count < expected {
    throw DatasetError.truncated(file: path, expectedBytes: expected, actualBytes: file.count)
  }
  if file.count > expected {
    throw DatasetError.malformed(
      file: path, line: 0,
      reason: "\(file.count - expected) bytes after the \(expected) that the IDX header \(shape) promises")
  }
  file.removeFirst(headerSize)
  return IDXArray(shape: shape, bytes: file)
}

@inline(__always)
private func bigEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
  UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
    | UInt32(bytes[offset + 3])
}

/// Loads an IDX image file `[N, rows, columns]` and its IDX label file `[N]` (raw or `.gz`) as a
/// `Dataset` with `sampleShape` `[1, rows, columns]` and features `pixel / 255` in [0, 1]
/// (as torchvision's `ToTensor`).
///
/// Errors: those of `readIDXFile`; `countMismatch` when the files hold different N;
/// `labelOutOfRange` for a label not in `0..<classCount`.
public func loadIDXDataset(images: String, labels: String, classCount: Int = 10) throws -> Dataset {
  let imageArray = try readIDXFile(images, magic: IDXMagic.images)
  let labelArray = try readIDXFile(labels, magic: IDXMagic.labels)
  let count = imageArray.shape[0]
  // Rows × columns must be an image size: with zero images the file's length says nothing about
  // them, and 2^32 × 2^32 would overflow the sample size.
  let (side, overflow) = imageArray.shape[1].multipliedReportingOverflow(by: imageArray.shape[2])
  guard !overflow, side <= 1 << 24 else {
    throw DatasetError.malformed(
      file: images, line: 0,
      reason: "images of \(imageArray.shape[1])×\(imageArray.shape[2]) pixels are larger than any data set's (at most 2^24 pixels)")
  }
  guard count == labelArray.shape[0] else {
    throw DatasetError.countMismatch(
      imagesFile: images, images: count, labelsFile: labels, labels: labelArray.shape[0])
  }
  var labelValues = [Int](repeating: 0, count: count)
  for (i, label) in labelArray.bytes.enumerated() {
    guard Int(label) < classCount else {
      throw DatasetError.labelOutOfRange(file: labels, index: i, label: Int(label), classCount: classCount)
    }
    labelValues[i] = Int(label)
  }
  let features = imageArray.bytes.withUnsafeBufferPointer { pixels in
    [Float](unsafeUninitializedCapacity: pixels.count) { out, initialized in
      for i in 0..<pixels.count { out[i] = Float(pixels[i]) / 255 }
      initialized = pixels.count
    }
  }
  return Dataset(
    sampleShape: [1, imageArray.shape[1], imageArray.shape[2]], features: features, labels: labelValues,
    classCount: classCount)
}

/// A split of an MNIST-family data set; its files start with `train` or `t10k`.
public enum MNISTSplit: String, Sendable, CaseIterable {
  case train
  case test

  /// The prefix of the split's file names: `train` or `t10k`.
  public var filePrefix: String { self == .train ? "train" : "t10k" }
}

/// Where Debian's `dataset-fashion-mnist` package (`apt-get install dataset-fashion-mnist`)
/// installs Fashion-MNIST: the four files `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`.
public let debianFashionMNISTFolder = "/usr/share/datasets/fashion-mnist"

/// The file names `loadMNISTFamily` tries for a split, in order: the published gzip names (also
/// what the Debian package installs), the decompressed names, and the decompressed names with a
/// dot (`train-images.idx3-ubyte`, as some mirrors such as Kaggle's spell them).
public func mnistFamilyFileNames(split: MNISTSplit) -> (images: [String], labels: [String]) {
  let p = split.filePrefix
  return (
    ["\(p)-images-idx3-ubyte.gz", "\(p)-images-idx3-ubyte", "\(p)-images.idx3-ubyte"],
    ["\(p)-labels-idx1-ubyte.gz", "\(p)-labels-idx1-ubyte", "\(p)-labels.idx1-ubyte"]
  )
}

/// Loads one split of MNIST, Fashion-MNIST or any data set laid out like them (10 classes,
/// images `[1, 28, 28]` scaled to [0, 1]) from `folder`, trying the names of
/// `mnistFamilyFileNames(split:)`.
///
/// When the images or labels are not there (or the folder does not exist), the error is
/// `DatasetError.missingFiles` naming the folder and every file name tried for what is missing.
public func loadMNISTFamily(folder: String, split: MNISTSplit) throws -> Dataset {
  let names = mnistFamilyFileNames(split: split)
  let directory = folder.hasSuffix("/") ? folder : folder + "/"
  let images = names.images.first { access(directory + $0, F_OK) == 0 }
  let labels = names.labels.first { access(directory + $0, F_OK) == 0 }
  guard let images, let labels else {
    throw DatasetError.missingFiles(
      folder: folder, lookedFor: (images == nil ? names.images : []) + (labels == nil ? names.labels : []))
  }
  return try loadIDXDataset(images: directory + images, labels: directory + labels)
}
