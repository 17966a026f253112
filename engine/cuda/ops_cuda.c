/*
 * ops_cuda.c - the cuda backend's kernels for the ops transformers and the rest of the model zoo
 * need (batched MatMul, broadcast elementwise, Softmax, LayerNorm, Gelu, Transpose, Gather, ...),
 * float32 and half precision. Filled in by the transformer-ops work; empty for now.
 */
#include "../ops/kernel.h"

const il_kernel il_kernels_cuda_ops[] = {{0}};
