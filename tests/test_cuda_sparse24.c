/*
 * test_cuda_sparse24.c - the cuda backend's cusparselt-2:4 kernel (engine/cuda/sparse24.c,
 * sparselt.cu) on a GPU with cuSPARSELt; "skipped: no GPU" / "skipped: no cuSPARSELt" otherwise
 * (its no-GPU half, the 2:4 check and the "not accelerated" reports, is tests/test_sparse24.c).
 *
 * Random 2:4 weights in MatMul, FusedMatMul (bias + Relu) and Gemm (transB 1, C, alpha, beta) at
 * M 1, 37 (padded to 48 inside) and 64 rows, N and K multiples of 16, in fp16 and bf16 plans
 * forced onto the kernel (INFERLAB_SPARSELT=force: correctness, not the speed test), against
 * the reference kernels on the same inputs. Tolerance per element |got - want| <= atol *
 * max(1, max |want|) + rtol * |want|: fp16 rtol 1e-2, atol 1e-2; bf16 rtol 5e-2, atol 5e-2
 * (inputs, weights and outputs rounded to 11 and 8 bits, sums in float32: test_cuda_ops.c's
 * product tolerances). Each case must have run its node on cusparselt-2:4, and a weight with a
 * third nonzero in one group of 4 must not be taken.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_harness.h"
#include "sparse24_fixture.h"

#ifdef IL_CUDA_EMU
#include "cuda_emu.h"
/* tests/cuda_emu.sh: the kernel on the emulated device, cuSPARSELt emulated by
 * tests/cusparselt_emu.c (loaded through INFERLAB_CUSPARSELT, which the script sets) */
static int have_sparselt(void) {
    const char *why;
    printf("(emulated) ");
    if (il_sparselt_available(&why)) return 1;
    fprintf(stderr, "\n  the emulated cuSPARSELt did not load: %s\n", why);
    CU_FAIL("emulated cuSPARSELt");
    return 0;
}
#else
static int have_sparselt(void) {
    const char *why;
    if (!gpu_here(&why)) {
        printf("skipped: no GPU (%s) ", why ? why : "?");
        return 0;
    }
#ifdef IL_HAVE_CUDA
    if (!il_sparselt_available(&why)) {
        printf("skipped: no cuSPARSELt (%s) ", why);
        return 0;
    }
    return 1;
#else
    return 0;
#endif
}
#endif

typedef struct {
    double rtol, atol;
} tol;

static int close_enough(const il_tensor *got, const il_tensor *want, tol t, const char *what) {
    if (got->rank != want->rank || il_tensor_numel(got) != il_tensor_numel(want)) return 0;
    int64_t n = il_tensor_numel(want), worst = -1;
    double scale = 1, excess = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(il_tensor_get(want, i)) > scale) scale = fabs(il_tensor_get(want, i));
    for (int64_t i = 0; i < n; i++) {
        double x = il_tensor_get(got, i), y = il_tensor_get(want, i);
        double e = isfinite(x) ? fabs(x - y) - (t.atol * scale + t.rtol * fabs(y)) : INFINITY;
        if (e > 0 && e > excess) excess = e, worst = i;
    }
    if (worst >= 0)
        fprintf(stderr, "\n  %s: element %lld is %.7g, the reference %.7g\n", what, (long long)worst,
                il_tensor_get(got, worst), il_tensor_get(want, worst));
    return worst < 0;
}

/* One node: op "MatMul" (X [M, K] x W [K, N]), "FusedMatMul" (+ bias [N], Relu) or "Gemm"
 * (transB 1: B [N, K], C [N], alpha 0.5, beta 2); the weight random 2:4 along K. */
static il_graph *one_node(const char *op, int64_t M, int64_t N, int64_t K, uint64_t *rng) {
    il_graph *g = il_graph_new("sparse24");
    il_graph_set_opset(g, "", 13);
    int gemm = !strcmp(op, "Gemm"), fused = !strcmp(op, "FusedMatMul");
    if (fused) il_graph_set_opset(g, "ai.inferlab", 1);
    int x = il_test_input(g, "x", 2, (int64_t[]){M, K}), y = il_graph_value(g, "y");
    float *wt = random_nm(N, K, 2, rng); /* [N, K] */
    il_tensor *w = il_tensor_new(IL_F32, 2, gemm ? (int64_t[]){N, K} : (int64_t[]){K, N});
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) ((float *)w->data)[gemm ? n * K + k : k * N + n] = wt[n * K + k];
    free(wt);
    int in[3] = {x, il_graph_add_constant(g, "w", w), -1}, n_in = 2;
    if (gemm || fused) in[2] = il_test_const(g, "b", 1, (int64_t[]){N}, rng, -1, 1), n_in = 3;
    int k = il_graph_add_node(g, op, fused ? "ai.inferlab" : "", "node", n_in, in, 1, &y);
    if (gemm) {
        il_node_set_int(g, k, "transB", 1);
        il_node_set_float(g, k, "alpha", 0.5f);
        il_node_set_float(g, k, "beta", 2.0f);
    }
    if (fused) il_node_set_string(g, k, "activation", "Relu");
    il_graph_add_output(g, y);
    return g;
}

/* Node "node" of g run on the GPU (or the emulated device) at prec: output 0 (caller frees) and
 * the kernel that ran it (NULL: the cpu). */
static il_tensor *run_gpu(const il_graph *g, il_tensor *x, int prec, const il_kernel **kn) {
    il_tensor *out = NULL;
    *kn = NULL;
#ifdef IL_CUDA_EMU
    const il_kernel *chosen[8] = {0};
    char on_cpu[8] = {0};
    il_status st = il_emu_run(g, &x, prec, NULL, &out, chosen, on_cpu);
    if (!st) *kn = chosen[0];
#else
    il_plan_opts go = {.backend = IL_BACKEND_CUDA, .precision = prec};
    il_plan *p = NULL;
    il_status st = il_plan_create(g, &go, &p);
    if (!st) st = il_plan_run(p, &x, 1);
    if (!st) {
        out = il_tensor_clone(il_plan_output(p, 0));
        if (il_plan_on_acc(p, 0)) *kn = il_plan_kernel(p, 0);
    }
    il_plan_free(p);
#endif
    if (st) fprintf(stderr, "\n  %s\n", il_errmsg());
    return out;
}

/* forced: the node must have run on cusparselt-2:4; otherwise the kernel's own timing chose */
static void check_case(const char *op, int64_t M, int64_t N, int64_t K, int prec, int forced) {
    uint64_t *rng = op_rng();
    il_graph *g = one_node(op, M, N, K, rng);
    il_tensor *x = il_tensor_new(IL_F32, 2, (int64_t[]){M, K});
    il_tensor_fill_random(x, rng, -1, 1);
    il_plan_opts ro = {.reference = 1, .threads = 2};
    il_plan *r = NULL;
    char what[160];
    snprintf(what, sizeof what, "%s M %lld N %lld K %lld [%s]%s", op, (long long)M, (long long)N, (long long)K,
             il_precision_name(prec), forced ? "" : " (timed choice)");
    IL_ASSERT_OK(il_plan_create(g, &ro, &r));
    IL_ASSERT_OK(il_plan_run(r, &x, 1));
    const il_kernel *kn;
    il_tensor *got = run_gpu(g, x, prec, &kn);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    int ran = kn && !strcmp(kn->name, "cusparselt-2:4");
    if (forced && !ran) fprintf(stderr, "\n  %s: ran on %s, not cusparselt-2:4\n", what, kn ? kn->name : "the cpu");
    CU_ASSERT_TRUE(ran || !forced);
    tol t = prec == IL_PREC_BF16 ? (tol){5e-2, 5e-2} : (tol){1e-2, 1e-2};
    CU_ASSERT_TRUE(close_enough(got, il_plan_output(r, 0), t, what));
    il_tensor_free(got);
    il_plan_free(r);
    il_tensor_free(x);
    il_graph_free(g);
}

static void test_gpu_vs_ref(void) {
    if (!have_sparselt()) return;
    setenv("INFERLAB_SPARSELT", "force", 1); /* correctness here, not the speed test */
    const int64_t shapes[][3] = {{1, 64, 64}, {37, 128, 256}, {64, 96, 512}};
    const char *ops[] = {"MatMul", "FusedMatMul", "Gemm"};
    for (int s = 0; s < 3; s++)
        for (int o = 0; o < 3; o++)
            for (int h = 0; h < 2; h++)
                check_case(ops[o], shapes[s][0], shapes[s][1], shapes[s][2], h ? IL_PREC_BF16 : IL_PREC_FP16, 1);
    unsetenv("INFERLAB_SPARSELT");
    /* the kernel's own timing against cuBLAS decides: right either way */
    check_case("MatMul", 64, 256, 256, IL_PREC_FP16, 0);
}

/* a weight with a third nonzero in one group is not taken (the node stays on cuBLAS) */
static void test_gpu_refuses(void) {
    if (!have_sparselt()) return;
    setenv("INFERLAB_SPARSELT", "force", 1);
    il_graph *g = one_node("MatMul", 16, 32, 32, op_rng());
    float *w = (float *)g->values[il_graph_find_value(g, "w")].constant->data;
    for (int j = 0; j < 4; j++) w[j * 32] = 1.0f; /* output 0, k 0..3 all nonzero */
    il_tensor *x = il_tensor_new(IL_F32, 2, (int64_t[]){16, 32});
    il_tensor_fill_random(x, op_rng(), -1, 1);
    const il_kernel *kn;
    il_tensor *got = run_gpu(g, x, IL_PREC_FP16, &kn);
    CU_ASSERT_PTR_NOT_NULL(got);
    CU_ASSERT_TRUE(kn && strcmp(kn->name, "cusparselt-2:4"));
    il_tensor_free(got);
    il_tensor_free(x);
    il_graph_free(g);
    unsetenv("INFERLAB_SPARSELT");
#ifdef IL_HAVE_CUDA
    /* the same refusal from cuSPARSELt's own check, which the kernel's 2:4 check normally
     * spares it: the error counts what the library's own pruning changes (here the smallest of
     * the one group with 3 nonzeros; more would mean it groups the 4s along another dimension) */
    float *wt = random_nm(32, 32, 2, op_rng());
    wt[0] = 0.25f, wt[1] = 0.0f, wt[2] = wt[3] = 0.5f; /* row 0, k 0..3: 3 nonzeros, 0.25 the smallest */
    il_sparselt *lt = NULL;
    il_status st = il_sparselt_create(16, 32, 32, IL_F16, wt, &lt);
    CU_ASSERT_EQUAL(st, IL_ERR_INVALID);
    CU_ASSERT_PTR_NULL(lt);
    const char *msg = il_errmsg();
    if (!strstr(msg, "changed 1 of the weight's 513 nonzeros")) fprintf(stderr, "\n  %s\n", msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "changed 1 of the weight's 513 nonzeros"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "takes its pruned copy"));
    il_error_clear();
    il_sparselt_free(lt);
    free(wt);
#endif
#ifdef IL_CUDA_EMU
    /* a library that computes something else than the documented product (here the emulation
     * reading A's rows in reverse) is caught by the probe at create: an error, not wrong answers */
    wt = random_nm(32, 64, 2, op_rng());
    setenv("IL_EMU_LT_FAULT", "rows", 1);
    st = il_sparselt_create(16, 32, 64, IL_F16, wt, &lt);
    unsetenv("IL_EMU_LT_FAULT");
    CU_ASSERT_EQUAL(st, IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "disagrees with the host on a probe"));
    il_error_clear();
    il_sparselt_free(lt);
    free(wt);
#endif
}

IL_SUITE("cuda-sparse24", {"2:4 MatMul/FusedMatMul/Gemm on cuSPARSELt vs the reference, fp16 and bf16", test_gpu_vs_ref},
         {"a weight that is not 2:4 is not taken", test_gpu_refuses})
