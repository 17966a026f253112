/*
 * patch_conv.c - Conv kernel "patch-gemm": a 2-D convolution whose windows do not overlap nor
 * leave gaps (stride = kernel, no padding, no dilation, one group) over rows of at least 8
 * floats, as a vision transformer's patch embedding is (ViT's 16x16, stride 16, 3 -> 192
 * channels). Each output pixel then reads a patch of its own, so the convolution is one matrix
 * product:
 *
 *     P  [N * OH * OW, C * KH * KW]   the patches as rows, copied KW floats at a time
 *     Yt = P @ Wt                     Wt = the weight transposed, [C * KH * KW, M], packed once
 *     Y  [N, M, OH, OW]               each image's block of Yt transposed, the bias added
 *
 * one sgemm over every image (oneDNN's on the calling thread; each thread takes its share of
 * P's rows), while the patches fit in L2 (PATCH_MAX_BYTES). Alone, in cache, the copies of
 * ViT-tiny's image take 26 us and the product 0.33 ms (with the weight as the first operand,
 * writing NCHW directly, 0.40 ms: so the transposes after it). In the network, batch 1, minimum
 * over 150 runs, load 4-6: oneDNN's convolution 0.31-0.35 ms on two threads, this kernel
 * 0.25-0.28; on one thread both 0.44-0.52 ms.
 */
#include "../ops/kernel.h"
#include "compute.h"

#include <omp.h>

typedef struct {
    il_conv_geom g;
    int64_t kdim; /* C * KH * KW */
    float *wt;    /* [kdim, M] */
} patch_state;

/* The narrowest patch row taken: below it each copy moves too little. */
#define PATCH_MIN_KW 8
/* The most bytes of patches taken (ViT-tiny's 196 of 768 floats at batch 1: 600 KB). Past L2
 * the copies go to memory and oneDNN's convolution, which reads the image once, is faster
 * (batch 8: 3.85 ms against 3.56, copying and multiplying 256 rows at a time). */
#define PATCH_MAX_BYTES (1 << 20)

static int patch_geom(il_kctx *c, il_conv_geom *g) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1);
    int64_t k[2] = {w->dims[2], w->dims[3]};
    if (il_window_geom(c, x, k, 0, 1, g)) return 0;
    g->m = w->dims[0];
    for (int d = 0; d < 2; d++)
        if (g->stride[d] != g->k[d] || g->dil[d] != 1 || g->pad[d] || g->pad_end[d]) return 0;
    return 1;
}

static int patch_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1), *b = il_in(c, 2);
    if (!x || !w || x->dtype != IL_F32 || w->dtype != IL_F32 || x->rank != 4 || w->rank != 4) return 0;
    if (!il_shape_known(x) || !il_shape_known(w) || !(c->const_mask & 2) || !w->data) return 0;
    if (b && (b->dtype != IL_F32 || !il_shape_known(b) || b->rank != 1 || b->dims[0] != w->dims[0])) return 0;
    if (il_attr_int(c->node, "group", 1) != 1 || w->dims[1] != x->dims[1] || w->dims[3] < PATCH_MIN_KW) return 0;
    il_conv_geom g;
    if (!patch_geom((il_kctx *)c, &g)) return 0;
    int64_t rows = g.n * g.out[0] * g.out[1], kdim = g.c * g.k[0] * g.k[1];
    return rows > 0 && g.m > 0 && kdim > 0 && rows * kdim * (int64_t)sizeof(float) <= PATCH_MAX_BYTES;
}

static void patch_release(void *state) {
    patch_state *s = state;
    if (s) free(s->wt);
    free(s);
}

static il_status patch_prepare(il_kctx *c, void **state, size_t *workspace) {
    patch_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    if (!patch_geom(c, &s->g)) {
        free(s);
        return il_kerr(c, IL_ERR_UNSUPPORTED, "not a convolution of disjoint patches");
    }
    const il_conv_geom *g = &s->g;
    s->kdim = g->c * g->k[0] * g->k[1];
    s->wt = malloc((size_t)(s->kdim * g->m) * sizeof(float));
    if (!s->wt) {
        long long n = (long long)(s->kdim * g->m);
        free(s);
        return il_kerr(c, IL_ERR_OOM, "out of memory for the packed weight (%lld floats)", n);
    }
    il_transpose_f32(s->wt, g->m, c->in[1]->data, s->kdim, g->m, s->kdim);
    int64_t rows = g->n * g->out[0] * g->out[1];
    *workspace = (size_t)(rows * (s->kdim + g->m)) * sizeof(float);
    *state = s;
    return IL_OK;
}

/* Rows r0 .. r1 of P (image n, patch (py, px) is row (n * OH + py) * OW + px) from x, into p. */
static void patches(const patch_state *s, const float *x, float *p, int64_t r0, int64_t r1) {
    const il_conv_geom *g = &s->g;
    int64_t oh = g->out[0], ow = g->out[1], kh = g->k[0], kw = g->k[1], h = g->in[0], w = g->in[1];
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / (oh * ow), py = r / ow % oh, px = r % ow;
        float *dst = p + (r - r0) * s->kdim;
        for (int64_t ch = 0; ch < g->c; ch++)
            for (int64_t ky = 0; ky < kh; ky++)
                memcpy(dst + (ch * kh + ky) * kw, x + ((n * g->c + ch) * h + py * kh + ky) * w + px * kw,
                       (size_t)kw * sizeof(float));
    }
}

static il_status patch_run(il_kctx *c) {
    const patch_state *s = c->state;
    const il_conv_geom *g = &s->g;
    const il_tensor *B = il_in(c, 2);
    const float *x = c->in[0]->data, *bias = B ? B->data : NULL;
    float *y = c->out[0]->data, *p = c->workspace;
    int64_t np = g->out[0] * g->out[1], rows = g->n * np, m = g->m;
    float *yt = p + rows * s->kdim;
    int threads = c->threads > 0 ? c->threads : 1;
    if (threads > rows / 16) threads = rows / 16 > 1 ? (int)(rows / 16) : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
        patches(s, x, p + r0 * s->kdim, r0, r1);
        il_sgemm_serial(0, 0, r1 - r0, m, s->kdim, 1.0f, p + r0 * s->kdim, s->kdim, s->wt, m, 0.0f, yt + r0 * m, m);
#pragma omp barrier
        /* image n's output channels m0 .. m1, each a row of np pixels */
        int64_t m0 = m * t / nt, m1 = m * (t + 1) / nt;
        for (int64_t n = 0; n < g->n; n++) {
            float *yn = y + n * m * np;
            il_transpose_f32(yn + m0 * np, np, yt + n * np * m + m0, m, np, m1 - m0);
            for (int64_t ch = m0; ch < m1 && bias; ch++) {
                float b = bias[ch], *row = yn + ch * np;
#pragma omp simd
                for (int64_t i = 0; i < np; i++) row[i] += b;
            }
        }
    }
    return IL_OK;
}

const il_kernel il_kernels_patch_conv[] = {
    {.domain = "", .op = "Conv", .backend = "cpu", .name = "patch-gemm", .dtypes = IL_DT(IL_F32), .priority = 30,
     .supports = patch_supports, .prepare = patch_prepare, .run = patch_run, .release = patch_release,
     .doc = "disjoint patches (stride = kernel, no padding; ViT's patch embedding) as one sgemm over every image's "
            "patch rows, the weight packed transposed once"},
    {0},
};
