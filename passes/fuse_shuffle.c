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
    }
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_shuffle = {"fuse-shuffle", "Reshape -> Transpose (0,2,1,...) -> Reshape channel shuffles -> ChannelShuffle", run};
