import Foundation
import XCTest

@testable import Energy

final class RAPLMeterTests: XCTestCase {
  func testTwoPackagesSumPackagesAndReportDRAMSeparately() throws {
    let tree = try FakePowercap.twoSockets()
    let meter = try RAPLMeter(root: tree.root, backgroundSampling: false)
    let counted = meter.zones.filter(\.counted).map {
      "\($0.name)@\(($0.path as NSString).lastPathComponent)"
    }
    XCTAssertEqual(
      counted,
      ["package-0@intel-rapl:0", "dram@intel-rapl:0:1", "package-1@intel-rapl:1", "dram@intel-rapl:1:1"])
    XCTAssertEqual(meter.zones.count, 8)
    let windows = EnergyWindows(meter: meter)
    try windows.begin("epoch")
    try tree.advance("intel-rapl:0", joules: 10)
    try tree.advance("intel-rapl:0:0", joules: 6)  // inside package-0
    try tree.advance("intel-rapl:0:1", joules: 3)
    try tree.advance("intel-rapl:1", joules: 20)
    try tree.advance("intel-rapl:1:1", joules: 4)
    try tree.advance("intel-rapl:2", joules: 100)  // psys: contains the packages
    try tree.advance("intel-rapl-mmio:0", joules: 10)  // the same package-0 counter
    let epoch = try windows.end("epoch")
    XCTAssertEqual(epoch.joules, 30, accuracy: 1e-9)
    XCTAssertEqual(epoch.dramJoules ?? -1, 7, accuracy: 1e-9)
    XCTAssertEqual(epoch.source, .rapl)
    XCTAssertTrue(meter.summary.contains("package-0 + package-1"), meter.summary)
  }

  func testCounterThatWrapsDuringAWindow() throws {
    let tree = try FakePowercap()
    try tree.addZone("intel-rapl:0", name: "package-0", microjoules: 900_000, range: 1_000_000)
    let meter = try RAPLMeter(root: tree.root, backgroundSampling: false)
    let windows = EnergyWindows(meter: meter)
    try windows.begin("train")
    try tree.set("intel-rapl:0", 950_000)
    meter.sample()
    try tree.set("intel-rapl:0", 100_000)  // wrapped: 50 000 to the top, then 100 000
    meter.sample()
    try tree.set("intel-rapl:0", 700_000)
    meter.sample()
    try tree.set("intel-rapl:0", 200_000)  // wrapped again
    let train = try windows.end("train")
    // 900k → 950k, → top (1M) → 100k, → 700k, → top → 200k.
    XCTAssertEqual(
      train.joules, (50_000 + 50_000 + 100_000 + 600_000 + 300_000 + 200_000) * 1e-6, accuracy: 1e-12)
    XCTAssertNil(train.dramJoules)
  }

  func testSamplingIntervalLetsNoCounterWrapTwice() throws {
    let tree = try FakePowercap()
    try tree.addZone("intel-rapl:0", name: "package-0", microjoules: 0)
    // AMD Zen: 2^32 × 15.3 µJ ≈ 65.7 kJ, 65.7 s at 1000 W; a quarter of that.
    try tree.addZone("intel-rapl:1", name: "package-1", microjoules: 0, range: 65_712_999_613)
    let meter = try RAPLMeter(root: tree.root, backgroundSampling: false)
    XCTAssertEqual(meter.samplingInterval, 65_712.999613 / RAPLMeter.plausibleMaxWatts / 4, accuracy: 1e-9)
    let intelOnly = try FakePowercap()
    try intelOnly.addZone("intel-rapl:0", name: "package-0", microjoules: 0)
    XCTAssertEqual(try RAPLMeter(root: intelOnly.root, backgroundSampling: false).samplingInterval, 60)
  }

  func testBackgroundSamplerCatchesWrapsAndReportsItsCost() throws {
    let tree = try FakePowercap()
    // 20 J range: 20 ms at 1000 W, so the sampler runs every 5 ms.
    try tree.addZone("intel-rapl:0", name: "package-0", microjoules: 0, range: 20_000_000)
    let meter = try RAPLMeter(root: tree.root)
    defer { meter.stop() }
    let start = meter.read()
    for step in 1...4 {
      try tree.set("intel-rapl:0", UInt64(step % 2 == 1 ? 15_000_000 : 5_000_000))
      Thread.sleep(forTimeInterval: 0.1)  // ≥ 20 sampler periods
    }
    let end = meter.read()
    // 0 → 15 → (wrap) 5 → 15 → (wrap) 5 J: 15 + 10 + 10 + 10 = 45 J.
    XCTAssertEqual(end.joules - start.joules, 45, accuracy: 1e-9)
    let cost = meter.samplerCost
    XCTAssertGreaterThan(cost.samples, 10)
    XCTAssertGreaterThan(cost.cpuSeconds, 0)
    XCTAssertLessThan(cost.cpuSeconds, cost.wallSeconds)
  }

  func testMirroredDieCountersAreCountedOnce() throws {
    let tree = try FakePowercap()
    try tree.addZone("intel-rapl:0", name: "package-0-die-0", microjoules: 7_000_000_000)
    try tree.addZone("intel-rapl:0:0", name: "dram", microjoules: 3_000_000)
    try tree.addZone("intel-rapl:1", name: "package-0-die-1", microjoules: 7_000_000_000)
    try tree.addZone("intel-rapl:1:0", name: "dram", microjoules: 3_000_000)
    let meter = try RAPLMeter(root: tree.root, backgroundSampling: false)
    XCTAssertEqual(meter.zones.filter(\.counted).map(\.name), ["package-0-die-0", "dram"])
    XCTAssertTrue(meter.zones[2].note.contains("mirrors package-0-die-0"), meter.zones[2].note)
    let start = meter.read()
    for entry in ["intel-rapl:0", "intel-rapl:1"] { try tree.advance(entry, joules: 12) }
    for entry in ["intel-rapl:0:0", "intel-rapl:1:0"] { try tree.advance(entry, joules: 2) }
    let end = meter.read()
    XCTAssertEqual(end.joules - start.joules, 12, accuracy: 1e-9)
    XCTAssertEqual((end.dramJoules ?? 0) - (start.dramJoules ?? 0), 2, accuracy: 1e-9)
  }

  func testDistinctDieCountersAreAllCounted() throws {
    let tree = try FakePowercap()
    try tree.addZone("intel-rapl:0", name: "package-0-die-0", microjoules: 7_000_000_000)
    try tree.addZone("intel-rapl:1", name: "package-0-die-1", microjoules: 9_500_000_000)
    let meter = try RAPLMeter(root: tree.root, backgroundSampling: false)
    let start = meter.read()
    try tree.advance("intel-rapl:0", joules: 12)
    try tree.advance("intel-rapl:1", joules: 8)
    XCTAssertEqual(meter.read().joules - start.joules, 20, accuracy: 1e-9)
  }

  func testMalformedCounterIsAnError() throws {
    let tree = try FakePowercap()
    try tree.addZone("intel-rapl:0", name: "package-0", microjoules: 0)
    try "n/a\n".write(toFile: tree.folder("intel-rapl:0") + "/energy_uj", atomically: false, encoding: .utf8)
    XCTAssertThrowsError(try RAPLMeter(root: tree.root, backgroundSampling: false)) {
      XCTAssertEqual(
        $0 as? EnergyError, .malformed(path: tree.root + "/intel-rapl:0/energy_uj", content: "n/a"))
    }
  }

  func testRootEnvironmentVariable() {
    setenv("DISTILL_POWERCAP_ROOT", "/tmp/elsewhere", 1)
    XCTAssertEqual(powercapRoot(), "/tmp/elsewhere")
    unsetenv("DISTILL_POWERCAP_ROOT")
    XCTAssertEqual(powercapRoot(), "/sys/class/powercap")
  }

  func testNestedLayoutWithoutTopLevelLinksIsFound() throws {
    // /sys/devices/virtual/powercap: zones only under their control type.
    let tree = try FakePowercap.twoSockets()
    for entry in try FileManager.default.contentsOfDirectory(atPath: tree.root) where entry.contains(":") {
      try FileManager.default.removeItem(atPath: tree.root + "/" + entry)
    }
    let meter = try RAPLMeter(root: tree.root, backgroundSampling: false)
    XCTAssertEqual(meter.zones.filter(\.counted).count, 4)
  }

  func testImplausibleCounterStepsMakeTheWindowAnEstimateNamingTheZone() throws {
    let tree = try FakePowercap()
    try tree.addZone("intel-rapl:0", name: "package-0", microjoules: 100_000_000, range: 1_000_000_000)
    try "250000000\n".write(
      toFile: tree.folder("intel-rapl:0") + "/constraint_0_max_power_uw", atomically: false, encoding: .utf8)
    try "0\n".write(
      toFile: tree.folder("intel-rapl:0") + "/constraint_1_max_power_uw", atomically: false, encoding: .utf8)
    let meter = try RAPLMeter(root: tree.root, backgroundSampling: false, wattsPerCore: 2)
    XCTAssertEqual(meter.zones[0].maxPowerWatts, 250)
    // A plausible window first: 5 J.
    let (_, plausible) = try meter.measure("plausible") { try tree.advance("intel-rapl:0", joules: 5) }
    XCTAssertEqual(plausible.source, .rapl)
    XCTAssertEqual(plausible.joules, 5, accuracy: 1e-9)
    XCTAssertNil(plausible.warning)
    for (label, value, words) in [
      ("backwards", UInt64(50_000_000), ["went back", "wrap-around"]),
      ("jump", UInt64(900_000_000), ["advanced"]),
      ("above the range", UInt64(2_000_000_000), ["above its max_energy_range_uj"]),
    ] {
      try tree.set("intel-rapl:0", 100_000_000)
      meter.sample()
      let (_, window) = try meter.measure(label) { try tree.set("intel-rapl:0", value) }
      XCTAssertEqual(window.source, .estimate, label)
      XCTAssertNil(window.dramJoules, label)
      XCTAssertLessThan(window.joules, 1, "\(label): the estimate of a short window, not the counter's jump")
      let warning = try XCTUnwrap(window.warning, label)
      for word in ["package-0", "250 W maximum", "estimate"] + words {
        XCTAssertTrue(warning.contains(word), "\(label): '\(word)' not in \(warning)")
      }
    }
    // The counter continues from its new value: the next window is a measurement again.
    try tree.set("intel-rapl:0", 100_000_000)
    meter.sample()
    let (_, after) = try meter.measure("after") { try tree.advance("intel-rapl:0", joules: 2) }
    XCTAssertEqual(after.source, .rapl)
    XCTAssertEqual(after.joules, 2, accuracy: 1e-9)
  }

  func testAZoneWithoutConstraintsIsBoundedByTheDocumentedPerZoneMaximum() throws {
    let tree = try FakePowercap()
    try tree.addZone("intel-rapl:0", name: "package-0", microjoules: 0)
    let meter = try RAPLMeter(root: tree.root, backgroundSampling: false)
    XCTAssertNil(meter.zones[0].maxPowerWatts)
    // 40 J at once is within 1000 W × the 50 ms slack; 262 kJ (the 262006 W) is not.
    let (_, fine) = try meter.measure("fine") { try tree.advance("intel-rapl:0", joules: 40) }
    XCTAssertEqual(fine.source, .rapl)
    let (_, absurd) = try meter.measure("absurd") { try tree.advance("intel-rapl:0", joules: 262_006) }
    XCTAssertEqual(absurd.source, .estimate)
    XCTAssertTrue(absurd.warning?.contains("1000 W maximum (no constraint_*_max_power_uw") ?? false, "\(absurd)")
  }
}
