/*
 * kernel.h - internal helpers shared by op files (engine/ops and engine/cpu):
 * error context, axis handling, broadcasting, dtype dispatch and parallel loops.
 * Not a public header: only the engine includes it.
 *
 * How an op file looks (see engine/ops/README.md):
 *   static il_status relu_infer(il_kctx *c)  -- set c->out[0] dtype/rank/dims from inputs
 *   static il_status relu_ref(il_kctx *c)    -- readable loops, the oracle
 *   static il_status relu_fast(il_kctx *c)   -- optional optimized version, same contract
 *   const il_op il_ops_xxx[] = { {"", "Relu", 1, relu_infer, relu_ref, NULL, 0}, ..., {0} };
 */
#ifndef IL_KERNEL_H
#define IL_KERNEL_H

#include "../engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The op tables, one per group file; each ends with an entry whose name is NULL. */
extern const il_op il_ops_unary[];     /* engine/ops/unary.c: math and activations */
extern const il_op il_ops_binary[];    /* engine/ops/binary.c: arithmetic, compare, logic, Where, variadic */
extern const il_op il_ops_conv[];      /* engine/ops/conv.c: Conv, ConvTranspose */
extern const il_op il_ops_pool[];      /* engine/ops/pool.c */
extern const il_op il_ops_norm[];      /* engine/ops/norm.c: BatchNorm, InstanceNorm, LayerNorm */
extern const il_op il_ops_linalg[];    /* engine/ops/linalg.c: Gemm, MatMul, Einsum */
extern const il_op il_ops_shape[];     /* engine/ops/shape.c: Reshape..Identity */
extern const il_op il_ops_index[];     /* engine/ops/index.c: Gather*, Scatter*, Trilu, NonZero, Compress */
extern const il_op il_ops_slice[];     /* engine/ops/slice.c: Slice */
extern const il_op il_ops_reduce[];    /* engine/ops/reduce.c: Reduce*, ArgMax/ArgMin, CumSum */
extern const il_op il_ops_softmax[];   /* engine/ops/softmax.c: Softmax, LogSoftmax, Hardmax, TopK */
extern const il_op il_ops_resize[];    /* engine/ops/resize.c: Resize, Upsample */
extern const il_op il_ops_pad[];       /* engine/ops/pad.c: Pad, DepthToSpace, SpaceToDepth */
extern const il_op il_ops_misc[];      /* engine/ops/misc.c: Cast, Constant*, Range, OneHot, EyeLike */
extern const il_op il_ops_fused[];     /* engine/ops/fused.c: ai.inferlab fused ops made by passes/ */
extern const il_op il_ops_fused_conv[];      /* engine/ops/fused_conv.c: FusedConv */
extern const il_op il_ops_fused_attention[]; /* engine/ops/fused_attention.c: Attention */
extern const il_op il_ops_conv_pool[];        /* engine/ops/conv_pool.c: ConvPool */
extern const il_op il_ops_quant[];           /* engine/ops/quant.c: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear */
extern const il_op il_ops_qfused[];          /* engine/ops/qfused.c: QConv, QMatMul, QAdd, QLinearAdd/Mul */

/* Explicit kernel tables (stateful and library kernels), each ending with an entry whose op is
 * NULL; kernels.c lists them in il_kernel_tables (NULL-terminated). */
extern const il_kernel il_kernels_fused_conv[]; /* engine/ops/fused_conv.c: FusedConv im2col-blas */
extern const il_kernel il_kernels_cuda[];       /* engine/cuda/kernels_cuda.c (empty without CUDA) */
extern const il_kernel il_kernels_cudnn[];      /* engine/cuda/conv_cudnn.c: Conv/FusedConv on cuDNN */
extern const il_kernel il_kernels_cuda_ops[];   /* engine/cuda/ops_cuda.c: transformer and other ops */
extern const il_kernel il_kernels_cusparselt[];  /* engine/cuda/sparse24.c: MatMul/Gemm 2:4 on cuSPARSELt */
extern const il_kernel il_kernels_qconv[];      /* engine/cpu/qgemm_conv.c: QLinearConv, ConvInteger, QConv qgemm */
extern const il_kernel il_kernels_qeltwise[];   /* engine/cpu/qgemm_eltwise.c: QAdd, QLinearAdd/Mul, MaxPool int8 */
extern const il_kernel il_kernels_qmatmul[];    /* engine/cpu/qgemm_matmul.c: QLinearMatMul, MatMulInteger, QMatMul */
extern const il_kernel il_kernels_patch_conv[]; /* engine/cpu/patch_conv.c: Conv patch-gemm */
extern const il_kernel il_kernels_wino_conv[];  /* engine/cpu/wino_conv.c: Conv, FusedConv wino-f23 */
extern const il_kernel il_kernels_rows_conv[];  /* engine/cpu/rows_conv.c: Conv, FusedConv gemm-rows */
extern const il_kernel il_kernels_sparse[];     /* engine/cpu/sparse.c: Conv, Gemm, MatMul and fused forms: sparse */
extern const il_kernel il_kernels_quant_vec[];  /* engine/cpu/quant_vec.c: QuantizeLinear avx512 */
#ifdef IL_HAVE_DNNL /* oneDNN, when built with it (Makefile): engine/cpu/dnnl_*.c */
extern const il_kernel il_kernels_dnnl_conv[];  /* Conv, FusedConv: dnnl, dnnl-nchw */
extern const il_kernel il_kernels_dnnl_pool[];  /* MaxPool, AveragePool: dnnl */
extern const il_kernel il_kernels_conv_pool[];  /* engine/cpu/conv_pool.c: ConvPool dnnl */
extern const il_kernel il_kernels_dnnl_native[]; /* Mul, Add (per-channel, same shape), Concat (channels): dnnl */
extern const il_kernel il_kernels_dnnl_matmul[]; /* Gemm, MatMul, FusedGemm, FusedMatMul: dnnl */
extern const il_kernel il_kernels_dnnl_qconv[];  /* QConv, QLinearConv: dnnl (int8) */
extern const il_kernel il_kernels_dnnl_qmatmul[]; /* QMatMul, QLinearMatMul: dnnl (int8) */
extern const il_kernel il_kernels_dnnl_qeltwise[]; /* QAdd, QLinearAdd/Mul: dnnl */
extern const il_kernel il_kernels_dnnl_eltwise[]; /* Gelu: dnnl */
#endif
extern const il_kernel *const il_kernel_tables[];
/* registry.c tells kernels.c about ops registered after start-up (plugins). */
void il_kernels_add_op(const il_op *op);

/* Error with node context: "node 'conv1' (Conv): <message>". */
il_status il_kerr(const il_kctx *c, il_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Input i, or NULL when omitted or past the end. */
static inline il_tensor *il_in(const il_kctx *c, int i) { return i < c->n_in ? c->in[i] : NULL; }
static inline il_tensor *il_out(const il_kctx *c, int i) { return i < c->n_out ? c->out[i] : NULL; }

/* Set output i's dtype and shape (infer functions). rank -1 says the rank is not known yet
 * (plan time); dims are then not read and may be NULL. */
static inline void il_set_out(il_kctx *c, int i, il_dtype dt, int rank, const int64_t *dims) {
    il_tensor *o = il_out(c, i);
    if (!o) return;
    o->dtype = dt;
    o->rank = rank;
    for (int k = 0; k < rank && k < IL_MAX_RANK; k++) o->dims[k] = dims[k];
}
/* Output i takes input j's dtype and shape. */
static inline void il_same_as(il_kctx *c, int i, int j) {
    il_tensor *x = il_in(c, j);
    if (x) il_set_out(c, i, x->dtype, x->rank, x->dims);
}

/* Shapes known in full (no -1 and rank >= 0). */
static inline int il_shape_known(const il_tensor *t) {
    if (!t || t->rank < 0) return 0;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return 0;
    return 1;
}

/* Product of dims[from..to), -1 when one of them is unknown (-1); checked (il_shape_numel).
 * IL_MAX_NUMEL (engine.h) bounds every tensor and inferred shape. */
static inline int64_t il_dims_prod(const int64_t *dims, int from, int to) {
    return to > from ? il_shape_numel(to - from, dims + from) : 1;
}

/* Row-major strides, in elements, of a shape. */
static inline void il_strides(int rank, const int64_t *dims, int64_t *strides) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

/* Step a multi-index to the next element of a shape, the last axis fastest. */
static inline void il_next_index(int rank, const int64_t *dims, int64_t *idx) {
    for (int i = rank - 1; i >= 0; i--) {
        if (++idx[i] < dims[i]) return;
        idx[i] = 0;
    }
}

/* The multi-index of flat (row-major) position i in a shape. */
static inline void il_unravel(int64_t i, int rank, const int64_t *dims, int64_t *idx) {
    for (int d = rank - 1; d >= 0; d--) {
        idx[d] = i % dims[d];
        i /= dims[d];
    }
}

/* Slice's box (engine/ops/slice.c), per input axis: first element, step and output length (-1:
 * not known before running); also for the cuda Slice kernel. */
typedef struct {
    int64_t start[IL_MAX_RANK], step[IL_MAX_RANK], len[IL_MAX_RANK];
} il_slice_plan;
il_status il_slice_make(const il_kctx *c, const il_tensor *x, il_slice_plan *p);

/* Pad's mode and pads (engine/ops/pad.c) for an input of rank r; also for the cuda Pad kernel. */
enum { IL_PAD_CONSTANT, IL_PAD_EDGE, IL_PAD_REFLECT, IL_PAD_WRAP };
typedef struct {
    int mode;
    int known; /* 0 at plan time while the pads (or axes) input has no data */
    int64_t begin[IL_MAX_RANK], end[IL_MAX_RANK];
} il_pad_args;
il_status il_pad_args_get(const il_kctx *c, int r, il_pad_args *p);

/* Resize's taps (engine/ops/resize.c), per axis: every output index reads n input indices
 * (clamped into the input) with these weights, or the extrapolation value where outside[out]
 * (tf_crop_and_resize). il_resize_taps builds them for node c's data (scales/sizes/roi) and
 * shapes, for the cuda Resize kernel too; il_resize_taps_free frees them. */
typedef struct {
    int64_t n;              /* taps per output index */
    int64_t *idx;           /* [out * n] input index, already clamped into the input */
    double *w;              /* [out * n] weights */
    unsigned char *outside; /* [out]: tf_crop_and_resize put this index outside the input */
    int identity;
} il_resize_axis;
il_status il_resize_taps(il_kctx *c, il_resize_axis *t, double *extrapolation);
void il_resize_taps_free(il_resize_axis *t, int rank);

/* Normalize a possibly negative axis into [0, rank); error naming the node when out of range. */
il_status il_norm_axis(const il_kctx *c, int64_t axis, int rank, int *out);

/* Numpy broadcasting of two shapes. Unknown dims (-1) give -1 unless the other side fixes it. */
il_status il_broadcast_shape(const il_kctx *c, int ra, const int64_t *a, int rb, const int64_t *b, int *rout,
                             int64_t *out);
/* Strides of t seen as broadcast to out shape (rank rout): 0 along broadcast dims. */
void il_broadcast_strides(const il_tensor *t, int rout, const int64_t *out, int64_t *strides);

/* Element i of a tensor as int64: integer dtypes exactly (uint64 keeps its bit pattern, so
 * wrapping arithmetic on it stays right), others truncated from il_tensor_get, saturated at the
 * int64 range and NaN as 0 (a float outside it is undefined behaviour to convert; a model can
 * hand a float64 1e159 as Tile's repeats). For shape, axes and pads inputs and integer kernels. */
static inline int64_t il_int_at(const il_tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case IL_I64: return ((const int64_t *)d)[i];
    case IL_I32: return ((const int32_t *)d)[i];
    case IL_I8: return ((const int8_t *)d)[i];
    case IL_U8: return ((const uint8_t *)d)[i];
    case IL_I16: return ((const int16_t *)d)[i];
    case IL_U16: return ((const uint16_t *)d)[i];
    case IL_U32: return ((const uint32_t *)d)[i];
    case IL_U64: return (int64_t)((const uint64_t *)d)[i];
    default: {
        double v = il_tensor_get(t, i);
        return v >= 9223372036854775807.0 ? INT64_MAX : v <= -9223372036854775808.0 ? INT64_MIN : v == v ? (int64_t)v : 0;
    }
    }
}

/* Parallel loop over [0, n) with OpenMP when the work is big enough to pay for threads.
 * (IL_PRAGMA_ stringizes after the arguments are substituted, so c and n may be any expression.) */
#define IL_PRAGMA_(x) _Pragma(#x)
#define IL_PAR_FOR(c, var, n)                                                                          \
    IL_PRAGMA_(omp parallel for num_threads((c)->threads > 0 ? (c)->threads : 1)                       \
                   if ((n) > 1 && (c)->threads > 1) schedule(static))                                  \
    for (int64_t var = 0; var < (n); var++)

/* engine/cpu/transpose.c: output 0 = input 0 with its axes permuted (output axis i is input axis
 * perm[i]; perm checked by the caller), any dtype. */
il_status il_transpose_fast(il_kctx *c, const int *perm);
/* The same for one float matrix, on the calling thread: dst[c * ldd + r] = src[r * lds + c] for
 * r < rows, c < cols (Attention's keys, [Sk, D] rows of a head into D x Sk). */
void il_transpose_f32(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows, int64_t cols);

/* e^x for x <= 0 (softmax takes exp of x - max), within about 2 ulp of expf: Cephes' expf
 * polynomial as straight-line code, so the loops that call it vectorize (the clamp below -88,
 * where the result is 0, is a bit select because a float ?: is a branch GCC keeps). */
static inline float il_exp_le0(float x) {
    union { float f; int32_t i; } u = {x}, lo = {-88.0f};
    int32_t keep = -(int32_t)(x >= -88.0f);
    u.i = (u.i & keep) | (lo.i & ~keep);
    x = u.f;
    float k = (float)(int32_t)(x * 1.44269504088896341f - 0.5f); /* round(x / ln2), x <= 0 */
    float r = x - k * 0.693359375f - k * -2.12194440e-4f;           /* x = k ln2 + r */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } two_k = {((int32_t)k + 127) << 23}; /* k = -127 gives 0 */
    return p * two_k.f;
}

/* BLAS sgemm row-major: C = alpha*op(A)*op(B) + beta*C. */
void il_sgemm(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *cm, int64_t ldc);
/* The same product on the calling thread alone, by oneDNN's JIT sgemm where the build has it
 * (it picks its kernels from the CPU's ISA; Debian's OpenBLAS 0.3.21 does not know this machine's
 * Xeon and runs its SSE3 Prescott kernels: 197x197x64 at 30 GFLOP/s against oneDNN's 155), else
 * il_sgemm. For the many small products a kernel runs from inside its own parallel loop. */
void il_sgemm_serial(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                     int64_t lda, const float *b, int64_t ldb, float beta, float *cm, int64_t ldc);

#endif
