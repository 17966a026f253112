/*
 * graph.c - the graph IR: values and nodes in growable arrays, referred to by index so a
 * pass can append while it walks. Names are looked up through a hash index; removal marks
 * nodes dead and il_graph_compact renumbers. Ownership: the graph owns every string,
 * attribute and constant in it.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

static char *dupstr(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    memcpy(d, s, n);
    return d;
}

static void *grow(void *p, int *cap, int need, size_t elem) {
    if (need <= *cap) return p;
    int c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(p, (size_t)c * elem);
    if (!q) abort(); /* allocation of IR bookkeeping: nothing sensible to return */
    memset((char *)q + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
    *cap = c;
    return q;
}

il_graph *il_graph_new(const char *name) {
    il_graph *g = calloc(1, sizeof *g);
    g->name = dupstr(name ? name : "graph");
    g->ir_version = 8;
    return g;
}

static void attr_free(il_attr *a) {
    free(a->name);
    free(a->s);
    il_tensor_free(a->t);
    free(a->floats);
    free(a->ints);
    for (int i = 0; i < a->n; i++) {
        if (a->strings) free(a->strings[i]);
        if (a->tensors) il_tensor_free(a->tensors[i]);
    }
    free(a->strings);
    free(a->tensors);
    free(a->raw);
    free(a->ref_attr_name);
}

static void node_free(il_node *n) {
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->inputs);
    free(n->outputs);
    for (int i = 0; i < n->n_attrs; i++) attr_free(&n->attrs[i]);
    free(n->attrs);
    free(n->doc);
}

static void value_free(il_value *v) {
    free(v->name);
    for (int i = 0; i < IL_MAX_RANK; i++) free(v->dim_param[i]);
    il_tensor_free(v->constant);
    free(v->doc);
}

void il_graph_free(il_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_values; i++) value_free(&g->values[i]);
    for (int i = 0; i < g->n_nodes; i++) node_free(&g->nodes[i]);
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    for (int i = 0; i < g->n_opsets; i++) free(g->opsets[i].domain);
    free(g->opsets);
    for (int i = 0; i < g->n_meta; i++) { free(g->meta_keys[i]); free(g->meta_values[i]); }
    free(g->meta_keys);
    free(g->meta_values);
    free(g->name);
    free(g->producer_name);
    free(g->producer_version);
    free(g->domain);
    free(g->doc);
    free(g->base_dir);
    free(g->name_index);
    free(g);
}

/* ---- name index */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    while (*s) { h ^= (unsigned char)*s++; h *= 1099511628211ULL; }
    return h;
}

static void index_insert(il_graph *g, int v) {
    int mask = g->name_index_cap - 1;
    int i = (int)(hash_str(g->values[v].name) & (uint64_t)mask);
    while (g->name_index[i] >= 0) i = (i + 1) & mask;
    g->name_index[i] = v;
}

static void index_rebuild(il_graph *g) {
    int cap = 64;
    while (cap < 2 * g->n_values + 2) cap *= 2;
    free(g->name_index);
    g->name_index = malloc((size_t)cap * sizeof(int));
    for (int i = 0; i < cap; i++) g->name_index[i] = -1;
    g->name_index_cap = cap;
    for (int v = 0; v < g->n_values; v++) index_insert(g, v);
}

int il_graph_find_value(const il_graph *g, const char *name) {
    if (!name || !g->name_index) {
        if (!name) return -1;
        for (int v = 0; v < g->n_values; v++)
            if (!strcmp(g->values[v].name, name)) return v;
        return -1;
    }
    int mask = g->name_index_cap - 1;
    int i = (int)(hash_str(name) & (uint64_t)mask);
    while (g->name_index[i] >= 0) {
        if (!strcmp(g->values[g->name_index[i]].name, name)) return g->name_index[i];
        i = (i + 1) & mask;
    }
    return -1;
}

static int append_value(il_graph *g, const char *name) {
    g->values = grow(g->values, &g->cap_values, g->n_values + 1, sizeof(il_value));
    int v = g->n_values++;
    il_value *x = &g->values[v];
    memset(x, 0, sizeof *x);
    x->name = dupstr(name);
    x->rank = -1;
    x->producer = -1;
    if (!g->name_index || 2 * g->n_values + 2 > g->name_index_cap) index_rebuild(g);
    else index_insert(g, v);
    return v;
}

int il_graph_value(il_graph *g, const char *name) {
    int v = il_graph_find_value(g, name);
    return v >= 0 ? v : append_value(g, name);
}

int il_graph_new_value(il_graph *g, const char *base) {
    char buf[512];
    if (il_graph_find_value(g, base) < 0) return append_value(g, base);
    for (int k = 1;; k++) {
        snprintf(buf, sizeof buf, "%s_%d", base, k);
        if (il_graph_find_value(g, buf) < 0) return append_value(g, buf);
    }
}

int il_graph_add_constant(il_graph *g, const char *name, il_tensor *t) {
    int v = il_graph_value(g, name);
    il_value *x = &g->values[v];
    il_tensor_free(x->constant);
    x->constant = t;
    x->dtype = t->dtype;
    x->rank = t->rank;
    memcpy(x->dims, t->dims, sizeof x->dims);
    return v;
}

void il_graph_add_input(il_graph *g, int v) {
    g->inputs = realloc(g->inputs, (size_t)(g->n_inputs + 1) * sizeof(int));
    g->inputs[g->n_inputs++] = v;
    g->values[v].is_input = 1;
}

void il_graph_add_output(il_graph *g, int v) {
    g->outputs = realloc(g->outputs, (size_t)(g->n_outputs + 1) * sizeof(int));
    g->outputs[g->n_outputs++] = v;
    g->values[v].is_output = 1;
}

int il_graph_add_node(il_graph *g, const char *op_type, const char *domain, const char *name,
                      int n_in, const int *in, int n_out, const int *out) {
    g->nodes = grow(g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(il_node));
    int k = g->n_nodes++;
    il_node *n = &g->nodes[k];
    memset(n, 0, sizeof *n);
    n->op_type = dupstr(op_type);
    n->domain = dupstr(domain ? domain : "");
    if (name && *name) {
        n->name = dupstr(name);
    } else {
        char buf[128];
        snprintf(buf, sizeof buf, "%s_%d", op_type, k);
        n->name = dupstr(buf);
    }
    n->n_inputs = n_in;
    n->inputs = malloc((size_t)(n_in ? n_in : 1) * sizeof(int));
    if (n_in) memcpy(n->inputs, in, (size_t)n_in * sizeof(int));
    n->n_outputs = n_out;
    n->outputs = malloc((size_t)(n_out ? n_out : 1) * sizeof(int));
    if (n_out) memcpy(n->outputs, out, (size_t)n_out * sizeof(int));
    for (int i = 0; i < n_out; i++)
        if (out[i] >= 0) g->values[out[i]].producer = k;
    return k;
}

/* ---- attributes */

il_attr *il_node_add_attr(il_graph *g, int k, const char *name, il_attr_type type) {
    il_node *n = &g->nodes[k];
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) {
            attr_free(&n->attrs[i]);
            memset(&n->attrs[i], 0, sizeof(il_attr));
            n->attrs[i].name = dupstr(name);
            n->attrs[i].type = type;
            return &n->attrs[i];
        }
    n->attrs = realloc(n->attrs, (size_t)(n->n_attrs + 1) * sizeof(il_attr));
    il_attr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = dupstr(name);
    a->type = type;
    return a;
}

void il_node_copy_attr(il_graph *g, int k, const il_attr *src, const char *name) {
    il_attr *d = il_node_add_attr(g, k, name ? name : src->name, src->type);
    char *keep = d->name; /* il_attr_copy copies src's name: the one asked for instead */
    il_attr_copy(d, src);
    free(d->name);
    d->name = keep;
}

void il_node_set_int(il_graph *g, int k, const char *name, int64_t v) { il_node_add_attr(g, k, name, IL_ATTR_INT)->i = v; }

void il_node_set_float(il_graph *g, int k, const char *name, float v) { il_node_add_attr(g, k, name, IL_ATTR_FLOAT)->f = v; }

void il_node_set_string(il_graph *g, int k, const char *name, const char *v) {
    il_attr *a = il_node_add_attr(g, k, name, IL_ATTR_STRING);
    a->s = dupstr(v);
    a->slen = strlen(v);
}

void il_node_set_ints(il_graph *g, int k, const char *name, int n, const int64_t *v) {
    il_attr *a = il_node_add_attr(g, k, name, IL_ATTR_INTS);
    a->n = n;
    a->ints = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (n) memcpy(a->ints, v, (size_t)n * sizeof(int64_t));
}

void il_node_set_floats(il_graph *g, int k, const char *name, int n, const float *v) {
    il_attr *a = il_node_add_attr(g, k, name, IL_ATTR_FLOATS);
    a->n = n;
    a->floats = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (n) memcpy(a->floats, v, (size_t)n * sizeof(float));
}

void il_node_set_tensor(il_graph *g, int k, const char *name, il_tensor *t) { il_node_add_attr(g, k, name, IL_ATTR_TENSOR)->t = t; }

const il_attr *il_node_attr(const il_node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int64_t il_attr_int(const il_node *n, const char *name, int64_t dflt) {
    const il_attr *a = il_node_attr(n, name);
    return a && a->type == IL_ATTR_INT ? a->i : dflt;
}

float il_attr_float(const il_node *n, const char *name, float dflt) {
    const il_attr *a = il_node_attr(n, name);
    if (a && a->type == IL_ATTR_FLOAT) return a->f;
    if (a && a->type == IL_ATTR_INT) return (float)a->i;
    return dflt;
}

const char *il_attr_string(const il_node *n, const char *name, const char *dflt) {
    const il_attr *a = il_node_attr(n, name);
    return a && a->type == IL_ATTR_STRING ? a->s : dflt;
}

int il_attr_ints(const il_node *n, const char *name, const int64_t **out) {
    const il_attr *a = il_node_attr(n, name);
    *out = NULL;
    if (!a || a->type != IL_ATTR_INTS) return 0;
    *out = a->ints;
    return a->n;
}

int il_attr_floats(const il_node *n, const char *name, const float **out) {
    const il_attr *a = il_node_attr(n, name);
    *out = NULL;
    if (!a || a->type != IL_ATTR_FLOATS) return 0;
    *out = a->floats;
    return a->n;
}

/* ---- rewriting */

void il_graph_remove_node(il_graph *g, int k) {
    il_node *n = &g->nodes[k];
    n->dead = 1;
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] >= 0 && g->values[n->outputs[i]].producer == k) g->values[n->outputs[i]].producer = -1;
}

void il_graph_replace_uses(il_graph *g, int from, int to) {
    for (int k = 0; k < g->n_nodes; k++) {
        il_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int i = 0; i < n->n_inputs; i++)
            if (n->inputs[i] == from) n->inputs[i] = to;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == from) {
            /* a graph output keeps its name: the new value takes it over */
            g->outputs[i] = to;
            g->values[to].is_output = 1;
            g->values[from].is_output = 0;
        }
}

int il_graph_consumers(const il_graph *g, int v, int *nodes, int max) {
    int c = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const il_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int i = 0; i < n->n_inputs; i++)
            if (n->inputs[i] == v) {
                if (nodes && c < max) nodes[c] = k;
                c++;
            }
    }
    return c;
}

void il_graph_compact(il_graph *g) {
    int *nmap = malloc((size_t)(g->n_nodes + 1) * sizeof(int));
    int *used = calloc((size_t)g->n_values + 1, sizeof(int));
    int nn = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].dead) {
            node_free(&g->nodes[k]);
            nmap[k] = -1;
            continue;
        }
        nmap[k] = nn;
        if (nn != k) g->nodes[nn] = g->nodes[k];
        nn++;
    }
    g->n_nodes = nn;
    for (int k = 0; k < nn; k++) {
        il_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_inputs; i++) if (n->inputs[i] >= 0) used[n->inputs[i]] = 1;
        for (int i = 0; i < n->n_outputs; i++) if (n->outputs[i] >= 0) used[n->outputs[i]] = 1;
    }
    for (int i = 0; i < g->n_inputs; i++) used[g->inputs[i]] = 1;
    for (int i = 0; i < g->n_outputs; i++) used[g->outputs[i]] = 1;
    int *vmap = malloc((size_t)(g->n_values + 1) * sizeof(int));
    int nv = 0;
    for (int v = 0; v < g->n_values; v++) {
        if (!used[v]) {
            value_free(&g->values[v]);
            vmap[v] = -1;
            continue;
        }
        vmap[v] = nv;
        if (nv != v) g->values[nv] = g->values[v];
        il_value *x = &g->values[nv];
        x->producer = x->producer >= 0 ? nmap[x->producer] : -1;
        nv++;
    }
    g->n_values = nv;
    for (int k = 0; k < nn; k++) {
        il_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_inputs; i++) if (n->inputs[i] >= 0) n->inputs[i] = vmap[n->inputs[i]];
        for (int i = 0; i < n->n_outputs; i++) if (n->outputs[i] >= 0) n->outputs[i] = vmap[n->outputs[i]];
    }
    for (int i = 0; i < g->n_inputs; i++) g->inputs[i] = vmap[g->inputs[i]];
    for (int i = 0; i < g->n_outputs; i++) g->outputs[i] = vmap[g->outputs[i]];
    /* producers may be stale if a node was rewired: recompute */
    for (int v = 0; v < nv; v++) g->values[v].producer = -1;
    for (int k = 0; k < nn; k++)
        for (int i = 0; i < g->nodes[k].n_outputs; i++)
            if (g->nodes[k].outputs[i] >= 0) g->values[g->nodes[k].outputs[i]].producer = k;
    index_rebuild(g);
    free(nmap);
    free(vmap);
    free(used);
}

/* Kahn's algorithm, stable: among ready nodes the one earliest in the array goes first, so a
 * graph already in order keeps its order. */
il_status il_graph_topo_order(const il_graph *g, int *order, int *n_order) {
    int n = g->n_nodes;
    int *indeg = calloc((size_t)n + 1, sizeof(int));
    int *prod = malloc((size_t)(g->n_values + 1) * sizeof(int));
    for (int v = 0; v < g->n_values; v++) prod[v] = -1;
    for (int k = 0; k < n; k++) {
        if (g->nodes[k].dead) continue;
        for (int i = 0; i < g->nodes[k].n_outputs; i++)
            if (g->nodes[k].outputs[i] >= 0) prod[g->nodes[k].outputs[i]] = k;
    }
    /* consumer lists in CSR form */
    int *cnt = calloc((size_t)n + 1, sizeof(int));
    int live = 0;
    for (int k = 0; k < n; k++) {
        const il_node *x = &g->nodes[k];
        if (x->dead) continue;
        live++;
        for (int i = 0; i < x->n_inputs; i++) {
            int v = x->inputs[i];
            if (v >= 0 && prod[v] >= 0 && !g->values[v].constant) { indeg[k]++; cnt[prod[v]]++; }
        }
    }
    int *start = malloc((size_t)(n + 1) * sizeof(int));
    start[0] = 0;
    for (int k = 0; k < n; k++) start[k + 1] = start[k] + cnt[k];
    int *adj = malloc((size_t)(start[n] + 1) * sizeof(int));
    memset(cnt, 0, (size_t)(n + 1) * sizeof(int));
    for (int k = 0; k < n; k++) {
        const il_node *x = &g->nodes[k];
        if (x->dead) continue;
        for (int i = 0; i < x->n_inputs; i++) {
            int v = x->inputs[i];
            if (v >= 0 && prod[v] >= 0 && !g->values[v].constant) {
                int p = prod[v];
                adj[start[p] + cnt[p]++] = k;
            }
        }
    }
    /* min-heap of ready node indices */
    int *heap = malloc((size_t)(n + 1) * sizeof(int)), hn = 0, m = 0;
#define PUSH(x) do { int _i = hn++; heap[_i] = (x); while (_i && heap[(_i - 1) / 2] > heap[_i]) { int _t = heap[_i]; heap[_i] = heap[(_i - 1) / 2]; heap[(_i - 1) / 2] = _t; _i = (_i - 1) / 2; } } while (0)
    for (int k = 0; k < n; k++)
        if (!g->nodes[k].dead && indeg[k] == 0) PUSH(k);
    while (hn) {
        int k = heap[0];
        heap[0] = heap[--hn];
        for (int i = 0;;) {
            int l = 2 * i + 1, r = l + 1, s = i;
            if (l < hn && heap[l] < heap[s]) s = l;
            if (r < hn && heap[r] < heap[s]) s = r;
            if (s == i) break;
            int t = heap[i]; heap[i] = heap[s]; heap[s] = t;
            i = s;
        }
        order[m++] = k;
        for (int j = start[k]; j < start[k + 1]; j++)
            if (--indeg[adj[j]] == 0) PUSH(adj[j]);
    }
#undef PUSH
    il_status st = IL_OK;
    if (m != live) {
        int bad = -1;
        for (int k = 0; k < n && bad < 0; k++)
            if (!g->nodes[k].dead && indeg[k] > 0) bad = k;
        st = il_error(IL_ERR_GRAPH, "the graph has a cycle through node '%s' (%s)", g->nodes[bad].name,
                      g->nodes[bad].op_type);
    }
    *n_order = m;
    free(indeg); free(prod); free(cnt); free(start); free(adj); free(heap);
    return st;
}

il_status il_graph_sort(il_graph *g) {
    int *order = malloc((size_t)(g->n_nodes + 1) * sizeof(int)), m;
    il_status st = il_graph_topo_order(g, order, &m);
    if (st) { free(order); return st; }
    il_graph_compact(g); /* dead nodes gone: order indices must be remapped */
    free(order);
    order = malloc((size_t)(g->n_nodes + 1) * sizeof(int));
    st = il_graph_topo_order(g, order, &m);
    if (st) { free(order); return st; }
    il_node *nodes = malloc((size_t)(g->n_nodes + 1) * sizeof(il_node));
    for (int i = 0; i < m; i++) nodes[i] = g->nodes[order[i]];
    if (m > 0) memcpy(g->nodes, nodes, (size_t)m * sizeof(il_node)); /* a graph left with no nodes has none */
    for (int k = 0; k < m; k++)
        for (int i = 0; i < g->nodes[k].n_outputs; i++)
            if (g->nodes[k].outputs[i] >= 0) g->values[g->nodes[k].outputs[i]].producer = k;
    free(nodes);
    free(order);
    return IL_OK;
}

il_status il_graph_verify(const il_graph *g) {
    il_status st0 = il_graph_check_opsets(g);
    if (st0) return st0;
    int *prod = malloc((size_t)(g->n_values + 1) * sizeof(int));
    for (int v = 0; v < g->n_values; v++) prod[v] = -1;
    il_status st = IL_OK;
    for (int k = 0; k < g->n_nodes && !st; k++) {
        const il_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int i = 0; i < n->n_outputs; i++) {
            int v = n->outputs[i];
            if (v < 0) continue;
            if (v >= g->n_values) { st = il_error(IL_ERR_GRAPH, "node '%s': output index out of range", n->name); break; }
            if (prod[v] >= 0) {
                st = il_error(IL_ERR_GRAPH, "value '%s' is produced by both '%s' and '%s'", g->values[v].name,
                              g->nodes[prod[v]].name, n->name);
                break;
            }
            if (g->values[v].constant || g->values[v].is_input) {
                st = il_error(IL_ERR_GRAPH, "node '%s' (%s) writes '%s', which is a graph input or initializer",
                              n->name, n->op_type, g->values[v].name);
                break;
            }
            prod[v] = k;
        }
    }
    for (int k = 0; k < g->n_nodes && !st; k++) {
        const il_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i];
            if (v < 0) continue;
            if (v >= g->n_values) { st = il_error(IL_ERR_GRAPH, "node '%s': input index out of range", n->name); break; }
            const il_value *x = &g->values[v];
            if (prod[v] < 0 && !x->constant && !x->is_input) {
                st = il_error(IL_ERR_GRAPH, "node '%s' (%s) reads '%s', which no node produces and is not a graph input or initializer",
                              n->name, n->op_type, x->name);
                break;
            }
        }
    }
    for (int i = 0; i < g->n_outputs && !st; i++) {
        const il_value *x = &g->values[g->outputs[i]];
        if (prod[g->outputs[i]] < 0 && !x->constant && !x->is_input)
            st = il_error(IL_ERR_GRAPH, "graph output '%s' is not produced by any node", x->name);
    }
    free(prod);
    if (st) return st;
    int *order = malloc((size_t)(g->n_nodes + 1) * sizeof(int)), m;
    st = il_graph_topo_order(g, order, &m);
    free(order);
    if (st) return st;
    /* unknown ops, all named at once */
    char buf[900];
    size_t len = 0;
    int nbad = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const il_node *n = &g->nodes[k];
        if (n->dead || il_op_find(n->domain, n->op_type)) continue;
        int seen = 0;
        for (int j = 0; j < k && !seen; j++)
            seen = !g->nodes[j].dead && !strcmp(g->nodes[j].op_type, n->op_type) && !strcmp(g->nodes[j].domain, n->domain);
        if (seen) continue;
        if (len < sizeof buf - 1)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s%s%s", nbad ? ", " : "", n->domain,
                                    n->domain[0] ? "." : "", n->op_type);
        nbad++;
    }
    if (nbad) return il_error(IL_ERR_UNSUPPORTED, "unsupported op%s: %s", nbad > 1 ? "s" : "", buf);
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[k].dead && (st = il_node_check(g, k))) return st;
    return IL_OK;
}

int64_t il_graph_opset(const il_graph *g, const char *domain) {
    int dflt = !domain || !*domain || !strcmp(domain, "ai.onnx");
    for (int i = 0; i < g->n_opsets; i++) {
        const char *d = g->opsets[i].domain;
        int ddflt = !d || !*d || !strcmp(d, "ai.onnx");
        if ((dflt && ddflt) || (!dflt && !ddflt && !strcmp(d, domain))) return g->opsets[i].version;
    }
    return 0;
}

void il_graph_set_opset(il_graph *g, const char *domain, int64_t version) {
    int dflt = !domain || !*domain || !strcmp(domain, "ai.onnx");
    for (int i = 0; i < g->n_opsets; i++) {
        const char *d = g->opsets[i].domain;
        int ddflt = !d || !*d || !strcmp(d, "ai.onnx");
        if ((dflt && ddflt) || (!dflt && !ddflt && !strcmp(d, domain))) { g->opsets[i].version = version; return; }
    }
    g->opsets = realloc(g->opsets, (size_t)(g->n_opsets + 1) * sizeof(il_opset_import));
    g->opsets[g->n_opsets].domain = dupstr(dflt ? "" : domain);
    g->opsets[g->n_opsets].version = version;
    g->n_opsets++;
}

void il_graph_set_meta(il_graph *g, const char *key, const char *value) {
    for (int i = 0; i < g->n_meta; i++)
        if (!strcmp(g->meta_keys[i], key)) {
            free(g->meta_values[i]);
            g->meta_values[i] = dupstr(value);
            return;
        }
    g->meta_keys = realloc(g->meta_keys, (size_t)(g->n_meta + 1) * sizeof(char *));
    g->meta_values = realloc(g->meta_values, (size_t)(g->n_meta + 1) * sizeof(char *));
    g->meta_keys[g->n_meta] = dupstr(key);
    g->meta_values[g->n_meta] = dupstr(value);
    g->n_meta++;
}

const char *il_graph_get_meta(const il_graph *g, const char *key) {
    for (int i = 0; i < g->n_meta; i++)
        if (!strcmp(g->meta_keys[i], key)) return g->meta_values[i];
    return NULL;
}
