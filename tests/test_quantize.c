/*
 * test_quantize.c - INT8 quantization (issue 10): the QuantizeLinear / DequantizeLinear /
 * DynamicQuantizeLinear reference kernels (rounding half to even, saturation, per axis and per
 * block, round trips), the calibrators on distributions whose answer is known, the calibration
 * cache, the QDQ rewrite (structure, Relu folding, exclusions, export -> import), dynamic
 * quantization, the Fashion-MNIST teacher end to end, ONNX Runtime running our QDQ model, the
 * lossy pass under `opt --verify`, and the command's errors through the real binary.
 */
#include <math.h>

#include "../quantize/quantize.h"
#include "op_harness.h"
#include "pass_test.h"

/* ---------------------------------------------------------------- the reference kernels */

static op_case *qcase(const char *op, int64_t opset, il_tensor *x, il_tensor *s, il_tensor *zp) {
    op_case *o = op_new(op, opset, zp ? 3 : 2, 1);
    op_in(o, 0, x);
    op_in(o, 1, s);
    if (zp) op_in(o, 2, zp);
    return o;
}

static void test_quantize_rounding_saturation(void) {
    /* uint8, scale 1: halves go to the even neighbour; beyond [0, 255] saturates; NaN is 0 */
    op_case *o = qcase("QuantizeLinear", 13, f32(SHAPE(10), V(0.5, 1.5, 2.5, -0.5, 3.49, 254.5, 255.5, 300, -7, NAN)),
                       f32(0, NULL, V(1)), NULL);
    RUN_OK(o);
    EXPECT(o, 0, IL_U8, 1, D(10), V(0, 2, 2, 0, 3, 254, 255, 255, 0, 0));
    op_free(o);
    /* int8 with a zero point: x / 2 + 10, saturated at -128 and 127 */
    o = qcase("QuantizeLinear", 13, f32(SHAPE(8), V(-1, 1, 3, 5, 233, 234, 300, -300)), f32(0, NULL, V(2)),
              tens(IL_I8, 0, NULL, V(10)));
    RUN_OK(o);
    EXPECT(o, 0, IL_I8, 1, D(8), V(10, 10, 12, 12, 126, 127, 127, -128));
    op_free(o);
    /* a uint8 zero point: (-0.5 -> -0 -> 128) (-1.5 -> -2 -> 126) */
    o = qcase("QuantizeLinear", 10, f32(SHAPE(4), V(-0.5, -1.5, -2.5, 127.5)), f32(0, NULL, V(1)),
              tens(IL_U8, 0, NULL, V(128)));
    RUN_OK(o);
    EXPECT(o, 0, IL_U8, 1, D(4), V(128, 126, 126, 255));
    op_free(o);
}

static void test_quantize_per_axis(void) {
    /* [2, 3, 2] along axis 1: scales 1, 2, 4 and zero points 0, 1, 2 */
    il_tensor *x = f32(SHAPE(2, 3, 2), V(1, 2, 4, 6, 8, 12, -1, 3, 5, 7, 9, 1000));
    op_case *o = qcase("QuantizeLinear", 13, x, f32(SHAPE(3), V(1, 2, 4)), tens(IL_U8, SHAPE(3), V(0, 1, 2)));
    SETI(o, "axis", 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_U8, 3, D(2, 3, 2), V(1, 2, 3, 4, 4, 5, 0, 3, 3, 5, 4, 252));
    op_free(o);
    /* and back */
    o = qcase("DequantizeLinear", 13, tens(IL_U8, SHAPE(2, 3, 2), V(1, 2, 3, 4, 4, 5, 0, 3, 3, 5, 4, 252)),
              f32(SHAPE(3), V(1, 2, 4)), tens(IL_U8, SHAPE(3), V(0, 1, 2)));
    SETI(o, "axis", -2);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 3, D(2, 3, 2), V(1, 2, 4, 6, 8, 12, 0, 3, 4, 8, 8, 1000));
    op_free(o);
    /* per block (opset 21): [2, 4] along axis 1 in blocks of 2 -> scales [2, 2] */
    o = qcase("QuantizeLinear", 21, f32(SHAPE(2, 4), V(1, 2, 3, 4, 5, 6, 7, 8)), f32(SHAPE(2, 2), V(1, 2, 4, 8)),
              tens(IL_I8, SHAPE(2, 2), V(0, 0, 0, 0)));
    SETI(o, "axis", 1);
    SETI(o, "block_size", 2);
    RUN_OK(o);
    EXPECT(o, 0, IL_I8, 2, D(2, 4), V(1, 2, 2, 2, 1, 2, 1, 1));
    op_free(o);
    /* errors: a per-axis scale of the wrong length; per-axis parameters before opset 13 */
    o = qcase("QuantizeLinear", 13, f32(SHAPE(2, 3), NULL), f32(SHAPE(2), V(1, 1)), NULL);
    FAILS(o, IL_ERR_SHAPE, "per-axis scale");
    op_free(o);
    o = qcase("DequantizeLinear", 10, tens(IL_U8, SHAPE(2, 3), NULL), f32(SHAPE(3), V(1, 1, 1)), NULL);
    FAILS(o, IL_ERR_SHAPE, "opset 13");
    op_free(o);
    o = qcase("DequantizeLinear", 13, tens(IL_U8, SHAPE(3), NULL), f32(0, NULL, V(1)), tens(IL_I8, 0, NULL, V(0)));
    FAILS(o, IL_ERR_TYPE, "zero point");
    op_free(o);
}

/* Q then DQ of random values inside the range: within half a step, and Q(DQ(q)) == q. */
static void test_quantize_round_trip(void) {
    for (int t = 0; t < 2; t++) {
        il_dtype dt = t ? IL_I8 : IL_U8;
        double scale = 0.05, zp = t ? -3 : 117;
        il_tensor *x = il_tensor_new(IL_F32, 2, D(37, 5));
        il_tensor_fill_random(x, op_rng(), (-128 - zp + (t ? 0 : 128)) * scale, (127 - zp + (t ? 0 : 128)) * scale);
        il_tensor *xc = il_tensor_clone(x);
        op_case *q = qcase("QuantizeLinear", 13, x, f32(0, NULL, V(scale)), tens(dt, 0, NULL, V(zp)));
        RUN_OK(q);
        op_case *d = qcase("DequantizeLinear", 13, il_tensor_clone(q->out[0]), f32(0, NULL, V(scale)),
                           tens(dt, 0, NULL, V(zp)));
        RUN_OK(d);
        double worst = 0;
        for (int64_t i = 0; i < il_tensor_numel(xc); i++)
            worst = fmax(worst, fabs(il_tensor_get(d->out[0], i) - il_tensor_get(xc, i)));
        CU_ASSERT(worst <= scale / 2 * (1 + 1e-5));
        op_case *q2 = qcase("QuantizeLinear", 13, il_tensor_clone(d->out[0]), f32(0, NULL, V(scale)),
                            tens(dt, 0, NULL, V(zp)));
        RUN_OK(q2);
        CU_ASSERT(il_test_tensors_equal(q2->out[0], q->out[0]));
        op_free(q), op_free(d), op_free(q2);
        il_tensor_free(xc);
    }
}

static void test_dynamic_quantize_linear(void) {
    /* range [-3, 2] widened to hold 0: scale 5/255, zero point round(3 / scale) = 153 */
    op_case *o = op1("DynamicQuantizeLinear", 11, f32(SHAPE(4), V(0, 2, -3, 1)), 3);
    RUN_OK(o);
    float s = 5.0f / 255.0f;
    EXPECT(o, 1, IL_F32, 0, NULL, V(s));
    EXPECT(o, 2, IL_U8, 0, NULL, V(153));
    EXPECT(o, 0, IL_U8, 1, D(4), V(153, nearbyintf(2 / s) + 153 > 255 ? 255 : nearbyintf(2 / s) + 153, 0,
                                   nearbyintf(1 / s) + 153));
    op_free(o);
    /* all zeros: scale 0, zero point 0, no division */
    o = op1("DynamicQuantizeLinear", 11, f32(SHAPE(3), V(0, 0, 0)), 3);
    RUN_OK(o);
    EXPECT(o, 0, IL_U8, 1, D(3), V(0, 0, 0));
    EXPECT(o, 1, IL_F32, 0, NULL, V(0));
    op_free(o);
}

/* ---------------------------------------------------------------- calibrators */

static double gauss(uint64_t *r) {
    double u = il_rand_uniform(r), v = il_rand_uniform(r);
    return sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static il_calib_hist observe(const float *x, int64_t n) {
    il_calib_hist h = {0};
    il_calib_hist_add(&h, x, n, 1);
    il_calib_hist_add(&h, x, n, 0);
    return h;
}

static void calib_range(const char *method, const il_calib_hist *h, int symmetric, double *lo, double *hi) {
    const il_calibrator *c = il_calib_find(method);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    il_calib_opts o = {.levels = 128, .symmetric = symmetric};
    IL_ASSERT_OK(c->range(h, NULL, &o, lo, hi));
}

static void test_calibrators_known_answers(void) {
    /* N(0, 1) with a few outliers at +-40: minmax keeps them, entropy clips them */
    int64_t n = 200000;
    float *x = malloc((size_t)n * sizeof *x);
    uint64_t r = 99;
    for (int64_t i = 0; i < n; i++) x[i] = (float)gauss(&r);
    for (int i = 0; i < 8; i++) x[i * 1000] = i % 2 ? 40.0f : -40.0f;
    il_calib_hist h = observe(x, n);
    CU_ASSERT_EQUAL(h.nbins, 2 * IL_CALIB_BINS);
    double lo, hi;
    calib_range("minmax", &h, 0, &lo, &hi);
    CU_ASSERT_DOUBLE_EQUAL(lo, -40, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(hi, 40, 1e-9);
    for (int sym = 0; sym < 2; sym++) {
        calib_range("entropy", &h, sym, &lo, &hi);
        if (!(hi > 2 && hi < 10 && lo < -2 && lo > -10)) fprintf(stderr, "\n  entropy (symmetric %d): [%g, %g]\n", sym, lo, hi);
        CU_ASSERT(hi > 2 && hi < 10 && lo < -2 && lo > -10);
        /* mse weighs 8 outliers' clipping error against 200000 values' rounding error: it
         * clips them a little, not to the bulk */
        calib_range("mse", &h, sym, &lo, &hi);
        if (!(hi > 3 && hi < 40 && lo < -3 && lo > -40)) fprintf(stderr, "\n  mse (symmetric %d): [%g, %g]\n", sym, lo, hi);
        CU_ASSERT(hi > 3 && hi < 40 && lo < -3 && lo > -40);
    }
    /* percentile on non-negative data matches the sorted quantile to a bin */
    for (int64_t i = 0; i < n; i++) x[i] = (float)(il_rand_uniform(&r) * il_rand_uniform(&r) * 10);
    il_calib_hist u = observe(x, n);
    CU_ASSERT_EQUAL(u.nbins, IL_CALIB_BINS);
    const il_calibrator *pc = il_calib_find("percentile");
    il_calib_opts po = {.percentile = 99, .levels = 256};
    IL_ASSERT_OK(pc->range(&u, NULL, &po, &lo, &hi));
    /* the sorted quantile: 99% of the values at or below it, and not 99% below it minus a bin */
    int64_t below = 0, below_lo = 0;
    double width = u.max / IL_CALIB_BINS;
    for (int64_t i = 0; i < n; i++) below += x[i] <= hi + width, below_lo += x[i] <= hi - width;
    CU_ASSERT(below >= (int64_t)(0.99 * n) && below_lo <= (int64_t)(0.99 * n));
    CU_ASSERT_DOUBLE_EQUAL(lo, u.min, 0); /* no negative side: the observed minimum */
    free(u.count);
    /* an image-like tensor (mode at its minimum): uint8 keeps both sides, not |x| folded */
    for (int64_t i = 0; i < n; i++) x[i] = i % 4 ? -0.8f : (float)(il_rand_uniform(&r) * 2.8 - 0.8);
    il_calib_hist img = observe(x, n);
    calib_range("entropy", &img, 0, &lo, &hi);
    CU_ASSERT(lo <= -0.79 && hi > 1.5);
    free(img.count);
    free(h.count);
    free(x);
}

static il_status absmax_range(const il_calib_hist *h, void *s, const il_calib_opts *o, double *lo, double *hi) {
    double a = fmax(-h->min, h->max);
    *lo = -a, *hi = a;
    return IL_OK;
}

static void test_calibrator_registry_and_cache(void) {
    static const il_calibrator absmax = {"test-absmax", "symmetric max |x|", 0, absmax_range, NULL, NULL, NULL};
    IL_ASSERT_OK(il_calib_register(&absmax));
    CU_ASSERT_EQUAL(il_calib_register(&absmax), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "already registered"));
    CU_ASSERT_PTR_EQUAL(il_calib_find("test-absmax"), &absmax);
    static const il_calibrator bad = {"x", "no range"};
    CU_ASSERT_EQUAL(il_calib_register(&bad), IL_ERR_INVALID);
    /* the cache keeps histograms exactly and refuses another key */
    float v[6] = {-1, 0.5f, 2, 3, 3, -0.25f};
    il_calib_hist *h = calloc(2, sizeof *h);
    h[0] = observe(v, 6), h[0].name = strdup("a");
    h[1] = observe(v + 1, 4), h[1].name = strdup("b/c");
    const char *path = il_test_tmp("cache.onnx"), *names[] = {"b/c", "a"};
    IL_ASSERT_OK(il_calib_cache_save(path, "key 1", h, 2));
    il_calib_hist *back;
    IL_ASSERT_OK(il_calib_cache_load(path, "key 1", names, 2, &back));
    CU_ASSERT_EQUAL(back[0].nbins, h[1].nbins);
    CU_ASSERT_EQUAL(back[1].n, 6);
    CU_ASSERT_DOUBLE_EQUAL(back[1].min, -1, 0);
    CU_ASSERT(!memcmp(back[1].count, h[0].count, (size_t)h[0].nbins * sizeof(double)));
    il_calib_hist_free(back, 2);
    CU_ASSERT_EQUAL(il_calib_cache_load(path, "key 2", names, 2, &back), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "stale"));
    const char *missing[] = {"zzz"};
    CU_ASSERT_EQUAL(il_calib_cache_load(path, "key 1", missing, 1, &back), IL_ERR_INVALID);
    il_calib_hist_free(h, 2);
}

/* ---------------------------------------------------------------- the QDQ rewrite */

static void name_last(il_graph *g, const char *name) {
    free(g->nodes[last_node].name);
    g->nodes[last_node].name = strdup(name);
}

/* x[N,3,8,8] -> Conv -> Relu -> MaxPool -> Conv(named "c2") -> Flatten -> Gemm(+bias) -> y */
static il_graph *small_cnn(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 4, DIMS(-1, 3, 8, 8));
    int c1 = OP(g, "Conv", x, W(g, 4, DIMS(8, 3, 3, 3), -0.5, 0.5), W(g, 1, DIMS(8), -0.1, 0.1));
    il_node_set_ints(g, last_node, "pads", 4, DIMS(1, 1, 1, 1));
    name_last(g, "c1");
    int relu = OP(g, "Relu", c1);
    name_last(g, "relu1");
    int p = OP(g, "MaxPool", relu);
    name_last(g, "pool1");
    il_node_set_ints(g, last_node, "kernel_shape", 2, DIMS(2, 2));
    il_node_set_ints(g, last_node, "strides", 2, DIMS(2, 2));
    int c2 = OP(g, "Conv", p, W(g, 4, DIMS(4, 8, 1, 1), -0.5, 0.5));
    name_last(g, "c2");
    int f = OP(g, "Flatten", c2);
    name_last(g, "flat");
    int y = OP(g, "Gemm", f, W(g, 2, DIMS(5, 64), -0.2, 0.2), W(g, 1, DIMS(5), -0.1, 0.1));
    il_node_set_int(g, last_node, "transB", 1);
    name_last(g, "fc");
    OUT(g, y);
    return g;
}

static il_quant_ctx *calibrated(const il_graph *g, const char *method, int symmetric) {
    il_quant_opts o = {.method = method, .calib = "random:48", .symmetric = symmetric, .threads = 2};
    il_quant_ctx *q = NULL;
    il_status st = il_quant_calibrate(g, &o, &q);
    if (st) fprintf(stderr, "\n  calibrate: %s\n", il_errmsg());
    CU_ASSERT_EQUAL_FATAL(st, IL_OK);
    return q;
}

static const il_node *node_named(const il_graph *g, const char *name) {
    for (int k = 0; k < g->n_nodes; k++)
        if (g->nodes[k].name && !strcmp(g->nodes[k].name, name)) return &g->nodes[k];
    return NULL;
}

static void test_qdq_structure(void) {
    il_graph *g = small_cnn();
    il_quant_ctx *q = calibrated(g, "minmax", 0);
    il_graph *m;
    il_quant_stats st;
    IL_ASSERT_OK(il_quant_apply(q, NULL, 0, &m, &st));
    /* 3 weights and 2 biases behind DQ; activations x, relu out, pool out, c2 out, flatten out, y */
    CU_ASSERT_EQUAL(count(m, "Relu"), 0); /* folded into the first Conv's output range */
    CU_ASSERT_EQUAL(st.relu_folded, 1);
    CU_ASSERT_EQUAL(st.weights, 3);
    CU_ASSERT_EQUAL(count(m, "QuantizeLinear"), st.tensors);
    CU_ASSERT_EQUAL(count(m, "DequantizeLinear"), st.tensors + 5);
    CU_ASSERT_EQUAL(st.tensors, 6);
    /* the output keeps its name; weights int8 per channel with axis, biases int32 */
    CU_ASSERT_STRING_EQUAL(m->values[m->outputs[0]].name, g->values[g->outputs[0]].name);
    int i8w = 0, i32b = 0, per_axis = 0, relu_zp0 = 0;
    for (int k = 0; k < m->n_nodes; k++) {
        const il_node *n = &m->nodes[k];
        const il_tensor *t = m->values[n->inputs[0]].constant;
        if (!strcmp(n->op_type, "DequantizeLinear") && t) {
            i8w += t->dtype == IL_I8, i32b += t->dtype == IL_I32;
            per_axis += il_node_attr(n, "axis") != NULL;
        }
        /* the folded Relu: its Q has zero point 0, so Q's saturation computes it */
        if (!strcmp(n->op_type, "QuantizeLinear") && m->values[n->inputs[0]].producer >= 0 &&
            !strcmp(m->nodes[m->values[n->inputs[0]].producer].op_type, "Conv") &&
            m->values[n->inputs[2]].constant && il_tensor_get(m->values[n->inputs[2]].constant, 0) == 0)
            relu_zp0++;
    }
    CU_ASSERT_EQUAL(i8w, 3);
    CU_ASSERT_EQUAL(i32b, 2);
    CU_ASSERT_EQUAL(per_axis, 5);
    CU_ASSERT(relu_zp0 >= 1);
    const char *recipe = il_graph_get_meta(m, "inferlab.quantize");
    CU_ASSERT_PTR_NOT_NULL_FATAL(recipe);
    CU_ASSERT_PTR_NOT_NULL(strstr(recipe, "\"method\":\"minmax\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(recipe, "\"per_channel\":true"));
    /* INT8 close to FP32 on random inputs (what it was calibrated on) */
    il_pass_opts vo = {.lossy_agree = 0.9};
    double agree, cos;
    IL_ASSERT_OK(il_quant_agreement(g, m, 64, &agree, &cos));
    CU_ASSERT(cos > 0.99);
    CU_ASSERT(agree >= vo.lossy_agree);
    /* export -> import: the same graph, the same outputs bit for bit */
    const char *path = il_test_tmp("qdq.onnx");
    IL_ASSERT_OK(il_onnx_save(m, path));
    il_graph *back;
    IL_ASSERT_OK(il_onnx_load(path, &back));
    IL_ASSERT_OK(il_graph_verify(back));
    CU_ASSERT_EQUAL(il_graph_live_nodes(back), il_graph_live_nodes(m));
    CU_ASSERT_STRING_EQUAL(il_graph_get_meta(back, "inferlab.quantize"), recipe);
    il_tensor *x = il_tensor_new(IL_F32, 4, D(3, 3, 8, 8));
    il_tensor_fill_random(x, &rng, -1, 1);
    il_tensor **o1, **o2;
    int n1, n2;
    il_plan_opts po = {.batch = 3, .threads = 1};
    IL_ASSERT_OK(il_run_model(m, &x, 1, &po, &o1, &n1));
    IL_ASSERT_OK(il_run_model(back, &x, 1, &po, &o2, &n2));
    CU_ASSERT(il_test_tensors_equal(o1[0], o2[0]));
    il_tensor_free(o1[0]), il_tensor_free(o2[0]), free(o1), free(o2), il_tensor_free(x);
    il_graph_free(back);
    il_graph_free(m);
    /* --exclude: c2 stays FP32 (its weight a float initializer), the rest quantized */
    const char *ex[] = {"c2"};
    IL_ASSERT_OK(il_quant_apply(q, ex, 1, &m, &st));
    const il_node *c2 = node_named(m, "c2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    CU_ASSERT_PTR_NOT_NULL(m->values[c2->inputs[1]].constant);
    CU_ASSERT_EQUAL(st.fp32, 1);
    CU_ASSERT_EQUAL(st.weights, 2);
    il_graph_free(m);
    const char *nope[] = {"no-such-node"};
    CU_ASSERT_EQUAL(il_quant_apply(q, nope, 1, &m, &st), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "no-such-node"));
    il_quant_free(q);
    /* int8 symmetric activations: no Relu folding, int8 zero points */
    q = calibrated(g, "entropy", 1);
    IL_ASSERT_OK(il_quant_apply(q, NULL, 0, &m, &st));
    CU_ASSERT_EQUAL(count(m, "Relu"), 1);
    CU_ASSERT_EQUAL(st.relu_folded, 0);
    IL_ASSERT_OK(il_quant_agreement(g, m, 64, &agree, &cos));
    CU_ASSERT(cos > 0.98);
    il_graph_free(m);
    il_quant_free(q);
    /* a quantized model is not quantized again */
    il_quant_opts o = {.calib = "random:4"};
    il_graph *qm;
    q = calibrated(g, "minmax", 0);
    IL_ASSERT_OK(il_quant_apply(q, NULL, 0, &qm, &st));
    il_quant_free(q);
    CU_ASSERT_EQUAL(il_quant_calibrate(qm, &o, &q), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "quantized already"));
    il_graph_free(qm);
    il_graph_free(g);
}

/* A Concat of two convolutions: its inputs take its output's scale and zero point, so the
 * integers can be copied (fuse-qdq keeps such a Concat in INT8). */
static void test_concat_shares_scales(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 4, DIMS(-1, 2, 4, 4));
    int a = OP(g, "Conv", x, W(g, 4, DIMS(3, 2, 1, 1), -1, 1));
    int b = OP(g, "Conv", x, W(g, 4, DIMS(5, 2, 1, 1), -3, 3));
    int c = OP(g, "Concat", a, b);
    il_node_set_int(g, last_node, "axis", 1);
    OUT(g, OP(g, "Conv", c, W(g, 4, DIMS(2, 8, 1, 1), -1, 1)));
    il_quant_ctx *q = calibrated(g, "minmax", 0);
    il_graph *m;
    IL_ASSERT_OK(il_quant_apply(q, NULL, 0, &m, NULL));
    /* every QuantizeLinear feeding into the Concat's inputs has the Concat output's scale */
    float want = -1;
    int seen = 0;
    for (int k = 0; k < m->n_nodes; k++) {
        const il_node *n = &m->nodes[k];
        if (strcmp(n->op_type, "Concat")) continue;
        int vo = n->outputs[0];
        for (int j = 0; j < m->n_nodes; j++) /* the Q reading the Concat's output */
            if (!strcmp(m->nodes[j].op_type, "QuantizeLinear") && m->nodes[j].inputs[0] == vo)
                want = (float)il_tensor_get(m->values[m->nodes[j].inputs[1]].constant, 0);
        for (int i = 0; i < n->n_inputs; i++) {
            int dq = m->values[n->inputs[i]].producer;
            CU_ASSERT_FATAL(dq >= 0 && !strcmp(m->nodes[dq].op_type, "DequantizeLinear"));
            CU_ASSERT_EQUAL((float)il_tensor_get(m->values[m->nodes[dq].inputs[1]].constant, 0), want);
            seen++;
        }
    }
    CU_ASSERT_EQUAL(seen, 2);
    CU_ASSERT(want > 0);
    il_graph_free(m);
    il_quant_free(q);
    il_graph_free(g);
}

/* Analysis ranks tensors; target-drop with a target of 0 on agreement keeps layers in FP32. */
static void test_analyze_and_tune(void) {
    il_graph *g = small_cnn();
    il_quant_ctx *q = calibrated(g, "minmax", 0);
    il_graph *m;
    IL_ASSERT_OK(il_quant_apply(q, NULL, 0, &m, NULL));
    il_calib_data *d;
    IL_ASSERT_OK(il_calib_data_load(il_quant_fp32(q), "random:16", 0, 0, NULL, 0, &d));
    il_quant_layer *l;
    int n;
    IL_ASSERT_OK(il_quant_analyze(il_quant_fp32(q), m, d, 1, &l, &n));
    CU_ASSERT(n >= 4);
    for (int i = 1; i < n; i++) CU_ASSERT(l[i - 1].sqnr <= l[i].sqnr);
    for (int i = 0; i < n; i++) CU_ASSERT(l[i].sqnr > 10 && l[i].cosine > 0.9 && l[i].cosine <= 1 + 1e-9);
    free(l);
    il_graph_free(m);
    /* an unreachable target: every layer ends in FP32, in order of cost */
    il_quant_tune_result r;
    IL_ASSERT_OK(il_quant_tune(q, d, -1, NULL, 0, 1, NULL, &m, &r));
    CU_ASSERT_EQUAL(r.n_kept, 3);
    CU_ASSERT_DOUBLE_EQUAL(r.fp32, 1, 1e-12); /* unlabelled: agreement with FP32 */
    for (int i = 0; i < r.n_kept; i++) free(r.kept[i]);
    free(r.kept);
    il_graph_free(m);
    /* a target already met keeps nothing */
    IL_ASSERT_OK(il_quant_tune(q, d, 100, NULL, 0, 1, NULL, &m, &r));
    CU_ASSERT_EQUAL(r.n_kept, 0);
    free(r.kept);
    il_graph_free(m);
    il_calib_data_free(d);
    il_quant_free(q);
    il_graph_free(g);
}

static void test_dynamic(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 2, DIMS(-1, 16));
    int h = OP(g, "Gemm", x, W(g, 2, DIMS(32, 16), -0.3, 0.3), W(g, 1, DIMS(32), -0.1, 0.1));
    il_node_set_int(g, last_node, "transB", 1);
    il_node_set_float(g, last_node, "beta", 0.5f);
    OUT(g, OP(g, "MatMul", OP(g, "Relu", h), W(g, 2, DIMS(32, 10), -0.3, 0.3)));
    il_graph *d = il_graph_clone(g);
    int n;
    IL_ASSERT_OK(il_quant_dynamic(d, NULL, 0, 0, &n));
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(count(d, "DynamicQuantizeLinear"), 2);
    CU_ASSERT_EQUAL(count(d, "MatMulInteger"), 2);
    CU_ASSERT_EQUAL(count(d, "Gemm") + count(d, "MatMul"), 0);
    IL_ASSERT_OK(il_graph_verify(d));
    double agree, cos;
    IL_ASSERT_OK(il_quant_agreement(g, d, 256, &agree, &cos));
    CU_ASSERT(cos > 0.999);
    CU_ASSERT(agree > 0.95);
    CU_ASSERT_EQUAL(il_quant_dynamic(d, NULL, 0, 0, &n), IL_ERR_INVALID); /* quantized already */
    il_graph_free(d);
    free(g->nodes[0].name);
    g->nodes[0].name = strdup("fc1");
    const char *ex[] = {"fc1"};
    IL_ASSERT_OK(il_quant_dynamic(g, ex, 1, 1, &n));
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(count(g, "Gemm"), 1);
    il_graph_free(g);
}

/* The pass fuse-dynamic-q on what --dynamic writes: each DynamicQuantizeLinear -> MatMulInteger
 * -> Cast -> Mul [-> Add] becomes one com.microsoft DynamicQuantizeMatMul, whose output is the
 * graph's bit for bit (its qgemm kernel and its reference kernel, against the unfused graph on
 * the reference kernels); ONNX Runtime runs the fused file (its own op) to within float
 * rounding; lower-fused writes the chain back, with the same outputs; a Cast whose sums are
 * also a graph output is left alone. */
static void test_dynamic_fused(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 3, DIMS(-1, 7, 16));
    int h = OP(g, "Relu", OP(g, "Add", OP(g, "MatMul", x, W(g, 2, DIMS(16, 32), -0.3, 0.3)), W(g, 1, DIMS(32), -0.1, 0.1)));
    OUT(g, OP(g, "MatMul", h, W(g, 2, DIMS(32, 10), -0.3, 0.3)));
    int n;
    IL_ASSERT_OK(il_quant_dynamic(g, NULL, 0, 0, &n));
    il_graph *f = il_graph_clone(g);
    il_pass_stats st = apply(f, "fuse-dynamic-q");
    (void)st;
    CU_ASSERT_EQUAL(count(f, "DynamicQuantizeMatMul"), 2);
    CU_ASSERT_EQUAL(count(f, "DynamicQuantizeLinear") + count(f, "MatMulInteger") + count(f, "Cast") + count(f, "Mul") +
                        count(f, "Add"), 0);
    il_tensor *in = rnd(IL_F32, 3, D(3, 7, 16), -2, 3);
    il_tensor *want = op_run_graph(g, &in, &(il_plan_opts){.reference = 1});
    il_tensor *fast = op_run_graph(f, &in, &(il_plan_opts){.threads = 2});
    il_tensor *ref = op_run_graph(f, &in, &(il_plan_opts){.reference = 1});
    CU_ASSERT_FATAL(want && fast && ref);
    CU_ASSERT_EQUAL(memcmp(want->data, fast->data, il_tensor_bytes(want)), 0);
    CU_ASSERT_EQUAL(memcmp(want->data, ref->data, il_tensor_bytes(want)), 0);
    il_graph *low = il_graph_clone(f); /* opt --portable: the standard chain again, the same numbers */
    IL_ASSERT_OK(il_pass_run(low, "lower-fused", &st));
    IL_ASSERT_OK(il_graph_verify(low));
    CU_ASSERT_EQUAL(count(low, "DynamicQuantizeMatMul"), 0);
    CU_ASSERT_EQUAL(count(low, "MatMulInteger"), 2);
    CU_ASSERT_EQUAL(count(low, "Add"), 1);
    il_tensor *lowered = op_run_graph(low, &in, &(il_plan_opts){.reference = 1});
    CU_ASSERT_FATAL(lowered != NULL);
    CU_ASSERT_EQUAL(memcmp(want->data, lowered->data, il_tensor_bytes(want)), 0);
    il_tensor_free(lowered);
    il_graph_free(low);
    if (!access("node_modules/onnxruntime-node", R_OK)) {
        const char *path = il_test_tmp("dynq.onnx"), *xin = il_test_tmp("dynq_x.npy"), *yort = il_test_tmp("dynq_y.npy");
        IL_ASSERT_OK(il_onnx_save(f, path));
        IL_ASSERT_OK(il_tensor_save_npy(in, xin));
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "node bench/peers/ort_bench.js --model %s --threads 1 --batch 3 --eval-in %s --eval-out %s >/dev/null",
                 path, xin, yort);
        CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
        il_tensor *yo = NULL;
        IL_ASSERT_OK(il_tensor_load_npy(yort, &yo));
        int64_t worst;
        char msg[256];
        int close = il_tensor_allclose(yo, fast, 1e-5, 1e-5, &worst, msg, sizeof msg);
        if (!close) fprintf(stderr, "\n  ONNX Runtime vs fused: %s\n", msg);
        CU_ASSERT(close);
        il_tensor_free(yo);
    }
    il_tensor_free(in), il_tensor_free(want), il_tensor_free(fast), il_tensor_free(ref);
    il_graph_free(f);
    /* the int32 sums of the first product also a graph output: that product stays as it is */
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[k].dead && !strcmp(g->nodes[k].op_type, "MatMulInteger")) {
            OUT(g, g->nodes[k].outputs[0]);
            break;
        }
    IL_ASSERT_OK(il_pass_run(g, "fuse-dynamic-q", &st));
    CU_ASSERT_EQUAL(count(g, "DynamicQuantizeMatMul"), 1);
    CU_ASSERT_EQUAL(count(g, "MatMulInteger"), 1);
    il_graph_free(g);
}

/* ---------------------------------------------------------------- end to end */

/* The trained Fashion-MNIST teacher: INT8 (entropy, 256 calibration images) within a point of
 * FP32 on 300 test images; ONNX Runtime runs the same QDQ file and agrees. */
static void test_teacher_end_to_end(void) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(IL_TESTDATA "/fmnist_teacher.onnx", &g));
    il_quant_opts o = {.method = "entropy", .calib = "fashion-mnist:train:256", .threads = 2};
    il_quant_ctx *q;
    IL_ASSERT_OK(il_quant_calibrate(g, &o, &q));
    il_graph *m;
    il_quant_stats st;
    IL_ASSERT_OK(il_quant_apply(q, NULL, 0, &m, &st));
    CU_ASSERT_EQUAL(st.fp32, 0);
    il_calib_data *t;
    IL_ASSERT_OK(il_calib_data_load(g, "fashion-mnist:test:300", 1, 0, NULL, 0, &t));
    CU_ASSERT_EQUAL(t->n, 300);
    double fp, i8;
    IL_ASSERT_OK(il_quant_top1(g, NULL, t, 2, &fp));
    IL_ASSERT_OK(il_quant_top1(m, NULL, t, 2, &i8));
    if (fabs(fp - i8) > 0.01) fprintf(stderr, "\n  teacher top-1 FP32 %.4f INT8 %.4f\n", fp, i8);
    CU_ASSERT(fp > 0.9);
    CU_ASSERT(fabs(fp - i8) <= 0.01);
    /* ONNX Runtime on the exported file (when node and onnxruntime-node are there) */
    const char *qpath = il_test_tmp("teacher_int8.onnx"), *xin = il_test_tmp("x.npy"), *yort = il_test_tmp("y_ort.npy");
    IL_ASSERT_OK(il_onnx_save(m, qpath));
    IL_ASSERT_OK(il_tensor_save_npy(t->x[0], xin));
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "node bench/peers/ort_bench.js --model %s --threads 1 --batch 50 --eval-in %s --eval-out %s >/dev/null 2>&1",
             qpath, xin, yort);
    if (access("node_modules/onnxruntime-node", R_OK) || system("command -v node >/dev/null 2>&1")) {
        printf("skipped ONNX Runtime: node or onnxruntime-node missing (make deps) ");
    } else if (system(cmd)) {
        CU_FAIL("ONNX Runtime could not run the exported QDQ model");
    } else {
        il_tensor *yo, **yi;
        int ny;
        IL_ASSERT_OK(il_tensor_load_npy(yort, &yo));
        il_plan_opts po = {.batch = 300};
        IL_ASSERT_OK(il_run_model(m, t->x, 1, &po, &yi, &ny));
        int64_t same = 0, rows = t->n;
        for (int64_t r = 0; r < rows; r++) {
            int64_t a = 0, b = 0;
            for (int j = 1; j < 10; j++) {
                if (il_tensor_get(yo, r * 10 + j) > il_tensor_get(yo, r * 10 + a)) a = j;
                if (il_tensor_get(yi[0], r * 10 + j) > il_tensor_get(yi[0], r * 10 + b)) b = j;
            }
            same += a == b;
        }
        if (same < rows * 99 / 100) fprintf(stderr, "\n  ONNX Runtime agrees on %lld of %lld\n", (long long)same, (long long)rows);
        CU_ASSERT(same >= rows * 99 / 100);
        il_tensor_free(yo), il_tensor_free(yi[0]), free(yi);
    }
    il_calib_data_free(t);
    il_graph_free(m);
    il_quant_free(q);
    il_graph_free(g);
}

/* ---------------------------------------------------------------- the command and the pass */

/* A lossy pass that loses too much: it negates the model's output. --verify must stop it by
 * agreement, where allclose was never the test. */
static il_status negate_output(il_graph *g, il_pass_stats *st) {
    int y = g->outputs[0], pre = il_graph_new_value(g, "pre_negate");
    int k = g->values[y].producer;
    for (int i = 0; i < g->nodes[k].n_outputs; i++)
        if (g->nodes[k].outputs[i] == y) g->nodes[k].outputs[i] = pre;
    g->values[pre].producer = k;
    il_graph_add_node(g, "Neg", "", "negate", 1, &pre, 1, &y);
    il_pass_count(st, "outputs negated", 1);
    return IL_OK;
}

static void test_lossy_verify(void) {
    static const il_pass bad = {"test-lossy-negate", "a lossy pass that loses everything", negate_output, 1};
    IL_ASSERT_OK(il_pass_register(&bad));
    il_graph *g = small_cnn();
    il_pass_opts o = {.verify = 1};
    CU_ASSERT_EQUAL(il_pipeline_run(g, "test-lossy-negate", &o, NULL, 0, NULL), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "lossy pass 'test-lossy-negate' lost too much: top-1 agreement"));
    il_graph_free(g);
    /* int8 passes; a pass after it is compared with int8's result, not the FP32 model */
    g = small_cnn();
    IL_ASSERT_OK(il_pipeline_run(g, "int8,fold-constants", &o, NULL, 0, NULL));
    CU_ASSERT(count(g, "QuantizeLinear") > 0);
    il_graph_free(g);
}

static void test_cli_quantize(void) {
    char args[4096], out[16384];
    il_graph *g = small_cnn();
    const char *model = il_test_tmp("cnn.onnx"), *q = il_test_tmp("cnn_int8.onnx"), *cache = il_test_tmp("calib.onnx");
    IL_ASSERT_OK(il_onnx_save(g, model));
    il_graph_free(g);
    snprintf(args, sizeof args, "quantize %s -o %s --calib random:16 --method mse --analyze --json --calib-cache %s", model,
             q, cache);
    int rc = il_test_cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"analysis\":[{\"tensor\":"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"method\":\"mse\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"cache_hit\":false"));
    /* the cache serves another method */
    snprintf(args, sizeof args, "quantize %s -o %s --calib random:16 --method percentile --percentile 99.9 --json "
                                "--calib-cache %s", model, q, cache);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"cache_hit\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"percentile\":99.9"));
    il_graph *back;
    IL_ASSERT_OK(il_onnx_load(q, &back));
    CU_ASSERT_PTR_NOT_NULL(il_graph_get_meta(back, "inferlab.quantize"));
    il_graph_free(back);
    /* a fifth calibrator from a plugin, with its own observer */
    snprintf(args, sizeof args, "quantize %s -o %s --calib random:8 --plugin %s --method sigma --json", model, q,
             il_test_plugin("calib_sigma"));
    rc = il_test_cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"method\":\"sigma\""));
    /* errors: exit non-zero with a clear message */
    static const struct { const char *args, *msg; int rc; } bad[] = {
        {"quantize %s -o %s --method nope", "unknown --method 'nope'", 2},
        {"quantize %s -o %s --calib /no/such/dir/or/set", "", 1},
        {"quantize %s -o %s --calib random:0", "random:N wants", 1},
        {"quantize %s -o %s --dynamic --calib random:4", "--dynamic needs no calibration", 2},
        {"quantize %s -o %s --percentile 101", "--percentile wants", 2},
        {"quantize %s -o %s --exclude nobody --calib random:4", "no node named 'nobody'", 1},
        {"quantize %s -o %s --bogus", "unknown option '--bogus'", 2},
        {"quantize %s --calib random:4", "no output file", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(args, sizeof args, bad[i].args, model, q);
        rc = il_test_cli(args, out, sizeof out);
        if (rc != bad[i].rc || !strstr(out, bad[i].msg)) fprintf(stderr, "\n  %s -> %d: %s\n", args, rc, out);
        CU_ASSERT_EQUAL(rc, bad[i].rc);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, bad[i].msg));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "inferlab"));
    }
    snprintf(args, sizeof args, "quantize /no/such/model.onnx -o %s", q);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 1);
    /* quantizing the quantized file is refused */
    snprintf(args, sizeof args, "quantize %s -o %s --calib random:4", q, il_test_tmp("twice.onnx"));
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "quantized already"));
    /* the lossy pass under --verify: checked by agreement, not allclose; idempotent */
    snprintf(args, sizeof args, "opt %s -p O2,int8 --verify --stats -o %s", model, q);
    rc = il_test_cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "verified (lossy): top-1 agreement"));
    /* thresholds from the command line: a cosine of 1 is more than INT8 gives */
    snprintf(args, sizeof args, "opt %s -p int8 --verify --min-cosine 1 -o %s", model, il_test_tmp("strict.onnx"));
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "lossy pass 'int8' lost too much"));
    snprintf(args, sizeof args, "opt %s -p int8 --verify --min-agree 2 -o %s", model, il_test_tmp("strict.onnx"));
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--min-agree wants a number in (0, 1]"));
    snprintf(args, sizeof args, "opt %s -p int8 -o %s", q, il_test_tmp("again.onnx"));
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "nodes -> "));
}

IL_SUITE("quantize", {"quantize rounding and saturation", test_quantize_rounding_saturation},
         {"per axis, per block, errors", test_quantize_per_axis}, {"Q/DQ round trip", test_quantize_round_trip},
         {"DynamicQuantizeLinear", test_dynamic_quantize_linear}, {"calibrators", test_calibrators_known_answers},
         {"calibrator registry and cache", test_calibrator_registry_and_cache}, {"QDQ rewrite", test_qdq_structure},
         {"Concat shares its scale", test_concat_shares_scales},
         {"analyze and target-drop", test_analyze_and_tune}, {"dynamic", test_dynamic},
         {"fuse-dynamic-q: DynamicQuantizeMatMul = the dynamic graph, bit for bit; ORT runs it", test_dynamic_fused},
         {"teacher end to end", test_teacher_end_to_end},
         {"lossy passes under --verify", test_lossy_verify}, {"cli", test_cli_quantize})
