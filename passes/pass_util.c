/*
 * pass_util.c - helpers shared by the built-in passes (see pass_util.h): producers and
 * consumers, constants, node creation and removal, shapes under two bindings, activations.
 */
#include "pass_util.h"

#include <stdio.h>

int pu_producer(const il_graph *g, int v) {
    if (v < 0 || v >= g->n_values) return -1;
    int k = g->values[v].producer;
    return k >= 0 && k < g->n_nodes && !g->nodes[k].dead ? k : -1;
}

static int is_default(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

int pu_is(const il_graph *g, int k, const char *op) {
    return k >= 0 && !g->nodes[k].dead && is_default(g->nodes[k].domain) && !strcmp(g->nodes[k].op_type, op);
}

int pu_is_fused(const il_graph *g, int k, const char *op) {
    return k >= 0 && !g->nodes[k].dead && !strcmp(g->nodes[k].domain, IL_DOMAIN) && !strcmp(g->nodes[k].op_type, op);
}

int pu_conv(const il_graph *g, int k) {
    int fused = pu_is_fused(g, k, "FusedConv");
    if (!fused && !pu_is(g, k, "Conv")) return 0;
    const il_node *n = &g->nodes[k];
    if (n->n_outputs != 1 || n->n_inputs < 2 || n->n_inputs > 3 + fused) return 0;
    return 1 + fused;
}

int pu_uses(const il_graph *g, int v) {
    if (v < 0) return 0;
    int n = il_graph_consumers(g, v, NULL, 0);
    for (int i = 0; i < g->n_outputs; i++) n += g->outputs[i] == v;
    return n;
}

int pu_sole_consumer(const il_graph *g, int v) {
    int k;
    if (v < 0 || g->values[v].is_output || il_graph_consumers(g, v, &k, 1) != 1) return -1;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v) return -1;
    return k;
}

int pu_other_input(const il_graph *g, int k, int v) {
    const il_node *n = &g->nodes[k];
    if (n->n_inputs != 2) return -1;
    if (n->inputs[0] == v) return n->inputs[1];
    if (n->inputs[1] == v) return n->inputs[0];
    return -1;
}

int pu_used_outputs(const il_graph *g, int k) {
    int c = 0;
    for (int i = 0; i < g->nodes[k].n_outputs; i++)
        if (g->nodes[k].outputs[i] >= 0 && pu_uses(g, g->nodes[k].outputs[i])) c++;
    return c;
}

const il_tensor *pu_const(const il_graph *g, int v) {
    if (v < 0) return NULL;
    if (g->values[v].constant) return g->values[v].constant;
    int k = pu_producer(g, v);
    if (!pu_is(g, k, "Constant")) return NULL;
    const il_attr *a = il_node_attr(&g->nodes[k], "value");
    return a && a->type == IL_ATTR_TENSOR ? a->t : NULL;
}

int pu_scalar(const il_graph *g, int v, double *x) {
    const il_tensor *t = pu_const(g, v);
    if (!t || il_tensor_numel(t) != 1 || !il_dtype_size(t->dtype) || !t->data) return 0;
    *x = il_tensor_get(t, 0);
    return 1;
}

int pu_scalar_is(const il_graph *g, int v, double want, double rtol) {
    double x;
    return pu_scalar(g, v, &x) && fabs(x - want) <= rtol * fabs(want) + 1e-12;
}

il_tensor *pu_to_f32(const il_tensor *c) {
    il_tensor *t = il_tensor_new(IL_F32, c->rank, c->dims);
    if (!t) return NULL;
    int64_t n = il_tensor_numel(c);
    for (int64_t i = 0; i < n; i++) ((float *)t->data)[i] = (float)il_tensor_get(c, i);
    return t;
}

int pu_add_const(il_graph *g, const char *base, il_tensor *t) {
    int v = il_graph_new_value(g, base);
    return il_graph_add_constant(g, g->values[v].name, t);
}

int pu_add_f32(il_graph *g, const char *base, int64_t n, const float *data) {
    il_tensor *t = il_tensor_new(IL_F32, 1, &n);
    if (data) memcpy(t->data, data, (size_t)n * sizeof(float));
    return pu_add_const(g, base, t);
}

int pu_new_value(il_graph *g, const char *base, int like) {
    int v = il_graph_new_value(g, base);
    if (like >= 0) {
        g->values[v].dtype = g->values[like].dtype;
        g->values[v].rank = -1; /* shape inference fills it; a stale copy could mislead export */
    }
    return v;
}

void pu_copy_attrs_from(il_graph *g, int dst, const il_node *src, const char *const *skip) {
    for (int i = 0; i < src->n_attrs; i++) {
        const char *name = src->attrs[i].name;
        int skipped = 0;
        for (int j = 0; skip && skip[j]; j++) skipped |= !strcmp(skip[j], name);
        if (skipped) continue;
        il_node_copy_attr(g, dst, &src->attrs[i], NULL); /* src is another node: its array stays */
    }
}

void pu_copy_attrs(il_graph *g, int dst, int src, const char *const *skip) {
    pu_copy_attrs_from(g, dst, &g->nodes[src], skip);
}

int pu_add_node(il_graph *g, const char *op, const char *domain, int like, const char *suffix, int n_in,
                const int *in, int n_out, const int *out) {
    char name[512];
    snprintf(name, sizeof name, "%s%s", like >= 0 ? g->nodes[like].name : op, suffix);
    return il_graph_add_node(g, op, domain, name, n_in, in, n_out, out);
}

void pu_kill(il_graph *g, int k) {
    if (k < 0 || g->nodes[k].dead) return;
    il_graph_remove_node(g, k);
    for (int i = 0; i < g->nodes[k].n_inputs; i++) {
        int p = pu_producer(g, g->nodes[k].inputs[i]);
        if (p >= 0 && !pu_used_outputs(g, p)) pu_kill(g, p);
    }
}

int64_t pu_opset(const il_graph *g) {
    int64_t v = il_graph_opset(g, "");
    return v > 0 ? v : 1;
}

void pu_use_fused_domain(il_graph *g) {
    if (!il_graph_opset(g, IL_DOMAIN)) il_graph_set_opset(g, IL_DOMAIN, 1);
}

/* ---------------------------------------------------------------- shapes */

/* Infer with every symbolic input dim bound: the first dim of each input to `batch`, every
 * distinct dim name to first + 2*i (distinct small values, so two different names never look
 * equal). */
static il_shapes *infer_bound(const il_graph *g, int64_t batch, int64_t first) {
    il_bind binds[64];
    int nb = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const il_value *x = &g->values[g->inputs[i]];
        for (int d = 0; d < x->rank && d < IL_MAX_RANK; d++) {
            if (!x->dim_param[d] || d == 0) continue;
            int seen = 0;
            for (int j = 0; j < nb; j++) seen |= !strcmp(binds[j].name, x->dim_param[d]);
            if (!seen && nb < 64) {
                binds[nb].name = x->dim_param[d];
                binds[nb].value = first + 2 * nb;
                nb++;
            }
        }
    }
    il_shapes *s = NULL;
    if (il_infer_shapes(g, batch, binds, nb, &s)) {
        il_error_clear();
        return NULL;
    }
    return s;
}

void pu_shapes_init(pu_shapes *s, const il_graph *g) {
    s->a = infer_bound(g, 3, 5);
    s->b = s->a ? infer_bound(g, 4, 6) : NULL;
    if (!s->b) {
        /* a model that only works at its own sizes: fall back to static dims alone */
        il_shapes_free(s->a);
        s->a = NULL;
        if (il_infer_shapes(g, 0, NULL, 0, &s->a)) {
            il_error_clear();
            s->a = NULL;
        }
        s->b = NULL;
    }
}

void pu_shapes_free(pu_shapes *s) {
    il_shapes_free(s->a);
    if (s->b != s->a) il_shapes_free(s->b);
    s->a = s->b = NULL;
}

static const il_tensor *info(const il_shapes *s, int v) { return s && v >= 0 && v < s->n_values ? &s->info[v] : NULL; }

int pu_rank(const pu_shapes *s, int v) {
    const il_tensor *a = info(s->a, v), *b = s->b ? info(s->b, v) : a;
    if (!a || !b || a->rank != b->rank || a->dtype == IL_UNDEFINED) return -1;
    return a->rank;
}

int64_t pu_dim(const pu_shapes *s, int v, int d) {
    int r = pu_rank(s, v);
    if (r < 0) return -1;
    if (d < 0) d += r;
    if (d < 0 || d >= r) return -1;
    const il_tensor *a = info(s->a, v), *b = s->b ? info(s->b, v) : a;
    return a->dims[d] >= 0 && a->dims[d] == b->dims[d] ? a->dims[d] : -1;
}

il_dtype pu_dtype(const pu_shapes *s, int v) {
    const il_tensor *a = info(s->a, v);
    return a ? a->dtype : IL_UNDEFINED;
}

int pu_same_shape(const pu_shapes *s, int x, int y) {
    int r = pu_rank(s, x);
    if (r < 0 || pu_rank(s, y) != r || !s->b) {
        if (r < 0 || pu_rank(s, y) != r) return 0;
        /* without two bindings only fully static shapes can be compared */
        for (int d = 0; d < r; d++)
            if (pu_dim(s, x, d) < 0 || pu_dim(s, x, d) != pu_dim(s, y, d)) return 0;
        return 1;
    }
    const il_shapes *both[2] = {s->a, s->b};
    for (int j = 0; j < 2; j++)
        for (int d = 0; d < r; d++) {
            int64_t p = info(both[j], x)->dims[d], q = info(both[j], y)->dims[d];
            if (p < 0 || p != q) return 0;
        }
    return 1;
}

int pu_static_shape(const pu_shapes *s, int v, int64_t *dims) {
    int r = pu_rank(s, v);
    if (r < 0) return -1;
    for (int d = 0; d < r; d++)
        if ((dims[d] = pu_dim(s, v, d)) < 0) return -1;
    return r;
}

/* ---------------------------------------------------------------- activations */

int pu_activation(const il_graph *g, int k, const char **name, float *p, int *np) {
    if (k < 0 || g->nodes[k].dead) return 0;
    const il_node *n = &g->nodes[k];
    *np = 0;
    if (n->n_inputs < 1 || n->n_outputs != 1) return 0;
    if (pu_is(g, k, "Relu") || pu_is(g, k, "Sigmoid") || pu_is(g, k, "Tanh")) {
        *name = pu_is(g, k, "Relu") ? "Relu" : pu_is(g, k, "Sigmoid") ? "Sigmoid" : "Tanh";
        return 1;
    }
    if (pu_is_fused(g, k, "SiLU")) { *name = "SiLU"; return 1; }
    if (pu_is(g, k, "HardSwish") || pu_is_fused(g, k, "HardSwish")) { *name = "HardSwish"; return 1; }
    if (pu_is(g, k, "LeakyRelu")) {
        *name = "LeakyRelu";
        p[0] = il_attr_float(n, "alpha", 0.01f);
        *np = 1;
        return 1;
    }
    if (pu_is(g, k, "HardSigmoid")) {
        *name = "HardSigmoid";
        p[0] = il_attr_float(n, "alpha", 0.2f);
        p[1] = il_attr_float(n, "beta", 0.5f);
        *np = 2;
        return 1;
    }
    if (pu_is(g, k, "Gelu") || pu_is_fused(g, k, "Gelu")) {
        const char *a = il_attr_string(n, "approximate", "none");
        *name = !strcmp(a, "tanh") ? "GeluTanh" : "Gelu";
        return !strcmp(a, "tanh") || !strcmp(a, "none");
    }
    if (pu_is(g, k, "Clip")) {
        double lo = -INFINITY, hi = INFINITY;
        if (pu_opset(g) < 11) {
            lo = il_attr_float(n, "min", -INFINITY);
            hi = il_attr_float(n, "max", INFINITY);
        } else {
            /* min and max are inputs: only constants can go into an attribute */
            if (n->n_inputs > 1 && n->inputs[1] >= 0 && !pu_scalar(g, n->inputs[1], &lo)) return 0;
            if (n->n_inputs > 2 && n->inputs[2] >= 0 && !pu_scalar(g, n->inputs[2], &hi)) return 0;
        }
        *name = "Clip";
        p[0] = (float)lo;
        p[1] = (float)hi;
        *np = 2;
        return 1;
    }
    return 0;
}

void pu_set_activation(il_graph *g, int k, const char *name, const float *p, int np) {
    il_node_set_string(g, k, "activation", name);
    if (np) il_node_set_floats(g, k, "activation_params", np, p);
}

int pu_bypass(il_graph *g, int k, int x, int y) {
    if (x < 0 || y < 0 || x == y) return 0;
    if (!g->values[y].is_output) {
        il_graph_replace_uses(g, y, x);
        pu_kill(g, k);
        return 1;
    }
    /* y is a graph output and keeps its name: let x's producer write y directly */
    int p = pu_producer(g, x);
    if (p < 0 || g->values[x].is_output || pu_uses(g, x) != 1) return 0;
    for (int i = 0; i < g->nodes[p].n_outputs; i++)
        if (g->nodes[p].outputs[i] == x) g->nodes[p].outputs[i] = y;
    il_graph_remove_node(g, k);
    g->values[y].producer = p;
    g->values[x].producer = -1;
    return 1;
}
