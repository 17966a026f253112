/*
 * test_bench_report.c - the harness end to end: a zoo model (and its -O2 variant) benchmarked in
 * forked children into a real database, with ONNX Runtime beside it when installed; the report
 * written from that database; then the page opened in headless Chromium and the PDF's pages
 * rendered with pdftoppm, checking what actually rendered. Tools that are missing (gnuplot,
 * chromium, poppler-utils, onnxruntime-node) skip their part with a message saying so.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../bench/bench.h"
#include "../distill/distill.h"
#include "../prune/prune.h"
#include "../quantize/quantize.h"
#include "../reports/reports.h"
#include "test.h"

static char dir[128];

static int have(const char *cmd) {
    char b[256];
    snprintf(b, sizeof b, "command -v %s >/dev/null 2>&1", cmd);
    return system(b) == 0;
}

static void skip(const char *what) { fprintf(stderr, "\n    SKIP: %s ", what); }

static int64_t scalar(sqlite3 *db, const char *sql) {
    sqlite3_stmt *q;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) len = 0;
    if (b) b[len] = 0;
    fclose(f);
    if (n) *n = (size_t)len;
    return b;
}

/* slurp() of a path given as a format. */
static char *slurpf(const char *fmt, const char *a, const char *b) {
    char path[1200];
    snprintf(path, sizeof path, fmt, a, b);
    return slurp(path, NULL);
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static int runs_expected;

/* Bench the zoo MLP: O0 and O2, batch 1 and 4, single-stream and offline, profiled; plus ONNX
 * Runtime on O0 when it is installed. */
static void test_bench_end_to_end(void) {
    snprintf(dir, sizeof dir, "/tmp/il_report_%d", (int)getpid());
    mkdir(dir, 0755);
    char model[256], db[256], cache[256];
    snprintf(model, sizeof model, "%s/mlp.onnx", dir);
    snprintf(db, sizeof db, "%s/results.db", dir);
    snprintf(cache, sizeof cache, "%s/variants", dir);
    il_zoo_opts zo;
    il_zoo_defaults(&zo);
    zo.width = 64;
    il_graph *g;
    IL_ASSERT_OK(il_zoo_build("mlp", &zo, &g));
    IL_ASSERT_OK(il_onnx_save(g, model));
    il_graph_free(g);

    il_bench_opts o;
    il_bench_defaults(&o);
    o.db = db;
    o.cache_dir = cache;
    o.trials = 2;
    o.sc.min_seconds = 0.05;
    o.sc.min_queries = 20;
    o.sc.warmup = 2;
    o.accuracy_samples = 200;
    o.profile = 1;
    o.experiment = "test";
    il_sweep s = {.models = model, .pipelines = "O0,O2", .batches = "1,4", .threads = "1",
                  .scenarios = "single-stream,offline"};
    il_variant *v;
    int n, failed;
    IL_ASSERT_OK(il_sweep_expand(&s, &v, &n));
    CU_ASSERT_EQUAL_FATAL(n, 8);
    IL_ASSERT_OK(il_bench_run(&o, v, n, &failed));
    CU_ASSERT_EQUAL(failed, 0);
    free(v);
    runs_expected = 8;
    if (system("node -e \"require('onnxruntime-node')\" >/dev/null 2>&1") == 0) {
        il_sweep p = {.models = model, .engines = "onnxruntime", .batches = "1", .threads = "1"};
        IL_ASSERT_OK(il_sweep_expand(&p, &v, &n));
        IL_ASSERT_OK(il_bench_run(&o, v, n, &failed));
        CU_ASSERT_EQUAL(failed, 0);
        free(v);
        runs_expected++;
    } else {
        skip("onnxruntime-node not installed (make deps): no ONNX Runtime peer row");
    }

    il_store *st;
    IL_ASSERT_OK(il_store_open(db, &st));
    sqlite3 *d = il_store_sqlite(st);
    CU_ASSERT_EQUAL(scalar(d, "SELECT count(*) FROM results"), runs_expected);
    CU_ASSERT_EQUAL(scalar(d, "SELECT count(*) FROM results WHERE accuracy_top1 IS NULL OR latency_p50_ms IS NULL"
                              " OR peak_host_bytes <= 0 OR throughput_per_s <= 0"), 0);
    /* -O2 computes the same function: its agreement with the O0 parent is (near) perfect */
    CU_ASSERT_EQUAL(scalar(d, "SELECT count(*) FROM results WHERE pipeline = 'O2' AND agreement_top1 >= 0.99"), 4);
    CU_ASSERT_EQUAL(scalar(d, "SELECT count(*) FROM results WHERE engine = 'onnxruntime' AND agreement_top1 >= 0.99"),
                    runs_expected - 8);
    CU_ASSERT(scalar(d, "SELECT count(DISTINCT run_id) FROM node_times") >= 8);
    CU_ASSERT_EQUAL(scalar(d, "SELECT count(*) FROM runs r WHERE queries <> (SELECT count(*) FROM latencies l"
                              " WHERE l.run_id = r.id)"), 0);
    CU_ASSERT_EQUAL(scalar(d, "SELECT count(DISTINCT model_sha256) FROM runs WHERE engine = 'inferlab'"), 2);
    CU_ASSERT(scalar(d, "SELECT count(*) FROM provenance WHERE key IN ('cpu', 'cores', 'compiler', 'date')") >=
              4 * runs_expected);
    il_store_close(st);
}

static void test_report_files(void) {
    if (!runs_expected) { skip("no database (the end-to-end bench failed)"); return; }
    if (!have("gnuplot")) { skip("gnuplot not installed (make deps): report not drawn"); return; }
    char db[256], out[256], plots[256], f[400];
    snprintf(db, sizeof db, "%s/results.db", dir);
    snprintf(out, sizeof out, "%s/report", dir);
    snprintf(plots, sizeof plots, "%s/plots", dir);
    il_report_opts o = {.db = db, .out_dir = out, .plots_dir = plots, .quiet = 1, .no_pdf = !have("chromium")};
    if (o.no_pdf) skip("chromium not installed (make deps): no report.pdf");
    IL_ASSERT_OK(il_report_write(&o));
    snprintf(f, sizeof f, "%s/index.html", out);
    char *html = slurp(f, NULL);
    CU_ASSERT_FATAL(html != NULL);
    /* self-contained: plots inline, nothing fetched */
    CU_ASSERT(count(html, "<svg") >= 5);
    CU_ASSERT(strstr(html, "src=\"http") == NULL && strstr(html, "<link") == NULL);
    CU_ASSERT(strstr(html, "Latency vs accuracy") && strstr(html, "Provenance") && strstr(html, "mlp O2"));
    free(html);
    static const char *const names[] = {"latency_accuracy", "throughput_batch", "latency_cdf", "layer_breakdown",
                                        "speedup"};
    static const char *const exts[] = {"png", "svg", "pdf"};
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 3; k++) {
            struct stat sb;
            snprintf(f, sizeof f, "%s/%s.%s", plots, names[i], exts[k]);
            CU_ASSERT(stat(f, &sb) == 0 && sb.st_size > 500);
        }
    /* a missing database is a clear error, not an empty report */
    il_report_opts bad = {.db = "/nonexistent/x.db", .out_dir = out, .quiet = 1, .no_pdf = 1};
    CU_ASSERT_EQUAL(il_report_write(&bad), IL_ERR_IO);
}

/* Chromium loads the page and we read back the DOM it built: the tables and the SVG plots. */
static void test_browser(void) {
    if (!runs_expected || !have("gnuplot")) { skip("no report to open"); return; }
    if (!have("chromium")) { skip("chromium not installed (make deps): browser check not run"); return; }
    char cmd[1200], dom[300], shot[300];
    snprintf(dom, sizeof dom, "%s/dom.html", dir);
    snprintf(shot, sizeof shot, "%s/screenshot.png", dir);
    const char *flags = "--headless --no-sandbox --disable-gpu --disable-background-networking "
                        "--disable-component-update --disable-sync --no-first-run";
    snprintf(cmd, sizeof cmd, "%s %s --user-data-dir=%s/chrome --dump-dom file://%s/report/index.html > %s 2>/dev/null",
             il_report_chromium(), flags, dir, dir, dom);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    char *d = slurp(dom, NULL);
    CU_ASSERT_FATAL(d != NULL);
    char want[64];
    snprintf(want, sizeof want, "%d runs", runs_expected);
    CU_ASSERT(strstr(d, "id=\"runcount\"") && strstr(d, want));
    CU_ASSERT(count(d, "<svg") >= 5);
    CU_ASSERT(count(d, "<path") >= 20); /* gnuplot's curves and axes became SVG elements */
    CU_ASSERT(count(d, "<tr>") >= runs_expected + 1);
    free(d);
    snprintf(cmd, sizeof cmd, "%s %s --user-data-dir=%s/chrome --window-size=1200,3000 --screenshot=%s "
                              "file://%s/report/index.html >/dev/null 2>&1",
             il_report_chromium(), flags, dir, shot, dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
    struct stat sb;
    CU_ASSERT(stat(shot, &sb) == 0 && sb.st_size > 20000);
}

/* Render the PDF's pages and look at the pixels: not blank, and in colour (the plots). */
static void test_pdf_pages(void) {
    char pdf[300], cmd[800], page[320];
    snprintf(pdf, sizeof pdf, "%s/report/report.pdf", dir);
    if (access(pdf, R_OK)) { skip("no report.pdf (chromium missing)"); return; }
    if (!have("pdftoppm")) { skip("pdftoppm not installed (make deps installs poppler-utils)"); return; }
    snprintf(cmd, sizeof cmd, "pdftoppm -r 30 %s %s/page", pdf, dir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    int pages = 0, coloured = 0;
    for (int i = 1; i < 40; i++) {
        size_t n;
        snprintf(page, sizeof page, "%s/page-%d.ppm", dir, i);
        char *b = slurp(page, &n);
        if (!b) {
            snprintf(page, sizeof page, "%s/page-%02d.ppm", dir, i);
            if (!(b = slurp(page, &n))) break;
        }
        int w, h, mx, off = 0;
        CU_ASSERT_FATAL(sscanf(b, "P6 %d %d %d%n", &w, &h, &mx, &off) == 3);
        const unsigned char *px = (const unsigned char *)b + off + 1;
        long ink = 0, colour = 0;
        for (long k = 0; k < (long)w * h && off + 1 + 3 * k + 2 < (long)n; k++) {
            int r = px[3 * k], g = px[3 * k + 1], bl = px[3 * k + 2];
            ink += r + g + bl < 600;
            colour += abs(r - g) > 60 || abs(g - bl) > 60 || abs(r - bl) > 60;
        }
        CU_ASSERT(ink > (long)w * h / 200); /* every page has content */
        coloured += colour > 50;
        pages++;
        free(b);
    }
    CU_ASSERT(pages >= 2);
    CU_ASSERT(coloured >= 1);
    if (have("pdftotext")) {
        snprintf(cmd, sizeof cmd, "pdftotext %s %s/report.txt", pdf, dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
        snprintf(page, sizeof page, "%s/report.txt", dir);
        char *t = slurp(page, NULL);
        CU_ASSERT(t && strstr(t, "Latency vs accuracy") && strstr(t, "Provenance") && strstr(t, "mlp O2"));
        free(t);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (getenv("IL_KEEP_TEST_REPORT")) printf("\n    report kept in %s ", dir);
    else if (system(cmd)) {}
}

/* The confusion matrix plot: each format written, the class names and counts in the SVG, a
 * bad extension refused before gnuplot runs. */
static void test_confusion_plot(void) {
    int64_t conf[9] = {50, 2, 0, 3, 40, 7, 0, 1, 61};
    const char *svg = il_test_tmp("cm.svg");
    IL_ASSERT_OK(il_plot_confusion(conf, 3, "cat,dog,Bird \"x\"", "three classes", svg));
    FILE *f = fopen(svg, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "<svg"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "dog"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, ">61<"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "three classes"));
    struct stat sb;
    IL_ASSERT_OK(il_plot_confusion(conf, 3, NULL, NULL, il_test_tmp("cm.pdf")));
    CU_ASSERT(stat(il_test_tmp("cm.pdf"), &sb) == 0 && sb.st_size > 1000);
    CU_ASSERT_NOT_EQUAL(il_plot_confusion(conf, 3, NULL, NULL, il_test_tmp("cm.gif")), IL_OK);
    CU_ASSERT_NOT_EQUAL(il_plot_confusion(conf, 0, NULL, NULL, svg), IL_OK);
}

/* ---- names, cache files and order (issue 14, items 7 and 8), through the real binary */

static void zoo_save(const char *path, int width, uint64_t seed) {
    il_zoo_opts zo;
    il_zoo_defaults(&zo);
    zo.width = width;
    zo.seed = seed;
    il_graph *g;
    IL_ASSERT_OK(il_zoo_build("mlp", &zo, &g));
    IL_ASSERT_OK(il_onnx_save(g, path));
    il_graph_free(g);
}

/* The i-th <td> text of each row of the first table after `anchor`, in page order, into
 * cells (one per row); returns the row count. */
static int column(const char *html, const char *anchor, int i, char cells[][200], int max) {
    const char *p = strstr(html, anchor), *end = p ? strstr(p, "</table>") : NULL;
    int n = 0;
    while (p && end && n < max && (p = strstr(p, "<tr><td")) && p < end) {
        const char *c = p;
        for (int k = 0; k <= i && c; k++) c = strstr(c + 1, "<td");
        const char *gt = c ? strchr(c, '>') : NULL, *lt = gt ? strchr(gt, '<') : NULL;
        if (!lt) break;
        snprintf(cells[n++], 200, "%.*s", (int)(lt - gt - 1), gt + 1);
        p++;
    }
    return n;
}

static void test_names_and_cache(void) {
    char d[300], args[4096], out[16384], db[400], p1[300], p2[300];
    snprintf(d, sizeof d, "%s", il_test_tmp("names"));
    snprintf(args, sizeof args, "mkdir -p %s/alpha %s/beta/onnx", d, d);
    CU_ASSERT_EQUAL_FATAL(system(args), 0);
    snprintf(args, sizeof args, "%s/alpha/model.onnx", d);
    zoo_save(args, 16, 1);
    snprintf(args, sizeof args, "%s/beta/onnx/model.onnx", d);
    zoo_save(args, 24, 2);
    snprintf(args, sizeof args, "%s/gamma.onnx", d);
    zoo_save(args, 20, 3);
    snprintf(db, sizeof db, "%s/r.db", d);
    /* two pipelines that agree on their first 165 characters */
    p1[0] = 0;
    for (int i = 0; i < 11; i++) strcat(p1, "fold-constants+");
    snprintf(p2, sizeof p2, "%scse", p1);
    strcat(p1, "eliminate");
    const char *how = "--trials 1 --min-seconds 0.01 --min-queries 5 --warmup 1 --accuracy-samples 20 --threads 1";
    snprintf(args, sizeof args, "bench --model %s/alpha/model.onnx,%s/beta/onnx/model.onnx,%s/gamma.onnx "
             "--pipeline O2,O0 --db %s %s", d, d, d, db, how);
    int rc = il_test_cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    snprintf(args, sizeof args, "bench --model %s/alpha/model.onnx --pipeline %s,%s --db %s %s", d, p1, p2, db, how);
    rc = il_test_cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);

    /* the model column names the model, not the file */
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs"), 8);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs WHERE model = 'alpha'"), 4);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs WHERE model = 'beta'"), 2);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM runs WHERE model = 'gamma'"), 2);
    /* labels unique, within the column's 159 characters */
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(DISTINCT variant) FROM runs"), 8);
    CU_ASSERT(il_test_db_scalar(db, "SELECT max(length(variant)) FROM runs") <= 159);
    /* one derived file per model and pipeline, none overwritten: each is what a run measured */
    char list[400], line[1200];
    snprintf(list, sizeof list, "ls %s/r.db.variants/*.onnx", d);
    FILE *ls = popen(list, "r");
    int files = 0;
    while (ls && fgets(line, sizeof line, ls)) {
        char hex[65], sql[200];
        line[strcspn(line, "\n")] = 0;
        IL_ASSERT_OK(il_sha256_file(line, hex));
        snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE model_sha256 = '%s'", hex);
        if (il_test_db_scalar(db, sql) != 1) fprintf(stderr, "\n  %s: measured by no run\n", line);
        CU_ASSERT_EQUAL(il_test_db_scalar(db, sql), 1);
        files++;
    }
    if (ls) pclose(ls);
    CU_ASSERT_EQUAL(files, 5);
    /* CSV */
    snprintf(args, sizeof args, "db --db %s export --csv", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT(strstr(out, ",alpha,") && strstr(out, ",beta,") && strstr(out, ",gamma,"));
    CU_ASSERT_PTR_NULL(strstr(out, ",model.onnx,"));
    /* db list cuts labels to its column, keeping them apart */
    snprintf(args, sizeof args, "db --db %s list", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    char *a1 = strstr(out, "alpha fold-"), *a2 = a1 ? strstr(a1 + 1, "alpha fold-") : NULL;
    CU_ASSERT_FATAL(a1 && a2);
    CU_ASSERT(strncmp(a1, a2, 28) != 0);
    /* the report's tables: grouped by model, presets in order, then custom pipelines as run; a
     * database written before models were named (model = the file name) reads the same */
    if (!have("gnuplot")) { skip("gnuplot not installed: report order not checked"); return; }
    sqlite3 *raw;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &raw), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(raw, "UPDATE runs SET model = 'model.onnx' WHERE model = 'beta'", 0, 0, 0), SQLITE_OK);
    sqlite3_close(raw);
    snprintf(args, sizeof args, "report --db %s -o %s/rep --no-pdf", db, d);
    CU_ASSERT_EQUAL_FATAL(il_test_cli(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "%s/rep/index.html", d);
    char *html = slurp(args, NULL), cells[16][200];
    CU_ASSERT_FATAL(html != NULL);
    static const char *const want[] = {"alpha O0", "alpha O2", "alpha fold", "alpha fold", "beta O0", "beta O2",
                                       "gamma O0", "gamma O2"};
    for (int t = 0; t < 2; t++) {
        static const char *const model[] = {"alpha", "alpha", "alpha", "alpha", "beta", "beta", "gamma", "gamma"};
        int n = column(html, t ? "id=runs" : "id=results", 1, cells, 16);
        CU_ASSERT_EQUAL(n, 8);
        for (int i = 0; i < n && i < 8; i++) CU_ASSERT_STRING_EQUAL(cells[i], model[i]);
        n = column(html, t ? "id=runs" : "id=results", 2, cells, 16);
        CU_ASSERT_EQUAL(n, 8);
        for (int i = 0; i < n && i < 8; i++) {
            if (strncmp(cells[i], want[i], strlen(want[i])))
                fprintf(stderr, "\n  %s row %d: '%s', want '%s...'\n", t ? "runs" : "results", i, cells[i], want[i]);
            CU_ASSERT_EQUAL(strncmp(cells[i], want[i], strlen(want[i])), 0);
        }
        /* the pipeline run first comes first: p1 (its label is cut, so by run id) */
        char ids[16][200], sql[600];
        snprintf(sql, sizeof sql, "SELECT id FROM runs WHERE pipeline = '%s'", p1);
        if (column(html, t ? "id=runs" : "id=results", 0, ids, 16) == 8)
            CU_ASSERT_EQUAL(atoll(ids[2]), il_test_db_scalar(db, sql));
    }
    /* Models: one row per file measured, sources first within a model */
    static const char *const measured[] = {"alpha O0", "alpha O2", "alpha fold", "alpha fold", "beta O0", "beta O2",
                                           "gamma O0", "gamma O2"};
    int nf = column(html, "id=models", 1, cells, 16);
    CU_ASSERT_EQUAL(nf, 8);
    for (int i = 0; i < nf && i < 8; i++) CU_ASSERT_EQUAL(strncmp(cells[i], measured[i], strlen(measured[i])), 0);
    free(html);
}

/* ---- a report of many variants (issue 14, item 9): made-up runs, never measured - the test is
 * of the page and plots, which must show every variant, tell the series apart, leave out what
 * says nothing, fit the page, and list a build/machine once. */
static void test_report_many(void) {
    if (!have("gnuplot")) { skip("gnuplot not installed (make deps): report not drawn"); return; }
    char d[300], db[400], args[2048], out[8192], f[500];
    snprintf(d, sizeof d, "%s", il_test_tmp("many"));
    mkdir(d, 0755);
    snprintf(db, sizeof db, "%s/r.db", d);
    il_store *s;
    IL_ASSERT_OK(il_store_open(db, &s));
    static const char *const pipes[] = {"O0", "O2", "fold-constants+cse"};
    for (int m = 0; m < 5; m++)
        for (int k = 0; k < 3; k++) {
            il_run_record r;
            char model[64];
            snprintf(model, sizeof model, "zoo/net%d/model.onnx", m);
            il_test_record(&r, model, pipes[k], 1, "single-stream", 1.0 + m - 0.2 * k, 200);
            if (m == 2 && k == 1) {
                r.valid = 0;
                snprintf(r.invalid_reason, sizeof r.invalid_reason, "trial p50s 1.9..2.6 ms differ by 33%%");
            }
            IL_ASSERT_OK(il_store_insert(s, &r, NULL));
            il_record_free(&r);
        }
    il_store_close(s);
    snprintf(args, sizeof args, "report --db %s -o %s/rep%s", db, d, have("chromium") ? "" : " --no-pdf");
    int rc = il_test_cli(args, out, sizeof out);
    if (rc) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NULL(strstr(out, "arning"));
    static const char *const drawn[] = {"latency_cdf", "speedup", "latency_accuracy"};
    for (int i = 0; i < 3; i++) { /* gnuplot had room for everything (its messages go to a log) */
        char *log = slurpf("%s/rep/gnuplot/%s.gp.log", d, drawn[i]);
        if (log && strstr(log, "arning")) fprintf(stderr, "\n  %s.gp.log: %s\n", drawn[i], log);
        CU_ASSERT(log == NULL || strstr(log, "arning") == NULL);
        free(log);
    }
    /* every variant in the CDF, each in its own colour, the legend below a full-height plot */
    char *gp = slurpf("%s/rep/gnuplot/%s", d, "latency_cdf.body.gp");
    CU_ASSERT_FATAL(gp != NULL);
    CU_ASSERT_EQUAL(count(gp, " index "), 15);
    CU_ASSERT_PTR_NOT_NULL(strstr(gp, "set key outside below"));
    char colours[32][8];
    int nc = 0;
    for (const char *p = strstr(gp, "\nplot "); p && (p = strstr(p, "lc rgb '#")); p += 9) {
        char c[8];
        snprintf(c, sizeof c, "%.7s", p + 8);
        int k = 0;
        while (k < nc && strcmp(colours[k], c)) k++;
        if (k == nc && nc < 32) snprintf(colours[nc++], 8, "%s", c);
    }
    CU_ASSERT_EQUAL(nc, 15);
    CU_ASSERT_EQUAL(count(gp, "net2 O2 INVALID"), 1); /* the INVALID run's curve says so */
    free(gp);
    snprintf(args, sizeof args, "db --db %s list", db);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    CU_ASSERT_EQUAL(count(out, "INVALID"), 1);
    char *sp = slurpf("%s/rep/gnuplot/%s", d, "speedup.dat");
    CU_ASSERT(sp && count(sp, "\n") == 15);
    free(sp);
    char *html = slurpf("%s/rep/%s", d, "index.html");
    CU_ASSERT_FATAL(html != NULL);
    /* the INVALID run marked in the table, its reason under it */
    CU_ASSERT_EQUAL(count(html, "<td class=bad>INVALID</td>"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "differ by 33%"));
    /* one batch size per variant: no throughput-vs-batch plot, and the page says why */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "one batch size only"));
    CU_ASSERT_PTR_NULL(strstr(html, "<svg id=\"throughput"));
    /* 15 runs on 15 dates-to-the-millisecond, one build and machine: listed once */
    CU_ASSERT_EQUAL(count(html, "Build and machine"), 1);
    free(html);
    /* the table fits a 1280 px window and a landscape page: the page measured by Chromium */
    if (!have("chromium")) { skip("chromium not installed (make deps): layout not measured"); return; }
    snprintf(args, sizeof args, "cp %s/rep/index.html %s/rep/fit.html && printf '%%s' \"<script>document.title="
             "'overflow='+(document.documentElement.scrollWidth-document.documentElement.clientWidth)+"
             "' table='+Math.max(...[...document.querySelectorAll('.wide')].map(w=>w.scrollWidth-w.clientWidth))"
             "</script>\" >> %s/rep/fit.html", d, d, d);
    CU_ASSERT_EQUAL_FATAL(system(args), 0);
    for (int w = 0; w < 2; w++) {
        char dom[500];
        snprintf(dom, sizeof dom, "%s/dom%d.html", d, w);
        snprintf(args, sizeof args, "%s --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=%s/chr "
                 "--window-size=%d,1000 --dump-dom file://%s/rep/fit.html > %s 2>/dev/null",
                 il_report_chromium(), d, w ? 1047 : 1280, d, dom);
        CU_ASSERT_EQUAL(system(args), 0);
        char *t = slurp(dom, NULL);
        CU_ASSERT(t && strstr(t, "<title>overflow=0 table=0</title>"));
        if (t && !strstr(t, "<title>overflow=0 table=0</title>")) {
            char *ti = strstr(t, "<title>");
            fprintf(stderr, "\n  at %d px: %.60s\n", w ? 1047 : 1280, ti ? ti : "no title");
        }
        free(t);
    }
    /* a second build: provenance lists two */
    IL_ASSERT_OK(il_store_open(db, &s));
    il_run_record r;
    il_test_record(&r, "zoo/net0/model.onnx", "O3", 1, "single-stream", 0.5, 100);
    snprintf(r.provenance, sizeof r.provenance, "cpu\ttest cpu\ncores\t2\ngit_commit\tdef\ndate\tx\n");
    IL_ASSERT_OK(il_store_insert(s, &r, NULL));
    il_record_free(&r);
    il_store_close(s);
    snprintf(args, sizeof args, "report --db %s -o %s/rep2 --no-pdf", db, d);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    snprintf(f, sizeof f, "%s/rep2/index.html", d);
    html = slurp(f, NULL);
    CU_ASSERT(html && count(html, "Build and machine") == 2);
    free(html);
}


/* A sensitivity scan in the results database becomes one curve per layer; without one the plot
 * says why it is missing. */
static void test_sensitivity_plot(void) {
    if (!have("gnuplot")) { skip("gnuplot not installed (make deps)"); return; }
    char d[] = "/tmp/il_sens_XXXXXX", db[300], out[300], f[400];
    CU_ASSERT_FATAL(mkdtemp(d) != NULL);
    snprintf(db, sizeof db, "%s/r.db", d);
    snprintf(out, sizeof out, "%s/report", d);
    il_store *s;
    IL_ASSERT_OK(il_store_open(db, &s)); /* an empty results database: no scan yet */
    il_store_close(s);
    il_report_opts o = {.db = db, .out_dir = out, .quiet = 1, .no_pdf = 1};
    IL_ASSERT_OK(il_report_write(&o));
    snprintf(f, sizeof f, "%s/index.html", out);
    char *html = slurp(f, NULL);
    CU_ASSERT(html && strstr(html, "no sensitivity scan in this database"));
    free(html);
    il_prune_scan_point p[6];
    static const char *const layers[] = {"conv_a", "conv_b"};
    for (int i = 0; i < 6; i++)
        p[i] = (il_prune_scan_point){.layer = (char *)layers[i / 3], .op = "Conv", .numel = 100,
                                     .sparsity = 0.3 * (i % 3 + 1), .accuracy = 0.9 - 0.1 * (i % 3) * (i / 3 + 1)};
    IL_ASSERT_OK(il_prune_scan_save(db, "tiny", "00", "magnitude", "fashion-mnist:test:100", 100, 0.91, p, 6));
    IL_ASSERT_OK(il_report_write(&o));
    html = slurp(f, NULL);
    CU_ASSERT(html && strstr(html, "Pruning sensitivity per layer") && strstr(html, "each of its 2 layers pruned alone"));
    free(html);
    snprintf(f, sizeof f, "%s/gnuplot/prune_sensitivity.dat", out);
    char *dat = slurp(f, NULL);
    CU_ASSERT(dat && count(dat, "\n\n\n") == 1 && strstr(dat, "0.9 0.5")); /* two blocks; conv_b at 90%: 0.5 */
    free(dat);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* quantize --analyze --db keeps each analysis apart (the report draws the latest, worst first);
 * a tensor without error is counted, not drawn; --db alone is refused. */
static void test_quant_layers_plot(void) {
    if (!have("gnuplot")) { skip("gnuplot not installed (make deps)"); return; }
    char d[] = "/tmp/il_qan_XXXXXX", db[300], out[300], f[400], o[4096];
    CU_ASSERT_FATAL(mkdtemp(d) != NULL);
    snprintf(db, sizeof db, "%s/r.db", d);
    snprintf(out, sizeof out, "%s/report", d);
    il_quant_layer old[1] = {{"old_t", "old_n", "Conv", 3.0, 0.5}};
    il_quant_layer l[3] = {{"t_bad", "n1", "Conv", 12.5, 0.98}, {"t_good", "n2", "Gemm", 30.0, 0.999},
                           {"t_exact", "n3", "Reshape", INFINITY, 1.0}};
    IL_ASSERT_OK(il_quant_analysis_save(db, "old", "00", "minmax", old, 1));
    IL_ASSERT_OK(il_quant_analysis_save(db, "tiny", "01", "entropy", l, 3));
    il_report_opts ro = {.db = db, .out_dir = out, .quiet = 1, .no_pdf = 1};
    IL_ASSERT_OK(il_report_write(&ro));
    snprintf(f, sizeof f, "%s/index.html", out);
    char *html = slurp(f, NULL);
    CU_ASSERT(html && strstr(html, "INT8 error per layer") && strstr(html, "tiny, entropy calibration") &&
              strstr(html, "(12.5 dB)") && strstr(html, "1 tensor quantized without error not drawn"));
    free(html);
    snprintf(f, sizeof f, "%s/gnuplot/quant_layers.dat", out);
    char *dat = slurp(f, NULL);
    CU_ASSERT(dat && strstr(dat, "t_bad") && strstr(dat, "t_bad") < strstr(dat, "t_good") && !strstr(dat, "old_t"));
    free(dat);
    snprintf(f, sizeof f, "quantize tests/data/fmnist_teacher.onnx -o %s/q.onnx --db %s", d, db);
    CU_ASSERT_EQUAL(il_test_cli(f, o, sizeof o), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "give --analyze too"));
    snprintf(f, sizeof f, "rm -rf %s", d);
    CU_ASSERT_EQUAL(system(f), 0);
}

IL_SUITE("bench-report", {"bench end to end", test_bench_end_to_end}, {"report files", test_report_files}, {"confusion matrix plot", test_confusion_plot},
         {"browser check", test_browser}, {"pdf pages", test_pdf_pages}, {"names, cache files, order", test_names_and_cache},
         {"report of many variants", test_report_many},
         {"pruning sensitivity plot", test_sensitivity_plot}, {"INT8 error per layer plot", test_quant_layers_plot})
