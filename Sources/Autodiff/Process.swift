import CBLAS
import CKernels

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

/// Settings of the process's memory allocator.
public enum ProcessMemory {
  /// A training step frees and reallocates the same large buffers (activations, gradients)
  /// every step. glibc hands blocks above its thresholds back to the kernel on each free, so
  /// each step pages them in and zeroes them again. Measured on the 784-800-800-10 MLP,
  /// batch 128, 2 threads: 12,200–13,300 samples/s without this, 18,100–18,700 with it. This keeps freed blocks of up to 32 MiB in the heap for reuse. Executables
  /// call it once at start-up; a library should not change its host's allocator on its own.
  /// Returns whether the allocator accepted the settings (false off glibc).
  @discardableResult
  public static func keepFreedBlocksInHeap() -> Bool { distill_keep_freed_blocks_in_heap() == 1 }
}
