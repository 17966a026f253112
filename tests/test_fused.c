/*
 * test_fused.c - the ai.inferlab fused kernels (engine/ops/fused*.c): on fresh random inputs,
 * the fast kernel against the reference kernel against the unfused subgraph of standard ops
 * (the same node lowered by passes/lower_fused.c), for each activation and the geometries the
 * fast paths treat differently (im2col, 1x1, depthwise, groups, 1-D, 3-D, tiles, broadcasting).
 */
#include <stdlib.h>
#include <string.h>

#include "../passes/passes.h"
#include "test.h"

static uint64_t rng = 12345;

static int input(il_graph *g, const char *name, int rank, const int64_t *dims) {
    int v = il_graph_value(g, name);
    g->values[v].dtype = IL_F32;
    g->values[v].rank = rank;
    memcpy(g->values[v].dims, dims, (size_t)rank * sizeof(int64_t));
    il_graph_add_input(g, v);
    return v;
}

static int weight(il_graph *g, const char *name, int rank, const int64_t *dims) {
    il_tensor *t = il_tensor_new(IL_F32, rank, dims);
    il_tensor_fill_random(t, &rng, -1, 1);
    return il_graph_add_constant(g, name, t);
}

/* Run g on inputs with reference or fast kernels; outputs returned (caller frees). */
static il_tensor *run1(const il_graph *g, il_tensor **in, int reference) {
    il_plan_opts o = {.reference = reference, .threads = 2};
    il_tensor **outs;
    int n;
    il_status st = il_run_model(g, in, g->n_inputs, &o, &outs, &n);
    if (st) {
        fprintf(stderr, "\n  run (%s): %s\n", reference ? "ref" : "fast", il_errmsg());
        return NULL;
    }
    il_tensor *y = outs[0];
    for (int i = 1; i < n; i++) il_tensor_free(outs[i]);
    free(outs);
    return y;
}

/* fast vs ref vs lowered (unfused) on random inputs; g is freed. */
static void check_three(il_graph *g, const char *what) {
    il_tensor *in[8] = {0};
    for (int i = 0; i < g->n_inputs; i++) {
        const il_value *x = &g->values[g->inputs[i]];
        in[i] = il_tensor_new(IL_F32, x->rank, x->dims);
        il_tensor_fill_random(in[i], &rng, -2, 2);
    }
    il_graph *low = il_graph_clone(g);
    il_pass_stats st;
    IL_ASSERT_OK(il_pass_run(low, IL_PASS_LOWER, &st));
    CU_ASSERT_TRUE(il_pass_changes(&st) > 0);
    for (int k = 0; k < low->n_nodes; k++) CU_ASSERT_STRING_EQUAL(low->nodes[k].domain, "");
    il_tensor *ref = run1(g, in, 1), *fast = run1(g, in, 0), *unf = run1(low, in, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fast);
    CU_ASSERT_PTR_NOT_NULL_FATAL(unf);
    char msg[256];
    int64_t w;
    int ok1 = il_tensor_allclose(fast, ref, 1e-4, 1e-4, &w, msg, sizeof msg);
    if (!ok1) fprintf(stderr, "\n  %s fast vs ref: %s\n", what, msg);
    int ok2 = il_tensor_allclose(unf, ref, 1e-4, 1e-4, &w, msg, sizeof msg);
    if (!ok2) fprintf(stderr, "\n  %s unfused vs ref: %s\n", what, msg);
    CU_ASSERT_TRUE(ok1);
    CU_ASSERT_TRUE(ok2);
    il_tensor_free(ref);
    il_tensor_free(fast);
    il_tensor_free(unf);
    for (int i = 0; i < g->n_inputs; i++) il_tensor_free(in[i]);
    il_graph_free(low);
    il_graph_free(g);
}

static const char *acts[] = {NULL, "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "HardSigmoid",
                             "Gelu", "GeluTanh", "Tanh", "SiLU"};

static void set_act(il_graph *g, int k, const char *a) {
    if (!a) return;
    il_node_set_string(g, k, "activation", a);
    float p[2] = {-0.5f, 0.7f};
    if (!strcmp(a, "Clip")) il_node_set_floats(g, k, "activation_params", 2, p);
    if (!strcmp(a, "LeakyRelu")) il_node_set_floats(g, k, "activation_params", 1, p + 1);
    if (!strcmp(a, "HardSigmoid")) { p[0] = 0.2f; p[1] = 0.5f; il_node_set_floats(g, k, "activation_params", 2, p); }
}

static il_graph *new_graph(int64_t opset) {
    il_graph *g = il_graph_new("fused");
    il_graph_set_opset(g, "", opset);
    il_graph_set_opset(g, "ai.inferlab", 1);
    return g;
}

/* FusedConv with geometry: nsp spatial dims of size hw, c in, m out, kernel k, stride s, pad p,
 * group grp, residual z, activation act. */
static il_graph *conv_graph(int nsp, int64_t n, int64_t c, int64_t hw, int64_t m, int64_t k, int64_t s, int64_t p,
                            int64_t grp, int bias, int z, const char *act) {
    il_graph *g = new_graph(17);
    int64_t xd[5] = {n, c, hw, hw, hw}, wd[5] = {m, c / grp, k, k, k}, bd[1] = {m};
    int in[4] = {input(g, "x", 2 + nsp, xd), weight(g, "w", 2 + nsp, wd), bias ? weight(g, "b", 1, bd) : -1, -1};
    int64_t o = (hw + 2 * p - k) / s + 1, zd[5] = {n, m, o, o, o};
    if (z) in[3] = input(g, "z", 2 + nsp, zd);
    int y = il_graph_value(g, "y");
    int j = il_graph_add_node(g, "FusedConv", "ai.inferlab", "fc", z ? 4 : 3, in, 1, &y);
    int64_t st[3] = {s, s, s}, pads[6] = {p, p, p, p, p, p};
    il_node_set_ints(g, j, "strides", nsp, st);
    il_node_set_ints(g, j, "pads", 2 * nsp, pads);
    il_node_set_int(g, j, "group", grp);
    set_act(g, j, act);
    il_graph_add_output(g, y);
    return g;
}

static void test_fused_conv(void) {
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
        check_three(conv_graph(2, 2, 6, 9, 8, 3, 2, 1, 1, 1, 0, acts[a]), "conv 3x3/s2");
        check_three(conv_graph(2, 1, 8, 7, 16, 1, 1, 0, 1, 1, 1, acts[a]), "conv 1x1 + residual");
    }
    check_three(conv_graph(2, 3, 8, 8, 8, 3, 1, 1, 8, 1, 1, "Clip"), "depthwise + residual");
    check_three(conv_graph(2, 2, 8, 6, 12, 3, 1, 1, 4, 0, 0, "Relu"), "grouped, no bias");
    check_three(conv_graph(1, 2, 4, 20, 6, 3, 1, 1, 1, 1, 1, "Relu"), "1-D");
    check_three(conv_graph(3, 1, 3, 5, 4, 3, 1, 1, 1, 1, 1, "Sigmoid"), "3-D (fallback path)");
    /* more output columns than one tile (65536 / m) */
    check_three(conv_graph(2, 1, 3, 130, 4, 3, 1, 1, 1, 1, 1, "Relu"), "several tiles");
}

static void test_fused_gemm_matmul(void) {
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
        for (int t = 0; t < 4; t++) {
            il_graph *g = new_graph(17);
            int64_t ad[2] = {t & 1 ? 7 : 5, t & 1 ? 5 : 7}, bd[2] = {t & 2 ? 9 : 7, t & 2 ? 7 : 9}, cd[2] = {1, 9};
            int in[3] = {input(g, "a", 2, ad), weight(g, "b", 2, bd), weight(g, "c", t == 3 ? 1 : 2, t == 3 ? cd + 1 : cd)};
            int y = il_graph_value(g, "y");
            int j = il_graph_add_node(g, "FusedGemm", "ai.inferlab", "fg", 3, in, 1, &y);
            il_node_set_int(g, j, "transA", t & 1);
            il_node_set_int(g, j, "transB", (t & 2) != 0);
            il_node_set_float(g, j, "alpha", 0.7f);
            il_node_set_float(g, j, "beta", 1.3f);
            set_act(g, j, acts[a]);
            il_graph_add_output(g, y);
            check_three(g, "FusedGemm");
        }
        /* batched A against a weight, and batched against batched with broadcasting */
        for (int bat = 0; bat < 2; bat++) {
            il_graph *g = new_graph(17);
            int64_t ad[3] = {3, 5, 6}, bd[3] = {1, 6, 4}, nd[1] = {4};
            int in[3] = {input(g, "a", 3, ad), bat ? input(g, "b", 3, bd) : weight(g, "b", 2, bd + 1), weight(g, "bias", 1, nd)};
            int y = il_graph_value(g, "y");
            int j = il_graph_add_node(g, "FusedMatMul", "ai.inferlab", "fm", 3, in, 1, &y);
            set_act(g, j, acts[a]);
            il_graph_add_output(g, y);
            check_three(g, "FusedMatMul");
        }
    }
}

static void test_attention_silu(void) {
    for (int mask = 0; mask < 3; mask++) {
        il_graph *g = new_graph(17);
        int64_t qd[4] = {2, 3, 5, 8}, kd[4] = {2, 3, 8, 7}, vd[4] = {2, 3, 7, 4}, md[4] = {2, 1, 1, 7};
        int in[4] = {input(g, "q", 4, qd), input(g, "kt", 4, kd), input(g, "v", 4, vd), -1};
        if (mask == 1) in[3] = input(g, "mask", 4, md);        /* [B, 1, 1, Sk], BERT's */
        if (mask == 2) in[3] = weight(g, "mask", 2, (int64_t[]){5, 7}); /* [Sq, Sk], causal-like */
        int y = il_graph_value(g, "y");
        int j = il_graph_add_node(g, "Attention", "ai.inferlab", "att", mask ? 4 : 3, in, 1, &y);
        il_node_set_float(g, j, "scale", 0.35f);
        il_graph_add_output(g, y);
        check_three(g, "Attention");
    }
    il_graph *g = new_graph(13);
    int64_t xd[2] = {70000, 1}; /* past one threaded block */
    int x = input(g, "x", 2, xd), y = il_graph_value(g, "y");
    il_graph_add_node(g, "SiLU", "ai.inferlab", "silu", 1, &x, 1, &y);
    il_graph_add_output(g, y);
    check_three(g, "SiLU");
}

/* Bad attributes and shapes give a message naming the node, not a crash. */
static void test_fused_errors(void) {
    il_graph *g = conv_graph(2, 1, 4, 6, 4, 3, 1, 1, 1, 1, 0, "Swish");
    il_plan *p;
    CU_ASSERT_EQUAL(il_plan_create(g, NULL, &p), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "unknown activation 'Swish'"));
    il_graph_free(g);
    g = conv_graph(2, 1, 4, 6, 4, 3, 1, 1, 1, 1, 1, "Relu");
    g->values[il_graph_find_value(g, "z")].dims[3] = 5; /* residual of the wrong size */
    CU_ASSERT_EQUAL(il_plan_create(g, NULL, &p), IL_ERR_SHAPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "residual input Z"));
    il_graph_free(g);
}

IL_SUITE("fused", {"FusedConv fast = ref = unfused", test_fused_conv},
         {"FusedGemm/FusedMatMul fast = ref = unfused", test_fused_gemm_matmul},
         {"Attention and SiLU fast = ref = unfused", test_attention_silu}, {"fused op errors", test_fused_errors})
