/*
 * conv_fast.c - float32 Conv and ConvTranspose on the CPU.
 *
 * Conv: for each image and group, im2col lays the input windows out as a [Cg*k, out] matrix
 * so the convolution is one sgemm W_g[Mg, Cg*k] x col. A 1x1 conv with stride 1 and no pads
 * needs no im2col (the input already is that matrix); a depthwise conv (one input channel per
 * group) is a direct loop per channel, since a gemm with K = k would waste BLAS.
 * ConvTranspose: col = W_g^T x X_g, then col2im scatters each column into the output.
 *
 * Threads: when one image's gemm is big, BLAS spreads it over its threads; when it is small
 * (below IL_SMALL_GEMM, where OpenBLAS stays on the calling thread) the images themselves run in
 * parallel, each thread with its own column buffer. im2col and col2im stay on one thread
 * between BLAS calls: alternating OpenMP regions with OpenBLAS's own pthreads makes the two
 * pools spin against each other (several times slower on a loaded machine, measured).
 * OMP_WAIT_POLICY=passive softens that for the remaining cases.
 * The geometry (pads, output sizes) comes checked from engine/ops/conv.c.
 */
#include "compute.h"

#include <omp.h>

/* Output indices j in [0, n) with 0 <= j*s + off < limit form one run [*lo, *hi): the taps of
 * the last spatial dim that land inside the input (im2col) or the output (col2im). */
static void tap_range(int64_t n, int64_t s, int64_t off, int64_t limit, int64_t *lo, int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = limit - off <= 0 ? 0 : (limit - off + s - 1) / s;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
    if (*hi < *lo) *hi = *lo;
}

/* Offset of the input row that outer output position o (all dims but the last) meets through
 * tap kk, or -1 in the padding. a and b are the outer index spaces (conv: out -> in). */
static int64_t outer_offset(const il_conv_geom *g, const int64_t *o, const int64_t *kk, const int64_t *dst_dims) {
    int64_t flat = 0;
    for (int d = 0; d < g->nsp - 1; d++) {
        int64_t p = o[d] * g->stride[d] + kk[d] * g->dil[d] - g->pad[d];
        if (p < 0 || p >= dst_dims[d]) return -1;
        flat = flat * dst_dims[d] + p;
    }
    return flat * dst_dims[g->nsp - 1];
}

/* col[r, o] = x[ci, o*s + kk*d - pad] (0 in the padding), r = ci*k_sp + kk. */
static void im2col(const il_conv_geom *g, const float *x, int64_t cg, float *col) {
    int L = g->nsp - 1;
    int64_t rows = cg * g->k_sp, ow = g->out[L], outer = g->out_sp / ow;
    for (int64_t r = 0; r < rows; r++) {
        int64_t kk[IL_MAX_SPATIAL], o[IL_MAX_SPATIAL], lo, hi;
        il_unravel(r % g->k_sp, g->nsp, g->k, kk);
        const float *xc = x + (r / g->k_sp) * g->in_sp;
        float *dst = col + r * g->out_sp;
        int64_t off = kk[L] * g->dil[L] - g->pad[L], s = g->stride[L];
        tap_range(ow, s, off, g->in[L], &lo, &hi);
        for (int64_t q = 0; q < outer; q++, dst += ow) {
            il_unravel(q, L, g->out, o);
            int64_t base = outer_offset(g, o, kk, g->in);
            if (base < 0) {
                memset(dst, 0, (size_t)ow * sizeof(float));
                continue;
            }
            const float *src = xc + base + off;
            for (int64_t j = 0; j < lo; j++) dst[j] = 0;
            if (s == 1) memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
            else
                for (int64_t j = lo; j < hi; j++) dst[j] = src[j * s];
            for (int64_t j = hi; j < ow; j++) dst[j] = 0;
        }
    }
}

/* One output of a depthwise plane with every bound checked: the taps in (kh, kw) order. */
static float dw_at(const float *xc, const float *wc, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t ih0,
                   int64_t iw0) {
    float s = 0;
    for (int64_t kh = 0; kh < KH; kh++) {
        int64_t ih = ih0 + kh;
        if (ih < 0 || ih >= H) continue;
        for (int64_t kw = 0; kw < KW; kw++) {
            int64_t iw = iw0 + kw;
            if (iw >= 0 && iw < W) s += wc[kh * KW + kw] * xc[ih * W + iw];
        }
    }
    return s;
}

/* Outputs [jl, jh) of a row whose 3x3 windows lie inside the input (rows a, b, c, column
 * j*S - P onwards): all nine taps in one pass, so the row is written once instead of being
 * read and written back per tap. Built twice (AVX2+FMA and baseline), the CPU picks at load. */
__attribute__((target_clones("arch=x86-64-v3", "default"))) static void
dw3_interior(float *restrict yr, const float *restrict a, const float *restrict b, const float *restrict c,
             const float *restrict w, int64_t jl, int64_t jh, int64_t S, int64_t P) {
    float a0 = w[0], a1 = w[1], a2 = w[2], b0 = w[3], b1 = w[4], b2 = w[5], c0 = w[6], c1 = w[7], c2 = w[8];
    if (S == 1) {
        for (int64_t j = jl; j < jh; j++) {
            int64_t k = j - P;
            yr[j] = a0 * a[k] + a1 * a[k + 1] + a2 * a[k + 2] + b0 * b[k] + b1 * b[k + 1] + b2 * b[k + 2] + c0 * c[k] +
                    c1 * c[k + 1] + c2 * c[k + 2];
        }
    } else {
        for (int64_t j = jl; j < jh; j++) {
            int64_t k = j * S - P;
            yr[j] = a0 * a[k] + a1 * a[k + 1] + a2 * a[k + 2] + b0 * b[k] + b1 * b[k + 1] + b2 * b[k + 2] + c0 * c[k] +
                    c1 * c[k + 1] + c2 * c[k + 2];
        }
    }
}

/* The 3x3 depthwise plane (dilation 1, any stride and pads): the interior rows and columns
 * through dw3_interior, the border through dw_at. MobileNet v2 at 224x224 spent 38% of its
 * time in the general loop below. */
static void dw3_plane(const float *xc, const float *wc, float *yc, int64_t H, int64_t W, int64_t OH, int64_t OW,
                      int64_t SH, int64_t SW, int64_t PH, int64_t PW) {
    int64_t jl = (PW + SW - 1) / SW, jh = W - 3 + PW >= 0 ? (W - 3 + PW) / SW + 1 : 0;
    if (jl > OW) jl = OW;
    if (jh > OW) jh = OW;
    if (jh < jl) jh = jl;
    for (int64_t oh = 0; oh < OH; oh++) {
        int64_t ih0 = oh * SH - PH;
        float *yr = yc + oh * OW;
        int64_t from = 0;
        if (ih0 >= 0 && ih0 + 2 < H) {
            const float *a = xc + ih0 * W;
            dw3_interior(yr, a, a + W, a + 2 * W, wc, jl, jh, SW, PW);
            for (int64_t j = 0; j < jl; j++) yr[j] = dw_at(xc, wc, H, W, 3, 3, ih0, j * SW - PW);
            from = jh;
        }
        for (int64_t j = from; j < OW; j++) yr[j] = dw_at(xc, wc, H, W, 3, 3, ih0, j * SW - PW);
    }
}

/* One output plane of a depthwise conv (one input channel per group, any channel multiplier),
 * 1-D or 2-D: channel m of image n into yc, without bias. A direct loop whose inner loop runs
 * along a row, so it vectorizes when the stride is 1. FusedConv shares it (its epilogue runs
 * on the plane while it is still in cache). */
void il_depthwise_plane(const il_conv_geom *g, const float *x, const float *w, int64_t n, int64_t m, float *yc) {
    int two = g->nsp == 2;
    int64_t H = two ? g->in[0] : 1, W = g->in[g->nsp - 1], OH = two ? g->out[0] : 1, OW = g->out[g->nsp - 1];
    int64_t KH = two ? g->k[0] : 1, KW = g->k[g->nsp - 1], SH = two ? g->stride[0] : 1, SW = g->stride[g->nsp - 1];
    int64_t DH = two ? g->dil[0] : 1, DW = g->dil[g->nsp - 1], PH = two ? g->pad[0] : 0, PW = g->pad[g->nsp - 1];
    int64_t mg = g->m / g->group;
    const float *xc = x + (n * g->c + m / mg) * H * W, *wc = w + m * KH * KW;
    if (KH == 3 && KW == 3 && DH == 1 && DW == 1) {
        dw3_plane(xc, wc, yc, H, W, OH, OW, SH, SW, PH, PW);
        return;
    }
    for (int64_t i = 0; i < OH * OW; i++) yc[i] = 0;
    for (int64_t oh = 0; oh < OH; oh++) {
        float *yr = yc + oh * OW;
        for (int64_t kh = 0; kh < KH; kh++) {
            int64_t ih = oh * SH + kh * DH - PH;
            if (ih < 0 || ih >= H) continue;
            const float *xr = xc + ih * W;
            for (int64_t kw = 0; kw < KW; kw++) {
                int64_t off = kw * DW - PW, lo, hi;
                float wv = wc[kh * KW + kw];
                tap_range(OW, SW, off, W, &lo, &hi);
                if (SW == 1)
                    for (int64_t j = lo; j < hi; j++) yr[j] += wv * xr[j + off];
                else
                    for (int64_t j = lo; j < hi; j++) yr[j] += wv * xr[j * SW + off];
            }
        }
    }
}

static void depthwise(il_kctx *c, const il_conv_geom *g, const float *x, const float *w, const float *b, float *y) {
    int64_t nch = g->n * g->m;
    IL_PAR_FOR(c, nm, nch) {
        float *yc = y + nm * g->out_sp;
        il_depthwise_plane(g, x, w, nm / g->m, nm % g->m, yc);
        if (b)
            for (int64_t i = 0; i < g->out_sp; i++) yc[i] += b[nm % g->m];
    }
}

/* One image: per group, Y_g[Mg, out] = W_g[Mg, K] x col[K, out], then the bias. */
static void conv_image(const il_conv_geom *g, const float *x, const float *w, const float *b, float *y, float *col,
                       int pointwise) {
    int64_t cg = g->c / g->group, mg = g->m / g->group, K = cg * g->k_sp;
    for (int64_t grp = 0; grp < g->group; grp++) {
        const float *xg = x + grp * cg * g->in_sp;
        if (!pointwise) im2col(g, xg, cg, col);
        il_sgemm(0, 0, mg, g->out_sp, K, 1.0f, w + grp * mg * K, K, pointwise ? xg : col, g->out_sp, 0.0f,
                 y + grp * mg * g->out_sp, g->out_sp);
    }
    if (b)
        for (int64_t m = 0; m < g->m; m++)
            for (int64_t i = 0; i < g->out_sp; i++) y[m * g->out_sp + i] += b[m];
}

il_status il_conv_fast_f32(il_kctx *c, const il_conv_geom *g) {
    const float *x = c->in[0]->data, *w = c->in[1]->data, *b = il_in(c, 2) ? il_in(c, 2)->data : NULL;
    float *y = c->out[0]->data;
    int64_t cg = g->c / g->group, mg = g->m / g->group, K = cg * g->k_sp;
    if (g->n * g->m * g->out_sp == 0) return IL_OK;
    if (K == 0) { /* no input channels: the output is the bias */
        for (int64_t i = 0; i < g->n * g->m * g->out_sp; i++) y[i] = b ? b[(i / g->out_sp) % g->m] : 0;
        return IL_OK;
    }
    if (cg == 1 && g->nsp <= 2) {
        depthwise(c, g, x, w, b, y);
        return IL_OK;
    }
    int pointwise = 1;
    for (int d = 0; d < g->nsp; d++)
        pointwise &= g->k[d] == 1 && g->stride[d] == 1 && g->pad[d] == 0 && g->pad_end[d] == 0;
    int threads = c->threads > 0 ? c->threads : 1;
    size_t colsz = pointwise ? 1 : (size_t)(K * g->out_sp);
    int per_image = il_conv_per_image(g->n, threads, mg * g->out_sp * K);
    int nbuf = per_image ? threads : 1;
    float *col = malloc(colsz * (size_t)nbuf * sizeof(float));
    if (!col) return il_kerr(c, IL_ERR_OOM, "out of memory for the im2col buffer (%zu floats)", colsz * (size_t)nbuf);
    int64_t xs = g->c * g->in_sp, ys = g->m * g->out_sp;
    if (per_image) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t n = 0; n < g->n; n++)
            conv_image(g, x + n * xs, w, b, y + n * ys, col + (size_t)omp_get_thread_num() * colsz, pointwise);
    } else {
        for (int64_t n = 0; n < g->n; n++) conv_image(g, x + n * xs, w, b, y + n * ys, col, pointwise);
    }
    free(col);
    return IL_OK;
}

/* y[mi, i*s + kk*d - pad] += col[mi*k_sp + kk, i] for each output channel mi of the group:
 * the adjoint of im2col. */
static void col2im(const il_conv_geom *g, const float *col, int64_t mg, float *y) {
    int L = g->nsp - 1;
    int64_t iw = g->in[L], outer = g->in_sp / iw;
    for (int64_t mi = 0; mi < mg; mi++) {
        float *yc = y + mi * g->out_sp;
        for (int64_t kp = 0; kp < g->k_sp; kp++) {
            int64_t kk[IL_MAX_SPATIAL], i[IL_MAX_SPATIAL], lo, hi;
            il_unravel(kp, g->nsp, g->k, kk);
            const float *src = col + (mi * g->k_sp + kp) * g->in_sp;
            int64_t off = kk[L] * g->dil[L] - g->pad[L], s = g->stride[L];
            tap_range(iw, s, off, g->out[L], &lo, &hi);
            for (int64_t q = 0; q < outer; q++, src += iw) {
                il_unravel(q, L, g->in, i);
                int64_t base = outer_offset(g, i, kk, g->out);
                if (base < 0) continue;
                float *dst = yc + base + off;
                for (int64_t j = lo; j < hi; j++) dst[j * s] += src[j];
            }
        }
    }
}

il_status il_conv_transpose_fast_f32(il_kctx *c, const il_conv_geom *g) {
    const float *x = c->in[0]->data, *w = c->in[1]->data, *b = il_in(c, 2) ? il_in(c, 2)->data : NULL;
    float *y = c->out[0]->data;
    int64_t cg = g->c / g->group, mg = g->m / g->group, rows = mg * g->k_sp;
    int64_t ys = g->m * g->out_sp;
    for (int64_t i = 0; i < g->n * ys; i++) y[i] = b ? b[(i / g->out_sp) % g->m] : 0;
    if (g->n * ys == 0 || g->in_sp == 0 || cg == 0) return IL_OK;
    float *col = malloc((size_t)(rows * g->in_sp) * sizeof(float));
    if (!col) return il_kerr(c, IL_ERR_OOM, "out of memory for the col2im buffer");
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t grp = 0; grp < g->group; grp++) {
            /* W is [C, Mg*k]: its rows of this group, transposed, times the group's input */
            il_sgemm(1, 0, rows, g->in_sp, cg, 1.0f, w + grp * cg * rows, rows, x + (n * g->c + grp * cg) * g->in_sp,
                     g->in_sp, 0.0f, col, g->in_sp);
            col2im(g, col, mg, y + n * ys + grp * mg * g->out_sp);
        }
    free(col);
    return IL_OK;
}
