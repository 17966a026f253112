/*
 * report.c - `inferlab report --db results.db -o DIR [--plots DIR] [--title T] [--no-pdf]`
 */
#include "cli.h"

#include <string.h>

#include "../reports/reports.h"

int cmd_report(int argc, char **argv) {
    il_report_opts o = {.db = "results.db"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: inferlab report [--db results.db] -o DIR [--plots DIR] [--title TEXT] [--no-pdf]\n"
                   "  writes DIR/index.html (self-contained: inline SVG plots, tables, provenance) and\n"
                   "  DIR/report.pdf (the same page printed by headless Chromium); gnuplot data and scripts go\n"
                   "  to DIR/gnuplot. --plots DIR also writes every plot as PNG, SVG and PDF.\n");
            return 0;
        }
        const char **slot = !strcmp(a, "--db")                       ? &o.db
                            : !strcmp(a, "-o") || !strcmp(a, "--out") ? &o.out_dir
                            : !strcmp(a, "--plots")                   ? &o.plots_dir
                            : !strcmp(a, "--title")                   ? &o.title
                                                                      : NULL;
        if (slot) {
            if (!val) { fprintf(stderr, "inferlab report: %s needs a value\n", a); return 2; }
            *slot = val;
            i++;
        } else if (!strcmp(a, "--no-pdf")) o.no_pdf = 1;
        else {
            fprintf(stderr, "inferlab report: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!o.out_dir) {
        fprintf(stderr, "usage: inferlab report [--db results.db] -o DIR [--plots DIR] (see --help)\n");
        return 2;
    }
    il_status st = il_report_write(&o);
    return st ? cli_fail(st, "report") : 0;
}
