/*
 * chan_mean.c - the mean of each channel of one or more images, plain [N, C, sp] or channels-last
 * [N, sp, C]: ai.inferlab PooledConv's second output (a global average pool) taken right after
 * its convolution wrote the images, while they are still in cache (dnnl_conv.c, fused_conv.c).
 *
 * Sums run in float32 in 16 independent lanes (plain) or one lane per channel (channels-last),
 * so the compiler vectorizes them without reassociating anything; each image is at most a few
 * MB, where float32 partial sums stay within the tests' 1e-4 + 1e-4 |want| of the reference's
 * double sums.
 */
#include "compute.h"

#include <omp.h>

#define MEAN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

/* Channels-last, channels c0 .. c0 + R - 1 (R a constant where inlined: 16, 32 or 48) summed
 * over every pixel in one pass, two pixels at a time so that at least two vector chains run (one
 * chain waits on the adder's latency). */
static inline __attribute__((always_inline)) void means_rest(const float *y, int64_t C, int64_t sp, int64_t c0,
                                                             int R, float *out) {
    float a[2][48] = {{0}};
    int64_t p = 0;
    for (; p + 2 <= sp; p += 2)
        for (int u = 0; u < 2; u++)
            for (int j = 0; j < R; j++) a[u][j] += y[(p + u) * C + c0 + j];
    for (; p < sp; p++)
        for (int j = 0; j < R; j++) a[0][j] += y[p * C + c0 + j];
    for (int j = 0; j < R; j++) out[c0 + j] = a[0][j] + a[1][j];
}

/* Channels-last: the channels in chunks of 64 summed over every pixel in registers (four vector
 * chains), the rest's multiple of 16 in one more pass, then one channel at a time. */
MEAN_CLONES static void means_last(const float *y, int64_t C, int64_t sp, float *out) {
    int64_t c0 = 0;
    for (; c0 + 64 <= C; c0 += 64) {
        float a[64] = {0};
        for (int64_t p = 0; p < sp; p++)
            for (int j = 0; j < 64; j++) a[j] += y[p * C + c0 + j];
        for (int j = 0; j < 64; j++) out[c0 + j] = a[j];
    }
    switch ((C - c0) / 16) {
    case 3: means_rest(y, C, sp, c0, 48, out); break;
    case 2: means_rest(y, C, sp, c0, 32, out); break;
    case 1: means_rest(y, C, sp, c0, 16, out); break;
    }
    for (c0 += (C - c0) / 16 * 16; c0 < C; c0++) {
        float a = 0;
        for (int64_t p = 0; p < sp; p++) a += y[p * C + c0];
        out[c0] = a;
    }
}

/* Plain: each channel's plane summed in 64 lanes (four vector chains), then the lanes. */
MEAN_CLONES static void means_plain(const float *y, int64_t C, int64_t sp, float *out) {
    for (int64_t ch = 0; ch < C; ch++) {
        const float *x = y + ch * sp;
        float a[64] = {0}, t = 0;
        int64_t p = 0;
        for (; p + 64 <= sp; p += 64)
            for (int j = 0; j < 64; j++) a[j] += x[p + j];
        for (; p < sp; p++) t += x[p];
        for (int j = 0; j < 64; j++) t += a[j];
        out[ch] = t;
    }
}

/* Where one channels-last image is pooled on several threads: each sums its share of the pixels
 * into its row of part (threads x C floats), then the rows are added. Below this many floats a
 * second thread costs more than it saves. */
#define MEAN_PAR_FLOATS 65536

void il_cpu_pixel_means(il_pixel_sums_fn sums, float *y, int64_t C, int64_t sp, float *out, int threads, float *part) {
    float inv = sp ? 1.0f / (float)sp : 0.0f;
    if (threads > 1 && part && C * sp >= MEAN_PAR_FLOATS / 2) {
#pragma omp parallel num_threads(threads)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            sums(y, C, sp * t / nt, sp * (t + 1) / nt, part + t * C);
#pragma omp barrier
#pragma omp for schedule(static)
            for (int64_t ch = 0; ch < C; ch++) {
                float a = 0;
                for (int u = 0; u < nt; u++) a += part[u * C + ch];
                out[ch] = a * inv;
            }
        }
        return;
    }
    sums(y, C, 0, sp, out);
    for (int64_t ch = 0; ch < C; ch++) out[ch] *= inv;
}

/* means_last over pixels [p0, p1), as il_cpu_pixel_means calls it. */
static void sums_last(float *y, int64_t C, int64_t p0, int64_t p1, float *out) { means_last(y + p0 * C, C, p1 - p0, out); }

void il_cpu_chan_means(const float *y, int last, int64_t n, int64_t C, int64_t sp, float *out, int threads,
                       float *part) {
    float inv = sp ? 1.0f / (float)sp : 0.0f;
    if (n == 1 && last) { /* the image's pixels shared out (y is only read) */
        il_cpu_pixel_means(sums_last, (float *)y, C, sp, out, n * C * sp >= MEAN_PAR_FLOATS ? threads : 1, part);
        return;
    }
    if (threads > 1 && n * C * sp >= MEAN_PAR_FLOATS) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < n * (last ? 1 : C); i++) {
            if (last) means_last(y + i * C * sp, C, sp, out + i * C);
            else means_plain(y + i * sp, 1, sp, out + i);
            for (int64_t ch = 0; ch < (last ? C : 1); ch++) out[i * (last ? C : 1) + ch] *= inv;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float *o = out + i * C;
        if (last) means_last(y + i * C * sp, C, sp, o);
        else means_plain(y + i * C * sp, C, sp, o);
        for (int64_t ch = 0; ch < C; ch++) o[ch] *= inv;
    }
}
