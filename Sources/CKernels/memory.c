// Process-wide allocator settings (glibc's mallopt, whose header Swift's Glibc module lacks).
#include "CKernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int distill_keep_freed_blocks_in_heap(void) {
#if defined(__GLIBC__)
  // 32 MiB is glibc's largest mmap threshold; a trim threshold this high never trims.
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) && mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
#else
  return 0;
#endif
}

long distill_heap_bytes_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 info = mallinfo2();
  return (long)(info.uordblks + info.hblkhd);
#else
  return 0;
#endif
}
