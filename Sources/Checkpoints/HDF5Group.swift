import Autodiff
import CHDF5

/// How a float dataset is stored in the file.
public enum StoragePrecision: String, CaseIterable, Sendable {
  /// IEEE binary32, little-endian (`numpy.float32`).
  case f32
  /// IEEE binary16, little-endian, the exact type h5py writes for `numpy.float16`; values are
  /// rounded to nearest, ties to even (`HalfPrecision`).
  case f16
}

/// An HDF5 group (`h5py.Group`): named members that are groups or datasets.
public final class HDF5Group: HDF5Object {
  init(file: HDF5File, name: String, id: hid_t) {
    super.init(file: file, name: name, id: id, close: { H5Gclose($0) })
  }

  /// The group at `path` below this one (`"student"`, `"a/b"`; a leading `/` starts at the
  /// root). Throws `.missingGroup` naming the first missing part, `.wrongObjectType` when a
  /// part is a dataset.
  public func group(_ path: String) throws(CheckpointError) -> HDF5Group {
    var current = path.hasPrefix("/") ? try file.rootGroup() : self
    for part in path.split(separator: "/").map(String.init) {
      let child = current.childName(part)
      guard current.contains(part) else { throw .missingGroup(path: file.path, group: child) }
      let id = try current.openMember(part, expecting: H5I_GROUP, kind: "group")
      current = HDF5Group(file: file, name: child, id: id)
    }
    return current
  }

  /// Creates the group at `path` below this one and every missing group above it, each
  /// listing its members in creation order (`create_group(path, track_order=True)`). Fails if
  /// the last part already exists.
  public func createGroup(_ path: String) throws(CheckpointError) -> HDF5Group {
    HDF5Library.prepareThread()
    var current = path.hasPrefix("/") ? try file.rootGroup() : self
    let parts = path.split(separator: "/").map(String.init)
    guard !parts.isEmpty else {
      throw .hdf5(
        path: file.path, object: name, operation: "create group \"\(path)\"",
        detail: "the name is empty")
    }
    for (index, part) in parts.enumerated() {
      if index < parts.count - 1, current.contains(part) {
        current = try current.group(part)
        continue
      }
      let creation = H5Pcreate(distill_H5P_GROUP_CREATE())
      guard creation >= 0 else { throw failure("make a group creation list") }
      defer { _ = H5Pclose(creation) }
      guard H5Pset_link_creation_order(creation, HDF5File.creationOrderFlags) >= 0 else {
        throw failure("set the link creation order")
      }
      let child = current.childName(part)
      let id = H5Gcreate2(
        current.id, part, distill_H5P_DEFAULT(), creation, distill_H5P_DEFAULT())
      guard id >= 0 else { throw failure("create group", object: child) }
      current = HDF5Group(file: file, name: child, id: id)
    }
    return current
  }

  /// Whether the group has a member (group, dataset or link) called `member`.
  public func contains(_ member: String) -> Bool {
    HDF5Library.prepareThread()
    guard !member.isEmpty, !member.contains("/") else { return false }
    return H5Lexists(id, member, distill_H5P_DEFAULT()) > 0
  }

  /// The members' names, in creation order when the group tracks it (groups we write, h5py's
  /// `track_order=True`), otherwise in HDF5's name order (h5py's default iteration order).
  public func memberNames() throws(CheckpointError) -> [String] {
    HDF5Library.prepareThread()
    var info = H5G_info_t()
    guard H5Gget_info(id, &info) >= 0 else { throw failure("list the members") }
    let index = try tracksCreationOrder() ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME
    var names: [String] = []
    names.reserveCapacity(Int(min(info.nlinks, 1 << 16)))  // the count comes from the file
    for position in 0..<info.nlinks {
      let length = H5Lget_name_by_idx(
        id, ".", index, H5_ITER_INC, position, nil, 0, distill_H5P_DEFAULT())
      guard length >= 0 else { throw failure("read member \(position)'s name") }
      var buffer = [CChar](repeating: 0, count: Int(length) + 1)
      guard
        H5Lget_name_by_idx(
          id, ".", index, H5_ITER_INC, position, &buffer, buffer.count, distill_H5P_DEFAULT()) >= 0
      else { throw failure("read member \(position)'s name") }
      names.append(buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
    }
    return names
  }

  /// The dataset called `member` (`group[member]`). Throws `.missingDataset` or
  /// `.wrongObjectType` (when it is a group).
  public func dataset(_ member: String) throws(CheckpointError) -> HDF5Dataset {
    let child = childName(member)
    guard contains(member) else { throw .missingDataset(path: file.path, dataset: child) }
    let id = try openMember(member, expecting: H5I_DATASET, kind: "dataset")
    return try HDF5Dataset(file: file, name: child, id: id)
  }

  /// Writes `values` (row-major) as the dataset `member` of `shape` (`[]` for a scalar),
  /// stored as `precision` (`group.create_dataset(member, data=array.astype(dtype))`).
  public func writeDataset(
    _ member: String, floats values: [Float], shape: [Int], precision: StoragePrecision = .f32
  ) throws(CheckpointError) {
    precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
    switch precision {
    case .f32:
      try writeDataset(member, shape: shape, fileType: distill_H5T_IEEE_F32LE()) { dataset in
        values.withUnsafeBytes {
          H5Dwrite(
            dataset, distill_H5T_NATIVE_FLOAT(), distill_H5S_ALL(), distill_H5S_ALL(),
            distill_H5P_DEFAULT(), $0.baseAddress)
        }
      }
    case .f16:
      let bits = HalfPrecision.halfBits(from: values)
      try writeDataset(member, shape: shape, fileType: HDF5Library.float16) { dataset in
        bits.withUnsafeBytes {
          H5Dwrite(
            dataset, HDF5Library.float16, distill_H5S_ALL(), distill_H5S_ALL(),
            distill_H5P_DEFAULT(), $0.baseAddress)
        }
      }
    }
  }

  /// Writes `values` (row-major) as the little-endian Int64 dataset `member` of `shape`.
  public func writeDataset(_ member: String, integers values: [Int64], shape: [Int]) throws(CheckpointError) {
    precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
    try writeDataset(member, shape: shape, fileType: distill_H5T_STD_I64LE()) { dataset in
      values.withUnsafeBytes {
        H5Dwrite(
          dataset, distill_H5T_NATIVE_INT64(), distill_H5S_ALL(), distill_H5S_ALL(),
          distill_H5P_DEFAULT(), $0.baseAddress)
      }
    }
  }

  /// Creates the dataset and lets `write` fill it (returning HDF5's status); skipped for
  /// datasets without elements.
  func writeDataset(
    _ member: String, shape: [Int], fileType: hid_t, _ write: (hid_t) -> herr_t
  ) throws(CheckpointError) {
    HDF5Library.prepareThread()
    let child = childName(member)
    guard !member.isEmpty, !member.contains("/"), member != "." else {
      throw .hdf5(
        path: file.path, object: child, operation: "create dataset",
        detail: "a dataset name must be non-empty and hold no \"/\"")
    }
    let dims = shape.map { hsize_t($0) }
    let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), dims, nil)
    guard space >= 0 else { throw failure("make a dataspace of shape \(shape)", object: child) }
    defer { _ = H5Sclose(space) }
    let dataset = H5Dcreate2(
      id, member, fileType, space, distill_H5P_DEFAULT(), distill_H5P_DEFAULT(), distill_H5P_DEFAULT())
    guard dataset >= 0 else { throw failure("create dataset", object: child) }
    defer { _ = H5Dclose(dataset) }
    if shape.reduce(1, *) > 0, write(dataset) < 0 { throw failure("write dataset", object: child) }
  }

  /// Whether members can be listed in creation order (tracked and indexed).
  private func tracksCreationOrder() throws(CheckpointError) -> Bool {
    let creation = H5Gget_create_plist(id)
    guard creation >= 0 else { throw failure("read the group's creation properties") }
    defer { _ = H5Pclose(creation) }
    var flags: UInt32 = 0
    guard H5Pget_link_creation_order(creation, &flags) >= 0 else { return false }
    return flags & HDF5File.creationOrderFlags == HDF5File.creationOrderFlags
  }

  /// Whether the member `member` is a group (false for a dataset, or when there is none).
  public func isGroup(_ member: String) -> Bool {
    HDF5Library.prepareThread()
    let object = H5Oopen(id, member, distill_H5P_DEFAULT())
    guard object >= 0 else {
      HDF5Library.clearErrors()
      return false
    }
    defer { _ = H5Oclose(object) }
    return H5Iget_type(object) == H5I_GROUP
  }

  /// Opens the existing member `member`, checking that it is of `type`.
  private func openMember(_ member: String, expecting type: H5I_type_t, kind: String) throws(CheckpointError)
    -> hid_t
  {
    HDF5Library.prepareThread()
    let object = H5Oopen(id, member, distill_H5P_DEFAULT())
    guard object >= 0 else { throw failure("open", object: childName(member)) }
    let found = H5Iget_type(object)
    guard found == type else {
      _ = H5Oclose(object)
      let foundKind =
        found == H5I_GROUP
        ? "group"
        : found == H5I_DATASET ? "dataset" : found == H5I_DATATYPE ? "named datatype" : "other object"
      throw .wrongObjectType(path: file.path, object: childName(member), expected: kind, found: foundKind)
    }
    return object
  }
}
