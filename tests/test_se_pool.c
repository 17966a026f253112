/*
 * test_se_pool.c - ai.inferlab PooledConv (a convolution whose second output is the global
 * average pool of its first, pass fuse-se-pool): the pass on hand-built graphs (structure, equal
 * outputs on fresh random inputs, idempotence, what it leaves alone, lowered back by lower-fused);
 * each kernel (dnnl, dnnl-wino, im2col-blas) in squeeze-excitation chains against the reference
 * kernels within 1e-4 + 1e-4 |want| (tests/layout_chain.h); and the split a plan for an
 * accelerator without the kernel makes (FusedConv + GlobalAveragePool again).
 */
#include "../engine/plan_int.h"
#include "layout_chain.h"
#include "pass_test.h"

/* The node of chain b writing y (a conv) made a PooledConv (y, pool); returns the pool's value. */
static int pooled(chain *b, int y) {
    int p = out_value(b), k = b->g->values[y].producer;
    il_node *n = &b->g->nodes[k];
    n->outputs = realloc(n->outputs, 2 * sizeof(int));
    n->outputs[1] = p;
    n->n_outputs = 2;
    free(n->op_type), free(n->domain);
    n->op_type = strdup("PooledConv");
    n->domain = strdup("ai.inferlab");
    b->g->values[p].producer = k;
    return p;
}

/* A squeeze-excitation block as EfficientNet's after -O2: an expand conv, a convolution whose pool
 * is its second output (dense 0: a depthwise 3x3 with SiLU, as EfficientNet's; 1: a dense 3x3
 * with Relu, which Winograd takes; 2: a dense 3x3 with SiLU), the scale through two 1x1 convs,
 * the product read by a projection; channels c; plain: a Relu also reads the pooled conv's output,
 * so the plan holds it plain (the plain sums). Outputs: the projection and the pool itself. */
static il_graph *se_chain(int nsp, int64_t batch, int64_t c, int plain, int64_t hw, int dense) {
    chain b = chain_new(nsp, batch, 8, hw);
    int a = conv(&b, b.g->inputs[0], 8, c, 1, 1, 0, 1, "SiLU", -1);
    int dw = conv(&b, a, c, c, 3, 1, 1, dense ? 1 : c, dense == 1 ? "Relu" : "SiLU", -1);
    int gp = pooled(&b, dw);
    int s = conv(&b, conv(&b, gp, c, 6, 1, 1, 0, 1, "SiLU", -1), 6, c, 1, 1, 0, 1, "Sigmoid", -1);
    il_graph_add_output(b.g, conv(&b, node2(&b, "Mul", s, dw), c, 8, 1, 1, 0, 1, NULL, -1));
    il_graph_add_output(b.g, gp);
    if (plain) il_graph_add_output(b.g, unary(&b, "Relu", dw));
    return b.g;
}

/* Each kernel against the reference: dnnl on channels-last values (2-D: 24 and 83 channels, 3-D:
 * 48: the SiLU pass's sums with their 64-channel chunks and masked tails, the plain sums' blocks of
 * 64, 48, 32 and 16 channels and single ones) and plain ones (83 channels); a dense 3x3 SiLU conv
 * of 64 channels on 32x32, where one image's SiLU and sums are shared out among 2 threads; dnnl-wino
 * (3x3s of 32 and 64 channels with Relu: the sums after its reorder, on 2 threads for 64,
 * channels-last and plain), im2col-blas forced (plain sums); batch 1 and 3 (images pooled one by
 * one, shared out on 2 threads), 1 and 2 threads. */
static void test_pooled_conv_kernels(void) {
    struct {
        int nsp;
        int64_t c, hw;
        int plain, dense;
        const char *kernel;
    } cases[] = {
        {2, 24, 12, 0, 0, "dnnl"},        {2, 83, 9, 0, 0, "dnnl"},      {2, 83, 9, 1, 0, "dnnl"},
        {3, 48, 5, 0, 0, "dnnl"},         {2, 64, 32, 0, 2, "dnnl"},     {2, 32, 24, 0, 1, "dnnl-wino"},
        {2, 64, 32, 0, 1, "dnnl-wino"},   {2, 64, 32, 1, 1, "dnnl-wino"}, {2, 24, 12, 0, 0, "im2col-blas"},
        {3, 24, 5, 0, 0, "im2col-blas"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int64_t batch = 1; batch <= 3 && (strncmp(cases[i].kernel, "dnnl", 4) || have_blocked_kernels());
             batch += 2) /* a build without oneDNN has no dnnl kernels to force */
            for (int threads = 1; threads <= 2; threads++) {
                il_graph *g = se_chain(cases[i].nsp, batch, cases[i].c, cases[i].plain, cases[i].hw, cases[i].dense);
                char what[128], force[64];
                snprintf(what, sizeof what, "PooledConv %s %d-D, %lld channels%s, batch %lld, %d threads",
                         cases[i].kernel, cases[i].nsp, (long long)cases[i].c, cases[i].plain ? ", plain" : "",
                         (long long)batch, threads);
                snprintf(force, sizeof force, "PooledConv=%s", cases[i].kernel);
                int forced = strcmp(cases[i].kernel, "dnnl-wino") != 0; /* Winograd: the heuristic's pick */
                il_plan_opts o = {.threads = threads, .kernels = forced ? force : NULL};
                il_plan *p = plan_checked(g, &o, batch, what);
                int dnnl = strncmp(cases[i].kernel, "dnnl", 4) == 0;
                for (int k = 0; k < g->n_nodes; k++)
                    if (!g->nodes[k].dead && !strcmp(g->nodes[k].op_type, "PooledConv") && (!dnnl || have_blocked_kernels())) {
                        const il_kernel *kn = il_plan_kernel(p, k);
                        CU_ASSERT_PTR_NOT_NULL_FATAL(kn);
                        if (strcmp(kn->name, cases[i].kernel))
                            fprintf(stderr, "\n  %s: kernel %s, expected %s\n", what, kn->name, cases[i].kernel);
                        CU_ASSERT_STRING_EQUAL(kn->name, cases[i].kernel);
                        if (dnnl) expect_blocked(p, g, g->nodes[k].outputs[0], !cases[i].plain, what);
                    }
                il_plan_free(p);
                il_graph_free(g);
            }
}

/* ScaledConv (dnnl_conv.c) at batch 1 on 2 threads, where the primitive runs on both and the
 * scale goes into a copy of the weight (a 1x1 64 -> 64 on 64x64) or of the image (a 3x3 64 -> 64
 * on 32x32) on both threads too; against the reference. */
static void test_scaled_conv_threads(void) {
    for (int big = 0; big < 2; big++) {
        int64_t hw = big ? 32 : 64, k = big ? 3 : 1;
        chain b = chain_new(2, 1, 8, hw);
        int a = conv(&b, b.g->inputs[0], 8, 64, 1, 1, 0, 1, "SiLU", -1);
        int gp = pool(&b, "GlobalAveragePool", a, 0, 0, 0, 0);
        int s = conv(&b, conv(&b, gp, 64, 8, 1, 1, 0, 1, "SiLU", -1), 8, 64, 1, 1, 0, 1, "Sigmoid", -1);
        il_graph_add_output(b.g, conv(&b, node2(&b, "Mul", s, a), 64, 64, k, 1, k / 2, 1, "Relu", -1));
        IL_ASSERT_OK(il_pipeline_run(b.g, "fuse-se-scale", &(il_pass_opts){0}, NULL, 0, NULL));
        CU_ASSERT_EQUAL(count(b.g, "ScaledConv"), 1);
        il_plan *p = plan_checked(b.g, &(il_plan_opts){.threads = 2}, 1, big ? "ScaledConv 3x3, 2 threads" : "ScaledConv 1x1, 2 threads");
        il_plan_free(p);
        il_graph_free(b.g);
    }
}

/* il_cpu_silu (silu_fast.c, the oneDNN convolutions' SiLU) against x / (1 + e^-x) in double:
 * fresh random values over [-100, 100] (below -80 the kernel gives 0), 0, +-inf, NaN; lengths
 * with a tail of 1-15 floats, 1 and 2 threads; within 1e-6 + 1e-6 |want|. */
static void test_silu_fast(void) {
    if (!il_cpu_silu_ok()) {
        printf("skipped: no AVX-512 ");
        return;
    }
    int64_t lens[] = {1, 15, 16, 33, 40000, 70001};
    for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
        for (int threads = 1; threads <= 2; threads++) {
            int64_t n = lens[l];
            il_tensor *t = il_tensor_new(IL_F32, 1, &n);
            il_tensor_fill_random(t, op_rng(), -100, 100);
            float *y = t->data, *x = malloc((size_t)n * sizeof(float));
            if (n > 8) y[1] = 0, y[2] = INFINITY, y[3] = -INFINITY, y[4] = NAN, y[5] = -80.5f, y[6] = 88.5f;
            memcpy(x, y, (size_t)n * sizeof(float));
            il_cpu_silu(y, n, threads);
            int bad = 0;
            for (int64_t i = 0; i < n; i++) {
                double v = x[i], want = isinf(v) ? (v > 0 ? v : 0) : v / (1 + exp(-v));
                int ok = isnan(v) ? isnan(y[i]) : y[i] == want || fabs(y[i] - want) <= 1e-6 + 1e-6 * fabs(want);
                if (!ok && bad++ < 3)
                    fprintf(stderr, "\n  silu(%g) = %g, want %g (n %lld, seed %llu)", v, y[i], want, (long long)n,
                            (unsigned long long)op_seed());
            }
            CU_ASSERT_EQUAL(bad, 0);
            free(x);
            il_tensor_free(t);
        }
}

/* A plan holding PooledConvs (each image's SiLU and sums on 2 threads' workers, batch 3) saved
 * and loaded again computes the same outputs bit for bit. */
static void test_pooled_conv_plan_file(void) {
    il_graph *g = se_chain(2, 3, 24, 0, 12, 0);
    plan_file_round_trip(g, 2, 3, "pooled.plan", "PooledConv, plan file");
    il_graph_free(g);
}

/* The pass: a depthwise conv's pool read beside its product fused (symbolic batch), a Conv's pool
 * with a second reader fused; a pool that is its conv's only reader, a pool of a Relu, and a pool
 * of the conv's input left alone; outputs equal; lower-fused writes Conv and the pool back. */
static void test_fuse_se_pool(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 4, DIMS(-1, 6, 7, 7));
    int y = OP(g, "Conv", x, W(g, 4, DIMS(6, 1, 3, 3), -1, 1), W(g, 1, DIMS(6), -1, 1));
    il_node_set_ints(g, last_node, "pads", 4, DIMS(1, 1, 1, 1));
    il_node_set_int(g, last_node, "group", 6);
    int s = OP(g, "Sigmoid", OP(g, "GlobalAveragePool", y));
    OUT(g, OP(g, "Mul", y, s));
    int y2 = OP(g, "Conv", x, W(g, 4, DIMS(4, 6, 1, 1), -1, 1));
    OUT(g, OP(g, "GlobalAveragePool", y2));
    OUT(g, OP(g, "Relu", y2));
    int y3 = OP(g, "Conv", x, W(g, 4, DIMS(5, 6, 1, 1), -1, 1));
    OUT(g, OP(g, "GlobalAveragePool", y3));
    OUT(g, OP(g, "GlobalAveragePool", OP(g, "Relu", x)));
    OUT(g, OP(g, "GlobalAveragePool", x));
    il_pass_stats st = apply(g, "fuse-se-pool");
    CU_ASSERT_EQUAL(il_pass_changes(&st), 2);
    CU_ASSERT_EQUAL(count(g, "PooledConv"), 2);
    CU_ASSERT_EQUAL(count(g, "GlobalAveragePool"), 3);
    CU_ASSERT_EQUAL(count(g, "Conv"), 1);
    il_pass_stats ls = apply(g, IL_PASS_LOWER);
    CU_ASSERT_EQUAL(il_pass_changes(&ls), 2);
    CU_ASSERT_EQUAL(count(g, "PooledConv"), 0);
    CU_ASSERT_EQUAL(count(g, "GlobalAveragePool"), 5);
    CU_ASSERT_EQUAL(count(g, "Conv"), 3);
    il_graph_free(g);
}

/* A plan for an accelerator without a PooledConv kernel splits each into FusedConv and
 * GlobalAveragePool on its own copy: the split graph verifies and computes what the fused one
 * does (il_graph_equivalent: random inputs); the cpu has the kernel and keeps it. Needs no GPU. */
static void test_pooled_conv_split(void) {
    il_graph *g = se_chain(2, 2, 24, 0, 6, 0);
    IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &(il_pass_opts){0}, NULL, 0, NULL));
    CU_ASSERT_EQUAL(count(g, "PooledConv"), 1);
    il_graph *c = il_graph_clone(g);
    CU_ASSERT_EQUAL(il_plan_split_pooled(&(il_backend_iface){.name = "cuda"}, c), 1);
    IL_ASSERT_OK(il_graph_verify(c));
    IL_ASSERT_OK(il_graph_equivalent(g, c, NULL, &rng));
    CU_ASSERT_EQUAL(count(c, "PooledConv"), 0);
    CU_ASSERT_EQUAL(count(c, "GlobalAveragePool"), 1);
    CU_ASSERT_EQUAL(il_plan_split_pooled(&(il_backend_iface){.name = "cpu"}, g), 0);
    il_graph_free(c);
    il_graph_free(g);
}

IL_SUITE("se-pool", {"fuse-se-pool", test_fuse_se_pool}, {"PooledConv kernels", test_pooled_conv_kernels},
         {"PooledConv split for an accelerator", test_pooled_conv_split},
         {"ScaledConv scaling on 2 threads", test_scaled_conv_threads}, {"SiLU after the convolution", test_silu_fast},
         {"PooledConv in a plan file", test_pooled_conv_plan_file})
