/*
 * store.c - the SQLite results store: schema and migrations, writing a run, merging databases.
 *
 * The schema is versioned with PRAGMA user_version; migrations[k] takes a database from version
 * k to k+1 and runs in the same transaction that bumps the version, so an interrupted migration
 * leaves the old version intact. WAL mode lets readers (reports) run while a bench writes, and
 * a busy timeout makes a second writer wait for the first instead of failing. Each run is
 * written in one BEGIN IMMEDIATE ... COMMIT: readers and a crash see all of it or none.
 *
 * The `results` view is the documented interface for scripts (docs/bench.md lists its
 * columns); the tables behind it may grow in later versions.
 *
 * Before anything can write, an open looks at what the file is - fresh (no schema at all),
 * inferlab's at some version, or something else - because switching to WAL already rewrites
 * the header: a foreign file, a newer schema or an invalid version is refused untouched.
 * Readers (db list/show/export, report, merge's source) open read-only and never migrate: an
 * older schema is read through a copy in memory migrated there.
 */
#include "store_int.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct il_store {
    sqlite3 *db;
    char path[IL_PATH_MAX]; /* the file, for messages (an in-memory copy keeps its file's name) */
};


/* Version 1: the first schema - runs with latency/throughput/accuracy, trials, raw latencies,
 * provenance. */
static const char *const schema_v1 =
    "CREATE TABLE runs("
    " id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, experiment TEXT,"
    " model TEXT, model_path TEXT, model_sha256 TEXT, model_bytes INTEGER, params INTEGER, flops INTEGER,"
    " variant TEXT, pipeline TEXT, precision TEXT, engine TEXT, engine_version TEXT, backend TEXT,"
    " scenario TEXT, batch INTEGER, threads INTEGER, samples_per_query INTEGER,"
    " trials INTEGER, queries INTEGER, seconds REAL,"
    " lat_p50_ms REAL, lat_p90_ms REAL, lat_p95_ms REAL, lat_p99_ms REAL, lat_max_ms REAL,"
    " lat_mean_ms REAL, lat_stddev_ms REAL, throughput_per_s REAL, throughput_stddev REAL,"
    " target_qps REAL, latency_bound_ms REAL, bound_met INTEGER, max_qps REAL,"
    " peak_host_bytes INTEGER, peak_activation_bytes INTEGER,"
    " dataset TEXT, accuracy_samples INTEGER, accuracy_top1 REAL, accuracy_top5 REAL,"
    " seed INTEGER, note TEXT);"
    "CREATE TABLE trials(run_id INTEGER NOT NULL REFERENCES runs(id), trial INTEGER NOT NULL,"
    " queries INTEGER, samples INTEGER, seconds REAL, throughput_per_s REAL,"
    " lat_p50_ms REAL, lat_p99_ms REAL, lat_mean_ms REAL, PRIMARY KEY(run_id, trial));"
    "CREATE TABLE latencies(run_id INTEGER NOT NULL, trial INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " ms REAL NOT NULL, PRIMARY KEY(run_id, trial, seq)) WITHOUT ROWID;"
    "CREATE TABLE provenance(run_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT,"
    " PRIMARY KEY(run_id, key)) WITHOUT ROWID;"
    "CREATE VIEW results AS SELECT id AS run_id, created_at, model, variant, pipeline, precision, backend,"
    " engine, scenario, batch, threads, lat_p50_ms AS latency_p50_ms, lat_p99_ms AS latency_p99_ms,"
    " throughput_per_s, peak_host_bytes, accuracy_top1 FROM runs;";

/* Version 2: agreement with the FP32 parent, device memory, sparsity, per-node times, and the
 * view gains the columns that go with them. */
static const char *const schema_v2 =
    "ALTER TABLE runs ADD COLUMN parent_sha256 TEXT;"
    "ALTER TABLE runs ADD COLUMN parent_variant TEXT;"
    "ALTER TABLE runs ADD COLUMN peak_device_bytes INTEGER;"
    "ALTER TABLE runs ADD COLUMN agreement_top1 REAL;"
    "ALTER TABLE runs ADD COLUMN max_abs_error REAL;"
    "ALTER TABLE runs ADD COLUMN cosine_similarity REAL;"
    "ALTER TABLE runs ADD COLUMN sparsity REAL;"
    "CREATE TABLE node_times(run_id INTEGER NOT NULL, node INTEGER NOT NULL, name TEXT, op_type TEXT,"
    " ms REAL, macs INTEGER, PRIMARY KEY(run_id, node)) WITHOUT ROWID;"
    "CREATE INDEX runs_created ON runs(created_at);"
    "DROP VIEW results;"
    "CREATE VIEW results AS SELECT id AS run_id, created_at, model, variant, pipeline, precision, backend,"
    " engine, scenario, batch, threads, lat_p50_ms AS latency_p50_ms, lat_p90_ms AS latency_p90_ms,"
    " lat_p99_ms AS latency_p99_ms, lat_mean_ms AS latency_mean_ms, throughput_per_s,"
    " peak_host_bytes, peak_device_bytes, peak_activation_bytes, model_bytes, params, flops, sparsity,"
    " accuracy_top1, accuracy_top5, agreement_top1, max_abs_error, cosine_similarity,"
    " target_qps, bound_met, max_qps, trials, queries, model_sha256, parent_variant, experiment, uuid"
    " FROM runs;";

/* Version 3: how far a run's figures can be trusted - MLPerf-style validity with its reason,
 * the spread of the trials' p50s, the warm-up, the machine's load and the OpenMP wait policy -
 * and the view says whether each run is valid. */
static const char *const schema_v3 =
    "ALTER TABLE runs ADD COLUMN valid INTEGER;"
    "ALTER TABLE runs ADD COLUMN invalid_reason TEXT;"
    "ALTER TABLE runs ADD COLUMN lat_p50_trial_min_ms REAL;"
    "ALTER TABLE runs ADD COLUMN lat_p50_trial_max_ms REAL;"
    "ALTER TABLE runs ADD COLUMN max_spread REAL;"
    "ALTER TABLE runs ADD COLUMN warmup_queries INTEGER;"
    "ALTER TABLE runs ADD COLUMN load_avg1 REAL;"
    "ALTER TABLE runs ADD COLUMN cpu_busy_pct REAL;"
    "ALTER TABLE runs ADD COLUMN steal_pct REAL;"
    "ALTER TABLE runs ADD COLUMN others_running INTEGER;"
    "ALTER TABLE runs ADD COLUMN wait_policy TEXT;"
    "ALTER TABLE trials ADD COLUMN warmup_queries INTEGER;"
    "ALTER TABLE trials ADD COLUMN steady INTEGER;"
    "DROP VIEW results;"
    "CREATE VIEW results AS SELECT id AS run_id, created_at, model, variant, pipeline, precision, backend,"
    " engine, scenario, batch, threads, lat_p50_ms AS latency_p50_ms, lat_p90_ms AS latency_p90_ms,"
    " lat_p99_ms AS latency_p99_ms, lat_mean_ms AS latency_mean_ms, throughput_per_s,"
    " peak_host_bytes, peak_device_bytes, peak_activation_bytes, model_bytes, params, flops, sparsity,"
    " accuracy_top1, accuracy_top5, agreement_top1, max_abs_error, cosine_similarity,"
    " target_qps, bound_met, max_qps, trials, queries, model_sha256, parent_variant, experiment, uuid,"
    " valid, invalid_reason, lat_p50_trial_min_ms AS latency_p50_trial_min_ms,"
    " lat_p50_trial_max_ms AS latency_p50_trial_max_ms, load_avg1, others_running"
    " FROM runs;";

/* Version 4: which kernel ran each profiled node (the plan's choice: forced, heuristic or timed). */
static const char *const schema_v4 = "ALTER TABLE node_times ADD COLUMN kernel TEXT;";

/* The results view's columns as of version 5 (later versions append theirs). */
#define RESULTS_V5                                                                                              \
    "id AS run_id, created_at, model, variant, pipeline, precision, backend,"                                   \
    " engine, scenario, batch, threads, lat_p50_ms AS latency_p50_ms, lat_p90_ms AS latency_p90_ms,"            \
    " lat_p99_ms AS latency_p99_ms, lat_mean_ms AS latency_mean_ms, throughput_per_s,"                          \
    " peak_host_bytes, peak_device_bytes, peak_activation_bytes, model_bytes, params, flops, sparsity,"         \
    " accuracy_top1, accuracy_top5, agreement_top1, max_abs_error, cosine_similarity,"                         \
    " target_qps, bound_met, max_qps, trials, queries, model_sha256, parent_variant, experiment, uuid,"         \
    " valid, invalid_reason, lat_p50_trial_min_ms AS latency_p50_trial_min_ms,"                                 \
    " lat_p50_trial_max_ms AS latency_p50_trial_max_ms, load_avg1, others_running, recipe"

/* Version 5: how a variant was made (its quantize/prune recipe) and its per-layer sparsity. */
static const char *const schema_v5 =
    "ALTER TABLE runs ADD COLUMN recipe TEXT;"
    "ALTER TABLE runs ADD COLUMN layer_sparsity TEXT;"
    "DROP VIEW results;"
    "CREATE VIEW results AS SELECT " RESULTS_V5 " FROM runs;";

/* Version 6: GPU runs - the arithmetic asked for (compute_precision: fp32/tf32/fp16/bf16 on the
 * GPU; precision stays what the model file stores), CUDA graphs, the GPU, its driver, the CUDA
 * runtime/cuBLAS/cuDNN versions the engine ran with, and how peak_device_bytes was measured. */
static const char *const schema_v6 =
    "ALTER TABLE runs ADD COLUMN compute_precision TEXT;"
    "ALTER TABLE runs ADD COLUMN cuda_graphs INTEGER;"
    "ALTER TABLE runs ADD COLUMN gpu TEXT;"
    "ALTER TABLE runs ADD COLUMN gpu_cc TEXT;"
    "ALTER TABLE runs ADD COLUMN gpu_driver TEXT;"
    "ALTER TABLE runs ADD COLUMN cuda_version TEXT;"
    "ALTER TABLE runs ADD COLUMN cublas_version TEXT;"
    "ALTER TABLE runs ADD COLUMN cudnn_version TEXT;"
    "ALTER TABLE runs ADD COLUMN device_memory_how TEXT;"
    "DROP VIEW results;"
    "CREATE VIEW results AS SELECT " RESULTS_V5 ", compute_precision, cuda_graphs, gpu, gpu_cc, gpu_driver,"
    " cuda_version, cublas_version, cudnn_version, device_memory_how FROM runs;";

static const char *const migrations[IL_STORE_VERSION] = {schema_v1, schema_v2, schema_v3,
                                                         schema_v4, schema_v5, schema_v6};

static il_status sq_err(il_store *s, const char *what) {
    return il_error(IL_ERR_IO, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static il_status exec(il_store *s, const char *sql, const char *what) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK) return IL_OK;
    il_status st = il_error(IL_ERR_IO, "%s: %s: %s", s->path, what, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return st;
}

static int read_version(il_store *s) {
    sqlite3_stmt *q;
    int v = -1;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(q) == SQLITE_ROW) v = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return v;
}

int il_store_version(il_store *s) { return read_version(s); }

/* Switching a fresh file to WAL needs an exclusive lock, and SQLite may return SQLITE_BUSY at
 * once, without calling the busy handler, where waiting could deadlock (two processes opening a
 * new database together, as tests/test_bench.c's concurrent writers do). So retry here. */
static il_status enable_wal(il_store *s) {
    for (int attempt = 0;; attempt++) {
        int rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK) return IL_OK;
        if ((rc & 0xff) != SQLITE_BUSY || attempt == 1000) return sq_err(s, "enable WAL");
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Bring the schema to `target`; each step in its own immediate transaction with the version
 * re-read inside it, so two processes opening a fresh file at once migrate it once. */
static il_status migrate(il_store *s, int target) {
    for (;;) {
        il_status st = exec(s, "BEGIN IMMEDIATE", "begin migration");
        if (st) return st;
        int v = read_version(s);
        if (v < 0 || v > IL_STORE_VERSION) {
            exec(s, "ROLLBACK", "rollback");
            return il_error(IL_ERR_UNSUPPORTED, "%s: schema version %d is not one this inferlab (%d) can migrate",
                            s->path, v, IL_STORE_VERSION);
        }
        if (v >= target) return exec(s, "COMMIT", "commit");
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%d", v + 1);
        if ((st = exec(s, migrations[v], "migrate schema")) || (st = exec(s, bump, "set schema version"))) {
            exec(s, "ROLLBACK", "rollback");
            return il_error_wrap(st, "migrating to version %d: ", v + 1);
        }
        if ((st = exec(s, "COMMIT", "commit migration"))) return st;
    }
}

/* A path an existing database may have: a regular file (a FIFO would block the open). */
static il_status regular_file(const char *path, int must_exist) {
    struct stat sb;
    if (stat(path, &sb)) {
        if (!must_exist) return IL_OK;
        return il_error(IL_ERR_IO, "%s: no such database (check the path; `inferlab bench --db %s` creates one)", path,
                        path);
    }
    if (!S_ISREG(sb.st_mode)) return il_error(IL_ERR_IO, "%s: not a regular file, so not a results database", path);
    return IL_OK;
}

static il_status open_handle(const char *path, const char *name, int flags, il_store **out) {
    il_store *s = calloc(1, sizeof *s);
    if (!s) return il_error(IL_ERR_OOM, "out of memory");
    snprintf(s->path, sizeof s->path, "%s", path);
    if (sqlite3_open_v2(name, &s->db, flags, NULL) != SQLITE_OK) {
        il_status st = il_error(IL_ERR_IO, "%s: cannot open database: %s", path,
                                s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        free(s);
        return st;
    }
    sqlite3_busy_timeout(s->db, 60000);
    *out = s;
    return IL_OK;
}

il_status il_store_open_version(const char *path, int version, il_store **out) {
    il_store *s;
    int v, rc;
    il_status st = regular_file(path, 0);
    if (!st) st = open_handle(path, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s);
    if (st) return st;
    st = sto_classify(s->db, s->path, migrations, &v, &rc);
    if (!st) st = enable_wal(s);
    if (!st) st = exec(s, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", "pragmas");
    if (!st) st = migrate(s, version);
    if (st) {
        il_store_close(s);
        return st;
    }
    *out = s;
    return IL_OK;
}

il_status il_store_open(const char *path, il_store **out) { return il_store_open_version(path, IL_STORE_VERSION, out); }

/* "file:PATH?immutable=1" with PATH percent-encoded (SQLite's URI rules). */
static void immutable_uri(const char *path, char *uri, size_t n) {
    size_t k = (size_t)snprintf(uri, n, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p && k + 4 < n; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("/._-~", *p))
            uri[k++] = (char)*p;
        else k += (size_t)snprintf(uri + k, n - k, "%%%02X", *p);
    }
    snprintf(uri + k, n - k, "?immutable=1");
}

/* Replace s's connection by an in-memory copy migrated to the current schema. */
static il_status migrate_in_memory(il_store *s) {
    sqlite3 *mem;
    if (sqlite3_open(":memory:", &mem) != SQLITE_OK) {
        sqlite3_close(mem);
        return il_error(IL_ERR_OOM, "%s: cannot open an in-memory copy", s->path);
    }
    sqlite3_backup *b = sqlite3_backup_init(mem, "main", s->db, "main");
    int rc = b ? sqlite3_backup_step(b, -1) : sqlite3_errcode(mem);
    if (b) sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        il_status st = il_error(IL_ERR_IO, "%s: copying into memory to read an older schema: %s", s->path,
                                sqlite3_errmsg(mem));
        sqlite3_close(mem);
        return st;
    }
    sqlite3_close(s->db);
    s->db = mem;
    return migrate(s, IL_STORE_VERSION);
}

il_status il_store_open_readonly(const char *path, il_store **out) {
    il_store *s;
    int v = 0, rc = SQLITE_OK;
    il_status st = regular_file(path, 1);
    if (!st) st = open_handle(path, path, SQLITE_OPEN_READONLY, &s);
    if (st) return st;
    st = sto_classify(s->db, s->path, migrations, &v, &rc);
    /* A WAL file whose folder cannot be written (a read-only filesystem, another user's folder)
     * has no -shm to share; nobody can be writing it, so read it as an immutable file. */
    if (st && ((rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_READONLY)) {
        char uri[3 * IL_PATH_MAX + 32];
        il_store_close(s);
        immutable_uri(path, uri, sizeof uri);
        if ((st = open_handle(path, uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, &s))) return st;
        st = sto_classify(s->db, s->path, migrations, &v, &rc);
    }
    if (!st && v == 0)
        st = il_error(IL_ERR_INVALID, "%s: an empty database, not yet an inferlab results database (nothing was "
                      "benchmarked into it)", path);
    if (!st) st = sto_check_pages(s->db, s->path);
    if (!st && v < IL_STORE_VERSION) st = migrate_in_memory(s);
    if (st) {
        il_store_close(s);
        return st;
    }
    *out = s;
    return IL_OK;
}

void il_store_close(il_store *s) {
    if (!s) return;
    sqlite3_close(s->db);
    free(s);
}

void *il_store_sqlite(il_store *s) { return s->db; }

/* ---- writing a run */

static void bind_d(sqlite3_stmt *q, int i, double v) {
    if (isfinite(v)) sqlite3_bind_double(q, i, v);
    else sqlite3_bind_null(q, i);
}
static void bind_i(sqlite3_stmt *q, int i, int64_t v) {
    if (v >= 0) sqlite3_bind_int64(q, i, v);
    else sqlite3_bind_null(q, i);
}
static void bind_t(sqlite3_stmt *q, int i, const char *v) {
    if (v && v[0]) sqlite3_bind_text(q, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(q, i);
}

static void new_uuid(char out[40]) {
    unsigned char b[16];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(b, 1, 16, f) != 16) {
        uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32) ^ (uint64_t)(uintptr_t)out;
        for (int i = 0; i < 16; i++) b[i] = (unsigned char)(il_rand_u64(&x) >> 56);
    }
    if (f) fclose(f);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static const char *const insert_run_sql =
    "INSERT INTO runs(uuid, created_at, experiment, model, model_path, model_sha256, model_bytes, params, flops,"
    " variant, pipeline, precision, engine, engine_version, backend, scenario, batch, threads, samples_per_query,"
    " trials, queries, seconds, lat_p50_ms, lat_p90_ms, lat_p95_ms, lat_p99_ms, lat_max_ms, lat_mean_ms,"
    " lat_stddev_ms, throughput_per_s, throughput_stddev, target_qps, latency_bound_ms, bound_met, max_qps,"
    " peak_host_bytes, peak_activation_bytes, dataset, accuracy_samples, accuracy_top1, accuracy_top5, seed, note,"
    " parent_sha256, parent_variant, peak_device_bytes, agreement_top1, max_abs_error, cosine_similarity, sparsity)"
    " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,"
    "?28,?29,?30,?31,?32,?33,?34,?35,?36,?37,?38,?39,?40,?41,?42,?43,?44,?45,?46,?47,?48,?49,?50)";

static il_status insert_body(il_store *s, const il_run_record *r, int64_t *id) {
    sqlite3_stmt *q = NULL;
    char uuid[40];
    int64_t queries = 0;
    double secs = 0;
    if (sqlite3_prepare_v2(s->db, insert_run_sql, -1, &q, NULL) != SQLITE_OK) return sq_err(s, "prepare run");
    for (int t = 0; t < r->n_trials; t++) queries += r->trials[t].n, secs += r->trials[t].seconds;
    if (r->uuid[0]) snprintf(uuid, sizeof uuid, "%s", r->uuid);
    else new_uuid(uuid);
    bind_t(q, 1, uuid);
    bind_t(q, 2, r->created_at);
    bind_t(q, 3, r->experiment);
    bind_t(q, 4, r->model_name);
    bind_t(q, 5, r->v.model);
    bind_t(q, 6, r->model_sha256);
    bind_i(q, 7, r->model_bytes);
    bind_i(q, 8, r->params);
    bind_i(q, 9, r->flops);
    bind_t(q, 10, r->variant);
    bind_t(q, 11, r->v.pipeline);
    bind_t(q, 12, r->precision);
    bind_t(q, 13, r->v.engine);
    bind_t(q, 14, r->engine_version);
    bind_t(q, 15, r->v.backend);
    bind_t(q, 16, il_scenario_name(r->v.scenario));
    bind_i(q, 17, r->v.batch);
    bind_i(q, 18, r->v.threads);
    bind_i(q, 19, r->samples_per_query);
    bind_i(q, 20, r->n_trials);
    bind_i(q, 21, queries);
    bind_d(q, 22, secs);
    bind_d(q, 23, r->lat.p50);
    bind_d(q, 24, r->lat.p90);
    bind_d(q, 25, r->lat.p95);
    bind_d(q, 26, r->lat.p99);
    bind_d(q, 27, r->lat.max);
    bind_d(q, 28, r->lat.mean);
    bind_d(q, 29, r->lat.stddev);
    bind_d(q, 30, r->throughput);
    bind_d(q, 31, r->throughput_stddev);
    bind_d(q, 32, r->target_qps);
    bind_d(q, 33, r->latency_bound_ms);
    bind_i(q, 34, r->bound_met);
    bind_d(q, 35, r->max_qps);
    bind_i(q, 36, r->peak_host_bytes);
    bind_i(q, 37, r->peak_activation_bytes);
    bind_t(q, 38, r->dataset);
    bind_i(q, 39, r->accuracy_samples);
    bind_d(q, 40, r->top1);
    bind_d(q, 41, r->top5);
    sqlite3_bind_int64(q, 42, (sqlite3_int64)r->seed);
    bind_t(q, 43, r->note);
    bind_t(q, 44, r->parent_sha256);
    bind_t(q, 45, r->parent_variant);
    bind_i(q, 46, r->peak_device_bytes);
    bind_d(q, 47, r->agree_top1);
    bind_d(q, 48, r->max_abs_err);
    bind_d(q, 49, r->cosine);
    bind_d(q, 50, r->sparsity);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return sq_err(s, "insert run");
    int64_t rid = sqlite3_last_insert_rowid(s->db);
    if (id) *id = rid;

    if (sqlite3_prepare_v2(s->db, "INSERT INTO trials(run_id, trial, queries, samples, seconds, throughput_per_s, lat_p50_ms, lat_p99_ms,"
                           " lat_mean_ms, warmup_queries, steady) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)", -1, &q, NULL))
        return sq_err(s, "prepare trials");
    for (int t = 0; t < r->n_trials; t++) {
        const il_trial *tr = &r->trials[t];
        sqlite3_bind_int64(q, 1, rid);
        sqlite3_bind_int(q, 2, t);
        bind_i(q, 3, tr->n);
        bind_i(q, 4, tr->samples);
        bind_d(q, 5, tr->seconds);
        bind_d(q, 6, tr->throughput);
        bind_d(q, 7, tr->lat.p50);
        bind_d(q, 8, tr->lat.p99);
        bind_d(q, 9, tr->lat.mean);
        bind_i(q, 10, tr->warmup_n);
        sqlite3_bind_int(q, 11, tr->steady);
        if (sqlite3_step(q) != SQLITE_DONE) return sqlite3_finalize(q), sq_err(s, "insert trial");
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);

    if (sqlite3_prepare_v2(s->db, "INSERT INTO latencies VALUES(?1,?2,?3,?4)", -1, &q, NULL))
        return sq_err(s, "prepare latencies");
    for (int t = 0; t < r->n_trials; t++)
        for (int64_t i = 0; i < r->trials[t].n; i++) {
            sqlite3_bind_int64(q, 1, rid);
            sqlite3_bind_int(q, 2, t);
            sqlite3_bind_int64(q, 3, i);
            sqlite3_bind_double(q, 4, r->trials[t].lat_ms[i]);
            if (sqlite3_step(q) != SQLITE_DONE) return sqlite3_finalize(q), sq_err(s, "insert latency");
            sqlite3_reset(q);
        }
    sqlite3_finalize(q);

    if (sqlite3_prepare_v2(s->db, "INSERT INTO node_times(run_id,node,name,op_type,ms,macs,kernel) "
                                  "VALUES(?1,?2,?3,?4,?5,?6,?7)", -1, &q, NULL))
        return sq_err(s, "prepare node times");
    for (int k = 0; k < r->n_nodes; k++) {
        sqlite3_bind_int64(q, 1, rid);
        sqlite3_bind_int(q, 2, k);
        bind_t(q, 3, r->nodes[k].name);
        bind_t(q, 4, r->nodes[k].op_type);
        bind_d(q, 5, r->nodes[k].ms);
        bind_i(q, 6, r->nodes[k].macs);
        bind_t(q, 7, r->nodes[k].kernel);
        if (sqlite3_step(q) != SQLITE_DONE) return sqlite3_finalize(q), sq_err(s, "insert node time");
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);

    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO provenance VALUES(?1,?2,?3)", -1, &q, NULL))
        return sq_err(s, "prepare provenance");
    for (const char *line = r->provenance; *line;) {
        const char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line);
        if (tab && tab < nl) {
            sqlite3_bind_int64(q, 1, rid);
            sqlite3_bind_text(q, 2, line, (int)(tab - line), SQLITE_TRANSIENT);
            sqlite3_bind_text(q, 3, tab + 1, (int)(nl - tab - 1), SQLITE_TRANSIENT);
            if (sqlite3_step(q) != SQLITE_DONE) return sqlite3_finalize(q), sq_err(s, "insert provenance");
            sqlite3_reset(q);
        }
        line = *nl ? nl + 1 : nl;
    }
    sqlite3_finalize(q);
    return IL_OK;
}

/* The figures of versions 3 and 5 of run rid, kept apart from the long INSERT above. */
static il_status insert_trust(il_store *s, const il_run_record *r, int64_t rid) {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE runs SET valid=?2, invalid_reason=?3, lat_p50_trial_min_ms=?4,"
                           " lat_p50_trial_max_ms=?5, max_spread=?6, warmup_queries=?7, load_avg1=?8, cpu_busy_pct=?9,"
                           " steal_pct=?10, others_running=?11, wait_policy=?12, recipe=?13, layer_sparsity=?14 WHERE id=?1",
                           -1, &q, NULL) != SQLITE_OK)
        return sq_err(s, "prepare run validity");
    sqlite3_bind_int64(q, 1, rid);
    bind_i(q, 2, r->valid);
    bind_t(q, 3, r->invalid_reason);
    bind_d(q, 4, r->p50_lo);
    bind_d(q, 5, r->p50_hi);
    bind_d(q, 6, r->max_spread);
    bind_i(q, 7, r->warmup_queries);
    bind_d(q, 8, r->load.load1);
    bind_d(q, 9, r->load.busy_pct);
    bind_d(q, 10, r->load.steal_pct);
    bind_i(q, 11, r->load.others_running);
    bind_t(q, 12, r->wait_policy);
    bind_t(q, 13, r->recipe);
    bind_t(q, 14, r->layer_sparsity);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? IL_OK : sq_err(s, "store run validity");
}

/* The GPU figures of version 6 (NULL for cpu runs: their strings are empty). */
static il_status insert_device(il_store *s, const il_run_record *r, int64_t rid) {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE runs SET compute_precision=?2, cuda_graphs=?3, gpu=?4, gpu_cc=?5, gpu_driver=?6,"
                           " cuda_version=?7, cublas_version=?8, cudnn_version=?9, device_memory_how=?10 WHERE id=?1",
                           -1, &q, NULL) != SQLITE_OK)
        return sq_err(s, "prepare run device");
    int gpu = !strcmp(r->v.backend, "cuda");
    sqlite3_bind_int64(q, 1, rid);
    bind_t(q, 2, r->v.precision[0] ? r->v.precision : gpu ? "fp32" : "");
    bind_i(q, 3, gpu ? r->v.graphs : -1);
    bind_t(q, 4, r->gpu);
    bind_t(q, 5, r->gpu_cc);
    bind_t(q, 6, r->gpu_driver);
    bind_t(q, 7, r->cuda_version);
    bind_t(q, 8, r->cublas_version);
    bind_t(q, 9, r->cudnn_version);
    bind_t(q, 10, r->device_memory_how);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? IL_OK : sq_err(s, "store run device");
}

il_status il_store_insert(il_store *s, const il_run_record *r, int64_t *id) {
    int64_t rid = 0;
    il_status st = exec(s, "BEGIN IMMEDIATE", "begin run");
    if (st) return st;
    if ((st = insert_body(s, r, &rid)) || (st = insert_trust(s, r, rid)) || (st = insert_device(s, r, rid))) {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", il_errmsg());
        exec(s, "ROLLBACK", "rollback");
        return il_error(st, "%s", keep);
    }
    if (id) *id = rid;
    return exec(s, "COMMIT", "commit run");
}

il_status il_store_append_rows(const char *path, const char *what, const char *create_sql, const char *insert_sql,
                               int n, void (*bind)(void *stmt, int i, void *ctx), void *ctx) {
    il_store *s;
    il_status st = il_store_open(path, &s);
    if (st) return st;
    sqlite3 *db = s->db;
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, create_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, insert_sql, -1, &q, NULL);
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_reset(q);
        bind(q, i, ctx);
        rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        st = il_error(IL_ERR_IO, "%s: writing %s: %s", path, what, sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    il_store_close(s);
    return st;
}
