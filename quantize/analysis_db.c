/*
 * analysis_db.c - `inferlab quantize --analyze --db FILE`: the per-layer error analysis kept in
 * the bench results database (table quant_analysis), where the report draws it beside the
 * variants' accuracy. The database is opened through the store, so a fresh file gets the
 * results schema first and a foreign one is refused.
 */
#include "quantize.h"

#include <math.h>
#include <sqlite3.h>

#include "../bench/bench.h"

static const char *const create_sql =
    "CREATE TABLE IF NOT EXISTS quant_analysis(id INTEGER PRIMARY KEY, created_at TEXT NOT NULL,"
    " analysis INTEGER NOT NULL, model TEXT NOT NULL, model_sha256 TEXT, method TEXT, rank INTEGER,"
    " tensor TEXT NOT NULL, node TEXT, op TEXT,"
    " sqnr_db REAL, cosine REAL)";

il_status il_quant_analysis_save(const char *db_path, const char *model, const char *model_sha256, const char *method,
                                 const il_quant_layer *l, int n) {
    il_store *s;
    il_status st = il_store_open(db_path, &s);
    if (st) return st;
    sqlite3 *db = il_store_sqlite(s);
    sqlite3_stmt *q = NULL;
    /* the rows of one analysis share its number: the report draws the latest */
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, create_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "INSERT INTO quant_analysis(created_at, analysis, model, model_sha256, method, rank,"
                                " tensor, node, op, sqnr_db, cosine) VALUES (strftime('%Y-%m-%dT%H:%M:%SZ','now'),"
                                " (SELECT coalesce(max(analysis), 0) + (?4 = 1) FROM quant_analysis),"
                                " ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                                -1, &q, NULL);
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, model, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, model_sha256, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, method, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 4, i + 1);
        sqlite3_bind_text(q, 5, l[i].tensor, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 6, l[i].node, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 7, l[i].op, -1, SQLITE_STATIC);
        if (isfinite(l[i].sqnr)) sqlite3_bind_double(q, 8, l[i].sqnr);
        else sqlite3_bind_null(q, 8); /* no error at all */
        sqlite3_bind_double(q, 9, l[i].cosine);
        rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        st = il_error(IL_ERR_IO, "%s: writing the analysis to table quant_analysis: %s", db_path, sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    il_store_close(s);
    return st;
}
