import CHDF5

/// An open group or dataset of an `HDF5File`, named by its absolute path in the file
/// (`/student/0.weight`). It keeps its file alive and closes its HDF5 id when it goes away.
/// Attributes (`h5py`'s `obj.attrs`) are read and written here.
public class HDF5Object {
  /// The file the object belongs to.
  public let file: HDF5File
  /// The absolute name in the file: `/`, `/student`, `/student/0.weight`.
  public let name: String
  let id: hid_t
  private let closeID: (hid_t) -> herr_t

  init(file: HDF5File, name: String, id: hid_t, close: @escaping (hid_t) -> herr_t) {
    self.file = file
    self.name = name
    self.id = id
    self.closeID = close
  }

  deinit { _ = closeID(id) }

  /// The absolute name of a member of this object (`/student` + `0.weight`).
  func childName(_ member: String) -> String { name == "/" ? "/\(member)" : "\(name)/\(member)" }

  /// An `.hdf5` error for `operation` on `object` (this one by default), with HDF5's explanation.
  func failure(_ operation: String, object: String? = nil) -> CheckpointError {
    file.failure(operation, object: object ?? name)
  }

  // MARK: Attributes

  /// The names of the object's attributes (`list(obj.attrs)`), in name order; at most 4096.
  public func attributeNames() throws(CheckpointError) -> [String] {
    HDF5Library.prepareThread()
    var names: [String] = []
    var position: hsize_t = 0
    while names.count < 4096 {
      let length = H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, position, nil, 0, distill_H5P_DEFAULT())
      if length < 0 { break }  // past the last attribute
      var buffer = [CChar](repeating: 0, count: Int(length) + 1)
      guard
        H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, position, &buffer, buffer.count, distill_H5P_DEFAULT())
          >= 0
      else { throw failure("read attribute \(position)'s name") }
      names.append(buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
      position += 1
    }
    HDF5Library.clearErrors()
    return names
  }

  /// Whether the object has an attribute called `attribute`.
  public func hasAttribute(_ attribute: String) -> Bool {
    HDF5Library.prepareThread()
    return H5Aexists(id, attribute) > 0
  }

  /// Stores `value` as a variable-length UTF-8 string attribute, which h5py reads as `str`.
  /// Replaces an attribute of the same name. The string must not contain NUL characters.
  public func setAttribute(_ attribute: String, string value: String) throws(CheckpointError) {
    let type = try stringType(attribute, cset: H5T_CSET_UTF8)
    defer { _ = H5Tclose(type) }
    try writeAttribute(attribute, fileType: type) { attr throws(CheckpointError) in
      let status = value.withCString { chars in
        var pointer: UnsafePointer<CChar>? = chars
        return H5Awrite(attr, type, &pointer)
      }
      guard status >= 0 else { throw failure("write attribute \"\(attribute)\"") }
    }
  }

  /// Stores `value` as a scalar little-endian 64-bit integer attribute (`numpy.int64`).
  public func setAttribute(_ attribute: String, integer value: Int64) throws(CheckpointError) {
    try writeAttribute(attribute, fileType: distill_H5T_STD_I64LE()) { attr throws(CheckpointError) in
      var value = value
      guard H5Awrite(attr, distill_H5T_NATIVE_INT64(), &value) >= 0 else {
        throw failure("write attribute \"\(attribute)\"")
      }
    }
  }

  /// Stores `value` as a scalar little-endian 64-bit float attribute (`numpy.float64`).
  public func setAttribute(_ attribute: String, double value: Double) throws(CheckpointError) {
    try writeAttribute(attribute, fileType: distill_H5T_IEEE_F64LE()) { attr throws(CheckpointError) in
      var value = value
      guard H5Awrite(attr, distill_H5T_NATIVE_DOUBLE(), &value) >= 0 else {
        throw failure("write attribute \"\(attribute)\"")
      }
    }
  }

  /// A string attribute, variable-length or fixed-length (NUL- or space-padded), as h5py
  /// writes for `str` and `numpy.bytes_`; invalid UTF-8 is repaired with U+FFFD.
  public func stringAttribute(_ attribute: String) throws(CheckpointError) -> String {
    try readAttribute(attribute) { attr, type throws(CheckpointError) in
      guard H5Tget_class(type) == H5T_STRING else {
        throw .wrongDatatype(
          path: file.path, object: attributeName(attribute), expected: "string",
          found: HDF5ElementType(type).description)
      }
      if H5Tis_variable_str(type) > 0 {
        let memory = try stringType(attribute, cset: H5Tget_cset(type))
        defer { _ = H5Tclose(memory) }
        var pointer: UnsafeMutablePointer<CChar>? = nil
        guard H5Aread(attr, memory, &pointer) >= 0 else { throw failure("read attribute \"\(attribute)\"") }
        defer { if let pointer { _ = H5free_memory(pointer) } }
        return pointer.map { String(cString: $0) } ?? ""
      }
      var bytes = [UInt8](repeating: 0, count: H5Tget_size(type))
      guard H5Aread(attr, type, &bytes) >= 0 else { throw failure("read attribute \"\(attribute)\"") }
      if let end = bytes.firstIndex(of: 0) { bytes.removeSubrange(end...) }
      if H5Tget_strpad(type) == H5T_STR_SPACEPAD {
        while bytes.last == UInt8(ascii: " ") { bytes.removeLast() }
      }
      return String(decoding: bytes, as: UTF8.self)
    }
  }

  /// A scalar integer attribute of any integer type, widened to `Int64`.
  public func integerAttribute(_ attribute: String) throws(CheckpointError) -> Int64 {
    try readAttribute(attribute) { attr, type throws(CheckpointError) in
      guard H5Tget_class(type) == H5T_INTEGER else {
        throw .wrongDatatype(
          path: file.path, object: attributeName(attribute), expected: "integer",
          found: HDF5ElementType(type).description)
      }
      var value: Int64 = 0
      guard H5Aread(attr, distill_H5T_NATIVE_INT64(), &value) >= 0 else {
        throw failure("read attribute \"\(attribute)\"")
      }
      return value
    }
  }

  /// A scalar float or integer attribute, as `Double`.
  public func doubleAttribute(_ attribute: String) throws(CheckpointError) -> Double {
    try readAttribute(attribute) { attr, type throws(CheckpointError) in
      let typeClass = H5Tget_class(type)
      guard typeClass == H5T_FLOAT || typeClass == H5T_INTEGER else {
        throw .wrongDatatype(
          path: file.path, object: attributeName(attribute), expected: "float",
          found: HDF5ElementType(type).description)
      }
      var value: Double = 0
      guard H5Aread(attr, distill_H5T_NATIVE_DOUBLE(), &value) >= 0 else {
        throw failure("read attribute \"\(attribute)\"")
      }
      return value
    }
  }

  /// How errors name an attribute: `/student@architecture`.
  private func attributeName(_ attribute: String) -> String { "\(name)@\(attribute)" }

  /// A new variable-length string type in `cset`; the caller closes it.
  func stringType(_ attribute: String, cset: H5T_cset_t) throws(CheckpointError) -> hid_t {
    HDF5Library.prepareThread()
    let type = H5Tcopy(distill_H5T_C_S1())
    guard type >= 0 else { throw failure("make a string type for \"\(attribute)\"") }
    guard H5Tset_size(type, distill_H5T_VARIABLE()) >= 0, H5Tset_cset(type, cset) >= 0 else {
      _ = H5Tclose(type)
      throw failure("make a string type for \"\(attribute)\"")
    }
    return type
  }

  /// Creates (replacing) the scalar attribute `attribute` of `fileType` and hands its id to
  /// `write`, closing it afterwards.
  private func writeAttribute(
    _ attribute: String, fileType: hid_t, _ write: (hid_t) throws(CheckpointError) -> Void
  ) throws(CheckpointError) {
    HDF5Library.prepareThread()
    if H5Aexists(id, attribute) > 0, H5Adelete(id, attribute) < 0 {
      throw failure("replace attribute \"\(attribute)\"")
    }
    let space = H5Screate(H5S_SCALAR)
    guard space >= 0 else { throw failure("make a scalar dataspace") }
    defer { _ = H5Sclose(space) }
    let attr = H5Acreate2(id, attribute, fileType, space, distill_H5P_DEFAULT(), distill_H5P_DEFAULT())
    guard attr >= 0 else { throw failure("create attribute \"\(attribute)\"") }
    defer { _ = H5Aclose(attr) }
    try write(attr)
  }

  /// Opens the scalar attribute `attribute` and hands its id and file type to `read`, closing
  /// both afterwards.
  private func readAttribute<T>(
    _ attribute: String, _ read: (hid_t, hid_t) throws(CheckpointError) -> T
  ) throws(CheckpointError) -> T {
    HDF5Library.prepareThread()
    guard H5Aexists(id, attribute) > 0 else {
      throw .missingAttribute(path: file.path, object: name, attribute: attribute)
    }
    let attr = H5Aopen(id, attribute, distill_H5P_DEFAULT())
    guard attr >= 0 else { throw failure("open attribute \"\(attribute)\"") }
    defer { _ = H5Aclose(attr) }
    let space = H5Aget_space(attr)
    guard space >= 0 else { throw failure("read the shape of attribute \"\(attribute)\"") }
    defer { _ = H5Sclose(space) }
    let shape = try dataspaceShape(space, file: file, object: attributeName(attribute))
    guard shape.reduce(1, *) == 1 else {
      throw .wrongShape(path: file.path, object: attributeName(attribute), expected: [], found: shape)
    }
    let type = H5Aget_type(attr)
    guard type >= 0 else { throw failure("read the type of attribute \"\(attribute)\"") }
    defer { _ = H5Tclose(type) }
    return try read(attr, type)
  }
}

/// The shape of a dataspace: `[]` for a scalar, the dimensions for a simple one.
func dataspaceShape(_ space: hid_t, file: HDF5File, object: String) throws(CheckpointError) -> [Int] {
  switch H5Sget_simple_extent_type(space) {
  case H5S_SCALAR:
    return []
  case H5S_SIMPLE:
    let rank = H5Sget_simple_extent_ndims(space)
    guard rank >= 0 else { throw file.failure("read the rank", object: object) }
    var dims = [hsize_t](repeating: 0, count: Int(rank))
    guard H5Sget_simple_extent_dims(space, &dims, nil) >= 0 else {
      throw file.failure("read the shape", object: object)
    }
    return dims.map { Int($0) }
  default:
    throw .hdf5(
      path: file.path, object: object, operation: "read the shape",
      detail: "it has no dataspace (an empty H5S_NULL object)")
  }
}
