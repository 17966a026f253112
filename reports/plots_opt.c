/*
 * plots_opt.c - the report's plots of the optimization families beyond the runs table: the
 * pruning sensitivity curves that `inferlab prune --scan --db` leaves in table prune_scan, and the
 * INT8 error per layer of `inferlab quantize --analyze --db` (table quant_analysis).
 */
#include "report_int.h"

#include <stdlib.h>
#include <string.h>

/* 1 when the database has a table of that name (the scan's table exists only after a scan). */
static int has_table(sqlite3 *db, const char *name) {
    sqlite3_stmt *q;
    int yes = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", -1, &q, NULL))
        return 0;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    yes = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    return yes;
}

/* One curve per layer: accuracy with that layer alone pruned to each sparsity, the dense model's
 * accuracy as a dashed line. The latest scan's model only (a scan per model and criterion keeps
 * the curves comparable); the caption names what else was scanned. */
il_status rp_plot_sensitivity(sqlite3 *db, const char *work, rp_plot *p) {
    if (!has_table(db, "prune_scan")) {
        snprintf(p->why, sizeof p->why, "no sensitivity scan in this database (`inferlab prune --scan --db DB`)");
        return IL_OK;
    }
    const char *sql =
        "WITH last AS (SELECT model, criterion, created_at FROM prune_scan ORDER BY id DESC LIMIT 1)"
        " SELECT s.layer, s.sparsity, s.accuracy, s.dense_accuracy, s.model, s.criterion,"
        " (SELECT count(DISTINCT model || criterion) FROM prune_scan) FROM prune_scan s, last"
        " WHERE s.model = last.model AND s.criterion = last.criterion AND s.created_at = last.created_at"
        " ORDER BY (SELECT min(id) FROM prune_scan t WHERE t.layer = s.layer AND t.model = s.model), s.sparsity";
    sqlite3_stmt *q;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return rp_db_err(db, "sensitivity");
    FILE *d = rp_open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), st;
    names l = {0};
    char model[160] = "", crit[64] = "";
    double dense = 0, lo = 1, hi = 0;
    int scans = 0, rc, points = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *layer = (const char *)sqlite3_column_text(q, 0);
        if (!l.n || strcmp(l.s[l.n - 1], layer ? layer : "")) {
            if (l.n) fprintf(d, "\n\n");
            if (!rp_names_add(&l, layer)) {
                st = il_error(IL_ERR_OOM, "out of memory");
                break;
            }
        }
        double sp = sqlite3_column_double(q, 1), acc = sqlite3_column_double(q, 2);
        fprintf(d, "%.6g %.6g\n", sp, acc);
        lo = acc < lo ? acc : lo;
        hi = acc > hi ? acc : hi;
        dense = sqlite3_column_double(q, 3);
        snprintf(model, sizeof model, "%s", (const char *)sqlite3_column_text(q, 4));
        snprintf(crit, sizeof crit, "%s", sqlite3_column_text(q, 5) ? (const char *)sqlite3_column_text(q, 5) : "");
        scans = sqlite3_column_int(q, 6);
        points++;
    }
    sqlite3_finalize(q);
    fclose(d);
    if (!st && rc != SQLITE_DONE) st = rp_db_err(db, "sensitivity");
    if (st || !points) {
        free(l.s);
        if (!st) snprintf(p->why, sizeof p->why, "the sensitivity scan table is empty");
        return st;
    }
    FILE *b = rp_open_file(work, p->name, "body.gp", &st);
    if (!b) return free(l.s), st;
    lo = dense < lo ? dense : lo;
    fprintf(b, "%sset xlabel 'sparsity of the one layer pruned'\nset ylabel 'top-1 accuracy'\n"
               "set xrange [0:1]\nset yrange [%.4g:%.4g]\nset arrow from 0,%.6g to 1,%.6g nohead dt 2 lc rgb '#444444'\n",
            rp_common, lo - 0.02, (hi > dense ? hi : dense) + 0.02, dense, dense);
    rp_plot_series(b, work, p, &l, "using 1:2 with linespoints pt 7 ps 0.8 lw 2");
    snprintf(p->caption, sizeof p->caption,
             "%s, %s criterion: each of its %d layers pruned alone at each sparsity, the others dense; the dashed "
             "line is the dense model's accuracy (%.4f). Layers whose curve stays flat can be pruned harder.%s",
             model, crit, l.n, dense, scans > 1 ? " Other scans in this database are not drawn (latest only)." : "");
    free(l.s);
    return rp_draw(work, NULL, p);
}

/* The layers INT8 costs most: SQNR of each quantized tensor between the FP32 and the QDQ model
 * (`inferlab quantize --analyze --db`, table quant_analysis), worst first, the latest analysis. */
il_status rp_plot_quant_layers(sqlite3 *db, const char *work, rp_plot *p) {
    if (!has_table(db, "quant_analysis")) {
        snprintf(p->why, sizeof p->why, "no INT8 error analysis in this database (`inferlab quantize --analyze --db DB`)");
        return IL_OK;
    }
    const char *sql =
        "SELECT tensor, sqnr_db, cosine, model, method FROM quant_analysis"
        " WHERE analysis = (SELECT max(analysis) FROM quant_analysis) ORDER BY sqnr_db IS NULL, sqnr_db";
    sqlite3_stmt *q;
    il_status st = IL_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return rp_db_err(db, "quantization error");
    FILE *d = rp_open_file(work, p->name, "dat", &st);
    if (!d) return sqlite3_finalize(q), st;
    int n = 0, exact = 0, rc;
    char model[160] = "", method[64] = "";
    double worst = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_type(q, 1) == SQLITE_NULL) { /* no error at all: nothing to draw */
            exact++;
            continue;
        }
        if (n < 40) {
            rp_gp_str(d, (const char *)sqlite3_column_text(q, 0));
            fprintf(d, " %.6g %.6g\n", sqlite3_column_double(q, 1), sqlite3_column_double(q, 2));
        }
        if (!n) worst = sqlite3_column_double(q, 1);
        snprintf(model, sizeof model, "%s", (const char *)sqlite3_column_text(q, 3));
        snprintf(method, sizeof method, "%s", sqlite3_column_text(q, 4) ? (const char *)sqlite3_column_text(q, 4) : "");
        n++;
    }
    sqlite3_finalize(q);
    fclose(d);
    if (rc != SQLITE_DONE) return rp_db_err(db, "quantization error");
    if (!n) {
        snprintf(p->why, sizeof p->why, "the INT8 error analysis has no tensor with an error to draw");
        return IL_OK;
    }
    int shown = n < 40 ? n : 40;
    FILE *b = rp_open_file(work, p->name, "body.gp", &st);
    if (!b) return st;
    p->height = 140 + 18 * shown;
    fprintf(b, "%sset style fill solid 0.8 border -1\nset boxwidth 0.7\nunset key\n"
               "set xlabel 'SQNR of the quantized tensor (dB, higher is better)'\nset xrange [0:*]\n"
               "set yrange [%d:-1] reverse\nset ytics font ',9'\n"
               "plot '%s/%s.dat' using ($2*0.5):0:($2*0.5):(0.35):ytic(1) with boxxyerror lc rgb '#d62728'\n",
            rp_common, shown, work, p->name);
    fclose(b);
    char more[64] = "";
    if (shown < n) snprintf(more, sizeof more, "; the %d worst of %d", shown, n);
    snprintf(p->caption, sizeof p->caption,
             "%s, %s calibration: SQNR between the FP32 and the INT8 (QDQ) model at each quantized tensor on the same "
             "inputs, worst first (%.1f dB)%s. Keep the worst in FP32 with `--exclude`, or let `--target-drop` choose.",
             model, method, worst, more);
    if (exact) {
        size_t k = strlen(p->caption);
        snprintf(p->caption + k, sizeof p->caption - k, " %d tensor%s quantized without error not drawn.", exact,
                 exact == 1 ? "" : "s");
    }
    return rp_draw(work, NULL, p);
}
