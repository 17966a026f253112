/*
 * scan.c - the sensitivity scan: each prunable layer pruned alone at a series of sparsities and
 * the model evaluated each time, so that per-layer sparsities can be chosen (the layers that
 * lose little take more) and the report can draw one curve per layer.
 *
 * The scan goes to a table of its own, prune_scan, in the bench results database. The bench
 * store creates the file's schema first (il_store_open): a file that held only prune_scan would
 * not be an inferlab results database to `bench` and `report` afterwards.
 */
#include "prune.h"
#include "bench/bench.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

void il_prune_scan_free(il_prune_scan_point *p, int n) {
    for (int i = 0; p && i < n; i++) free(p[i].layer);
    free(p);
}

il_status il_prune_scan(const il_graph *g, const il_prune_opts *o, const double *levels, int n_levels,
                        il_prune_eval_fn eval, void *ctx, double *dense, il_prune_scan_point **out, int *n_out,
                        void (*progress)(const il_prune_scan_point *p, void *ctx)) {
    *out = NULL, *n_out = 0;
    for (int i = 0; i < n_levels; i++)
        if (!(levels[i] >= 0 && levels[i] < 1))
            return il_error(IL_ERR_INVALID, "scan sparsity %g is outside [0, 1)", levels[i]);
    /* the exclusions resolved (and checked) the way pruning resolves them: a dry run at 0 */
    il_prune_opts dry = {.criterion = o->criterion, .exclude = o->exclude, .n_exclude = o->n_exclude};
    il_prune_report r = {0};
    il_graph *c0 = il_graph_clone(g);
    il_status st = c0 ? il_prune_apply(c0, &dry, &r) : il_error(IL_ERR_OOM, "out of memory cloning the model");
    il_graph_free(c0);
    if (st) return st;
    il_prune_scan_point *p = calloc((size_t)r.n * n_levels + 1, sizeof *p);
    int np = 0;
    if (!p) st = il_error(IL_ERR_OOM, "out of memory for the scan");
    if (!st && (st = eval(g, ctx, dense))) il_error_wrap(st, "evaluating the dense model: ");
    for (int i = 0; i < r.n && !st; i++) {
        const il_prune_layer_stat *ls = &r.layers[i];
        for (int k = 0; k < n_levels && !ls->excluded && !st; k++) {
            il_graph *c = il_graph_clone(g);
            const char *name = ls->name;
            il_prune_opts lo = {.criterion = o->criterion, .scope = IL_PRUNE_LAYERWISE, .sparsity = 0,
                                .layer_names = &name, .layer_sparsity = &levels[k], .n_layer_sparsity = 1};
            if (!c) st = il_error(IL_ERR_OOM, "out of memory cloning the model");
            if (!st) st = il_prune_apply(c, &lo, NULL);
            double acc = 0;
            if (!st && (st = eval(c, ctx, &acc))) il_error_wrap(st, "layer '%s' at %g: ", name, levels[k]);
            il_graph_free(c);
            if (st) break;
            p[np] = (il_prune_scan_point){strdup(name), ls->op, ls->numel, levels[k], acc};
            if (progress) progress(&p[np], ctx);
            np++;
        }
    }
    il_prune_report_free(&r);
    if (st) {
        il_prune_scan_free(p, np);
        return st;
    }
    *out = p, *n_out = np;
    return IL_OK;
}

il_status il_prune_scan_pick(const il_prune_scan_point *p, int n, double dense, double max_drop, const char ***names,
                             double **sparsity, int *n_layers) {
    *names = calloc((size_t)n + 1, sizeof **names);
    *sparsity = calloc((size_t)n + 1, sizeof **sparsity);
    *n_layers = 0;
    if (!*names || !*sparsity) {
        free(*names), free(*sparsity);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < *n_layers && strcmp((*names)[k], p[i].layer)) k++;
        if (k == *n_layers) (*names)[(*n_layers)++] = p[i].layer;
        if (dense - p[i].accuracy <= max_drop && p[i].sparsity > (*sparsity)[k]) (*sparsity)[k] = p[i].sparsity;
    }
    return IL_OK;
}

static const char *const create_sql =
    "CREATE TABLE IF NOT EXISTS prune_scan(id INTEGER PRIMARY KEY, scan INTEGER NOT NULL, created_at TEXT NOT NULL,"
    " model TEXT NOT NULL, model_sha256 TEXT, layer TEXT NOT NULL, op TEXT, numel INTEGER, criterion TEXT,"
    " sparsity REAL NOT NULL, accuracy REAL NOT NULL, dense_accuracy REAL, data TEXT, samples INTEGER)";

typedef struct {
    const char *model, *sha, *criterion, *data;
    int64_t samples;
    double dense;
    const il_prune_scan_point *p;
} scan_rows;

static void bind_scan_row(void *stmt, int i, void *ctx) {
    sqlite3_stmt *q = stmt;
    const scan_rows *r = ctx;
    sqlite3_bind_text(q, 1, r->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, r->sha, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, r->p[i].layer, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, r->p[i].op, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, r->p[i].numel);
    sqlite3_bind_text(q, 6, r->criterion ? r->criterion : "magnitude", -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 7, r->p[i].sparsity);
    sqlite3_bind_double(q, 8, r->p[i].accuracy);
    sqlite3_bind_double(q, 9, r->dense);
    sqlite3_bind_text(q, 10, r->data, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 11, r->samples);
    sqlite3_bind_int(q, 12, i == 0); /* the first row opens the scan, the rest join it */
}

il_status il_prune_scan_save(const char *db_path, const char *model, const char *model_sha256, const char *criterion,
                             const char *data, int64_t samples, double dense, const il_prune_scan_point *p, int n) {
    scan_rows r = {model, model_sha256, criterion, data, samples, dense, p};
    /* one number per scan, so that a reader takes one scan's curves when a file holds several */
    return il_store_append_rows(db_path, "the scan to table prune_scan", create_sql,
                                "INSERT INTO prune_scan(scan, created_at, model, model_sha256, layer, op, numel,"
                                " criterion, sparsity, accuracy, dense_accuracy, data, samples) VALUES"
                                " ((SELECT coalesce(max(scan), 0) + ?12 FROM prune_scan),"
                                " strftime('%Y-%m-%dT%H:%M:%SZ','now'), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                n, bind_scan_row, &r);
}
