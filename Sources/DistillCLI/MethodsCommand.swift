import ArgumentParser
import Distill

/// `distill methods`: every distillation method a recipe can name.
struct MethodsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "methods",
    abstract: "List the distillation methods: their recipe keys and defaults, what they need, their papers.",
    discussion: """
      Defaults are the reference code's (mdistiller's cfg.py and distillers, the authors' \
      repositories), tuned there for 240-epoch CIFAR-100 runs; short schedules may need \
      smaller weights. Example: distill methods --markdown
      """)

  @Flag(help: "Print a Markdown table instead of text.")
  var markdown = false

  func run() {
    print(markdown ? MethodCatalog.markdown : MethodCatalog.text, terminator: "")
  }
}

/// `distill stages`: every compression stage a recipe's `compress:` list can name.
struct StagesCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "stages",
    abstract: "List the compression stages: their recipe keys and defaults, what they do, their references.",
    discussion: """
      Stages run on the distilled student in the order of the recipe's compress: list, each \
      fine-tuned with the recipe's distillation. Example: compress: [{prune: {amount: 0.9}}]
      """)

  func run() {
    print(MethodCatalog.stagesText, terminator: "")
  }
}
