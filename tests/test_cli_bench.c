/*
 * test_cli_bench.c - issue 14 through the real binary ($IL_BIN): validity and the load record
 * in the database, the fixed-batch rule of run/info/bench, no evaluation without a parent or a
 * data set, run's warm-up, --json and --quiet, bench's failure wording and --plugin.
 * Figures are never asserted here (timings are benchmarks, not tests): only what was recorded.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#define RESNET IL_TESTDATA "/tiny_resnet_legacy/model.onnx"
#define BERT_FIXED IL_TESTDATA "/tiny_bert_dynamo/model.onnx" /* input_ids int64[2,16] */
#define FAST "--min-seconds 0.02 --min-queries 4 --trials 2 --accuracy-samples 8"

static char out[1 << 16];

static int has(const char *s) {
    if (!strstr(out, s)) fprintf(stderr, "\n  want '%s' in:\n%s\n", s, out);
    return strstr(out, s) != NULL;
}

/* One number from the database (NAN for NULL). */
static double db_num(const char *db, const char *sql) {
    sqlite3 *d;
    sqlite3_stmt *q;
    double v = NAN;
    if (sqlite3_open(db, &d) != SQLITE_OK) return v;
    if (sqlite3_prepare_v2(d, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW &&
        sqlite3_column_type(q, 0) != SQLITE_NULL)
        v = sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(d);
    return v;
}

static void test_invalid_and_load(void) {
    char args[1024];
    const char *db = il_test_tmp("inv.db");
    /* a cap below the minimum query count: LoadGen would call this INVALID, and so do we */
    snprintf(args, sizeof args, "bench --model " RESNET " --db %s " FAST " --min-queries 1000 --max-queries 5", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT(has("INVALID: trial 1: 5 queries"));
    CU_ASSERT_EQUAL(db_num(db, "SELECT valid FROM runs"), 0);
    CU_ASSERT_EQUAL(db_num(db, "SELECT valid FROM results"), 0);
    CU_ASSERT_EQUAL(db_num(db, "SELECT count(*) FROM runs WHERE invalid_reason LIKE 'trial 1: 5 queries%'"), 1);
    /* the load record and the spread, stored with every run */
    CU_ASSERT(db_num(db, "SELECT load_avg1 FROM runs") >= 0);
    CU_ASSERT(db_num(db, "SELECT others_running FROM runs") >= 0);
    CU_ASSERT(db_num(db, "SELECT cpu_busy_pct FROM runs") >= 0);
    CU_ASSERT(db_num(db, "SELECT steal_pct FROM runs") >= 0);
    CU_ASSERT(db_num(db, "SELECT lat_p50_trial_max_ms >= lat_p50_trial_min_ms FROM runs") == 1);
    CU_ASSERT(db_num(db, "SELECT max_spread FROM runs") == 0.10);
    CU_ASSERT_EQUAL(db_num(db, "SELECT count(*) FROM runs WHERE wait_policy LIKE 'passive%' OR wait_policy LIKE "
                               "'spin%' OR wait_policy LIKE '%environment%'"), 1);
    CU_ASSERT(db_num(db, "SELECT min(warmup_queries) FROM trials") >= 5);
    /* met minimums and a generous spread bound: valid */
    snprintf(args, sizeof args, "bench --model " RESNET " --db %s " FAST " --max-spread 100", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT(!strstr(out, "INVALID"));
    CU_ASSERT_EQUAL(db_num(db, "SELECT valid FROM runs WHERE id = 2"), 1);
    /* --quiet: nothing on stdout or stderr for a good run */
    snprintf(args, sizeof args, "bench --model " RESNET " --db %s " FAST " --quiet", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(db_num(db, "SELECT count(*) FROM runs"), 3);
}

/* Issue 14 item 5: one batch rule for run, info and bench. */
static void test_fixed_batch(void) {
    char args[1024];
    CU_ASSERT_EQUAL(il_test_cli("info " BERT_FIXED, out, sizeof out), 0);
    CU_ASSERT(has("inputs (batch 2, fixed by the model)"));
    CU_ASSERT_EQUAL(il_test_cli("info " BERT_FIXED " --batch 4", out, sizeof out), 1);
    CU_ASSERT(has("fixed batch of 2; batch 4 cannot be used"));
    CU_ASSERT_EQUAL(il_test_cli("run " BERT_FIXED " --batch 1", out, sizeof out), 1);
    CU_ASSERT(has("fixed batch of 2; batch 1 cannot be used"));
    CU_ASSERT_EQUAL(il_test_cli("run " BERT_FIXED " --topk 0", out, sizeof out), 0);
    CU_ASSERT(has("batch 2 (fixed by the model)"));
    CU_ASSERT_EQUAL(il_test_cli("run " BERT_FIXED " --batch 2 --topk 0", out, sizeof out), 0);
    CU_ASSERT_EQUAL(il_test_cli("bench --model " BERT_FIXED " --batch 1 --dry-run", out, sizeof out), 1);
    CU_ASSERT(has("fixed batch of 2; batch 1 cannot be used"));
    CU_ASSERT_EQUAL(il_test_cli("bench --model " BERT_FIXED " --dry-run", out, sizeof out), 0);
    CU_ASSERT(has("fixed batch of 2: measured at it") && has("batch 2 "));
    /* FLOPs per sample: the batch-2 graph's FLOPs halved */
    const char *db = il_test_tmp("fixed.db");
    snprintf(args, sizeof args, "bench --model " BERT_FIXED " --db %s " FAST " --quiet", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    double stored = db_num(db, "SELECT flops FROM runs");
    CU_ASSERT_EQUAL(il_test_cli("info " BERT_FIXED " --json", out, sizeof out), 0);
    const char *f = strstr(out, "\"flops\":");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT(stored > 0 && stored == atof(f + 8) / 2);
    CU_ASSERT_EQUAL(db_num(db, "SELECT batch FROM runs"), 2);
    /* a model with a free batch keeps every batch asked for, in every variant (each variant after
     * the first of a model was once measured at the first one's batch) */
    CU_ASSERT_EQUAL(il_test_cli("bench --model " RESNET " --pipeline O0,O2 --batch 1,3 --dry-run", out, sizeof out), 0);
    const char *b3 = strstr(out, "batch 3 ");
    CU_ASSERT(b3 && strstr(b3 + 1, "batch 3 ")); /* O0 and O2 */
}

/* Issue 14 item 6: no evaluation pass when nothing can be compared; one with a parent. */
static void test_eval_only_when_useful(void) {
    char args[1024];
    const char *db = il_test_tmp("eval.db");
    snprintf(args, sizeof args, "bench --model " RESNET " --pipeline O0,O2 --db %s " FAST " --quiet", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT(isnan(db_num(db, "SELECT agreement_top1 FROM runs WHERE pipeline = 'O0'")));
    CU_ASSERT(isnan(db_num(db, "SELECT accuracy_samples FROM runs WHERE pipeline = 'O0'")));
    CU_ASSERT_EQUAL(db_num(db, "SELECT agreement_top1 FROM runs WHERE pipeline = 'O2'"), 1);
}

static void test_run_cli(void) {
    CU_ASSERT_EQUAL(il_test_cli("run " RESNET " --repeat 5 --topk 0", out, sizeof out), 0);
    CU_ASSERT(has("over 5 runs") && has("warm-up runs;"));
    CU_ASSERT(!strstr(out, "warm-up runs (cold)"));
    CU_ASSERT_EQUAL(il_test_cli("run " RESNET " --warmup 0", out, sizeof out), 0);
    CU_ASSERT(has("after 0 warm-up runs (cold)"));
    CU_ASSERT_EQUAL(il_test_cli("run " RESNET " --json --repeat 2", out, sizeof out), 0);
    CU_ASSERT(out[0] == '{' && has("\"outputs\":[{\"name\":\"logits\"") && has("\"time_ms\":{\"runs\":2,"));
    CU_ASSERT_EQUAL(il_test_cli("run " RESNET " --quiet", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(il_test_cli("run " RESNET " --wait bogus", out, sizeof out), 2);
    CU_ASSERT(has("--wait expects auto, spin or passive"));
}

static void test_bench_cli(void) {
    char args[1024];
    /* a pass name unknown without its plugin fails the dry run; with --plugin it is accepted */
    CU_ASSERT_EQUAL(il_test_cli("bench --model " RESNET " --pipeline drop-double-relu --dry-run", out, sizeof out), 1);
    CU_ASSERT(has("unknown pass 'drop-double-relu'"));
    snprintf(args, sizeof args, "bench --model " RESNET " --pipeline drop-double-relu --dry-run --plugin %s",
             il_test_plugin("drop_double_relu"));
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT(has("1 variant"));
    /* the only variant fails: say that nothing was stored, not "the rest are in" */
    const char *db = il_test_tmp("fail.db");
    setenv("INFERLAB_ORT_PEER", "js", 1);
    setenv("INFERLAB_NODE", "/nonexistent/node", 1);
    snprintf(args, sizeof args, "bench --model " RESNET " --engine onnxruntime --db %s " FAST, db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 1);
    CU_ASSERT(has("the variant failed (messages above); nothing was stored in"));
    CU_ASSERT(!strstr(out, "the rest are in"));
    unsetenv("INFERLAB_ORT_PEER");
    unsetenv("INFERLAB_NODE");
}

/* Issue 14 item 3: `opt -O2 --portable` writes models ONNX Runtime loads (unique node names), and
 * the ORT peer measures a fused variant's portable form by itself. */
static void test_portable_for_ort(void) {
    static const char *const models[] = {"tiny_bert_legacy", "tiny_bert_dynamo", "tiny_vit_legacy", "tiny_vit_dynamo",
                                         "tiny_mobilenet_v2_legacy", "tiny_mobilenet_v2_dynamo", "tiny_resnet_legacy",
                                         "tiny_resnet_dynamo"};
    int have_ort = system("command -v node >/dev/null 2>&1") == 0 &&
                   access("node_modules/onnxruntime-node/package.json", R_OK) == 0;
    if (!have_ort) printf("\n  skipped the ONNX Runtime half: no node or node_modules/onnxruntime-node (make deps)\n");
    char args[1024];
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        const char *p = il_test_tmp("portable.onnx"), *db = il_test_tmp("ort.db");
        snprintf(args, sizeof args, "opt " IL_TESTDATA "/%s/model.onnx -O2 --portable -o %s", models[i], p);
        CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
        il_graph *g;
        IL_ASSERT_OK(il_onnx_load(p, &g));
        int dup = 0;
        for (int a = 0; a < g->n_nodes; a++)
            for (int b = a + 1; b < g->n_nodes && g->nodes[a].name && g->nodes[a].name[0]; b++)
                dup += g->nodes[b].name && !strcmp(g->nodes[a].name, g->nodes[b].name);
        if (dup) fprintf(stderr, "\n  %s: %d duplicate node names after -O2 --portable\n", models[i], dup);
        CU_ASSERT_EQUAL(dup, 0);
        for (int k = 0; k < g->n_nodes; k++) CU_ASSERT_STRING_EQUAL(g->nodes[k].domain, "");
        il_graph_free(g);
        if (!have_ort) continue;
        snprintf(args, sizeof args, "bench --model %s --engine onnxruntime --db %s " FAST " --quiet", p, db);
        int rc = il_test_cli(args, out, sizeof out);
        if (rc) fprintf(stderr, "\n  %s in ONNX Runtime:\n%s\n", models[i], out);
        CU_ASSERT_EQUAL(rc, 0);
    }
    if (!have_ort) return;
    /* the peer measures a fused variant's portable form, and says so; a preset inside a list
     * ("O2+lower-fused") is accepted by the dry run and by the measurement alike */
    const char *db = il_test_tmp("ort2.db");
    snprintf(args, sizeof args,
             "bench --model " RESNET " --pipeline O2,O2+lower-fused --engine onnxruntime --db %s " FAST " --quiet", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_EQUAL(db_num(db, "SELECT count(*) FROM runs"), 2);
    CU_ASSERT_EQUAL(db_num(db, "SELECT count(*) FROM runs WHERE pipeline = 'O2' AND note LIKE "
                               "'onnxruntime measured the portable form (% fused ops lowered%'"), 1);
    CU_ASSERT_EQUAL(db_num(db, "SELECT min(agreement_top1) FROM runs"), 1);
}

/* Issue 14 item 4: agreement for a multi-input model with a parent (BERT: ids, mask, types),
 * by inferlab and ONNX Runtime alike; the user's inputs, from files or a folder. */
static void test_inputs(void) {
    char args[2048];
    const char *db = il_test_tmp("in.db");
    snprintf(args, sizeof args, "bench --model " BERT_FIXED " --pipeline O2 --db %s " FAST " --quiet", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_EQUAL(db_num(db, "SELECT agreement_top1 FROM runs"), 1);
    CU_ASSERT(db_num(db, "SELECT cosine_similarity FROM runs") > 0.9999);
    /* the ONNX test-data folder (input_K.pb) and single files (.pb) */
    snprintf(args, sizeof args,
             "bench --model " BERT_FIXED " --pipeline O2 --inputs " IL_TESTDATA "/tiny_bert_dynamo/test_data_set_0 "
             "--db %s " FAST " --quiet", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_EQUAL(db_num(db, "SELECT count(*) FROM runs WHERE agreement_top1 = 1"), 2);
    snprintf(args, sizeof args,
             "bench --model " BERT_FIXED " --input input_ids=" IL_TESTDATA "/tiny_bert_dynamo/test_data_set_0/input_0.pb "
             "--db %s " FAST " --quiet", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "bench --model " BERT_FIXED " --input nosuch=x.npy --db %s " FAST, db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 1);
    CU_ASSERT(has("--input nosuch=x.npy: the model has no input named 'nosuch'"));
    if (system("command -v node >/dev/null 2>&1") || access("node_modules/onnxruntime-node/package.json", R_OK)) {
        printf("\n  skipped the ONNX Runtime half: no node or onnxruntime-node\n");
        return;
    }
    snprintf(args, sizeof args, "bench --model " BERT_FIXED " --pipeline O2 --engine onnxruntime --db %s " FAST " --quiet",
             db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_EQUAL(db_num(db, "SELECT agreement_top1 FROM runs WHERE engine = 'onnxruntime'"), 1);
}

/* Issue 14 item 12: --shape fixes input shapes before the pipeline in bench (and build), so the
 * Shape/Gather chains of a real export over its symbolic batch fold: ViT 169 -> 74 nodes. */
static void test_shapes(void) {
    char args[2048];
    const char *db = il_test_tmp("shape.db");
    snprintf(args, sizeof args,
             "bench --model " IL_TESTDATA "/tiny_vit_legacy/model.onnx --pipeline O2 --shape input=2x3x32x32 --db %s "
             FAST " --quiet", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_EQUAL(db_num(db, "SELECT batch FROM runs"), 2);
    CU_ASSERT_EQUAL(db_num(db, "SELECT agreement_top1 FROM runs"), 1);
    snprintf(args, sizeof args, "info --json %s.variants/*O2-shape*.onnx", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT(!strstr(out, "\"Shape\":"));
    const char *plan = il_test_tmp("vit.plan");
    snprintf(args, sizeof args, "build " IL_TESTDATA "/tiny_vit_legacy/model.onnx --shape input=1x3x32x32 -o %s", plan);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "bench --model " RESNET " --shape nosuch=1x2 --dry-run");
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 1);
    CU_ASSERT(has("no input named 'nosuch'"));
}

/* Issue 14 item 11: the command line a user's habits expect. */
static void test_command_line(void) {
    CU_ASSERT_EQUAL(il_test_cli("help opt", out, sizeof out), 0);
    CU_ASSERT(has("usage: inferlab opt MODEL.onnx"));
    CU_ASSERT_EQUAL(il_test_cli("help bench", out, sizeof out), 0);
    CU_ASSERT(has("--max-spread F"));
    CU_ASSERT_EQUAL(il_test_cli("help nosuch", out, sizeof out), 2);
    /* --quiet on commands without their own: nothing on stdout, errors still said */
    char args[1024];
    snprintf(args, sizeof args, "opt " RESNET " -O2 -o %s --quiet", il_test_tmp("q.onnx"));
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(il_test_cli("passes --quiet", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(il_test_cli("zoo -q", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(il_test_cli("opt /nonexistent.onnx -O2 -o x.onnx --quiet", out, sizeof out), 1);
    CU_ASSERT(has("nonexistent.onnx"));
    /* --json */
    CU_ASSERT_EQUAL(il_test_cli("passes --json", out, sizeof out), 0);
    CU_ASSERT(out[0] == '{' && has("{\"name\":\"fuse-attention\",") && has("\"presets\":{\"O0\":\"\","));
    CU_ASSERT_EQUAL(il_test_cli("zoo list --json", out, sizeof out), 0);
    CU_ASSERT(out[0] == '{' && has("{\"name\":\"mlp\",\"input\":[1,28,28],\"params\":"));
    if (access(IL_ONNX_NODE_DIR "/test_relu", R_OK) == 0) {
        CU_ASSERT_EQUAL(il_test_cli("check --json " IL_ONNX_NODE_DIR "/test_relu", out, sizeof out), 0);
        CU_ASSERT_STRING_EQUAL(out, "{\"passed\":1,\"failed\":0,\"skipped\":0,\"tests\":[{\"name\":\"test_relu\",\"result\":\"PASS\"}]}\n");
    }
    /* info: a summary by default, every node with --nodes, names whole */
    CU_ASSERT_EQUAL(il_test_cli("info " IL_TESTDATA "/tiny_vit_legacy/model.onnx", out, sizeof out), 0);
    CU_ASSERT(has("nodes        388 (`inferlab info --nodes` lists them)"));
    CU_ASSERT(!strstr(out, "/encoder/layers/encoder_layer_0/self_attention/MatMul"));
    static char big[1 << 17];
    CU_ASSERT_EQUAL(il_test_cli("info " IL_TESTDATA "/tiny_vit_legacy/model.onnx --nodes", big, sizeof big), 0);
    CU_ASSERT(strstr(big, "/encoder/layers/encoder_layer_0/self_attention/MatMul ") != NULL);
    /* eval on a model that is not Fashion-MNIST's: the hint */
    CU_ASSERT_EQUAL(il_test_cli("eval " RESNET, out, sizeof out), 1);
    CU_ASSERT(has("unless --data SPEC names its data set"));
}

IL_SUITE("cli_bench", {"INVALID and the load record", test_invalid_and_load}, {"fixed batch", test_fixed_batch},
         {"evaluation only when useful", test_eval_only_when_useful}, {"run: warm-up, json, quiet", test_run_cli},
         {"bench: plugin, failure wording", test_bench_cli}, {"portable models for ONNX Runtime", test_portable_for_ort},
         {"inputs: multi-input agreement, files, folders", test_inputs}, {"--shape", test_shapes},
         {"command line: help, --quiet, --json, info, eval", test_command_line})
