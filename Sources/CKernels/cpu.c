// What the CPU offers that changes which kernel is exact.
#include "CKernels.h"

int distill_cpu_has_int8_dot_product(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
}

int distill_cpu_has_avx512(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}
