/// Why RAPL cannot be read, or a measurement window was misused. Each case names the file or
/// folder and says how to fix it; `distill energy` and the `auto` fallback print the
/// description.
public enum EnergyError: Error, Equatable, CustomStringConvertible {
  /// The powercap folder does not exist: no powercap driver (a virtual machine, a container
  /// without `/sys`, a CPU or kernel without RAPL support).
  case noPowercap(root: String)
  /// The powercap folder exists but holds no RAPL package zone (`intel-rapl:N` named
  /// `package-N`); `found` lists what it holds.
  case noPackageZones(root: String, found: [String])
  /// `energy_uj` exists but only root may read it (Linux ≥ 5.10 and backports, the fix for
  /// the PLATYPUS RAPL side channel, CVE-2020-8694).
  case permissionDenied(path: String)
  /// A powercap file could not be read for another reason.
  case unreadable(path: String, reason: String)
  /// A powercap file does not hold what the kernel writes there (`energy_uj`: an integer).
  case malformed(path: String, content: String)
  /// `begin(name)` for a window that is already open.
  case windowAlreadyOpen(name: String)
  /// `end(name)` for a window that is not open.
  case windowNotOpen(name: String)

  public var description: String {
    switch self {
    case .noPowercap(let root):
      return
        "\(root) does not exist: this kernel exposes no powercap (RAPL) counters here "
        + "(a virtual machine or container without /sys/class/powercap, or a CPU/kernel without RAPL). "
        + "To measure, run on bare metal with the intel_rapl_msr module loaded (`sudo modprobe intel_rapl_msr`; "
        + "it serves AMD Zen too)"
    case .noPackageZones(let root, let found):
      let listed = found.isEmpty ? "nothing" : found.joined(separator: ", ")
      return
        "\(root) holds no RAPL package zone (intel-rapl:N named package-N), only \(listed). "
        + "Load the RAPL driver: `sudo modprobe intel_rapl_msr`"
    case .permissionDenied(let path):
      return
        "\(path) is readable only by root (since the 2020 fix for the RAPL power side channel, "
        + "CVE-2020-8694). To measure as this user: "
        + "`sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj /sys/class/powercap/intel-rapl:*/intel-rapl:*/energy_uj` "
        + "(until reboot; a udev rule or a systemd-tmpfiles line makes it permanent), or run as root"
    case .unreadable(let path, let reason):
      return "\(path): cannot read (\(reason))"
    case .malformed(let path, let content):
      return "\(path): expected a whole number of microjoules, found '\(content)'"
    case .windowAlreadyOpen(let name):
      return "energy window '\(name)' is already open; end it before beginning it again"
    case .windowNotOpen(let name):
      return "energy window '\(name)' was never begun (or has already ended)"
    }
  }
}
