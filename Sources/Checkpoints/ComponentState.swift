// One stateful component's part of a training checkpoint: the group `/state/<component>`,
// written and read the same way for every component, so that a new component (a stage's
// observers, a method's memory) needs no code here.

/// The state of one component of a training (its optimizer, loss scaler, random streams,
/// distillation methods, compression stage, …) as the group `/state/<name>` of a checkpoint
/// holds it: float32 datasets (`arrays`, in order), uint64 datasets (`words`, one-dimensional),
/// float64 and int64 attributes (`numbers`, `integers`), and subgroups of the same kind
/// (`groups`). The component itself says what the entries mean and checks them when it
/// restores (`Distill`'s `TrainingComponent`).
public struct ComponentState: Equatable, Sendable {
  public var arrays: [NamedArray] = []
  public var words: [String: [UInt64]] = [:]
  public var numbers: [String: Double] = [:]
  public var integers: [String: Int64] = [:]
  public var groups: [String: ComponentState] = [:]

  public init(
    arrays: [NamedArray] = [], words: [String: [UInt64]] = [:], numbers: [String: Double] = [:],
    integers: [String: Int64] = [:], groups: [String: ComponentState] = [:]
  ) {
    self.arrays = arrays
    self.words = words
    self.numbers = numbers
    self.integers = integers
    self.groups = groups
  }

  /// No entry at all.
  public var isEmpty: Bool {
    arrays.isEmpty && words.isEmpty && numbers.isEmpty && integers.isEmpty && groups.values.allSatisfy(\.isEmpty)
  }

  /// Writes the entries into `group`: arrays in order, the rest in name order.
  func write(to group: HDF5Group) throws(CheckpointError) {
    for array in arrays { try group.writeDataset(array.name, floats: array.values, shape: array.shape) }
    for (name, values) in words.sorted(by: { $0.key < $1.key }) {
      try group.writeDataset(name, unsignedIntegers: values, shape: [values.count])
    }
    for (name, value) in numbers.sorted(by: { $0.key < $1.key }) { try group.setAttribute(name, double: value) }
    for (name, value) in integers.sorted(by: { $0.key < $1.key }) { try group.setAttribute(name, integer: value) }
    for (name, child) in groups.sorted(by: { $0.key < $1.key }) { try child.write(to: group.createGroup(name)) }
  }

  /// Reads a component's group: float datasets (finite values only) as arrays in name order,
  /// uint64 ones as words, integer attributes as integers and float ones as numbers,
  /// subgroups as components. Any other kind of entry is refused, naming it.
  static func read(_ group: HDF5Group) throws(CheckpointError) -> ComponentState {
    var state = ComponentState()
    for name in try group.memberNames() {
      if group.isGroup(name) {
        state.groups[name] = try read(group.group(name))
        continue
      }
      let dataset = try group.dataset(name)
      switch dataset.elementType {
      case .float:
        state.arrays.append(NamedArray(name: name, shape: dataset.shape, values: try dataset.readFiniteFloats()))
      case .integer(8, false):
        guard dataset.shape.count == 1 else {
          throw .wrongShape(path: dataset.file.path, object: dataset.name, expected: [dataset.count], found: dataset.shape)
        }
        state.words[name] = try dataset.readUnsignedIntegers()
      default:
        throw .wrongDatatype(
          path: dataset.file.path, object: dataset.name, expected: "float32 or uint64",
          found: dataset.elementType.description)
      }
    }
    for name in try group.attributeNames() {
      if let value = try? group.integerAttribute(name) {
        state.integers[name] = value
      } else {
        state.numbers[name] = try group.doubleAttribute(name)
      }
    }
    return state
  }
}
