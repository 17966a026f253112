/*
 * test_compute.c - the compute-heavy ops (Conv, ConvTranspose, pools, norms, Gemm, MatMul,
 * Einsum): hand-checked tiny cases through both kernels, plan-time inference with unknown
 * dims, and the error paths. The fast-against-reference comparisons on random configurations
 * are in test_compute_fast.c. Both run their cases through tests/op_harness.h, which also
 * checks plan-time inference against every run and that the kernels write every output.
 */
#include "op_harness.h"

/* Opset 17; float outputs within rtol 1e-4 and atol 1e-5 (float32 BLAS against double sums). */
static op_case *node(const char *op, int n_in, int n_out) { return op_tol(op_new(op, 17, n_in, n_out), 1e-4, 1e-5); }

/* The ONNX Conv examples on a 5x5 input 0..24 with a 3x3 kernel of ones. */
static void test_conv_known(void) {
    op_case *r = node("Conv", 2, 1);
    op_in(r, 0, iota(IL_F32, 4, D(1, 1, 5, 5), 0));
    op_in(r, 1, f32(4, D(1, 1, 3, 3), V(1, 1, 1, 1, 1, 1, 1, 1, 1)));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 1, 3, 3), V(54, 63, 72, 99, 108, 117, 144, 153, 162));
    il_node_set_ints(r->g, r->k, "pads", 4, D(1, 1, 1, 1));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 1, 5, 5),
              V(12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123,
                84));
    il_node_set_ints(r->g, r->k, "strides", 2, D(2, 2));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 1, 3, 3), V(12, 27, 24, 63, 108, 81, 72, 117, 84));
    op_free(r);

    /* dilation 2 with a 2x2 kernel of ones: y[i,j] = x[i,j] + x[i,j+2] + x[i+2,j] + x[i+2,j+2] */
    r = node("Conv", 3, 1);
    op_in(r, 0, iota(IL_F32, 4, D(1, 1, 5, 5), 0));
    op_in(r, 1, f32(4, D(1, 1, 2, 2), V(1, 1, 1, 1)));
    op_in(r, 2, f32(1, D(1), V(0.5f)));
    il_node_set_ints(r->g, r->k, "dilations", 2, D(2, 2));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 1, 3, 3), V(24.5f, 28.5f, 32.5f, 44.5f, 48.5f, 52.5f, 64.5f, 68.5f, 72.5f));
    op_free(r);

    /* group 2, 1x1 kernels 2 and 3, bias 1 and -1: each channel scaled alone */
    r = node("Conv", 3, 1);
    op_in(r, 0, iota(IL_F32, 4, D(1, 2, 1, 3), 1));
    op_in(r, 1, f32(4, D(2, 1, 1, 1), V(2, 3)));
    op_in(r, 2, f32(1, D(2), V(1, -1)));
    il_node_set_int(r->g, r->k, "group", 2);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 2, 1, 3), V(3, 5, 7, 11, 14, 17));
    op_free(r);

    /* 1-D, SAME_UPPER with stride 2 on length 5: out 3, total pad 2 -> 1 each side */
    r = node("Conv", 2, 1);
    op_in(r, 0, f32(3, D(1, 1, 5), V(1, 2, 3, 4, 5)));
    op_in(r, 1, f32(3, D(1, 1, 3), V(1, 10, 100)));
    il_node_set_string(r->g, r->k, "auto_pad", "SAME_UPPER");
    il_node_set_ints(r->g, r->k, "strides", 1, D(2));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 3, D(1, 1, 3), V(210, 432, 54));
    op_free(r);
}

static void test_convtranspose_known(void) {
    /* ONNX example: 3x3 input 0..8, two output channels of 3x3 ones */
    op_case *r = node("ConvTranspose", 2, 1);
    op_in(r, 0, iota(IL_F32, 4, D(1, 1, 3, 3), 0));
    double ones[18];
    for (int i = 0; i < 18; i++) ones[i] = 1;
    op_in(r, 1, f32(4, D(1, 2, 3, 3), ones));
    const double ch[25] = {0, 1, 3, 3, 2, 3, 8, 15, 12, 7, 9, 21, 36, 27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8};
    double want[50];
    memcpy(want, ch, sizeof ch);
    memcpy(want + 25, ch, sizeof ch);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 2, 5, 5), want);
    /* strides [3,2] and pads [1,2,1,2]: the ONNX test_convtranspose_pads result */
    il_node_set_ints(r->g, r->k, "strides", 2, D(3, 2));
    il_node_set_ints(r->g, r->k, "pads", 4, D(1, 2, 1, 2));
    const double p[21] = {1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9, 13, 7, 15, 13, 7, 15};
    memcpy(want, p, sizeof p);
    memcpy(want + 21, p, sizeof p);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 2, 7, 3), want);
    op_free(r);

    /* output_shape larger than the full result: zeros at the end; with bias */
    r = node("ConvTranspose", 3, 1);
    op_in(r, 0, f32(3, D(1, 1, 2), V(1, 2)));
    op_in(r, 1, f32(3, D(1, 1, 2), V(1, 10)));
    op_in(r, 2, f32(1, D(1), V(100)));
    il_node_set_ints(r->g, r->k, "output_shape", 1, D(4));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 3, D(1, 1, 4), V(101, 112, 120, 100));
    op_free(r);
}

static void test_pool_known(void) {
    op_case *r = node("MaxPool", 1, 2);
    op_in(r, 0, iota(IL_F32, 4, D(1, 1, 4, 4), 1));
    il_node_set_ints(r->g, r->k, "kernel_shape", 2, D(3, 3));
    il_node_set_ints(r->g, r->k, "strides", 2, D(2, 2));
    il_node_set_int(r->g, r->k, "ceil_mode", 1);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 1, 2, 2), V(11, 12, 15, 16));
    EXPECT(r, 1, IL_I64, 4, D(1, 1, 2, 2), V(10, 11, 14, 15));
    op_free(r);

    /* 2x2 windows, stride 2: Indices row-major, then column-major (storage_order 1) */
    r = node("MaxPool", 1, 2);
    op_in(r, 0, iota(IL_F32, 4, D(1, 1, 4, 4), 1));
    il_node_set_ints(r->g, r->k, "kernel_shape", 2, D(2, 2));
    il_node_set_ints(r->g, r->k, "strides", 2, D(2, 2));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 1, 2, 2), V(6, 8, 14, 16));
    EXPECT(r, 1, IL_I64, 4, D(1, 1, 2, 2), V(5, 7, 13, 15));
    il_node_set_int(r->g, r->k, "storage_order", 1);
    RUN_OK(r);
    EXPECT(r, 1, IL_I64, 4, D(1, 1, 2, 2), V(5, 13, 7, 15));
    op_free(r);

    r = node("AveragePool", 1, 1);
    op_in(r, 0, iota(IL_F32, 4, D(1, 1, 4, 4), 1));
    il_node_set_ints(r->g, r->k, "kernel_shape", 2, D(3, 3));
    il_node_set_ints(r->g, r->k, "strides", 2, D(2, 2));
    il_node_set_int(r->g, r->k, "ceil_mode", 1);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 1, 2, 2), V(6, 7.5f, 12, 13.5f));
    op_free(r);

    /* pads 1 around [[1,2],[3,4]], 2x2 windows: divide by the taps inside, or by 4 */
    r = node("AveragePool", 1, 1);
    op_in(r, 0, iota(IL_F32, 4, D(1, 1, 2, 2), 1));
    il_node_set_ints(r->g, r->k, "kernel_shape", 2, D(2, 2));
    il_node_set_ints(r->g, r->k, "pads", 4, D(1, 1, 1, 1));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 1, 3, 3), V(1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4));
    il_node_set_int(r->g, r->k, "count_include_pad", 1);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 1, 3, 3), V(0.25f, 0.75f, 0.5f, 1, 2.5f, 1.5f, 0.75f, 1.75f, 1));
    op_free(r);

    r = node("GlobalAveragePool", 1, 1);
    op_in(r, 0, iota(IL_F32, 4, D(1, 2, 2, 2), 1));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 2, 1, 1), V(2.5f, 6.5f));
    op_free(r);
    r = node("GlobalMaxPool", 1, 1);
    op_in(r, 0, iota(IL_F32, 3, D(2, 1, 3), -3));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 3, D(2, 1, 1), V(-1, 2));
    op_free(r);
}

static void test_norm_known(void) {
    /* the ONNX BatchNormalization example */
    op_case *r = node("BatchNormalization", 5, 1);
    op_in(r, 0, f32(4, D(1, 2, 1, 3), V(-1, 0, 1, 2, 3, 4)));
    op_in(r, 1, f32(1, D(2), V(1, 1.5f)));
    op_in(r, 2, f32(1, D(2), V(0, 1)));
    op_in(r, 3, f32(1, D(2), V(0, 3)));
    op_in(r, 4, f32(1, D(2), V(1, 1.5f)));
    float a = 1 / sqrtf(1 + 1e-5f), b = 1.5f / sqrtf(1.5f + 1e-5f);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 2, 1, 3), V(-a, 0, a, 1 - b, 1, 1 + b));
    il_node_set_float(r->g, r->k, "epsilon", 0.5f);
    a = 1 / sqrtf(1.5f), b = 1.5f / sqrtf(2.0f);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(1, 2, 1, 3), V(-a, 0, a, 1 - b, 1, 1 + b));
    op_free(r);

    /* rows [1,2,3] and [2,4,6]: mean 2 and 4, variance 2/3 and 8/3 */
    r = node("LayerNormalization", 3, 3);
    op_in(r, 0, f32(2, D(2, 3), V(1, 2, 3, 2, 4, 6)));
    op_in(r, 1, f32(1, D(3), V(1, 2, 1)));
    op_in(r, 2, f32(1, D(3), V(0, 0, 10)));
    float s1 = 1 / sqrtf(2.0f / 3 + 1e-5f), s2 = 1 / sqrtf(8.0f / 3 + 1e-5f);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 2, D(2, 3), V(-s1, 0, 10 + s1, -2 * s2, 0, 10 + 2 * s2));
    EXPECT(r, 1, IL_F32, 2, D(2, 1), V(2, 4));
    EXPECT(r, 2, IL_F32, 2, D(2, 1), V(s1, s2));
    op_free(r);

    r = node("InstanceNormalization", 3, 1);
    op_in(r, 0, f32(3, D(1, 2, 2), V(1, 3, 5, 5)));
    op_in(r, 1, f32(1, D(2), V(2, 1)));
    op_in(r, 2, f32(1, D(2), V(0, 7)));
    float e = 1 / sqrtf(1 + 1e-5f);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 3, D(1, 2, 2), V(-2 * e, 2 * e, 7, 7));
    op_free(r);
}

static void test_gemm_known(void) {
    /* A^T with A = [[1,3],[2,4]] stored [2,2] -> op(A) = [[1,2],[3,4]]; B = I*2; C a row */
    op_case *r = node("Gemm", 3, 1);
    op_in(r, 0, f32(2, D(2, 2), V(1, 3, 2, 4)));
    op_in(r, 1, f32(2, D(2, 3), V(2, 0, 1, 0, 2, 1)));
    op_in(r, 2, f32(1, D(3), V(10, 20, 30)));
    il_node_set_int(r->g, r->k, "transA", 1);
    il_node_set_float(r->g, r->k, "alpha", 0.5f);
    il_node_set_float(r->g, r->k, "beta", 2);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 2, D(2, 3), V(21, 42, 61.5f, 23, 44, 63.5f));
    op_in(r, 2, f32(2, D(2, 1), V(1, -1))); /* a column */
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 2, D(2, 3), V(3, 4, 3.5f, 1, 2, 1.5f));
    op_free(r);

    r = node("Gemm", 2, 1);
    op_in(r, 0, f32(2, D(1, 2), V(1, 2)));
    op_in(r, 1, f32(2, D(3, 2), V(1, 0, 0, 1, 1, 1)));
    il_node_set_int(r->g, r->k, "transB", 1);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 2, D(1, 3), V(1, 2, 3));
    op_free(r);
}

static void test_matmul_known(void) {
    op_case *r = node("MatMul", 2, 1);
    op_in(r, 0, f32(1, D(3), V(1, 2, 3)));
    op_in(r, 1, f32(1, D(3), V(4, 5, 6)));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 0, NULL, V(32)); /* 1-D x 1-D: a scalar */
    op_in(r, 1, f32(2, D(3, 2), V(1, 0, 0, 1, 1, 1)));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 1, D(2), V(4, 5));
    op_in(r, 0, f32(2, D(2, 3), V(1, 0, 0, 0, 0, 1)));
    op_in(r, 1, f32(1, D(3), V(7, 8, 9)));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 1, D(2), V(7, 9));
    /* batch broadcast: [2,1,1,2] x [3,2,1] -> [2,3,1,1] */
    op_in(r, 0, f32(4, D(2, 1, 1, 2), V(1, 2, 3, 4)));
    op_in(r, 1, f32(3, D(3, 2, 1), V(1, 1, 1, 0, 0, 1)));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 4, D(2, 3, 1, 1), V(3, 1, 2, 7, 3, 4));
    op_free(r);
}

static op_case *einsum(const char *eq, il_tensor *a, il_tensor *b) {
    op_case *r = node("Einsum", b ? 2 : 1, 1);
    r->in[0] = a, r->in[1] = b;
    SETS(r, "equation", eq);
    return r;
}

static void test_einsum_known(void) {
    op_case *r = einsum("ij,jk->ik", f32(2, D(2, 2), V(1, 2, 3, 4)), f32(2, D(2, 2), V(5, 6, 7, 8)));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 2, D(2, 2), V(19, 22, 43, 50));
    op_free(r);
    r = einsum("ij,jk", f32(2, D(2, 2), V(1, 2, 3, 4)), f32(2, D(2, 2), V(5, 6, 7, 8))); /* implicit: ik */
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 2, D(2, 2), V(19, 22, 43, 50));
    op_free(r);
    r = einsum("bij,bjk->bik", f32(3, D(2, 1, 2), V(1, 2, 3, 4)), f32(3, D(2, 2, 1), V(1, 1, 2, -1)));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 3, D(2, 1, 1), V(3, 2));
    op_free(r);
    r = einsum("ii->i", iota(IL_F32, 2, D(3, 3), 0), NULL);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 1, D(3), V(0, 4, 8));
    op_free(r);
    r = einsum("ii", iota(IL_F32, 2, D(3, 3), 0), NULL); /* implicit trace */
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 0, NULL, V(12));
    op_free(r);
    r = einsum("ij->", iota(IL_F32, 2, D(2, 3), 1), NULL);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 0, NULL, V(21));
    op_free(r);
    r = einsum("...ij->...ji", iota(IL_F32, 3, D(2, 2, 3), 0), NULL);
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 3, D(2, 3, 2), V(0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11));
    op_free(r);
    r = einsum("i,i", f32(1, D(3), V(1, 2, 3)), f32(1, D(3), V(1, 1, -1)));
    RUN_OK(r);
    EXPECT(r, 0, IL_F32, 0, NULL, V(0));
    op_free(r);
}

static void test_errors(void) {
    op_case *r = node("MatMul", 2, 1);
    op_in(r, 0, f32(2, D(1, 4), NULL));
    op_in(r, 1, f32(2, D(3, 3), NULL));
    FAILS(r, IL_ERR_SHAPE, "inner dimensions differ: [1,4] x [3,3]");
    op_in(r, 1, il_tensor_new(IL_I32, 2, D(4, 3)));
    FAILS(r, IL_ERR_TYPE, NULL);
    op_free(r);

    r = node("Conv", 2, 1);
    op_in(r, 0, f32(4, D(1, 3, 8, 8), NULL));
    op_in(r, 1, f32(4, D(64, 64, 3, 3), NULL));
    FAILS(r, IL_ERR_SHAPE, "input has 3 channels, weight expects 64 (group 1)");
    op_in(r, 1, f32(4, D(4, 3, 9, 9), NULL));
    FAILS(r, IL_ERR_SHAPE, "does not fit");
    op_in(r, 1, f32(3, D(4, 3, 3), NULL));
    FAILS(r, IL_ERR_SHAPE, "rank");
    op_in(r, 0, il_tensor_new(IL_I32, 4, D(1, 3, 8, 8)));
    FAILS(r, IL_ERR_UNSUPPORTED, "unsupported dtype int32");
    op_free(r);

    r = node("Gemm", 3, 1);
    op_in(r, 0, f32(2, D(2, 3), NULL));
    op_in(r, 1, f32(2, D(3, 4), NULL));
    op_in(r, 2, f32(1, D(3), NULL));
    FAILS(r, IL_ERR_SHAPE, "does not broadcast to [2,4]");
    op_free(r);

    r = node("MaxPool", 1, 1);
    op_in(r, 0, f32(4, D(1, 1, 4, 4), NULL));
    FAILS(r, IL_ERR_INVALID, "kernel_shape");
    il_node_set_ints(r->g, r->k, "kernel_shape", 3, D(2, 2, 2));
    FAILS(r, IL_ERR_INVALID, "kernel_shape has 3 values");
    op_free(r);

    r = einsum("ij,jk->ik", f32(2, D(2, 3), NULL), f32(2, D(4, 5), NULL));
    FAILS(r, IL_ERR_SHAPE, "subscript 'j'");
    op_free(r);
    r = einsum("ij,jk->iz", f32(2, D(2, 3), NULL), f32(2, D(3, 5), NULL));
    FAILS(r, IL_ERR_INVALID, "'z'");
    op_free(r);
    r = einsum("ijk->i", f32(2, D(2, 3), NULL), NULL);
    FAILS(r, IL_ERR_SHAPE, "rank 2");
    op_free(r);

    r = node("LayerNormalization", 2, 1);
    op_in(r, 0, f32(2, D(2, 3), NULL));
    op_in(r, 1, f32(1, D(4), NULL));
    FAILS(r, IL_ERR_SHAPE, "Scale [4]");
    op_free(r);

    r = node("BatchNormalization", 5, 1);
    op_in(r, 0, f32(4, D(1, 2, 1, 3), NULL));
    for (int i = 1; i < 5; i++) op_in(r, i, f32(1, D(i == 4 ? 3 : 2), NULL));
    FAILS(r, IL_ERR_SHAPE, "var has shape [3]");
    op_free(r);
}

/* Plan-time inference: no data, unknown dims (-1), unknown rank; must not crash and must keep
 * what it can tell. */
static void test_infer_unknown(void) {
    il_tensor o[1];
    op_case *r = node("Conv", 2, 1);
    r->in[0] = shape_only(IL_F32, SHAPE(-1, 3, -1, 32));
    r->in[1] = shape_only(IL_F32, SHAPE(8, 3, 3, 3));
    il_node_set_ints(r->g, r->k, "strides", 2, D(2, 2));
    IL_ASSERT_OK(op_infer(r, OP_PLAN, o));
    CU_ASSERT(o[0].rank == 4 && o[0].dims[0] == -1 && o[0].dims[1] == 8 && o[0].dims[2] == -1 && o[0].dims[3] == 15);
    r->in[0]->rank = -1;
    IL_ASSERT_OK(op_infer(r, OP_PLAN, o));
    CU_ASSERT_EQUAL(o[0].rank, -1);
    op_free(r);

    const char *ops[] = {"ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization",
                         "InstanceNormalization", "LayerNormalization", "MatMul", "Gemm", "Einsum"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        int gemm = !strcmp(ops[i], "Gemm");
        int n_in = gemm || !strcmp(ops[i], "Einsum") || !strcmp(ops[i], "MatMul") ? 2 : 3;
        if (!strcmp(ops[i], "BatchNormalization")) n_in = 5;
        r = node(ops[i], n_in, 1);
        r->in[0] = shape_only(IL_F32, gemm ? 2 : 4, D(-1, 3, -1, 32));
        r->in[1] = shape_only(IL_F32, gemm ? 2 : 4, D(3, 2, 3, -1));
        if (!strcmp(ops[i], "MatMul")) op_in(r, 1, shape_only(IL_F32, SHAPE(3, 32, -1)));
        if (!strcmp(ops[i], "Einsum")) op_in(r, 1, shape_only(IL_F32, SHAPE(-1, 3, 32, 5)));
        if (!strcmp(ops[i], "LayerNormalization")) op_in(r, 1, shape_only(IL_F32, SHAPE(-1)));
        for (int k = 2; k < n_in; k++) r->in[k] = shape_only(IL_F32, SHAPE(-1));
        il_node_set_ints(r->g, r->k, "kernel_shape", 2, D(3, 3));
        il_node_set_string(r->g, r->k, "equation", "abcd,abde->abce");
        il_status st = op_infer(r, OP_PLAN, o);
        if (st) fprintf(stderr, "\n  %s: %s\n", ops[i], il_errmsg());
        CU_ASSERT_EQUAL(st, IL_OK);
        op_free(r);
    }
}

IL_SUITE("compute", {"conv_known", test_conv_known}, {"convtranspose_known", test_convtranspose_known},
         {"pool_known", test_pool_known}, {"norm_known", test_norm_known}, {"gemm_known", test_gemm_known},
         {"matmul_known", test_matmul_known}, {"einsum_known", test_einsum_known}, {"errors", test_errors},
         {"infer_unknown", test_infer_unknown})
