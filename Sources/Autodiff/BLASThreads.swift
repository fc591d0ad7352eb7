import CBLAS

/// The thread pool of the BLAS library behind every matrix product.
public enum BLAS {
  /// The number of threads OpenBLAS uses for one product. Set it before timing anything:
  /// benchmarks compare with PyTorch at the same count (`torch.set_num_threads`).
  public static var threadCount: Int {
    get { Int(openblas_get_num_threads()) }
    set { openblas_set_num_threads(Int32(max(1, newValue))) }
  }

  /// OpenBLAS's own description of its build (version, kernel, threading).
  public static var configuration: String { String(cString: openblas_get_config()) }
}
