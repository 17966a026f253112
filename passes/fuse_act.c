/*
 * fuse_act.c - pass "fuse-conv-act": a Conv, Gemm or MatMul, an optional bias Add and an
 * optional activation become one fused op whose kernel applies bias and activation to each
 * output tile while it is in cache (engine/ops/fused*.c):
 *
 *     Conv   [+ Add(per-channel constant)] [+ act]  -> FusedConv(X, W, B)     {activation}
 *     Gemm   [+ Add(constant), when no C]  [+ act]  -> FusedGemm(A, B, C)     {activation}
 *     MatMul [+ Add(constant [N])]         [+ act]  -> FusedMatMul(A, B, bias) {activation}
 *
 * The activations: Relu, Clip (Relu6), LeakyRelu, Sigmoid, HardSwish, HardSigmoid, Gelu (erf
 * and tanh forms), Tanh, SiLU. A Conv with a bias Add but no activation stays a standard Conv
 * with the Add folded into its bias. A fused op without activation followed by one (as
 * fuse-residual leaves it) takes the activation too.
 */
#include "pass_util.h"

#include <stdio.h>

/* Add node `add` reads y and a constant that is a per-channel bias for a Conv output of rank
 * r with m channels: shape [m, 1, ...] or [1, m, 1, ...] (rank <= r). Fills bias[m]. */
static int conv_bias(const il_graph *g, int add, int y, int r, int64_t m, float *bias) {
    const il_tensor *c = pu_const(g, pu_other_input(g, add, y));
    if (!c || c->dtype != IL_F32 || c->rank > r || il_tensor_numel(c) != m) return 0;
    int ch = c->rank - (r - 1); /* the dim of c lined up with the channel dim */
    if (ch < 0 || c->dims[ch] != m) return 0;
    for (int64_t i = 0; i < m; i++) bias[i] = ((const float *)c->data)[i];
    return 1;
}

/* Add node `add` reads y and a constant [N] (or [1, ..., N]) bias for a MatMul output of N
 * columns. */
static int row_bias(const il_graph *g, int add, int y, int64_t n) {
    const il_tensor *c = pu_const(g, pu_other_input(g, add, y));
    return c && c->dtype == IL_F32 && c->rank >= 1 && c->dims[c->rank - 1] == n && il_tensor_numel(c) == n;
}

static int has_activation(const il_graph *g, int k) { return il_node_attr(&g->nodes[k], "activation") != NULL; }

static void fuse(il_graph *g, const pu_shapes *s, int k, il_pass_stats *st) {
    const il_node *n = &g->nodes[k];
    int conv = pu_is(g, k, "Conv") || pu_is_fused(g, k, "FusedConv");
    int gemm = pu_is(g, k, "Gemm") || pu_is_fused(g, k, "FusedGemm");
    int mm = pu_is(g, k, "MatMul") || pu_is_fused(g, k, "FusedMatMul");
    int fused = !strcmp(n->domain, IL_DOMAIN);
    if (n->n_outputs != 1 || n->n_inputs < 2 || (fused && has_activation(g, k))) return;
    int y = n->outputs[0], last = k, in[4] = {-1, -1, -1, -1}, n_in = n->n_inputs;
    if (n_in > 4 || pu_dtype(s, n->inputs[0]) != IL_F32) return;
    memcpy(in, n->inputs, (size_t)n_in * sizeof(int));
    float *bias = NULL;
    int64_t m = -1;
    int bias_v = -1;
    /* the bias Add */
    int add = pu_sole_consumer(g, y);
    if (pu_is(g, add, "Add") && !fused) {
        if (conv) {
            const il_tensor *w = pu_const(g, in[1]), *b = n_in > 2 && in[2] >= 0 ? pu_const(g, in[2]) : NULL;
            int r = pu_rank(s, y);
            m = w && w->rank >= 1 ? w->dims[0] : -1;
            bias = m > 0 ? malloc((size_t)m * sizeof(float)) : NULL;
            if (bias && r >= 3 && (n_in < 3 || in[2] < 0 || (b && b->dtype == IL_F32)) && conv_bias(g, add, y, r, m, bias)) {
                for (int64_t i = 0; b && i < m; i++) bias[i] += ((const float *)b->data)[i];
                bias_v = pu_add_f32(g, "conv_bias", m, bias);
            }
        } else if (gemm && (n_in < 3 || in[2] < 0)) {
            int c = pu_other_input(g, add, y);
            const il_tensor *ct = pu_const(g, c);
            int64_t nn = pu_dim(s, y, 1);
            if (ct && ct->dtype == IL_F32 && ct->rank <= 2 && nn > 0 && ct->dims[ct->rank - 1] == nn &&
                il_tensor_numel(ct) == nn)
                bias_v = c;
        } else if (mm && pu_rank(s, in[0]) >= 2 && pu_rank(s, in[1]) >= 2 && n_in == 2) {
            int64_t nn = pu_dim(s, in[1], -1);
            int c = pu_other_input(g, add, y);
            if (nn > 0 && row_bias(g, add, y, nn)) {
                const il_tensor *ct = pu_const(g, c);
                bias_v = pu_add_f32(g, "matmul_bias", nn, ct->data); /* as [N], the form the kernel takes */
            }
        }
        if (bias_v >= 0) {
            in[2] = bias_v;
            if (n_in < 3) n_in = 3;
            y = g->nodes[add].outputs[0];
            last = add;
        }
    }
    free(bias);
    /* the activation */
    const char *act = NULL;
    float p[2];
    int np = 0, a = pu_sole_consumer(g, y);
    if (pu_activation(g, a, &act, p, &np) && g->nodes[a].inputs[0] == y) {
        y = g->nodes[a].outputs[0];
        last = a;
    } else {
        act = NULL;
    }
    if (last == k) return;
    if (mm && (pu_rank(s, in[0]) < 2 || pu_rank(s, in[1]) < 2)) return; /* FusedMatMul takes matrices and up */
    const char *op = conv ? (act || fused ? "FusedConv" : "Conv") : gemm ? "FusedGemm" : "FusedMatMul";
    int j = pu_add_node(g, op, strcmp(op, "Conv") ? IL_DOMAIN : "", k, act ? "_fused" : "", n_in, in, 1, &y);
    pu_copy_attrs(g, j, k, NULL);
    if (act) pu_set_activation(g, j, act, p, np);
    if (strcmp(op, "Conv")) pu_use_fused_domain(g);
    pu_kill(g, last);
    const char *what = conv ? (act ? "Conv+activation fused" : "Conv+bias Add folded")
                      : gemm ? "Gemm+activation fused" : "MatMul+bias/activation fused";
    il_pass_count(st, what, 1);
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++)
        if (pu_is(g, k, "Conv") || pu_is(g, k, "Gemm") || pu_is(g, k, "MatMul") || pu_is_fused(g, k, "FusedConv") ||
            pu_is_fused(g, k, "FusedGemm") || pu_is_fused(g, k, "FusedMatMul"))
            fuse(g, &s, k, st);
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_conv_act = {
    "fuse-conv-act",
    "Conv/Gemm/MatMul + bias + activation (Relu, Clip, LeakyRelu, Sigmoid, HardSwish, HardSigmoid, Gelu, Tanh, SiLU) -> one fused op",
    run,
};
