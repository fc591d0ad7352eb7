import CHDF5

#if canImport(Glibc)
  import Glibc
#endif

// The dataset kinds training checkpoints need besides float32/16 and Int64: float64 (exact loss
// sums and results), unsigned 64-bit words (random generator states) and arrays of
// variable-length UTF-8 strings (metrics lines).

extension HDF5Group {
  /// Writes `values` (row-major) as the little-endian float64 dataset `member` of `shape`
  /// (`numpy.float64`), exactly.
  public func writeDataset(_ member: String, doubles values: [Double], shape: [Int]) throws(CheckpointError) {
    precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
    try writeDataset(member, shape: shape, fileType: distill_H5T_IEEE_F64LE()) { dataset in
      values.withUnsafeBytes {
        H5Dwrite(
          dataset, distill_H5T_NATIVE_DOUBLE(), distill_H5S_ALL(), distill_H5S_ALL(),
          distill_H5P_DEFAULT(), $0.baseAddress)
      }
    }
  }

  /// Writes `values` (row-major) as the little-endian UInt64 dataset `member` of `shape`
  /// (`numpy.uint64`).
  public func writeDataset(_ member: String, unsignedIntegers values: [UInt64], shape: [Int])
    throws(CheckpointError)
  {
    precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
    try writeDataset(member, shape: shape, fileType: distill_H5T_STD_U64LE()) { dataset in
      values.withUnsafeBytes {
        H5Dwrite(
          dataset, distill_H5T_NATIVE_UINT64(), distill_H5S_ALL(), distill_H5S_ALL(),
          distill_H5P_DEFAULT(), $0.baseAddress)
      }
    }
  }

  /// Writes `values` (row-major) as the int8 dataset `member` of `shape` (`numpy.int8`):
  /// quantized weights.
  public func writeDataset(_ member: String, int8s values: [Int8], shape: [Int]) throws(CheckpointError) {
    precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
    try writeDataset(member, shape: shape, fileType: distill_H5T_STD_I8LE()) { dataset in
      values.withUnsafeBytes {
        H5Dwrite(
          dataset, distill_H5T_NATIVE_INT8(), distill_H5S_ALL(), distill_H5S_ALL(),
          distill_H5P_DEFAULT(), $0.baseAddress)
      }
    }
  }

  /// Writes `values` as the one-dimensional dataset `member` of variable-length UTF-8 strings,
  /// shape `[values.count]`; h5py reads it as an array of `bytes` (`.asstr()` gives `str`).
  /// The strings must not contain NUL characters.
  public func writeDataset(_ member: String, strings values: [String]) throws(CheckpointError) {
    let type = try stringType(member, cset: H5T_CSET_UTF8)
    defer { _ = H5Tclose(type) }
    // strdup'ed C strings, freed below: HDF5 reads the pointers during H5Dwrite only.
    let pointers: [UnsafePointer<CChar>?] = values.map { UnsafePointer(strdup($0)) }
    defer { for pointer in pointers { free(UnsafeMutablePointer(mutating: pointer)) } }
    try writeDataset(member, shape: [values.count], fileType: type) { dataset in
      pointers.withUnsafeBytes {
        H5Dwrite(dataset, type, distill_H5S_ALL(), distill_H5S_ALL(), distill_H5P_DEFAULT(), $0.baseAddress)
      }
    }
  }
}

extension HDF5Dataset {
  /// The values of a float or integer dataset as `Double`, row-major; other element types throw
  /// `.wrongDatatype`.
  public func readDoubles() throws(CheckpointError) -> [Double] {
    HDF5Library.prepareThread()
    switch elementType {
    case .float, .integer: break
    default:
      throw .wrongDatatype(path: file.path, object: name, expected: "float64", found: elementType.description)
    }
    if count == 0 { return [] }
    var values = [Double](repeating: 0, count: count)
    try read(into: &values, memoryType: distill_H5T_NATIVE_DOUBLE())
    return values
  }

  /// The values of an unsigned 64-bit integer dataset, row-major; other element types throw
  /// `.wrongDatatype`, another shape than `expectedShape` (when given) `.wrongShape`.
  public func readUnsignedIntegers(expectedShape: [Int]? = nil) throws(CheckpointError) -> [UInt64] {
    HDF5Library.prepareThread()
    try requireShape(expectedShape)
    guard case .integer(8, false) = elementType else {
      throw .wrongDatatype(path: file.path, object: name, expected: "uint64", found: elementType.description)
    }
    if count == 0 { return [] }
    var values = [UInt64](repeating: 0, count: count)
    try read(into: &values, memoryType: distill_H5T_NATIVE_UINT64())
    return values
  }

  /// The values of an integer dataset as int8, row-major (`expectedShape` checked when given);
  /// another element type, or a value outside −128…127, throws.
  public func readInt8s(expectedShape: [Int]? = nil) throws(CheckpointError) -> [Int8] {
    try requireShape(expectedShape)
    let wide = try readIntegers()
    var values = [Int8](repeating: 0, count: wide.count)
    for (i, v) in wide.enumerated() {
      guard let narrow = Int8(exactly: v) else {
        throw .invalidValue(path: file.path, object: name, value: "\(v)", expected: "an int8 in -128...127")
      }
      values[i] = narrow
    }
    return values
  }

  /// The strings of a one-dimensional dataset of variable-length strings (as
  /// `writeDataset(_:strings:)` and h5py's `string_dtype()` write); invalid UTF-8 is repaired
  /// with U+FFFD. Other element types or ranks throw.
  public func readStrings() throws(CheckpointError) -> [String] {
    HDF5Library.prepareThread()
    guard shape.count == 1 else {
      throw .wrongShape(path: file.path, object: name, expected: [-1], found: shape)
    }
    guard case .string = elementType else {
      throw .wrongDatatype(
        path: file.path, object: name, expected: "variable-length string", found: elementType.description)
    }
    let fileType = H5Dget_type(id)
    guard fileType >= 0 else { throw failure("read the type") }
    defer { _ = H5Tclose(fileType) }
    guard H5Tis_variable_str(fileType) > 0 else {
      throw .wrongDatatype(
        path: file.path, object: name, expected: "variable-length string", found: "fixed-length string")
    }
    if count == 0 { return [] }
    let memory = try stringType(name, cset: H5Tget_cset(fileType))
    defer { _ = H5Tclose(memory) }
    let space = H5Dget_space(id)
    guard space >= 0 else { throw failure("read the shape") }
    defer { _ = H5Sclose(space) }
    var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
    try read(into: &pointers, memoryType: memory)
    // HDF5 allocated each string; hand them back however the reading ends.
    defer { _ = H5Dvlen_reclaim(memory, space, distill_H5P_DEFAULT(), &pointers) }
    return pointers.map { pointer in
      guard let pointer else { return "" }
      return String(decoding: UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)), as: UTF8.self)
    }
  }
}
