/*
 * store_check.c - what a results database file is, decided before anything is written to it or
 * read from it: fresh, inferlab's at some schema version, newer, foreign or damaged.
 *
 * Why so careful: a writer's first act (the switch to WAL) rewrites the header, so a file must
 * be recognized before it; and readers run the file's own schema (its views), so a file whose
 * tables or `results` view are not the ones inferlab created could make `db list` loop forever
 * (a recursive view) - those are refused as foreign, as is any trigger (inferlab creates none).
 */
#include "store_int.h"

#include <string.h>
#include <sys/stat.h>

/* quick_check reads every page (about 1 s per GB): done below this size. */
#define QUICK_CHECK_MAX_BYTES (1LL << 30)

/* The text of the `results` view as the migration to `version` left it: the last CREATE VIEW
 * results statement of migrations[0..version-1] (SQLite keeps a CREATE statement's text as
 * written, without the semicolon). */
static const char *expected_view(const char *const *migrations, int version, size_t *len) {
    for (int k = version - 1; k >= 0; k--) {
        const char *v = strstr(migrations[k], "CREATE VIEW results");
        if (v) {
            *len = strcspn(v, ";");
            return v;
        }
    }
    return NULL;
}

/* inferlab's objects at `version` must be what inferlab made them; NULL when they are, else
 * what differs (for the message). */
static const char *shape(sqlite3 *db, const char *const *migrations, int version, char *why, size_t n) {
    static const char *const tables[] = {"runs", "trials", "latencies", "provenance", "node_times"};
    sqlite3_stmt *q;
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        if (!strcmp(tables[i], "node_times") && version < 2) continue;
        if (sqlite3_prepare_v2(db, "SELECT type FROM sqlite_master WHERE name = ?1", -1, &q, NULL)) return "unreadable";
        sqlite3_bind_text(q, 1, tables[i], -1, SQLITE_STATIC);
        int ok = sqlite3_step(q) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(q, 0), "table");
        sqlite3_finalize(q);
        if (!ok) return snprintf(why, n, "no table %s", tables[i]), why;
    }
    size_t len = 0;
    const char *want = expected_view(migrations, version, &len);
    if (sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = 'results' AND type = 'view'", -1, &q, NULL))
        return "unreadable";
    const char *have = sqlite3_step(q) == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
    int same = want && have && strlen(have) == len && !strncmp(have, want, len);
    sqlite3_finalize(q);
    if (!same) return "its results view is not the one inferlab created";
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'", -1, &q, NULL))
        return "unreadable";
    int triggers = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : 1;
    sqlite3_finalize(q);
    if (triggers) return "it has triggers, which inferlab never creates";
    return NULL;
}

static il_status classify(sqlite3 *db, const char *path, const char *const *migrations, int *version, int *rc) {
    sqlite3_stmt *q;
    int objects = 0, ours = 0, uv = 0;
    *rc = sqlite3_prepare_v2(db,
                             "SELECT count(*), coalesce(sum(type = 'table' AND name IN ('runs', 'provenance')), 0),"
                             " (SELECT user_version FROM pragma_user_version) FROM sqlite_master",
                             -1, &q, NULL);
    if (*rc == SQLITE_OK) {
        *rc = sqlite3_step(q);
        if (*rc == SQLITE_ROW) {
            objects = sqlite3_column_int(q, 0), ours = sqlite3_column_int(q, 1), uv = sqlite3_column_int(q, 2);
            *rc = SQLITE_OK;
        }
        sqlite3_finalize(q);
    }
    if ((*rc & 0xff) == SQLITE_NOTADB)
        return il_error(IL_ERR_PARSE, "%s: not an SQLite database, so not an inferlab results database", path);
    if (*rc != SQLITE_OK) return il_error(IL_ERR_IO, "%s: read the schema: %s", path, sqlite3_errmsg(db));
    *version = uv;
    if (objects == 0 && uv == 0) return IL_OK;
    if (uv > IL_STORE_VERSION && ours == 2)
        return il_error(IL_ERR_UNSUPPORTED, "%s: schema version %d is newer than this inferlab's %d; upgrade inferlab "
                        "to read it (the file was not changed)", path, uv, IL_STORE_VERSION);
    if (uv < 0 || uv > IL_STORE_VERSION)
        return il_error(IL_ERR_INVALID, "%s: schema version %d is not one inferlab writes: not an inferlab results "
                        "database (the file was not changed)", path, uv);
    if (uv == 0)
        return il_error(IL_ERR_INVALID, "%s: not an inferlab results database (it holds %d schema object%s but no "
                        "inferlab schema version; the file was not changed)", path, objects, objects == 1 ? "" : "s");
    if (ours != 2)
        return il_error(IL_ERR_INVALID, "%s: not an inferlab results database (it holds %d other schema object%s "
                        "and no runs/provenance tables; the file was not changed)", path, objects,
                        objects == 1 ? "" : "s");
    char why[128];
    const char *bad = shape(db, migrations, uv, why, sizeof why);
    if (bad)
        return il_error(IL_ERR_INVALID, "%s: not an inferlab results database as inferlab writes it (%s; the file "
                        "was not changed)", path, bad);
    return IL_OK;
}

/* All of the statements above read one snapshot: another process migrating the file between two
 * of them (its version read at 1, its view already at 2) would make inferlab's own file look
 * foreign. A deferred transaction costs nothing on a file that is not a database yet. */
il_status sto_classify(sqlite3 *db, const char *path, const char *const *migrations, int *version, int *rc) {
    int began = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    il_status st = classify(db, path, migrations, version, rc);
    if (began && sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

il_status sto_check_pages(sqlite3 *db, const char *path) {
    struct stat sb;
    if (!stat(path, &sb) && sb.st_size > QUICK_CHECK_MAX_BYTES) return IL_OK;
    sqlite3_stmt *q;
    char what[256] = "";
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &q, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            /* one line: "*** in database main ***\nPage 3: ..." -> "Page 3: ..." */
            const char *t = (const char *)sqlite3_column_text(q, 0), *nl = strchr(t, '\n');
            snprintf(what, sizeof what, "%s", !strncmp(t, "***", 3) && nl ? nl + 1 : t);
            for (char *c = what; *c; c++)
                if (*c == '\n') *c = ' ';
        }
        sqlite3_finalize(q);
    }
    if (rc == SQLITE_ROW && !strcmp(what, "ok")) return IL_OK;
    return il_error(IL_ERR_PARSE, "%s: the database is damaged (SQLite quick_check: %s); restore it from a copy or "
                    "bench again into a new file", path, rc == SQLITE_ROW ? what : sqlite3_errmsg(db));
}
