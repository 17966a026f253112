/*
 * grad_conv.c - backward of Conv (2-D, any groups, strides, dilations, pads) and of the
 * pools: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
 *
 * Conv backward is im2col + gemm, the forward's method run in reverse. Images go in chunks:
 * the columns of a chunk of images sit side by side in one [Cg*k, nb*out] matrix so that
 *   dW_g += dY_g[Mg, nb*out] x col^T        (one gemm per chunk and group)
 *   dcol  = W_g^T x dY_g                    (then col2im adds dcol into dX)
 * are large gemms BLAS runs well on every thread, and im2col/col2im run in parallel over the
 * images of the chunk (disjoint outputs, so the sums do not depend on the thread count).
 * The geometry comes from the engine's il_window_geom, the same the forward kernel used.
 */
#include "grad.h"

#include <stdlib.h>

/* Columns of image x (one group, cg channels) into col[r, j0 + o] with row stride ld. */
#define IM2COL_BODY(T, x, col, ld, j0, g, cg)                                                        \
    for (int64_t r = 0; r < (cg) * (g)->k_sp; r++) {                                                 \
        int64_t ci = r / (g)->k_sp, kh = (r % (g)->k_sp) / (g)->k[1], kw = r % (g)->k[1];             \
        const T *xc = (x) + ci * (g)->in_sp;                                                         \
        T *dst = (col) + r * (ld) + (j0);                                                            \
        for (int64_t oh = 0; oh < (g)->out[0]; oh++) {                                               \
            int64_t ih = oh * (g)->stride[0] + kh * (g)->dil[0] - (g)->pad[0];                       \
            for (int64_t ow = 0; ow < (g)->out[1]; ow++) {                                           \
                int64_t iw = ow * (g)->stride[1] + kw * (g)->dil[1] - (g)->pad[1];                   \
                dst[oh * (g)->out[1] + ow] =                                                         \
                    (ih >= 0 && ih < (g)->in[0] && iw >= 0 && iw < (g)->in[1]) ? xc[ih * (g)->in[1] + iw] : 0; \
            }                                                                                        \
        }                                                                                            \
    }

#define COL2IM_BODY(T, col, ld, j0, dx, g, cg)                                                       \
    for (int64_t r = 0; r < (cg) * (g)->k_sp; r++) {                                                 \
        int64_t ci = r / (g)->k_sp, kh = (r % (g)->k_sp) / (g)->k[1], kw = r % (g)->k[1];             \
        T *xc = (dx) + ci * (g)->in_sp;                                                              \
        const T *src = (col) + r * (ld) + (j0);                                                      \
        for (int64_t oh = 0; oh < (g)->out[0]; oh++) {                                               \
            int64_t ih = oh * (g)->stride[0] + kh * (g)->dil[0] - (g)->pad[0];                       \
            if (ih < 0 || ih >= (g)->in[0]) continue;                                                \
            for (int64_t ow = 0; ow < (g)->out[1]; ow++) {                                           \
                int64_t iw = ow * (g)->stride[1] + kw * (g)->dil[1] - (g)->pad[1];                   \
                if (iw >= 0 && iw < (g)->in[1]) xc[ih * (g)->in[1] + iw] += src[oh * (g)->out[1] + ow]; \
            }                                                                                        \
        }                                                                                            \
    }

/* The geometry as 2-D: 1-D convs and pools are seen as height 1. */
static il_status geom2d(const gr_ctx *c, const int64_t *kernel, int ceil_mode, il_conv_geom *g) {
    il_kctx k = gr_kctx(c);
    il_status st = il_window_geom(&k, c->in[0], kernel, ceil_mode, 1, g);
    if (st) return st;
    if (g->nsp == 1) {
        g->in[1] = g->in[0], g->out[1] = g->out[0], g->k[1] = g->k[0], g->stride[1] = g->stride[0];
        g->dil[1] = g->dil[0], g->pad[1] = g->pad[0], g->pad_end[1] = g->pad_end[0];
        g->in[0] = g->out[0] = g->k[0] = g->stride[0] = g->dil[0] = 1, g->pad[0] = g->pad_end[0] = 0;
        g->nsp = 2;
    }
    if (g->nsp != 2) return gr_err(c, IL_ERR_UNSUPPORTED, "training supports 1-D and 2-D windows, not %d-D", g->nsp);
    g->in_sp = g->in[0] * g->in[1], g->out_sp = g->out[0] * g->out[1], g->k_sp = g->k[0] * g->k[1];
    return IL_OK;
}

static il_status conv_backward(gr_ctx *c) {
    il_tensor *x = c->in[0], *w = c->in[1], *dy = c->dout[0];
    il_tensor *dx = gr_din(c, 0), *dw = gr_din(c, 1), *db = gr_din(c, 2);
    int64_t kernel[2] = {w->dims[2], w->rank > 3 ? w->dims[3] : -1};
    il_conv_geom g;
    il_status st = geom2d(c, kernel, 0, &g);
    if (st) return st;
    g.group = il_attr_int(c->node, "group", 1);
    g.m = w->dims[0];
    int64_t cg = g.c / g.group, mg = g.m / g.group, K = cg * g.k_sp, OS = g.out_sp;
    /* Chunk so the two column matrices stay near 16M elements. */
    int64_t nb = (int64_t)(16 << 20) / (2 * K * OS + 1);
    if (nb < 1) nb = 1;
    if (nb > g.n) nb = g.n;
    int64_t ld = nb * OS;
    GR_FLOATS(x->dtype, {
        const T *X = x->data, *W = w->data, *DY = dy->data;
        T *col = malloc((size_t)(K * ld) * sizeof(T)), *dcol = malloc((size_t)(K * ld) * sizeof(T));
        T *dyc = malloc((size_t)(mg * ld) * sizeof(T));
        if (!col || !dcol || !dyc) {
            free(col), free(dcol), free(dyc);
            return gr_err(c, IL_ERR_OOM, "out of memory for the column buffers");
        }
        if (db) {
            T *DB = db->data;
            IL_PAR_FOR(c, m, g.m) {
                double s = 0;
                for (int64_t n = 0; n < g.n; n++)
                    for (int64_t o = 0; o < OS; o++) s += DY[(n * g.m + m) * OS + o];
                DB[m] += (T)s;
            }
        }
        for (int64_t n0 = 0; n0 < g.n; n0 += nb) {
            int64_t cnt = g.n - n0 < nb ? g.n - n0 : nb, cols = cnt * OS;
            for (int64_t grp = 0; grp < g.group; grp++) {
                IL_PAR_FOR(c, j, cnt) {
                    const T *dyn = DY + ((n0 + j) * g.m + grp * mg) * OS;
                    for (int64_t m = 0; m < mg; m++) memcpy(dyc + m * cols + j * OS, dyn + m * OS, (size_t)OS * sizeof(T));
                    if (dw) {
                        const T *xn = X + ((n0 + j) * g.c + grp * cg) * g.in_sp;
                        IM2COL_BODY(T, xn, col, cols, j * OS, &g, cg)
                    }
                }
                if (dw) gr_gemm(0, 1, mg, K, cols, 1.0, dyc, cols, col, cols, 1.0, (T *)dw->data + grp * mg * K, K);
                if (dx) {
                    gr_gemm(1, 0, K, cols, mg, 1.0, W + grp * mg * K, K, dyc, cols, 0.0, dcol, cols);
                    T *DX = dx->data;
                    IL_PAR_FOR(c, j, cnt) {
                        T *dxn = DX + ((n0 + j) * g.c + grp * cg) * g.in_sp;
                        COL2IM_BODY(T, dcol, cols, j * OS, dxn, &g, cg)
                    }
                }
            }
        }
        free(col), free(dcol), free(dyc);
    })
    return IL_OK;
}

/* MaxPool / AveragePool: each output's gradient goes back to its window, plane by plane. */
static il_status pool_backward_kind(gr_ctx *c, int is_max) {
    il_tensor *x = c->in[0], *y = c->out[0], *dy = c->dout[0], *dx = gr_din(c, 0);
    if (!dx) return IL_OK;
    if (c->n_out > 1 && c->out[1]) return gr_err(c, IL_ERR_UNSUPPORTED, "training does not support the Indices output");
    il_conv_geom g;
    il_status st = geom2d(c, NULL, (int)il_attr_int(c->node, "ceil_mode", 0), &g);
    if (st) return st;
    int include_pad = (int)il_attr_int(c->node, "count_include_pad", 0);
    int64_t planes = g.n * g.c;
    GR_FLOATS(x->dtype, {
        const T *X = x->data, *Y = y->data, *DY = dy->data;
        T *DX = dx->data;
        IL_PAR_FOR(c, p, planes) {
            const T *xp = X + p * g.in_sp;
            T *dxp = DX + p * g.in_sp;
            for (int64_t oh = 0; oh < g.out[0]; oh++)
                for (int64_t ow = 0; ow < g.out[1]; ow++) {
                    int64_t o = p * g.out_sp + oh * g.out[1] + ow, best = -1, cnt = 0;
                    for (int64_t kh = 0; kh < g.k[0]; kh++)
                        for (int64_t kw = 0; kw < g.k[1]; kw++) {
                            int64_t ih = oh * g.stride[0] + kh * g.dil[0] - g.pad[0];
                            int64_t iw = ow * g.stride[1] + kw * g.dil[1] - g.pad[1];
                            /* count_include_pad counts the pads but not the ceil_mode overhang */
                            if (ih < g.in[0] + g.pad_end[0] && iw < g.in[1] + g.pad_end[1]) cnt += include_pad;
                            if (ih < 0 || ih >= g.in[0] || iw < 0 || iw >= g.in[1]) continue;
                            if (!include_pad) cnt++;
                            if (is_max && best < 0 && xp[ih * g.in[1] + iw] == Y[o]) best = ih * g.in[1] + iw;
                        }
                    if (is_max) {
                        if (best >= 0) dxp[best] += DY[o];
                        continue;
                    }
                    if (!cnt) continue;
                    T share = DY[o] / (T)cnt;
                    for (int64_t kh = 0; kh < g.k[0]; kh++)
                        for (int64_t kw = 0; kw < g.k[1]; kw++) {
                            int64_t ih = oh * g.stride[0] + kh * g.dil[0] - g.pad[0];
                            int64_t iw = ow * g.stride[1] + kw * g.dil[1] - g.pad[1];
                            if (ih >= 0 && ih < g.in[0] && iw >= 0 && iw < g.in[1]) dxp[ih * g.in[1] + iw] += share;
                        }
                }
        }
    })
    return IL_OK;
}

static il_status maxpool_backward(gr_ctx *c) { return pool_backward_kind(c, 1); }
static il_status avgpool_backward(gr_ctx *c) { return pool_backward_kind(c, 0); }

/* Global pools: one output per (n, c) plane of any spatial rank. */
static il_status global_backward(gr_ctx *c, int is_max) {
    il_tensor *x = c->in[0], *y = c->out[0], *dy = c->dout[0], *dx = gr_din(c, 0);
    if (!dx) return IL_OK;
    int64_t planes = x->dims[0] * x->dims[1], sp = il_tensor_numel(x) / (planes ? planes : 1);
    GR_FLOATS(x->dtype, {
        const T *X = x->data, *Y = y->data, *DY = dy->data;
        T *DX = dx->data;
        IL_PAR_FOR(c, p, planes) {
            if (is_max) {
                for (int64_t i = 0; i < sp; i++)
                    if (X[p * sp + i] == Y[p]) {
                        DX[p * sp + i] += DY[p];
                        break;
                    }
            } else {
                T share = DY[p] / (T)sp;
                for (int64_t i = 0; i < sp; i++) DX[p * sp + i] += share;
            }
        }
    })
    return IL_OK;
}

static il_status gap_backward(gr_ctx *c) { return global_backward(c, 0); }
static il_status gmp_backward(gr_ctx *c) { return global_backward(c, 1); }

const gr_op gr_ops_conv[] = {
    {"Conv", conv_backward, NULL},
    {"MaxPool", maxpool_backward, NULL},
    {"AveragePool", avgpool_backward, NULL},
    {"GlobalAveragePool", gap_backward, NULL},
    {"GlobalMaxPool", gmp_backward, NULL},
    {0},
};
