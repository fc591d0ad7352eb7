import ArgumentParser
import Energy
import Foundation

/// `distill energy`: which meter a run would use and why, the RAPL zones found, a 1-second
/// reading, and the meter's own cost. The first thing to run when energy figures look wrong.
struct EnergyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "energy",
    abstract: "Show which energy meter runs would use, its zones, and a 1-second reading.",
    discussion: """
      RAPL is read from $DISTILL_POWERCAP_ROOT (default /sys/class/powercap). Where it cannot \
      be read, runs with meter: auto use the CPU-time estimate, labelled 'estimate'.
      """)

  @Option(help: "The meter to try: auto, rapl or estimate (as a recipe's energy.meter).")
  var meter: String = "auto"

  @Option(help: "Watts per busy core for the estimate (default \(EstimateMeter.defaultWattsPerCore)).")
  var wattsPerCore: Double?

  @Option(help: "Seconds to read for.")
  var seconds: Double = 1

  func validate() throws {
    guard MeterKind(rawValue: meter) != nil else {
      throw ValidationError("--meter takes auto, rapl or estimate")
    }
    if let wattsPerCore, !(wattsPerCore > 0 && wattsPerCore < 10_000) {
      throw ValidationError("--watts-per-core must be > 0 and below 10000, got \(wattsPerCore)")
    }
    guard seconds > 0 && seconds <= 3600 else {
      throw ValidationError("--seconds must be > 0 and at most 3600, got \(seconds)")
    }
  }

  func run() throws {
    print("powercap root: \(powercapRoot())")
    let selected: SelectedMeter
    do {
      selected = try openMeter(MeterKind(rawValue: meter)!, wattsPerCore: wattsPerCore)
    } catch {
      printError(error)
      throw ExitCode.failure
    }
    defer { selected.meter.stop() }
    if let reason = selected.raplUnavailable { print("RAPL: not available: \(reason)") }
    print("meter: \(selected.meter.summary)")
    if let rapl = selected.meter as? RAPLMeter {
      print("zones:")
      for zone in rapl.zones {
        print("  \(zone.path)  \(zone.name)  range \(zone.maxEnergyRange) µJ  \(zone.note)")
      }
    }
    let start = selected.meter.read()
    Thread.sleep(forTimeInterval: seconds)
    let reading = EnergyMeasurement(
      name: "reading", from: start, to: selected.meter.read(), source: selected.meter.source)
    print(
      "reading over \(fixed(reading.seconds, 2)) s: \(fixed(reading.joules, 3)) J, "
        + "\(fixed(reading.averageWatts, 2)) W (\(reading.source.rawValue))"
        + (reading.dramJoules.map { ", DRAM \(fixed($0, 3)) J" } ?? ""))
    if let warning = reading.warning { printWarning(warning) }
    if let rapl = selected.meter as? RAPLMeter {
      let perSample = rapl.sampleCost()
      let perHour = perSample * 3600 / rapl.samplingInterval
      print(
        "meter overhead: sampler every \(fixed(rapl.samplingInterval, 1)) s, "
          + "\(fixed(perSample * 1e6, 1)) µs CPU per sample → \(fixed(perHour * 1000, 3)) ms CPU per hour of training"
      )
    } else {
      print(
        "note: the estimate counts only this process's CPU time × W per core; this command sleeps "
          + "during the reading, so the figure above is the little CPU it used itself (start-up, the "
          + "reads), not what the machine draws. Meter overhead: no sampler thread, one getrusage call "
          + "per window end")
    }
  }
}
