/*
 * test_small_conv.c - the AVX-512 convolution kernels for small planes and many channels against
 * the reference kernels on fresh random inputs, within |got - want| <= 1e-4 + 1e-4 |want|
 * (layout_chain.h): "wino-f23" (engine/cpu/wino_conv.c, Winograd F(2x2,3x3)) and "gemm-rows"
 * (engine/cpu/rows_conv.c, im2col rows @ packed panels). Batch 1, 3 and 8, one and two threads
 * (wino-f23's images multiplied together, all of a thread's or in capped groups);
 * planes whose tiles or pixels fill 8-row blocks and leave some over, odd planes (Winograd tiles
 * half outside), pads 0, 1 and 2, strides 1 and 2, a dilation, 1x1 and 3x3; channels that are
 * not multiples of 16 (in) or 32 (out); Conv with bias, FusedConv with Relu, Clip, LeakyRelu and
 * Sigmoid (a lane-by-lane activation), with a residual; X, Z and Y plain and native (between
 * other convolutions), Y over Z's slot; the shapes each declines; which nodes the heuristic gives
 * them; plan files.
 */
#include "layout_chain.h"

#include <stdlib.h>

static int have(const char *name) {
    const il_kernel *k = il_kernel_find("ai.inferlab", "FusedConv", "cpu", name);
    if (!k || !__builtin_cpu_supports("avx512f")) printf("skipped: no AVX-512 ");
    return k && __builtin_cpu_supports("avx512f");
}

/* The kernel under test takes every shape it can compute; the other none. */
static void only(const char *name) {
    int wino = !strcmp(name, "wino-f23");
    setenv("INFERLAB_WINO_F23", wino ? "all" : "0", 1);
    setenv("INFERLAB_GEMM_ROWS", wino ? "0" : "all", 1);
}

static void defaults(void) {
    unsetenv("INFERLAB_WINO_F23");
    unsetenv("INFERLAB_GEMM_ROWS");
}

typedef struct {
    int64_t batch, c, m, hw, k, stride, pad;
} shape;

/* FusedConv (or Conv) of x by shape s's window, its activation's parameters set. */
static int conv_of(chain *b, int x, const shape *s, const char *act, int z) {
    int y = conv(b, x, s->c, s->m, s->k, s->stride, s->pad, 1, act, z);
    if (act && !strcmp(act, "LeakyRelu")) il_node_set_floats(b->g, b->g->n_nodes - 1, "activation_params", 1, (float[]){0.1f});
    return y;
}

/* x -> [1x1 Conv] -> FusedConv(act, residual z = a conv of X of Y's shape) -> [1x1 Conv]: the
 * outer convs make X, Z and Y native (around). */
static il_graph *graph(const shape *s, const char *act, int residual, int around) {
    chain b = chain_new(2, s->batch, s->c, s->hw);
    int x = 0, z = -1;
    if (around) x = conv(&b, x, s->c, s->c, 1, 1, 0, 1, NULL, -1);
    if (residual) z = conv_of(&b, x, s, NULL, -1);
    int y = conv_of(&b, x, s, act ? act : residual ? "Relu" : NULL, z);
    if (around) y = conv(&b, y, s->m, s->m, 1, 1, 0, 1, NULL, -1);
    il_graph_add_output(b.g, y);
    return b.g;
}

/* The plan of g by the heuristic with only(name) (set by the callers), checked against the
 * reference; how many nodes the kernel got (want) and the native values. */
static void check(const char *name, const shape *s, const char *act, int residual, int around, int threads) {
    il_graph *g = graph(s, act, residual, around);
    il_plan_opts o = {.threads = threads};
    char what[200];
    snprintf(what, sizeof what, "%s: batch %lld, %lld -> %lld at %lld, %lldx%lld/%lld pad %lld, %s%s%s, %d thread(s)",
             name, (long long)s->batch, (long long)s->c, (long long)s->m, (long long)s->hw, (long long)s->k,
             (long long)s->k, (long long)s->stride, (long long)s->pad, act ? act : "no act", residual ? ", residual" : "",
             around ? ", native" : "", threads);
    il_plan *p = plan_checked(g, &o, s->batch, what);
    int found = 0, want = 1 + residual;
    for (int k = 0; k < g->n_nodes; k++) found += !strcmp(il_plan_kernel(p, k)->name, name);
    if (!strcmp(name, "gemm-rows")) want += 2 * around; /* the 1x1 neighbours too */
    CU_ASSERT_EQUAL(found, want);
    if (around) {
        const il_node *n = &g->nodes[1 + residual];
        expect_blocked(p, g, n->inputs[0], 1, what);
        expect_blocked(p, g, n->outputs[0], 1, what);
        if (residual) expect_blocked(p, g, n->inputs[3], 1, what);
    }
    il_plan_free(p);
    il_graph_free(g);
}

static void shapes_of(const char *name, const shape *shapes, int n) {
    only(name);
    for (int i = 0; i < n; i++)
        for (int t = 1; t <= 2; t++) {
            check(name, &shapes[i], NULL, 0, 0, t);
            check(name, &shapes[i], "Relu", 0, 0, t);
        }
    defaults();
}

static void epilogues_of(const char *name, const shape *s1, const shape *s3) {
    static const char *acts[] = {"Relu", "Clip", "LeakyRelu", "Sigmoid"};
    only(name);
    for (int a = 0; a < 4; a++)
        for (int t = 1; t <= 2; t++) {
            check(name, s1, acts[a], 1, 0, t);
            check(name, s3, acts[a], a % 2, 1, t);
        }
    /* residual with native X, Z and Y (Y over Z where the plan allows), and no epilogue at all */
    for (int t = 1; t <= 2; t++) {
        check(name, s1, "Relu", 1, 1, t);
        check(name, s3, "Relu", 1, 1, t);
        check(name, s1, NULL, 0, 1, t);
    }
    defaults();
}

static void test_wino_shapes(void) {
    /* tiles: 7 -> 16 (two full blocks), 9 pad 0 -> 7x7 out, 11 pad 2 -> 13x13 (49: 7 blocks of
     * 7), 6 and 5 -> 9 (5 and 4), 12 -> 36 */
    static const shape shapes[] = {{1, 32, 32, 7, 3, 1, 1},  {3, 24, 40, 9, 3, 1, 0}, {1, 16, 64, 11, 3, 1, 2},
                                   {3, 40, 24, 6, 3, 1, 1},  {1, 19, 33, 5, 3, 1, 1}, {1, 16, 32, 12, 3, 1, 1}};
    if (have("wino-f23")) shapes_of("wino-f23", shapes, 6);
}

/* Several images a thread multiplied together (wino_conv.c's groups): batch 3 and 8 on one and two
 * threads, tiles that fill 8-row blocks over images or leave some over (9 a 5x5 image: 72 over
 * 8, 27 over 3), the group as large as the thread's share, and groups of 3 (V capped at 3
 * images' worth: 8 images = 3 + 3 + 2, two threads 3 + 1 each). */
static void test_wino_groups(void) {
    static const shape shapes[] = {{8, 32, 40, 7, 3, 1, 1}, {3, 24, 33, 5, 3, 1, 1}, {8, 19, 32, 6, 3, 1, 0}};
    if (!have("wino-f23")) return;
    for (int capped = 0; capped < 2; capped++) {
        for (int i = 0; i < 3; i++) {
            /* 16 points x tiles x channels to 16, 3 images' worth in KB, rounded up */
            int64_t tiles = (shapes[i].hw + 2 * shapes[i].pad - 2 + 1) / 2, cp = (shapes[i].c + 15) / 16 * 16;
            char kb[32];
            snprintf(kb, sizeof kb, "%lld", (long long)((3 * 16 * tiles * tiles * cp * 4 + 1023) / 1024));
            if (capped) setenv("INFERLAB_WINO_GROUP_KB", kb, 1);
            shapes_of("wino-f23", &shapes[i], 1);
            only("wino-f23");
            for (int t = 1; t <= 2; t++) {
                check("wino-f23", &shapes[i], "LeakyRelu", 1, 1, t);
                check("wino-f23", &shapes[i], "Clip", 1, 0, t);
            }
            defaults();
            unsetenv("INFERLAB_WINO_GROUP_KB");
        }
    }
}

static void test_rows_shapes(void) {
    /* pixels 49 (7 blocks of 7), 16, 64 (8 of 8), 9, 100 (13 blocks: 8s and 7s) */
    static const shape shapes[] = {{1, 32, 64, 14, 3, 2, 1}, {3, 24, 40, 7, 3, 1, 0},  {1, 48, 32, 8, 1, 1, 0},
                                   {3, 19, 33, 5, 3, 2, 2},  {1, 16, 48, 10, 3, 1, 1}, {1, 40, 72, 14, 1, 2, 0}};
    if (have("gemm-rows")) shapes_of("gemm-rows", shapes, 6);
}

static void test_wino_epilogues(void) {
    static const shape s1 = {1, 48, 48, 7, 3, 1, 1}, s3 = {3, 32, 48, 10, 3, 1, 1};
    if (have("wino-f23")) epilogues_of("wino-f23", &s1, &s3);
}

static void test_rows_epilogues(void) {
    static const shape s1 = {1, 48, 48, 14, 3, 2, 1}, s3 = {3, 32, 48, 7, 1, 1, 0};
    if (have("gemm-rows")) epilogues_of("gemm-rows", &s1, &s3);
}

/* A one-node graph: FusedConv with Relu of x [batch, c, hw, hw] by a k x k weight, stride s,
 * group grp, dilation dil. */
static il_graph *one_conv(int64_t batch, int64_t c, int64_t m, int64_t hw, int64_t k, int64_t s, int64_t grp,
                          int64_t dil) {
    chain b = chain_new(2, batch, c, hw);
    int y = conv(&b, 0, c, m, k, s, k / 2 * dil, grp, "Relu", -1);
    il_node_set_ints(b.g, 0, "dilations", 2, (int64_t[]){dil, dil});
    il_graph_add_output(b.g, y);
    return b.g;
}

/* Forced onto a shape it declines the plan is refused; the heuristic takes another kernel. */
static void declines(const char *name, il_graph *g) {
    char force[64];
    snprintf(force, sizeof force, "FusedConv=%s", name);
    il_plan_opts o = {.threads = 1, .kernels = force};
    il_plan *p = NULL;
    CU_ASSERT_NOT_EQUAL(il_plan_create(g, &o, &p), IL_OK);
    CU_ASSERT_PTR_NULL(p);
    il_error_clear();
    o.kernels = NULL;
    p = plan_checked(g, &o, 1, "declined shape");
    CU_ASSERT_STRING_NOT_EQUAL(il_plan_kernel(p, 0)->name, name);
    il_plan_free(p);
    il_graph_free(g);
}

static void test_declines(void) {
    if (!have("wino-f23") || !have("gemm-rows")) return;
    only("wino-f23");
    declines("wino-f23", one_conv(1, 32, 32, 8, 3, 2, 1, 1)); /* stride 2 */
    declines("wino-f23", one_conv(1, 32, 32, 8, 3, 1, 2, 1)); /* two groups */
    declines("wino-f23", one_conv(1, 32, 32, 8, 5, 1, 1, 1)); /* 5x5 */
    declines("wino-f23", one_conv(1, 32, 32, 8, 3, 1, 1, 2)); /* dilated */
    only("gemm-rows");
    declines("gemm-rows", one_conv(1, 32, 32, 8, 3, 1, 2, 1)); /* two groups */
    /* a dilated 3x3 it computes */
    il_graph *g = one_conv(1, 32, 40, 9, 3, 1, 1, 2);
    il_plan_opts o = {.threads = 2};
    il_plan *p = plan_checked(g, &o, 1, "gemm-rows dilated");
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, 0)->name, "gemm-rows");
    il_plan_free(p);
    il_graph_free(g);
    defaults();
}

/* The heuristic's choice without the environment: Winograd for wide 3x3 stride-1 convolutions on
 * small planes (7x7 only at one image a thread), gemm-rows for those of 4 MB or more of weight into
 * at most 64 pixels at one image a thread; neither for narrow ones, nor with their variables at 0,
 * nor (by default) with an activation that has no vector form. */
static void test_heuristic(void) {
    if (!have("wino-f23") || !have("gemm-rows")) return;
    static const struct {
        int64_t batch, c, hw, k, s;
        int threads;
        const char *env, *want;
    } cases[] = {
        {1, 256, 7, 3, 1, 1, NULL, "wino-f23"},   {2, 256, 7, 3, 1, 2, NULL, "wino-f23"},
        {2, 256, 14, 3, 1, 1, NULL, "wino-f23"},  {1, 384, 14, 3, 2, 1, NULL, "gemm-rows"},
        {1, 1024, 7, 1, 1, 2, NULL, "gemm-rows"}, {2, 256, 7, 3, 1, 1, NULL, NULL},
        {1, 128, 7, 1, 1, 1, NULL, NULL},         {1, 384, 28, 3, 2, 1, NULL, NULL},
        {1, 640, 7, 1, 1, 1, NULL, NULL}, /* a weight under 4 MB */
        {1, 384, 7, 3, 1, 1, "INFERLAB_WINO_F23", "gemm-rows"}, {1, 384, 14, 3, 2, 1, "INFERLAB_GEMM_ROWS", NULL},
        {1, 256, 7, 3, 1, 1, "sigmoid", NULL},    {1, 1024, 7, 1, 1, 1, "sigmoid", NULL},
    };
    for (int i = 0; i < 13; i++) {
        int sigmoid = cases[i].env && !strcmp(cases[i].env, "sigmoid"); /* no vector form: left to oneDNN */
        if (cases[i].env && !sigmoid) setenv(cases[i].env, "0", 1);
        il_graph *g = one_conv(cases[i].batch, cases[i].c, cases[i].c, cases[i].hw, cases[i].k, cases[i].s, 1, 1);
        if (sigmoid) il_node_set_string(g, 0, "activation", "Sigmoid");
        il_plan_opts o = {.threads = cases[i].threads};
        il_plan *p = plan_checked(g, &o, cases[i].batch, "heuristic");
        const char *got = il_plan_kernel(p, 0)->name;
        int ok = cases[i].want ? !strcmp(got, cases[i].want) : strcmp(got, "wino-f23") && strcmp(got, "gemm-rows");
        if (!ok) fprintf(stderr, "\n  case %d: kernel %s\n", i, got);
        CU_ASSERT_TRUE(ok);
        il_plan_free(p);
        il_graph_free(g);
        defaults();
    }
}

static void test_plan_files(void) {
    if (!have("wino-f23") || !have("gemm-rows")) return;
    il_graph *g = one_conv(1, 256, 256, 7, 3, 1, 1, 1), *r = one_conv(1, 384, 384, 14, 3, 2, 1, 1);
    plan_file_round_trip(g, 1, 1, "wino.plan", "wino-f23 plan file");
    plan_file_round_trip(g, 2, 1, "wino2.plan", "wino-f23 plan file, two threads");
    plan_file_round_trip(r, 1, 1, "rows.plan", "gemm-rows plan file");
    plan_file_round_trip(r, 2, 1, "rows2.plan", "gemm-rows plan file, two threads");
    il_graph_free(g);
    il_graph_free(r);
}

IL_SUITE("small-conv", {"wino-f23: shapes, tiles, pads, channels", test_wino_shapes},
         {"wino-f23: several images a thread together", test_wino_groups},
         {"wino-f23: epilogues and layouts", test_wino_epilogues},
         {"gemm-rows: shapes, strides, pads, channels", test_rows_shapes},
         {"gemm-rows: epilogues and layouts", test_rows_epilogues}, {"what they decline", test_declines},
         {"the heuristic's choice", test_heuristic}, {"plan files", test_plan_files})
