/*
 * test_compute.c - the compute-heavy ops (Conv, ConvTranspose, pools, norms, Gemm, MatMul,
 * Einsum): hand-checked tiny cases through both kernels, plan-time inference with unknown
 * dims, and the error paths. The fast-against-reference comparisons on random configurations
 * are in test_compute_fast.c; both use the one-node rig defined here (compute_rig.h).
 *
 * Each case is a one-node graph; cr_run calls the op's infer, allocates the outputs from the
 * inferred shapes (pre-filled with NaN, so an element a kernel forgets to write shows up) and
 * calls the reference or the fast kernel.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compute_rig.h"

uint64_t cr_rng = 0x9e3779b97f4a7c15ull;

cr_rig *cr_new(const char *op, int n_in, int n_out) {
    cr_rig *r = calloc(1, sizeof *r);
    r->g = il_graph_new("t");
    r->opset = 17;
    r->n_in = n_in;
    r->n_out = n_out;
    r->threads = 4;
    int in[NI], out[NO];
    char name[16];
    for (int i = 0; i < n_in; i++) snprintf(name, sizeof name, "i%d", i), in[i] = il_graph_value(r->g, name);
    for (int i = 0; i < n_out; i++) snprintf(name, sizeof name, "o%d", i), out[i] = il_graph_value(r->g, name);
    il_graph_add_node(r->g, op, "", "n", n_in, in, n_out, out);
    return r;
}

static void rig_clear(cr_rig *r) {
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < NO; i++) il_tensor_free(r->out[k][i]), r->out[k][i] = NULL;
}

void cr_free(cr_rig *r) {
    rig_clear(r);
    for (int i = 0; i < NI; i++) il_tensor_free(r->in[i]);
    il_graph_free(r->g);
    free(r);
}

/* Input i of the node; takes t. */
void cr_in(cr_rig *r, int i, il_tensor *t) {
    il_tensor_free(r->in[i]);
    r->in[i] = t;
}

il_tensor *cr_f32(int rank, const int64_t *dims, const float *v) {
    il_tensor *t = il_tensor_new(IL_F32, rank, dims);
    if (v) memcpy(t->data, v, il_tensor_bytes(t));
    return t;
}

il_tensor *cr_rand(il_dtype dt, int rank, const int64_t *dims) {
    il_tensor *t = il_tensor_new(dt, rank, dims);
    il_tensor_fill_random(t, &cr_rng, -1, 1);
    return t;
}

il_tensor *cr_iota(int rank, const int64_t *dims, float start) {
    il_tensor *t = cr_f32(rank, dims, NULL);
    for (int64_t i = 0; i < il_tensor_numel(t); i++) ((float *)t->data)[i] = start + (float)i;
    return t;
}

static il_kctx rig_ctx(cr_rig *r, il_tensor **out) {
    return (il_kctx){.node = &r->g->nodes[0], .opset = r->opset, .n_in = r->n_in, .n_out = r->n_out,
                     .in = r->in, .out = out, .threads = r->threads};
}

/* infer, allocate, run the reference (fast = 0) or the fast kernel (fast = 1). */
il_status cr_run(cr_rig *r, int fast) {
    il_tensor info[NO], *pinfo[NO];
    memset(info, 0, sizeof info);
    for (int i = 0; i < NO; i++) pinfo[i] = &info[i];
    il_kctx c = rig_ctx(r, pinfo);
    const il_op *op = il_op_find("", c.node->op_type);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op);
    il_status st = op->infer(&c);
    if (st) return st;
    for (int i = 0; i < r->n_out; i++) {
        il_tensor_free(r->out[fast][i]);
        r->out[fast][i] = il_tensor_new(info[i].dtype, info[i].rank, info[i].dims);
        if (il_dtype_is_float(info[i].dtype))
            for (int64_t j = 0; j < il_tensor_numel(r->out[fast][i]); j++) il_tensor_set(r->out[fast][i], j, NAN);
    }
    c.out = r->out[fast];
    return (fast && op->fast ? op->fast : op->ref)(&c);
}

/* Both kernels give output o = want (shape and values). */
void cr_expect(cr_rig *r, int o, int rank, const int64_t *dims, const float *want) {
    for (int fast = 0; fast < 2; fast++) {
        IL_ASSERT_OK(cr_run(r, fast));
        il_tensor *w = cr_f32(rank, dims, want);
        char msg[256];
        int64_t worst;
        il_tensor *got = r->out[fast][o];
        if (got->dtype != IL_F32) { /* compare integer outputs through float */
            il_tensor *g2 = cr_f32(got->rank, got->dims, NULL);
            for (int64_t i = 0; i < il_tensor_numel(got); i++) il_tensor_set(g2, i, il_tensor_get(got, i));
            got = g2;
        }
        int ok = il_tensor_allclose(got, w, 1e-4, 1e-5, &worst, msg, sizeof msg);
        if (!ok) fprintf(stderr, "\n  %s %s output %d: %s\n", r->g->nodes[0].op_type, fast ? "fast" : "ref", o, msg);
        CU_ASSERT(ok);
        if (got != r->out[fast][o]) il_tensor_free(got);
        il_tensor_free(w);
    }
}

/* Fast against reference on the rig's current inputs; label names the configuration. */
int cr_fast_matches_ref(cr_rig *r, const char *label) {
    il_status s0 = cr_run(r, 0), s1 = cr_run(r, 1);
    if (s0 || s1) {
        fprintf(stderr, "\n  %s: %s\n", label, il_errmsg());
        CU_FAIL("kernel failed");
        return 0;
    }
    for (int i = 0; i < r->n_out; i++) {
        char msg[256];
        int64_t worst;
        if (!il_tensor_allclose(r->out[1][i], r->out[0][i], 1e-4, 1e-5, &worst, msg, sizeof msg)) {
            fprintf(stderr, "\n  %s output %d: %s\n", label, i, msg);
            CU_FAIL("fast differs from reference");
            return 0;
        }
    }
    CU_PASS("match");
    return 1;
}

/* The status and that the message contains want. */
static void expect_err(cr_rig *r, il_status want, const char *text) {
    il_status st = cr_run(r, 0);
    CU_ASSERT_EQUAL(st, want);
    if (text && !strstr(il_errmsg(), text)) fprintf(stderr, "\n  message '%s' lacks '%s'\n", il_errmsg(), text);
    if (text) CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), text));
}

/* The ONNX Conv examples on a 5x5 input 0..24 with a 3x3 kernel of ones. */
static void test_conv_known(void) {
    cr_rig *r = cr_new("Conv", 2, 1);
    cr_in(r, 0, cr_iota(4, D(1, 1, 5, 5), 0));
    cr_in(r, 1, cr_f32(4, D(1, 1, 3, 3), F(1, 1, 1, 1, 1, 1, 1, 1, 1)));
    cr_expect(r, 0, 4, D(1, 1, 3, 3), F(54, 63, 72, 99, 108, 117, 144, 153, 162));
    il_node_set_ints(r->g, 0, "pads", 4, D(1, 1, 1, 1));
    cr_expect(r, 0, 4, D(1, 1, 5, 5),
              F(12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123,
                84));
    il_node_set_ints(r->g, 0, "strides", 2, D(2, 2));
    cr_expect(r, 0, 4, D(1, 1, 3, 3), F(12, 27, 24, 63, 108, 81, 72, 117, 84));
    cr_free(r);

    /* dilation 2 with a 2x2 kernel of ones: y[i,j] = x[i,j] + x[i,j+2] + x[i+2,j] + x[i+2,j+2] */
    r = cr_new("Conv", 3, 1);
    cr_in(r, 0, cr_iota(4, D(1, 1, 5, 5), 0));
    cr_in(r, 1, cr_f32(4, D(1, 1, 2, 2), F(1, 1, 1, 1)));
    cr_in(r, 2, cr_f32(1, D(1), F(0.5f)));
    il_node_set_ints(r->g, 0, "dilations", 2, D(2, 2));
    cr_expect(r, 0, 4, D(1, 1, 3, 3), F(24.5f, 28.5f, 32.5f, 44.5f, 48.5f, 52.5f, 64.5f, 68.5f, 72.5f));
    cr_free(r);

    /* group 2, 1x1 kernels 2 and 3, bias 1 and -1: each channel scaled alone */
    r = cr_new("Conv", 3, 1);
    cr_in(r, 0, cr_iota(4, D(1, 2, 1, 3), 1));
    cr_in(r, 1, cr_f32(4, D(2, 1, 1, 1), F(2, 3)));
    cr_in(r, 2, cr_f32(1, D(2), F(1, -1)));
    il_node_set_int(r->g, 0, "group", 2);
    cr_expect(r, 0, 4, D(1, 2, 1, 3), F(3, 5, 7, 11, 14, 17));
    cr_free(r);

    /* 1-D, SAME_UPPER with stride 2 on length 5: out 3, total pad 2 -> 1 each side */
    r = cr_new("Conv", 2, 1);
    cr_in(r, 0, cr_f32(3, D(1, 1, 5), F(1, 2, 3, 4, 5)));
    cr_in(r, 1, cr_f32(3, D(1, 1, 3), F(1, 10, 100)));
    il_node_set_string(r->g, 0, "auto_pad", "SAME_UPPER");
    il_node_set_ints(r->g, 0, "strides", 1, D(2));
    cr_expect(r, 0, 3, D(1, 1, 3), F(210, 432, 54));
    cr_free(r);
}

static void test_convtranspose_known(void) {
    /* ONNX example: 3x3 input 0..8, two output channels of 3x3 ones */
    cr_rig *r = cr_new("ConvTranspose", 2, 1);
    cr_in(r, 0, cr_iota(4, D(1, 1, 3, 3), 0));
    float ones[18];
    for (int i = 0; i < 18; i++) ones[i] = 1;
    cr_in(r, 1, cr_f32(4, D(1, 2, 3, 3), ones));
    const float ch[25] = {0, 1, 3, 3, 2, 3, 8, 15, 12, 7, 9, 21, 36, 27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8};
    float want[50];
    memcpy(want, ch, sizeof ch);
    memcpy(want + 25, ch, sizeof ch);
    cr_expect(r, 0, 4, D(1, 2, 5, 5), want);
    /* strides [3,2] and pads [1,2,1,2]: the ONNX test_convtranspose_pads result */
    il_node_set_ints(r->g, 0, "strides", 2, D(3, 2));
    il_node_set_ints(r->g, 0, "pads", 4, D(1, 2, 1, 2));
    const float p[21] = {1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9, 13, 7, 15, 13, 7, 15};
    memcpy(want, p, sizeof p);
    memcpy(want + 21, p, sizeof p);
    cr_expect(r, 0, 4, D(1, 2, 7, 3), want);
    cr_free(r);

    /* output_shape larger than the full result: zeros at the end; with bias */
    r = cr_new("ConvTranspose", 3, 1);
    cr_in(r, 0, cr_f32(3, D(1, 1, 2), F(1, 2)));
    cr_in(r, 1, cr_f32(3, D(1, 1, 2), F(1, 10)));
    cr_in(r, 2, cr_f32(1, D(1), F(100)));
    il_node_set_ints(r->g, 0, "output_shape", 1, D(4));
    cr_expect(r, 0, 3, D(1, 1, 4), F(101, 112, 120, 100));
    cr_free(r);
}

static void test_pool_known(void) {
    cr_rig *r = cr_new("MaxPool", 1, 2);
    cr_in(r, 0, cr_iota(4, D(1, 1, 4, 4), 1));
    il_node_set_ints(r->g, 0, "kernel_shape", 2, D(3, 3));
    il_node_set_ints(r->g, 0, "strides", 2, D(2, 2));
    il_node_set_int(r->g, 0, "ceil_mode", 1);
    cr_expect(r, 0, 4, D(1, 1, 2, 2), F(11, 12, 15, 16));
    cr_expect(r, 1, 4, D(1, 1, 2, 2), F(10, 11, 14, 15));
    cr_free(r);

    /* 2x2 windows, stride 2: Indices row-major, then column-major (storage_order 1) */
    r = cr_new("MaxPool", 1, 2);
    cr_in(r, 0, cr_iota(4, D(1, 1, 4, 4), 1));
    il_node_set_ints(r->g, 0, "kernel_shape", 2, D(2, 2));
    il_node_set_ints(r->g, 0, "strides", 2, D(2, 2));
    cr_expect(r, 0, 4, D(1, 1, 2, 2), F(6, 8, 14, 16));
    cr_expect(r, 1, 4, D(1, 1, 2, 2), F(5, 7, 13, 15));
    il_node_set_int(r->g, 0, "storage_order", 1);
    cr_expect(r, 1, 4, D(1, 1, 2, 2), F(5, 13, 7, 15));
    cr_free(r);

    r = cr_new("AveragePool", 1, 1);
    cr_in(r, 0, cr_iota(4, D(1, 1, 4, 4), 1));
    il_node_set_ints(r->g, 0, "kernel_shape", 2, D(3, 3));
    il_node_set_ints(r->g, 0, "strides", 2, D(2, 2));
    il_node_set_int(r->g, 0, "ceil_mode", 1);
    cr_expect(r, 0, 4, D(1, 1, 2, 2), F(6, 7.5f, 12, 13.5f));
    cr_free(r);

    /* pads 1 around [[1,2],[3,4]], 2x2 windows: divide by the taps inside, or by 4 */
    r = cr_new("AveragePool", 1, 1);
    cr_in(r, 0, cr_iota(4, D(1, 1, 2, 2), 1));
    il_node_set_ints(r->g, 0, "kernel_shape", 2, D(2, 2));
    il_node_set_ints(r->g, 0, "pads", 4, D(1, 1, 1, 1));
    cr_expect(r, 0, 4, D(1, 1, 3, 3), F(1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4));
    il_node_set_int(r->g, 0, "count_include_pad", 1);
    cr_expect(r, 0, 4, D(1, 1, 3, 3), F(0.25f, 0.75f, 0.5f, 1, 2.5f, 1.5f, 0.75f, 1.75f, 1));
    cr_free(r);

    r = cr_new("GlobalAveragePool", 1, 1);
    cr_in(r, 0, cr_iota(4, D(1, 2, 2, 2), 1));
    cr_expect(r, 0, 4, D(1, 2, 1, 1), F(2.5f, 6.5f));
    cr_free(r);
    r = cr_new("GlobalMaxPool", 1, 1);
    cr_in(r, 0, cr_iota(3, D(2, 1, 3), -3));
    cr_expect(r, 0, 3, D(2, 1, 1), F(-1, 2));
    cr_free(r);
}

static void test_norm_known(void) {
    /* the ONNX BatchNormalization example */
    cr_rig *r = cr_new("BatchNormalization", 5, 1);
    cr_in(r, 0, cr_f32(4, D(1, 2, 1, 3), F(-1, 0, 1, 2, 3, 4)));
    cr_in(r, 1, cr_f32(1, D(2), F(1, 1.5f)));
    cr_in(r, 2, cr_f32(1, D(2), F(0, 1)));
    cr_in(r, 3, cr_f32(1, D(2), F(0, 3)));
    cr_in(r, 4, cr_f32(1, D(2), F(1, 1.5f)));
    float a = 1 / sqrtf(1 + 1e-5f), b = 1.5f / sqrtf(1.5f + 1e-5f);
    cr_expect(r, 0, 4, D(1, 2, 1, 3), F(-a, 0, a, 1 - b, 1, 1 + b));
    il_node_set_float(r->g, 0, "epsilon", 0.5f);
    a = 1 / sqrtf(1.5f), b = 1.5f / sqrtf(2.0f);
    cr_expect(r, 0, 4, D(1, 2, 1, 3), F(-a, 0, a, 1 - b, 1, 1 + b));
    cr_free(r);

    /* rows [1,2,3] and [2,4,6]: mean 2 and 4, variance 2/3 and 8/3 */
    r = cr_new("LayerNormalization", 3, 3);
    cr_in(r, 0, cr_f32(2, D(2, 3), F(1, 2, 3, 2, 4, 6)));
    cr_in(r, 1, cr_f32(1, D(3), F(1, 2, 1)));
    cr_in(r, 2, cr_f32(1, D(3), F(0, 0, 10)));
    float s1 = 1 / sqrtf(2.0f / 3 + 1e-5f), s2 = 1 / sqrtf(8.0f / 3 + 1e-5f);
    cr_expect(r, 0, 2, D(2, 3), F(-s1, 0, 10 + s1, -2 * s2, 0, 10 + 2 * s2));
    cr_expect(r, 1, 2, D(2, 1), F(2, 4));
    cr_expect(r, 2, 2, D(2, 1), F(s1, s2));
    cr_free(r);

    r = cr_new("InstanceNormalization", 3, 1);
    cr_in(r, 0, cr_f32(3, D(1, 2, 2), F(1, 3, 5, 5)));
    cr_in(r, 1, cr_f32(1, D(2), F(2, 1)));
    cr_in(r, 2, cr_f32(1, D(2), F(0, 7)));
    float e = 1 / sqrtf(1 + 1e-5f);
    cr_expect(r, 0, 3, D(1, 2, 2), F(-2 * e, 2 * e, 7, 7));
    cr_free(r);
}

static void test_gemm_known(void) {
    /* A^T with A = [[1,3],[2,4]] stored [2,2] -> op(A) = [[1,2],[3,4]]; B = I*2; C a row */
    cr_rig *r = cr_new("Gemm", 3, 1);
    cr_in(r, 0, cr_f32(2, D(2, 2), F(1, 3, 2, 4)));
    cr_in(r, 1, cr_f32(2, D(2, 3), F(2, 0, 1, 0, 2, 1)));
    cr_in(r, 2, cr_f32(1, D(3), F(10, 20, 30)));
    il_node_set_int(r->g, 0, "transA", 1);
    il_node_set_float(r->g, 0, "alpha", 0.5f);
    il_node_set_float(r->g, 0, "beta", 2);
    cr_expect(r, 0, 2, D(2, 3), F(21, 42, 61.5f, 23, 44, 63.5f));
    cr_in(r, 2, cr_f32(2, D(2, 1), F(1, -1))); /* a column */
    cr_expect(r, 0, 2, D(2, 3), F(3, 4, 3.5f, 1, 2, 1.5f));
    cr_free(r);

    r = cr_new("Gemm", 2, 1);
    cr_in(r, 0, cr_f32(2, D(1, 2), F(1, 2)));
    cr_in(r, 1, cr_f32(2, D(3, 2), F(1, 0, 0, 1, 1, 1)));
    il_node_set_int(r->g, 0, "transB", 1);
    cr_expect(r, 0, 2, D(1, 3), F(1, 2, 3));
    cr_free(r);
}

static void test_matmul_known(void) {
    cr_rig *r = cr_new("MatMul", 2, 1);
    cr_in(r, 0, cr_f32(1, D(3), F(1, 2, 3)));
    cr_in(r, 1, cr_f32(1, D(3), F(4, 5, 6)));
    cr_expect(r, 0, 0, NULL, F(32)); /* 1-D x 1-D: a scalar */
    cr_in(r, 1, cr_f32(2, D(3, 2), F(1, 0, 0, 1, 1, 1)));
    cr_expect(r, 0, 1, D(2), F(4, 5));
    cr_in(r, 0, cr_f32(2, D(2, 3), F(1, 0, 0, 0, 0, 1)));
    cr_in(r, 1, cr_f32(1, D(3), F(7, 8, 9)));
    cr_expect(r, 0, 1, D(2), F(7, 9));
    /* batch broadcast: [2,1,1,2] x [3,2,1] -> [2,3,1,1] */
    cr_in(r, 0, cr_f32(4, D(2, 1, 1, 2), F(1, 2, 3, 4)));
    cr_in(r, 1, cr_f32(3, D(3, 2, 1), F(1, 1, 1, 0, 0, 1)));
    cr_expect(r, 0, 4, D(2, 3, 1, 1), F(3, 1, 2, 7, 3, 4));
    cr_free(r);
}

cr_rig *cr_einsum(const char *eq, il_tensor *a, il_tensor *b) {
    cr_rig *r = cr_new("Einsum", b ? 2 : 1, 1);
    cr_in(r, 0, a);
    if (b) cr_in(r, 1, b);
    il_node_set_string(r->g, 0, "equation", eq);
    return r;
}

static void test_einsum_known(void) {
    cr_rig *r = cr_einsum("ij,jk->ik", cr_f32(2, D(2, 2), F(1, 2, 3, 4)), cr_f32(2, D(2, 2), F(5, 6, 7, 8)));
    cr_expect(r, 0, 2, D(2, 2), F(19, 22, 43, 50));
    cr_free(r);
    r = cr_einsum("ij,jk", cr_f32(2, D(2, 2), F(1, 2, 3, 4)), cr_f32(2, D(2, 2), F(5, 6, 7, 8))); /* implicit: ik */
    cr_expect(r, 0, 2, D(2, 2), F(19, 22, 43, 50));
    cr_free(r);
    r = cr_einsum("bij,bjk->bik", cr_f32(3, D(2, 1, 2), F(1, 2, 3, 4)), cr_f32(3, D(2, 2, 1), F(1, 1, 2, -1)));
    cr_expect(r, 0, 3, D(2, 1, 1), F(3, 2));
    cr_free(r);
    r = cr_einsum("ii->i", cr_iota(2, D(3, 3), 0), NULL);
    cr_expect(r, 0, 1, D(3), F(0, 4, 8));
    cr_free(r);
    r = cr_einsum("ii", cr_iota(2, D(3, 3), 0), NULL); /* implicit trace */
    cr_expect(r, 0, 0, NULL, F(12));
    cr_free(r);
    r = cr_einsum("ij->", cr_iota(2, D(2, 3), 1), NULL);
    cr_expect(r, 0, 0, NULL, F(21));
    cr_free(r);
    r = cr_einsum("...ij->...ji", cr_iota(3, D(2, 2, 3), 0), NULL);
    cr_expect(r, 0, 3, D(2, 3, 2), F(0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11));
    cr_free(r);
    r = cr_einsum("i,i", cr_f32(1, D(3), F(1, 2, 3)), cr_f32(1, D(3), F(1, 1, -1)));
    cr_expect(r, 0, 0, NULL, F(0));
    cr_free(r);
}

static void test_errors(void) {
    cr_rig *r = cr_new("MatMul", 2, 1);
    cr_in(r, 0, cr_f32(2, D(1, 4), NULL));
    cr_in(r, 1, cr_f32(2, D(3, 3), NULL));
    expect_err(r, IL_ERR_SHAPE, "inner dimensions differ: [1,4] x [3,3]");
    cr_in(r, 1, il_tensor_new(IL_I32, 2, D(4, 3)));
    expect_err(r, IL_ERR_TYPE, NULL);
    cr_free(r);

    r = cr_new("Conv", 2, 1);
    cr_in(r, 0, cr_f32(4, D(1, 3, 8, 8), NULL));
    cr_in(r, 1, cr_f32(4, D(64, 64, 3, 3), NULL));
    expect_err(r, IL_ERR_SHAPE, "input has 3 channels, weight expects 64 (group 1)");
    cr_in(r, 1, cr_f32(4, D(4, 3, 9, 9), NULL));
    expect_err(r, IL_ERR_SHAPE, "does not fit");
    cr_in(r, 1, cr_f32(3, D(4, 3, 3), NULL));
    expect_err(r, IL_ERR_SHAPE, "rank");
    cr_in(r, 0, il_tensor_new(IL_I32, 4, D(1, 3, 8, 8)));
    expect_err(r, IL_ERR_UNSUPPORTED, "unsupported dtype int32");
    cr_free(r);

    r = cr_new("Gemm", 3, 1);
    cr_in(r, 0, cr_f32(2, D(2, 3), NULL));
    cr_in(r, 1, cr_f32(2, D(3, 4), NULL));
    cr_in(r, 2, cr_f32(1, D(3), NULL));
    expect_err(r, IL_ERR_SHAPE, "does not broadcast to [2,4]");
    cr_free(r);

    r = cr_new("MaxPool", 1, 1);
    cr_in(r, 0, cr_f32(4, D(1, 1, 4, 4), NULL));
    expect_err(r, IL_ERR_INVALID, "kernel_shape");
    il_node_set_ints(r->g, 0, "kernel_shape", 3, D(2, 2, 2));
    expect_err(r, IL_ERR_INVALID, "kernel_shape has 3 values");
    cr_free(r);

    r = cr_einsum("ij,jk->ik", cr_f32(2, D(2, 3), NULL), cr_f32(2, D(4, 5), NULL));
    expect_err(r, IL_ERR_SHAPE, "subscript 'j'");
    cr_free(r);
    r = cr_einsum("ij,jk->iz", cr_f32(2, D(2, 3), NULL), cr_f32(2, D(3, 5), NULL));
    expect_err(r, IL_ERR_INVALID, "'z'");
    cr_free(r);
    r = cr_einsum("ijk->i", cr_f32(2, D(2, 3), NULL), NULL);
    expect_err(r, IL_ERR_SHAPE, "rank 2");
    cr_free(r);

    r = cr_new("LayerNormalization", 2, 1);
    cr_in(r, 0, cr_f32(2, D(2, 3), NULL));
    cr_in(r, 1, cr_f32(1, D(4), NULL));
    expect_err(r, IL_ERR_SHAPE, "Scale [4]");
    cr_free(r);

    r = cr_new("BatchNormalization", 5, 1);
    cr_in(r, 0, cr_f32(4, D(1, 2, 1, 3), NULL));
    for (int i = 1; i < 5; i++) cr_in(r, i, cr_f32(1, D(i == 4 ? 3 : 2), NULL));
    expect_err(r, IL_ERR_SHAPE, "var has shape [3]");
    cr_free(r);
}

/* Plan-time inference: no data, unknown dims (-1), unknown rank; must not crash and must keep
 * what it can tell. */
static void test_infer_unknown(void) {
    il_tensor x = {.dtype = IL_F32, .rank = 4, .dims = {-1, 3, -1, 32}}, w = {.dtype = IL_F32, .rank = 4, .dims = {8, 3, 3, 3}};
    il_tensor o[3], *in[2] = {&x, &w}, *out[3] = {&o[0], &o[1], &o[2]};
    cr_rig *r = cr_new("Conv", 2, 1);
    il_node_set_ints(r->g, 0, "strides", 2, D(2, 2));
    il_kctx c = {.node = &r->g->nodes[0], .opset = 17, .n_in = 2, .n_out = 1, .in = in, .out = out, .infer_only = 1};
    IL_ASSERT_OK(il_op_find("", "Conv")->infer(&c));
    CU_ASSERT(o[0].rank == 4 && o[0].dims[0] == -1 && o[0].dims[1] == 8 && o[0].dims[2] == -1 && o[0].dims[3] == 15);
    x.rank = -1;
    IL_ASSERT_OK(il_op_find("", "Conv")->infer(&c));
    CU_ASSERT_EQUAL(o[0].rank, -1);
    cr_free(r);

    const char *ops[] = {"ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization",
                         "InstanceNormalization", "LayerNormalization", "MatMul", "Gemm", "Einsum"};
    il_tensor p = {.dtype = IL_F32, .rank = 1, .dims = {-1}};
    il_tensor *ins[5] = {&x, &w, &p, &p, &p};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        x = (il_tensor){.dtype = IL_F32, .rank = 4, .dims = {-1, 3, -1, 32}};
        w = (il_tensor){.dtype = IL_F32, .rank = 4, .dims = {3, 2, 3, -1}};
        if (!strcmp(ops[i], "MatMul")) w = (il_tensor){.dtype = IL_F32, .rank = 3, .dims = {3, 32, -1}};
        if (!strcmp(ops[i], "Einsum")) w = (il_tensor){.dtype = IL_F32, .rank = 4, .dims = {-1, 3, 32, 5}};
        if (!strcmp(ops[i], "LayerNormalization")) w = (il_tensor){.dtype = IL_F32, .rank = 1, .dims = {-1}};
        r = cr_new(ops[i], 5, 1);
        il_node_set_ints(r->g, 0, "kernel_shape", 2, D(3, 3));
        il_node_set_string(r->g, 0, "equation", "abcd,abde->abce");
        int n_in = !strcmp(ops[i], "Gemm") || !strcmp(ops[i], "Einsum") || !strcmp(ops[i], "MatMul") ? 2 : 3;
        if (!strcmp(ops[i], "BatchNormalization")) n_in = 5;
        if (!strcmp(ops[i], "Gemm")) x.rank = w.rank = 2;
        c = (il_kctx){.node = &r->g->nodes[0], .opset = 17, .n_in = n_in, .n_out = 1, .in = ins, .out = out, .infer_only = 1};
        il_status st = il_op_find("", ops[i])->infer(&c);
        if (st) fprintf(stderr, "\n  %s: %s\n", ops[i], il_errmsg());
        CU_ASSERT_EQUAL(st, IL_OK);
        cr_free(r);
    }
}

IL_SUITE("compute", {"conv_known", test_conv_known}, {"convtranspose_known", test_convtranspose_known},
         {"pool_known", test_pool_known}, {"norm_known", test_norm_known}, {"gemm_known", test_gemm_known},
         {"matmul_known", test_matmul_known}, {"einsum_known", test_einsum_known}, {"errors", test_errors},
         {"infer_unknown", test_infer_unknown})
