#if !MPI
  import Foundation
  import XCTest

  /// A binary built without MPI, started by `mpirun -np 2` (which announces the rank count in
  /// `OMPI_COMM_WORLD_SIZE`), refuses to run rather than train the whole run once per rank.
  final class PlainBuildTests: XCTestCase {
    func testSeveralRanksOfABinaryWithoutMPIAreRefused() throws {
      let folder = NSTemporaryDirectory() + "distill-plain-\(UUID().uuidString)"
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(atPath: folder) }
      let (status, _, errors) = try DistillProcess.run(
        ["methods"], in: folder, environment: ["OMPI_COMM_WORLD_SIZE": "2"])
      XCTAssertEqual(status, 1)
      XCTAssertTrue(errors.contains("built without MPI, but mpirun started 2 ranks"), errors)
      XCTAssertTrue(errors.contains("--traits MPI"), errors)
      // One rank (mpirun -np 1) is simply one process.
      let (one, output, _) = try DistillProcess.run(["methods"], in: folder, environment: ["OMPI_COMM_WORLD_SIZE": "1"])
      XCTAssertEqual(one, 0)
      XCTAssertTrue(output.contains("kd"))
    }
  }
#endif
