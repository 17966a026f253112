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

/* Y may take Z's slot: the epilogues read each element of Z just before Y's is written there. */
static inline int il_pg_over(const il_kctx *c) { return c->n_in > 3 && c->in[3] && c->n_out == 1 ? 3 : -1; }

#endif
