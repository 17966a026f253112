/*
 * fused_conv.c - ai.inferlab FusedConv: Y = act(Conv(X, W) + B + Z), the convolution with its
 * bias, an optional residual input Z (same shape as Y) and an optional activation, as
 * passes/fuse_act.c and passes/fuse_residual.c make it. Attributes: Conv's, plus `activation`
 * and `activation_params` (see fused.h).
 *
 * The reference kernel is Conv's reference followed by the epilogue written as a loop: the
 * oracle. The fast kernel makes one pass over the output: for 2-D (and 1-D) convolutions it
 * runs im2col + sgemm over column tiles of the output small enough to stay in cache and applies
 * bias, residual and activation to each tile right after sgemm wrote it; depthwise convolutions
 * apply the epilogue to each output plane as soon as it is accumulated. Unfused, the same work
 * is Conv, Add and an activation, each reading and writing the whole tensor.
 */
#include "../cpu/compute.h"
#include "fused.h"

#include <omp.h>

/* An error unless t has the given rank and dims where both are known (-1: unknown). */
static il_status expect_shape(const il_kctx *c, const il_tensor *t, int rank, const int64_t *want, const char *what) {
    if (t->rank < 0 || rank < 0) return IL_OK;
    int bad = t->rank != rank;
    for (int d = 0; !bad && d < rank; d++) bad = t->dims[d] >= 0 && want[d] >= 0 && t->dims[d] != want[d];
    if (!bad) return IL_OK;
    char a[96], b[96];
    return il_kerr(c, IL_ERR_SHAPE, "%s has shape %s, expected %s", what, il_shape_str(t->rank, t->dims, a, sizeof a),
                   il_shape_str(rank, want, b, sizeof b));
}

static il_status fconv_infer(il_kctx *c) {
    const il_tensor *z = il_in(c, 3);
    il_act act;
    il_status st = il_act_parse(c, &act);
    if (st) return st;
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i] && c->in[i]->dtype != IL_F32)
            return il_kerr(c, IL_ERR_UNSUPPORTED, "input %d: unsupported dtype %s (FusedConv takes float32)", i,
                           il_dtype_name(c->in[i]->dtype));
    if ((st = il_op_find("", "Conv")->infer(c))) return st;
    return z ? expect_shape(c, z, c->out[0]->rank, c->out[0]->dims, "residual input Z") : IL_OK;
}

/* Conv's reference kernel, then y = act(y + z) element by element. */
static il_status fconv_ref(il_kctx *c) {
    il_act act;
    il_status st = il_act_parse(c, &act);
    if (!st) st = il_op_find("", "Conv")->ref(c);
    if (st) return st;
    const il_tensor *z = il_in(c, 3);
    float *y = c->out[0]->data;
    int64_t n = il_tensor_numel(c->out[0]);
    for (int64_t i = 0; i < n; i++) {
        double v = (double)y[i] + (z ? ((const float *)z->data)[i] : 0.0);
        y[i] = (float)il_act_d(&act, v);
    }
    return IL_OK;
}

/* ai.inferlab ScaledConv(X, W, B, Z, S): FusedConv of X * S, S [N, C, 1 ...] one scale per image
 * and input channel, as pass fuse-se-scale makes of squeeze-excitation's Mul(scale, x) feeding a
 * convolution. The product never exists as a tensor: the oneDNN kernel (dnnl_conv.c, dnnl_sconv.c)
 * scales the weight or one image at a time in cache. */
static il_status sconv_infer(il_kctx *c) {
    const il_tensor *x = c->in[0], *sc = il_in(c, 4);
    if (!sc) return il_kerr(c, IL_ERR_INVALID, "ScaledConv needs its scale input S (input 4)");
    il_status st = fconv_infer(c);
    if (st || x->rank < 0) return st;
    int64_t want[IL_MAX_RANK];
    for (int d = 0; d < x->rank; d++) want[d] = d < 2 ? x->dims[d] : 1;
    return expect_shape(c, sc, x->rank, want, "scale S ([N, C, 1, ...] of X)");
}

/* X * S into a new tensor, then FusedConv's reference on it. */
static il_status sconv_ref(il_kctx *c) {
    const il_tensor *X = c->in[0], *S = c->in[4];
    il_tensor *xs = il_tensor_new(IL_F32, X->rank, X->dims);
    if (!xs) return il_kerr(c, IL_ERR_OOM, "out of memory");
    int64_t nc = X->rank >= 2 ? X->dims[0] * X->dims[1] : 0, sp = nc ? il_tensor_numel(X) / nc : 0;
    const float *x = X->data, *s = S->data;
    float *o = xs->data;
    for (int64_t i = 0; i < nc; i++)
        for (int64_t p = 0; p < sp; p++) o[i * sp + p] = (float)((double)x[i * sp + p] * s[i]);
    il_tensor *in[4] = {xs, c->in[1], il_in(c, 2), il_in(c, 3)};
    il_kctx v = *c;
    v.in = in;
    v.n_in = 4;
    il_status st = fconv_ref(&v);
    il_tensor_free(xs);
    return st;
}

/* ai.inferlab PooledConv(X, W, B, Z) -> (Y, P): FusedConv, and P = GlobalAveragePool(Y) [N, M, 1,
 * ...], as pass fuse-se-pool makes of a convolution whose output a squeeze-excitation block pools.
 * The oneDNN kernel (dnnl_conv.c) takes each image's channel means while it is still in cache. */
static il_status pconv_view(il_kctx *c, il_kctx *v, il_tensor **in, il_tensor **out) {
    if (c->n_out != 2 || !c->out[1]) return il_kerr(c, IL_ERR_INVALID, "PooledConv has two outputs, Y and its pool P");
    *v = *c;
    in[0] = c->out[0];
    out[0] = c->out[1];
    v->in = in, v->out = out, v->n_in = 1, v->n_out = 1;
    return IL_OK;
}

/* Shape inference (ref 0) or the reference (1): FusedConv's, then GlobalAveragePool's on Y. */
static il_status pconv_steps(il_kctx *c, int ref) {
    il_kctx v;
    il_tensor *in[1], *out[1];
    il_status st = pconv_view(c, &v, in, out);
    if (!st) st = ref ? fconv_ref(c) : fconv_infer(c);
    const il_op *gap = il_op_find("", "GlobalAveragePool");
    return st ? st : ref ? gap->ref(&v) : gap->infer(&v);
}
static il_status pconv_infer(il_kctx *c) { return pconv_steps(c, 0); }
static il_status pconv_ref(il_kctx *c) { return pconv_steps(c, 1); }

/* 2-D geometry; a 1-D convolution is a 2-D one of height 1. */
typedef struct {
    int64_t H, W, OH, OW, KH, KW, SH, SW, DH, DW, PH, PW;
} geom2;

static geom2 to2d(const il_conv_geom *g) {
    int two = g->nsp == 2, L = g->nsp - 1;
    return (geom2){two ? g->in[0] : 1, g->in[L], two ? g->out[0] : 1, g->out[L], two ? g->k[0] : 1, g->k[L],
                   two ? g->stride[0] : 1, g->stride[L], two ? g->dil[0] : 1, g->dil[L], two ? g->pad[0] : 0,
                   g->pad[L]};
}

/* Output columns j in [0, n) whose tap j*s + off lands in [0, limit): the run [*lo, *hi). */
static void tap_range(int64_t n, int64_t s, int64_t off, int64_t limit, int64_t *lo, int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = limit - off <= 0 ? 0 : (limit - off + s - 1) / s;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
    if (*hi < *lo) *hi = *lo;
}

/* col[(ci*KH + kh)*KW + kw, oh*OW + ow] = x[ci, oh*SH + kh*DH - PH, ow*SW + kw*DW - PW], 0 in the pads. */
static void im2col(const geom2 *g, const float *x, int64_t cg, float *col, int threads) {
    int64_t rows = cg * g->KH * g->KW, osp = g->OH * g->OW;
#pragma omp parallel for num_threads(threads) if (threads > 1 && rows > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t ci = r / (g->KH * g->KW), kh = (r / g->KW) % g->KH, kw = r % g->KW, lo, hi;
        int64_t off = kw * g->DW - g->PW;
        tap_range(g->OW, g->SW, off, g->W, &lo, &hi);
        const float *xc = x + ci * g->H * g->W;
        float *dst = col + r * osp;
        for (int64_t oh = 0; oh < g->OH; oh++, dst += g->OW) {
            int64_t ih = oh * g->SH + kh * g->DH - g->PH;
            if (ih < 0 || ih >= g->H) {
                memset(dst, 0, (size_t)g->OW * sizeof(float));
                continue;
            }
            const float *src = xc + ih * g->W + off;
            for (int64_t j = 0; j < lo; j++) dst[j] = 0;
            if (g->SW == 1) memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
            else
                for (int64_t j = lo; j < hi; j++) dst[j] = src[j * g->SW];
            for (int64_t j = hi; j < g->OW; j++) dst[j] = 0;
        }
    }
}

/* One input channel per group: the shared direct loop per output plane (engine/cpu/conv_fast.c),
 * then the epilogue while the plane (at most a few tens of KB) is still in cache. */
static void depthwise(il_kctx *c, const il_conv_geom *cg, const geom2 *g, const il_act *act, const float *x,
                      const float *w, const float *b, const float *z, float *y) {
    int64_t nch = cg->n * cg->m, osp = g->OH * g->OW;
    IL_PAR_FOR(c, nm, nch) {
        float *yc = y + nm * osp;
        il_depthwise_plane(cg, x, w, nm / cg->m, nm % cg->m, yc);
        il_act_row(act, yc, osp, b ? b[nm % cg->m] : 0.0f, z ? z + nm * osp : NULL);
    }
}

/* One image: per group, Y_g = W_g x col over column tiles, each tile finished by the epilogue. */
static void conv_image(const il_kctx *c, const il_conv_geom *cg, const geom2 *g, const il_act *act, const float *x,
                       const float *w, const float *b, const float *z, float *y, float *col, int pointwise,
                       int threads) {
    int64_t cgc = cg->c / cg->group, mg = cg->m / cg->group, K = cgc * g->KH * g->KW, osp = g->OH * g->OW;
    int64_t tile = il_tile_rows(mg); /* columns per tile: mg x tile floats stay in cache */
    if (tile < 64) tile = 64;
    for (int64_t grp = 0; grp < cg->group; grp++) {
        const float *xg = x + grp * cgc * g->H * g->W;
        if (!pointwise) im2col(g, xg, cgc, col, threads);
        const float *src = pointwise ? xg : col;
        float *yg = y + grp * mg * osp;
        const float *zg = z ? z + grp * mg * osp : NULL;
        for (int64_t j0 = 0; j0 < osp; j0 += tile) {
            int64_t jt = osp - j0 < tile ? osp - j0 : tile;
            /* With a bias the tile starts as the bias and the product is added to it (beta 1):
             * OpenBLAS then skips its separate pass that clears C for beta 0 (9% of MobileNet
             * v2's time, measured), and the epilogue has no bias left to add. */
            if (b)
                for (int64_t mi = 0; mi < mg; mi++) {
                    float *yr = yg + mi * osp + j0, bv = b[grp * mg + mi];
                    for (int64_t j = 0; j < jt; j++) yr[j] = bv;
                }
            il_sgemm(0, 0, mg, jt, K, 1.0f, w + grp * mg * K, K, src + j0, osp, b ? 1.0f : 0.0f, yg + j0, osp);
#pragma omp parallel for num_threads(threads) if (threads > 1 && mg * jt > 16384) schedule(static)
            for (int64_t mi = 0; mi < mg; mi++)
                il_act_row(act, yg + mi * osp + j0, jt, 0.0f, zg ? zg + mi * osp + j0 : NULL);
        }
    }
}

/* What prepare works out once per node and shape: the geometry, the activation, and how the
 * work is split; run only computes. */
typedef struct {
    il_conv_geom cg;
    geom2 g;
    il_act act;
    int mode;        /* 0: nothing to do, 1: 3-D / channel-less (Conv's kernel + epilogue), 2: depthwise, 3: gemm */
    int pointwise, per_image;
    size_t colsz;    /* floats of one im2col buffer */
} fconv_state;

static int fconv_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1);
    return x && w && x->dtype == IL_F32 && x->rank >= 3 && w->rank == x->rank && il_shape_known(x) &&
           il_shape_known(w);
}

static il_status fconv_prepare(il_kctx *c, void **state, size_t *workspace) {
    const il_tensor *X = c->in[0], *Wt = c->in[1];
    fconv_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_status st = il_act_parse(c, &s->act);
    int64_t kernel[IL_MAX_SPATIAL];
    for (int i = 0; i + 2 < Wt->rank; i++) kernel[i] = Wt->dims[2 + i];
    if (!st) st = il_window_geom(c, X, kernel, 0, 1, &s->cg);
    if (st) { free(s); return st; }
    il_conv_geom *cg = &s->cg;
    cg->group = il_attr_int(c->node, "group", 1);
    cg->m = Wt->dims[0];
    int64_t cgc = cg->c / cg->group, mg = cg->m / cg->group, K = cgc * cg->k_sp;
    int threads = c->threads > 0 ? c->threads : 1;
    *workspace = 0;
    if (cg->n * cg->m * cg->out_sp == 0) s->mode = 0;
    else if (cg->nsp > 2 || K == 0) s->mode = 1;
    else if (cgc == 1) s->mode = 2;
    else {
        s->mode = 3;
        s->pointwise = 1;
        for (int d = 0; d < cg->nsp; d++)
            s->pointwise &= cg->k[d] == 1 && cg->stride[d] == 1 && cg->pad[d] == 0 && cg->pad_end[d] == 0;
        s->colsz = s->pointwise ? 1 : (size_t)(K * cg->out_sp);
        s->per_image = il_conv_per_image(cg->n, threads, mg * cg->out_sp * K);
        *workspace = s->colsz * (size_t)(s->per_image ? threads : 1) * sizeof(float);
    }
    if (s->mode >= 2) s->g = to2d(cg);
    *state = s;
    return IL_OK;
}

static il_status fconv_run(il_kctx *c) {
    const fconv_state *s = c->state;
    const il_conv_geom *cg = &s->cg;
    const il_tensor *Bt = il_in(c, 2), *Z = il_in(c, 3);
    float *y = c->out[0]->data;
    const float *x = c->in[0]->data, *w = c->in[1]->data, *b = Bt ? Bt->data : NULL, *z = Z ? Z->data : NULL;
    int threads = c->threads > 0 ? c->threads : 1;
    switch (s->mode) {
    case 0: return IL_OK;
    case 1: {
        il_status st = il_op_find("", "Conv")->fast(c);
        if (st) return st;
        int64_t planes = cg->n * cg->m;
        IL_PAR_FOR(c, p, planes) il_act_row(&s->act, y + p * cg->out_sp, cg->out_sp, 0.0f, z ? z + p * cg->out_sp : NULL);
        return IL_OK;
    }
    case 2: depthwise(c, cg, &s->g, &s->act, x, w, b, z, y); return IL_OK;
    }
    float *col = c->workspace;
    int64_t xs = cg->c * cg->in_sp, ys = cg->m * cg->out_sp;
    if (s->per_image) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t n = 0; n < cg->n; n++)
            conv_image(c, cg, &s->g, &s->act, x + n * xs, w, b, z ? z + n * ys : NULL, y + n * ys,
                       col + (size_t)omp_get_thread_num() * s->colsz, s->pointwise, 1);
    } else {
        for (int64_t n = 0; n < cg->n; n++)
            conv_image(c, cg, &s->g, &s->act, x + n * xs, w, b, z ? z + n * ys : NULL, y + n * ys, col, s->pointwise,
                       threads);
    }
    return IL_OK;
}

/* PooledConv without oneDNN: FusedConv's kernel, then each plane's mean (plain NCHW). */
static int pconv_supports(const il_kctx *c) { return c->n_out == 2 && c->out[1] && fconv_supports(c); }

static il_status pconv_run(il_kctx *c) {
    il_status st = fconv_run(c);
    const il_tensor *Y = c->out[0];
    int64_t n = Y->dims[0], ch = Y->dims[1];
    if (!st) il_cpu_chan_means(Y->data, 0, n, ch, n * ch > 0 ? il_tensor_numel(Y) / (n * ch) : 0, c->out[1]->data,
                              c->threads, NULL);
    return st;
}

const il_op il_ops_fused_conv[] = {
    {"ai.inferlab", "FusedConv", 1, fconv_infer, fconv_ref, NULL, 0},
    {"ai.inferlab", "ScaledConv", 1, sconv_infer, sconv_ref, NULL, 0},
    {"ai.inferlab", "PooledConv", 1, pconv_infer, pconv_ref, NULL, 0},
    {0},
};

const il_kernel il_kernels_fused_conv[] = {
    {.domain = "ai.inferlab", .op = "FusedConv", .backend = "cpu", .name = "im2col-blas", .dtypes = IL_DT(IL_F32),
     .priority = 10, .supports = fconv_supports, .prepare = fconv_prepare, .run = fconv_run, .release = free,
     .doc = "im2col + OpenBLAS sgemm over cache-sized column tiles, epilogue per tile; direct loop for depthwise; "
            "geometry and split prepared once"},
    {.domain = "ai.inferlab", .op = "PooledConv", .backend = "cpu", .name = "im2col-blas", .dtypes = IL_DT(IL_F32),
     .priority = 10, .supports = pconv_supports, .prepare = fconv_prepare, .run = pconv_run, .release = free,
     .doc = "FusedConv's im2col-blas kernel, then each plane's mean for the pool output"},
    {0},
};
