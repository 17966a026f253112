/*
 * cuda_emu_host.h - force-included by tests/cuda_emu.sh when it compiles engine/cuda/*.cu for
 * the host with g++: the CUDA keywords as plain C++, one block of one thread (every kernel of
 * those files loops grid-stride, so that thread covers the whole grid; a block-wide reduction of
 * one thread is its own value).
 */
#ifndef IL_CUDA_EMU_HOST_H
#define IL_CUDA_EMU_HOST_H
#define IL_CU_HOST_EMU 1
#define __global__
#define __device__
#define __shared__ static
#define __syncthreads() ((void)0)
struct il_emu_dim {
    unsigned x;
};
static const il_emu_dim threadIdx = {0}, blockIdx = {0}, blockDim = {1}, gridDim = {1};
#endif
