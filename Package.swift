// swift-tools-version: 6.1
// The module split is described in docs/DESIGN.md: C shims at the bottom, math that knows nothing
// of files, files that know nothing of the CLI, and a thin executable on top.
import PackageDescription

let package = Package(
  name: "swift-distill",
  products: [
    .executable(name: "distill", targets: ["DistillCLI"]),
    .library(name: "Autodiff", targets: ["Autodiff"]),
    .library(name: "NN", targets: ["NN"]),
    .library(name: "Datasets", targets: ["Datasets"]),
    .library(name: "Checkpoints", targets: ["Checkpoints"]),
    .library(name: "Energy", targets: ["Energy"]),
    .library(name: "DistillRecipes", targets: ["DistillRecipes"]),
    .library(name: "Distill", targets: ["Distill"]),
    .library(name: "DistillReports", targets: ["DistillReports"]),
  ],
  // The MPI build (`swift build -c release --traits MPI --scratch-path .build-mpi`): data-parallel
  // training under `mpirun` over Open MPI. Off by default, so a machine without Open MPI builds
  // and runs everything else; docs/DESIGN.md says why a trait.
  traits: [
    .trait(name: "MPI", description: "Data-parallel training under mpirun (needs Debian's libopenmpi-dev).")
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
  ],
  targets: [
    // System libraries from Debian (libopenblas-dev, libhdf5-dev), found through pkg-config.
    .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                   providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                   providers: [.apt(["libhdf5-dev"])]),
    // Open MPI (libopenmpi-dev), in the MPI build only (the `MPI` trait).
    .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
    .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
    // Small C kernels that need CPU features Swift will not emit portably (runtime-dispatched).
    .target(name: "CKernels", exclude: ["README.md"]),
    // oneDNN (libdnnl-dev) convolutions. Debian ships no pkg-config file for it, so the target
    // links the library by name; its headers are in /usr/include.
    .target(name: "CDNNL", exclude: ["README.md"], linkerSettings: [.linkedLibrary("dnnl")]),
    .target(
      name: "Autodiff",
      dependencies: ["CBLAS", "CKernels", "CDNNL", .product(name: "RealModule", package: "swift-numerics")],
      exclude: ["README.md"]),
    .target(name: "NN", dependencies: ["Autodiff"], exclude: ["README.md"]),
    .target(name: "Datasets", dependencies: ["CZlib"], exclude: ["README.md"]),
    .target(
      name: "Checkpoints", dependencies: ["CHDF5", "Autodiff", "NN"], exclude: ["README.md"]),
    .target(name: "Energy", exclude: ["README.md"]),
    // The recipe schema and its checks: plain values, no training code.
    .target(
      name: "DistillRecipes", dependencies: [.product(name: "Yams", package: "Yams")], exclude: ["README.md"]),
    // Training: the model builder, the trainer, the distillation methods, checkpoints of training
    // state, run folders.
    .target(
      name: "Distill",
      dependencies: [
        "DistillRecipes", "Autodiff", "NN", "Datasets", "Checkpoints", "Energy", "CKernels",
        .target(name: "CMPI", condition: .when(traits: ["MPI"])),
      ],
      exclude: ["README.md"]),
    // What reads finished run folders: `distill compare`'s table and plot.
    .target(
      name: "DistillReports", dependencies: ["Distill", "DistillRecipes", "Checkpoints", "NN", "Energy"], exclude: ["README.md"]),
    .executableTarget(
      name: "DistillCLI",
      dependencies: [
        "Autodiff", "NN", "Datasets", "Checkpoints", "DistillRecipes", "Distill", "DistillReports", "Energy",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      exclude: ["README.md"]),
    .target(name: "_TestSupport", dependencies: ["Autodiff"], path: "Tests/_TestSupport"),
    .testTarget(name: "AutodiffTests", dependencies: ["Autodiff", "_TestSupport"]),
    .testTarget(name: "NNTests", dependencies: ["NN", "Datasets", "_TestSupport"]),
    .testTarget(name: "DatasetsTests", dependencies: ["Datasets"]),
    .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "_TestSupport"]),
    .testTarget(name: "EnergyTests", dependencies: ["Energy"]),
    .testTarget(name: "DistillTests", dependencies: ["DistillRecipes", "Distill", "DistillReports", "_TestSupport"]),
    // Runs the built `distill` executable (the dependency makes sure it is built) as a separate
    // process: signals, SIGKILL during checkpoint writes, exit statuses.
    .testTarget(
      name: "DistillCLITests",
      dependencies: ["DistillCLI", "DistillRecipes", "Distill", "Checkpoints", "Datasets", "Autodiff", "_TestSupport"]),
  ]
)
