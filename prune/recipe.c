/*
 * recipe.c - the pruning recipe a pruned model carries in its metadata (key inferlab.prune),
 * one JSON object, so that bench records the sparsity and how it was reached with each
 * variant, and a reader of the ONNX file can tell how it was made:
 *
 *   {"method":"magnitude","criterion":"magnitude","scope":"layer","sparsity":0.5,"nm":null,
 *    "achieved":0.4987,"pruned_weights":143360,"prunable_weights":287552,
 *    "layers":{"block1.1.conv":{"op":"Conv","numel":288,"asked":0.5,"achieved":0.5}, ...},
 *    "excluded":["fc"],"skipped":{"block1.1.conv":"reduction length 9 is not a multiple of 4"},
 *    "schedule":"oneshot","gradual_steps":0,"finetune_epochs":0,"data":null,"teacher":null,"lr":null,
 *    "augment":null}
 *
 * "achieved" counts exact zeros over every prunable layer (excluded ones included), so it is
 * what a sparse kernel would see; per layer, "asked" is 0 for a layer left dense.
 */
#include "prune.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void str(FILE *f, const char *s) {
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static const char *scope_name(il_prune_scope s) {
    return s == IL_PRUNE_GLOBAL ? "global" : s == IL_PRUNE_NM ? "nm" : "layer";
}

char *il_prune_recipe_json(const il_prune_opts *o, const il_prune_report *r, const il_prune_recipe *rc) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputs("{\"method\":", f);
    str(f, rc && rc->method ? rc->method : scope_name(o->scope));
    fputs(",\"criterion\":", f);
    str(f, o->criterion ? o->criterion : "magnitude");
    fprintf(f, ",\"scope\":\"%s\",\"sparsity\":", scope_name(o->scope));
    if (o->scope == IL_PRUNE_NM) fprintf(f, "%.6g,\"nm\":\"%d:%d\"", 1.0 - (double)o->nm_n / o->nm_m, o->nm_n, o->nm_m);
    else if (rc && rc->method && !strcmp(rc->method, "scan")) fputs("null,\"nm\":null", f); /* per layer only */
    else fprintf(f, "%.6g,\"nm\":null", o->sparsity);
    fprintf(f, ",\"achieved\":%.6g,\"pruned_weights\":%lld,\"prunable_weights\":%lld,\"layers\":{", il_prune_sparsity(r),
            (long long)r->zeros, (long long)r->numel);
    for (int i = 0; i < r->n; i++) {
        const il_prune_layer_stat *s = &r->layers[i];
        if (i) fputc(',', f);
        str(f, s->name);
        fputs(":{\"op\":", f);
        str(f, s->op);
        fprintf(f, ",\"numel\":%lld,\"asked\":%.6g,\"achieved\":%.6g}", (long long)s->numel, s->target,
                s->numel ? (double)s->zeros / s->numel : 0.0);
    }
    fputs("},\"excluded\":[", f);
    for (int i = 0, k = 0; i < r->n; i++)
        if (r->layers[i].excluded && !strcmp(r->layers[i].why, "excluded")) {
            if (k++) fputc(',', f);
            str(f, r->layers[i].name);
        }
    fputs("],\"skipped\":{", f);
    for (int i = 0, k = 0; i < r->n; i++)
        if (r->layers[i].excluded && strcmp(r->layers[i].why, "excluded")) {
            if (k++) fputc(',', f);
            str(f, r->layers[i].name);
            fputc(':', f);
            str(f, r->layers[i].why);
        }
    fputs("},\"schedule\":", f);
    str(f, rc && rc->schedule ? rc->schedule : "oneshot");
    fprintf(f, ",\"gradual_steps\":%d,\"finetune_epochs\":%d,\"data\":", rc ? rc->gradual_steps : 0,
            rc ? rc->finetune_epochs : 0);
    str(f, rc && rc->finetune_epochs ? rc->data : NULL);
    fputs(",\"teacher\":", f);
    str(f, rc && rc->finetune_epochs ? rc->teacher : NULL);
    if (rc && rc->finetune_epochs && rc->lr > 0) fprintf(f, ",\"lr\":%.6g", rc->lr);
    else fputs(",\"lr\":null", f);
    fputs(",\"augment\":", f);
    str(f, rc && rc->finetune_epochs ? rc->augment : NULL);
    fputc('}', f);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

il_status il_prune_set_recipe(il_graph *g, const il_prune_opts *o, const il_prune_report *r,
                              const il_prune_recipe *rc) {
    char *j = il_prune_recipe_json(o, r, rc);
    if (!j) return il_error(IL_ERR_OOM, "out of memory writing the pruning recipe");
    il_graph_set_meta(g, "inferlab.prune", j);
    free(j);
    return IL_OK;
}

/* The keys are set by SQLite's JSON functions (json_set), which also check the object parses. */
il_status il_prune_extend_recipe(il_graph *g, const il_prune_recipe *rc) {
    const char *j = il_graph_get_meta(g, "inferlab.prune");
    if (!j) return il_error(IL_ERR_INVALID, "the model has no pruning recipe (inferlab.prune) to extend");
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    il_status st = il_error(IL_ERR_INVALID, "the pruning recipe is not a JSON object: %.80s", j);
    if (sqlite3_open(":memory:", &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT json_set(json(?1), '$.schedule', ?2, '$.gradual_steps', ?3, "
                               "'$.finetune_epochs', ?4, '$.data', ?5, '$.teacher', ?6, '$.lr', ?7, '$.augment', ?8) "
                               "WHERE json_type(?1) = 'object'",
                           -1, &q, NULL) == SQLITE_OK) {
        int ft = rc->finetune_epochs;
        sqlite3_bind_text(q, 1, j, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, rc->schedule ? rc->schedule : "oneshot", -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 3, rc->gradual_steps);
        sqlite3_bind_int(q, 4, ft);
        if (ft && rc->data) sqlite3_bind_text(q, 5, rc->data, -1, SQLITE_STATIC);
        if (ft && rc->teacher) sqlite3_bind_text(q, 6, rc->teacher, -1, SQLITE_STATIC);
        if (ft && rc->lr > 0) sqlite3_bind_double(q, 7, rc->lr);
        if (ft && rc->augment) sqlite3_bind_text(q, 8, rc->augment, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0)) {
            il_graph_set_meta(g, "inferlab.prune", (const char *)sqlite3_column_text(q, 0));
            st = IL_OK;
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return st;
}
