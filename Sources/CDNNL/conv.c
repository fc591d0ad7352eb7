// oneDNN 2.x convolutions for the engine: see include/CDNNL.h.
#define _GNU_SOURCE
#include "CDNNL.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

static _Thread_local char last_error[256];

const char *distill_dnnl_last_error(void) { return last_error; }

static int fail(dnnl_status_t status, const char *what) {
  snprintf(last_error, sizeof last_error, "oneDNN %s failed with status %d", what, (int)status);
  return status == dnnl_success ? dnnl_runtime_error : (int)status;
}

// Runs a oneDNN call; on failure records the message and status and jumps to `failed`
// (each function using it declares `int result = 0` and returns it there).
#define CHECK(call, what)                    \
  do {                                       \
    dnnl_status_t status_ = (call);          \
    if (status_ != dnnl_success) {           \
      result = fail(status_, what);          \
      goto failed;                           \
    }                                        \
  } while (0)

// One CPU engine and one in-order stream for the process. Executions block until done
// (dnnl_stream_wait), so callers on different threads only share these two read-only handles;
// each distill_conv must be used by one thread at a time (the Swift side checks them out).
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static dnnl_status_t engine_status = dnnl_success;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void create_engine(void) {
  engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0);
  if (engine_status == dnnl_success) engine_status = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
}

int distill_dnnl_set_threads(int threads) {
  void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
  if (!set) return 0;
  set(threads < 1 ? 1 : threads);
  return 1;
}

const char *distill_dnnl_version(void) {
  static char text[32];
  const dnnl_version_t *v = dnnl_version();
  snprintf(text, sizeof text, "%d.%d.%d", v->major, v->minor, v->patch);
  return text;
}

// One argument of a primitive: the caller's plain buffer (`user`, its handle set per call),
// and when the primitive wants another layout, a buffer of that layout owned here and the
// reorder between the two (user → primitive for inputs, primitive → user for outputs).
typedef struct {
  dnnl_memory_t user, inner;
  dnnl_primitive_t reorder;
} operand;

static dnnl_status_t operand_init(operand *op, const dnnl_memory_desc_t *user_md,
                                  const dnnl_memory_desc_t *inner_md, int input) {
  memset(op, 0, sizeof *op);
  dnnl_status_t s = dnnl_memory_create(&op->user, user_md, engine, DNNL_MEMORY_NONE);
  if (s != dnnl_success || dnnl_memory_desc_equal(user_md, inner_md)) return s;
  s = dnnl_memory_create(&op->inner, inner_md, engine, DNNL_MEMORY_ALLOCATE);
  if (s != dnnl_success) return s;
  dnnl_primitive_desc_t pd;
  s = input ? dnnl_reorder_primitive_desc_create(&pd, user_md, engine, inner_md, engine, NULL)
            : dnnl_reorder_primitive_desc_create(&pd, inner_md, engine, user_md, engine, NULL);
  if (s != dnnl_success) return s;
  s = dnnl_primitive_create(&op->reorder, pd);
  dnnl_primitive_desc_destroy(pd);
  return s;
}

static void operand_destroy(operand *op) {
  if (op->reorder) dnnl_primitive_destroy(op->reorder);
  if (op->inner) dnnl_memory_destroy(op->inner);
  if (op->user) dnnl_memory_destroy(op->user);
}

// The memory the primitive reads or writes for this operand.
static dnnl_memory_t operand_memory(const operand *op) { return op->inner ? op->inner : op->user; }

static dnnl_status_t run_reorder(const operand *op, int input) {
  if (!op->reorder) return dnnl_success;
  dnnl_exec_arg_t args[2] = {
      {DNNL_ARG_FROM, input ? op->user : op->inner},
      {DNNL_ARG_TO, input ? op->inner : op->user},
  };
  return dnnl_primitive_execute(op->reorder, stream, 2, args);
}

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
                                  long stride, long pad, int has_bias, int blocked) {
  int result = 0;
  pthread_once(&engine_once, create_engine);
  if (engine_status != dnnl_success) {
    fail(engine_status, "engine creation");
    return NULL;
  }
  distill_conv *conv = calloc(1, sizeof *conv);
  if (!conv) {
    snprintf(last_error, sizeof last_error, "out of memory for a oneDNN convolution");
    return NULL;
  }
  conv->has_bias = has_bias;
  long ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
  dnnl_dims_t x_dims = {n, c, h, w}, w_dims = {o, c, kh, kw}, b_dims = {o}, y_dims = {n, o, ho, wo};
  dnnl_dims_t strides = {stride, stride}, padding = {pad, pad};
  dnnl_memory_desc_t x_plain, w_plain, b_plain, y_plain, x_any, w_any, y_any;
  dnnl_primitive_desc_t fwd_pd = NULL, bwd_d_pd = NULL, bwd_w_pd = NULL;
  dnnl_convolution_desc_t desc;
  dnnl_format_tag_t act = blocked ? dnnl_format_tag_any : dnnl_nchw;
  dnnl_format_tag_t wt = blocked ? dnnl_format_tag_any : dnnl_oihw;
  const dnnl_memory_desc_t *bias = has_bias ? &b_plain : NULL;

  CHECK(dnnl_memory_desc_init_by_tag(&x_plain, 4, x_dims, dnnl_f32, dnnl_nchw), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&w_plain, 4, w_dims, dnnl_f32, dnnl_oihw), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&b_plain, 1, b_dims, dnnl_f32, dnnl_a), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&y_plain, 4, y_dims, dnnl_f32, dnnl_nchw), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&x_any, 4, x_dims, dnnl_f32, act), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, dnnl_f32, wt), "memory descriptor");
  CHECK(dnnl_memory_desc_init_by_tag(&y_any, 4, y_dims, dnnl_f32, act), "memory descriptor");

  // Forward (training: the backward primitives take it as their hint).
  CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct, &x_any,
                                           &w_any, bias, &y_any, strides, padding, padding),
        "convolution forward descriptor");
  CHECK(dnnl_primitive_desc_create(&fwd_pd, &desc, NULL, engine, NULL), "convolution forward");
  CHECK(dnnl_primitive_create(&conv->forward, fwd_pd), "convolution forward primitive");
  CHECK(operand_init(&conv->f_x, &x_plain, md(fwd_pd, dnnl_query_src_md, 0), 1), "reorder");
  CHECK(operand_init(&conv->f_w, &w_plain, md(fwd_pd, dnnl_query_weights_md, 0), 1), "reorder");
  if (has_bias) CHECK(operand_init(&conv->f_b, &b_plain, md(fwd_pd, dnnl_query_weights_md, 1), 1), "reorder");
  CHECK(operand_init(&conv->f_y, &y_plain, md(fwd_pd, dnnl_query_dst_md, 0), 0), "reorder");

  // Backward data.
  CHECK(dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &x_any, &w_any, &y_any,
                                                 strides, padding, padding),
        "convolution backward-data descriptor");
  CHECK(dnnl_primitive_desc_create(&bwd_d_pd, &desc, NULL, engine, fwd_pd), "convolution backward data");
  CHECK(dnnl_primitive_create(&conv->backward_data, bwd_d_pd), "convolution backward-data primitive");
  CHECK(operand_init(&conv->d_w, &w_plain, md(bwd_d_pd, dnnl_query_weights_md, 0), 1), "reorder");
  CHECK(operand_init(&conv->d_dy, &y_plain, md(bwd_d_pd, dnnl_query_diff_dst_md, 0), 1), "reorder");
  CHECK(operand_init(&conv->d_dx, &x_plain, md(bwd_d_pd, dnnl_query_diff_src_md, 0), 0), "reorder");

  // Backward weights (and bias).
  CHECK(dnnl_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &x_any, &w_any, bias,
                                                    &y_any, strides, padding, padding),
        "convolution backward-weights descriptor");
  CHECK(dnnl_primitive_desc_create(&bwd_w_pd, &desc, NULL, engine, fwd_pd), "convolution backward weights");
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

static dnnl_status_t bind(operand *op, const void *data) {
  return dnnl_memory_set_data_handle(op->user, (void *)data);
}

int distill_conv_forward(distill_conv *conv, const float *x, const float *w, const float *b, float *y) {
  int result = 0, nargs = 3;
  if (conv->has_bias != (b != NULL)) {
    snprintf(last_error, sizeof last_error, "convolution created %s a bias, called %s one",
             conv->has_bias ? "with" : "without", b ? "with" : "without");
    return dnnl_invalid_arguments;
  }
  CHECK(bind(&conv->f_x, x), "binding memory");
  CHECK(bind(&conv->f_w, w), "binding memory");
  CHECK(bind(&conv->f_y, y), "binding memory");
  CHECK(run_reorder(&conv->f_x, 1), "input reorder");
  CHECK(run_reorder(&conv->f_w, 1), "weight reorder");
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, operand_memory(&conv->f_x)},
      {DNNL_ARG_WEIGHTS, operand_memory(&conv->f_w)},
      {DNNL_ARG_DST, operand_memory(&conv->f_y)},
  };
  if (b) {
    CHECK(bind(&conv->f_b, b), "binding memory");
    CHECK(run_reorder(&conv->f_b, 1), "bias reorder");
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, operand_memory(&conv->f_b)};
  }
  CHECK(dnnl_primitive_execute(conv->forward, stream, nargs, args), "convolution forward");
  CHECK(run_reorder(&conv->f_y, 0), "output reorder");
  CHECK(dnnl_stream_wait(stream), "stream wait");
failed:
  return result;
}

int distill_conv_backward_data(distill_conv *conv, const float *w, const float *dy, float *dx) {
  int result = 0;
  CHECK(bind(&conv->d_w, w), "binding memory");
  CHECK(bind(&conv->d_dy, dy), "binding memory");
  CHECK(bind(&conv->d_dx, dx), "binding memory");
  CHECK(run_reorder(&conv->d_w, 1), "weight reorder");
  CHECK(run_reorder(&conv->d_dy, 1), "gradient reorder");
  dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_WEIGHTS, operand_memory(&conv->d_w)},
      {DNNL_ARG_DIFF_DST, operand_memory(&conv->d_dy)},
      {DNNL_ARG_DIFF_SRC, operand_memory(&conv->d_dx)},
  };
  CHECK(dnnl_primitive_execute(conv->backward_data, stream, 3, args), "convolution backward data");
  CHECK(run_reorder(&conv->d_dx, 0), "gradient reorder");
  CHECK(dnnl_stream_wait(stream), "stream wait");
failed:
  return result;
}

int distill_conv_backward_weights(distill_conv *conv, const float *x, const float *dy, float *dw, float *db) {
  int result = 0, nargs = 3;
  if (conv->has_bias != (db != NULL)) {
    snprintf(last_error, sizeof last_error, "convolution created %s a bias, called %s one",
             conv->has_bias ? "with" : "without", db ? "with" : "without");
    return dnnl_invalid_arguments;
  }
  CHECK(bind(&conv->g_x, x), "binding memory");
  CHECK(bind(&conv->g_dy, dy), "binding memory");
  CHECK(bind(&conv->g_dw, dw), "binding memory");
  CHECK(run_reorder(&conv->g_x, 1), "input reorder");
  CHECK(run_reorder(&conv->g_dy, 1), "gradient reorder");
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, operand_memory(&conv->g_x)},
      {DNNL_ARG_DIFF_DST, operand_memory(&conv->g_dy)},
      {DNNL_ARG_DIFF_WEIGHTS, operand_memory(&conv->g_dw)},
  };
  if (db) {
    CHECK(bind(&conv->g_db, db), "binding memory");
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, operand_memory(&conv->g_db)};
  }
  CHECK(dnnl_primitive_execute(conv->backward_weights, stream, nargs, args), "convolution backward weights");
  CHECK(run_reorder(&conv->g_dw, 0), "weight-gradient reorder");
  if (db) CHECK(run_reorder(&conv->g_db, 0), "bias-gradient reorder");
  CHECK(dnnl_stream_wait(stream), "stream wait");
failed:
  return result;
}
