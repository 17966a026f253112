/*
 * util.c - helpers every test file may use: a scratch directory (removed when the test
 * binary exits), writing raw bytes, whether /usr/bin/python3 has some modules, running the real
 * binary, and made-up run records for the store and report tests.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../bench/bench.h"
#include "onnx.pb-c.h"
#include "test.h"

static char scratch[64];

static void remove_scratch(void) {
    char cmd[128];
    if (!scratch[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", scratch);
}

const char *il_test_tmp(const char *name) {
    static char buf[8][512];
    static int k;
    if (!scratch[0]) {
        snprintf(scratch, sizeof scratch, "/tmp/il_test_XXXXXX");
        if (!mkdtemp(scratch)) perror("mkdtemp");
        atexit(remove_scratch);
    }
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", scratch, name);
    return buf[k];
}

void il_test_write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (n) fwrite(b, 1, n, f);
    fclose(f);
}

int il_test_input(il_graph *g, const char *name, int rank, const int64_t *dims) {
    int v = il_graph_value(g, name);
    g->values[v].dtype = IL_F32;
    g->values[v].rank = rank;
    memcpy(g->values[v].dims, dims, (size_t)rank * sizeof(int64_t));
    il_graph_add_input(g, v);
    return v;
}

int il_test_const(il_graph *g, const char *name, int rank, const int64_t *dims, uint64_t *rng, double lo, double hi) {
    il_tensor *t = il_tensor_new(IL_F32, rank, dims);
    il_tensor_fill_random(t, rng, lo, hi);
    return il_graph_add_constant(g, name, t);
}

/* IL_TEST_PYTHON names another interpreter (the GPU machine keeps torch in a virtual env). */
int il_test_have_python(const char *modules) {
    char cmd[512];
    const char *py = getenv("IL_TEST_PYTHON") ? getenv("IL_TEST_PYTHON") : IL_PY;
    snprintf(cmd, sizeof cmd, "%s -c 'import %s' 2>/dev/null", py, modules);
    if (system(cmd) == 0) return 1;
    printf("\n  skipped: needs Python modules %s in %s\n", modules, py);
    return 0;
}

void il_test_write_msg(const char *path, const void *msg) {
    const ProtobufCMessage *m = msg;
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n + 1);
    protobuf_c_message_pack(m, b);
    il_test_write_bytes(path, b, n);
    free(b);
}

int il_test_tensors_equal(const il_tensor *a, const il_tensor *b) {
    if (!a || !b) return a == b;
    return a->dtype == b->dtype && a->rank == b->rank &&
           !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof(int64_t)) && !memcmp(a->data, b->data, il_tensor_bytes(a));
}

void il_test_plans_agree(il_plan *p, il_plan *q, il_tensor *x) {
    IL_ASSERT_OK(il_plan_run(p, &x, 1));
    IL_ASSERT_OK(il_plan_run(q, &x, 1));
    CU_ASSERT_TRUE(il_test_tensors_equal(il_plan_output(p, 0), il_plan_output(q, 0)));
    il_tensor_free(x);
}

int il_test_cli(const char *args, char *out, size_t n) {
    char cmd[8192];
    const char *bin = getenv("IL_BIN") ? getenv("IL_BIN") : "build/inferlab";
    snprintf(cmd, sizeof cmd, "timeout 60 %s %s 2>&1", bin, args);
    fflush(stdout);
    FILE *f = popen(cmd, "r");
    size_t k = f ? fread(out, 1, n - 1, f) : 0;
    out[k] = 0;
    int st = f ? pclose(f) : -1;
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

long long il_test_db_scalar(const char *path, const char *sql) {
    sqlite3 *db;
    sqlite3_stmt *q;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW) v = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return v;
}

void il_test_record(il_run_record *r, const char *model, const char *pipeline, int batch, const char *scenario,
                    double base_ms, int q) {
    il_record_init(r);
    snprintf(r->v.model, sizeof r->v.model, "%s", model);
    snprintf(r->v.pipeline, sizeof r->v.pipeline, "%s", pipeline);
    snprintf(r->v.engine, sizeof r->v.engine, "inferlab");
    snprintf(r->v.backend, sizeof r->v.backend, "cpu");
    r->v.batch = batch;
    r->v.threads = 1;
    il_scenario_parse(scenario, &r->v.scenario);
    il_variant_label(&r->v, r->variant, sizeof r->variant);
    snprintf(r->model_name, sizeof r->model_name, "%.*s", (int)strcspn(r->variant, " "), r->variant);
    snprintf(r->precision, sizeof r->precision, "fp32");
    unsigned char h[32];
    il_sha256(model, strlen(model), h);
    for (int i = 0; i < 32; i++) snprintf(r->model_sha256 + 2 * i, 3, "%02x", h[i]);
    il_bench_timestamp(r->created_at, sizeof r->created_at);
    r->n_trials = 2;
    r->trials = calloc(2, sizeof *r->trials);
    uint64_t rng = (uint64_t)(base_ms * 1e6) + 1;
    for (int t = 0; t < 2; t++) {
        il_trial *tr = &r->trials[t];
        tr->lat_ms = malloc((size_t)q * sizeof(double));
        for (int i = 0; i < q; i++) tr->lat_ms[i] = base_ms * (1.0 + 0.2 * (double)(il_rand_u64(&rng) >> 11) / 0x1p53);
        tr->n = tr->samples = q;
        il_lat_summarize(tr->lat_ms, q, &tr->lat);
        tr->seconds = tr->lat.mean * q / 1e3;
        tr->throughput = batch * 1e3 / tr->lat.mean;
    }
    r->lat = r->trials[0].lat;
    r->p50_lo = fmin(r->trials[0].lat.p50, r->trials[1].lat.p50);
    r->p50_hi = fmax(r->trials[0].lat.p50, r->trials[1].lat.p50);
    r->throughput = r->trials[0].throughput;
    r->throughput_stddev = 0;
    snprintf(r->provenance, sizeof r->provenance, "cpu\ttest cpu\ncores\t2\ngit_commit\tabc\ndate\t%s\n",
             r->created_at);
}

const char *il_test_plugin(const char *name) {
    static char path[8][4096];
    static int next;
    char dir[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) n = 1, dir[0] = '.';
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/passes/examples/%s.so", dir, name);
    return p;
}

int il_test_node_view(const il_graph *g, const il_shapes *s, int k, int precision, il_tensor *inb, il_tensor **in,
                      il_tensor *outb, il_tensor **out, il_kctx *c) {
    const il_node *n = &g->nodes[k];
    if (n->n_inputs > 32 || n->n_outputs > 8) return 0;
    uint64_t cm = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i];
        in[i] = NULL;
        if (v < 0) continue;
        inb[i] = s->info[v];
        const il_tensor *known = g->values[v].constant ? g->values[v].constant : s->known[v];
        inb[i].data = known ? known->data : NULL;
        inb[i].owns_data = 0;
        if (known) cm |= (uint64_t)1 << i;
        in[i] = &inb[i];
    }
    for (int i = 0; i < n->n_outputs; i++) {
        int v = n->outputs[i];
        out[i] = NULL;
        if (v < 0) continue;
        outb[i] = s->info[v];
        outb[i].data = NULL;
        outb[i].owns_data = 0;
        out[i] = &outb[i];
    }
    *c = (il_kctx){.node = n, .opset = il_graph_opset(g, n->domain), .n_in = n->n_inputs, .n_out = n->n_outputs,
                   .in = in, .out = out, .threads = 1, .const_mask = cm, .precision = precision};
    if (c->opset == 0 && !n->domain[0]) c->opset = 1;
    return 1;
}
