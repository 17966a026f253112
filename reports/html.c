/*
 * html.c - the report page: one self-contained index.html (styles and SVG plots inline, no
 * external files or scripts) with the results table, the plots, server-scenario figures and the
 * provenance of every run; then report.pdf printed from that page by headless Chromium, so the
 * two always hold the same content.
 */
#include "report_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../bench/bench.h"

const char *il_report_chromium(void) {
    return getenv("INFERLAB_CHROMIUM") ? getenv("INFERLAB_CHROMIUM") : "chromium";
}

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

/* One cell of a results table: numbers rounded for reading, NULL as an em dash. */
static void td(FILE *f, sqlite3_stmt *q, int i, const char *fmt) {
    if (sqlite3_column_type(q, i) == SQLITE_NULL) {
        fputs("<td class=na>&mdash;</td>", f);
        return;
    }
    if (fmt) {
        fputs("<td class=num>", f);
        double v = sqlite3_column_double(q, i);
        if (!strcmp(fmt, "bytes")) fprintf(f, v >= 1e6 ? "%.1f MB" : "%.1f kB", v >= 1e6 ? v / 1e6 : v / 1e3);
        else if (!strcmp(fmt, "int")) fprintf(f, "%lld", (long long)sqlite3_column_int64(q, i));
        else if (!strcmp(fmt, "bool")) fputs(sqlite3_column_int(q, i) ? "yes" : "no", f);
        else fprintf(f, fmt, v);
        fputs("</td>", f);
        return;
    }
    /* long text (pass lists, paths) may break anywhere; short words keep whole */
    const char *t = (const char *)sqlite3_column_text(q, i);
    fputs(!strcmp(t, "INVALID") ? "<td class=bad>" : strlen(t) > 24 ? "<td class=long>" : "<td>", f);
    esc(f, t);
    fputs("</td>", f);
}

/* A table from a query; fmts[i] formats column i (NULL: text). Returns the row count or -1. */
static int table(FILE *f, sqlite3 *db, const char *sql, const char *const *heads, const char *const *fmts, int nc,
                 const char *cls) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
        il_error(IL_ERR_IO, "%s", sqlite3_errmsg(db));
        return -1;
    }
    int rows = 0, rc;
    fprintf(f, "<div class=wide><table class=\"%s\"><thead><tr>", cls);
    for (int i = 0; i < nc; i++) fprintf(f, "<th>%s</th>", heads[i]);
    fputs("</tr></thead><tbody>\n", f);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        fputs("<tr>", f);
        for (int i = 0; i < nc; i++) td(f, q, i, fmts[i]);
        fputs("</tr>\n", f);
        rows++;
    }
    fputs("</tbody></table></div>\n", f);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        il_error(IL_ERR_IO, "reading the database: %s", sqlite3_errmsg(db));
        return -1;
    }
    return rows;
}

/* Copy an SVG file into the page, without its XML prolog and doctype. */
static il_status inline_svg(FILE *f, const char *path) {
    FILE *s = fopen(path, "rb");
    if (!s) return il_error(IL_ERR_IO, "%s: %s", path, strerror(errno));
    fseek(s, 0, SEEK_END);
    long n = ftell(s);
    fseek(s, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, s) != (size_t)n) {
        free(buf);
        fclose(s);
        return il_error(IL_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    fclose(s);
    char *start = strstr(buf, "<svg");
    if (!start) {
        free(buf);
        return il_error(IL_ERR_PARSE, "%s: gnuplot wrote no <svg> element", path);
    }
    fputs(start, f);
    free(buf);
    return IL_OK;
}

/* Tables fit the page: text cells wrap anywhere (long variant labels, paths), numbers stay whole,
 * and a table still too wide scrolls inside its own box on screen. The PDF is landscape A4, the
 * same width as a 1100 px screen column. */
static const char *css =
    "body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}"
    "h3{font-size:1.05em}.wide{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;font-size:.78em;margin:.6em 0;width:100%}"
    "th,td{border:1px solid #ddd;padding:3px 5px;text-align:left;vertical-align:top}td.long{overflow-wrap:anywhere}"
    "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "td.na{color:#aaa;text-align:center}.plot{page-break-inside:avoid;break-inside:avoid;margin:1em 0}"
    ".plot svg{width:100%;height:auto}.prov{break-inside:avoid;page-break-inside:avoid}.caption{font-size:.85em;color:#555}.skipped{color:#777;font-style:italic}"
    ".meta{color:#555;font-size:.9em}.bad{color:#b00000;font-weight:bold}ul.bad{font-weight:normal}code{font-size:.9em;overflow-wrap:anywhere}"
    "@page{size:A4 landscape;margin:12mm}"
    "@media print{body{margin:0;max-width:none;padding:0}.wide{overflow:visible}table{font-size:.7em}"
    ".plot svg{max-height:150mm}"
    "h2{page-break-after:avoid}table{page-break-inside:auto}tr{page-break-inside:avoid}}";

/* Rows in reading order: by model, then its pipelines in the order of the presets (O0, O1, ...)
 * and then custom ones in the order they were first measured, then how they were run. */
#define RP_ORDER                                                                                         \
    " ORDER BY model_name(r.model, r.model_path), CASE WHEN r.pipeline IS NULL THEN 0 WHEN r.pipeline"   \
    " GLOB 'O[0-9]' THEN CAST(substr(r.pipeline, 2) AS INTEGER) ELSE 100 END, (SELECT min(x.id) FROM"    \
    " runs x WHERE x.model_path IS r.model_path AND x.pipeline IS r.pipeline), r.engine, r.backend,"    \
    " r.scenario, r.batch, r.threads, r.id"

/* The INVALID runs with their reasons, under the results table (MLPerf LoadGen's rule: a run
 * whose trials missed the minimum duration or queries, or disagreed beyond the bound). */
static il_status invalid_runs(FILE *f, sqlite3 *db) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT r.id, r.variant, r.invalid_reason FROM runs r WHERE r.valid = 0" RP_ORDER, -1,
                           &q, NULL) != SQLITE_OK)
        return il_error(IL_ERR_IO, "invalid runs: %s", sqlite3_errmsg(db));
    int n = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        fputs(n++ ? "" : "<p class=bad id=invalid>INVALID runs - their figures are shown, marked, and should not be "
                         "quoted:</p>\n<ul class=bad>\n", f);
        fprintf(f, "<li>run %lld, ", (long long)sqlite3_column_int64(q, 0));
        esc(f, (const char *)sqlite3_column_text(q, 1));
        fputs(": ", f);
        esc(f, sqlite3_column_text(q, 2) ? (const char *)sqlite3_column_text(q, 2) : "no reason recorded");
        fputs("</li>\n", f);
    }
    sqlite3_finalize(q);
    if (n) fputs("</ul>\n", f);
    return rc == SQLITE_DONE ? IL_OK : il_error(IL_ERR_IO, "invalid runs: %s", sqlite3_errmsg(db));
}

/* SQL model_name(model, model_path): databases written before models were named after their
 * folder hold the file name ("model.onnx" for every ONNX zoo model); name those from the path. */
static void sql_model_name(sqlite3_context *c, int argc, sqlite3_value **v) {
    const char *model = (const char *)sqlite3_value_text(v[0]), *path = (const char *)sqlite3_value_text(v[1]);
    size_t len = model ? strlen(model) : 0;
    char name[256];
    if (path && (!model || (len > 5 && !strcmp(model + len - 5, ".onnx")))) {
        il_model_name(path, name, sizeof name);
        sqlite3_result_text(c, name, -1, SQLITE_TRANSIENT);
    } else if (model) {
        sqlite3_result_text(c, model, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_result_null(c);
    }
}

/* Provenance once per distinct build and machine: runs are grouped by all their facts except
 * the ones that change with every run (the date; machine load is a column of runs), and each
 * group is listed once with its runs and dates. */
#define RP_PER_RUN_KEYS "key <> 'date' AND key NOT LIKE 'load%'"

static il_status provenance(FILE *f, sqlite3 *db) {
    static const char *const hk[] = {"key", "value"};
    static const char *const fk[] = {NULL, NULL};
    const char *groups =
        "WITH fp AS (SELECT run_id, group_concat(key || '=' || coalesce(value, ''), char(10)) f FROM (SELECT * FROM"
        " provenance WHERE " RP_PER_RUN_KEYS " ORDER BY run_id, key) GROUP BY run_id)"
        " SELECT min(fp.run_id), count(*), group_concat(fp.run_id, ', '), min(substr(r.created_at, 1, 10)),"
        " max(substr(r.created_at, 1, 10)) FROM fp JOIN runs r ON r.id = fp.run_id GROUP BY fp.f ORDER BY"
        " min(fp.run_id)";
    sqlite3_stmt *q;
    fputs("<h2 id=provenance>Provenance</h2>\n<p class=meta>The build, machine and libraries behind the runs, "
          "listed once for each distinct combination.</p>\n", f);
    if (sqlite3_prepare_v2(db, groups, -1, &q, NULL) != SQLITE_OK)
        return il_error(IL_ERR_IO, "provenance: %s", sqlite3_errmsg(db));
    int k = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        char sql[512];
        int n = sqlite3_column_int(q, 1);
        fprintf(f, "<div class=prov><h3>Build and machine %d: %d run%s", ++k, n, n == 1 ? "" : "s");
        const char *from = (const char *)sqlite3_column_text(q, 3), *to = (const char *)sqlite3_column_text(q, 4);
        if (from && to) fprintf(f, ", %s%s%s", from, strcmp(from, to) ? " to " : "", strcmp(from, to) ? to : "");
        char ids[200];
        const char *all = (const char *)sqlite3_column_text(q, 2);
        snprintf(ids, sizeof ids, "%s", all);
        if (strlen(all) >= sizeof ids) snprintf(strrchr(ids, ',') ? strrchr(ids, ',') : ids, 8, ", ...");
        fputs("</h3>\n<p class=meta>Runs ", f);
        esc(f, ids);
        fputs("</p>\n", f);
        snprintf(sql, sizeof sql, "SELECT key, value FROM provenance WHERE run_id = %lld AND %s ORDER BY key",
                 (long long)sqlite3_column_int64(q, 0), RP_PER_RUN_KEYS);
        if (table(f, db, sql, hk, fk, 2, "provenance") < 0) {
            sqlite3_finalize(q);
            return IL_ERR_IO;
        }
        fputs("</div>\n", f);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return il_error(IL_ERR_IO, "provenance: %s", sqlite3_errmsg(db));
    if (!k) fputs("<p class=skipped>No provenance recorded.</p>\n", f);
    return IL_OK;
}

/* Runs matching a condition (a section appears only when it has rows). */
static int count_runs(sqlite3 *db, const char *where) {
    char sql[256];
    sqlite3_stmt *q;
    int n = 0;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE %s", where);
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return n;
}

static il_status write_html(sqlite3 *db, const il_report_opts *o, const char *path, rp_plot *plots, int np) {
    FILE *f = fopen(path, "w");
    if (!f) return il_error(IL_ERR_IO, "%s: %s", path, strerror(errno));
    char now[40];
    il_bench_timestamp(now, sizeof now);
    const char *title = o->title ? o->title : "inferlab benchmark report";
    fputs("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>", f);
    esc(f, title);
    fprintf(f, "</title><style>%s</style></head><body>\n<h1 id=title>", css);
    esc(f, title);
    fputs("</h1>\n<p class=meta>Database <code>", f);
    esc(f, o->db);
    fprintf(f, "</code>, report written %s. Every figure below was measured and stored by "
               "<code>inferlab bench</code>; nothing is estimated.</p>\n", now);

    static const char *const h1[] = {"run", "model", "variant", "engine", "scenario", "batch", "threads", "p50 ms",
                                     "trial p50s ms", "p99 ms", "valid", "samples/s", "host peak", "activations",
                                     "top-1", "agree top-1", "max |err|"};
    static const char *const f1[] = {"int", NULL, NULL, NULL, NULL, "int", "int", "%.4g", NULL, "%.4g", NULL, "%.1f",
                                     "bytes", "bytes", "%.4f", "%.4f", "%.2g"};
    fputs("<h2 id=results>Results</h2>\n", f);
    int rows = table(f, db,
                     "SELECT r.id, model_name(r.model, r.model_path), r.variant, r.engine || ' ' || r.backend,"
                     " r.scenario, r.batch, r.threads, r.lat_p50_ms, CASE WHEN r.lat_p50_trial_min_ms IS NOT NULL"
                     " THEN printf('%.4g-%.4g', r.lat_p50_trial_min_ms, r.lat_p50_trial_max_ms) END, r.lat_p99_ms,"
                     " CASE r.valid WHEN 1 THEN 'yes' WHEN 0 THEN 'INVALID' END, r.throughput_per_s,"
                     " r.peak_host_bytes, r.peak_activation_bytes, r.accuracy_top1, r.agreement_top1, r.max_abs_error"
                     " FROM runs r" RP_ORDER,
                     h1, f1, 17, "results");
    if (rows < 0) return fclose(f), IL_ERR_IO;
    il_status ist = invalid_runs(f, db);
    if (ist) return fclose(f), ist;
    fprintf(f, "<p class=meta id=runcount>%d run%s. Latencies are per query (one engine call of the batch; a "
               "multi-stream query is a group of samples); host peak is the measuring process's RSS high-water "
               "mark; agreement is with the FP32 parent on the same inputs.</p>\n", rows, rows == 1 ? "" : "s");

    /* the plots drawn, then one list of those left out and why (a plot appears only when it
     * can say something) */
    fputs("<h2 id=plots>Plots</h2>\n", f);
    int skipped = 0;
    for (int i = 0; i < np; i++) {
        if (!plots[i].svg[0]) {
            skipped++;
            continue;
        }
        fprintf(f, "<div class=plot id=\"plot-%s\"><h3>", plots[i].name);
        esc(f, plots[i].title);
        fputs("</h3>\n", f);
        il_status st = inline_svg(f, plots[i].svg);
        if (st) return fclose(f), st;
        fputs("\n<p class=caption>", f);
        esc(f, plots[i].caption);
        fputs("</p></div>\n", f);
    }
    if (skipped) fputs("<h3>Not drawn</h3>\n<ul class=skipped>\n", f);
    for (int i = 0; i < np; i++) {
        if (plots[i].svg[0]) continue;
        fprintf(f, "<li id=\"plot-%s\">", plots[i].name);
        esc(f, plots[i].title);
        fputs(": ", f);
        esc(f, plots[i].why);
        fputs(".</li>\n", f);
    }
    if (skipped) fputs("</ul>\n", f);

    static const char *const h2[] = {"run", "variant", "engine", "target QPS", "p99 ms", "bound ms", "bound met",
                                     "max QPS found"};
    static const char *const f2[] = {"int", NULL, NULL, "%.1f", "%.4g", "%.3g", "bool", "%.1f"};
    if (count_runs(db, "scenario = 'server'")) {
        fputs("<h2 id=server>Server scenario</h2>\n", f);
        if (table(f, db, "SELECT r.id, r.variant, r.engine, r.target_qps, r.lat_p99_ms, r.latency_bound_ms,"
                         " r.bound_met, r.max_qps FROM runs r WHERE r.scenario = 'server'" RP_ORDER, h2, f2, 8,
                  "server") < 0)
            return fclose(f), IL_ERR_IO;
    }

    /* GPU runs: the arithmetic, the device and its software, and the device memory with how each
     * engine measured it (they count differently: bench/gpu.c) */
    static const char *const h4[] = {"run", "variant", "engine", "precision", "graphs", "GPU", "cc", "driver",
                                     "CUDA", "cuBLAS", "cuDNN", "device peak", "measured as"};
    static const char *const f4[] = {"int", NULL, NULL, NULL, "bool", NULL, NULL, NULL, NULL, NULL, NULL, "bytes", NULL};
    if (count_runs(db, "backend = 'cuda'")) {
        fputs("<h2 id=gpu>GPU runs</h2>\n", f);
        if (table(f, db, "SELECT r.id, r.variant, r.engine, r.compute_precision, r.cuda_graphs, r.gpu, r.gpu_cc,"
                         " r.gpu_driver, r.cuda_version, r.cublas_version, r.cudnn_version, r.peak_device_bytes,"
                         " r.device_memory_how FROM runs r WHERE r.backend = 'cuda'" RP_ORDER, h4, f4, 13, "gpu") < 0)
            return fclose(f), IL_ERR_IO;
    }

    /* the files measured, once each, then how each run went */
    static const char *const h3[] = {"model", "variants", "source file", "sha256", "size", "params", "FLOPs/sample",
                                     "sparsity", "precision"};
    static const char *const f3[] = {NULL, NULL, NULL, NULL, "bytes", "int", "int", "%.3f", NULL};
    fputs("<h2 id=models>Models</h2>\n<p class=meta>Each file measured, once: a pipeline's derived file has its "
          "own sha256 and size, beside the source file it was derived from.</p>\n", f);
    if (table(f, db, "SELECT model_name(r.model, r.model_path) m, group_concat(DISTINCT r.variant), r.model_path,"
                     " substr(r.model_sha256, 1, 16), r.model_bytes, r.params, r.flops, r.sparsity, r.precision"
                     " FROM runs r GROUP BY r.model_path, coalesce(r.model_sha256, r.id) ORDER BY m, min(CASE WHEN r.pipeline IS NULL"
                     " THEN 0 WHEN r.pipeline GLOB 'O[0-9]' THEN CAST(substr(r.pipeline, 2) AS INTEGER) ELSE 100"
                     " END), min(r.id)",
              h3, f3, 9, "models") < 0)
        return fclose(f), IL_ERR_IO;
    static const char *const h5[] = {"run", "model", "variant", "parent", "engine version", "trials", "queries",
                                     "seed", "load avg", "others running", "created (UTC)"};
    static const char *const f5[] = {"int", NULL, NULL, NULL, NULL, "int", "int", "int", "%.2f", "int", NULL};
    fputs("<h2 id=runs>Runs</h2>\n<p class=meta>Load average and the other runnable processes were read as "
          "the run's trials started.</p>\n", f);
    if (table(f, db, "SELECT r.id, model_name(r.model, r.model_path), r.variant, r.parent_variant, r.engine_version,"
                     " r.trials, r.queries, r.seed, r.load_avg1, r.others_running,"
                     " replace(substr(r.created_at, 1, 16), 'T', ' ') FROM runs r" RP_ORDER,
              h5, f5, 11, "runs") < 0)
        return fclose(f), IL_ERR_IO;
    il_status pst = provenance(f, db);
    if (pst) return fclose(f), pst;
    fputs("</body></html>\n", f);
    if (fclose(f)) return il_error(IL_ERR_IO, "%s: write error", path);
    return IL_OK;
}

/* report.pdf: Chromium prints the page itself, so the PDF cannot drift from the HTML. */
static il_status print_pdf(const char *html, const char *pdf) {
    char url[PATH_MAX + 16], arg[PATH_MAX + 32], abs[PATH_MAX], prof[] = "/tmp/inferlab-chromium-XXXXXX";
    if (!realpath(html, abs)) return il_error(IL_ERR_IO, "%s: %s", html, strerror(errno));
    if (!mkdtemp(prof)) return il_error(IL_ERR_IO, "cannot create a temporary folder: %s", strerror(errno));
    snprintf(url, sizeof url, "file://%s", abs);
    snprintf(arg, sizeof arg, "--print-to-pdf=%s", pdf);
    char udd[64];
    snprintf(udd, sizeof udd, "--user-data-dir=%s", prof);
    const char *argv[] = {il_report_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          "--no-first-run", "--no-pdf-header-footer", udd, arg, url, NULL};
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return il_error(IL_ERR_INTERNAL, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Chromium is chatty on stderr (D-Bus, GPU probes): keep only the failure status. */
        if (!freopen("/dev/null", "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(126);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf '%s'", prof);
    if (system(rm)) {}
    struct stat sb;
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127)
        return il_error(IL_ERR_IO, "cannot run %s for report.pdf (make deps installs chromium; or --no-pdf)", argv[0]);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) || stat(pdf, &sb) || sb.st_size == 0)
        return il_error(IL_ERR_IO, "%s did not print %s (status %d)", argv[0], pdf, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    return IL_OK;
}

static il_status mkdir_p(const char *d) {
    char b[PATH_MAX];
    snprintf(b, sizeof b, "%s", d);
    for (char *p = b + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(b, 0755) && errno != EEXIST) return il_error(IL_ERR_IO, "cannot create %s: %s", b, strerror(errno));
            *p = '/';
        }
    if (mkdir(b, 0755) && errno != EEXIST) return il_error(IL_ERR_IO, "cannot create %s: %s", b, strerror(errno));
    return IL_OK;
}

il_status il_report_write(const il_report_opts *o) {
    il_store *s;
    il_status st = il_store_open_readonly(o->db, &s);
    if (st) return st;
    sqlite3 *db = il_store_sqlite(s);
    if (sqlite3_create_function(db, "model_name", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_model_name, NULL,
                                NULL) != SQLITE_OK) {
        st = il_error(IL_ERR_INTERNAL, "report: %s", sqlite3_errmsg(db));
        il_store_close(s);
        return st;
    }
    char work[PATH_MAX], html[PATH_MAX], pdf[PATH_MAX];
    snprintf(work, sizeof work, "%s/gnuplot", o->out_dir);
    snprintf(html, sizeof html, "%s/index.html", o->out_dir);
    snprintf(pdf, sizeof pdf, "%s/report.pdf", o->out_dir);
    rp_plot plots[RP_MAX_PLOTS];
    int np = 0;
    if (!(st = mkdir_p(work)) && !(st = o->plots_dir ? mkdir_p(o->plots_dir) : IL_OK))
        st = rp_make_plots(db, work, o->plots_dir, plots, &np);
    if (!st) st = write_html(db, o, html, plots, np);
    il_store_close(s);
    if (!st && !o->quiet) {
        int drawn = 0;
        for (int i = 0; i < np; i++) drawn += plots[i].svg[0] != 0;
        printf("wrote %s (%d of %d plots drawn; data and gnuplot scripts in %s)\n", html, drawn, np, work);
    }
    if (!st && !o->no_pdf) {
        st = print_pdf(html, pdf);
        if (!st && !o->quiet) printf("wrote %s\n", pdf);
    }
    if (!st && o->plots_dir && !o->quiet) printf("wrote PNG, SVG and PDF plots in %s\n", o->plots_dir);
    return st;
}
