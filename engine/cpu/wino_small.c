/*
 * wino_small.c - 3x3 stride-1 convolutions (pads of 1) of few input channels on large planes,
 * SqueezeNet's 16 -> 64 expands at 55x55 and 32 -> 128 at 27x27, by Winograd F(4x4,3x3) written
 * straight into Y as the plan holds it: channels-last, dense or a channel slice of a Concat.
 *
 * Why: oneDNN 2.6's Winograd (jit_avx512_core_f32_wino_conv_2x3) computes in nChw16c, so
 * dnnl_conv.c copied its result into the Concat's channels-last slice afterwards: 16 -> 64 at
 * 55x55, one thread, 0.239 ms of primitive in a 0.313 ms node, the copy's reads and writes
 * (0.77 MB and a 1.5 MB Concat) no longer in L2; its F(4x4,3x3) lost there (dnnl_conv.c).
 * wino_conv.c ("wino-f23") transforms the whole plane before its products (at 55x55 its V and M
 * are 0.8 and 1.6 MB) and took 0.348 ms. Here all three steps run on a group of 8 tiles of one
 * tile row while its numbers are in L1 and L2:
 *
 *     strip  rows 4ty-1 .. 4ty+4 of the image, zero-padded, channels rounded up to 16 (per tile row)
 *     V      [36 points][8 tiles][Cp]  B^T d B of the group's 6x6 input tiles
 *     M      [36 points][8 tiles][32]  V_p @ U_p for one block of 32 output channels
 *                                      (pw_last.c's micro-kernel: 8 rows x 32 channels)
 *     Y      A^T M A + bias, Relu, stored at each output pixel's channels
 *
 * U ([blocks of 32 outputs][36 points][Cp][32], G g G^T of every filter, made in double) is made
 * once. Standalone, one thread, min of 300 (load 2-3): F(2x2,3x3) in this form took 0.239-0.244
 * ms at 55x55 and 0.181-0.183 at 27x27, F(4x4,3x3) 0.194-0.196 and 0.134-0.139 (its errors at
 * most 0.1 of the tests' 1e-4 + 1e-4 |want|); groups of 4 or 6 tiles were slower. Threads share
 * out the tile rows of the batch. Needs AVX-512 (il_cpu_pw_ok).
 */
#include "compute.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define GT 8  /* tiles per group */
#define NP 36 /* points of a 6x6 tile */
/* V's and M's points lie a cache line further apart than their size: at 1 KB (M) or 512 bytes (V
 * of 16 channels) apart the 36 points of one tile share 4 or 8 of L1's 64 sets. Standalone, one
 * thread, min of 300, three times alternated: 16 -> 64 at 55x55 0.203-0.209 -> 0.185-0.192 ms,
 * 32 -> 128 at 27x27 0.142-0.147 -> 0.129-0.136; in SqueezeNet (node minimums of 100 runs, three
 * rounds, load 3) the four nodes were level, 0.624-0.660 against 0.638-0.643 ms. */
#define VS(s) (GT * (s)->cp + 16) /* floats from one point of V to the next */
#define MS (GT * BK + 16)         /* and of M */
#define BK 32 /* output channels per block */
#define AVX512 __attribute__((target("avx512f")))

struct il_wsmall {
    int64_t c, cp, m, h, w, th, tw, wp, nb;
    int relu;
    float *u;
};

il_wsmall *il_cpu_wsmall_new(const float *wt, int64_t m, int64_t c, int64_t h, int64_t w, int relu) {
    static const double G[6][3] = {{0.25, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    il_wsmall *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    *s = (il_wsmall){.c = c, .cp = (c + 15) / 16 * 16, .m = m, .h = h, .w = w, .relu = relu};
    s->th = (h + 3) / 4, s->tw = (w + 3) / 4, s->wp = 4 * s->tw + 2, s->nb = (m + BK - 1) / BK;
    size_t bytes = (size_t)(s->nb * NP * s->cp * BK) * sizeof(float);
    s->u = aligned_alloc(64, bytes);
    if (!s->u) {
        free(s);
        return NULL;
    }
    memset(s->u, 0, bytes);
    for (int64_t k = 0; k < m; k++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *g = wt + (k * c + ch) * 9;
            for (int p = 0; p < NP; p++) {
                double v = 0;
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++) v += G[p / 6][a] * g[a * 3 + b] * G[p % 6][b];
                s->u[((k / BK * NP + p) * s->cp + ch) * BK + k % BK] = (float)v;
            }
        }
    return s;
}

void il_cpu_wsmall_free(il_wsmall *s) {
    if (s) free(s->u);
    free(s);
}

/* One thread's floats: the strip, V and M, each rounded to a cache line. */
static int64_t lane_floats(const il_wsmall *s) { return (6 * s->wp * s->cp + 15) / 16 * 16 + NP * VS(s) + NP * MS; }

size_t il_cpu_wsmall_ws(const il_wsmall *s, int threads) {
    return (size_t)((threads > 1 ? threads : 1) * lane_floats(s)) * sizeof(float) + 64;
}

/* Rows 2ty-1 .. 2ty+2 of image x into the strip, zero outside the image and past channel c. */
static void fill_strip(const il_wsmall *s, const float *x, int64_t ty, float *strip) {
    int64_t rowf = s->wp * s->cp;
    memset(strip, 0, (size_t)(6 * rowf) * sizeof(float));
    for (int r = 0; r < 6; r++) {
        int64_t iy = 4 * ty - 1 + r;
        if (iy < 0 || iy >= s->h) continue;
        const float *src = x + iy * s->w * s->c;
        float *dst = strip + r * rowf + s->cp; /* column 0 is the left pad */
        if (s->c == s->cp) memcpy(dst, src, (size_t)(s->w * s->c) * sizeof(float));
        else
            for (int64_t i = 0; i < s->w; i++) memcpy(dst + i * s->cp, src + i * s->c, (size_t)s->c * sizeof(float));
    }
}

static inline __attribute__((always_inline)) AVX512 void bt(const __m512 *a, __m512 *o, int st) {
    __m512 d0 = a[0], d1 = a[st], d2 = a[2 * st], d3 = a[3 * st], d4 = a[4 * st], d5 = a[5 * st];
    __m512 f4 = _mm512_set1_ps(4), f5 = _mm512_set1_ps(5), f2 = _mm512_set1_ps(2);
    __m512 t1 = _mm512_fnmadd_ps(f4, d2, d4);            /* d4 - 4 d2 */
    __m512 t2 = _mm512_fnmadd_ps(f4, d1, d3);            /* d3 - 4 d1 */
    __m512 t3 = _mm512_sub_ps(d4, d2);
    __m512 t4 = _mm512_mul_ps(f2, _mm512_sub_ps(d3, d1));
    o[0] = _mm512_fnmadd_ps(f5, d2, _mm512_fmadd_ps(f4, d0, d4));
    o[st] = _mm512_add_ps(t1, t2);
    o[2 * st] = _mm512_sub_ps(t1, t2);
    o[3 * st] = _mm512_add_ps(t3, t4);
    o[4 * st] = _mm512_sub_ps(t3, t4);
    o[5 * st] = _mm512_fnmadd_ps(f5, d3, _mm512_fmadd_ps(f4, d1, d5));
}

AVX512 static void input_group(const il_wsmall *s, const float *strip, int64_t tx0, int T, float *v) {
    for (int t = 0; t < T; t++) {
        const float *d0 = strip + 4 * (tx0 + t) * s->cp;
        for (int64_t ch = 0; ch < s->cp; ch += 16) {
            __m512 d[NP], r[NP], o[NP];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) d[i * 6 + j] = _mm512_loadu_ps(d0 + (i * s->wp + j) * s->cp + ch);
            for (int j = 0; j < 6; j++) bt(d + j, r + j, 6);
            for (int i = 0; i < 6; i++) bt(r + 6 * i, o + 6 * i, 1);
            for (int p = 0; p < NP; p++) _mm512_store_ps(v + p * VS(s) + t * s->cp + ch, o[p]);
        }
    }
}

/* m[0..5] (stride st) through A^T into o[0..3]. */
static inline __attribute__((always_inline)) AVX512 void at(const __m512 *m, __m512 *o, int st) {
    __m512 m0 = m[0], m1 = m[st], m2 = m[2 * st], m3 = m[3 * st], m4 = m[4 * st], m5 = m[5 * st];
    __m512 a = _mm512_add_ps(m1, m2), b = _mm512_sub_ps(m1, m2), c = _mm512_add_ps(m3, m4), d = _mm512_sub_ps(m3, m4);
    o[0] = _mm512_add_ps(_mm512_add_ps(m0, a), c);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2), d, b);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4), c, a);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8), d, b), m5);
}

AVX512 static void output_group(const il_wsmall *s, int64_t ty, int64_t tx0, int T, int64_t ob, const float *mb,
                                const float *bias, float *y, int64_t cs) {
    __m512 zero = _mm512_setzero_ps();
    for (int kv = 0; kv < BK / 16; kv++) {
        int64_t k0 = ob * BK + kv * 16, left = s->m - k0;
        if (left <= 0) break;
        __mmask16 km = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 b = bias ? _mm512_maskz_loadu_ps(km, bias + k0) : zero;
        for (int t = 0; t < T; t++) {
            /* rows first, 6 loads at a time: 24 values live, not 36 (standalone, six rounds alternated
             * at load 5: 27x27 0.127-0.141 -> 0.121-0.129 ms, 55x55 level) */
            __m512 r[24], o[16];
            for (int i = 0; i < 6; i++) { /* M A, row by row */
                __m512 row[6];
                for (int j = 0; j < 6; j++) row[j] = _mm512_load_ps(mb + (i * 6 + j) * MS + t * BK + kv * 16);
                at(row, r + 4 * i, 1);
            }
            for (int j = 0; j < 4; j++) { /* A^T (M A), column by column */
                __m512 col[4];
                at(r + j, col, 4);
                for (int i = 0; i < 4; i++) o[4 * i + j] = col[i];
            }
            int64_t oy = 4 * ty, ox = 4 * (tx0 + t);
            for (int i = 0; i < 4 && oy + i < s->h; i++)
                for (int j = 0; j < 4 && ox + j < s->w; j++) {
                    __m512 val = _mm512_add_ps(o[4 * i + j], b);
                    if (s->relu) val = _mm512_max_ps(val, zero);
                    _mm512_mask_storeu_ps(y + ((oy + i) * s->w + ox + j) * cs + k0, km, val);
                }
        }
    }
}

/* Tile rows [r0, r1) of the batch (row r: image r / th, tile row r % th). */
static void rows(const il_wsmall *s, const float *x, const float *bias, float *y, int64_t cs, float *lane, int64_t r0,
                 int64_t r1) {
    float *strip = lane, *v = lane + (6 * s->wp * s->cp + 15) / 16 * 16, *mb = v + NP * VS(s);
    for (int64_t r = r0; r < r1; r++) {
        int64_t img = r / s->th, ty = r % s->th;
        const float *xi = x + img * s->h * s->w * s->c;
        float *yi = y + img * s->h * s->w * cs;
        fill_strip(s, xi, ty, strip);
        for (int64_t tx0 = 0; tx0 < s->tw; tx0 += GT) {
            int T = (int)(s->tw - tx0 < GT ? s->tw - tx0 : GT);
            input_group(s, strip, tx0, T, v);
            for (int64_t ob = 0; ob < s->nb; ob++) {
                for (int p = 0; p < NP; p++)
                    il_cpu_pw_tile(T, s->cp, v + p * VS(s), s->u + (ob * NP + p) * s->cp * BK, NULL, 0,
                                   mb + p * MS, BK, BK);
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
