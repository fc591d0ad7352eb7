// libFuzzer harness for the CSV reader: `loadCSVDataset` (Sources/Datasets/CSVDataset.swift),
// raw and gzip-compressed, reached as `distill train` / `eval` reach it: through
// `TrainingData.load` of a recipe's `data: {dataset: csv, ...}` section, which then holds out
// the validation split, reshapes and standardises.
//
// Input layout (see corpus/FuzzCSV/):
//   byte 0     flags: bit 0 gzip the file (with the project's writeGzipFile; file bytes that are
//              already gzip are read as gzip too), bit 1 give `label_column`, bit 2 give
//              `classes`, bit 3 `normalize: true`, bit 4 also call loadCSVDataset directly with
//              sampleShape [k, 1], bit 5 `shape: [1, k]`, bits 6-7 `validation`: 0.2, 0.5, 1
//              or 0 samples
//   byte 1     low nibble: `label_column` (0-15); high nibble h: `classes` = h + 2, k = h + 1
//   the rest   the file
// Only values a recipe can pass validation with are generated (label_column >= 0, classes >= 2).
import Datasets
import Distill
import FuzzSupport

private let path = scratchFolder("csv") + "/data.csv"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  var input = InputCursor(data, size)
  let flags = input.byte()
  let options = input.byte()
  let file = input.rest
  if flags & 1 != 0 {
    do { try writeGzipFile(path: path, bytes: Array(file)) } catch { fatalError("harness: \(error)") }
  } else {
    writeFile(path, file)
  }
  // FUZZ_AVOID=csv-label-column: only column 0, which every accepted row has.
  let labelColumn = flags & 2 != 0 ? (avoiding("csv-label-column") ? 0 : Int(options & 0xF)) : nil
  // FUZZ_AVOID=csv-inferred-classes: always `classes`, so the count is not the largest label + 1.
  let classes = flags & 4 != 0 || avoiding("csv-inferred-classes") ? Int(options >> 4) + 2 : nil
  let k = Int(options >> 4) + 1
  let validation: [ValidationSplit] = [.fraction(0.2), .fraction(0.5), .count(1), .count(0)]
  let spec = DataSpec(
    dataset: .csv, path: path, validation: validation[Int(flags >> 6)], normalize: flags & 8 != 0,
    shape: flags & 0x20 != 0 ? [1, k] : nil, labelColumn: labelColumn, classes: classes)

  do {
    let loaded = try TrainingData.load(spec, seed: UInt64(options), file: "fuzz.yaml")
    for set in [loaded.train, loaded.validation, loaded.test] {
      precondition(set.features.count == set.count * set.sampleSize, "features do not fill the samples")
      precondition(set.labels.allSatisfy { (0..<set.classCount).contains($0) }, "label outside 0..<classCount")
    }
    if let classes { precondition(loaded.classCount == classes, "classes not kept") }
  } catch {
    rendered(error, "csv")
  }
  if flags & 0x10 != 0 {
    do {
      let set = try loadCSVDataset(path: path, sampleShape: [k, 1], labelColumn: labelColumn, classCount: classes)
      precondition(set.sampleShape == [k, 1], "sample shape not kept")
    } catch {
      rendered(error, "csv")
    }
  }
  return 0
}
