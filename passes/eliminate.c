/*
 * eliminate.c - pass "eliminate": remove nodes that pass their input through unchanged at
 * inference time: Identity, Dropout (its mask unused, not in training mode), and the no-op
 * cases of Reshape and Expand (output shape = input shape), Transpose (identity permutation)
 * and Cast (to the dtype it already has). Readers of the output read the input instead.
 *
 * Shapes are compared under two different bindings of the symbolic dims (pass_util.h), so a
 * Reshape from [N, 8] to [N, 8] goes but one from [N, 8] to [1, 8] stays, even though they agree
 * when N is 1.
 */
#include "pass_util.h"

/* Dropout is a no-op at inference unless training_mode (opset 12: an input) is true. */
static int dropout_noop(const il_graph *g, int k) {
    const il_node *n = &g->nodes[k];
    if (n->n_outputs > 1 && n->outputs[1] >= 0 && pu_uses(g, n->outputs[1])) return 0; /* the mask is read */
    if (n->n_inputs > 2 && n->inputs[2] >= 0) {
        double t;
        if (!pu_scalar(g, n->inputs[2], &t) || t != 0) return 0;
    }
    return 1;
}

static int transpose_noop(const il_graph *g, const pu_shapes *s, int k) {
    const int64_t *perm;
    int np = il_attr_ints(&g->nodes[k], "perm", &perm);
    int r = pu_rank(s, g->nodes[k].inputs[0]);
    if (!np) return r >= 0 && r <= 1; /* the default reverses the dims */
    for (int i = 0; i < np; i++)
        if (perm[i] != i) return 0;
    return 1;
}

static int cast_noop(const il_graph *g, const pu_shapes *s, int k) {
    il_dtype from = pu_dtype(s, g->nodes[k].inputs[0]);
    return from != IL_UNDEFINED && il_attr_int(&g->nodes[k], "to", -1) == (int64_t)from;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        const il_node *n = &g->nodes[k];
        if (n->dead || n->n_inputs < 1 || n->n_outputs < 1 || n->inputs[0] < 0 || n->outputs[0] < 0) continue;
        int x = n->inputs[0], y = n->outputs[0];
        const char *what = NULL;
        if (pu_is(g, k, "Identity")) what = "Identity removed";
        else if (pu_is(g, k, "Dropout") && dropout_noop(g, k)) what = "Dropout removed";
        else if ((pu_is(g, k, "Reshape") || pu_is(g, k, "Expand")) && pu_same_shape(&s, x, y))
            what = pu_is(g, k, "Reshape") ? "no-op Reshape removed" : "no-op Expand removed";
        else if (pu_is(g, k, "Transpose") && transpose_noop(g, &s, k)) what = "no-op Transpose removed";
        else if (pu_is(g, k, "Cast") && cast_noop(g, &s, k)) what = "no-op Cast removed";
        if (what && pu_bypass(g, k, x, y)) il_pass_count(st, what, 1);
    }
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_eliminate = {
    "eliminate",
    "remove Identity, inference-time Dropout and no-op Reshape/Transpose/Cast/Expand",
    run,
};
