// swift-tools-version: 5.4
// libFuzzer harnesses for swift-distill's readers (issue 11). Build and run: see README.md.
// Each executable defines LLVMFuzzerTestOneInput and must be linked with -sanitize=fuzzer
// (build.sh passes the flags); built without it, it has no main and does not link.
import PackageDescription

let package = Package(
  name: "swift-distill-fuzz",
  dependencies: [.package(name: "swift-distill", path: "..")],
  targets: [
    .target(name: "FuzzSupport"),
    .target(
      name: "FuzzModels",
      dependencies: [
        "FuzzSupport", .product(name: "Distill", package: "swift-distill"),
        .product(name: "Checkpoints", package: "swift-distill"),
      ]),
    .executableTarget(
      name: "FuzzRecipe",
      dependencies: [
        "FuzzSupport", "FuzzModels", .product(name: "Distill", package: "swift-distill"),
        .product(name: "NN", package: "swift-distill"),
      ]),
    .executableTarget(
      name: "FuzzIDX",
      dependencies: ["FuzzSupport", .product(name: "Datasets", package: "swift-distill")]),
    .executableTarget(
      name: "FuzzCSV",
      dependencies: [
        "FuzzSupport", .product(name: "Datasets", package: "swift-distill"),
        .product(name: "Distill", package: "swift-distill"),
      ]),
    .executableTarget(
      name: "FuzzModelFile",
      dependencies: [
        "FuzzSupport", "FuzzModels",
        .product(name: "Distill", package: "swift-distill"),
        .product(name: "Checkpoints", package: "swift-distill"),
        .product(name: "NN", package: "swift-distill"),
      ]),
    .executableTarget(
      name: "FuzzArchitecture",
      dependencies: [
        "FuzzSupport", "FuzzModels",
        .product(name: "Distill", package: "swift-distill"),
        .product(name: "Checkpoints", package: "swift-distill"),
        .product(name: "NN", package: "swift-distill"),
      ]),
  ]
)
