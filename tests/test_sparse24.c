/*
 * test_sparse24.c - 2:4 sparsity on the GPU through cuSPARSELt (engine/cuda/sparselt.h,
 * sparse24.c, sparselt.cu), the part that needs no GPU: the exact 2:4 check the kernel's
 * supports() makes (at most 2 nonzeros in each aligned group of 4 along the reduction, both
 * weight layouts, NaN counted as nonzero, K not a multiple of 4 refused); which N:M patterns are
 * 2:4; that `--method nm` pruning yields weights the check accepts; the "not accelerated here
 * (no cuSPARSELt: ...)" sentence where the library or the GPU is missing, and that `inferlab
 * prune --method nm` and `inferlab bench` print it (CLI: IL_BIN).
 * The kernel itself, on a GPU: tests/test_cuda_sparse24.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prune_fixture.h"
#include "sparse24_fixture.h"

/* ---------------------------------------------------------------- the 2:4 check */

static void test_check(void) {
    uint64_t rng = 7;
    int64_t N = 24, K = 32;
    for (int keep = 0; keep <= 2; keep++) {
        float *w = random_nm(N, K, keep, &rng);
        CU_ASSERT_TRUE(il_is_2of4(w, N, K, K, 1)); /* [N, K]: rows contiguous */
        /* the same weight stored [K, N] (MatMul's B): element (n, k) at k * N + n */
        float *t = malloc((size_t)(N * K) * sizeof *t);
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) t[k * N + n] = w[n * K + k];
        CU_ASSERT_TRUE(il_is_2of4(t, N, K, 1, N));
        /* read along the wrong axis, 2:4 rows are not 2:4 columns (nonzeros land 3 or 4 in a group) */
        if (keep == 2) CU_ASSERT_FALSE(il_is_2of4(w, K, N, 1, K));
        /* a third nonzero in one group, anywhere */
        int64_t r = (int64_t)(il_rand_u64(&rng) % (uint64_t)N), g = 4 * (int64_t)(il_rand_u64(&rng) % (uint64_t)(K / 4));
        for (int j = 0, added = 0; j < 4 && keep == 2 && !added; j++)
            if (w[r * K + g + j] == 0) w[r * K + g + j] = 0.5f, added = 1;
        if (keep == 2) CU_ASSERT_FALSE(il_is_2of4(w, N, K, K, 1));
        free(w), free(t);
    }
    float nan4[8] = {NAN, 0, 0, 1.0f, 0, 0, 0, 0}, ok4[8] = {NAN, 0, 0, 0, 0, 0, 0, 0};
    CU_ASSERT_TRUE(il_is_2of4(nan4, 1, 8, 8, 1));
    nan4[1] = 2.0f; /* NaN, 2, 1: three nonzeros */
    CU_ASSERT_FALSE(il_is_2of4(nan4, 1, 8, 8, 1));
    CU_ASSERT_TRUE(il_is_2of4(ok4, 1, 8, 8, 1));
    CU_ASSERT_FALSE(il_is_2of4(ok4, 1, 6, 6, 1)); /* K not a multiple of 4 */
    CU_ASSERT_FALSE(il_is_2of4(NULL, 1, 8, 8, 1));
}

static void test_nm_patterns(void) {
    static const int yes[][2] = {{2, 4}, {1, 4}, {1, 2}, {1, 8}, {2, 8}, {2, 16}};
    static const int no[][2] = {{3, 4}, {2, 3}, {4, 8}, {3, 8}, {2, 5}, {2, 2}, {0, 4}};
    for (int i = 0; i < 6; i++) CU_ASSERT_TRUE(il_nm_is_2of4(yes[i][0], yes[i][1]));
    for (int i = 0; i < 7; i++) CU_ASSERT_FALSE(il_nm_is_2of4(no[i][0], no[i][1]));
}

/* `--method nm` output is what the kernel's check accepts: pruned 2:4 (and 1:4), Gemm's strided
 * [K, N] weight read along K; dense before. */
static void test_pruned_weights_pass(void) {
    const int pat[][2] = {{2, 4}, {1, 4}};
    for (int p = 0; p < 2; p++) {
        il_graph *g = three_layer(11, 1.0);
        il_prune_layer *l;
        int n;
        IL_ASSERT_OK(il_prune_find_layers(g, &l, &n));
        const il_prune_layer *gemm = &l[1];
        CU_ASSERT_STRING_EQUAL(gemm->op, "Gemm");
        CU_ASSERT_FALSE(il_is_2of4(weight(g, "gemm.b")->data, gemm->rows, gemm->cols, gemm->rs, gemm->cs));
        il_prune_opts o = {.scope = IL_PRUNE_NM, .nm_n = pat[p][0], .nm_m = pat[p][1]};
        IL_ASSERT_OK(il_prune_apply(g, &o, NULL));
        CU_ASSERT_TRUE(il_is_2of4(weight(g, "gemm.b")->data, gemm->rows, gemm->cols, gemm->rs, gemm->cs));
        il_prune_layers_free(l, n);
        il_graph_free(g);
    }
}

/* The weight layouts sparse24.c reads (MatMul's B [K, N]: output n's K weights N apart; Gemm
 * transB 1's B [N, K]: contiguous) after `--method nm` 2:4 on x -> MatMul [16, 32] -> Gemm transB
 * [24, 32] -> y: both pass, read as the kernel reads them. */
static void test_kernel_layouts(void) {
    uint64_t rng = 5;
    il_graph *g = il_graph_new("mm_gemm");
    il_graph_set_opset(g, "", 17);
    int x = add_input(g, "x", 2, (int64_t[]){2, 16}), h = il_graph_new_value(g, "h"), y = il_graph_value(g, "y");
    int w1 = il_graph_add_constant(g, "w1", weights(2, (int64_t[]){16, 32}, &rng, 1.0));
    int w2 = il_graph_add_constant(g, "w2", weights(2, (int64_t[]){24, 32}, &rng, 1.0));
    il_graph_add_node(g, "MatMul", "", "mm", 2, (int[]){x, w1}, 1, &h);
    int k = il_graph_add_node(g, "Gemm", "", "gemm", 2, (int[]){h, w2}, 1, &y);
    il_node_set_int(g, k, "transB", 1);
    g->values[y].dtype = IL_F32;
    il_graph_add_output(g, y);
    IL_ASSERT_OK(il_graph_verify(g));
    il_prune_opts o = {.scope = IL_PRUNE_NM, .nm_n = 2, .nm_m = 4};
    IL_ASSERT_OK(il_prune_apply(g, &o, NULL));
    CU_ASSERT_TRUE(il_is_2of4(weight(g, "w1")->data, 32, 16, 1, 32)); /* N 32, K 16 */
    CU_ASSERT_TRUE(il_is_2of4(weight(g, "w2")->data, 24, 32, 32, 1)); /* N 24, K 32 */
    CU_ASSERT_FALSE(il_is_2of4(weight(g, "w1")->data, 16, 32, 32, 1)); /* along N instead: not 2:4 */
    il_graph_free(g);
}

/* ---------------------------------------------------------------- "not accelerated" */

static void test_not_accelerated(void) {
    const char *why, *msg = il_sparse24_not_accelerated();
    if (!gpu_here(&why)) { /* here (CI): never claimed */
        CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "2:4 sparsity is not accelerated here (no cuSPARSELt: "));
        return;
    }
#ifdef IL_HAVE_CUDA
    CU_ASSERT_EQUAL(msg == NULL, il_sparselt_available(NULL)); /* on a GPU: exactly when the library loads */
#endif
}

/* the commands say it: prune --method nm, and bench on the 2:4 model (cpu: no 2:4 kernel) */
static void test_cli_says_so(void) {
    char out[8192], args[1024];
    const char *m = il_test_tmp("nm24.onnx"), *db = il_test_tmp("nm24.db");
    snprintf(args, sizeof args, "prune tests/data/fmnist_teacher.onnx -o %s --method nm --nm 2:4", m);
    CU_ASSERT_EQUAL_FATAL(il_test_cli(args, out, sizeof out), 0);
    const char *msg = il_sparse24_not_accelerated();
    CU_ASSERT_PTR_NOT_NULL(strstr(out, msg ? msg : "2:4 can run on cuSPARSELt"));
    snprintf(args, sizeof args, "prune tests/data/fmnist_teacher.onnx -o %s --method nm --nm 2:3 --json", m);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"accelerated\":false"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "N:M 2:3 is not accelerated by any kernel here"));
    snprintf(args, sizeof args, "prune tests/data/fmnist_teacher.onnx -o %s --method nm --nm 2:4", m);
    CU_ASSERT_EQUAL_FATAL(il_test_cli(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "bench --model %s --batch 1 --threads 1 --dataset none --trials 1 --db %s", m, db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "2:4 weights: not accelerated on the cpu"));
}

IL_SUITE("sparse24", {"the 2:4 check: layouts, a third nonzero, NaN, K % 4", test_check},
         {"N:M patterns that are 2:4", test_nm_patterns}, {"--method nm weights pass the check", test_pruned_weights_pass},
         {"MatMul and Gemm transB weights read as the kernel reads them", test_kernel_layouts},
         {"not accelerated without cuSPARSELt, said so", test_not_accelerated},
         {"prune and bench print it (CLI)", test_cli_says_so})

