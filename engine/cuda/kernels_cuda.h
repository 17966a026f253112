/*
 * kernels_cuda.h - private to the cuda backend's kernel files (kernels_cuda.c, ops_cuda.c,
 * matmul_cuda.c): the checks their supports() share and the kernel functions one file defines
 * for another's table. Built only with IL_HAVE_CUDA.
 */
#ifndef IL_KERNELS_CUDA_H
#define IL_KERNELS_CUDA_H

#include "../ops/fused.h"
#include "ops.h"

/* Every present input and output has a known shape, and those of a float type are float32 in
 * the graph (a half-precision plan holds them as F16/BF16 on the device, which every kernel of
 * these files takes). */
int il_cuk_floats(const il_kctx *c);
/* The same and the input i is float32. */
int il_cuk_f32_in(const il_kctx *c, int i);
/* The device map of a fused activation (il_act). */
il_cu_op il_cuk_act_op(const il_act *a);
/* Input i holds constant data the kernel can read at prepare (host copy). */
int il_cuk_const(const il_kctx *c, int i);

/* matmul_cuda.c: Gemm and FusedGemm, MatMul and FusedMatMul, Attention (cuBLAS), and the
 * row kernels LayerNormalization, Softmax/LogSoftmax, the Reduce* ops and ArgMax/ArgMin (the
 * last three share supports and prepare: il_cuk_view_*). */
#define IL_CUK_DECL(NAME)                                                       \
    int il_cuk_##NAME##_supports(const il_kctx *c);                             \
    il_status il_cuk_##NAME##_prepare(il_kctx *c, void **state, size_t *ws);    \
    il_status il_cuk_##NAME##_run(il_kctx *c);
IL_CUK_DECL(gemm)
IL_CUK_DECL(matmul)
IL_CUK_DECL(attention)
IL_CUK_DECL(layernorm)
int il_cuk_view_supports(const il_kctx *c);
il_status il_cuk_view_prepare(il_kctx *c, void **state, size_t *ws);
il_status il_cuk_softmax_run(il_kctx *c);
il_status il_cuk_reduce_run(il_kctx *c);
il_status il_cuk_arg_run(il_kctx *c);

#endif
