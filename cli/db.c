/*
 * db.c - `inferlab db list | show RUN | export --csv [--table T] | merge OTHER.db... [--db PATH]`
 */
#include "cli.h"

#include <string.h>

#include "../bench/bench.h"

static void help(void) {
    printf("usage: inferlab db [--db PATH] list\n"
           "       inferlab db [--db PATH] show RUN          (a run id, or a prefix of its uuid)\n"
           "       inferlab db [--db PATH] export --csv [--table results|runs|trials|latencies|node_times|provenance]\n"
           "       inferlab db [--db PATH] merge OTHER.db... (runs already present, by uuid, are skipped)\n"
           "  --db PATH   the results database (default results.db)\n"
           "list, show and export only read: the file is never created, migrated or changed; merge checks\n"
           "every OTHER.db first and creates --db only when they all are inferlab databases.\n");
}

int cmd_db(int argc, char **argv) {
    const char *db = "results.db", *sub = NULL, *table = "results", *args[64];
    int nargs = 0, csv = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(); return 0; }
        if (!strcmp(a, "--db") || !strcmp(a, "--table")) {
            if (i + 1 >= argc) { fprintf(stderr, "inferlab db: %s needs a value\n", a); return 2; }
            if (a[2] == 'd') db = argv[++i];
            else table = argv[++i];
        } else if (!strcmp(a, "--csv")) csv = 1;
        else if (a[0] == '-') { fprintf(stderr, "inferlab db: unknown option '%s'\n", a); return 2; }
        else if (!sub) sub = a;
        else if (nargs < 64) args[nargs++] = a;
    }
    if (!sub) { help(); return 2; }
    int known = !strcmp(sub, "list") || !strcmp(sub, "show") || !strcmp(sub, "export") || !strcmp(sub, "merge");
    if (!known) { fprintf(stderr, "inferlab db: unknown subcommand '%s' (list, show, export, merge)\n", sub); return 2; }
    if (!strcmp(sub, "show") && nargs != 1) { fprintf(stderr, "inferlab db show: give one RUN\n"); return 2; }
    if (!strcmp(sub, "merge") && nargs < 1) { fprintf(stderr, "inferlab db merge: give OTHER.db\n"); return 2; }
    if (!strcmp(sub, "export") && !csv) { fprintf(stderr, "inferlab db export: only --csv is supported\n"); return 2; }
    il_store *s;
    il_status st = IL_OK;
    /* Only merge writes, into --db (created when absent, but only once every source checked
     * out, so a typo creates nothing); the other commands read and never create or migrate. */
    for (int i = 0; !strcmp(sub, "merge") && i < nargs && !st; i++) {
        if (!(st = il_store_open_readonly(args[i], &s))) il_store_close(s);
        else il_error_wrap(st, "merge: ");
    }
    if (!st) st = !strcmp(sub, "merge") ? il_store_open(db, &s) : il_store_open_readonly(db, &s);
    if (st) return cli_fail(st, NULL);
    if (!strcmp(sub, "list")) st = il_store_list(s, stdout);
    else if (!strcmp(sub, "show")) st = il_store_show(s, args[0], stdout);
    else if (!strcmp(sub, "export")) st = il_store_export_csv(s, table, stdout);
    else
        for (int i = 0; i < nargs && !st; i++) {
            int added, skipped;
            if (!(st = il_store_merge(s, args[i], &added, &skipped)))
                printf("merged %s: %d run%s added, %d already present\n", args[i], added, added == 1 ? "" : "s",
                       skipped);
        }
    il_store_close(s);
    return st ? cli_fail(st, NULL) : 0;
}
