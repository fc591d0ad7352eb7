import Autodiff
import CHDF5

/// The element type of a dataset or attribute, as numpy would name it.
public enum HDF5ElementType: Equatable, Sendable, CustomStringConvertible {
  /// An IEEE float of this many bytes (2: `float16`, 4: `float32`, 8: `float64`).
  case float(bytes: Int)
  /// An integer of this many bytes (`int64`, `uint8`, …).
  case integer(bytes: Int, signed: Bool)
  /// A fixed- or variable-length string.
  case string
  /// Anything else (compound, enum — h5py's `bool` —, array, opaque, reference, …).
  case other(String)

  init(_ type: hid_t) {
    let size = H5Tget_size(type)
    switch H5Tget_class(type) {
    case H5T_FLOAT: self = .float(bytes: size)
    case H5T_INTEGER: self = .integer(bytes: size, signed: H5Tget_sign(type) != H5T_SGN_NONE)
    case H5T_STRING: self = .string
    case H5T_COMPOUND: self = .other("compound")
    case H5T_ENUM: self = .other("enum")
    case H5T_ARRAY: self = .other("array")
    case H5T_VLEN: self = .other("variable-length")
    case H5T_OPAQUE: self = .other("opaque")
    case H5T_REFERENCE: self = .other("reference")
    case H5T_BITFIELD: self = .other("bitfield")
    default: self = .other("unknown")
    }
  }

  public var description: String {
    switch self {
    case .float(let bytes): return "float\(bytes * 8)"
    case .integer(let bytes, let signed): return "\(signed ? "" : "u")int\(bytes * 8)"
    case .string: return "string"
    case .other(let name): return name
    }
  }
}

/// An HDF5 dataset (`h5py.Dataset`): an n-dimensional array of one element type, row-major.
public final class HDF5Dataset: HDF5Object {
  /// The dimensions (`dset.shape`); `[]` for a scalar.
  public let shape: [Int]
  /// The stored element type (`dset.dtype`).
  public let elementType: HDF5ElementType

  init(file: HDF5File, name: String, id: hid_t) throws(CheckpointError) {
    // Read before super.init; on failure close the id here, as no object owns it yet.
    let space = H5Dget_space(id)
    let type = H5Dget_type(id)
    defer {
      if space >= 0 { _ = H5Sclose(space) }
      if type >= 0 { _ = H5Tclose(type) }
    }
    guard space >= 0, type >= 0 else {
      let error = file.failure("read the shape and type", object: name)
      _ = H5Dclose(id)
      throw error
    }
    do {
      shape = try dataspaceShape(space, file: file, object: name)
    } catch {
      _ = H5Dclose(id)
      throw error
    }
    elementType = HDF5ElementType(type)
    // A file can declare any shape in a few bytes; refuse what could never be read into memory
    // here before anyone allocates for it.
    let elementBytes: Int
    switch elementType {
    case .float(let bytes), .integer(let bytes, _): elementBytes = max(bytes, 1)
    case .string, .other: elementBytes = 16
    }
    guard let elements = ProcessMemory.elementCount(shape),
      ProcessMemory.fittingBytes(elements: elements, bytesPerElement: elementBytes) != nil
    else {
      _ = H5Dclose(id)
      throw .tooLarge(path: file.path, object: name, shape: shape, limit: ProcessMemory.physicalBytes)
    }
    super.init(file: file, name: name, id: id, close: { H5Dclose($0) })
  }

  /// The number of elements (product of `shape`; `init` made sure it fits in memory).
  public var count: Int { shape.reduce(1, *) }

  /// `readFloats`, then throws `.nonFinite` naming this dataset when any value is NaN or
  /// infinite: for weights and optimizer state, which are never legitimately non-finite.
  public func readFiniteFloats(expectedShape: [Int]? = nil) throws(CheckpointError) -> [Float] {
    let values = try readFloats(expectedShape: expectedShape)
    var (bad, first) = (0, -1)
    values.withUnsafeBufferPointer { v in
      for i in v.indices where !v[i].isFinite {
        if first < 0 { first = i }
        bad += 1
      }
    }
    if bad > 0 { throw .nonFinite(path: file.path, object: name, count: bad, firstIndex: first) }
    return values
  }

  /// Throws `.wrongShape` when `expected` is given and is not this dataset's shape.
  func requireShape(_ expected: [Int]?) throws(CheckpointError) {
    if let expected, expected != shape {
      throw .wrongShape(path: file.path, object: name, expected: expected, found: shape)
    }
  }

  /// The values as `Float`, row-major (`dset[()].astype(numpy.float32)`). float16 is widened
  /// exactly, float64 rounded to nearest; other element types throw `.wrongDatatype`. With
  /// `expectedShape`, a different shape throws `.wrongShape` before anything is read.
  public func readFloats(expectedShape: [Int]? = nil) throws(CheckpointError) -> [Float] {
    HDF5Library.prepareThread()
    try requireShape(expectedShape)
    guard case .float(let bytes) = elementType else {
      throw .wrongDatatype(
        path: file.path, object: name, expected: "float16, float32 or float64",
        found: elementType.description)
    }
    if count == 0 { return [] }
    if bytes == 2 {
      var bits = [UInt16](repeating: 0, count: count)
      try read(into: &bits, memoryType: HDF5Library.float16)
      return HalfPrecision.floats(fromHalfBits: bits)
    }
    var values = [Float](repeating: 0, count: count)
    try read(into: &values, memoryType: distill_H5T_NATIVE_FLOAT())
    return values
  }

  /// The values of an integer dataset as `Int64`, row-major; other element types throw
  /// `.wrongDatatype`.
  public func readIntegers(expectedShape: [Int]? = nil) throws(CheckpointError) -> [Int64] {
    HDF5Library.prepareThread()
    try requireShape(expectedShape)
    guard case .integer = elementType else {
      throw .wrongDatatype(path: file.path, object: name, expected: "integer", found: elementType.description)
    }
    if count == 0 { return [] }
    var values = [Int64](repeating: 0, count: count)
    try read(into: &values, memoryType: distill_H5T_NATIVE_INT64())
    return values
  }

  /// Reads the whole dataset into `buffer`, HDF5 converting to `memoryType`.
  func read<Element>(into buffer: inout [Element], memoryType: hid_t) throws(CheckpointError) {
    let status = buffer.withUnsafeMutableBytes {
      H5Dread(id, memoryType, distill_H5S_ALL(), distill_H5S_ALL(), distill_H5P_DEFAULT(), $0.baseAddress)
    }
    guard status >= 0 else { throw failure("read") }
  }
}
