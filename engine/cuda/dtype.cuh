/*
 * dtype.cuh - device-side helpers shared by the cuda inference kernels (eltwise.cu, rows.cu):
 * one element of a float tensor loaded as float and stored with one rounding, whatever its
 * storage type (float32, float16, bfloat16), and the grid-stride loop they all use.
 */
#ifndef IL_CUDA_DTYPE_CUH
#define IL_CUDA_DTYPE_CUH

#include "engine/cuda/ops.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>

extern "C" cudaStream_t il_cuda_stream(void);

#define IL_CU_THREADS 256
/* Blocks of IL_CU_THREADS for n elements, at least 1 and at most cap. */
static inline unsigned il_cu_grid(int64_t n, int64_t cap) {
    int64_t b = (n + IL_CU_THREADS - 1) / IL_CU_THREADS;
    return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}
static inline unsigned il_cu_blocks(int64_t n) { return il_cu_grid(n, 65535 * 16); }
#define IL_CU_LOOP(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)blockDim.x * gridDim.x)
#ifndef IL_CU_HOST_EMU
/* kernel<<<blocks, threads>>>(...) on the stream; IL_CU_LAUNCH sizes the grid for n elements */
#define IL_CU_LAUNCH_GRID(kernel, blocks, threads, ...) \
    kernel<<<(blocks), (threads), 0, il_cuda_stream()>>>(__VA_ARGS__)
#else
/* tests/cuda_emu.sh compiles these files for the host: one thread of one block walks every
 * grid-stride loop, so a kernel's indexing runs (under ASan) without a GPU */
#define IL_CU_LAUNCH_GRID(kernel, blocks, threads, ...) kernel(__VA_ARGS__)
#endif
#define IL_CU_LAUNCH(kernel, n, ...) \
    do { \
        if ((n) > 0) IL_CU_LAUNCH_GRID(kernel, il_cu_blocks(n), IL_CU_THREADS, __VA_ARGS__); \
    } while (0)

/* Element i of float data as float; integers and bool for Cast (int64 rounded once, as the
 * reference's Cast does). */
__device__ static inline float il_ld(const void *p, int dt, int64_t i) {
    switch (dt) {
    case IL_F16: return __half2float(((const __half *)p)[i]);
    case IL_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case IL_F64: return (float)((const double *)p)[i];
    case IL_I64: return (float)((const long long *)p)[i];
    case IL_I32: return (float)((const int *)p)[i];
    case IL_I8: return (float)((const signed char *)p)[i];
    case IL_U8:
    case IL_BOOL: return (float)((const unsigned char *)p)[i];
    default: return ((const float *)p)[i];
    }
}

__device__ static inline void il_st(void *p, int dt, int64_t i, float v) {
    if (dt == IL_F16) ((__half *)p)[i] = __float2half_rn(v);
    else if (dt == IL_BF16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else ((float *)p)[i] = v;
}

/* The typed kernels' (eltwise.cu, rows.cu fast paths) loads and stores: one storage type per
 * instantiation, no switch per element. */
__device__ static inline float il_tof(float v) { return v; }
__device__ static inline float il_tof(__half v) { return __half2float(v); }
__device__ static inline float il_tof(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ static inline T il_fromf(float v);
template <> __device__ inline float il_fromf<float>(float v) { return v; }
template <> __device__ inline __half il_fromf<__half>(float v) { return __float2half_rn(v); }
template <> __device__ inline __nv_bfloat16 il_fromf<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

/* Grid of the typed kernels: enough blocks to fill the GPU, each thread looping over many
 * elements, so that a thread's setup (its kernel arguments, index state) is paid once per
 * hundred elements rather than per element. */
static inline unsigned il_cu_blocks_capped(int64_t n) { return il_cu_grid(n, 4096); }

/* A warp's sum and maximum (the row kernels give each row one warp); the emulation of
 * tests/cuda_emu.sh runs one thread per block, a "warp" of one. */
#ifdef IL_CU_HOST_EMU
#define IL_CU_WARP 1
__device__ static inline float il_warp_sum(float v) { return v; }
__device__ static inline float il_warp_max(float v) { return v; }
#else
#define IL_CU_WARP 32
__device__ static inline float il_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ static inline float il_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
#endif

#endif
