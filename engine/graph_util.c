/*
 * graph_util.c - deep copy of a graph and its readable text dump (`--dump-after`, `info`).
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

static char *dup(const char *s) { return s ? strdup(s) : NULL; }

void il_attr_copy(il_attr *d, const il_attr *s) {
    *d = *s;
    d->name = dup(s->name);
    d->s = NULL;
    if (s->s) {
        d->s = malloc(s->slen + 1);
        memcpy(d->s, s->s, s->slen + 1);
    }
    d->t = s->t ? il_tensor_clone(s->t) : NULL;
    d->floats = NULL;
    d->ints = NULL;
    d->strings = NULL;
    d->tensors = NULL;
    if (s->floats) {
        d->floats = malloc((size_t)(s->n ? s->n : 1) * sizeof(float));
        memcpy(d->floats, s->floats, (size_t)s->n * sizeof(float));
    }
    if (s->ints) {
        d->ints = malloc((size_t)(s->n ? s->n : 1) * sizeof(int64_t));
        memcpy(d->ints, s->ints, (size_t)s->n * sizeof(int64_t));
    }
    if (s->strings) {
        d->strings = calloc((size_t)s->n + 1, sizeof(char *));
        for (int i = 0; i < s->n; i++) d->strings[i] = dup(s->strings[i]);
    }
    if (s->tensors) {
        d->tensors = calloc((size_t)s->n + 1, sizeof(il_tensor *));
        for (int i = 0; i < s->n; i++) d->tensors[i] = s->tensors[i] ? il_tensor_clone(s->tensors[i]) : NULL;
    }
    d->raw = NULL;
    if (s->raw) {
        d->raw = malloc(s->raw_len + 1);
        memcpy(d->raw, s->raw, s->raw_len);
    }
    d->ref_attr_name = dup(s->ref_attr_name);
}

il_graph *il_graph_clone(const il_graph *s) {
    il_graph *g = il_graph_new(s->name);
    for (int v = 0; v < s->n_values; v++) {
        const il_value *x = &s->values[v];
        int w = il_graph_new_value(g, x->name);
        il_value *y = &g->values[w];
        y->dtype = x->dtype;
        y->rank = x->rank;
        memcpy(y->dims, x->dims, sizeof y->dims);
        for (int i = 0; i < IL_MAX_RANK; i++) y->dim_param[i] = dup(x->dim_param[i]);
        y->constant = x->constant ? il_tensor_clone(x->constant) : NULL;
        y->producer = x->producer;
        y->is_output = x->is_output;
        y->doc = dup(x->doc);
    }
    for (int k = 0; k < s->n_nodes; k++) {
        const il_node *n = &s->nodes[k];
        int j = il_graph_add_node(g, n->op_type, n->domain, n->name, n->n_inputs, n->inputs, n->n_outputs, n->outputs);
        il_node *m = &g->nodes[j];
        m->dead = n->dead;
        m->doc = dup(n->doc);
        m->n_attrs = n->n_attrs;
        m->attrs = calloc((size_t)n->n_attrs + 1, sizeof(il_attr));
        for (int i = 0; i < n->n_attrs; i++) il_attr_copy(&m->attrs[i], &n->attrs[i]);
    }
    for (int v = 0; v < s->n_values; v++) g->values[v].producer = s->values[v].producer;
    for (int i = 0; i < s->n_inputs; i++) il_graph_add_input(g, s->inputs[i]);
    for (int i = 0; i < s->n_outputs; i++) il_graph_add_output(g, s->outputs[i]);
    for (int i = 0; i < s->n_opsets; i++) il_graph_set_opset(g, s->opsets[i].domain, s->opsets[i].version);
    for (int i = 0; i < s->n_meta; i++) il_graph_set_meta(g, s->meta_keys[i], s->meta_values[i]);
    g->ir_version = s->ir_version;
    g->model_version = s->model_version;
    g->producer_name = dup(s->producer_name);
    g->producer_version = dup(s->producer_version);
    g->domain = dup(s->domain);
    g->doc = dup(s->doc);
    g->base_dir = dup(s->base_dir);
    return g;
}

static void dump_value(const il_graph *g, int v, FILE *f) {
    if (v < 0) { fprintf(f, "<none>"); return; }
    const il_value *x = &g->values[v];
    char b[160];
    fprintf(f, "%%%s", x->name);
    if (x->dtype != IL_UNDEFINED) fprintf(f, ":%s%s", il_dtype_name(x->dtype), il_shape_str(x->rank, x->dims, b, sizeof b));
}

static void dump_attr(const il_attr *a, FILE *f) {
    fprintf(f, "%s=", a->name);
    char b[160];
    switch (a->type) {
    case IL_ATTR_FLOAT: fprintf(f, "%g", a->f); break;
    case IL_ATTR_INT: fprintf(f, "%lld", (long long)a->i); break;
    case IL_ATTR_STRING: fprintf(f, "\"%s\"", a->s ? a->s : ""); break;
    case IL_ATTR_TENSOR:
        fprintf(f, "tensor<%s%s>", il_dtype_name(a->t->dtype), il_shape_str(a->t->rank, a->t->dims, b, sizeof b));
        break;
    case IL_ATTR_FLOATS:
        fprintf(f, "[");
        for (int i = 0; i < a->n; i++) fprintf(f, "%s%g", i ? "," : "", a->floats[i]);
        fprintf(f, "]");
        break;
    case IL_ATTR_INTS:
        fprintf(f, "[");
        for (int i = 0; i < a->n; i++) fprintf(f, "%s%lld", i ? "," : "", (long long)a->ints[i]);
        fprintf(f, "]");
        break;
    case IL_ATTR_STRINGS:
        fprintf(f, "[");
        for (int i = 0; i < a->n; i++) fprintf(f, "%s\"%s\"", i ? "," : "", a->strings[i]);
        fprintf(f, "]");
        break;
    default: fprintf(f, "<%d>", (int)a->type); break;
    }
}

void il_graph_dump(const il_graph *g, FILE *f) {
    fprintf(f, "graph %s (ir %lld", g->name ? g->name : "", (long long)g->ir_version);
    for (int i = 0; i < g->n_opsets; i++)
        fprintf(f, ", %s %lld", g->opsets[i].domain[0] ? g->opsets[i].domain : "ai.onnx", (long long)g->opsets[i].version);
    fprintf(f, ")\n");
    for (int i = 0; i < g->n_inputs; i++) {
        fprintf(f, "  input  ");
        dump_value(g, g->inputs[i], f);
        fprintf(f, "\n");
    }
    int nconst = 0;
    int64_t nparam = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].constant) { nconst++; nparam += il_tensor_numel(g->values[v].constant); }
    fprintf(f, "  %d initializers, %lld elements\n", nconst, (long long)nparam);
    for (int k = 0; k < g->n_nodes; k++) {
        const il_node *n = &g->nodes[k];
        if (n->dead) continue;
        fprintf(f, "  ");
        for (int i = 0; i < n->n_outputs; i++) {
            if (i) fprintf(f, ", ");
            dump_value(g, n->outputs[i], f);
        }
        fprintf(f, " = %s%s%s(", n->domain[0] ? n->domain : "", n->domain[0] ? "." : "", n->op_type);
        for (int i = 0; i < n->n_inputs; i++) {
            if (i) fprintf(f, ", ");
            dump_value(g, n->inputs[i], f);
        }
        fprintf(f, ")");
        if (n->n_attrs) {
            fprintf(f, " {");
            for (int i = 0; i < n->n_attrs; i++) {
                if (i) fprintf(f, ", ");
                dump_attr(&n->attrs[i], f);
            }
            fprintf(f, "}");
        }
        fprintf(f, "  # %s\n", n->name);
    }
    for (int i = 0; i < g->n_outputs; i++) {
        fprintf(f, "  output ");
        dump_value(g, g->outputs[i], f);
        fprintf(f, "\n");
    }
}
