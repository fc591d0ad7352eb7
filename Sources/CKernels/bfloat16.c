// Float -> bfloat16 rounding with runtime CPU-feature dispatch: AVX512-BF16's VCVTNEPS2BF16
// (16 lanes), else a portable loop that gives the same bits: round to nearest, ties to even;
// subnormal inputs and results flushed to signed zero, as the instruction does; NaN → quiet NaN.
#include "CKernels.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define DISTILL_X86_64 1
#endif

static uint16_t float_to_bfloat16_portable(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040);  // NaN: quiet, sign and top payload kept
  if (absx < 0x00800000u) return (uint16_t)((x >> 16) & 0x8000);  // zero or subnormal: signed zero
  uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(rounded >> 16);
}

static void f2bf_portable(const float *src, uint16_t *dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = float_to_bfloat16_portable(src[i]);
}

#ifdef DISTILL_X86_64
__attribute__((target("avx512f,avx512bf16,avx512vl")))
static void f2bf_avx512bf16(const float *src, uint16_t *dst, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256bh b = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)b);
  }
  if (i < n) {
    __mmask16 mask = (__mmask16)((1u << (n - i)) - 1);
    __m256bh b = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + i));
    _mm256_mask_storeu_epi16(dst + i, mask, (__m256i)b);
  }
}
#endif

enum { BF_UNSET, BF_PORTABLE, BF_AVX512BF16 };
static int bf_path = BF_UNSET;

static int best_bf_path(void) {
#ifdef DISTILL_X86_64
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vl")) return BF_AVX512BF16;
#endif
  return BF_PORTABLE;
}

void distill_float_to_bfloat16(const float *src, uint16_t *dst, size_t count) {
  if (bf_path == BF_UNSET) bf_path = best_bf_path();
#ifdef DISTILL_X86_64
  if (bf_path == BF_AVX512BF16) {
    f2bf_avx512bf16(src, dst, count);
    return;
  }
#endif
  f2bf_portable(src, dst, count);
}

const char *distill_bfloat16_conversion_path(void) {
  if (bf_path == BF_UNSET) bf_path = best_bf_path();
  return bf_path == BF_AVX512BF16 ? "avx512bf16" : "portable";
}

int distill_bfloat16_use_conversion_path(const char *name) {
  int wanted;
  if (strcmp(name, "auto") == 0) wanted = best_bf_path();
  else if (strcmp(name, "portable") == 0) wanted = BF_PORTABLE;
  else if (strcmp(name, "avx512bf16") == 0) wanted = BF_AVX512BF16;
  else return 0;
  if (wanted == BF_AVX512BF16 && best_bf_path() != BF_AVX512BF16) return 0;
  bf_path = wanted;
  return 1;
}
