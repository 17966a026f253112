/*
 * merge_chains.c - pass "merge-chains": collapse chains of data-movement ops.
 *  - Transpose(Transpose(x, p1), p2) = Transpose(x, q) with q[i] = p1[p2[i]]; when q is the
 *    identity both go.
 *  - Reshape(R(x), shape) where R is Reshape, Flatten, Squeeze or Unsqueeze: only the element
 *    order matters to a Reshape, which none of these change, so the Reshape can read x. This
 *    holds when the outer shape has no 0 entry (0 copies a dim of its direct input).
 * The inner node stays while something else reads it (dead once nothing does).
 */
#include "pass_util.h"

/* The permutation of Transpose node k (default: reversed dims), rank from shapes; 0 if unknown. */
static int perm_of(const il_graph *g, const pu_shapes *s, int k, int64_t *p) {
    const int64_t *a;
    int n = il_attr_ints(&g->nodes[k], "perm", &a);
    if (n) {
        if (n > IL_MAX_RANK) return 0;
        memcpy(p, a, (size_t)n * sizeof(int64_t));
        return n;
    }
    int r = pu_rank(s, g->nodes[k].inputs[0]);
    for (int i = 0; i < r; i++) p[i] = r - 1 - i;
    return r > 0 ? r : 0;
}

static int merge_transposes(il_graph *g, const pu_shapes *s, int k, il_pass_stats *st) {
    int inner = pu_producer(g, g->nodes[k].inputs[0]);
    if (!pu_is(g, inner, "Transpose")) return 0;
    int64_t p1[IL_MAX_RANK], p2[IL_MAX_RANK], q[IL_MAX_RANK];
    int r1 = perm_of(g, s, inner, p1), r2 = perm_of(g, s, k, p2);
    if (!r1 || r1 != r2) return 0;
    int identity = 1;
    for (int i = 0; i < r2; i++) {
        if (p2[i] < 0 || p2[i] >= r1) return 0;
        q[i] = p1[p2[i]];
        identity &= q[i] == i;
    }
    int x = g->nodes[inner].inputs[0], y = g->nodes[k].outputs[0];
    if (identity) {
        if (!pu_bypass(g, k, x, y)) return 0;
        il_pass_count(st, "Transpose pairs cancelled", 1);
        return 1;
    }
    int j = pu_add_node(g, "Transpose", "", k, "", 1, &x, 1, &y);
    il_node_set_ints(g, j, "perm", r2, q);
    pu_kill(g, k);
    il_pass_count(st, "Transpose chains merged", 1);
    return 1;
}

static int merge_reshapes(il_graph *g, int k, il_pass_stats *st) {
    const il_node *n = &g->nodes[k];
    if (n->n_inputs < 2) return 0;
    int inner = pu_producer(g, n->inputs[0]);
    if (!pu_is(g, inner, "Reshape") && !pu_is(g, inner, "Flatten") && !pu_is(g, inner, "Squeeze") &&
        !pu_is(g, inner, "Unsqueeze"))
        return 0;
    const il_tensor *shape = pu_const(g, n->inputs[1]);
    if (!shape || !shape->data) return 0;
    for (int64_t i = 0; i < il_tensor_numel(shape); i++)
        if (il_tensor_get(shape, i) == 0) return 0;
    int in[2] = {g->nodes[inner].inputs[0], n->inputs[1]}, y = n->outputs[0];
    int j = pu_add_node(g, "Reshape", "", k, "", 2, in, 1, &y);
    pu_copy_attrs(g, j, k, NULL);
    pu_kill(g, k);
    il_pass_count(st, "Reshape chains merged", 1);
    return 1;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    /* topological order: a chain of three merges front to back in one sweep */
    int *order = malloc((size_t)(g->n_nodes + 1) * sizeof(int)), m;
    il_status e = il_graph_topo_order(g, order, &m);
    for (int j = 0; j < m && !e; j++) {
        int k = order[j];
        if (g->nodes[k].dead || g->nodes[k].n_inputs < 1 || g->nodes[k].inputs[0] < 0) continue;
        if (pu_is(g, k, "Transpose")) merge_transposes(g, &s, k, st);
        else if (pu_is(g, k, "Reshape")) merge_reshapes(g, k, st);
    }
    free(order);
    pu_shapes_free(&s);
    return e;
}

const il_pass il_pass_merge_chains = {"merge-chains", "merge Transpose->Transpose and Reshape-like->Reshape chains", run};
