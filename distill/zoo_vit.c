/*
 * zoo_vit.c - a small ViT-style transformer encoder (Dosovitskiy et al. 2021) as plain ONNX
 * ops: a strided Conv cuts the image into patches, learned position embeddings are added, then
 * pre-LayerNorm blocks of multi-head self-attention and a GELU MLP, mean pooling over the
 * tokens and a linear classifier (mean pooling instead of a class token keeps the graph free of
 * batch-dependent Expand/Concat; the accuracy is the same at this size).
 *
 * GELU is written as x * 0.5 * (1 + erf(x / sqrt 2)): the Gelu op only exists from opset 20,
 * and the files must pass the opset-17 checker.
 */
#include "zoo.h"

#include <math.h>
#include <stdio.h>

enum { DEPTH = 4, HEADS = 4 };

static int reshape(zb *b, const char name[static 1], int x, int n, const int64_t *shape) {
    char nm[256];
    snprintf(nm, sizeof nm, "%s.shape", name);
    int in[2] = {x, zb_ints(b, nm, n, shape)};
    return zb_node(b, "Reshape", name, 2, in);
}

static int transpose(zb *b, const char *name, int x, int n, const int64_t *perm) {
    int y = zb_node(b, "Transpose", name, 1, &x);
    il_node_set_ints(b->g, b->g->n_nodes - 1, "perm", n, perm);
    return y;
}

/* y = x W + bias with W [din, dout] (MatMul then Add, as exporters write a Linear on 3-D input). */
static int linear3(zb *b, const char *name, int x, int din, int dout, double gain) {
    char nm[192];
    int64_t wd[2] = {din, dout}, bd = dout;
    snprintf(nm, sizeof nm, "%s.weight", name);
    int in[2] = {x, zb_param(b, nm, 2, wd, gain / sqrt((double)din), 0)};
    snprintf(nm, sizeof nm, "%s.matmul", name);
    int y = zb_node(b, "MatMul", nm, 2, in);
    snprintf(nm, sizeof nm, "%s.bias", name);
    int bias = zb_param(b, nm, 1, &bd, 0, 0);
    snprintf(nm, sizeof nm, "%s.add", name);
    return zb_add(b, nm, y, bias);
}

static int layernorm(zb *b, const char *name, int x, int d) {
    char nm[192];
    int64_t dd = d;
    snprintf(nm, sizeof nm, "%s.weight", name);
    int in[3] = {x, zb_param(b, nm, 1, &dd, 0, 1.0f), -1};
    snprintf(nm, sizeof nm, "%s.bias", name);
    in[2] = zb_param(b, nm, 1, &dd, 0, 0.0f);
    int y = zb_node(b, "LayerNormalization", name, 3, in);
    il_node_set_int(b->g, b->g->n_nodes - 1, "axis", -1);
    il_node_set_float(b->g, b->g->n_nodes - 1, "epsilon", 1e-6f);
    return y;
}

static int gelu(zb *b, const char *name, int x) {
    char nm[192];
    int c_sqrt2 = il_graph_find_value(b->g, "gelu.sqrt2"), c_one, c_half;
    if (c_sqrt2 < 0) {
        c_sqrt2 = zb_scalar(b, "gelu.sqrt2", 1.41421356f);
        zb_scalar(b, "gelu.one", 1.0f);
        zb_scalar(b, "gelu.half", 0.5f);
    }
    c_one = il_graph_find_value(b->g, "gelu.one");
    c_half = il_graph_find_value(b->g, "gelu.half");
    snprintf(nm, sizeof nm, "%s.div", name);
    int t = zb_node(b, "Div", nm, 2, (int[]){x, c_sqrt2});
    snprintf(nm, sizeof nm, "%s.erf", name);
    t = zb_node(b, "Erf", nm, 1, &t);
    snprintf(nm, sizeof nm, "%s.add", name);
    t = zb_node(b, "Add", nm, 2, (int[]){t, c_one});
    snprintf(nm, sizeof nm, "%s.mul", name);
    t = zb_node(b, "Mul", nm, 2, (int[]){x, t});
    snprintf(nm, sizeof nm, "%s.half", name);
    return zb_node(b, "Mul", nm, 2, (int[]){t, c_half});
}

static int attention(zb *b, const char *name, int x, int d) {
    char nm[192];
    int64_t dh = d / HEADS;
    snprintf(nm, sizeof nm, "%s.qkv", name);
    int qkv = linear3(b, nm, x, d, 3 * d, 1.0);
    /* Split into q, k, v: [N,T,3D] -> 3 x [N,T,D] */
    int64_t sizes[3] = {d, d, d};
    snprintf(nm, sizeof nm, "%s.split.sizes", name);
    int sin[2] = {qkv, zb_ints(b, nm, 3, sizes)};
    int outs[3];
    for (int i = 0; i < 3; i++) {
        snprintf(nm, sizeof nm, "%s.%c", name, "qkv"[i]);
        outs[i] = il_graph_new_value(b->g, nm);
    }
    snprintf(nm, sizeof nm, "%s.split", name);
    int k = il_graph_add_node(b->g, "Split", "", nm, 2, sin, 3, outs);
    il_node_set_int(b->g, k, "axis", 2);
    const int64_t heads[4] = {0, 0, HEADS, dh}, perm_q[4] = {0, 2, 1, 3}, perm_k[4] = {0, 2, 3, 1};
    int hv[3];
    for (int i = 0; i < 3; i++) {
        snprintf(nm, sizeof nm, "%s.%c.heads", name, "qkv"[i]);
        int r = reshape(b, nm, outs[i], 4, heads);
        snprintf(nm, sizeof nm, "%s.%c.t", name, "qkv"[i]);
        hv[i] = transpose(b, nm, r, 4, i == 1 ? perm_k : perm_q); /* q,v [N,H,T,dh]; k [N,H,dh,T] */
    }
    snprintf(nm, sizeof nm, "%s.scores", name);
    int s = zb_node(b, "MatMul", nm, 2, (int[]){hv[0], hv[1]});
    snprintf(nm, sizeof nm, "%s.scale", name);
    int sc = zb_scalar(b, nm, (float)(1.0 / sqrt((double)dh)));
    snprintf(nm, sizeof nm, "%s.scaled", name);
    s = zb_node(b, "Mul", nm, 2, (int[]){s, sc});
    snprintf(nm, sizeof nm, "%s.softmax", name);
    s = zb_node(b, "Softmax", nm, 1, &s);
    il_node_set_int(b->g, b->g->n_nodes - 1, "axis", -1);
    snprintf(nm, sizeof nm, "%s.context", name);
    int o = zb_node(b, "MatMul", nm, 2, (int[]){s, hv[2]});
    snprintf(nm, sizeof nm, "%s.context.t", name);
    o = transpose(b, nm, o, 4, perm_q);
    const int64_t merge[3] = {0, 0, d};
    snprintf(nm, sizeof nm, "%s.merge", name);
    o = reshape(b, nm, o, 3, merge);
    snprintf(nm, sizeof nm, "%s.proj", name);
    return linear3(b, nm, o, d, d, 1.0);
}

int zoo_vit(zb *b, int x, int c, int h, int w, int width) {
    int d = width;
    int p = h >= 64 ? 16 : 4;
    if (h % p || w % p || h < p || d % HEADS) {
        il_error(IL_ERR_INVALID, "zoo vit: input %dx%d must be a multiple of the patch size %d, width %d of %d heads",
                 h, w, p, d, HEADS);
        return -1;
    }
    int64_t tokens = (int64_t)(h / p) * (w / p);
    x = zb_conv(b, "patch_embed", x, c, d, p, p, 0, 1, 1);
    const int64_t flat[3] = {0, d, -1}, perm[3] = {0, 2, 1};
    x = reshape(b, "patch_embed.flatten", x, 3, flat);
    x = transpose(b, "patch_embed.tokens", x, 3, perm);
    int64_t pd[3] = {1, tokens, d};
    int pos = zb_param(b, "pos_embed", 3, pd, 0.02, 0);
    x = zb_add(b, "pos_embed.add", x, pos);
    char nm[64], nm2[160];
    for (int l = 0; l < DEPTH; l++) {
        snprintf(nm, sizeof nm, "blocks.%d", l);
        snprintf(nm2, sizeof nm2, "%s.norm1", nm);
        int y = layernorm(b, nm2, x, d);
        snprintf(nm2, sizeof nm2, "%s.attn", nm);
        y = attention(b, nm2, y, d);
        snprintf(nm2, sizeof nm2, "%s.res1", nm);
        x = zb_add(b, nm2, x, y);
        snprintf(nm2, sizeof nm2, "%s.norm2", nm);
        y = layernorm(b, nm2, x, d);
        snprintf(nm2, sizeof nm2, "%s.mlp.fc1", nm);
        y = linear3(b, nm2, y, d, 2 * d, 1.4142135);
        snprintf(nm2, sizeof nm2, "%s.mlp.gelu", nm);
        y = gelu(b, nm2, y);
        snprintf(nm2, sizeof nm2, "%s.mlp.fc2", nm);
        y = linear3(b, nm2, y, 2 * d, d, 1.0 / sqrt(2.0 * DEPTH));
        snprintf(nm2, sizeof nm2, "%s.res2", nm);
        x = zb_add(b, nm2, x, y);
    }
    x = layernorm(b, "norm", x, d);
    x = zb_node(b, "ReduceMean", "pool", 1, &x);
    const int64_t axes[1] = {1};
    il_node_set_ints(b->g, b->g->n_nodes - 1, "axes", 1, axes);
    il_node_set_int(b->g, b->g->n_nodes - 1, "keepdims", 0);
    return zb_linear(b, "head", "logits", x, d, b->k, 1.0);
}
