/*
 * test_dnnl_native.c - session 7's kernels on native values (engine/cpu/dnnl_conv.c,
 * dnnl_pool.c, engine/plan_layout.c): ScaledConv (a squeeze-excitation product fused into the
 * conv it feeds), the channels-last MaxPool, and Concats whose inputs their producers write in
 * place; in native chains against the reference kernels (tests/layout_chain.h).
 */
#include "layout_chain.h"

/* ai.inferlab ScaledConv(x, W, B, Z, s) of x with cin channels into m (pass fuse-se-scale's). */
static int sconv(chain *b, int x, int s, int64_t cin, int64_t m, int64_t k, int64_t grp, const char *act, int z) {
    int y = conv(b, x, cin, m, k, 1, k / 2, grp, act, z);
    il_node *n = &b->g->nodes[b->g->values[y].producer];
    int in[5] = {n->inputs[0], n->inputs[1], n->inputs[2], z, s};
    char name[32];
    snprintf(name, sizeof name, "sc%d", b->n);
    n->dead = 1;
    int j = il_graph_add_node(b->g, "ScaledConv", "ai.inferlab", name, 5, in, 1, &y);
    set_window(b, j, k, 1, k / 2);
    il_node_set_int(b->g, j, "group", grp);
    if (act) il_node_set_string(b->g, j, "activation", act);
    if (act && !strcmp(act, "Clip")) il_node_set_floats(b->g, j, "activation_params", 2, (float[]){0, 6});
    return y;
}

/* A SiLU depthwise conv of x (24 channels) and, in *s, its squeeze-excitation scale. */
static int se_dw(chain *b, int x, int *s) {
    int dw = conv(b, x, 24, 24, 3, 1, 1, 24, "SiLU", -1);
    int gp = pool(b, "GlobalAveragePool", dw, 0, 0, 0, 0);
    *s = conv(b, conv(b, gp, 24, 6, 1, 1, 0, 1, "SiLU", -1), 6, 24, 1, 1, 0, 1, "Sigmoid", -1);
    return dw;
}

/* ScaledConv (engine/cpu/dnnl_conv.c) reading a native depthwise output and its squeeze-excitation
 * scale: a 1x1 projection whose weight is small beside an image (the scale goes into the weight),
 * a grouped 3x3 with a residual and Relu whose weight is not (into a copy of the image), a grouped
 * 1x1 with a residual and Clip; 2-D and 3-D, batch 1 and 3 (each image its own scale), 1 and 2
 * threads (images shared out), against the reference; the values around them stay native. */
static void test_scaled_conv(void) {
    for (int nsp = 2; nsp <= 3; nsp++)
        for (int64_t batch = 1; batch <= 3; batch += 2)
            for (int threads = 1; threads <= 2; threads++) {
                chain b = chain_new(nsp, batch, 8, nsp == 2 ? 12 : 6);
                int a = conv(&b, b.g->inputs[0], 8, 24, 3, 1, 1, 1, "SiLU", -1), s2;
                int dw = se_dw(&b, a, &s2);
                int p1 = sconv(&b, dw, s2, 24, 8, 1, 1, NULL, -1);
                int z = conv(&b, a, 24, 40, 1, 1, 0, 1, NULL, -1);
                int p2 = sconv(&b, dw, s2, 24, 40, 3, 2, "Relu", z);
                int p3 = sconv(&b, dw, s2, 24, 8, 1, 2, "Clip", p1);
                il_graph_add_output(b.g, conv(&b, p2, 40, 8, 1, 1, 0, 1, "Relu", p3));
                char what[80];
                snprintf(what, sizeof what, "ScaledConv, %d-D, batch %lld, %d threads", nsp, (long long)batch, threads);
                il_plan_opts o = {.threads = threads};
                il_plan *p = plan_checked(b.g, &o, batch, what);
                int vs[] = {dw, p1, p2, p3};
                for (int i = 0; i < 4; i++) expect_blocked(p, b.g, vs[i], 1, what);
                il_plan_free(p);
                il_graph_free(b.g);
            }
}

/* MaxPool "native" (engine/cpu/dnnl_pool.c) between native convs: dilated with padding, and
 * ceil_mode windows hanging past odd sizes; 24, 17 and 73 channels (the kernel's blocks of 64, 8
 * and 1 channels each met); batch 1 and 3, 1 and 2 threads, against the reference. */
static void test_native_maxpool(void) {
    for (int64_t batch = 1; batch <= 3; batch += 2)
        for (int threads = 1; threads <= 2; threads++) {
            chain b = chain_new(2, batch, 8, 13);
            int a = conv(&b, b.g->inputs[0], 8, 24, 3, 1, 1, 1, "Relu", -1);
            int p1 = pool(&b, "MaxPool", a, 3, 1, 2, 0);
            il_node_set_ints(b.g, b.g->values[p1].producer, "dilations", 2, (int64_t[]){2, 2});
            int p2 = pool(&b, "MaxPool", conv(&b, p1, 24, 17, 1, 1, 0, 1, "Relu", -1), 3, 2, 1, 1);
            int p3 = pool(&b, "MaxPool", conv(&b, p2, 17, 73, 1, 1, 0, 1, "Relu", -1), 2, 2, 0, 1);
            il_graph_add_output(b.g, conv(&b, p3, 73, 8, 1, 1, 0, 1, NULL, -1));
            char what[64];
            snprintf(what, sizeof what, "native MaxPool, batch %lld, %d threads", (long long)batch, threads);
            il_plan *p = plan_checked(b.g, &(il_plan_opts){.threads = threads}, batch, what);
            expect_blocked(p, b.g, p1, 1, what);
            expect_blocked(p, b.g, p2, 1, what);
            expect_blocked(p, b.g, p3, 1, what);
            il_plan_free(p);
            il_graph_free(b.g);
        }
}

/* A Fire module's Concat written in place (engine/plan_layout.c): the 1x1 expand (a oneDNN conv
 * whose dense result is reordered into its channels) and the 3x3 one (Winograd, reordered from
 * nChw16c) sit at their channel offsets of the Concat's output, which copies nothing; batch 1
 * and 3, whole batches and image by image, 1 and 2 threads, against the reference; then a plan
 * file round trip (the loaded plan writes in place too, outputs equal). */
static void test_concat_in_place(void) {
    /* batch, plane, squeeze channels; the last: each expand's input and output reach
     * IL_DNNL_IMAGE_BYTES, so they run image by image (images shared out on 2 threads) */
    static const int64_t cases[3][3] = {{1, 15, 16}, {3, 15, 16}, {3, 48, 32}};
    for (int t = 0; t < 3; t++)
        for (int threads = 1; threads <= 2; threads++) {
            int64_t batch = cases[t][0], sqc = cases[t][2];
            chain b = chain_new(2, batch, 8, cases[t][1]);
            int sq = conv(&b, b.g->inputs[0], 8, sqc, 1, 1, 0, 1, "Relu", -1);
            int e1 = conv(&b, sq, sqc, 32, 1, 1, 0, 1, "Relu", -1), e3 = conv(&b, sq, sqc, 64, 3, 1, 1, 1, "Relu", -1);
            int cat = node2(&b, "Concat", e1, e3);
            il_graph_add_output(b.g, conv(&b, cat, 96, 8, 1, 1, 0, 1, NULL, -1));
            char what[80];
            snprintf(what, sizeof what, "Concat in place, batch %lld, %lldx%lld, %d threads", (long long)batch,
                     (long long)cases[t][1], (long long)cases[t][1], threads);
            il_plan_opts o = {.threads = threads};
            il_plan *p = plan_checked(b.g, &o, batch, what);
            int64_t sz, at = il_plan_value_offset(p, cat, &sz);
            if (have_blocked_kernels()) {
                CU_ASSERT_EQUAL(il_plan_value_offset(p, e1, &sz), at);
                CU_ASSERT_EQUAL(il_plan_value_offset(p, e3, &sz), at + 32 * (int64_t)sizeof(float));
            }
            plan_file_agrees(p, b.g, &o, batch, "concat.plan");
            il_graph_free(b.g);
        }
}

/* A plain image of 2, 3 or 4 channels into a convolution on channels-last (the loop in
 * engine/cpu/dnnl_layout.c that interleaves the planes, instead of oneDNN's reorder): 2-D and
 * 3-D, batch 1 and 3, the last case large enough to run image by image (IL_DNNL_IMAGE_BYTES);
 * 1 and 2 threads; against the reference. */
static void test_plain_image_in(void) {
    /* spatial dims, channels, plane, output channels, batch */
    static const int64_t cases[5][5] = {{2, 3, 21, 16, 1}, {2, 2, 21, 16, 3}, {3, 4, 9, 8, 3}, {2, 3, 23, 8, 3},
                                        {2, 3, 160, 32, 2}};
    for (int t = 0; t < 5; t++)
        for (int threads = 1; threads <= 2; threads++) {
            int64_t batch = cases[t][4], cin = cases[t][1], m = cases[t][3];
            chain b = chain_new((int)cases[t][0], batch, cin, cases[t][2]);
            int a = conv(&b, b.g->inputs[0], cin, m, 3, 2, 1, 1, "Relu", -1);
            il_graph_add_output(b.g, conv(&b, a, m, 8, 1, 1, 0, 1, NULL, -1));
            char what[80];
            snprintf(what, sizeof what, "plain image in, case %d, %d threads", t, threads);
            il_plan *p = plan_checked(b.g, &(il_plan_opts){.threads = threads}, batch, what);
            expect_blocked(p, b.g, a, 1, what);
            il_plan_free(p);
            il_graph_free(b.g);
        }
}

/* Batch 1 on two threads (session 8): the parts of a node that ran on one thread while oneDNN's
 * primitive used two now share the node's threads: a plain image interleaved into channels-last
 * (its pixels split), the native MaxPool's rows, ScaledConv's scaling of the weight (by output
 * channel) and of the image (by pixel); a residual read by a binary add post-op where it lies
 * instead of copied into Y (engine/cpu/dnnl_conv.c). Odd sizes, so the parts differ; 2-D and
 * 3-D, batch 1 and 3, 1 and 2 threads, with the usual bound on threaded nodes and with every node
 * threaded (INFERLAB_DNNL_SERIAL_MACS=1), against the reference. */
static void test_two_threads(void) {
    const char *was = getenv("INFERLAB_DNNL_SERIAL_MACS");
    char *saved = was ? strdup(was) : NULL;
    for (int every = 0; every <= 1; every++)
        for (int nsp = 2; nsp <= 3; nsp++)
            for (int64_t batch = 1; batch <= 3; batch += 2)
                for (int threads = 1; threads <= 2; threads++) {
                    if (every) setenv("INFERLAB_DNNL_SERIAL_MACS", "1", 1);
                    else if (saved) setenv("INFERLAB_DNNL_SERIAL_MACS", saved, 1);
                    else unsetenv("INFERLAB_DNNL_SERIAL_MACS");
                    chain b = chain_new(nsp, batch, 3, nsp == 2 ? 41 : 9);
                    int a = conv(&b, b.g->inputs[0], 3, 24, 3, 2, 1, 1, "SiLU", -1);
                    int mp = pool(&b, "MaxPool", a, 3, 1, 1, 0), s2;
                    int dw = se_dw(&b, mp, &s2);
                    int p1 = sconv(&b, dw, s2, 24, 9, 1, 1, NULL, -1);
                    int z = conv(&b, mp, 24, 40, 1, 1, 0, 1, NULL, -1);
                    int p2 = sconv(&b, dw, s2, 24, 40, 3, 2, "Relu", z);
                    int r = conv(&b, p2, 40, 40, 1, 1, 0, 1, "Relu", p2);
                    il_graph_add_output(b.g, conv(&b, r, 40, 9, 1, 1, 0, 1, "Relu", p1));
                    char what[96];
                    snprintf(what, sizeof what, "two threads, %s, %d-D, batch %lld, %d threads",
                             every ? "every node threaded" : "usual bound", nsp, (long long)batch, threads);
                    il_plan *p = plan_checked(b.g, &(il_plan_opts){.threads = threads}, batch, what);
                    int vs[] = {a, mp, p1, p2, r};
                    for (int i = 0; i < 5; i++) expect_blocked(p, b.g, vs[i], 1, what);
                    il_plan_free(p);
                    il_graph_free(b.g);
                }
    if (saved) setenv("INFERLAB_DNNL_SERIAL_MACS", saved, 1);
    else unsetenv("INFERLAB_DNNL_SERIAL_MACS");
    free(saved);
}

/* Residuals written over their Z (engine/plan_layout.c, dnnl_conv.c): a bottleneck whose Z, the
 * block's input, its first conv reads before (the 3x3 Winograd where oneDNN has it), a
 * downsample block whose Z is the strided 1x1's output, a Winograd 3x3 with a residual, and a
 * residual whose Z an Add reads afterwards (its output must then take a slot of its own); 2-D
 * and 3-D, batch 1 and 3, planes small and large enough to run image by image, 1 and 2 threads,
 * native values, plain ones (dnnl-nchw forced) and a kernel that offers no slot (im2col-blas),
 * against the reference; a plan file round trip gives the same outputs. */
static void test_residual_over_z(void) {
    static const char *const forced[3] = {NULL, "FusedConv=dnnl-nchw,Conv=dnnl-nchw", "FusedConv=im2col-blas"};
    for (int f = 0; f < 3; f++)
        for (int nsp = 2; nsp <= 3; nsp++)
            for (int big = 0; big <= 1; big++)
                for (int64_t batch = 1; batch <= 3; batch += 2)
                    for (int threads = 1; threads <= 2; threads++) {
                        if ((nsp == 3 || f) && big) continue; /* the large plane: native 2-D only */
                        int64_t hw = nsp == 3 ? 8 : big ? 48 : 15, c = big ? 64 : 32;
                        chain b = chain_new(nsp, batch, 3, hw);
                        int a = conv(&b, b.g->inputs[0], 3, c, 3, 1, 1, 1, "Relu", -1);
                        int c1 = conv(&b, a, c, 16, 1, 1, 0, 1, "Relu", -1);
                        int c2 = conv(&b, c1, 16, 16, 3, 1, 1, 1, "Relu", -1);
                        int r1 = conv(&b, c2, 16, c, 1, 1, 0, 1, "Relu", a);
                        int d = conv(&b, r1, c, 2 * c, 1, 2, 0, 1, NULL, -1);
                        int s2 = conv(&b, r1, c, 16, 3, 2, 1, 1, "Relu", -1);
                        int r2 = conv(&b, s2, 16, 2 * c, 1, 1, 0, 1, "Relu", d);
                        int w1 = conv(&b, r2, 2 * c, 2 * c, 3, 1, 1, 1, "Relu", -1);
                        int r3 = conv(&b, w1, 2 * c, 2 * c, 3, 1, 1, 1, "Relu", r2);
                        int t = conv(&b, r3, 2 * c, 16, 1, 1, 0, 1, "Relu", -1);
                        int r5 = conv(&b, t, 16, 2 * c, 1, 1, 0, 1, "Relu", r3);
                        il_graph_add_output(b.g, node2(&b, "Add", r5, r3));
                        char what[128];
                        snprintf(what, sizeof what, "residual over Z, %s, %d-D, %lldx%lld, batch %lld, %d threads",
                                 forced[f] ? forced[f] : "heuristic", nsp, (long long)hw, (long long)hw,
                                 (long long)batch, threads);
                        il_plan_opts o = {.threads = threads, .kernels = forced[f]};
                        il_plan *p = plan_checked(b.g, &o, batch, what);
                        int64_t sz;
                        if (have_blocked_kernels()) {
                            int over = f != 2; /* im2col-blas offers no slot */
                            CU_ASSERT_EQUAL(il_plan_value_offset(p, r1, &sz) == il_plan_value_offset(p, a, &sz), over);
                            CU_ASSERT_EQUAL(il_plan_value_offset(p, r2, &sz) == il_plan_value_offset(p, d, &sz), over);
                            CU_ASSERT_EQUAL(il_plan_value_offset(p, r3, &sz) == il_plan_value_offset(p, r2, &sz), over);
                            CU_ASSERT_NOT_EQUAL(il_plan_value_offset(p, r5, &sz), il_plan_value_offset(p, r3, &sz));
                            if (!f) expect_blocked(p, b.g, r1, 1, what);
                        }
                        plan_file_agrees(p, b.g, &o, batch, "residual.plan");
                        il_graph_free(b.g);
                    }
}

IL_SUITE("dnnl-native", {"ScaledConv", test_scaled_conv}, {"native MaxPool", test_native_maxpool},
         {"Concat in place", test_concat_in_place}, {"plain image in", test_plain_image_in},
         {"batch 1 on two threads", test_two_threads}, {"residual over Z", test_residual_over_z})
