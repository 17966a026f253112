/*
 * test_dnnl_int8.c - oneDNN's INT8 kernels (engine/cpu/dnnl_qconv.c, dnnl_qeltwise.c) against
 * the reference kernels on fresh random inputs, through plans (so the layouts the plan chooses
 * are exercised, not only the kernels on plain tensors).
 *
 * Tolerance: the convolution requantizes in float32 where the reference does it in double, so
 * it may round the other way where the exact result lies within ~1e-5 of a half-integer: every
 * element within **1 LSB**, and at most 1% of them not equal (a systematic error -- a zero
 * point off by one, a scale per tensor where it is per channel -- moves far more than 1%; ties
 * on random layers are ~0.01%). The element-wise kernels and the pool are exact. A chain lets a
 * 1-LSB difference in one layer move the next: at most 3 LSB, 1 LSB on 99% (test_fuse_qdq.c's
 * rule).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "op_harness.h"

typedef struct {
    int64_t n, c, h, w, m, k, stride, pad, dil, group;
    int x_s8, y_s8, per_ch, bias, zx, zy;
    const char *act;
} qcfg;

static int cst(il_graph *g, const char *name, il_tensor *t) { return il_graph_add_constant(g, name, t); }

static il_tensor *scalar(il_dtype dt, double v) {
    il_tensor *t = il_tensor_new(dt, 0, NULL);
    il_tensor_set(t, 0, v);
    return t;
}

static int new_input(il_graph *g, il_dtype dt, int rank, const int64_t *dims) {
    int x = il_graph_value(g, "x");
    il_value *v = &g->values[x];
    v->dtype = dt;
    v->rank = rank;
    memcpy(v->dims, dims, sizeof(int64_t) * (size_t)rank);
    il_graph_add_input(g, x);
    return x;
}

/* A QConv of x (c channels, 8-bit as f says) with random weights: returns y's value. The output
 * scale spreads the sums over the 8-bit range (some saturate). rank: 3 (1-D, h ignored) or 4.
 * QLinearConv, the standard form, where the node has no activation and `standard` is set. */
static int add_qconv_op(il_graph *g, int x, const qcfg *f, int rank, const char *name, int standard) {
    char nm[64];
    int64_t cg = f->c / f->group, K = cg * f->k * (rank == 4 ? f->k : 1), nch = f->per_ch ? f->m : 1;
    int64_t wd4[4] = {f->m, cg, f->k, f->k}, wd3[3] = {f->m, cg, f->k};
    il_tensor *ws = il_tensor_new(IL_F32, f->per_ch ? 1 : 0, &nch), *wz = il_tensor_new(IL_I8, f->per_ch ? 1 : 0, &nch);
    for (int64_t i = 0; i < nch; i++) il_tensor_set(ws, i, 0.005 + 0.01 * il_rand_uniform(op_rng()));
    double sx = 0.02, sy = sx * 0.01 * sqrt((double)K) * 60;
    int in[9];
    in[0] = x;
    snprintf(nm, sizeof nm, "%s_xs", name), in[1] = cst(g, nm, scalar(IL_F32, sx));
    snprintf(nm, sizeof nm, "%s_xz", name), in[2] = cst(g, nm, scalar(f->x_s8 ? IL_I8 : IL_U8, f->zx));
    snprintf(nm, sizeof nm, "%s_w", name), in[3] = cst(g, nm, rnd(IL_I8, rank, rank == 4 ? wd4 : wd3, -128, 127));
    snprintf(nm, sizeof nm, "%s_ws", name), in[4] = cst(g, nm, ws);
    snprintf(nm, sizeof nm, "%s_wz", name), in[5] = cst(g, nm, wz);
    snprintf(nm, sizeof nm, "%s_ys", name), in[6] = cst(g, nm, scalar(IL_F32, sy));
    snprintf(nm, sizeof nm, "%s_yz", name), in[7] = cst(g, nm, scalar(f->y_s8 ? IL_I8 : IL_U8, f->zy));
    if (f->bias) snprintf(nm, sizeof nm, "%s_b", name), in[8] = cst(g, nm, rnd(IL_I32, 1, &f->m, -3000, 3000));
    int y = il_graph_new_value(g, name);
    standard &= f->act == NULL;
    int k = il_graph_add_node(g, standard ? "QLinearConv" : "QConv", standard ? "" : "ai.inferlab", name,
                              f->bias ? 9 : 8, in, 1, &y);
    il_node_set_int(g, k, "group", f->group);
    int nsp = rank - 2;
    il_node_set_ints(g, k, "strides", nsp, D(f->stride, f->stride));
    il_node_set_ints(g, k, "dilations", nsp, D(f->dil, f->dil));
    il_node_set_ints(g, k, "pads", 2 * nsp, D(f->pad, f->pad, f->pad, f->pad));
    if (f->act && !strcmp(f->act, "Clip")) {
        il_node_set_string(g, k, "activation", "Clip");
        il_node_set_floats(g, k, "activation_params", 2, (float[]){-0.5f, 1.5f});
    } else if (f->act) {
        il_node_set_string(g, k, "activation", f->act);
    }
    return y;
}

static int add_qconv(il_graph *g, int x, const qcfg *f, int rank, const char *name) {
    return add_qconv_op(g, x, f, rank, name, 0);
}

static il_graph *new_graph(void) {
    il_graph *g = il_graph_new("dnnl_int8");
    il_graph_set_opset(g, "", 13);
    il_graph_set_opset(g, "ai.inferlab", 1);
    return g;
}

/* Output 0 of g on x: the reference kernels, or the kernels forced by spec on `threads`. */
static il_tensor *run(const il_graph *g, il_tensor *x, const char *spec, int threads) {
    return op_run_graph(g, &x, &(il_plan_opts){.reference = spec == NULL, .kernels = spec, .threads = threads});
}

/* got against want: the largest difference, and how many elements differ at all / by more than 1. */
static int64_t diff(const il_tensor *got, const il_tensor *want, int64_t *differ, int64_t *over1) {
    int64_t worst = 0;
    *differ = *over1 = 0;
    for (int64_t i = 0, n = il_tensor_numel(want); i < n; i++) {
        int64_t d = llabs(il_int_at(got, i) - il_int_at(want, i));
        worst = d > worst ? d : worst;
        *differ += d != 0;
        *over1 += d > 1;
    }
    return worst;
}

static const qcfg convs[] = {
    /* n  c   h   w   m  k  s  p  d  g   xs8 ys8 pc bias zx  zy  act */
    {2, 16, 9, 11, 24, 3, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, "Relu"},     /* ResNet's 3x3 after a Relu */
    {1, 16, 9, 11, 24, 3, 1, 1, 1, 1, 0, 0, 1, 1, 77, 128, NULL},    /* zero points at both ends, padding */
    {3, 8, 7, 7, 10, 1, 1, 0, 1, 1, 0, 0, 1, 1, 3, 100, NULL},       /* pointwise */
    {2, 32, 9, 8, 17, 1, 2, 0, 1, 1, 0, 1, 0, 0, 0, -5, NULL},       /* strided 1x1, int8 out, per tensor */
    {1, 3, 23, 19, 16, 7, 2, 3, 1, 1, 0, 0, 1, 1, 114, 0, "Relu"},   /* a stem */
    {2, 12, 6, 6, 12, 3, 1, 1, 1, 3, 1, 0, 1, 0, -20, 60, "Clip"},   /* groups, int8 activations */
    {2, 24, 10, 10, 24, 3, 1, 1, 1, 24, 0, 0, 1, 1, 0, 0, "Relu"},   /* depthwise (MobileNet) */
    {1, 32, 8, 8, 32, 3, 2, 1, 1, 32, 0, 0, 1, 1, 9, 10, NULL},      /* depthwise, strided */
    {1, 16, 12, 12, 8, 3, 1, 2, 2, 1, 1, 1, 1, 1, 5, -7, NULL},      /* dilated, int8 in and out */
    {1, 64, 5, 5, 33, 3, 1, 1, 1, 1, 0, 0, 1, 1, 128, 131, "Clip"},  /* K = 576 */
    {2, 6, 0, 23, 7, 5, 2, 2, 1, 1, 0, 0, 1, 1, 40, 90, NULL},       /* 1-D */
};

/* Each layer alone: the dnnl kernel forced (plain tensors around it: graph input and output)
 * against the reference, on 1-3 threads. */
static void test_qconv_layers(void) {
    const il_kernel *k = il_kernel_find("ai.inferlab", "QConv", "cpu", "dnnl");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) {
        const qcfg *f = &convs[i];
        int rank = f->h ? 4 : 3;
        il_graph *g = new_graph();
        int64_t dims[4] = {f->n, f->c, f->h ? f->h : f->w, f->w};
        if (rank == 3) dims[2] = f->w;
        il_dtype xdt = f->x_s8 ? IL_I8 : IL_U8;
        int x = new_input(g, xdt, rank, dims);
        il_graph_add_output(g, add_qconv_op(g, x, f, rank, "conv", (int)(i & 1)));
        IL_ASSERT_OK(il_graph_verify(g));
        for (int r = 0; r < 2; r++) {
            il_tensor *in = rnd(xdt, rank, dims, f->x_s8 ? -128 : 0, f->x_s8 ? 127 : 255);
            il_tensor *want = run(g, in, NULL, 1),
                      *got = run(g, in, "QConv=dnnl,QLinearConv=dnnl", 1 + (int)op_randint(3));
            CU_ASSERT_PTR_NOT_NULL_FATAL(want);
            CU_ASSERT_PTR_NOT_NULL_FATAL(got);
            int64_t differ, over1, n = il_tensor_numel(want), worst = diff(got, want, &differ, &over1);
            int ok = worst <= 1 && differ * 100 <= n;
            if (!ok)
                fprintf(stderr, "\n  case %zu: dnnl vs reference: %lld LSB at most, %lld of %lld differ (seed %llu)\n",
                        i, (long long)worst, (long long)differ, (long long)n, (unsigned long long)op_seed());
            CU_ASSERT(ok);
            il_tensor_free(in), il_tensor_free(want), il_tensor_free(got);
        }
        il_graph_free(g);
    }
    CU_ASSERT_TRUE(op_is_covered(k));
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "QLinearConv", "cpu", "dnnl")));
}

/* A residual block as fuse-qdq leaves ResNet's: pool -> conv+Relu -> conv -> QAdd(pool) + Relu,
 * then another conv. With the dnnl kernels the values between them are held channels-last (the
 * plan says so: checked) and the result is the reference's within the chain tolerance. */
static void test_chain_native(void) {
    il_graph *g = new_graph();
    int64_t dims[4] = {2, 16, 12, 10};
    int x = new_input(g, IL_U8, 4, dims);
    int py = il_graph_new_value(g, "pool");
    int pk = il_graph_add_node(g, "MaxPool", "", "pool", 1, &x, 1, &py);
    il_node_set_ints(g, pk, "kernel_shape", 2, D(3, 3));
    il_node_set_ints(g, pk, "strides", 2, D(1, 1));
    il_node_set_ints(g, pk, "pads", 4, D(1, 1, 1, 1));
    qcfg f = {2, 16, 12, 10, 16, 3, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, "Relu"};
    int a = add_qconv(g, py, &f, 4, "c1");
    f.act = NULL, f.zy = 120;
    int b = add_qconv(g, a, &f, 4, "c2");
    int in[8] = {b, cst(g, "bs", scalar(IL_F32, 0.3)), cst(g, "bz", scalar(IL_U8, 120)), py,
                 cst(g, "ps", scalar(IL_F32, 0.2)), cst(g, "pz", scalar(IL_U8, 0)), cst(g, "ss", scalar(IL_F32, 0.4)),
                 cst(g, "sz", scalar(IL_U8, 0))};
    int s = il_graph_new_value(g, "add");
    int ak = il_graph_add_node(g, "QAdd", "ai.inferlab", "add", 8, in, 1, &s);
    il_node_set_string(g, ak, "activation", "Relu");
    f.zy = 7;
    il_graph_add_output(g, add_qconv(g, s, &f, 4, "c3"));
    IL_ASSERT_OK(il_graph_verify(g));
    const char *spec = "QConv=dnnl,QAdd=dnnl,MaxPool=dnnl";
    il_plan *p;
    IL_ASSERT_OK(il_plan_create(g, &(il_plan_opts){.kernels = spec, .threads = 2}, &p));
    /* everything between the input and the output is channels-last */
    CU_ASSERT_TRUE(il_plan_value_blocked(p, py));
    CU_ASSERT_TRUE(il_plan_value_blocked(p, a));
    CU_ASSERT_TRUE(il_plan_value_blocked(p, b));
    CU_ASSERT_TRUE(il_plan_value_blocked(p, s));
    CU_ASSERT_FALSE(il_plan_value_blocked(p, x));
    il_plan_free(p);
    for (int r = 0; r < 3; r++) {
        il_tensor *xin = rnd(IL_U8, 4, dims, 0, 255);
        il_tensor *want = run(g, xin, NULL, 1), *got = run(g, xin, spec, 2);
        CU_ASSERT_PTR_NOT_NULL_FATAL(want);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        int64_t differ, over1, n = il_tensor_numel(want), worst = diff(got, want, &differ, &over1);
        int ok = worst <= 3 && over1 * 100 <= n && differ * 100 <= n;
        if (!ok)
            fprintf(stderr, "\n  chain: %lld LSB at most, %lld of %lld differ, %lld by more than 1 (seed %llu)\n",
                    (long long)worst, (long long)differ, (long long)n, (long long)over1, (unsigned long long)op_seed());
        CU_ASSERT(ok);
        il_tensor_free(xin), il_tensor_free(want), il_tensor_free(got);
    }
    il_graph_free(g);
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("ai.inferlab", "QAdd", "cpu", "dnnl")));
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "MaxPool", "cpu", "dnnl")));
}

/* The element-wise kernel and the pool with operands in mixed layouts: a conv's channels-last
 * output added to the graph's plain input, pooled, and written plain -- exact except for the
 * conv's own 1 LSB, which the Add may carry (so 1 LSB, 1%). */
static void test_mixed_layouts(void) {
    il_graph *g = new_graph();
    int64_t dims[4] = {1, 8, 9, 9};
    int x = new_input(g, IL_U8, 4, dims);
    qcfg f = {1, 8, 9, 9, 8, 3, 1, 1, 1, 1, 0, 0, 1, 1, 3, 10, NULL};
    int a = add_qconv(g, x, &f, 4, "c1");
    int in[8] = {a, cst(g, "as", scalar(IL_F32, 0.3)), cst(g, "az", scalar(IL_U8, 10)), x,
                 cst(g, "xs2", scalar(IL_F32, 0.1)), cst(g, "xz2", scalar(IL_U8, 3)), cst(g, "ss", scalar(IL_F32, 0.35)),
                 cst(g, "sz", scalar(IL_U8, 128))};
    int s = il_graph_new_value(g, "add");
    il_graph_add_node(g, "QAdd", "ai.inferlab", "add", 8, in, 1, &s);
    int py = il_graph_new_value(g, "pool");
    int pk = il_graph_add_node(g, "MaxPool", "", "pool", 1, &s, 1, &py);
    il_node_set_ints(g, pk, "kernel_shape", 2, D(2, 2));
    il_node_set_ints(g, pk, "strides", 2, D(2, 2));
    il_node_set_int(g, pk, "ceil_mode", 1);
    il_graph_add_output(g, py);
    const char *spec = "QConv=dnnl,QAdd=dnnl,MaxPool=dnnl";
    il_plan *p;
    IL_ASSERT_OK(il_plan_create(g, &(il_plan_opts){.kernels = spec, .threads = 1}, &p));
    CU_ASSERT_TRUE(il_plan_value_blocked(p, a));
    CU_ASSERT_TRUE(il_plan_value_blocked(p, s));
    CU_ASSERT_FALSE(il_plan_value_blocked(p, x)); /* an input: the Add reorders it */
    il_plan_free(p);
    il_tensor *xin = rnd(IL_U8, 4, dims, 0, 255);
    il_tensor *want = run(g, xin, NULL, 1), *got = run(g, xin, spec, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    int64_t differ, over1, n = il_tensor_numel(want), worst = diff(got, want, &differ, &over1);
    CU_ASSERT(worst <= 1 && differ * 100 <= n + 100);
    il_tensor_free(xin), il_tensor_free(want), il_tensor_free(got);
    il_graph_free(g);
}

/* QMatMul (and QLinearMatMul) through the dnnl kernel against the reference: a[..., M, K] x
 * b[K, N], per-column or per-tensor scales, zero points, bias, Relu; the conv's tolerance. */
static void test_qmatmul(void) {
    static const struct {
        int rank;
        int64_t d0, m, k, n;
        int a_s8, per_col, bias, za, zy;
        const char *act;
    } mms[] = {
        {2, 0, 32, 512, 10, 0, 1, 1, 0, 128, NULL},   /* a classifier head */
        {3, 4, 17, 64, 96, 1, 1, 1, -7, 100, "Relu"}, /* a transformer's projection, int8 rows */
        {2, 0, 5, 33, 7, 0, 0, 0, 200, 3, NULL},      /* per tensor, odd sizes: QLinearMatMul */
    };
    for (size_t i = 0; i < sizeof mms / sizeof *mms; i++) {
        il_graph *g = new_graph();
        int64_t ad[3] = {mms[i].d0, mms[i].m, mms[i].k};
        const int64_t *adims = mms[i].rank == 3 ? ad : ad + 1;
        il_dtype adt = mms[i].a_s8 ? IL_I8 : IL_U8;
        int x = new_input(g, adt, mms[i].rank, adims);
        int64_t n = mms[i].n, nch = mms[i].per_col ? n : 1;
        il_tensor *bs = il_tensor_new(IL_F32, mms[i].per_col, &nch), *bz = il_tensor_new(IL_I8, mms[i].per_col, &nch);
        for (int64_t j = 0; j < nch; j++) il_tensor_set(bs, j, 0.01 + 0.02 * il_rand_uniform(op_rng()));
        double sa = 0.03, sy = sa * 0.02 * sqrt((double)mms[i].k) * 60;
        int in[9] = {x, cst(g, "as", scalar(IL_F32, sa)), cst(g, "az", scalar(adt, mms[i].za)),
                     cst(g, "b", rnd(IL_I8, 2, D(mms[i].k, n), -128, 127)), cst(g, "bs", bs), cst(g, "bz", bz),
                     cst(g, "ys", scalar(IL_F32, sy)), cst(g, "yz", scalar(IL_U8, mms[i].zy))};
        int qmm = mms[i].bias || mms[i].act;
        if (mms[i].bias) in[8] = cst(g, "bias", rnd(IL_I32, 1, &n, -5000, 5000));
        int y = il_graph_new_value(g, "y");
        int k = il_graph_add_node(g, qmm ? "QMatMul" : "QLinearMatMul", qmm ? "ai.inferlab" : "", "mm",
                                  mms[i].bias ? 9 : 8, in, 1, &y);
        if (mms[i].act) il_node_set_string(g, k, "activation", mms[i].act);
        il_graph_add_output(g, y);
        IL_ASSERT_OK(il_graph_verify(g));
        il_tensor *a = rnd(adt, mms[i].rank, adims, mms[i].a_s8 ? -128 : 0, mms[i].a_s8 ? 127 : 255);
        il_tensor *want = run(g, a, NULL, 1), *got = run(g, a, "QMatMul=dnnl,QLinearMatMul=dnnl", 2);
        CU_ASSERT_PTR_NOT_NULL_FATAL(want);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        int64_t differ, over1, ne = il_tensor_numel(want), worst = diff(got, want, &differ, &over1);
        int ok = worst <= 1 && differ * 100 <= ne;
        if (!ok)
            fprintf(stderr, "\n  matmul %zu: %lld LSB at most, %lld of %lld differ (seed %llu)\n", i, (long long)worst,
                    (long long)differ, (long long)ne, (unsigned long long)op_seed());
        CU_ASSERT(ok);
        il_tensor_free(a), il_tensor_free(want), il_tensor_free(got);
        il_graph_free(g);
    }
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("ai.inferlab", "QMatMul", "cpu", "dnnl")));
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "QLinearMatMul", "cpu", "dnnl")));
}

/* QAdd, QLinearAdd, QLinearMul and MaxPool through the op harness (plain operands): every
 * kernel that takes the node, the dnnl ones included, bit for bit against the reference. */
static void test_eltwise_harness(void) {
    static const char *const ops[] = {"ai.inferlab:QAdd", "com.microsoft:QLinearAdd", "com.microsoft:QLinearMul"};
    for (int i = 0; i < 3; i++) {
        op_case *o = op_new(ops[i], 13, 8, 1);
        int64_t d[4] = {2, 5, 7, 3 + op_randint(9)};
        op_in(o, 0, rnd(IL_U8, 4, d, 0, 255)), op_in(o, 3, rnd(IL_I8, 4, d, -128, 127));
        op_in(o, 1, scalar(IL_F32, 0.02)), op_in(o, 4, scalar(IL_F32, 0.03)), op_in(o, 6, scalar(IL_F32, 0.05));
        op_in(o, 2, scalar(IL_U8, 100)), op_in(o, 5, scalar(IL_I8, -3)), op_in(o, 7, scalar(IL_U8, 128));
        IL_ASSERT_OK(op_run(o));
        const char *colon = strchr(ops[i], ':');
        CU_ASSERT_TRUE(op_is_covered(il_kernel_find(i ? "com.microsoft" : "ai.inferlab", colon + 1, "cpu", "dnnl")));
        op_free(o);
    }
    op_case *o = op_new("MaxPool", 13, 1, 1);
    op_in(o, 0, rnd(IL_I8, 4, D(2, 19, 11, 12), -128, 127));
    il_node_set_ints(o->g, o->k, "kernel_shape", 2, D(3, 3));
    il_node_set_ints(o->g, o->k, "strides", 2, D(2, 2));
    il_node_set_ints(o->g, o->k, "pads", 4, D(1, 1, 0, 0));
    il_node_set_int(o->g, o->k, "ceil_mode", 1);
    IL_ASSERT_OK(op_run(o));
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "MaxPool", "cpu", "dnnl")));
    op_free(o);
}

IL_SUITE("dnnl-int8", {"QConv dnnl vs reference: 1 LSB, <= 1% differ (11 layers, 1-3 threads)", test_qconv_layers},
         {"QMatMul, QLinearMatMul dnnl vs reference: 1 LSB, <= 1% differ", test_qmatmul},
         {"residual chain held channels-last: dnnl vs reference (chain tolerance)", test_chain_native},
         {"operands in mixed layouts: Add reorders, pool writes plain", test_mixed_layouts},
         {"QAdd, QLinearAdd, QLinearMul, MaxPool int8: every kernel bit for bit (op harness)", test_eltwise_harness})
