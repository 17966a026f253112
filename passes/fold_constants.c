/*
 * fold_constants.c - pass "fold-constants": compute at optimization time every node whose
 * result does not depend on the graph's inputs, and store the result as an initializer.
 *
 * Two sources of "known", both from the engine (no second implementation of any kernel):
 *  - nodes whose inputs are all initializers (Constant, a Transpose or Cast of a weight, ...)
 *    run through a one-node plan built around borrowed copies of those initializers;
 *  - shape arithmetic: il_infer_shapes folds what it can see before running - Shape of a
 *    tensor whose shape is static, and the Gather -> Unsqueeze -> Concat -> Reshape chains
 *    exporters build from it - so those values become constants once shapes are static.
 *    Symbolic dims (a dynamic batch) stay unknown, so nothing that depends on them folds.
 * Random ops are never folded; results much larger than their inputs (ConstantOfShape of a
 * big shape, Expand, Tile) are left to run time so the model file does not grow.
 */
#include "pass_util.h"

#include <stdio.h>

static int deterministic(const il_node *n) {
    static const char *const random_ops[] = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                                             "Multinomial", "Bernoulli", NULL};
    for (int i = 0; random_ops[i]; i++)
        if (!strcmp(n->op_type, random_ops[i])) return 0;
    for (int i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].type == IL_ATTR_GRAPH || n->attrs[i].type == IL_ATTR_GRAPHS) return 0; /* If, Loop, Scan */
    return 1;
}

/* A node we may replace by constants: deterministic, a known op, no graph output among its
 * outputs (those keep a producer, so the model's interface does not change). */
static int foldable(const il_graph *g, int k) {
    const il_node *n = &g->nodes[k];
    if (n->dead || !deterministic(n) || !il_op_find(n->domain, n->op_type) || n->n_outputs < 1) return 0;
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] >= 0 && g->values[n->outputs[i]].is_output) return 0;
    return 1;
}

/* Run node k alone: a graph holding just the node, its constant inputs wrapped (not copied).
 * On success outs[i] are new tensors, one per node output (NULL for omitted ones). */
static il_status run_alone(const il_graph *g, int k, il_tensor **outs) {
    const il_node *n = &g->nodes[k];
    il_graph *sub = il_graph_new("fold");
    for (int i = 0; i < g->n_opsets; i++) il_graph_set_opset(sub, g->opsets[i].domain, g->opsets[i].version);
    int in[64], out[16];
    for (int i = 0; i < n->n_inputs; i++) {
        in[i] = -1;
        if (n->inputs[i] < 0) continue;
        const il_tensor *c = pu_const(g, n->inputs[i]);
        il_tensor *w = il_tensor_wrap(c->dtype, c->rank, c->dims, c->data);
        in[i] = il_graph_add_constant(sub, g->values[n->inputs[i]].name, w);
    }
    for (int i = 0; i < n->n_outputs; i++) {
        out[i] = n->outputs[i] < 0 ? -1 : il_graph_value(sub, g->values[n->outputs[i]].name);
        if (out[i] >= 0) il_graph_add_output(sub, out[i]);
    }
    int j = il_graph_add_node(sub, n->op_type, n->domain, n->name, n->n_inputs, in, n->n_outputs, out);
    pu_copy_attrs_from(sub, j, n, NULL);
    il_plan_opts po = {.threads = 1};
    il_tensor **res = NULL;
    int nres = 0;
    il_status st = il_run_model(sub, NULL, 0, &po, &res, &nres);
    for (int i = 0, r = 0; i < n->n_outputs; i++) outs[i] = !st && out[i] >= 0 && r < nres ? res[r++] : NULL;
    free(res);
    il_graph_free(sub);
    return st;
}

/* Turn node k's outputs into initializers holding outs[] (taken) and remove the node. */
static void make_constant(il_graph *g, int k, il_tensor **outs) {
    il_graph_remove_node(g, k);
    for (int i = 0; i < g->nodes[k].n_outputs; i++) {
        int v = g->nodes[k].outputs[i];
        if (v < 0) continue;
        if (!outs[i]) continue;
        il_graph_add_constant(g, g->values[v].name, outs[i]);
        g->values[v].producer = -1;
    }
    pu_kill(g, k); /* already dead; removes producers left without readers */
}

/* Nodes whose inputs are all constants. Returns the number folded. */
static int fold_constant_inputs(il_graph *g, il_pass_stats *st) {
    int *order = malloc((size_t)(g->n_nodes + 1) * sizeof(int)), m, folded = 0;
    if (il_graph_topo_order(g, order, &m)) {
        il_error_clear();
        m = 0;
    }
    for (int j = 0; j < m; j++) {
        int k = order[j];
        const il_node *n = &g->nodes[k];
        if (!foldable(g, k) || n->n_inputs > 64 || n->n_outputs > 16) continue;
        int all = 1;
        int64_t in_elems = 0;
        for (int i = 0; i < n->n_inputs && all; i++) {
            const il_tensor *c = n->inputs[i] < 0 ? NULL : pu_const(g, n->inputs[i]);
            if (n->inputs[i] >= 0 && (!c || !il_dtype_size(c->dtype) || (!c->data && il_tensor_numel(c)))) all = 0;
            if (c) in_elems += il_tensor_numel(c);
        }
        if (!all) continue;
        il_tensor *outs[16] = {0};
        if (run_alone(g, k, outs)) { /* the op rejects these inputs: leave it for run time to report */
            il_error_clear();
            continue;
        }
        int64_t out_elems = 0;
        for (int i = 0; i < n->n_outputs; i++) out_elems += outs[i] ? il_tensor_numel(outs[i]) : 0;
        int64_t limit = 4 * in_elems > 65536 ? 4 * in_elems : 65536;
        if (n->n_inputs > 0 && out_elems > limit) {
            for (int i = 0; i < n->n_outputs; i++) il_tensor_free(outs[i]);
            continue;
        }
        il_pass_count(st, pu_is(g, k, "Constant") ? "Constant nodes made initializers" : "nodes folded", 1);
        make_constant(g, k, outs);
        folded++;
    }
    free(order);
    return folded;
}

/* Nodes whose outputs shape inference computed before running (shape arithmetic). */
static int fold_known_shapes(il_graph *g, il_pass_stats *st) {
    il_shapes *s = NULL;
    if (il_infer_shapes(g, 0, NULL, 0, &s)) { /* shapes not inferable: nothing to learn here */
        il_error_clear();
        return 0;
    }
    int folded = 0, n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        if (!s->folded[k] || !foldable(g, k)) continue;
        const il_node *n = &g->nodes[k];
        il_tensor *outs[16] = {0};
        int ok = n->n_outputs <= 16;
        for (int i = 0; i < n->n_outputs && ok; i++) {
            int v = n->outputs[i];
            if (v < 0) continue;
            if (!s->known[v]) ok = 0;
            else outs[i] = il_tensor_clone(s->known[v]);
        }
        if (!ok) {
            for (int i = 0; i < n->n_outputs && i < 16; i++) il_tensor_free(outs[i]);
            continue;
        }
        il_pass_count(st, pu_is(g, k, "Shape") ? "Shape nodes folded (static shapes)" : "shape computations folded", 1);
        make_constant(g, k, outs);
        folded++;
    }
    il_shapes_free(s);
    return folded;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    /* each round can make more inputs constant; a handful of rounds reaches the fixed point */
    for (int round = 0; round < 16; round++) {
        int n = fold_constant_inputs(g, st);
        n += fold_known_shapes(g, st);
        if (!n) break;
    }
    return IL_OK;
}

const il_pass il_pass_fold_constants = {
    "fold-constants",
    "compute nodes that depend only on constants (incl. Shape->Gather->Concat->Reshape once shapes are static)",
    run,
};
