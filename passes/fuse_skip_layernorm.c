/*
 * fuse_skip_layernorm.c - pass "fuse-skip-layernorm": a transformer block's residual Add and the
 * LayerNormalization that reads it become one ai.inferlab SkipLayerNormalization (ONNX Runtime's
 * com.microsoft op), so the sum is normalized while its row is in cache:
 *
 *     LayerNormalization(Add(a, b), gamma [, beta])  ->  SkipLayerNormalization(a, b, gamma [, beta])
 *
 * Normalized over the last axis only, gamma and beta one value per element of it, a and b of one
 * shape (under both bindings of the symbolic dims), float32. Where something else reads the sum
 * (pre-LN blocks: the next residual Add), the fused node writes it as its fourth output; else it
 * is never written (post-LN BERT). lower-fused writes Add + LayerNormalization back, and a plan
 * for an accelerator without the kernel splits it again (engine/plan_device.c).
 */
#include "pass_util.h"

/* LayerNormalization k normalizes the last axis of its rank-r input, in float, Y its only output used. */
static int last_axis_ln(const il_graph *g, const pu_shapes *s, int k) {
    const il_node *n = &g->nodes[k];
    int r = pu_rank(s, n->inputs[0]);
    int64_t axis = il_attr_int(n, "axis", -1);
    if (r < 1 || (axis != -1 && axis != r - 1) || il_attr_int(n, "stash_type", 1) != 1) return 0;
    for (int i = 1; i < n->n_outputs; i++)
        if (n->outputs[i] >= 0 && pu_uses(g, n->outputs[i])) return 0;
    return n->n_outputs >= 1 && n->n_inputs >= 2 && n->n_inputs <= 3;
}

/* v is one value per element of the last dim (h), float32. */
static int per_hidden(const pu_shapes *s, int v, int64_t h) {
    return v >= 0 && pu_rank(s, v) == 1 && pu_dim(s, v, 0) == h && pu_dtype(s, v) == IL_F32;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        if ((!pu_is(g, k, "LayerNormalization") && !pu_is_fused(g, k, "LayerNormalization")) || !last_axis_ln(g, &s, k))
            continue;
        const il_node *n = &g->nodes[k];
        int x = n->inputs[0], add = pu_producer(g, x);
        int64_t h = pu_dim(&s, x, -1);
        int gamma = n->inputs[1], beta = n->n_inputs > 2 ? n->inputs[2] : -1;
        if (!pu_is(g, add, "Add") || h <= 0 || !per_hidden(&s, gamma, h) || (beta >= 0 && !per_hidden(&s, beta, h)))
            continue;
        int a = g->nodes[add].inputs[0], b = g->nodes[add].inputs[1];
        if (g->nodes[add].n_inputs != 2 || a < 0 || b < 0 || pu_dtype(&s, a) != IL_F32 || pu_dtype(&s, b) != IL_F32 ||
            !pu_same_shape(&s, a, x) || !pu_same_shape(&s, b, x))
            continue;
        int keep_sum = pu_uses(g, x) > 1; /* read beyond this LayerNorm, or a graph output */
        int in[4] = {a, b, gamma, beta}, out[4] = {n->outputs[0], -1, -1, keep_sum ? x : -1};
        float eps = il_attr_float(n, "epsilon", 1e-5f);
        int j = pu_add_node(g, "SkipLayerNormalization", IL_DOMAIN, k, "_skip", beta >= 0 ? 4 : 3, in,
                            keep_sum ? 4 : 1, out); /* may move g->nodes; a and b read by it before the kill */
        il_node_set_float(g, j, "epsilon", eps);
        g->nodes[k].dead = 1;
        if (!keep_sum) pu_kill(g, add);
        else g->nodes[add].dead = 1; /* x is the fused node's output now */
        pu_use_fused_domain(g);
        il_pass_count(st, keep_sum ? "residual Add + LayerNorm fused (sum kept)" : "residual Add + LayerNorm fused", 1);
    }
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_skip_layernorm = {"fuse-skip-layernorm",
                                             "Add(a, b) -> LayerNormalization (last axis): one SkipLayerNormalization",
                                             run};
