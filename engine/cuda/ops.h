/*
 * ops.h - the dtype-generic device kernels of the cuda inference backend (bodies in eltwise.cu
 * and rows.cu), callable from C: elementwise maps with numpy broadcasting, strided copies
 * (Transpose, Slice, Concat, Split), Gather, row-wise softmax / layer norm / sums, pools and
 * the epilogues of the cuBLAS products.
 *
 * Float data is IL_F32, IL_F16 or IL_BF16 (a half-precision plan holds float32 values in a half
 * type, il_kctx.precision); every kernel loads elements as float, computes in float (double
 * where the reference needs it: Pow) and rounds once on the store. Index arithmetic is 64-bit
 * throughout: these kernels favour being obviously right over speed. Everything is launched
 * on the one stream of cuda.h; a launch error shows at il_cuda_check.
 */
#ifndef IL_CUDA_OPS_H
#define IL_CUDA_OPS_H

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/engine.h"

#define IL_CU_MAX_IN 3

/* An n-ary elementwise map over an output of `rank` dims; in[k] is read at offset
 * sum idx[d] * str[k][d] (0 along broadcast dims). */
typedef struct il_cu_geom {
    int rank, n_in;
    int64_t dims[IL_MAX_RANK];
    int64_t str[IL_CU_MAX_IN][IL_MAX_RANK];
} il_cu_geom;

/* The maps. Unary ops read in[0]; binary in[0], in[1] (Sum, Mean, Max and Min up to three
 * inputs, combined left to right); Where reads a bool condition and copies
 * elements of in[1] or in[2] (any dtype, same element size as out). Compare ops write bool;
 * logic ops read and write bool. */
typedef enum {
    IL_CU_IDENT, /* a conversion: Cast between float types and from integers and bool */
    IL_CU_TOBOOL, /* Cast to bool: x != 0 */
    IL_CU_RELU, IL_CU_CLIP, IL_CU_LEAKY, IL_CU_SIGMOID, IL_CU_HSWISH, IL_CU_HSIGMOID, IL_CU_GELU,
    IL_CU_GELU_TANH, IL_CU_TANH, IL_CU_SILU, /* il_act's kinds, then more unary ones */
    IL_CU_SQRT, IL_CU_ERF, IL_CU_EXP, IL_CU_LOG, IL_CU_NEG, IL_CU_ABS, IL_CU_RECIP, IL_CU_FLOOR, IL_CU_CEIL,
    IL_CU_ROUND, IL_CU_SIN, IL_CU_COS, IL_CU_SOFTPLUS, IL_CU_SOFTSIGN, IL_CU_ELU, IL_CU_SELU, IL_CU_CELU,
    IL_CU_THRELU, IL_CU_MISH, IL_CU_SIGN,
    IL_CU_ADD, IL_CU_SUB, IL_CU_MUL, IL_CU_DIV, IL_CU_POW, IL_CU_MAX, IL_CU_MIN, IL_CU_PRELU, /* binary */
    IL_CU_SUM, IL_CU_MEAN, /* variadic, as Max and Min: folded left to right over 1-3 inputs */
    IL_CU_EQ, IL_CU_LT, IL_CU_LE, IL_CU_GT, IL_CU_GE,                          /* compare */
    IL_CU_AND, IL_CU_OR, IL_CU_XOR, IL_CU_NOT,                                 /* logic */
    IL_CU_WHERE
} il_cu_op;

/* out = op(in...) with the parameters a, b (Clip's bounds, LeakyRelu's, Elu's, Celu's and
 * ThresholdedRelu's alpha, HardSigmoid's alpha and beta, Selu's alpha and gamma). idt/odt: the dtypes of the inputs and the output. */
void il_cu_map(il_cu_op op, float a, float b, const il_cu_geom *g, const void *const *in, const il_dtype *idt,
               void *out, il_dtype odt);
/* The geometry of a map writing `out` from inputs in[0..n_in) broadcast to it (numpy rules). */
void il_cu_geom_of(const il_tensor *out, const il_tensor *const *in, int n_in, il_cu_geom *g);

/* dst[doff + sum idx[d]*dstr[d]] = src[soff + sum idx[d]*sstr[d]] over dims (elements of esize
 * bytes, 1, 2, 4 or 8; strides may be negative). */
typedef struct il_cu_copy {
    int rank;
    int64_t dims[IL_MAX_RANK], sstr[IL_MAX_RANK], dstr[IL_MAX_RANK];
    int64_t soff, doff;
} il_cu_copy;
void il_cu_strided_copy(const void *src, void *dst, const il_cu_copy *g, int esize);

/* Gather: out[o, j, i] = data[o, ids[j], i] for data [outer, axis_len, inner] and nidx ids
 * (int64 or int32; negative ones count from the end). An id outside [-axis_len, axis_len)
 * writes zeros (the reference refuses it; the device cannot stop mid-kernel). */
void il_cu_gather(const void *data, int esize, int64_t outer, int64_t axis_len, int64_t inner, const void *ids,
                  il_dtype idt, int64_t nidx, void *out);

/* GatherND: out[t, e] = data[bt * bstride + sum_k ids[t*m + k] * str[k] + e] for tuple t of
 * batch bt = t / per, e < slice; an id outside [-dims[k], dims[k]) writes zeros. */
typedef struct il_cu_gnd {
    int m;
    int64_t dims[IL_MAX_RANK], str[IL_MAX_RANK];
    int64_t per, slice, bstride, tuples;
} il_cu_gnd;
void il_cu_gather_nd(const void *data, int esize, const void *ids, il_dtype idt, const il_cu_gnd *g, void *out);

/* Pad: output element o of each axis reads input element pad_src(o) (engine/ops/pad.c's rule:
 * crop negative pads, then constant / edge / reflect / wrap); a constant is `value` stored in dt
 * (F32, F16, BF16), or zero bytes when dt is 0. */
typedef struct il_cu_pad_geom {
    int rank, mode;
    int64_t xd[IL_MAX_RANK], yd[IL_MAX_RANK], b[IL_MAX_RANK], e[IL_MAX_RANK];
} il_cu_pad_geom;
void il_cu_pad(const void *x, void *y, int esize, il_dtype dt, float value, const il_cu_pad_geom *g);

/* Resize by per-axis taps (engine/ops/resize.c builds them): out[yc] = sum over the taps of every
 * axis of the product of their weights times x at their indices, or `extrapolation` where an
 * axis marks the output index outside. Arrays on the device: idx[a] [yd[a] * n[a]] int64,
 * w[a] float, outside[a] [yd[a]] bytes. */
typedef struct il_cu_resize {
    int rank;
    int64_t yd[IL_MAX_RANK], xs[IL_MAX_RANK], n[IL_MAX_RANK];
    const int64_t *idx[IL_MAX_RANK];
    const float *w[IL_MAX_RANK];
    const unsigned char *outside[IL_MAX_RANK];
    float extrapolation;
} il_cu_resize;
void il_cu_resize_run(const void *x, void *y, il_dtype dt, const il_cu_resize *g);

/* y[r, j] = act(y[r, j] + bias[j]) (bias may be NULL) over rows x n, in place: the epilogue of
 * the products. act is an il_cu_op of the unary kinds with its parameters. */
void il_cu_bias_act(void *y, il_dtype dt, int64_t rows, int64_t n, const void *bias, il_cu_op act, float a, float b);
/* y[i, j] = beta * c[i*cs0 + j*cs1] over rows x n (Gemm's C broadcast before the product). */
void il_cu_fill_c(void *y, il_dtype dt, int64_t rows, int64_t n, const void *c, int64_t cs0, int64_t cs1, float beta);

/* Softmax of rows: x and y are [outer, n, inner], one row per (outer, inner) pair, with
 * y = exp(x*scale + mask - max) / sum (log: y = (x*scale + mask - max) - log(sum)). mask (NULL: none) is read at the offset mask_off of
 * the row plus j * mask_col; the row's offset is sum over k < mask_rank of
 * ((row / mask_div[k]) % mask_mod[k]) * mask_str[k], row = o (inner is 1 when a mask is given). */
typedef struct il_cu_mask {
    int rank;
    int64_t div[IL_MAX_RANK], mod[IL_MAX_RANK], str[IL_MAX_RANK];
    int64_t col;
} il_cu_mask;
void il_cu_softmax(const void *x, void *y, il_dtype dt, int64_t outer, int64_t n, int64_t inner, float scale,
                   const void *mask, il_dtype mdt, const il_cu_mask *m, int is_log);
/* Normalization over rows of n: y = (x - mean) / sqrt(var + eps) * scale[k] + bias[k] with
 * k = (row % pg) * pmul + (j / pdiv) * pj (pjs for scale, pjb for bias): LayerNormalization
 * (pg 1, pdiv 1, pj 1 for a full vector or 0 for one value), InstanceNormalization (rows N*C,
 * pg C, pmul 1, pj 0), GroupNormalization (rows N*G, pg G; per channel: pmul C/G, pdiv the
 * spatial size, pj 1; per group: pmul 1, pj 0). bias may be NULL; mean and inv_std (may be
 * NULL) get one value per row. */
typedef struct il_cu_norm {
    int64_t rows, n, pg, pmul, pdiv, pjs, pjb;
    float eps;
} il_cu_norm;
void il_cu_layernorm(const void *x, void *y, il_dtype dt, const il_cu_norm *g, const void *scale, const void *bias,
                     il_dtype pdt, void *mean, void *inv_std);
/* Reductions over the middle axis of [outer, n, inner] (n > 0), in double, as reduce.c's
 * combine_real: Max/Min keep a NaN, LogSumExp subtracts the maximum first. */
typedef enum {
    IL_CU_RSUM, IL_CU_RMEAN, IL_CU_RMAX, IL_CU_RMIN, IL_CU_RPROD, IL_CU_RL1, IL_CU_RL2, IL_CU_RLOGSUM,
    IL_CU_RLOGSUMEXP, IL_CU_RSUMSQ
} il_cu_red;
void il_cu_reduce(const void *x, void *y, il_dtype dt, int64_t outer, int64_t n, int64_t inner, il_cu_red kind);

/* ArgMax (is_max) / ArgMin over the middle axis of [outer, n, inner] into int64 y; ties go to
 * the first index (the last with `last`), NaN wins as in the reference. */
void il_cu_arg(const void *x, void *y, il_dtype dt, int64_t outer, int64_t n, int64_t inner, int is_max, int last);

/* 2-D pools over [planes, h, w]; pad_end bounds the padded input (AveragePool's
 * count_include_pad counts taps inside it). */
typedef struct il_cu_pool {
    int64_t h, w, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw, ph_end, pw_end;
} il_cu_pool;
void il_cu_maxpool(const void *x, void *y, il_dtype dt, int64_t planes, const il_cu_pool *g);
void il_cu_avgpool(const void *x, void *y, il_dtype dt, int64_t planes, const il_cu_pool *g, int count_include_pad);
/* y[p] = mean of plane p's S values. */
void il_cu_gap(const void *x, void *y, il_dtype dt, int64_t planes, int64_t S);
/* BatchNormalization in inference over [N, C, S]; the parameters in pdt. */
void il_cu_bn(const void *x, void *y, il_dtype dt, int64_t N, int64_t C, int64_t S, const void *gamma,
              const void *beta, const void *mean, const void *var, il_dtype pdt, float eps);

#ifdef __cplusplus
}
#endif
#endif
