/// Which data set a recipe trains on, where it lives and how it is split (`data:` in a recipe).
public struct DataSpec: Codable, Equatable, Sendable {
  /// The data set.
  public var dataset: DatasetKind
  /// The data's folder (IDX sets), file (`csv`) or install root (`digits`). The CLI's
  /// `--data PATH` overrides it; `csv` needs one or the other.
  public var path: String?
  /// How much of the training split to hold out for validation. Default `.count(0)`: none,
  /// the test split is used for evaluation.
  public var validation: ValidationSplit
  /// Standardise features with the training split's mean and standard deviation (one scalar
  /// each). Default false: features stay in [0, 1] as the loaders scale them.
  public var normalize: Bool
  /// The shape of one sample, e.g. `[1, 8, 8]` to run a CNN on the 64 digits features; the
  /// product must equal the sample size. Default: the loader's shape.
  public var shape: [Int]?
  /// `csv` only: the column that holds the label (from 0). Default: the last.
  public var labelColumn: Int?
  /// `csv` only: the number of classes. Default: one more than the largest label.
  public var classes: Int?

  /// A data section from its parts.
  public init(
    dataset: DatasetKind, path: String? = nil, validation: ValidationSplit = .count(0),
    normalize: Bool = false, shape: [Int]? = nil, labelColumn: Int? = nil, classes: Int? = nil
  ) {
    self.dataset = dataset
    self.path = path
    self.validation = validation
    self.normalize = normalize
    self.shape = shape
    self.labelColumn = labelColumn
    self.classes = classes
  }

  /// The number of classes the model's last layer must produce, when known before loading.
  public var classCount: Int? { classes ?? dataset.classCount }

  enum CodingKeys: String, RecipeKeys {
    case dataset, path, validation, normalize, shape
    case labelColumn = "label_column"
    case classes
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    dataset = try c.decode(DatasetKind.self, forKey: .dataset)
    path = try c.decodeIfPresent(String.self, forKey: .path)
    validation = try c.decodeIfPresent(ValidationSplit.self, forKey: .validation) ?? .count(0)
    normalize = try c.decodeIfPresent(Bool.self, forKey: .normalize) ?? false
    shape = try c.decodeIfPresent([Int].self, forKey: .shape)
    labelColumn = try c.decodeIfPresent(Int.self, forKey: .labelColumn)
    classes = try c.decodeIfPresent(Int.self, forKey: .classes)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(dataset, forKey: .dataset)
    try c.encodeIfPresent(path, forKey: .path)
    try c.encode(validation, forKey: .validation)
    try c.encode(normalize, forKey: .normalize)
    try c.encodeIfPresent(shape, forKey: .shape)
    try c.encodeIfPresent(labelColumn, forKey: .labelColumn)
    try c.encodeIfPresent(classes, forKey: .classes)
  }
}

/// The data sets a recipe can name.
public enum DatasetKind: String, CaseIterable, Codable, Sendable {
  /// The UCI 8×8 digits embedded in `datasets/digits/` (1797 samples, 64 features, 10 classes).
  case digits
  /// MNIST in IDX files (`train-images-idx3-ubyte[.gz]` …): 60000 + 10000 images 28×28.
  case mnist
  /// Fashion-MNIST, same layout as MNIST.
  case fashionMNIST = "fashion-mnist"
  /// A CSV file: numeric features, the label last (or in `label_column`).
  case csv

  /// The number of classes, for the sets that fix it.
  public var classCount: Int? {
    switch self {
    case .digits, .mnist, .fashionMNIST: return 10
    case .csv: return nil
    }
  }

  public init(from decoder: any Decoder) throws { self = try decoder.decodeChoice() }
}

/// How many training samples to hold out for validation: an integer count, or a decimal
/// fraction of the training split (`validation: 5000`, `validation: 0.1`).
public enum ValidationSplit: Codable, Equatable, Sendable {
  /// Exactly this many samples (at least 0).
  case count(Int)
  /// This fraction of the training samples, in [0, 1).
  case fraction(Double)

  /// The number of samples held out of `total`: the count (at most `total`), or the fraction
  /// of `total` rounded to the nearest integer.
  public func count(of total: Int) -> Int {
    switch self {
    case .count(let n): return min(max(n, 0), total)
    case .fraction(let f): return min(Int((Double(total) * f).rounded()), total)
    }
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if let n = try? c.decode(Int.self) {
      self = .count(n)
    } else if let f = try? c.decode(Double.self) {
      self = .fraction(f)
    } else {
      throw decoder.typeMismatch(expected: "a sample count (integer) or a fraction in [0, 1)")
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .count(let n): try c.encode(n)
    case .fraction(let f): try c.encode(f)
    }
  }
}
