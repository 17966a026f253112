/*
 * layout_chain.h - chains of oneDNN-layout kernels for the tests of native values
 * (tests/test_dnnl_layout.c, test_dnnl_native.c): graphs of convs, pools and binary ops built
 * node by node, a plan of them checked against the reference kernels on fresh random inputs
 * (op_rng(): seeded from the clock, the seed printed; IL_TEST_SEED repeats a run) within
 * |got - want| <= 1e-4 + 1e-4 |want|, and whether a value is held native.
 */
#ifndef IL_TEST_LAYOUT_CHAIN_H
#define IL_TEST_LAYOUT_CHAIN_H

#include "../engine/cpu/compute.h"
#include "op_harness.h"

/* ---------------------------------------------------------------- graph building */

typedef struct {
    il_graph *g;
    int nsp, n;
} chain;

static inline chain chain_new(int nsp, int64_t batch, int64_t c, int64_t hw) {
    chain b = {il_graph_new("layout"), nsp, 0};
    il_graph_set_opset(b.g, "", 17);
    il_graph_set_opset(b.g, "ai.inferlab", 1);
    int x = il_graph_value(b.g, "x");
    il_value *xv = &b.g->values[x];
    xv->dtype = IL_F32;
    xv->rank = 2 + nsp;
    xv->dims[0] = batch;
    xv->dims[1] = c;
    for (int d = 0; d < nsp; d++) xv->dims[2 + d] = hw;
    il_graph_add_input(b.g, x);
    return b;
}

static inline int out_value(chain *b) {
    char name[32];
    snprintf(name, sizeof name, "v%d", b->n++);
    return il_graph_value(b->g, name);
}

static inline void set_window(chain *b, int j, int64_t k, int64_t s, int64_t p) {
    int64_t ks[3] = {k, k, k}, st[3] = {s, s, s}, pads[6] = {p, p, p, p, p, p};
    il_node_set_ints(b->g, j, "kernel_shape", b->nsp, ks);
    il_node_set_ints(b->g, j, "strides", b->nsp, st);
    il_node_set_ints(b->g, j, "pads", 2 * b->nsp, pads);
}

/* FusedConv (Conv when act and z are absent) of x with cin input channels into m, weights
 * uniform in +-1/sqrt(fan-in) so that values stay near 1 along a chain; z < 0: no residual. */
static inline int conv(chain *b, int x, int64_t cin, int64_t m, int64_t k, int64_t s, int64_t p, int64_t grp,
                const char *act, int z) {
    int64_t wd[5] = {m, cin / grp, k, k, k}, bd[1] = {m};
    il_tensor *w = il_tensor_new(IL_F32, 2 + b->nsp, wd), *bias = il_tensor_new(IL_F32, 1, bd);
    double r = 1 / sqrt((double)(cin / grp) * pow((double)k, b->nsp));
    il_tensor_fill_random(w, op_rng(), -r, r);
    il_tensor_fill_random(bias, op_rng(), -0.5, 0.5);
    char name[32];
    snprintf(name, sizeof name, "w%d", b->n);
    int in[4] = {x, il_graph_add_constant(b->g, name, w), -1, z};
    snprintf(name, sizeof name, "b%d", b->n);
    in[2] = il_graph_add_constant(b->g, name, bias);
    int y = out_value(b), fused = act || z >= 0;
    int j = il_graph_add_node(b->g, fused ? "FusedConv" : "Conv", fused ? "ai.inferlab" : "", name, z >= 0 ? 4 : 3, in,
                              1, &y);
    set_window(b, j, k, s, p);
    il_node_set_int(b->g, j, "group", grp);
    if (act) il_node_set_string(b->g, j, "activation", act);
    if (act && !strcmp(act, "Clip")) il_node_set_floats(b->g, j, "activation_params", 2, (float[]){0, 6});
    return y;
}

static inline int pool(chain *b, const char *op, int x, int64_t k, int64_t s, int64_t p, int ceil) {
    int y = out_value(b);
    char name[32];
    snprintf(name, sizeof name, "pool%d", b->n);
    int j = il_graph_add_node(b->g, op, "", name, 1, &x, 1, &y);
    if (k) {
        set_window(b, j, k, s, p);
        il_node_set_int(b->g, j, "ceil_mode", ceil);
    }
    return y;
}

static inline int unary(chain *b, const char *op, int x) {
    int y = out_value(b);
    char name[32];
    snprintf(name, sizeof name, "u%d", b->n);
    il_graph_add_node(b->g, op, "", name, 1, &x, 1, &y);
    return y;
}

/* op(x, y): Mul, Add, or Concat along the channels (axis given as -3 in rank 4: the same). */
static inline int node2(chain *b, const char *op, int x, int y) {
    int v = out_value(b), in[2] = {x, y};
    char name[32];
    snprintf(name, sizeof name, "n%d", b->n);
    int j = il_graph_add_node(b->g, op, "", name, 2, in, 1, &v);
    if (!strcmp(op, "Concat")) il_node_set_int(b->g, j, "axis", b->nsp == 2 ? -3 : 1);
    return v;
}

/* ---------------------------------------------------------------- running */

static inline il_tensor *random_input(const il_graph *g, int64_t batch) {
    const il_value *x = &g->values[g->inputs[0]];
    int64_t d[IL_MAX_RANK];
    memcpy(d, x->dims, sizeof d);
    d[0] = batch;
    il_tensor *t = il_tensor_new(IL_F32, x->rank, d);
    il_tensor_fill_random(t, op_rng(), -2, 2);
    return t;
}

/* Every output of p (run on x) within tolerance of the reference kernels' outputs. */
static inline void check_outputs(il_plan *p, const il_graph *g, il_tensor *x, const char *what) {
    il_plan_opts ro = {.reference = 1, .threads = 1};
    il_tensor **want = NULL;
    int nw = 0;
    IL_ASSERT_OK(il_run_model(g, &x, 1, &ro, &want, &nw));
    IL_ASSERT_OK(il_plan_run(p, &x, 1));
    CU_ASSERT_EQUAL_FATAL(nw, il_plan_n_outputs(p));
    for (int i = 0; i < nw; i++) {
        char msg[256];
        int64_t worst;
        int ok = il_tensor_allclose(il_plan_output(p, i), want[i], 1e-4, 1e-4, &worst, msg, sizeof msg);
        if (!ok)
            fprintf(stderr, "\n  %s, output %d: %s (seed %llu)\n", what, i, msg, (unsigned long long)op_seed());
        CU_ASSERT_TRUE(ok);
        il_tensor_free(want[i]);
    }
    free(want);
    for (int k = 0; k < g->n_nodes; k++)
        if (il_plan_kernel(p, k)) op_covered(il_plan_kernel(p, k));
}

/* A plan of g with opts o, checked against the reference at batch; returns the plan. */
static inline il_plan *plan_checked(const il_graph *g, const il_plan_opts *o, int64_t batch, const char *what) {
    il_plan *p = NULL;
    IL_ASSERT_OK(il_plan_create(g, o, &p));
    il_tensor *x = random_input(g, batch);
    check_outputs(p, g, x, what);
    il_tensor_free(x);
    return p;
}

/* p saved to a plan file (file, in the tests' temporary folder) and loaded with o: both plans give
 * the same outputs on a fresh random input at batch; frees p. */
static inline void plan_file_agrees(il_plan *p, const il_graph *g, const il_plan_opts *o, int64_t batch,
                                    const char *file) {
    const char *path = il_test_tmp(file);
    il_plan *q = NULL;
    IL_ASSERT_OK(il_plan_save(p, path));
    IL_ASSERT_OK(il_plan_load(path, o, &q));
    il_test_plans_agree(p, q, random_input(g, batch));
    il_plan_free(p);
    il_plan_free(q);
}

/* g's plan (threads, batch, checked against the reference) saved to a scratch file and loaded
 * again: both compute the same outputs bit for bit. */
static inline void plan_file_round_trip(const il_graph *g, int threads, int64_t batch, const char *file, const char *what) {
    il_plan_opts o = {.threads = threads};
    plan_file_agrees(plan_checked(g, &o, batch, what), g, &o, batch, file);
}

static inline int have_blocked_kernels(void) {
    return il_kernel_find("ai.inferlab", "FusedConv", "cpu", "dnnl") != NULL;
}

/* Whether value v of g is blocked in p; where this build has no blocked kernels, never. */
static inline void expect_blocked(const il_plan *p, const il_graph *g, int v, int want, const char *what) {
    int got = il_plan_value_blocked(p, v);
    if (!have_blocked_kernels()) want = 0;
    if (got != want)
        fprintf(stderr, "\n  %s: value %s is %s, expected %s\n", what, g->values[v].name, got ? "blocked" : "plain",
                want ? "blocked" : "plain");
    CU_ASSERT_EQUAL(got, want);
}

#endif
