/*
 * kernels.cu - float32 kernels for GPU training (cuda.h): im2col / col2im, layout changes
 * around the gemms, BatchNormalization, clip/ReLU, add, pools, reductions.
 *
 * Index arithmetic is 32-bit (a 64-bit division costs the GPU tens of instructions, and these
 * kernels do several per element); the callers keep every tensor and column block below 2^31
 * elements (trainer_cuda.c checks). Every reduction has a fixed shape (one block per channel, a fixed tree, or one thread per
 * output walking its inputs in order) and nothing uses atomics, so a training step gives the
 * same bits every run, as the CPU trainer does. Sums over a channel accumulate in double.
 */
#include "engine/cuda/cuda.h"

#include <cuda_runtime.h>

extern "C" cudaStream_t il_cuda_stream(void);

#define THREADS 256
static inline unsigned blocks_for(int64_t n) {
    int64_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 1 ? 1 : b > 65535 * 16 ? 65535 * 16 : b);
}
#define GRID_LOOP(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)blockDim.x * gridDim.x)
#define LAUNCH(kernel, n, ...) kernel<<<blocks_for(n), THREADS, 0, il_cuda_stream()>>>(__VA_ARGS__)

/* ---------------------------------------------------------------- im2col / col2im */

/* The window as 32-bit ints, for the kernels' index arithmetic. */
struct win32 {
    int c, h, w, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
};
static win32 w32(const il_cuda_win *g) {
    win32 r = {(int)g->c,  (int)g->h,  (int)g->w,  (int)g->oh, (int)g->ow, (int)g->kh, (int)g->kw,
               (int)g->sh, (int)g->sw, (int)g->dh, (int)g->dw, (int)g->ph, (int)g->pw};
    return r;
}

__global__ void k_im2col(const float *x, int nb, win32 g, int c0, int cg, float *col) {
    int S = g.oh * g.ow, ks = g.kh * g.kw, L = nb * S, total = cg * ks * L;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
        int r = i / L, j = i - r * L, b = j / S, o = j - b * S;
        int ci = r / ks, kk = r - ci * ks, kh = kk / g.kw, kw = kk - kh * g.kw, oh = o / g.ow, ow = o - oh * g.ow;
        int ih = oh * g.sh + kh * g.dh - g.ph, iw = ow * g.sw + kw * g.dw - g.pw;
        float v = 0.0f;
        if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) v = x[((b * g.c + c0 + ci) * g.h + ih) * g.w + iw];
        col[i] = v;
    }
}

/* One thread per input element sums the column entries that came from it, in (kh, kw) order. */
__global__ void k_col2im(const float *col, int nb, win32 g, int c0, int cg, float *dx) {
    int S = g.oh * g.ow, ks = g.kh * g.kw, L = nb * S, HW = g.h * g.w, total = nb * cg * HW;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
        int q = i / HW, p = i - q * HW, b = q / cg, ci = q - b * cg, ih = p / g.w, iw = p - ih * g.w;
        float s = 0.0f;
        for (int kh = 0; kh < g.kh; kh++) {
            int t = ih + g.ph - kh * g.dh;
            if (t < 0 || t % g.sh) continue;
            int oh = t / g.sh;
            if (oh >= g.oh) continue;
            for (int kw = 0; kw < g.kw; kw++) {
                int u = iw + g.pw - kw * g.dw;
                if (u < 0 || u % g.sw) continue;
                int ow = u / g.sw;
                if (ow >= g.ow) continue;
                s += col[(ci * ks + kh * g.kw + kw) * L + b * S + oh * g.ow + ow];
            }
        }
        dx[((b * g.c + c0 + ci) * g.h + ih) * g.w + iw] += s;
    }
}

extern "C" void il_cuda_im2col(const float *x, int64_t nb, const il_cuda_win *g, int64_t c0, int64_t cg, float *col) {
    LAUNCH(k_im2col, cg * g->kh * g->kw * nb * g->oh * g->ow, x, (int)nb, w32(g), (int)c0, (int)cg, col);
}

extern "C" void il_cuda_col2im(const float *col, int64_t nb, const il_cuda_win *g, int64_t c0, int64_t cg, float *dx) {
    LAUNCH(k_col2im, nb * cg * g->h * g->w, col, (int)nb, w32(g), (int)c0, (int)cg, dx);
}

/* ---------------------------------------------------------------- layouts */

__global__ void k_cm_to_nchw(const float *src, int mg, int nb, int S, int M, int m0, const float *bias, float *y) {
    int L = nb * S, total = mg * L;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
        int m = i / L, j = i - m * L, b = j / S, o = j - b * S;
        y[(b * M + m0 + m) * S + o] = src[i] + (bias ? bias[m0 + m] : 0.0f);
    }
}

__global__ void k_nchw_to_cm(const float *y, int mg, int nb, int S, int M, int m0, float *dst) {
    int L = nb * S, total = mg * L;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
        int m = i / L, j = i - m * L, b = j / S, o = j - b * S;
        dst[i] = y[(b * M + m0 + m) * S + o];
    }
}

extern "C" void il_cuda_cm_to_nchw(const float *src, int64_t mg, int64_t nb, int64_t S, int64_t M, int64_t m0,
                                   const float *bias, float *y) {
    LAUNCH(k_cm_to_nchw, mg * nb * S, src, (int)mg, (int)nb, (int)S, (int)M, (int)m0, bias, y);
}

extern "C" void il_cuda_nchw_to_cm(const float *y, int64_t mg, int64_t nb, int64_t S, int64_t M, int64_t m0,
                                   float *dst) {
    LAUNCH(k_nchw_to_cm, mg * nb * S, y, (int)mg, (int)nb, (int)S, (int)M, (int)m0, dst);
}

/* ---------------------------------------------------------------- reductions */

/* Threads of the one-block-per-channel kernels: channels are few (8-512), so each block is wide. */
#define CH_THREADS 1024

/* Block-wide sum of per-thread doubles, in a fixed tree; every thread gets the result. */
__device__ double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

/* One block per channel c of [N, C, S]. */
__global__ void k_channel_sum(const float *x, int64_t N, int64_t C, int64_t S, float *out) {
    __shared__ double sh[CH_THREADS];
    int64_t c = blockIdx.x;
    double s = 0;
    for (int i = threadIdx.x; i < (int)(N * S); i += blockDim.x) {
        int n = i / (int)S;
        s += x[((int64_t)n * C + c) * S + (i - n * (int)S)];
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) out[c] += (float)s;
}

extern "C" void il_cuda_channel_sum(const float *x, int64_t N, int64_t C, int64_t S, float *out) {
    if (C > 0) k_channel_sum<<<(unsigned)C, CH_THREADS, 0, il_cuda_stream()>>>(x, N, C, S, out);
}

__global__ void k_col_sum(const float *x, int64_t rows, int64_t cols, float scale, float *out) {
    GRID_LOOP(j, cols) {
        double s = 0;
        for (int64_t r = 0; r < rows; r++) s += x[r * cols + j];
        out[j] += scale * (float)s;
    }
}

extern "C" void il_cuda_col_sum(const float *x, int64_t rows, int64_t cols, float scale, float *out) {
    LAUNCH(k_col_sum, cols, x, rows, cols, scale, out);
}

__global__ void k_broadcast_rows(const float *c, int64_t cm, int64_t cn, float beta, int64_t rows, int64_t cols,
                                 float *y) {
    GRID_LOOP(i, rows * cols) y[i] = beta * c[((i / cols) % cm) * cn + (i % cols) % cn];
}

extern "C" void il_cuda_broadcast_rows(const float *c, int64_t cm, int64_t cn, float beta, int64_t rows, int64_t cols,
                                       float *y) {
    LAUNCH(k_broadcast_rows, rows * cols, c, cm, cn, beta, rows, cols, y);
}

/* ---------------------------------------------------------------- BatchNormalization */

/* Element i of channel c's N*S values in [N, C, S] (32-bit division). */
#define CH_AT(i) (((int64_t)((i) / (int)S) * C + c) * S + ((i) % (int)S))

__global__ void k_bn_train(const float *x, int64_t N, int64_t C, int64_t S, const float *gamma, const float *beta,
                           float eps, float mom, float *rm, float *rv, float *mean, float *rstd, float *y) {
    __shared__ double sh[CH_THREADS];
    int64_t c = blockIdx.x, m = N * S;
    double s = 0;
    for (int i = threadIdx.x; i < (int)m; i += blockDim.x) s += x[CH_AT(i)];
    double mu = block_sum(s, sh) / (double)m, q = 0;
    for (int i = threadIdx.x; i < (int)m; i += blockDim.x) {
        double d = x[CH_AT(i)] - mu;
        q += d * d;
    }
    q = block_sum(q, sh);
    double r = 1.0 / sqrt(q / (double)m + (double)eps);
    float a = (float)(r * gamma[c]), b = (float)(beta[c] - mu * r * gamma[c]);
    for (int i = threadIdx.x; i < (int)m; i += blockDim.x) {
        int64_t k = CH_AT(i);
        y[k] = x[k] * a + b;
    }
    if (threadIdx.x == 0) {
        mean[c] = (float)mu, rstd[c] = (float)r;
        rm[c] = (float)(mom * rm[c] + (1 - mom) * mu);
        rv[c] = (float)(mom * rv[c] + (1 - mom) * q / (double)(m > 1 ? m - 1 : 1));
    }
}

extern "C" void il_cuda_bn_train(const float *x, int64_t N, int64_t C, int64_t S, const float *gamma,
                                 const float *beta, float eps, float momentum, float *run_mean, float *run_var,
                                 float *mean, float *rstd, float *y) {
    if (C > 0)
        k_bn_train<<<(unsigned)C, CH_THREADS, 0, il_cuda_stream()>>>(x, N, C, S, gamma, beta, eps, momentum, run_mean,
                                                                  run_var, mean, rstd, y);
}

__global__ void k_bn_infer(const float *x, int64_t N, int64_t C, int64_t S, const float *gamma, const float *beta,
                           const float *rm, const float *rv, float eps, float *y) {
    GRID_LOOP(i, N * C * S) {
        int c = (int)(((unsigned)i / (unsigned)S) % (unsigned)C);
        y[i] = (x[i] - rm[c]) / sqrtf(rv[c] + eps) * gamma[c] + beta[c];
    }
}

extern "C" void il_cuda_bn_infer(const float *x, int64_t N, int64_t C, int64_t S, const float *gamma,
                                 const float *beta, const float *run_mean, const float *run_var, float eps, float *y) {
    LAUNCH(k_bn_infer, N * C * S, x, N, C, S, gamma, beta, run_mean, run_var, eps, y);
}

__global__ void k_bn_backward(const float *x, const float *dy, int64_t N, int64_t C, int64_t S, const float *gamma,
                              const float *mean, const float *rstd, float *dx, float *dg, float *db) {
    __shared__ double sh[CH_THREADS];
    int64_t c = blockIdx.x, m = N * S;
    double mu = mean[c], r = rstd[c], sg = 0, sgx = 0;
    for (int i = threadIdx.x; i < (int)m; i += blockDim.x) {
        int64_t k = CH_AT(i);
        sg += dy[k];
        sgx += dy[k] * (x[k] - mu) * r;
    }
    sg = block_sum(sg, sh);
    sgx = block_sum(sgx, sh);
    if (threadIdx.x == 0) {
        if (dg) dg[c] += (float)sgx;
        if (db) db[c] += (float)sg;
    }
    if (!dx) return;
    double f = gamma[c] * r / (double)m;
    for (int i = threadIdx.x; i < (int)m; i += blockDim.x) {
        int64_t k = CH_AT(i);
        dx[k] += (float)(f * ((double)m * dy[k] - sg - (x[k] - mu) * r * sgx));
    }
}

extern "C" void il_cuda_bn_backward(const float *x, const float *dy, int64_t N, int64_t C, int64_t S,
                                    const float *gamma, const float *mean, const float *rstd, float *dx, float *dgamma,
                                    float *dbeta) {
    if (C > 0)
        k_bn_backward<<<(unsigned)C, CH_THREADS, 0, il_cuda_stream()>>>(x, dy, N, C, S, gamma, mean, rstd, dx, dgamma,
                                                                     dbeta);
}

/* ---------------------------------------------------------------- element-wise */

__global__ void k_clip(const float *x, int64_t n, float lo, float hi, float *y) {
    GRID_LOOP(i, n) y[i] = fminf(fmaxf(x[i], lo), hi);
}
__global__ void k_clip_backward(const float *x, const float *dy, int64_t n, float lo, float hi, float *dx) {
    GRID_LOOP(i, n) if (x[i] > lo && x[i] < hi) dx[i] += dy[i];
}
__global__ void k_add(const float *a, const float *b, int64_t n, float *y) { GRID_LOOP(i, n) y[i] = a[i] + b[i]; }
__global__ void k_axpy(const float *s, int64_t n, float scale, float *d) { GRID_LOOP(i, n) d[i] += scale * s[i]; }

extern "C" void il_cuda_clip(const float *x, int64_t n, float lo, float hi, float *y) { LAUNCH(k_clip, n, x, n, lo, hi, y); }
extern "C" void il_cuda_clip_backward(const float *x, const float *dy, int64_t n, float lo, float hi, float *dx) {
    LAUNCH(k_clip_backward, n, x, dy, n, lo, hi, dx);
}
extern "C" void il_cuda_add(const float *a, const float *b, int64_t n, float *y) { LAUNCH(k_add, n, a, b, n, y); }
extern "C" void il_cuda_axpy(const float *src, int64_t n, float scale, float *dst) {
    LAUNCH(k_axpy, n, src, n, scale, dst);
}

/* ---------------------------------------------------------------- pools */

/* The first maximum in (kh, kw) order wins, as the CPU kernels pick it. */
__global__ void k_maxpool(const float *x, int64_t planes, il_cuda_win g, float *y, int32_t *arg) {
    int64_t S = g.oh * g.ow;
    GRID_LOOP(i, planes * S) {
        int64_t p = i / S, o = i % S, oh = o / g.ow, ow = o % g.ow;
        const float *xp = x + p * g.h * g.w;
        float best = -INFINITY;
        int32_t at = -1;
        for (int64_t kh = 0; kh < g.kh; kh++) {
            int64_t ih = oh * g.sh + kh * g.dh - g.ph;
            if (ih < 0 || ih >= g.h) continue;
            for (int64_t kw = 0; kw < g.kw; kw++) {
                int64_t iw = ow * g.sw + kw * g.dw - g.pw;
                if (iw < 0 || iw >= g.w) continue;
                float v = xp[ih * g.w + iw];
                if (at < 0 || v > best) best = v, at = (int32_t)(ih * g.w + iw);
            }
        }
        y[i] = best;
        arg[i] = at;
    }
}

/* One thread per input element: the windows that may contain it, in output order. */
__global__ void k_maxpool_backward(const float *dy, const int32_t *arg, int64_t planes, il_cuda_win g, float *dx) {
    int64_t HW = g.h * g.w, S = g.oh * g.ow;
    GRID_LOOP(i, planes * HW) {
        int64_t p = i / HW, q = i % HW, ih = q / g.w, iw = q % g.w;
        float s = 0.0f;
        for (int64_t kh = 0; kh < g.kh; kh++) {
            int64_t t = ih + g.ph - kh * g.dh;
            if (t < 0 || t % g.sh || t / g.sh >= g.oh) continue;
            for (int64_t kw = 0; kw < g.kw; kw++) {
                int64_t u = iw + g.pw - kw * g.dw;
                if (u < 0 || u % g.sw || u / g.sw >= g.ow) continue;
                int64_t o = p * S + (t / g.sh) * g.ow + u / g.sw;
                if (arg[o] == (int32_t)q) s += dy[o];
            }
        }
        dx[i] += s;
    }
}

extern "C" void il_cuda_maxpool(const float *x, int64_t planes, const il_cuda_win *g, float *y, int32_t *arg) {
    LAUNCH(k_maxpool, planes * g->oh * g->ow, x, planes, *g, y, arg);
}

extern "C" void il_cuda_maxpool_backward(const float *dy, const int32_t *arg, int64_t planes, const il_cuda_win *g,
                                         float *dx) {
    LAUNCH(k_maxpool_backward, planes * g->h * g->w, dy, arg, planes, *g, dx);
}

__global__ void k_gap(const float *x, int64_t planes, int64_t S, float *y) {
    GRID_LOOP(p, planes) {
        double s = 0;
        for (int64_t i = 0; i < S; i++) s += x[p * S + i];
        y[p] = (float)(s / (double)S);
    }
}
__global__ void k_gap_backward(const float *dy, int64_t planes, int64_t S, float *dx) {
    GRID_LOOP(i, planes * S) dx[i] += dy[i / S] / (float)S;
}

extern "C" void il_cuda_gap(const float *x, int64_t planes, int64_t S, float *y) { LAUNCH(k_gap, planes, x, planes, S, y); }
extern "C" void il_cuda_gap_backward(const float *dy, int64_t planes, int64_t S, float *dx) {
    LAUNCH(k_gap_backward, planes * S, dy, planes, S, dx);
}
