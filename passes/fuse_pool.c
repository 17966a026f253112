/*
 * fuse_pool.c - pass "fuse-se-pool": a squeeze-excitation block's global average pool of a
 * convolution's output becomes that convolution's second output, so the pool does not read the
 * activation again on its own:
 *
 *     y = Conv/FusedConv(X, W, B, Z); p = GlobalAveragePool(y)  ->  (y, p) = PooledConv(X, W, B, Z)
 *
 * y keeps its other readers (in EfficientNet and MobileNetV3 the scale's product, a ScaledConv
 * after fuse-se-scale). Float32 images of rank 3-5 only. The oneDNN kernel (dnnl_conv.c) runs the
 * convolution one image at a time and takes each image's channel means while it is in cache;
 * EfficientNet-B0's 17 pools read each depthwise output back from memory at batch 8 (2.6% of its
 * one-thread run, docs/cpu_speed_sessions.md).
 */
#include "pass_util.h"

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        if (!pu_is(g, k, "GlobalAveragePool") || g->nodes[k].n_inputs != 1 || g->nodes[k].n_outputs != 1) continue;
        int y = g->nodes[k].inputs[0], m = pu_producer(g, y), r = pu_rank(&s, y);
        /* y read by something else too: a pool that is y's only reader (a network's head) would
         * leave y written for nobody, and plain (the plan keeps no unread value native) */
        if (m < 0 || !pu_conv(g, m) || g->nodes[m].outputs[0] != y || r < 3 || r > 5 || pu_dtype(&s, y) != IL_F32 ||
            pu_uses(g, y) < 2)
            continue;
        const il_node *c = &g->nodes[m];
        int in[4] = {-1, -1, -1, -1}, out[2] = {y, g->nodes[k].outputs[0]}, n_in = c->n_inputs;
        memcpy(in, c->inputs, (size_t)n_in * sizeof(int));
        int j = pu_add_node(g, "PooledConv", IL_DOMAIN, m, "_pooled", n_in, in, 2, out);
        pu_copy_attrs(g, j, m, NULL);
        pu_use_fused_domain(g);
        il_graph_remove_node(g, m);
        il_graph_remove_node(g, k);
        il_pass_count(st, "global average pool fused into the convolution it reads", 1);
    }
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_se_pool = {"fuse-se-pool",
                                      "GlobalAveragePool(Conv/FusedConv(x)) -> the conv's second output: one PooledConv",
                                      run};
