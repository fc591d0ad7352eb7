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

struct distill_int8_conv {
  dnnl_primitive_t conv;
  operand x, w, y;
  int8_t *weights;
};

distill_int8_conv *distill_int8_conv_create(long n, long c, long h, long w, long oc, long k, long stride,
                                            long pad, const int8_t *weights, const float *scales, int zero_point) {
  int result = 0;
  if (distill_dnnl_engine_ready() != 0) return NULL;
  distill_int8_conv *cv = calloc(1, sizeof *cv);
  size_t count = (size_t)oc * (size_t)c * (size_t)k * (size_t)k;
  if (cv) cv->weights = malloc(count);
  if (!cv || !cv->weights) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "out of memory for a oneDNN int8 convolution");
    distill_int8_conv_destroy(cv);
    return NULL;
  }
  memcpy(cv->weights, weights, count);
  long oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_memory_desc_t x_user, x_any, w_user, w_any, y_user, y_any;
  dnnl_convolution_desc_t desc;
  dnnl_dims_t x_dims = {n, c, h, w}, w_dims = {oc, c, k, k}, y_dims = {n, oc, oh, ow};
  dnnl_dims_t strides = {stride, stride}, padding = {pad, pad};
  CHECK(dnnl_memory_desc_init_by_tag(&x_user, 4, x_dims, dnnl_u8, dnnl_nchw), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&x_any, 4, x_dims, dnnl_u8, dnnl_format_tag_any), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&w_user, 4, w_dims, dnnl_s8, dnnl_oihw), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, dnnl_s8, dnnl_format_tag_any), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&y_user, 4, y_dims, dnnl_f32, dnnl_nchw), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&y_any, 4, y_dims, dnnl_f32, dnnl_format_tag_any), "memory descriptor");
  CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, &x_any, &w_any,
                                           NULL, &y_any, strides, padding, padding),
        "int8 convolution descriptor");
  CHECK(dnnl_primitive_attr_create(&attr), "attribute creation");
  // One scale per output channel (mask: dimension 1), and the activations' zero point, which
  // oneDNN also takes for the padding (the real 0).
  CHECK(dnnl_primitive_attr_set_output_scales(attr, oc, 1 << 1, scales), "output scales");
  if (zero_point != 0) {
    int32_t zp = zero_point;
    CHECK(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &zp), "source zero point");
  }
  CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, distill_dnnl_engine(), NULL), "int8 convolution");
  CHECK(dnnl_primitive_create(&cv->conv, pd), "int8 convolution primitive");
  CHECK(operand_init(&cv->x, &x_user, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), 1), "reorder");
  CHECK(operand_init(&cv->w, &w_user, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), 1), "reorder");
  CHECK(operand_init(&cv->y, &y_user, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 0), "reorder");
  CHECK(operand_bind(&cv->w, cv->weights), "binding memory");
  CHECK(operand_reorder(&cv->w, 1), "weights reorder");
  CHECK(dnnl_stream_wait(distill_dnnl_stream()), "stream wait");
failed:
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (result != 0) {
    distill_int8_conv_destroy(cv);
    return NULL;
  }
  return cv;
}

void distill_int8_conv_destroy(distill_int8_conv *cv) {
  if (!cv) return;
  if (cv->conv) dnnl_primitive_destroy(cv->conv);
  operand_destroy(&cv->x);
  operand_destroy(&cv->w);
  operand_destroy(&cv->y);
  free(cv->weights);
  free(cv);
}

int distill_int8_conv_run(distill_int8_conv *cv, const uint8_t *x, float *y) {
  int result = 0;
  CHECK(operand_bind(&cv->x, x), "binding memory");
  CHECK(operand_bind(&cv->y, y), "binding memory");
  CHECK(operand_reorder(&cv->x, 1), "operand reorder");
  dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_SRC, operand_memory(&cv->x)},
      {DNNL_ARG_WEIGHTS, operand_memory(&cv->w)},
      {DNNL_ARG_DST, operand_memory(&cv->y)},
  };
  CHECK(dnnl_primitive_execute(cv->conv, distill_dnnl_stream(), 3, args), "int8 convolution");
  CHECK(operand_reorder(&cv->y, 0), "result reorder");
  CHECK(dnnl_stream_wait(distill_dnnl_stream()), "stream wait");
failed:
  return result;
}
