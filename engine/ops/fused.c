/*
 * fused.c - fused ops of the ai.inferlab domain that passes/ rewrite graphs into: FusedGemm and
 * FusedMatMul (matrix product + bias + activation), SiLU, ChannelShuffle, and ai.inferlab versions of Gelu,
 * LayerNormalization and HardSwish for models whose opset predates the standard op.
 * FusedConv is in fused_conv.c, Attention in fused_attention.c.
 *
 * Each op has a reference kernel written as the formula in double (the oracle) and a fast
 * float32 kernel that makes one pass over memory: the product is computed tile by tile with
 * sgemm, and the bias and activation are applied to each tile right after, while it is in
 * cache, instead of running separate Add and activation kernels over the whole output.
 */
#include "fused.h"

#include <stdio.h>

il_status il_act_parse(const il_kctx *c, il_act *a) {
    static const struct { const char *name; il_act_kind kind; int np; } acts[] = {
        {"Relu", IL_ACT_RELU, 0},       {"Clip", IL_ACT_CLIP, 2},         {"LeakyRelu", IL_ACT_LEAKY, 1},
        {"Sigmoid", IL_ACT_SIGMOID, 0}, {"HardSwish", IL_ACT_HSWISH, 0},   {"HardSigmoid", IL_ACT_HSIGMOID, 2},
        {"Gelu", IL_ACT_GELU, 0},       {"GeluTanh", IL_ACT_GELU_TANH, 0}, {"Tanh", IL_ACT_TANH, 0},
        {"SiLU", IL_ACT_SILU, 0},
    };
    const char *name = il_attr_string(c->node, "activation", NULL);
    const float *p;
    int np = il_attr_floats(c->node, "activation_params", &p);
    a->kind = IL_ACT_NONE;
    a->a = a->b = 0;
    if (!name) return IL_OK;
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
        if (strcmp(acts[i].name, name)) continue;
        if (np != acts[i].np)
            return il_kerr(c, IL_ERR_INVALID, "activation %s takes %d activation_params, got %d", name, acts[i].np, np);
        a->kind = acts[i].kind;
        if (np > 0) a->a = p[0];
        if (np > 1) a->b = p[1];
        return IL_OK;
    }
    return il_kerr(c, IL_ERR_INVALID, "unknown activation '%s'", name);
}

/* The standard op a fused op extends, for its shape checks. */
static const il_op *std_op(const char *name) { return il_op_find("", name); }

static il_status need_f32(const il_kctx *c) {
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i] && c->in[i]->dtype != IL_F32)
            return il_kerr(c, IL_ERR_UNSUPPORTED, "input %d: unsupported dtype %s (fused ops take float32)", i,
                           il_dtype_name(c->in[i]->dtype));
    return IL_OK;
}

/* ---------------------------------------------------------------- FusedGemm */

/* Y = act(alpha * A' B' + beta * C), with Gemm's attributes (transA, transB, alpha, beta). */
static il_status fgemm_infer(il_kctx *c) {
    il_act a;
    il_status st = need_f32(c);
    if (!st) st = il_act_parse(c, &a);
    return st ? st : std_op("Gemm")->infer(c);
}

/* What both FusedGemm kernels read first: the epilogue, sizes, transposes, scales and C's
 * broadcast strides (cs, zero when C is absent). */
typedef struct {
    il_act act;
    int64_t m, n, k, cs[2];
    int ta, tb;
    double alpha, beta;
} fgemm_setup;

static il_status fgemm_prepare(const il_kctx *c, fgemm_setup *f) {
    il_status st = il_act_parse(c, &f->act);
    if (st) return st;
    f->ta = il_attr_int(c->node, "transA", 0) != 0, f->tb = il_attr_int(c->node, "transB", 0) != 0;
    f->m = c->out[0]->dims[0], f->n = c->out[0]->dims[1], f->k = c->in[0]->dims[f->ta ? 0 : 1];
    f->alpha = il_attr_float(c->node, "alpha", 1.0f), f->beta = il_attr_float(c->node, "beta", 1.0f);
    f->cs[0] = f->cs[1] = 0;
    if (il_in(c, 2)) il_broadcast_strides(il_in(c, 2), 2, c->out[0]->dims, f->cs);
    return IL_OK;
}

static il_status fgemm_ref(il_kctx *c) {
    const il_tensor *A = c->in[0], *B = c->in[1], *C = il_in(c, 2);
    fgemm_setup f;
    il_status st = fgemm_prepare(c, &f);
    if (st) return st;
    const float *a = A->data, *b = B->data;
    float *y = c->out[0]->data;
    for (int64_t i = 0; i < f.m; i++)
        for (int64_t j = 0; j < f.n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < f.k; p++)
                acc += (double)a[f.ta ? p * f.m + i : i * f.k + p] * b[f.tb ? j * f.k + p : p * f.n + j];
            double v = f.alpha * acc + (C ? f.beta * ((const float *)C->data)[i * f.cs[0] + j * f.cs[1]] : 0);
            y[i * f.n + j] = (float)il_act_d(&f.act, v);
        }
    return IL_OK;
}

static il_status fgemm_fast(il_kctx *c) {
    const il_tensor *A = c->in[0], *B = c->in[1], *C = il_in(c, 2);
    fgemm_setup f;
    il_status st = fgemm_prepare(c, &f);
    if (st) return st;
    int64_t m = f.m, n = f.n, k = f.k;
    const float *a = A->data, *b = B->data, *cd = C ? C->data : NULL;
    float *y = c->out[0]->data;
    int64_t tile = il_tile_rows(n);
    for (int64_t i0 = 0; i0 < m; i0 += tile) {
        int64_t rows = m - i0 < tile ? m - i0 : tile;
        float *yt = y + i0 * n;
        if (cd) /* C scaled by beta first, so sgemm accumulates into it */
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < n; j++) yt[i * n + j] = (float)f.beta * cd[(i0 + i) * f.cs[0] + j * f.cs[1]];
        if (k > 0)
            il_sgemm(f.ta, f.tb, rows, n, k, (float)f.alpha, f.ta ? a + i0 : a + i0 * k, f.ta ? m : k, b, f.tb ? k : n,
                     cd ? 1.0f : 0.0f, yt, n);
        else if (!cd)
            memset(yt, 0, (size_t)(rows * n) * sizeof(float));
        IL_PAR_FOR(c, i, rows) il_act_row(&f.act, yt + i * n, n, 0.0f, NULL);
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- FusedMatMul */

/* Y = act(A @ B + bias): MatMul's batch broadcasting (A and B of rank >= 2), bias [N] or absent. */
static il_status fmm_infer(il_kctx *c) {
    const il_tensor *a = il_in(c, 0), *b = il_in(c, 1), *bias = il_in(c, 2);
    il_act act;
    il_status st = need_f32(c);
    if (!st) st = il_act_parse(c, &act);
    if (st) return st;
    if (!a || !b) return il_kerr(c, IL_ERR_INVALID, "needs inputs A and B");
    if ((a->rank >= 0 && a->rank < 2) || (b->rank >= 0 && b->rank < 2))
        return il_kerr(c, IL_ERR_SHAPE, "A and B need rank >= 2, got %d and %d", a->rank, b->rank);
    if ((st = std_op("MatMul")->infer(c))) return st;
    int64_t n = b->rank >= 2 ? b->dims[b->rank - 1] : -1;
    if (bias && bias->rank >= 0 && (bias->rank != 1 || (n >= 0 && bias->dims[0] >= 0 && bias->dims[0] != n)))
        return il_kerr(c, IL_ERR_SHAPE, "bias must have shape [%lld]", (long long)n);
    return IL_OK;
}

/* Offsets of batch bi of the output into A and B (elements), by numpy broadcasting of the
 * leading dims. */
static void mm_batch(const il_tensor *A, const il_tensor *B, const il_tensor *Y, int64_t bi, int64_t *ao, int64_t *bo) {
    int yr = Y->rank - 2;
    int64_t as = A->dims[A->rank - 2] * A->dims[A->rank - 1], bs = B->dims[B->rank - 2] * B->dims[B->rank - 1];
    *ao = *bo = 0;
    int64_t astride = as, bstride = bs;
    for (int d = yr - 1; d >= 0; d--) {
        int64_t idx = bi % Y->dims[d];
        bi /= Y->dims[d];
        int da = d - (yr - (A->rank - 2)), db = d - (yr - (B->rank - 2));
        if (da >= 0) {
            if (A->dims[da] != 1) *ao += idx * astride;
            astride *= A->dims[da];
        }
        if (db >= 0) {
            if (B->dims[db] != 1) *bo += idx * bstride;
            bstride *= B->dims[db];
        }
    }
}

static il_status fmm_ref(il_kctx *c) {
    const il_tensor *A = c->in[0], *B = c->in[1], *bias = il_in(c, 2);
    il_tensor *Y = c->out[0];
    il_act act;
    il_status st = il_act_parse(c, &act);
    if (st) return st;
    int64_t m = A->dims[A->rank - 2], k = A->dims[A->rank - 1], n = B->dims[B->rank - 1];
    int64_t batches = (m * n) != 0 ? il_tensor_numel(Y) / (m * n) : 0;
    const float *a = A->data, *b = B->data, *bv = bias ? bias->data : NULL;
    float *y = Y->data;
    for (int64_t bi = 0; bi < batches; bi++) {
        int64_t ao, bo;
        mm_batch(A, B, Y, bi, &ao, &bo);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double acc = bv ? bv[j] : 0;
                for (int64_t p = 0; p < k; p++) acc += (double)a[ao + i * k + p] * b[bo + p * n + j];
                y[(bi * m + i) * n + j] = (float)il_act_d(&act, acc);
            }
    }
    return IL_OK;
}

/* rows x n = a[rows, k] @ b[k, n], then bias and activation, tile by tile. */
static void mm_tiled(const il_kctx *c, const il_act *act, const float *a, const float *b, const float *bias,
                     float *y, int64_t rows, int64_t n, int64_t k) {
    int64_t tile = il_tile_rows(n);
    for (int64_t i0 = 0; i0 < rows; i0 += tile) {
        int64_t r = rows - i0 < tile ? rows - i0 : tile;
        float *yt = y + i0 * n;
        if (k > 0) il_sgemm(0, 0, r, n, k, 1.0f, a + i0 * k, k, b, n, 0.0f, yt, n);
        else memset(yt, 0, (size_t)(r * n) * sizeof(float));
        if (bias) {
            IL_PAR_FOR(c, i, r) {
                float *row = yt + i * n;
                for (int64_t j = 0; j < n; j++) row[j] = il_act_f(act, row[j] + bias[j]);
            }
        } else {
            IL_PAR_FOR(c, i, r) il_act_row(act, yt + i * n, n, 0.0f, NULL);
        }
    }
}

static il_status fmm_fast(il_kctx *c) {
    const il_tensor *A = c->in[0], *B = c->in[1], *bias = il_in(c, 2);
    il_tensor *Y = c->out[0];
    il_act act;
    il_status st = il_act_parse(c, &act);
    if (st) return st;
    int64_t m = A->dims[A->rank - 2], k = A->dims[A->rank - 1], n = B->dims[B->rank - 1];
    const float *bv = bias ? bias->data : NULL;
    if (m * n == 0) return IL_OK;
    if (B->rank == 2) { /* weights: every row of A, whatever its batch dims, meets the same B */
        mm_tiled(c, &act, A->data, B->data, bv, Y->data, il_tensor_numel(Y) / n, n, k);
        return IL_OK;
    }
    int64_t batches = il_tensor_numel(Y) / (m * n);
    for (int64_t bi = 0; bi < batches; bi++) {
        int64_t ao, bo;
        mm_batch(A, B, Y, bi, &ao, &bo);
        mm_tiled(c, &act, (const float *)A->data + ao, (const float *)B->data + bo, bv, (float *)Y->data + bi * m * n,
                 m, n, k);
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- SiLU */

/* y = x * sigmoid(x) (PyTorch's SiLU / Swish), one op instead of Sigmoid and Mul. */
static il_status silu_infer(il_kctx *c) {
    il_status st = need_f32(c);
    if (st) return st;
    if (!il_in(c, 0)) return il_kerr(c, IL_ERR_INVALID, "expects 1 input");
    il_same_as(c, 0, 0);
    return IL_OK;
}

static il_status silu_ref(il_kctx *c) {
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    int64_t n = il_tensor_numel(c->in[0]);
    for (int64_t i = 0; i < n; i++) y[i] = (float)(x[i] / (1.0 + exp(-(double)x[i])));
    return IL_OK;
}

static il_status silu_fast(il_kctx *c) {
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    int64_t n = il_tensor_numel(c->in[0]);
    int64_t blocks = (n + 4095) / 4096;
    IL_PAR_FOR(c, blk, blocks) {
        int64_t e = (blk + 1) * 4096 < n ? (blk + 1) * 4096 : n;
        for (int64_t i = blk * 4096; i < e; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- ChannelShuffle */

/* ShuffleNet's channel shuffle, which exporters spell Reshape [N,C,H,W] -> [N,G,C/G,H,W],
 * Transpose (0,2,1,3,4), Reshape back (passes/fuse_shuffle.c makes it one op): output channel
 * j*G + g is input channel g*(C/G) + j. One op, so a native-layout kernel can keep the chain
 * native through it. Any dtype, rank >= 3 (N, C, spatial dims).
 *
 * A ShuffleNet unit joins its two branches with a Concat before the shuffle and splits the
 * result in two with Slices after it: with several inputs X1..Xn the op shuffles their join along
 * the channels, and with several outputs Y1..Ym it splits the shuffled channels into m equal
 * parts, so that the three copies are one gather. */
typedef struct {
    int64_t groups, total; /* channels of the join (-1 unknown) */
} shuffle_geom;

static il_status shuffle_check(il_kctx *c, shuffle_geom *s) {
    const il_tensor *x = il_in(c, 0);
    s->groups = il_attr_int(c->node, "groups", 0);
    s->total = 0;
    if (!x) return il_kerr(c, IL_ERR_INVALID, "expects at least 1 input");
    if (s->groups < 1) return il_kerr(c, IL_ERR_INVALID, "groups must be at least 1, got %lld", (long long)s->groups);
    for (int i = 0; i < c->n_in; i++) {
        const il_tensor *t = c->in[i];
        if (!t) return il_kerr(c, IL_ERR_INVALID, "input %d is missing", i);
        if (t->dtype != x->dtype)
            return il_kerr(c, IL_ERR_INVALID, "input %d is %s, input 0 %s", i, il_dtype_name(t->dtype), il_dtype_name(x->dtype));
        if (t->rank < 0 || x->rank < 0) {
            s->total = -1;
            continue;
        }
        if (t->rank < 3) return il_kerr(c, IL_ERR_INVALID, "input %d of rank %d: needs [N, C, spatial...]", i, t->rank);
        if (t->rank != x->rank) return il_kerr(c, IL_ERR_SHAPE, "input %d has rank %d, input 0 %d", i, t->rank, x->rank);
        for (int d = 0; d < x->rank; d++)
            if (d != 1 && t->dims[d] >= 0 && x->dims[d] >= 0 && t->dims[d] != x->dims[d])
                return il_kerr(c, IL_ERR_SHAPE, "input %d has dim %d of %lld, input 0 %lld", i, d, (long long)t->dims[d],
                               (long long)x->dims[d]);
        s->total = s->total < 0 || t->dims[1] < 0 ? -1 : s->total + t->dims[1];
    }
    if (s->total >= 0 && s->total % s->groups)
        return il_kerr(c, IL_ERR_INVALID, "%lld channels do not split into %lld groups", (long long)s->total,
                       (long long)s->groups);
    if (s->total >= 0 && s->total % c->n_out)
        return il_kerr(c, IL_ERR_INVALID, "%lld channels do not split into %d equal outputs", (long long)s->total, c->n_out);
    return IL_OK;
}

static il_status shuffle_infer(il_kctx *c) {
    shuffle_geom s;
    il_status st = shuffle_check(c, &s);
    if (st) return st;
    const il_tensor *x = c->in[0];
    int64_t dims[IL_MAX_RANK];
    for (int d = 0; d < x->rank; d++) { /* a dim input 0 leaves unknown may be known from another */
        dims[d] = x->dims[d];
        for (int i = 1; i < c->n_in && dims[d] < 0; i++)
            if (c->in[i]->rank == x->rank) dims[d] = c->in[i]->dims[d];
    }
    if (x->rank >= 2) dims[1] = s.total < 0 ? -1 : s.total / c->n_out;
    for (int i = 0; i < c->n_out; i++) il_set_out(c, i, x->dtype, x->rank, dims);
    return IL_OK;
}

static il_status shuffle_ref(il_kctx *c) {
    shuffle_geom s;
    il_status st = shuffle_check(c, &s);
    if (st) return st;
    const il_tensor *x = c->in[0];
    int64_t n = x->dims[0], per = s.total / s.groups, part = s.total / c->n_out;
    size_t plane = (size_t)il_dims_prod(x->dims, 2, x->rank) * il_dtype_size(x->dtype);
    for (int64_t o = 0; o < s.total; o++) {
        int64_t src = o % s.groups * per + o / s.groups; /* channel of the join */
        int i = 0;
        while (src >= c->in[i]->dims[1]) src -= c->in[i++]->dims[1];
        const il_tensor *xi = c->in[i];
        il_tensor *y = c->out[o / part];
        for (int64_t b = 0; b < n; b++)
            memcpy((char *)y->data + (size_t)(b * part + o % part) * plane,
                   (const char *)xi->data + (size_t)(b * xi->dims[1] + src) * plane, plane);
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- standard ops, any opset */

/* Gelu (ONNX opset 20), LayerNormalization (17) and HardSwish (14) as ai.inferlab ops, so a
 * pass can fuse them into models of older opsets. Same attributes and kernels as the
 * standard op: these forward to it (and `opt --portable` lowers them to older ops). */
#define FORWARD(NAME)                                                                              \
    static il_status NAME##_fwd_infer(il_kctx *c) { return std_op(#NAME)->infer(c); }              \
    static il_status NAME##_fwd_ref(il_kctx *c) { return std_op(#NAME)->ref(c); }                  \
    static il_status NAME##_fwd_fast(il_kctx *c) {                                                 \
        const il_op *op = std_op(#NAME);                                                           \
        return op->fast ? op->fast(c) : op->ref(c);                                                \
    }
FORWARD(Gelu)
FORWARD(LayerNormalization)
FORWARD(HardSwish)

const il_op il_ops_fused[] = {
    {"ai.inferlab", "FusedGemm", 1, fgemm_infer, fgemm_ref, fgemm_fast, 0},
    {"ai.inferlab", "FusedMatMul", 1, fmm_infer, fmm_ref, fmm_fast, 0},
    {"ai.inferlab", "SiLU", 1, silu_infer, silu_ref, silu_fast, 0},
    {"ai.inferlab", "Gelu", 1, Gelu_fwd_infer, Gelu_fwd_ref, Gelu_fwd_fast, 0},
    {"ai.inferlab", "LayerNormalization", 1, LayerNormalization_fwd_infer, LayerNormalization_fwd_ref,
     LayerNormalization_fwd_fast, 0},
    {"ai.inferlab", "HardSwish", 1, HardSwish_fwd_infer, HardSwish_fwd_ref, HardSwish_fwd_fast, 0},
    {"ai.inferlab", "ChannelShuffle", 1, shuffle_infer, shuffle_ref, 0, 0},
    {0},
};
