// Half <-> float conversion with runtime CPU-feature dispatch.
// Portable fallback: bit manipulation, round to nearest even. Fast paths: F16C (8 lanes) and
// AVX-512F (16 lanes), compiled with target attributes so the file builds for any x86-64 baseline.
#include "CKernels.h"
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DISTILL_X86 1
#endif

static float half_to_float_portable(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal half: normalise
      int e = -1;
      do { man <<= 1; e++; } while ((man & 0x400) == 0);
      man &= 0x3ff;
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static uint16_t float_to_half_portable(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or NaN
    return sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 | ((absx >> 13) & 0x3ff) : 0);
  }
  if (absx >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: overflow to inf
  if (absx < 0x38800000u) {                       // below the smallest normal half: subnormal or 0
    if (absx < 0x33000000u) return sign;          // below half the smallest subnormal: 0
    uint32_t e = absx >> 23;
    uint32_t m = (absx & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // 14 + (112 - e) ... places the implicit bit correctly
    uint32_t half_m = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_m & 1))) half_m++;
    return sign | (uint16_t)half_m;
  }
  uint32_t h = ((absx >> 13) - ((127 - 15) << 10));
  uint32_t rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  return sign | (uint16_t)h;
}

#ifdef DISTILL_X86
__attribute__((target("avx,f16c")))
static void h2f_f16c(const uint16_t *src, float *dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; i++) dst[i] = half_to_float_portable(src[i]);
}

__attribute__((target("avx,f16c")))
static void f2h_f16c(const float *src, uint16_t *dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 f = _mm256_loadu_ps(src + i);
    _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; i++) dst[i] = float_to_half_portable(src[i]);
}

__attribute__((target("avx512f")))
static void h2f_avx512(const uint16_t *src, float *dst, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i h = _mm256_loadu_si256((const __m256i *)(src + i));
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
  }
  for (; i < n; i++) dst[i] = half_to_float_portable(src[i]);
}

__attribute__((target("avx512f")))
static void f2h_avx512(const float *src, uint16_t *dst, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 f = _mm512_loadu_ps(src + i);
    _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; i++) dst[i] = float_to_half_portable(src[i]);
}
#endif

enum { PATH_UNKNOWN = 0, PATH_PORTABLE, PATH_F16C, PATH_AVX512 };
static int chosen_path = PATH_UNKNOWN;  // benign race: every thread computes the same value

static int conversion_path(void) {
  if (chosen_path != PATH_UNKNOWN) return chosen_path;
  int path = PATH_PORTABLE;
#ifdef DISTILL_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) path = PATH_AVX512;
  else if (__builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx")) path = PATH_F16C;
#endif
  chosen_path = path;
  return path;
}

void distill_half_to_float(const uint16_t *src, float *dst, size_t count) {
  switch (conversion_path()) {
#ifdef DISTILL_X86
    case PATH_AVX512: h2f_avx512(src, dst, count); return;
    case PATH_F16C: h2f_f16c(src, dst, count); return;
#endif
    default:
      for (size_t i = 0; i < count; i++) dst[i] = half_to_float_portable(src[i]);
  }
}

void distill_float_to_half(const float *src, uint16_t *dst, size_t count) {
  switch (conversion_path()) {
#ifdef DISTILL_X86
    case PATH_AVX512: f2h_avx512(src, dst, count); return;
    case PATH_F16C: f2h_f16c(src, dst, count); return;
#endif
    default:
      for (size_t i = 0; i < count; i++) dst[i] = float_to_half_portable(src[i]);
  }
}

const char *distill_half_conversion_path(void) {
  switch (conversion_path()) {
    case PATH_AVX512: return "avx512";
    case PATH_F16C: return "f16c";
    default: return "portable";
  }
}

int distill_half_use_conversion_path(const char *name) {
  if (strcmp(name, "auto") == 0) {
    chosen_path = PATH_UNKNOWN;
    conversion_path();
    return 1;
  }
  int wanted = PATH_UNKNOWN;
  if (strcmp(name, "portable") == 0) wanted = PATH_PORTABLE;
  else if (strcmp(name, "f16c") == 0) wanted = PATH_F16C;
  else if (strcmp(name, "avx512") == 0) wanted = PATH_AVX512;
  if (wanted == PATH_UNKNOWN) return 0;
#ifdef DISTILL_X86
  __builtin_cpu_init();
  if (wanted == PATH_AVX512 && !__builtin_cpu_supports("avx512f")) return 0;
  if (wanted == PATH_F16C && !(__builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx"))) return 0;
#else
  if (wanted != PATH_PORTABLE) return 0;
#endif
  chosen_path = wanted;
  return 1;
}
