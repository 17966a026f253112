/*
 * plots.c - the report's plots, drawn by gnuplot (run as a subprocess on data files and a
 * script written here). Each plot reads its data from the database with one query, picks the
 * latest run per series, writes NAME.dat and NAME.body.gp, and gnuplot renders the body as SVG
 * for the page and, with --plots, as PNG, SVG and PDF for papers.
 */
#include "report_int.h"

#include "../bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

il_status rp_db_err(sqlite3 *db, const char *what) {
    return il_error(IL_ERR_IO, "%s: %s", what, sqlite3_errmsg(db));
}

/* A series name as a gnuplot string, cut to width (keeping it distinct: il_label_short). Point
 * and tic labels get 28 characters, legend entries 90: a 150-character pipeline would crowd
 * the plot out. */
static void gp_label(FILE *f, const char *s, size_t width) {
    char b[200];
    il_label_short(s ? s : "", width, b, sizeof b);
    rp_gp_str(f, b);
}

int rp_names_add(names *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char(*ns)[160] = realloc(l->s, (size_t)cap * sizeof *ns);
        if (!ns) return 0;
        l->s = ns, l->cap = cap;
    }
    snprintf(l->s[l->n++], sizeof l->s[0], "%s", s ? s : "");
    return 1;
}

/* Colour and dash of series i: 20 distinct colours (Tableau's 10 and their light twins), then
 * hues stepped by the golden angle with a dash pattern, so no two series look alike. */
static void style(FILE *b, int i) {
    static const char *const c[20] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                                      "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
                                      "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"};
    if (i < 20) {
        fprintf(b, "lc rgb '%s' dt %d", c[i], i < 10 ? 1 : 2);
        return;
    }
    double h = fmod(i * 0.618033988749895, 1.0) * 6, f = h - floor(h), v = 0.75, lo = v * 0.35;
    double r[6] = {v, v - (v - lo) * f, lo, lo, lo + (v - lo) * f, v};
    int k = (int)h;
    double R = r[k], G = r[(k + 4) % 6], B = r[(k + 2) % 6];
    fprintf(b, "lc rgb '#%02x%02x%02x' dt %d", (int)(R * 255), (int)(G * 255), (int)(B * 255), 3 + i % 3);
}

/* A legend of n entries below the plot (never squeezing it), and the height that leaves the
 * plot its 400 px: entries of the longest name's width, as many per row as fit 860 px. */
static int legend_below(FILE *b, const names *l) {
    size_t longest = 8;
    for (int i = 0; i < l->n; i++) longest = strlen(l->s[i]) > longest ? strlen(l->s[i]) : longest;
    longest = longest > 90 ? 90 : longest;
    int per_row = (int)(800 / (longest * 7 + 70));
    per_row = per_row < 1 ? 1 : per_row;
    int rows = (l->n + per_row - 1) / per_row;
    fprintf(b, "set key outside below left Left reverse maxcols %d samplen 3\n", per_row);
    return 400 + 90 + rows * 19;
}

/* The plot command of a line plot, one data block (index i) per series drawn `how`, each in
 * its own style, the legend below; closes b. */
void rp_plot_series(FILE *b, const char *work, rp_plot *p, const names *l, const char *how) {
    p->height = legend_below(b, l);
    fprintf(b, "plot ");
    for (int i = 0; i < l->n; i++) {
        fprintf(b, "%s'%s/%s.dat' index %d %s ", i ? ", \\\n  " : "", work, p->name, i, how);
        style(b, i);
        fprintf(b, " title ");
        gp_label(b, l->s[i], 90);
    }
    fprintf(b, "\n");
    fclose(b);
}

/* "3 variants not drawn (a, b, c): why" into a caption. */
static void not_drawn(char *cap, size_t n, const names *l, const char *why) {
    if (!l->n) return;
    size_t used = strlen(cap);
    used += (size_t)snprintf(cap + used, used < n ? n - used : 0, " %d variant%s not drawn (", l->n,
                             l->n == 1 ? "" : "s");
    for (int i = 0; i < l->n && used < n; i++)
        used += (size_t)snprintf(cap + used, n - used, "%s%s", i ? ", " : "", i < 6 ? l->s[i] : "...");
    if (used < n) snprintf(cap + used, n - used, "): %s.", why);
}

/* A label safe inside a gnuplot double-quoted string. */
void rp_gp_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) fputc(*s == '"' || *s == '\\' ? '\'' : *s, f);
    fputc('"', f);
}

/* gnuplot's warnings (a font it substitutes, an empty range) are not the user's business: they go
 * to SCRIPT.log beside the script, and into the error message when gnuplot fails. */
il_status rp_run_gnuplot(const char *script) {
    char log[1200], head[400] = "";
    snprintf(log, sizeof log, "%s.log", script);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return il_error(IL_ERR_INTERNAL, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 2), close(fd);
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        fprintf(stderr, "inferlab report: cannot run gnuplot: %s (make deps installs gnuplot-nox)\n", strerror(errno));
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(ws) || WEXITSTATUS(ws)) {
        FILE *f = fopen(log, "r");
        size_t k = f ? fread(head, 1, sizeof head - 1, f) : 0;
        if (f) fclose(f);
        head[k] = 0;
        for (char *c = head; *c; c++)
            if (*c == '\n') *c = ' ';
        return il_error(IL_ERR_IO, "gnuplot failed on %s (status %d): %s", script, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1,
                        head[0] ? head : "no message");
    }
    return IL_OK;
}

/* Render work/NAME.body.gp as SVG into work/NAME.svg (and PNG/SVG/PDF into plots_dir). */
il_status rp_draw(const char *work, const char *plots_dir, rp_plot *p) {
    char script[1100];
    snprintf(script, sizeof script, "%s/%s.gp", work, p->name);
    if (strchr(work, '\'') || (plots_dir && strchr(plots_dir, '\'')))
        return il_error(IL_ERR_INVALID, "report: folder names with a single quote are not supported");
    FILE *f = fopen(script, "w");
    if (!f) return il_error(IL_ERR_IO, "%s: %s", script, strerror(errno));
    int h = p->height ? p->height : 480;
    fprintf(f, "set terminal svg size 860,%d dynamic font 'Helvetica,12' background rgb 'white'\n"
               "set output '%s/%s.svg'\nload '%s/%s.body.gp'\nunset output\n", h, work, p->name, work, p->name);
    if (plots_dir)
        fprintf(f, "set terminal pngcairo size 1290,%d font 'Helvetica,16'\nset output '%s/%s.png'\n"
                   "load '%s/%s.body.gp'\nunset output\n"
                   "set terminal svg size 860,%d font 'Helvetica,12' background rgb 'white'\nset output '%s/%s.svg'\n"
                   "load '%s/%s.body.gp'\nunset output\n"
                   "set terminal pdfcairo size 6.5in,%.2fin font 'Helvetica,9'\nset output '%s/%s.pdf'\n"
                   "load '%s/%s.body.gp'\nunset output\n",
                h * 3 / 2, plots_dir, p->name, work, p->name, h, plots_dir, p->name, work, p->name, 3.6 * h / 480,
                plots_dir, p->name, work, p->name);
    if (fclose(f)) return il_error(IL_ERR_IO, "%s: write error", script);
    il_status st = rp_run_gnuplot(script);
    if (!st) snprintf(p->svg, sizeof p->svg, "%s/%s.svg", work, p->name);
    return st;
}

FILE *rp_open_file(const char *work, const char *name, const char *ext, il_status *st) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s.%s", work, name, ext);
    FILE *f = fopen(path, "w");
    if (!f) *st = il_error(IL_ERR_IO, "%s: %s", path, strerror(errno));
    return f;
}

const char *const rp_common =
    "set encoding utf8\nset termoption noenhanced\nset grid lc rgb '#dddddd'\nset key outside right top\n"
    "set border lc rgb '#444444'\n";

/* ---- latency vs accuracy, Pareto front marked */

static il_status plot_latency_accuracy(sqlite3 *db, const char *work, rp_plot *p) {
    const char *sql = "SELECT s, p50, top1 FROM (SELECT " RP_SERIES_MARKED " s, lat_p50_ms p50, accuracy_top1 top1,"
                      " row_number() OVER (PARTITION BY variant, backend ORDER BY batch, id DESC) rn FROM runs"
                      " WHERE scenario = 'single-stream' AND accuracy_top1 IS NOT NULL AND lat_p50_ms IS NOT NULL)"
                      " WHERE rn = 1 ORDER BY p50, top1 DESC";
    sqlite3_stmt *q;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return rp_db_err(db, "latency vs accuracy");
    FILE *d = rp_open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), st;
    int n = 0, nf = 0;
    double best = -INFINITY, lo = INFINITY, hi = 0, amin = INFINITY, amax = -INFINITY, fx[64], fy[64];
    fprintf(d, "# series p50_ms top1 on_front\n");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        double acc = sqlite3_column_double(q, 2);
        /* sorted by latency: a point is on the front when no faster point is as accurate */
        int front = acc > best;
        if (front) best = acc;
        if (front && nf < 64) fx[nf] = sqlite3_column_double(q, 1), fy[nf++] = acc;
        gp_label(d, (const char *)sqlite3_column_text(q, 0), 28);
        fprintf(d, " %.6g %.6g %d\n", sqlite3_column_double(q, 1), acc, front);
        lo = fmin(lo, sqlite3_column_double(q, 1));
        amin = fmin(amin, acc);
        amax = fmax(amax, acc);
        hi = fmax(hi, sqlite3_column_double(q, 1));
        n++;
    }
    sqlite3_finalize(q);
    /* the front as its own block (index 1), so its steps join only front points */
    fprintf(d, "\n\n");
    for (int i = 0; i < nf; i++) fprintf(d, "\"front\" %.6g %.6g 1\n", fx[i], fy[i]);
    fclose(d);
    if (rc != SQLITE_DONE) return rp_db_err(db, "latency vs accuracy");
    if (n < 2) {
        snprintf(p->why, sizeof p->why, "%s", n ? "one variant with accuracy: a trade-off needs two or more"
                                                 : "no single-stream run with accuracy (bench a model that has a "
                                                   "labelled set)");
        return IL_OK;
    }
    FILE *b = rp_open_file(work, p->name, "body.gp", &st);
    if (!b) return st;
    /* one accuracy for all (an untrained or single model): give the axis a range of its own */
    if (amax - amin < 1e-9) fprintf(b, "set yrange [%.6g:%.6g]\n", amin - 0.05, amax + 0.05);
    /* latencies often span decades (an MLP beside a ResNet): a log axis keeps both readable */
    fprintf(b, "%sset xlabel 'p50 latency per query (ms), single-stream%s'\nset ylabel 'top-1 accuracy'\n%s"
               "set offsets graph 0.05, graph 0.25, graph 0.08, graph 0.08\n"
               "plot '%s/%s.dat' index 1 using 2:3 with steps lw 2 lc rgb '#d62728' title 'Pareto front', \\\n"
               "  '' index 0 using 2:3 with points pt 7 ps 1.3 lc rgb '#1f77b4' title 'variants', \\\n"
               "  '' index 0 using 2:3:1 with labels offset char 1,0.6 left font ',9' notitle\n",
            rp_common, hi > 20 * lo ? ", log scale" : "", hi > 20 * lo ? "set logscale x\n" : "", work, p->name);

    fclose(b);
    snprintf(p->caption, sizeof p->caption,
             "%d variant%s; the red steps join the Pareto-optimal ones (no faster variant is as accurate). "
             "Lowest batch measured per variant.", n, n == 1 ? "" : "s");
    return rp_draw(work, NULL, p);
}

/* ---- throughput vs batch */

/* Only variants measured at two or more batch sizes make a line; the others are named in the
 * caption, and with none the plot is not drawn (a column of batch-1 dots says nothing). */
static il_status plot_throughput(sqlite3 *db, const char *work, rp_plot *p) {
    const char *sql = "SELECT s, batch, tp, sd, sc, count(*) OVER (PARTITION BY s) nb, v FROM (SELECT " RP_SERIES
                      " s, batch, throughput_per_s tp, throughput_stddev sd, scenario sc, valid v, row_number() OVER"
                      " (PARTITION BY variant, backend, batch ORDER BY id DESC) rn FROM runs WHERE throughput_per_s IS"
                      " NOT NULL AND"
                      " scenario = (CASE WHEN EXISTS (SELECT 1 FROM runs WHERE scenario = 'offline') THEN 'offline'"
                      " ELSE 'single-stream' END)) WHERE rn = 1 ORDER BY min(batch) OVER (PARTITION BY s), s, batch";
    sqlite3_stmt *q;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return rp_db_err(db, "throughput vs batch");
    FILE *d = rp_open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), st;
    names drawn = {0}, single = {0};
    char scen[32] = "", last[160] = "";
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(q, 0);
        snprintf(scen, sizeof scen, "%s", (const char *)sqlite3_column_text(q, 4));
        if (sqlite3_column_int(q, 5) < 2) {
            rp_names_add(&single, s);
            continue;
        }
        if (!drawn.n || strcmp(s ? s : "", last)) {
            if (drawn.n) fprintf(d, "\n\n");
            rp_names_add(&drawn, s);
            snprintf(last, sizeof last, "%s", s ? s : "");
        }
        /* an INVALID point marks its series: "name INVALID at b4" */
        if (sqlite3_column_type(q, 6) != SQLITE_NULL && !sqlite3_column_int(q, 6)) {
            char *name = drawn.s[drawn.n - 1];
            size_t len = strlen(name);
            snprintf(name + len, sizeof drawn.s[0] - len, "%s%d", strstr(name, " INVALID at b") ? ",b" : " INVALID at b",
                     sqlite3_column_int(q, 1));
        }
        double sd = sqlite3_column_type(q, 3) == SQLITE_NULL ? 0 : sqlite3_column_double(q, 3);
        fprintf(d, "%d %.6g %.6g\n", sqlite3_column_int(q, 1), sqlite3_column_double(q, 2), sd);
    }
    sqlite3_finalize(q);
    fclose(d);
    if (rc != SQLITE_DONE) st = rp_db_err(db, "throughput vs batch");
    else if (!drawn.n)
        snprintf(p->why, sizeof p->why, "%s", single.n ? "every variant was measured at one batch size only (bench "
                                                         "with --batch 1,4,16 to see how throughput scales)"
                                                       : "no run with a throughput figure");
    FILE *b = !st && drawn.n ? rp_open_file(work, p->name, "body.gp", &st) : NULL;
    if (b) {
        fprintf(b, "%sset xlabel 'batch size'\nset ylabel 'samples per second (%s)'\nset logscale x 2\n"
                   "set offsets graph 0.05, graph 0.05, graph 0.1, graph 0.05\nset yrange [0:*]\n",
                rp_common, scen);
        rp_plot_series(b, work, p, &drawn, "using 1:2:3 with yerrorlines lw 2 pt 7");
        snprintf(p->caption, sizeof p->caption,
                 "%s scenario; error bars are the standard deviation over repeated trials.", scen);
        not_drawn(p->caption, sizeof p->caption, &single, "measured at one batch size");
        st = rp_draw(work, NULL, p);
    }
    free(drawn.s);
    free(single.s);
    return st;
}

/* ---- latency CDF per variant, from the raw per-query latencies */

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The sorted latencies of run id into *v (caller frees); 0 when it kept none. */
static size_t run_latencies(sqlite3_stmt *l, int64_t id, double **v) {
    size_t cap = 1024, n = 0;
    *v = malloc(cap * sizeof **v);
    sqlite3_bind_int64(l, 1, id);
    while (*v && sqlite3_step(l) == SQLITE_ROW) {
        if (n == cap) {
            double *nv = realloc(*v, (cap *= 2) * sizeof **v);
            if (!nv) free(*v);
            *v = nv;
            if (!nv) break;
        }
        (*v)[n++] = sqlite3_column_double(l, 0);
    }
    sqlite3_reset(l);
    if (*v && n) qsort(*v, n, sizeof **v, cmp_d);
    return *v ? n : 0;
}

static il_status plot_cdf(sqlite3 *db, const char *work, rp_plot *p) {
    const char *sql = "SELECT id, s, scenario = 'single-stream' FROM (SELECT id, " RP_SERIES_MARKED " s, scenario, lat_p50_ms"
                      " p50, row_number() OVER (PARTITION BY variant, backend ORDER BY scenario <> 'single-stream',"
                      " batch, id DESC) rn FROM runs) WHERE rn = 1 ORDER BY p50";
    sqlite3_stmt *q, *l;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return rp_db_err(db, "latency CDF");
    if (sqlite3_prepare_v2(db, "SELECT ms FROM latencies WHERE run_id = ?1", -1, &l, NULL) != SQLITE_OK) {
        sqlite3_finalize(q);
        return rp_db_err(db, "latency CDF");
    }
    FILE *d = rp_open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), sqlite3_finalize(l), st;
    names drawn = {0}, other = {0}, empty = {0};
    double lo = INFINITY, hi = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(q, 1);
        if (!sqlite3_column_int(q, 2)) {
            rp_names_add(&other, s);
            continue;
        }
        double *v;
        size_t n = run_latencies(l, sqlite3_column_int64(q, 0), &v);
        if (!n) {
            free(v);
            rp_names_add(&empty, s);
            continue;
        }
        if (drawn.n) fprintf(d, "\n\n");
        for (size_t i = 0; i < n; i++) fprintf(d, "%.6g %.6g\n", v[i], (double)(i + 1) / (double)n);
        lo = fmin(lo, v[0]);
        hi = fmax(hi, v[n - 1]);
        free(v);
        rp_names_add(&drawn, s);
    }
    sqlite3_finalize(q);
    sqlite3_finalize(l);
    fclose(d);
    if (rc != SQLITE_DONE) st = rp_db_err(db, "latency CDF");
    else if (!drawn.n) snprintf(p->why, sizeof p->why, "no single-stream run with raw latencies");
    FILE *b = !st && drawn.n ? rp_open_file(work, p->name, "body.gp", &st) : NULL;
    if (b) {
        fprintf(b, "%sset xlabel 'latency per query (ms)%s'\nset ylabel 'fraction of queries'\nset yrange [0:1.02]\n%s",
                rp_common, hi > 20 * lo ? ", log scale" : "", hi > 20 * lo ? "set logscale x\n" : "");
        rp_plot_series(b, work, p, &drawn, "using 1:2 with steps lw 2");
        snprintf(p->caption, sizeof p->caption,
                 "Every measured query of every trial (warm-up excluded), single-stream, lowest batch per variant.");
        not_drawn(p->caption, sizeof p->caption, &other, "no single-stream run");
        not_drawn(p->caption, sizeof p->caption, &empty, "no raw latencies kept");
        st = rp_draw(work, NULL, p);
    }
    free(drawn.s);
    free(other.s);
    free(empty.s);
    return st;
}

/* ---- per-layer time breakdown (runs with --profile), by operator type */

static il_status plot_layers(sqlite3 *db, const char *work, rp_plot *p) {
    const char *runs_sql = "SELECT id, s FROM (SELECT id, " RP_SERIES " s, row_number() OVER (PARTITION BY variant,"
                           " backend ORDER BY batch, id DESC) rn FROM runs WHERE id IN (SELECT run_id FROM node_times))"
                           " WHERE rn = 1 ORDER BY s";
    const char *ops_sql = "SELECT coalesce(op_type, '?') o FROM node_times GROUP BY o ORDER BY sum(ms) DESC";
    sqlite3_stmt *q;
    il_status st = IL_OK;
    int64_t *ids = NULL;
    names series = {0};
    char ops[8][48];
    int nops = 0, more_ops = 0;
    if (sqlite3_prepare_v2(db, runs_sql, -1, &q, NULL) != SQLITE_OK) return rp_db_err(db, "layer breakdown");
    while (sqlite3_step(q) == SQLITE_ROW) {
        int64_t *ni = realloc(ids, (size_t)(series.n + 1) * sizeof *ids);
        if (!ni || !rp_names_add(&series, (const char *)sqlite3_column_text(q, 1))) {
            free(ni ? ni : ids);
            free(series.s);
            sqlite3_finalize(q);
            return il_error(IL_ERR_OOM, "layer breakdown: out of memory");
        }
        ids = ni;
        ids[series.n - 1] = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    if (!series.n) {
        snprintf(p->why, sizeof p->why, "no profiled run (bench with --profile)");
        return IL_OK;
    }
    if (sqlite3_prepare_v2(db, ops_sql, -1, &q, NULL) != SQLITE_OK) {
        free(ids), free(series.s);
        return rp_db_err(db, "layer breakdown");
    }
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (nops < 7) snprintf(ops[nops++], sizeof ops[0], "%s", (const char *)sqlite3_column_text(q, 0));
        else more_ops = 1;
    }
    sqlite3_finalize(q);
    FILE *d = rp_open_file(work, p->name, "dat", &st);
    if (d && sqlite3_prepare_v2(db, "SELECT coalesce(op_type, '?') o, sum(ms) FROM node_times WHERE run_id = ?1 GROUP BY o", -1,
                                &q, NULL) != SQLITE_OK) {
        fclose(d);
        d = NULL;
        st = rp_db_err(db, "layer breakdown");
    }
    if (d) {
        fprintf(d, "variant");
        for (int k = 0; k < nops; k++) fprintf(d, " \"%s\"", ops[k]);
        if (more_ops) fprintf(d, " other");
        fprintf(d, "\n");
        for (int i = 0; i < series.n; i++) {
            double v[8] = {0};
            sqlite3_bind_int64(q, 1, ids[i]);
            while (sqlite3_step(q) == SQLITE_ROW) {
                int k = 0;
                while (k < nops && strcmp(ops[k], (const char *)sqlite3_column_text(q, 0))) k++;
                v[k < nops ? k : 7] += sqlite3_column_double(q, 1);
            }
            sqlite3_reset(q);
            gp_label(d, series.s[i], 28);
            for (int k = 0; k < nops; k++) fprintf(d, " %.6g", v[k]);
            if (more_ops) fprintf(d, " %.6g", v[7]);
            fprintf(d, "\n");
        }
        sqlite3_finalize(q);
        fclose(d);
    }
    FILE *b = d ? rp_open_file(work, p->name, "body.gp", &st) : NULL;
    if (b) {
        fprintf(b, "%sset ylabel 'time per engine call (ms)'\nset style data histograms\n"
                   "set style histogram rowstacked\nset style fill solid 0.85 border -1\nset boxwidth 0.6\n"
                   "set xtics rotate by -25 font ',9'\nset yrange [0:*]\nplot for [i=2:%d] '%s/%s.dat' using "
                   "i:xtic(1) title columnheader(i)\n",
                rp_common, nops + 1 + more_ops, work, p->name);
        fclose(b);
        snprintf(p->caption, sizeof p->caption,
                 "Time per operator type from a separate profiled pass (--profile), so profiling does not perturb "
                 "the latency figures.");
        st = rp_draw(work, NULL, p);
    }
    free(ids);
    free(series.s);
    return st;
}

/* ---- speedup over the baseline (inferlab, CPU, O0 of the same parent model), with spread */

static il_status plot_speedup(sqlite3 *db, const char *work, rp_plot *p) {
    const char *sql =
        "SELECT s, id, base FROM (SELECT " RP_SERIES_MARKED " s, r.id id, (SELECT max(b.id) FROM runs b WHERE b.engine ="
        " 'inferlab' AND b.backend = 'cpu' AND (b.pipeline = 'O0' OR b.pipeline IS NULL) AND b.scenario = r.scenario"
        " AND b.batch = r.batch AND b.threads = r.threads AND b.model_sha256 = coalesce(r.parent_sha256,"
        " r.model_sha256)) base, row_number() OVER (PARTITION BY variant, backend ORDER BY batch, id DESC) rn"
        " FROM runs r WHERE scenario = 'single-stream') WHERE rn = 1 ORDER BY s";
    sqlite3_stmt *q, *t;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return rp_db_err(db, "speedup");
    if (sqlite3_prepare_v2(db, "SELECT lat_p50_ms FROM trials WHERE run_id = ?1 AND lat_p50_ms > 0", -1, &t, NULL)) {
        sqlite3_finalize(q);
        return rp_db_err(db, "speedup");
    }
    FILE *d = rp_open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), sqlite3_finalize(t), st;
    int n = 0, compared = 0, rc;
    names nobase = {0};
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        double base = 0, m = 0, ss = 0, x;
        int nb = 0, nx = 0;
        const char *s = (const char *)sqlite3_column_text(q, 0);
        if (sqlite3_column_type(q, 2) == SQLITE_NULL) {
            rp_names_add(&nobase, s);
            continue;
        }
        sqlite3_bind_int64(t, 1, sqlite3_column_int64(q, 2));
        while (sqlite3_step(t) == SQLITE_ROW) base += sqlite3_column_double(t, 0), nb++;
        sqlite3_reset(t);
        if (!nb) {
            rp_names_add(&nobase, s);
            continue;
        }
        base /= nb;
        /* per-trial speedups against the baseline's mean p50: their spread is the run's
         * (Welford's running mean and sum of squares, any number of trials) */
        sqlite3_bind_int64(t, 1, sqlite3_column_int64(q, 1));
        while (sqlite3_step(t) == SQLITE_ROW) {
            x = base / sqlite3_column_double(t, 0);
            double dm = x - m;
            m += dm / ++nx;
            ss += dm * (x - m);
        }
        sqlite3_reset(t);
        if (!nx) {
            rp_names_add(&nobase, s);
            continue;
        }
        compared += sqlite3_column_int64(q, 1) != sqlite3_column_int64(q, 2);
        gp_label(d, s, 28);
        fprintf(d, " %.6g %.6g\n", m, nx > 1 ? sqrt(ss / (nx - 1)) : 0);
        n++;
    }
    sqlite3_finalize(q);
    sqlite3_finalize(t);
    fclose(d);
    if (rc != SQLITE_DONE) st = rp_db_err(db, "speedup");
    else if (!compared)
        snprintf(p->why, sizeof p->why, "%s", n ? "only baselines were measured (bench another pipeline, engine or "
                                                  "backend beside O0 to compare)"
                                                : "no single-stream run with an O0 inferlab CPU baseline of the same "
                                                  "model");
    FILE *b = !st && compared ? rp_open_file(work, p->name, "body.gp", &st) : NULL;
    if (b) {
        fprintf(b, "%sset ylabel 'speedup over baseline (p50)'\nset style fill solid 0.7 border -1\nset boxwidth 0.6\n"
                   "set xtics rotate by -30 font ',9'\nset yrange [0:*]\nset xrange [-0.6:%d.6]\nunset key\n"
                   "set arrow from -0.6,1 to %d.6,1 nohead dt 2 lc rgb '#888888'\n"
                   "plot '%s/%s.dat' using 0:2:xtic(1) with boxes lc rgb '#2ca02c', '' using 0:2:3 with yerrorbars "
                   "pt 0 lc rgb 'black'\n",
                rp_common, n - 1, n - 1, work, p->name);
        fclose(b);
        snprintf(p->caption, sizeof p->caption,
                 "Baseline: inferlab, CPU, pipeline O0 of the same parent model at the same batch and threads. "
                 "Error bars: standard deviation of the per-trial speedups.");
        not_drawn(p->caption, sizeof p->caption, &nobase, "no O0 inferlab CPU baseline at the same batch and threads");
        st = rp_draw(work, NULL, p);
    }
    free(nobase.s);
    return st;
}

/* ---- sparsity / precision vs accuracy */

static il_status plot_sparsity(sqlite3 *db, const char *work, rp_plot *p) {
    const char *sql = "SELECT s, sp, top1, precision FROM (SELECT " RP_SERIES " s, coalesce(sparsity, 0) sp,"
                      " accuracy_top1 top1, precision, row_number() OVER (PARTITION BY variant, backend ORDER BY id DESC)"
                      " rn FROM runs WHERE accuracy_top1 IS NOT NULL) WHERE rn = 1 AND EXISTS (SELECT 1 FROM runs WHERE"
                      " accuracy_top1 IS NOT NULL AND (precision <> 'fp32' OR sparsity > 0.01)) ORDER BY sp";
    sqlite3_stmt *q;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return rp_db_err(db, "sparsity vs accuracy");
    FILE *d = rp_open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), st;
    int n = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        char lab[240];
        const char *s = (const char *)sqlite3_column_text(q, 0), *prec = (const char *)sqlite3_column_text(q, 3);
        prec = prec ? prec : "?";
        snprintf(lab, sizeof lab, "%s [%s]", s ? s : "?", prec);
        gp_label(d, lab, 34);
        fprintf(d, " %.6g %.6g %d\n", sqlite3_column_double(q, 1), sqlite3_column_double(q, 2),
                !strcmp(prec, "int8") ? 2 : !strcmp(prec, "fp16") ? 1 : 0);
        n++;
    }
    sqlite3_finalize(q);
    fclose(d);
    if (rc != SQLITE_DONE) return rp_db_err(db, "sparsity vs accuracy");
    if (!n) {
        snprintf(p->why, sizeof p->why, "no pruned or reduced-precision run with accuracy in this database yet");
        return IL_OK;
    }
    FILE *b = rp_open_file(work, p->name, "body.gp", &st);
    if (!b) return st;
    fprintf(b, "%sset xlabel 'weight sparsity (fraction of zeros)'\nset ylabel 'top-1 accuracy'\n"
               "set offsets graph 0.05, graph 0.3, graph 0.08, graph 0.08\n"
               "plot '%s/%s.dat' using 2:($4==0 ? $3 : 1/0) with points pt 7 ps 1.3 title 'fp32', \\\n"
               "  '' using 2:($4==1 ? $3 : 1/0) with points pt 5 ps 1.3 title 'fp16', \\\n"
               "  '' using 2:($4==2 ? $3 : 1/0) with points pt 9 ps 1.5 title 'int8', \\\n"
               "  '' using 2:3:1 with labels offset char 1,0.6 left font ',9' notitle\n",
            rp_common, work, p->name);
    fclose(b);
    snprintf(p->caption, sizeof p->caption, "Accuracy of every variant against the sparsity of its weights; the "
                                            "marker shows its precision.");
    return rp_draw(work, NULL, p);
}

typedef il_status (*plot_fn)(sqlite3 *, const char *, rp_plot *);

il_status rp_make_plots(sqlite3 *db, const char *work, const char *plots_dir, rp_plot *plots, int *n) {
    static const struct {
        const char *name, *title;
        plot_fn fn;
    } all[] = {
        {"latency_accuracy", "Latency vs accuracy", plot_latency_accuracy},
        {"throughput_batch", "Throughput vs batch size", plot_throughput},
        {"latency_cdf", "Latency distribution (CDF)", plot_cdf},
        {"layer_breakdown", "Per-layer time breakdown", plot_layers},
        {"speedup", "Speedup over the baseline", plot_speedup},
        {"sparsity_accuracy", "Sparsity and precision vs accuracy", plot_sparsity},
        {"prune_sensitivity", "Pruning sensitivity per layer", rp_plot_sensitivity},
        {"quant_layers", "INT8 error per layer", rp_plot_quant_layers},
    };
    *n = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        rp_plot *p = &plots[(*n)++];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", all[i].name);
        snprintf(p->title, sizeof p->title, "%s", all[i].title);
        il_status st = all[i].fn(db, work, p);
        if (st) return st;
        if (p->svg[0] && plots_dir) {
            /* the copies for papers: render again with the file terminals */
            if ((st = rp_draw(work, plots_dir, p))) return st;
        }
    }
    return IL_OK;
}
