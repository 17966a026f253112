/*
 * cudnn.cu - 2-D convolution on cuDNN 9 (cuda.h: il_cudnn_conv_*), for the cuda backend's
 * Conv / FusedConv kernels (conv_cudnn.c).
 *
 * cuDNN is opened with dlopen on first use, as cuBLAS is (runtime.cu): the libraries are large,
 * and a machine without them (CI) still builds and runs everything else. The legacy convolution
 * API is enough here: one descriptor set per node, made at plan build, where cuDNN's own search
 * (cudnnFindConvolutionForwardAlgorithmEx) times every algorithm on the node's real shapes and
 * the fastest is kept with its workspace size. The bias, the residual input and Relu are folded
 * into the convolution (cudnnConvolutionBiasActivationForward) when that runs and is faster on
 * these shapes (it is timed too); otherwise one epilogue kernel adds bias and residual and clips
 * in a single pass over the output. Weights are kept by the node, converted once to the plan's
 * type (and to channels-last filters when it computes channels-last: half-precision plans, where
 * cuDNN's tensor-core kernels read NHWC directly; an operand the plan holds in the other layout
 * is transposed through the workspace). Arithmetic is float32 in every case (cuDNN's "pseudo half" for half data); precision
 * fp32 keeps TF32 off (CUDNN_FMA_MATH), tf32 allows it, fp16/bf16 use the tensor cores.
 */
#include "engine/cuda/cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" cudaStream_t il_cuda_stream(void);

typedef cudnnStatus_t st_t;
static struct {
    st_t (*create)(cudnnHandle_t *);
    st_t (*set_stream)(cudnnHandle_t, cudaStream_t);
    size_t (*version)(void);
    const char *(*errstr)(st_t);
    st_t (*new_tensor)(cudnnTensorDescriptor_t *);
    st_t (*del_tensor)(cudnnTensorDescriptor_t);
    st_t (*set_tensor)(cudnnTensorDescriptor_t, cudnnTensorFormat_t, cudnnDataType_t, int, int, int, int);
    st_t (*new_filter)(cudnnFilterDescriptor_t *);
    st_t (*del_filter)(cudnnFilterDescriptor_t);
    st_t (*set_filter)(cudnnFilterDescriptor_t, cudnnDataType_t, cudnnTensorFormat_t, int, int, int, int);
    st_t (*new_conv)(cudnnConvolutionDescriptor_t *);
    st_t (*del_conv)(cudnnConvolutionDescriptor_t);
    st_t (*set_conv)(cudnnConvolutionDescriptor_t, int, int, int, int, int, int, cudnnConvolutionMode_t,
                     cudnnDataType_t);
    st_t (*set_groups)(cudnnConvolutionDescriptor_t, int);
    st_t (*set_math)(cudnnConvolutionDescriptor_t, cudnnMathType_t);
    st_t (*out_dims)(cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t, int *, int *,
                     int *, int *);
    st_t (*find)(cudnnHandle_t, cudnnTensorDescriptor_t, const void *, cudnnFilterDescriptor_t, const void *,
                 cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, void *, int, int *,
                 cudnnConvolutionFwdAlgoPerf_t *, void *, size_t);
    st_t (*ws_size)(cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t, cudnnConvolutionDescriptor_t,
                    cudnnTensorDescriptor_t, cudnnConvolutionFwdAlgo_t, size_t *);
    st_t (*forward)(cudnnHandle_t, const void *, cudnnTensorDescriptor_t, const void *, cudnnFilterDescriptor_t,
                    const void *, cudnnConvolutionDescriptor_t, cudnnConvolutionFwdAlgo_t, void *, size_t,
                    const void *, cudnnTensorDescriptor_t, void *);
    st_t (*fused)(cudnnHandle_t, const void *, cudnnTensorDescriptor_t, const void *, cudnnFilterDescriptor_t,
                  const void *, cudnnConvolutionDescriptor_t, cudnnConvolutionFwdAlgo_t, void *, size_t, const void *,
                  cudnnTensorDescriptor_t, const void *, cudnnTensorDescriptor_t, const void *,
                  cudnnActivationDescriptor_t, cudnnTensorDescriptor_t, void *);
    st_t (*new_act)(cudnnActivationDescriptor_t *);
    st_t (*del_act)(cudnnActivationDescriptor_t);
    st_t (*set_act)(cudnnActivationDescriptor_t, cudnnActivationMode_t, cudnnNanPropagation_t, double);
    st_t (*new_pool)(cudnnPoolingDescriptor_t *);
    st_t (*del_pool)(cudnnPoolingDescriptor_t);
    st_t (*set_pool)(cudnnPoolingDescriptor_t, cudnnPoolingMode_t, cudnnNanPropagation_t, int, int, int, int, int,
                     int);
    st_t (*pool_fwd)(cudnnHandle_t, cudnnPoolingDescriptor_t, const void *, cudnnTensorDescriptor_t, const void *,
                     const void *, cudnnTensorDescriptor_t, void *);
} dnn;

static cudnnHandle_t g_dnn;
static int g_dnn_state; /* 0 not tried, 1 ready, -1 unavailable */
static char g_dnn_why[256], g_dnn_version[64];

#define SYM(field, name) (*(void **)&dnn.field = dlsym(h, name))

static int open_cudnn(void) {
    if (g_dnn_state) return g_dnn_state;
    const char *why = NULL;
    if (!il_cuda_available(&why)) {
        snprintf(g_dnn_why, sizeof g_dnn_why, "%s", why ? why : "no CUDA device");
        return g_dnn_state = -1;
    }
    const char *names[] = {"libcudnn.so.9", "libcudnn.so"};
    void *h = NULL;
    for (int i = 0; i < 2 && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        snprintf(g_dnn_why, sizeof g_dnn_why, "cuDNN 9 (libcudnn.so.9) could not be loaded: %s", dlerror());
        return g_dnn_state = -1;
    }
    int ok = SYM(create, "cudnnCreate") && SYM(set_stream, "cudnnSetStream") && SYM(version, "cudnnGetVersion") &&
             SYM(errstr, "cudnnGetErrorString") && SYM(new_tensor, "cudnnCreateTensorDescriptor") &&
             SYM(del_tensor, "cudnnDestroyTensorDescriptor") && SYM(set_tensor, "cudnnSetTensor4dDescriptor") &&
             SYM(new_filter, "cudnnCreateFilterDescriptor") && SYM(del_filter, "cudnnDestroyFilterDescriptor") &&
             SYM(set_filter, "cudnnSetFilter4dDescriptor") && SYM(new_conv, "cudnnCreateConvolutionDescriptor") &&
             SYM(del_conv, "cudnnDestroyConvolutionDescriptor") && SYM(set_conv, "cudnnSetConvolution2dDescriptor") &&
             SYM(set_groups, "cudnnSetConvolutionGroupCount") && SYM(set_math, "cudnnSetConvolutionMathType") &&
             SYM(out_dims, "cudnnGetConvolution2dForwardOutputDim") &&
             SYM(find, "cudnnFindConvolutionForwardAlgorithmEx") &&
             SYM(ws_size, "cudnnGetConvolutionForwardWorkspaceSize") && SYM(forward, "cudnnConvolutionForward") &&
             SYM(fused, "cudnnConvolutionBiasActivationForward") && SYM(new_act, "cudnnCreateActivationDescriptor") &&
             SYM(del_act, "cudnnDestroyActivationDescriptor") && SYM(set_act, "cudnnSetActivationDescriptor") &&
             SYM(new_pool, "cudnnCreatePoolingDescriptor") && SYM(del_pool, "cudnnDestroyPoolingDescriptor") &&
             SYM(set_pool, "cudnnSetPooling2dDescriptor") && SYM(pool_fwd, "cudnnPoolingForward");
    if (!ok) {
        snprintf(g_dnn_why, sizeof g_dnn_why, "libcudnn.so.9 lacks the convolution API");
        return g_dnn_state = -1;
    }
    st_t s = dnn.create(&g_dnn);
    if (s == CUDNN_STATUS_SUCCESS) s = dnn.set_stream(g_dnn, il_cuda_stream());
    if (s != CUDNN_STATUS_SUCCESS) {
        snprintf(g_dnn_why, sizeof g_dnn_why, "cudnnCreate: %s", dnn.errstr(s));
        return g_dnn_state = -1;
    }
    size_t v = dnn.version();
    snprintf(g_dnn_version, sizeof g_dnn_version, "cuDNN %zu.%zu.%zu", v / 10000, v % 10000 / 100, v % 100);
    return g_dnn_state = 1;
}

extern "C" int il_cudnn_available(const char **why) {
    int ok = open_cudnn() == 1;
    if (why) *why = ok ? "" : g_dnn_why;
    return ok;
}

extern "C" const char *il_cudnn_version(void) { return open_cudnn() == 1 ? g_dnn_version : ""; }

static il_status dnn_err(st_t s, const char *what) {
    if (s == CUDNN_STATUS_SUCCESS) return IL_OK;
    return il_error(s == CUDNN_STATUS_ALLOC_FAILED ? IL_ERR_OOM : IL_ERR_CUDA, "cuDNN %s: %s", what, dnn.errstr(s));
}

static cudnnDataType_t dnn_type(il_dtype dt) {
    return dt == IL_F16 ? CUDNN_DATA_HALF : dt == IL_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

struct il_cudnn_conv {
    il_cudnn_conv_desc d;
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnActivationDescriptor_t act;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws;
    int fused;
    void *wdev;  /* weights in the plan's type */
    void *bdev;  /* bias in the plan's type (zeros when the node has none: the fused call needs one) */
    float *b32;  /* bias in float32, for the epilogue; NULL without bias */
    int nhwc;    /* computes channels-last; operands held otherwise are transposed in the workspace */
    size_t tx, tz, ty; /* workspace bytes of those transposes (x, z in; y out), after cuDNN's own */
    char what[160];
};

/* ---------------------------------------------------------------- epilogue */

template <typename T> __device__ static inline float ldf(const T *p, int64_t i) { return (float)p[i]; }
template <> __device__ inline float ldf<__half>(const __half *p, int64_t i) { return __half2float(p[i]); }
template <> __device__ inline float ldf<__nv_bfloat16>(const __nv_bfloat16 *p, int64_t i) {
    return __bfloat162float(p[i]);
}
template <typename T> __device__ static inline T cvt(float v) { return (T)v; }
template <> __device__ inline __half cvt<__half>(float v) { return __float2half_rn(v); }
template <> __device__ inline __nv_bfloat16 cvt<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

/* y = clip(y + bias[channel] + z, lo, hi); channel = i / S % M (NCHW) or i % M (NHWC) */
template <typename T>
__global__ static void k_epilogue(T *y, const float *bias, const T *z, int64_t n, int64_t S, int64_t M, float lo,
                                  float hi, int nhwc) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
        float v = ldf(y, i);
        if (bias) v += bias[nhwc ? i % M : i / S % M];
        if (z) v += ldf(z, i);
        v = fminf(fmaxf(v, lo), hi);
        y[i] = cvt<T>(v);
    }
}

static void epilogue(const il_cudnn_conv *cv, void *y, const void *z) {
    const il_cudnn_conv_desc *d = &cv->d;
    int64_t S = d->oh * d->ow, n = d->n * d->m * S, b = (n + 255) / 256;
    unsigned g = (unsigned)(b > 65535 * 16 ? 65535 * 16 : b);
    float lo = d->act ? d->lo : -INFINITY, hi = d->act ? d->hi : INFINITY;
    cudaStream_t s = il_cuda_stream();
    if (d->dt == IL_F16)
        k_epilogue<__half><<<g, 256, 0, s>>>((__half *)y, cv->b32, (const __half *)z, n, S, d->m, lo, hi, cv->nhwc);
    else if (d->dt == IL_BF16)
        k_epilogue<__nv_bfloat16><<<g, 256, 0, s>>>((__nv_bfloat16 *)y, cv->b32, (const __nv_bfloat16 *)z, n, S, d->m,
                                                     lo, hi, cv->nhwc);
    else
        k_epilogue<float><<<g, 256, 0, s>>>((float *)y, cv->b32, (const float *)z, n, S, d->m, lo, hi, cv->nhwc);
}

/* [N, C, S] <-> [N, S, C] (to_nhwc: src NCHW, dst NHWC), element size es bytes */
template <typename T>
__global__ static void k_transpose(const T *src, T *dst, int64_t N, int64_t C, int64_t S, int to_nhwc) {
    int64_t n = N * C * S;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
        /* i indexes dst */
        int64_t b = i / (C * S), r = i - b * C * S;
        if (to_nhwc) {
            int64_t s = r / C, c = r - s * C;
            dst[i] = src[(b * C + c) * S + s];
        } else {
            int64_t c = r / S, s = r - c * S;
            dst[i] = src[(b * S + s) * C + c];
        }
    }
}

extern "C" void il_cuda_nchw_nhwc(const void *src, void *dst, int64_t N, int64_t C, int64_t S, size_t es,
                                  int to_nhwc) {
    int64_t n = N * C * S, b = (n + 255) / 256;
    unsigned g = (unsigned)(b > 65535 * 16 ? 65535 * 16 : b);
    if (es == 4)
        k_transpose<float><<<g, 256, 0, il_cuda_stream()>>>((const float *)src, (float *)dst, N, C, S, to_nhwc);
    else
        k_transpose<unsigned short>
            <<<g, 256, 0, il_cuda_stream()>>>((const unsigned short *)src, (unsigned short *)dst, N, C, S, to_nhwc);
}

/* ---------------------------------------------------------------- build */

/* host float32 -> device copy in type dt (through a float32 staging buffer) */
static il_status upload_as(const float *host, int64_t n, il_dtype dt, void **out) {
    size_t es = dt == IL_F32 ? 4 : 2;
    if (!(*out = il_cuda_malloc((size_t)n * es))) return IL_ERR_OOM;
    if (dt == IL_F32) return il_cuda_upload(*out, host, (size_t)n * 4);
    float *tmp = (float *)il_cuda_malloc((size_t)n * 4);
    if (!tmp) return IL_ERR_OOM;
    il_status st = il_cuda_upload(tmp, host, (size_t)n * 4);
    if (!st) il_cuda_convert(tmp, IL_F32, *out, dt, n);
    if (!st) st = il_cuda_sync();
    il_cuda_free(tmp);
    return st;
}

static float time_ms(il_status (*fn)(const il_cudnn_conv *, const void *, const void *, void *, void *, size_t),
                     const il_cudnn_conv *cv, const void *x, const void *z, void *y, void *ws) {
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    if (fn(cv, x, z, y, ws, cv->ws)) { /* warm-up; an error means "not this way" */
        il_error_clear();
        cudaGetLastError();
        cudaEventDestroy(a), cudaEventDestroy(b);
        return INFINITY;
    }
    cudaEventRecord(a, il_cuda_stream());
    for (int i = 0; i < 3; i++) fn(cv, x, z, y, ws, cv->ws);
    cudaEventRecord(b, il_cuda_stream());
    float ms = INFINITY;
    if (cudaEventSynchronize(b) == cudaSuccess) cudaEventElapsedTime(&ms, a, b);
    cudaGetLastError();
    cudaEventDestroy(a), cudaEventDestroy(b);
    return ms;
}

static il_status run_plain(const il_cudnn_conv *cv, const void *x, const void *z, void *y, void *ws, size_t wsb) {
    const float one = 1.0f, zero = 0.0f;
    il_status st = dnn_err(dnn.forward(g_dnn, &one, cv->x, x, cv->w, cv->wdev, cv->conv, cv->algo, ws, wsb, &zero,
                                       cv->y, y),
                           "cudnnConvolutionForward");
    if (!st && (cv->b32 || cv->d.has_z || cv->d.act)) {
        epilogue(cv, y, cv->d.has_z ? z : NULL);
        st = il_cuda_check("conv epilogue");
    }
    return st;
}

static il_status run_fused(const il_cudnn_conv *cv, const void *x, const void *z, void *y, void *ws, size_t wsb) {
    const float one = 1.0f, zero = 0.0f;
    return dnn_err(dnn.fused(g_dnn, &one, cv->x, x, cv->w, cv->wdev, cv->conv, cv->algo, ws, wsb,
                             cv->d.has_z ? &one : &zero, cv->y, cv->d.has_z ? z : y, cv->b, cv->bdev, cv->act, cv->y,
                             y),
                   "cudnnConvolutionBiasActivationForward");
}

extern "C" void il_cudnn_conv_free(il_cudnn_conv *cv) {
    if (!cv) return;
    if (cv->x) dnn.del_tensor(cv->x);
    if (cv->y) dnn.del_tensor(cv->y);
    if (cv->b) dnn.del_tensor(cv->b);
    if (cv->w) dnn.del_filter(cv->w);
    if (cv->conv) dnn.del_conv(cv->conv);
    if (cv->act) dnn.del_act(cv->act);
    il_cuda_free(cv->wdev);
    il_cuda_free(cv->bdev);
    il_cuda_free(cv->b32);
    free(cv);
}

static int i32(int64_t v) { return v >= 0 && v <= INT32_MAX; }

extern "C" il_status il_cudnn_conv_create(const il_cudnn_conv_desc *d, const float *w_host, const float *b_host,
                                          il_cudnn_conv **out) {
    *out = NULL;
    if (open_cudnn() != 1) return il_error(IL_ERR_CUDA, "%s", g_dnn_why);
    if (!i32(d->n * d->c * d->h * d->w) || !i32(d->n * d->m * d->oh * d->ow))
        return il_error(IL_ERR_UNSUPPORTED, "cuDNN: a tensor of 2^31 elements or more");
    il_cudnn_conv *cv = (il_cudnn_conv *)calloc(1, sizeof *cv);
    if (!cv) return il_error(IL_ERR_OOM, "out of memory");
    cv->d = *d;
    cudnnDataType_t t = dnn_type(d->dt);
    int cg = (int)(d->c / d->group);
    il_status st = dnn_err(dnn.new_tensor(&cv->x), "descriptor");
    if (!st) st = dnn_err(dnn.new_tensor(&cv->y), "descriptor");
    if (!st) st = dnn_err(dnn.new_tensor(&cv->b), "descriptor");
    if (!st) st = dnn_err(dnn.new_filter(&cv->w), "descriptor");
    if (!st) st = dnn_err(dnn.new_conv(&cv->conv), "descriptor");
    if (!st) st = dnn_err(dnn.new_act(&cv->act), "descriptor");
    cv->nhwc = d->nhwc;
    cudnnTensorFormat_t fmt = d->nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    size_t es = d->dt == IL_F32 ? 4 : 2, al = 255;
    if (d->nhwc != d->x_nhwc) cv->tx = ((size_t)(d->n * d->c * d->h * d->w) * es + al) & ~al;
    if (d->has_z && d->nhwc != d->z_nhwc) cv->tz = ((size_t)(d->n * d->m * d->oh * d->ow) * es + al) & ~al;
    if (d->nhwc != d->y_nhwc) cv->ty = ((size_t)(d->n * d->m * d->oh * d->ow) * es + al) & ~al;
    if (!st)
        st = dnn_err(dnn.set_tensor(cv->x, fmt, t, (int)d->n, (int)d->c, (int)d->h, (int)d->w), "input descriptor");
    if (!st)
        st = dnn_err(dnn.set_filter(cv->w, t, fmt, (int)d->m, cg, (int)d->kh, (int)d->kw), "filter descriptor");
    if (!st)
        st = dnn_err(dnn.set_conv(cv->conv, (int)d->ph, (int)d->pw, (int)d->sh, (int)d->sw, (int)d->dh, (int)d->dw,
                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                     "convolution descriptor");
    if (!st && d->group > 1) st = dnn_err(dnn.set_groups(cv->conv, (int)d->group), "group count");
    if (!st)
        st = dnn_err(dnn.set_math(cv->conv, d->precision == IL_PREC_FP32 && d->dt == IL_F32 ? CUDNN_FMA_MATH
                                            : d->dt == IL_F32                               ? CUDNN_DEFAULT_MATH
                                                                                            : CUDNN_TENSOR_OP_MATH),
                     "math type");
    int on, oc, oh, ow;
    if (!st) st = dnn_err(dnn.out_dims(cv->conv, cv->x, cv->w, &on, &oc, &oh, &ow), "output size");
    if (!st && (on != d->n || oc != d->m || oh != d->oh || ow != d->ow))
        st = il_error(IL_ERR_UNSUPPORTED, "cuDNN's output %dx%dx%dx%d differs from the node's (asymmetric padding)", on,
                      oc, oh, ow);
    if (!st)
        st = dnn_err(dnn.set_tensor(cv->y, fmt, t, (int)d->n, (int)d->m, (int)d->oh, (int)d->ow), "output descriptor");
    if (!st) st = dnn_err(dnn.set_tensor(cv->b, fmt, t, 1, (int)d->m, 1, 1), "bias descriptor");
    if (!st)
        st = dnn_err(dnn.set_act(cv->act, d->act ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                 CUDNN_PROPAGATE_NAN, 0.0),
                     "activation");
    /* weights and bias, kept by the node in the plan's type */
    int64_t nw = d->m * cg * d->kh * d->kw, ks = d->kh * d->kw;
    float *krsc = NULL; /* channels-last filters: [m, kh, kw, c/group] */
    if (!st && d->nhwc) {
        if (!(krsc = (float *)malloc((size_t)nw * sizeof *krsc))) st = IL_ERR_OOM;
        for (int64_t o = 0; !st && o < d->m; o++)
            for (int64_t ci = 0; ci < cg; ci++)
                for (int64_t r = 0; r < ks; r++) krsc[(o * ks + r) * cg + ci] = w_host[(o * cg + ci) * ks + r];
    }
    if (!st) st = upload_as(krsc ? krsc : w_host, nw, d->dt, &cv->wdev);
    free(krsc);
    float *zeros = NULL;
    if (!st && !b_host) {
        zeros = (float *)calloc((size_t)d->m, sizeof *zeros);
        st = zeros ? IL_OK : IL_ERR_OOM;
    }
    if (!st) st = upload_as(b_host ? b_host : zeros, d->m, d->dt, &cv->bdev);
    if (!st && b_host) st = upload_as(b_host, d->m, IL_F32, (void **)&cv->b32);
    free(zeros);
    /* cuDNN's search on scratch buffers of the node's sizes */
    size_t xb = (size_t)(d->n * d->c * d->h * d->w) * es,
           yb = (size_t)(d->n * d->m * d->oh * d->ow) * es, free_b = 0, total = 0, cap;
    cudaMemGetInfo(&free_b, &total);
    cap = free_b / 4 < ((size_t)1 << 30) ? free_b / 4 : ((size_t)1 << 30);
    void *x = NULL, *y = NULL, *z = NULL, *ws = NULL;
    if (!st && (!(x = il_cuda_malloc(xb)) || !(y = il_cuda_malloc(yb)) || !(z = il_cuda_malloc(yb))))
        st = il_error_wrap(IL_ERR_OOM, "cuDNN search: ");
    if (!st) st = il_cuda_zero(x, xb);
    if (!st) st = il_cuda_zero(z, yb);
    if (!st && !(ws = il_cuda_malloc(cap))) st = il_error_wrap(IL_ERR_OOM, "cuDNN search workspace: ");
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0, pick = -1;
    if (!st)
        st = dnn_err(dnn.find(g_dnn, cv->x, x, cv->w, cv->wdev, cv->conv, cv->y, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got,
                              perf, ws, cap),
                     "algorithm search");
    for (int i = 0; i < got && pick < 0 && !st; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= cap &&
            !(d->precision == IL_PREC_FP32 && d->dt == IL_F32 && perf[i].mathType == CUDNN_TENSOR_OP_MATH))
            pick = i;
    if (!st && pick < 0) st = il_error(IL_ERR_UNSUPPORTED, "cuDNN found no algorithm for this convolution");
    if (!st) {
        cv->algo = perf[pick].algo;
        cv->ws = perf[pick].memory;
        /* the fused call: Relu or none only, and none only with IMPLICIT_PRECOMP_GEMM */
        float plain = perf[pick].time, fusedt = INFINITY;
        int can_fuse = d->act == 0 || (d->act == 1 && d->lo == 0.0f && isinf(d->hi));
        if (can_fuse && d->act == 0 && cv->algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) can_fuse = 0;
        if (can_fuse) {
            plain = time_ms(run_plain, cv, x, z, y, ws);
            fusedt = time_ms(run_fused, cv, x, z, y, ws);
        }
        cv->fused = fusedt < plain;
        snprintf(cv->what, sizeof cv->what, "algo %d, %zu-byte workspace, %s (%.3f ms vs %s %.3f ms)", (int)cv->algo,
                 cv->ws, cv->fused ? "fused bias/residual/Relu" : "epilogue kernel", cv->fused ? fusedt : plain,
                 cv->fused ? "epilogue" : "fused", cv->fused ? plain : fusedt);
    }
    il_cuda_free(x), il_cuda_free(y), il_cuda_free(z), il_cuda_free(ws);
    if (!st) st = il_cuda_sync();
    if (st) {
        il_cudnn_conv_free(cv);
        return st;
    }
    *out = cv;
    return IL_OK;
}

extern "C" size_t il_cudnn_conv_workspace(const il_cudnn_conv *cv) { return cv->ws; }
extern "C" const char *il_cudnn_conv_what(const il_cudnn_conv *cv) { return cv->what; }

extern "C" size_t il_cudnn_conv_workspace_total(const il_cudnn_conv *cv) {
    return ((cv->ws + 255) & ~(size_t)255) + cv->tx + cv->tz + cv->ty;
}

/* Operands held in the other layout than the one cuDNN computes in go through the workspace,
 * after cuDNN's own part: [cuDNN | x | z | y]. */
extern "C" il_status il_cudnn_conv_run(const il_cudnn_conv *cv, const void *x, const void *z, void *y, void *ws,
                                       size_t ws_bytes) {
    if (ws_bytes < il_cudnn_conv_workspace_total(cv))
        return il_error(IL_ERR_INTERNAL, "cuDNN conv: workspace %zu < %zu", ws_bytes, il_cudnn_conv_workspace_total(cv));
    const il_cudnn_conv_desc *d = &cv->d;
    size_t es = d->dt == IL_F32 ? 4 : 2;
    char *p = (char *)ws + ((cv->ws + 255) & ~(size_t)255);
    int64_t S_in = d->h * d->w, S_out = d->oh * d->ow;
    if (cv->tx) {
        il_cuda_nchw_nhwc(x, p, d->n, d->c, S_in, es, cv->nhwc);
        x = p, p += cv->tx;
    }
    if (cv->tz) {
        il_cuda_nchw_nhwc(z, p, d->n, d->m, S_out, es, cv->nhwc);
        z = p, p += cv->tz;
    }
    void *yc = cv->ty ? (void *)p : y;
    il_status st = cv->fused ? run_fused(cv, x, z, yc, ws, cv->ws) : run_plain(cv, x, z, yc, ws, cv->ws);
    if (!st && cv->ty) {
        il_cuda_nchw_nhwc(yc, y, d->n, d->m, S_out, es, !cv->nhwc);
        st = il_cuda_check("layout change after a convolution");
    }
    return st;
}

/* ---------------------------------------------------------------- pooling */

struct il_cudnn_pool {
    cudnnPoolingDescriptor_t pool;
    cudnnTensorDescriptor_t x, y;
};

extern "C" void il_cudnn_pool_free(il_cudnn_pool *pl) {
    if (!pl) return;
    if (pl->pool) dnn.del_pool(pl->pool);
    if (pl->x) dnn.del_tensor(pl->x);
    if (pl->y) dnn.del_tensor(pl->y);
    free(pl);
}

extern "C" il_status il_cudnn_pool_create(const il_cudnn_pool_desc *d, il_cudnn_pool **out) {
    *out = NULL;
    if (open_cudnn() != 1) return il_error(IL_ERR_CUDA, "%s", g_dnn_why);
    if (!i32(d->n * d->c * d->h * d->w)) return il_error(IL_ERR_UNSUPPORTED, "cuDNN: a tensor of 2^31 elements or more");
    il_cudnn_pool *pl = (il_cudnn_pool *)calloc(1, sizeof *pl);
    if (!pl) return il_error(IL_ERR_OOM, "out of memory");
    cudnnDataType_t t = dnn_type(d->dt);
    cudnnTensorFormat_t fmt = d->nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    cudnnPoolingMode_t mode = d->mode == 0   ? CUDNN_POOLING_MAX_DETERMINISTIC
                              : d->mode == 1 ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                             : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    il_status st = dnn_err(dnn.new_pool(&pl->pool), "descriptor");
    if (!st) st = dnn_err(dnn.new_tensor(&pl->x), "descriptor");
    if (!st) st = dnn_err(dnn.new_tensor(&pl->y), "descriptor");
    if (!st)
        st = dnn_err(dnn.set_pool(pl->pool, mode, CUDNN_PROPAGATE_NAN, (int)d->kh, (int)d->kw, (int)d->ph, (int)d->pw,
                                  (int)d->sh, (int)d->sw),
                     "pooling descriptor");
    if (!st) st = dnn_err(dnn.set_tensor(pl->x, fmt, t, (int)d->n, (int)d->c, (int)d->h, (int)d->w), "input descriptor");
    if (!st)
        st = dnn_err(dnn.set_tensor(pl->y, fmt, t, (int)d->n, (int)d->c, (int)d->oh, (int)d->ow), "output descriptor");
    if (st) {
        il_cudnn_pool_free(pl);
        return st;
    }
    *out = pl;
    return IL_OK;
}

extern "C" il_status il_cudnn_pool_run(const il_cudnn_pool *pl, const void *x, void *y) {
    const float one = 1.0f, zero = 0.0f;
    return dnn_err(dnn.pool_fwd(g_dnn, pl->pool, &one, pl->x, x, &zero, pl->y, y), "cudnnPoolingForward");
}
