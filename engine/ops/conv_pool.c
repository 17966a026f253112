/*
 * conv_pool.c - ai.inferlab ConvPool(X, W, B) -> P: P = MaxPool(FusedConv(X, W, B)), as pass
 * fuse-conv-pool makes of a network's stem (ResNet's Conv 7x7/2 + Relu, then MaxPool 3x3/2).
 * The convolution's attributes are FusedConv's (Conv's plus activation, activation_params); the
 * pool's are MaxPool's prefixed with "pool_" (pool_kernel_shape, pool_strides, pool_pads,
 * pool_dilations, pool_ceil_mode). The convolution's output never exists as a tensor: the oneDNN
 * kernel (engine/cpu/conv_pool.c) computes it in bands of rows that stay in cache and pools each
 * band at once.
 *
 * Shape inference and the reference are FusedConv's, then MaxPool's on a view of the node that
 * holds the pool's attributes under their own names: the oracle is the two ops' own code.
 */
#include "fused.h"
#include "kernel.h"

int il_conv_pool_view(const il_node *n, il_node *pool, il_attr *attrs, int cap) {
    *pool = *n;
    pool->n_attrs = 0;
    pool->attrs = attrs;
    for (int i = 0; i < n->n_attrs; i++) {
        if (strncmp(n->attrs[i].name, "pool_", 5)) continue;
        if (pool->n_attrs == cap) return -1;
        attrs[pool->n_attrs] = n->attrs[i];
        attrs[pool->n_attrs++].name = n->attrs[i].name + 5;
    }
    return pool->n_attrs;
}

/* ref 0: shapes; 1: the reference. Y, the convolution's output, is a tensor of its own here. */
static il_status cpool_steps(il_kctx *c, int ref) {
    if (c->n_out != 1 || c->n_in > 3)
        return il_kerr(c, IL_ERR_INVALID, "ConvPool takes X, W and an optional B, and has one output P");
    il_node pn;
    il_attr at[8];
    if (il_conv_pool_view(c->node, &pn, at, 8) < 0)
        return il_kerr(c, IL_ERR_INVALID, "ConvPool: too many pool_ attributes");
    if (il_attr_int(&pn, "storage_order", 0)) return il_kerr(c, IL_ERR_INVALID, "ConvPool: pool_storage_order must be 0");
    const il_op *conv = il_op_find("ai.inferlab", "FusedConv"), *pool = il_op_find("", "MaxPool");
    il_tensor yshape = {.dtype = IL_F32, .rank = -1}, *y = &yshape;
    il_tensor *cout[1] = {y};
    il_kctx v = *c;
    v.out = cout;
    v.n_out = 1;
    il_status st = conv->infer(&v);
    if (!st && ref) {
        if (!il_shape_known(y)) return il_kerr(c, IL_ERR_SHAPE, "ConvPool: the convolution's output shape is unknown");
        if (!(y = il_tensor_new(IL_F32, yshape.rank, yshape.dims))) return il_kerr(c, IL_ERR_OOM, "out of memory");
        cout[0] = y;
        st = conv->ref(&v);
    }
    il_tensor *pin[1] = {y};
    il_kctx p = *c;
    p.node = &pn;
    p.in = pin;
    p.n_in = 1;
    p.opset = 12;
    if (!st) st = ref ? pool->ref(&p) : pool->infer(&p);
    if (ref) il_tensor_free(y);
    return st;
}

static il_status cpool_infer(il_kctx *c) { return cpool_steps(c, 0); }
static il_status cpool_ref(il_kctx *c) { return cpool_steps(c, 1); }

const il_op il_ops_conv_pool[] = {
    {"ai.inferlab", "ConvPool", 1, cpool_infer, cpool_ref, NULL, 0},
    {0},
};
