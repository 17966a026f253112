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
    return blas.create && blas.set_stream && blas.set_math && blas.sgemm;
}

static cudaStream_t g_stream;
static cublasHandle_t g_blas;
static int g_state; /* 0 not tried, 1 ready, -1 no device */
static char g_name[256], g_why[256];

extern "C" cudaStream_t il_cuda_stream(void) { return g_stream; }

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
    if (!open_cublas() || blas.create(&g_blas) != CUBLAS_STATUS_SUCCESS) {
        snprintf(g_why, sizeof g_why, "cuBLAS (libcublas.so.13) could not be loaded or started");
        return g_state = -1;
    }
    blas.set_stream(g_blas, g_stream);
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
