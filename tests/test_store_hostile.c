/*
 * test_store_hostile.c - the results store given files it did not write or cannot write, through
 * the real binary ($IL_BIN): a foreign SQLite file, newer and invalid schema versions, missing
 * paths, a read-only filesystem, an older schema, damaged pages, garbage, and merging a database
 * into itself. Readers must never create, migrate or switch a file to WAL; every refusal is a
 * one-line message and a non-zero exit.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../bench/bench.h"
#include "test.h"

#define tmp il_test_tmp

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* `inferlab ARGS` must fail (exit 1 or 2, no signal, no timeout) saying want. */
static void refused(const char *args, const char *want) {
    char out[8192];
    int rc = il_test_cli(args, out, sizeof out);
    if ((rc != 1 && rc != 2) || !strstr(out, want))
        fprintf(stderr, "\n  `inferlab %s` exited %d, want '%s':\n%s\n", args, rc, want, out);
    CU_ASSERT(rc == 1 || rc == 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    CU_ASSERT_PTR_NULL(strstr(out, "Sanitizer"));
}

/* `inferlab ARGS` must succeed; its output goes to out. */
static void works(const char *args, char *out, size_t n) {
    int rc = il_test_cli(args, out, n);
    if (rc) fprintf(stderr, "\n  `inferlab %s` exited %d:\n%s\n", args, rc, out);
    CU_ASSERT_EQUAL(rc, 0);
}

static void raw_sql(const char *path, const char *sql) {
    sqlite3 *db;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Byte 18 of an SQLite header: 1 rollback journal, 2 WAL. */
static int header_mode(const char *path) {
    unsigned char h[20] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    return n == sizeof h ? h[18] : -1;
}

/* An inferlab database at schema `version` with `runs` made-up runs, left in rollback-journal
 * mode (as a file copied from elsewhere may be) so a WAL switch would show. */
static void make_db(const char *path, int version, int runs) {
    il_store *s;
    IL_ASSERT_OK(il_store_open_version(path, version, &s));
    for (int i = 0; i < runs; i++) {
        il_run_record r;
        il_test_record(&r, "resnet/model.onnx", i % 2 ? "O2" : "O0", 1, "single-stream", 1.0 + i, 300);
        if (version >= IL_STORE_VERSION) IL_ASSERT_OK(il_store_insert(s, &r, NULL));
        else
            CU_ASSERT_EQUAL(sqlite3_exec(il_store_sqlite(s), "INSERT INTO runs(uuid, created_at, variant, engine,"
                                         " scenario, lat_p50_ms) VALUES (hex(randomblob(16)), '2024-01-01', 'old run',"
                                         " 'inferlab', 'single-stream', 1.5)", 0, 0, 0), SQLITE_OK);
        il_record_free(&r);
    }
    il_store_close(s);
    raw_sql(path, "PRAGMA journal_mode=DELETE");
}

static void test_foreign(void) {
    char args[2048], bad[600], fresh[600];
    snprintf(bad, sizeof bad, "%s", tmp("notes.db"));
    snprintf(fresh, sizeof fresh, "%s", tmp("fresh.db"));
    raw_sql(bad, "CREATE TABLE notes(t TEXT); INSERT INTO notes VALUES('mine')");
    static const char *const cmds[] = {"db --db %s list", "db --db %s show 1", "db --db %s export --csv",
                                       "report --db %s -o %s.out --no-pdf"};
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, cmds[i], bad, bad);
        refused(args, "not an inferlab results database");
    }
    snprintf(args, sizeof args, "db --db %s merge %s", fresh, bad);
    refused(args, "not an inferlab results database");
    CU_ASSERT(!exists(fresh)); /* the target is not created for a refused source */
    /* the writer refuses it too, before its WAL switch */
    il_store *s;
    CU_ASSERT_EQUAL(il_store_open(bad, &s), IL_ERR_INVALID);
    CU_ASSERT_EQUAL(il_test_db_scalar(bad, "SELECT count(*) FROM sqlite_master"), 1);
    CU_ASSERT_EQUAL(il_test_db_scalar(bad, "SELECT count(*) FROM notes"), 1);
    CU_ASSERT_EQUAL(header_mode(bad), 1);
}

static void test_versions(void) {
    char args[2048], newer[600], neg[600];
    snprintf(newer, sizeof newer, "%s", tmp("newer.db"));
    snprintf(neg, sizeof neg, "%s", tmp("negative.db"));
    make_db(newer, IL_STORE_VERSION, 1);
    raw_sql(newer, "PRAGMA user_version = 99");
    snprintf(args, sizeof args, "db --db %s list", newer);
    refused(args, "newer than this inferlab");
    snprintf(args, sizeof args, "report --db %s -o %s.out --no-pdf", newer, newer);
    refused(args, "newer than this inferlab");
    il_store *s;
    CU_ASSERT_EQUAL(il_store_open(newer, &s), IL_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(header_mode(newer), 1); /* not switched to WAL before the refusal */
    CU_ASSERT_EQUAL(il_test_db_scalar(newer, "PRAGMA user_version"), 99);

    make_db(neg, IL_STORE_VERSION, 1);
    raw_sql(neg, "PRAGMA user_version = -1");
    char out[4096];
    snprintf(args, sizeof args, "db --db %s list", neg);
    refused(args, "not an inferlab results database");
    il_test_cli(args, out, sizeof out);
    CU_ASSERT_PTR_NULL(strstr(out, "newer"));
    CU_ASSERT_EQUAL(il_store_open(neg, &s), IL_ERR_INVALID);
    CU_ASSERT_EQUAL(header_mode(neg), 1);
    /* inferlab's tables without its version: not migrated over (CREATE TABLE runs would clash) */
    raw_sql(neg, "PRAGMA user_version = 0");
    refused(args, "no inferlab schema version");
    CU_ASSERT_EQUAL(il_store_open(neg, &s), IL_ERR_INVALID);
    CU_ASSERT_EQUAL(header_mode(neg), 1);
}

static void test_missing(void) {
    char args[2048], typo[600], target[600], real[600];
    snprintf(typo, sizeof typo, "%s", tmp("typo.db"));
    snprintf(target, sizeof target, "%s", tmp("target.db"));
    snprintf(real, sizeof real, "%s", tmp("real.db"));
    make_db(real, IL_STORE_VERSION, 2);
    snprintf(args, sizeof args, "db --db %s list", typo);
    refused(args, "no such database");
    snprintf(args, sizeof args, "db --db %s show 1", typo);
    refused(args, "no such database");
    snprintf(args, sizeof args, "report --db %s -o %s.out --no-pdf", typo, typo);
    refused(args, "no such database");
    snprintf(args, sizeof args, "db --db %s merge %s %s", target, real, typo);
    refused(args, "no such database");
    CU_ASSERT(!exists(typo));
    CU_ASSERT(!exists(target)); /* nothing merged, nothing created: the sources are checked first */
    /* with good sources the target is created */
    char out[4096];
    snprintf(args, sizeof args, "db --db %s merge %s", target, real);
    works(args, out, sizeof out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "2 runs added"));
    CU_ASSERT_EQUAL(il_test_db_scalar(target, "SELECT count(*) FROM runs"), 2);
}

/* An older schema is read as it is: listed, shown, reported and merged from, and the file is
 * left byte for byte as it was (no migration, no WAL). */
static void test_older_read_only(void) {
    char args[2048], old[600], target[600], out[16384], h1[65], h2[65];
    snprintf(old, sizeof old, "%s", tmp("v1.db"));
    snprintf(target, sizeof target, "%s", tmp("v1_target.db"));
    make_db(old, 1, 2);
    IL_ASSERT_OK(il_sha256_file(old, h1));
    snprintf(args, sizeof args, "db --db %s list", old);
    works(args, out, sizeof out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "2 runs"));
    snprintf(args, sizeof args, "db --db %s show 1", old);
    works(args, out, sizeof out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "old run"));
    snprintf(args, sizeof args, "report --db %s -o %s.out --no-pdf", old, old);
    works(args, out, sizeof out);
    snprintf(args, sizeof args, "db --db %s merge %s", target, old);
    works(args, out, sizeof out);
    CU_ASSERT_EQUAL(il_test_db_scalar(target, "SELECT count(*) FROM results WHERE variant = 'old run'"), 2);
    IL_ASSERT_OK(il_sha256_file(old, h2));
    CU_ASSERT_STRING_EQUAL(h1, h2);
    CU_ASSERT_EQUAL(il_test_db_scalar(old, "PRAGMA user_version"), 1);
    CU_ASSERT_EQUAL(header_mode(old), 1);
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", old);
    CU_ASSERT(!exists(wal));
}

/* A WAL database on a read-only filesystem (a bind mount in a private mount namespace when we
 * are root; a folder and file without write permission otherwise) can be listed. */
static void test_read_only_fs(void) {
    char dir[600], db[700], args[2048], out[8192];
    snprintf(dir, sizeof dir, "%s", tmp("rofs"));
    mkdir(dir, 0755);
    snprintf(db, sizeof db, "%s/r.db", dir);
    make_db(db, IL_STORE_VERSION, 3);
    raw_sql(db, "PRAGMA journal_mode=WAL");
    CU_ASSERT_EQUAL(header_mode(db), 2);
    const char *bin = getenv("IL_BIN") ? getenv("IL_BIN") : "build/inferlab";
    if (geteuid() == 0) {
        snprintf(args, sizeof args, "unshare -m sh -c 'mount -o bind,ro %s %s && touch %s/x' >/dev/null 2>&1", dir,
                 dir, dir);
        if (system(args) == 0 || system("unshare -m true >/dev/null 2>&1") != 0) {
            fprintf(stderr, "\n    SKIP: cannot make a read-only bind mount here (root without mount namespaces) ");
            return;
        }
        snprintf(args, sizeof args, "unshare -m sh -c 'mount -o bind,ro %s %s && %s db --db %s list' 2>&1", dir, dir,
                 bin, db);
    } else {
        chmod(db, 0444);
        chmod(dir, 0555);
        snprintf(args, sizeof args, "%s db --db %s list 2>&1", bin, db);
    }
    FILE *p = popen(args, "r");
    size_t k = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[k] = 0;
    int rc = p ? pclose(p) : -1;
    chmod(dir, 0755);
    if (rc) fprintf(stderr, "\n  %s\n  exited %d:\n%s\n", args, rc, out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "3 runs"));
}

static void test_merge_self(void) {
    char db[600], link[600], args[2048], out[4096];
    snprintf(db, sizeof db, "%s", tmp("self.db"));
    snprintf(link, sizeof link, "%s", tmp("self-link.db"));
    make_db(db, IL_STORE_VERSION, 2);
    CU_ASSERT_EQUAL(symlink(db, link), 0);
    const char *others[] = {db, link};
    for (int i = 0; i < 2; i++) {
        time_t t0 = time(NULL);
        snprintf(args, sizeof args, "db --db %s merge %s", db, others[i]);
        refused(args, "is the database being merged into");
        CU_ASSERT(time(NULL) - t0 < 10); /* at once, not after the 60 s busy timeout */
    }
    /* the same file reached through "dir/./name" */
    char dotted[700], *slash = strrchr(db, '/');
    snprintf(dotted, sizeof dotted, "%.*s/./%s", (int)(slash - db), db, slash + 1);
    snprintf(args, sizeof args, "db --db %s merge %s", dotted, db);
    refused(args, "is the database being merged into");
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs"), 2);
    (void)out;
}

/* inferlab's table names with other objects behind them: a results view that never ends, a
 * table replaced by a view, a trigger. Readers would run them; all are refused at once. */
static void test_altered_schema(void) {
    static const char *const changes[] = {
        "DROP VIEW results; CREATE VIEW results AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"
        " SELECT x AS run_id, 0 AS created_at, 0 AS variant, 0 AS engine, 0 AS backend, 0 AS scenario, 0 AS batch,"
        " 0 AS threads, 0 AS latency_p50_ms, 0 AS latency_p99_ms, 0 AS throughput_per_s, 0 AS accuracy_top1,"
        " 1 AS valid FROM c",
        "ALTER TABLE latencies RENAME TO l2; CREATE VIEW latencies AS SELECT * FROM l2",
        "CREATE TRIGGER t AFTER INSERT ON runs BEGIN DELETE FROM provenance; END"};
    static const char *const want[] = {"results view", "no table latencies", "triggers"};
    for (int i = 0; i < 3; i++) {
        char db[600], args[2048];
        snprintf(db, sizeof db, "%s", tmp("altered.db"));
        unlink(db);
        make_db(db, IL_STORE_VERSION, 1);
        raw_sql(db, changes[i]);
        time_t t0 = time(NULL);
        snprintf(args, sizeof args, "db --db %s list", db);
        refused(args, want[i]);
        snprintf(args, sizeof args, "report --db %s -o %s.out --no-pdf", db, db);
        refused(args, want[i]);
        CU_ASSERT(time(NULL) - t0 < 20);
        il_store *s;
        CU_ASSERT_EQUAL(il_store_open(db, &s), IL_ERR_INVALID); /* bench does not append to it either */
    }
}

/* Damaged pages: db list and report say so instead of showing what is left. */
static void test_damaged(void) {
    char db[600], args[2048];
    snprintf(db, sizeof db, "%s", tmp("damaged.db"));
    make_db(db, IL_STORE_VERSION, 6);
    long long pages = il_test_db_scalar(db, "PRAGMA page_count"), size = il_test_db_scalar(db, "PRAGMA page_size");
    CU_ASSERT_FATAL(pages > 8);
    FILE *f = fopen(db, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    unsigned char junk[512];
    uint64_t rng = 7;
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)il_rand_u64(&rng);
    fseek(f, (long)(size * (pages / 2)), SEEK_SET); /* a page in the middle: latencies */
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    snprintf(args, sizeof args, "db --db %s list", db);
    refused(args, "damaged");
    snprintf(args, sizeof args, "report --db %s -o %s.out --no-pdf", db, db);
    refused(args, "damaged");
}

/* Garbage through the store's open functions (what a fuzz target feeds them): an error with a
 * message, never a crash; and the writer does not turn garbage into a database. */
static void test_garbage(void) {
    char good[600], path[600];
    snprintf(good, sizeof good, "%s", tmp("good.db"));
    make_db(good, IL_STORE_VERSION, 2);
    size_t n;
    FILE *f = fopen(good, "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n);
    CU_ASSERT_FATAL(b && fread(b, 1, n, f) == n);
    fclose(f);
    uint64_t rng = 11;
    for (int k = 0; k < 24; k++) {
        unsigned char *g = malloc(n);
        memcpy(g, b, n);
        size_t len = n;
        if (k % 3 == 0) len = 100 + il_rand_u64(&rng) % (n - 100);              /* truncated */
        else if (k % 3 == 1)                                                     /* header kept, rest random */
            for (size_t i = 100; i < n; i++) g[i] = (unsigned char)il_rand_u64(&rng);
        else                                                                     /* a few bytes flipped */
            for (int i = 0; i < 64; i++) g[il_rand_u64(&rng) % n] ^= (unsigned char)(1 + il_rand_u64(&rng) % 255);
        snprintf(path, sizeof path, "%s", tmp("garbage.db"));
        il_test_write_bytes(path, g, len);
        il_store *s;
        il_status st = il_store_open_readonly(path, &s);
        if (!st) {
            /* a flip that SQLite does not notice may still open: then every read must end cleanly */
            FILE *null = fopen("/dev/null", "w");
            il_store_list(s, null);
            il_store_export_csv(s, "latencies", null);
            fclose(null);
            il_store_close(s);
        } else {
            CU_ASSERT(il_errmsg()[0] != 0);
        }
        free(g);
        unlink(path);
    }
    il_test_write_bytes(path, "not a database at all, just text\n", 33);
    il_store *s;
    CU_ASSERT_EQUAL(il_store_open_readonly(path, &s), IL_ERR_PARSE);
    CU_ASSERT_EQUAL(il_store_open(path, &s), IL_ERR_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "not an SQLite database"));
    il_test_write_bytes(path, "", 0);
    char args[1024];
    snprintf(args, sizeof args, "db --db %s list", path);
    refused(args, "empty database");
    CU_ASSERT_EQUAL(il_store_open_readonly("/dev/null", &s), IL_ERR_IO);
    free(b);
}

/* Rows with holes (NULL labels, precisions, operator types - what a hand-edited or merged
 * database may hold): the report is written, db show prints them. */
static void test_null_fields(void) {
    char db[600], args[2048], out[16384];
    snprintf(db, sizeof db, "%s", tmp("holes.db"));
    make_db(db, IL_STORE_VERSION, 2);
    raw_sql(db, "INSERT INTO runs(uuid, created_at, scenario, batch, lat_p50_ms, accuracy_top1) VALUES"
                " ('h1', '2024-01-01', 'single-stream', 1, 2.0, 0.5), ('h2', '2024-01-02', 'single-stream', 1, 1.0, 0.4);"
                "UPDATE runs SET precision = 'int8', accuracy_top1 = 0.6 WHERE id = 1;"
                "INSERT INTO node_times(run_id, node, name, op_type, ms, macs)"
                " VALUES (3, 0, NULL, NULL, 0.5, NULL), (3, 1, 'n', 'Gemm', 0.2, 10);"
                "INSERT INTO provenance VALUES (3, 'cpu', NULL)");
    if (access("/usr/bin/gnuplot", X_OK) == 0) {
        snprintf(args, sizeof args, "report --db %s -o %s.out --no-pdf", db, db);
        works(args, out, sizeof out);
    }
    snprintf(args, sizeof args, "db --db %s show 3", db);
    works(args, out, sizeof out);
    snprintf(args, sizeof args, "db --db %s list", db);
    works(args, out, sizeof out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "4 runs"));
    /* an id wins over a uuid that happens to begin with the same digits */
    raw_sql(db, "UPDATE runs SET uuid = '1' || uuid WHERE id = 2");
    snprintf(args, sizeof args, "db --db %s show 1", db);
    works(args, out, sizeof out);
    CU_ASSERT(!strncmp(out, "run 1\n", 6));
    snprintf(args, sizeof args, "db --db %s show h2", db);
    works(args, out, sizeof out);
    CU_ASSERT(!strncmp(out, "run 4\n", 6));
}

IL_SUITE("store-hostile", {"foreign file", test_foreign}, {"newer and invalid versions", test_versions},
         {"missing files", test_missing}, {"older schema read only", test_older_read_only},
         {"read-only filesystem", test_read_only_fs}, {"merge into itself", test_merge_self},
         {"altered schema", test_altered_schema}, {"damaged pages", test_damaged}, {"garbage", test_garbage}, {"rows with holes", test_null_fields})
