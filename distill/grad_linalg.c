/*
 * grad_linalg.c - backward of Gemm and MatMul, each gradient one gemm.
 *
 * Gemm: Y = alpha A' B' + beta C with A' = A or A^T, B' = B or B^T ([M,K] x [K,N]):
 *   dA' = alpha dY B'^T,  dB' = alpha A'^T dY,  dC = beta dY summed to C's broadcast shape;
 * a transposed operand gets the transposed product, so no transposes are materialized.
 * MatMul: batched [..., M, K] x [..., K, N]. When B is one matrix shared by the whole batch
 * (a Linear on [N, T, D] input, as transformers write it), the batch is folded into M, so
 * dB = A^T dY is a single gemm over all rows rather than a sum of small ones.
 */
#include "grad.h"

static il_status gemm_backward(gr_ctx *c) {
    il_tensor *a = c->in[0], *b = c->in[1], *dy = c->dout[0];
    il_tensor *da = gr_din(c, 0), *db = gr_din(c, 1), *dc = gr_din(c, 2);
    int ta = (int)il_attr_int(c->node, "transA", 0), tb = (int)il_attr_int(c->node, "transB", 0);
    double alpha = il_attr_float(c->node, "alpha", 1.0f), beta = il_attr_float(c->node, "beta", 1.0f);
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1], N = tb ? b->dims[0] : b->dims[1];
    int64_t lda = a->dims[1], ldb = b->dims[1];
    GR_FLOATS(a->dtype, {
        const T *A = a->data, *B = b->data, *DY = dy->data;
        if (da) {
            if (!ta) gr_gemm(0, tb ? 0 : 1, M, K, N, alpha, DY, N, B, ldb, 1.0, (T *)da->data, K);
            else gr_gemm(tb ? 1 : 0, 1, K, M, N, alpha, B, ldb, DY, N, 1.0, (T *)da->data, M);
        }
        if (db) {
            if (!tb) gr_gemm(ta ? 0 : 1, 0, K, N, M, alpha, A, lda, DY, N, 1.0, (T *)db->data, N);
            else gr_gemm(1, ta ? 1 : 0, N, K, M, alpha, DY, N, A, lda, 1.0, (T *)db->data, K);
        }
    })
    if (dc) gr_reduce_add(dc, dy, beta);
    return IL_OK;
}

/* Batch count of t seen as [..., r, c] matrices; 1 for rank 2. */
static int64_t batch_of(const il_tensor *t) {
    int64_t b = 1;
    for (int i = 0; i < t->rank - 2; i++) b *= t->dims[i];
    return b;
}

static il_status matmul_backward(gr_ctx *c) {
    il_tensor *a = c->in[0], *b = c->in[1], *dy = c->dout[0], *da = gr_din(c, 0), *db = gr_din(c, 1);
    if (a->rank < 2 || b->rank < 2)
        return gr_err(c, IL_ERR_UNSUPPORTED, "training supports MatMul of rank >= 2 operands (got %d and %d)", a->rank,
                      b->rank);
    int64_t M = a->dims[a->rank - 2], K = a->dims[a->rank - 1], N = b->dims[b->rank - 1];
    int64_t ba = batch_of(a), bb = batch_of(b), bo = batch_of(dy);
    if ((ba != bo && ba != 1) || (bb != bo && bb != 1))
        return gr_err(c, IL_ERR_UNSUPPORTED, "training supports MatMul batches that match or are shared (%lld, %lld -> %lld)",
                      (long long)ba, (long long)bb, (long long)bo);
    GR_FLOATS(a->dtype, {
        const T *A = a->data, *B = b->data, *DY = dy->data;
        if (bb == 1 && ba == bo) {
            /* B shared: fold the batch into the rows of A and dY */
            if (da) gr_gemm(0, 1, bo * M, K, N, 1.0, DY, N, B, N, 1.0, (T *)da->data, K);
            if (db) gr_gemm(1, 0, K, N, bo * M, 1.0, A, K, DY, N, 1.0, (T *)db->data, N);
        } else {
            for (int64_t i = 0; i < bo; i++) {
                const T *Ai = A + (ba == 1 ? 0 : i) * M * K, *Bi = B + (bb == 1 ? 0 : i) * K * N, *Di = DY + i * M * N;
                if (da) gr_gemm(0, 1, M, K, N, 1.0, Di, N, Bi, N, 1.0, (T *)da->data + (ba == 1 ? 0 : i) * M * K, K);
                if (db) gr_gemm(1, 0, K, N, M, 1.0, Ai, K, Di, N, 1.0, (T *)db->data + (bb == 1 ? 0 : i) * K * N, N);
            }
        }
    })
    return IL_OK;
}

const gr_op gr_ops_linalg[] = {
    {"Gemm", gemm_backward, NULL},
    {"MatMul", matmul_backward, NULL},
    {0},
};
