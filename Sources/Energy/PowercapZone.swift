/// One zone of the powercap tree, as `distill energy` lists it, and whether its counter is
/// summed. The rules that keep every joule counted once:
///
/// - **Packages** (`intel-rapl:N`, named `package-P` or `package-P-die-D`) are summed.
/// - **Subzones** `core` and `uncore` (`intel-rapl:N:M`) are inside their package: listed, not
///   summed. `dram` subzones are *not* inside the package counter and are summed separately
///   (`EnergyReading.dramJoules`).
/// - **`psys`** (platform, a top-level `intel-rapl:N`) already contains the packages: listed,
///   not summed.
/// - **`intel-rapl-mmio:N`** is the same package counter through another interface: listed, not
///   summed.
/// - **Mirrored dies**: several `package-P-die-D` zones of one package `P` whose counters read
///   the same value (within `mirrorToleranceMicrojoules`, in any of three rounds of reads) are
///   one socket-wide counter exposed per die (multi-die AMD Threadripper/EPYC): only the first is
///   summed, with its `dram` subzone. Distinct counters (Intel multi-die parts have real per-die
///   counters) differ by far more after any uptime, so they are all summed.
public struct PowercapZone: Equatable, Sendable {
  /// What a zone measures, from its `name` file.
  public enum Kind: String, Sendable {
    case package, core, uncore, dram, psys, mmio, other
  }

  /// The zone's folder.
  public var path: String
  /// The text of its `name` file (`package-0`, `dram`, `psys`).
  public var name: String
  public var kind: Kind
  /// The package number `P` of `package-P[-die-D]`, and of the subzones of that package.
  public var package: Int?
  /// `max_energy_range_uj`: the counter wraps to 0 after this many microjoules.
  public var maxEnergyRange: UInt64
  /// Whether the zone's counter is summed (into the package total or the DRAM total).
  public var counted: Bool
  /// Why it is not summed, or what it adds to.
  public var note: String
  /// The largest `constraint_N_max_power_uw` of the zone, in watts; nil when it publishes none
  /// (then `RAPLMeter.plausibleMaxWatts` bounds its steps).
  public var maxPowerWatts: Double? = nil

  public var energyPath: String { path + "/energy_uj" }
}

/// Reads raw µJ counters from a zone list.
struct ZoneDiscovery {
  let root: String
  let files: any PowercapFiles
  /// Counters within this many µJ read at (nearly) the same instant are one counter.
  static let mirrorToleranceMicrojoules: UInt64 = 1000

  /// Every RAPL zone under `root`, with `counted` set by `PowercapZone`'s rules. Throws
  /// `EnergyError.noPowercap`, `.noPackageZones`, or the first error reading a counted zone's
  /// `energy_uj` (`.permissionDenied` when only root may read it).
  func zones() throws -> [PowercapZone] {
    guard files.exists(root), let entries = files.list(root) else { throw EnergyError.noPowercap(root: root) }
    // /sys/class/powercap links every zone at the top; /sys/devices/virtual/powercap nests
    // them under their control type. Accept both, each zone once.
    var tops: [String: String] = [:]
    for control in ["intel-rapl", "intel-rapl-mmio"] where entries.contains(control) {
      for name in files.list(root + "/" + control) ?? [] where Self.depth(name, control) == 1 {
        tops[name] = root + "/" + control + "/" + name
      }
    }
    for name in entries where Self.depth(name, "intel-rapl") == 1 || Self.depth(name, "intel-rapl-mmio") == 1
    {
      tops[name] = root + "/" + name
    }
    var zones: [PowercapZone] = []
    for entry in tops.keys.sorted(by: Self.zoneOrder) {
      let path = tops[entry]!
      let zone = try describe(path: path, entry: entry, isMMIO: entry.hasPrefix("intel-rapl-mmio"))
      zones.append(zone)
      for sub in (files.list(path) ?? []).sorted(by: Self.zoneOrder) where sub.hasPrefix(entry + ":") {
        var child = try describe(path: path + "/" + sub, entry: sub, isMMIO: zone.kind == .mmio)
        child.package = zone.package
        zones.append(child)
      }
    }
    try markMirrors(&zones)
    guard zones.contains(where: { $0.kind == .package && $0.counted }) else {
      throw EnergyError.noPackageZones(root: root, found: entries)
    }
    for zone in zones where zone.counted { _ = try counter(zone) }
    return zones
  }

  /// The zone's raw `energy_uj`.
  func counter(_ zone: PowercapZone) throws -> UInt64 {
    let text = try files.read(zone.energyPath)
    guard let value = UInt64(text) else { throw EnergyError.malformed(path: zone.energyPath, content: text) }
    return value
  }

  private func describe(path: String, entry: String, isMMIO: Bool) throws -> PowercapZone {
    let name = try files.read(path + "/name")
    let rangeText = (try? files.read(path + "/max_energy_range_uj")) ?? ""
    let range = UInt64(rangeText) ?? 0
    var zone = PowercapZone(
      path: path, name: name, kind: .other, package: nil, maxEnergyRange: range, counted: false, note: "")
    let isSubzone = entry.split(separator: ":").count > 2
    if isMMIO {
      zone.kind = .mmio
      zone.note = "the package counter again, through MMIO: not summed"
    } else if let package = Self.packageNumber(name), !isSubzone {
      (zone.kind, zone.package, zone.counted, zone.note) = (.package, package, true, "summed")
    } else if name == "psys" {
      (zone.kind, zone.note) = (.psys, "platform total, contains the packages: not summed")
    } else if name == "dram" {
      (zone.kind, zone.counted, zone.note) = (.dram, true, "summed separately as DRAM")
    } else if name == "core" || name == "uncore" {
      (zone.kind, zone.note) = (name == "core" ? .core : .uncore, "inside its package: not summed")
    } else {
      zone.note = "unknown zone: not summed"
    }
    var constraint = 0
    while let text = try? files.read(path + "/constraint_\(constraint)_max_power_uw") {
      if let microwatts = Double(text), microwatts > 0 {
        zone.maxPowerWatts = max(zone.maxPowerWatts ?? 0, microwatts * 1e-6)
      }
      constraint += 1
    }
    if zone.counted && range == 0 {
      throw EnergyError.malformed(path: path + "/max_energy_range_uj", content: rangeText)
    }
    return zone
  }

  /// Marks all but the first of each group of mirrored `package-P-die-D` zones (and their
  /// `dram` subzones) as not counted.
  private func markMirrors(_ zones: inout [PowercapZone]) throws {
    let packages = zones.indices.filter { zones[$0].kind == .package }
    for package in Set(packages.compactMap { zones[$0].package }) {
      let group = packages.filter { zones[$0].package == package }
      guard group.count > 1 else { continue }
      var mirrored = false
      for _ in 0..<3 where !mirrored {
        let values = try group.map { try counter(zones[$0]) }
        mirrored = values.max()! - values.min()! <= Self.mirrorToleranceMicrojoules
      }
      guard mirrored else { continue }
      let first = zones[group[0]]
      for index in group.dropFirst() {
        let mirror = zones[index]
        for i in zones.indices
        where zones[i].path == mirror.path || zones[i].path.hasPrefix(mirror.path + "/") {
          zones[i].counted = false
          zones[i].note = "mirrors \(first.name)'s counter (one socket-wide counter per die): not summed"
        }
      }
    }
  }

  /// `P` for `package-P` or `package-P-die-D`.
  static func packageNumber(_ name: String) -> Int? {
    let parts = name.split(separator: "-")
    guard parts.count == 2 || (parts.count == 4 && parts[2] == "die"), parts[0] == "package" else {
      return nil
    }
    return Int(parts[1])
  }

  /// How many `:N` levels `name` has below `control` (`intel-rapl:0:1` → 2), 0 otherwise.
  static func depth(_ name: String, _ control: String) -> Int {
    guard name.hasPrefix(control + ":") else { return 0 }
    let numbers = name.dropFirst(control.count + 1).split(separator: ":", omittingEmptySubsequences: false)
    return numbers.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) } ? numbers.count : 0
  }

  /// `intel-rapl:2` before `intel-rapl:10`.
  static func zoneOrder(_ a: String, _ b: String) -> Bool {
    let (x, y) = (a.split(separator: ":"), b.split(separator: ":"))
    if x.first != y.first { return a < b }
    return x.dropFirst().map { Int($0) ?? 0 }.lexicographicallyPrecedes(y.dropFirst().map { Int($0) ?? 0 })
  }
}
