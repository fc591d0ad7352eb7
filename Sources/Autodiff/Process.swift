import CBLAS
import CKernels

#if canImport(Glibc)
  import Glibc
#endif

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
  /// Makes glibc keep freed blocks of up to 32 MiB in the heap (mmap threshold 32 MiB, no
  /// trimming) instead of returning them to the kernel. Not needed for the engine's own
  /// tensors, whose buffers `TensorBufferPool` reuses, and not called by `distill`; for a host
  /// program whose other large allocations churn. A library should not change its host's
  /// allocator on its own. Returns whether the allocator accepted the settings (false off glibc).
  @discardableResult
  public static func keepFreedBlocksInHeap() -> Bool { distill_keep_freed_blocks_in_heap() == 1 }

  /// The machine's physical memory in bytes (`sysconf`); what model sizes and file reads are
  /// checked against before anything is allocated, so that an impossible size is an error
  /// naming its cause instead of an allocation failure that aborts the process.
  public static let physicalBytes: Int = {
    let pages = sysconf(Int32(_SC_PHYS_PAGES))
    let size = sysconf(Int32(_SC_PAGESIZE))
    return pages > 0 && size > 0 ? pages.multipliedReportingOverflow(by: size).partialValue : Int.max
  }()

  /// `elements` × `bytesPerElement`, or nil when the product overflows or exceeds
  /// `physicalBytes`: the size of a buffer that cannot be allocated here.
  public static func fittingBytes(elements: Int, bytesPerElement: Int) -> Int? {
    guard elements >= 0 else { return nil }
    let (bytes, overflow) = elements.multipliedReportingOverflow(by: bytesPerElement)
    return overflow || bytes > physicalBytes ? nil : bytes
  }

  /// The product of `dimensions`, or nil when one is negative or the product overflows `Int`.
  public static func elementCount(_ dimensions: [Int]) -> Int? {
    var count = 1
    for d in dimensions {
      guard d >= 0 else { return nil }
      let (product, overflow) = count.multipliedReportingOverflow(by: d)
      if overflow { return nil }
      count = product
    }
    return count
  }
}
