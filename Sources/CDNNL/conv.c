// oneDNN 2.x convolutions for the engine: see include/CDNNL.h.
#include "CDNNL.h"
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct distill_conv {
  int has_bias;
  dnnl_primitive_t forward, backward_data, backward_weights;
  // forward: x, w, b, y; backward data: w, dy, dx; backward weights: x, dy, dw, db
  operand f_x, f_w, f_b, f_y;
  operand d_w, d_dy, d_dx;
  operand g_x, g_dy, g_dw, g_db;
};

static const dnnl_memory_desc_t *md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index) {
  return dnnl_primitive_desc_query_md(pd, what, index);
}

distill_conv *distill_conv_create(long n, long c, long h, long w, long o, long kh, long kw,
                                  long stride, long pad, int has_bias, int blocked, int bf16) {
  int result = 0;
  if (distill_dnnl_engine_ready() != 0) return NULL;
  distill_conv *conv = calloc(1, sizeof *conv);
  if (!conv) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "out of memory for a oneDNN convolution");
    return NULL;
  }
  conv->has_bias = has_bias;
  long ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
  dnnl_dims_t x_dims = {n, c, h, w}, w_dims = {o, c, kh, kw}, b_dims = {o}, y_dims = {n, o, ho, wo};
  dnnl_dims_t strides = {stride, stride}, padding = {pad, pad};
  // x_any, w_any, y_any: what the primitives read (bfloat16 for x, w and dy with `bf16`);
  // x_out, w_out, y_out: what they write (always f32).
  dnnl_memory_desc_t x_plain, w_plain, b_plain, y_plain, x_any, w_any, y_any, x_out, w_out, y_out;
  dnnl_data_type_t low = bf16 ? dnnl_bf16 : dnnl_f32;
  dnnl_primitive_desc_t fwd_pd = NULL, bwd_d_pd = NULL, bwd_w_pd = NULL;
  dnnl_convolution_desc_t desc;
  dnnl_format_tag_t act = blocked ? dnnl_format_tag_any : dnnl_nchw;
  dnnl_format_tag_t wt = blocked ? dnnl_format_tag_any : dnnl_oihw;
  const dnnl_memory_desc_t *bias = has_bias ? &b_plain : NULL;

  CHECK(dnnl_memory_desc_init_by_tag(&x_plain, 4, x_dims, dnnl_f32, dnnl_nchw), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&w_plain, 4, w_dims, dnnl_f32, dnnl_oihw), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&b_plain, 1, b_dims, dnnl_f32, dnnl_a), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&y_plain, 4, y_dims, dnnl_f32, dnnl_nchw), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&x_any, 4, x_dims, low, act), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, low, wt), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&y_any, 4, y_dims, low, act), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&x_out, 4, x_dims, dnnl_f32, act), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&w_out, 4, w_dims, dnnl_f32, wt), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&y_out, 4, y_dims, dnnl_f32, act), "memory descriptor");

  // Forward (training: the backward primitives take it as their hint).
  CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct, &x_any,
                                           &w_any, bias, &y_out, strides, padding, padding),
        "convolution forward descriptor");
  CHECK(dnnl_primitive_desc_create(&fwd_pd, &desc, NULL, distill_dnnl_engine(), NULL), "convolution forward");
  CHECK(dnnl_primitive_create(&conv->forward, fwd_pd), "convolution forward primitive");
  CHECK(operand_init(&conv->f_x, &x_plain, md(fwd_pd, dnnl_query_src_md, 0), 1), "reorder");
  CHECK(operand_init(&conv->f_w, &w_plain, md(fwd_pd, dnnl_query_weights_md, 0), 1), "reorder");
  if (has_bias) CHECK(operand_init(&conv->f_b, &b_plain, md(fwd_pd, dnnl_query_weights_md, 1), 1), "reorder");
  CHECK(operand_init(&conv->f_y, &y_plain, md(fwd_pd, dnnl_query_dst_md, 0), 0), "reorder");

  // Backward data.
  CHECK(dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &x_out, &w_any, &y_any,
                                                 strides, padding, padding),
        "convolution backward-data descriptor");
  CHECK(dnnl_primitive_desc_create(&bwd_d_pd, &desc, NULL, distill_dnnl_engine(), fwd_pd), "convolution backward data");
  CHECK(dnnl_primitive_create(&conv->backward_data, bwd_d_pd), "convolution backward-data primitive");
  CHECK(operand_init(&conv->d_w, &w_plain, md(bwd_d_pd, dnnl_query_weights_md, 0), 1), "reorder");
  CHECK(operand_init(&conv->d_dy, &y_plain, md(bwd_d_pd, dnnl_query_diff_dst_md, 0), 1), "reorder");
  CHECK(operand_init(&conv->d_dx, &x_plain, md(bwd_d_pd, dnnl_query_diff_src_md, 0), 0), "reorder");

  // Backward weights (and bias).
  CHECK(dnnl_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &x_any, &w_out, bias,
                                                    &y_any, strides, padding, padding),
        "convolution backward-weights descriptor");
  CHECK(dnnl_primitive_desc_create(&bwd_w_pd, &desc, NULL, distill_dnnl_engine(), fwd_pd), "convolution backward weights");
  CHECK(dnnl_primitive_create(&conv->backward_weights, bwd_w_pd), "convolution backward-weights primitive");
  CHECK(operand_init(&conv->g_x, &x_plain, md(bwd_w_pd, dnnl_query_src_md, 0), 1), "reorder");
  CHECK(operand_init(&conv->g_dy, &y_plain, md(bwd_w_pd, dnnl_query_diff_dst_md, 0), 1), "reorder");
  CHECK(operand_init(&conv->g_dw, &w_plain, md(bwd_w_pd, dnnl_query_diff_weights_md, 0), 0), "reorder");
  if (has_bias) CHECK(operand_init(&conv->g_db, &b_plain, md(bwd_w_pd, dnnl_query_diff_weights_md, 1), 0), "reorder");

failed:
  if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
  if (bwd_d_pd) dnnl_primitive_desc_destroy(bwd_d_pd);
  if (bwd_w_pd) dnnl_primitive_desc_destroy(bwd_w_pd);
  if (result != 0) {
    distill_conv_destroy(conv);
    return NULL;
  }
  return conv;
}

void distill_conv_destroy(distill_conv *conv) {
  if (!conv) return;
  if (conv->forward) dnnl_primitive_destroy(conv->forward);
  if (conv->backward_data) dnnl_primitive_destroy(conv->backward_data);
  if (conv->backward_weights) dnnl_primitive_destroy(conv->backward_weights);
  operand *all[] = {&conv->f_x, &conv->f_w, &conv->f_b, &conv->f_y, &conv->d_w, &conv->d_dy,
                    &conv->d_dx, &conv->g_x, &conv->g_dy, &conv->g_dw, &conv->g_db};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) operand_destroy(all[i]);
  free(conv);
}

int distill_conv_forward(distill_conv *conv, const float *x, const float *w, const float *b, float *y) {
  int result = 0, nargs = 3;
  if (conv->has_bias != (b != NULL)) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "convolution created %s a bias, called %s one",
             conv->has_bias ? "with" : "without", b ? "with" : "without");
    return dnnl_invalid_arguments;
  }
  CHECK(operand_bind(&conv->f_x, x), "binding memory");
  CHECK(operand_bind(&conv->f_w, w), "binding memory");
  CHECK(operand_bind(&conv->f_y, y), "binding memory");
  CHECK(operand_reorder(&conv->f_x, 1), "input reorder");
  CHECK(operand_reorder(&conv->f_w, 1), "weight reorder");
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, operand_memory(&conv->f_x)},
      {DNNL_ARG_WEIGHTS, operand_memory(&conv->f_w)},
      {DNNL_ARG_DST, operand_memory(&conv->f_y)},
  };
  if (b) {
    CHECK(operand_bind(&conv->f_b, b), "binding memory");
    CHECK(operand_reorder(&conv->f_b, 1), "bias reorder");
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, operand_memory(&conv->f_b)};
  }
  CHECK(dnnl_primitive_execute(conv->forward, distill_dnnl_stream(), nargs, args), "convolution forward");
  CHECK(operand_reorder(&conv->f_y, 0), "output reorder");
  CHECK(dnnl_stream_wait(distill_dnnl_stream()), "distill_dnnl_stream() wait");
failed:
  return result;
}

int distill_conv_backward_data(distill_conv *conv, const float *w, const float *dy, float *dx) {
  int result = 0;
  CHECK(operand_bind(&conv->d_w, w), "binding memory");
  CHECK(operand_bind(&conv->d_dy, dy), "binding memory");
  CHECK(operand_bind(&conv->d_dx, dx), "binding memory");
  CHECK(operand_reorder(&conv->d_w, 1), "weight reorder");
  CHECK(operand_reorder(&conv->d_dy, 1), "gradient reorder");
  dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_WEIGHTS, operand_memory(&conv->d_w)},
      {DNNL_ARG_DIFF_DST, operand_memory(&conv->d_dy)},
      {DNNL_ARG_DIFF_SRC, operand_memory(&conv->d_dx)},
  };
  CHECK(dnnl_primitive_execute(conv->backward_data, distill_dnnl_stream(), 3, args), "convolution backward data");
  CHECK(operand_reorder(&conv->d_dx, 0), "gradient reorder");
  CHECK(dnnl_stream_wait(distill_dnnl_stream()), "distill_dnnl_stream() wait");
failed:
  return result;
}

int distill_conv_backward_weights(distill_conv *conv, const float *x, const float *dy, float *dw, float *db) {
  int result = 0, nargs = 3;
  if (conv->has_bias != (db != NULL)) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "convolution created %s a bias, called %s one",
             conv->has_bias ? "with" : "without", db ? "with" : "without");
    return dnnl_invalid_arguments;
  }
  CHECK(operand_bind(&conv->g_x, x), "binding memory");
  CHECK(operand_bind(&conv->g_dy, dy), "binding memory");
  CHECK(operand_bind(&conv->g_dw, dw), "binding memory");
  CHECK(operand_reorder(&conv->g_x, 1), "input reorder");
  CHECK(operand_reorder(&conv->g_dy, 1), "gradient reorder");
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, operand_memory(&conv->g_x)},
      {DNNL_ARG_DIFF_DST, operand_memory(&conv->g_dy)},
      {DNNL_ARG_DIFF_WEIGHTS, operand_memory(&conv->g_dw)},
  };
  if (db) {
    CHECK(operand_bind(&conv->g_db, db), "binding memory");
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, operand_memory(&conv->g_db)};
  }
  CHECK(dnnl_primitive_execute(conv->backward_weights, distill_dnnl_stream(), nargs, args), "convolution backward weights");
  CHECK(operand_reorder(&conv->g_dw, 0), "weight-gradient reorder");
  if (db) CHECK(operand_reorder(&conv->g_db, 0), "bias-gradient reorder");
  CHECK(dnnl_stream_wait(distill_dnnl_stream()), "distill_dnnl_stream() wait");
failed:
  return result;
}

// MARK: convolution (+ batch normalisation) + ReLU (+ max pooling) in oneDNN's layouts

struct distill_block {
  int has_bias, has_pool, norm;
  size_t activation_bytes, workspace_bytes, norm_workspace_bytes;
  dnnl_primitive_t conv_fwd, pool_fwd, pool_bwd, relu_bwd, conv_bwd_data, conv_bwd_weights, y_to_out, grad_to_low;
  dnnl_primitive_t dout_to_grad;  // without a pool: the NCHW output gradient → scratch
  dnnl_primitive_t norm_fwd, norm_bwd;
  // The caller's kept buffers and scratch buffer (handles set per call; the scratch holds the
  // gradient of what the pool read in backward), and (bf16) the convolution output's gradient
  // rounded to bfloat16 for the convolution's backward passes.
  dnnl_memory_t activation, workspace, scratch, grad_low;
  // With batch normalisation: the caller's per-channel vectors and its ReLU mask. Its output
  // (the ReLU fused in) is written to the scratch buffer, and its backward pass runs in place
  // on the gradient there.
  dnnl_memory_t scale, shift, mean, variance, dscale, dshift, norm_workspace;
  operand f_x, f_w, f_b, f_out;  // forward; f_out: pool dst → NCHW (with a pool)
  dnnl_memory_t out_user;        // without a pool: the NCHW output (forward) or output gradient (backward)
  operand b_dout;                // with a pool: the output gradient, NCHW → pool dst layout
  operand d_w, d_dx;             // backward data
  operand g_x, g_dw, g_db;       // backward weights
};

void distill_block_destroy(distill_block *block) {
  if (!block) return;
  dnnl_primitive_t prims[] = {block->conv_fwd,      block->pool_fwd,         block->pool_bwd,
                              block->relu_bwd,      block->conv_bwd_data,    block->conv_bwd_weights,
                              block->y_to_out,      block->grad_to_low,       block->norm_fwd,
                              block->norm_bwd,      block->dout_to_grad};
  for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
    if (prims[i]) dnnl_primitive_destroy(prims[i]);
  dnnl_memory_t mems[] = {block->activation, block->workspace, block->scratch, block->out_user,
                          block->grad_low,   block->scale,      block->shift,         block->mean,
                          block->variance,   block->dscale,     block->dshift,        block->norm_workspace};
  for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
    if (mems[i]) dnnl_memory_destroy(mems[i]);
  operand *all[] = {&block->f_x, &block->f_w, &block->f_b, &block->f_out, &block->b_dout,
                    &block->d_w, &block->d_dx, &block->g_x, &block->g_dw, &block->g_db};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) operand_destroy(all[i]);
  free(block);
}

distill_block *distill_block_create(long n, long c, long h, long w, long o, long kh, long kw,
                                    long stride, long pad, int has_bias, long pool_k, long pool_s,
                                    long pool_p, int bf16, int norm, float epsilon, int in_blocked,
                                    int out_blocked) {
  int result = 0;
  if (distill_dnnl_engine_ready() != 0) return NULL;
  distill_block *block = calloc(1, sizeof *block);
  if (!block) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "out of memory for a oneDNN convolution block");
    return NULL;
  }
  block->has_bias = has_bias;
  block->has_pool = pool_k > 0;
  block->norm = norm;
  long ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
  long po = block->has_pool ? (ho + 2 * pool_p - pool_k) / pool_s + 1 : ho;
  long pw = block->has_pool ? (wo + 2 * pool_p - pool_k) / pool_s + 1 : wo;
  dnnl_dims_t x_dims = {n, c, h, w}, w_dims = {o, c, kh, kw}, b_dims = {o}, y_dims = {n, o, ho, wo},
              out_dims = {n, o, po, pw};
  dnnl_dims_t strides = {stride, stride}, padding = {pad, pad};
  dnnl_dims_t pool_strides = {pool_s, pool_s}, pool_kernel = {pool_k, pool_k}, pool_padding = {pool_p, pool_p};
  // x_any, w_any: what the convolutions read (bfloat16 with `bf16`); x_out, w_out: what the
  // backward passes write (f32). The chain between them (activation, pooling) is f32.
  dnnl_memory_desc_t x_plain, w_plain, b_plain, out_plain, x_any, w_any, y_any, out_any, x_out, w_out, grad_low_md,
      channel_md;
  dnnl_data_type_t low = bf16 ? dnnl_bf16 : dnnl_f32;
  const dnnl_memory_desc_t *bias = has_bias ? &b_plain : NULL;
  dnnl_primitive_desc_t conv_pd = NULL, pool_pd = NULL, pool_bwd_pd = NULL, relu_fwd_pd = NULL,
                        relu_bwd_pd = NULL, data_pd = NULL, weights_pd = NULL, reorder_pd = NULL, low_pd = NULL,
                        norm_pd = NULL, norm_bwd_pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t post_ops = NULL;
  dnnl_convolution_desc_t conv;
  dnnl_pooling_desc_t pool;
  dnnl_eltwise_desc_t relu;
  dnnl_batch_normalization_desc_t bn;
  if (norm < DISTILL_BLOCK_NO_NORM || norm > DISTILL_BLOCK_NORM_INFERENCE) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "convolution block: unknown norm %d", norm);
    free(block);
    return NULL;
  }

  // The caller's input and output: NCHW, or (linked chains) oneDNN's 16-channel blocks.
  dnnl_format_tag_t in_tag = in_blocked ? dnnl_nChw16c : dnnl_nchw, out_tag = out_blocked ? dnnl_nChw16c : dnnl_nchw;
  CHECK(dnnl_memory_desc_init_by_tag(&x_plain, 4, x_dims, dnnl_f32, in_tag), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&w_plain, 4, w_dims, dnnl_f32, dnnl_oihw), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&b_plain, 1, b_dims, dnnl_f32, dnnl_a), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&out_plain, 4, out_dims, dnnl_f32, out_tag), "memory descriptor");
  // A blocked f32 input is read as it is (no reorder); in bfloat16 it is rounded anyway.
  CHECK(dnnl_memory_desc_init_by_tag(&x_any, 4, x_dims, low, in_blocked && !bf16 ? dnnl_nChw16c : dnnl_format_tag_any),
        "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, low, dnnl_format_tag_any), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&x_out, 4, x_dims, dnnl_f32, in_blocked ? dnnl_nChw16c : dnnl_format_tag_any),
        "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&w_out, 4, w_dims, dnnl_f32, dnnl_format_tag_any), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&y_any, 4, y_dims, dnnl_f32, dnnl_format_tag_any), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&out_any, 4, out_dims, dnnl_f32, out_blocked ? dnnl_nChw16c : dnnl_format_tag_any),
        "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&channel_md, 1, b_dims, dnnl_f32, dnnl_a), "memory descriptor");

  // The convolution, with the ReLU as a post-op when no batch normalisation comes between;
  // its output layout Y is the chain's.
  CHECK(dnnl_convolution_forward_desc_init(&conv, dnnl_forward_training, dnnl_convolution_direct, &x_any,
                                           &w_any, bias, &y_any, strides, padding, padding),
        "convolution forward descriptor");
  if (!norm) {
    CHECK(dnnl_primitive_attr_create(&attr), "attribute creation");
    CHECK(dnnl_post_ops_create(&post_ops), "post-op creation");
    CHECK(dnnl_post_ops_append_eltwise(post_ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "ReLU post-op");
    CHECK(dnnl_primitive_attr_set_post_ops(attr, post_ops), "post-op attribute");
  }
  CHECK(dnnl_primitive_desc_create(&conv_pd, &conv, attr, distill_dnnl_engine(), NULL), "convolution forward");
  CHECK(dnnl_primitive_create(&block->conv_fwd, conv_pd), "convolution forward primitive");
  const dnnl_memory_desc_t *y_md = md(conv_pd, dnnl_query_dst_md, 0);
  block->activation_bytes = dnnl_memory_desc_get_size(y_md);
  CHECK(dnnl_memory_create(&block->activation, y_md, distill_dnnl_engine(), DNNL_MEMORY_NONE), "memory creation");
  CHECK(dnnl_memory_create(&block->scratch, y_md, distill_dnnl_engine(), DNNL_MEMORY_NONE), "memory creation");
  CHECK(operand_init(&block->f_x, &x_plain, md(conv_pd, dnnl_query_src_md, 0), 1), "reorder");
  CHECK(operand_init(&block->f_w, &w_plain, md(conv_pd, dnnl_query_weights_md, 0), 1), "reorder");
  if (has_bias) CHECK(operand_init(&block->f_b, &b_plain, md(conv_pd, dnnl_query_weights_md, 1), 1), "reorder");

  if (norm) {
    // Batch normalisation with the ReLU fused in (its mask in a workspace for backward), on Y.
    unsigned flags = dnnl_use_scale | dnnl_use_shift | dnnl_fuse_norm_relu;
    if (norm == DISTILL_BLOCK_NORM_INFERENCE) flags |= dnnl_use_global_stats;
    CHECK(dnnl_batch_normalization_forward_desc_init(
              &bn, norm == DISTILL_BLOCK_NORM_TRAINING ? dnnl_forward_training : dnnl_forward_inference, y_md,
              epsilon, flags),
          "batch-normalisation forward descriptor");
    CHECK(dnnl_primitive_desc_create(&norm_pd, &bn, NULL, distill_dnnl_engine(), NULL), "batch-normalisation forward");
    CHECK(dnnl_primitive_create(&block->norm_fwd, norm_pd), "batch-normalisation forward primitive");
    if (!dnnl_memory_desc_equal(md(norm_pd, dnnl_query_dst_md, 0), y_md)) {
      result = distill_dnnl_fail(dnnl_unimplemented, "batch normalisation in the convolution's layout");
      goto failed;
    }
    dnnl_memory_t *vectors[] = {&block->scale, &block->shift, &block->mean, &block->variance, &block->dscale,
                                &block->dshift};
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
      CHECK(dnnl_memory_create(vectors[i], &channel_md, distill_dnnl_engine(), DNNL_MEMORY_NONE), "memory creation");
    if (norm == DISTILL_BLOCK_NORM_TRAINING) {
      const dnnl_memory_desc_t *ws_md = md(norm_pd, dnnl_query_workspace_md, 0);
      block->norm_workspace_bytes = dnnl_memory_desc_get_size(ws_md);
      CHECK(dnnl_memory_create(&block->norm_workspace, ws_md, distill_dnnl_engine(), DNNL_MEMORY_NONE),
            "memory creation");
      CHECK(dnnl_batch_normalization_backward_desc_init(&bn, dnnl_backward, y_md, y_md, epsilon,
                                                        dnnl_use_scale | dnnl_use_shift | dnnl_fuse_norm_relu),
            "batch-normalisation backward descriptor");
      CHECK(dnnl_primitive_desc_create(&norm_bwd_pd, &bn, NULL, distill_dnnl_engine(), norm_pd),
            "batch-normalisation backward");
      CHECK(dnnl_primitive_create(&block->norm_bwd, norm_bwd_pd), "batch-normalisation backward primitive");
    }
  }

  if (block->has_pool) {
    CHECK(dnnl_pooling_forward_desc_init(&pool, dnnl_forward_training, dnnl_pooling_max, y_md, &out_any,
                                         pool_strides, pool_kernel, pool_padding, pool_padding),
          "pooling forward descriptor");
    CHECK(dnnl_primitive_desc_create(&pool_pd, &pool, NULL, distill_dnnl_engine(), NULL), "pooling forward");
    CHECK(dnnl_primitive_create(&block->pool_fwd, pool_pd), "pooling forward primitive");
    const dnnl_memory_desc_t *ws_md = md(pool_pd, dnnl_query_workspace_md, 0);
    block->workspace_bytes = dnnl_memory_desc_get_size(ws_md);
    CHECK(dnnl_memory_create(&block->workspace, ws_md, distill_dnnl_engine(), DNNL_MEMORY_NONE), "memory creation");
    const dnnl_memory_desc_t *p_md = md(pool_pd, dnnl_query_dst_md, 0);
    CHECK(operand_init(&block->f_out, &out_plain, p_md, 0), "reorder");
    CHECK(operand_init(&block->b_dout, &out_plain, p_md, 1), "reorder");
    CHECK(dnnl_pooling_backward_desc_init(&pool, dnnl_pooling_max, y_md, p_md, pool_strides, pool_kernel,
                                          pool_padding, pool_padding),
          "pooling backward descriptor");
    CHECK(dnnl_primitive_desc_create(&pool_bwd_pd, &pool, NULL, distill_dnnl_engine(), pool_pd), "pooling backward");
    CHECK(dnnl_primitive_create(&block->pool_bwd, pool_bwd_pd), "pooling backward primitive");
  } else {
    CHECK(dnnl_memory_create(&block->out_user, &out_plain, distill_dnnl_engine(), DNNL_MEMORY_NONE), "memory creation");
    CHECK(dnnl_reorder_primitive_desc_create(&reorder_pd, y_md, distill_dnnl_engine(), &out_plain, distill_dnnl_engine(), NULL), "reorder");
    CHECK(dnnl_primitive_create(&block->y_to_out, reorder_pd), "reorder primitive");
    dnnl_primitive_desc_destroy(reorder_pd);
    reorder_pd = NULL;
    // A copy even where the layouts agree: the ReLU's and the normalisation's backward passes
    // run in place, and must not write into the caller's gradient.
    CHECK(dnnl_reorder_primitive_desc_create(&reorder_pd, &out_plain, distill_dnnl_engine(), y_md, distill_dnnl_engine(), NULL), "reorder");
    CHECK(dnnl_primitive_create(&block->dout_to_grad, reorder_pd), "reorder primitive");
  }

  // Without batch normalisation: ReLU backward from its output (the kept activation), in place
  // on the activation gradient.
  if (!norm) {
    CHECK(dnnl_eltwise_forward_desc_init(&relu, dnnl_forward_training, dnnl_eltwise_relu_use_dst_for_bwd, y_md, 0, 0),
          "ReLU forward descriptor");
    CHECK(dnnl_primitive_desc_create(&relu_fwd_pd, &relu, NULL, distill_dnnl_engine(), NULL), "ReLU forward");
    CHECK(dnnl_eltwise_backward_desc_init(&relu, dnnl_eltwise_relu_use_dst_for_bwd, y_md, y_md, 0, 0),
          "ReLU backward descriptor");
    CHECK(dnnl_primitive_desc_create(&relu_bwd_pd, &relu, NULL, distill_dnnl_engine(), relu_fwd_pd), "ReLU backward");
    CHECK(dnnl_primitive_create(&block->relu_bwd, relu_bwd_pd), "ReLU backward primitive");
  }

  // The convolution's backward passes read the activation gradient in layout Y (rounded to
  // bfloat16 first with `bf16`).
  grad_low_md = *y_md;
  grad_low_md.data_type = low;
  if (bf16) {
    CHECK(dnnl_memory_create(&block->grad_low, &grad_low_md, distill_dnnl_engine(), DNNL_MEMORY_ALLOCATE),
          "memory creation");
    CHECK(dnnl_reorder_primitive_desc_create(&low_pd, y_md, distill_dnnl_engine(), &grad_low_md,
                                             distill_dnnl_engine(), NULL),
          "reorder");
    CHECK(dnnl_primitive_create(&block->grad_to_low, low_pd), "reorder primitive");
  }
  CHECK(dnnl_convolution_backward_data_desc_init(&conv, dnnl_convolution_direct, &x_out, &w_any, &grad_low_md,
                                                 strides, padding, padding),
        "convolution backward-data descriptor");
  CHECK(dnnl_primitive_desc_create(&data_pd, &conv, NULL, distill_dnnl_engine(), conv_pd), "convolution backward data");
  CHECK(dnnl_primitive_create(&block->conv_bwd_data, data_pd), "convolution backward-data primitive");
  CHECK(operand_init(&block->d_w, &w_plain, md(data_pd, dnnl_query_weights_md, 0), 1), "reorder");
  CHECK(operand_init(&block->d_dx, &x_plain, md(data_pd, dnnl_query_diff_src_md, 0), 0), "reorder");
  CHECK(dnnl_convolution_backward_weights_desc_init(&conv, dnnl_convolution_direct, &x_any, &w_out, bias,
                                                    &grad_low_md, strides, padding, padding),
        "convolution backward-weights descriptor");
  CHECK(dnnl_primitive_desc_create(&weights_pd, &conv, NULL, distill_dnnl_engine(), conv_pd), "convolution backward weights");
  CHECK(dnnl_primitive_create(&block->conv_bwd_weights, weights_pd), "convolution backward-weights primitive");
  CHECK(operand_init(&block->g_x, &x_plain, md(weights_pd, dnnl_query_src_md, 0), 1), "reorder");
  CHECK(operand_init(&block->g_dw, &w_plain, md(weights_pd, dnnl_query_diff_weights_md, 0), 0), "reorder");
  if (has_bias) CHECK(operand_init(&block->g_db, &b_plain, md(weights_pd, dnnl_query_diff_weights_md, 1), 0), "reorder");

failed:;
  dnnl_primitive_desc_t pds[] = {conv_pd, pool_pd,    pool_bwd_pd, relu_fwd_pd, relu_bwd_pd, data_pd,
                                 weights_pd, reorder_pd, low_pd, norm_pd, norm_bwd_pd};
  for (size_t i = 0; i < sizeof pds / sizeof pds[0]; i++)
    if (pds[i]) dnnl_primitive_desc_destroy(pds[i]);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (post_ops) dnnl_post_ops_destroy(post_ops);
  if (result != 0) {
    distill_block_destroy(block);
    return NULL;
  }
  return block;
}

size_t distill_block_activation_bytes(const distill_block *block) { return block->activation_bytes; }
size_t distill_block_workspace_bytes(const distill_block *block) { return block->workspace_bytes; }
size_t distill_block_norm_workspace_bytes(const distill_block *block) { return block->norm_workspace_bytes; }

// Binds the per-channel vectors of a chain's batch normalisation (`norm` may hold NULLs for
// what the call does not use).
static int bind_norm(distill_block *block, const distill_block_norm *norm) {
  int result = 0;
  CHECK(dnnl_memory_set_data_handle(block->scale, (void *)norm->scale), "binding memory");
  CHECK(dnnl_memory_set_data_handle(block->shift, (void *)norm->shift), "binding memory");
  CHECK(dnnl_memory_set_data_handle(block->mean, norm->mean), "binding memory");
  CHECK(dnnl_memory_set_data_handle(block->variance, norm->variance), "binding memory");
  if (block->norm_workspace) CHECK(dnnl_memory_set_data_handle(block->norm_workspace, norm->workspace), "binding memory");
failed:
  return result;
}

static int check_norm(const distill_block *block, const void *norm) {
  if ((block->norm != DISTILL_BLOCK_NO_NORM) == (norm != NULL)) return 0;
  snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE,
           "convolution block created %s a batch normalisation, called %s one", block->norm ? "with" : "without",
           norm ? "with" : "without");
  return dnnl_invalid_arguments;
}

int distill_block_forward(distill_block *block, const float *x, const float *w, const float *b,
                          const distill_block_norm *norm, void *activation, void *workspace, void *scratch,
                          float *out) {
  int result = 0, nargs = 3;
  if ((result = check_norm(block, norm)) != 0) return result;
  if (block->has_bias != (b != NULL)) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "convolution block created %s a bias, called %s one",
             block->has_bias ? "with" : "without", b ? "with" : "without");
    return dnnl_invalid_arguments;
  }
  CHECK(dnnl_memory_set_data_handle(block->activation, activation), "binding memory");
  CHECK(dnnl_memory_set_data_handle(block->scratch, scratch), "binding memory");
  CHECK(operand_bind(&block->f_x, x), "binding memory");
  CHECK(operand_bind(&block->f_w, w), "binding memory");
  CHECK(operand_reorder(&block->f_x, 1), "input reorder");
  CHECK(operand_reorder(&block->f_w, 1), "weight reorder");
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, operand_memory(&block->f_x)},
      {DNNL_ARG_WEIGHTS, operand_memory(&block->f_w)},
      {DNNL_ARG_DST, block->activation},
  };
  if (b) {
    CHECK(operand_bind(&block->f_b, b), "binding memory");
    CHECK(operand_reorder(&block->f_b, 1), "bias reorder");
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, operand_memory(&block->f_b)};
  }
  CHECK(dnnl_primitive_execute(block->conv_fwd, distill_dnnl_stream(), nargs, args), "convolution forward");
  dnnl_memory_t chain = block->activation;  // what the pool (or the output reorder) reads
  if (norm) {
    if ((result = bind_norm(block, norm)) != 0) goto failed;
    int training = block->norm == DISTILL_BLOCK_NORM_TRAINING;
    dnnl_exec_arg_t norm_args[7] = {
        {DNNL_ARG_SRC, block->activation}, {DNNL_ARG_DST, block->scratch}, {DNNL_ARG_SCALE, block->scale},
        {DNNL_ARG_SHIFT, block->shift},    {DNNL_ARG_MEAN, block->mean},      {DNNL_ARG_VARIANCE, block->variance},
        {DNNL_ARG_WORKSPACE, block->norm_workspace},
    };
    CHECK(dnnl_primitive_execute(block->norm_fwd, distill_dnnl_stream(), training ? 7 : 6, norm_args),
          "batch-normalisation forward");
    chain = block->scratch;
  }
  if (block->has_pool) {
    CHECK(dnnl_memory_set_data_handle(block->workspace, workspace), "binding memory");
    CHECK(operand_bind(&block->f_out, out), "binding memory");
    dnnl_exec_arg_t pool_args[3] = {
        {DNNL_ARG_SRC, chain},
        {DNNL_ARG_DST, operand_memory(&block->f_out)},
        {DNNL_ARG_WORKSPACE, block->workspace},
    };
    CHECK(dnnl_primitive_execute(block->pool_fwd, distill_dnnl_stream(), 3, pool_args), "pooling forward");
    CHECK(operand_reorder(&block->f_out, 0), "output reorder");
  } else {
    CHECK(dnnl_memory_set_data_handle(block->out_user, out), "binding memory");
    dnnl_exec_arg_t reorder_args[2] = {{DNNL_ARG_FROM, chain}, {DNNL_ARG_TO, block->out_user}};
    CHECK(dnnl_primitive_execute(block->y_to_out, distill_dnnl_stream(), 2, reorder_args), "output reorder");
  }
  CHECK(dnnl_stream_wait(distill_dnnl_stream()), "distill_dnnl_stream() wait");
failed:
  return result;
}

int distill_block_backward(distill_block *block, const float *x, const float *w, const distill_block_norm *norm,
                           const void *activation, const void *workspace, void *scratch, const float *dout,
                           float *dx, float *dw, float *db, float *dscale, float *dshift) {
  int result = 0;
  if ((result = check_norm(block, norm)) != 0) return result;
  if (norm && (block->norm != DISTILL_BLOCK_NORM_TRAINING || !dscale || !dshift)) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "%s",
             block->norm != DISTILL_BLOCK_NORM_TRAINING
                 ? "convolution block: no backward pass through batch normalisation with given statistics"
                 : "convolution block: batch normalisation's backward pass needs dscale and dshift");
    return dnnl_invalid_arguments;
  }
  if (dw && block->has_bias != (db != NULL)) {
    snprintf(distill_dnnl_error_buffer(), DISTILL_DNNL_ERROR_SIZE, "convolution block created %s a bias, called %s its gradient",
             block->has_bias ? "with" : "without", db ? "with" : "without");
    return dnnl_invalid_arguments;
  }
  CHECK(dnnl_memory_set_data_handle(block->activation, (void *)activation), "binding memory");
  CHECK(dnnl_memory_set_data_handle(block->scratch, scratch), "binding memory");
  dnnl_memory_t grad = block->scratch;
  if (block->has_pool) {
    CHECK(operand_bind(&block->b_dout, dout), "binding memory");
    CHECK(operand_reorder(&block->b_dout, 1), "gradient reorder");
    CHECK(dnnl_memory_set_data_handle(block->workspace, (void *)workspace), "binding memory");
    dnnl_exec_arg_t pool_args[3] = {
        {DNNL_ARG_DIFF_DST, operand_memory(&block->b_dout)},
        {DNNL_ARG_WORKSPACE, block->workspace},
        {DNNL_ARG_DIFF_SRC, grad},
    };
    CHECK(dnnl_primitive_execute(block->pool_bwd, distill_dnnl_stream(), 3, pool_args), "pooling backward");
  } else {
    CHECK(dnnl_memory_set_data_handle(block->out_user, (void *)dout), "binding memory");
    dnnl_exec_arg_t copy_args[2] = {{DNNL_ARG_FROM, block->out_user}, {DNNL_ARG_TO, grad}};
    CHECK(dnnl_primitive_execute(block->dout_to_grad, distill_dnnl_stream(), 2, copy_args), "gradient reorder");
  }
  if (norm) {
    // Through the ReLU (its mask) and the normalisation, from the kept convolution output, in
    // place on the gradient.
    if ((result = bind_norm(block, norm)) != 0) goto failed;
    CHECK(dnnl_memory_set_data_handle(block->dscale, dscale), "binding memory");
    CHECK(dnnl_memory_set_data_handle(block->dshift, dshift), "binding memory");
    dnnl_exec_arg_t norm_args[10] = {
        {DNNL_ARG_SRC, block->activation},       {DNNL_ARG_MEAN, block->mean},
        {DNNL_ARG_VARIANCE, block->variance},    {DNNL_ARG_DIFF_DST, grad},
        {DNNL_ARG_SCALE, block->scale},          {DNNL_ARG_SHIFT, block->shift},
        {DNNL_ARG_WORKSPACE, block->norm_workspace},
        {DNNL_ARG_DIFF_SRC, grad},               {DNNL_ARG_DIFF_SCALE, block->dscale},
        {DNNL_ARG_DIFF_SHIFT, block->dshift},
    };
    CHECK(dnnl_primitive_execute(block->norm_bwd, distill_dnnl_stream(), 10, norm_args),
          "batch-normalisation backward");
  } else {
    dnnl_exec_arg_t relu_args[3] = {
        {DNNL_ARG_DST, block->activation},
        {DNNL_ARG_DIFF_DST, grad},
        {DNNL_ARG_DIFF_SRC, grad},
    };
    CHECK(dnnl_primitive_execute(block->relu_bwd, distill_dnnl_stream(), 3, relu_args), "ReLU backward");
  }
  if (block->grad_to_low) {
    dnnl_exec_arg_t low_args[2] = {{DNNL_ARG_FROM, grad}, {DNNL_ARG_TO, block->grad_low}};
    CHECK(dnnl_primitive_execute(block->grad_to_low, distill_dnnl_stream(), 2, low_args), "gradient rounding");
    grad = block->grad_low;
  }
  if (dx) {
    CHECK(operand_bind(&block->d_w, w), "binding memory");
    CHECK(operand_bind(&block->d_dx, dx), "binding memory");
    CHECK(operand_reorder(&block->d_w, 1), "weight reorder");
    dnnl_exec_arg_t data_args[3] = {
        {DNNL_ARG_WEIGHTS, operand_memory(&block->d_w)},
        {DNNL_ARG_DIFF_DST, grad},
        {DNNL_ARG_DIFF_SRC, operand_memory(&block->d_dx)},
    };
    CHECK(dnnl_primitive_execute(block->conv_bwd_data, distill_dnnl_stream(), 3, data_args), "convolution backward data");
    CHECK(operand_reorder(&block->d_dx, 0), "gradient reorder");
  }
  if (dw) {
    CHECK(operand_bind(&block->g_x, x), "binding memory");
    CHECK(operand_bind(&block->g_dw, dw), "binding memory");
    CHECK(operand_reorder(&block->g_x, 1), "input reorder");
    int nargs = 3;
    dnnl_exec_arg_t weight_args[4] = {
        {DNNL_ARG_SRC, operand_memory(&block->g_x)},
        {DNNL_ARG_DIFF_DST, grad},
        {DNNL_ARG_DIFF_WEIGHTS, operand_memory(&block->g_dw)},
    };
    if (db) {
      CHECK(operand_bind(&block->g_db, db), "binding memory");
      weight_args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, operand_memory(&block->g_db)};
    }
    CHECK(dnnl_primitive_execute(block->conv_bwd_weights, distill_dnnl_stream(), nargs, weight_args), "convolution backward weights");
    CHECK(operand_reorder(&block->g_dw, 0), "weight-gradient reorder");
    if (db) CHECK(operand_reorder(&block->g_db, 0), "bias-gradient reorder");
  }
  CHECK(dnnl_stream_wait(distill_dnnl_stream()), "distill_dnnl_stream() wait");
failed:
  return result;
}
