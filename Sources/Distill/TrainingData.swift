import Autodiff
import Datasets
import Foundation
import DistillRecipes

/// The three splits a run uses, loaded as the recipe's `data` section says
/// (`recipes/README.md` → data):
///
/// - `digits`, `csv`: one file, no test split of its own. `validation` samples (stratified,
///   seeded by the run's seed) are held out; they are evaluated each epoch and at the end, and
///   the summary says the test figures come from that held-out split. `validation: 0` is an
///   error: nothing would be held out.
/// - `mnist`, `fashion-mnist`: the `train` and `t10k` IDX files. `validation` samples of the
///   training file are held out for the per-epoch evaluation and the test file is evaluated at
///   the end; with `validation: 0` the per-epoch evaluation is on the test file.
///
/// Features are in [0, 1] (standardised with the training split's mean and standard deviation
/// when `normalize` is set); `data.shape` reshapes every sample.
public struct TrainingData {
  /// What the models are trained on.
  public var train: Dataset
  /// What is evaluated after every epoch.
  public var validation: Dataset
  /// What is evaluated once, at the end.
  public var test: Dataset
  /// Where the per-epoch figures come from: `"validation"`, or `"test"` when nothing of the
  /// training file was held out.
  public var validationSplit: String
  /// Where the final figures come from: `"test"`, or `"validation"` for a data set without a test
  /// split of its own (digits, csv), whose held-out split serves as both.
  public var testSplit: String

  /// The shape of one sample, e.g. `[64]` or `[1, 28, 28]`.
  public var sampleShape: [Int] { train.sampleShape }
  /// The number of classes.
  public var classCount: Int { train.classCount }

  /// Splits loaded elsewhere (tests, or a caller with its own data).
  public init(train: Dataset, validation: Dataset, test: Dataset, validationSplit: String, testSplit: String)
  {
    self.train = train
    self.validation = validation
    self.test = test
    self.validationSplit = validationSplit
    self.testSplit = testSplit
  }

  /// Loads the data of `spec`. `dataPath` is `--data` (it wins over `data.path`); `seed` chooses
  /// the validation split; `file` is the recipe file errors name. `digitsRoots` are the folders
  /// searched for `datasets/digits/` when neither location is given (default:
  /// `defaultDigitsRoots(recipeFile: file)`).
  public static func load(
    _ spec: DataSpec, seed: UInt64, file: String, dataPath: String? = nil, digitsRoots: [String]? = nil
  ) throws -> TrainingData {
    let (location, source) =
      dataPath.map { ($0, "--data") } ?? spec.path.map { ($0, "data.path") } ?? (nil, "the default")
    func unavailable(_ error: any Error, source: String) -> any Error {
      guard let error = error as? DatasetError else { return error }
      return TrainingError.dataUnavailable(
        file: file, keyPath: "data.path", source: source, underlying: error)
    }

    var data: TrainingData
    switch spec.dataset {
    case .digits:
      let roots = location.map { [$0] } ?? digitsRoots ?? defaultDigitsRoots(recipeFile: file)
      let root = roots.first { FileManager.default.fileExists(atPath: $0 + "/datasets/digits/digits.csv.gz") }
      let all: Dataset
      do {
        all = try loadEmbeddedDigits(root: root ?? roots.first ?? ".")
      } catch {
        throw unavailable(
          error, source: location == nil ? "the default: \(roots.joined(separator: ", "))" : source)
      }
      data = try heldOut(from: all, spec: spec, seed: seed, file: file)
    case .csv:
      guard let location else {
        throw TrainingError.dataLocationRequired(
          file: file, keyPath: "data.path", dataset: "csv",
          hint: "give the CSV file with --data PATH or data.path")
      }
      let all: Dataset
      do {
        all = try loadCSVDataset(path: location, labelColumn: spec.labelColumn, classCount: spec.classes)
      } catch {
        throw unavailable(error, source: source)
      }
      data = try heldOut(from: all, spec: spec, seed: seed, file: file)
    case .mnist, .fashionMNIST:
      let name = spec.dataset.rawValue
      let folder: String
      let from: String
      if let location {
        (folder, from) = (location, source)
      } else if spec.dataset == .fashionMNIST {
        (folder, from) = (
          debianFashionMNISTFolder,
          "the default; apt-get install dataset-fashion-mnist, or give the folder with --data PATH"
        )
      } else {
        throw TrainingError.dataLocationRequired(
          file: file, keyPath: "data.path", dataset: name,
          hint:
            "MNIST is not packaged in Debian: give the folder of its IDX files with --data PATH or data.path")
      }
      let train: Dataset
      let test: Dataset
      do {
        train = try loadMNISTFamily(folder: folder, split: .train)
        test = try loadMNISTFamily(folder: folder, split: .test)
      } catch {
        throw unavailable(error, source: from)
      }
      if test.sampleShape != train.sampleShape {
        func imagesFile(_ split: MNISTSplit) -> String {
          let directory = folder.hasSuffix("/") ? folder : folder + "/"
          let name = mnistFamilyFileNames(split: split).images.first { access(directory + $0, F_OK) == 0 }
          return directory + (name ?? "\(split.filePrefix)-images-idx3-ubyte")
        }
        throw TrainingError.dataMismatch(
          file: file, keyPath: "data.path",
          reason: "the test images \(imagesFile(.test)) are \(shapeText(test.sampleShape)) but the training "
            + "images \(imagesFile(.train)) are \(shapeText(train.sampleShape)) (from \(from)); both splits must "
            + "come from one data set")
      }
      let count = spec.validation.count(of: train.count)
      if count >= train.count {
        throw TrainingError.dataMismatch(
          file: file, keyPath: "data.validation",
          reason: "holding out \(count) of the \(train.count) training samples would leave none to train on; "
            + "hold out fewer (e.g. validation: 0.1)")
      }
      if count > 0 {
        let split = train.stratifiedSplit(validationFraction: Double(count) / Double(train.count), seed: seed)
        data = TrainingData(
          train: split.train, validation: split.validation, test: test, validationSplit: "validation",
          testSplit: "test")
      } else {
        data = TrainingData(
          train: train, validation: test, test: test, validationSplit: "test", testSplit: "test")
      }
    }
    try data.requireSamples(file: file)
    if let shape = spec.shape { try data.reshape(to: shape, file: file) }
    if spec.normalize { data.standardize() }
    return data
  }

  /// Holds out `spec.validation` samples of a data set without a test split; they serve as both
  /// validation and test split.
  private static func heldOut(from all: Dataset, spec: DataSpec, seed: UInt64, file: String) throws
    -> TrainingData
  {
    let count = spec.validation.count(of: all.count)
    guard count > 0, count < all.count else {
      throw TrainingError.dataMismatch(
        file: file, keyPath: "data.validation",
        reason: "'\(spec.dataset.rawValue)' has no test split of its own, so part of it must be held out "
          + "and part trained on (e.g. validation: 0.2); \(count) of \(all.count) samples would be held out")
    }
    let split = all.stratifiedSplit(validationFraction: Double(count) / Double(all.count), seed: seed)
    return TrainingData(
      train: split.train, validation: split.validation, test: split.validation, validationSplit: "validation",
      testSplit: "validation")
  }

  /// Folders that may hold `datasets/digits/`, each once: the working directory, the recipe's
  /// folder and the one above it (`recipes/digits-kd.yaml` lies one level below the
  /// repository), then the folders above the executable (`.build/release/distill` lies three
  /// levels below it).
  public static func defaultDigitsRoots(recipeFile: String? = nil) -> [String] {
    var roots = [FileManager.default.currentDirectoryPath]
    if let recipeFile {
      let folder = URL(fileURLWithPath: recipeFile).standardizedFileURL.deletingLastPathComponent()
      roots += [folder.path, folder.deletingLastPathComponent().path]
    }
    var executable = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
    for _ in 0..<4 {
      executable.deleteLastPathComponent()
      roots.append(executable.path)
    }
    var seen = Set<String>()
    return roots.filter { seen.insert($0).inserted }
  }

  /// Throws `TrainingError.dataMismatch` when a split is empty or the splits disagree on the
  /// sample shape or the number of classes: nothing trains on a split that cannot be evaluated.
  func requireSamples(file: String) throws {
    for (name, split) in [("training", train), ("validation", validation), ("test", test)] {
      guard split.count > 0 else {
        throw TrainingError.dataMismatch(
          file: file, keyPath: name == "training" ? "data.validation" : "data.path",
          reason: "the \(name) split has no samples (training \(train.count), validation \(validation.count), "
            + "test \(test.count)); check the data files and data.validation")
      }
      guard split.sampleShape == train.sampleShape, split.classCount == train.classCount,
        train.sampleShape.allSatisfy({ $0 > 0 })
      else {
        throw TrainingError.dataMismatch(
          file: file, keyPath: "data.path",
          reason: "the \(name) split has samples of shape \(shapeText(split.sampleShape)) in "
            + "\(split.classCount) classes, but the training split \(shapeText(train.sampleShape)) in "
            + "\(train.classCount); every split must come from one data set")
      }
    }
  }

  private mutating func reshape(to shape: [Int], file: String) throws {
    let count = ProcessMemory.elementCount(shape)
    guard count == train.sampleSize else {
      throw TrainingError.dataMismatch(
        file: file, keyPath: "data.shape",
        reason: "shape \(shape) has \(count.map(String.init) ?? "too many") elements, but a sample has \(train.sampleSize) "
          + "(loaded as \(train.sampleShape))")
    }
    train.sampleShape = shape
    validation.sampleShape = shape
    test.sampleShape = shape
  }

  /// Standardises every split with the training split's mean and standard deviation (one
  /// scalar each, over every feature of every sample).
  private mutating func standardize() {
    let n = Double(train.features.count)
    let mean = train.features.reduce(0.0) { $0 + Double($1) } / n
    let variance = train.features.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
    let scale = Float(1 / max(variance.squareRoot(), 1e-12))
    let shift = Float(mean)
    for keyPath in [\TrainingData.train, \.validation, \.test] {
      self[keyPath: keyPath].features.withUnsafeMutableBufferPointer { f in
        for i in f.indices { f[i] = (f[i] - shift) * scale }
      }
    }
  }
}

/// A sample shape as people write it: `28×28`, `1×28×28`.
func shapeText(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "×") }
