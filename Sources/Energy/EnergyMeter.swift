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

  /// Mean power over the window: `joules / seconds` (0 for an empty window).
  public var averageWatts: Double { seconds > 0 ? joules / seconds : 0 }

  /// The measurement between readings `start` and `end`.
  public init(name: String, from start: EnergyReading, to end: EnergyReading, source: EnergySource) {
    self.name = name
    self.joules = end.joules - start.joules
    if let a = start.dramJoules, let b = end.dramJoules { dramJoules = b - a } else { dramJoules = nil }
    self.seconds = end.seconds - start.seconds
    self.source = source
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
