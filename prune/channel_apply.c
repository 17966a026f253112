/*
 * channel_apply.c - the choice and the rewrite of channel pruning (channel.h): per unit, the
 * lowest-scored classes of the analysis (channel.c) go; the constants it listed are sliced (or,
 * in ZERO mode, the readers' weights zeroed), then the shapes of every computed value are
 * inferred again, unused constants dropped, the graph verified and the recipe written. Also the
 * two public entry points.
 */
#include "channel_int.h"

#include <math.h>
#include <stdio.h>

/* ---------------------------------------------------------------- the choice */

typedef struct {
    int unit, cls;
    double score;
} cand;

static int by_unit_score(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->unit != b->unit) return a->unit < b->unit ? -1 : 1;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    return a->cls < b->cls ? -1 : a->cls > b->cls;
}

/* Per unit, the floor(ratio * classes) prunable classes of lowest score, never every class. */
void ch_choose(ch_ctx *x, float ratio, il_channel_report *r) {
    x->removed = calloc((size_t)x->n_el + 1, 1);
    cand *c = malloc((size_t)(x->n_el + 1) * sizeof *c);
    unsigned char *seen = calloc((size_t)x->n_el + 1, 1);
    int nc = 0;
    for (int e = 0; e < x->n_el; e++) {
        int root = ch_find(x, e);
        if (seen[root] || x->layer[root] < 0) continue;
        seen[root] = 1;
        c[nc++] = (cand){ch_lfind(x, x->layer[root]), root, x->score[root]};
    }
    qsort(c, (size_t)nc, sizeof *c, by_unit_score);
    for (int i = 0; i < nc;) {
        int j = i, prunable = 0;
        while (j < nc && c[j].unit == c[i].unit) prunable += !x->fixed[c[j++].cls];
        int64_t want = (int64_t)floor((double)ratio * (j - i) + 1e-9);
        if (want > prunable) want = prunable;
        if (want > j - i - 1) want = j - i - 1;
        for (int t = i; t < j && want > 0; t++)
            if (!x->fixed[c[t].cls]) {
                x->removed[c[t].cls] = 1;
                want--;
                r->removed++;
            }
        r->channels += prunable;
        r->units += prunable > 0;
        i = j;
    }
    free(c);
    free(seen);
}

/* ---------------------------------------------------------------- the rewrite */

/* Positions of value v's map whose channel stays; their count is returned, keep has m->n slots. */
static int kept(ch_ctx *x, int v, int *keep) {
    const ch_map *m = x->map[v];
    int n = 0;
    for (int p = 0; p < m->n; p++)
        if (!x->removed[ch_find(x, m->el[p])]) keep[n++] = p;
    return n;
}

static int uses(const il_graph *g, int v) { return il_graph_consumers(g, v, NULL, 0) + g->values[v].is_output; }

/* The constant at (node k, slot) cut to the kept positions along axis (zero: same shape, the
 * other positions zeroed). A constant that something else reads too is copied first. */
static il_status cut_const(il_graph *g, int k, int slot, int axis, const int *keep, int nkeep, int zero) {
    int v = g->nodes[k].inputs[slot];
    const il_tensor *t = g->values[v].constant;
    if (axis >= t->rank)
        return il_error(IL_ERR_INTERNAL, "channel pruning: '%s' has no axis %d", g->values[v].name, axis);
    int64_t dims[IL_MAX_RANK], old = t->dims[axis];
    memcpy(dims, t->dims, sizeof dims);
    if (!zero) dims[axis] = nkeep;
    il_tensor *nt = il_tensor_new(t->dtype, t->rank, dims);
    if (!nt) return il_error_wrap(IL_ERR_OOM, "channel pruning '%s': ", g->values[v].name);
    size_t es = il_dtype_size(t->dtype);
    int64_t outer = dims_prod(t->dims, 0, axis), inner = dims_prod(t->dims, axis + 1, t->rank);
    size_t row = (size_t)inner * es;
    const char *src = t->data;
    char *dst = nt->data;
    for (int64_t o = 0; o < outer; o++) {
        if (zero) {
            const char *s = src + (size_t)(o * old) * row;
            char *d = dst + (size_t)(o * old) * row; /* zeros already where nothing is copied */
            for (int j = 0; j < nkeep; j++) memcpy(d + (size_t)keep[j] * row, s + (size_t)keep[j] * row, row);
        } else {
            for (int j = 0; j < nkeep; j++)
                memcpy(dst + (size_t)(o * nkeep + j) * row, src + (size_t)(o * old + keep[j]) * row, row);
        }
    }
    if (uses(g, v) > 1) {
        int nv = il_graph_new_value(g, g->values[v].name);
        il_graph_add_constant(g, g->values[nv].name, nt);
        g->nodes[k].inputs[slot] = nv;
    } else {
        il_graph_add_constant(g, g->values[v].name, nt);
    }
    return IL_OK;
}

/* Reshape's shape constant: entry `at` (when it is an explicit count, not 0 or -1) := n. */
static il_status set_shape_entry(il_graph *g, int k, int at, int64_t n) {
    int v = g->nodes[k].inputs[1];
    const il_tensor *t = g->values[v].constant;
    if (at >= il_tensor_numel(t) || il_tensor_get(t, at) <= 0) return IL_OK;
    il_tensor *nt = il_tensor_clone(t);
    if (!nt) return IL_ERR_OOM;
    il_tensor_set(nt, at, (double)n);
    if (uses(g, v) > 1) {
        int nv = il_graph_new_value(g, g->values[v].name);
        il_graph_add_constant(g, g->values[nv].name, nt);
        g->nodes[k].inputs[1] = nv;
    } else {
        il_graph_add_constant(g, g->values[v].name, nt);
    }
    return IL_OK;
}

/* Every computed value's shape from the graph inputs again: nothing of the old shapes stays,
 * except a graph output's symbolic dim names where inference leaves the dim unknown. */
static il_status reinfer(il_graph *g) {
    for (int v = 0; v < g->n_values; v++) {
        il_value *x = &g->values[v];
        if (x->constant || x->is_input) continue;
        x->rank = -1;
        if (!x->is_output)
            for (int d = 0; d < IL_MAX_RANK; d++) {
                free(x->dim_param[d]);
                x->dim_param[d] = NULL;
            }
    }
    il_shapes *s;
    il_status st = il_infer_shapes(g, 0, NULL, 0, &s);
    if (st) return il_error_wrap(st, "channel pruning: the pruned graph does not infer: ");
    il_shapes_apply(s, g);
    il_shapes_free(s);
    for (int v = 0; v < g->n_values; v++) {
        il_value *x = &g->values[v];
        if (!x->is_output || x->constant || x->is_input) continue;
        for (int d = 0; d < IL_MAX_RANK; d++)
            if (d >= x->rank || x->dims[d] >= 0) {
                free(x->dim_param[d]);
                x->dim_param[d] = NULL;
            }
    }
    return IL_OK;
}

il_status ch_apply(ch_ctx *x, il_channel_mode mode) {
    il_graph *g = x->g;
    int cap = 1;
    for (int i = 0; i < x->n_maps; i++) cap = x->maps[i]->n > cap ? x->maps[i]->n : cap;
    int *keep = malloc((size_t)cap * sizeof(int));
    il_status st = keep ? IL_OK : IL_ERR_OOM;
    for (int i = 0; i < x->n_act && !st; i++) {
        const ch_action *a = &x->act[i];
        if ((mode == IL_CHANNEL_ZERO && a->kind != CH_SINK) ||
            (mode == IL_CHANNEL_MASK && a->kind != CH_SLICE && a->kind != CH_SINK))
            continue;
        int n = kept(x, a->value, keep);
        if (n == x->map[a->value]->n) continue;
        switch (a->kind) {
        case CH_SLICE:
        case CH_SINK: st = cut_const(g, a->node, a->slot, a->axis, keep, n, mode != IL_CHANNEL_REMOVE); break;
        case CH_GROUP: il_node_set_int(g, a->node, "group", n); break;
        case CH_RESHAPE: st = set_shape_entry(g, a->node, a->axis, n); break;
        }
    }
    free(keep);
    if (st || mode != IL_CHANNEL_REMOVE) return st;
    il_graph_compact(g);
    if ((st = reinfer(g))) return st;
    st = il_graph_verify(g);
    return st ? il_error_wrap(st, "channel pruning left an invalid graph: ") : IL_OK;
}

int64_t ch_param_count(const il_graph *g) {
    int64_t n = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].constant) n += il_tensor_numel(g->values[v].constant);
    return n;
}

/* ---------------------------------------------------------------- entry points */

static void set_recipe(il_graph *g, float ratio, int norm, const char *const *exclude, int n_exclude,
                       const il_channel_report *r) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    fprintf(f, "{\"method\":\"channel\",\"criterion\":\"l%d-filter\",\"scope\":\"layer\",\"sparsity\":%.6g", norm,
            (double)ratio);
    fprintf(f, ",\"achieved\":%.6g,\"pruned_channels\":%lld,\"prunable_channels\":%lld,\"units\":%d",
            r->channels ? (double)r->removed / (double)r->channels : 0.0, (long long)r->removed,
            (long long)r->channels, r->units);
    fprintf(f, ",\"params_before\":%lld,\"params_after\":%lld,\"excluded\":[", (long long)r->params_before,
            (long long)r->params_after);
    for (int i = 0; i < n_exclude; i++) {
        fputs(i ? ",\"" : "\"", f);
        for (const char *c = exclude[i]; *c; c++) {
            if (*c == '"' || *c == '\\') fputc('\\', f);
            if ((unsigned char)*c >= 0x20) fputc(*c, f);
        }
        fputc('"', f);
    }
    fputs("]}", f);
    fclose(f);
    il_graph_set_meta(g, "inferlab.prune", buf);
    free(buf);
}

il_status il_prune_channels_ex(il_graph *g, float ratio, int norm, const char *const *exclude, int n_exclude,
                               il_channel_mode mode, il_channel_report *report) {
    il_channel_report r = {0};
    if (!g) return il_error(IL_ERR_INVALID, "channel pruning: no graph");
    if (!(ratio >= 0 && ratio < 1))
        return il_error(IL_ERR_INVALID, "channel pruning: ratio %g is outside [0, 1)", ratio);
    if (norm != 1 && norm != 2) return il_error(IL_ERR_INVALID, "channel pruning: norm must be 1 or 2, got %d", norm);
    ch_ctx x = {.g = g, .norm = norm, .exclude = exclude, .n_exclude = n_exclude};
    il_status st = il_infer_shapes(g, 0, NULL, 0, &x.s);
    if (st) return il_error_wrap(st, "channel pruning: ");
    r.params_before = ch_param_count(g);
    st = ch_analyze(&x);
    if (!st) ch_choose(&x, ratio, &r);
    for (int i = 0; !st && i < n_exclude; i++) {
        int found = !strcmp(exclude[i], "first") || !strcmp(exclude[i], "last");
        for (int k = 0; k < g->n_nodes && !found; k++) {
            int w = g->nodes[k].n_inputs > 1 ? g->nodes[k].inputs[1] : -1;
            found = !strcmp(g->nodes[k].name, exclude[i]) || (w >= 0 && !strcmp(g->values[w].name, exclude[i]));
        }
        if (!found)
            st = il_error(IL_ERR_INVALID, "channel pruning: --exclude '%s' names no node or weight", exclude[i]);
    }
    if (!st) st = ch_apply(&x, mode);
    ch_ctx_free(&x);
    if (st) return st;
    r.params_after = ch_param_count(g);
    if (mode == IL_CHANNEL_REMOVE) set_recipe(g, ratio, norm, exclude, n_exclude, &r);
    if (report) *report = r;
    return IL_OK;
}

il_status il_prune_channels(il_graph *g, float ratio, int norm, const char *const *exclude, int n_exclude, char *err,
                            size_t errlen) {
    il_status st = il_prune_channels_ex(g, ratio, norm, exclude, n_exclude, IL_CHANNEL_REMOVE, NULL);
    if (st && err && errlen) snprintf(err, errlen, "%s", il_errmsg());
    return st;
}
