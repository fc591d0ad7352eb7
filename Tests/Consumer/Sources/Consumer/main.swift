// The README's library example: a 64-32-10 MLP trained for a few steps through the public API,
// then a recipe read through `Distill` (which re-exports the recipe schema, `DistillRecipes`).
// Exits non-zero unless the loss is finite and falls and the recipe reads as written.
import Autodiff
import Distill
import NN

#if canImport(Glibc)
  import Glibc
#endif

var generator = SeededGenerator(seed: 1)
let model = Sequential(
  Linear(inputFeatures: 64, outputFeatures: 32, generator: &generator), ReLU(),
  Linear(inputFeatures: 32, outputFeatures: 10, generator: &generator))
let optimizer = SGD(parameters: model.parameters, learningRate: 0.1, momentum: 0.9)

let x = Tensor.normal([16, 64], generator: &generator)
let labels = (0..<16).map { $0 % 10 }
var losses: [Float] = []
for _ in 0..<5 {
  optimizer.zeroGrad()
  let loss = crossEntropy(logits: model(x), labels: labels)
  loss.backward()
  optimizer.step()
  losses.append(loss.scalar)
}
print("consumer: losses \(losses), keys \(model.stateDict.map(\.name))")
guard losses.allSatisfy(\.isFinite), losses.last! < losses.first! else {
  print("consumer: training through the public API did not lower the loss")
  exit(1)
}

let recipe = try Recipe.parse(
  yaml: """
    name: consumer
    data: {dataset: digits}
    teacher: {model: {cnn: {channels: [8]}}, train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}}
    student: {model: {cnn: {channels: [4]}}, train: {epochs: 1, optimizer: {sgd: {lr: 0.1}}}}
    distillation: {method: [kd, at], at: {weight: 10}}
    """)
print("consumer: recipe \(recipe.name), distillation \(recipe.distillation.label), hash \(recipe.canonicalHash)")
guard recipe.distillation.label == "kd+at" else {
  print("consumer: the recipe's distillation did not read as written")
  exit(1)
}
