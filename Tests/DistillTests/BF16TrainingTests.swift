import Checkpoints
import Foundation
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// `precision: bf16-mixed` end to end: the run trains, logs its precision without a loss scale,
/// writes float32 model files, differs from the f32 run of the same seed (its products really
/// are bfloat16), and a run stopped mid-epoch and resumed ends bit for bit as the uninterrupted one.
final class BF16TrainingTests: XCTestCase {
  private let yaml = resumeRecipeYAML + "precision: bf16-mixed\n"
  private let folders = TemporaryFolders(prefix: "distill-bf16")

  override func tearDownWithError() throws { folders.removeAll() }

  private func newFolder() -> String { folders.make() }

  func testABF16RunTrainsLogsItsPrecisionAndWritesFloat32Weights() throws {
    let folder = newFolder()
    let summary = try XCTUnwrap(try runStopping(makeTrainer(yaml, folder: folder)))
    for line in try withJSON(folder + "/metrics.jsonl") {
      XCTAssertEqual(line["precision"] as? String, "bf16-mixed")
      XCTAssertTrue(line["loss_scale"] is NSNull, "no loss scale in bf16-mixed")
      XCTAssertTrue(line["skipped_steps"] is NSNull)
    }
    for role in ["teacher", "student"] {
      let group = try HDF5File.openReadOnly(folder + "/\(role).h5").group(role)
      for name in try group.memberNames() {
        XCTAssertEqual(try group.dataset(name).elementType, .float(bytes: 4), "\(role).h5 \(name) is float32")
      }
    }
    // The same recipe in f32: same seed, same data order, other products.
    let f32 = newFolder()
    let reference = try XCTUnwrap(try runStopping(makeTrainer(resumeRecipeYAML, folder: f32)))
    XCTAssertNotEqual(try datasetBits(folder + "/student.h5"), try datasetBits(f32 + "/student.h5"))
    // As accurate as f32 on the test digits, within 3 points (the short run's accuracies are
    // equal here: the bfloat16 products move the weights, not the predictions).
    XCTAssertEqual(summary.teacher!.test.accuracy, reference.teacher!.test.accuracy, accuracy: 0.03)
    XCTAssertEqual(summary.student.test.accuracy, reference.student.test.accuracy, accuracy: 0.03)
  }

  func testStoppedMidEpochThenResumedGivesTheUninterruptedResult() throws {
    let reference = newFolder()
    XCTAssertNotNil(try runStopping(makeTrainer(yaml, folder: reference)))
    let folder = newFolder()
    XCTAssertNil(
      try runStopping(makeTrainer(yaml, folder: folder)) {
        if case .batch(let p) = $0 { return p.role == .student && p.epoch == 2 && p.batch == 5 }
        return false
      })
    let (trainer, point) = try resumable(folder)
    XCTAssertEqual([point.state.phase, "\(point.state.epoch)"], ["student", "1"])
    XCTAssertTrue(point.state.masterWeights.isEmpty, "bf16-mixed keeps Float weights: no masters")
    XCTAssertNotNil(try runStopping(trainer, from: point))
    try assertSameResults(reference, folder)
  }
}
