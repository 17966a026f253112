/*
 * convert.cu - float32 <-> float16 / bfloat16 on the device (cuda.h: il_cuda_convert), for the
 * half-precision plans: the executor converts where values cross between the host's float32
 * and the device's half copies, and kernels convert weights they keep.
 */
#include "engine/cuda/cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" cudaStream_t il_cuda_stream(void);

__device__ static inline float ld(const void *p, int dt, int64_t i) {
    if (dt == IL_F16) return __half2float(((const __half *)p)[i]);
    if (dt == IL_BF16) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return ((const float *)p)[i];
}

__device__ static inline void st(void *p, int dt, int64_t i, float v) {
    if (dt == IL_F16) ((__half *)p)[i] = __float2half_rn(v);
    else if (dt == IL_BF16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else ((float *)p)[i] = v;
}

__global__ static void k_convert(const void *src, int sdt, void *dst, int ddt, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x)
        st(dst, ddt, i, ld(src, sdt, i));
}

extern "C" void il_cuda_convert(const void *src, il_dtype sdt, void *dst, il_dtype ddt, int64_t n) {
    if (n <= 0) return;
    int64_t b = (n + 255) / 256;
    k_convert<<<(unsigned)(b > 65535 * 16 ? 65535 * 16 : b), 256, 0, il_cuda_stream()>>>(src, (int)sdt, dst, (int)ddt, n);
}
