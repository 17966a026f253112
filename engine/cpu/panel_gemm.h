/*
 * panel_gemm.h - private to the AVX-512 convolution kernels for small planes and many channels
 * (wino_conv.c: Winograd F(2x2,3x3); rows_conv.c: im2col rows): the product of a few rows of
 * activations with a weight packed in panels of 32 output channels, and the epilogue's reads
 * and writes in the layouts the plan holds.
 *
 * A panel is [n][32] floats (n the reduction length), 64-byte aligned; rows are n floats apart
 * (as), read one float at a time as broadcasts. The micro-kernel keeps 8 rows x 32 channels in 16
 * registers: per reduction step two weight vectors and eight broadcasts feed 16 FMAs. Alone, with
 * the panel in L2, it runs at 97% of this Xeon's FMA peak (171 of 176 GFLOP/s). At batch 1 the
 * panels come from memory (ResNet's 7x7 stages hold 4-16 MB of weight per convolution), so the
 * panel PFD ahead is fetched into L2 while this one is used.
 */
#ifndef IL_CPU_PANEL_GEMM_H
#define IL_CPU_PANEL_GEMM_H

#include "../ops/fused.h"
#include "compute.h"
#ifdef IL_HAVE_DNNL
#include "dnnl_int.h"
#endif

#include <immintrin.h>
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define IL_PG_ROWS 8 /* rows per micro-kernel call */
#define IL_PG_K 32   /* output channels per panel (two vectors) */
#define IL_AVX512 __attribute__((target("avx512f")))
/* Panels fetched ahead: at batch 1 on ResNet-18's layer4 (512 -> 512 at 7x7 by Winograd, 16 MB
 * of panels streamed from memory) the image took 2.31 ms without, 1.57 with the next panel,
 * 1.47-1.50 two ahead, 1.51 three ahead (alone, the weight rotated over 8 copies: out of L3). */
#define IL_PG_AHEAD 2

/* m[t][0..32) (+)= sum over i < n of a[t * as + i] * u[i][0..32), for T rows (acc: add to m);
 * pf + i * pstep (and 16 floats on) fetched into L2 meanwhile. */
static inline __attribute__((always_inline)) IL_AVX512 void il_pg_micro(int T, int acc, int64_t n, const float *a,
                                                                        int64_t as, const float *u, float *m,
                                                                        const float *pf, int64_t pstep) {
    __m512 a0[IL_PG_ROWS], a1[IL_PG_ROWS];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        a0[t] = acc ? _mm512_loadu_ps(m + t * IL_PG_K) : _mm512_setzero_ps();
        a1[t] = acc ? _mm512_loadu_ps(m + t * IL_PG_K + 16) : _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < n; i++) {
        __m512 w0 = _mm512_load_ps(u + i * IL_PG_K), w1 = _mm512_load_ps(u + i * IL_PG_K + 16);
        _mm_prefetch((const char *)(pf + i * pstep), _MM_HINT_T1);
        _mm_prefetch((const char *)(pf + i * pstep + 16), _MM_HINT_T1);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512 b = _mm512_set1_ps(a[t * as + i]);
            a0[t] = _mm512_fmadd_ps(b, w0, a0[t]);
            a1[t] = _mm512_fmadd_ps(b, w1, a1[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        _mm512_storeu_ps(m + t * IL_PG_K, a0[t]);
        _mm512_storeu_ps(m + t * IL_PG_K + 16, a1[t]);
    }
}

#define IL_PG_CASE(T)                                                                                                \
    case T:                                                                                                          \
        if (acc)                                                                                                     \
            il_pg_micro(T, 1, n, a, as, u, m, pf, pstep);                                                            \
        else                                                                                                         \
            il_pg_micro(T, 0, n, a, as, u, m, pf, pstep);                                                            \
        break;

/* il_pg_micro for 1 <= T <= 8 rows, each count its own unrolled code. */
static inline IL_AVX512 void il_pg_product(int T, int acc, int64_t n, const float *a, int64_t as, const float *u,
                                           float *m, const float *pf, int64_t pstep) {
    switch (T) {
        IL_PG_CASE(8)
        IL_PG_CASE(7)
        IL_PG_CASE(6)
        IL_PG_CASE(5)
        IL_PG_CASE(4)
        IL_PG_CASE(3)
        IL_PG_CASE(2)
    default:
        il_pg_micro(1, acc, n, a, as, u, m, pf, pstep);
        break;
    }
}

/* The activations with a vector form; the others go lane by lane through il_act_f. */
static inline IL_AVX512 __m512 il_pg_act(const il_act *a, __m512 x) {
    switch (a->kind) {
    case IL_ACT_NONE: return x;
    case IL_ACT_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case IL_ACT_CLIP: return _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(a->a)), _mm512_set1_ps(a->b));
    case IL_ACT_LEAKY:
        return _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), x, _mm512_set1_ps(a->a));
    default: {
        float f[16];
        _mm512_storeu_ps(f, x);
        for (int i = 0; i < 16; i++) f[i] = il_act_f(a, f[i]);
        return _mm512_loadu_ps(f);
    }
    }
}

/* Where an image's outputs (or residual) lie: channels-last, or NCHW reached by gathers. */
typedef struct {
    float *base;
    int last;
    int64_t plane, k; /* pixels of the plane, channels */
} il_pg_io;

static inline IL_AVX512 __m512i il_pg_lanes(int64_t plane) {
    return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                              _mm512_set1_epi32((int)plane));
}

/* Channels k0 .. k0+16 (km: those that exist) of pixel px. */
static inline IL_AVX512 __m512 il_pg_load(const il_pg_io *io, int64_t px, int64_t k0, __mmask16 km) {
    if (io->last) return _mm512_maskz_loadu_ps(km, io->base + px * io->k + k0);
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), km, il_pg_lanes(io->plane), io->base + k0 * io->plane + px, 4);
}

static inline IL_AVX512 void il_pg_store(const il_pg_io *io, int64_t px, int64_t k0, __mmask16 km, __m512 v) {
    if (io->last)
        _mm512_mask_storeu_ps(io->base + px * io->k + k0, km, v);
    else
        _mm512_mask_i32scatter_ps(io->base + k0 * io->plane + px, km, il_pg_lanes(io->plane), v, 4);
}

/* X, Z and Y native where that is channels-last (this project's machines); plain elsewhere. */
static inline void il_pg_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
#ifdef IL_HAVE_DNNL
    if (!il_dnnl_native_last()) return;
    *in |= 1 | 8;
    *out |= 1;
#endif
}

/* The geometry of a 2-D convolution of one group with a constant weight [K, C, KH, KW]; 0 where
 * it does not parse or has negative pads. */
static inline int il_pg_geom(il_kctx *c, il_conv_geom *g) {
    const il_tensor *w = il_in(c, 1);
    int64_t k[2] = {w->dims[2], w->dims[3]};
    if (il_window_geom(c, c->in[0], k, 0, 1, g)) return 0;
    g->group = il_attr_int(c->node, "group", 1);
    g->m = w->dims[0];
    return g->group == 1 && g->pad[0] >= 0 && g->pad[1] >= 0 && g->out[0] > 0 && g->out[1] > 0;
}

/* What both kernels need of node c (float32 X [N, C, H, W], a constant weight, bias [K], a
 * residual of Y's shape, an activation that parses, AVX-512), then geom (il_pg_geom and the
 * kernel's own conditions); env names the variable that turns the kernel off ("0") or onto every
 * shape it computes ("all", to measure), else wins says where it is the default. */
static inline int il_pg_supports(const il_kctx *c, int (*geom)(il_kctx *, il_conv_geom *), const char *env,
                                 int (*wins)(const il_conv_geom *, int)) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1), *b = il_in(c, 2), *z = il_in(c, 3);
    if (!__builtin_cpu_supports("avx512f") || c->n_out != 1) return 0;
    if (!x || !w || x->dtype != IL_F32 || w->dtype != IL_F32 || x->rank != 4 || w->rank != 4) return 0;
    if (!il_shape_known(x) || !il_shape_known(w) || !(c->const_mask & 2) || !w->data) return 0;
    if (w->dims[1] != x->dims[1] || il_tensor_numel(x) <= 0 || il_tensor_numel(w) <= 0) return 0;
    if (b && (b->dtype != IL_F32 || !il_shape_known(b) || il_tensor_numel(b) != w->dims[0])) return 0;
    il_conv_geom g;
    il_act act;
    if (!geom((il_kctx *)c, &g) || il_act_parse(c, &act)) {
        il_error_clear();
        return 0;
    }
    if (z) {
        int64_t yd[4] = {g.n, g.m, g.out[0], g.out[1]};
        if (z->dtype != IL_F32 || !il_shape_known(z) || z->rank != 4) return 0;
        for (int d = 0; d < 4; d++)
            if (z->dims[d] != yd[d]) return 0;
    }
    if ((int64_t)16 * g.out_sp >= INT32_MAX) return 0; /* NCHW gathers: 32-bit lane offsets */
    const char *e = getenv(env);
    if (e && *e == '0') return 0;
    /* the activations without a vector form (SiLU, Sigmoid, ...) go lane by lane: by default
     * oneDNN keeps them (dnnl_conv.c has AVX-512 SiLU) */
    int vec = act.kind == IL_ACT_NONE || act.kind == IL_ACT_RELU || act.kind == IL_ACT_CLIP || act.kind == IL_ACT_LEAKY;
    return (e && !strcmp(e, "all")) || (vec && wins(&g, c->threads));
}

/* The start of both prepares: a zeroed state of `size` bytes for a node supports() takes, its
 * geometry in g and its activation parsed into the state at byte act_at. */
static inline il_status il_pg_state(il_kctx *c, int (*supports)(const il_kctx *), int (*geom)(il_kctx *, il_conv_geom *),
                                    il_conv_geom *g, size_t size, size_t act_at, void **out) {
    if (!supports(c) || !geom(c, g)) return il_kerr(c, IL_ERR_UNSUPPORTED, "not a convolution this kernel takes");
    char *s = calloc(1, size);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_status st = il_act_parse(c, (il_act *)(s + act_at));
    if (st) {
        free(s);
        return st;
    }
    *out = s;
    return IL_OK;
}

/* A zeroed, 64-byte aligned weight of n floats, or NULL with the node's error set. */
static inline float *il_pg_weight(il_kctx *c, int64_t n) {
    float *u = aligned_alloc(64, (size_t)n * sizeof(float));
    if (u)
        memset(u, 0, (size_t)n * sizeof(float));
    else
        il_kerr(c, IL_ERR_OOM, "out of memory for the packed weight (%lld floats)", (long long)n);
    return u;
}

/* `count` consecutive images for il_pg_run (count > 1 only where one thread has them all): x,
 * bias, z (NULL: none) and y of the first as the plan holds them; shared the buffers of the
 * threads that share the image, own this thread's; tid of nt sharing it. */
typedef void (*il_pg_image_fn)(const void *state, const float *x, int xlast, const float *bias, const il_pg_io *z,
                               const il_pg_io *y, float *shared, float *own, int tid, int nt, int64_t count);

/* Run node c's batch: each thread its consecutive share of the images, up to `group` of them a
 * call, or (fewer images than threads, batch 1 on two) every thread on each image. The workspace
 * holds one lane of `lane` floats a thread. c, k, plane: X's channels and plane, Y's channels and
 * plane. */
static inline il_status il_pg_run(il_kctx *c, const void *state, int64_t cin, int64_t in_plane, int64_t k, int64_t plane,
                                  int64_t lane, int64_t group, il_pg_image_fn image) {
    const il_tensor *B = il_in(c, 2), *Z = il_in(c, 3);
    int64_t n = c->in[0]->dims[0], xsz = cin * in_plane, ysz = k * plane;
    int xlast = (c->blocked_in & 1) != 0, zlast = (c->blocked_in & 8) != 0, ylast = (c->blocked_out & 1) != 0;
    const float *x = c->in[0]->data, *bias = B ? B->data : NULL;
    float *ws = (float *)(((uintptr_t)c->workspace + 63) & ~(uintptr_t)63);
    int threads = c->threads > 1 ? c->threads : 1;
    int per_image = n >= threads;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t i1 = per_image ? n * (tid + 1) / nt : n, step = per_image && group > 1 ? group : 1;
        for (int64_t i = per_image ? n * tid / nt : 0; i < i1; i += step) {
            il_pg_io y = {(float *)c->out[0]->data + i * ysz, ylast, plane, k};
            il_pg_io z = {Z ? (float *)Z->data + i * ysz : NULL, zlast, plane, k};
            image(state, x + i * xsz, xlast, bias, Z ? &z : NULL, &y, ws + (per_image ? tid : 0) * lane, ws + tid * lane,
                  per_image ? 0 : tid, per_image ? 1 : nt, i1 - i < step ? i1 - i : step);
        }
    }
    return IL_OK;
}

/* Y may take Z's slot: the epilogues read each element of Z just before Y's is written there. */
static inline int il_pg_over(const il_kctx *c) { return c->n_in > 3 && c->in[3] && c->n_out == 1 ? 3 : -1; }

/* A kernel entry of these: `nm` for op_ (Conv or FusedConv) with the kernel's functions
 * nm_supports, nm_prepare, nm_run, nm_release; native layouts and Y over Z as above. */
#define IL_PG_KERNEL(dom, op_, name_, prio, nm, doc_)                                                               \
    {.domain = dom, .op = op_, .backend = "cpu", .name = name_, .dtypes = IL_DT(IL_F32), .priority = prio,        \
     .supports = nm##_supports, .prepare = nm##_prepare, .run = nm##_run, .release = nm##_release,               \
     .layouts = il_pg_layouts, .writes_over = il_pg_over, .doc = doc_}

#endif
