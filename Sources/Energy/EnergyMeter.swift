#if canImport(Glibc)
  import Glibc
#endif

/// Where an energy figure comes from. Every figure carries its source, in logs, tables and
/// plots: an estimate is never passed off as a measurement.
public enum EnergySource: String, Sendable, CaseIterable {
  /// Measured by the CPU's RAPL counters (powercap sysfs): the whole package(s), every process.
  case rapl
  /// Estimated from this process's CPU time × watts per busy core (`EstimateMeter`).
  case estimate
}

/// A meter's cumulative counters since it started.
public struct EnergyReading: Equatable, Sendable {
  /// Energy since the meter started, joules: CPU packages (RAPL) or the estimate. Excludes DRAM.
  public var joules: Double
  /// DRAM energy since the meter started, joules; nil where the meter has no DRAM counter.
  public var dramJoules: Double?
  /// Monotonic clock (`CLOCK_MONOTONIC`) at the reading, seconds.
  public var seconds: Double
  /// RAPL only: counter steps found implausible since the meter started (`RAPLMeter`), and
  /// why the last one was; a window over which this count grows falls back to `estimateJoules`.
  public var implausibleSteps = 0
  public var implausibleReason: String? = nil
  /// RAPL only: the CPU-time estimate since the meter started, the fallback of such a window.
  public var estimateJoules: Double? = nil

  public init(joules: Double, dramJoules: Double? = nil, seconds: Double) {
    self.joules = joules
    self.dramJoules = dramJoules
    self.seconds = seconds
  }
}

/// The energy of one measurement window: the difference of two readings.
public struct EnergyMeasurement: Equatable, Sendable {
  /// The window's name (`"student epoch 3 train"`).
  public var name: String
  /// Package energy (RAPL) or the estimate over the window, joules; DRAM excluded.
  public var joules: Double
  /// DRAM energy over the window, joules; nil without a DRAM counter.
  public var dramJoules: Double?
  /// The window's length on the monotonic clock, seconds.
  public var seconds: Double
  public var source: EnergySource
  /// Why a RAPL window fell back to the estimate (a counter step that is not physically
  /// plausible, naming the zone); nil otherwise.
  public var warning: String? = nil

  /// Mean power over the window: `joules / seconds` (0 for an empty window).
  public var averageWatts: Double { seconds > 0 ? joules / seconds : 0 }

  /// The measurement between readings `start` and `end`. When a counter step inside the window
  /// was implausible (`EnergyReading.implausibleSteps` grew), the window is not a measurement:
  /// it takes the CPU-time estimate, labelled `estimate`, without DRAM, and says why in `warning`.
  public init(name: String, from start: EnergyReading, to end: EnergyReading, source: EnergySource) {
    self.name = name
    self.joules = end.joules - start.joules
    if let a = start.dramJoules, let b = end.dramJoules { dramJoules = b - a } else { dramJoules = nil }
    self.seconds = end.seconds - start.seconds
    self.source = source
    if end.implausibleSteps > start.implausibleSteps, let a = start.estimateJoules, let b = end.estimateJoules {
      joules = b - a
      dramJoules = nil
      self.source = .estimate
      warning =
        "energy: \(name): \(end.implausibleReason ?? "a RAPL counter step was implausible"); "
        + "this window's energy is the CPU-time estimate instead (labelled 'estimate')"
    }
  }
}

/// Something that counts joules: RAPL (`RAPLMeter`) or the CPU-time estimate
/// (`EstimateMeter`). Readings are cumulative since the meter started; windows are differences
/// of two readings (`EnergyWindows`, `measure`). Comparable to Zeus's `ZeusMonitor` (whose
/// windows are `begin_window`/`end_window`) and perf's `power/energy-pkg/`.
public protocol EnergyMeter: AnyObject, Sendable {
  /// Where the figures come from; it labels every figure.
  var source: EnergySource { get }
  /// One line for people: the meter, its zones or its wattage.
  var summary: String { get }
  /// The cumulative counters now (a fresh read of every counter, not a cached sample).
  func read() -> EnergyReading
  /// Stops any background work; readings after `stop` are undefined.
  func stop()
}

extension EnergyMeter {
  /// Runs `body` inside a window named `name` and returns its result and the window's energy.
  public func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> (T, EnergyMeasurement) {
    let start = read()
    let result = try body()
    return (result, EnergyMeasurement(name: name, from: start, to: read(), source: source))
  }
}

/// Named measurement windows over one meter: `begin("epoch 3")` … `end("epoch 3")`. Windows
/// may nest or overlap (an epoch window around its training and evaluation windows); each is
/// the difference of the readings at its `begin` and `end`, so nesting costs nothing and a
/// window's energy includes everything in it, nested windows included.
public final class EnergyWindows {
  public let meter: any EnergyMeter
  private var open: [String: EnergyReading] = [:]

  public init(meter: any EnergyMeter) { self.meter = meter }

  /// Opens the window `name`. Throws `EnergyError.windowAlreadyOpen` when it is open.
  public func begin(_ name: String) throws {
    guard open[name] == nil else { throw EnergyError.windowAlreadyOpen(name: name) }
    open[name] = meter.read()
  }

  /// Closes the window `name` and returns its energy. Throws `EnergyError.windowNotOpen`.
  @discardableResult
  public func end(_ name: String) throws -> EnergyMeasurement {
    guard let start = open.removeValue(forKey: name) else { throw EnergyError.windowNotOpen(name: name) }
    return EnergyMeasurement(name: name, from: start, to: meter.read(), source: meter.source)
  }

  /// The names of the open windows, sorted.
  public var openWindows: [String] { open.keys.sorted() }
}

/// `CLOCK_MONOTONIC` in seconds.
func monotonicSeconds() -> Double {
  var t = timespec()
  clock_gettime(CLOCK_MONOTONIC, &t)
  return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`) in seconds.
func threadCPUSeconds() -> Double {
  var t = timespec()
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
  return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
