/*
 * sparse.c - "sparse": float32 Conv/FusedConv and Gemm/MatMul/FusedGemm/FusedMatMul whose weight
 * is a constant with at least half of its elements exactly zero (what `inferlab prune --method
 * magnitude|global` leaves). prepare compresses the weight into CSR, one row per output channel
 * or unit, each nonzero kept as (value, offset into the input); run touches nonzeros only.
 *
 * Why here and why CSR over the output rows: it is a kernel of the engine's registry like the
 * dnnl_* ones, and each output row then is a sum of input rows scaled by its nonzeros,
 *     out[r, q] = sum_i val[i] * x[off[i] + q],
 * which vectorizes along q (32 outputs at once in registers: an unstructured pattern keeps SIMD
 * this way without any block structure in the weight).
 *  - Conv (1-D or 2-D, any groups, strides, dilations and pads): the input is copied once into a
 *    zero-padded buffer split by stride phase (sconv_state), so that every tap reads unit-stride
 *    rows; nonzero (c, kh, kw) is one offset into it and output (oh, ow) is q = oh*Wq + ow, so one
 *    output channel is one contiguous run of q (the few columns past each row's end are computed
 *    and dropped: 3% at 56x56, 22% at 7x7). A 1x1 stride-1 conv without pads reads its input in
 *    place when its pixels are a multiple of 16. Grouped and depthwise convs need nothing else:
 *    a row's offsets point into its own group's channels of the one copy.
 *  - Gemm/MatMul, Y[M, N] = A[M, K] B: B's columns are the CSR rows. With M >= 8 (or transA) A is
 *    read as A'[K, M] and M is the vector axis; with fewer rows each row of A meets each sparse
 *    column in a dot product (batch 1: it reads nnz weights instead of all of B, which is what
 *    wins there).
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

/* The release of both kernels' states, whose first member is their sp_csr. */
static void sp_release(void *state) {
    if (!state) return;
    csr_free(state);
    free(state);
}

/* A weight seen as rows x cols with element (r, c) at r*rs + c*cs, nonzero (r, c) read at
 * coff[c] + (r / gsize) * gstride (a grouped conv: each group of gsize rows reads its own
 * channels, gstride further on); values scaled by alpha. */
static il_status csr_build(sp_csr *a, const float *w, int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                           const int64_t *coff, int64_t gsize, int64_t gstride, float alpha) {
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
            a->off[i] = (int32_t)(coff[c] + r / gsize * gstride);
            a->val[i++] = v * alpha;
        }
    }
    a->ptr[rows] = i;
    return IL_OK;
}

/* ---------------------------------------------------------------- the core */

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4))); /* unaligned loads and stores */
#define LD(p) (*(const v16u *)(p))
#define ST(p, v) (*(v16u *)(p) = (v))

/* out[(r - r0)*ldo + q - q0] = sum_i val[i] * x[off[i] + q] for rows [r0, r1) and outputs
 * [q0, q1), q1 - q0 a multiple of 16 (callers pad). 32 or 16 outputs stay in registers while a
 * row's nonzeros stream by, two nonzeros at a time into separate accumulators (the FMA latency
 * would otherwise bound it). Built for AVX-512, AVX2+FMA and the baseline; the CPU picks at load. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static void
spmm(const sp_csr *a, int64_t r0, int64_t r1, const float *restrict x, int64_t q0, int64_t q1, float *restrict out,
     int64_t ldo) {
    const int32_t *off = a->off;
    const float *val = a->val;
    /* outputs outer, rows inner: the input lines one block of 32 outputs reads (every tap of
     * every channel: 36 KB for 64 channels of 3x3) stay in L1 while the rows reuse them */
    int64_t q = q0;
    for (; q + 32 <= q1; q += 32)
        for (int64_t r = r0; r < r1; r++) {
            const int64_t b = a->ptr[r], e = a->ptr[r + 1];
            float *o = out + (r - r0) * ldo - q0;
            v16 a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
            int64_t i = b;
            for (; i + 2 <= e; i += 2) {
                const float *p = x + off[i] + q, *p2 = x + off[i + 1] + q;
                v16 w = {0}, w2 = {0};
                w += val[i];
                w2 += val[i + 1];
                a0 += w * LD(p);
                a1 += w * LD(p + 16);
                b0 += w2 * LD(p2);
                b1 += w2 * LD(p2 + 16);
            }
            if (i < e) {
                const float *p = x + off[i] + q;
                v16 w = {0};
                w += val[i];
                a0 += w * LD(p);
                a1 += w * LD(p + 16);
            }
            ST(o + q, a0 + b0);
            ST(o + q + 16, a1 + b1);
        }
    for (; q < q1; q += 16)
        for (int64_t r = r0; r < r1; r++) {
            const int64_t b = a->ptr[r], e = a->ptr[r + 1];
            float *o = out + (r - r0) * ldo - q0;
            v16 a0 = {0}, b0 = {0};
            int64_t i = b;
            for (; i + 2 <= e; i += 2) {
                v16 w = {0}, w2 = {0};
                w += val[i];
                w2 += val[i + 1];
                a0 += w * LD(x + off[i] + q);
                b0 += w2 * LD(x + off[i + 1] + q);
            }
            if (i < e) {
                v16 w = {0};
                w += val[i];
                a0 += w * LD(x + off[i] + q);
            }
            ST(o + q, a0 + b0);
        }
}

/* One output per row: out[r - r0] = sum_i val[i] * x[off[i]] (a sparse row times a vector, the
 * batch-1 linear layer), eight partial sums so that the adds overlap. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static void
spdot(const sp_csr *a, int64_t r0, int64_t r1, const float *restrict x, float *restrict out) {
    const int32_t *off = a->off;
    const float *val = a->val;
    for (int64_t r = r0; r < r1; r++) {
        int64_t i = a->ptr[r], e = a->ptr[r + 1];
        float s[8] = {0};
        for (; i + 8 <= e; i += 8)
            for (int j = 0; j < 8; j++) s[j] += val[i + j] * x[off[i + j]];
        for (int j = 0; i < e; i++, j++) s[j] += val[i] * x[off[i]];
        out[r - r0] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    }
}

static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

/* The whole product out[r*ldo + q], r < rows, q < Q (Q = 1: spdot; else a multiple of 16), split
 * into (row block, output block) tasks over the threads. */
static void spmm_all(const il_kctx *c, const sp_csr *a, const float *x, int64_t Q, float *out, int64_t ldo) {
    int64_t nr = (a->rows + SP_RBLOCK - 1) / SP_RBLOCK, nq = (Q + SP_QBLOCK - 1) / SP_QBLOCK;
    int threads = c->threads > 0 ? c->threads : 1;
    double work = (double)a->nnz * (double)Q;
#pragma omp parallel for collapse(2) num_threads(threads) if (threads > 1 && work > 32768) schedule(dynamic, 1)
    for (int64_t rb = 0; rb < nr; rb++)
        for (int64_t qb = 0; qb < nq; qb++) {
            int64_t r0 = rb * SP_RBLOCK, r1 = r0 + SP_RBLOCK < a->rows ? r0 + SP_RBLOCK : a->rows;
            int64_t q0 = qb * SP_QBLOCK, q1 = q0 + SP_QBLOCK < Q ? q0 + SP_QBLOCK : Q;
            if (Q == 1) spdot(a, r0, r1, x, out + r0 * ldo);
            else spmm(a, r0, r1, x, q0, q1, out + r0 * ldo + q0, ldo);
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

/* The input is copied once per image into a zero-padded buffer split by stride phase: for strides
 * (sh, sw), padded pixel (hp, wp) of channel c goes to plane (c, hp % sh, wp % sw) at row hp / sh,
 * column wp / sw of a Hq x Wq plane. Tap (kh, kw) then reads one phase plane with unit stride, at
 * offset (kh*dh / sh) rows and (kw*dw / sw) columns, for every output (oh, ow) at q = oh*Wq + ow. */
typedef struct {
    sp_csr a; /* first: sp_release frees it */
    il_act act;
    int64_t n, C, H, W, M, OH, OW, sh, sw, Hq, Wq, pt, pl;
    int64_t Q;        /* outputs per channel as computed: (OH-1)*Wq + OW rounded up to 16 */
    int direct;       /* a 1x1 stride-1 conv without pads over a multiple of 16 pixels: no copy */
    int64_t xp_size;  /* floats of the copy (and the tail that the padding of Q reads) */
    uint32_t used[32]; /* bit pw of used[ph]: some tap reads phase (ph, pw) */
} sconv_state;


static int sconv_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1), *b = il_in(c, 2), *z = il_in(c, 3);
    if (!x || x->dtype != IL_F32 || x->rank < 3 || x->rank > 4 || !il_shape_known(x) || !sparse_weight(c, 3, 4))
        return 0;
    int64_t groups = il_attr_int(c->node, "group", 1);
    if (w->rank != x->rank || groups < 1 || w->dims[1] * groups != x->dims[1] || w->dims[0] % groups) return 0;
    if ((b && (b->dtype != IL_F32 || b->rank != 1)) || (z && z->dtype != IL_F32) || !act_ok(c)) return 0;
    const int64_t *st;
    int ns = il_attr_ints(c->node, "strides", &st);
    for (int i = 0; i < ns; i++)
        if (st[i] > 32) return 0; /* the phase mask (sconv_state.used) */
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
    s->n = g.n, s->C = g.c, s->M = Wt->dims[0], s->sh = two ? g.stride[0] : 1, s->sw = g.stride[L];
    s->H = two ? g.in[0] : 1, s->W = g.in[L], s->OH = two ? g.out[0] : 1, s->OW = g.out[L];
    s->pt = two ? g.pad[0] : 0, s->pl = g.pad[L];
    int64_t Hp = s->pt + s->H + (two ? g.pad_end[0] : 0), Wp = s->pl + s->W + g.pad_end[L];
    s->Hq = (Hp + s->sh - 1) / s->sh, s->Wq = (Wp + s->sw - 1) / s->sw;
    if (s->Hq < s->OH + (KH - 1) * dh / s->sh) s->Hq = s->OH + (KH - 1) * dh / s->sh;
    if (s->Wq < s->OW + (KW - 1) * dw / s->sw) s->Wq = s->OW + (KW - 1) * dw / s->sw;
    s->Q = round16((s->OH - 1) * s->Wq + s->OW);
    s->direct = KH == 1 && KW == 1 && s->sh == 1 && s->sw == 1 && Hp == s->H && Wp == s->W && s->Q == s->H * s->W;
    int64_t plane = s->Hq * s->Wq, phases = s->sh * s->sw;
    int64_t last = ((s->C - 1) * phases + phases - 1) * plane + (KH - 1) * dh / s->sh * s->Wq + (KW - 1) * dw / s->sw;
    s->xp_size = s->C * phases * plane > last + s->Q ? s->C * phases * plane : last + s->Q;
    if (s->xp_size >= INT32_MAX || s->OH * s->OW == 0 || s->sh > 32 || s->sw > 32) {
        free(s);
        return il_kerr(c, IL_ERR_UNSUPPORTED,
                       "sparse: input too large for 32-bit offsets, strides over 32 or an empty output");
    }
    /* a grouped conv: the rows of group g read channels [g*Cg, (g+1)*Cg) of the same copy */
    int64_t groups = il_attr_int(c->node, "group", 1), Cg = s->C / groups;
    int64_t cols = Cg * KH * KW, *coff = malloc((size_t)cols * sizeof *coff);
    if (!coff) {
        free(s);
        return il_kerr(c, IL_ERR_OOM, "out of memory");
    }
    for (int64_t ci = 0; ci < Cg; ci++)
        for (int64_t kh = 0; kh < KH; kh++)
            for (int64_t kw = 0; kw < KW; kw++) {
                s->used[kh * dh % s->sh] |= 1u << (kw * dw % s->sw);
                int64_t ph = (ci * s->sh + kh * dh % s->sh) * s->sw + kw * dw % s->sw;
                coff[(ci * KH + kh) * KW + kw] = ph * plane + kh * dh / s->sh * s->Wq + kw * dw / s->sw;
            }
    st = csr_build(&s->a, Wt->data, s->M, cols, cols, 1, coff, s->M / groups, Cg * phases * plane, 1.0f);
    free(coff);
    if (st) {
        sp_release(s);
        return il_kerr(c, IL_ERR_OOM, "out of memory for the compressed weight");
    }
    *workspace = (size_t)(s->direct ? 0 : s->xp_size + s->M * s->Q) * sizeof(float);
    *state = s;
    return IL_OK;
}

/* Image n's input into the phase-split padded buffer (zeros around): per input row, each column
 * phase is a stride-sw gather into one contiguous run of its plane's row. Phases no tap reads
 * (a 1x1 stride-2 conv reads one of four) are left out. */
static void phase_copy(const sconv_state *s, const float *x, float *xp) {
    int64_t plane = s->Hq * s->Wq;
    memset(xp, 0, (size_t)s->xp_size * sizeof(float));
    for (int64_t ci = 0; ci < s->C; ci++)
        for (int64_t h = 0; h < s->H; h++) {
            int64_t hp = h + s->pt;
            const float *src = x + (ci * s->H + h) * s->W;
            float *row = xp + (ci * s->sh + hp % s->sh) * s->sw * plane + hp / s->sh * s->Wq;
            for (int64_t pw = 0; pw < s->sw; pw++) {
                if (!(s->used[hp % s->sh] & (1u << pw))) continue;
                int64_t w0 = ((pw - s->pl) % s->sw + s->sw) % s->sw;
                float *dst = row + pw * plane + (w0 + s->pl) / s->sw;
                if (s->sw == 1) memcpy(dst, src, (size_t)s->W * sizeof(float));
                else
                    for (int64_t w = w0, j = 0; w < s->W; w += s->sw, j++) dst[j] = src[w];
            }
        }
}

static il_status sconv_run(il_kctx *c) {
    const sconv_state *s = c->state;
    const il_tensor *Bt = il_in(c, 2), *Z = il_in(c, 3);
    const float *x = c->in[0]->data, *b = Bt ? Bt->data : NULL, *z = Z ? Z->data : NULL;
    float *y = c->out[0]->data, *xp = c->workspace, *tmp = s->direct ? NULL : xp + s->xp_size;
    int64_t osp = s->OH * s->OW, in_sp = s->H * s->W;
    for (int64_t n = 0; n < s->n; n++) {
        const float *xn = x + n * s->C * in_sp;
        float *yn = y + n * s->M * osp;
        if (!s->direct) phase_copy(s, xn, xp);
        spmm_all(c, &s->a, s->direct ? xn : xp, s->Q, s->direct ? yn : tmp, s->Q);
        IL_PAR_FOR(c, m, s->M) {
            float *ym = yn + m * osp;
            if (!s->direct)
                for (int64_t oh = 0; oh < s->OH; oh++)
                    memcpy(ym + oh * s->OW, tmp + m * s->Q + oh * s->Wq, (size_t)s->OW * sizeof(float));
            il_act_row(&s->act, ym, osp, b ? b[m] : 0.0f, z ? z + (n * s->M + m) * osp : NULL);
        }
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- Gemm, MatMul and fused forms */

typedef struct {
    sp_csr a; /* first: sp_release frees it */
    il_act act;
    int64_t M, N, K;
    int vec, ta;      /* vec: A' [K, Mp] is the input, M the vector axis (Mp: M rounded up to 16) */
    int64_t Mp;
    int copy;         /* A' is made in the workspace (A is not already [K, Mp]) */
    float beta;
    int64_t cs[2];    /* the bias C's broadcast strides over [M, N]; 0, 0 without one */
} smm_state;


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
    s->Mp = s->vec ? round16(s->M) : s->M;
    s->copy = s->vec && !(s->ta && s->Mp == s->M);
    int64_t *coff = malloc((size_t)(s->K + 1) * sizeof *coff);
    if (!coff || s->K * (s->vec ? s->Mp : 1) >= INT32_MAX) {
        free(coff);
        free(s);
        return il_kerr(c, IL_ERR_UNSUPPORTED, "sparse: out of memory or 32-bit offsets");
    }
    for (int64_t k = 0; k < s->K; k++) coff[k] = s->vec ? k * s->Mp : k;
    st = csr_build(&s->a, B->data, s->N, s->K, tb ? s->K : 1, tb ? 1 : s->N, coff, s->N, 0, alpha);
    free(coff);
    if (st) {
        sp_release(s);
        return il_kerr(c, IL_ERR_OOM, "out of memory for the compressed weight");
    }
    *workspace = s->vec ? (size_t)((s->copy ? s->K * s->Mp : 0) + s->N * s->Mp) * sizeof(float) : 0;
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
        int64_t Mp = s->Mp;
        float *at = c->workspace, *tmp = at + (s->copy ? K * Mp : 0);
        if (!s->copy) at = (float *)a;
        else if (s->ta)
            for (int64_t k = 0; k < K; k++) {
                memcpy(at + k * Mp, a + k * M, (size_t)M * sizeof(float));
                memset(at + k * Mp + M, 0, (size_t)(Mp - M) * sizeof(float));
            }
        else
            for (int64_t k = 0; k < K; k++) {
                for (int64_t i = 0; i < M; i++) at[k * Mp + i] = a[i * K + k];
                memset(at + k * Mp + M, 0, (size_t)(Mp - M) * sizeof(float));
            }
        spmm_all(c, &s->a, at, Mp, tmp, Mp);
        IL_PAR_FOR(c, i, M) {
            for (int64_t j = 0; j < N; j++) y[i * N + j] = tmp[j * Mp + i];
        }
    } else {
        for (int64_t i = 0; i < M; i++) spmm_all(c, &s->a, a + i * K, 1, y + i * N, 1);
    }
    IL_PAR_FOR(c, i, M) {
        float *yr = y + i * N;
        if (cb)
            for (int64_t j = 0; j < N; j++) yr[j] += s->beta * cb[i * s->cs[0] + j * s->cs[1]];
        il_act_row(&s->act, yr, N, 0.0f, NULL);
    }
    return IL_OK;
}

#define SPARSE(dom, op_, sup, prep, run_, what)                                                                 \
    {.domain = dom, .op = op_, .backend = "cpu", .name = "sparse", .dtypes = IL_DT(IL_F32), .priority = 1,          \
     .supports = sup, .prepare = prep, .run = run_, .release = sp_release,                                          \
     .doc = "constant weight with >= 50% zeros in CSR (prepared once), " what "; only --tactics timed picks it"}

const il_kernel il_kernels_sparse[] = {
    SPARSE("", "Conv", sconv_supports, sconv_prepare, sconv_run, "direct over a zero-padded, stride-phase-split input"),
    SPARSE("ai.inferlab", "FusedConv", sconv_supports, sconv_prepare, sconv_run,
           "direct over a zero-padded, stride-phase-split input, epilogue per channel"),
    SPARSE("", "Gemm", smm_supports, smm_prepare, smm_run, "sparse rows times A' (M >= 8) or dots"),
    SPARSE("", "MatMul", smm_supports, smm_prepare, smm_run, "sparse rows times A' (M >= 8) or dots"),
    SPARSE("ai.inferlab", "FusedGemm", smm_supports, smm_prepare, smm_run,
           "sparse rows times A' (M >= 8) or dots, epilogue per row"),
    SPARSE("ai.inferlab", "FusedMatMul", smm_supports, smm_prepare, smm_run,
           "sparse rows times A' (M >= 8) or dots, epilogue per row"),
    {0},
};
