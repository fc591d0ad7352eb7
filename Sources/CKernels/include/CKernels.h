// Small C kernels that need CPU features Swift will not emit portably.
// Each entry point picks its implementation at run time from the CPU's features, so one binary
// runs everywhere and fast where it can.
#ifndef DISTILL_CKERNELS_H
#define DISTILL_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Converts `count` IEEE binary16 values (given as their bit patterns) to Float.
/// Exact for every input; NaNs stay NaN (payload kept where the hardware keeps it).
void distill_half_to_float(const uint16_t *src, float *dst, size_t count);

/// Converts `count` Floats to IEEE binary16 bit patterns, rounding to nearest, ties to even;
/// overflow gives infinity, NaN gives a quiet NaN.
void distill_float_to_half(const float *src, uint16_t *dst, size_t count);

/// Names the conversion path chosen on this CPU: "avx512", "f16c" or "portable".
const char *distill_half_conversion_path(void);

/// Makes the conversions use the path named "avx512", "f16c" or "portable" (tests compare the
/// paths on one machine), or "auto" for the CPU's best again. Returns 1 when set, 0 when this
/// CPU (or build) lacks the path or the name is unknown, leaving the path as it was.
int distill_half_use_conversion_path(const char *name);

/// Quantizes `count` Floats to uint8: clamp(rint(x · inverse_scale) + zero_point, 0, 255),
/// ties to even, NaN to 0; AVX-512 where the CPU has it, else a portable loop with the same bytes.
void distill_quantize_u8(const float *src, uint8_t *dst, size_t count, float inverse_scale, int zero_point,
                         int quant_max);

/// Tests: forces the quantization path ("portable" or "avx512"); 0, or -1 when the CPU lacks it.
int distill_quantize_use_path(const char *name);

/// Rounds `count` Floats to bfloat16 bit patterns (the upper 16 bits of a Float): to nearest,
/// ties to even; subnormal inputs and results become signed zero and NaN a quiet NaN, as
/// AVX512-BF16's VCVTNEPS2BF16 does (the path used where the CPU has it).
void distill_float_to_bfloat16(const float *src, uint16_t *dst, size_t count);

/// Names the bfloat16 rounding path chosen on this CPU: "avx512bf16" or "portable".
const char *distill_bfloat16_conversion_path(void);

/// Makes the rounding use the path named "avx512bf16" or "portable", or "auto" for the CPU's
/// best. Returns 1 when set, 0 when this CPU lacks the path or the name is unknown.
int distill_bfloat16_use_conversion_path(const char *name);

/// Keeps freed large blocks in the heap instead of returning them to the kernel (glibc's
/// M_MMAP_THRESHOLD at its 32 MiB maximum, M_TRIM_THRESHOLD off). Returns 1 when applied.
int distill_keep_freed_blocks_in_heap(void);

/// Bytes the allocator has handed out and not yet had back (glibc's mallinfo2 uordblks + hblkhd,
/// every arena); 0 where that is not available. For memory benchmarks: it walks the free lists.
long distill_heap_bytes_in_use(void);

/// Swaps two paths in one atomic step (Linux renameat2 with RENAME_EXCHANGE): each name then
/// refers to what the other did. Returns 0, or -1 with errno set (ENOSYS or EINVAL where the
/// kernel or file system cannot exchange).
int distill_exchange_paths(const char *first, const char *second);

// 1 when the CPU has an int8 dot-product instruction (AVX-512 VNNI or AVX-VNNI). Without one,
// oneDNN's u8 × s8 kernels add pairs of products in 16 bits (vpmaddubsw), which saturates.
int distill_cpu_has_int8_dot_product(void);

// 1 when the CPU has AVX-512 (oneDNN's native channel block is then 16, else 8).
int distill_cpu_has_avx512(void);

#endif
