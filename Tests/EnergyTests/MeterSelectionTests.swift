import Foundation
import XCTest

@testable import Energy

final class MeterSelectionTests: XCTestCase {
  func testAutoPicksRAPLWhenReadable() throws {
    let tree = try FakePowercap.twoSockets()
    let selected = try openMeter(.auto, root: tree.root, backgroundSampling: false)
    XCTAssertEqual(selected.meter.source, .rapl)
    XCTAssertNil(selected.warning)
  }

  func testNoPowercapFallsBackAndSaysWhy() throws {
    let root = NSTemporaryDirectory() + "no-powercap-\(UUID().uuidString)"
    let selected = try openMeter(.auto, wattsPerCore: 5, root: root)
    XCTAssertEqual(selected.meter.source, .estimate)
    XCTAssertEqual(selected.raplUnavailable, .noPowercap(root: root))
    let warning = try XCTUnwrap(selected.warning)
    for phrase in ["\(root) does not exist", "modprobe intel_rapl_msr", "5.0 W per busy core", "'estimate'"] {
      XCTAssertTrue(warning.contains(phrase), "\(phrase) not in: \(warning)")
    }
    XCTAssertThrowsError(try openMeter(.rapl, root: root)) {
      XCTAssertEqual($0 as? EnergyError, .noPowercap(root: root))
    }
  }

  func testPowercapWithoutPackagesIsNotRAPL() throws {
    let tree = try FakePowercap()
    try tree.addZone("intel-rapl-mmio:0", name: "package-0", microjoules: 5)
    XCTAssertThrowsError(try openMeter(.rapl, root: tree.root)) {
      guard case .noPackageZones(let root, let found) = $0 as? EnergyError else { return XCTFail("\($0)") }
      XCTAssertEqual(root, tree.root)
      XCTAssertTrue(found.contains("intel-rapl-mmio:0"))
    }
  }

  func testEnergyReadableOnlyByRootFallsBackWithTheFix() throws {
    let tree = try FakePowercap.twoSockets()
    let selected = try openMeter(.auto, root: tree.root, files: RootOnlyEnergyFiles())
    XCTAssertEqual(selected.meter.source, .estimate)
    XCTAssertEqual(selected.raplUnavailable, .permissionDenied(path: tree.root + "/intel-rapl:0/energy_uj"))
    let warning = try XCTUnwrap(selected.warning)
    for phrase in ["readable only by root", "CVE-2020-8694", "sudo chmod a+r", "'estimate'"] {
      XCTAssertTrue(warning.contains(phrase), "\(phrase) not in: \(warning)")
    }
    XCTAssertThrowsError(try openMeter(.rapl, root: tree.root, files: RootOnlyEnergyFiles())) {
      XCTAssertEqual($0 as? EnergyError, .permissionDenied(path: tree.root + "/intel-rapl:0/energy_uj"))
    }
  }

  /// The real permission bits: a non-root user gets `permissionDenied` from `open`'s EACCES;
  /// root reads mode-000 files anyway (as on RAPL-capable CI runners), so RAPL opens.
  func testModeZeroEnergyFile() throws {
    let tree = try FakePowercap.twoSockets()
    chmod(tree.folder("intel-rapl:1") + "/energy_uj", 0)
    if geteuid() == 0 {
      XCTAssertEqual(try openMeter(.rapl, root: tree.root, backgroundSampling: false).meter.source, .rapl)
    } else {
      XCTAssertThrowsError(try openMeter(.rapl, root: tree.root)) {
        XCTAssertEqual($0 as? EnergyError, .permissionDenied(path: tree.root + "/intel-rapl:1/energy_uj"))
      }
    }
  }

  func testEstimateIsCPUSecondsTimesWatts() {
    let clock = FakeClock()
    let meter = EstimateMeter(wattsPerCore: 4, cpuSeconds: clock.read)
    let windows = EnergyWindows(meter: meter)
    XCTAssertNoThrow(try windows.begin("epoch"))
    XCTAssertNoThrow(try windows.begin("train"))
    clock.advance(2.5)  // two threads for 1.25 s: 2.5 CPU seconds
    let train = try? windows.end("train")
    clock.advance(0.5)
    let epoch = try? windows.end("epoch")
    XCTAssertEqual(train?.joules ?? -1, 10, accuracy: 1e-12)
    XCTAssertEqual(epoch?.joules ?? -1, 12, accuracy: 1e-12)
    XCTAssertEqual(epoch?.source, .estimate)
    XCTAssertNil(epoch?.dramJoules)
    XCTAssertThrowsError(try windows.end("epoch")) {
      XCTAssertEqual($0 as? EnergyError, .windowNotOpen(name: "epoch"))
    }
    XCTAssertNoThrow(try windows.begin("x"))
    XCTAssertThrowsError(try windows.begin("x")) {
      XCTAssertEqual($0 as? EnergyError, .windowAlreadyOpen(name: "x"))
    }
  }

  func testProcessCPUSecondsCountsOtherThreads() {
    let before = processCPUSeconds()
    let group = DispatchGroup()
    for _ in 0..<2 {
      DispatchQueue.global().async(group: group) {
        // Spin until this thread itself has used 0.1 s of CPU, however busy the machine is.
        let end = threadCPUSeconds() + 0.1
        var x = 0.0
        while threadCPUSeconds() < end { x += 1 }
        blackHole(x)
      }
    }
    group.wait()
    XCTAssertGreaterThanOrEqual(processCPUSeconds() - before, 0.2 - 1e-3, "both worker threads' CPU time")
  }
}

final class FakeClock: @unchecked Sendable {
  private var now = 100.0
  private let lock = NSLock()
  func advance(_ seconds: Double) { lock.withLock { now += seconds } }
  var read: @Sendable () -> Double { { [self] in lock.withLock { now } } }
}

@inline(never) func blackHole(_ x: Double) { if x == -1 { print(x) } }
