// libFuzzer harness for the IDX reader: `readIDXFile(_:magic:)` and `loadIDXDataset`
// (Sources/Datasets/IDX.swift), raw and gzip-compressed, then what training does with the
// loaded set (stratified split, scaling).
//
// Input layout (see corpus/FuzzIDX/):
//   byte 0      flags: bit 0 gzip the images file, bit 1 gzip the labels file (the harness
//               compresses with the project's writeGzipFile; an input whose file bytes are
//               already gzip is read as gzip too), bits 2-5 class count (0: the default 10,
//               else 1-15), bits 6-7 validation fraction of the split (0, 0.1, 0.5, 0.9)
//   bytes 1-2   big-endian length L of the images file
//   L bytes     the images file (IDX, magic 0x00000803)
//   the rest    the labels file (IDX, magic 0x00000801)
import Datasets
import FuzzSupport

private let folder = scratchFolder("idx")
private let imagesPath = folder + "/images-idx3-ubyte"
private let labelsPath = folder + "/labels-idx1-ubyte"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  var input = InputCursor(data, size)
  let flags = input.byte()
  let imagesLength = Int(input.byte()) << 8 | Int(input.byte())
  let images = input.take(imagesLength)
  let labels = input.rest
  write(images, to: imagesPath, gzip: flags & 1 != 0)
  write(labels, to: labelsPath, gzip: flags & 2 != 0)
  let classSelector = Int(flags >> 2 & 0xF)
  let classCount = classSelector == 0 ? 10 : classSelector
  let fraction = [0, 0.1, 0.5, 0.9][Int(flags >> 6)]

  for (path, magic) in [(imagesPath, IDXMagic.images), (labelsPath, IDXMagic.labels)] {
    do {
      let array = try readIDXFile(path, magic: magic)
      precondition(array.bytes.count == array.shape.reduce(1, *), "IDXArray invariant")
    } catch {
      rendered(error, "idx")
    }
  }
  do {
    let set = try loadIDXDataset(images: imagesPath, labels: labelsPath, classCount: classCount)
    precondition(set.labels.allSatisfy { (0..<classCount).contains($0) }, "label outside 0..<classCount")
    precondition(set.features.allSatisfy { (0...1).contains($0) }, "feature outside [0, 1]")
    let split = set.stratifiedSplit(validationFraction: fraction, seed: UInt64(flags))
    precondition(split.train.count + split.validation.count == set.count, "split lost samples")
    _ = split.train.scaled(by: 0.5)
  } catch {
    rendered(error, "idx")
  }
  return 0
}

private func write(_ bytes: ArraySlice<UInt8>, to path: String, gzip: Bool) {
  if gzip {
    do { try writeGzipFile(path: path, bytes: Array(bytes)) } catch { fatalError("harness: \(error)") }
  } else {
    writeFile(path, bytes)
  }
}
