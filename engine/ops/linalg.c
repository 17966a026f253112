/*
 * linalg.c - Gemm, MatMul and the integer matmuls (MatMulInteger, QLinearMatMul): shape
 * inference, reference kernels (triple loops) and float32 fast kernels on il_sgemm. Einsum is
 * in einsum.c and listed in this file's table.
 *
 * MatMul follows numpy.matmul: a 1-D A is a row [1, K] and a 1-D B a column [K, 1] (the added
 * dim dropped from the result); the dims before the last two broadcast.
 */
#include "../cpu/compute.h"

#include <stdio.h>

/* ---------------------------------------------------------------- MatMul geometry */

typedef struct {
    int brank;                  /* rank of the broadcast batch dims */
    int64_t bdims[IL_MAX_RANK]; /* the batch dims */
    int64_t nb, m, k, n;        /* batch count and matrix sizes (-1 unknown) */
    int orank;
    int64_t odims[IL_MAX_RANK];
} mm_geom;

static int int_dtype(il_dtype t) { return t == IL_I32 || t == IL_I64 || t == IL_U32 || t == IL_U64; }

static il_status mm_shapes(const il_kctx *c, const il_tensor *a, const il_tensor *b, mm_geom *g) {
    char sa[96], sb[96];
    if (a->rank == 0 || b->rank == 0)
        return il_kerr(c, IL_ERR_SHAPE, "matmul of a scalar: %s x %s", il_shape_str(a->rank, a->dims, sa, sizeof sa),
                       il_shape_str(b->rank, b->dims, sb, sizeof sb));
    int ra = a->rank, rb = b->rank;
    g->m = ra >= 2 ? a->dims[ra - 2] : 1;
    g->k = a->dims[ra - 1];
    int64_t kb = rb >= 2 ? b->dims[rb - 2] : b->dims[0];
    g->n = rb >= 2 ? b->dims[rb - 1] : 1;
    if (g->k >= 0 && kb >= 0 && g->k != kb)
        return il_kerr(c, IL_ERR_SHAPE, "inner dimensions differ: %s x %s", il_shape_str(ra, a->dims, sa, sizeof sa),
                       il_shape_str(rb, b->dims, sb, sizeof sb));
    if (g->k < 0) g->k = kb;
    int pa = ra > 2 ? ra - 2 : 0, pb = rb > 2 ? rb - 2 : 0;
    g->brank = pa > pb ? pa : pb;
    g->nb = 1;
    for (int i = 0; i < g->brank; i++) {
        int ia = i - (g->brank - pa), ib = i - (g->brank - pb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da >= 0 && db >= 0 && da != db && da != 1 && db != 1)
            return il_kerr(c, IL_ERR_SHAPE, "batch dimensions do not broadcast: %s x %s",
                           il_shape_str(ra, a->dims, sa, sizeof sa), il_shape_str(rb, b->dims, sb, sizeof sb));
        g->bdims[i] = da == 1 ? db : db == 1 ? da : da >= 0 ? da : db;
        g->nb = g->bdims[i] < 0 || g->nb < 0 ? -1 : g->nb * g->bdims[i];
    }
    g->orank = 0;
    for (int i = 0; i < g->brank; i++) g->odims[g->orank++] = g->bdims[i];
    if (ra >= 2) g->odims[g->orank++] = g->m;
    if (rb >= 2) g->odims[g->orank++] = g->n;
    return IL_OK;
}

/* The geometry of A x B, and the element offsets of the A and B matrices for each batch index
 * (0 along broadcast dims) in *ao and *bo: one allocation, which the caller frees with
 * free(*ao). */
static il_status mm_batches(const il_kctx *c, const il_tensor *a, const il_tensor *b, mm_geom *g, int64_t **ao,
                            int64_t **bo) {
    il_status st = mm_shapes(c, a, b, g);
    if (st) return st;
    *ao = malloc((size_t)(g->nb + 1) * 2 * sizeof(int64_t));
    if (!*ao) return il_kerr(c, IL_ERR_OOM, "out of memory");
    *bo = *ao + g->nb + 1;
    int64_t sa[IL_MAX_RANK], sb[IL_MAX_RANK], idx[IL_MAX_RANK];
    il_tensor ta = {.rank = a->rank > 2 ? a->rank - 2 : 0}, tb = {.rank = b->rank > 2 ? b->rank - 2 : 0};
    memcpy(ta.dims, a->dims, (size_t)ta.rank * sizeof(int64_t));
    memcpy(tb.dims, b->dims, (size_t)tb.rank * sizeof(int64_t));
    il_broadcast_strides(&ta, g->brank, g->bdims, sa);
    il_broadcast_strides(&tb, g->brank, g->bdims, sb);
    for (int64_t i = 0; i < g->nb; i++) {
        int64_t r = i, oa = 0, ob = 0;
        for (int d = g->brank - 1; d >= 0; d--) {
            idx[d] = r % g->bdims[d];
            r /= g->bdims[d];
            oa += idx[d] * sa[d];
            ob += idx[d] * sb[d];
        }
        (*ao)[i] = oa * g->m * g->k;
        (*bo)[i] = ob * g->k * g->n;
    }
    return IL_OK;
}

static il_status mm_infer(il_kctx *c) {
    const il_tensor *a = il_in(c, 0), *b = il_in(c, 1);
    if (!a || !b) return il_kerr(c, IL_ERR_INVALID, "needs inputs A and B");
    if (a->dtype != b->dtype)
        return il_kerr(c, IL_ERR_TYPE, "A is %s, B is %s", il_dtype_name(a->dtype), il_dtype_name(b->dtype));
    if (!il_is_f32_f64(a->dtype) && !int_dtype(a->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(a->dtype));
    if (a->rank < 0 || b->rank < 0) {
        il_set_out(c, 0, a->dtype, -1, NULL);
        return IL_OK;
    }
    mm_geom g;
    il_status st = mm_shapes(c, a, b, &g);
    if (!st) il_set_out(c, 0, a->dtype, g.orank, g.odims);
    return st;
}

/* Y[b, i, j] = sum_k A[b, i, k] * B[b, k, j], for the batches given by mm_batches. */
static il_status mm_ref(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[1];
    il_tensor *y = c->out[0];
    mm_geom g;
    int64_t *ao, *bo;
    il_status st = mm_batches(c, a, b, &g, &ao, &bo);
    if (st) return st;
    int isint = int_dtype(a->dtype);
    for (int64_t bi = 0; bi < g.nb; bi++)
        for (int64_t i = 0; i < g.m; i++)
            for (int64_t j = 0; j < g.n; j++) {
                int64_t yi = (bi * g.m + i) * g.n + j;
                if (isint) {
                    uint64_t acc = 0; /* unsigned: overflow wraps instead of being undefined */
                    for (int64_t k = 0; k < g.k; k++)
                        acc += (uint64_t)il_int_at(a, ao[bi] + i * g.k + k) *
                               (uint64_t)il_int_at(b, bo[bi] + k * g.n + j);
                    switch (y->dtype) {
                    case IL_I32: ((int32_t *)y->data)[yi] = (int32_t)(uint32_t)acc; break;
                    case IL_U32: ((uint32_t *)y->data)[yi] = (uint32_t)acc; break;
                    default: ((uint64_t *)y->data)[yi] = acc; break;
                    }
                } else {
                    double acc = 0;
                    for (int64_t k = 0; k < g.k; k++)
                        acc += il_ldf(a, ao[bi] + i * g.k + k) * il_ldf(b, bo[bi] + k * g.n + j);
                    il_stf(y, yi, acc);
                }
            }
    free(ao);
    return IL_OK;
}

/* float32: one sgemm per batch; small ones run in parallel over the batch (see IL_SMALL_GEMM). */
static il_status mm_fast(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[1];
    if (a->dtype != IL_F32) return mm_ref(c);
    mm_geom g;
    int64_t *ao, *bo;
    il_status st = mm_batches(c, a, b, &g, &ao, &bo);
    if (st) return st;
    const float *ad = a->data, *bd = b->data;
    float *yd = c->out[0]->data;
    if (g.k == 0) memset(yd, 0, (size_t)(g.nb * g.m * g.n) * sizeof(float));
    else if (g.nb > 1 && g.m * g.n * g.k < IL_SMALL_GEMM) {
        IL_PAR_FOR(c, bi, g.nb)
        il_sgemm(0, 0, g.m, g.n, g.k, 1.0f, ad + ao[bi], g.k, bd + bo[bi], g.n, 0.0f, yd + bi * g.m * g.n, g.n);
    } else {
        for (int64_t bi = 0; bi < g.nb; bi++)
            il_sgemm(0, 0, g.m, g.n, g.k, 1.0f, ad + ao[bi], g.k, bd + bo[bi], g.n, 0.0f, yd + bi * g.m * g.n, g.n);
    }
    free(ao);
    return IL_OK;
}

/* ---------------------------------------------------------------- Gemm */

/* Y[M, N] = alpha * op(A) op(B) + beta * C, op transposing when transA / transB; C broadcasts
 * to [M, N] one way (a scalar, a row [N], a column [M, 1], or the full matrix). */
static il_status gemm_shapes(const il_kctx *c, int64_t *m, int64_t *n, int64_t *k) {
    const il_tensor *a = il_in(c, 0), *b = il_in(c, 1), *cc = il_in(c, 2);
    char sa[96], sb[96];
    if (!a || !b) return il_kerr(c, IL_ERR_INVALID, "needs inputs A and B");
    if (!il_is_f32_f64(a->dtype) && !int_dtype(a->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(a->dtype));
    if (a->dtype != b->dtype || (cc && cc->dtype != a->dtype))
        return il_kerr(c, IL_ERR_TYPE, "A is %s, B is %s%s%s", il_dtype_name(a->dtype), il_dtype_name(b->dtype),
                       cc ? ", C is " : "", cc ? il_dtype_name(cc->dtype) : "");
    *m = *n = *k = -1;
    if (a->rank < 0 || b->rank < 0) return IL_OK;
    if (a->rank != 2 || b->rank != 2)
        return il_kerr(c, IL_ERR_SHAPE, "A %s and B %s must be matrices", il_shape_str(a->rank, a->dims, sa, sizeof sa),
                       il_shape_str(b->rank, b->dims, sb, sizeof sb));
    int ta = il_attr_int(c->node, "transA", 0) != 0, tb = il_attr_int(c->node, "transB", 0) != 0;
    *m = a->dims[ta ? 1 : 0];
    *k = a->dims[ta ? 0 : 1];
    int64_t kb = b->dims[tb ? 1 : 0];
    *n = b->dims[tb ? 0 : 1];
    if (*k >= 0 && kb >= 0 && *k != kb)
        return il_kerr(c, IL_ERR_SHAPE, "inner dimensions differ: %s%s x %s%s", il_shape_str(2, a->dims, sa, sizeof sa),
                       ta ? "^T" : "", il_shape_str(2, b->dims, sb, sizeof sb), tb ? "^T" : "");
    if (cc && cc->rank >= 0) {
        int64_t want[2] = {*m, *n};
        int bad = cc->rank > 2;
        for (int i = 0; !bad && i < cc->rank; i++) {
            int64_t d = cc->dims[cc->rank - 1 - i], w = want[1 - i];
            bad = d >= 0 && w >= 0 && d != 1 && d != w;
        }
        if (bad)
            return il_kerr(c, IL_ERR_SHAPE, "C %s does not broadcast to [%lld,%lld]",
                           il_shape_str(cc->rank, cc->dims, sa, sizeof sa), (long long)*m, (long long)*n);
    }
    return IL_OK;
}

static il_status gemm_infer(il_kctx *c) {
    int64_t m, n, k;
    il_status st = gemm_shapes(c, &m, &n, &k);
    if (st) return st;
    int64_t dims[2] = {m, n};
    il_set_out(c, 0, c->in[0]->dtype, 2, dims);
    return IL_OK;
}

static il_status gemm_ref(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[1], *cc = il_in(c, 2);
    il_tensor *y = c->out[0];
    int64_t m, n, k, cs[2] = {0, 0}, odims[2];
    il_status st = gemm_shapes(c, &m, &n, &k);
    if (st) return st;
    int ta = il_attr_int(c->node, "transA", 0) != 0, tb = il_attr_int(c->node, "transB", 0) != 0;
    double alpha = il_attr_float(c->node, "alpha", 1.0f), beta = il_attr_float(c->node, "beta", 1.0f);
    odims[0] = m;
    odims[1] = n;
    if (cc) il_broadcast_strides(cc, 2, odims, cs);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++)
                acc += il_tensor_get(a, ta ? p * m + i : i * k + p) * il_tensor_get(b, tb ? j * k + p : p * n + j);
            double v = alpha * acc + (cc ? beta * il_tensor_get(cc, i * cs[0] + j * cs[1]) : 0);
            il_tensor_set(y, i * n + j, v);
        }
    return IL_OK;
}

static il_status gemm_fast(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[1], *cc = il_in(c, 2);
    if (a->dtype != IL_F32) return gemm_ref(c);
    int64_t m, n, k, cs[2] = {0, 0}, odims[2];
    il_status st = gemm_shapes(c, &m, &n, &k);
    if (st) return st;
    int ta = il_attr_int(c->node, "transA", 0) != 0, tb = il_attr_int(c->node, "transB", 0) != 0;
    float alpha = il_attr_float(c->node, "alpha", 1.0f), beta = il_attr_float(c->node, "beta", 1.0f);
    float *yd = c->out[0]->data;
    odims[0] = m;
    odims[1] = n;
    int use_c = cc && beta != 0;
    if (use_c) { /* Y starts as beta*C broadcast, and sgemm adds onto it */
        const float *cd = cc->data;
        il_broadcast_strides(cc, 2, odims, cs);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) yd[i * n + j] = beta * cd[i * cs[0] + j * cs[1]];
    }
    if (m * n == 0) return IL_OK;
    if (k == 0) {
        if (!use_c) memset(yd, 0, (size_t)(m * n) * sizeof(float));
        return IL_OK;
    }
    il_sgemm(ta, tb, m, n, k, alpha, a->data, ta ? m : k, b->data, tb ? k : n, use_c ? 1.0f : 0.0f, yd, n);
    return IL_OK;
}

/* ---------------------------------------------------------------- integer matmuls */

/* MatMulInteger: int32 Y = (A - a_zero_point) x (B - b_zero_point) over 8-bit A and B, with
 * MatMul's broadcasting. QLinearMatMul: the same product, rescaled by a_scale*b_scale/y_scale,
 * rounded half to even, shifted by y_zero_point and saturated to y's 8-bit type.
 * Zero points are per tensor, or per row of A / per column of B. */
static int is_8bit(il_dtype t) { return t == IL_U8 || t == IL_I8; }

static il_status qmm_infer_common(il_kctx *c, int qlinear) {
    const il_tensor *a = il_in(c, 0), *b = il_in(c, qlinear ? 3 : 1);
    if (!a || !b || (qlinear && (!il_in(c, 1) || !il_in(c, 2) || !il_in(c, 4) || !il_in(c, 5) || !il_in(c, 6) ||
                                 !il_in(c, 7))))
        return il_kerr(c, IL_ERR_INVALID, "missing inputs (QLinearMatMul needs all 8)");
    if (!is_8bit(a->dtype) || !is_8bit(b->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s x %s", il_dtype_name(a->dtype), il_dtype_name(b->dtype));
    il_dtype out = qlinear ? c->in[7]->dtype : IL_I32;
    if (a->rank < 0 || b->rank < 0) {
        il_set_out(c, 0, out, -1, NULL);
        return IL_OK;
    }
    mm_geom g;
    il_status st = mm_shapes(c, a, b, &g);
    /* the kernel reads zero points per tensor or per row of A / column of B (along 1 / 2), and
     * scales per tensor: anything else would be read past its end */
    static const struct { int slot; const char *name; int along; } mmint[] = {{2, "a_zero_point", 1},
        {3, "b_zero_point", 2}}, qlmm[] = {{1, "a_scale", 0}, {2, "a_zero_point", 1}, {4, "b_scale", 0},
        {5, "b_zero_point", 2}, {6, "y_scale", 0}, {7, "y_zero_point", 0}};
    for (int i = 0; i < (qlinear ? 6 : 2) && !st; i++) {
        int slot = qlinear ? qlmm[i].slot : mmint[i].slot, along = qlinear ? qlmm[i].along : mmint[i].along;
        const il_tensor *q = il_in(c, slot);
        int64_t n = q && il_shape_known(q) ? il_tensor_numel(q) : 1, per = along == 1 ? g.m : along == 2 ? g.n : 1;
        if (n != 1 && (along == 0 || n != per))
            st = il_kerr(c, IL_ERR_SHAPE, "%s has %lld elements; 1%s expected", qlinear ? qlmm[i].name : mmint[i].name,
                         (long long)n, along == 1 ? " or one per row of A" : along == 2 ? " or one per column of B" : "");
    }
    if (!st) il_set_out(c, 0, out, g.orank, g.odims);
    return st;
}

static il_status mmint_infer(il_kctx *c) { return qmm_infer_common(c, 0); }
static il_status qlmm_infer(il_kctx *c) { return qmm_infer_common(c, 1); }

/* Zero point of row i (A) / column j (B): a per-tensor scalar or one per row / column. */
static int64_t zp_at(const il_tensor *zp, int64_t i) {
    if (!zp) return 0;
    return il_int_at(zp, il_tensor_numel(zp) == 1 ? 0 : i);
}

static il_status qmm_ref_common(il_kctx *c, int qlinear) {
    const il_tensor *a = c->in[0], *b = c->in[qlinear ? 3 : 1];
    const il_tensor *azp = il_in(c, 2), *bzp = il_in(c, qlinear ? 5 : 3);
    il_tensor *y = c->out[0];
    mm_geom g;
    int64_t *ao, *bo;
    il_status st = mm_batches(c, a, b, &g, &ao, &bo);
    if (st) return st;
    double scale = qlinear ? il_tensor_get(c->in[1], 0) * il_tensor_get(c->in[4], 0) / il_tensor_get(c->in[6], 0) : 1;
    int64_t yzp = qlinear ? il_int_at(c->in[7], 0) : 0;
    int64_t lo = y->dtype == IL_U8 ? 0 : -128, hi = y->dtype == IL_U8 ? 255 : 127;
    for (int64_t bi = 0; bi < g.nb; bi++)
        for (int64_t i = 0; i < g.m; i++)
            for (int64_t j = 0; j < g.n; j++) {
                int64_t acc = 0;
                for (int64_t k = 0; k < g.k; k++)
                    acc += (il_int_at(a, ao[bi] + i * g.k + k) - zp_at(azp, i)) *
                           (il_int_at(b, bo[bi] + k * g.n + j) - zp_at(bzp, j));
                int64_t yi = (bi * g.m + i) * g.n + j;
                if (!qlinear) {
                    ((int32_t *)y->data)[yi] = (int32_t)acc;
                } else {
                    double v = nearbyint((double)acc * scale) + (double)yzp;
                    il_tensor_set(y, yi, v < lo ? lo : v > hi ? hi : v);
                }
            }
    free(ao);
    return IL_OK;
}

static il_status mmint_ref(il_kctx *c) { return qmm_ref_common(c, 0); }
static il_status qlmm_ref(il_kctx *c) { return qmm_ref_common(c, 1); }

const il_op il_ops_linalg[] = {
    {"", "Gemm", 1, gemm_infer, gemm_ref, gemm_fast, 0},
    {"", "MatMul", 1, mm_infer, mm_ref, mm_fast, 0},
    {"", "Einsum", 12, il_einsum_infer, il_einsum_ref, il_einsum_fast, 0},
    {"", "MatMulInteger", 10, mmint_infer, mmint_ref, NULL, 0},
    {"", "QLinearMatMul", 10, qlmm_infer, qlmm_ref, NULL, 0},
    {0},
};
