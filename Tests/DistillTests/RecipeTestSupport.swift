import XCTest

@testable import Distill
@testable import DistillRecipes

/// The name broken recipes are given in error messages.
let brokenFile = "recipes/broken.yaml"

/// The repository's `recipes/` folder.
let recipesFolder: String = {
  var path = "\(#filePath)"
  for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
  return path + "/recipes"
}()

/// A valid recipe that uses most of the schema; tests break it one line at a time. Teacher and
/// student lines differ, so each edit hits exactly one place.
let baseYAML = """
  name: test-recipe
  seed: 7
  data:
    dataset: mnist
    validation: 5000
  teacher:
    model:
      mlp: {hidden: [1200, 1200], dropout: 0.5, input_dropout: 0.2}
    train:
      epochs: 3
      batch_size: 128
      optimizer:
        sgd: {lr: 0.1, momentum: 0.9, nesterov: true}
      schedule: {cosine: {}}
      augment: {jitter: 2}
  student:
    model:
      mlp: {hidden: [800, 800]}
    train:
      epochs: 2
      batch_size: 64
      accumulate: 2
      optimizer:
        sgd: {lr: 0.05, momentum: 0.8}
      schedule: {step: {step_size: 1, gamma: 0.5}}
  distillation:
    method: kd
    temperature: 20
    alpha: 0.9
  precision: f32

  """

/// `yaml` with `old` (which must occur exactly once) replaced by `new`.
func edit(
  _ old: String, _ new: String, in yaml: String = baseYAML, file: StaticString = #filePath, line: UInt = #line
) -> String {
  let parts = yaml.components(separatedBy: old)
  XCTAssertEqual(parts.count, 2, "'\(old)' should occur exactly once in the recipe", file: file, line: line)
  return parts.joined(separator: new)
}

/// The enum case name of a `RecipeError` (`"invalidValue"`).
func caseName(_ error: RecipeError) -> String {
  Mirror(reflecting: error).children.first?.label ?? "\(error)"
}

/// Asserts that `yaml` is rejected with a `kind` error at `keyPath`, whose message starts with
/// the file and key path and contains every string in `mentions`.
func assertRejects(
  _ yaml: String, kind: String, at keyPath: String, mentions: [String] = [],
  file: StaticString = #filePath, line: UInt = #line
) {
  do {
    let recipe = try Recipe.parse(yaml: yaml, file: brokenFile)
    XCTFail("accepted a broken recipe: \(recipe.name)", file: file, line: line)
  } catch let error as RecipeError {
    let message = error.description
    XCTAssertEqual(caseName(error), kind, message, file: file, line: line)
    XCTAssertEqual(error.file, brokenFile, message, file: file, line: line)
    XCTAssertEqual(error.keyPath, keyPath, message, file: file, line: line)
    let place = "\(brokenFile): \(keyPath.isEmpty ? "(top level)" : keyPath): "
    XCTAssertTrue(
      message.hasPrefix(place), "'\(message)' should start with '\(place)'", file: file, line: line)
    for fragment in mentions {
      XCTAssertTrue(
        message.contains(fragment), "'\(message)' should mention '\(fragment)'", file: file, line: line)
    }
  } catch {
    XCTFail("threw \(error), not a RecipeError", file: file, line: line)
  }
}

/// Asserts that a validation check rejects `yaml` with `invalidValue` at `keyPath`, its message
/// naming the `requirement`.
func assertOutOfRange(
  _ yaml: String, at keyPath: String, requirement: String, file: StaticString = #filePath, line: UInt = #line
) {
  assertRejects(
    yaml, kind: "invalidValue", at: keyPath, mentions: ["must be " + requirement], file: file, line: line)
}
