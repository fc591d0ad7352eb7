// oneDNN 2.x matrix products for the engine: see include/CDNNL.h.
#include "CDNNL.h"
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct distill_matmul {
  int bf16, accumulate;
  dnnl_primitive_t matmul;
  operand a, b, c;
};

// The f32 memory descriptor of an op(X) [rows, cols] stored row-major with leading dimension
// ld: X itself when not transposed, else Xᵀ read through swapped strides.
static dnnl_status_t strided_md(dnnl_memory_desc_t *md, long rows, long cols, long ld, int transposed,
                                dnnl_data_type_t type) {
  dnnl_dims_t dims = {rows, cols};
  dnnl_dims_t strides = {transposed ? 1 : ld, transposed ? ld : 1};
  return dnnl_memory_desc_init_by_strides(md, 2, dims, type, strides);
}

distill_matmul *distill_matmul_create(long m, long n, long k, int trans_a, int trans_b, long lda, long ldb,
                                      long ldc, int bf16, int accumulate) {
  int result = 0;
  if (distill_dnnl_engine_ready() != 0) return NULL;
  distill_matmul *mm = calloc(1, sizeof *mm);
  if (!mm) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "out of memory for a oneDNN matmul");
    return NULL;
  }
  mm->bf16 = bf16;
  mm->accumulate = accumulate;
  dnnl_memory_desc_t a_user, b_user, c_user;
  dnnl_data_type_t operands = bf16 ? dnnl_bf16 : dnnl_f32;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t post_ops = NULL;
  dnnl_matmul_desc_t desc;
  // The operands as the caller holds them (bf16 bit patterns with `bf16`), read in place.
  CHECK(strided_md(&a_user, m, k, lda, trans_a, operands), "memory descriptor");
  CHECK(strided_md(&b_user, k, n, ldb, trans_b, operands), "memory descriptor");
  CHECK(strided_md(&c_user, m, n, ldc, 0, dnnl_f32), "memory descriptor");
  const dnnl_memory_desc_t *a_inner = &a_user, *b_inner = &b_user;
  CHECK(dnnl_matmul_desc_init(&desc, a_inner, b_inner, NULL, &c_user), "matmul descriptor");
  CHECK(dnnl_primitive_attr_create(&attr), "attribute creation");
  if (accumulate) {
    CHECK(dnnl_post_ops_create(&post_ops), "post-op creation");
    CHECK(dnnl_post_ops_append_sum(post_ops, 1.0f), "sum post-op");
    CHECK(dnnl_primitive_attr_set_post_ops(attr, post_ops), "post-op attribute");
  }
  CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, distill_dnnl_engine(), NULL), "matmul");
  CHECK(dnnl_primitive_create(&mm->matmul, pd), "matmul primitive");
  CHECK(operand_init(&mm->a, &a_user, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), 1), "reorder");
  CHECK(operand_init(&mm->b, &b_user, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), 1), "reorder");
  CHECK(operand_init(&mm->c, &c_user, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 0), "reorder");
failed:
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (post_ops) dnnl_post_ops_destroy(post_ops);
  if (result != 0) {
    distill_matmul_destroy(mm);
    return NULL;
  }
  return mm;
}

void distill_matmul_destroy(distill_matmul *mm) {
  if (!mm) return;
  if (mm->matmul) dnnl_primitive_destroy(mm->matmul);
  operand_destroy(&mm->a);
  operand_destroy(&mm->b);
  operand_destroy(&mm->c);
  free(mm);
}

int distill_matmul_run(distill_matmul *mm, const void *a, const void *b, float *c) {
  int result = 0;
  CHECK(operand_bind(&mm->a, a), "binding memory");
  CHECK(operand_bind(&mm->b, b), "binding memory");
  CHECK(operand_bind(&mm->c, c), "binding memory");
  CHECK(operand_reorder(&mm->a, 1), "operand reorder");
  CHECK(operand_reorder(&mm->b, 1), "operand reorder");
  dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_SRC, operand_memory(&mm->a)},
      {DNNL_ARG_WEIGHTS, operand_memory(&mm->b)},
      {DNNL_ARG_DST, operand_memory(&mm->c)},
  };
  CHECK(dnnl_primitive_execute(mm->matmul, distill_dnnl_stream(), 3, args), "matmul");
  CHECK(operand_reorder(&mm->c, 0), "result reorder");
  CHECK(dnnl_stream_wait(distill_dnnl_stream()), "stream wait");
failed:
  return result;
}
