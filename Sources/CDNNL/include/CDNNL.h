// The engine's face on oneDNN (Debian's libdnnl-dev, 2.x C API): 2-D convolutions in f32 on
// plain NCHW buffers, convolution (+ batch normalisation) + ReLU (+ max-pooling) chains, and matrix products (f32, or
// bfloat16 operands with f32 accumulation). Each shape gets one object
// (`distill_conv`, `distill_block`) holding its forward and backward primitives, the layouts
// oneDNN chose for them, and the reorders between those layouts and NCHW. Every function returns 0 on success and otherwise a oneDNN status
// (dnnl_status_t, > 0), with a message in `distill_dnnl_last_error()` of the calling thread.
#ifndef DISTILL_CDNNL_H
#define DISTILL_CDNNL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct distill_conv distill_conv;

/// Creates the primitives for y = conv(x, w) + b with x [n, c, h, w], w [o, c, kh, kw], b [o]
/// (none when `has_bias` is 0), y [n, o, ho, wo], symmetric zero padding `pad`, stride `stride`.
/// `blocked` = 1 lets oneDNN pick its own (blocked) layouts, with reorders from and to the
/// caller's NCHW buffers inside each call; 0 runs the primitives on NCHW directly.
/// `bf16` = 1 rounds what the convolutions read (x, w, and dy in backward) to bfloat16 on the
/// way in; they accumulate in f32 and every buffer the caller sees stays f32.
/// Returns NULL on failure.
distill_conv *distill_conv_create(long n, long c, long h, long w, long o, long kh, long kw,
                                  long stride, long pad, int has_bias, int blocked, int bf16);
void distill_conv_destroy(distill_conv *conv);

/// y = conv(x, w) + b; b must be NULL exactly when the convolution has no bias.
int distill_conv_forward(distill_conv *conv, const float *x, const float *w, const float *b, float *y);
/// dx = conv's adjoint of dy with respect to x (overwrites dx).
int distill_conv_backward_data(distill_conv *conv, const float *w, const float *dy, float *dx);
/// dw = ∂/∂w, db = Σ dy per output channel (overwrites both; db NULL exactly without a bias).
int distill_conv_backward_weights(distill_conv *conv, const float *x, const float *dy, float *dw, float *db);

typedef struct distill_block distill_block;

/// Whether a chain has a batch normalisation between its convolution and its ReLU, and which
/// statistics it normalises with (`norm` of `distill_block_create`).
enum {
  DISTILL_BLOCK_NO_NORM = 0,
  /// The batch's own mean and biased variance per channel; forward and backward passes.
  DISTILL_BLOCK_NORM_TRAINING = 1,
  /// Given statistics (the running ones); forward passes only.
  DISTILL_BLOCK_NORM_INFERENCE = 2,
};

/// The batch normalisation's per-channel vectors (each [o] f32, NCHW order irrelevant):
/// γ (`scale`) and β (`shift`), read; `mean` and `variance` (biased), written by a training
/// forward pass and read by its backward pass, or read by an inference forward pass;
/// `workspace` (`distill_block_norm_workspace_bytes`), the ReLU's mask, written by a training
/// forward pass for its backward pass (unused in inference).
typedef struct {
  const float *scale, *shift;
  float *mean, *variance;
  void *workspace;
} distill_block_norm;

/// A convolution, optionally a batch normalisation, a ReLU and optionally a max pooling, run
/// as one oneDNN chain whose large intermediates stay in oneDNN's blocked layout: the caller's
/// buffers are NCHW input x, OIHW weights, NCHW output (pooled, or the ReLU's output without a
/// pool). Shapes as `distill_conv_create`; the pool has kernel `pool_k`, stride `pool_s`,
/// padding `pool_p` (`pool_k` = 0: no pool); `bf16` as for `distill_conv_create` (the chain
/// after the convolution stays f32); `norm` one of DISTILL_BLOCK_*, with ε `epsilon` (the ReLU
/// is then fused into the normalisation instead of the convolution). `in_blocked` /
/// `out_blocked`: the caller's input x (and dx) / output (and its gradient) are in oneDNN's
/// 16-channel blocks (nChw16c, C a multiple of 16 for the same element count) instead of NCHW,
/// so that two chains in a row pass their intermediate without leaving oneDNN's layout.
/// Returns NULL when oneDNN cannot run it.
distill_block *distill_block_create(long n, long c, long h, long w, long o, long kh, long kw,
                                    long stride, long pad, int has_bias, long pool_k, long pool_s,
                                    long pool_p, int bf16, int norm, float epsilon, int in_blocked,
                                    int out_blocked);
void distill_block_destroy(distill_block *block);

/// Bytes of the buffers the caller keeps from a forward pass for its backward pass: the
/// activation in oneDNN's layout (the ReLU's output; with a batch normalisation the
/// convolution's output), the pool's workspace (0 without a pool), the normalisation's ReLU mask
/// (0 without a training normalisation).
size_t distill_block_activation_bytes(const distill_block *block);
size_t distill_block_workspace_bytes(const distill_block *block);
size_t distill_block_norm_workspace_bytes(const distill_block *block);

/// out = pool(relu(norm(conv(x, w) + b))); writes the kept buffers `activation`, `workspace`
/// and (training normalisation) `norm->workspace`, `norm->mean`, `norm->variance`. `norm` is
/// NULL exactly without a normalisation. `scratch` (`distill_block_activation_bytes` bytes,
/// overwritten; used with a normalisation) is the caller's, so an idle chain holds no large
/// buffer.
int distill_block_forward(distill_block *block, const float *x, const float *w, const float *b,
                          const distill_block_norm *norm, void *activation, void *workspace, void *scratch,
                          float *out);
/// From the output gradient `dout` and the kept buffers: dx (NULL: not wanted), and dw with db
/// (dw NULL: neither wanted; otherwise db NULL exactly without a bias); with a (training)
/// normalisation also its dscale (∂γ) and dshift (∂β), both required. Overwrites what it
/// writes; `scratch` as for the forward pass (always used).
int distill_block_backward(distill_block *block, const float *x, const float *w, const distill_block_norm *norm,
                           const void *activation, const void *workspace, void *scratch, const float *dout,
                           float *dx, float *dw, float *db, float *dscale, float *dshift);

typedef struct distill_matmul distill_matmul;

/// C = op(A)·op(B) (or C += op(A)·op(B) when `accumulate`), row-major buffers as cblas_sgemm
/// takes them: op(A) [m, k] from A with leading dimension lda (transposed when `trans_a`),
/// op(B) [k, n] likewise, C [m, n] f32 with leading dimension ldc. A and B are f32, or with
/// `bf16` bfloat16 bit patterns (uint16); products accumulate in f32 either way.
/// Returns NULL when oneDNN cannot run the product.
distill_matmul *distill_matmul_create(long m, long n, long k, int trans_a, int trans_b, long lda, long ldb,
                                      long ldc, int bf16, int accumulate);
void distill_matmul_destroy(distill_matmul *mm);
int distill_matmul_run(distill_matmul *mm, const void *a, const void *b, float *c);

typedef struct distill_int8_matmul distill_int8_matmul;

/// Quantized inference: C[m, n] = scales[j] · Σ_k (A[i, k] − zero_point) · W[j, k] for
/// C[i, j], f32, exact in its int32 sums. A is uint8 [m, k] row-major (per-tensor asymmetric
/// activations), W int8 [n, k] row-major (a Linear's [out, in] weights, per-channel symmetric),
/// `scales` [n] (activation scale × each row's weight scale). The weights are copied and put
/// into oneDNN's layout once. Returns NULL when oneDNN cannot run the product.
distill_int8_matmul *distill_int8_matmul_create(long m, long n, long k, const int8_t *weights, const float *scales,
                                                int zero_point);
void distill_int8_matmul_destroy(distill_int8_matmul *mm);
int distill_int8_matmul_run(distill_int8_matmul *mm, const uint8_t *a, float *c);

typedef struct distill_int8_conv distill_int8_conv;

/// Quantized inference of a convolution (square kernel k, the same stride and padding on both
/// axes): Y[b, o, i, j] = scales[o] · Σ_{c, u, v} (X[b, c, i·s + u − p, j·s + v − p] − zero_point) ·
/// W[o, c, u, v], f32, exact in its int32 sums, the padding being the real 0 (X = zero_point
/// there). X uint8 [n, c, h, w] (NCHW), W int8 [oc, c, k, k] (OIHW), Y f32 [n, oc, oh, ow].
/// The weights are copied and put into oneDNN's layout once. NULL when oneDNN cannot run it.
distill_int8_conv *distill_int8_conv_create(long n, long c, long h, long w, long oc, long k, long stride,
                                            long pad, const int8_t *weights, const float *scales, int zero_point);
void distill_int8_conv_destroy(distill_int8_conv *cv);
int distill_int8_conv_run(distill_int8_conv *cv, const uint8_t *x, float *y);

/// The message of the last failure on this thread ("" if none).
const char *distill_dnnl_last_error(void);

/// Sets the number of OpenMP threads oneDNN runs on (omp_set_num_threads, looked up at run time
/// in the OpenMP runtime oneDNN was built with); returns 0 when no OpenMP runtime was found.
int distill_dnnl_set_threads(int threads);

/// oneDNN's version, "major.minor.patch".
const char *distill_dnnl_version(void);

#ifdef __cplusplus
}
#endif
#endif
