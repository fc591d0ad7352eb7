import Foundation
import XCTest

@testable import Distill
@testable import DistillRecipes

/// `distill methods` as people run it: every registered method with its keys, defaults, paper
/// and reference; a recipe naming an unknown method points at it.
final class MethodsCommandTests: XCTestCase {
  func testListsEveryMethodWithItsDefaultsAndReference() throws {
    let result: (status: Int32, output: String, errors: String) = try DistillProcess.run(
      ["methods"], in: NSTemporaryDirectory())
    XCTAssertEqual(result.status, 0, result.errors)
    for info in DistillationMethods.infos {
      XCTAssertTrue(result.output.contains("\n\(info.name): \(info.title)\n"), info.name)
      XCTAssertTrue(result.output.contains(info.reference), info.name)
    }
    for line in [
      "distillation.dkd.beta         default 8.0", "distillation.at.weight          default 1000.0",
      "distillation.crd.negatives        default 16384", "distillation.pkt.weight         default 30000.0",
    ] {
      XCTAssertTrue(result.output.contains(line), "missing: \(line)")
    }
    let markdown: (status: Int32, output: String, errors: String) = try DistillProcess.run(
      ["methods", "--markdown"], in: NSTemporaryDirectory())
    XCTAssertEqual(markdown.status, 0)
    XCTAssertEqual(
      markdown.output.split(separator: "\n").filter { $0.hasPrefix("| `") }.count, DistillationMethods.infos.count + 1)
  }

  func testAnUnknownMethodIsRefusedWithASuggestion() throws {
    let folder = NSTemporaryDirectory() + "distill-methods-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let recipe = """
      name: m
      data: {dataset: digits}
      teacher: {model: {mlp: {hidden: [8]}}, train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}}
      student: {model: {mlp: {hidden: [4]}}, train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}}
      distillation: {method: [kd, atention]}

      """
    try recipe.write(toFile: folder + "/m.yaml", atomically: true, encoding: .utf8)
    let result: (status: Int32, output: String, errors: String) = try DistillProcess.run(["train", "m.yaml"], in: folder)
    XCTAssertEqual(result.status, 1)
    XCTAssertTrue(result.errors.contains("m.yaml: distillation.method[1]: unknown value 'atention'"), result.errors)
    XCTAssertTrue(result.errors.contains("distill methods"), result.errors)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/checkpoints"))
  }
}
