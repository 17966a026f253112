/*
 * test_dnnl_layout.c - values a plan keeps in the channel-blocked layout between oneDNN kernels
 * (engine/plan_layout.c, engine/cpu/dnnl_layout.c), against the reference kernels on fresh
 * random inputs (op_rng(): seeded from the clock, the seed printed; IL_TEST_SEED repeats a run),
 * within |got - want| <= 1e-4 + 1e-4 |want| as the fused suite's oneDNN checks.
 *
 * The chains mix what the layout decision treats differently: channel counts that do not fill a
 * block (3, 17, 33), a value read both by a blocked kernel and a plain one (stays plain), a
 * residual input Z, depthwise and grouped convolutions, pools with padding and ceil_mode, the global pools ending a chain,
 * 1-D and 3-D, batch 1 and 3, 1 and 2 threads; then new input shapes (the layout is chosen again),
 * a plan file round trip, and forced kernels that take no blocked layout.
 */
#include "layout_chain.h"

/* ---------------------------------------------------------------- cases */

/* 2-D: 3 -> 17 -> 33 channels through convs, pools, a depthwise conv and a residual, with the
 * first conv's output also read by a plain Relu. */
typedef struct {
    il_graph *g;
    int a, b, c, d, e, f;
} chain2d;

static chain2d chain_2d(int64_t batch) {
    chain b = chain_new(2, batch, 3, 11);
    chain2d r;
    r.a = conv(&b, b.g->inputs[0], 3, 17, 3, 1, 1, 1, "Relu", -1);
    int mixed = unary(&b, "Relu", r.a); /* a plain kernel reads a too */
    r.b = conv(&b, r.a, 17, 33, 3, 2, 1, 1, "Relu", -1);
    r.c = pool(&b, "MaxPool", r.b, 3, 2, 1, 1);
    r.d = conv(&b, r.c, 33, 33, 3, 1, 1, 33, "Clip", -1);   /* depthwise */
    r.e = conv(&b, r.d, 33, 33, 1, 1, 0, 1, NULL, r.c);     /* 1x1 + residual */
    r.f = pool(&b, "AveragePool", r.e, 3, 1, 1, 0);
    int gap = pool(&b, "GlobalAveragePool", r.f, 0, 0, 0, 0);
    int gmp = pool(&b, "GlobalMaxPool", r.e, 0, 0, 0, 0);
    il_graph_add_output(b.g, gap);
    il_graph_add_output(b.g, gmp);
    il_graph_add_output(b.g, mixed);
    r.g = b.g;
    return r;
}

static void test_chain_2d(void) {
    for (int64_t batch = 1; batch <= 3; batch += 2)
        for (int threads = 1; threads <= 2; threads++) {
            chain2d r = chain_2d(batch);
            char what[64];
            snprintf(what, sizeof what, "2-D chain, batch %lld, %d threads", (long long)batch, threads);
            il_plan_opts o = {.threads = threads};
            il_plan *p = plan_checked(r.g, &o, batch, what);
            expect_blocked(p, r.g, r.a, 0, what); /* the plain Relu reads it */
            expect_blocked(p, r.g, r.b, 1, what);
            expect_blocked(p, r.g, r.c, 1, what); /* a conv's input and another's residual */
            expect_blocked(p, r.g, r.d, 1, what);
            expect_blocked(p, r.g, r.e, 1, what);
            expect_blocked(p, r.g, r.f, 1, what);
            for (int i = 0; i < r.g->n_inputs; i++) expect_blocked(p, r.g, r.g->inputs[i], 0, what);
            for (int i = 0; i < r.g->n_outputs; i++) expect_blocked(p, r.g, r.g->outputs[i], 0, what);
            /* a second run on new data through the same blocked buffers */
            il_tensor *x = random_input(r.g, batch);
            check_outputs(p, r.g, x, what);
            il_tensor_free(x);
            il_plan_free(p);
            il_graph_free(r.g);
        }
}

/* 1-D and 3-D chains: conv, conv with a residual, max pool, global average pool. */
static void test_chain_ranks(void) {
    for (int nsp = 1; nsp <= 3; nsp += 2)
        for (int64_t batch = 1; batch <= 3; batch += 2) {
            chain b = chain_new(nsp, batch, 3, nsp == 1 ? 19 : 7);
            int a = conv(&b, b.g->inputs[0], 3, 17, 3, 1, 1, 1, "Relu", -1);
            int c = conv(&b, a, 17, 17, 3, 1, 1, 1, "Relu", a);
            int d = pool(&b, "MaxPool", c, 2, 2, 0, 0);
            int e = conv(&b, d, 17, 33, 1, 1, 0, 1, "Sigmoid", -1);
            il_graph_add_output(b.g, pool(&b, "GlobalAveragePool", e, 0, 0, 0, 0));
            char what[64];
            snprintf(what, sizeof what, "%d-D chain, batch %lld", nsp, (long long)batch);
            il_plan_opts o = {.threads = 2};
            il_plan *p = plan_checked(b.g, &o, batch, what);
            expect_blocked(p, b.g, a, 1, what);
            expect_blocked(p, b.g, c, 1, what);
            expect_blocked(p, b.g, d, 1, what);
            expect_blocked(p, b.g, e, 1, what);
            il_plan_free(p);
            il_graph_free(b.g);
        }
}

/* Two groups of 17 channels: oneDNN's channels-last kernels take them, its nChw16c ones do not
 * (whole blocks per group only), so whether the grouped conv's values stay native depends on the
 * CPU's native layout; either way the outputs agree, and the chain after it is native. */
static void test_grouped(void) {
    chain b = chain_new(2, 3, 5, 9);
    int a = conv(&b, b.g->inputs[0], 5, 34, 3, 1, 1, 1, "Relu", -1);
    int c = conv(&b, a, 34, 34, 3, 1, 1, 2, "Relu", -1);
    int d = conv(&b, c, 34, 16, 3, 1, 1, 1, NULL, -1);
    int e = pool(&b, "MaxPool", d, 2, 2, 0, 0);
    il_graph_add_output(b.g, pool(&b, "GlobalMaxPool", e, 0, 0, 0, 0));
    il_plan_opts o = {.threads = 1};
    il_plan *p = plan_checked(b.g, &o, 3, "grouped");
    expect_blocked(p, b.g, d, 1, "grouped");
    expect_blocked(p, b.g, e, 1, "grouped");
    il_plan_free(p);
    il_graph_free(b.g);
}

/* A symbolic batch: the plan chooses its layouts at batch 1 and again when a run brings batch 3;
 * a plan file of it loads with the same layouts and gives the same bytes. */
static void test_new_shapes_and_plan_file(void) {
    chain2d r = chain_2d(1);
    r.g->values[r.g->inputs[0]].dims[0] = -1;
    il_plan_opts o = {.threads = 2, .batch = 1};
    il_plan *p = plan_checked(r.g, &o, 1, "symbolic batch, batch 1");
    expect_blocked(p, r.g, r.e, 1, "batch 1");
    il_tensor *x3 = random_input(r.g, 3);
    check_outputs(p, r.g, x3, "symbolic batch, then batch 3");
    expect_blocked(p, r.g, r.e, 1, "batch 3");
    const char *path = il_test_tmp("layout.plan");
    il_plan *q = NULL;
    il_tensor *x1 = random_input(r.g, 1);
    IL_ASSERT_OK(il_plan_run(p, &x1, 1));
    /* the plan as built at batch 1 */
    il_plan_free(p);
    IL_ASSERT_OK(il_plan_create(r.g, &o, &p));
    IL_ASSERT_OK(il_plan_save(p, path));
    IL_ASSERT_OK(il_plan_load(path, &o, &q));
    IL_ASSERT_OK(il_plan_run(p, &x1, 1));
    IL_ASSERT_OK(il_plan_run(q, &x1, 1));
    const il_graph *qg = il_plan_graph(q); /* the file's copy: its values may be numbered otherwise */
    int n_blocked = 0;
    for (int v = 0; v < qg->n_values; v++) {
        int pv = il_graph_find_value(r.g, qg->values[v].name);
        CU_ASSERT_EQUAL(il_plan_value_blocked(q, v), il_plan_value_blocked(p, pv));
        n_blocked += il_plan_value_blocked(q, v);
    }
    CU_ASSERT_EQUAL(n_blocked, have_blocked_kernels() ? 5 : 0);
    for (int i = 0; i < il_plan_n_outputs(p); i++)
        CU_ASSERT_TRUE(il_test_tensors_equal(il_plan_output(p, i), il_plan_output(q, i)));
    il_tensor_free(x1);
    il_tensor_free(x3);
    il_plan_free(p);
    il_plan_free(q);
    il_graph_free(r.g);
}

/* Kernels forced to ones that take no blocked layout: every value plain, outputs as before. */
static void test_forced_plain(void) {
    static const char *specs[] = {"FusedConv=dnnl-nchw,Conv=dnnl-nchw", "FusedConv=im2col-blas,MaxPool=fast", "*=ref"};
    for (int i = 0; i < 3; i++) {
        chain2d r = chain_2d(3);
        il_plan_opts o = {.threads = 2, .kernels = specs[i]};
        if (!have_blocked_kernels() && i == 0) {
            il_graph_free(r.g);
            continue;
        }
        il_plan *p = plan_checked(r.g, &o, 3, specs[i]);
        expect_blocked(p, r.g, r.b, 0, specs[i]);
        expect_blocked(p, r.g, r.d, 0, specs[i]);
        il_plan_free(p);
        il_graph_free(r.g);
    }
}

/* Winograd (dnnl-wino, engine/cpu/dnnl_conv.c) inside a native chain: 3x3 stride-1 convs of 16 and
 * 32 channels large enough for it, two with a residual (with Relu and without; added on the way
 * out of its layout, and with INFERLAB_DNNL_Z_LOOP=0 as a sum post-op), between a strided conv and
 * a 1x1 conv, at batch 1 and 3 on 1 and 2 threads; against the reference within the suite's 1e-4 +
 * 1e-4 |want| (Winograd's transforms round differently from a direct sum, a few ulps of values
 * near 1), and the values around it stay native. Their planes (29x29) and weights are those where
 * the kernel takes F(4x4,3x3); each case runs again with INFERLAB_DNNL_WINO4=0, oneDNN's
 * F(2x2,3x3). The second residual's Z is read before it (by the plain Conv), so its output lies
 * over Z (plan_layout.c). Where oneDNN has no Winograd for this CPU the heuristic keeps "dnnl" and
 * the outputs are checked all the same. */
static void test_winograd(void) {
    const il_kernel *wk = il_kernel_find("ai.inferlab", "FusedConv", "cpu", "dnnl-wino");
    for (int run = 0; run < 16; run++) {
        int zloop = !(run & 4), f4 = !(run & 8), threads = 1 + (run & 1);
        int64_t batch = run & 2 ? 3 : 1;
        chain b = chain_new(2, batch, 8, 58);
        int a = conv(&b, b.g->inputs[0], 8, 16, 3, 2, 1, 1, "Relu", -1);   /* 29x29, strided: dnnl */
        int c = conv(&b, a, 16, 32, 3, 1, 1, 1, "Relu", -1);              /* Winograd */
        int d = conv(&b, c, 32, 32, 3, 1, 1, 1, "Relu", c);               /* Winograd + residual */
        int e = conv(&b, d, 32, 32, 3, 1, 1, 1, NULL, -1);                /* Winograd, plain Conv */
        int e2 = conv(&b, e, 32, 32, 3, 1, 1, 1, NULL, d);                /* Winograd + residual, no act */
        int f = conv(&b, e2, 32, 8, 1, 1, 0, 1, "Sigmoid", -1);
        il_graph_add_output(b.g, f);
        char what[96];
        snprintf(what, sizeof what, "Winograd chain, F(%d,3)%s, batch %lld, %d threads", f4 ? 4 : 2,
                 zloop ? "" : ", residual as a sum", (long long)batch, threads);
        il_plan_opts o = {.threads = threads};
        if (!zloop) setenv("INFERLAB_DNNL_Z_LOOP", "0", 1); /* both read at prepare */
        if (!f4) setenv("INFERLAB_DNNL_WINO4", "0", 1);
        il_plan *p = plan_checked(b.g, &o, batch, what);
        unsetenv("INFERLAB_DNNL_Z_LOOP");
        unsetenv("INFERLAB_DNNL_WINO4");
        int n_wino = 0;
        for (int k = 0; k < b.g->n_nodes; k++)
            n_wino += il_plan_kernel(p, k) && !strcmp(il_plan_kernel(p, k)->name, "dnnl-wino");
        if (wk && n_wino != 4) fprintf(stderr, "\n  %s: %d Winograd nodes (oneDNN has none here?)\n", what, n_wino);
        if (!wk) CU_ASSERT_EQUAL(n_wino, 0);
        expect_blocked(p, b.g, a, 1, what);
        expect_blocked(p, b.g, c, 1, what);
        expect_blocked(p, b.g, d, 1, what);
        expect_blocked(p, b.g, e, 1, what);
        expect_blocked(p, b.g, e2, 1, what);
        int64_t sz;
        if (wk) CU_ASSERT_EQUAL(il_plan_value_offset(p, e2, &sz), il_plan_value_offset(p, d, &sz));
        il_plan_free(p);
        il_graph_free(b.g);
    }
}

/* Winograd on a batch that each thread runs image by image (engine/cpu/dnnl_conv.c wino_prefer):
 * with 4 or more images a thread, F(4x4,3x3) down to 14x14 planes (here 17x17, no multiple of its
 * 4x4 tiles), with a residual over its Z; 16 images of 64 channels (in and out reach
 * IL_DNNL_IMAGE_BYTES) on 1 thread (16 images each) and 2 (8 each), against the reference, with
 * and without INFERLAB_DNNL_WINO4=0. */
static void test_winograd_batch(void) {
    for (int run = 0; run < 4; run++) {
        int threads = 1 + (run & 1), f4 = !(run & 2);
        chain b = chain_new(2, 16, 16, 17);
        int a = conv(&b, b.g->inputs[0], 16, 64, 1, 1, 0, 1, "Relu", -1);
        int c = conv(&b, a, 64, 64, 3, 1, 1, 1, "Relu", -1);   /* Winograd */
        int d = conv(&b, c, 64, 64, 3, 1, 1, 1, "Relu", a);    /* Winograd + residual, over a */
        il_graph_add_output(b.g, conv(&b, d, 64, 8, 1, 1, 0, 1, NULL, -1));
        char what[64];
        snprintf(what, sizeof what, "Winograd on a batch, F(%d,3), %d threads", f4 ? 4 : 2, threads);
        if (!f4) setenv("INFERLAB_DNNL_WINO4", "0", 1);
        il_plan *p = plan_checked(b.g, &(il_plan_opts){.threads = threads}, 16, what);
        unsetenv("INFERLAB_DNNL_WINO4");
        expect_blocked(p, b.g, c, 1, what);
        expect_blocked(p, b.g, d, 1, what);
        il_plan_free(p);
        il_graph_free(b.g);
    }
}

/* A batch whose activations reach IL_DNNL_IMAGE_BYTES (2 MiB) runs image by image on one
 * thread (engine/cpu/dnnl_conv.c): 1x1 convs of 64 channels at 40x40 over 3 images (2.4 MB in
 * and out), one with a residual (each image's Z) and one plain Conv, between convs that run the
 * batch in one call; on 2 threads the same plan runs whole batches. Against the reference. */
static void test_image_by_image(void) {
    for (int threads = 1; threads <= 2; threads++) {
        chain b = chain_new(2, 3, 16, 40);
        int a = conv(&b, b.g->inputs[0], 16, 64, 1, 1, 0, 1, "Relu", -1);
        int c = conv(&b, a, 64, 64, 1, 1, 0, 1, "Relu", a);    /* image by image, residual */
        int d = conv(&b, c, 64, 64, 1, 1, 0, 1, NULL, -1);     /* image by image, plain Conv */
        int e = conv(&b, d, 64, 16, 3, 2, 1, 1, "Relu", -1);
        il_graph_add_output(b.g, e);
        char what[64];
        snprintf(what, sizeof what, "image by image, %d threads", threads);
        il_plan_opts o = {.threads = threads};
        il_plan *p = plan_checked(b.g, &o, 3, what);
        expect_blocked(p, b.g, c, 1, what);
        expect_blocked(p, b.g, d, 1, what);
        il_plan_free(p);
        il_graph_free(b.g);
    }
}

/* Squeeze-excitation as EfficientNet has it (engine/cpu/dnnl_native.c): a depthwise conv with
 * SiLU, its global average pool through two 1x1 convs to a Sigmoid scale per image and channel,
 * Mul(scale, x) with the scale first, a projection conv; then a same-shaped Add and a Mul by a
 * constant [1, C, 1, 1] (plain, broadcast over the batch). Batch 1 and 3 (the scale differs per
 * image), 1 and 2 threads; the activations stay native through Mul and Add. */
static void test_squeeze_excitation(void) {
    for (int64_t batch = 1; batch <= 3; batch += 2)
        for (int threads = 1; threads <= 2; threads++) {
            chain b = chain_new(2, batch, 8, 12);
            int a = conv(&b, b.g->inputs[0], 8, 24, 3, 1, 1, 1, "SiLU", -1);
            int dw = conv(&b, a, 24, 24, 3, 1, 1, 24, "SiLU", -1);
            int gp = pool(&b, "GlobalAveragePool", dw, 0, 0, 0, 0);
            int s1 = conv(&b, gp, 24, 6, 1, 1, 0, 1, "SiLU", -1);
            int s2 = conv(&b, s1, 6, 24, 1, 1, 0, 1, "Sigmoid", -1);
            int m = node2(&b, "Mul", s2, dw);
            il_graph_add_output(b.g, pool(&b, "GlobalMaxPool", m, 0, 0, 0, 0)); /* each image's own scale shows */
            int e = conv(&b, m, 24, 17, 1, 1, 0, 1, NULL, -1);
            int e2 = conv(&b, m, 24, 17, 1, 1, 0, 1, "Relu", -1);
            int f = node2(&b, "Add", e, e2);
            il_tensor *k = il_tensor_new(IL_F32, 4, (int64_t[]){1, 17, 1, 1});
            il_tensor_fill_random(k, op_rng(), -2, 2);
            int h = node2(&b, "Mul", f, il_graph_add_constant(b.g, "scale", k));
            il_graph_add_output(b.g, conv(&b, h, 17, 8, 1, 1, 0, 1, "Relu", -1));
            char what[64];
            snprintf(what, sizeof what, "squeeze-excitation, batch %lld, %d threads", (long long)batch, threads);
            il_plan_opts o = {.threads = threads};
            il_plan *p = plan_checked(b.g, &o, batch, what);
            int vs[] = {dw, m, e, e2, f, h};
            for (int i = 0; i < 6; i++) expect_blocked(p, b.g, vs[i], 1, what);
            il_plan_free(p);
            il_graph_free(b.g);
        }
}

/* SqueezeNet's Fire modules: a squeeze conv, two expand convs (1x1 and 3x3) joined by Concat
 * along the channels, a ceil_mode MaxPool, and a second Fire whose expands give 17 and 15
 * channels, one of them also read by a plain Relu (so Concat reads one native input and one
 * plain). Batch 1 and 3, 1 and 2 threads, 2-D and 3-D (the kernel takes ranks 4 and 5). */
static void test_fire_concat(void) {
    for (int nsp = 2; nsp <= 3; nsp++)
        for (int64_t batch = 1; batch <= 3; batch += 2)
            for (int threads = 1; threads <= 2; threads++) {
                chain b = chain_new(nsp, batch, 8, nsp == 2 ? 15 : 7);
                int sq = conv(&b, b.g->inputs[0], 8, 6, 1, 1, 0, 1, "Relu", -1);
                int cat = node2(&b, "Concat", conv(&b, sq, 6, 16, 1, 1, 0, 1, "Relu", -1),
                                conv(&b, sq, 6, 16, 3, 1, 1, 1, "Relu", -1));
                int mp = pool(&b, "MaxPool", cat, 3, 2, 0, 1);
                int sq2 = conv(&b, mp, 32, 8, 1, 1, 0, 1, "Relu", -1);
                int e1 = conv(&b, sq2, 8, 17, 1, 1, 0, 1, NULL, -1), e3 = conv(&b, sq2, 8, 15, 3, 1, 1, 1, "Relu", -1);
                int cat2 = node2(&b, "Concat", e1, e3);
                il_graph_add_output(b.g, unary(&b, "Relu", e3));
                il_graph_add_output(b.g, pool(&b, "GlobalAveragePool", cat2, 0, 0, 0, 0));
                char what[64];
                snprintf(what, sizeof what, "Fire concat, %d-D, batch %lld, %d threads", nsp, (long long)batch, threads);
                il_plan_opts o = {.threads = threads};
                il_plan *p = plan_checked(b.g, &o, batch, what);
                expect_blocked(p, b.g, cat, 1, what);
                expect_blocked(p, b.g, mp, 1, what);
                expect_blocked(p, b.g, e1, 1, what);
                expect_blocked(p, b.g, e3, 0, what);
                expect_blocked(p, b.g, cat2, 1, what);
                il_plan_free(p);
                il_graph_free(b.g);
            }
}

/* ShuffleNet's units: two branches joined along the channels, the ai.inferlab ChannelShuffle that
 * fuse-shuffle makes of the exporters' Reshape-Transpose-Reshape, the two Slices of channels that
 * split it (one straight into the next Concat, one through a conv), then a shuffle of 3 groups of
 * 7 channels (not a whole block) whose input a plain Relu also reads (plain in, native out) and
 * a Slice of it (end -1) also read by a plain Relu (native in, plain out). Batch 1 and 3, 1 and 2
 * threads, 2-D and 3-D. A channel gathered from the wrong place fails the comparison. */
static int shuffle(chain *b, int x, int64_t groups) {
    int y = out_value(b);
    char name[32];
    snprintf(name, sizeof name, "sh%d", b->n);
    int j = il_graph_add_node(b->g, "ChannelShuffle", "ai.inferlab", name, 1, &x, 1, &y);
    il_node_set_int(b->g, j, "groups", groups);
    return y;
}

static int slice_c(chain *b, int x, int64_t start, int64_t end) {
    int64_t one = 1;
    il_tensor *t[3] = {il_tensor_new(IL_I64, 1, &one), il_tensor_new(IL_I64, 1, &one), il_tensor_new(IL_I64, 1, &one)};
    ((int64_t *)t[0]->data)[0] = start;
    ((int64_t *)t[1]->data)[0] = end;
    ((int64_t *)t[2]->data)[0] = 1;
    int in[4] = {x};
    char name[32];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "sl%d_%d", b->n, i);
        in[1 + i] = il_graph_add_constant(b->g, name, t[i]);
    }
    int y = out_value(b);
    snprintf(name, sizeof name, "slice%d", b->n);
    il_graph_add_node(b->g, "Slice", "", name, 4, in, 1, &y);
    return y;
}

static void test_channel_shuffle(void) {
    for (int nsp = 2; nsp <= 3; nsp++)
        for (int64_t batch = 1; batch <= 3; batch += 2)
            for (int threads = 1; threads <= 2; threads++) {
                chain b = chain_new(nsp, batch, 8, nsp == 2 ? 11 : 5);
                int x = b.g->inputs[0];
                int cat = node2(&b, "Concat", conv(&b, x, 8, 8, 1, 1, 0, 1, "Relu", -1), conv(&b, x, 8, 8, 3, 1, 1, 8, NULL, -1));
                int s1 = shuffle(&b, cat, 2);
                int lo = slice_c(&b, s1, 0, 8), hi = slice_c(&b, s1, 8, 16);
                int cat2 = node2(&b, "Concat", lo, conv(&b, hi, 8, 8, 1, 1, 0, 1, "Relu", -1));
                int c2 = conv(&b, cat2, 16, 21, 1, 1, 0, 1, "Relu", -1);
                il_graph_add_output(b.g, unary(&b, "Relu", c2));
                int s2 = shuffle(&b, c2, 3);
                int t = slice_c(&b, s2, 7, -1);
                il_graph_add_output(b.g, conv(&b, s2, 21, 5, 3, 1, 1, 1, NULL, -1));
                il_graph_add_output(b.g, unary(&b, "Relu", t));
                il_graph_add_output(b.g, conv(&b, t, 13, 4, 1, 1, 0, 1, NULL, -1));
                il_graph_add_output(b.g, pool(&b, "GlobalMaxPool", s1, 0, 0, 0, 0));
                char what[80];
                snprintf(what, sizeof what, "channel shuffle, %d-D, batch %lld, %d threads", nsp, (long long)batch, threads);
                il_plan_opts o = {.threads = threads};
                il_plan *p = plan_checked(b.g, &o, batch, what);
                int want[][2] = {{cat, 1}, {s1, 1}, {lo, 1}, {hi, 1}, {cat2, 1}, {c2, 0}, {s2, 1}, {t, 0}};
                for (int i = 0; i < 8; i++) expect_blocked(p, b.g, want[i][0], want[i][1], what);
                il_plan_free(p);
                il_graph_free(b.g);
            }
}

/* The ChannelShuffle that fuse-shuffle gives a unit's Concat and split: two conv branches
 * shuffled and split in two, one part into a conv (native) and one also read by a plain Relu
 * (plain out of the same node); three inputs of 4 channels (one plain: a Relu of x) in 3 groups
 * split in two parts of 6; two inputs in 4 groups, one output (the general gather, not the
 * two-group interleave). Batch 1 and 3, 1 and 2 threads, 2-D and 3-D, against the reference. */
static void shuffle_n(chain *b, int n_in, const int *in, int64_t groups, int n_out, int *out) {
    for (int i = 0; i < n_out; i++) out[i] = out_value(b);
    char name[32];
    snprintf(name, sizeof name, "shn%d", b->n);
    int j = il_graph_add_node(b->g, "ChannelShuffle", "ai.inferlab", name, n_in, in, n_out, out);
    il_node_set_int(b->g, j, "groups", groups);
}

static void test_channel_shuffle_join_split(void) {
    for (int nsp = 2; nsp <= 3; nsp++)
        for (int64_t batch = 1; batch <= 3; batch += 2)
            for (int threads = 1; threads <= 2; threads++) {
                chain b = chain_new(nsp, batch, 8, nsp == 2 ? 9 : 5);
                int x = b.g->inputs[0], parts[2], six[2], one;
                int br[2] = {conv(&b, x, 8, 8, 1, 1, 0, 1, "Relu", -1), conv(&b, x, 8, 8, 3, 1, 1, 8, NULL, -1)};
                shuffle_n(&b, 2, br, 2, 2, parts);
                int lo = conv(&b, parts[0], 8, 8, 1, 1, 0, 1, "Relu", -1);
                il_graph_add_output(b.g, unary(&b, "Relu", parts[1]));
                int three[3] = {conv(&b, lo, 8, 4, 1, 1, 0, 1, NULL, -1), unary(&b, "Relu", conv(&b, x, 8, 4, 1, 1, 0, 1, NULL, -1)),
                                conv(&b, parts[1], 8, 4, 3, 1, 1, 1, NULL, -1)};
                shuffle_n(&b, 3, three, 3, 2, six);
                il_graph_add_output(b.g, conv(&b, six[0], 6, 5, 1, 1, 0, 1, NULL, -1));
                il_graph_add_output(b.g, conv(&b, six[1], 6, 5, 3, 1, 1, 1, NULL, -1));
                int two[2] = {conv(&b, six[0], 6, 8, 1, 1, 0, 1, NULL, -1), conv(&b, six[1], 6, 8, 1, 1, 0, 1, NULL, -1)};
                shuffle_n(&b, 2, two, 4, 1, &one);
                il_graph_add_output(b.g, conv(&b, one, 16, 3, 1, 1, 0, 1, NULL, -1));
                char what[80];
                snprintf(what, sizeof what, "shuffle join/split, %d-D, batch %lld, %d threads", nsp, (long long)batch,
                         threads);
                il_plan_opts o = {.threads = threads};
                il_plan *p = plan_checked(b.g, &o, batch, what);
                int want[][2] = {{br[0], 1}, {parts[0], 1}, {parts[1], 0}, {three[1], 0}, {six[0], 1}, {six[1], 1}, {one, 1}};
                for (int i = 0; i < 7; i++) expect_blocked(p, b.g, want[i][0], want[i][1], what);
                il_plan_free(p);
                il_graph_free(b.g);
            }
}

/* ShuffleNet's head: ReduceMean over the spatial dims of a conv's output (torchvision's
 * x.mean([2, 3])), read native; keepdims 0 and 1, axes as an attribute (opset 17) and as an
 * input (18); a ReduceMean of the graph input (plain); one over the channels, which the native
 * kernel declines (its input then stays plain). 2-D and 3-D, batch 1 and 3, 1 and 2 threads,
 * against the reference; a mean of the wrong image or channel fails. */
static int rmean(chain *b, int x, int opset, int nax, const int64_t *axes, int keep) {
    int y = out_value(b), in[2] = {x, -1};
    char name[32];
    snprintf(name, sizeof name, "rm%d", b->n);
    if (opset >= 18) {
        int64_t na = nax;
        il_tensor *t = il_tensor_new(IL_I64, 1, &na);
        memcpy(t->data, axes, (size_t)nax * sizeof(int64_t));
        in[1] = il_graph_add_constant(b->g, name, t);
    }
    int j = il_graph_add_node(b->g, "ReduceMean", "", name, opset >= 18 ? 2 : 1, in, 1, &y);
    if (opset < 18) il_node_set_ints(b->g, j, "axes", nax, axes);
    il_node_set_int(b->g, j, "keepdims", keep);
    return y;
}

static void test_reduce_mean(void) {
    for (int opset = 17; opset <= 18; opset++)
        for (int nsp = 2; nsp <= 3; nsp++)
            for (int64_t batch = 1; batch <= 3; batch += 2)
                for (int threads = 1; threads <= 2; threads++) {
                    chain b = chain_new(nsp, batch, 8, nsp == 2 ? 9 : 5);
                    il_graph_set_opset(b.g, "", opset);
                    int x = b.g->inputs[0];
                    int64_t sp[3] = {2, -2, 4}, chan[1] = {1};
                    if (nsp == 2) sp[1] = -1;
                    int a = conv(&b, x, 8, 20, 3, 1, 1, 1, "Relu", -1);
                    int c2 = conv(&b, x, 8, 6, 1, 1, 0, 1, NULL, -1);
                    il_graph_add_output(b.g, rmean(&b, a, opset, nsp, sp, 0));
                    il_graph_add_output(b.g, rmean(&b, a, opset, nsp, sp, 1));
                    il_graph_add_output(b.g, rmean(&b, x, opset, nsp, sp, 0));
                    il_graph_add_output(b.g, rmean(&b, c2, opset, 1, chan, 1));
                    char what[80];
                    snprintf(what, sizeof what, "ReduceMean, opset %d, %d-D, batch %lld, %d threads", opset, nsp,
                             (long long)batch, threads);
                    il_plan_opts o = {.threads = threads};
                    il_plan *p = plan_checked(b.g, &o, batch, what);
                    expect_blocked(p, b.g, a, 1, what);
                    expect_blocked(p, b.g, c2, 0, what);
                    il_plan_free(p);
                    il_graph_free(b.g);
                }
}

IL_SUITE("dnnl-layout", {"squeeze-excitation Mul, Add", test_squeeze_excitation}, {"Fire concat", test_fire_concat}, {"channel shuffle", test_channel_shuffle}, {"channel shuffle joining and splitting", test_channel_shuffle_join_split}, {"ReduceMean over the image", test_reduce_mean}, {"Winograd in a native chain", test_winograd}, {"Winograd on a batch", test_winograd_batch}, {"image by image", test_image_by_image}, {"2-D chain, odd channels, mixed readers", test_chain_2d},
         {"1-D and 3-D chains", test_chain_ranks}, {"grouped conv", test_grouped},
         {"new shapes, plan file", test_new_shapes_and_plan_file}, {"forced plain kernels", test_forced_plain})
