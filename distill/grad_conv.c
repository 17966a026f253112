/*
 * grad_conv.c - backward of Conv (2-D, any groups, strides, dilations, pads) and of the
 * pools: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
 *
 * Conv in training is im2col + gemm per image, forward and backward, with the images of the
 * batch spread over the threads (see conv_train_forward for why not BLAS's threads); the
 * weight gradient is summed per thread and the partial sums added in thread order.
 * The geometry comes from the engine's il_window_geom, the same the forward kernel used.
 */
#include "grad.h"

#include <omp.h>
#include <stdlib.h>

/* Output columns ow in [*lo, *hi) whose input column ow*s + off lies in [0, w). */
static inline void ow_range(int64_t ow_n, int64_t s, int64_t off, int64_t w, int64_t *lo, int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s, b = w - off <= 0 ? 0 : (w - off + s - 1) / s;
    *lo = a < ow_n ? a : ow_n;
    *hi = b < ow_n ? b : ow_n;
    if (*hi < *lo) *hi = *lo;
}

/* Columns of image x (one group, cg channels) into col[r, j0 + o] with row stride ld:
 * row r = (ci, kh, kw), zero where the window hangs over the padding. */
#define IM2COL_BODY(T, x, col, ld, j0, g, cg)                                                        \
    for (int64_t r = 0; r < (cg) * (g)->k_sp; r++) {                                                 \
        int64_t ci = r / (g)->k_sp, kh = (r % (g)->k_sp) / (g)->k[1], kw = r % (g)->k[1];             \
        int64_t OW = (g)->out[1], S = (g)->stride[1], off = kw * (g)->dil[1] - (g)->pad[1], lo, hi;  \
        ow_range(OW, S, off, (g)->in[1], &lo, &hi);                                                  \
        const T *xc = (x) + ci * (g)->in_sp;                                                         \
        T *dst = (col) + r * (ld) + (j0);                                                            \
        for (int64_t oh = 0; oh < (g)->out[0]; oh++, dst += OW) {                                    \
            int64_t ih = oh * (g)->stride[0] + kh * (g)->dil[0] - (g)->pad[0];                       \
            if (ih < 0 || ih >= (g)->in[0]) {                                                        \
                memset(dst, 0, (size_t)OW * sizeof(T));                                              \
                continue;                                                                            \
            }                                                                                        \
            const T *src = xc + ih * (g)->in[1] + off;                                               \
            for (int64_t j = 0; j < lo; j++) dst[j] = 0;                                             \
            if (S == 1) memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(T));                   \
            else                                                                                     \
                for (int64_t j = lo; j < hi; j++) dst[j] = src[j * S];                               \
            for (int64_t j = hi; j < OW; j++) dst[j] = 0;                                            \
        }                                                                                            \
    }

/* The adjoint of IM2COL_BODY: add each column entry back into the input position it came from. */
#define COL2IM_BODY(T, col, ld, j0, dx, g, cg)                                                       \
    for (int64_t r = 0; r < (cg) * (g)->k_sp; r++) {                                                 \
        int64_t ci = r / (g)->k_sp, kh = (r % (g)->k_sp) / (g)->k[1], kw = r % (g)->k[1];             \
        int64_t OW = (g)->out[1], S = (g)->stride[1], off = kw * (g)->dil[1] - (g)->pad[1], lo, hi;  \
        ow_range(OW, S, off, (g)->in[1], &lo, &hi);                                                  \
        T *xc = (dx) + ci * (g)->in_sp;                                                              \
        const T *src = (col) + r * (ld) + (j0);                                                      \
        for (int64_t oh = 0; oh < (g)->out[0]; oh++, src += OW) {                                    \
            int64_t ih = oh * (g)->stride[0] + kh * (g)->dil[0] - (g)->pad[0];                       \
            if (ih < 0 || ih >= (g)->in[0]) continue;                                                \
            T *dst = xc + ih * (g)->in[1] + off;                                                     \
            for (int64_t j = lo; j < hi; j++) dst[j * S] += src[j];                                  \
        }                                                                                            \
    }

/* The geometry as 2-D: 1-D convs and pools are seen as height 1. */
il_status gr_geom2d(const gr_ctx *c, const int64_t *kernel, int ceil_mode, il_conv_geom *g) {
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

/* Scratch memory kept with the node between steps (one block: gr_saved_free frees it), so
 * the column buffers are not faulted in afresh on every call. */
static void *scratch(void **saved, size_t bytes) {
    size_t *blk = *saved;
    if (!blk || blk[0] < bytes) {
        free(blk);
        blk = *saved = malloc(bytes + 64);
        if (!blk) return NULL;
        blk[0] = bytes;
    }
    return (char *)blk + 64;
}

/* Conv geometry for the training kernels, with groups and output channels. */
il_status gr_conv_geom(const gr_ctx *c, il_conv_geom *g) {
    il_tensor *w = c->in[1];
    int64_t kernel[2] = {w->dims[2], w->rank > 3 ? w->dims[3] : -1};
    il_status st = gr_geom2d(c, kernel, 0, g);
    if (st) return st;
    g->group = il_attr_int(c->node, "group", 1);
    g->m = w->dims[0];
    return IL_OK;
}

/* Threads for a loop over n images: never more than images. */
static int img_threads(const gr_ctx *c, int64_t n) { return (int)(c->threads < n ? c->threads : n > 0 ? n : 1); }

/* Training forward of Conv: the engine's im2col + gemm, but with the images of the batch in
 * parallel and one single-threaded gemm per image. In training the images of a batch are many
 * and small; running BLAS's own threads inside OpenMP's would oversubscribe the cores (both
 * pools spin-wait for each other), which measured several times slower on 8-16 cores. */
static il_status conv_train_forward(gr_ctx *c) {
    il_tensor *x = c->in[0], *w = c->in[1], *b = gr_in(c, 2), *y = c->out[0];
    il_conv_geom g;
    il_status st = gr_conv_geom(c, &g);
    if (st) return st;
    int64_t cg = g.c / g.group, mg = g.m / g.group, K = cg * g.k_sp, OS = g.out_sp;
    int nt = img_threads(c, g.n);
    GR_FLOATS(x->dtype, {
        T *buf = scratch(c->saved, (size_t)(nt * K * OS) * sizeof(T));
        if (!buf) return gr_err(c, IL_ERR_OOM, "out of memory for the column buffers");
        const T *X = x->data, *W = w->data, *Bv = b ? b->data : NULL;
        T *Y = y->data;
        openblas_set_num_threads(1);
        _Pragma("omp parallel for num_threads(nt) schedule(static)")
        for (int64_t n = 0; n < g.n; n++) {
            T *col = buf + (int64_t)omp_get_thread_num() * K * OS;
            for (int64_t grp = 0; grp < g.group; grp++) {
                const T *xg = X + (n * g.c + grp * cg) * g.in_sp;
                IM2COL_BODY(T, xg, col, OS, 0, &g, cg)
                gr_gemm(0, 0, mg, OS, K, 1.0, W + grp * mg * K, K, col, OS, 0.0, Y + (n * g.m + grp * mg) * OS, OS);
            }
            if (Bv)
                for (int64_t m = 0; m < g.m; m++)
                    for (int64_t o = 0; o < OS; o++) Y[(n * g.m + m) * OS + o] += Bv[m];
        }
        openblas_set_num_threads(c->threads);
    })
    return IL_OK;
}

/* Backward: per image (in parallel, single-threaded gemms as above)
 *   dW_t += dY_n col_n^T   into a private copy per thread, summed in thread order after,
 *   dcol  = W^T dY_n       then col2im into dX_n,
 * so the result depends on the data and the thread count only. */
static il_status conv_backward(gr_ctx *c) {
    il_tensor *x = c->in[0], *w = c->in[1], *dy = c->dout[0];
    il_tensor *dx = gr_din(c, 0), *dw = gr_din(c, 1), *db = gr_din(c, 2);
    il_conv_geom g;
    il_status st = gr_conv_geom(c, &g);
    if (st) return st;
    int64_t cg = g.c / g.group, mg = g.m / g.group, K = cg * g.k_sp, OS = g.out_sp, WN = g.m * K;
    int nt = img_threads(c, g.n);
    GR_FLOATS(x->dtype, {
        /* per thread: col, dcol, dW */
        int64_t per = 2 * K * OS + WN;
        T *buf = scratch(c->saved, (size_t)(nt * per) * sizeof(T));
        if (!buf) return gr_err(c, IL_ERR_OOM, "out of memory for the column buffers");
        const T *X = x->data, *W = w->data, *DY = dy->data;
        if (db) {
            T *DB = db->data;
            IL_PAR_FOR(c, m, g.m) {
                double s = 0;
                for (int64_t n = 0; n < g.n; n++)
                    for (int64_t o = 0; o < OS; o++) s += DY[(n * g.m + m) * OS + o];
                DB[m] += (T)s;
            }
        }
        openblas_set_num_threads(1);
        _Pragma("omp parallel num_threads(nt)")
        {
            int tid = omp_get_thread_num();
            T *col = buf + tid * per, *dcol = col + K * OS, *dwt = dcol + K * OS;
            if (dw) memset(dwt, 0, (size_t)WN * sizeof(T));
            _Pragma("omp for schedule(static)")
            for (int64_t n = 0; n < g.n; n++)
                for (int64_t grp = 0; grp < g.group; grp++) {
                    const T *dyn = DY + (n * g.m + grp * mg) * OS;
                    if (dw) {
                        const T *xg = X + (n * g.c + grp * cg) * g.in_sp;
                        IM2COL_BODY(T, xg, col, OS, 0, &g, cg)
                        gr_gemm(0, 1, mg, K, OS, 1.0, dyn, OS, col, OS, 1.0, dwt + grp * mg * K, K);
                    }
                    if (dx) {
                        T *dxg = (T *)dx->data + (n * g.c + grp * cg) * g.in_sp;
                        gr_gemm(1, 0, K, OS, mg, 1.0, W + grp * mg * K, K, dyn, OS, 0.0, dcol, OS);
                        COL2IM_BODY(T, dcol, OS, 0, dxg, &g, cg)
                    }
                }
        }
        openblas_set_num_threads(c->threads);
        if (dw) {
            T *DW = dw->data;
            IL_PAR_FOR(c, i, WN) {
                T s = 0;
                for (int t = 0; t < nt; t++) s += buf[t * per + 2 * K * OS + i];
                DW[i] += s;
            }
        }
    })
    return IL_OK;
}

/* MaxPool / AveragePool: each output's gradient goes back to its window, plane by plane. */
static il_status pool_backward_kind(gr_ctx *c, int is_max) {
    il_tensor *x = c->in[0], *y = c->out[0], *dy = c->dout[0], *dx = gr_din(c, 0);
    if (!dx) return IL_OK;
    if (c->n_out > 1 && c->out[1]) return gr_err(c, IL_ERR_UNSUPPORTED, "training does not support the Indices output");
    il_conv_geom g;
    il_status st = gr_geom2d(c, NULL, (int)il_attr_int(c->node, "ceil_mode", 0), &g);
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
    {"Conv", conv_backward, conv_train_forward},
    {"MaxPool", maxpool_backward, NULL},
    {"AveragePool", avgpool_backward, NULL},
    {"GlobalAveragePool", gap_backward, NULL},
    {"GlobalMaxPool", gmp_backward, NULL},
    {0},
};
