/*
 * sparselt.h - 2:4 structured sparsity on the GPU through NVIDIA cuSPARSELt (sparselt.cu), the
 * cuda backend's `cusparselt-2:4` kernel for MatMul/Gemm and their fused forms (sparse24.c), and
 * the pieces of it that need no GPU: the exact 2:4 check its supports() makes, and the one
 * sentence every tool prints about whether 2:4 sparsity is accelerated here.
 *
 * The product is Y[M, N] = alpha X[M, K] W[K, N] (+ beta Y) with the constant weight given as
 * Wt = W transposed, [N, K] row-major, each row 2:4 along K (the reduction). X and Y are the
 * engine's row-major half-precision device buffers (IL_F16 or IL_BF16); arithmetic is float32.
 */
#ifndef IL_SPARSELT_H
#define IL_SPARSELT_H

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/engine.h"

/* 1 when every row of the [rows, k] matrix w (row r at w + r * row_stride, elements k_stride
 * apart along the row) has at most 2 nonzeros in each group of 4 consecutive elements, and k is
 * a multiple of 4; 0 otherwise. NaN counts as nonzero. */
int il_is_2of4(const float *w, int64_t rows, int64_t k, int64_t row_stride, int64_t k_stride);

/* Whether every weight pruned N:M (N kept of each M consecutive along K) is also 2:4: at most 2
 * nonzeros in each aligned group of 4 (1:2, 1:4, 2:4, 1:8, 2:8, ...). */
int il_nm_is_2of4(int n, int m);

/* NULL when 2:4 sparsity runs on cuSPARSELt in this process (library loaded, GPU sm_80 or
 * newer); otherwise the sentence to print: "2:4 sparsity is not accelerated here (no
 * cuSPARSELt: <why>)". Never NULL in a build without CUDA. */
const char *il_sparse24_not_accelerated(void);

/* The rest needs a build with CUDA (IL_HAVE_CUDA). */
int il_sparselt_available(const char **why); /* library + device usable; reason otherwise */
const char *il_sparselt_version(void);        /* "cuSPARSELt 0.7.1", "" when not loaded */

typedef struct il_sparselt il_sparselt;
/* Checks, compresses (on the device) and plans the product for these shapes; cuSPARSELt's own
 * search picks its kernel. wt_host: float32 [n, k], already 2:4 along k (checked again by
 * cuSPARSELt's prune check: an error if it disagrees). dt: IL_F16 or IL_BF16. */
il_status il_sparselt_create(int64_t m, int64_t n, int64_t k, il_dtype dt, const float *wt_host, il_sparselt **out);
size_t il_sparselt_workspace(const il_sparselt *s); /* device bytes run needs */
/* Where run writes the product before it lands in y: y itself, or the workspace when M needs
 * padding or a pointer is not 16-byte aligned. A caller adding beta * C writes C there first. */
void *il_sparselt_dest(const il_sparselt *s, const void *x, void *y, void *ws);
/* y = alpha x Wt^T + beta dest (dest as il_sparselt_dest says), then copied to y if staged. */
il_status il_sparselt_run(const il_sparselt *s, float alpha, float beta, const void *x, void *y, void *ws,
                          size_t ws_bytes);
/* Device time of one product (ms), cuSPARSELt against cuBLAS's dense il_cuda_gemm on the same
 * shapes and type, each the best of a few runs on scratch buffers. */
il_status il_sparselt_time(const il_sparselt *s, float *ms_sparse, float *ms_dense);
const char *il_sparselt_what(const il_sparselt *s); /* shapes, algorithm id, times when measured */
void il_sparselt_free(il_sparselt *s);

#ifdef __cplusplus
}
#endif
#endif
