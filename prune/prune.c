/*
 * prune.c - which layers are prunable, and how scores become zeros: one fraction per layer,
 * one threshold across layers, or N:M groups along the reduction dimension.
 *
 * Every scope removes an exact count (round(s * n)), lowest scores first with ties broken by
 * position, so the sparsity asked is the sparsity achieved and a run is repeatable. The masks
 * are computed for every layer before any weight is touched, so an error leaves the graph as
 * it was. The masks stay in the report: fine-tuning (finetune.c) holds them fixed.
 */
#include "prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- layers */

static const il_tensor *float_const(const il_graph *g, const il_node *n, int slot) {
    if (slot >= n->n_inputs || n->inputs[slot] < 0) return NULL;
    const il_tensor *t = g->values[n->inputs[slot]].constant;
    return t && il_dtype_is_float(t->dtype) ? t : NULL;
}

/* The weight operand of node n as a [rows, cols] matrix; 0 when n is not prunable. */
static int weight_view(const il_graph *g, const il_node *n, il_prune_layer *l) {
    if (n->dead || n->domain[0]) return 0;
    const il_tensor *b = float_const(g, n, 1), *a = float_const(g, n, 0);
    if (!strcmp(n->op_type, "Conv")) {
        if (!b || b->rank < 3 || b->dims[0] < 1) return 0;
        l->value = n->inputs[1];
        l->rows = b->dims[0], l->cols = il_tensor_numel(b) / b->dims[0];
        l->rs = l->cols, l->cs = 1;
        return 1;
    }
    int gemm = !strcmp(n->op_type, "Gemm");
    if (!gemm && strcmp(n->op_type, "MatMul")) return 0;
    int tb = gemm && il_attr_int(n, "transB", 0), ta = gemm && il_attr_int(n, "transA", 0);
    if (b && b->rank == 2) { /* Y = X B: B [K, N] (or [N, K] under transB) */
        l->value = n->inputs[1];
        l->rows = b->dims[tb ? 0 : 1], l->cols = b->dims[tb ? 1 : 0];
        l->rs = tb ? l->cols : 1, l->cs = tb ? 1 : l->rows;
        return 1;
    }
    if (a && a->rank == 2 && !b) { /* Y = A X: A [M, K] (or [K, M] under transA) */
        l->value = n->inputs[0];
        l->rows = a->dims[ta ? 1 : 0], l->cols = a->dims[ta ? 0 : 1];
        l->rs = ta ? 1 : l->cols, l->cs = ta ? l->rows : 1;
        return 1;
    }
    return 0;
}

il_status il_prune_find_layers(const il_graph *g, il_prune_layer **out, int *n_out) {
    *out = NULL, *n_out = 0;
    int *order = malloc((size_t)g->n_nodes * sizeof(int) + 1), n_order = 0, n = 0;
    il_prune_layer *l = calloc((size_t)g->n_nodes + 1, sizeof *l);
    if (!order || !l) {
        free(order), free(l);
        return il_error(IL_ERR_OOM, "out of memory listing prunable layers");
    }
    il_status st = il_graph_topo_order(g, order, &n_order);
    for (int i = 0; i < n_order && !st; i++) {
        const il_node *nd = &g->nodes[order[i]];
        il_prune_layer x = {0};
        if (!weight_view(g, nd, &x)) continue;
        int seen = 0;
        for (int j = 0; j < n; j++) seen |= l[j].value == x.value;
        if (seen) continue;
        x.node = order[i];
        x.op = nd->op_type;
        x.weight = strdup(g->values[x.value].name);
        x.name = strdup(nd->name && nd->name[0] ? nd->name : x.weight);
        l[n++] = x;
    }
    free(order);
    if (st) {
        il_prune_layers_free(l, n);
        return st;
    }
    *out = l, *n_out = n;
    return IL_OK;
}

void il_prune_layers_free(il_prune_layer *l, int n) {
    for (int i = 0; l && i < n; i++) free(l[i].name), free(l[i].weight);
    free(l);
}

/* ---------------------------------------------------------------- ranking */

typedef struct unit {
    double score;
    int layer;
    int64_t idx; /* element (flat) or row */
} unit;

static int by_score(const void *pa, const void *pb) {
    const unit *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Drop unit u (an element, or every element of a row) from its layer's mask. */
static void drop(il_prune_layer_stat *s, const il_prune_layer *l, il_prune_unit kind, const unit *u) {
    unsigned char *m = s->mask->data;
    if (kind == IL_PRUNE_PER_ELEMENT) m[u->idx] = 0;
    else
        for (int64_t c = 0; c < l->cols; c++) m[u->idx * l->rs + c * l->cs] = 0;
}

/* Keep the nm_n highest scores of every nm_m consecutive elements along each row. */
static void nm_mask(const il_prune_layer *l, const double *sc, int n, int m, unsigned char *mask) {
    int64_t idx[64];
    for (int64_t r = 0; r < l->rows; r++)
        for (int64_t g0 = 0; g0 < l->cols; g0 += m) {
            for (int i = 0; i < m; i++) idx[i] = r * l->rs + (g0 + i) * l->cs;
            /* insertion sort, highest score first, earlier position first on ties */
            for (int i = 1; i < m; i++)
                for (int j = i; j > 0 && sc[idx[j]] > sc[idx[j - 1]]; j--) {
                    int64_t t = idx[j];
                    idx[j] = idx[j - 1], idx[j - 1] = t;
                }
            for (int i = n; i < m; i++) mask[idx[i]] = 0;
        }
}

/* ---------------------------------------------------------------- options */

static il_status check_fraction(const char *what, double s) {
    if (!(s >= 0 && s < 1)) return il_error(IL_ERR_INVALID, "%s %g is outside [0, 1)", what, s);
    return IL_OK;
}

/* The layer a name (node or weight, or first/last) denotes, -1 when none. */
static int layer_named(const il_prune_layer *l, int n, const char *name) {
    if (!strcmp(name, "first")) return n ? 0 : -1;
    if (!strcmp(name, "last")) return n - 1;
    for (int i = 0; i < n; i++)
        if (!strcmp(l[i].name, name) || !strcmp(l[i].weight, name)) return i;
    return -1;
}

static il_status unknown_layer(const char *flag, const char *name, const il_prune_layer *l, int n) {
    char list[512] = "";
    for (int i = 0; i < n && strlen(list) < sizeof list - 80; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", l[i].name);
    return il_error(IL_ERR_INVALID, "%s '%s': no prunable layer (Conv/Gemm/MatMul with a constant weight) by that "
                    "name; the model's are: %s%s", flag, name, n ? list : "(none)", n && strlen(list) >= sizeof list - 80 ? ", ..." : "");
}

static il_status check_opts(const il_prune_opts *o, const il_prune_criterion *c, const il_prune_layer *l, int n) {
    il_status st;
    if (o->scope == IL_PRUNE_NM) {
        if (o->nm_m < 2 || o->nm_m > 64 || o->nm_n < 1 || o->nm_n >= o->nm_m)
            return il_error(IL_ERR_INVALID, "N:M needs 0 < N < M <= 64, got %d:%d", o->nm_n, o->nm_m);
        if (c->unit != IL_PRUNE_PER_ELEMENT)
            return il_error(IL_ERR_INVALID, "N:M keeps weights within groups: criterion '%s' scores whole rows", c->name);
    } else if (o->scope == IL_PRUNE_GLOBAL || o->scope == IL_PRUNE_LAYERWISE) {
        if ((st = check_fraction("sparsity", o->sparsity))) return st;
        if (o->scope == IL_PRUNE_GLOBAL && c->unit != IL_PRUNE_PER_ELEMENT)
            return il_error(IL_ERR_INVALID, "one global threshold compares single weights across layers: criterion "
                            "'%s' scores whole rows, whose norms depend on the row length (use it per layer)", c->name);
    } else {
        return il_error(IL_ERR_INVALID, "unknown pruning scope %d", (int)o->scope);
    }
    for (int i = 0; i < o->n_exclude; i++)
        if (layer_named(l, n, o->exclude[i]) < 0) return unknown_layer("exclude", o->exclude[i], l, n);
    for (int i = 0; i < o->n_layer_sparsity; i++) {
        if (layer_named(l, n, o->layer_names[i]) < 0) return unknown_layer("layer sparsity", o->layer_names[i], l, n);
        if ((st = check_fraction(o->layer_names[i], o->layer_sparsity[i]))) return st;
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- apply */

void il_prune_report_free(il_prune_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        free(r->layers[i].name), free(r->layers[i].weight);
        il_tensor_free(r->layers[i].mask);
    }
    free(r->layers);
    memset(r, 0, sizeof *r);
}

void il_prune_recount(const il_graph *g, il_prune_report *r) {
    r->numel = r->zeros = 0;
    for (int i = 0; i < r->n; i++) {
        il_prune_layer_stat *s = &r->layers[i];
        int v = il_graph_find_value(g, s->weight);
        const il_tensor *w = v >= 0 ? g->values[v].constant : NULL;
        s->zeros = 0;
        for (int64_t j = 0; w && j < il_tensor_numel(w); j++) s->zeros += il_tensor_get(w, j) == 0;
        r->numel += s->numel, r->zeros += s->zeros;
    }
}

/* Scores of every pruned layer (NULL for excluded ones). */
static il_status score_layers(const il_graph *g, const il_prune_criterion *c, const il_prune_layer *l, int n,
                              const il_prune_report *r, double **sc) {
    for (int i = 0; i < n; i++) {
        if (r->layers[i].excluded) continue;
        const il_tensor *w = g->values[l[i].value].constant;
        int64_t units = c->unit == IL_PRUNE_PER_ELEMENT ? il_tensor_numel(w) : l[i].rows;
        if (!(sc[i] = malloc((size_t)units * sizeof(double) + 1))) return il_error(IL_ERR_OOM, "out of memory for scores");
        il_status st = c->score(c, &l[i], w, sc[i]);
        if (st) return il_error_wrap(st, "criterion '%s' on layer '%s': ", c->name, l[i].name);
        for (int64_t j = 0; j < units; j++)
            if (isnan(sc[i][j]))
                return il_error(IL_ERR_INVALID, "criterion '%s' gave NaN for layer '%s'", c->name, l[i].name);
    }
    return IL_OK;
}

/* Rank the units of the layers in [lo, hi) that are pruned and drop the k lowest; the last
 * score dropped in *thr. */
static il_status drop_lowest(const il_prune_criterion *c, const il_prune_layer *l, il_prune_report *r, double **sc,
                             int lo, int hi, double s, double *thr) {
    int64_t total = 0, weights = 0;
    for (int i = lo; i < hi; i++)
        if (!r->layers[i].excluded) {
            total += c->unit == IL_PRUNE_PER_ELEMENT ? r->layers[i].numel : l[i].rows;
            weights += r->layers[i].numel;
        }
    int64_t k = llround(s * (double)total);
    if (k == 0) return IL_OK;
    unit *u = malloc((size_t)total * sizeof *u + 1);
    if (!u) return il_error(IL_ERR_OOM, "out of memory ranking %lld weights", (long long)weights);
    int64_t m = 0;
    for (int i = lo; i < hi; i++) {
        if (r->layers[i].excluded) continue;
        int64_t units = c->unit == IL_PRUNE_PER_ELEMENT ? r->layers[i].numel : l[i].rows;
        for (int64_t j = 0; j < units; j++) u[m++] = (unit){sc[i][j], i, j};
    }
    qsort(u, (size_t)m, sizeof *u, by_score);
    for (int64_t j = 0; j < k; j++) drop(&r->layers[u[j].layer], &l[u[j].layer], c->unit, &u[j]);
    *thr = u[k - 1].score;
    free(u);
    return IL_OK;
}

/* The masks of every layer into r (nothing written to g). */
static il_status make_masks(const il_graph *g, const il_prune_opts *o, const il_prune_criterion *c,
                            const il_prune_layer *l, int n, il_prune_report *r) {
    for (int i = 0; i < n; i++) {
        il_prune_layer_stat *s = &r->layers[i];
        const il_tensor *w = g->values[l[i].value].constant;
        /* a literal: the report outlives the graph (fine-tuning replaces it) */
        s->op = !strcmp(l[i].op, "Conv") ? "Conv" : !strcmp(l[i].op, "Gemm") ? "Gemm" : "MatMul";
        s->name = strdup(l[i].name), s->weight = strdup(l[i].weight);
        s->numel = il_tensor_numel(w);
        s->target = o->scope == IL_PRUNE_NM ? 1.0 - (double)o->nm_n / o->nm_m : o->sparsity;
        for (int j = 0; j < o->n_exclude; j++) s->excluded |= layer_named(l, n, o->exclude[j]) == i;
        if (s->excluded) snprintf(s->why, sizeof s->why, "excluded");
        for (int j = 0; j < o->n_layer_sparsity && o->scope == IL_PRUNE_LAYERWISE; j++)
            if (layer_named(l, n, o->layer_names[j]) == i) s->target = o->layer_sparsity[j];
        if (o->scope == IL_PRUNE_NM && !s->excluded && l[i].cols % o->nm_m) {
            s->excluded = 1;
            snprintf(s->why, sizeof s->why, "reduction length %lld is not a multiple of %d", (long long)l[i].cols,
                     o->nm_m);
        }
        if (s->excluded) {
            s->target = 0;
            continue;
        }
        if (!(s->mask = il_tensor_new(IL_U8, w->rank, w->dims))) return il_error(IL_ERR_OOM, "out of memory for a mask");
        memset(s->mask->data, 1, (size_t)s->numel);
    }
    double **sc = calloc((size_t)n + 1, sizeof *sc);
    if (!sc) return il_error(IL_ERR_OOM, "out of memory for scores");
    il_status st = score_layers(g, c, l, n, r, sc);
    for (int i = 0; i < n && !st; i++) {
        if (r->layers[i].excluded) continue;
        if (o->scope == IL_PRUNE_NM) nm_mask(&l[i], sc[i], o->nm_n, o->nm_m, r->layers[i].mask->data);
        else if (o->scope == IL_PRUNE_LAYERWISE) st = drop_lowest(c, l, r, sc, i, i + 1, r->layers[i].target, &r->threshold);
    }
    if (!st && o->scope == IL_PRUNE_GLOBAL) st = drop_lowest(c, l, r, sc, 0, n, o->sparsity, &r->threshold);
    if (o->scope != IL_PRUNE_GLOBAL) r->threshold = 0;
    for (int i = 0; i < n; i++) free(sc[i]);
    free(sc);
    return st;
}

il_status il_prune_apply(il_graph *g, const il_prune_opts *o, il_prune_report *out) {
    const char *cname = o->criterion ? o->criterion : "magnitude";
    const il_prune_criterion *c = il_prune_find_criterion(cname);
    if (out) memset(out, 0, sizeof *out);
    if (!c) {
        int nc;
        const il_prune_criterion *const *all = il_prune_criteria(&nc);
        char list[512] = "";
        for (int i = 0; i < nc && strlen(list) < sizeof list - 64; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", all[i]->name);
        return il_error(IL_ERR_INVALID, "unknown pruning criterion '%s' (known: %s)", cname, list);
    }
    il_prune_layer *l;
    int n;
    il_status st = il_prune_find_layers(g, &l, &n);
    if (st) return st;
    if ((st = check_opts(o, c, l, n))) {
        il_prune_layers_free(l, n);
        return st;
    }
    il_prune_report r = {.n = n, .layers = calloc((size_t)n + 1, sizeof *r.layers)};
    if (!r.layers) st = il_error(IL_ERR_OOM, "out of memory");
    if (!st) st = make_masks(g, o, c, l, n, &r);
    for (int i = 0; i < n && !st; i++) {
        const unsigned char *m = r.layers[i].mask ? r.layers[i].mask->data : NULL;
        il_tensor *w = g->values[l[i].value].constant;
        for (int64_t j = 0; m && j < r.layers[i].numel; j++)
            if (!m[j]) il_tensor_set(w, j, 0.0);
    }
    il_prune_layers_free(l, n);
    if (st) {
        il_prune_report_free(&r);
        return st;
    }
    il_prune_recount(g, &r);
    if (out) *out = r;
    else il_prune_report_free(&r);
    return IL_OK;
}

double il_prune_gradual_sparsity(double s_i, double s_f, int t, int n) {
    if (n <= 0) return s_f;
    if (t < 0) t = 0;
    if (t > n) t = n;
    double f = 1.0 - (double)t / n;
    return s_f + (s_i - s_f) * f * f * f;
}
