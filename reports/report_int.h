/*
 * report_int.h - shared between reports/plots.c and reports/html.c (not a public interface).
 */
#ifndef IL_REPORT_INT_H
#define IL_REPORT_INT_H

#include <sqlite3.h>
#include <stdio.h>

#include "reports.h"

#define RP_MAX_PLOTS 10

typedef struct rp_plot {
    char name[32];      /* file stem: latency_accuracy, ... */
    char title[128];
    char caption[1024];
    char svg[1100];     /* path of the SVG drawn, "" when skipped */
    char why[512];      /* why it was skipped */
    int height;         /* SVG height in px (0: 480); taller to hold a long legend below */
} rp_plot;

/* Draw every plot the database has data for. work: folder for data files and scripts;
 * plots_dir (may be NULL): PNG, SVG and PDF copies. */
il_status rp_make_plots(sqlite3 *db, const char *work, const char *plots_dir, rp_plot *plots, int *n);

/* Helpers of the plot files (plots.c, plots_opt.c). */
typedef struct names { /* series names of one plot, as many as the database has (no silent cap) */
    char (*s)[160];
    int n, cap;
} names;
int rp_names_add(names *l, const char *s);
/* The plot command of a line plot, one data block (index i) per series drawn `how`, each in its
 * own style, the legend below; closes b. */
void rp_plot_series(FILE *b, const char *work, rp_plot *p, const names *l, const char *how);
/* Render work/NAME.body.gp as SVG into work/NAME.svg (and PNG/SVG/PDF into plots_dir). */
il_status rp_draw(const char *work, const char *plots_dir, rp_plot *p);
FILE *rp_open_file(const char *work, const char *name, const char *ext, il_status *st);
il_status rp_db_err(sqlite3 *db, const char *what);
extern const char *const rp_common; /* gnuplot settings every plot starts with */
/* The plots of the optimization families (plots_opt.c): pruning sensitivity curves, */
il_status rp_plot_sensitivity(sqlite3 *db, const char *work, rp_plot *p);
/* ... and the INT8 error per layer that `inferlab quantize --analyze --db` leaves in quant_analysis. */
il_status rp_plot_quant_layers(sqlite3 *db, const char *work, rp_plot *p);

/* gnuplot on a script file (a child process; its messages go to stderr). */
il_status rp_run_gnuplot(const char *script);
/* s as a gnuplot double-quoted string (quotes and backslashes replaced). */
void rp_gp_str(FILE *f, const char *s);

/* The series name of a run in plots and tables. */
#define RP_SERIES "(variant || CASE WHEN backend <> 'cpu' THEN ' (' || backend || ')' ELSE '' END)"
/* The same, marked when the run is INVALID (its trials missed the minimums or disagreed): the
 * label of the point, curve or bar drawn from that run. */
#define RP_SERIES_MARKED "(" RP_SERIES " || CASE WHEN valid = 0 THEN ' INVALID' ELSE '' END)"

#endif
