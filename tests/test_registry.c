/*
 * test_registry.c - the kernel registry and the choice of kernels (engine/kernels.c,
 * engine/tactics.c), in the style of ggml's test-backend-ops:
 *  - every registered cpu kernel was compared with its op's reference kernel by some case of the
 *    op suites (tests/op_harness.c runs every kernel that takes a node against "ref"); a kernel
 *    no case covers fails here. The suite is named to sort last so that it runs after them;
 *  - the registry's API: lookups, refusals of duplicates and of kernels for unknown ops;
 *  - forced kernels (--kernel), the heuristic and the timed tactic with its cache file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../passes/passes.h"
#include "op_harness.h"

extern int il_test_all_suites;

static void test_every_kernel_covered(void) {
    if (!il_test_all_suites) {
        printf("skipped: run every suite to check coverage ");
        return;
    }
    int n, missing = 0;
    const il_kernel *const *all = il_kernel_all(&n);
    for (int i = 0; i < n; i++) {
        const il_kernel *k = all[i];
        if (!strcmp(k->name, "ref") || strcmp(k->backend, "cpu") || k->role != IL_KERNEL_FORWARD) continue;
        if (!op_is_covered(k)) {
            fprintf(stderr, "\n  kernel %s%s%s/%s on %s: no test case compares it with the reference", k->domain,
                    *k->domain ? ":" : "", k->op, k->name, k->backend);
            missing++;
        }
    }
    CU_ASSERT_EQUAL(missing, 0);
}

static il_status dummy_run(il_kctx *c) { return IL_OK; }

static void test_registry_api(void) {
    const il_kernel *ks[16];
    int n = il_kernels_of("", "Relu", "cpu", 14, ks, 16);
    CU_ASSERT(n >= 1);
    CU_ASSERT_STRING_EQUAL(ks[0]->name, "ref");
    CU_ASSERT_PTR_NOT_NULL(il_kernel_find("ai.inferlab", "FusedConv", "cpu", "im2col-blas"));
    CU_ASSERT_PTR_NULL(il_kernel_find("ai.inferlab", "FusedConv", "cpu", "nope"));
    CU_ASSERT_PTR_NULL(il_kernel_find("", "Relu", "cuda", "ref"));
    /* "" and "ai.onnx" are one domain */
    CU_ASSERT_PTR_NOT_NULL(il_kernel_find("ai.onnx", "Conv", "cpu", "ref"));
    static const il_kernel dup = {.op = "Relu", .backend = "cpu", .name = "ref", .run = dummy_run};
    CU_ASSERT_EQUAL(il_kernel_register(&dup), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "already registered"));
    static const il_kernel unknown = {.op = "NoSuchOp", .backend = "cpu", .name = "x", .run = dummy_run};
    CU_ASSERT_EQUAL(il_kernel_register(&unknown), IL_ERR_INVALID);
    static const il_kernel norun = {.op = "Relu", .backend = "cpu", .name = "x"};
    CU_ASSERT_EQUAL(il_kernel_register(&norun), IL_ERR_INVALID);
    /* a new kernel registers once, is listed and found; registering the same struct again is fine */
    static const il_kernel extra = {.op = "Relu", .backend = "cpu", .name = "test-extra", .priority = -5,
                                    .dtypes = IL_DT(IL_F32), .run = dummy_run};
    IL_ASSERT_OK(il_kernel_register(&extra));
    IL_ASSERT_OK(il_kernel_register(&extra));
    CU_ASSERT_PTR_EQUAL(il_kernel_find("", "Relu", "cpu", "test-extra"), &extra);
    op_covered(&extra); /* it computes nothing: kept out of the coverage check on purpose */
    CU_ASSERT_EQUAL(il_kernel_spec_check("Relu=test-extra,*=ref"), IL_OK);
    CU_ASSERT_EQUAL(il_kernel_spec_check("Relu=nope"), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "Relu=nope"));
    CU_ASSERT_EQUAL(il_kernel_spec_check("NoSuchOp=ref"), IL_ERR_INVALID);
    CU_ASSERT_EQUAL(il_kernel_spec_check("Relu"), IL_ERR_INVALID);
}

/* x -> FusedConv(3x3, relu) -> FusedConv(1x1) -> y, weights constant. */
static il_graph *two_convs(int64_t batch) {
    uint64_t rng = 7;
    il_graph *g = il_graph_new("two_convs");
    il_graph_set_opset(g, "", 17);
    il_graph_set_opset(g, "ai.inferlab", 1);
    int x = il_graph_value(g, "x");
    int64_t xd[4] = {batch, 8, 12, 12}, w1d[4] = {16, 8, 3, 3}, w2d[4] = {4, 16, 1, 1}, b1d[1] = {16};
    g->values[x].dtype = IL_F32;
    g->values[x].rank = 4;
    memcpy(g->values[x].dims, xd, sizeof xd);
    il_graph_add_input(g, x);
    il_tensor *w1 = il_tensor_new(IL_F32, 4, w1d), *w2 = il_tensor_new(IL_F32, 4, w2d), *b1 = il_tensor_new(IL_F32, 1, b1d);
    il_tensor_fill_random(w1, &rng, -1, 1);
    il_tensor_fill_random(w2, &rng, -1, 1);
    il_tensor_fill_random(b1, &rng, -1, 1);
    int in1[3] = {x, il_graph_add_constant(g, "w1", w1), il_graph_add_constant(g, "b1", b1)};
    int h = il_graph_value(g, "h"), y = il_graph_value(g, "y");
    int k1 = il_graph_add_node(g, "FusedConv", "ai.inferlab", "conv1", 3, in1, 1, &h);
    int64_t pads[4] = {1, 1, 1, 1};
    il_node_set_ints(g, k1, "pads", 4, pads);
    il_node_set_string(g, k1, "activation", "Relu");
    int in2[2] = {h, il_graph_add_constant(g, "w2", w2)};
    il_graph_add_node(g, "FusedConv", "ai.inferlab", "conv2", 2, in2, 1, &y);
    il_graph_add_output(g, y);
    return g;
}

static il_tensor *run_with(const il_graph *g, il_tensor *x, const il_plan_opts *o, il_plan **keep) {
    il_plan *p;
    il_status st = il_plan_create(g, o, &p);
    if (st) fprintf(stderr, "\n  plan: %s\n", il_errmsg());
    CU_ASSERT_EQUAL_FATAL(st, IL_OK);
    IL_ASSERT_OK(il_plan_run(p, &x, 1));
    il_tensor *y = il_tensor_clone(il_plan_output(p, 0));
    if (keep) *keep = p;
    else il_plan_free(p);
    return y;
}

static void test_forced_kernels(void) {
    il_graph *g = two_convs(2);
    uint64_t rng = 3;
    int64_t xd[4] = {2, 8, 12, 12};
    il_tensor *x = il_tensor_new(IL_F32, 4, xd);
    il_tensor_fill_random(x, &rng, -2, 2);
    il_plan *p;
    il_plan_opts heur = {.threads = 2};
    il_tensor *y_fast = run_with(g, x, &heur, &p);
#ifdef IL_HAVE_DNNL
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, 0)->name, "dnnl"); /* priority 20 (engine/cpu/dnnl_conv.c) */
#else
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, 0)->name, "im2col-blas");
#endif
    il_plan_free(p);
    il_plan_opts forced = {.threads = 2, .kernels = "FusedConv=ref"};
    il_tensor *y_ref = run_with(g, x, &forced, &p);
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, 0)->name, "ref");
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, 1)->name, "ref");
    il_plan_free(p);
    int64_t worst;
    char msg[256];
    CU_ASSERT(il_tensor_allclose(y_fast, y_ref, 1e-4, 1e-4, &worst, msg, sizeof msg));
    /* a forced kernel that does not exist is an error naming the node */
    il_plan_opts bad = {.threads = 1, .kernels = "FusedConv=nope"};
    CU_ASSERT_EQUAL(il_plan_create(g, &bad, &p), IL_ERR_INVALID);
    il_plan_opts star = {.threads = 1, .kernels = "*=im2col-blas"};
    il_tensor *y_star = run_with(g, x, &star, NULL);
    CU_ASSERT(il_tensor_allclose(y_star, y_ref, 1e-4, 1e-4, &worst, msg, sizeof msg));
    il_tensor_free(y_fast), il_tensor_free(y_ref), il_tensor_free(y_star), il_tensor_free(x);
    il_graph_free(g);
}

/* Timed tactics: the first build times the nodes with two candidates and writes the cache; the
 * second reads every choice from it; a cache written for another CPU is ignored. */
static void test_timing_cache(void) {
    il_graph *g = two_convs(1);
    const char *cache = il_test_tmp("timing.cache");
    remove(cache);
    il_plan_opts o = {.threads = 1, .tactics = IL_TACTICS_TIMED, .timing_cache = cache};
    il_plan *p;
    int timed, cached;
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    il_plan_tactic_stats(p, &timed, &cached);
    CU_ASSERT_EQUAL(timed, 2);
    CU_ASSERT_EQUAL(cached, 0);
    const char *k0 = il_plan_kernel(p, 0)->name;
    CU_ASSERT_PTR_EQUAL(il_kernel_find("ai.inferlab", "FusedConv", "cpu", k0), il_plan_kernel(p, 0)); /* one of its kernels */
    il_plan_free(p);
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    il_plan_tactic_stats(p, &timed, &cached);
    CU_ASSERT_EQUAL(timed, 0);
    CU_ASSERT_EQUAL(cached, 2);
    il_plan_free(p);
    /* the same cache under another CPU's header */
    FILE *f = fopen(cache, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char buf[8192];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *body = strchr(buf, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    f = fopen(cache, "w");
    fprintf(f, "inferlab-timing-cache 1 cpu:Some Other CPU|avx2,%s", body);
    fclose(f);
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    il_plan_tactic_stats(p, &timed, &cached);
    CU_ASSERT_EQUAL(timed, 2);
    CU_ASSERT_EQUAL(cached, 0);
    il_plan_free(p);
    /* heuristic builds time nothing */
    il_plan_opts h = {.threads = 1, .timing_cache = cache};
    IL_ASSERT_OK(il_plan_create(g, &h, &p));
    il_plan_tactic_stats(p, &timed, &cached);
    CU_ASSERT_EQUAL(timed + cached, 0);
    il_plan_free(p);
    il_graph_free(g);
}

/* float16 through computing ops: the plan's graph gets explicit Casts (x and the constant to
 * float32 once each, the result back), the executor converts nothing, and the result is the
 * float32 computation rounded to float16. */
static void test_explicit_casts(void) {
    il_graph *g = il_graph_new("half");
    il_graph_set_opset(g, "", 17);
    int64_t d[1] = {5};
    int x = il_graph_value(g, "x");
    g->values[x].dtype = IL_F16;
    g->values[x].rank = 1;
    g->values[x].dims[0] = 5;
    il_graph_add_input(g, x);
    il_tensor *c = il_tensor_new(IL_F16, 1, d);
    for (int i = 0; i < 5; i++) ((uint16_t *)c->data)[i] = il_f32_to_f16(0.25f * (float)i);
    int cv = il_graph_add_constant(g, "c", c), r = il_graph_value(g, "r"), y = il_graph_value(g, "y");
    il_graph_add_node(g, "Relu", "", "relu", 1, &x, 1, &r);
    int add[2] = {r, cv};
    il_graph_add_node(g, "Add", "", "add", 2, add, 1, &y);
    il_graph_add_output(g, y);
    il_tensor *in = il_tensor_new(IL_F16, 1, d);
    float xv[5] = {-1.5f, 0.1f, 2.0f, -0.0f, 3.3f};
    for (int i = 0; i < 5; i++) ((uint16_t *)in->data)[i] = il_f32_to_f16(xv[i]);
    il_plan *p;
    il_plan_opts o = {.threads = 1};
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    const il_graph *pg = il_plan_graph(p);
    int casts = 0;
    for (int k = 0; k < pg->n_nodes; k++) casts += !pg->nodes[k].dead && !strcmp(pg->nodes[k].op_type, "Cast");
    CU_ASSERT_EQUAL(casts, 3);
    CU_ASSERT_EQUAL(g->n_nodes, 2); /* the caller's graph is not touched */
    IL_ASSERT_OK(il_plan_run(p, &in, 1));
    const il_tensor *out = il_plan_output(p, 0);
    CU_ASSERT_EQUAL(out->dtype, IL_F16);
    for (int i = 0; i < 5; i++) {
        float xi = il_f16_to_f32(il_f32_to_f16(xv[i]));
        float want = (xi > 0 ? xi : 0) + 0.25f * (float)i;
        CU_ASSERT_EQUAL(((uint16_t *)out->data)[i], il_f32_to_f16(want));
    }
    il_plan_free(p);
    il_tensor_free(in);
    il_graph_free(g);
}

/* The example kernel plugin (passes/examples/student_leakyrelu.c, the walk-through of
 * docs/architecture.md): loaded, listed, compared with the reference by the op harness, forced
 * by name in a plan, and refused by name before it is loaded. */
static void test_plugin_kernel(void) {
    static int loaded;
    if (!loaded) {
        CU_ASSERT_EQUAL(il_kernel_spec_check("LeakyRelu=student"), IL_ERR_INVALID);
        IL_ASSERT_OK(il_pass_load_plugin(il_test_plugin("student_leakyrelu")));
        loaded = 1;
    }
    const il_kernel *k = il_kernel_find("", "LeakyRelu", "cpu", "student");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_PTR_NOT_NULL(k->prepare);
    /* the harness runs it against the reference (and marks it covered) */
    static const int64_t shapes[][2] = {{7, 13}, {1, 1000}, {0, 3}};
    for (int s = 0; s < 3; s++) {
        op_case *o = op_new("LeakyRelu", 16, 1, 1);
        SETF(o, "alpha", 0.3f);
        op_in(o, 0, rnd(IL_F32, 2, shapes[s], -3, 3));
        o->threads = 3;
        IL_ASSERT_OK(op_run(o));
        op_free(o);
    }
    CU_ASSERT_TRUE(op_is_covered(k));
    /* forced in a plan: the node runs it */
    il_graph *g = il_graph_new("leaky");
    il_graph_set_opset(g, "", 16);
    int x = il_graph_value(g, "x"), y = il_graph_value(g, "y");
    g->values[x].dtype = IL_F32;
    g->values[x].rank = 1;
    g->values[x].dims[0] = 4;
    il_graph_add_input(g, x);
    int n = il_graph_add_node(g, "LeakyRelu", "", "leaky", 1, &x, 1, &y);
    il_node_set_float(g, n, "alpha", 0.5f);
    il_graph_add_output(g, y);
    il_plan_opts o = {.threads = 1, .kernels = "LeakyRelu=student"};
    il_plan *p;
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    CU_ASSERT_PTR_EQUAL(il_plan_kernel(p, n), k);
    int64_t d[1] = {4};
    il_tensor *in = il_tensor_new(IL_F32, 1, d);
    float v[4] = {-2, -0.5f, 0, 3};
    memcpy(in->data, v, sizeof v);
    IL_ASSERT_OK(il_plan_run(p, &in, 1));
    const float *out = il_plan_output(p, 0)->data;
    CU_ASSERT(out[0] == -1.0f && out[1] == -0.25f && out[2] == 0.0f && out[3] == 3.0f);
    il_tensor_free(in);
    il_plan_free(p);
    il_graph_free(g);
}

IL_SUITE("zz-registry", {"float16 gets explicit Casts", test_explicit_casts}, {"a plugin's kernel", test_plugin_kernel}, {"every kernel is compared with the reference", test_every_kernel_covered},
         {"registry lookups and refusals", test_registry_api}, {"forced kernels", test_forced_kernels},
         {"timed tactics and the timing cache", test_timing_cache})
