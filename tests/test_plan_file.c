/*
 * test_plan_file.c - plan files (engine/plan_file.c, `inferlab build`): build -> save -> load
 * gives the same outputs, bit for bit, as the plan built from the model with the same kernels;
 * a truncated, corrupt, foreign (other version, format or machine) or non-plan file is refused
 * with a message saying what is wrong, through the API and through the real binary ($IL_BIN).
 * cuda plans: the header's GPU checks are tested without a GPU on hand-written headers (a cpu
 * plan's header rewritten, and INFERLAB_TEST_DEVICE standing in for this machine's GPU); the
 * round trip on the GPU prints "skipped: no GPU" here.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <zlib.h>

#include "../passes/passes.h"
#include "test.h"

#define cli il_test_cli

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* The demo teacher after -O2: FusedConv (stateful kernel), pools, Gemm. */
static il_graph *teacher_o2(void) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(IL_TESTDATA "/fmnist_teacher.onnx", &g));
    il_pass_opts po = {.seed = 1};
    IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &po, NULL, 0, NULL));
    il_graph_compact(g);
    return g;
}

static il_tensor *input(int64_t batch, uint64_t seed) {
    int64_t d[4] = {batch, 1, 28, 28};
    il_tensor *x = il_tensor_new(IL_F32, 4, d);
    uint64_t rng = seed;
    il_tensor_fill_random(x, &rng, -1, 1);
    return x;
}

static void test_round_trip(void) {
    il_graph *g = teacher_o2();
    const char *path = il_test_tmp("teacher.plan");
    for (int timed = 0; timed < 2; timed++) {
        il_plan_opts o = {.batch = 3, .threads = 2, .tactics = timed ? IL_TACTICS_TIMED : IL_TACTICS_HEURISTIC};
        il_plan *p, *q;
        IL_ASSERT_OK(il_plan_create(g, &o, &p));
        IL_ASSERT_OK(il_plan_save(p, path));
        CU_ASSERT_TRUE(il_plan_file_is(path));
        il_plan_opts lo = {.threads = 2};
        IL_ASSERT_OK(il_plan_load(path, &lo, &q));
        const il_graph *gq = il_plan_graph(q);
        CU_ASSERT_EQUAL(gq->n_nodes, g->n_nodes);
        for (int k = 0; k < g->n_nodes; k++) {
            const il_kernel *a = il_plan_kernel(p, k), *b = il_plan_kernel(q, k);
            CU_ASSERT_TRUE((!a && !b) || (a && b && a == b));
        }
        CU_ASSERT_EQUAL(il_plan_peak_bytes(p), il_plan_peak_bytes(q));
        for (int r = 0; r < 2; r++) {
            il_test_plans_agree(p, q, input(3, 11 + (uint64_t)r));
        }
        /* another batch: the loaded plan lays itself out again like any plan */
        il_test_plans_agree(p, q, input(5, 5));
        il_plan_free(p);
        il_plan_free(q);
    }
    il_graph_free(g);
}

/* Rewrite a plan's header text (a NUL-free replacement of the same or any length is fine:
 * sections carry lengths) and fix the checksum, so only the header's meaning is wrong. */
static void rewrite_header(const char *src, const char *dst, const char *from, const char *to) {
    size_t n = 0;
    unsigned char *b = slurp(src, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* HEAD is the first section: magic(8) fmt(4) tag(4) len(8) text */
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)b[16 + i] << (8 * i);
    char *head = malloc(hl + 1);
    memcpy(head, b + 24, hl);
    head[hl] = 0;
    char *at = strstr(head, from);
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    size_t nl = hl - strlen(from) + strlen(to);
    unsigned char *o = malloc(n + strlen(to) + 16);
    memcpy(o, b, 16);
    for (int i = 0; i < 8; i++) o[16 + i] = (unsigned char)(nl >> (8 * i));
    size_t p = 24;
    memcpy(o + p, head, (size_t)(at - head)), p += (size_t)(at - head);
    memcpy(o + p, to, strlen(to)), p += strlen(to);
    size_t rest = hl - (size_t)(at - head) - strlen(from);
    memcpy(o + p, at + strlen(from), rest), p += rest;
    memcpy(o + p, b + 24 + hl, n - 24 - hl - 4), p += n - 24 - hl - 4;
    uint32_t crc = (uint32_t)crc32(0, o, (uInt)p);
    for (int i = 0; i < 4; i++) o[p++] = (unsigned char)(crc >> (8 * i));
    il_test_write_bytes(dst, o, p);
    free(o), free(head), free(b);
}

static void expect_refused(const char *path, il_status want, const char *text) {
    il_plan *p = NULL;
    il_status st = il_plan_load(path, NULL, &p);
    if (st != want || !strstr(il_errmsg(), text))
        fprintf(stderr, "\n  load %s: got %s '%s', want %s with '%s'\n", path, il_status_str(st), il_errmsg(),
                il_status_str(want), text);
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), text));
    CU_ASSERT_PTR_NULL(p);
}

static void test_refusals(void) {
    il_graph *g = teacher_o2();
    const char *path = il_test_tmp("good.plan"), *bad = il_test_tmp("bad.plan");
    il_plan *p;
    il_plan_opts o = {.threads = 1};
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    IL_ASSERT_OK(il_plan_save(p, path));
    il_plan_free(p);
    size_t n = 0;
    unsigned char *b = slurp(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* every truncation: refused, never a crash (ASan runs watch the reads) */
    for (size_t len = 0; len < n; len += len < 64 ? 1 : n / 97 + 1) {
        il_test_write_bytes(bad, b, len);
        il_plan *q = NULL;
        CU_ASSERT_NOT_EQUAL(il_plan_load(bad, NULL, &q), IL_OK);
        CU_ASSERT_PTR_NULL(q);
    }
    il_test_write_bytes(bad, b, n - 1);
    expect_refused(bad, IL_ERR_PARSE, "truncated or corrupt");
    /* one flipped bit anywhere after the magic */
    uint64_t rng = 99;
    for (int t = 0; t < 40; t++) {
        size_t at = 12 + (size_t)(il_rand_u64(&rng) % (n - 12));
        b[at] ^= (unsigned char)(1u << (il_rand_u64(&rng) % 8));
        il_test_write_bytes(bad, b, n);
        expect_refused(bad, IL_ERR_PARSE, "truncated or corrupt");
        b[at] ^= (unsigned char)(1u << 0), b[at] ^= (unsigned char)(1u << 0); /* restore below */
        free(b);
        b = slurp(path, &n);
    }
    /* not a plan; another format */
    il_test_write_bytes(bad, "hello, world", 12);
    expect_refused(bad, IL_ERR_PARSE, "not an inferlab plan");
    b[8] = 2;
    il_test_write_bytes(bad, b, n);
    expect_refused(bad, IL_ERR_UNSUPPORTED, "format 2");
    free(b);
    /* another version; another machine */
    char from[64];
    snprintf(from, sizeof from, "inferlab=%s\n", IL_VERSION);
    rewrite_header(path, bad, from, "inferlab=0.0.1\n");
    expect_refused(bad, IL_ERR_UNSUPPORTED, "built by inferlab 0.0.1");
    rewrite_header(path, bad, "machine=cpu:", "machine=cpu:Another CPU|avx2,");
    expect_refused(bad, IL_ERR_UNSUPPORTED, "another machine");
    expect_refused("/nonexistent/x.plan", IL_ERR_IO, "cannot open plan");
    il_graph_free(g);
}

/* Output 0 of two `run --out` folders, compared within rtol/atol. */
static int outputs_close(const char *dir_a, const char *dir_b, double rtol, double atol, const char *what) {
    char a[4096], b[4096], msg[256];
    snprintf(a, sizeof a, "%s/output_0.npy", dir_a);
    snprintf(b, sizeof b, "%s/output_0.npy", dir_b);
    il_tensor *ta = NULL, *tb = NULL;
    int64_t w;
    int ok = !il_tensor_load(a, &ta) && !il_tensor_load(b, &tb) && il_tensor_allclose(ta, tb, rtol, atol, &w, msg, sizeof msg);
    if (!ok) fprintf(stderr, "\n  %s: %s\n", what, ta && tb ? msg : il_errmsg());
    il_tensor_free(ta), il_tensor_free(tb);
    return ok;
}

static int have_gpu(void) {
    const il_backend_iface *b = il_backend_find("cuda");
    const char *why = "not built with CUDA";
    return b && b->available(&why);
}

#define H200 "NVIDIA H200"
#define H200_LIBS "driver 13.0, runtime 13.0, cuBLAS 130100, sm_90"

/* A cpu plan's header turned into a cuda plan's: backend, precision, and the GPU it names. */
static void cuda_plan(const char *src, const char *dst, const char *prec, const char *gpu, int cc, const char *libs,
                      int fallback) {
    char to[512];
    snprintf(to, sizeof to, "backend=cuda\nprecision=%s\ngraphs=1\ngpu=%s\ncc=%d\ncuda=%s\ndriver=13.0\nfallback=%d\n", prec,
             gpu, cc, libs, fallback);
    rewrite_header(src, dst, "backend=cpu\n", to);
}

/* A cuda plan on a machine without a GPU, from another GPU, with other CUDA libraries: refused
 * before anything is built, saying what differs (the driver alone does not matter). */
static void test_cuda_header(void) {
    il_graph *g = teacher_o2();
    const char *path = il_test_tmp("cpu_for_cuda.plan"), *bad = il_test_tmp("cuda.plan"), *bad2 = il_test_tmp("cuda2.plan");
    il_plan *p;
    il_plan_opts o = {.threads = 1};
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    IL_ASSERT_OK(il_plan_save(p, path));
    il_plan_free(p);
    il_graph_free(g);
    cuda_plan(path, bad, "fp16", H200, 90, H200_LIBS, 0);
    if (!have_gpu()) expect_refused(bad, IL_ERR_UNSUPPORTED, "this machine has no usable GPU");
    setenv("INFERLAB_TEST_DEVICE", "NVIDIA A100-SXM4-80GB|80|driver 12.2, runtime 12.8, cuBLAS 120800, sm_80", 1);
    expect_refused(bad, IL_ERR_UNSUPPORTED, "built for another GPU or CUDA libraries");
    expect_refused(bad, IL_ERR_UNSUPPORTED, "GPU 'NVIDIA H200' (plan) vs 'NVIDIA A100-SXM4-80GB' (here)");
    expect_refused(bad, IL_ERR_UNSUPPORTED, "compute capability 9.0 vs 8.0");
    expect_refused(bad, IL_ERR_UNSUPPORTED, "runtime 13.0 vs 12.8; cuBLAS 130100 vs 120800");
    CU_ASSERT_PTR_NULL(strstr(il_errmsg(), "driver"));
    /* the same GPU, one library newer: only that is named */
    setenv("INFERLAB_TEST_DEVICE", H200 "|90|driver 13.1, runtime 13.0, cuBLAS 130200, sm_90", 1);
    expect_refused(bad, IL_ERR_UNSUPPORTED, "(cuBLAS 130100 vs 130200)");
    /* a library the plan does not name (cuDNN added later) counts as a difference too */
    setenv("INFERLAB_TEST_DEVICE", H200 "|90|driver 13.0, runtime 13.0, cuBLAS 130100, cuDNN 91200, sm_90", 1);
    expect_refused(bad, IL_ERR_UNSUPPORTED, "cuDNN (none) vs 91200");
    if (!have_gpu()) {
        /* everything matches: the header passes, and building the plan says there is no GPU; a
         * plan whose every node runs on the GPU does not care about the CPU model */
        setenv("INFERLAB_TEST_DEVICE", H200 "|90|driver 13.2, runtime 13.0, cuBLAS 130100, sm_90", 1);
        rewrite_header(bad, bad2, "machine=cpu:", "machine=cpu:Another CPU|avx2,");
        expect_refused(bad2, IL_ERR_UNSUPPORTED, "backend cuda: no usable device");
        cuda_plan(path, bad, "fp16", H200, 90, H200_LIBS, 2); /* with cpu nodes it does */
        rewrite_header(bad, bad2, "machine=cpu:", "machine=cpu:Another CPU|avx2,");
        expect_refused(bad2, IL_ERR_UNSUPPORTED, "another machine");
    }
    setenv("INFERLAB_TEST_DEVICE", H200 "|90|" H200_LIBS, 1);
    cuda_plan(path, bad, "fp12", H200, 90, H200_LIBS, 0);
    expect_refused(bad, IL_ERR_PARSE, "unknown precision 'fp12'");
    setenv("INFERLAB_TEST_DEVICE", "no bars", 1);
    cuda_plan(path, bad, "fp16", H200, 90, H200_LIBS, 0);
    expect_refused(bad, IL_ERR_UNSUPPORTED, "INFERLAB_TEST_DEVICE is not NAME|CC|LIBS");
    unsetenv("INFERLAB_TEST_DEVICE");
    /* the header and graph read without building (what bench and info use): no GPU needed */
    char head[4096];
    il_graph *rg = NULL;
    IL_ASSERT_OK(il_plan_file_read(bad, head, sizeof head, &rg));
    CU_ASSERT_PTR_NOT_NULL(strstr(head, "backend=cuda\nprecision=fp16\n"));
    CU_ASSERT_TRUE(rg && rg->n_nodes > 0);
    il_graph_free(rg);
    /* through the binary: a clear message and exit 1, never a crash */
    if (!have_gpu()) {
        char out[8192], args[2048];
        snprintf(args, sizeof args, "run %s", bad);
        CU_ASSERT_EQUAL(cli(args, out, sizeof out), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "is for the cuda backend"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "no usable GPU"));
        snprintf(args, sizeof args, "info %s", bad); /* the graph alone needs no GPU */
        CU_ASSERT_EQUAL(cli(args, out, sizeof out), 0);
        /* bench takes backend, precision and graphs from the plan; the measuring child refuses it */
        const char *db = il_test_tmp("cuda_plan_refused.db");
        snprintf(args, sizeof args, "bench --model %s --batch 1 --trials 1 --min-seconds 0 --dataset none --db %s --dry-run",
                 bad, db);
        CU_ASSERT_EQUAL(cli(args, out, sizeof out), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "cuda.plan O0 fp16 graphs"));
        snprintf(args, sizeof args, "bench --model %s --batch 1 --trials 1 --min-seconds 0 --dataset none --db %s", bad, db);
        CU_ASSERT_EQUAL(cli(args, out, sizeof out), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "no usable GPU"));
        snprintf(args, sizeof args, "bench --model %s --backend cpu --db %s", bad, db);
        CU_ASSERT_EQUAL(cli(args, out, sizeof out), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "was built for backend cuda, precision fp16, CUDA graphs"));
    }
}

/* Loaded against built cuda plans: the same kernels, but cuDNN's algorithm search runs again at
 * load (cuda kernels save no state yet) and may pick another algorithm, which rounds otherwise:
 * float32 within 1e-4 relative, tf32 and fp16 within their own rounding (1e-2). */
static double cuda_rtol(int prec) { return prec == IL_PREC_FP32 ? 1e-4 : 1e-2; }

/* On the GPU: a cuda plan built, saved and loaded gives the outputs of the plan built directly
 * with the same options (fp32, fp16 with CUDA graphs, tf32), and runs again after its first run. */
static void test_cuda_round_trip(void) {
    if (!have_gpu()) {
        printf("skipped: no GPU ");
        return;
    }
    il_graph *g = teacher_o2();
    const char *path = il_test_tmp("teacher_cuda.plan");
    /* the fourth: Gemm forced onto the cpu's reference kernel by name, which the loaded plan must
     * place on the cpu again (a cpu kernel's name in a cuda plan) */
    static const int precs[4] = {IL_PREC_FP32, IL_PREC_FP16, IL_PREC_TF32, IL_PREC_FP32};
    for (int c = 0; c < 4; c++) {
        il_plan_opts o = {.backend = IL_BACKEND_CUDA, .precision = precs[c], .graphs = c == 1, .batch = 4, .threads = 2,
                          .kernels = c == 3 ? "Gemm=ref" : NULL};
        il_plan *p, *q;
        IL_ASSERT_OK(il_plan_create(g, &o, &p));
        IL_ASSERT_OK(il_plan_save(p, path));
        char head[4096];
        IL_ASSERT_OK(il_plan_file_read(path, head, sizeof head, NULL));
        CU_ASSERT_PTR_NOT_NULL(strstr(head, "backend=cuda\n"));
        CU_ASSERT_PTR_NOT_NULL(strstr(head, il_precision_name(precs[c])));
        il_plan_opts lo = {.threads = 2};
        IL_ASSERT_OK(il_plan_load(path, &lo, &q));
        int acc_p, acc_q, fb_p, fb_q;
        int64_t u, d;
        il_plan_copies(p, &acc_p, &fb_p, &u, &d);
        il_plan_copies(q, &acc_q, &fb_q, &u, &d);
        CU_ASSERT_EQUAL(acc_p, acc_q);
        CU_ASSERT_EQUAL(fb_p, fb_q);
        CU_ASSERT(acc_q > 0);
        if (c == 3) CU_ASSERT(fb_q > 0);
        for (int r = 0; r < 3; r++) { /* graphs: the first run captures, the next replay */
            il_tensor *x = input(4, 21 + (uint64_t)r);
            IL_ASSERT_OK(il_plan_run(p, &x, 1));
            IL_ASSERT_OK(il_plan_run(q, &x, 1));
            char msg[256];
            int64_t w;
            double tol = cuda_rtol(precs[c]);
            int ok = il_tensor_allclose(il_plan_output(q, 0), il_plan_output(p, 0), tol, tol / 10, &w, msg, sizeof msg);
            if (!ok) fprintf(stderr, "\n  %s loaded vs built, run %d: %s\n", il_precision_name(precs[c]), r, msg);
            CU_ASSERT_TRUE(ok);
            il_tensor_free(x);
        }
        il_plan_free(p);
        il_plan_free(q);
    }
    il_graph_free(g);
}

/* On the GPU, through the binary: build --backend cuda --precision fp16, run the plan, and the
 * same model run directly with the same options: the same outputs; bench measures the plan.
 * The plan is built -O0, as `run` runs a model file without passes: a -O2 plan's fused graph
 * rounds differently in half precision (1.7% on one output, measured on the H200). */
static void test_cuda_cli(void) {
    if (!have_gpu()) {
        printf("skipped: no GPU ");
        return;
    }
    char out[16384], args[2048];
    const char *plan = il_test_tmp("cli_cuda.plan"), *npy_a = il_test_tmp("cuda_a"), *npy_b = il_test_tmp("cuda_b");
    snprintf(args, sizeof args, "build %s/fmnist_teacher.onnx -o %s -O0 --batch 2 --backend cuda --precision fp16 "
             "--graphs --verbose", IL_TESTDATA, plan);
    int rc = cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n  %s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "on cuda (fp16, CUDA graphs)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cuBLAS")); /* the libraries the plan is pinned to */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cuda kernels keep no saved state"));
    snprintf(args, sizeof args, "run %s --batch 2 --seed 4 --warmup 2 --out %s", plan, npy_a);
    rc = cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n  %s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    snprintf(args, sizeof args, "run %s/fmnist_teacher.onnx --batch 2 --seed 4 --warmup 2 --backend cuda --precision fp16 "
             "--graphs --out %s", IL_TESTDATA, npy_b);
    CU_ASSERT_EQUAL(cli(args, out, sizeof out), 0);
    CU_ASSERT_TRUE(outputs_close(npy_a, npy_b, cuda_rtol(IL_PREC_FP16), cuda_rtol(IL_PREC_FP16) / 10,
                                 "plan vs direct fp16 run"));
    const char *db = il_test_tmp("cuda_plan_bench.db");
    snprintf(args, sizeof args, "bench --model %s --batch 2 --trials 1 --min-seconds 0 --min-queries 3 --warmup 1 "
             "--dataset none --db %s", plan, db);
    rc = cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n  %s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs WHERE backend = 'cuda'"), 1);
}

/* `inferlab build` then `inferlab run` on the plan, and the refusals through the binary. */
static void test_cli(void) {
    char out[16384], args[2048];
    const char *plan = il_test_tmp("cli.plan"), *npy_a = il_test_tmp("out_a"), *npy_b = il_test_tmp("out_b");
    snprintf(args, sizeof args, "build %s/fmnist_teacher.onnx -o %s --batch 2 --verbose --tactics timed", IL_TESTDATA, plan);
    int rc = cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n  %s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "built "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "FusedConv"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "nodes timed"));
    snprintf(args, sizeof args, "run %s --batch 2 --seed 4 --warmup 0 --out %s", plan, npy_a);
    rc = cli(args, out, sizeof out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "loaded plan"));
    /* another build of the same model with another FusedConv kernel: the same outputs within
     * float32 rounding */
    snprintf(args, sizeof args, "build %s/fmnist_teacher.onnx -o %s.2 --batch 2 --kernel FusedConv=im2col-blas", IL_TESTDATA, plan);
    CU_ASSERT_EQUAL(cli(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "run %s.2 --batch 2 --seed 4 --warmup 0 --out %s", plan, npy_b);
    CU_ASSERT_EQUAL(cli(args, out, sizeof out), 0);
    CU_ASSERT_TRUE(outputs_close(npy_a, npy_b, 1e-4, 1e-5, "FusedConv kernels"));
    /* bench measures the plan as built, and refuses to hand it to a peer or a pipeline */
    const char *db = il_test_tmp("plan_bench.db");
    snprintf(args, sizeof args, "bench --model %s --batch 2 --trials 1 --min-seconds 0 --min-queries 3 --warmup 1 "
             "--dataset none --db %s", plan, db);
    rc = cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n  %s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cli.plan"));
    snprintf(args, sizeof args, "bench --model %s --pipeline O2 --trials 1 --min-seconds 0 --min-queries 3 --dataset none "
             "--db %s", plan, db);
    rc = cli(args, out, sizeof out);
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "built already"));
    /* refusals */
    size_t n = 0;
    unsigned char *bytes = slurp(plan, &n);
    const char *bad = il_test_tmp("cli_bad.plan");
    il_test_write_bytes(bad, bytes, n / 2);
    free(bytes);
    snprintf(args, sizeof args, "run %s", bad);
    rc = cli(args, out, sizeof out);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "truncated or corrupt"));
    snprintf(args, sizeof args, "build %s/fmnist_teacher.onnx -o %s --kernel FusedConv=nope", IL_TESTDATA, plan);
    rc = cli(args, out, sizeof out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "FusedConv=nope"));
    snprintf(args, sizeof args, "build %s/fmnist_teacher.onnx -o %s --precision fp16", IL_TESTDATA, plan);
    CU_ASSERT_EQUAL(cli(args, out, sizeof out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "add --backend cuda"));
    if (!have_gpu()) {
        snprintf(args, sizeof args, "build %s/fmnist_teacher.onnx -o %s --backend cuda --precision fp16", IL_TESTDATA, plan);
        CU_ASSERT_EQUAL(cli(args, out, sizeof out), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "backend cuda: no usable device"));
    }
    char *big = malloc(1 << 20);
    rc = cli("ops --json", big, 1 << 20);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(big, "\"name\": \"im2col-blas\""));
    free(big);
}

IL_SUITE("plan-file", {"build, save, load: same outputs", test_round_trip},
         {"truncated, corrupt and foreign plans are refused", test_refusals}, {"build and run through the binary", test_cli},
         {"cuda plans: the GPU and library checks of the header", test_cuda_header},
         {"cuda plans on the GPU: build, save, load: same outputs", test_cuda_round_trip},
         {"cuda plans on the GPU through the binary", test_cuda_cli})
