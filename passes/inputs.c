/*
 * inputs.c - inputs a graph can be run on when the user gives none: random values that make the
 * outputs say something, and the one rule for the batch size.
 *
 * Integer inputs: an id looked up in a table (the indices of a Gather over a constant, perhaps
 * after Cast/Reshape/Unsqueeze) is drawn below the table's size, so token ids of a BERT export
 * hit real rows instead of all being 0 or 1; an input named like a mask is all ones (attend to
 * every position; zeros would mask everything and make the outputs constant). Other integers
 * keep the engine's 0/1, floats are uniform in [-1, 1).
 *
 * Batch: a model whose input 0 has a fixed first dim (a dynamo export at batch 2) runs at that
 * batch; asking for another is an error, never silently ignored.
 */
#include "passes.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The size of the table the integer value v indexes, following value-preserving ops; 0 when
 * unknown. depth bounds the walk. */
static int64_t table_size(const il_graph *g, int v, int depth) {
    static const char *const through[] = {"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity", NULL};
    int cons[16];
    if (depth > 4) return 0;
    int n = il_graph_consumers(g, v, cons, 16);
    for (int i = 0; i < n && i < 16; i++) {
        const il_node *nd = &g->nodes[cons[i]];
        if (nd->dead || nd->domain[0]) continue;
        if (!strcmp(nd->op_type, "Gather") && nd->n_inputs >= 2 && nd->inputs[1] == v) {
            const il_value *data = &g->values[nd->inputs[0]];
            int64_t axis = il_attr_int(nd, "axis", 0);
            int r = data->constant ? data->constant->rank : data->rank;
            const int64_t *dims = data->constant ? data->constant->dims : data->dims;
            if (axis < 0) axis += r;
            if (r > 0 && axis >= 0 && axis < r && dims[axis] > 0) return dims[axis];
        }
        for (int k = 0; through[k]; k++)
            if (!strcmp(nd->op_type, through[k]) && nd->n_outputs >= 1 && nd->inputs[0] == v) {
                int64_t s = table_size(g, nd->outputs[0], depth + 1);
                if (s > 0) return s;
            }
    }
    return 0;
}

static int named_mask(const char *name) {
    char low[128];
    size_t i = 0;
    for (; name && name[i] && i + 1 < sizeof low; i++) low[i] = (char)tolower((unsigned char)name[i]);
    low[i] = 0;
    return strstr(low, "mask") != NULL;
}

void il_graph_fill_input(const il_graph *g, int i, il_tensor *t, uint64_t *rng) {
    int v = g->inputs[i];
    if (il_dtype_is_float(t->dtype) || t->dtype == IL_BOOL) {
        il_tensor_fill_input(t, rng);
        return;
    }
    if (named_mask(g->values[v].name)) {
        for (int64_t k = 0; k < il_tensor_numel(t); k++) il_tensor_set(t, k, 1);
        return;
    }
    int64_t n = table_size(g, v, 0);
    if (n > 0) {
        for (int64_t k = 0; k < il_tensor_numel(t); k++) il_tensor_set(t, k, (double)(il_rand_u64(rng) % (uint64_t)n));
        return;
    }
    il_tensor_fill_input(t, rng);
}

int64_t il_graph_fixed_batch(const il_graph *g) {
    if (g->n_inputs < 1) return 0;
    const il_value *x = &g->values[g->inputs[0]];
    if (x->rank < 2 || x->dims[0] < 1 || x->dim_param[0]) return 0;
    return x->dims[0];
}

il_status il_graph_batch(const il_graph *g, int64_t asked, int64_t *batch) {
    int64_t fixed = il_graph_fixed_batch(g);
    *batch = asked > 0 ? asked : fixed > 0 ? fixed : 1;
    if (fixed > 0 && asked > 0 && asked != fixed)
        return il_error(IL_ERR_SHAPE,
                        "the model's input '%s' has a fixed batch of %lld; batch %lld cannot be used (export the "
                        "model with a dynamic batch dim, or leave the batch out to use %lld)",
                        g->values[g->inputs[0]].name, (long long)fixed, (long long)asked, (long long)fixed);
    return IL_OK;
}

/* "NAME=1x3x224x224" (or commas) into name/rank/dims. */
static il_status parse_shape(const char *spec, char *name, size_t n, int *rank, int64_t *dims) {
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || (size_t)(eq - spec) >= n)
        return il_error(IL_ERR_INVALID, "--shape expects NAME=DIMS (e.g. input=1x3x224x224), got '%s'", spec);
    snprintf(name, n, "%.*s", (int)(eq - spec), spec);
    *rank = 0;
    for (const char *p = eq + 1; *p;) {
        char *end;
        long long d = strtoll(p, &end, 10);
        if (end == p || d < 1 || *rank >= IL_MAX_RANK || (*end && *end != 'x' && *end != ','))
            return il_error(IL_ERR_INVALID, "--shape %s: dims are positive integers joined by 'x'", spec);
        dims[(*rank)++] = d;
        p = *end ? end + 1 : end;
    }
    if (!*rank) return il_error(IL_ERR_INVALID, "--shape %s: no dims", spec);
    return IL_OK;
}

il_status il_graph_fix_shapes(il_graph *g, const char *const *specs, int n) {
    for (int s = 0; s < n; s++) {
        char name[256];
        int rank, found = -1;
        int64_t dims[IL_MAX_RANK];
        il_status st = parse_shape(specs[s], name, sizeof name, &rank, dims);
        if (st) return st;
        for (int i = 0; i < g->n_inputs; i++)
            if (!strcmp(g->values[g->inputs[i]].name, name)) found = g->inputs[i];
        if (found < 0) return il_error(IL_ERR_INVALID, "--shape %s: the model has no input named '%s'", specs[s], name);
        il_value *x = &g->values[found];
        if (x->rank >= 0 && x->rank != rank)
            return il_error(IL_ERR_SHAPE, "--shape %s: input '%s' has rank %d", specs[s], name, x->rank);
        for (int d = 0; d < rank && x->rank >= 0; d++)
            if (x->dims[d] >= 0 && !x->dim_param[d] && x->dims[d] != dims[d])
                return il_error(IL_ERR_SHAPE, "--shape %s: dim %d of input '%s' is fixed at %lld", specs[s], d, name,
                                (long long)x->dims[d]);
        x->rank = rank;
        for (int d = 0; d < rank; d++) {
            x->dims[d] = dims[d];
            free(x->dim_param[d]);
            x->dim_param[d] = NULL;
        }
    }
    return IL_OK;
}
