import Foundation

@testable import Energy

/// A powercap tree in a temporary folder, laid out as the kernel lays out
/// `/sys/devices/virtual/powercap` and links it into `/sys/class/powercap`: zone folders
/// nested under their control type (`intel-rapl/intel-rapl:0/intel-rapl:0:1`), every zone also
/// linked at the top (`intel-rapl:0`, `intel-rapl:0:1`), each with `name`, `energy_uj`,
/// `max_energy_range_uj` and `enabled`.
final class FakePowercap {
  let root: String
  /// Typical Intel `max_energy_range_uj` (2^32 × 61 µJ).
  static let intelRange: UInt64 = 262_143_328_850

  init() throws {
    root = NSTemporaryDirectory() + "fake-powercap-\(UUID().uuidString)"
    for control in ["intel-rapl", "intel-rapl-mmio"] {
      try FileManager.default.createDirectory(atPath: root + "/" + control, withIntermediateDirectories: true)
      try "1\n".write(toFile: root + "/\(control)/enabled", atomically: false, encoding: .utf8)
    }
  }

  deinit { try? FileManager.default.removeItem(atPath: root) }

  /// Adds zone `entry` (`intel-rapl:0`, `intel-rapl:0:1`, `intel-rapl-mmio:0`) named `name`.
  func addZone(_ entry: String, name: String, microjoules: UInt64, range: UInt64 = FakePowercap.intelRange)
    throws
  {
    let path = folder(entry)
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    try (name + "\n").write(toFile: path + "/name", atomically: false, encoding: .utf8)
    try "\(range)\n".write(toFile: path + "/max_energy_range_uj", atomically: false, encoding: .utf8)
    try "1\n".write(toFile: path + "/enabled", atomically: false, encoding: .utf8)
    try set(entry, microjoules)
    try FileManager.default.createSymbolicLink(atPath: root + "/" + entry, withDestinationPath: path)
  }

  /// Rewrites zone `entry`'s `energy_uj`.
  func set(_ entry: String, _ microjoules: UInt64) throws {
    try "\(microjoules)\n".write(toFile: folder(entry) + "/energy_uj", atomically: false, encoding: .utf8)
  }

  /// Adds `joules` to zone `entry`'s `energy_uj`.
  func advance(_ entry: String, joules: Double) throws {
    let text = try String(contentsOfFile: folder(entry) + "/energy_uj", encoding: .utf8)
    let now = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))!
    try set(entry, now + UInt64((joules * 1e6).rounded()))
  }

  /// The real folder of `entry`: nested under its control type and its parents.
  func folder(_ entry: String) -> String {
    let parts = entry.split(separator: ":").map(String.init)
    var path = root + "/" + parts[0]
    for depth in 1..<parts.count { path += "/" + parts[0...depth].joined(separator: ":") }
    return path
  }

  /// Two packages, each with `core` and `dram` subzones, a `psys` zone and an MMIO package
  /// zone: the layout of a two-socket Intel server with a platform counter.
  static func twoSockets() throws -> FakePowercap {
    let tree = try FakePowercap()
    try tree.addZone("intel-rapl:0", name: "package-0", microjoules: 10_000_000)
    try tree.addZone("intel-rapl:0:0", name: "core", microjoules: 4_000_000)
    try tree.addZone("intel-rapl:0:1", name: "dram", microjoules: 1_000_000)
    try tree.addZone("intel-rapl:1", name: "package-1", microjoules: 20_000_000)
    try tree.addZone("intel-rapl:1:0", name: "core", microjoules: 5_000_000)
    try tree.addZone("intel-rapl:1:1", name: "dram", microjoules: 2_000_000)
    try tree.addZone("intel-rapl:2", name: "psys", microjoules: 90_000_000)
    try tree.addZone("intel-rapl-mmio:0", name: "package-0", microjoules: 10_000_000)
    return tree
  }
}

/// Files that read like `SystemPowercapFiles` except that `energy_uj` fails as it does for a
/// non-root user since the 2020 RAPL side-channel fix (root reads everything, so the real
/// `chmod` test cannot show this in CI).
struct RootOnlyEnergyFiles: PowercapFiles {
  let real = SystemPowercapFiles()
  func read(_ path: String) throws -> String {
    if path.hasSuffix("/energy_uj") { throw EnergyError.permissionDenied(path: path) }
    return try real.read(path)
  }
  func list(_ folder: String) -> [String]? { real.list(folder) }
  func exists(_ path: String) -> Bool { real.exists(path) }
}
