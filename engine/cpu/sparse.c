/*
 * sparse.c - "sparse": float32 Conv/FusedConv and Gemm/MatMul/FusedGemm/FusedMatMul whose weight
 * is a constant with at least half of its elements exactly zero (what `inferlab prune --method
 * magnitude|global` leaves). prepare compresses the weight into CSR, one row per output channel
 * or unit, each nonzero kept as (value, offset into the input); run touches nonzeros only.
 *
 * Why here and why CSR over the output rows: it is a kernel of the engine's registry like the
 * dnnl_* ones, and each output row then is a sum of input rows scaled by its nonzeros,
 *     out[r, q] = sum_i val[i] * x[off[i] + s*q],
 * which vectorizes along q (8 or 32 outputs at once in registers: an unstructured pattern keeps
 * SIMD this way without any block structure in the weight).
 *  - Conv (group 1, 1-D or 2-D, equal strides): the input is copied once into a zero-padded
 *    buffer [C, Hp, Wp]; nonzero (c, kh, kw) reads it at c*Hp*Wp + kh*dh*Wp + kw*dw, and output
 *    (oh, ow) at q = oh*Wp + ow, so one output channel's rows are one contiguous run of q (the
 *    Wp - OW columns past each row's end are computed and dropped: 3% at 56x56, 22% at 7x7, half
 *    for stride 2). A 1x1 stride-1 conv without pads reads its input in place.
 *  - Gemm/MatMul, Y[M, N] = A[M, K] B: B's columns are the CSR rows. With M >= 8 (or transA) A is
 *    read as A'[K, M] and M is the vector axis; with fewer rows each row of A is a sparse dot
 *    per output (batch 1: it reads nnz weights instead of all of B, which is what wins there).
 * Zeros are skipped, so an Inf or NaN in the input meeting a zero weight does not reach the
 * output as it does in the dense kernels (0 * Inf); everything else matches them within float
 * rounding (tests/test_sparse.c: 1e-5 relative).
 *
 * Priority 1: the heuristic never prefers it to a dense kernel (fast 10, dnnl 20); `--tactics
 * timed` picks it where it measures faster on the node's shapes (docs/sparsity.md has the
 * crossover).
 */
#include "compute.h"
#include "../ops/fused.h"

#include <limits.h>

#define SP_MIN_ZERO_FRACTION 0.5
#define SP_QBLOCK 256 /* outputs per task: the input rows a block reads stay in L2 */
#define SP_RBLOCK 16  /* rows per task */

typedef struct {
    int64_t rows, nnz;
    int64_t *ptr;  /* rows + 1 */
    int32_t *off;  /* per nonzero: where its input row starts */
    float *val;
} sp_csr;

static void csr_free(sp_csr *a) {
    free(a->ptr);
    free(a->off);
    free(a->val);
}

/* A weight seen as rows x cols with element (r, c) at r*rs + c*cs, nonzero (r, c) read at
 * coff[c]; values scaled by alpha. */
static il_status csr_build(sp_csr *a, const float *w, int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                           const int64_t *coff, float alpha) {
    int64_t nnz = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) nnz += w[r * rs + c * cs] != 0.0f;
    a->rows = rows, a->nnz = nnz;
    a->ptr = malloc((size_t)(rows + 1) * sizeof *a->ptr);
    a->off = malloc((size_t)(nnz + 1) * sizeof *a->off);
    a->val = malloc((size_t)(nnz + 1) * sizeof *a->val);
    if (!a->ptr || !a->off || !a->val) return IL_ERR_OOM;
    int64_t i = 0;
    for (int64_t r = 0; r < rows; r++) {
        a->ptr[r] = i;
        for (int64_t c = 0; c < cols; c++) {
            float v = w[r * rs + c * cs];
            if (v == 0.0f) continue;
            a->off[i] = (int32_t)coff[c];
            a->val[i++] = v * alpha;
        }
    }
    a->ptr[rows] = i;
    return IL_OK;
}

/* ---------------------------------------------------------------- the core */

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4))); /* unaligned loads and stores */

/* out[(r - r0)*ldo + q - q0] for rows [r0, r1), outputs [q0, q1): see the file comment. Built for
 * AVX2+FMA and for the baseline; the CPU picks at load. */
__attribute__((target_clones("arch=x86-64-v3", "default"))) static void
spmm(const sp_csr *a, int64_t r0, int64_t r1, const float *restrict x, int64_t s, int64_t q0, int64_t q1,
     float *restrict out, int64_t ldo) {
    for (int64_t r = r0; r < r1; r++) {
        const int64_t b = a->ptr[r], e = a->ptr[r + 1];
        const int32_t *off = a->off;
        const float *val = a->val;
        float *o = out + (r - r0) * ldo - q0;
        int64_t q = q0;
        if (s == 1) {
            for (; q + 32 <= q1; q += 32) {
                v8 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
                for (int64_t i = b; i < e; i++) {
                    const float *p = x + off[i] + q;
                    v8 w = {0};
                    w += val[i];
                    c0 += w * *(const v8u *)p;
                    c1 += w * *(const v8u *)(p + 8);
                    c2 += w * *(const v8u *)(p + 16);
                    c3 += w * *(const v8u *)(p + 24);
                }
                *(v8u *)(o + q) = c0;
                *(v8u *)(o + q + 8) = c1;
                *(v8u *)(o + q + 16) = c2;
                *(v8u *)(o + q + 24) = c3;
            }
            for (; q + 8 <= q1; q += 8) {
                v8 c0 = {0};
                for (int64_t i = b; i < e; i++) {
                    v8 w = {0};
                    w += val[i];
                    c0 += w * *(const v8u *)(x + off[i] + q);
                }
                *(v8u *)(o + q) = c0;
            }
        }
        for (; q + 8 <= q1; q += 8) { /* strided: eight outputs at a time, gathered */
            float c[8] = {0};
            for (int64_t i = b; i < e; i++) {
                const float *p = x + off[i] + s * q, w = val[i];
                for (int j = 0; j < 8; j++) c[j] += w * p[s * j];
            }
            memcpy(o + q, c, sizeof c);
        }
        for (; q < q1; q++) {
            float c = 0;
            for (int64_t i = b; i < e; i++) c += val[i] * x[off[i] + s * q];
            o[q] = c;
        }
    }
}

/* The whole product out[r*ldo + q], r < rows, q < Q, split into (row block, output block) tasks. */
static void spmm_all(const il_kctx *c, const sp_csr *a, const float *x, int64_t s, int64_t Q, float *out,
                     int64_t ldo) {
    int64_t nr = (a->rows + SP_RBLOCK - 1) / SP_RBLOCK, nq = (Q + SP_QBLOCK - 1) / SP_QBLOCK;
    int threads = c->threads > 0 ? c->threads : 1;
    double work = (double)a->nnz * (double)Q;
#pragma omp parallel for collapse(2) num_threads(threads) if (threads > 1 && work > 32768) schedule(dynamic, 1)
    for (int64_t rb = 0; rb < nr; rb++)
        for (int64_t qb = 0; qb < nq; qb++) {
            int64_t r0 = rb * SP_RBLOCK, r1 = r0 + SP_RBLOCK < a->rows ? r0 + SP_RBLOCK : a->rows;
            int64_t q0 = qb * SP_QBLOCK, q1 = q0 + SP_QBLOCK < Q ? q0 + SP_QBLOCK : Q;
            spmm(a, r0, r1, x, s, q0, q1, out + r0 * ldo + q0, ldo);
        }
}

static int64_t count_zeros(const il_tensor *w) {
    int64_t z = 0, n = il_tensor_numel(w);
    const float *d = w->data;
    for (int64_t i = 0; i < n; i++) z += d[i] == 0.0f;
    return z;
}

/* A constant float32 weight (input 1) of known shape with enough zeros. */
static int sparse_weight(const il_kctx *c, int rank_lo, int rank_hi) {
    const il_tensor *w = il_in(c, 1);
    if (!w || w->dtype != IL_F32 || !(c->const_mask & 2) || !w->data || !il_shape_known(w)) return 0;
    if (w->rank < rank_lo || w->rank > rank_hi) return 0;
    int64_t n = il_tensor_numel(w);
    return n > 0 && (double)count_zeros(w) >= SP_MIN_ZERO_FRACTION * (double)n;
}

static int act_ok(const il_kctx *c) {
    il_act a;
    il_status st = il_act_parse(c, &a);
    if (st) il_error_clear();
    return st == IL_OK;
}

/* ---------------------------------------------------------------- Conv, FusedConv */

typedef struct {
    sp_csr a;
    il_act act;
    int64_t n, C, H, W, M, OH, OW, Hp, Wp, pt, pl, s, Q;
    int direct;       /* a 1x1 stride-1 conv without pads: the input is read in place */
    int64_t xp_size;  /* floats of the padded copy (with the tail the dropped columns read) */
} sconv_state;

static void sconv_release(void *p) {
    sconv_state *s = p;
    if (!s) return;
    csr_free(&s->a);
    free(s);
}

static int sconv_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1), *b = il_in(c, 2), *z = il_in(c, 3);
    if (!x || x->dtype != IL_F32 || x->rank < 3 || x->rank > 4 || !il_shape_known(x) || !sparse_weight(c, 3, 4))
        return 0;
    if (w->rank != x->rank || il_attr_int(c->node, "group", 1) != 1 || w->dims[1] != x->dims[1]) return 0;
    if ((b && (b->dtype != IL_F32 || b->rank != 1)) || (z && z->dtype != IL_F32) || !act_ok(c)) return 0;
    const int64_t *st;
    int ns = il_attr_ints(c->node, "strides", &st);
    if (x->rank == 4 && ns == 2 && st[0] != st[1]) return 0;
    return il_tensor_numel(x) > 0;
}

static il_status sconv_prepare(il_kctx *c, void **state, size_t *workspace) {
    const il_tensor *X = c->in[0], *Wt = c->in[1];
    sconv_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_conv_geom g;
    int64_t kernel[IL_MAX_SPATIAL];
    for (int i = 0; i + 2 < Wt->rank; i++) kernel[i] = Wt->dims[2 + i];
    il_status st = il_act_parse(c, &s->act);
    if (!st) st = il_window_geom(c, X, kernel, 0, 1, &g);
    if (st) {
        free(s);
        return st;
    }
    int two = g.nsp == 2, L = g.nsp - 1;
    int64_t KH = two ? g.k[0] : 1, KW = g.k[L], dh = two ? g.dil[0] : 1, dw = g.dil[L];
    s->n = g.n, s->C = g.c, s->M = Wt->dims[0], s->s = g.stride[L];
    s->H = two ? g.in[0] : 1, s->W = g.in[L], s->OH = two ? g.out[0] : 1, s->OW = g.out[L];
    s->pt = two ? g.pad[0] : 0, s->pl = g.pad[L];
    int64_t pb = two ? g.pad_end[0] : 0, pr = g.pad_end[L];
    s->Hp = s->pt + s->H + pb, s->Wp = s->pl + s->W + pr;
    if (s->Hp < (s->OH - 1) * s->s + (KH - 1) * dh + 1) s->Hp = (s->OH - 1) * s->s + (KH - 1) * dh + 1;
    if (s->Wp < (s->OW - 1) * s->s + (KW - 1) * dw + 1) s->Wp = (s->OW - 1) * s->s + (KW - 1) * dw + 1;
    s->Q = (s->OH - 1) * s->Wp + s->OW;
    s->direct = KH == 1 && KW == 1 && s->s == 1 && s->Hp == s->H && s->Wp == s->W;
    int64_t plane = s->Hp * s->Wp, last = (s->C - 1) * plane + (KH - 1) * dh * s->Wp + (KW - 1) * dw + s->s * (s->Q - 1);
    s->xp_size = s->C * plane > last + 1 ? s->C * plane : last + 1;
    if (s->xp_size >= INT32_MAX || s->OH * s->OW == 0) {
        free(s);
        return il_kerr(c, IL_ERR_UNSUPPORTED, "sparse: input too large for 32-bit offsets, or an empty output");
    }
    int64_t cols = s->C * KH * KW, *coff = malloc((size_t)cols * sizeof *coff);
    if (!coff) {
        free(s);
        return il_kerr(c, IL_ERR_OOM, "out of memory");
    }
    for (int64_t ci = 0; ci < s->C; ci++)
        for (int64_t kh = 0; kh < KH; kh++)
            for (int64_t kw = 0; kw < KW; kw++) coff[(ci * KH + kh) * KW + kw] = ci * plane + kh * dh * s->Wp + kw * dw;
    st = csr_build(&s->a, Wt->data, s->M, cols, cols, 1, coff, 1.0f);
    free(coff);
    if (st) {
        sconv_release(s);
        return il_kerr(c, IL_ERR_OOM, "out of memory for the compressed weight");
    }
    int64_t tmp = s->Wp != s->OW ? s->M * s->Q : 0;
    *workspace = (size_t)((s->direct ? 0 : s->xp_size) + tmp) * sizeof(float);
    *state = s;
    return IL_OK;
}

static il_status sconv_run(il_kctx *c) {
    const sconv_state *s = c->state;
    const il_tensor *Bt = il_in(c, 2), *Z = il_in(c, 3);
    const float *x = c->in[0]->data, *b = Bt ? Bt->data : NULL, *z = Z ? Z->data : NULL;
    float *y = c->out[0]->data, *xp = c->workspace, *tmp = xp + (s->direct ? 0 : s->xp_size);
    int64_t osp = s->OH * s->OW, in_sp = s->H * s->W;
    int compact = s->Wp != s->OW;
    for (int64_t n = 0; n < s->n; n++) {
        const float *xn = x + n * s->C * in_sp;
        float *yn = y + n * s->M * osp;
        if (!s->direct) {
            memset(xp, 0, (size_t)s->xp_size * sizeof(float));
            for (int64_t ci = 0; ci < s->C; ci++)
                for (int64_t h = 0; h < s->H; h++)
                    memcpy(xp + (ci * s->Hp + s->pt + h) * s->Wp + s->pl, xn + ci * in_sp + h * s->W,
                           (size_t)s->W * sizeof(float));
        }
        spmm_all(c, &s->a, s->direct ? xn : xp, s->s, s->Q, compact ? tmp : yn, compact ? s->Q : osp);
        IL_PAR_FOR(c, m, s->M) {
            float *ym = yn + m * osp;
            if (compact)
                for (int64_t oh = 0; oh < s->OH; oh++)
                    memcpy(ym + oh * s->OW, tmp + m * s->Q + oh * s->Wp, (size_t)s->OW * sizeof(float));
            il_act_row(&s->act, ym, osp, b ? b[m] : 0.0f, z ? z + (n * s->M + m) * osp : NULL);
        }
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- Gemm, MatMul and fused forms */

typedef struct {
    sp_csr a;
    il_act act;
    int64_t M, N, K;
    int vec, ta;      /* vec: A' [K, M] is the input, M the vector axis (transposed when !ta) */
    float beta;
    int64_t cs[2];    /* the bias C's broadcast strides over [M, N]; 0, 0 without one */
} smm_state;

static void smm_release(void *p) {
    smm_state *s = p;
    if (!s) return;
    csr_free(&s->a);
    free(s);
}

static int is_gemm(const il_kctx *c) { return strstr(c->node->op_type, "Gemm") != NULL; }

/* The bias: Gemm's C or FusedMatMul's bias (input 2); MatMul has none. */
static const il_tensor *bias_of(const il_kctx *c) { return strcmp(c->node->op_type, "MatMul") ? il_in(c, 2) : NULL; }

static int smm_supports(const il_kctx *c) {
    const il_tensor *a = c->in[0], *bias = bias_of(c), *y = c->out[0];
    if (!a || a->dtype != IL_F32 || !il_shape_known(a) || a->rank < 1 || !sparse_weight(c, 2, 2) || !act_ok(c))
        return 0;
    if (is_gemm(c) && a->rank != 2) return 0;
    if (bias && (bias->dtype != IL_F32 || !il_shape_known(bias) || bias->rank > 2)) return 0;
    return y && il_shape_known(y) && il_tensor_numel(a) > 0;
}

static il_status smm_prepare(il_kctx *c, void **state, size_t *workspace) {
    const il_tensor *A = c->in[0], *B = c->in[1], *bias = bias_of(c);
    smm_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_status st = il_act_parse(c, &s->act);
    if (st) {
        free(s);
        return st;
    }
    int gemm = is_gemm(c), tb = gemm && il_attr_int(c->node, "transB", 0);
    s->ta = gemm && il_attr_int(c->node, "transA", 0);
    float alpha = gemm ? il_attr_float(c->node, "alpha", 1.0f) : 1.0f;
    s->beta = gemm ? il_attr_float(c->node, "beta", 1.0f) : 1.0f;
    s->K = B->dims[tb ? 1 : 0], s->N = B->dims[tb ? 0 : 1];
    s->M = s->K ? il_tensor_numel(A) / s->K : 0;
    if (bias) {
        int64_t yd[2] = {s->M, s->N};
        il_broadcast_strides(bias, 2, yd, s->cs);
    }
    s->vec = s->ta || s->M >= 8;
    int64_t *coff = malloc((size_t)(s->K + 1) * sizeof *coff);
    if (!coff || s->K * (s->vec ? s->M : 1) >= INT32_MAX) {
        free(coff);
        free(s);
        return il_kerr(c, IL_ERR_UNSUPPORTED, "sparse: out of memory or 32-bit offsets");
    }
    for (int64_t k = 0; k < s->K; k++) coff[k] = s->vec ? k * s->M : k;
    st = csr_build(&s->a, B->data, s->N, s->K, tb ? s->K : 1, tb ? 1 : s->N, coff, alpha);
    free(coff);
    if (st) {
        smm_release(s);
        return il_kerr(c, IL_ERR_OOM, "out of memory for the compressed weight");
    }
    *workspace = s->vec ? (size_t)((s->ta ? 0 : s->K * s->M) + s->N * s->M) * sizeof(float) : 0;
    *state = s;
    return IL_OK;
}

static il_status smm_run(il_kctx *c) {
    const smm_state *s = c->state;
    const il_tensor *bias = bias_of(c);
    const float *a = c->in[0]->data, *cb = bias ? bias->data : NULL;
    float *y = c->out[0]->data;
    int64_t M = s->M, N = s->N, K = s->K;
    if (s->vec) {
        float *at = c->workspace, *tmp = at + (s->ta ? 0 : K * M);
        if (s->ta) at = (float *)a;
        else
            for (int64_t i = 0; i < M; i++)
                for (int64_t k = 0; k < K; k++) at[k * M + i] = a[i * K + k];
        spmm_all(c, &s->a, at, 1, M, tmp, M);
        IL_PAR_FOR(c, i, M) {
            for (int64_t j = 0; j < N; j++) y[i * N + j] = tmp[j * M + i];
        }
    } else {
        for (int64_t i = 0; i < M; i++) spmm_all(c, &s->a, a + i * K, 1, 1, y + i * N, 1);
    }
    IL_PAR_FOR(c, i, M) {
        float *yr = y + i * N;
        if (cb)
            for (int64_t j = 0; j < N; j++) yr[j] += s->beta * cb[i * s->cs[0] + j * s->cs[1]];
        il_act_row(&s->act, yr, N, 0.0f, NULL);
    }
    return IL_OK;
}

#define SPARSE(dom, op_, sup, prep, run_, rel, what)                                                                 \
    {.domain = dom, .op = op_, .backend = "cpu", .name = "sparse", .dtypes = IL_DT(IL_F32), .priority = 1,          \
     .supports = sup, .prepare = prep, .run = run_, .release = rel,                                                 \
     .doc = "constant weight with >= 50% zeros in CSR (prepared once), " what "; only --tactics timed picks it"}

const il_kernel il_kernels_sparse[] = {
    SPARSE("", "Conv", sconv_supports, sconv_prepare, sconv_run, sconv_release, "direct over a zero-padded input"),
    SPARSE("ai.inferlab", "FusedConv", sconv_supports, sconv_prepare, sconv_run, sconv_release,
           "direct over a zero-padded input, epilogue per channel"),
    SPARSE("", "Gemm", smm_supports, smm_prepare, smm_run, smm_release, "sparse rows times A' (M >= 8) or dots"),
    SPARSE("", "MatMul", smm_supports, smm_prepare, smm_run, smm_release, "sparse rows times A' (M >= 8) or dots"),
    SPARSE("ai.inferlab", "FusedGemm", smm_supports, smm_prepare, smm_run, smm_release,
           "sparse rows times A' (M >= 8) or dots, epilogue per row"),
    SPARSE("ai.inferlab", "FusedMatMul", smm_supports, smm_prepare, smm_run, smm_release,
           "sparse rows times A' (M >= 8) or dots, epilogue per row"),
    {0},
};
