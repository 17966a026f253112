/*
 * fuse_scale.c - pass "fuse-se-scale": squeeze-excitation's product feeding a convolution
 * becomes one ai.inferlab ScaledConv, so the scaled activation is never written out:
 *
 *     Conv(Mul(s, x), W, B)          ->  ScaledConv(x, W, B, -, s)
 *     FusedConv(Mul(x, s), W, B, Z)  ->  ScaledConv(x, W, B, Z, s)   (activation kept)
 *
 * s must be one scale per image and channel of x ([N, C, 1, ...], N equal to x's under both
 * bindings of the symbolic dims: the global pool of x itself in EfficientNet and MobileNetV3),
 * and the product read by nothing but the convolution's X. The oneDNN kernel (dnnl_conv.c)
 * scales the weight (or a copy of one image in cache) per image; EfficientNet-B0's Mul read
 * and wrote every depthwise output again (8% of its batch-8 run on one thread).
 */
#include "pass_util.h"

/* Dim d of values x and y known and equal under both bindings. */
static int same_dim(const pu_shapes *s, int x, int y, int d) {
    const il_shapes *both[2] = {s->a, s->b};
    if (!s->a) return 0;
    for (int j = 0; j < 2; j++) {
        if (!both[j]) continue;
        const il_tensor *a = &both[j]->info[x], *b = &both[j]->info[y];
        if (a->rank <= d || b->rank <= d || a->dims[d] < 0 || a->dims[d] != b->dims[d]) return 0;
    }
    return 1;
}

/* Of Mul node m's inputs, the per-image channel scale of the other (returned; *x the other), or -1. */
static int scale_of(const il_graph *g, const pu_shapes *s, int m, int *x) {
    const il_node *n = &g->nodes[m];
    if (n->n_inputs != 2 || n->n_outputs != 1) return -1;
    for (int i = 0; i < 2; i++) {
        int a = n->inputs[i], b = n->inputs[1 - i], r = pu_rank(s, a);
        if (a < 0 || b < 0 || r < 3 || pu_rank(s, b) != r || pu_dtype(s, a) != IL_F32 || pu_dtype(s, b) != IL_F32)
            continue;
        int ok = same_dim(s, a, b, 0) && pu_dim(s, a, 1) > 1 && pu_dim(s, b, 1) == pu_dim(s, a, 1);
        int64_t plane = 1;
        for (int d = 2; ok && d < r; d++) {
            ok = pu_dim(s, b, d) == 1;
            plane = pu_dim(s, a, d) > 0 ? plane * pu_dim(s, a, d) : -1;
        }
        if (ok && plane != 1) { /* a is the image, b its scale */
            *x = a;
            return b;
        }
    }
    return -1;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        if (!pu_conv(g, k)) continue;
        const il_node *n = &g->nodes[k];
        int p = n->inputs[0], m = pu_producer(g, p), x = -1, sc;
        if (!pu_is(g, m, "Mul") || pu_sole_consumer(g, p) != k || (sc = scale_of(g, &s, m, &x)) < 0) continue;
        int in[5] = {x, n->inputs[1], n->n_inputs > 2 ? n->inputs[2] : -1, n->n_inputs > 3 ? n->inputs[3] : -1, sc};
        int out = n->outputs[0];
        int j = pu_add_node(g, "ScaledConv", IL_DOMAIN, k, "_scaled", 5, in, 1, &out);
        pu_copy_attrs(g, j, k, NULL);
        pu_use_fused_domain(g);
        g->nodes[k].dead = 1;
        pu_kill(g, m);
        il_pass_count(st, "channel-scale Mul fused into its convolution", 1);
    }
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_se_scale = {"fuse-se-scale",
                                       "Mul(x, per-image channel scale) -> Conv/FusedConv: one ScaledConv", run};
