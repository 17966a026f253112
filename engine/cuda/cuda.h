/*
 * cuda.h - the CUDA device layer: device memory, cuBLAS sgemm, and the float32 kernels the
 * GPU training executor (distill/trainer_cuda.c) is made of. Callable from C; the bodies are
 * in runtime.cu and kernels.cu, built when nvcc is found (IL_HAVE_CUDA).
 *
 * Everything runs on one stream of device 0, in order; errors of asynchronous launches show
 * up at the next il_cuda_sync or copy. All tensors are float32, NCHW, contiguous.
 * Kernels that produce gradients ADD into their destination, like the CPU backward kernels.
 */
#ifndef IL_CUDA_H
#define IL_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/engine.h"

/* 1 when this build has CUDA and a device answers; the reason otherwise in *why (may be NULL). */
int il_cuda_available(const char **why);
/* "NVIDIA H100 80GB HBM3" or "" */
const char *il_cuda_device_name(void);
/* Creates the stream and the cuBLAS handle on first use; an error when no device. */
il_status il_cuda_init(void);

void *il_cuda_malloc(size_t bytes); /* NULL (and the error set) on failure */
void il_cuda_free(void *p);
il_status il_cuda_upload(void *dst, const void *src, size_t bytes);
il_status il_cuda_download(void *dst, const void *src, size_t bytes);
il_status il_cuda_copy(void *dst, const void *src, size_t bytes);
il_status il_cuda_zero(void *dst, size_t bytes);
il_status il_cuda_sync(void);

/* The process's one stream (a cudaStream_t) and cuBLAS handle (a cublasHandle_t), for kernels
 * in other files; valid after il_cuda_init. */
void *il_cuda_stream_ptr(void);
void *il_cuda_blas_handle(void);
/* The last launch's error as an inferlab error naming what (IL_OK when none): a kernel's run
 * calls it after its launches, so a bad launch is reported at its node, not at the next sync. */
il_status il_cuda_check(const char *what);

/* Row-major C = alpha op(A) op(B) + beta C for `batch` products whose A, B, C lie sa, sb, sc
 * elements apart. dt: IL_F32, IL_F16 or IL_BF16 for all three matrices (sums in float32);
 * precision IL_PREC_TF32 lets float32 products use TF32 tensor cores, IL_PREC_FP32 keeps
 * them exact. */
il_status il_cuda_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda,
                       int64_t sa, const void *b, int64_t ldb, int64_t sb, float beta, void *c, int64_t ldc,
                       int64_t sc, int64_t batch, il_dtype dt, int precision);
/* dst[i] = src[i] converted between IL_F32, IL_F16 and IL_BF16 (round to nearest even). */
void il_cuda_convert(const void *src, il_dtype sdt, void *dst, il_dtype ddt, int64_t n);

/* CUDA graphs on the stream (il_backend_iface.capture_begin ...). */
il_status il_cuda_capture_begin(void);
il_status il_cuda_capture_end(void **graph);
il_status il_cuda_replay(void *graph);
void il_cuda_graph_free(void *graph);
/* Page-locked host memory, so copies to and from the device run at full speed and async. */
void *il_cuda_host_alloc(size_t bytes);
void il_cuda_host_free(void *p);
/* Device memory in use on the device (all processes) and in total, from cudaMemGetInfo. */
il_status il_cuda_mem_info(size_t *used, size_t *total);
/* "driver 13.0, runtime 13.0, cuBLAS 130100" style versions, and the compute capability. */
const char *il_cuda_versions(void);
int il_cuda_cc(void);

/* 2-D convolution on cuDNN (cudnn.cu): y = clip(conv(x, w) + bias + z, lo, hi) in NCHW. */
typedef struct il_cudnn_conv_desc {
    int64_t n, c, h, w;       /* input */
    int64_t m, kh, kw;        /* output channels, window */
    int64_t oh, ow;           /* output size (the node's: asymmetric padding cuDNN cannot do is refused) */
    int64_t sh, sw, dh, dw, ph, pw, group;
    il_dtype dt;              /* IL_F32, IL_F16, IL_BF16: x, w, z and y */
    int precision;            /* il_precision: TF32 allowed or not for float32 */
    int act;                  /* 0: none; 1: clip to [lo, hi] (Relu: 0, +inf) */
    float lo, hi;
    int has_z;                /* a residual input added before the activation */
    int nhwc;                 /* compute channels-last (filters converted to it at create) */
    int x_nhwc, z_nhwc, y_nhwc; /* how the plan holds x, z and y (transposed through the workspace
                                   when that differs from nhwc) */
} il_cudnn_conv_desc;
typedef struct il_cudnn_conv il_cudnn_conv;
int il_cudnn_available(const char **why);
const char *il_cudnn_version(void); /* "cuDNN 9.19.0", "" when not loaded */
/* Descriptors, weights (float32 host [m, c/group, kh, kw], bias [m] or NULL) converted to d->dt
 * on the device, and the algorithm cuDNN's search timed fastest on these shapes. */
il_status il_cudnn_conv_create(const il_cudnn_conv_desc *d, const float *w_host, const float *b_host,
                               il_cudnn_conv **out);
size_t il_cudnn_conv_workspace_total(const il_cudnn_conv *cv); /* what run needs, transposes included */
const char *il_cudnn_conv_what(const il_cudnn_conv *cv); /* the algorithm and fusion chosen */
il_status il_cudnn_conv_run(const il_cudnn_conv *cv, const void *x, const void *z, void *y, void *ws,
                            size_t ws_bytes);
void il_cudnn_conv_free(il_cudnn_conv *cv);
/* [N, C, S] -> [N, S, C] (to_nhwc) or back, es-byte elements (4 or 2). */
void il_cuda_nchw_nhwc(const void *src, void *dst, int64_t N, int64_t C, int64_t S, size_t es, int to_nhwc);

/* Max / average pooling on cuDNN, NCHW or NHWC (GlobalAveragePool: the window is the plane). */
typedef struct il_cudnn_pool il_cudnn_pool;
typedef struct il_cudnn_pool_desc {
    int64_t n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
    int mode;                 /* 0 max, 1 average counting padding, 2 average not counting it */
    il_dtype dt;
    int nhwc;                 /* x (and y) channels-last */
} il_cudnn_pool_desc;
il_status il_cudnn_pool_create(const il_cudnn_pool_desc *d, il_cudnn_pool **out);
il_status il_cudnn_pool_run(const il_cudnn_pool *pl, const void *x, void *y);
void il_cudnn_pool_free(il_cudnn_pool *pl);

/* Row-major C = alpha op(A) op(B) + beta C, op = transpose when ta/tb (as il_sgemm). */
il_status il_cuda_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* A 2-D sliding window over [N, C, H, W] input (Conv, MaxPool). */
typedef struct il_cuda_win {
    int64_t c, h, w;          /* input channels (all groups) and size */
    int64_t oh, ow;           /* output size */
    int64_t kh, kw, sh, sw, dh, dw, ph, pw;
} il_cuda_win;

/* col[r, b*OH*OW + o] for r = (ci, kh, kw) over channels c0..c0+cg of images x[0..nb) (x points
 * at image 0 of the chunk); zero where the window hangs over the padding. */
void il_cuda_im2col(const float *x, int64_t nb, const il_cuda_win *g, int64_t c0, int64_t cg, float *col);
/* The adjoint: dx[...] += col entries, gathered per input element (no atomics: deterministic). */
void il_cuda_col2im(const float *col, int64_t nb, const il_cuda_win *g, int64_t c0, int64_t cg, float *dx);
/* [mg, nb*S] (channel-major, as the gemm writes it) <-> [nb, M, S] at channel offset m0.
 * to_nchw writes y = src + bias[m0 + m] (bias may be NULL); from_nchw gathers dy into dst. */
void il_cuda_cm_to_nchw(const float *src, int64_t mg, int64_t nb, int64_t S, int64_t M, int64_t m0, const float *bias,
                        float *y);
void il_cuda_nchw_to_cm(const float *y, int64_t mg, int64_t nb, int64_t S, int64_t M, int64_t m0, float *dst);
/* out[c] += sum over n, s of x[n, c, s] (bias gradients); fixed order. */
void il_cuda_channel_sum(const float *x, int64_t N, int64_t C, int64_t S, float *out);
/* out[j] += scale * sum over rows of x[rows, cols] (Gemm's C gradient). */
void il_cuda_col_sum(const float *x, int64_t rows, int64_t cols, float scale, float *out);
/* y[i, j] = beta * c[(i % cm), (j % cn)] broadcast over [rows, cols] (Gemm's C before the product). */
void il_cuda_broadcast_rows(const float *c, int64_t cm, int64_t cn, float beta, int64_t rows, int64_t cols, float *y);

/* BatchNormalization in training: batch statistics (saved in mean/rstd, device, C each),
 * y, and the running statistics updated as ONNX defines them (variance unbiased). */
void il_cuda_bn_train(const float *x, int64_t N, int64_t C, int64_t S, const float *gamma, const float *beta,
                      float eps, float momentum, float *run_mean, float *run_var, float *mean, float *rstd, float *y);
void il_cuda_bn_infer(const float *x, int64_t N, int64_t C, int64_t S, const float *gamma, const float *beta,
                      const float *run_mean, const float *run_var, float eps, float *y);
/* dx += ..., dgamma += sum dy x^, dbeta += sum dy (any of the three may be NULL). */
void il_cuda_bn_backward(const float *x, const float *dy, int64_t N, int64_t C, int64_t S, const float *gamma,
                         const float *mean, const float *rstd, float *dx, float *dgamma, float *dbeta);

/* y = min(max(x, lo), hi) (Relu: lo 0, hi +inf); dx += dy where lo < x < hi. */
void il_cuda_clip(const float *x, int64_t n, float lo, float hi, float *y);
void il_cuda_clip_backward(const float *x, const float *dy, int64_t n, float lo, float hi, float *dx);
/* y = a + b (same shape); dst += scale * src. */
void il_cuda_add(const float *a, const float *b, int64_t n, float *y);
void il_cuda_axpy(const float *src, int64_t n, float scale, float *dst);

/* MaxPool over planes [N*C]; arg (int32, one per output) keeps the winner for backward. */
void il_cuda_maxpool(const float *x, int64_t planes, const il_cuda_win *g, float *y, int32_t *arg);
void il_cuda_maxpool_backward(const float *dy, const int32_t *arg, int64_t planes, const il_cuda_win *g, float *dx);
/* GlobalAveragePool over planes of S values; backward spreads dy / S. */
void il_cuda_gap(const float *x, int64_t planes, int64_t S, float *y);
void il_cuda_gap_backward(const float *dy, int64_t planes, int64_t S, float *dx);

#ifdef __cplusplus
}
#endif
#endif
