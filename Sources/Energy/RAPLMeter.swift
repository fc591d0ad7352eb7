import Foundation

/// Energy from the CPU's RAPL counters through the kernel's powercap sysfs
/// (`/sys/class/powercap/intel-rapl:*`, also used for AMD Zen): the sum of the package
/// counters, and DRAM separately (package energy excludes it), each joule counted once
/// (`PowercapZone` lists the rules). What perf reads as `power/energy-pkg/` and Zeus as
/// `ZeusMonitor`'s CPU energy. RAPL counts the whole socket: every process, not just this one.
///
/// Wrap-around: `energy_uj` wraps to 0 after `max_energy_range_uj` (≈ 262 kJ on Intel, ≈ 65 kJ
/// on AMD). Between two samples with raw values `a` then `b`, the energy is `b − a`, or
/// `b + range − a` when `b < a`. That is right as long as the counter wraps at most once between
/// samples, so a background thread samples every `samplingInterval` seconds: a quarter of the
/// time the smallest range lasts at `plausibleMaxWatts` per zone (at most `maxInterval`).
/// Every `read()` samples too, so windows are exact to the counter's own resolution.
public final class RAPLMeter: EnergyMeter, @unchecked Sendable {
  /// Power no single zone plausibly exceeds (server packages top out near 500 W), for the
  /// sampling interval.
  public static let plausibleMaxWatts = 1000.0
  /// The longest sampling interval, seconds.
  public static let maxInterval = 60.0

  /// Slack for the plausibility bound: a counter may advance by `maxWatts × (Δt + slack)`
  /// between samples, as it updates about every millisecond and reads are not instantaneous.
  public static let plausibilitySlackSeconds = 0.05

  /// Every zone found, counted or not, in tree order.
  public let zones: [PowercapZone]
  /// Seconds between background samples.
  public let samplingInterval: Double
  public var source: EnergySource { .rapl }

  private struct Counter {
    var zone: PowercapZone
    var last: UInt64
    var total: UInt64 = 0
  }

  /// The fallback for windows with an implausible step: CPU time × `wattsPerCore`.
  private let estimate: EstimateMeter
  private var lastSample = monotonicSeconds()
  private var implausibleSteps = 0
  private var implausibleReason: String?

  private let discovery: ZoneDiscovery
  // `lock` guards `counters`, `failedReads` and the sampler statistics.
  private let lock = NSLock()
  private var counters: [Counter]
  private var failedReads = 0
  private var samplerCPU = 0.0
  private var samples = 0
  private let started = monotonicSeconds()
  private let wake = NSCondition()
  private var stopping = false
  private var sampler: Thread?

  /// Finds the zones under `root` and reads every counted counter once. Throws `EnergyError`
  /// when there is nothing to read or a counter cannot be read. `backgroundSampling: false`
  /// leaves sampling to `sample()` and `read()` (tests drive wrap-arounds that way).
  public init(
    root: String = powercapRoot(), files: any PowercapFiles = SystemPowercapFiles(),
    backgroundSampling: Bool = true, wattsPerCore: Double = EstimateMeter.defaultWattsPerCore
  ) throws {
    estimate = EstimateMeter(wattsPerCore: wattsPerCore)
    let discovery = ZoneDiscovery(root: root, files: files)
    self.discovery = discovery
    zones = try discovery.zones()
    counters = try zones.filter(\.counted).map { Counter(zone: $0, last: try discovery.counter($0)) }
    let shortest = counters.map { Double($0.zone.maxEnergyRange) * 1e-6 / Self.plausibleMaxWatts }.min()!
    samplingInterval = min(shortest / 4, Self.maxInterval)
    if backgroundSampling { startSampler() }
  }

  deinit { stop() }

  public var summary: String {
    let packages = zones.filter { $0.kind == .package && $0.counted }.map(\.name)
    let dram = zones.contains { $0.kind == .dram && $0.counted }
    return "RAPL (powercap \(discovery.root)): \(packages.joined(separator: " + "))"
      + (dram ? ", DRAM separately" : ", no DRAM counter")
  }

  /// Reads every counted counter and adds what it advanced since the last sample, wrap-around
  /// included. A counter that cannot be read keeps its last value (counted in `failedReadCount`)
  /// and is caught up at the next successful read.
  ///
  /// Plausibility: a step may not exceed what the zone's maximum power (`maxPowerWatts`, else
  /// `plausibleMaxWatts`) delivers in the time since the last sample plus
  /// `plausibilitySlackSeconds`. A counter that went down is a wrap-around only when the
  /// wrapped step passes that bound; a value above `max_energy_range_uj` never is. An
  /// implausible step adds nothing, is counted in the readings (`implausibleSteps`, with the
  /// zone and the values in `implausibleReason`), and the counter continues from its new value.
  public func sample() {
    lock.lock()
    defer { lock.unlock() }
    let now = monotonicSeconds()
    let elapsed = max(now - lastSample, 0) + Self.plausibilitySlackSeconds
    lastSample = now
    for i in counters.indices {
      guard let raw = try? discovery.counter(counters[i].zone) else {
        failedReads += 1
        continue
      }
      let zone = counters[i].zone
      let last = counters[i].last
      let range = zone.maxEnergyRange
      let watts = zone.maxPowerWatts ?? Self.plausibleMaxWatts
      let bound = watts * elapsed * 1e6
      let step: UInt64? =
        raw > range ? nil : raw >= last ? raw - last : (last <= range ? range - last + raw : nil)
      counters[i].last = raw
      if let step, Double(step) <= bound {
        counters[i].total += step
        continue
      }
      implausibleSteps += 1
      let change =
        raw > range
        ? "read \(raw) µJ, above its max_energy_range_uj of \(range)"
        : raw < last
          ? "went back from \(last) to \(raw) µJ, and a wrap-around at \(range) would mean "
            + "\(String(format: "%.0f", (Double(range) - Double(last) + Double(raw)) * 1e-6 / elapsed)) W"
          : "advanced \(raw - last) µJ, \(String(format: "%.0f", Double(raw - last) * 1e-6 / elapsed)) W"
      implausibleReason =
        "RAPL zone \(zone.name) (\(zone.energyPath)) \(change) in \(String(format: "%.2f", elapsed)) s, "
        + "beyond its \(String(format: "%.0f", watts)) W maximum"
        + (zone.maxPowerWatts == nil ? " (no constraint_*_max_power_uw; the bound per zone)" : "")
    }
  }

  public func read() -> EnergyReading {
    sample()
    lock.lock()
    defer { lock.unlock() }
    let packages = counters.filter { $0.zone.kind != .dram }.reduce(UInt64(0)) { $0 + $1.total }
    let drams = counters.filter { $0.zone.kind == .dram }
    let dram = drams.isEmpty ? nil : Double(drams.reduce(UInt64(0)) { $0 + $1.total }) * 1e-6
    var reading = EnergyReading(joules: Double(packages) * 1e-6, dramJoules: dram, seconds: monotonicSeconds())
    (reading.implausibleSteps, reading.implausibleReason) = (implausibleSteps, implausibleReason)
    reading.estimateJoules = estimate.read().joules
    return reading
  }

  /// Counter reads that failed since the meter started.
  public var failedReadCount: Int {
    lock.lock()
    defer { lock.unlock() }
    return failedReads
  }

  /// The background thread's own cost: CPU seconds it used (`CLOCK_THREAD_CPUTIME_ID`), the
  /// samples it took, and the wall seconds since the meter started.
  public var samplerCost: (cpuSeconds: Double, samples: Int, wallSeconds: Double) {
    lock.lock()
    defer { lock.unlock() }
    return (samplerCPU, samples, monotonicSeconds() - started)
  }

  /// CPU seconds one `sample()` costs on the calling thread, the mean over `samples` samples
  /// (`CLOCK_THREAD_CPUTIME_ID`); times `3600 / samplingInterval` it is the sampler's CPU time
  /// per hour.
  public func sampleCost(samples: Int = 200) -> Double {
    let start = threadCPUSeconds()
    for _ in 0..<samples { sample() }
    return (threadCPUSeconds() - start) / Double(samples)
  }

  public func stop() {
    wake.lock()
    stopping = true
    wake.signal()
    wake.unlock()
  }

  private func startSampler() {
    let interval = samplingInterval
    let thread = Thread { [weak self] in
      while let meter = self {
        meter.wake.lock()
        if !meter.stopping { _ = meter.wake.wait(until: Date(timeIntervalSinceNow: interval)) }
        let stop = meter.stopping
        meter.wake.unlock()
        if stop { return }
        meter.sample()
        let cpu = threadCPUSeconds()
        meter.lock.lock()
        meter.samplerCPU = cpu
        meter.samples += 1
        meter.lock.unlock()
      }
    }
    thread.name = "RAPL sampler"
    sampler = thread
    thread.start()
  }
}

/// The powercap folder: `$DISTILL_POWERCAP_ROOT`, or `/sys/class/powercap`.
public func powercapRoot() -> String {
  if let root = ProcessInfo.processInfo.environment["DISTILL_POWERCAP_ROOT"], !root.isEmpty { return root }
  return "/sys/class/powercap"
}
