// oneDNN 2.x int8 matrix products for quantized inference: see include/CDNNL.h.
#include "CDNNL.h"
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct distill_int8_matmul {
  dnnl_primitive_t matmul;
  operand a, b, c;
  int8_t *weights;  // the caller's weights, copied: the primitive may read them in place
};

distill_int8_matmul *distill_int8_matmul_create(long m, long n, long k, const int8_t *weights, const float *scales,
                                                int zero_point) {
  int result = 0;
  if (distill_dnnl_engine_ready() != 0) return NULL;
  distill_int8_matmul *mm = calloc(1, sizeof *mm);
  if (mm) mm->weights = malloc((size_t)n * (size_t)k);
  if (!mm || !mm->weights) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "out of memory for a oneDNN int8 matmul");
    distill_int8_matmul_destroy(mm);
    return NULL;
  }
  memcpy(mm->weights, weights, (size_t)n * (size_t)k);
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_memory_desc_t a_md, b_user, b_any, c_md;
  dnnl_matmul_desc_t desc;
  dnnl_dims_t a_dims = {m, k}, b_dims = {k, n}, c_dims = {m, n};
  // B = Wᵀ read from W [n, k] row-major through swapped strides; A and C row-major.
  dnnl_dims_t b_strides = {1, k};
  CHECK(dnnl_memory_desc_init_by_tag(&a_md, 2, a_dims, dnnl_u8, dnnl_ab), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_strides(&b_user, 2, b_dims, dnnl_s8, b_strides), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&b_any, 2, b_dims, dnnl_s8, dnnl_format_tag_any), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&c_md, 2, c_dims, dnnl_f32, dnnl_ab), "memory descriptor");
  CHECK(dnnl_matmul_desc_init(&desc, &a_md, &b_any, NULL, &c_md), "int8 matmul descriptor");
  CHECK(dnnl_primitive_attr_create(&attr), "attribute creation");
  // One scale per output column (mask: dimension 1), and the activations' zero point.
  CHECK(dnnl_primitive_attr_set_output_scales(attr, n, 1 << 1, scales), "output scales");
  if (zero_point != 0) {
    int32_t zp = zero_point;
    CHECK(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &zp), "source zero point");
  }
  CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, distill_dnnl_engine(), NULL), "int8 matmul");
  CHECK(dnnl_primitive_create(&mm->matmul, pd), "int8 matmul primitive");
  CHECK(operand_init(&mm->a, &a_md, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), 1), "reorder");
  CHECK(operand_init(&mm->b, &b_user, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), 1), "reorder");
  CHECK(operand_init(&mm->c, &c_md, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 0), "reorder");
  // The weights go into the primitive's layout once.
  CHECK(operand_bind(&mm->b, mm->weights), "binding memory");
  CHECK(operand_reorder(&mm->b, 1), "weights reorder");
  CHECK(dnnl_stream_wait(distill_dnnl_stream()), "stream wait");
failed:
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (result != 0) {
    distill_int8_matmul_destroy(mm);
    return NULL;
  }
  return mm;
}

void distill_int8_matmul_destroy(distill_int8_matmul *mm) {
  if (!mm) return;
  if (mm->matmul) dnnl_primitive_destroy(mm->matmul);
  operand_destroy(&mm->a);
  operand_destroy(&mm->b);
  operand_destroy(&mm->c);
  free(mm->weights);
  free(mm);
}

int distill_int8_matmul_run(distill_int8_matmul *mm, const uint8_t *a, float *c) {
  int result = 0;
  CHECK(operand_bind(&mm->a, a), "binding memory");
  CHECK(operand_bind(&mm->c, c), "binding memory");
  CHECK(operand_reorder(&mm->a, 1), "operand reorder");
  dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_SRC, operand_memory(&mm->a)},
      {DNNL_ARG_WEIGHTS, operand_memory(&mm->b)},
      {DNNL_ARG_DST, operand_memory(&mm->c)},
  };
  CHECK(dnnl_primitive_execute(mm->matmul, distill_dnnl_stream(), 3, args), "int8 matmul");
  CHECK(operand_reorder(&mm->c, 0), "result reorder");
  CHECK(dnnl_stream_wait(distill_dnnl_stream()), "stream wait");
failed:
  return result;
}
