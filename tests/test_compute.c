/*
 * test_compute.c - the compute-heavy ops (Conv, ConvTranspose, pools, norms, Gemm, MatMul,
 * Einsum): hand-checked tiny cases through both kernels, the fast kernels against the
 * reference on fresh random inputs over many random configurations, plan-time inference with
 * unknown dims, and the error paths.
 *
 * Each case is a one-node graph; rig_run calls the op's infer, allocates the outputs from the
 * inferred shapes (pre-filled with NaN, so an element a kernel forgets to write shows up) and
 * calls the reference or the fast kernel.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops/kernel.h"
#include "test.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define F(...) ((const float[]){__VA_ARGS__})
#define NI 10
#define NO 5

typedef struct {
    il_graph *g;
    int64_t opset;
    int n_in, n_out, threads;
    il_tensor *in[NI];
    il_tensor *out[2][NO]; /* [0] reference, [1] fast */
} rig;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static rig *rig_new(const char *op, int n_in, int n_out) {
    rig *r = calloc(1, sizeof *r);
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

static void rig_clear(rig *r) {
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < NO; i++) il_tensor_free(r->out[k][i]), r->out[k][i] = NULL;
}

static void rig_free(rig *r) {
    rig_clear(r);
    for (int i = 0; i < NI; i++) il_tensor_free(r->in[i]);
    il_graph_free(r->g);
    free(r);
}

/* Input i of the node; takes t. */
static void rig_in(rig *r, int i, il_tensor *t) {
    il_tensor_free(r->in[i]);
    r->in[i] = t;
}

static il_tensor *tf(int rank, const int64_t *dims, const float *v) {
    il_tensor *t = il_tensor_new(IL_F32, rank, dims);
    if (v) memcpy(t->data, v, il_tensor_bytes(t));
    return t;
}

static il_tensor *trand(il_dtype dt, int rank, const int64_t *dims) {
    il_tensor *t = il_tensor_new(dt, rank, dims);
    il_tensor_fill_random(t, &rng, -1, 1);
    return t;
}

static il_tensor *tiota(int rank, const int64_t *dims, float start) {
    il_tensor *t = tf(rank, dims, NULL);
    for (int64_t i = 0; i < il_tensor_numel(t); i++) ((float *)t->data)[i] = start + (float)i;
    return t;
}

static il_kctx rig_ctx(rig *r, il_tensor **out) {
    return (il_kctx){.node = &r->g->nodes[0], .opset = r->opset, .n_in = r->n_in, .n_out = r->n_out,
                     .in = r->in, .out = out, .threads = r->threads};
}

/* infer, allocate, run the reference (fast = 0) or the fast kernel (fast = 1). */
static il_status rig_run(rig *r, int fast) {
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
static void expect_out(rig *r, int o, int rank, const int64_t *dims, const float *want) {
    for (int fast = 0; fast < 2; fast++) {
        IL_ASSERT_OK(rig_run(r, fast));
        il_tensor *w = tf(rank, dims, want);
        char msg[256];
        int64_t worst;
        il_tensor *got = r->out[fast][o];
        if (got->dtype != IL_F32) { /* compare integer outputs through float */
            il_tensor *g2 = tf(got->rank, got->dims, NULL);
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
static int fast_matches_ref(rig *r, const char *label) {
    il_status s0 = rig_run(r, 0), s1 = rig_run(r, 1);
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
static void expect_err(rig *r, il_status want, const char *text) {
    il_status st = rig_run(r, 0);
    CU_ASSERT_EQUAL(st, want);
    if (text && !strstr(il_errmsg(), text)) fprintf(stderr, "\n  message '%s' lacks '%s'\n", il_errmsg(), text);
    if (text) CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), text));
}

/* ---------------------------------------------------------------- Conv */

/* The ONNX Conv examples on a 5x5 input 0..24 with a 3x3 kernel of ones. */
static void test_conv_known(void) {
    rig *r = rig_new("Conv", 2, 1);
    rig_in(r, 0, tiota(4, D(1, 1, 5, 5), 0));
    rig_in(r, 1, tf(4, D(1, 1, 3, 3), F(1, 1, 1, 1, 1, 1, 1, 1, 1)));
    expect_out(r, 0, 4, D(1, 1, 3, 3), F(54, 63, 72, 99, 108, 117, 144, 153, 162));
    il_node_set_ints(r->g, 0, "pads", 4, D(1, 1, 1, 1));
    expect_out(r, 0, 4, D(1, 1, 5, 5),
               F(12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123,
                 84));
    il_node_set_ints(r->g, 0, "strides", 2, D(2, 2));
    expect_out(r, 0, 4, D(1, 1, 3, 3), F(12, 27, 24, 63, 108, 81, 72, 117, 84));
    rig_free(r);

    /* dilation 2 with a 2x2 kernel of ones: y[i,j] = x[i,j] + x[i,j+2] + x[i+2,j] + x[i+2,j+2] */
    r = rig_new("Conv", 3, 1);
    rig_in(r, 0, tiota(4, D(1, 1, 5, 5), 0));
    rig_in(r, 1, tf(4, D(1, 1, 2, 2), F(1, 1, 1, 1)));
    rig_in(r, 2, tf(1, D(1), F(0.5f)));
    il_node_set_ints(r->g, 0, "dilations", 2, D(2, 2));
    expect_out(r, 0, 4, D(1, 1, 3, 3), F(24.5f, 28.5f, 32.5f, 44.5f, 48.5f, 52.5f, 64.5f, 68.5f, 72.5f));
    rig_free(r);

    /* group 2, 1x1 kernels 2 and 3, bias 1 and -1: each channel scaled alone */
    r = rig_new("Conv", 3, 1);
    rig_in(r, 0, tiota(4, D(1, 2, 1, 3), 1));
    rig_in(r, 1, tf(4, D(2, 1, 1, 1), F(2, 3)));
    rig_in(r, 2, tf(1, D(2), F(1, -1)));
    il_node_set_int(r->g, 0, "group", 2);
    expect_out(r, 0, 4, D(1, 2, 1, 3), F(3, 5, 7, 11, 14, 17));
    rig_free(r);

    /* 1-D, SAME_UPPER with stride 2 on length 5: out 3, total pad 2 -> 1 each side */
    r = rig_new("Conv", 2, 1);
    rig_in(r, 0, tf(3, D(1, 1, 5), F(1, 2, 3, 4, 5)));
    rig_in(r, 1, tf(3, D(1, 1, 3), F(1, 10, 100)));
    il_node_set_string(r->g, 0, "auto_pad", "SAME_UPPER");
    il_node_set_ints(r->g, 0, "strides", 1, D(2));
    expect_out(r, 0, 3, D(1, 1, 3), F(210, 432, 54));
    rig_free(r);
}

static void test_convtranspose_known(void) {
    /* ONNX example: 3x3 input 0..8, two output channels of 3x3 ones */
    rig *r = rig_new("ConvTranspose", 2, 1);
    rig_in(r, 0, tiota(4, D(1, 1, 3, 3), 0));
    float ones[18];
    for (int i = 0; i < 18; i++) ones[i] = 1;
    rig_in(r, 1, tf(4, D(1, 2, 3, 3), ones));
    const float ch[25] = {0, 1, 3, 3, 2, 3, 8, 15, 12, 7, 9, 21, 36, 27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8};
    float want[50];
    memcpy(want, ch, sizeof ch);
    memcpy(want + 25, ch, sizeof ch);
    expect_out(r, 0, 4, D(1, 2, 5, 5), want);
    /* strides [3,2] and pads [1,2,1,2]: the ONNX test_convtranspose_pads result */
    il_node_set_ints(r->g, 0, "strides", 2, D(3, 2));
    il_node_set_ints(r->g, 0, "pads", 4, D(1, 2, 1, 2));
    const float p[21] = {1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9, 13, 7, 15, 13, 7, 15};
    memcpy(want, p, sizeof p);
    memcpy(want + 21, p, sizeof p);
    expect_out(r, 0, 4, D(1, 2, 7, 3), want);
    rig_free(r);

    /* output_shape larger than the full result: zeros at the end; with bias */
    r = rig_new("ConvTranspose", 3, 1);
    rig_in(r, 0, tf(3, D(1, 1, 2), F(1, 2)));
    rig_in(r, 1, tf(3, D(1, 1, 2), F(1, 10)));
    rig_in(r, 2, tf(1, D(1), F(100)));
    il_node_set_ints(r->g, 0, "output_shape", 1, D(4));
    expect_out(r, 0, 3, D(1, 1, 4), F(101, 112, 120, 100));
    rig_free(r);
}

static void test_conv_fast_random(void) {
    int fails = 0;
    for (int it = 0; it < 150 && fails < 3; it++) {
        int nsp = 1 + (int)(il_rand_u64(&rng) % 3), kind = (int)(il_rand_u64(&rng) % 4);
        int64_t group = kind == 1 ? 1 + (int64_t)(il_rand_u64(&rng) % 3) : 1;
        int64_t cg = kind == 2 ? 1 : 1 + (int64_t)(il_rand_u64(&rng) % 4), mg = 1 + (int64_t)(il_rand_u64(&rng) % 4);
        int64_t n = 1 + (int64_t)(il_rand_u64(&rng) % 3), xd[8] = {n, cg * group}, wd[8] = {mg * group, cg};
        int64_t st[6], dl[6], pd[12], kk;
        for (int d = 0; d < nsp; d++) {
            kk = kind == 3 ? 1 : 1 + (int64_t)(il_rand_u64(&rng) % 3);
            st[d] = kind == 3 ? 1 : 1 + (int64_t)(il_rand_u64(&rng) % 2);
            dl[d] = kind == 3 ? 1 : 1 + (int64_t)(il_rand_u64(&rng) % 2);
            pd[d] = kind == 3 ? 0 : (int64_t)(il_rand_u64(&rng) % 2);
            pd[nsp + d] = kind == 3 ? 0 : (int64_t)(il_rand_u64(&rng) % 3);
            xd[2 + d] = 5 + (int64_t)(il_rand_u64(&rng) % (nsp == 3 ? 3 : 6));
            wd[2 + d] = kk;
        }
        int depthwise = kind == 2, has_b = (int)(il_rand_u64(&rng) % 2);
        if (depthwise) group = xd[1] = 1 + (int64_t)(il_rand_u64(&rng) % 5), wd[0] = mg * group;
        rig *r = rig_new("Conv", 2 + has_b, 1);
        rig_in(r, 0, trand(IL_F32, nsp + 2, xd));
        rig_in(r, 1, trand(IL_F32, nsp + 2, wd));
        if (has_b) rig_in(r, 2, trand(IL_F32, 1, wd));
        il_node_set_int(r->g, 0, "group", group);
        il_node_set_ints(r->g, 0, "strides", nsp, st);
        il_node_set_ints(r->g, 0, "dilations", nsp, dl);
        if (it % 5 == 4) il_node_set_string(r->g, 0, "auto_pad", it % 10 == 4 ? "SAME_LOWER" : "SAME_UPPER");
        else il_node_set_ints(r->g, 0, "pads", 2 * nsp, pd);
        char label[96];
        snprintf(label, sizeof label, "Conv it %d nsp %d kind %d group %lld", it, nsp, kind, (long long)group);
        fails += !fast_matches_ref(r, label);
        rig_free(r);
    }
}

static void test_convtranspose_fast_random(void) {
    int fails = 0;
    for (int it = 0; it < 80 && fails < 3; it++) {
        int nsp = 1 + (int)(il_rand_u64(&rng) % 3);
        int64_t group = 1 + (int64_t)(il_rand_u64(&rng) % 2), cg = 1 + (int64_t)(il_rand_u64(&rng) % 3);
        int64_t mg = 1 + (int64_t)(il_rand_u64(&rng) % 3);
        int64_t xd[8] = {1 + (int64_t)(il_rand_u64(&rng) % 2), cg * group}, wd[8] = {cg * group, mg};
        int64_t st[6], dl[6], pd[12], op[6], os[6];
        for (int d = 0; d < nsp; d++) {
            wd[2 + d] = 1 + (int64_t)(il_rand_u64(&rng) % 3);
            st[d] = 1 + (int64_t)(il_rand_u64(&rng) % 3);
            dl[d] = 1 + (int64_t)(il_rand_u64(&rng) % 2);
            pd[d] = (int64_t)(il_rand_u64(&rng) % 2);
            pd[nsp + d] = (int64_t)(il_rand_u64(&rng) % 2);
            op[d] = (int64_t)(il_rand_u64(&rng) % st[d]);
            xd[2 + d] = 2 + (int64_t)(il_rand_u64(&rng) % 4);
            os[d] = xd[2 + d] * st[d] + (int64_t)(il_rand_u64(&rng) % 3) - 1;
        }
        rig *r = rig_new("ConvTranspose", 3, 1);
        rig_in(r, 0, trand(IL_F32, nsp + 2, xd));
        rig_in(r, 1, trand(IL_F32, nsp + 2, wd));
        rig_in(r, 2, trand(IL_F32, 1, D(mg * group)));
        il_node_set_int(r->g, 0, "group", group);
        il_node_set_ints(r->g, 0, "strides", nsp, st);
        il_node_set_ints(r->g, 0, "dilations", nsp, dl);
        if (it % 4 == 3) il_node_set_ints(r->g, 0, "output_shape", nsp, os);
        else if (it % 4 == 2) il_node_set_string(r->g, 0, "auto_pad", "SAME_UPPER");
        else il_node_set_ints(r->g, 0, "pads", 2 * nsp, pd), il_node_set_ints(r->g, 0, "output_padding", nsp, op);
        char label[96];
        snprintf(label, sizeof label, "ConvTranspose it %d nsp %d group %lld", it, nsp, (long long)group);
        fails += !fast_matches_ref(r, label);
        rig_free(r);
    }
}

/* ---------------------------------------------------------------- pools */

static void test_pool_known(void) {
    rig *r = rig_new("MaxPool", 1, 2);
    rig_in(r, 0, tiota(4, D(1, 1, 4, 4), 1));
    il_node_set_ints(r->g, 0, "kernel_shape", 2, D(3, 3));
    il_node_set_ints(r->g, 0, "strides", 2, D(2, 2));
    il_node_set_int(r->g, 0, "ceil_mode", 1);
    expect_out(r, 0, 4, D(1, 1, 2, 2), F(11, 12, 15, 16));
    expect_out(r, 1, 4, D(1, 1, 2, 2), F(10, 11, 14, 15));
    rig_free(r);

    /* 2x2 windows, stride 2: Indices row-major, then column-major (storage_order 1) */
    r = rig_new("MaxPool", 1, 2);
    rig_in(r, 0, tiota(4, D(1, 1, 4, 4), 1));
    il_node_set_ints(r->g, 0, "kernel_shape", 2, D(2, 2));
    il_node_set_ints(r->g, 0, "strides", 2, D(2, 2));
    expect_out(r, 0, 4, D(1, 1, 2, 2), F(6, 8, 14, 16));
    expect_out(r, 1, 4, D(1, 1, 2, 2), F(5, 7, 13, 15));
    il_node_set_int(r->g, 0, "storage_order", 1);
    expect_out(r, 1, 4, D(1, 1, 2, 2), F(5, 13, 7, 15));
    rig_free(r);

    r = rig_new("AveragePool", 1, 1);
    rig_in(r, 0, tiota(4, D(1, 1, 4, 4), 1));
    il_node_set_ints(r->g, 0, "kernel_shape", 2, D(3, 3));
    il_node_set_ints(r->g, 0, "strides", 2, D(2, 2));
    il_node_set_int(r->g, 0, "ceil_mode", 1);
    expect_out(r, 0, 4, D(1, 1, 2, 2), F(6, 7.5f, 12, 13.5f));
    rig_free(r);

    /* pads 1 around [[1,2],[3,4]], 2x2 windows: divide by the taps inside, or by 4 */
    r = rig_new("AveragePool", 1, 1);
    rig_in(r, 0, tiota(4, D(1, 1, 2, 2), 1));
    il_node_set_ints(r->g, 0, "kernel_shape", 2, D(2, 2));
    il_node_set_ints(r->g, 0, "pads", 4, D(1, 1, 1, 1));
    expect_out(r, 0, 4, D(1, 1, 3, 3), F(1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4));
    il_node_set_int(r->g, 0, "count_include_pad", 1);
    expect_out(r, 0, 4, D(1, 1, 3, 3), F(0.25f, 0.75f, 0.5f, 1, 2.5f, 1.5f, 0.75f, 1.75f, 1));
    rig_free(r);

    r = rig_new("GlobalAveragePool", 1, 1);
    rig_in(r, 0, tiota(4, D(1, 2, 2, 2), 1));
    expect_out(r, 0, 4, D(1, 2, 1, 1), F(2.5f, 6.5f));
    rig_free(r);
    r = rig_new("GlobalMaxPool", 1, 1);
    rig_in(r, 0, tiota(3, D(2, 1, 3), -3));
    expect_out(r, 0, 3, D(2, 1, 1), F(-1, 2));
    rig_free(r);
}

static void test_pool_fast_random(void) {
    int fails = 0;
    for (int it = 0; it < 120 && fails < 3; it++) {
        int nsp = 1 + (int)(il_rand_u64(&rng) % 2), avg = it % 2;
        int64_t xd[4] = {1 + (int64_t)(il_rand_u64(&rng) % 2), 1 + (int64_t)(il_rand_u64(&rng) % 3)};
        int64_t k[2], st[2], dl[2], pd[4];
        for (int d = 0; d < nsp; d++) {
            k[d] = 1 + (int64_t)(il_rand_u64(&rng) % 3);
            st[d] = 1 + (int64_t)(il_rand_u64(&rng) % 3);
            dl[d] = 1 + (int64_t)(il_rand_u64(&rng) % 2);
            pd[d] = (int64_t)(il_rand_u64(&rng) % (uint64_t)k[d]); /* pads below the kernel size */
            pd[nsp + d] = (int64_t)(il_rand_u64(&rng) % (uint64_t)k[d]);
            xd[2 + d] = 5 + (int64_t)(il_rand_u64(&rng) % 6);
        }
        rig *r = rig_new(avg ? "AveragePool" : "MaxPool", 1, avg ? 1 : 2);
        rig_in(r, 0, trand(IL_F32, nsp + 2, xd));
        il_node_set_ints(r->g, 0, "kernel_shape", nsp, k);
        il_node_set_ints(r->g, 0, "strides", nsp, st);
        if (!avg) il_node_set_ints(r->g, 0, "dilations", nsp, dl);
        if (it % 6 == 5) il_node_set_string(r->g, 0, "auto_pad", "SAME_UPPER");
        else il_node_set_ints(r->g, 0, "pads", 2 * nsp, pd);
        il_node_set_int(r->g, 0, "ceil_mode", (it / 2) % 2);
        if (avg) il_node_set_int(r->g, 0, "count_include_pad", (it / 4) % 2);
        else il_node_set_int(r->g, 0, "storage_order", (it / 4) % 2);
        char label[96];
        snprintf(label, sizeof label, "%s it %d nsp %d", avg ? "AveragePool" : "MaxPool", it, nsp);
        fails += !fast_matches_ref(r, label);
        rig_free(r);
    }
    const char *glob[2] = {"GlobalAveragePool", "GlobalMaxPool"};
    for (int i = 0; i < 2; i++) {
        rig *r = rig_new(glob[i], 1, 1);
        rig_in(r, 0, trand(IL_F32, 4, D(3, 5, 7, 9)));
        fast_matches_ref(r, glob[i]);
        rig_free(r);
    }
}

/* ---------------------------------------------------------------- norms */

static void test_norm_known(void) {
    /* the ONNX BatchNormalization example */
    rig *r = rig_new("BatchNormalization", 5, 1);
    rig_in(r, 0, tf(4, D(1, 2, 1, 3), F(-1, 0, 1, 2, 3, 4)));
    rig_in(r, 1, tf(1, D(2), F(1, 1.5f)));
    rig_in(r, 2, tf(1, D(2), F(0, 1)));
    rig_in(r, 3, tf(1, D(2), F(0, 3)));
    rig_in(r, 4, tf(1, D(2), F(1, 1.5f)));
    float a = 1 / sqrtf(1 + 1e-5f), b = 1.5f / sqrtf(1.5f + 1e-5f);
    expect_out(r, 0, 4, D(1, 2, 1, 3), F(-a, 0, a, 1 - b, 1, 1 + b));
    rig_free(r);

    /* rows [1,2,3] and [2,4,6]: mean 2 and 4, variance 2/3 and 8/3 */
    r = rig_new("LayerNormalization", 3, 3);
    rig_in(r, 0, tf(2, D(2, 3), F(1, 2, 3, 2, 4, 6)));
    rig_in(r, 1, tf(1, D(3), F(1, 2, 1)));
    rig_in(r, 2, tf(1, D(3), F(0, 0, 10)));
    float s1 = 1 / sqrtf(2.0f / 3 + 1e-5f), s2 = 1 / sqrtf(8.0f / 3 + 1e-5f);
    expect_out(r, 0, 2, D(2, 3), F(-s1, 0, 10 + s1, -2 * s2, 0, 10 + 2 * s2));
    expect_out(r, 1, 2, D(2, 1), F(2, 4));
    expect_out(r, 2, 2, D(2, 1), F(s1, s2));
    rig_free(r);

    r = rig_new("InstanceNormalization", 3, 1);
    rig_in(r, 0, tf(3, D(1, 2, 2), F(1, 3, 5, 5)));
    rig_in(r, 1, tf(1, D(2), F(2, 1)));
    rig_in(r, 2, tf(1, D(2), F(0, 7)));
    float e = 1 / sqrtf(1 + 1e-5f);
    expect_out(r, 0, 3, D(1, 2, 2), F(-2 * e, 2 * e, 7, 7));
    rig_free(r);
}

static void test_norm_fast_random(void) {
    for (int it = 0; it < 12; it++) {
        int64_t n = 1 + it % 3, ch = 1 + it % 4, xd[4] = {n, ch * 2, 3 + it % 5, 4};
        rig *r = rig_new("BatchNormalization", 5, 1);
        rig_in(r, 0, trand(IL_F32, 4, xd));
        for (int i = 1; i < 5; i++) rig_in(r, i, trand(IL_F32, 1, D(ch * 2)));
        for (int64_t i = 0; i < ch * 2; i++) ((float *)r->in[4]->data)[i] += 1.5f; /* positive variance */
        fast_matches_ref(r, "BatchNormalization");
        rig_free(r);

        r = rig_new("InstanceNormalization", 3, 1);
        rig_in(r, 0, trand(IL_F32, 4, xd));
        for (int i = 1; i < 3; i++) rig_in(r, i, trand(IL_F32, 1, D(ch * 2)));
        fast_matches_ref(r, "InstanceNormalization");
        rig_free(r);

        r = rig_new("GroupNormalization", 3, 1);
        rig_in(r, 0, trand(IL_F32, 4, xd));
        for (int i = 1; i < 3; i++) rig_in(r, i, trand(IL_F32, 1, D(it % 2 ? ch * 2 : 2)));
        il_node_set_int(r->g, 0, "num_groups", 2);
        fast_matches_ref(r, "GroupNormalization");
        rig_free(r);

        int axis = (int)(it % 4) - 2;
        r = rig_new("LayerNormalization", 2 + it % 2, 3);
        rig_in(r, 0, trand(IL_F32, 4, xd));
        rig_in(r, 1, trand(IL_F32, 1, D(4)));
        if (it % 2) rig_in(r, 2, axis == -2 ? trand(IL_F32, 2, D(xd[2], 4)) : trand(IL_F32, 1, D(4)));
        il_node_set_int(r->g, 0, "axis", axis);
        fast_matches_ref(r, "LayerNormalization");
        rig_free(r);
    }
}

/* ---------------------------------------------------------------- Gemm, MatMul */

static void test_gemm_known(void) {
    /* A^T with A = [[1,3],[2,4]] stored [2,2] -> op(A) = [[1,2],[3,4]]; B = I*2; C a row */
    rig *r = rig_new("Gemm", 3, 1);
    rig_in(r, 0, tf(2, D(2, 2), F(1, 3, 2, 4)));
    rig_in(r, 1, tf(2, D(2, 3), F(2, 0, 1, 0, 2, 1)));
    rig_in(r, 2, tf(1, D(3), F(10, 20, 30)));
    il_node_set_int(r->g, 0, "transA", 1);
    il_node_set_float(r->g, 0, "alpha", 0.5f);
    il_node_set_float(r->g, 0, "beta", 2);
    expect_out(r, 0, 2, D(2, 3), F(21, 42, 61.5f, 23, 44, 63.5f));
    rig_in(r, 2, tf(2, D(2, 1), F(1, -1))); /* a column */
    expect_out(r, 0, 2, D(2, 3), F(3, 4, 3.5f, 1, 2, 1.5f));
    rig_free(r);

    r = rig_new("Gemm", 2, 1);
    rig_in(r, 0, tf(2, D(1, 2), F(1, 2)));
    rig_in(r, 1, tf(2, D(3, 2), F(1, 0, 0, 1, 1, 1)));
    il_node_set_int(r->g, 0, "transB", 1);
    expect_out(r, 0, 2, D(1, 3), F(1, 2, 3));
    rig_free(r);
}

static void test_matmul_known(void) {
    rig *r = rig_new("MatMul", 2, 1);
    rig_in(r, 0, tf(1, D(3), F(1, 2, 3)));
    rig_in(r, 1, tf(1, D(3), F(4, 5, 6)));
    expect_out(r, 0, 0, NULL, F(32)); /* 1-D x 1-D: a scalar */
    rig_in(r, 1, tf(2, D(3, 2), F(1, 0, 0, 1, 1, 1)));
    expect_out(r, 0, 1, D(2), F(4, 5));
    rig_in(r, 0, tf(2, D(2, 3), F(1, 0, 0, 0, 0, 1)));
    rig_in(r, 1, tf(1, D(3), F(7, 8, 9)));
    expect_out(r, 0, 1, D(2), F(7, 9));
    /* batch broadcast: [2,1,1,2] x [3,2,1] -> [2,3,1,1] */
    rig_in(r, 0, tf(4, D(2, 1, 1, 2), F(1, 2, 3, 4)));
    rig_in(r, 1, tf(3, D(3, 2, 1), F(1, 1, 1, 0, 0, 1)));
    expect_out(r, 0, 4, D(2, 3, 1, 1), F(3, 1, 2, 7, 3, 4));
    rig_free(r);
}

static void test_matmul_fast_random(void) {
    static const int64_t shapes[][2][5] = {
        /* rank, dims... for A then B */
        {{2, 7, 5}, {2, 5, 3}},       {{3, 4, 7, 5}, {2, 5, 3}},     {{4, 2, 1, 3, 4}, {3, 5, 4, 6}},
        {{1, 5}, {3, 2, 5, 4}},       {{3, 2, 3, 5}, {1, 5}},        {{3, 9, 64, 32}, {3, 9, 32, 70}},
        {{2, 130, 70}, {2, 70, 90}}, {{4, 1, 2, 8, 16}, {4, 3, 1, 16, 8}},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        rig *r = rig_new("MatMul", 2, 1);
        rig_in(r, 0, trand(IL_F32, (int)shapes[i][0][0], shapes[i][0] + 1));
        rig_in(r, 1, trand(IL_F32, (int)shapes[i][1][0], shapes[i][1] + 1));
        fast_matches_ref(r, "MatMul");
        rig_free(r);
    }
    for (int it = 0; it < 16; it++) {
        int64_t m = 1 + it * 3 % 11, n = 2 + it * 5 % 13, k = 1 + it * 7 % 9;
        int ta = it % 2, tb = it / 2 % 2;
        rig *r = rig_new("Gemm", 2 + (it % 4 != 0), 1);
        rig_in(r, 0, trand(IL_F32, 2, ta ? D(k, m) : D(m, k)));
        rig_in(r, 1, trand(IL_F32, 2, tb ? D(n, k) : D(k, n)));
        if (it % 4 == 1) rig_in(r, 2, trand(IL_F32, 1, D(n)));
        if (it % 4 == 2) rig_in(r, 2, trand(IL_F32, 2, D(m, 1)));
        if (it % 4 == 3) rig_in(r, 2, trand(IL_F32, 2, D(m, n)));
        il_node_set_int(r->g, 0, "transA", ta);
        il_node_set_int(r->g, 0, "transB", tb);
        il_node_set_float(r->g, 0, "alpha", 0.5f + (float)it);
        il_node_set_float(r->g, 0, "beta", it % 3 ? 1.5f : 0);
        fast_matches_ref(r, "Gemm");
        rig_free(r);
    }
}

/* ---------------------------------------------------------------- Einsum */

static rig *einsum(const char *eq, il_tensor *a, il_tensor *b) {
    rig *r = rig_new("Einsum", b ? 2 : 1, 1);
    rig_in(r, 0, a);
    if (b) rig_in(r, 1, b);
    il_node_set_string(r->g, 0, "equation", eq);
    return r;
}

static void test_einsum_known(void) {
    rig *r = einsum("ij,jk->ik", tf(2, D(2, 2), F(1, 2, 3, 4)), tf(2, D(2, 2), F(5, 6, 7, 8)));
    expect_out(r, 0, 2, D(2, 2), F(19, 22, 43, 50));
    rig_free(r);
    r = einsum("ij,jk", tf(2, D(2, 2), F(1, 2, 3, 4)), tf(2, D(2, 2), F(5, 6, 7, 8))); /* implicit: ik */
    expect_out(r, 0, 2, D(2, 2), F(19, 22, 43, 50));
    rig_free(r);
    r = einsum("bij,bjk->bik", tf(3, D(2, 1, 2), F(1, 2, 3, 4)), tf(3, D(2, 2, 1), F(1, 1, 2, -1)));
    expect_out(r, 0, 3, D(2, 1, 1), F(3, 2));
    rig_free(r);
    r = einsum("ii->i", tiota(2, D(3, 3), 0), NULL);
    expect_out(r, 0, 1, D(3), F(0, 4, 8));
    rig_free(r);
    r = einsum("ii", tiota(2, D(3, 3), 0), NULL); /* implicit trace */
    expect_out(r, 0, 0, NULL, F(12));
    rig_free(r);
    r = einsum("ij->", tiota(2, D(2, 3), 1), NULL);
    expect_out(r, 0, 0, NULL, F(21));
    rig_free(r);
    r = einsum("...ij->...ji", tiota(3, D(2, 2, 3), 0), NULL);
    expect_out(r, 0, 3, D(2, 3, 2), F(0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11));
    rig_free(r);
    r = einsum("i,i", tf(1, D(3), F(1, 2, 3)), tf(1, D(3), F(1, 1, -1)));
    expect_out(r, 0, 0, NULL, F(0));
    rig_free(r);
}

static void test_einsum_fast_random(void) {
    static const struct {
        const char *eq;
        int ra;
        int64_t a[5];
        int rb;
        int64_t b[5];
    } cases[] = {
        {"bhqd,bhkd->bhqk", 4, {2, 3, 5, 8}, 4, {2, 3, 7, 8}},
        {"bhqk,bhkd->bhqd", 4, {2, 3, 5, 7}, 4, {2, 3, 7, 8}},
        {"bij,jk->bik", 3, {3, 4, 5}, 2, {5, 6}},
        {"ij,kj->ik", 2, {4, 5}, 2, {6, 5}},
        {"abc,cd->abd", 3, {2, 3, 4}, 2, {4, 5}},
        {"bqhd,bkhd->bhqk", 4, {2, 5, 3, 4}, 4, {2, 6, 3, 4}},
        {"...qd,...kd->...qk", 4, {2, 3, 5, 8}, 4, {2, 3, 7, 8}},
        {"ij,jk->ki", 2, {3, 4}, 2, {4, 5}},
        {"i,j->ij", 1, {4}, 1, {5}},
        {"bij,bij->b", 3, {2, 3, 4}, 3, {2, 3, 4}},
        {"ij,jk", 2, {3, 4}, 2, {4, 2}},
        {"ii,ij->j", 2, {3, 3}, 2, {3, 4}},   /* diagonal: reference path */
        {"ij,kl->", 2, {2, 3}, 2, {2, 2}},     /* summed within one operand */
        {"bij,jk->bik", 3, {3, 1, 5}, 2, {5, 6}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rig *r = einsum(cases[i].eq, trand(IL_F32, cases[i].ra, cases[i].a), trand(IL_F32, cases[i].rb, cases[i].b));
        fast_matches_ref(r, cases[i].eq);
        rig_free(r);
    }
}

/* ---------------------------------------------------------------- errors, plan-time inference */

static void test_errors(void) {
    rig *r = rig_new("MatMul", 2, 1);
    rig_in(r, 0, tf(2, D(1, 4), NULL));
    rig_in(r, 1, tf(2, D(3, 3), NULL));
    expect_err(r, IL_ERR_SHAPE, "inner dimensions differ: [1,4] x [3,3]");
    rig_in(r, 1, il_tensor_new(IL_I32, 2, D(4, 3)));
    expect_err(r, IL_ERR_TYPE, NULL);
    rig_free(r);

    r = rig_new("Conv", 2, 1);
    rig_in(r, 0, tf(4, D(1, 3, 8, 8), NULL));
    rig_in(r, 1, tf(4, D(64, 64, 3, 3), NULL));
    expect_err(r, IL_ERR_SHAPE, "input has 3 channels, weight expects 64 (group 1)");
    rig_in(r, 1, tf(4, D(4, 3, 9, 9), NULL));
    expect_err(r, IL_ERR_SHAPE, "does not fit");
    rig_in(r, 1, tf(3, D(4, 3, 3), NULL));
    expect_err(r, IL_ERR_SHAPE, "rank");
    rig_in(r, 0, il_tensor_new(IL_I32, 4, D(1, 3, 8, 8)));
    expect_err(r, IL_ERR_UNSUPPORTED, "unsupported dtype int32");
    rig_free(r);

    r = rig_new("Gemm", 3, 1);
    rig_in(r, 0, tf(2, D(2, 3), NULL));
    rig_in(r, 1, tf(2, D(3, 4), NULL));
    rig_in(r, 2, tf(1, D(3), NULL));
    expect_err(r, IL_ERR_SHAPE, "does not broadcast to [2,4]");
    rig_free(r);

    r = rig_new("MaxPool", 1, 1);
    rig_in(r, 0, tf(4, D(1, 1, 4, 4), NULL));
    expect_err(r, IL_ERR_INVALID, "kernel_shape");
    il_node_set_ints(r->g, 0, "kernel_shape", 3, D(2, 2, 2));
    expect_err(r, IL_ERR_INVALID, "kernel_shape has 3 values");
    rig_free(r);

    r = einsum("ij,jk->ik", tf(2, D(2, 3), NULL), tf(2, D(4, 5), NULL));
    expect_err(r, IL_ERR_SHAPE, "subscript 'j'");
    rig_free(r);
    r = einsum("ij,jk->iz", tf(2, D(2, 3), NULL), tf(2, D(3, 5), NULL));
    expect_err(r, IL_ERR_INVALID, "'z'");
    rig_free(r);
    r = einsum("ijk->i", tf(2, D(2, 3), NULL), NULL);
    expect_err(r, IL_ERR_SHAPE, "rank 2");
    rig_free(r);

    r = rig_new("LayerNormalization", 2, 1);
    rig_in(r, 0, tf(2, D(2, 3), NULL));
    rig_in(r, 1, tf(1, D(4), NULL));
    expect_err(r, IL_ERR_SHAPE, "Scale [4]");
    rig_free(r);

    r = rig_new("BatchNormalization", 5, 1);
    rig_in(r, 0, tf(4, D(1, 2, 1, 3), NULL));
    for (int i = 1; i < 5; i++) rig_in(r, i, tf(1, D(i == 4 ? 3 : 2), NULL));
    expect_err(r, IL_ERR_SHAPE, "var has shape [3]");
    rig_free(r);
}

/* Plan-time inference: no data, unknown dims (-1), unknown rank; must not crash and must keep
 * what it can tell. */
static void test_infer_unknown(void) {
    il_tensor x = {.dtype = IL_F32, .rank = 4, .dims = {-1, 3, -1, 32}}, w = {.dtype = IL_F32, .rank = 4, .dims = {8, 3, 3, 3}};
    il_tensor o[3], *in[2] = {&x, &w}, *out[3] = {&o[0], &o[1], &o[2]};
    rig *r = rig_new("Conv", 2, 1);
    il_node_set_ints(r->g, 0, "strides", 2, D(2, 2));
    il_kctx c = {.node = &r->g->nodes[0], .opset = 17, .n_in = 2, .n_out = 1, .in = in, .out = out, .infer_only = 1};
    IL_ASSERT_OK(il_op_find("", "Conv")->infer(&c));
    CU_ASSERT(o[0].rank == 4 && o[0].dims[0] == -1 && o[0].dims[1] == 8 && o[0].dims[2] == -1 && o[0].dims[3] == 15);
    x.rank = -1;
    IL_ASSERT_OK(il_op_find("", "Conv")->infer(&c));
    CU_ASSERT_EQUAL(o[0].rank, -1);
    rig_free(r);

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
        r = rig_new(ops[i], 5, 1);
        il_node_set_ints(r->g, 0, "kernel_shape", 2, D(3, 3));
        il_node_set_string(r->g, 0, "equation", "abcd,abde->abce");
        int n_in = !strcmp(ops[i], "Gemm") || !strcmp(ops[i], "Einsum") || !strcmp(ops[i], "MatMul") ? 2 : 3;
        if (!strcmp(ops[i], "BatchNormalization")) n_in = 5;
        if (!strcmp(ops[i], "Gemm")) x.rank = w.rank = 2;
        c = (il_kctx){.node = &r->g->nodes[0], .opset = 17, .n_in = n_in, .n_out = 1, .in = ins, .out = out, .infer_only = 1};
        il_status st = il_op_find("", ops[i])->infer(&c);
        if (st) fprintf(stderr, "\n  %s: %s\n", ops[i], il_errmsg());
        CU_ASSERT_EQUAL(st, IL_OK);
        rig_free(r);
    }
}

IL_SUITE("compute", {"conv_known", test_conv_known}, {"convtranspose_known", test_convtranspose_known},
         {"conv_fast_random", test_conv_fast_random}, {"convtranspose_fast_random", test_convtranspose_fast_random},
         {"pool_known", test_pool_known}, {"pool_fast_random", test_pool_fast_random},
         {"norm_known", test_norm_known}, {"norm_fast_random", test_norm_fast_random},
         {"gemm_known", test_gemm_known}, {"matmul_known", test_matmul_known},
         {"matmul_gemm_fast_random", test_matmul_fast_random}, {"einsum_known", test_einsum_known},
         {"einsum_fast_random", test_einsum_fast_random}, {"errors", test_errors},
         {"infer_unknown", test_infer_unknown})
