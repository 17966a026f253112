/*
 * wino_small.c - 3x3 stride-1 convolutions (pads of 1) of few input channels on large planes,
 * SqueezeNet's 16 -> 64 expands at 55x55 and 32 -> 128 at 27x27, by Winograd F(2x2,3x3) written
 * straight into Y as the plan holds it: channels-last, dense or a channel slice of a Concat.
 *
 * Why: oneDNN 2.6's Winograd (jit_avx512_core_f32_wino_conv_2x3) computes in nChw16c, so
 * dnnl_conv.c copied its result into the Concat's channels-last slice afterwards: 16 -> 64 at
 * 55x55, one thread, 0.239 ms of primitive in a 0.313 ms node, the copy's reads and writes
 * (0.77 MB and a 1.5 MB Concat) no longer in L2. wino_conv.c ("wino-f23") transforms the whole
 * plane before its products (at 55x55 its V and M are 0.8 and 1.6 MB) and took 0.348 ms there.
 * Here all three steps run on a group of 8 tiles of one tile row while its numbers are in L1:
 *
 *     strip  rows 2ty-1 .. 2ty+2 of the image, zero-padded, channels rounded up to 16 (per tile row)
 *     V      [16 points][8 tiles][Cp]  B^T d B of the group's 4x4 input tiles
 *     M      [16 points][8 tiles][32]  V_p @ U_p for one block of 32 output channels
 *                                      (pw_last.c's micro-kernel: 8 rows x 32 channels)
 *     Y      A^T M A + bias, Relu, stored at each output pixel's channels
 *
 * U ([blocks of 32 outputs][16 points][Cp][32], G g G^T of every filter) is made once. Threads
 * share out the tile rows of the batch. Needs AVX-512 (il_cpu_pw_ok).
 */
#include "compute.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define GT 8  /* tiles per group */
#define BK 32 /* output channels per block */
#define AVX512 __attribute__((target("avx512f")))

struct il_wsmall {
    int64_t c, cp, m, h, w, th, tw, wp, nb;
    int relu;
    float *u;
};

il_wsmall *il_cpu_wsmall_new(const float *wt, int64_t m, int64_t c, int64_t h, int64_t w, int relu) {
    static const float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
    il_wsmall *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    *s = (il_wsmall){.c = c, .cp = (c + 15) / 16 * 16, .m = m, .h = h, .w = w, .relu = relu};
    s->th = (h + 1) / 2, s->tw = (w + 1) / 2, s->wp = 2 * s->tw + 2, s->nb = (m + BK - 1) / BK;
    size_t bytes = (size_t)(s->nb * 16 * s->cp * BK) * sizeof(float);
    s->u = aligned_alloc(64, bytes);
    if (!s->u) {
        free(s);
        return NULL;
    }
    memset(s->u, 0, bytes);
    for (int64_t k = 0; k < m; k++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *g = wt + (k * c + ch) * 9;
            for (int p = 0; p < 16; p++) {
                float v = 0;
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++) v += G[p / 4][a] * g[a * 3 + b] * G[p % 4][b];
                s->u[((k / BK * 16 + p) * s->cp + ch) * BK + k % BK] = v;
            }
        }
    return s;
}

void il_cpu_wsmall_free(il_wsmall *s) {
    if (s) free(s->u);
    free(s);
}

/* One thread's floats: the strip, V and M, each rounded to a cache line. */
static int64_t lane_floats(const il_wsmall *s) { return (4 * s->wp * s->cp + 15) / 16 * 16 + 16 * GT * s->cp + 16 * GT * BK; }

size_t il_cpu_wsmall_ws(const il_wsmall *s, int threads) {
    return (size_t)((threads > 1 ? threads : 1) * lane_floats(s)) * sizeof(float) + 64;
}

/* Rows 2ty-1 .. 2ty+2 of image x into the strip, zero outside the image and past channel c. */
static void fill_strip(const il_wsmall *s, const float *x, int64_t ty, float *strip) {
    int64_t rowf = s->wp * s->cp;
    memset(strip, 0, (size_t)(4 * rowf) * sizeof(float));
    for (int r = 0; r < 4; r++) {
        int64_t iy = 2 * ty - 1 + r;
        if (iy < 0 || iy >= s->h) continue;
        const float *src = x + iy * s->w * s->c;
        float *dst = strip + r * rowf + s->cp; /* column 0 is the left pad */
        if (s->c == s->cp) memcpy(dst, src, (size_t)(s->w * s->c) * sizeof(float));
        else
            for (int64_t i = 0; i < s->w; i++) memcpy(dst + i * s->cp, src + i * s->c, (size_t)s->c * sizeof(float));
    }
}

/* Columns of a 4x4 tile through B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]: o[k] from a[0..3]. */
static inline __attribute__((always_inline)) AVX512 void bt(const __m512 *a, __m512 *o, int step) {
    o[0] = _mm512_sub_ps(a[0], a[2 * step]);
    o[step] = _mm512_add_ps(a[step], a[2 * step]);
    o[2 * step] = _mm512_sub_ps(a[2 * step], a[step]);
    o[3 * step] = _mm512_sub_ps(a[step], a[3 * step]);
}

/* V of tiles tx0 .. tx0+T-1 of the strip's tile row. */
AVX512 static void input_group(const il_wsmall *s, const float *strip, int64_t tx0, int T, float *v) {
    for (int t = 0; t < T; t++) {
        const float *d0 = strip + 2 * (tx0 + t) * s->cp;
        for (int64_t ch = 0; ch < s->cp; ch += 16) {
            __m512 d[16], r[16], o[16];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) d[i * 4 + j] = _mm512_loadu_ps(d0 + (i * s->wp + j) * s->cp + ch);
            for (int j = 0; j < 4; j++) bt(d + j, r + j, 4); /* down each column */
            for (int i = 0; i < 4; i++) bt(r + 4 * i, o + 4 * i, 1); /* along each row */
            for (int p = 0; p < 16; p++) _mm512_store_ps(v + (p * GT + t) * s->cp + ch, o[p]);
        }
    }
}

/* Y of tiles (ty, tx0 .. tx0+T-1) for output block ob from M: A^T m A, A^T = [1 1 1 0; 0 1 -1 -1],
 * + bias, Relu; y is the image's first output pixel, cs its pixel stride. */
AVX512 static void output_group(const il_wsmall *s, int64_t ty, int64_t tx0, int T, int64_t ob, const float *mb,
                                const float *bias, float *y, int64_t cs) {
    __m512 zero = _mm512_setzero_ps();
    for (int kv = 0; kv < BK / 16; kv++) {
        int64_t k0 = ob * BK + kv * 16, left = s->m - k0;
        if (left <= 0) break;
        __mmask16 km = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 b = bias ? _mm512_maskz_loadu_ps(km, bias + k0) : zero;
        for (int t = 0; t < T; t++) {
            __m512 q[16], r[8], o[4];
            for (int p = 0; p < 16; p++) q[p] = _mm512_load_ps(mb + (p * GT + t) * BK + kv * 16);
            for (int j = 0; j < 4; j++) {
                r[j] = _mm512_add_ps(_mm512_add_ps(q[j], q[4 + j]), q[8 + j]);
                r[4 + j] = _mm512_sub_ps(_mm512_sub_ps(q[4 + j], q[8 + j]), q[12 + j]);
            }
            for (int i = 0; i < 2; i++) {
                o[2 * i] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r[4 * i], r[4 * i + 1]), r[4 * i + 2]), b);
                o[2 * i + 1] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(r[4 * i + 1], r[4 * i + 2]), r[4 * i + 3]), b);
            }
            int64_t oy = 2 * ty, ox = 2 * (tx0 + t);
            for (int i = 0; i < 2 && oy + i < s->h; i++)
                for (int j = 0; j < 2 && ox + j < s->w; j++) {
                    __m512 val = s->relu ? _mm512_max_ps(o[2 * i + j], zero) : o[2 * i + j];
                    _mm512_mask_storeu_ps(y + ((oy + i) * s->w + ox + j) * cs + k0, km, val);
                }
        }
    }
}

/* Tile rows [r0, r1) of the batch (row r: image r / th, tile row r % th). */
static void rows(const il_wsmall *s, const float *x, const float *bias, float *y, int64_t cs, float *lane, int64_t r0,
                 int64_t r1) {
    float *strip = lane, *v = lane + (4 * s->wp * s->cp + 15) / 16 * 16, *mb = v + 16 * GT * s->cp;
    for (int64_t r = r0; r < r1; r++) {
        int64_t img = r / s->th, ty = r % s->th;
        const float *xi = x + img * s->h * s->w * s->c;
        float *yi = y + img * s->h * s->w * cs;
        fill_strip(s, xi, ty, strip);
        for (int64_t tx0 = 0; tx0 < s->tw; tx0 += GT) {
            int T = (int)(s->tw - tx0 < GT ? s->tw - tx0 : GT);
            input_group(s, strip, tx0, T, v);
            for (int64_t ob = 0; ob < s->nb; ob++) {
                for (int p = 0; p < 16; p++)
                    il_cpu_pw_tile(T, s->cp, v + p * GT * s->cp, s->u + (ob * 16 + p) * s->cp * BK, NULL, 0,
                                   mb + p * GT * BK, BK, BK);
                output_group(s, ty, tx0, T, ob, mb, bias, yi, cs);
            }
        }
    }
}

void il_cpu_wsmall_run(const il_wsmall *s, const float *x, int64_t n, const float *bias, float *y, int64_t cs,
                       void *ws, int threads) {
    float *base = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    int64_t total = n * s->th, lf = lane_floats(s);
    if (threads < 2 || total < 2) {
        rows(s, x, bias, y, cs, base, 0, total);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        rows(s, x, bias, y, cs, base + t * lf, total * t / nt, total * (t + 1) / nt);
    }
}
