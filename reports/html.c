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
    fputs("<td>", f);
    esc(f, (const char *)sqlite3_column_text(q, i));
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
    int rows = 0;
    fprintf(f, "<table class=\"%s\"><thead><tr>", cls);
    for (int i = 0; i < nc; i++) fprintf(f, "<th>%s</th>", heads[i]);
    fputs("</tr></thead><tbody>\n", f);
    while (sqlite3_step(q) == SQLITE_ROW) {
        fputs("<tr>", f);
        for (int i = 0; i < nc; i++) td(f, q, i, fmts[i]);
        fputs("</tr>\n", f);
        rows++;
    }
    fputs("</tbody></table>\n", f);
    sqlite3_finalize(q);
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

static const char *css =
    "body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;font-size:.82em;margin:.6em 0;width:100%}"
    "th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}td.na{color:#aaa;"
    "text-align:center}.plot{page-break-inside:avoid;break-inside:avoid;margin:1em 0}.plot svg{width:100%;"
    "height:auto}.caption{font-size:.85em;color:#555}.skipped{color:#777;font-style:italic}"
    ".meta{color:#555;font-size:.9em}code{font-size:.9em}@media print{body{margin:0;max-width:none}"
    "h2{page-break-after:avoid}table{page-break-inside:auto}tr{page-break-inside:avoid}}";

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

    static const char *const h1[] = {"run", "variant", "engine", "backend", "precision", "scenario", "batch",
                                     "threads", "p50 ms", "p99 ms", "samples/s", "host peak", "activations",
                                     "top-1", "agree top-1", "max |err|", "created (UTC)"};
    static const char *const f1[] = {"int", NULL, NULL, NULL, NULL, NULL, "int", "int", "%.4g", "%.4g", "%.1f",
                                     "bytes", "bytes", "%.4f", "%.4f", "%.2g", NULL};
    fputs("<h2 id=results>Results</h2>\n", f);
    int rows = table(f, db,
                     "SELECT run_id, variant, engine, backend, precision, scenario, batch, threads, latency_p50_ms,"
                     " latency_p99_ms, throughput_per_s, peak_host_bytes, peak_activation_bytes, accuracy_top1,"
                     " agreement_top1, max_abs_error, created_at FROM results ORDER BY model, scenario, batch, variant,"
                     " run_id",
                     h1, f1, 17, "results");
    if (rows < 0) return fclose(f), IL_ERR_IO;
    fprintf(f, "<p class=meta id=runcount>%d run%s. Latencies are per query (one engine call of the batch; a "
               "multi-stream query is a group of samples); host peak is the measuring process's RSS high-water "
               "mark; agreement is with the FP32 parent on the same inputs.</p>\n", rows, rows == 1 ? "" : "s");

    fputs("<h2 id=plots>Plots</h2>\n", f);
    for (int i = 0; i < np; i++) {
        fprintf(f, "<div class=plot id=\"plot-%s\"><h3>", plots[i].name);
        esc(f, plots[i].title);
        fputs("</h3>\n", f);
        if (plots[i].svg[0]) {
            il_status st = inline_svg(f, plots[i].svg);
            if (st) return fclose(f), st;
            fputs("\n<p class=caption>", f);
            esc(f, plots[i].caption);
        } else {
            fputs("<p class=skipped>Not drawn: ", f);
            esc(f, plots[i].why);
            fputs(".", f);
        }
        fputs("</p></div>\n", f);
    }

    static const char *const h2[] = {"run", "variant", "engine", "target QPS", "p99 ms", "bound ms", "bound met",
                                     "max QPS found"};
    static const char *const f2[] = {"int", NULL, NULL, "%.1f", "%.4g", "%.3g", "bool", "%.1f"};
    sqlite3_stmt *q;
    int servers = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM runs WHERE scenario = 'server'", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        servers = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (servers) {
        fputs("<h2 id=server>Server scenario</h2>\n", f);
        if (table(f, db, "SELECT id, variant, engine, target_qps, lat_p99_ms, latency_bound_ms, bound_met, max_qps"
                         " FROM runs WHERE scenario = 'server' ORDER BY id", h2, f2, 8, "server") < 0)
            return fclose(f), IL_ERR_IO;
    }

    static const char *const h3[] = {"run", "variant", "model file", "sha256", "size", "params", "FLOPs/sample",
                                     "sparsity", "parent", "engine version", "trials", "queries", "seed"};
    static const char *const f3[] = {"int", NULL, NULL, NULL, "bytes", "int", "int", "%.3f", NULL, NULL, "int",
                                     "int", "int"};
    fputs("<h2 id=models>Models and runs</h2>\n", f);
    if (table(f, db, "SELECT id, variant, model, substr(model_sha256, 1, 16), model_bytes, params, flops, sparsity,"
                     " parent_variant, engine_version, trials, queries, seed FROM runs ORDER BY id",
              h3, f3, 13, "models") < 0)
        return fclose(f), IL_ERR_IO;

    static const char *const h4[] = {"key", "value", "runs"};
    static const char *const f4[] = {NULL, NULL, "int"};
    fputs("<h2 id=provenance>Provenance</h2>\n<p class=meta>Facts recorded with each run (build, machine, "
          "libraries); a key with several values lists each with its number of runs.</p>\n", f);
    if (table(f, db, "SELECT key, value, count(*) FROM provenance GROUP BY key, value ORDER BY key, value", h4, f4, 3,
              "provenance") < 0)
        return fclose(f), IL_ERR_IO;
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
