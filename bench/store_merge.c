/*
 * store_merge.c - `db merge`: copy the runs of another results database that this one lacks
 * (by uuid), with their trials, latencies, node times and provenance, in one transaction.
 *
 * The source is only read: checked first through il_store_open_readonly (a missing file is not
 * created, a foreign, newer or damaged one is refused), then attached; only the columns both
 * schemas have are copied, so a source of an older version merges without being migrated.
 */
#include "bench.h"

#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

static il_status sq_err(sqlite3 *db, const char *what) {
    return il_error(IL_ERR_IO, "%s: %s: %s", sqlite3_db_filename(db, "main"), what, sqlite3_errmsg(db));
}

static il_status exec(sqlite3 *db, const char *sql, const char *what) {
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? IL_OK : sq_err(db, what);
}

/* The columns of table t that both main and other have (except skip), comma-joined and quoted,
 * read from the schemas themselves: merge follows migrations, and a source of an older version
 * gives what it has. cols is "" when other lacks the table. */
static il_status common_columns(sqlite3 *db, const char *t, const char *skip, char *cols, size_t n) {
    sqlite3_stmt *q;
    cols[0] = 0;
    if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1, 'main') WHERE name <> ?2 AND name IN"
                           " (SELECT name FROM pragma_table_info(?1, 'other')) ORDER BY cid", -1, &q, NULL))
        return sq_err(db, "read columns");
    sqlite3_bind_text(q, 1, t, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, skip, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        size_t used = strlen(cols);
        snprintf(cols + used, n - used, "%s\"%s\"", used ? "," : "", (const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? IL_OK : sq_err(db, "read columns");
}

/* Refuse to merge a file into itself (by device and inode, so another path to it counts):
 * attached to its own connection it would wait on its own lock for the busy timeout. */
static il_status not_same_file(sqlite3 *db, const char *other) {
    struct stat a, b;
    const char *self = sqlite3_db_filename(db, "main");
    if (self && self[0] && !stat(self, &a) && !stat(other, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return il_error(IL_ERR_INVALID, "%s is the database being merged into (%s)", other, self);
    return IL_OK;
}

static const char *const run_tables[] = {"trials", "latencies", "node_times", "provenance"};
#define N_RUN_TABLES (sizeof run_tables / sizeof *run_tables)

il_status il_store_merge(il_store *s, const char *other, int *added, int *skipped) {
    il_store *o;
    char cols[4096], kid[N_RUN_TABLES][1024];
    *added = *skipped = 0;
    /* Read-only and checked first: a missing file is not created, a foreign or newer one not
     * attached. */
    sqlite3 *db = il_store_sqlite(s);
    il_status st = not_same_file(db, other);
    if (!st) st = il_store_open_readonly(other, &o);
    if (st) return il_error_wrap(st, "merge: ");
    il_store_close(o);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS other", -1, &q, NULL) != SQLITE_OK)
        return sq_err(db, "attach");
    sqlite3_bind_text(q, 1, other, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return sq_err(db, "attach");
    if ((st = common_columns(db, "runs", "id", cols, sizeof cols))) goto detach;
    for (size_t t = 0; t < N_RUN_TABLES; t++)
        if ((st = common_columns(db, run_tables[t], "run_id", kid[t], sizeof kid[t]))) goto detach;
    if ((st = exec(db, "BEGIN IMMEDIATE", "begin merge"))) goto detach;
    if (sqlite3_prepare_v2(db, "SELECT id, uuid IN (SELECT uuid FROM main.runs) FROM other.runs ORDER BY id", -1,
                           &q, NULL) != SQLITE_OK) {
        st = sq_err(db, "read other runs");
        goto rollback;
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t oid = sqlite3_column_int64(q, 0);
        if (sqlite3_column_int(q, 1)) {
            (*skipped)++;
            continue;
        }
        char *ins = sqlite3_mprintf("INSERT INTO main.runs(%s) SELECT %s FROM other.runs WHERE id=%lld", cols, cols,
                                    (long long)oid);
        st = exec(db, ins, "copy run");
        sqlite3_free(ins);
        if (st) break;
        int64_t nid = sqlite3_last_insert_rowid(db);
        for (size_t t = 0; t < N_RUN_TABLES && !st; t++) {
            if (!kid[t][0]) continue;
            char *sql = sqlite3_mprintf("INSERT INTO main.%s(run_id,%s) SELECT %lld,%s FROM other.%s WHERE run_id=%lld",
                                        run_tables[t], kid[t], (long long)nid, kid[t], run_tables[t], (long long)oid);
            st = exec(db, sql, "copy run details");
            sqlite3_free(sql);
        }
        if (st) break;
        (*added)++;
    }
    sqlite3_finalize(q);
    if (!st && rc != SQLITE_DONE) st = sq_err(db, "read other runs");
    if (st) goto rollback;
    st = exec(db, "COMMIT", "commit merge");
    goto detach;
rollback : {
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", il_errmsg());
    exec(db, "ROLLBACK", "rollback");
    il_error(st, "%s", keep);
}
detach:
    sqlite3_exec(db, "DETACH DATABASE other", NULL, NULL, NULL);
    return st;
}
