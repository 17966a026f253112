/*
 * cuda_emu.h - the cuda kernels without a GPU (tests/cuda_emu.sh): the device kernels of
 * engine/cuda/ .cu files compiled for the host (one thread walks each grid), the device layer they
 * call (il_cuda_gemm, copies) emulated in tests/cuda_emu.c, and a small executor that runs a
 * graph the way plan_device.c does: each node on its cuda kernel where one takes it (the graph's
 * float32 view to supports/prepare, device dtypes to run; float32 values held as float16 or
 * bfloat16 in a half plan), the others on the cpu reference kernel through float32 copies.
 * test_cuda_ops.c built with IL_CUDA_EMU checks its cases through this instead of a GPU.
 */
#ifndef IL_CUDA_EMU_H
#define IL_CUDA_EMU_H

#include "../engine/engine.h"

/* Run g on inputs in (graph-input order) at a precision (il_precision) with kernels forced by
 * name where `force` says ("MaxPool=cuda,..."; NULL: the highest priority that takes the node).
 * outs[i] (caller frees) get the graph outputs as float32 (or their own dtype when not float);
 * chosen[k] the cuda kernel of node k (NULL for folded nodes and nodes that ran on the cpu),
 * on_cpu[k] 1 for those that ran on the cpu. A graph that computes on float16/bfloat16 values
 * (a plan would insert Casts first) is IL_ERR_UNSUPPORTED. */
il_status il_emu_run(const il_graph *g, il_tensor *const *in, int prec, const char *force, il_tensor **outs,
                     const il_kernel **chosen, char *on_cpu);

#endif
