/*
 * plots.c - the report's plots, drawn by gnuplot (run as a subprocess on data files and a
 * script written here). Each plot reads its data from the database with one query, picks the
 * latest run per series, writes NAME.dat and NAME.body.gp, and gnuplot renders the body as SVG
 * for the page and, with --plots, as PNG, SVG and PDF for papers.
 */
#include "report_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SERIES 12

static il_status db_err(sqlite3 *db, const char *what) {
    return il_error(IL_ERR_IO, "%s: %s", what, sqlite3_errmsg(db));
}

/* A label safe inside a gnuplot double-quoted string. */
void rp_gp_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) fputc(*s == '"' || *s == '\\' ? '\'' : *s, f);
    fputc('"', f);
}

il_status rp_run_gnuplot(const char *script) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return il_error(IL_ERR_INTERNAL, "fork: %s", strerror(errno));
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        fprintf(stderr, "inferlab report: cannot run gnuplot: %s (make deps installs gnuplot-nox)\n", strerror(errno));
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(ws) || WEXITSTATUS(ws))
        return il_error(IL_ERR_IO, "gnuplot failed on %s (status %d; its messages are above)", script,
                        WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    return IL_OK;
}

/* Render work/NAME.body.gp as SVG into work/NAME.svg (and PNG/SVG/PDF into plots_dir). */
static il_status draw(const char *work, const char *plots_dir, rp_plot *p) {
    char script[1100];
    snprintf(script, sizeof script, "%s/%s.gp", work, p->name);
    if (strchr(work, '\'') || (plots_dir && strchr(plots_dir, '\'')))
        return il_error(IL_ERR_INVALID, "report: folder names with a single quote are not supported");
    FILE *f = fopen(script, "w");
    if (!f) return il_error(IL_ERR_IO, "%s: %s", script, strerror(errno));
    fprintf(f, "set terminal svg size 860,480 dynamic font 'Helvetica,12' background rgb 'white'\n"
               "set output '%s/%s.svg'\nload '%s/%s.body.gp'\nunset output\n", work, p->name, work, p->name);
    if (plots_dir)
        fprintf(f, "set terminal pngcairo size 1290,720 font 'Helvetica,16'\nset output '%s/%s.png'\n"
                   "load '%s/%s.body.gp'\nunset output\n"
                   "set terminal svg size 860,480 font 'Helvetica,12' background rgb 'white'\nset output '%s/%s.svg'\n"
                   "load '%s/%s.body.gp'\nunset output\n"
                   "set terminal pdfcairo size 6.5in,3.6in font 'Helvetica,9'\nset output '%s/%s.pdf'\n"
                   "load '%s/%s.body.gp'\nunset output\n",
                plots_dir, p->name, work, p->name, plots_dir, p->name, work, p->name, plots_dir, p->name, work,
                p->name);
    if (fclose(f)) return il_error(IL_ERR_IO, "%s: write error", script);
    il_status st = rp_run_gnuplot(script);
    if (!st) snprintf(p->svg, sizeof p->svg, "%s/%s.svg", work, p->name);
    return st;
}

static FILE *open_file(const char *work, const char *name, const char *ext, il_status *st) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s.%s", work, name, ext);
    FILE *f = fopen(path, "w");
    if (!f) *st = il_error(IL_ERR_IO, "%s: %s", path, strerror(errno));
    return f;
}

static const char *common =
    "set encoding utf8\nset termoption noenhanced\nset grid lc rgb '#dddddd'\nset key outside right top\n"
    "set border lc rgb '#444444'\n";

/* ---- latency vs accuracy, Pareto front marked */

static il_status plot_latency_accuracy(sqlite3 *db, const char *work, rp_plot *p) {
    const char *sql = "SELECT s, p50, top1 FROM (SELECT " RP_SERIES " s, lat_p50_ms p50, accuracy_top1 top1,"
                      " row_number() OVER (PARTITION BY variant, backend ORDER BY batch, id DESC) rn FROM runs"
                      " WHERE scenario = 'single-stream' AND accuracy_top1 IS NOT NULL AND lat_p50_ms IS NOT NULL)"
                      " WHERE rn = 1 ORDER BY p50, top1 DESC";
    sqlite3_stmt *q;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return db_err(db, "latency vs accuracy");
    FILE *d = open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), st;
    int n = 0, nf = 0;
    double best = -INFINITY, lo = INFINITY, hi = 0, amin = INFINITY, amax = -INFINITY, fx[64], fy[64];
    fprintf(d, "# series p50_ms top1 on_front\n");
    while (sqlite3_step(q) == SQLITE_ROW) {
        double acc = sqlite3_column_double(q, 2);
        /* sorted by latency: a point is on the front when no faster point is as accurate */
        int front = acc > best;
        if (front) best = acc;
        if (front && nf < 64) fx[nf] = sqlite3_column_double(q, 1), fy[nf++] = acc;
        rp_gp_str(d, (const char *)sqlite3_column_text(q, 0));
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
    if (!n) {
        snprintf(p->why, sizeof p->why, "no single-stream run with accuracy (bench a model that has a labelled set)");
        return IL_OK;
    }
    FILE *b = open_file(work, p->name, "body.gp", &st);
    if (!b) return st;
    /* one accuracy for all (an untrained or single model): give the axis a range of its own */
    if (amax - amin < 1e-9) fprintf(b, "set yrange [%.6g:%.6g]\n", amin - 0.05, amax + 0.05);
    /* latencies often span decades (an MLP beside a ResNet): a log axis keeps both readable */
    fprintf(b, "%sset xlabel 'p50 latency per query (ms), single-stream%s'\nset ylabel 'top-1 accuracy'\n%s"
               "set offsets graph 0.05, graph 0.25, graph 0.08, graph 0.08\n"
               "plot '%s/%s.dat' index 1 using 2:3 with steps lw 2 lc rgb '#d62728' title 'Pareto front', \\\n"
               "  '' index 0 using 2:3 with points pt 7 ps 1.3 lc rgb '#1f77b4' title 'variants', \\\n"
               "  '' index 0 using 2:3:1 with labels offset char 1,0.6 left font ',9' notitle\n",
            common, hi > 20 * lo ? ", log scale" : "", hi > 20 * lo ? "set logscale x\n" : "", work, p->name);

    fclose(b);
    snprintf(p->caption, sizeof p->caption,
             "%d variant%s; the red steps join the Pareto-optimal ones (no faster variant is as accurate). "
             "Lowest batch measured per variant.", n, n == 1 ? "" : "s");
    return draw(work, NULL, p);
}

/* ---- throughput vs batch */

static il_status plot_throughput(sqlite3 *db, const char *work, rp_plot *p) {
    const char *sql = "SELECT s, batch, tp, sd, sc FROM (SELECT " RP_SERIES " s, batch, throughput_per_s tp,"
                      " throughput_stddev sd, scenario sc, row_number() OVER (PARTITION BY variant, backend, batch"
                      " ORDER BY id DESC) rn FROM runs WHERE throughput_per_s IS NOT NULL AND scenario ="
                      " (CASE WHEN EXISTS (SELECT 1 FROM runs WHERE scenario = 'offline') THEN 'offline'"
                      " ELSE 'single-stream' END)) WHERE rn = 1 ORDER BY s, batch";
    sqlite3_stmt *q;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return db_err(db, "throughput vs batch");
    FILE *d = open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), st;
    char series[MAX_SERIES][160], last[160] = "", scen[32] = "";
    int ns = 0, rows = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(q, 0);
        if (strcmp(s, last)) {
            if (ns == MAX_SERIES) break;
            if (ns) fprintf(d, "\n\n");
            snprintf(series[ns++], sizeof series[0], "%s", s);
            snprintf(last, sizeof last, "%s", s);
        }
        snprintf(scen, sizeof scen, "%s", (const char *)sqlite3_column_text(q, 4));
        double sd = sqlite3_column_type(q, 3) == SQLITE_NULL ? 0 : sqlite3_column_double(q, 3);
        fprintf(d, "%d %.6g %.6g\n", sqlite3_column_int(q, 1), sqlite3_column_double(q, 2), sd);
        rows++;
    }
    sqlite3_finalize(q);
    fclose(d);
    if (!rows) {
        snprintf(p->why, sizeof p->why, "no run with a throughput figure");
        return IL_OK;
    }
    FILE *b = open_file(work, p->name, "body.gp", &st);
    if (!b) return st;
    fprintf(b, "%sset xlabel 'batch size'\nset ylabel 'samples per second (%s)'\nset logscale x 2\n"
               "set offsets graph 0.05, graph 0.05, graph 0.1, graph 0.05\nset yrange [0:*]\nplot ",
            common, scen);
    for (int i = 0; i < ns; i++) {
        fprintf(b, "%s'%s/%s.dat' index %d using 1:2:3 with yerrorlines lw 2 pt 7 title ", i ? ", \\\n  " : "", work,
                p->name, i);
        rp_gp_str(b, series[i]);
    }
    fprintf(b, "\n");
    fclose(b);
    snprintf(p->caption, sizeof p->caption,
             "%s scenario; error bars are the standard deviation over repeated trials.", scen);
    return draw(work, NULL, p);
}

/* ---- latency CDF per variant, from the raw per-query latencies */

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static il_status plot_cdf(sqlite3 *db, const char *work, rp_plot *p) {
    const char *sql = "SELECT id, s FROM (SELECT id, " RP_SERIES " s, lat_p50_ms p50, row_number() OVER (PARTITION BY"
                      " variant, backend ORDER BY batch, id DESC) rn FROM runs WHERE scenario = 'single-stream')"
                      " WHERE rn = 1 ORDER BY p50 LIMIT 12";
    sqlite3_stmt *q, *l;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return db_err(db, "latency CDF");
    if (sqlite3_prepare_v2(db, "SELECT ms FROM latencies WHERE run_id = ?1", -1, &l, NULL) != SQLITE_OK) {
        sqlite3_finalize(q);
        return db_err(db, "latency CDF");
    }
    FILE *d = open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), sqlite3_finalize(l), st;
    char series[MAX_SERIES][160];
    int ns = 0;
    double lo = INFINITY, hi = 0;
    while (ns < MAX_SERIES && sqlite3_step(q) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        size_t cap = 1024, n = 0;
        double *v = malloc(cap * sizeof *v);
        sqlite3_bind_int64(l, 1, id);
        while (v && sqlite3_step(l) == SQLITE_ROW) {
            if (n == cap) {
                double *nv = realloc(v, (cap *= 2) * sizeof *v);
                if (!nv) free(v);
                v = nv;
                if (!v) break;
            }
            v[n++] = sqlite3_column_double(l, 0);
        }
        sqlite3_reset(l);
        if (!v || !n) {
            free(v);
            continue;
        }
        qsort(v, n, sizeof *v, cmp_d);
        if (ns) fprintf(d, "\n\n");
        for (size_t i = 0; i < n; i++) fprintf(d, "%.6g %.6g\n", v[i], (double)(i + 1) / (double)n);
        lo = fmin(lo, v[0]);
        hi = fmax(hi, v[n - 1]);
        free(v);
        snprintf(series[ns++], sizeof series[0], "%s", (const char *)sqlite3_column_text(q, 1));
    }
    sqlite3_finalize(q);
    sqlite3_finalize(l);
    fclose(d);
    if (!ns) {
        snprintf(p->why, sizeof p->why, "no single-stream run with raw latencies");
        return IL_OK;
    }
    FILE *b = open_file(work, p->name, "body.gp", &st);
    if (!b) return st;
    fprintf(b, "%sset xlabel 'latency per query (ms)%s'\nset ylabel 'fraction of queries'\nset yrange [0:1.02]\n%s"
               "plot ",
            common, hi > 20 * lo ? ", log scale" : "", hi > 20 * lo ? "set logscale x\n" : "");
    for (int i = 0; i < ns; i++) {
        fprintf(b, "%s'%s/%s.dat' index %d using 1:2 with steps lw 2 title ", i ? ", \\\n  " : "", work, p->name, i);
        rp_gp_str(b, series[i]);
    }
    fprintf(b, "\n");
    fclose(b);
    snprintf(p->caption, sizeof p->caption,
             "Every measured query of every trial (warm-up excluded), single-stream, lowest batch per variant.");
    return draw(work, NULL, p);
}

/* ---- per-layer time breakdown (runs with --profile), by operator type */

static il_status plot_layers(sqlite3 *db, const char *work, rp_plot *p) {
    const char *runs_sql = "SELECT id, s FROM (SELECT id, " RP_SERIES " s, row_number() OVER (PARTITION BY variant,"
                           " backend ORDER BY batch, id DESC) rn FROM runs WHERE id IN (SELECT run_id FROM node_times))"
                           " WHERE rn = 1 ORDER BY s LIMIT 12";
    const char *ops_sql = "SELECT op_type FROM node_times GROUP BY op_type ORDER BY sum(ms) DESC";
    sqlite3_stmt *q;
    il_status st = IL_OK;
    int64_t ids[MAX_SERIES];
    char series[MAX_SERIES][160], ops[8][48];
    int ns = 0, nops = 0, more_ops = 0;
    if (sqlite3_prepare_v2(db, runs_sql, -1, &q, NULL) != SQLITE_OK) return db_err(db, "layer breakdown");
    while (ns < MAX_SERIES && sqlite3_step(q) == SQLITE_ROW) {
        ids[ns] = sqlite3_column_int64(q, 0);
        snprintf(series[ns++], sizeof series[0], "%s", (const char *)sqlite3_column_text(q, 1));
    }
    sqlite3_finalize(q);
    if (!ns) {
        snprintf(p->why, sizeof p->why, "no profiled run (bench with --profile)");
        return IL_OK;
    }
    if (sqlite3_prepare_v2(db, ops_sql, -1, &q, NULL) != SQLITE_OK) return db_err(db, "layer breakdown");
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (nops < 7) snprintf(ops[nops++], sizeof ops[0], "%s", (const char *)sqlite3_column_text(q, 0));
        else more_ops = 1;
    }
    sqlite3_finalize(q);
    FILE *d = open_file(work, p->name, "dat", &st);
    if (!d) return st;
    fprintf(d, "variant");
    for (int k = 0; k < nops; k++) fprintf(d, " \"%s\"", ops[k]);
    if (more_ops) fprintf(d, " other");
    fprintf(d, "\n");
    if (sqlite3_prepare_v2(db, "SELECT op_type, sum(ms) FROM node_times WHERE run_id = ?1 GROUP BY op_type", -1, &q,
                           NULL) != SQLITE_OK) {
        fclose(d);
        return db_err(db, "layer breakdown");
    }
    for (int i = 0; i < ns; i++) {
        double v[8] = {0};
        sqlite3_bind_int64(q, 1, ids[i]);
        while (sqlite3_step(q) == SQLITE_ROW) {
            int k = 0;
            while (k < nops && strcmp(ops[k], (const char *)sqlite3_column_text(q, 0))) k++;
            v[k < nops ? k : 7] += sqlite3_column_double(q, 1);
        }
        sqlite3_reset(q);
        rp_gp_str(d, series[i]);
        for (int k = 0; k < nops; k++) fprintf(d, " %.6g", v[k]);
        if (more_ops) fprintf(d, " %.6g", v[7]);
        fprintf(d, "\n");
    }
    sqlite3_finalize(q);
    fclose(d);
    FILE *b = open_file(work, p->name, "body.gp", &st);
    if (!b) return st;
    fprintf(b, "%sset ylabel 'time per engine call (ms)'\nset style data histograms\n"
               "set style histogram rowstacked\nset style fill solid 0.85 border -1\nset boxwidth 0.6\n"
               "set xtics rotate by -25 font ',9'\nset yrange [0:*]\n"
               "plot for [i=2:%d] '%s/%s.dat' using i:xtic(1) title columnheader(i)\n",
            common, nops + 1 + more_ops, work, p->name);
    fclose(b);
    snprintf(p->caption, sizeof p->caption,
             "Time per operator type from a separate profiled pass (--profile), so profiling does not perturb the "
             "latency figures.");
    return draw(work, NULL, p);
}

/* ---- speedup over the baseline (inferlab, CPU, O0 of the same parent model), with spread */

static il_status plot_speedup(sqlite3 *db, const char *work, rp_plot *p) {
    const char *sql =
        "SELECT s, id, base FROM (SELECT " RP_SERIES " s, r.id id, (SELECT max(b.id) FROM runs b WHERE b.engine ="
        " 'inferlab' AND b.backend = 'cpu' AND (b.pipeline = 'O0' OR b.pipeline IS NULL) AND b.scenario = r.scenario"
        " AND b.batch = r.batch AND b.threads = r.threads AND b.model_sha256 = coalesce(r.parent_sha256,"
        " r.model_sha256)) base, row_number() OVER (PARTITION BY variant, backend ORDER BY batch, id DESC) rn"
        " FROM runs r WHERE scenario = 'single-stream') WHERE rn = 1 AND base IS NOT NULL ORDER BY s LIMIT 12";
    sqlite3_stmt *q, *t;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return db_err(db, "speedup");
    if (sqlite3_prepare_v2(db, "SELECT lat_p50_ms FROM trials WHERE run_id = ?1 AND lat_p50_ms > 0", -1, &t, NULL)) {
        sqlite3_finalize(q);
        return db_err(db, "speedup");
    }
    FILE *d = open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), sqlite3_finalize(t), st;
    int n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        double base = 0, x[256], sp[256];
        int nb = 0, nx = 0;
        sqlite3_bind_int64(t, 1, sqlite3_column_int64(q, 2));
        while (sqlite3_step(t) == SQLITE_ROW) base += sqlite3_column_double(t, 0), nb++;
        sqlite3_reset(t);
        sqlite3_bind_int64(t, 1, sqlite3_column_int64(q, 1));
        while (nx < 256 && sqlite3_step(t) == SQLITE_ROW) x[nx++] = sqlite3_column_double(t, 0);
        sqlite3_reset(t);
        if (!nb || !nx) continue;
        base /= nb;
        /* per-trial speedups against the baseline's mean p50: their spread is the run's */
        double m = 0, ss = 0;
        for (int i = 0; i < nx; i++) sp[i] = base / x[i], m += sp[i];
        m /= nx;
        for (int i = 0; i < nx; i++) ss += (sp[i] - m) * (sp[i] - m);
        rp_gp_str(d, (const char *)sqlite3_column_text(q, 0));
        fprintf(d, " %.6g %.6g\n", m, nx > 1 ? sqrt(ss / (nx - 1)) : 0);
        n++;
    }
    sqlite3_finalize(q);
    sqlite3_finalize(t);
    fclose(d);
    if (!n) {
        snprintf(p->why, sizeof p->why, "no single-stream run with an O0 inferlab CPU baseline of the same model");
        return IL_OK;
    }
    FILE *b = open_file(work, p->name, "body.gp", &st);
    if (!b) return st;
    fprintf(b, "%sset ylabel 'speedup over baseline (p50)'\nset style fill solid 0.7 border -1\nset boxwidth 0.6\n"
               "set xtics rotate by -25 font ',9'\nset yrange [0:*]\nset xrange [-0.6:%d.6]\nunset key\n"
               "set arrow from -0.6,1 to %d.6,1 nohead dt 2 lc rgb '#888888'\n"
               "plot '%s/%s.dat' using 0:2:xtic(1) with boxes lc rgb '#2ca02c', '' using 0:2:3 with yerrorbars "
               "pt 0 lc rgb 'black'\n",
            common, n - 1, n - 1, work, p->name);
    fclose(b);
    snprintf(p->caption, sizeof p->caption,
             "Baseline: inferlab, CPU, pipeline O0 of the same parent model at the same batch and threads. "
             "Error bars: standard deviation of the per-trial speedups.");
    return draw(work, NULL, p);
}

/* ---- sparsity / precision vs accuracy */

static il_status plot_sparsity(sqlite3 *db, const char *work, rp_plot *p) {
    const char *sql = "SELECT s, sp, top1, precision FROM (SELECT " RP_SERIES " s, coalesce(sparsity, 0) sp,"
                      " accuracy_top1 top1, precision, row_number() OVER (PARTITION BY variant, backend ORDER BY id DESC)"
                      " rn FROM runs WHERE accuracy_top1 IS NOT NULL) WHERE rn = 1 AND EXISTS (SELECT 1 FROM runs WHERE"
                      " accuracy_top1 IS NOT NULL AND (precision <> 'fp32' OR sparsity > 0.01)) ORDER BY sp";
    sqlite3_stmt *q;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return db_err(db, "sparsity vs accuracy");
    FILE *d = open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), st;
    int n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        char lab[240];
        snprintf(lab, sizeof lab, "%s [%s]", (const char *)sqlite3_column_text(q, 0),
                 (const char *)sqlite3_column_text(q, 3));
        rp_gp_str(d, lab);
        const char *prec = (const char *)sqlite3_column_text(q, 3);
        fprintf(d, " %.6g %.6g %d\n", sqlite3_column_double(q, 1), sqlite3_column_double(q, 2),
                !strcmp(prec, "int8") ? 2 : !strcmp(prec, "fp16") ? 1 : 0);
        n++;
    }
    sqlite3_finalize(q);
    fclose(d);
    if (!n) {
        snprintf(p->why, sizeof p->why, "no pruned or reduced-precision run with accuracy in this database yet");
        return IL_OK;
    }
    FILE *b = open_file(work, p->name, "body.gp", &st);
    if (!b) return st;
    fprintf(b, "%sset xlabel 'weight sparsity (fraction of zeros)'\nset ylabel 'top-1 accuracy'\n"
               "set offsets graph 0.05, graph 0.3, graph 0.08, graph 0.08\n"
               "plot '%s/%s.dat' using 2:($4==0 ? $3 : 1/0) with points pt 7 ps 1.3 title 'fp32', \\\n"
               "  '' using 2:($4==1 ? $3 : 1/0) with points pt 5 ps 1.3 title 'fp16', \\\n"
               "  '' using 2:($4==2 ? $3 : 1/0) with points pt 9 ps 1.5 title 'int8', \\\n"
               "  '' using 2:3:1 with labels offset char 1,0.6 left font ',9' notitle\n",
            common, work, p->name);
    fclose(b);
    snprintf(p->caption, sizeof p->caption, "Accuracy of every variant against the sparsity of its weights; the "
                                            "marker shows its precision.");
    return draw(work, NULL, p);
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
            if ((st = draw(work, plots_dir, p))) return st;
        }
    }
    return IL_OK;
}
