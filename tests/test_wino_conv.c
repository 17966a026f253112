/*
 * test_wino_conv.c - the Winograd F(2x2,3x3) kernel "wino-f23" (engine/cpu/wino_conv.c) against
 * the reference kernels on fresh random inputs, within |got - want| <= 1e-4 + 1e-4 |want|
 * (layout_chain.h): batch 1 and 3, one and two threads; planes whose tiles fill 8-tile blocks
 * and leave 1 or 4 over, odd planes (tiles half outside), pads 0, 1 and 2; channels that are not
 * multiples of 16 (in) or 32 (out); Conv with bias, FusedConv with Relu, Clip, LeakyRelu and
 * Sigmoid (a lane-by-lane activation), with a residual; X, Z and Y plain and native (between
 * oneDNN convolutions), Y over Z's slot; the shapes it declines; which nodes the heuristic gives
 * it; a plan file.
 */
#include "layout_chain.h"

#include <stdlib.h>

static int have_wino(void) {
    const il_kernel *k = il_kernel_find("ai.inferlab", "FusedConv", "cpu", "wino-f23");
    return k && __builtin_cpu_supports("avx512f");
}

typedef struct {
    int64_t batch, c, m, hw, pad;
} shape;

/* x -> [Conv] -> FusedConv(act, residual z = the first conv's output) -> [Conv]: the outer
 * convs (oneDNN where built) make X, Z and Y native when around is set. */
static il_graph *graph(const shape *s, const char *act, int residual, int around) {
    chain b = chain_new(2, s->batch, s->c, s->hw);
    int x = 0, z = -1;
    if (around) x = conv(&b, x, s->c, s->c, 1, 1, 0, 1, NULL, -1);
    int64_t oh = s->hw + 2 * s->pad - 2;
    if (residual) {
        /* a residual of Y's shape: from X by a 3x3 of the same padding into m channels */
        z = conv(&b, x, s->c, s->m, 3, 1, s->pad, 1, NULL, -1);
        CU_ASSERT_TRUE(oh > 0);
    }
    int y = conv(&b, x, s->c, s->m, 3, 1, s->pad, 1, act ? act : residual ? "Relu" : NULL, z);
    if (act && !strcmp(act, "LeakyRelu")) il_node_set_floats(b.g, b.g->n_nodes - 1, "activation_params", 1, (float[]){0.1f});
    if (around) y = conv(&b, y, s->m, s->m, 1, 1, 0, 1, NULL, -1);
    il_graph_add_output(b.g, y);
    return b.g;
}

/* The plan of g by the heuristic with INFERLAB_WINO_F23=all (set by the callers: every 3x3 conv
 * to wino-f23, the 1x1 neighbours to oneDNN where built), checked against the reference. */
static void check(const shape *s, const char *act, int residual, int around, int threads) {
    il_graph *g = graph(s, act, residual, around);
    il_plan_opts o = {.threads = threads};
    char what[160];
    snprintf(what, sizeof what, "batch %lld, %lld -> %lld at %lld, pad %lld, %s%s%s, %d thread(s)", (long long)s->batch,
             (long long)s->c, (long long)s->m, (long long)s->hw, (long long)s->pad, act ? act : "no act",
             residual ? ", residual" : "", around ? ", native" : "", threads);
    il_plan *p = plan_checked(g, &o, s->batch, what);
    int found = 0;
    for (int k = 0; k < g->n_nodes; k++) found += !strcmp(il_plan_kernel(p, k)->name, "wino-f23");
    CU_ASSERT_EQUAL(found, 1 + residual);
    if (around) {
        const il_node *n = &g->nodes[1 + residual];
        expect_blocked(p, g, n->inputs[0], 1, what);
        expect_blocked(p, g, n->outputs[0], 1, what);
        if (residual) expect_blocked(p, g, n->inputs[3], 1, what);
    }
    il_plan_free(p);
    il_graph_free(g);
}

static void test_wino_shapes(void) {
    if (!have_wino()) {
        printf("skipped: no AVX-512 ");
        return;
    }
    setenv("INFERLAB_WINO_F23", "all", 1);
    /* tiles: 7 -> 16 (two full blocks), 9 pad 0 -> 7x7 out, 11 pad 2 -> 13x13 (49: one over),
     * 6 and 5 -> 9, 12 -> 36 (four over) */
    static const shape shapes[] = {
        {1, 32, 32, 7, 1}, {3, 24, 40, 9, 0}, {1, 16, 64, 11, 2}, {3, 40, 24, 6, 1}, {1, 19, 33, 5, 1}, {1, 16, 32, 12, 1},
    };
    for (int i = 0; i < 6; i++)
        for (int t = 1; t <= 2; t++) {
            check(&shapes[i], NULL, 0, 0, t);
            check(&shapes[i], "Relu", 0, 0, t);
        }
    unsetenv("INFERLAB_WINO_F23");
}

static void test_wino_epilogues(void) {
    if (!have_wino()) {
        printf("skipped: no AVX-512 ");
        return;
    }
    setenv("INFERLAB_WINO_F23", "all", 1);
    static const shape s1 = {1, 48, 48, 7, 1}, s3 = {3, 32, 48, 10, 1};
    static const char *acts[] = {"Relu", "Clip", "LeakyRelu", "Sigmoid"};
    for (int a = 0; a < 4; a++)
        for (int t = 1; t <= 2; t++) {
            check(&s1, acts[a], 1, 0, t);
            check(&s3, acts[a], a % 2, 1, t);
        }
    /* residual, native X, Z and Y, Y over Z where the plan allows */
    for (int t = 1; t <= 2; t++) {
        check(&s1, "Relu", 1, 1, t);
        check(&s3, "Relu", 1, 1, t);
        check(&s1, NULL, 0, 1, t);
    }
    unsetenv("INFERLAB_WINO_F23");
}

/* A one-node graph: FusedConv of x [batch, c, hw, hw] with a k x k weight, stride s, group grp,
 * dilation dil. */
static il_graph *one_conv(int64_t batch, int64_t c, int64_t m, int64_t hw, int64_t k, int64_t s, int64_t grp,
                          int64_t dil) {
    chain b = chain_new(2, batch, c, hw);
    int y = conv(&b, 0, c, m, k, s, k / 2, grp, "Relu", -1);
    il_node_set_ints(b.g, 0, "dilations", 2, (int64_t[]){dil, dil});
    il_graph_add_output(b.g, y);
    return b.g;
}

static void test_wino_declines(void) {
    if (!have_wino()) {
        printf("skipped: no AVX-512 ");
        return;
    }
    setenv("INFERLAB_WINO_F23", "all", 1);
    il_graph *g[4] = {one_conv(1, 32, 32, 8, 3, 2, 1, 1), one_conv(1, 32, 32, 8, 3, 1, 2, 1),
                      one_conv(1, 32, 32, 8, 5, 1, 1, 1), one_conv(1, 32, 32, 8, 3, 1, 1, 2)};
    for (int i = 0; i < 4; i++) {
        il_plan_opts o = {.threads = 1, .kernels = "FusedConv=wino-f23"};
        il_plan *p = NULL;
        CU_ASSERT_NOT_EQUAL(il_plan_create(g[i], &o, &p), IL_OK);
        CU_ASSERT_PTR_NULL(p);
        il_error_clear();
        /* the heuristic takes another kernel and computes it right */
        o.kernels = NULL;
        p = plan_checked(g[i], &o, 1, "declined shape");
        CU_ASSERT_STRING_NOT_EQUAL(il_plan_kernel(p, 0)->name, "wino-f23");
        il_plan_free(p);
        il_graph_free(g[i]);
    }
    unsetenv("INFERLAB_WINO_F23");
}

/* The heuristic's choice: wide convolutions on small planes at one image a thread; not 7x7 at two
 * images a thread, not narrow ones, not with INFERLAB_WINO_F23=0. */
static void test_wino_heuristic(void) {
    if (!have_wino()) {
        printf("skipped: no AVX-512 ");
        return;
    }
    static const struct {
        int64_t batch, c, hw;
        int threads, env0, want;
    } cases[] = {{1, 256, 7, 1, 0, 1}, {2, 256, 7, 2, 0, 1}, {2, 256, 7, 1, 0, 0},
                 {2, 256, 14, 1, 0, 1}, {1, 128, 7, 1, 0, 0}, {1, 256, 7, 1, 1, 0}};
    for (int i = 0; i < 6; i++) {
        if (cases[i].env0) setenv("INFERLAB_WINO_F23", "0", 1);
        il_graph *g = one_conv(cases[i].batch, cases[i].c, cases[i].c, cases[i].hw, 3, 1, 1, 1);
        il_plan_opts o = {.threads = cases[i].threads};
        il_plan *p = plan_checked(g, &o, cases[i].batch, "heuristic");
        int got = !strcmp(il_plan_kernel(p, 0)->name, "wino-f23");
        if (got != cases[i].want) fprintf(stderr, "\n  case %d: kernel %s\n", i, il_plan_kernel(p, 0)->name);
        CU_ASSERT_EQUAL(got, cases[i].want);
        il_plan_free(p);
        il_graph_free(g);
        unsetenv("INFERLAB_WINO_F23");
    }
}

static void test_wino_plan_file(void) {
    if (!have_wino()) {
        printf("skipped: no AVX-512 ");
        return;
    }
    il_graph *g = one_conv(1, 256, 256, 7, 3, 1, 1, 1);
    plan_file_round_trip(g, 1, 1, "wino.plan", "wino-f23 plan file");
    plan_file_round_trip(g, 2, 1, "wino2.plan", "wino-f23 plan file, two threads");
    il_graph_free(g);
}

IL_SUITE("wino-conv", {"shapes, tiles, pads, channels", test_wino_shapes},
         {"epilogues and layouts", test_wino_epilogues}, {"what it declines", test_wino_declines},
         {"the heuristic's choice", test_wino_heuristic}, {"plan file", test_wino_plan_file})
