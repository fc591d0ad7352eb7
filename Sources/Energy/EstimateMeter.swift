#if canImport(Glibc)
  import Glibc
#endif

/// An estimate, not a measurement: this process's CPU time (user + system, every thread,
/// OpenBLAS's included: `getrusage(RUSAGE_SELF)`) times a power per busy core,
///
///     joules = (cpu seconds now − cpu seconds at start) × wattsPerCore.
///
/// It sees only this process and assumes a busy core draws `wattsPerCore` whatever it runs;
/// idle power, DRAM and other processes are not in it. Always labelled `estimate`. The default
/// wattage and where it comes from: `Sources/Energy/README.md`. CodeCarbon's fallback, for
/// comparison, charges half the CPU's TDP (85 W for an unknown CPU) regardless of how many of
/// its cores the process uses.
public final class EstimateMeter: EnergyMeter, @unchecked Sendable {
  /// Watts per busy core when the recipe sets none: an AMD EPYC 9004 ("Genoa", this project's
  /// machine: family 25 model 17) at its 360 W TDP over 96 cores, 3.75 W per core.
  public static let defaultWattsPerCore = 3.75

  public let wattsPerCore: Double
  public var source: EnergySource { .estimate }
  private let cpuSeconds: @Sendable () -> Double
  private let startCPU: Double

  /// - Parameters:
  ///   - wattsPerCore: > 0; the recipe's `energy.watts_per_core`.
  ///   - cpuSeconds: the process's CPU seconds so far; tests inject a clock.
  public init(
    wattsPerCore: Double = EstimateMeter.defaultWattsPerCore,
    cpuSeconds: @escaping @Sendable () -> Double = processCPUSeconds
  ) {
    self.wattsPerCore = wattsPerCore
    self.cpuSeconds = cpuSeconds
    self.startCPU = cpuSeconds()
  }

  public var summary: String {
    "estimate: process CPU time × \(wattsPerCore) W per busy core (not a measurement)"
  }

  public func read() -> EnergyReading {
    EnergyReading(joules: (cpuSeconds() - startCPU) * wattsPerCore, seconds: monotonicSeconds())
  }

  public func stop() {}
}

/// User + system CPU seconds of every thread of this process (`getrusage(RUSAGE_SELF)`).
public func processCPUSeconds() -> Double {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
  return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
