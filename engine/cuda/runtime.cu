/*
 * runtime.cu - device memory, copies, the stream and the cuBLAS handle (cuda.h).
 *
 * One stream on device 0 for everything, so kernels, gemms and copies run in issue order and
 * nothing needs events. Copies to and from the host synchronize (the host reads the result
 * next). cuBLAS is column-major; a row-major product C = A B is computed as C^T = B^T A^T.
 */
#include "engine/cuda/cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <stdio.h>

/* cuBLAS is opened when a GPU is first used, not linked: the library (with cuBLASLt, ~0.5 GB)
 * costs every run of the program ~90 ms to load, GPU or not. */
static struct {
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*set_math)(cublasHandle_t, cublasMath_t);
    cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const float *,
                            const float *, int, const float *, int, const float *, float *, int);
    cublasStatus_t (*gemm_batched)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                                   const void *, cudaDataType, int, long long, const void *, cudaDataType, int,
                                   long long, const void *, void *, cudaDataType, int, long long, int,
                                   cublasComputeType_t, cublasGemmAlgo_t);
    int (*get_version)(void);
} blas;

static int open_cublas(void) {
    const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    void *h = NULL;
    for (int i = 0; i < 3 && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) return 0;
    blas.create = (decltype(blas.create))dlsym(h, "cublasCreate_v2");
    blas.set_stream = (decltype(blas.set_stream))dlsym(h, "cublasSetStream_v2");
    blas.set_math = (decltype(blas.set_math))dlsym(h, "cublasSetMathMode");
    blas.sgemm = (decltype(blas.sgemm))dlsym(h, "cublasSgemm_v2");
    blas.gemm_batched = (decltype(blas.gemm_batched))dlsym(h, "cublasGemmStridedBatchedEx");
    blas.get_version = (decltype(blas.get_version))dlsym(h, "cublasGetCudartVersion");
    return blas.create && blas.set_stream && blas.set_math && blas.sgemm && blas.gemm_batched;
}

static cudaStream_t g_stream;
static cublasHandle_t g_blas;
static int g_state; /* 0 not tried, 1 ready, -1 no device */
static char g_name[256], g_why[256], g_versions[256];
static int g_cc;

extern "C" cudaStream_t il_cuda_stream(void) { return g_stream; }
extern "C" void *il_cuda_stream_ptr(void) { return (void *)g_stream; }
extern "C" void *il_cuda_blas_handle(void) { return (void *)g_blas; }
extern "C" int il_cuda_cc(void) { return g_cc; }

static int probe(void) {
    if (g_state) return g_state;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1) {
        snprintf(g_why, sizeof g_why, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        cudaGetLastError();
        return g_state = -1;
    }
    cudaDeviceProp p;
    if (cudaSetDevice(0) != cudaSuccess || cudaGetDeviceProperties(&p, 0) != cudaSuccess ||
        cudaStreamCreate(&g_stream) != cudaSuccess) {
        snprintf(g_why, sizeof g_why, "CUDA device 0 did not start: %s", cudaGetErrorString(cudaGetLastError()));
        return g_state = -1;
    }
    snprintf(g_name, sizeof g_name, "%s", p.name);
    g_cc = p.major * 10 + p.minor;
    if (!open_cublas() || blas.create(&g_blas) != CUBLAS_STATUS_SUCCESS) {
        snprintf(g_why, sizeof g_why, "cuBLAS (libcublas.so.13) could not be loaded or started");
        return g_state = -1;
    }
    blas.set_stream(g_blas, g_stream);
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    snprintf(g_versions, sizeof g_versions, "driver %d.%d, runtime %d.%d, cuBLAS %d, sm_%d", drv / 1000,
             drv % 1000 / 10, rt / 1000, rt % 1000 / 10, blas.get_version ? blas.get_version() : 0, g_cc);
    /* Plain float32 products: TF32 would change results against the CPU reference. */
    blas.set_math(g_blas, CUBLAS_PEDANTIC_MATH);
    return g_state = 1;
}

extern "C" int il_cuda_available(const char **why) {
    int ok = probe() == 1;
    if (why) *why = ok ? "" : g_why;
    return ok;
}

extern "C" const char *il_cuda_device_name(void) { return probe() == 1 ? g_name : ""; }

extern "C" il_status il_cuda_init(void) {
    return probe() == 1 ? IL_OK : il_error(IL_ERR_CUDA, "%s", g_why);
}

static il_status cuda_err(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return IL_OK;
    return il_error(IL_ERR_CUDA, "%s: %s", what, cudaGetErrorString(e));
}

extern "C" void *il_cuda_malloc(size_t bytes) {
    if (probe() != 1) {
        il_error(IL_ERR_CUDA, "%s", g_why);
        return NULL;
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError();
        il_error(IL_ERR_OOM, "cudaMalloc of %zu bytes: %s", bytes, cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

extern "C" void il_cuda_free(void *p) {
    if (p) cudaFree(p);
}

extern "C" il_status il_cuda_upload(void *dst, const void *src, size_t bytes) {
    if (!bytes) return IL_OK;
    return cuda_err(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_stream), "copy to the device");
}

extern "C" il_status il_cuda_download(void *dst, const void *src, size_t bytes) {
    if (!bytes) return IL_OK;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(g_stream);
    return cuda_err(e, "copy from the device");
}

extern "C" il_status il_cuda_copy(void *dst, const void *src, size_t bytes) {
    if (!bytes) return IL_OK;
    return cuda_err(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g_stream), "device copy");
}

extern "C" il_status il_cuda_zero(void *dst, size_t bytes) {
    if (!bytes) return IL_OK;
    return cuda_err(cudaMemsetAsync(dst, 0, bytes, g_stream), "device memset");
}

extern "C" il_status il_cuda_sync(void) {
    cudaError_t e = cudaStreamSynchronize(g_stream);
    if (e == cudaSuccess) e = cudaGetLastError();
    return cuda_err(e, "CUDA kernel");
}

extern "C" il_status il_cuda_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (!m || !n) return IL_OK;
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return il_error(IL_ERR_UNSUPPORTED, "a %lldx%lldx%lld product is too large for one cuBLAS call", (long long)m,
                        (long long)n, (long long)k);
    /* row-major C[m,n] = op(A) op(B)  <=>  column-major C^T[n,m] = op(B)^T op(A)^T */
    cublasStatus_t s = blas.sgemm(g_blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n,
                                   (int)m, (int)k, &alpha, b, (int)ldb, a, (int)lda, &beta, c, (int)ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return il_error(IL_ERR_CUDA, "cublasSgemm failed (status %d)", (int)s);
    return IL_OK;
}

extern "C" const char *il_cuda_versions(void) { return probe() == 1 ? g_versions : ""; }

extern "C" il_status il_cuda_check(const char *what) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? IL_OK : il_error(IL_ERR_CUDA, "%s: %s", what, cudaGetErrorString(e));
}

static cudaDataType cuda_dt(il_dtype dt) {
    return dt == IL_F16 ? CUDA_R_16F : dt == IL_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

extern "C" il_status il_cuda_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a,
                                  int64_t lda, int64_t sa, const void *b, int64_t ldb, int64_t sb, float beta,
                                  void *c, int64_t ldc, int64_t sc, int64_t batch, il_dtype dt, int precision) {
    if (!m || !n || !batch) return IL_OK;
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || batch > INT32_MAX || lda > INT32_MAX ||
        ldb > INT32_MAX || ldc > INT32_MAX)
        return il_error(IL_ERR_UNSUPPORTED, "a %lldx%lldx%lld product is too large for one cuBLAS call", (long long)m,
                        (long long)n, (long long)k);
    if (dt != IL_F32 && dt != IL_F16 && dt != IL_BF16)
        return il_error(IL_ERR_UNSUPPORTED, "cuBLAS products of %s", il_dtype_name(dt));
    /* float32 sums for every type; TF32 only when asked (it changes float32 results) */
    cublasComputeType_t ct = dt == IL_F32 && precision != IL_PREC_TF32 ? CUBLAS_COMPUTE_32F_PEDANTIC
                             : dt == IL_F32                           ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                      : CUBLAS_COMPUTE_32F;
    cudaDataType t = cuda_dt(dt);
    /* row-major C[m,n] = op(A) op(B)  <=>  column-major C^T[n,m] = op(B)^T op(A)^T */
    cublasStatus_t s = blas.gemm_batched(g_blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                         (int)n, (int)m, (int)k, &alpha, b, t, (int)ldb, sb, a, t, (int)lda, sa, &beta,
                                         c, t, (int)ldc, sc, (int)batch, ct, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS)
        return il_error(IL_ERR_CUDA, "cublasGemmStridedBatchedEx (%s, %lldx%lldx%lld x%lld) failed (status %d)",
                        il_dtype_name(dt), (long long)m, (long long)n, (long long)k, (long long)batch, (int)s);
    return IL_OK;
}

extern "C" il_status il_cuda_capture_begin(void) {
    return cuda_err(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal), "CUDA graph capture");
}

extern "C" il_status il_cuda_capture_end(void **graph) {
    cudaGraph_t gr = NULL;
    cudaGraphExec_t ex = NULL;
    *graph = NULL;
    cudaError_t e = cudaStreamEndCapture(g_stream, &gr);
    if (e == cudaSuccess) e = cudaGraphInstantiate(&ex, gr, 0);
    if (gr) cudaGraphDestroy(gr);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return il_error(IL_ERR_CUDA, "CUDA graph capture: %s", cudaGetErrorString(e));
    }
    *graph = (void *)ex;
    return IL_OK;
}

extern "C" il_status il_cuda_replay(void *graph) {
    return cuda_err(cudaGraphLaunch((cudaGraphExec_t)graph, g_stream), "CUDA graph launch");
}

extern "C" void il_cuda_graph_free(void *graph) {
    if (graph) cudaGraphExecDestroy((cudaGraphExec_t)graph);
}

extern "C" void *il_cuda_host_alloc(size_t bytes) {
    void *p = NULL;
    if (probe() != 1 || cudaMallocHost(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        il_error(IL_ERR_OOM, "cudaMallocHost of %zu bytes failed", bytes);
        return NULL;
    }
    return p;
}

extern "C" void il_cuda_host_free(void *p) {
    if (p) cudaFreeHost(p);
}

extern "C" il_status il_cuda_mem_info(size_t *used, size_t *total) {
    size_t fr = 0, tot = 0;
    il_status st = cuda_err(cudaMemGetInfo(&fr, &tot), "cudaMemGetInfo");
    if (used) *used = tot - fr;
    if (total) *total = tot;
    return st;
}
