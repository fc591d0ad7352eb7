import XCTest

@testable import Distill
@testable import DistillRecipes

/// Bounds checked before the YAML parser sees a recipe: size, nesting, aliases, names.
final class RecipeLimitsTests: XCTestCase {
  private func assertSyntaxError(
    _ yaml: String, line expectedLine: Int, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertThrowsError(try Recipe.parse(yaml: yaml, file: "r.yaml"), file: file, line: line) {
      guard case .syntax(let name, let errorLine, _, let problem) = $0 as? RecipeError else {
        return XCTFail("\($0)", file: file, line: line)
      }
      XCTAssertEqual(name, "r.yaml", file: file, line: line)
      XCTAssertEqual(errorLine, expectedLine, file: file, line: line)
      XCTAssertTrue(problem.contains("at most \(RecipeLimits.maxDepth) levels"), problem, file: file, line: line)
    }
  }

  func testFlowBlockAndCompactNestingBeyondTheLimitAreSyntaxErrorsAtTheirLine() {
    assertSyntaxError(String(repeating: "[", count: 10_000), line: 1)
    assertSyntaxError("name: x\na: " + String(repeating: "{b: ", count: 500), line: 2)
    assertSyntaxError("name: x\nstudent:\n" + String(repeating: "- ", count: 1_000) + "z\n", line: 3)
    var block = "name: x\n"
    for depth in 0..<150 { block += String(repeating: " ", count: depth) + "k\(depth):\n" }
    // "name" and "k0" share depth 1, so "k99" is at depth 100 and "k100", on line 102, past it.
    assertSyntaxError(block, line: RecipeLimits.maxDepth + 2)
  }

  func testBracketsInsideQuotesAndCommentsDoNotCountAndRealRecipesPass() throws {
    let brackets = String(repeating: "[", count: 500)
    XCTAssertNil(RecipeLimits.firstTooDeepLine("name: '\(brackets)'\nother: \"\(brackets)\" # \(brackets)\n"))
    let shipped = try FileManager.default.contentsOfDirectory(atPath: repositoryRootForRecipes + "/recipes")
      .filter { $0.hasSuffix(".yaml") }
    XCTAssertFalse(shipped.isEmpty)
    for name in shipped {
      let text = try String(contentsOfFile: repositoryRootForRecipes + "/recipes/" + name, encoding: .utf8)
      XCTAssertNil(RecipeLimits.firstTooDeepLine(text), name)
    }
  }

  func testAFileOverOneMebibyteIsNotRead() throws {
    let path = NSTemporaryDirectory() + "big-\(UUID().uuidString).yaml"
    defer { try? FileManager.default.removeItem(atPath: path) }
    try ("name: x\n#" + String(repeating: "x", count: RecipeLimits.maxBytes)).write(
      toFile: path, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try Recipe.load(path: path)) {
      guard case .cannotRead(let file, let reason) = $0 as? RecipeError else { return XCTFail("\($0)") }
      XCTAssertEqual(file, path)
      XCTAssertTrue(reason.contains("at most 1048576"), reason)
    }
  }

  func testNestedAliasesThatExpandBeyondTheNodeLimitAreRefused() {
    var bomb = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
    for level in 1..<7 {
      bomb += "l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
    }
    XCTAssertThrowsError(try Recipe.parse(yaml: bomb, file: "bomb.yaml")) {
      guard case .invalidValue(let file, _, _, let requirement) = $0 as? RecipeError else { return XCTFail("\($0)") }
      XCTAssertEqual(file, "bomb.yaml")
      XCTAssertTrue(requirement.contains("\(RecipeLimits.maxNodes) nodes"), requirement)
    }
  }

  func testLongNamesAndValuesAreRefusedWithShortMessages() {
    let long = String(repeating: "n", count: 1_000_000)
    let yaml =
      "name: \(long)\ndata: {dataset: digits}\nstudent: {model: {mlp: {hidden: [8]}}, "
      + "train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}}\n"
    XCTAssertThrowsError(try Recipe.parse(yaml: yaml, file: "r.yaml")) {
      let message = "\($0)"
      XCTAssertTrue(message.contains("name"), message)
      XCTAssertTrue(message.contains("at most \(RecipeLimits.maxNameLength) characters"), message)
      XCTAssertLessThan(message.count, 400)
    }
    XCTAssertThrowsError(try Recipe.parse(yaml: "\(long): 1\n", file: "r.yaml")) {
      XCTAssertLessThan("\($0)".count, 600, "an unknown key of a million characters is abbreviated")
    }
    XCTAssertEqual(RecipeLimits.abbreviated("short"), "short")
    XCTAssertEqual(RecipeLimits.abbreviated(String(repeating: "a", count: 100), limit: 3), "aaa… (100 characters)")
  }
}

/// What the run folder keeps of a recipe must read back as the same recipe.
final class RecipeRoundTripTests: XCTestCase {
  func testControlCharactersLineSeparatorsAndKeepChompingReadBackUnchanged() throws {
    for path in ["a\u{7F}b", "a\u{85}b", "a\u{2028}b", "a\u{9B}b", "tab\tand\u{1}"] {
      var recipe = try Recipe.parse(
        yaml: "name: x\ndata: {dataset: csv, path: p}\nstudent: {model: {mlp: {hidden: [4]}}, "
          + "train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}}\n",
        file: "r.yaml")
      recipe.data.path = path
      let reread = try Recipe.parse(yaml: recipe.canonicalJSON, file: "canonical")
      XCTAssertEqual(reread.data.path, path, path.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: " "))
      XCTAssertEqual(reread.canonicalHash, recipe.canonicalHash)
    }
    // The run folder's copy keeps the text byte for byte (a recipe ending in a `|+` block
    // without a final newline changed when a newline was added before the notes).
    let folder = NSTemporaryDirectory() + "distill-roundtrip-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let plain = "name: x\ndata: {dataset: csv, path: p}\nstudent: {model: {mlp: {hidden: [4]}}, "
      + "train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}}\nenergy:\n  meter: |+\n    estimate"
    let lock = try RunFolderLock(folder: folder)
    defer { lock.release() }
    try RunFolder(path: folder).prepare(recipeText: plain, notes: ["seed: 2 (--seed)"], force: false, lock: lock)
    let copy = try String(contentsOfFile: folder + "/recipe.yaml", encoding: .utf8)
    XCTAssertEqual(copy, "# distill train: seed: 2 (--seed)\n" + plain, "the text is kept byte for byte")
    XCTAssertEqual(
      try Recipe.parse(yaml: copy, file: "copy").canonicalHash, try Recipe.parse(yaml: plain, file: "r").canonicalHash)
  }
}

/// The repository root (this file is Tests/DistillTests/RecipeLimitsTests.swift).
private let repositoryRootForRecipes: String = {
  var url = URL(fileURLWithPath: "\(#filePath)")
  for _ in 0..<3 { url.deleteLastPathComponent() }
  return url.path
}()
