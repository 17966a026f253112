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

typedef struct {
    const char *model, *sha, *method;
    const il_quant_layer *l;
} analysis_rows;

static void bind_analysis_row(void *stmt, int i, void *ctx) {
    sqlite3_stmt *q = stmt;
    const analysis_rows *r = ctx;
    sqlite3_bind_text(q, 1, r->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, r->sha, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, r->method, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, i + 1);
    sqlite3_bind_text(q, 5, r->l[i].tensor, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, r->l[i].node, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 7, r->l[i].op, -1, SQLITE_STATIC);
    if (isfinite(r->l[i].sqnr)) sqlite3_bind_double(q, 8, r->l[i].sqnr);
    else sqlite3_bind_null(q, 8); /* no error at all */
    sqlite3_bind_double(q, 9, r->l[i].cosine);
}

il_status il_quant_analysis_save(const char *db_path, const char *model, const char *model_sha256, const char *method,
                                 const il_quant_layer *l, int n) {
    analysis_rows r = {model, model_sha256, method, l};
    /* the rows of one analysis share its number: the report draws the latest */
    return il_store_append_rows(db_path, "the analysis to table quant_analysis", create_sql,
                                "INSERT INTO quant_analysis(created_at, analysis, model, model_sha256, method, rank,"
                                " tensor, node, op, sqnr_db, cosine) VALUES (strftime('%Y-%m-%dT%H:%M:%SZ','now'),"
                                " (SELECT coalesce(max(analysis), 0) + (?4 = 1) FROM quant_analysis),"
                                " ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                                n, bind_analysis_row, &r);
}
