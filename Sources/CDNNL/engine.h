// Shared by the files of CDNNL (not part of its public header): the process's oneDNN engine and
// stream, error messages, and the operand helper that pairs a caller's buffer with the layout a
// primitive wants.
#ifndef DISTILL_CDNNL_ENGINE_H
#define DISTILL_CDNNL_ENGINE_H

#include <oneapi/dnnl/dnnl.h>

#define DISTILL_DNNL_ERROR_SIZE 256

/// This thread's message buffer (what distill_dnnl_last_error returns).
char *distill_dnnl_error_buffer(void);
/// Records "oneDNN <what> failed with status <status>" and returns the status as an int (> 0).
int distill_dnnl_fail(dnnl_status_t status, const char *what);

/// Runs a oneDNN call; on failure records the message and status and jumps to `failed` (each
/// function using it declares `int result = 0` and returns it there).
#define CHECK(call, what)                          \
  do {                                             \
    dnnl_status_t status_ = (call);                \
    if (status_ != dnnl_success) {                 \
      result = distill_dnnl_fail(status_, what);   \
      goto failed;                                 \
    }                                              \
  } while (0)

/// Creates the CPU engine and its stream once; 0 when ready, else a status (message recorded).
int distill_dnnl_engine_ready(void);
dnnl_engine_t distill_dnnl_engine(void);
dnnl_stream_t distill_dnnl_stream(void);

/// One argument of a primitive: the caller's buffer (`user`, its handle set per call), and when
/// the primitive wants another layout or type, a buffer of that layout owned here and the
/// reorder between the two (user → primitive for inputs, primitive → user for outputs).
typedef struct {
  dnnl_memory_t user, inner;
  dnnl_primitive_t reorder;
} operand;

dnnl_status_t operand_init(operand *op, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *inner_md,
                           int input);
void operand_destroy(operand *op);
/// The memory the primitive reads or writes for this operand.
dnnl_memory_t operand_memory(const operand *op);
dnnl_status_t operand_bind(operand *op, const void *data);
/// Runs the operand's reorder, if it has one (user → inner for inputs, inner → user for outputs).
dnnl_status_t operand_reorder(const operand *op, int input);

#endif
