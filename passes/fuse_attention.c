/*
 * fuse_attention.c - pass "fuse-attention": scaled dot-product attention as transformer exports
 * spell it,
 *
 *     scores = MatMul(Q, Kt)  [/ c  or  * c]  [+ mask]
 *     Y      = MatMul(Softmax(scores, axis=-1), V)
 *
 * becomes ai.inferlab.Attention(Q, Kt, V, mask) {scale}, whose kernel keeps each row of scores
 * in a small buffer instead of writing the [.., S, S] score and probability tensors to memory
 * (engine/ops/fused_attention.c). Q, Kt and V must have one rank (>= 2) and be float32; the
 * scores and probabilities must have no other reader.
 *
 * transformers' exports through PyTorch's SDPA guard the probabilities of rows whose every key
 * is masked (-inf everywhere: Softmax gives NaN) with Where(IsNaN(P), 0, P) before the second
 * MatMul. Such a row of P is all NaN, so its row of P @ V is all NaN where the guarded graph
 * has 0 (with finite V): the guard moves to the output as Where(IsNaN(Y), 0, Y), on [.., S, D]
 * instead of [.., S, S]. (Only NaN coming from the inputs themselves is treated differently.)
 *
 * The exports split the heads with copies around it: Q and V as Transpose(X [B, S, H, D],
 * [0, 2, 1, 3]), Kt as Transpose(X, [0, 2, 3, 1]), and the context merged back by Transpose(Y,
 * [0, 2, 1, 3]). Where all four are there (read by nothing else), Attention becomes
 * ai.inferlab MultiHeadAttention(Xq, Xk, Xv, mask), which reads the heads in place and writes
 * [B, Sq, H, Dv] (the four copies per layer go).
 */
#include "pass_util.h"

/* Softmax node k normalizes the last axis (for opset < 13, where Softmax flattens from axis,
 * only when that axis is the last one). */
static int softmax_last(const il_graph *g, const pu_shapes *s, int k) {
    int r = pu_rank(s, g->nodes[k].inputs[0]);
    int64_t axis = il_attr_int(&g->nodes[k], "axis", pu_opset(g) >= 13 ? -1 : 1);
    return r >= 2 && (axis == -1 || axis == r - 1);
}

/* v = [scale *] MatMul(Q, Kt) with single-use intermediates: returns the MatMul node. */
static int scaled_scores(const il_graph *g, int v, float *scale) {
    int k = pu_producer(g, v);
    double c;
    *scale = 1.0f;
    if (pu_sole_consumer(g, v) < 0) return -1;
    if (pu_is(g, k, "Div") && pu_scalar(g, g->nodes[k].inputs[1], &c) && c != 0) {
        *scale = (float)(1.0 / c);
        v = g->nodes[k].inputs[0];
    } else if (pu_is(g, k, "Mul")) {
        int found = 0;
        for (int i = 0; i < 2 && !found; i++)
            if (pu_scalar(g, g->nodes[k].inputs[1 - i], &c)) {
                *scale = (float)c;
                v = g->nodes[k].inputs[i];
                found = 1;
            }
        if (!found) return -1;
        if (pu_sole_consumer(g, v) < 0) return -1;
    } else if (!pu_is(g, k, "MatMul")) {
        return -1;
    }
    k = pu_producer(g, v);
    return pu_is(g, k, "MatMul") && pu_sole_consumer(g, v) >= 0 ? k : -1;
}

/* P guarded as Where(IsNaN(P), 0, P), P read by nothing else: returns the Where node, else -1. */
static int nan_guard(const il_graph *g, int p, int *zero) {
    int cons[3], isn = -1, wh = -1;
    double c;
    if (il_graph_consumers(g, p, cons, 3) != 2 || g->values[p].is_output) return -1;
    for (int i = 0; i < 2; i++) {
        if (pu_is(g, cons[i], "IsNaN")) isn = cons[i];
        if (pu_is(g, cons[i], "Where")) wh = cons[i];
    }
    if (isn < 0 || wh < 0 || g->nodes[wh].n_inputs != 3) return -1;
    const int *in = g->nodes[wh].inputs;
    if (in[0] != g->nodes[isn].outputs[0] || in[2] != p || pu_sole_consumer(g, in[0]) != wh) return -1;
    if (!pu_scalar(g, in[1], &c) || c != 0) return -1;
    *zero = in[1];
    return wh;
}

/* Node k is a Transpose of perm `want` (4 axes). */
static int transpose_of(const il_graph *g, int k, const int64_t *want) {
    const int64_t *perm;
    return pu_is(g, k, "Transpose") && il_attr_ints(&g->nodes[k], "perm", &perm) == 4 &&
           !memcmp(perm, want, 4 * sizeof *perm);
}

/* v = Transpose(x, perm `want`) read by nothing else: returns x, else -1. */
static int head_transpose(const il_graph *g, int v, const int64_t *want) {
    int k = pu_producer(g, v);
    return transpose_of(g, k, want) && pu_sole_consumer(g, v) >= 0 ? g->nodes[k].inputs[0] : -1;
}

/* Dim d of a and dim e of b are one number under both bindings of the symbolic dims (a
 * symbolic batch is the same batch). */
static int same_dim(const pu_shapes *s, int a, int d, int b, int e) {
    if (!s->a || !s->b) return 0;
    const il_tensor *ta[2] = {&s->a->info[a], &s->b->info[a]}, *tb[2] = {&s->a->info[b], &s->b->info[b]};
    for (int i = 0; i < 2; i++)
        if (ta[i]->rank != 4 || tb[i]->rank != 4 || ta[i]->dims[d] < 0 || ta[i]->dims[d] != tb[i]->dims[e]) return 0;
    return 1;
}

/* Attention node k between the head transposes: MultiHeadAttention on their inputs. */
static void fold_heads(il_graph *g, const pu_shapes *s, int k, il_pass_stats *st) {
    static const int64_t split[4] = {0, 2, 1, 3}, keys[4] = {0, 2, 3, 1};
    const il_node *n = &g->nodes[k];
    int x[4] = {-1, -1, -1, n->n_inputs > 3 ? n->inputs[3] : -1};
    for (int i = 0; i < 3; i++)
        if ((x[i] = head_transpose(g, n->inputs[i], i == 1 ? keys : split)) < 0) return;
    int merge = pu_sole_consumer(g, n->outputs[0]);
    if (!transpose_of(g, merge, split)) return;
    /* one batch and one head count in Q, K and V: Attention broadcasts them, MultiHeadAttention not */
    for (int i = 1; i < 3; i++)
        if (!same_dim(s, x[0], 0, x[i], 0) || !same_dim(s, x[0], 2, x[i], 2)) return;
    int y = g->nodes[merge].outputs[0];
    int j = pu_add_node(g, "MultiHeadAttention", IL_DOMAIN, k, "_heads", x[3] >= 0 ? 4 : 3, x, 1, &y);
    il_node_set_float(g, j, "scale", il_attr_float(&g->nodes[k], "scale", 1.0f));
    pu_kill(g, merge);
    il_pass_count(st, "head transposes folded into the attention", 4);
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        if (!pu_is(g, k, "Softmax") || !softmax_last(g, &s, k)) continue;
        int p = g->nodes[k].outputs[0], mm2 = pu_sole_consumer(g, p), zero = -1;
        if (!pu_is(g, mm2, "MatMul")) { /* perhaps behind SDPA's NaN guard */
            int wh = nan_guard(g, p, &zero);
            if (wh >= 0) p = g->nodes[wh].outputs[0], mm2 = pu_sole_consumer(g, p);
        }
        if (!pu_is(g, mm2, "MatMul") || g->nodes[mm2].inputs[0] != p) continue;
        int sc = g->nodes[k].inputs[0], add = pu_producer(g, sc), mask = -1, qk = -1;
        float scale = 1.0f;
        if (pu_is(g, add, "Add") && pu_sole_consumer(g, sc) == k) {
            for (int i = 0; i < 2 && qk < 0; i++)
                if ((qk = scaled_scores(g, g->nodes[add].inputs[i], &scale)) >= 0) mask = g->nodes[add].inputs[1 - i];
        }
        if (qk < 0) qk = scaled_scores(g, sc, &scale);
        if (qk < 0) continue;
        int q = g->nodes[qk].inputs[0], kt = g->nodes[qk].inputs[1], v = g->nodes[mm2].inputs[1];
        int r = pu_rank(&s, q);
        if (r < 2 || pu_rank(&s, kt) != r || pu_rank(&s, v) != r || pu_dtype(&s, q) != IL_F32) continue;
        if (mask >= 0 && (pu_dtype(&s, mask) != IL_F32 || pu_rank(&s, mask) < 0 || pu_rank(&s, mask) > r)) continue;
        int in[4] = {q, kt, v, mask}, y = g->nodes[mm2].outputs[0], att = y;
        if (zero >= 0) att = pu_new_value(g, g->nodes[k].name, y);
        int j = pu_add_node(g, "Attention", IL_DOMAIN, k, "_attention", mask >= 0 ? 4 : 3, in, 1, &att);
        il_node_set_float(g, j, "scale", scale);
        if (zero >= 0) { /* the guard, on the output */
            int nan = pu_new_value(g, g->nodes[k].name, y);
            g->values[nan].dtype = IL_BOOL;
            pu_add_node(g, "IsNaN", "", k, "_attention_isnan", 1, &att, 1, &nan);
            int w[3] = {nan, zero, att};
            pu_add_node(g, "Where", "", k, "_attention_guard", 3, w, 1, &y);
            il_pass_count(st, "NaN guards moved to the attention output", 1);
        }
        pu_use_fused_domain(g);
        pu_kill(g, mm2);
        il_pass_count(st, "attention blocks fused", 1);
    }
    for (int k = 0; k < g->n_nodes; k++)
        if (pu_is_fused(g, k, "Attention")) fold_heads(g, &s, k, st);
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_attention = {"fuse-attention", "MatMul -> scale -> mask Add -> Softmax -> MatMul -> one Attention op", run};
