/*
 * test_sparse.c - the "sparse" kernels (engine/cpu/sparse.c) against the reference kernels on
 * fresh random inputs, weights with 0%, 30%, 50%, 75%, 90% and 100% of their elements zero.
 *
 * From 50% zeros the kernel takes the node, so op_run (tests/op_harness.c) runs it beside the
 * reference and compares them (and marks it covered for the registry walk); below that it declines
 * (checked) and the case runs it directly through il_kernel_run_once, so its arithmetic is checked
 * at every sparsity. Tolerance: |sparse - ref| <= 1e-5 |ref| + 1e-4 (float sums of up to a few
 * hundred products of numbers in [-1, 1], against the reference's).
 * Geometries: the paths of the kernel (padded copy, in-place 1x1, stride phases with unequal
 * strides and dilations, 1-D, asymmetric pads, residual + activation epilogue; Gemm with A'
 * (M >= 8 or transA) and row dots, alpha/beta and a broadcast C, MatMul with batch dims and
 * rank-1 A); grouped and depthwise convs (channel multiplier 2, in place and copied).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_harness.h"

#define RTOL 1e-5
#define ATOL 1e-4

static const double levels[] = {0.0, 0.3, 0.5, 0.75, 0.9, 1.0};
#define N_LEVELS (int)(sizeof levels / sizeof *levels)

/* A random weight with exactly round(frac * n) zeros at random places. */
static il_tensor *sparse_w(int rank, const int64_t *dims, double frac) {
    il_tensor *t = rnd(IL_F32, rank, dims, -1, 1);
    float *d = t->data;
    int64_t n = il_tensor_numel(t), z = (int64_t)llround(frac * (double)n);
    for (int64_t i = 0; i < n; i++)
        if (d[i] == 0.0f) d[i] = 0.5f; /* no accidental zeros: the count is exact */
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = 0; i < z; i++) {
        int64_t j = i + op_randint(n - i), tmp = idx[i];
        idx[i] = idx[j], idx[j] = tmp;
        d[idx[i]] = 0.0f;
    }
    free(idx);
    return t;
}

/* A case for an ai.inferlab op: the harness builds default-domain nodes, so the node is renamed. */
static op_case *fused_case(const char *op, int n_in) {
    op_case *o = op_new("Identity", 17, n_in, 1);
    il_node *nd = &o->g->nodes[o->k];
    free(nd->op_type);
    free(nd->domain);
    nd->op_type = strdup(op);
    nd->domain = strdup("ai.inferlab");
    il_graph_set_opset(o->g, "ai.inferlab", 1);
    o->op = il_op_find("ai.inferlab", op);
    o->opset = 1;
    return o;
}

/* Run the case (reference, and every kernel that takes it); then the sparse kernel directly,
 * whether or not it takes the node, against the reference output. frac says whether it should. */
static void check(op_case *o, double frac, const char *what) {
    op_tol(o, RTOL, ATOL);
    const il_node *n = &o->g->nodes[o->k];
    const il_kernel *k = il_kernel_find(n->domain, n->op_type, "cpu", "sparse");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    snprintf(o->label, sizeof o->label, "%s, %.0f%% zeros", what, 100 * frac);
    RUN_OK(o);
    il_tensor *y = il_tensor_new(IL_F32, o->out[0]->rank, o->out[0]->dims);
    for (int64_t i = 0; i < il_tensor_numel(y); i++) ((float *)y->data)[i] = NAN;
    il_kctx c = {.node = n, .opset = o->opset, .n_in = o->n_in, .n_out = 1, .in = o->in, .out = &y,
                 .threads = 3, .const_mask = ~(uint64_t)1};
    CU_ASSERT_EQUAL(il_kernel_accepts(k, &c), frac >= 0.5);
    IL_ASSERT_OK(il_kernel_run_once(k, &c));
    int64_t worst;
    char msg[256];
    int ok = il_tensor_allclose(y, o->out[0], RTOL, ATOL, &worst, msg, sizeof msg);
    if (!ok) fprintf(stderr, "\n  %s: sparse against the reference: %s (seed %llu)\n", o->label, msg,
                     (unsigned long long)op_seed());
    CU_ASSERT(ok);
    il_tensor_free(y);
}

typedef struct {
    const char *what;
    int rank;
    int64_t x[4], w[4];
    int64_t strides[2], pads[4], dil[2];
    int bias;
    int64_t group; /* 0: 1 */
} conv_geo;

static const conv_geo convs[] = {
    {"3x3 pad 1", 4, {2, 5, 9, 8}, {7, 5, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1},
    {"3x2 stride 2, dilation 2x1, asymmetric pads", 4, {1, 3, 11, 10}, {4, 3, 3, 2}, {2, 2}, {1, 0, 2, 1}, {2, 1}, 1},
    {"1x1 (35 pixels: copied)", 4, {2, 6, 5, 7}, {8, 6, 1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 0},
    {"1x1 in place (64 pixels)", 4, {2, 5, 8, 8}, {6, 5, 1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1},
    {"strides 2x1", 4, {1, 3, 9, 8}, {4, 3, 3, 3}, {2, 1}, {1, 1, 1, 1}, {1, 1}, 1},
    {"stride 2, dilation 3", 4, {1, 2, 15, 14}, {3, 2, 3, 3}, {2, 2}, {2, 2, 2, 2}, {3, 3}, 1},
    {"1x1 stride 2", 4, {1, 6, 7, 7}, {5, 6, 1, 1}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1},
    {"7x7 stride 2 stem", 4, {1, 3, 19, 19}, {8, 3, 7, 7}, {2, 2}, {3, 3, 3, 3}, {1, 1}, 1},
    {"1-D stride 2", 3, {2, 4, 13}, {5, 4, 3}, {2}, {1, 1}, {1}, 1},
    {"group 2, 3x3 pad 1", 4, {2, 6, 9, 8}, {4, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, 2},
    {"group 3, stride 2, dilation 2x1", 4, {1, 9, 11, 10}, {6, 3, 3, 2}, {2, 2}, {1, 0, 2, 1}, {2, 1}, 1, 3},
    {"depthwise 3x3 stride 2", 4, {2, 5, 9, 9}, {5, 1, 3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 1, 5},
    {"depthwise, multiplier 2", 4, {1, 4, 8, 7}, {8, 1, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 0, 4},
    {"group 2, 1x1 in place (64 pixels)", 4, {2, 8, 8, 8}, {6, 4, 1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1, 2},
    {"group 2, 1-D", 3, {2, 4, 13}, {6, 2, 3}, {1}, {1, 1}, {1}, 1, 2},
};

static void set_geo(op_case *o, const conv_geo *g) {
    int nsp = g->rank - 2;
    il_node_set_ints(o->g, o->k, "strides", nsp, g->strides);
    il_node_set_ints(o->g, o->k, "pads", 2 * nsp, g->pads);
    il_node_set_ints(o->g, o->k, "dilations", nsp, g->dil);
    if (g->group) il_node_set_int(o->g, o->k, "group", g->group);
}

static void test_conv(void) {
    for (size_t i = 0; i < sizeof convs / sizeof *convs; i++)
        for (int l = 0; l < N_LEVELS; l++) {
            const conv_geo *g = &convs[i];
            op_case *o = op_new("Conv", 17, g->bias ? 3 : 2, 1);
            set_geo(o, g);
            op_in(o, 0, rnd(IL_F32, g->rank, g->x, -1, 1));
            op_in(o, 1, sparse_w(g->rank, g->w, levels[l]));
            if (g->bias) op_in(o, 2, rnd(IL_F32, 1, g->w, -1, 1));
            check(o, levels[l], g->what);
            op_free(o);
        }
}

/* FusedConv: bias, residual Z and an activation in the epilogue. */
static void test_fused_conv(void) {
    static const char *acts[] = {"Relu", "Clip", NULL};
    for (int a = 0; a < 3; a++)
        for (int l = 0; l < N_LEVELS; l++) {
            op_case *o = fused_case("FusedConv", 4);
            il_node_set_ints(o->g, o->k, "pads", 4, D(1, 1, 1, 1));
            if (acts[a]) il_node_set_string(o->g, o->k, "activation", acts[a]);
            if (acts[a] && !strcmp(acts[a], "Clip"))
                il_node_set_floats(o->g, o->k, "activation_params", 2, (float[]){0, 0.5f});
            op_in(o, 0, rnd(IL_F32, 4, D(2, 4, 6, 5), -1, 1));
            op_in(o, 1, sparse_w(4, D(6, 4, 3, 3), levels[l]));
            op_in(o, 2, rnd(IL_F32, 1, D(6), -1, 1));
            op_in(o, 3, rnd(IL_F32, 4, D(2, 6, 6, 5), -1, 1));
            check(o, levels[l], acts[a] ? acts[a] : "no activation");
            op_free(o);
        }
}

static void test_gemm(void) {
    /* rows of A (3: dots; 10: A' path), transA, transB, C's shape */
    struct { int64_t m; int ta, tb, crank; int64_t c0; } cases[] = {
        {3, 0, 0, 1, 0}, {10, 0, 1, 2, 1}, {10, 1, 0, 2, 10}, {1, 0, 1, 0, 0}, {9, 0, 0, -1, 0}};
    int64_t K = 20, N = 9;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int l = 0; l < N_LEVELS; l++) {
            int has_c = cases[i].crank >= 0;
            op_case *o = op_new("Gemm", 13, has_c ? 3 : 2, 1);
            SETI(o, "transA", cases[i].ta);
            SETI(o, "transB", cases[i].tb);
            SETF(o, "alpha", 0.5f);
            SETF(o, "beta", 2.0f);
            int64_t m = cases[i].m;
            op_in(o, 0, rnd(IL_F32, 2, cases[i].ta ? D(K, m) : D(m, K), -1, 1));
            op_in(o, 1, sparse_w(2, cases[i].tb ? D(N, K) : D(K, N), levels[l]));
            if (has_c) op_in(o, 2, rnd(IL_F32, cases[i].crank, cases[i].crank == 2 ? D(cases[i].c0, N) : D(N), -1, 1));
            check(o, levels[l], "Gemm");
            op_free(o);
        }
}

static void test_matmul(void) {
    struct { int rank; int64_t dims[3]; } as[] = {{3, {2, 5, 16}}, {2, {3, 16}}, {1, {16}}};
    for (int i = 0; i < 3; i++)
        for (int l = 0; l < N_LEVELS; l++) {
            op_case *o = op_new("MatMul", 13, 2, 1);
            op_in(o, 0, rnd(IL_F32, as[i].rank, as[i].dims, -1, 1));
            op_in(o, 1, sparse_w(2, D(16, 7), levels[l]));
            check(o, levels[l], "MatMul");
            op_free(o);
        }
    for (int l = 0; l < N_LEVELS; l++) {
        op_case *o = fused_case("FusedGemm", 3);
        il_node_set_string(o->g, o->k, "activation", "Relu");
        il_node_set_int(o->g, o->k, "transB", 1);
        op_in(o, 0, rnd(IL_F32, 2, D(12, 24), -1, 1));
        op_in(o, 1, sparse_w(2, D(10, 24), levels[l]));
        op_in(o, 2, rnd(IL_F32, 1, D(10), -1, 1));
        check(o, levels[l], "FusedGemm");
        op_free(o);
        o = fused_case("FusedMatMul", 3);
        il_node_set_string(o->g, o->k, "activation", "Sigmoid");
        op_in(o, 0, rnd(IL_F32, 3, D(2, 3, 24), -1, 1));
        op_in(o, 1, sparse_w(2, D(24, 10), levels[l]));
        op_in(o, 2, rnd(IL_F32, 1, D(10), -1, 1));
        check(o, levels[l], "FusedMatMul");
        op_free(o);
    }
}

/* In a plan: the heuristic keeps the dense kernel on a 90%-sparse conv; forced by name, the
 * sparse one runs and agrees with the reference. */
static void test_in_plan(void) {
    il_graph *g = il_graph_new("sparse_plan");
    il_graph_set_opset(g, "", 17);
    int x = il_graph_value(g, "x"), y = il_graph_value(g, "y");
    g->values[x].dtype = IL_F32;
    g->values[x].rank = 4;
    memcpy(g->values[x].dims, D(1, 8, 10, 10), 4 * sizeof(int64_t));
    il_graph_add_input(g, x);
    int in[2] = {x, il_graph_add_constant(g, "w", sparse_w(4, D(16, 8, 3, 3), 0.9))};
    int k = il_graph_add_node(g, "Conv", "", "conv", 2, in, 1, &y);
    il_node_set_ints(g, k, "pads", 4, D(1, 1, 1, 1));
    il_graph_add_output(g, y);
    il_plan_opts heur = {.threads = 2}, forced = {.threads = 2, .kernels = "Conv=sparse"}, ref = {.reference = 1};
    il_plan *p;
    IL_ASSERT_OK(il_plan_create(g, &heur, &p));
    CU_ASSERT_STRING_NOT_EQUAL(il_plan_kernel(p, k)->name, "sparse");
    il_plan_free(p);
    il_tensor *xin = rnd(IL_F32, 4, D(1, 8, 10, 10), -1, 1), **a, **b;
    int na, nb;
    IL_ASSERT_OK(il_run_model(g, &xin, 1, &forced, &a, &na));
    IL_ASSERT_OK(il_run_model(g, &xin, 1, &ref, &b, &nb));
    int64_t worst;
    char msg[256];
    CU_ASSERT(il_tensor_allclose(a[0], b[0], RTOL, ATOL, &worst, msg, sizeof msg));
    il_tensor_free(a[0]), il_tensor_free(b[0]), il_tensor_free(xin);
    free(a), free(b);
    il_graph_free(g);
}

IL_SUITE("sparse", {"Conv at every sparsity", test_conv}, {"FusedConv epilogue", test_fused_conv},
         {"Gemm paths", test_gemm}, {"MatMul, FusedGemm, FusedMatMul", test_matmul},
         {"heuristic keeps dense; forced sparse agrees", test_in_plan})
