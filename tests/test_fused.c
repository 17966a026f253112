/*
 * test_fused.c - the ai.inferlab fused kernels (engine/ops/fused*.c): on fresh random inputs,
 * the fast kernel against the reference kernel against the unfused subgraph of standard ops
 * (the same node lowered by passes/lower_fused.c), for each activation and the geometries the
 * fast paths treat differently (im2col, 1x1, depthwise, groups, 1-D, 3-D, tiles, broadcasting).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../passes/passes.h"
#include "op_harness.h"

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
/* The kernels a non-reference run chose count as compared with the reference for the registry
 * walk (tests/test_registry.c): every caller checks the two runs' outputs against each other. */
static il_tensor *run_o(const il_graph *g, il_tensor **in, int reference, const il_plan_opts *opts) {
    (void)reference; /* opts says it */
    return op_run_graph(g, in, opts);
}

static il_tensor *run_t(const il_graph *g, il_tensor **in, int reference, int threads) {
    il_plan_opts o = {.reference = reference, .threads = threads};
    return run_o(g, in, reference, &o);
}

static il_tensor *run1(const il_graph *g, il_tensor **in, int reference) { return run_t(g, in, reference, 2); }

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

/* g (freed) with the kernels of spec forced, on 1 and 3 threads, against the reference. */
static void check_forced(il_graph *g, const char *spec, const char *what) {
    il_tensor *in[8] = {0};
    for (int i = 0; i < g->n_inputs; i++) {
        const il_value *x = &g->values[g->inputs[i]];
        in[i] = il_tensor_new(IL_F32, x->rank, x->dims);
        il_tensor_fill_random(in[i], &rng, -2, 2);
    }
    il_tensor *ref = run_t(g, in, 1, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    for (int threads = 1; threads <= 3; threads += 2) {
        il_plan_opts o = {.threads = threads, .kernels = spec};
        il_tensor *y = run_o(g, in, 0, &o);
        CU_ASSERT_PTR_NOT_NULL_FATAL(y);
        char msg[256];
        int64_t w;
        int ok = il_tensor_allclose(y, ref, 1e-4, 1e-4, &w, msg, sizeof msg);
        if (!ok) fprintf(stderr, "\n  %s (%s, %d threads) vs ref: %s\n", what, spec, threads, msg);
        CU_ASSERT_TRUE(ok);
        il_tensor_free(y);
    }
    il_tensor_free(ref);
    for (int i = 0; i < g->n_inputs; i++) il_tensor_free(in[i]);
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
    /* oneDNN's product with the GELU after it (engine/cpu/dnnl_matmul.c, where the CPU has
     * AVX-512): 90000 outputs, split over the threads, values to +-20 (erf clamped at +-4 past
     * x = 5.7), a row length of 300 (a masked tail every row) */
    il_graph *g = new_graph(17);
    int64_t ad[3] = {2, 150, 64}, bd[2] = {64, 300}, nd[1] = {300};
    int in[3] = {input(g, "a", 3, ad), weight(g, "b", 2, bd), weight(g, "bias", 1, nd)};
    int y = il_graph_value(g, "y");
    int j = il_graph_add_node(g, "FusedMatMul", "ai.inferlab", "fm", 3, in, 1, &y);
    set_act(g, j, "Gelu");
    il_graph_add_output(g, y);
#ifdef IL_HAVE_DNNL
    check_forced(g, "FusedMatMul=dnnl", "FusedMatMul Gelu, 90000 outputs");
#else
    check_three(g, "FusedMatMul Gelu, 90000 outputs");
#endif
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

/* Attention's fast kernel (sgemm over blocks of query rows, softmax in between) against the
 * reference at 1, 2 and 3 threads, which split the rows into blocks differently; g is freed.
 * The inputs are random in [-2, 2); constant masks keep their values. */
static void check_attention(il_graph *g, const char *what) {
    il_tensor *in[4] = {0};
    for (int i = 0; i < g->n_inputs; i++) {
        const il_value *x = &g->values[g->inputs[i]];
        in[i] = il_tensor_new(IL_F32, x->rank, x->dims);
        il_tensor_fill_random(in[i], &rng, -2, 2);
    }
    il_plan_opts ro = {.reference = 1, .threads = 1};
    il_tensor **ref;
    int n;
    IL_ASSERT_OK(il_run_model(g, in, g->n_inputs, &ro, &ref, &n));
    for (int threads = 1; threads <= 3; threads++) {
        il_tensor *fast = run_t(g, in, 0, threads);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fast);
        char msg[256];
        int64_t w;
        int ok = il_tensor_allclose(fast, ref[0], 1e-4, 1e-5, &w, msg, sizeof msg);
        if (!ok) fprintf(stderr, "\n  Attention %s, %d threads, fast vs ref: %s\n", what, threads, msg);
        CU_ASSERT_TRUE(ok);
        il_tensor_free(fast);
    }
    il_tensor_free(ref[0]);
    free(ref);
    for (int i = 0; i < g->n_inputs; i++) il_tensor_free(in[i]);
    il_graph_free(g);
}

/* Attention(Q [.., sq, d], Kt [.., d, sk], V [.., sk, dv], mask) with the leading dims of each
 * given separately (rank r - 2 of them), mask of rank mr with dims md (mr < 0: none). */
/* g with node `op`(in) of the ai.inferlab domain, scale 1 / sqrt(d), its output the graph's. */
static il_graph *with_attention(il_graph *g, const char *op, const int *in, int64_t d) {
    int y = il_graph_value(g, "y");
    int j = il_graph_add_node(g, op, "ai.inferlab", "att", in[3] >= 0 ? 4 : 3, in, 1, &y);
    il_node_set_float(g, j, "scale", 1.0f / sqrtf((float)(d > 0 ? d : 1)));
    il_graph_add_output(g, y);
    return g;
}

static il_graph *attention_graph(int r, const int64_t *ql, const int64_t *kl, const int64_t *vl, int64_t sq,
                                 int64_t sk, int64_t d, int64_t dv, int mr, const int64_t *md) {
    il_graph *g = new_graph(17);
    int64_t qd[IL_MAX_RANK], kd[IL_MAX_RANK], vd[IL_MAX_RANK];
    for (int i = 0; i < r - 2; i++) qd[i] = ql[i], kd[i] = kl[i], vd[i] = vl[i];
    qd[r - 2] = sq, qd[r - 1] = d;
    kd[r - 2] = d, kd[r - 1] = sk;
    vd[r - 2] = sk, vd[r - 1] = dv;
    int in[4] = {input(g, "q", r, qd), input(g, "kt", r, kd), input(g, "v", r, vd), mr >= 0 ? input(g, "mask", mr, md) : -1};
    return with_attention(g, "Attention", in, d);
}

static void test_attention_shapes(void) {
    /* (B, H, S, D) shapes: tiny (below the parallel threshold), ViT/BERT-like, S not a multiple
     * of any block, more rows than one cache block (Sk 300: 218 rows), Sq != Sk, D != Dv */
    static const int64_t shapes[][6] = {
        /* B  H   Sq   Sk   D   Dv */
        {1, 1, 1, 1, 1, 1},      {1, 2, 5, 5, 4, 4},     {2, 4, 17, 17, 16, 16},  {3, 4, 16, 16, 16, 16},
        {2, 2, 128, 128, 32, 32}, {1, 3, 67, 67, 64, 64}, {1, 1, 300, 300, 8, 8}, {2, 3, 37, 53, 24, 40},
        {1, 1, 250, 7, 16, 5},   {4, 1, 1, 90, 32, 32},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int64_t *s = shapes[i];
        int64_t lead[2] = {s[0], s[1]}, sq = s[2], sk = s[3];
        char what[96];
        snprintf(what, sizeof what, "B=%lld H=%lld Sq=%lld Sk=%lld D=%lld Dv=%lld", (long long)s[0], (long long)s[1],
                 (long long)sq, (long long)sk, (long long)s[4], (long long)s[5]);
        /* masks: none, per batch [B,1,1,Sk] (BERT's), per head [1,H,Sq,Sk], full [B,H,Sq,Sk],
         * [Sq,Sk], [Sq,1] (one value per row), [Sk] */
        const int64_t mb[4] = {s[0], 1, 1, sk}, mh[4] = {1, s[1], sq, sk}, mf[4] = {s[0], s[1], sq, sk},
                      m2[2] = {sq, sk}, mcol[2] = {sq, 1}, m1[1] = {sk};
        check_attention(attention_graph(4, lead, lead, lead, sq, sk, s[4], s[5], -1, NULL), what);
        check_attention(attention_graph(4, lead, lead, lead, sq, sk, s[4], s[5], 4, mb), what);
        check_attention(attention_graph(4, lead, lead, lead, sq, sk, s[4], s[5], 4, mh), what);
        if (i % 3 == 0) check_attention(attention_graph(4, lead, lead, lead, sq, sk, s[4], s[5], 4, mf), what);
        if (i % 3 == 1) check_attention(attention_graph(4, lead, lead, lead, sq, sk, s[4], s[5], 2, m2), what);
        if (i % 3 == 2) check_attention(attention_graph(4, lead, lead, lead, sq, sk, s[4], s[5], 2, mcol), what);
        check_attention(attention_graph(4, lead, lead, lead, sq, sk, s[4], s[5], 1, m1), what);
    }
    /* broadcast leading dims: keys and values shared by the batch, queries shared by the heads */
    int64_t bh[2] = {3, 4}, b1[2] = {1, 4}, q1[2] = {3, 1}, mb[4] = {3, 1, 1, 29};
    check_attention(attention_graph(4, bh, b1, b1, 21, 29, 16, 8, 4, mb), "K, V broadcast over the batch");
    check_attention(attention_graph(4, q1, bh, bh, 21, 29, 16, 8, -1, NULL), "Q broadcast over the heads");
    /* rank 3 ([B*H, S, D], as some exports reshape) and plain matrices */
    int64_t l3[1] = {6}, m3[3] = {6, 1, 40};
    check_attention(attention_graph(3, l3, l3, l3, 40, 40, 16, 16, 3, m3), "rank 3");
    check_attention(attention_graph(2, NULL, NULL, NULL, 70, 70, 32, 32, -1, NULL), "rank 2");
    /* more keys than one block row holds (il_tile_rows gives 1 row per block) */
    int64_t one[2] = {1, 2};
    check_attention(attention_graph(4, one, one, one, 3, 70001, 2, 2, -1, NULL), "Sk 70001");
    /* empty: no keys (zeros, as the reference's empty sums), no queries, no features */
    check_attention(attention_graph(4, one, one, one, 5, 0, 4, 4, -1, NULL), "Sk 0");
    check_attention(attention_graph(4, one, one, one, 0, 5, 4, 4, -1, NULL), "Sq 0");
    check_attention(attention_graph(4, one, one, one, 5, 6, 0, 4, -1, NULL), "D 0");
}

/* MultiHeadAttention(Q [B, Sq, H, D], K [B, Sk, H, D], V [B, Sk, H, Dv], mask of rank mr, dims
 * md (mr < 0: none)): the heads read in place, the context written in [B, Sq, H, Dv]. */
static il_graph *mha_graph(const int64_t *s, int mr, const int64_t *md) {
    il_graph *g = new_graph(17);
    int64_t b = s[0], h = s[1], sq = s[2], sk = s[3], d = s[4], dv = s[5];
    int in[4] = {input(g, "q", 4, (int64_t[]){b, sq, h, d}), input(g, "k", 4, (int64_t[]){b, sk, h, d}),
                 input(g, "v", 4, (int64_t[]){b, sk, h, dv}), mr >= 0 ? input(g, "mask", mr, md) : -1};
    return with_attention(g, "MultiHeadAttention", in, d);
}

/* MultiHeadAttention: fast = ref at 1-3 threads, and both = the unfused graph (the head
 * Transposes around Attention's standard ops), within 1e-4 + 1e-4 |want|. Shapes: one element,
 * tiny BERT's blocks (small products: the keys transposed per block), BERT-mini's and ViT-tiny's
 * (oneDNN's sgemm on strided rows), Sq != Sk with D != Dv, more queries than keys, one query. */
static void test_multi_head_attention(void) {
    static const int64_t shapes[][6] = {
        /* B  H   Sq   Sk   D   Dv */
        {1, 1, 1, 1, 1, 1},       {2, 4, 17, 17, 16, 16}, {2, 4, 128, 128, 64, 64}, {1, 3, 197, 197, 64, 64},
        {2, 3, 37, 53, 24, 40},   {1, 1, 250, 7, 16, 5},  {3, 2, 1, 90, 32, 32},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int64_t *s = shapes[i];
        char what[96];
        snprintf(what, sizeof what, "heads B=%lld H=%lld Sq=%lld Sk=%lld D=%lld Dv=%lld", (long long)s[0],
                 (long long)s[1], (long long)s[2], (long long)s[3], (long long)s[4], (long long)s[5]);
        /* masks: BERT's [B,1,1,Sk], per head [1,H,Sq,Sk], [Sq,Sk], none */
        const int64_t mb[4] = {s[0], 1, 1, s[3]}, mh[4] = {1, s[1], s[2], s[3]}, m2[2] = {s[2], s[3]};
        check_attention(mha_graph(s, 4, mb), what);
        check_attention(mha_graph(s, i % 2 ? 4 : 2, i % 2 ? mh : m2), what);
        check_attention(mha_graph(s, -1, NULL), what);
        if (s[2] * s[3] <= 4096) check_three(mha_graph(s, 4, mb), what);
    }
    /* shape errors: a rank-3 Q, K of another head count */
    il_plan *p;
    il_graph *g = mha_graph((const int64_t[]){2, 2, 5, 5, 4, 4}, -1, NULL);
    g->values[g->inputs[0]].rank = 3;
    CU_ASSERT_EQUAL(il_plan_create(g, NULL, &p), IL_ERR_SHAPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "need rank 4"));
    il_graph_free(g);
    g = mha_graph((const int64_t[]){2, 2, 5, 5, 4, 4}, -1, NULL);
    g->values[g->inputs[1]].dims[2] = 3;
    CU_ASSERT_EQUAL(il_plan_create(g, NULL, &p), IL_ERR_SHAPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "Q has heads 2, K 3"));
    il_graph_free(g);
}

/* Masks with -inf: causal (the upper triangle); one row masked whole, which gives NaN in that
 * row (exp(-inf - -inf)) in both kernels and in the unfused Softmax; and a NaN in one element,
 * which makes its whole row NaN (the softmax sum), not just one probability. */
static void test_attention_inf_mask(void) {
    for (int kind = 0; kind < 6; kind++) { /* 19 keys (blocks of short rows), 70 (long rows, AVX-512) */
        il_graph *g = new_graph(17);
        int64_t n = kind < 3 ? 19 : 70, qd[4] = {2, 3, n, 16}, kd[4] = {2, 3, 16, n}, md[2] = {n, n};
        il_tensor *m = il_tensor_new(IL_F32, 2, md);
        float *mp = m->data;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) mp[i * n + j] = j > i || (kind % 3 == 1 && i == 7) ? -INFINITY : 0.0f;
        if (kind % 3 == 2) mp[3 * n + 1] = NAN;
        int in[4] = {input(g, "q", 4, qd), input(g, "kt", 4, kd), input(g, "v", 4, qd), il_graph_add_constant(g, "mask", m)};
        int y = il_graph_value(g, "y");
        int j = il_graph_add_node(g, "Attention", "ai.inferlab", "att", 4, in, 1, &y);
        il_node_set_float(g, j, "scale", 0.25f);
        il_graph_add_output(g, y);
        check_attention(g, kind % 3 == 0 ? "causal -inf mask" : kind % 3 == 1 ? "row masked whole" : "NaN in the mask");
    }
}

/* The FusedConv kernels forced by name against the reference: oneDNN's (engine/cpu/dnnl_conv.c;
 * absent in a build without oneDNN) and im2col-blas, which the heuristic no longer picks where
 * "dnnl" exists. Every activation (post-ops for oneDNN), the residual (its sum post-op), and
 * geometries where oneDNN takes different paths (channels that block by 16, depthwise, 1x1,
 * grouped, strided, 7x7 stems, 1-D and 3-D), on 1 and 3 threads. */
static void test_fused_conv_forced(void) {
    static const char *names[] = {"dnnl", "dnnl-nchw", "im2col-blas"};
    for (int kn = 0; kn < 3; kn++) {
        const il_kernel *k = il_kernel_find("ai.inferlab", "FusedConv", "cpu", names[kn]);
#ifndef IL_HAVE_DNNL
        if (strncmp(names[kn], "dnnl", 4) == 0) {
            CU_ASSERT_PTR_NULL(k);
            continue;
        }
#endif
        CU_ASSERT_PTR_NOT_NULL_FATAL(k);
        char spec[64];
        snprintf(spec, sizeof spec, "FusedConv=%s", names[kn]);
        struct { il_graph *g; const char *what; } cases[] = {
            {conv_graph(2, 2, 6, 9, 8, 3, 2, 1, 1, 1, 0, "Relu"), "3x3/s2"},
            {conv_graph(2, 1, 16, 14, 32, 3, 1, 1, 1, 1, 1, "Relu"), "3x3 16->32 + residual"},
            {conv_graph(2, 2, 32, 9, 32, 3, 2, 1, 32, 1, 0, "Clip"), "depthwise 32 /s2"},
            {conv_graph(2, 3, 8, 8, 8, 3, 1, 1, 8, 1, 1, "Clip"), "depthwise 8 + residual"},
            {conv_graph(2, 1, 64, 7, 32, 1, 1, 0, 1, 1, 1, NULL), "1x1 64->32 + residual"},
            {conv_graph(2, 2, 8, 6, 12, 3, 1, 1, 4, 0, 0, "Relu"), "grouped, no bias"},
            {conv_graph(2, 1, 3, 17, 16, 7, 2, 3, 1, 1, 0, "Relu"), "7x7/s2 first layer"},
            {conv_graph(1, 2, 4, 20, 6, 3, 1, 1, 1, 1, 1, "Relu"), "1-D"},
            {conv_graph(3, 1, 3, 5, 4, 3, 1, 1, 1, 1, 1, "Sigmoid"), "3-D"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_forced(cases[i].g, spec, cases[i].what);
        for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
            check_forced(conv_graph(2, 1, 16, 6, 16, 3, 1, 1, 1, 1, 1, acts[a]), spec, acts[a] ? acts[a] : "none");
            check_forced(conv_graph(2, 2, 8, 5, 8, 1, 1, 0, 1, 1, 0, acts[a]), spec, acts[a] ? acts[a] : "none");
        }
    }
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
    /* ChannelShuffle: a join of 3 + 4 channels in 2 groups; 16 channels in 3 outputs; spatial
     * dims that differ between the inputs */
    static const int64_t chans[3][2] = {{3, 4}, {8, 8}, {8, 8}}, groups[3] = {2, 2, 2};
    static const int outs[3] = {1, 3, 1};
    static const char *want[3] = {"7 channels do not split into 2 groups", "16 channels do not split into 3 equal outputs",
                                  "input 1 has dim 2 of 6"};
    for (int t = 0; t < 3; t++) {
        g = new_graph(13);
        int in[2], y[3] = {il_graph_value(g, "y0"), il_graph_value(g, "y1"), il_graph_value(g, "y2")};
        for (int i = 0; i < 2; i++)
            in[i] = input(g, i ? "b" : "a", 4, (int64_t[]){2, chans[t][i], t == 2 && i ? 6 : 5, 5});
        int j = il_graph_add_node(g, "ChannelShuffle", "ai.inferlab", "shuffle", 2, in, outs[t], y);
        il_node_set_int(g, j, "groups", groups[t]);
        for (int i = 0; i < outs[t]; i++) il_graph_add_output(g, y[i]);
        CU_ASSERT_NOT_EQUAL(il_plan_create(g, NULL, &p), IL_OK);
        if (!strstr(il_errmsg(), want[t])) fprintf(stderr, "\n  ChannelShuffle error: %s\n", il_errmsg());
        CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), want[t]));
        il_graph_free(g);
    }
}

/* Gelu, LayerNormalization and HardSwish of ai.inferlab (the standard ops for older opsets):
 * the plan's kernel against the reference on random inputs of a shape that splits over threads. */
static void test_forwarded_ops(void) {
    static const char *ops[] = {"Gelu", "HardSwish", "LayerNormalization"};
    for (int i = 0; i < 3; i++) {
        il_graph *g = new_graph(13);
        int64_t xd[3] = {3, 37, 65}, sd[1] = {65};
        int in[3] = {input(g, "x", 3, xd), -1, -1}, n_in = 1, y = il_graph_value(g, "y");
        if (i == 2) in[1] = weight(g, "scale", 1, sd), in[2] = weight(g, "bias", 1, sd), n_in = 3;
        il_graph_add_node(g, ops[i], "ai.inferlab", "node", n_in, in, 1, &y);
        il_graph_add_output(g, y);
        il_tensor *x = il_tensor_new(IL_F32, 3, xd);
        il_tensor_fill_random(x, &rng, -4, 4);
        il_tensor *ref = run1(g, &x, 1), *fast = run_t(g, &x, 0, 3);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fast);
        char msg[256];
        int64_t w;
        int ok = il_tensor_allclose(fast, ref, 1e-5, 1e-5, &w, msg, sizeof msg);
        if (!ok) fprintf(stderr, "\n  ai.inferlab %s fast vs ref: %s\n", ops[i], msg);
        CU_ASSERT_TRUE(ok);
        if (i == 0) { /* Gelu's plan takes oneDNN's kernel where there is one: the scalar one too */
            il_tensor_free(fast);
            fast = run_o(g, &x, 0, &(il_plan_opts){.threads = 3, .kernels = "Gelu=fast"});
            CU_ASSERT_PTR_NOT_NULL_FATAL(fast);
            CU_ASSERT_TRUE(il_tensor_allclose(fast, ref, 1e-5, 1e-5, &w, msg, sizeof msg));
        }
        il_tensor_free(ref), il_tensor_free(fast), il_tensor_free(x);
        il_graph_free(g);
    }
}

/* A transformer block's residual Add into a LayerNormalization of the last axis (opset 17: the
 * standard op, 13: ai.inferlab's); keep_sum: the sum read again (pre-LN blocks) by an Add of it
 * and the LayerNorm's output, the graph's one output; bcast: b of the last dim only. */
static il_graph *skip_ln_graph(int64_t opset, int keep_sum, int bcast) {
    il_graph *g = new_graph(opset);
    int64_t xd[3] = {3, 37, 67}, hd[1] = {67};
    int a = input(g, "a", 3, xd), b = bcast ? weight(g, "b", 1, hd) : input(g, "b", 3, xd);
    int sum = il_graph_value(g, "s"), y = il_graph_value(g, "y"), z = il_graph_value(g, "z");
    il_graph_add_node(g, "Add", "", "residual", 2, (int[]){a, b}, 1, &sum);
    int in[3] = {sum, weight(g, "gamma", 1, hd), weight(g, "beta", 1, hd)};
    int ln = il_graph_add_node(g, "LayerNormalization", opset >= 17 ? "" : "ai.inferlab", "ln", 3, in, 1, &y);
    il_node_set_int(g, ln, "axis", -1);
    il_node_set_float(g, ln, "epsilon", 1e-6f);
    if (keep_sum) il_graph_add_node(g, "Add", "", "next", 2, (int[]){y, sum}, 1, &z);
    il_graph_add_output(g, keep_sum ? z : y);
    return g;
}

static int live(const il_graph *g, const char *op) {
    int n = 0;
    for (int k = 0; k < g->n_nodes; k++) n += !g->nodes[k].dead && !strcmp(g->nodes[k].op_type, op);
    return n;
}

/* fuse-skip-layernorm: the fused node's fast kernel (3 threads) and reference against the unfused
 * graph's reference, and lowered back, within 1e-4 + 1e-4 |want| on inputs in [-2, 2); a
 * broadcast Add is left alone. */
static void test_skip_layernorm(void) {
    for (int c = 0; c < 5; c++) {
        int64_t opset = c % 2 ? 13 : 17;
        int keep = c / 2 == 1, bcast = c == 4;
        il_graph *g = skip_ln_graph(opset, keep, bcast), *orig = il_graph_clone(g);
        il_pass_stats st;
        IL_ASSERT_OK(il_pass_run(g, "fuse-skip-layernorm", &st));
        CU_ASSERT_EQUAL(live(g, "SkipLayerNormalization"), !bcast);
        CU_ASSERT_EQUAL(live(g, "Add"), keep || bcast);
        IL_ASSERT_OK(il_graph_verify(g));
        il_graph *low = il_graph_clone(g);
        IL_ASSERT_OK(il_pass_run(low, IL_PASS_LOWER, &st));
        CU_ASSERT_EQUAL(live(low, "SkipLayerNormalization"), 0);
        il_tensor *in[2] = {il_tensor_new(IL_F32, 3, (int64_t[]){3, 37, 67}), il_tensor_new(IL_F32, 3, (int64_t[]){3, 37, 67})};
        for (int i = 0; i < 2; i++) il_tensor_fill_random(in[i], &rng, -2, 2);
        il_tensor *want = run1(orig, in, 1), *got[3] = {run1(g, in, 1), run_t(g, in, 0, 3), run1(low, in, 1)};
        CU_ASSERT_PTR_NOT_NULL_FATAL(want);
        static const char *what[3] = {"reference", "fast", "lowered"};
        for (int i = 0; i < 3; i++) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(got[i]);
            char msg[256];
            int64_t w;
            int ok = il_tensor_allclose(got[i], want, 1e-4, 1e-4, &w, msg, sizeof msg);
            if (!ok) fprintf(stderr, "\n  SkipLayerNormalization case %d %s vs unfused: %s\n", c, what[i], msg);
            CU_ASSERT_TRUE(ok);
            il_tensor_free(got[i]);
        }
        il_tensor_free(want), il_tensor_free(in[0]), il_tensor_free(in[1]);
        il_graph_free(low), il_graph_free(orig), il_graph_free(g);
    }
}

IL_SUITE("fused", {"FusedConv fast = ref = unfused", test_fused_conv}, {"Gelu, HardSwish, LayerNorm", test_forwarded_ops},
         {"FusedGemm/FusedMatMul fast = ref = unfused", test_fused_gemm_matmul},
         {"Attention and SiLU fast = ref = unfused", test_attention_silu},
         {"Attention fast = ref: shapes, masks, broadcasting, threads", test_attention_shapes},
         {"Attention with -inf masks", test_attention_inf_mask},
         {"MultiHeadAttention fast = ref = unfused", test_multi_head_attention}, {"fused op errors", test_fused_errors},
         {"FusedConv kernels forced = ref", test_fused_conv_forced},
         {"SkipLayerNormalization fast = ref = unfused", test_skip_layernorm})
