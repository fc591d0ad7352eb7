import Checkpoints
import Foundation
import XCTest
import _TestSupport

@testable import Distill
@testable import DistillRecipes

/// A teacher and a student with dropout and augmentation (so generator states matter), Adam for
/// the teacher and SGD momentum with accumulation for the student (so optimizer state and step
/// boundaries matter), on all the embedded digits as 8×8 images; seconds in a debug build.
let resumeRecipeYAML = """
  name: resume-digits
  seed: 5
  data: {dataset: digits, validation: 0.25, shape: [1, 8, 8]}
  teacher:
    model: {mlp: {hidden: [64], dropout: 0.2}}
    train: {epochs: 3, batch_size: 32, augment: {jitter: 1}, optimizer: {adam: {lr: 0.002}}, schedule: cosine}
  student:
    model: {mlp: {hidden: [16], dropout: 0.1}}
    train: {epochs: 4, batch_size: 16, accumulate: 2, augment: {jitter: 1, flip: true},
            optimizer: {sgd: {lr: 0.1, momentum: 0.9}}, schedule: cosine}
  distillation: {method: kd, temperature: 4, alpha: 0.7}
  checkpoint: {keep_last: 2}

  """

/// Temporary run folders of one test case, removed together (call `removeAll()` in tearDown).
final class TemporaryFolders {
  private(set) var paths: [String] = []
  private let prefix: String

  init(prefix: String) { self.prefix = prefix }

  /// A new folder path under the temporary directory (not created).
  func make() -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
    paths.append(path)
    return path
  }

  func removeAll() {
    for path in paths { try? FileManager.default.removeItem(atPath: path) }
    paths = []
  }
}

/// A fresh run of `yaml` into `folder` (the recipe file is `folder/../recipe.yaml`'s name only).
func makeTrainer(_ yaml: String = resumeRecipeYAML, folder: String) throws -> Trainer {
  let recipe = try Recipe.parse(yaml: yaml, file: "recipes/resume.yaml")
  return try Trainer(
    recipe: recipe, recipeFile: "recipes/resume.yaml", recipeText: yaml,
    options: TrainingOptions(dataPath: repositoryRoot, runFolder: folder))
}

/// Runs `trainer` (or resumes it from `point`) with a stop requested when `stopWhen` says so;
/// returns the summary, or nil when the run stopped (after checking the error).
func runStopping(
  _ trainer: Trainer, from point: ResumePoint? = nil, file: StaticString = #filePath, line: UInt = #line,
  stopWhen: @escaping (TrainingEvent) -> Bool = { _ in false }
) throws -> RunSummary? {
  let stop = StopRequest()
  trainer.stopRequest = stop
  let onEvent: (TrainingEvent) -> Void = { if stopWhen($0) { stop.request() } }
  do {
    return try point.map { try trainer.resume(from: $0, onEvent: onEvent) } ?? trainer.run(onEvent: onEvent)
  } catch TrainingError.stopped(let signal, let checkpoint, let folder) {
    XCTAssertEqual(signal, 0, file: file, line: line)
    XCTAssertEqual(checkpoint, trainer.runFolder.latestCheckpointPath, file: file, line: line)
    XCTAssertEqual(folder, trainer.runFolder.path, file: file, line: line)
    return nil
  }
}

/// The trainer and checkpoint `Trainer.prepareResume` finds in `folder`; fails when it finds
/// the run finished.
func resumable(
  _ folder: String, force: Bool = false, file: StaticString = #filePath, line: UInt = #line
) throws -> (Trainer, ResumePoint) {
  switch try Trainer.prepareResume(runFolder: folder, force: force) {
  case .finished:
    XCTFail("the run in \(folder) is reported finished", file: file, line: line)
    throw TrainingError.notARunFolder(folder: folder, reason: "finished")
  case .resume(let trainer, let point):
    return (trainer, point)
  }
}

/// Every dataset of every group of an HDF5 file we wrote, by absolute name, as bit patterns
/// (integer datasets, int8 weights and zero points, as their values).
func datasetBits(_ path: String) throws -> [String: [UInt32]] {
  let root = try HDF5File.openReadOnly(path).rootGroup()
  var result: [String: [UInt32]] = [:]
  for group in try root.memberNames() {
    let g = try root.group(group)
    for key in try g.memberNames() {
      let dataset = try g.dataset(key)
      if case .integer = dataset.elementType {
        result["/\(group)/\(key)"] = try dataset.readIntegers().map { UInt32(truncatingIfNeeded: $0) }
      } else {
        result["/\(group)/\(key)"] = try dataset.readFloats().map(\.bitPattern)
      }
    }
  }
  return result
}

/// What differs between two runs of the same recipe: the time and energy measured (the
/// energy source stays), and the run folder's name.
let measuredFields: Set = [
  "seconds", "run_folder", "joules", "avg_watts", "eval_joules", "dram_joules", "test_joules",
  "inference_uj_per_sample", "inference_samples", "inference_b1_uj_per_sample", "inference_b1_samples", "finished",
]

/// The JSON of a file of `metrics.jsonl` lines or `summary.json` without `measuredFields`
/// (anywhere), for comparing runs in two folders.
func withoutTimings(_ path: String) throws -> [NSDictionary] {
  func strip(_ value: Any) -> Any {
    if let list = value as? [Any] { return list.map(strip) }
    guard let object = value as? [String: Any] else { return value }
    return object.filter { !measuredFields.contains($0.key) }.mapValues(strip)
  }
  let text = try String(contentsOfFile: path, encoding: .utf8)
  return try text.split(separator: "\n").map {
    strip(try JSONSerialization.jsonObject(with: Data($0.utf8))) as! NSDictionary
  }
}

/// Asserts that two run folders hold the same weights bit for bit and the same metrics and
/// summary up to timings.
func assertSameResults(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
  for name in ["teacher.h5", "student.h5"] {
    let (x, y) = (try datasetBits("\(a)/\(name)"), try datasetBits("\(b)/\(name)"))
    XCTAssertEqual(x.keys.sorted(), y.keys.sorted(), name, file: file, line: line)
    XCTAssertFalse(x.isEmpty, file: file, line: line)
    for (key, bits) in x where bits != y[key] {
      XCTFail("\(name) \(key) differs from the uninterrupted run", file: file, line: line)
    }
  }
  XCTAssertEqual(
    try withoutTimings("\(a)/metrics.jsonl"), try withoutTimings("\(b)/metrics.jsonl"), file: file, line: line
  )
  XCTAssertEqual(
    try withoutTimings("\(a)/summary.json"), try withoutTimings("\(b)/summary.json"), file: file, line: line)
  try assertTrainingJoulesAddUp(b, file: file, line: line)
}

/// Asserts that each trained model's training joules in `summary.json` are the sum of its
/// `joules` in `metrics.jsonl`: a resumed run counts the epochs before the checkpoint too.
func assertTrainingJoulesAddUp(_ folder: String, file: StaticString = #filePath, line: UInt = #line) throws {
  let summary = try withJSON("\(folder)/summary.json")[0]
  let lines = try withJSON("\(folder)/metrics.jsonl")
  for role in ["teacher", "student"] {
    let sum = lines.filter { $0["model"] as? String == role }.compactMap { $0["joules"] as? Double }.reduce(0, +)
    let recorded = (summary[role] as? [String: Any])?["joules"] as? Double
    XCTAssertNotNil(recorded, "\(role) joules in summary.json", file: file, line: line)
    XCTAssertEqual(recorded ?? -1, sum, accuracy: 1e-9 * max(1, sum), role, file: file, line: line)
  }
}

/// The JSON objects of a `metrics.jsonl` or `summary.json` file.
func withJSON(_ path: String) throws -> [[String: Any]] {
  try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
    try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
  }
}
