// Float -> uint8 quantization of activations with runtime CPU-feature dispatch: AVX-512 F/BW/VL (16
// lanes) or a portable loop giving the same bytes. q = clamp(rint(x · inverse_scale) + zero_point,
// 0, quant_max), rounding to nearest, ties to even; NaN quantizes to 0. quant_max is 255, or 127
// for 7-bit activations (`reduce_range`).
#include "CKernels.h"
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define DISTILL_X86_64 1
#endif

// The product is clamped to ±512 first, so that the conversion to an integer never overflows
// (and gives the same clamped byte: |zero_point| ≤ 255).
static void quantize_portable(const float *src, uint8_t *dst, size_t n, float inverse_scale, int zero_point, int quant_max) {
  for (size_t i = 0; i < n; i++) {
    float v = src[i] * inverse_scale;
    if (!(v >= -512.0f)) v = -512.0f;  // also NaN
    if (v > 512.0f) v = 512.0f;
    int q = (int)nearbyintf(v) + zero_point;
    dst[i] = (uint8_t)(q < 0 ? 0 : q > quant_max ? quant_max : q);
  }
}

#ifdef DISTILL_X86_64
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void quantize_avx512(const float *src, uint8_t *dst, size_t n, float inverse_scale, int zero_point, int quant_max) {
  const __m512 scale = _mm512_set1_ps(inverse_scale);
  const __m512 low = _mm512_set1_ps(-512.0f), high = _mm512_set1_ps(512.0f);
  const __m512i zero = _mm512_set1_epi32(zero_point), lo = _mm512_setzero_si512(), hi = _mm512_set1_epi32(quant_max);
  size_t i = 0;
  for (; i < n; i += 16) {
    __mmask16 mask = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, src + i), scale);
    v = _mm512_min_ps(_mm512_max_ps(v, low), high);  // max_ps(NaN, low) is low
    __m512i q = _mm512_add_epi32(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zero);
    q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
    _mm_mask_storeu_epi8(dst + i, mask, _mm512_cvtepi32_epi8(q));
  }
}
#endif

enum { Q_UNSET, Q_PORTABLE, Q_AVX512 };
static int q_path = Q_UNSET;

void distill_quantize_u8(const float *src, uint8_t *dst, size_t count, float inverse_scale, int zero_point, int quant_max) {
  if (q_path == Q_UNSET) {
    q_path = Q_PORTABLE;
#ifdef DISTILL_X86_64
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) q_path = Q_AVX512;
#endif
  }
#ifdef DISTILL_X86_64
  if (q_path == Q_AVX512) {
    quantize_avx512(src, dst, count, inverse_scale, zero_point, quant_max);
    return;
  }
#endif
  quantize_portable(src, dst, count, inverse_scale, zero_point, quant_max);
}

int distill_quantize_use_path(const char *name) {
  if (name[0] == 'p') {
    q_path = Q_PORTABLE;
    return 0;
  }
#ifdef DISTILL_X86_64
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
    q_path = Q_AVX512;
    return 0;
  }
#endif
  return -1;
}
