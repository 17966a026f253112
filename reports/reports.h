/*
 * reports.h - reports from a results database: gnuplot plots (latency vs accuracy with the
 * Pareto front, throughput vs batch, latency CDFs, per-layer time, speedup over the baseline,
 * sparsity/precision vs accuracy, and a confusion matrix for `inferlab eval`), a self-contained HTML page (inline SVG, tables, provenance)
 * and the same page as PDF (headless Chromium's print-to-pdf).
 *
 * Every figure drawn is read from the database; a plot whose data is absent is left out with a
 * note saying what run would fill it.
 *
 * Ownership: nothing is returned to free; files are written under the given folders.
 * External tools: gnuplot (Debian gnuplot-nox) and, for the PDF, chromium.
 */
#ifndef IL_REPORTS_H
#define IL_REPORTS_H

#include "../engine/engine.h"

typedef struct il_report_opts {
    const char *db;        /* results database */
    const char *out_dir;   /* index.html (+ report.pdf) go here */
    const char *plots_dir; /* also write every plot as PNG, SVG and PDF here (NULL: no) */
    const char *title;     /* page title (NULL: "inferlab benchmark report") */
    int no_pdf;            /* skip report.pdf */
    int quiet;
} il_report_opts;

il_status il_report_write(const il_report_opts *o);

/* The confusion matrix conf[k*k] (rows: true class, columns: predicted) as a heat map, colour
 * the fraction of the true class, each cell labelled with its count. labels: "a,b,c" class
 * names (NULL or short: "class i"). out's extension picks the format: .svg, .png or .pdf. */
il_status il_plot_confusion(const int64_t *conf, int k, const char *labels, const char *title, const char *out);

/* The headless Chromium command line used for the PDF (and by the tests to check the page). */
const char *il_report_chromium(void);

#endif
