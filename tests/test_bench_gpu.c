/*
 * test_bench_gpu.c - what `inferlab bench --backend cuda` adds, tested without a GPU: the
 * precision and graphs axes of a sweep (and their refusals on the cpu and the ONNX Runtime
 * peer), schema 6's GPU columns (migration, insert, db show, the report's GPU table), the
 * PyTorch peer driven with --device cuda --precision --graphs (a stand-in script records what it
 * was given and reports a GPU), and the refusals without a GPU (bench on cuda plan files is
 * tested in test_plan_file.c, which writes their headers).
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../bench/bench.h"
#include "../reports/reports.h"
#include "test.h"

#define cli il_test_cli
#define TEACHER IL_TESTDATA "/fmnist_teacher.onnx"

static int have_gpu(void) {
    const il_backend_iface *b = il_backend_find("cuda");
    const char *why;
    return b && b->available(&why);
}

static void test_sweep_axes(void) {
    il_sweep s = {.models = "a.onnx", .backends = "cuda", .engines = "inferlab,pytorch", .precisions = "fp32,fp16",
                  .graphs = "off,on", .batches = "1,256"};
    il_variant *v;
    int n;
    IL_ASSERT_OK(il_sweep_expand(&s, &v, &n));
    CU_ASSERT_EQUAL_FATAL(n, 16);
    /* precision and graphs innermost: the variants of one model and batch sit together */
    CU_ASSERT_STRING_EQUAL(v[0].precision, "fp32");
    CU_ASSERT_EQUAL(v[0].graphs, 0);
    CU_ASSERT_EQUAL(v[1].graphs, 1);
    CU_ASSERT_STRING_EQUAL(v[2].precision, "fp16");
    CU_ASSERT_EQUAL(v[4].batch, 256);
    CU_ASSERT_STRING_EQUAL(v[8].engine, "pytorch");
    char lab[160];
    il_variant_label(&v[3], lab, sizeof lab);
    CU_ASSERT_STRING_EQUAL(lab, "a O0 fp16 graphs");
    il_variant_label(&v[10], lab, sizeof lab);
    CU_ASSERT_STRING_EQUAL(lab, "a O0 fp16 [pytorch]");
    free(v);
    /* not asked for: no precision named, graphs off, labels as before */
    s = (il_sweep){.models = "a.onnx"};
    IL_ASSERT_OK(il_sweep_expand(&s, &v, &n));
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_STRING_EQUAL(v[0].precision, "");
    CU_ASSERT_EQUAL(v[0].graphs, 0);
    il_variant_label(&v[0], lab, sizeof lab);
    CU_ASSERT_STRING_EQUAL(lab, "a O0");
    free(v);
    /* the GPU's options elsewhere, and bad items */
    s = (il_sweep){.models = "a.onnx", .precisions = "fp16"};
    CU_ASSERT_EQUAL(il_sweep_expand(&s, &v, &n), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "precision fp16 is for --backend cuda"));
    s = (il_sweep){.models = "a.onnx", .backends = "cpu,cuda", .graphs = "on"};
    CU_ASSERT_EQUAL(il_sweep_expand(&s, &v, &n), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "graphs is for --backend cuda"));
    s = (il_sweep){.models = "a.onnx", .backends = "cuda", .engines = "onnxruntime", .precisions = "tf32"};
    CU_ASSERT_EQUAL(il_sweep_expand(&s, &v, &n), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "engine onnxruntime"));
    s = (il_sweep){.models = "a.onnx", .backends = "cuda", .precisions = "fp8"};
    CU_ASSERT_EQUAL(il_sweep_expand(&s, &v, &n), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "unknown precision 'fp8'"));
    s = (il_sweep){.models = "a.onnx", .backends = "cuda", .graphs = "sometimes"};
    CU_ASSERT_EQUAL(il_sweep_expand(&s, &v, &n), IL_ERR_INVALID);
    /* fp32 named on the cpu is what the cpu does anyway */
    s = (il_sweep){.models = "a.onnx", .precisions = "fp32"};
    IL_ASSERT_OK(il_sweep_expand(&s, &v, &n));
    free(v);
    /* an experiment file's keys */
    const char *path = il_test_tmp("gpu.yaml");
    const char *yaml = "backend: cuda\nvariants:\n  - model: m.onnx\n    precision: [tf32, bf16]\n    graphs: true\n";
    il_test_write_bytes(path, yaml, strlen(yaml));
    il_bench_opts o;
    il_bench_defaults(&o);
    IL_ASSERT_OK(il_experiment_load(path, &o, &v, &n));
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(v[1].precision, "bf16");
    CU_ASSERT_EQUAL(v[1].graphs, 1);
    free(v);
}

static long long scalar(sqlite3 *db, const char *sql) {
    sqlite3_stmt *q;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

/* A run record of a GPU run, made-up figures (never a measurement). */
static void gpu_record(il_run_record *r, const char *engine, const char *prec, int graphs) {
    il_test_record(r, "resnet50.onnx", "O0", 256, "offline", 10.0, 8);
    snprintf(r->v.engine, sizeof r->v.engine, "%s", engine);
    snprintf(r->v.backend, sizeof r->v.backend, "cuda");
    snprintf(r->v.precision, sizeof r->v.precision, "%s", prec);
    r->v.graphs = graphs;
    il_variant_label(&r->v, r->variant, sizeof r->variant);
    snprintf(r->gpu, sizeof r->gpu, "NVIDIA H200");
    snprintf(r->gpu_cc, sizeof r->gpu_cc, "9.0");
    snprintf(r->gpu_driver, sizeof r->gpu_driver, "580.65.06");
    snprintf(r->cuda_version, sizeof r->cuda_version, "13.0");
    snprintf(r->cublas_version, sizeof r->cublas_version, "130100");
    snprintf(r->cudnn_version, sizeof r->cudnn_version, "9.19.0");
    r->peak_device_bytes = 123456789;
    snprintf(r->device_memory_how, sizeof r->device_memory_how, "cudaMemGetInfo growth (test)");
}

/* Schema 6: a version-5 database migrates; the GPU columns are stored, NULL for cpu runs, and
 * shown by the results view, db show and the report's GPU table. */
static void test_store_gpu_columns(void) {
    const char *path = il_test_tmp("gpu.db");
    il_store *s;
    IL_ASSERT_OK(il_store_open_version(path, 5, &s));
    il_run_record r;
    il_test_record(&r, "old.onnx", "O0", 1, "single-stream", 1.0, 4);
    il_store_close(s);
    IL_ASSERT_OK(il_store_open(path, &s));
    sqlite3 *db = il_store_sqlite(s);
    CU_ASSERT_EQUAL(il_store_version(s), 6);
    IL_ASSERT_OK(il_store_insert(s, &r, NULL)); /* a cpu run: no GPU figures */
    il_record_free(&r);
    gpu_record(&r, "inferlab", "fp16", 1);
    IL_ASSERT_OK(il_store_insert(s, &r, NULL));
    il_record_free(&r);
    gpu_record(&r, "pytorch", "", 0); /* a cuda run that named no precision computed fp32 */
    IL_ASSERT_OK(il_store_insert(s, &r, NULL));
    il_record_free(&r);
    CU_ASSERT_EQUAL(scalar(db, "SELECT count(*) FROM results WHERE backend = 'cpu' AND compute_precision IS NULL AND"
                               " cuda_graphs IS NULL AND gpu IS NULL AND device_memory_how IS NULL"), 1);
    CU_ASSERT_EQUAL(scalar(db, "SELECT count(*) FROM results WHERE engine = 'inferlab' AND compute_precision = 'fp16'"
                               " AND cuda_graphs = 1 AND gpu = 'NVIDIA H200' AND gpu_cc = '9.0' AND gpu_driver ="
                               " '580.65.06' AND cuda_version = '13.0' AND cublas_version = '130100' AND cudnn_version ="
                               " '9.19.0' AND peak_device_bytes = 123456789 AND device_memory_how LIKE 'cudaMemGetInfo%'"),
                    1);
    CU_ASSERT_EQUAL(scalar(db, "SELECT count(*) FROM results WHERE engine = 'pytorch' AND compute_precision = 'fp32'"
                               " AND cuda_graphs = 0"), 1);
    il_store_close(s);
    char out[65536], args[1024];
    snprintf(args, sizeof args, "db show 2 --db %s", path);
    int rc = cli(args, out, sizeof out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "compute_precision      fp16"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "gpu                    NVIDIA H200"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cudnn_version          9.19.0"));
    if (system("command -v gnuplot >/dev/null 2>&1")) {
        printf("skipped: gnuplot not installed: report not drawn ");
        return;
    }
    const char *dir = il_test_tmp("gpu_report");
    char plots[1100], html_path[1100];
    snprintf(plots, sizeof plots, "%s/plots", dir);
    il_report_opts o = {.db = path, .out_dir = dir, .plots_dir = plots, .quiet = 1, .no_pdf = 1};
    IL_ASSERT_OK(il_report_write(&o));
    snprintf(html_path, sizeof html_path, "%s/index.html", dir);
    FILE *f = fopen(html_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t k = fread(out, 1, sizeof out - 1, f);
    out[k] = 0;
    fclose(f);
    char *gpu = strstr(out, "<h2 id=gpu>GPU runs</h2>");
    CU_ASSERT_PTR_NOT_NULL_FATAL(gpu);
    CU_ASSERT_PTR_NOT_NULL(strstr(gpu, "NVIDIA H200"));
    CU_ASSERT_PTR_NOT_NULL(strstr(gpu, "123.5 MB"));
    CU_ASSERT_PTR_NOT_NULL(strstr(gpu, "fp16"));
}

/* A stand-in for torch_bench.py: says what it was given (device, precision, graphs) through its
 * version string and reports a GPU, so the harness's side of the protocol is tested here. */
static const char *stub_peer =
    "import json, sys\n"
    "import numpy as np\n"
    "a = sys.argv\n"
    "def val(k):\n"
    "    return a[a.index(k) + 1] if k in a else 'none'\n"
    "if '--eval-out' in a:\n"
    "    x = np.load(val('--eval-in').partition('=')[2])\n"
    "    np.save(val('--eval-out'), np.zeros((x.shape[0], 10), np.float32))\n"
    "    print(json.dumps({'engine': 'pytorch', 'version': 'stub'}))\n"
    "    sys.exit(0)\n"
    "b = int(val('--batch'))\n"
    "print(json.dumps({'engine': 'pytorch', 'version': 'stub %s %s g%d' % (val('--device'), val('--precision'),\n"
    "                  '--graphs' in a), 'latencies_ms': [1.0, 1.2, 0.9, 1.1], 'seconds': 0.0042, 'samples': 4 * b,\n"
    "                  'peak_host_bytes': 1000, 'peak_device_bytes': 7340032, 'gpu': 'Stub GPU', 'gpu_cc': '9.0',\n"
    "                  'cuda_version': '12.8', 'cudnn_version': '9.10.2'}))\n";

static const char *stub_dir(void) {
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s", il_test_tmp("stub_peers"));
    mkdir(dir, 0755);
    char f[1100];
    snprintf(f, sizeof f, "%s/torch_bench.py", dir);
    il_test_write_bytes(f, stub_peer, strlen(stub_peer));
    return dir;
}

/* The PyTorch peer on the GPU, as the harness drives it: --device cuda, the precision, --graphs;
 * its GPU and device memory land in the record (no GPU needed: the peer is a stand-in). */
static void test_torch_peer_gpu(void) {
    if (!il_test_have_python("numpy")) return;
    setenv("INFERLAB_PYTHON", getenv("IL_TEST_PYTHON") ? getenv("IL_TEST_PYTHON") : IL_PY, 1);
    il_bench_opts o;
    il_bench_defaults(&o);
    o.trials = 1;
    o.sc.min_seconds = 0;
    o.sc.min_queries = 4;
    o.sc.warmup = 1;
    o.accuracy_samples = 4;
    o.peers_dir = stub_dir();
    il_sweep sw = {.models = TEACHER, .engines = "pytorch", .backends = "cuda", .precisions = "fp16", .graphs = "on",
                   .batches = "2", .threads = "1", .dataset = "none"};
    il_variant *v;
    int n;
    IL_ASSERT_OK(il_sweep_expand(&sw, &v, &n));
    CU_ASSERT_EQUAL_FATAL(n, 1);
    il_run_record r;
    IL_ASSERT_OK(il_bench_measure(&o, &v[0], &r));
    CU_ASSERT_STRING_EQUAL(r.engine_version, "pytorch stub cuda fp16 g1");
    CU_ASSERT_STRING_EQUAL(r.gpu, "Stub GPU");
    CU_ASSERT_STRING_EQUAL(r.cudnn_version, "9.10.2");
    CU_ASSERT_EQUAL(r.peak_device_bytes, 7340032);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.device_memory_how, "torch.cuda.max_memory_allocated"));
    CU_ASSERT(r.agree_top1 >= 0); /* its outputs were compared with inferlab's on the cpu */
    il_record_free(&r);
    free(v);
    /* through the binary, into the store */
    char out[16384], args[2048];
    const char *db = il_test_tmp("peer_gpu.db");
    snprintf(args, sizeof args, "bench --model %s --engine pytorch --backend cuda --precision fp32,tf32 --batch 2 "
             "--trials 1 --min-seconds 0 --min-queries 4 --warmup 1 --dataset none --accuracy-samples 4 --peers %s "
             "--eval inferlab --db %s", TEACHER, o.peers_dir, db);
    int rc = cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n  %s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM results WHERE engine = 'pytorch' AND backend = 'cuda'"
                                          " AND gpu = 'Stub GPU' AND cuda_graphs = 0 AND compute_precision IN ('fp32',"
                                          " 'tf32')"), 2);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs WHERE engine_version = 'pytorch stub cuda tf32 g0'"), 1);
    /* --eval inferlab: the peer's evaluation (one more process of it) was skipped */
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs WHERE agreement_top1 IS NULL"), 2);
    snprintf(args, sizeof args, "bench --model %s --eval some --db %s", TEACHER, db);
    CU_ASSERT_EQUAL(cli(args, out, sizeof out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--eval all|inferlab|none"));
    unsetenv("INFERLAB_PYTHON");
}

/* Without a GPU: inferlab on cuda, and cuda plans, fail with a message and a non-zero exit, never
 * a crash; a plan measured as something other than what it was built for is refused up front. */
static void test_cli_refusals(void) {
    char out[16384], args[2048];
    const char *db = il_test_tmp("refusals.db");
    snprintf(args, sizeof args, "bench --model %s --precision fp16 --db %s", TEACHER, db);
    CU_ASSERT_NOT_EQUAL(cli(args, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "precision fp16 is for --backend cuda"));
    snprintf(args, sizeof args, "bench --model %s --backend cuda --engine onnxruntime --graphs --db %s", TEACHER, db);
    CU_ASSERT_NOT_EQUAL(cli(args, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "engine onnxruntime"));
    if (have_gpu()) {
        printf("skipped: a GPU is here (the no-GPU refusals) ");
        return;
    }
    snprintf(args, sizeof args, "bench --model %s --backend cuda --precision fp16 --trials 1 --min-seconds 0 "
             "--min-queries 2 --dataset none --db %s", TEACHER, db);
    CU_ASSERT_EQUAL(cli(args, out, sizeof out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "backend cuda: no usable device"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "nothing was stored"));
    /* cuda plan files in bench: test_plan_file.c (it writes their headers) */
}

/* On the GPU: inferlab measured on cuda in fp32 and fp16 with graphs, timed on the device alone;
 * the store gets the GPU, its versions, the device memory, and agreement with the FP32 CPU run. */
static void test_bench_on_gpu(void) {
    if (!have_gpu()) {
        printf("skipped: no GPU ");
        return;
    }
    char out[16384], args[2048];
    const char *db = il_test_tmp("on_gpu.db");
    snprintf(args, sizeof args, "bench --model %s --backend cuda --precision fp32,fp16 --graphs on,off --batch 8 "
             "--trials 2 --min-seconds 0 --min-queries 5 --warmup 2 --dataset none --accuracy-samples 16 --db %s",
             TEACHER, db);
    int rc = cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n  %s\n", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM results WHERE backend = 'cuda' AND gpu IS NOT NULL"
                                          " AND gpu_cc IS NOT NULL AND cuda_version IS NOT NULL AND cublas_version IS"
                                          " NOT NULL AND peak_device_bytes > 0 AND device_memory_how LIKE"
                                          " 'cudaMemGetInfo%'"), 4);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs WHERE note LIKE 'device time%'"), 4);
    /* fp32 agrees with the CPU on every sample; fp16 on most of 16 random inputs (near ties in the
     * logits of random images may flip), its logits within 0.25 */
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs WHERE compute_precision = 'fp32' AND"
                                          " agreement_top1 = 1 AND max_abs_error < 1e-3"), 2);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs WHERE compute_precision = 'fp16' AND"
                                          " agreement_top1 >= 0.8 AND max_abs_error < 0.25"), 2);
}

IL_SUITE("bench-gpu", {"sweep: precision and graphs axes", test_sweep_axes},
         {"store: schema 6 GPU columns, db show, report", test_store_gpu_columns},
         {"pytorch peer on cuda: precision, graphs, GPU facts", test_torch_peer_gpu},
         {"bench: the GPU's refusals without a GPU", test_cli_refusals},
         {"bench on the GPU: fp32/fp16, graphs, device memory, agreement", test_bench_on_gpu})
