/*
 * test_conv_pool.c - ai.inferlab ConvPool (a convolution whose output only a max pool reads, pass
 * fuse-conv-pool, engine/cpu/conv_pool.c): the oneDNN kernel against the reference kernels on fresh
 * random inputs within 1e-4 + 1e-4 |want| (tests/layout_chain.h) over stems of odd sizes, ceil_mode,
 * overlapping and dilated pool windows, pools whose windows skip convolution rows, no bias, three
 * activations, P plain and channels-last, bands of one pool row (every band keeping and shifting
 * rows) and of the default size, batch 1 and 3, 1 and 2 threads; the fused graph computing what
 * the unfused one does; what the pass and the kernel decline; the plan file; the split for an
 * accelerator without the kernel and lower-fused, both writing FusedConv/Conv and MaxPool back.
 */
#include "../engine/plan_int.h"
#include "layout_chain.h"
#include "pass_test.h"

typedef struct {
    int64_t c, m, k, s, p, hw; /* the convolution: channels in and out, kernel, stride, pad; image size */
    const char *act;
    int64_t pk, ps, pp, pd; /* the pool: kernel, stride, pad, dilation */
    int ceil, bias;
} cp_case;

static const cp_case cases[] = {
    {3, 16, 7, 2, 3, 37, "Relu", 3, 2, 1, 1, 0, 1},  /* ResNet's stem, odd size */
    {3, 64, 7, 2, 3, 40, "Relu", 3, 2, 1, 1, 0, 1},  /* the stem's channels */
    {8, 24, 3, 1, 1, 15, NULL, 2, 2, 0, 1, 1, 1},    /* ceil_mode: a last window hanging over */
    {5, 16, 3, 2, 1, 20, "Clip", 3, 1, 1, 1, 0, 0},  /* stride 1: windows share two rows; no bias */
    {4, 8, 5, 1, 2, 23, "Relu", 3, 2, 0, 2, 0, 1},   /* dilated pool windows */
    {6, 16, 3, 1, 1, 17, "Relu", 1, 3, 0, 1, 0, 1},  /* 1x1 windows 3 apart: rows no window reads */
};

/* x -> conv (a Conv or FusedConv) -> MaxPool [-> a 3x3 conv, so P is held channels-last]. */
static il_graph *stem(const cp_case *t, int64_t batch, int then_conv) {
    chain b = chain_new(2, batch, t->c, t->hw);
    int y = conv(&b, b.g->inputs[0], t->c, t->m, t->k, t->s, t->p, 1, t->act, -1);
    if (!t->bias) b.g->nodes[b.g->n_nodes - 1].n_inputs = 2;
    int p = pool(&b, "MaxPool", y, t->pk, t->ps, t->pp, t->ceil);
    if (t->pd > 1) il_node_set_ints(b.g, b.g->n_nodes - 1, "dilations", 2, DIMS(t->pd, t->pd));
    il_graph_add_output(b.g, then_conv ? conv(&b, p, t->m, 8, 3, 1, 1, 1, "Relu", -1) : p);
    return b.g;
}

/* The pass on g: apply()'s checks (equal outputs, idempotence) where it fuses, want nodes fused
 * (none in a build without oneDNN: the pass needs the kernel). */
static void fuse(il_graph *g, int want) {
    il_pass_stats st;
    int have = il_kernel_find("ai.inferlab", "ConvPool", "cpu", "dnnl") != NULL;
    if (want && have) st = apply(g, "fuse-conv-pool");
    else IL_ASSERT_OK(il_pass_run(g, "fuse-conv-pool", &st));
    CU_ASSERT_EQUAL(il_pass_changes(&st), have ? want : 0);
    CU_ASSERT_EQUAL(count(g, "ConvPool"), have ? want : 0);
}

/* The kernel against the reference; the fused graph against the unfused one. */
static void test_conv_pool_kernel(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int then_conv = 0; then_conv < 2; then_conv++)
            for (int tiny = 0; tiny < 2; tiny++)
                for (int64_t batch = 1; batch <= 3; batch += 2)
                    for (int threads = 1; threads <= 2; threads++) {
                        il_graph *g = stem(&cases[i], batch, then_conv), *orig = il_graph_clone(g);
                        fuse(g, 1);
                        if (batch == 1 && threads == 1 && !tiny) IL_ASSERT_OK(il_graph_equivalent(orig, g, NULL, &rng));
                        if (tiny) setenv("INFERLAB_CONVPOOL_BAND_KB", "1", 1); /* read at prepare */
                        char what[160];
                        snprintf(what, sizeof what, "ConvPool case %zu%s%s, batch %lld, %d threads", i,
                                 then_conv ? ", P channels-last" : ", P plain", tiny ? ", bands of one row" : "",
                                 (long long)batch, threads);
                        il_plan *p = plan_checked(g, &(il_plan_opts){.threads = threads}, batch, what);
                        unsetenv("INFERLAB_CONVPOOL_BAND_KB");
                        for (int k = 0; k < g->n_nodes; k++)
                            if (!g->nodes[k].dead && !strcmp(g->nodes[k].op_type, "ConvPool")) {
                                CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, k)->name, "dnnl");
                                expect_blocked(p, g, g->nodes[k].outputs[0], then_conv, what);
                            }
                        il_plan_free(p);
                        il_graph_free(orig);
                        il_graph_free(g);
                    }
}

/* What the pass leaves alone: a convolution read by something else too, a pool whose Indices are
 * read, a grouped convolution, one with a residual, a pool with auto_pad, a 1-D convolution, a
 * weight that is an input; and a ConvPool the kernel declines (two groups, made by hand) runs on
 * the reference and still computes what Conv and MaxPool do. */
static void test_conv_pool_declines(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 4, DIMS(1, 4, 9, 9));
    int y1 = OP(g, "Conv", x, W(g, 4, DIMS(4, 4, 3, 3), -1, 1));
    il_node_set_ints(g, last_node, "pads", 4, DIMS(1, 1, 1, 1));
    OUT(g, OP(g, "MaxPool", y1));
    il_node_set_ints(g, last_node, "kernel_shape", 2, DIMS(2, 2));
    OUT(g, OP(g, "Relu", y1)); /* a second reader */
    int y2 = OP(g, "Conv", x, W(g, 4, DIMS(4, 4, 3, 3), -1, 1));
    int pool2 = last_node + 1;
    OP(g, "MaxPool", y2);
    int idx = il_graph_value(g, "indices");
    g->nodes[pool2].outputs = realloc(g->nodes[pool2].outputs, 2 * sizeof(int));
    g->nodes[pool2].outputs[1] = idx;
    g->nodes[pool2].n_outputs = 2;
    g->values[idx].producer = pool2;
    il_node_set_ints(g, pool2, "kernel_shape", 2, DIMS(2, 2));
    OUT(g, g->nodes[pool2].outputs[0]);
    OUT(g, idx);
    int y3 = OP(g, "Conv", x, W(g, 4, DIMS(4, 2, 3, 3), -1, 1));
    il_node_set_int(g, last_node, "group", 2);
    OUT(g, OP(g, "MaxPool", y3));
    il_node_set_ints(g, last_node, "kernel_shape", 2, DIMS(2, 2));
    int y4 = OP(g, "Conv", x, W(g, 4, DIMS(4, 4, 1, 1), -1, 1));
    OUT(g, OP(g, "MaxPool", y4));
    il_node_set_ints(g, last_node, "kernel_shape", 2, DIMS(3, 3));
    il_node_set_string(g, last_node, "auto_pad", "SAME_UPPER");
    int w5 = IN(g, "w5", 4, DIMS(4, 4, 1, 1));
    OUT(g, OP(g, "MaxPool", OP(g, "Conv", x, w5)));
    il_node_set_ints(g, last_node, "kernel_shape", 2, DIMS(2, 2));
    int x1 = IN(g, "x1", 3, DIMS(1, 4, 9));
    OUT(g, OP(g, "MaxPool", OP(g, "Conv", x1, W(g, 3, DIMS(4, 4, 3), -1, 1))));
    il_node_set_ints(g, last_node, "kernel_shape", 1, DIMS(2));
    fuse(g, 0);
    il_graph_free(g);

    /* a residual FusedConv (fuse-residual's) */
    chain b = chain_new(2, 1, 8, 9);
    int a = conv(&b, b.g->inputs[0], 8, 8, 3, 1, 1, 1, "Relu", -1);
    int r = conv(&b, a, 8, 8, 3, 1, 1, 1, "Relu", a);
    il_graph_add_output(b.g, pool(&b, "MaxPool", r, 2, 2, 0, 0));
    fuse(b.g, 0);
    il_graph_free(b.g);

    /* two groups: the pass declines it, so made by hand; the kernel declines it too */
    chain h = chain_new(2, 3, 8, 11);
    int y = conv(&h, h.g->inputs[0], 8, 8, 3, 2, 1, 2, "Relu", -1);
    il_graph_add_output(h.g, pool(&h, "MaxPool", y, 3, 2, 1, 0));
    il_graph *orig = il_graph_clone(h.g);
    int kc = h.g->values[y].producer, kp = h.g->n_nodes - 1;
    il_node *n = &h.g->nodes[kc];
    free(n->op_type), free(n->domain);
    n->op_type = strdup("ConvPool");
    n->domain = strdup("ai.inferlab");
    n->outputs[0] = h.g->nodes[kp].outputs[0];
    h.g->values[n->outputs[0]].producer = kc;
    il_node_set_ints(h.g, kc, "pool_kernel_shape", 2, DIMS(3, 3));
    il_node_set_ints(h.g, kc, "pool_strides", 2, DIMS(2, 2));
    il_node_set_ints(h.g, kc, "pool_pads", 4, DIMS(1, 1, 1, 1));
    il_graph_remove_node(h.g, kp);
    il_graph_compact(h.g);
    IL_ASSERT_OK(il_graph_verify(h.g));
    IL_ASSERT_OK(il_graph_equivalent(orig, h.g, NULL, &rng));
    il_plan *p = plan_checked(h.g, &(il_plan_opts){.threads = 2}, 3, "ConvPool of two groups");
    for (int k = 0; k < h.g->n_nodes; k++)
        if (!strcmp(h.g->nodes[k].op_type, "ConvPool")) CU_ASSERT_STRING_NOT_EQUAL(il_plan_kernel(p, k)->name, "dnnl");
    il_plan_free(p);
    il_graph_free(orig);
    il_graph_free(h.g);
}

/* A plan holding a ConvPool (2 threads' parts, batch 3) saved and loaded computes the same bit for bit. */
static void test_conv_pool_plan_file(void) {
    il_graph *g = stem(&cases[0], 3, 1);
    fuse(g, 1);
    plan_file_round_trip(g, 2, 3, "convpool.plan", "ConvPool, plan file");
    il_graph_free(g);
}

/* A plan for an accelerator without the kernel splits each ConvPool into FusedConv and MaxPool on
 * its own copy, and lower-fused writes Conv, Relu and MaxPool: both verify and compute what the
 * fused graph does; the cpu keeps it. Needs no GPU. */
static void test_conv_pool_split_lower(void) {
    for (int i = 0; i < 3; i++) {
        il_graph *g = stem(&cases[i], 2, 1);
        fuse(g, 1);
        if (!count(g, "ConvPool")) {
            il_graph_free(g);
            return;
        }
        il_graph *c = il_graph_clone(g), *l = il_graph_clone(g);
        CU_ASSERT_EQUAL(il_plan_split_convpool(&(il_backend_iface){.name = "cuda"}, c), 1);
        IL_ASSERT_OK(il_graph_verify(c));
        IL_ASSERT_OK(il_graph_equivalent(g, c, NULL, &rng));
        CU_ASSERT_EQUAL(count(c, "ConvPool"), 0);
        CU_ASSERT_EQUAL(count(c, "MaxPool"), 1);
        CU_ASSERT_EQUAL(il_plan_split_convpool(&(il_backend_iface){.name = "cpu"}, g), 0);
        il_pass_stats ls = apply(l, IL_PASS_LOWER);
        CU_ASSERT_EQUAL(il_pass_changes(&ls), 2); /* the ConvPool and the FusedConv after it */
        CU_ASSERT_EQUAL(count(l, "ConvPool"), 0);
        CU_ASSERT_EQUAL(count(l, "MaxPool"), 1);
        IL_ASSERT_OK(il_graph_verify(l));
        IL_ASSERT_OK(il_graph_equivalent(g, l, NULL, &rng));
        il_graph_free(c);
        il_graph_free(l);
        il_graph_free(g);
    }
}

IL_SUITE("conv-pool", {"ConvPool kernel", test_conv_pool_kernel}, {"what it declines", test_conv_pool_declines},
         {"ConvPool in a plan file", test_conv_pool_plan_file},
         {"split for an accelerator, lower-fused", test_conv_pool_split_lower})
