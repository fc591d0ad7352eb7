// The process's oneDNN engine and stream, errors and operands: see engine.h.
#define _GNU_SOURCE
#include "engine.h"
#include "CDNNL.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[DISTILL_DNNL_ERROR_SIZE];

char *distill_dnnl_error_buffer(void) { return last_error; }
const char *distill_dnnl_last_error(void) { return last_error; }

int distill_dnnl_fail(dnnl_status_t status, const char *what) {
  snprintf(last_error, sizeof last_error, "oneDNN %s failed with status %d", what, (int)status);
  return status == dnnl_success ? dnnl_runtime_error : (int)status;
}

// One CPU engine and one in-order stream for the process. Executions block until done
// (dnnl_stream_wait), so callers on different threads only share these two handles; each
// primitive set must be used by one thread at a time (the Swift side lends them out).
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static dnnl_status_t engine_status = dnnl_success;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void create_engine(void) {
  engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0);
  if (engine_status == dnnl_success) engine_status = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
}

int distill_dnnl_engine_ready(void) {
  pthread_once(&engine_once, create_engine);
  return engine_status == dnnl_success ? 0 : distill_dnnl_fail(engine_status, "engine creation");
}

dnnl_engine_t distill_dnnl_engine(void) { return engine; }
dnnl_stream_t distill_dnnl_stream(void) { return stream; }

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

dnnl_status_t operand_init(operand *op, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *inner_md,
                           int input) {
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

void operand_destroy(operand *op) {
  if (op->reorder) dnnl_primitive_destroy(op->reorder);
  if (op->inner) dnnl_memory_destroy(op->inner);
  if (op->user) dnnl_memory_destroy(op->user);
}

dnnl_memory_t operand_memory(const operand *op) { return op->inner ? op->inner : op->user; }

dnnl_status_t operand_bind(operand *op, const void *data) { return dnnl_memory_set_data_handle(op->user, (void *)data); }

dnnl_status_t operand_reorder(const operand *op, int input) {
  if (!op->reorder) return dnnl_success;
  dnnl_exec_arg_t args[2] = {
      {DNNL_ARG_FROM, input ? op->user : op->inner},
      {DNNL_ARG_TO, input ? op->inner : op->user},
  };
  return dnnl_primitive_execute(op->reorder, stream, 2, args);
}
