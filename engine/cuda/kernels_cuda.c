/*
 * kernels_cuda.c - the cuda backend's kernels in the registry: float32 NCHW forward kernels
 * built on the device layer (cuda.h: im2col + cuBLAS sgemm, BatchNorm, Clip, pools, copies).
 *
 * Contract beyond engine.h's: c->in[i]->data and c->out[i]->data are device pointers, shapes
 * are the plan's (fixed at build), c->workspace is device memory of the size prepare asked
 * for. The executor (plan_device.c) uploads constants once and moves other values between host
 * and device where the placement changes. supports() keeps each kernel to what it computes
 * exactly like the reference (within float32 rounding): 2-D windows, same-shape Add,
 * activations Relu/Clip; the planner runs everything else on the cpu.
 *
 * These are the forward ops the GPU trainer (distill/trainer_cuda.c) used to list in a table of
 * its own; this is their one home now.
 */
#include "../cpu/compute.h"
#include "../ops/fused.h"

#ifdef IL_HAVE_CUDA
#include "cuda.h"

static int f32(const il_tensor *t) { return t && t->dtype == IL_F32 && il_shape_known(t); }

/* float32 only: a half-precision plan places these nodes on the cpu (engine/cuda/ops_cuda.c
 * and conv_cudnn.c have half kernels). */
static int all_f32(const il_kctx *c) {
    if (c->precision == IL_PREC_FP16 || c->precision == IL_PREC_BF16) return 0;
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i] && !f32(c->in[i])) return 0;
    for (int i = 0; i < c->n_out; i++)
        if (c->out[i] && !f32(c->out[i])) return 0;
    return 1;
}

/* Geometry of a 2-D window op (Conv with its weight, pools without). */
static il_status win2d(const il_kctx *c, const il_tensor *w, int ceil_mode, il_conv_geom *g) {
    int64_t k[2];
    if (w) k[0] = w->dims[2], k[1] = w->dims[3];
    il_status st = il_window_geom(c, c->in[0], w ? k : NULL, ceil_mode, 1, g);
    if (st) return st;
    if (w) g->group = il_attr_int(c->node, "group", 1), g->m = w->dims[0];
    return IL_OK;
}

static il_cuda_win to_win(const il_conv_geom *g) {
    il_cuda_win w = {g->c, g->in[0], g->in[1], g->out[0], g->out[1], g->k[0], g->k[1],
                     g->stride[0], g->stride[1], g->dil[0], g->dil[1], g->pad[0], g->pad[1]};
    return w;
}

/* ---------------------------------------------------------------- Conv / FusedConv */

typedef struct {
    il_conv_geom g;
    il_act act;
    int64_t nb; /* images per chunk */
} conv_state;

/* Images per chunk so that the columns stay under 256 MB of workspace. */
static int64_t chunk_of(int64_t n, int64_t per_image) {
    int64_t nb = ((int64_t)64 << 20) / (per_image > 0 ? per_image : 1);
    return nb < 1 ? 1 : nb > n ? n : nb;
}

static int conv_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1);
    if (!all_f32(c) || x->rank != 4 || !w || w->rank != 4) return 0;
    if (strcmp(c->node->op_type, "FusedConv")) return 1;
    il_act a;
    if (il_act_parse(c, &a)) return 0;
    il_error_clear();
    return a.kind == IL_ACT_NONE || a.kind == IL_ACT_RELU || a.kind == IL_ACT_CLIP;
}

static il_status conv_prepare(il_kctx *c, void **state, size_t *ws) {
    conv_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_status st = win2d(c, c->in[1], 0, &s->g);
    if (!st && !strcmp(c->node->op_type, "FusedConv")) st = il_act_parse(c, &s->act);
    if (st) { free(s); return st; }
    const il_conv_geom *g = &s->g;
    int64_t cg = g->c / g->group, mg = g->m / g->group, K = cg * g->k_sp;
    s->nb = chunk_of(g->n, (K + mg) * g->out_sp);
    *ws = (size_t)((K + mg) * s->nb * g->out_sp) * sizeof(float);
    *state = s;
    return IL_OK;
}

/* im2col per chunk of images and group, one cuBLAS sgemm, then the channel-major result into
 * NCHW with the bias; FusedConv adds Z and clips afterwards. */
static il_status conv_run(il_kctx *c) {
    const conv_state *s = c->state;
    const il_conv_geom *g = &s->g;
    int64_t cg = g->c / g->group, mg = g->m / g->group, K = cg * g->k_sp, OS = g->out_sp, nb = s->nb;
    il_cuda_win w = to_win(g);
    const float *X = c->in[0]->data, *W = c->in[1]->data, *B = il_in(c, 2) ? il_in(c, 2)->data : NULL;
    float *Y = c->out[0]->data;
    il_status st = IL_OK;
    for (int64_t b0 = 0; b0 < g->n && !st; b0 += nb) {
        int64_t m = g->n - b0 < nb ? g->n - b0 : nb, L = m * OS;
        float *col = c->workspace, *yt = col + K * L;
        for (int64_t grp = 0; grp < g->group && !st; grp++) {
            il_cuda_im2col(X + b0 * g->c * g->in_sp, m, &w, grp * cg, cg, col);
            st = il_cuda_sgemm(0, 0, mg, L, K, 1.0f, W + grp * mg * K, K, col, L, 0.0f, yt, L);
            il_cuda_cm_to_nchw(yt, mg, m, OS, g->m, grp * mg, B, Y + b0 * g->m * OS);
        }
    }
    int64_t ny = il_tensor_numel(c->out[0]);
    const il_tensor *Z = il_in(c, 3);
    if (!st && Z && !strcmp(c->node->op_type, "FusedConv")) il_cuda_add(Y, Z->data, ny, Y);
    if (!st && s->act.kind == IL_ACT_RELU) il_cuda_clip(Y, ny, 0.0f, INFINITY, Y);
    if (!st && s->act.kind == IL_ACT_CLIP) il_cuda_clip(Y, ny, s->act.a, s->act.b, Y);
    return st;
}

/* ---------------------------------------------------------------- elementwise, norms, pools */

/* Clip's bounds: attributes before opset 11, constant inputs 1 and 2 after (host copies are
 * what the planner hands supports/prepare; run only sees device data, so they are read once). */
typedef struct {
    float lo, hi;
} clip_state;

static int clip_supports(const il_kctx *c) {
    if (!all_f32(c)) return 0;
    for (int i = 1; i < c->n_in; i++)
        if (c->in[i] && (!((c->const_mask >> i) & 1) || !c->in[i]->data)) return 0;
    return 1;
}

static il_status clip_prepare(il_kctx *c, void **state, size_t *ws) {
    clip_state *s = malloc(sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    s->lo = 0, s->hi = INFINITY;
    if (!strcmp(c->node->op_type, "Clip")) {
        s->lo = -INFINITY;
        if (c->opset < 11) {
            s->lo = il_attr_float(c->node, "min", -INFINITY);
            s->hi = il_attr_float(c->node, "max", INFINITY);
        } else {
            if (il_in(c, 1)) s->lo = ((const float *)c->in[1]->data)[0];
            if (il_in(c, 2)) s->hi = ((const float *)c->in[2]->data)[0];
        }
    }
    *state = s;
    *ws = 0;
    return IL_OK;
}

static il_status clip_run(il_kctx *c) {
    const clip_state *s = c->state;
    il_cuda_clip(c->in[0]->data, il_tensor_numel(c->in[0]), s->lo, s->hi, c->out[0]->data);
    return IL_OK;
}

static int add_supports(const il_kctx *c) {
    const il_tensor *a = c->in[0], *b = il_in(c, 1);
    if (!all_f32(c) || !b || a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

static il_status add_run(il_kctx *c) {
    il_cuda_add(c->in[0]->data, c->in[1]->data, il_tensor_numel(c->out[0]), c->out[0]->data);
    return IL_OK;
}

static int bn_supports(const il_kctx *c) {
    return all_f32(c) && c->in[0]->rank >= 2 && c->n_out == 1 && !il_attr_int(c->node, "training_mode", 0);
}

static il_status bn_run(il_kctx *c) {
    const il_tensor *x = c->in[0];
    int64_t N = x->dims[0], C = x->dims[1], S = il_tensor_numel(x) / (N * C > 0 ? N * C : 1);
    il_cuda_bn_infer(x->data, N, C, S, c->in[1]->data, c->in[2]->data, c->in[3]->data, c->in[4]->data,
                     il_attr_float(c->node, "epsilon", 1e-5f), c->out[0]->data);
    return IL_OK;
}

static int pool_supports(const il_kctx *c) {
    return all_f32(c) && c->in[0]->rank == 4 && c->n_out == 1 && !il_attr_int(c->node, "storage_order", 0);
}

static il_status maxpool_prepare(il_kctx *c, void **state, size_t *ws) {
    il_conv_geom *g = malloc(sizeof *g);
    if (!g) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_status st = win2d(c, NULL, (int)il_attr_int(c->node, "ceil_mode", 0), g);
    if (st) { free(g); return st; }
    *state = g;
    *ws = (size_t)il_tensor_numel(c->out[0]) * sizeof(int32_t); /* the winners, unused here */
    return IL_OK;
}

static il_status maxpool_run(il_kctx *c) {
    const il_conv_geom *g = c->state;
    il_cuda_win w = to_win(g);
    il_cuda_maxpool(c->in[0]->data, g->n * g->c, &w, c->out[0]->data, c->workspace);
    return IL_OK;
}

static il_status gap_run(il_kctx *c) {
    int64_t ny = il_tensor_numel(c->out[0]), nx = il_tensor_numel(c->in[0]);
    il_cuda_gap(c->in[0]->data, ny, nx / (ny ? ny : 1), c->out[0]->data);
    return IL_OK;
}

/* Reshape-like ops: the bytes do not change. */
static int copy_supports(const il_kctx *c) {
    return c->in[0] && c->out[0] && c->in[0]->dtype == c->out[0]->dtype && il_shape_known(c->in[0]) &&
           il_shape_known(c->out[0]);
}

static il_status copy_run(il_kctx *c) {
    return il_cuda_copy(c->out[0]->data, c->in[0]->data, il_tensor_bytes(c->out[0]));
}

/* ---------------------------------------------------------------- Gemm */

typedef struct {
    int ta, tb;
    int64_t M, K, N, lda, ldb, cm, cn;
    float alpha, beta;
} gemm_state;

static int gemm_supports(const il_kctx *c) {
    const il_tensor *a = c->in[0], *b = il_in(c, 1), *cc = il_in(c, 2);
    if (!all_f32(c) || !b || a->rank != 2 || b->rank != 2) return 0;
    if (!cc) return 1;
    int64_t M = il_attr_int(c->node, "transA", 0) ? a->dims[1] : a->dims[0];
    int64_t N = il_attr_int(c->node, "transB", 0) ? b->dims[0] : b->dims[1];
    int64_t cm = cc->rank == 2 ? cc->dims[0] : 1, cn = cc->rank >= 1 ? cc->dims[cc->rank - 1] : 1;
    return cc->rank <= 2 && (cm == 1 || cm == M) && (cn == 1 || cn == N);
}

static il_status gemm_prepare(il_kctx *c, void **state, size_t *ws) {
    gemm_state *d = calloc(1, sizeof *d);
    if (!d) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const il_tensor *a = c->in[0], *b = c->in[1], *cc = il_in(c, 2);
    d->ta = (int)il_attr_int(c->node, "transA", 0), d->tb = (int)il_attr_int(c->node, "transB", 0);
    d->alpha = il_attr_float(c->node, "alpha", 1.0f), d->beta = il_attr_float(c->node, "beta", 1.0f);
    d->M = d->ta ? a->dims[1] : a->dims[0], d->K = d->ta ? a->dims[0] : a->dims[1];
    d->N = d->tb ? b->dims[0] : b->dims[1], d->lda = a->dims[1], d->ldb = b->dims[1];
    if (cc) d->cm = cc->rank == 2 ? cc->dims[0] : 1, d->cn = cc->rank >= 1 ? cc->dims[cc->rank - 1] : 1;
    *state = d;
    *ws = 0;
    return IL_OK;
}

static il_status gemm_run(il_kctx *c) {
    const gemm_state *d = c->state;
    float beta = 0.0f, *y = c->out[0]->data;
    if (d->cm) il_cuda_broadcast_rows(c->in[2]->data, d->cm, d->cn, d->beta, d->M, d->N, y), beta = 1.0f;
    return il_cuda_sgemm(d->ta, d->tb, d->M, d->N, d->K, d->alpha, c->in[0]->data, d->lda, c->in[1]->data, d->ldb,
                         beta, y, d->N);
}

#define F32 IL_DT(IL_F32)
#define CUDA_K(DOM, OP, NAME, SUP, PREP, RUN, REL, DOC)                                                            \
    {.domain = DOM, .op = OP, .backend = "cuda", .name = NAME, .dtypes = F32, .priority = 10, .supports = SUP,     \
     .prepare = PREP, .run = RUN, .release = REL, .doc = DOC}

const il_kernel il_kernels_cuda[] = {
    CUDA_K("", "Conv", "im2col-cublas", conv_supports, conv_prepare, conv_run, free,
           "2-D conv: im2col per chunk of images + cuBLAS sgemm + bias"),
    CUDA_K("ai.inferlab", "FusedConv", "im2col-cublas", conv_supports, conv_prepare, conv_run, free,
           "2-D conv + bias (+ residual) (+ Relu/Clip): im2col + cuBLAS sgemm"),
    CUDA_K("", "Relu", "cuda", all_f32, clip_prepare, clip_run, free, "elementwise"),
    CUDA_K("", "Clip", "cuda", clip_supports, clip_prepare, clip_run, free, "elementwise, constant bounds"),
    CUDA_K("", "Add", "cuda", add_supports, NULL, add_run, NULL, "same-shape operands only"),
    CUDA_K("", "BatchNormalization", "cuda", bn_supports, NULL, bn_run, NULL, "inference mode"),
    CUDA_K("", "MaxPool", "cuda", pool_supports, maxpool_prepare, maxpool_run, free, "2-D windows"),
    CUDA_K("", "GlobalAveragePool", "cuda", all_f32, NULL, gap_run, NULL, "one mean per plane"),
    CUDA_K("", "Gemm", "cublas", gemm_supports, gemm_prepare, gemm_run, free, "cuBLAS sgemm, C broadcast by rows"),
    CUDA_K("", "Flatten", "copy", copy_supports, NULL, copy_run, NULL, "a device copy"),
    CUDA_K("", "Reshape", "copy", copy_supports, NULL, copy_run, NULL, "a device copy"),
    CUDA_K("", "Identity", "copy", copy_supports, NULL, copy_run, NULL, "a device copy"),
    CUDA_K("", "Squeeze", "copy", copy_supports, NULL, copy_run, NULL, "a device copy"),
    CUDA_K("", "Unsqueeze", "copy", copy_supports, NULL, copy_run, NULL, "a device copy"),
    {0},
};
#else
const il_kernel il_kernels_cuda[] = {{0}};
#endif
