/*
 * fuse_conv_pool.c - pass "fuse-conv-pool": a max pool that is the only reader of a convolution's
 * output joins it, so the convolution's output is never written whole:
 *
 *     y = Conv/FusedConv(X, W, B); p = MaxPool(y)  ->  p = ConvPool(X, W, B)
 *
 * the pool's attributes kept under pool_ names (engine/ops/conv_pool.c). ResNet's stem (Conv 7x7/2
 * with its Relu, then MaxPool 3x3/2) is the case: the convolution writes 3.2 MB an image that the
 * pool reads back; the oneDNN kernel (engine/cpu/conv_pool.c) computes and pools it in bands that
 * stay in cache. Float32 2-D convolutions of one group with a constant weight and no residual,
 * pools without Indices and with explicit pads, and only where that kernel is built (oneDNN): the
 * reference alone would be far slower than the two nodes' own kernels. An accelerator without the
 * op gets the two nodes back (engine/plan_device.c); --portable lowers it (lower-fused).
 */
#include "pass_util.h"

static int pool_ok(const il_graph *g, int k) {
    const il_node *n = &g->nodes[k];
    if (!pu_is(g, k, "MaxPool") || n->n_inputs != 1 || n->n_outputs < 1 || n->n_outputs > 2) return 0;
    if (n->n_outputs == 2 && n->outputs[1] >= 0 && pu_uses(g, n->outputs[1])) return 0;
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, "auto_pad") && n->attrs[i].s && strcmp(n->attrs[i].s, "NOTSET")) return 0;
    return il_attr_int(n, "storage_order", 0) == 0;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    if (!il_kernel_find("ai.inferlab", "ConvPool", "cpu", "dnnl")) return IL_OK;
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        if (g->nodes[k].dead || !pool_ok(g, k)) continue;
        int y = g->nodes[k].inputs[0], m = pu_producer(g, y);
        if (m < 0 || !pu_conv(g, m) || g->nodes[m].n_inputs > 3 || g->nodes[m].outputs[0] != y || pu_uses(g, y) != 1 ||
            pu_rank(&s, y) != 4 || pu_dtype(&s, y) != IL_F32 || !pu_const(g, g->nodes[m].inputs[1]) ||
            il_attr_int(&g->nodes[m], "group", 1) != 1)
            continue;
        int in[3] = {-1, -1, -1}, out = g->nodes[k].outputs[0], n_in = g->nodes[m].n_inputs;
        memcpy(in, g->nodes[m].inputs, (size_t)n_in * sizeof(int));
        int j = pu_add_node(g, "ConvPool", IL_DOMAIN, m, "_pooled", n_in, in, 1, &out);
        pu_copy_attrs(g, j, m, NULL);
        const il_node *p = &g->nodes[k];
        for (int i = 0; i < p->n_attrs; i++) {
            if (!strcmp(p->attrs[i].name, "auto_pad")) continue;
            char name[64];
            snprintf(name, sizeof name, "pool_%s", p->attrs[i].name);
            il_node_copy_attr(g, j, &p->attrs[i], name);
        }
        pu_use_fused_domain(g);
        il_graph_remove_node(g, m);
        il_graph_remove_node(g, k);
        il_pass_count(st, "max pool fused into the convolution it reads", 1);
    }
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_conv_pool = {"fuse-conv-pool", "MaxPool(Conv/FusedConv(x)) -> one ConvPool: the convolution "
                                        "computed and pooled in bands, its output never written whole", run};
