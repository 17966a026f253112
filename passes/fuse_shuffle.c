/*
 * fuse_shuffle.c - pass "fuse-shuffle": ShuffleNet's channel shuffle, as exporters write it,
 *
 *     Reshape [N, C, H, W] -> [N, G, C/G, H, W], Transpose (0, 2, 1, 3, 4), Reshape -> [N, C, H, W]
 *
 * becomes one ai.inferlab.ChannelShuffle(groups = G) (engine/ops/fused.c), which a native-layout
 * kernel (engine/cpu/dnnl_native.c) runs without converting the chain of convolutions around it
 * to plain and back. Any number of spatial dims.
 *
 * The Reshapes' shapes are usually computed from Shape at run time (the batch is symbolic when
 * the pass runs), so the pass reads the inferred shapes, not the shape inputs: C, G and the
 * spatial dims must be static; the batch then is the same throughout, since Reshape keeps the
 * element count. The intermediate values must have no other reader.
 *
 * A ShuffleNet unit also joins its branches with a Concat along the channels before the shuffle
 * and splits the shuffled channels in two with Slices after it (torchvision's chunk). Each is a
 * full copy of the unit's activations, so the shuffle takes them in: the Concat's inputs become
 * its inputs (it shuffles their join) and the Slices' results its outputs (the shuffled channels
 * in equal parts), one gather instead of three copies. Taken only where the native kernel
 * (engine/cpu/dnnl_native.c) gathers each output from whole runs of one input's channels: g
 * divides each part, and each group's run of a part lies within one input (ShuffleNet's units:
 * two branches of C/2 channels, 2 groups, 2 parts). The Slices' parameters may be Shape
 * arithmetic: their values are read from shape inference, equal under both bindings.
 */
#include "pass_util.h"

/* Node k a Reshape ending a channel shuffle: set *x (the shuffled input) and *groups. */
static int shuffle_pattern(const il_graph *g, const pu_shapes *s, int k, int *x, int64_t *groups) {
    if (!pu_is(g, k, "Reshape") || g->nodes[k].n_outputs != 1) return 0;
    int t = g->nodes[k].inputs[0], tr = pu_producer(g, t);
    if (!pu_is(g, tr, "Transpose") || pu_sole_consumer(g, t) != k) return 0;
    int r = g->nodes[tr].inputs[0], rs = pu_producer(g, r);
    if (!pu_is(g, rs, "Reshape") || pu_sole_consumer(g, r) != tr) return 0;
    int v = g->nodes[rs].inputs[0], y = g->nodes[k].outputs[0], rank = pu_rank(s, v);
    if (rank < 3 || pu_rank(s, r) != rank + 1 || pu_rank(s, y) != rank) return 0;
    const int64_t *perm;
    if (il_attr_ints(&g->nodes[tr], "perm", &perm) != rank + 1) return 0;
    for (int d = 0; d <= rank; d++)
        if (perm[d] != (d == 1 ? 2 : d == 2 ? 1 : d)) return 0;
    int64_t c = pu_dim(s, v, 1), grp = pu_dim(s, r, 1);
    if (c < 1 || grp < 1 || pu_dim(s, r, 2) * grp != c || pu_dim(s, y, 1) != c) return 0;
    for (int d = 2; d < rank; d++) {
        int64_t e = pu_dim(s, v, d);
        if (e < 0 || pu_dim(s, r, d + 1) != e || pu_dim(s, y, d) != e) return 0;
    }
    *x = v;
    *groups = grp;
    return 1;
}

/* The value of v as one integer, known at pass time under both bindings of the symbolic dims. */
static int known_int(const il_graph *g, const pu_shapes *s, int v, int64_t *x) {
    const il_tensor *t = pu_const(g, v), *tb = NULL;
    if (!t && s->a && v < s->a->n_values) t = s->a->known[v], tb = s->b && v < s->b->n_values ? s->b->known[v] : t;
    if (!t || !t->data || il_tensor_numel(t) != 1 || (t->dtype != IL_I64 && t->dtype != IL_I32)) return 0;
    *x = (int64_t)il_tensor_get(t, 0);
    return !tb || (tb->data && il_tensor_numel(tb) == 1 && (int64_t)il_tensor_get(tb, 0) == *x);
}

/* Whether the native kernel can gather every part: see the comment at the top. */
static int gatherable(const int64_t *chans, int n_in, int64_t groups, int parts) {
    int64_t total = 0;
    for (int i = 0; i < n_in; i++) total += chans[i];
    if (groups > 8 || total % groups || total % parts || (total / parts) % groups) return 0;
    int64_t len = total / parts / groups;
    for (int m = 0; m < parts; m++)
        for (int64_t k = 0; k < groups; k++) {
            int64_t j = k * (total / groups) + m * len;
            int i = 0;
            while (j >= chans[i]) j -= chans[i++];
            if (j + len > chans[i]) return 0;
        }
    return 1;
}

/* Node k a Slice of v along the channels (axis 1 of rank r), step 1, static bounds: *b, *e. */
static int channel_slice(const il_graph *g, const pu_shapes *s, int k, int v, int64_t c, int64_t *b, int64_t *e) {
    const il_node *n = &g->nodes[k];
    int r = pu_rank(s, v);
    int64_t axis, step = 1;
    if (!pu_is(g, k, "Slice") || pu_opset(g) < 10 || n->inputs[0] != v || n->n_inputs < 4 || n->n_outputs != 1) return 0;
    if (!known_int(g, s, n->inputs[1], b) || !known_int(g, s, n->inputs[2], e) || !known_int(g, s, n->inputs[3], &axis))
        return 0;
    if (n->n_inputs > 4 && n->inputs[4] >= 0 && !known_int(g, s, n->inputs[4], &step)) return 0;
    if (axis < 0) axis += r;
    if (axis != 1 || step != 1) return 0;
    if (*b < 0) *b += c;
    if (*e < 0) *e += c;
    *b = *b < 0 ? 0 : *b > c ? c : *b;
    *e = *e < 0 ? 0 : *e > c ? c : *e;
    return *e > *b && pu_dim(s, n->outputs[0], 1) == *e - *b;
}

/* Node k reads only what ends in the nodes marked in `in` (a Slice's parameters computed from
 * Shape(y)): it dies with them. */
static int feeds_only(const il_graph *g, int k, const unsigned char *in, int depth) {
    if (depth > 16) return 0;
    for (int o = 0; o < g->nodes[k].n_outputs; o++) {
        int v = g->nodes[k].outputs[o], cons[16];
        if (v < 0) continue;
        if (g->values[v].is_output) return 0;
        int n = il_graph_consumers(g, v, cons, 16);
        if (n > 16) return 0;
        for (int i = 0; i < n; i++)
            if (!in[cons[i]] && !feeds_only(g, cons[i], in, depth + 1)) return 0;
    }
    return 1;
}

/* ChannelShuffle node j: take in the Concat before it and the Slices after it where it can
 * (see the top); returns the node that now does the shuffle. */
static int absorb(il_graph *g, const pu_shapes *s, int j, il_pass_stats *st) {
    int x = g->nodes[j].inputs[0], y = g->nodes[j].outputs[0], cat = pu_producer(g, x), r = pu_rank(s, x);
    int64_t groups = il_attr_int(&g->nodes[j], "groups", 1), c = pu_dim(s, x, 1);
    int ins[32] = {x}, n_in = 1, outs[8] = {y}, n_out = 1;
    int64_t chans[32] = {c};
    /* the Concat: along the channels, its result read by the shuffle alone */
    if (pu_is(g, cat, "Concat") && pu_sole_consumer(g, x) == j && !g->values[x].is_output &&
        g->nodes[cat].n_inputs <= 32) {
        int64_t axis = il_attr_int(&g->nodes[cat], "axis", 0), sum = 0, ch[32];
        int ok = (axis < 0 ? axis + r : axis) == 1;
        for (int i = 0; ok && i < g->nodes[cat].n_inputs; i++) {
            int v = g->nodes[cat].inputs[i];
            ch[i] = pu_dim(s, v, 1);
            ok = v >= 0 && pu_rank(s, v) == r && ch[i] > 0 && pu_dtype(s, v) == pu_dtype(s, x);
            sum += ch[i];
        }
        if (ok && sum == c && gatherable(ch, g->nodes[cat].n_inputs, groups, 1)) {
            n_in = g->nodes[cat].n_inputs;
            memcpy(ins, g->nodes[cat].inputs, sizeof(int) * (size_t)n_in);
            memcpy(chans, ch, sizeof(int64_t) * (size_t)n_in);
        }
    }
    /* the Slices: every reader of y but the Shapes that compute their bounds, in equal parts */
    int cons[16], n = il_graph_consumers(g, y, cons, 16), slices[8], n_sl = 0, ok = !g->values[y].is_output && n <= 16;
    int64_t begin[8];
    unsigned char *mark = calloc((size_t)g->n_nodes, 1);
    for (int i = 0; ok && i < n; i++) {
        int64_t b, e;
        if (channel_slice(g, s, cons[i], y, c, &b, &e)) {
            ok = n_sl < 8;
            if (ok) begin[n_sl] = b, slices[n_sl++] = cons[i], mark[cons[i]] = 1;
        } else {
            ok = pu_is(g, cons[i], "Shape");
        }
    }
    for (int i = 0; ok && i < n; i++)
        if (!mark[cons[i]]) ok = feeds_only(g, cons[i], mark, 0);
    ok = ok && n_sl >= 2 && c % n_sl == 0 && gatherable(chans, n_in, groups, n_sl);
    for (int m = 0; ok && m < n_sl; m++) { /* part m is the Slice starting at m * C / parts */
        int f = -1;
        for (int i = 0; i < n_sl; i++)
            if (begin[i] == m * (c / n_sl) && pu_dim(s, g->nodes[slices[i]].outputs[0], 1) == c / n_sl) f = i;
        ok = f >= 0;
        if (ok) outs[m] = g->nodes[slices[f]].outputs[0];
    }
    free(mark);
    if (ok) n_out = n_sl;
    if (n_in == 1 && n_out == 1) return j;
    int k = pu_add_node(g, "ChannelShuffle", IL_DOMAIN, j, n_out > 1 ? "_split" : "_join", n_in, ins, n_out, outs);
    il_node_set_int(g, k, "groups", groups);
    pu_kill(g, j);
    if (n_out > 1)
        for (int i = 0; i < n_sl; i++) pu_kill(g, slices[i]);
    if (n_in > 1) il_pass_count(st, "Concat joined into ChannelShuffle", 1);
    if (n_out > 1) il_pass_count(st, "channel Slices split off ChannelShuffle", n_out);
    return k;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        int x;
        int64_t groups;
        if (g->nodes[k].dead || !shuffle_pattern(g, &s, k, &x, &groups)) continue;
        int y = g->nodes[k].outputs[0];
        int j = pu_add_node(g, "ChannelShuffle", IL_DOMAIN, k, "_shuffle", 1, &x, 1, &y);
        il_node_set_int(g, j, "groups", groups);
        pu_use_fused_domain(g);
        pu_kill(g, k);
        il_pass_count(st, "Reshape-Transpose-Reshape made ChannelShuffle", 1);
        absorb(g, &s, j, st);
    }
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_shuffle = {"fuse-shuffle", "Reshape -> Transpose (0,2,1,...) -> Reshape channel shuffles -> ChannelShuffle", run};
