/*
 * fold_bn.c - pass "fold-bn": fold an inference-mode BatchNormalization into the weights of
 * the Conv, ConvTranspose or Gemm before it. With s = scale / sqrt(var + eps) per channel,
 *
 *     BN(conv(x, W) + b) = conv(x, W * s) + (b - mean) * s + bias
 *
 * so the BN node disappears and costs nothing at run time. Conv scales output channel m of W
 * (dim 0); ConvTranspose's W is [C, M/group, k...], so output channel grp*M/group + mi lives
 * in W[c, mi] for the input channels c of group grp; Gemm scales the columns of B (rows when
 * transB) and folds beta*C into the new bias. New initializers are made: the old ones may be
 * shared with other nodes.
 */
#include "pass_util.h"

/* The per-channel scale s and shift t of BN node k (y = x*s + t), when it is an inference BN
 * with constant float parameters of c channels. */
static int bn_params(const il_graph *g, int k, int64_t c, float *s, float *t) {
    const il_node *n = &g->nodes[k];
    if (n->n_inputs != 5 || il_attr_int(n, "training_mode", 0)) return 0;
    for (int i = 1; i < n->n_outputs; i++)
        if (n->outputs[i] >= 0 && pu_uses(g, n->outputs[i])) return 0;
    if (pu_opset(g) < 9 && il_attr_int(n, "spatial", 1) != 1) return 0;
    const il_tensor *p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = pu_const(g, n->inputs[1 + i]);
        if (!p[i] || p[i]->dtype != IL_F32 || il_tensor_numel(p[i]) != c) return 0;
    }
    double eps = il_attr_float(n, "epsilon", 1e-5f);
    const float *scale = p[0]->data, *bias = p[1]->data, *mean = p[2]->data, *var = p[3]->data;
    for (int64_t i = 0; i < c; i++) {
        s[i] = (float)(scale[i] / sqrt((double)var[i] + eps));
        t[i] = (float)(bias[i] - mean[i] * (double)s[i]);
    }
    return 1;
}

/* Conv or ConvTranspose node k followed by BN node bn. */
static int fold_conv(il_graph *g, int k, int bn, il_pass_stats *st) {
    const il_node *n = &g->nodes[k];
    int transpose = pu_is(g, k, "ConvTranspose");
    const il_tensor *w = pu_const(g, n->inputs[1]);
    const il_tensor *b = n->n_inputs > 2 && n->inputs[2] >= 0 ? pu_const(g, n->inputs[2]) : NULL;
    if (!w || w->dtype != IL_F32 || w->rank < 3 || (n->n_inputs > 2 && n->inputs[2] >= 0 && (!b || b->dtype != IL_F32)))
        return 0;
    int64_t group = il_attr_int(n, "group", 1), m = transpose ? w->dims[1] * group : w->dims[0];
    if (group < 1 || (b && il_tensor_numel(b) != m)) return 0;
    float *s = malloc((size_t)m * sizeof(float)), *t = malloc((size_t)m * sizeof(float));
    int ok = bn_params(g, bn, m, s, t);
    if (ok) {
        il_tensor *w2 = il_tensor_clone(w);
        float *wd = w2->data;
        int64_t per = il_tensor_numel(w) / (w->dims[0] * w->dims[1]); /* elements per kernel */
        if (!transpose) {
            for (int64_t i = 0; i < il_tensor_numel(w); i++) wd[i] *= s[i / (il_tensor_numel(w) / m)];
        } else {
            int64_t cin = w->dims[0], mg = w->dims[1], cg = cin / group;
            for (int64_t c = 0; c < cin; c++)
                for (int64_t mi = 0; mi < mg; mi++)
                    for (int64_t e = 0; e < per; e++) wd[(c * mg + mi) * per + e] *= s[(c / cg) * mg + mi];
        }
        float *bias = malloc((size_t)m * sizeof(float));
        for (int64_t i = 0; i < m; i++) bias[i] = (b ? ((const float *)b->data)[i] * s[i] : 0) + t[i];
        int in[3] = {n->inputs[0], pu_add_const(g, "bn_folded_W", w2), pu_add_f32(g, "bn_folded_B", m, bias)};
        int out = g->nodes[bn].outputs[0];
        int j = pu_add_node(g, g->nodes[k].op_type, "", k, "", 3, in, 1, &out);
        pu_copy_attrs(g, j, k, NULL);
        pu_kill(g, bn);
        il_pass_count(st, "BatchNormalization folded", 1);
        free(bias);
    }
    free(s);
    free(t);
    return ok;
}

/* Gemm node k ([M, N] output, BN over the N channels) followed by BN node bn. */
static int fold_gemm(il_graph *g, int k, int bn, il_pass_stats *st) {
    const il_node *n = &g->nodes[k];
    const il_tensor *w = pu_const(g, n->inputs[1]);
    const il_tensor *c = n->n_inputs > 2 && n->inputs[2] >= 0 ? pu_const(g, n->inputs[2]) : NULL;
    if (!w || w->dtype != IL_F32 || w->rank != 2 || (n->n_inputs > 2 && n->inputs[2] >= 0 && (!c || c->dtype != IL_F32)))
        return 0;
    int tb = il_attr_int(n, "transB", 0) != 0;
    int64_t N = tb ? w->dims[0] : w->dims[1], K = tb ? w->dims[1] : w->dims[0];
    /* C must be per column (or a scalar): a per-row C would not fold into one bias vector */
    if (c && il_tensor_numel(c) != 1 && !(il_tensor_numel(c) == N && (c->rank == 1 || (c->rank == 2 && c->dims[0] == 1))))
        return 0;
    float *s = malloc((size_t)N * sizeof(float)), *t = malloc((size_t)N * sizeof(float));
    int ok = bn_params(g, bn, N, s, t);
    if (ok) {
        il_tensor *w2 = il_tensor_clone(w);
        float *wd = w2->data;
        for (int64_t r = 0; r < K; r++)
            for (int64_t j = 0; j < N; j++) wd[tb ? j * K + r : r * N + j] *= s[j];
        double beta = il_attr_float(n, "beta", 1.0f);
        float *bias = malloc((size_t)N * sizeof(float));
        for (int64_t j = 0; j < N; j++)
            bias[j] = (float)((c ? beta * ((const float *)c->data)[il_tensor_numel(c) == 1 ? 0 : j] : 0) * s[j] + t[j]);
        int in[3] = {n->inputs[0], pu_add_const(g, "bn_folded_W", w2), pu_add_f32(g, "bn_folded_B", N, bias)};
        int out = g->nodes[bn].outputs[0];
        int j = pu_add_node(g, "Gemm", "", k, "", 3, in, 1, &out);
        pu_copy_attrs(g, j, k, NULL);
        il_node_set_float(g, j, "beta", 1.0f);
        pu_kill(g, bn);
        il_pass_count(st, "BatchNormalization folded", 1);
        free(bias);
    }
    free(s);
    free(t);
    return ok;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        int conv = pu_is(g, k, "Conv") || pu_is(g, k, "ConvTranspose"), gemm = pu_is(g, k, "Gemm");
        if ((!conv && !gemm) || g->nodes[k].n_inputs < 2 || g->nodes[k].n_outputs != 1) continue;
        int bn = pu_sole_consumer(g, g->nodes[k].outputs[0]);
        if (!pu_is(g, bn, "BatchNormalization") || g->nodes[bn].inputs[0] != g->nodes[k].outputs[0]) continue;
        if (conv) fold_conv(g, k, bn, st);
        else fold_gemm(g, k, bn, st);
    }
    return IL_OK;
}

const il_pass il_pass_fold_bn = {"fold-bn", "fold inference BatchNormalization into Conv/ConvTranspose/Gemm weights", run};
