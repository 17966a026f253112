/*
 * test_plan.c - the executor: shapes inferred and folded, outputs right, buffers shared by the
 * planner without clobbering live values, float16 through float32 kernels, input checks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static int input(il_graph *g, const char *name, il_dtype dt, int rank, const int64_t *dims) {
    int v = il_graph_value(g, name);
    g->values[v].dtype = dt;
    g->values[v].rank = rank;
    memcpy(g->values[v].dims, dims, (size_t)rank * sizeof(int64_t));
    il_graph_add_input(g, v);
    return v;
}

/* y = Relu(x) + Neg(Relu(x)) * 2 ... as a chain long enough for buffer reuse */
static il_graph *chain(int len, il_dtype dt) {
    il_graph *g = il_graph_new("chain");
    il_graph_set_opset(g, "", 17);
    int64_t d[2] = {-1, 8};
    int x = input(g, "x", dt, 2, d);
    g->values[x].dim_param[0] = strdup("N");
    int cur = x;
    for (int i = 0; i < len; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "h%d", i);
        int h = il_graph_value(g, nm);
        il_graph_add_node(g, i % 2 ? "Neg" : "Relu", "", NULL, 1, &cur, 1, &h);
        cur = h;
    }
    int y = il_graph_value(g, "y"), xy[2] = {cur, x};
    il_graph_add_node(g, "Add", "", "final_add", 2, xy, 1, &y);
    il_graph_add_output(g, y);
    return g;
}

static void test_chain_outputs_and_reuse(void) {
    il_graph *g = chain(9, IL_F32);
    il_plan_opts o = {.batch = 4, .threads = 2};
    il_plan *p;
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    int64_t d[2] = {4, 8};
    il_tensor *x = il_tensor_new(IL_F32, 2, d);
    uint64_t rng = 7;
    il_tensor_fill_random(x, &rng, -1, 1);
    IL_ASSERT_OK(il_plan_run(p, &x, 1));
    const il_tensor *y = il_plan_output(p, 0);
    CU_ASSERT_EQUAL(y->rank, 2);
    CU_ASSERT_EQUAL(y->dims[0], 4);
    /* 9 alternating ops starting with Relu end on Relu of a non-positive value: 0; then + x */
    for (int i = 0; i < 32; i++) {
        float xi = ((float *)x->data)[i];
        CU_ASSERT_DOUBLE_EQUAL(((float *)y->data)[i], xi, 1e-6);
    }
    /* 10 activations of 128 bytes each; the chain needs far fewer at once */
    CU_ASSERT_TRUE(il_plan_peak_bytes(p) < il_plan_total_bytes(p));
    CU_ASSERT_TRUE(il_plan_peak_bytes(p) <= 3 * 128);
    /* a different batch at run time re-plans */
    int64_t d2[2] = {3, 8};
    il_tensor *x2 = il_tensor_new(IL_F32, 2, d2);
    IL_ASSERT_OK(il_plan_run(p, &x2, 1));
    CU_ASSERT_EQUAL(il_plan_output(p, 0)->dims[0], 3);
    il_tensor_free(x);
    il_tensor_free(x2);
    il_plan_free(p);
    il_graph_free(g);
}

static void test_input_checks(void) {
    il_graph *g = chain(2, IL_F32);
    il_plan *p;
    IL_ASSERT_OK(il_plan_create(g, NULL, &p));
    int64_t bad[2] = {2, 5};
    il_tensor *x = il_tensor_new(IL_F32, 2, bad);
    CU_ASSERT_EQUAL(il_plan_run(p, &x, 1), IL_ERR_SHAPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "'x'"));
    il_tensor_free(x);
    int64_t ok[2] = {2, 8};
    x = il_tensor_new(IL_I32, 2, ok);
    CU_ASSERT_EQUAL(il_plan_run(p, &x, 1), IL_ERR_TYPE);
    CU_ASSERT_EQUAL(il_plan_run(p, &x, 0), IL_ERR_INVALID);
    il_tensor_free(x);
    il_plan_free(p);
    il_graph_free(g);
}

static void test_float16_path(void) {
    il_graph *g = chain(3, IL_F16);
    int64_t d[2] = {2, 8};
    il_tensor *x = il_tensor_new(IL_F16, 2, d);
    for (int i = 0; i < 16; i++) ((uint16_t *)x->data)[i] = il_f32_to_f16((float)(i - 8) * 0.25f);
    il_tensor **out;
    int n;
    IL_ASSERT_OK(il_run_model(g, &x, 1, NULL, &out, &n));
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(out[0]->dtype, IL_F16);
    /* Relu, Neg, Relu: relu(-relu(x)) = 0, so y = x */
    for (int i = 0; i < 16; i++)
        CU_ASSERT_DOUBLE_EQUAL(il_f16_to_f32(((uint16_t *)out[0]->data)[i]), (float)(i - 8) * 0.25f, 1e-3);
    il_tensor_free(out[0]);
    free(out);
    il_tensor_free(x);
    il_graph_free(g);
}

/* Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as exporters write a flatten: the shape
 * arithmetic folds at plan time, and the Reshape's output shape is static. */
static void test_shape_arithmetic_folds(void) {
    il_graph *g = il_graph_new("flatten");
    il_graph_set_opset(g, "", 13);
    int64_t d[4] = {-1, 3, 4, 5};
    int x = input(g, "x", IL_F32, 4, d);
    int s = il_graph_value(g, "s"), n0 = il_graph_value(g, "n0"), u = il_graph_value(g, "u"), cat = il_graph_value(g, "cat");
    int y = il_graph_value(g, "y");
    int64_t one = 1;
    il_tensor *idx = il_tensor_new(IL_I64, 0, NULL);
    il_tensor *axes = il_tensor_new(IL_I64, 1, &one);
    il_tensor *minus1 = il_tensor_new(IL_I64, 1, &one);
    ((int64_t *)minus1->data)[0] = -1;
    int vi = il_graph_add_constant(g, "idx", idx), va = il_graph_add_constant(g, "axes", axes);
    int vm = il_graph_add_constant(g, "m1", minus1);
    il_graph_add_node(g, "Shape", "", NULL, 1, &x, 1, &s);
    int gi[2] = {s, vi};
    il_graph_add_node(g, "Gather", "", NULL, 2, gi, 1, &n0);
    int ua[2] = {n0, va};
    il_graph_add_node(g, "Unsqueeze", "", NULL, 2, ua, 1, &u);
    int ci[2] = {u, vm};
    int kc = il_graph_add_node(g, "Concat", "", NULL, 2, ci, 1, &cat);
    il_node_set_int(g, kc, "axis", 0);
    int ri[2] = {x, cat};
    il_graph_add_node(g, "Reshape", "", NULL, 2, ri, 1, &y);
    il_graph_add_output(g, y);
    il_shapes *sh;
    IL_ASSERT_OK(il_infer_shapes(g, 2, NULL, 0, &sh));
    CU_ASSERT_EQUAL(sh->info[y].rank, 2);
    CU_ASSERT_EQUAL(sh->info[y].dims[0], 2);
    CU_ASSERT_EQUAL(sh->info[y].dims[1], 60);
    CU_ASSERT_TRUE(sh->folded[0] && sh->folded[3]);
    CU_ASSERT_FALSE(sh->folded[4]);
    il_shapes_free(sh);
    /* unbound batch: the Reshape's first dim stays unknown, the rest is still inferred */
    IL_ASSERT_OK(il_infer_shapes(g, 0, NULL, 0, &sh));
    CU_ASSERT_EQUAL(sh->info[y].rank, 2);
    il_shapes_free(sh);
    il_graph_free(g);
}

/* A value computed from shapes alone folds at plan time even when large (the attention masks
 * transformers exports build from the sequence length): Expand(1.5, Shape(x)) is 30000 floats
 * here, and y = x * it comes out right. A Transpose of a constant weight above the small fold
 * limit stays a run-time node (-O0 runs the graph as it is; fold_constants folds weights). */
static void test_shape_derived_values_fold(void) {
    il_graph *g = il_graph_new("mask");
    il_graph_set_opset(g, "", 13);
    int64_t d[4] = {-1, 3, 50, 100}, one = 1, wd[2] = {100, 100};
    int x = input(g, "x", IL_F32, 4, d);
    il_tensor *c = il_tensor_new(IL_F32, 1, &one), *w = il_tensor_new(IL_F32, 2, wd);
    ((float *)c->data)[0] = 1.5f;
    for (int i = 0; i < 10000; i++) ((float *)w->data)[i] = (float)(i % 101) * 0.01f;
    int vc = il_graph_add_constant(g, "c", c), vw = il_graph_add_constant(g, "w", w);
    int s = il_graph_value(g, "s"), e = il_graph_value(g, "e"), m = il_graph_value(g, "m"), wt = il_graph_value(g, "wt");
    int y = il_graph_value(g, "y");
    il_graph_add_node(g, "Shape", "", NULL, 1, &x, 1, &s);
    int ei[2] = {vc, s}, mi[2] = {x, e}, ti[2] = {m, wt};
    int ke = il_graph_add_node(g, "Expand", "", NULL, 2, ei, 1, &e);
    il_graph_add_node(g, "Mul", "", NULL, 2, mi, 1, &m);
    int kt = il_graph_add_node(g, "Transpose", "", NULL, 1, &vw, 1, &wt);
    il_graph_add_node(g, "MatMul", "", NULL, 2, ti, 1, &y);
    il_graph_add_output(g, y);
    il_shapes *sh;
    IL_ASSERT_OK(il_infer_shapes(g, 2, NULL, 0, &sh));
    CU_ASSERT_TRUE(sh->folded[ke]);
    CU_ASSERT_FALSE(sh->folded[kt]);
    il_shapes_free(sh);
    il_tensor *in = il_tensor_new(IL_F32, 4, (int64_t[]){2, 3, 50, 100});
    uint64_t rng = 7;
    il_tensor_fill_random(in, &rng, -1, 1);
    il_plan_opts o = {.batch = 2, .threads = 1};
    il_tensor **out;
    int n;
    IL_ASSERT_OK(il_run_model(g, &in, 1, &o, &out, &n));
    const float *xv = in->data, *yv = out[0]->data, *wv = w->data;
    double worst = 0;
    for (int r = 0; r < 300; r += 37) /* y[r, j] = sum_k 1.5 x[r, k] w[j, k] */
        for (int j = 0; j < 100; j += 9) {
            double want = 0;
            for (int k = 0; k < 100; k++) want += 1.5 * xv[r * 100 + k] * wv[j * 100 + k];
            double err = fabs(yv[r * 100 + j] - want) / (1e-4 + 1e-4 * fabs(want));
            worst = err > worst ? err : worst;
        }
    CU_ASSERT(worst <= 1.0);
    il_tensor_free(out[0]);
    free(out);
    il_tensor_free(in);
    il_graph_free(g);
}

/* Reshape, Flatten, Squeeze and Unsqueeze outputs take their input's arena slot (no copy), and
 * the slot lives until the last reader of either: here a = Relu(x) is read again after the
 * views of it and of their products, with other values planned in between. */
static int shape_const(il_graph *g, const char *name, int n, const int64_t *v) {
    int64_t nn = n;
    il_tensor *t = il_tensor_new(IL_I64, 1, &nn);
    memcpy(t->data, v, (size_t)n * sizeof(int64_t));
    return il_graph_add_constant(g, name, t);
}

static void test_views_share_slots(void) {
    il_graph *g = il_graph_new("views");
    il_graph_set_opset(g, "", 13);
    int64_t d[2] = {2, 6}, s34[2] = {3, 4}, s26[2] = {2, 6}, s12[1] = {12}, ax0[1] = {0};
    int x = input(g, "x", IL_F32, 2, d);
    int c34 = shape_const(g, "s34", 2, s34), c26 = shape_const(g, "s26", 2, s26), c12 = shape_const(g, "s12", 1, s12);
    int cax = shape_const(g, "ax0", 1, ax0);
    int a = il_graph_value(g, "a"), b = il_graph_value(g, "b"), b1 = il_graph_value(g, "b1"), c = il_graph_value(g, "c");
    int t = il_graph_value(g, "t"), dv = il_graph_value(g, "d"), tu = il_graph_value(g, "tu"), ts = il_graph_value(g, "ts");
    int m = il_graph_value(g, "m"), y = il_graph_value(g, "y");
    il_graph_add_node(g, "Relu", "", NULL, 1, &x, 1, &a);
    int r1[2] = {a, c34}, r2[2] = {b, c12}, r3[2] = {c, c26}, un[2] = {t, cax}, sq[2] = {tu, cax};
    il_graph_add_node(g, "Reshape", "", "view_b", 2, r1, 1, &b);    /* [3, 4] */
    il_graph_add_node(g, "Reshape", "", "view_b1", 2, r2, 1, &b1);  /* [12], a view of a view */
    il_graph_add_node(g, "Neg", "", NULL, 1, &b1, 1, &c);
    il_graph_add_node(g, "Exp", "", NULL, 1, &c, 1, &t);
    il_graph_add_node(g, "Reshape", "", "view_d", 2, r3, 1, &dv);   /* [2, 6] */
    il_graph_add_node(g, "Unsqueeze", "", NULL, 2, un, 1, &tu);     /* [1, 12] */
    il_graph_add_node(g, "Squeeze", "", NULL, 2, sq, 1, &ts);       /* [12] */
    int mi[2] = {dv, a};
    il_graph_add_node(g, "Mul", "", NULL, 2, mi, 1, &m);            /* -relu(x)^2 */
    int fl = il_graph_value(g, "fl"), r5[2] = {ts, c26};
    il_graph_add_node(g, "Reshape", "", NULL, 2, r5, 1, &fl);       /* exp(-relu(x)) as [2, 6] */
    int ai[2] = {m, fl};
    il_graph_add_node(g, "Add", "", NULL, 2, ai, 1, &y);
    il_graph_add_output(g, y);
    il_plan *p;
    il_plan_opts o = {.threads = 1};
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    int64_t sa, sb;
    CU_ASSERT_TRUE(il_plan_value_offset(p, a, &sa) >= 0);
    CU_ASSERT_EQUAL(il_plan_value_offset(p, b, &sb), il_plan_value_offset(p, a, &sa));
    CU_ASSERT_EQUAL(il_plan_value_offset(p, b1, &sb), il_plan_value_offset(p, a, &sa));
    CU_ASSERT_EQUAL(il_plan_value_offset(p, dv, &sb), il_plan_value_offset(p, c, &sa));
    CU_ASSERT_EQUAL(il_plan_value_offset(p, ts, &sb), il_plan_value_offset(p, t, &sa));
    CU_ASSERT_NOT_EQUAL(il_plan_value_offset(p, t, &sb), il_plan_value_offset(p, a, &sa));
    il_tensor *in = il_tensor_new(IL_F32, 2, d);
    uint64_t rng = 11;
    for (int round = 0; round < 2; round++) {
        il_tensor_fill_random(in, &rng, -2, 2);
        IL_ASSERT_OK(il_plan_run(p, &in, 1));
        const float *xv = in->data, *yv = il_plan_output(p, 0)->data;
        for (int i = 0; i < 12; i++) {
            float r = xv[i] > 0 ? xv[i] : 0, want = -r * r + expf(-r);
            CU_ASSERT_DOUBLE_EQUAL(yv[i], want, 1e-5 + 1e-5 * fabsf(want));
        }
    }
    il_tensor_free(in);
    il_plan_free(p);
    il_graph_free(g);
}

static void test_kernel_error_has_context(void) {
    /* Add of [2,3] and [4] cannot broadcast: the plan fails naming the node */
    il_graph *g = il_graph_new("bad");
    il_graph_set_opset(g, "", 17);
    int64_t a[2] = {2, 3}, b[1] = {4};
    int x = input(g, "a", IL_F32, 2, a), z = input(g, "b", IL_F32, 1, b), y = il_graph_value(g, "y");
    int in[2] = {x, z};
    il_graph_add_node(g, "Add", "", "the_add", 2, in, 1, &y);
    il_graph_add_output(g, y);
    il_plan *p;
    CU_ASSERT_EQUAL(il_plan_create(g, NULL, &p), IL_ERR_SHAPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "the_add"));
    il_graph_free(g);
}

IL_SUITE("plan", {"chain outputs and buffer reuse", test_chain_outputs_and_reuse}, {"input checks", test_input_checks},
         {"float16 through float32 kernels", test_float16_path}, {"shape arithmetic folds", test_shape_arithmetic_folds},
         {"large values derived from shapes fold", test_shape_derived_values_fold},
         {"views share their input's slot", test_views_share_slots},
         {"kernel errors carry the node name", test_kernel_error_has_context})
