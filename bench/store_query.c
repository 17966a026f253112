/*
 * store_query.c - reading the results store for people and scripts: `db list` (one line per
 * run), `db show RUN` (every field, trials, provenance, slowest nodes), `db export --csv`.
 */
#include "bench.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static il_status qerr(sqlite3 *db, const char *what) {
    return il_error(IL_ERR_IO, "%s: %s", what, sqlite3_errmsg(db));
}

/* A value as text for tables: NULL shows as "-", reals with 4 significant digits. */
static const char *cell(sqlite3_stmt *q, int i, char *buf, size_t n) {
    switch (sqlite3_column_type(q, i)) {
    case SQLITE_NULL: return "-";
    case SQLITE_FLOAT: snprintf(buf, n, "%.4g", sqlite3_column_double(q, i)); return buf;
    default: snprintf(buf, n, "%s", (const char *)sqlite3_column_text(q, i)); return buf;
    }
}

il_status il_store_list(il_store *s, FILE *f) {
    sqlite3 *db = il_store_sqlite(s);
    sqlite3_stmt *q;
    const char *sql = "SELECT run_id, created_at, variant, engine, backend, scenario, batch, threads,"
                      " latency_p50_ms, latency_p99_ms, throughput_per_s, accuracy_top1,"
                      " CASE valid WHEN 1 THEN 'yes' WHEN 0 THEN 'INVALID' END FROM results ORDER BY run_id";
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return qerr(db, "db list");
    fprintf(f, "%5s  %-20s %-28s %-11s %-4s %-13s %5s %3s %9s %9s %10s %6s %s\n", "run", "created (UTC)", "variant",
            "engine", "bk", "scenario", "batch", "thr", "p50 ms", "p99 ms", "samples/s", "top1", "valid");
    int rows = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        char b[13][192];
        for (int i = 0; i < 13; i++) cell(q, i, b[i], sizeof b[i]);
        /* a label too long for its column keeps a hash of the whole, so rows stay distinct */
        char full[192];
        snprintf(full, sizeof full, "%s", b[2]);
        il_label_short(full, 28, b[2], sizeof b[2]);
        fprintf(f, "%5s  %-20.20s %-28.28s %-11s %-4s %-13s %5s %3s %9s %9s %10s %6s %s\n", b[0], b[1], b[2], b[3],
                b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12]);
        rows++;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return qerr(db, "db list");
    fprintf(f, "%d run%s\n", rows, rows == 1 ? "" : "s");
    return IL_OK;
}

/* Print every column of the rows of a query as "name: value" (one row) or a table. */
static il_status dump(sqlite3 *db, const char *sql, int64_t id, int vertical, FILE *f) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return qerr(db, "db show");
    sqlite3_bind_int64(q, 1, id);
    int nc = sqlite3_column_count(q), rc, rows = 0;
    char b[256];
    if (!vertical) {
        for (int i = 0; i < nc; i++) fprintf(f, "%s%14s", i ? " " : "  ", sqlite3_column_name(q, i));
        fprintf(f, "\n");
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        for (int i = 0; i < nc; i++) {
            if (vertical) fprintf(f, "  %-22s %s\n", sqlite3_column_name(q, i), cell(q, i, b, sizeof b));
            else fprintf(f, "%s%14.14s", i ? " " : "  ", cell(q, i, b, sizeof b));
        }
        if (!vertical) fprintf(f, "\n");
        rows++;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? IL_OK : qerr(db, "db show");
}

il_status il_store_show(il_store *s, const char *run, FILE *f) {
    sqlite3 *db = il_store_sqlite(s);
    sqlite3_stmt *q;
    int64_t id = -1;
    /* RUN is a run id or a prefix of its uuid (ids differ between merged databases); an id wins,
     * since uuids are hex and "7" also begins one run's uuid in sixteen. */
    if (sqlite3_prepare_v2(db, "SELECT id FROM runs WHERE CAST(id AS TEXT) = ?1 UNION ALL SELECT id FROM runs WHERE"
                           " uuid LIKE ?1 || '%' AND NOT EXISTS (SELECT 1 FROM runs WHERE CAST(id AS TEXT) = ?1)",
                           -1, &q, NULL) != SQLITE_OK)
        return qerr(db, "db show");
    sqlite3_bind_text(q, 1, run, -1, SQLITE_TRANSIENT);
    int matches = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        id = sqlite3_column_int64(q, 0);
        matches++;
    }
    sqlite3_finalize(q);
    if (matches == 0) return il_error(IL_ERR_INVALID, "db show: no run '%s' (see `inferlab db list`)", run);
    if (matches > 1) return il_error(IL_ERR_INVALID, "db show: '%s' matches %d runs; give more of the uuid", run, matches);
    il_status st;
    fprintf(f, "run %lld\n", (long long)id);
    if ((st = dump(db, "SELECT * FROM runs WHERE id = ?1", id, 1, f))) return st;
    fprintf(f, "trials:\n");
    if ((st = dump(db, "SELECT trial, queries, samples, seconds, throughput_per_s, lat_p50_ms, lat_p99_ms FROM trials"
                       " WHERE run_id = ?1 ORDER BY trial", id, 0, f)))
        return st;
    fprintf(f, "raw latencies kept:\n");
    if ((st = dump(db, "SELECT count(*) AS queries, min(ms) AS min_ms, max(ms) AS max_ms FROM latencies"
                       " WHERE run_id = ?1", id, 0, f)))
        return st;
    fprintf(f, "provenance:\n");
    if (sqlite3_prepare_v2(db, "SELECT key, value FROM provenance WHERE run_id = ?1 ORDER BY key", -1, &q, NULL))
        return qerr(db, "db show");
    sqlite3_bind_int64(q, 1, id);
    int rc;
    char k[256], v[256];
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        fprintf(f, "  %-22s %s\n", cell(q, 0, k, sizeof k), cell(q, 1, v, sizeof v));
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return qerr(db, "db show");
    fprintf(f, "slowest nodes (--profile):\n");
    /* the kernel column came with schema 4; an older database is shown as it is (read-only) */
    sqlite3_stmt *probe = NULL;
    int has_kernel = sqlite3_prepare_v2(db, "SELECT kernel FROM node_times", -1, &probe, NULL) == SQLITE_OK;
    sqlite3_finalize(probe);
    return dump(db,
                has_kernel ? "SELECT name, op_type, kernel, ms, macs FROM node_times WHERE run_id = ?1 ORDER BY ms DESC LIMIT 10"
                           : "SELECT name, op_type, ms, macs FROM node_times WHERE run_id = ?1 ORDER BY ms DESC LIMIT 10",
                id, 0, f);
}

static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

il_status il_store_export_csv(il_store *s, const char *table, FILE *f) {
    static const char *const allowed[] = {"results", "runs", "trials", "latencies", "node_times", "provenance"};
    sqlite3 *db = il_store_sqlite(s);
    int ok = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) ok |= !strcmp(table, allowed[i]);
    if (!ok)
        return il_error(IL_ERR_INVALID, "db export: unknown table '%s' (results, runs, trials, latencies, node_times,"
                                        " provenance)", table);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT * FROM %s", table);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return qerr(db, "db export");
    int nc = sqlite3_column_count(q), rc;
    for (int i = 0; i < nc; i++) {
        if (i) fputc(',', f);
        csv_field(f, sqlite3_column_name(q, i));
    }
    fputc('\n', f);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        for (int i = 0; i < nc; i++) {
            if (i) fputc(',', f);
            if (sqlite3_column_type(q, i) == SQLITE_FLOAT) fprintf(f, "%.17g", sqlite3_column_double(q, i));
            else if (sqlite3_column_type(q, i) != SQLITE_NULL) csv_field(f, (const char *)sqlite3_column_text(q, i));
        }
        fputc('\n', f);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? IL_OK : qerr(db, "db export");
}
