/*
 * silu_fast.c - x * sigmoid(x) over a float array with AVX-512, for the oneDNN convolutions whose
 * activation is SiLU (dnnl_conv.c): oneDNN 2.6's swish post-op costs more than the convolution it
 * ends (brgconv 1x1 16 -> 96 on 112x112 channels-last, one thread, min of 200: 0.334 ms plain,
 * 0.874 ms with swish, 0.767 with logistic), so the convolution runs without it and this pass
 * follows on its output while that is in cache.
 *
 * e^-x by Cephes' expf polynomial after the range reduction (as il_exp_le0), its argument capped
 * at 80; 1 / (1 + e^-x) by the reciprocal estimate and one Newton step (no division, whose
 * 16-wide form is the slowest instruction here). Within about 3e-7 of the exact value relative to
 * it, and exactly 0 below x = -80 (NaN stays NaN). Without AVX-512 il_cpu_silu_ok() is 0 and the
 * post-op stays.
 */
#include "compute.h"

#include <immintrin.h>
#include <omp.h>

int il_cpu_silu_ok(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("INFERLAB_SILU_POSTOP"); /* 1: leave SiLU to oneDNN, to compare */
        v = !(e && *e == '1') && __builtin_cpu_supports("avx512f");
    }
    return v;
}

__attribute__((target("avx512f"))) static inline __m512 silu16(__m512 x) {
    __m512 t = _mm512_min_ps(_mm512_sub_ps(_mm512_setzero_ps(), x), _mm512_set1_ps(80.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), t); /* t = k ln2 + r */
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512 d = _mm512_add_ps(_mm512_scalef_ps(p, k), _mm512_set1_ps(1.0f)); /* 1 + e^-x */
    __m512 q = _mm512_rcp14_ps(d);
    q = _mm512_mul_ps(q, _mm512_fnmadd_ps(d, q, _mm512_set1_ps(2.0f)));
    /* below -80 exactly 0 (x e^x is under 1e-33 there): the products of lower x would be
     * denormal, and every later multiply that reads one takes a microcode assist (the next
     * convolution ran 25% slower) */
    return _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-80.0f), _CMP_NLE_UQ), x, q);
}

__attribute__((target("avx512f"))) static void silu_span(float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, silu16(_mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, silu16(_mm512_maskz_loadu_ps(m, y + i)));
    }
}

void il_cpu_silu(float *y, int64_t n, int threads) {
    if (threads > 1 && n >= 32768) {
        int64_t chunk = (n / threads + 15) / 16 * 16;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int t = 0; t < threads; t++) {
            int64_t a = t * chunk, b = a + chunk < n ? a + chunk : n;
            if (a < b) silu_span(y + a, b - a);
        }
        return;
    }
    silu_span(y, n);
}

/* Channels-last image y (sp pixels of C channels): y = silu(y) and each channel's sum of the
 * result into out, in one pass (PooledConv with SiLU: the pool's sums taken from registers, not
 * read back); pixels [p0, p1), 64 channels at a time in four vector sums, the last vector of a
 * chunk masked. */
__attribute__((target("avx512f"))) static void silu_sums(float *y, int64_t C, int64_t p0, int64_t p1, float *out) {
    for (int64_t c0 = 0; c0 < C; c0 += 64) {
        int nv = (int)((C - c0 + 15) / 16 < 4 ? (C - c0 + 15) / 16 : 4);
        __mmask16 last = (C - c0) % 16 && nv * 16 > C - c0 ? (__mmask16)((1u << ((C - c0) % 16)) - 1) : 0xffff;
        __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int64_t p = p0; p < p1; p++) {
            float *row = y + p * C + c0;
            for (int v = 0; v < nv; v++) {
                __mmask16 m = v == nv - 1 ? last : 0xffff;
                __m512 x = silu16(_mm512_maskz_loadu_ps(m, row + 16 * v));
                _mm512_mask_storeu_ps(row + 16 * v, m, x);
                a[v] = _mm512_add_ps(a[v], x);
            }
        }
        for (int v = 0; v < nv; v++) _mm512_mask_storeu_ps(out + c0 + 16 * v, v == nv - 1 ? last : 0xffff, a[v]);
    }
}

void il_cpu_silu_means(float *y, int64_t n, int64_t C, int64_t sp, float *out, int threads, float *part) {
    for (int64_t i = 0; i < n; i++) il_cpu_pixel_means(silu_sums, y + i * C * sp, C, sp, out + i * C, threads, part);
}
