/*
 * qgemm.h - internal: the INT8 GEMM under every integer kernel (QLinearConv, ConvInteger,
 * QLinearMatMul, MatMulInteger and the ai.inferlab QConv / QMatMul of engine/ops/qfused.c).
 * Not a public header: engine/cpu/qgemm*.c and the tests include it.
 *
 * The product, in one line:   C[m][j] = sum_k W[m][k] * X[k][j]      W int8, X uint8, C int32
 * W is the constant operand (weights: output channels of a Conv, B^T of a MatMul), packed once
 * when a plan is prepared; X the activations, packed per call. Zero points, bias and the
 * requantization to 8 bits are the epilogue (il_qepi), applied to each tile while it is in cache.
 *
 * Instruction sets, chosen at run time by CPUID (il_qisa_active; tests force each one):
 *   avx512vnni  vpdpbusd zmm: 64 u8 x s8 products summed into 16 int32 lanes per instruction
 *   avxvnni     vpdpbusd ymm (VEX encoding, Alder Lake and Sapphire Rapids)
 *   avx2        vpmaddubsw + vpmaddwd. vpmaddubsw adds two u8*s8 products into a saturating
 *               int16: 255*127*2 = 64770 does not fit. ONNX Runtime and oneDNN restrict weights
 *               to 7 bits on such machines (reduce_range), which changes the model's numbers.
 *               We keep every int8 weight and stay exact instead: each weight is split into two
 *               halves wa = w/2 (toward 0), wb = w - wa, both within [-64, 64], so one
 *               vpmaddubsw pair sums to at most 255*64*2 = 32640; the kernel runs the second
 *               half only when some weight is outside [-64, 64] (so 7-bit weights cost one pass).
 *   c           portable loops over the same packed layouts.
 * Every path gives the same int32 sums bit for bit (tests/test_qkernels.c checks it).
 *
 * Requantization: y = sat(rint(double(acc) * scale[m]) + zp), scale = x_scale * w_scale[m] /
 * y_scale in double, rounded half to even: ONNX Runtime's float-scale path, in double rather
 * than float so that the result is the reference kernels' (engine/ops/conv.c, linalg.c) bit for
 * bit: int32 -> double is exact and the one multiply rounds the same way. A gemmlowp/TFLite
 * fixed-point multiplier (int32 + shift) would differ from them by one unit at near-ties. A
 * folded Relu or Clip is the clamp [lo, hi] of the output.
 *
 * Layouts (both ISA-independent on the X side, so one packing serves every path):
 *   X: strips of 16 columns; strip s holds, for each group of 4 k (k4 = 0..K4-1), 64 bytes:
 *      column j's X[4*k4 .. 4*k4+3][16s + j] at bytes 4j..4j+3. Padding (k >= K, j >= N) is 0.
 *   W: panels of MR rows (MR per ISA); panel p holds, for each k4, MR int32 words, word m the
 *      4 bytes W[p*MR + m][4*k4 .. 4*k4+3]. Padding is 0.
 *
 * Ownership: il_qweights_pack allocates inside *w; il_qweights_free frees that.
 */
#ifndef IL_CPU_QGEMM_H
#define IL_CPU_QGEMM_H

#include "../ops/kernel.h"

typedef enum { IL_QISA_C = 0, IL_QISA_AVX2, IL_QISA_AVXVNNI, IL_QISA_AVX512VNNI, IL_QISA_COUNT } il_qisa;

const char *il_qisa_name(il_qisa isa);
int il_qisa_available(il_qisa isa); /* this CPU (and OS) runs it */
/* The ISA kernels use: the best available, unless forced (tests) or IL_QISA in the environment
 * names another available one ("c", "avx2", "avxvnni", "avx512vnni"). */
il_qisa il_qisa_active(void);
/* Force an ISA for the kernels prepared from now on (it must be available); -1: back to auto. */
void il_qisa_force(int isa);

#define IL_QSTRIP 16 /* columns per X strip */

/* Packed weights for one ISA, with what the epilogue needs about them. */
typedef struct il_qweights {
    il_qisa isa;
    int64_t m, k, k4;   /* rows, depth, groups of 4 along k */
    int mr;             /* rows per panel */
    int32_t *wa;        /* panels; for avx2 the first halves */
    int32_t *wb;        /* avx2 only: the second halves, NULL when every weight is in [-64, 64] */
    int32_t *rowsum;    /* per row: sum_k W[m][k] (for the activation zero point) */
} il_qweights;

/* Pack W (m x k int8, row stride ldw; when w_is_u8, uint8 weights seen as W - 128, the caller
 * moving their zero point by -128 too). IL_ERR_OOM on failure. */
il_status il_qweights_pack(il_qisa isa, const void *w, int w_is_u8, int64_t m, int64_t k, int64_t ldw,
                           il_qweights *out);
void il_qweights_free(il_qweights *w);

/* Bytes of the packed X of k x n, and the packing. From X given row by row (x[k*ldx + j]:
 * conv's im2col rows) or column by column (x[j*ldx + k]: a MatMul's A, whose rows are the
 * columns here). flip = 0x80 reads int8 activations as uint8 (x + 128; the caller moves the
 * zero point by +128). colsum (n int32, may be NULL) receives sum_k of each column's bytes as
 * packed. Strips [s0, s1) only, so threads can pack disjoint strips. */
static inline int64_t il_qx_k4(int64_t k) { return (k + 3) / 4; }
static inline int64_t il_qx_strips(int64_t n) { return (n + IL_QSTRIP - 1) / IL_QSTRIP; }
static inline size_t il_qx_bytes(int64_t k, int64_t n) { return (size_t)(il_qx_k4(k) * 64 * il_qx_strips(n)); }
void il_qpack_rows(const uint8_t *x, int64_t ldx, int64_t k, int64_t n, uint8_t flip, uint8_t *dst, int32_t *colsum,
                   int64_t s0, int64_t s1);
void il_qpack_cols(const uint8_t *x, int64_t ldx, int64_t k, int64_t n, uint8_t flip, uint8_t *dst, int32_t *colsum,
                   int64_t s0, int64_t s1);

/* The epilogue of each C tile. acc = C[m][j] + row_add[m] - row_zw[m] * colsum[j] (the zero
 * point terms and bias; row_zw NULL: none); then, for 8-bit outputs,
 *   y = clamp(rint(acc * scale[m]) + zp, lo, hi),   [lo, hi] within the output type's range,
 * for float outputs (IL_QOUT_F32)
 *   y = (float)acc * fscale[m] [+ fbias[m]]          in float32, each operation rounded once,
 * written to y + m*rs + j*cs (elements of 1 byte; 4 for int32 outputs, which store acc, and
 * float ones). AVX-512 vectorizes rows (cs = 1) and the transposed store of a MatMul's Y^T
 * (rs = 1): 8 rows of one column are 8 adjacent outputs. */
typedef enum { IL_QOUT_S32, IL_QOUT_U8, IL_QOUT_S8, IL_QOUT_F32 } il_qout;

typedef struct il_qepi {
    il_qout out;
    const int32_t *row_add;   /* m entries */
    const int32_t *row_zw;    /* m entries or NULL */
    const int32_t *colsum;    /* n entries (needed when row_zw is set) */
    const double *scale;      /* m entries (8-bit outputs) */
    const float *fscale;      /* m entries (float outputs) */
    const float *fbias;       /* m entries or NULL (float outputs) */
    int32_t zp, lo, hi;
    void *y;
    int64_t rs, cs;           /* strides of y in elements: row m, column j */
} il_qepi;

/* C = W x X (packed X of n columns) and the epilogue, over row panels and strips split among
 * `threads` OpenMP threads (1: the calling thread only). */
void il_qgemm(const il_qweights *w, const uint8_t *xp, int64_t n, const il_qepi *e, int threads);

/* The plain-C integer reference the tests hold every path to: C[m][j] = sum_k W[m][k]*X[k][j]
 * on unpacked int8 W (m x k) and uint8 X (k x n). */
void il_qgemm_naive(const int8_t *w, const uint8_t *x, int64_t m, int64_t n, int64_t k, int32_t *c);

/* ---- helpers of the kernels' supports and prepare (qgemm_conv.c, qgemm_matmul.c) */
static inline int il_q_is_8bit(il_dtype t) { return t == IL_U8 || t == IL_I8; }
/* Input slot i is absent (i < 0 or omitted), or a constant whose data prepare can read. */
int il_q_const_or_absent(const il_kctx *c, int i);
/* Elements of input i (1 when absent). */
int64_t il_q_numel(const il_kctx *c, int i);
/* Element `at` of a per-tensor or per-channel input as an integer (0 when absent) or as a
 * double (1 when absent). */
int64_t il_q_int_at(const il_kctx *c, int i, int64_t at);
double il_q_get_at(const il_kctx *c, int i, int64_t at);

/* ---- shared with the ops (engine/ops/qfused.c) */

/* The output clamp [lo, hi] of an integer op with y's scale, zero point and dtype: the type's
 * range narrowed by the node's `activation` (Relu, Clip; others IL_ERR_UNSUPPORTED). */
il_status il_qact_range(const il_kctx *c, double y_scale, int32_t y_zp, il_dtype ydt, int32_t *lo, int32_t *hi);

/* com.microsoft QGemm (engine/ops/qfused.c): M, K, N by transA / transB (A and B of rank 2), and
 * column j's output scale alpha * a_scale * b_scale[j] (/ y_scale when given) in double, in the
 * reference's order, so that the qgemm kernel rounds exactly where the reference does. */
void il_qgemm_dims(const il_kctx *c, int64_t *m, int64_t *k, int64_t *n);
double il_qgemm_scale(const il_kctx *c, int64_t j);

/* DynamicQuantizeLinear's arithmetic (engine/ops/quant.c), shared by its kernels and by
 * DynamicQuantizeMatMul's: from x's range widened to hold 0, scale = (mx - mn) / 255 and
 * zp = sat(round(-mn / scale)) in float32 (scale 0, zp 0 for an all-zero x); y = sat(round(x /
 * scale) + zp), every y 0 when scale is 0. _ref: scalar loops (the oracle); il_dynq_minmax and
 * il_dynq_apply (engine/cpu/quant_vec.c): the same bit for bit, 16 lanes with AVX-512. */
void il_dynq_scale(float mn, float mx, float *scale, uint8_t *zp);
void il_dynq_apply_ref(const float *x, uint8_t *y, int64_t n, float scale, uint8_t zp);
void il_dynq_minmax(const float *x, int64_t n, float *mn, float *mx); /* min(x, 0), max(x, 0); NaN ignored */
void il_dynq_apply(const float *x, uint8_t *y, int64_t n, float scale, uint8_t zp);

/* QAdd / QLinearAdd / QLinearMul on per-tensor parameters, as their reference computes it:
 * in float32 (16 lanes a vector; exact for the differences of 8-bit values and their
 * products), one rounding per multiply and add, never fused. */
typedef struct il_qbin {
    int mul;
    int32_t za, zb, zy, lo, hi;
    float ka, kb; /* add: sa/sy, sb/sy; mul: sa*sb/sy (computed in double, rounded once) */
} il_qbin;
il_status il_qbin_params(const il_kctx *c, int mul, il_qbin *p);
/* The "int8" kernel of QAdd / QLinearAdd / QLinearMul (qgemm_eltwise.c) on same-shape operands
 * at these addresses (c's inputs 0 and 3 and output 0 give dtypes and sizes): element-wise, so
 * any one layout shared by all three (dnnl_qeltwise.c: channels-last). */
il_status il_qbin_apply(il_kctx *c, const void *a, const void *b, void *y);

/* ---- per-ISA pieces (engine/cpu/qgemm_x86.c); internal to qgemm*.c */
typedef struct il_qisa_impl {
    int mr, nv;  /* rows per panel, strips per micro-tile */
    /* C tile (mr x 16*nv int32, row stride IL_QTILE_LD) = panel x strips [xs, xs + nv_used) */
    void (*ukr)(int64_t k4, const int32_t *wa, const int32_t *wb, const uint8_t *x, int64_t strip_bytes, int nv_used,
                int32_t *c);
    /* The epilogue of rows [0, rows) x columns [0, cols) of a C tile, whose first element is
     * (m0, j0) of the whole product. */
    void (*epi)(const int32_t *c, int rows, int cols, int64_t m0, int64_t j0, const il_qepi *e);
} il_qisa_impl;

#define IL_QTILE_LD 48
extern const il_qisa_impl il_qisa_impl_c, il_qisa_impl_avx2, il_qisa_impl_avxvnni, il_qisa_impl_avx512vnni;
/* The scalar epilogue (c path, and the tails of the vector ones). */
void il_qepi_scalar(const int32_t *c, int rows, int cols, int64_t m0, int64_t j0, const il_qepi *e);

#endif
