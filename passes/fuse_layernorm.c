/*
 * fuse_layernorm.c - pass "fuse-layernorm": layer normalization written out as its formula,
 *
 *     m = ReduceMean(x, axes=[-1]);  d = x - m
 *     v = ReduceMean(Pow(d, 2) or d*d, axes=[-1])
 *     y = d / Sqrt(v + eps)  [* gamma]  [+ beta]
 *
 * as PyTorch exports nn.LayerNorm at opsets below 17 and BERT-style code writes it by hand,
 * becomes LayerNormalization(x, gamma, beta, axis=-1, epsilon=eps): one kernel reading x twice
 * instead of nine ops writing eight intermediate tensors. The standard op from opset 17,
 * ai.inferlab.LayerNormalization before. gamma and beta must be constants of the last dim's
 * size; without the Mul, gamma is ones, without the Add there is no beta.
 */
#include "pass_util.h"

/* Node k is a ReduceMean over the last axis only, keeping dims. */
static int mean_last(const il_graph *g, const pu_shapes *s, int k) {
    if (!pu_is(g, k, "ReduceMean") || !il_attr_int(&g->nodes[k], "keepdims", 1)) return 0;
    const int64_t *ax;
    int n = il_attr_ints(&g->nodes[k], "axes", &ax);
    int64_t a;
    if (n == 1) a = ax[0];
    else if (!n && g->nodes[k].n_inputs > 1) {
        double d;
        if (!pu_scalar(g, g->nodes[k].inputs[1], &d)) return 0;
        a = (int64_t)d;
    } else return 0;
    int r = pu_rank(s, g->nodes[k].inputs[0]);
    return a == -1 || (r > 0 && a == r - 1);
}

/* The reader of v with op `op` (default domain), or -1. */
static int reader(const il_graph *g, int v, const char *op) {
    int ks[8], n = il_graph_consumers(g, v, ks, 8);
    for (int i = 0; i < n && i < 8; i++)
        if (pu_is(g, ks[i], op)) return ks[i];
    return -1;
}

/* A constant of d elements (shape [d] or [1, ..., d]) usable as LN's scale or bias. */
static int ln_param(const il_graph *g, int v, int64_t d) {
    const il_tensor *t = pu_const(g, v);
    return t && t->dtype == IL_F32 && t->rank >= 1 && t->dims[t->rank - 1] == d && il_tensor_numel(t) == d;
}

static void fuse(il_graph *g, const pu_shapes *s, int r1, il_pass_stats *st) {
    int x = g->nodes[r1].inputs[0], mean = g->nodes[r1].outputs[0];
    int64_t dim = pu_dim(s, x, -1);
    if (dim <= 0 || pu_dtype(s, x) != IL_F32) return;
    int sub = reader(g, mean, "Sub");
    if (sub < 0 || g->nodes[sub].inputs[0] != x || g->nodes[sub].inputs[1] != mean) return;
    int d = g->nodes[sub].outputs[0];
    /* variance */
    int sq = reader(g, d, "Pow");
    if (sq >= 0 && !pu_scalar_is(g, g->nodes[sq].inputs[1], 2.0, 1e-6)) sq = -1;
    if (sq < 0 && (sq = reader(g, d, "Mul")) >= 0 && (g->nodes[sq].inputs[0] != d || g->nodes[sq].inputs[1] != d)) sq = -1;
    if (sq < 0) return;
    int r2 = pu_sole_consumer(g, g->nodes[sq].outputs[0]);
    if (!mean_last(g, s, r2)) return;
    int var = g->nodes[r2].outputs[0], add = pu_sole_consumer(g, var);
    double eps;
    if (!pu_is(g, add, "Add") || !pu_scalar(g, pu_other_input(g, add, var), &eps)) return;
    int sqrt_k = pu_sole_consumer(g, g->nodes[add].outputs[0]);
    if (!pu_is(g, sqrt_k, "Sqrt")) return;
    int div = pu_sole_consumer(g, g->nodes[sqrt_k].outputs[0]);
    if (!pu_is(g, div, "Div") || g->nodes[div].inputs[0] != d) return;
    /* the affine part */
    int y = g->nodes[div].outputs[0], last = div, gamma = -1, beta = -1;
    int mul = pu_sole_consumer(g, y);
    if (pu_is(g, mul, "Mul") && ln_param(g, pu_other_input(g, mul, y), dim)) {
        gamma = pu_other_input(g, mul, y);
        y = g->nodes[mul].outputs[0];
        last = mul;
    }
    int badd = pu_sole_consumer(g, y);
    if (pu_is(g, badd, "Add") && ln_param(g, pu_other_input(g, badd, y), dim)) {
        beta = pu_other_input(g, badd, y);
        y = g->nodes[badd].outputs[0];
        last = badd;
    }
    /* LayerNormalization wants scale and bias of shape [dim] */
    const il_tensor *gt = gamma >= 0 ? pu_const(g, gamma) : NULL, *bt = beta >= 0 ? pu_const(g, beta) : NULL;
    if (!gt || gt->rank != 1) {
        float *ones = malloc((size_t)dim * sizeof(float));
        for (int64_t i = 0; i < dim; i++) ones[i] = gt ? ((const float *)gt->data)[i] : 1.0f;
        gamma = pu_add_f32(g, "ln_scale", dim, ones);
        free(ones);
    }
    if (bt && bt->rank != 1) beta = pu_add_f32(g, "ln_bias", dim, bt->data);
    int in[3] = {x, gamma, beta}, std = pu_opset(g) >= 17;
    int j = pu_add_node(g, "LayerNormalization", std ? "" : IL_DOMAIN, r1, "_layernorm", beta >= 0 ? 3 : 2, in, 1, &y);
    il_node_set_int(g, j, "axis", -1);
    il_node_set_float(g, j, "epsilon", (float)eps);
    if (!std) pu_use_fused_domain(g);
    pu_kill(g, last);
    il_pass_count(st, "decomposed LayerNorm fused", 1);
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++)
        if (mean_last(g, &s, k)) fuse(g, &s, k, st);
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_layernorm = {"fuse-layernorm", "ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add -> LayerNormalization", run};
