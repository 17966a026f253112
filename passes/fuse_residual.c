/*
 * fuse_residual.c - pass "fuse-residual": a Conv whose only reader is an Add with another
 * tensor of the same shape (a residual connection, as in ResNet blocks), optionally followed
 * by an activation, becomes one FusedConv(X, W, B, Z) that adds Z and applies the activation
 * in the convolution's epilogue:
 *
 *     Relu(Add(Conv(x, W, B), z))  ->  FusedConv(x, W, B, z) {activation = "Relu"}
 *
 * Z must have the conv output's shape exactly (no broadcasting), checked under two bindings
 * of the symbolic dims. A FusedConv without residual or activation counts as a Conv.
 */
#include "pass_util.h"

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        int fused = pu_conv(g, k) - 1;
        if (fused < 0) continue;
        const il_node *n = &g->nodes[k];
        if (fused && (il_node_attr(n, "activation") || (n->n_inputs > 3 && n->inputs[3] >= 0))) continue;
        int y = n->outputs[0], add = pu_sole_consumer(g, y);
        if (!pu_is(g, add, "Add")) continue;
        int z = pu_other_input(g, add, y);
        if (z < 0 || z == y || pu_dtype(&s, y) != IL_F32 || !pu_same_shape(&s, z, y)) continue;
        int in[4] = {n->inputs[0], n->inputs[1], n->n_inputs > 2 ? n->inputs[2] : -1, z};
        int out = g->nodes[add].outputs[0], last = add;
        const char *act = NULL;
        float p[2];
        int np = 0, a = pu_sole_consumer(g, out);
        if (pu_activation(g, a, &act, p, &np) && g->nodes[a].inputs[0] == out) {
            out = g->nodes[a].outputs[0];
            last = a;
        } else {
            act = NULL;
        }
        int j = pu_add_node(g, "FusedConv", IL_DOMAIN, k, "_residual", 4, in, 1, &out);
        pu_copy_attrs(g, j, k, NULL);
        if (act) pu_set_activation(g, j, act, p, np);
        pu_use_fused_domain(g);
        pu_kill(g, last);
        il_pass_count(st, act ? "Conv+residual Add+activation fused" : "Conv+residual Add fused", 1);
    }
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_residual = {"fuse-residual", "Conv + residual Add (+ activation) -> FusedConv with the add in its epilogue", run};
