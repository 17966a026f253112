/*
 * pw_last.c - a 1x1 stride-1 convolution on channels-last activations whose result goes into a
 * channel slice of a wider channels-last tensor (a Concat's channels, written in place: the
 * plan's out_cstride), with bias and Relu on the way out.
 *
 * Why: oneDNN 2.6's jit convolutions write only a dense destination, so dnnl_conv.c ran the
 * primitive into the workspace and copied its result into the Concat (dnnl_layout.c's copy
 * loop). For SqueezeNet's 1x1 expands the copy was half the node: 16 -> 64 channels at 55x55,
 * 0.045 ms of copy in a 0.093 ms node (batch 1, one thread); oneDNN's matmul with that strided
 * destination falls back to gemm:jit, 0.065 ms. Here the product itself writes the slice:
 *
 *     Y[p][ob*32 + j] = act(bias + sum over ch < C of X[p][ch] * U[ob][ch][j])
 *
 * U is the weight packed once (blocks of 32 output channels, the tail zero); the micro-kernel
 * keeps 8 pixels x 32 channels in 16 registers, per input channel two weight vectors and eight
 * broadcasts for 16 FMAs, as wino_conv.c's product does. The pixels of every image of the batch
 * are one run (an image of the slice is sp pixels of cs floats, as an image of X is sp of C), so
 * threads share out blocks of pixels. Needs AVX-512 (il_cpu_pw_ok).
 */
#include "compute.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define PT 8  /* pixels per micro-kernel call */
#define PK 32 /* output channels per block (two vectors) */
#define AVX512 __attribute__((target("avx512f")))

int il_cpu_pw_ok(void) { return __builtin_cpu_supports("avx512f"); }

float *il_cpu_pw_pack(const float *w, int64_t m, int64_t c) {
    int64_t nb = (m + PK - 1) / PK;
    size_t bytes = (size_t)(nb * c * PK) * sizeof(float);
    float *u = aligned_alloc(64, bytes);
    if (!u) return NULL;
    memset(u, 0, bytes);
    for (int64_t k = 0; k < m; k++)
        for (int64_t ch = 0; ch < c; ch++) u[(k / PK * c + ch) * PK + k % PK] = w[k * c + ch];
    return u;
}

/* T pixels of X at x (pixel stride c) through the panel u of one block: y (pixel stride cs)
 * gets act(b + products) in the lanes of km0 / km1. */
static inline __attribute__((always_inline)) AVX512 void micro(int T, int64_t c, const float *x, const float *u,
                                                               __m512 b0, __m512 b1, int relu, float *y, int64_t cs,
                                                               __mmask16 km0, __mmask16 km1) {
    __m512 a0[PT], a1[PT];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) a0[t] = b0, a1[t] = b1;
    for (int64_t ch = 0; ch < c; ch++) {
        __m512 w0 = _mm512_load_ps(u + ch * PK), w1 = _mm512_load_ps(u + ch * PK + 16);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512 v = _mm512_set1_ps(x[t * c + ch]);
            a0[t] = _mm512_fmadd_ps(v, w0, a0[t]);
            a1[t] = _mm512_fmadd_ps(v, w1, a1[t]);
        }
    }
    __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        if (relu) a0[t] = _mm512_max_ps(a0[t], zero), a1[t] = _mm512_max_ps(a1[t], zero);
        _mm512_mask_storeu_ps(y + t * cs, km0, a0[t]);
        _mm512_mask_storeu_ps(y + t * cs + 16, km1, a1[t]);
    }
}

AVX512 static void tile(int T, int64_t c, const float *x, const float *u, __m512 b0, __m512 b1, int relu, float *y,
                        int64_t cs, __mmask16 km0, __mmask16 km1) {
    switch (T) {
    case 8: micro(8, c, x, u, b0, b1, relu, y, cs, km0, km1); break;
    case 7: micro(7, c, x, u, b0, b1, relu, y, cs, km0, km1); break;
    case 6: micro(6, c, x, u, b0, b1, relu, y, cs, km0, km1); break;
    case 5: micro(5, c, x, u, b0, b1, relu, y, cs, km0, km1); break;
    case 4: micro(4, c, x, u, b0, b1, relu, y, cs, km0, km1); break;
    case 3: micro(3, c, x, u, b0, b1, relu, y, cs, km0, km1); break;
    case 2: micro(2, c, x, u, b0, b1, relu, y, cs, km0, km1); break;
    default: micro(1, c, x, u, b0, b1, relu, y, cs, km0, km1); break;
    }
}

static __mmask16 mask16(int64_t left) { return left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1); }

AVX512 void il_cpu_pw_tile(int T, int64_t c, const float *x, const float *u, const float *bias, int relu, float *y,
                           int64_t cs, int64_t lanes) {
    __mmask16 km0 = mask16(lanes), km1 = mask16(lanes - 16);
    __m512 b0 = bias ? _mm512_maskz_loadu_ps(km0, bias) : _mm512_setzero_ps();
    __m512 b1 = bias ? _mm512_maskz_loadu_ps(km1, bias + 16) : _mm512_setzero_ps();
    tile(T, c, x, u, b0, b1, relu, y, cs, km0, km1);
}

/* Pixels [p0, p1): every block of output channels for a group of pixels while its X is in L1. */
static void span(const il_pw *w, const float *x, const float *bias, float *y, int64_t p0, int64_t p1) {
    int64_t nb = (w->m + PK - 1) / PK;
    for (int64_t p = p0; p < p1; p += PT) {
        int T = (int)(p1 - p < PT ? p1 - p : PT);
        for (int64_t ob = 0; ob < nb; ob++)
            il_cpu_pw_tile(T, w->c, x + p * w->c, w->u + ob * w->c * PK, bias ? bias + ob * PK : NULL, w->relu,
                           y + p * w->cs + ob * PK, w->cs, w->m - ob * PK);
    }
}

void il_cpu_pw_run(const il_pw *w, const float *x, const float *bias, float *y, int64_t pixels, int threads) {
    if (threads < 2 || pixels < 2 * PT) {
        span(w, x, bias, y, 0, pixels);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t blocks = (pixels + PT - 1) / PT;
        int64_t b0 = blocks * t / nt, b1 = blocks * (t + 1) / nt;
        int64_t p0 = b0 * PT, p1 = b1 * PT < pixels ? b1 * PT : pixels;
        if (p0 < p1) span(w, x, bias, y, p0, p1);
    }
}
