/*
 * grad.h - internal to distill/: the backward kernels' contract and the helpers they share.
 *
 * A backward kernel sees one node of the graph after a training forward pass: its inputs and
 * outputs as they were computed (c->in, c->out), the gradient of the loss w.r.t. each output
 * (c->dout[i], NULL when nothing downstream needs it) and, for each input whose gradient is
 * wanted, a tensor to ADD the gradient into (c->din[i], NULL when not wanted: integer shape
 * inputs, fixed constants). Adding rather than writing lets a value feed several nodes.
 *
 * Every kernel serves float32 and float64 with one body, written once with the element type
 * named T (GR_FLOATS below); float64 is what the tests' finite-difference gradient checks run.
 * Sums that cross threads are done in a fixed order, so results depend only on the data and
 * the thread count.
 *
 * A few ops compute differently in training (BatchNormalization with batch statistics,
 * Dropout with a random mask): they have a train_forward that replaces the engine kernel and
 * leaves what backward needs in *c->saved (freed by the trainer with gr_saved_free).
 */
#ifndef IL_GRAD_H
#define IL_GRAD_H

#include "distill.h"
#include "engine/cpu/compute.h"

#include <cblas.h>
#include <string.h>

typedef struct gr_ctx {
    const il_node *node;
    int64_t opset;
    int n_in, n_out;
    il_tensor **in, **out;
    il_tensor **dout, **din;
    void **saved;       /* per-node state from train_forward */
    int threads;
    uint64_t *rng;      /* train_forward's random numbers (Dropout) */
} gr_ctx;

typedef il_status (*gr_fn)(gr_ctx *c);

typedef struct gr_op {
    const char *name;     /* op type in the default domain */
    gr_fn backward;
    gr_fn train_forward;  /* NULL: the engine's kernel also serves training */
} gr_op;

/* The backward ops of one group file each, ending with {0}. */
extern const gr_op gr_ops_conv[], gr_ops_linalg[], gr_ops_norm[], gr_ops_elem[], gr_ops_shape[];
const gr_op *gr_find(const char *op_type);

/* The error with node context, like il_kerr. */
il_status gr_err(const gr_ctx *c, il_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An il_kctx over the same tensors, for the engine's geometry helpers. */
static inline il_kctx gr_kctx(const gr_ctx *c) {
    il_kctx k = {.node = c->node, .opset = c->opset, .n_in = c->n_in, .n_out = c->n_out, .in = c->in, .out = c->out,
                 .threads = c->threads};
    return k;
}
static inline il_tensor *gr_in(const gr_ctx *c, int i) { return i < c->n_in ? c->in[i] : NULL; }
static inline il_tensor *gr_din(const gr_ctx *c, int i) { return i < c->n_in ? c->din[i] : NULL; }

/* One body for float32 and float64, with T the element type. */
#define GR_CASE_(E, CT, ...) case E: { typedef CT T; __VA_ARGS__; break; }
#define GR_FLOATS(dt, ...) switch (dt) { GR_CASE_(IL_F32, float, __VA_ARGS__) GR_CASE_(IL_F64, double, __VA_ARGS__) default: break; }

/* Row-major gemm C = alpha op(A) op(B) + beta C for either element type. */
static inline void gr_gemm_f(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const float *a, int64_t lda,
                             const float *b, int64_t ldb, double beta, float *cm, int64_t ldc) {
    if (m && n) il_sgemm(ta, tb, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, cm, ldc);
}
static inline void gr_gemm_d(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
                             int64_t lda, const double *b, int64_t ldb, double beta, double *cm, int64_t ldc) {
    if (m && n)
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m,
                    (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, cm, (blasint)ldc);
}
#define gr_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc) \
    _Generic((cm), float *: gr_gemm_f, double *: gr_gemm_d)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc)

void gr_saved_free(const char *op, void *p);

/* The window geometry of a Conv or pool node as 2-D (1-D seen as height 1), with in_sp,
 * out_sp, k_sp filled; gr_conv_geom adds group and output channels from the weight. */
il_status gr_geom2d(const gr_ctx *c, const int64_t *kernel, int ceil_mode, il_conv_geom *g);
il_status gr_conv_geom(const gr_ctx *c, il_conv_geom *g);
/* Clip's bounds: attributes before opset 11, the optional inputs after (absent: unbounded). */
void gr_clip_bounds(const gr_ctx *c, double *lo, double *hi);

/* din += dout reduced (summed) over the dims where din's shape broadcasts to dout's. */
void gr_reduce_add(il_tensor *din, const il_tensor *dout, double scale);

#endif
