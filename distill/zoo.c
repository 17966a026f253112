/*
 * zoo.c - the model zoo's front: the list of models, il_zoo_build (input, output, opset,
 * metadata around a builder from zoo_cnn.c / zoo_vit.c), parameter/MAC counts, and the
 * builder helpers of zoo.h.
 *
 * Models are written with opset 17, the newest the Debian onnx checker (1.12) knows, so
 * every zoo file passes onnx.checker with full_check and loads in ONNX Runtime. Ops newer
 * than that (Gelu, opset 20) are written out in their decomposed form.
 */
#include "zoo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const il_zoo_entry models[] = {
    {"mlp", "multilayer perceptron, 2 hidden ReLU layers (width W, W/2)", 1, 28, 28},
    {"lenet5", "LeNet-5: conv5-pool-conv5-pool-fc120-fc84 (ReLU, max pooling)", 1, 28, 28},
    {"vgg", "small VGG-style CNN: 3 blocks of 2 conv3x3+BN+ReLU, max pooling (W, 2W, 4W)", 1, 28, 28},
    {"resnet8", "CIFAR-style ResNet, 3 stages x 1 basic block (W, 2W, 4W)", 3, 32, 32},
    {"resnet20", "CIFAR-style ResNet, 3 stages x 3 basic blocks (W, 2W, 4W)", 3, 32, 32},
    {"resnet18", "ImageNet-style ResNet-18 (basic blocks 2-2-2-2, 7x7 stem)", 3, 224, 224},
    {"resnet50", "ImageNet-style ResNet-50 (bottlenecks 3-4-6-3, 7x7 stem)", 3, 224, 224},
    {"mobilenet_v2", "MobileNetV2: inverted residuals, depthwise conv, ReLU6", 3, 224, 224},
    {"vit", "small ViT-style encoder: patch conv, 4 pre-LN blocks, 4 heads, mean pooling", 1, 28, 28},
};

const il_zoo_entry *il_zoo_models(int *n) {
    *n = (int)(sizeof models / sizeof *models);
    return models;
}

void il_zoo_defaults(il_zoo_opts *o) {
    memset(o, 0, sizeof *o);
    o->classes = 10;
    o->c = 1, o->h = 28, o->w = 28;
    o->seed = 1;
}

/* ---------------------------------------------------------------- builder helpers */

static double randn(uint64_t *rng) {
    double u1 = il_rand_uniform(rng), u2 = il_rand_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

int zb_param(zb *b, const char *name, int rank, const int64_t *dims, double std, float fill) {
    il_tensor *t = il_tensor_new(IL_F32, rank, dims);
    if (!t) return -1;
    float *p = t->data;
    for (int64_t i = 0; i < il_tensor_numel(t); i++) p[i] = std > 0 ? (float)(std * randn(&b->rng)) : fill;
    return il_graph_add_constant(b->g, name, t);
}

int zb_scalar(zb *b, const char *name, float v) {
    il_tensor *t = il_tensor_new(IL_F32, 0, NULL);
    if (!t) return -1;
    *(float *)t->data = v;
    return il_graph_add_constant(b->g, name, t);
}

int zb_ints(zb *b, const char *name, int n, const int64_t *v) {
    int64_t d = n;
    il_tensor *t = il_tensor_new(IL_I64, 1, &d);
    if (!t) return -1;
    memcpy(t->data, v, (size_t)n * sizeof(int64_t));
    return il_graph_add_constant(b->g, name, t);
}

int zb_node(zb *b, const char *op, const char *name, int n_in, const int *in) {
    int y = il_graph_new_value(b->g, name);
    int k = il_graph_add_node(b->g, op, "", name, n_in, in, 1, &y);
    return k < 0 ? -1 : y;
}

static int last_node(zb *b) { return b->g->n_nodes - 1; }

int zb_conv(zb *b, const char *name, int x, int cin, int cout, int k, int stride, int pad, int group, int bias) {
    char nm[160];
    int64_t wd[4] = {cout, cin / group, k, k};
    snprintf(nm, sizeof nm, "%s.weight", name);
    int in[3] = {x, zb_param(b, nm, 4, wd, sqrt(2.0 / ((double)cin / group * k * k)), 0), -1};
    if (bias) {
        int64_t bd = cout;
        snprintf(nm, sizeof nm, "%s.bias", name);
        in[2] = zb_param(b, nm, 1, &bd, 0, 0);
    }
    int y = zb_node(b, "Conv", name, bias ? 3 : 2, in);
    int n = last_node(b);
    int64_t ks[2] = {k, k}, st[2] = {stride, stride}, pads[4] = {pad, pad, pad, pad};
    il_node_set_ints(b->g, n, "kernel_shape", 2, ks);
    il_node_set_ints(b->g, n, "strides", 2, st);
    il_node_set_ints(b->g, n, "pads", 4, pads);
    if (group > 1) il_node_set_int(b->g, n, "group", group);
    return y;
}

int zb_bn(zb *b, const char *name, int x, int c, float gamma) {
    char nm[160];
    int64_t d = c;
    int in[5] = {x};
    const char *suffix[4] = {"weight", "bias", "running_mean", "running_var"};
    float fill[4] = {gamma, 0, 0, 1};
    for (int i = 0; i < 4; i++) {
        snprintf(nm, sizeof nm, "%s.%s", name, suffix[i]);
        in[i + 1] = zb_param(b, nm, 1, &d, 0, fill[i]);
    }
    int y = zb_node(b, "BatchNormalization", name, 5, in);
    il_node_set_float(b->g, last_node(b), "epsilon", 1e-5f);
    il_node_set_float(b->g, last_node(b), "momentum", 0.9f);
    return y;
}

int zb_act(zb *b, const char *name, int x, const char *act) {
    if (!strcmp(act, "none")) return x;
    if (!strcmp(act, "relu")) return zb_node(b, "Relu", name, 1, &x);
    if (!strcmp(act, "hardswish")) return zb_node(b, "HardSwish", name, 1, &x);
    /* relu6: Clip between two shared scalar constants */
    int lo = il_graph_find_value(b->g, "relu6.min");
    if (lo < 0) lo = zb_scalar(b, "relu6.min", 0.0f);
    int hi = il_graph_find_value(b->g, "relu6.max");
    if (hi < 0) hi = zb_scalar(b, "relu6.max", 6.0f);
    int in[3] = {x, lo, hi};
    return zb_node(b, "Clip", name, 3, in);
}

int zb_cba(zb *b, const char *name, int x, int cin, int cout, int k, int stride, int group, const char *act) {
    char nm[160];
    snprintf(nm, sizeof nm, "%s.conv", name);
    x = zb_conv(b, nm, x, cin, cout, k, stride, k / 2, group, 0);
    snprintf(nm, sizeof nm, "%s.bn", name);
    x = zb_bn(b, nm, x, cout, 1.0f);
    snprintf(nm, sizeof nm, "%s.act", name);
    return zb_act(b, nm, x, act);
}

int zb_pool(zb *b, const char *op, const char *name, int x, int k, int stride, int pad) {
    int y = zb_node(b, op, name, 1, &x);
    int64_t ks[2] = {k, k}, st[2] = {stride, stride}, pads[4] = {pad, pad, pad, pad};
    il_node_set_ints(b->g, last_node(b), "kernel_shape", 2, ks);
    il_node_set_ints(b->g, last_node(b), "strides", 2, st);
    if (pad) il_node_set_ints(b->g, last_node(b), "pads", 4, pads);
    return y;
}

int zb_gap_flat(zb *b, const char *name, int x) {
    char nm[160];
    snprintf(nm, sizeof nm, "%s.gap", name);
    x = zb_node(b, "GlobalAveragePool", nm, 1, &x);
    snprintf(nm, sizeof nm, "%s.flatten", name);
    return zb_node(b, "Flatten", nm, 1, &x);
}

int zb_gemm(zb *b, const char *name, int x, int in, int out, double gain) {
    return zb_linear(b, name, NULL, x, in, out, gain);
}

int zb_linear(zb *b, const char *name, const char *out_name, int x, int in, int out, double gain) {
    char nm[160];
    int64_t wd[2] = {out, in}, bd = out;
    snprintf(nm, sizeof nm, "%s.weight", name);
    int w = zb_param(b, nm, 2, wd, gain / sqrt((double)in), 0);
    snprintf(nm, sizeof nm, "%s.bias", name);
    int ins[3] = {x, w, zb_param(b, nm, 1, &bd, 0, 0)};
    int y = out_name ? il_graph_value(b->g, out_name) : il_graph_new_value(b->g, name);
    il_graph_add_node(b->g, "Gemm", "", name, 3, ins, 1, &y);
    il_node_set_int(b->g, last_node(b), "transB", 1);
    return y;
}

int zb_add(zb *b, const char *name, int x, int y) {
    int in[2] = {x, y};
    return zb_node(b, "Add", name, 2, in);
}

/* ---------------------------------------------------------------- build */

il_status il_zoo_build(const char *name, const il_zoo_opts *o0, il_graph **out) {
    il_zoo_opts o;
    int n, found = -1;
    *out = NULL;
    const il_zoo_entry *m = il_zoo_models(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(m[i].name, name)) found = i;
    if (found < 0) {
        char list[256] = "";
        for (int i = 0; i < n; i++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", m[i].name);
        return il_error(IL_ERR_INVALID, "unknown zoo model '%s' (models: %s)", name, list);
    }
    if (o0) o = *o0;
    else il_zoo_defaults(&o), o.c = m[found].c, o.h = m[found].h, o.w = m[found].w;
    if (o.classes < 2 || o.c < 1 || o.h < 4 || o.w < 4 || o.width < 0)
        return il_error(IL_ERR_INVALID, "zoo %s: classes %d, input %dx%dx%d, width %d: need >= 2 classes and >= 4x4 input",
                        name, o.classes, o.c, o.h, o.w, o.width);
    zb b = {il_graph_new(name), o.seed ? o.seed * 0x9E3779B97F4A7C15ull : 0x853c49e6748fea9bull, o.classes};
    il_graph *g = b.g;
    g->ir_version = 8;
    il_graph_set_opset(g, "", 17);
    free(g->producer_name);
    g->producer_name = strdup("inferlab");
    free(g->producer_version);
    g->producer_version = strdup(IL_VERSION);
    int x = il_graph_value(g, "input");
    il_value *xv = &g->values[x];
    xv->dtype = IL_F32, xv->rank = 4;
    int64_t xd[4] = {-1, o.c, o.h, o.w};
    memcpy(xv->dims, xd, sizeof xd);
    xv->dim_param[0] = strdup("N");
    il_graph_add_input(g, x);
    int y;
    int w = o.width;
    if (!strcmp(name, "mlp")) y = zoo_mlp(&b, x, o.c, o.h, o.w, w ? w : 256);
    else if (!strcmp(name, "lenet5")) y = zoo_lenet5(&b, x, o.c, o.h, o.w, w ? w : 6);
    else if (!strcmp(name, "vgg")) y = zoo_vgg(&b, x, o.c, o.h, o.w, w ? w : 32);
    else if (!strcmp(name, "resnet8")) y = zoo_resnet_cifar(&b, x, o.c, o.h, o.w, w ? w : 16, 8);
    else if (!strcmp(name, "resnet20")) y = zoo_resnet_cifar(&b, x, o.c, o.h, o.w, w ? w : 16, 20);
    else if (!strcmp(name, "resnet18")) y = zoo_resnet_imagenet(&b, x, o.c, o.h, o.w, w ? w : 64, 18);
    else if (!strcmp(name, "resnet50")) y = zoo_resnet_imagenet(&b, x, o.c, o.h, o.w, w ? w : 64, 50);
    else if (!strcmp(name, "mobilenet_v2")) y = zoo_mobilenet_v2(&b, x, o.c, o.h, o.w, w ? w : 32);
    else y = zoo_vit(&b, x, o.c, o.h, o.w, w ? w : 64);
    if (y < 0) {
        il_graph_free(g);
        return il_errmsg()[0] ? IL_ERR_INVALID : il_error(IL_ERR_INVALID, "zoo %s: could not build", name);
    }
    int lv = y;
    il_value *lo = &g->values[lv];
    lo->dtype = IL_F32, lo->rank = 2, lo->dims[0] = -1, lo->dims[1] = o.classes;
    lo->dim_param[0] = strdup("N");
    il_graph_add_output(g, lv);
    il_graph_compact(g);
    char buf[64];
    il_graph_set_meta(g, "inferlab.zoo", name);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)o.seed);
    il_graph_set_meta(g, "inferlab.zoo.seed", buf);
    il_status st = il_graph_verify(g);
    if (st) {
        il_graph_free(g);
        return il_error_wrap(st, "zoo %s: ", name);
    }
    *out = g;
    return IL_OK;
}

il_status il_model_stats(const il_graph *g, int64_t *params, int64_t *macs) {
    int64_t p = 0;
    /* BatchNormalization's running statistics are state, not parameters (PyTorch's buffers). */
    unsigned char *stat = calloc((size_t)g->n_values + 1, 1);
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[k].dead && !strcmp(g->nodes[k].op_type, "BatchNormalization"))
            for (int i = 3; i < 5 && i < g->nodes[k].n_inputs; i++)
                if (g->nodes[k].inputs[i] >= 0) stat[g->nodes[k].inputs[i]] = 1;
    for (int v = 0; v < g->n_values; v++) {
        const il_tensor *t = g->values[v].constant;
        if (t && !stat[v] && il_dtype_is_float(t->dtype) && t->rank > 0) p += il_tensor_numel(t);
    }
    free(stat);
    *params = p;
    il_shapes *s;
    il_status st = il_infer_shapes(g, 1, NULL, 0, &s);
    if (st) return st;
    int64_t m = 0;
    for (int k = 0; k < g->n_nodes; k++) m += il_node_macs(g, s, k);
    il_shapes_free(s);
    *macs = m;
    return IL_OK;
}
