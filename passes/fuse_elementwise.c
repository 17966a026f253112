/*
 * fuse_elementwise.c - pass "fuse-elementwise": element-wise chains that spell one activation
 * become that activation, one pass over memory instead of two or four:
 *
 *     Mul(x, Sigmoid(x))                          -> ai.inferlab.SiLU(x)      (SiLU / Swish)
 *     Mul(x, HardSigmoid(x, 1/6, 0.5))            -> HardSwish(x)
 *     Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)       -> HardSwish(x)   (also Mul by 1/6, and
 *                                                    Mul(x, Div(Clip(Add(x, 3), 0, 6), 6)))
 *
 * HardSwish is the standard op from opset 14 and ai.inferlab.HardSwish before (same kernel).
 * The intermediate values must have no other reader.
 */
#include "pass_util.h"

/* v = Clip(Add(x, 3), 0, 6) with single-use intermediates: returns x, or -1. */
static int relu6_of_x_plus_3(const il_graph *g, int v) {
    int clip = pu_producer(g, v);
    const char *act;
    float p[2];
    int np;
    if (!pu_is(g, clip, "Clip") || !pu_activation(g, clip, &act, p, &np) || p[0] != 0 || p[1] != 6) return -1;
    int a = g->nodes[clip].inputs[0], add = pu_producer(g, a);
    if (!pu_is(g, add, "Add") || pu_sole_consumer(g, a) != clip) return -1;
    for (int i = 0; i < 2; i++)
        if (pu_scalar_is(g, g->nodes[add].inputs[1 - i], 3.0, 1e-6)) return g->nodes[add].inputs[i];
    return -1;
}

/* Mul node k: x * f(x) for f Sigmoid, HardSigmoid(1/6, 1/2) or Clip(x+3, 0, 6)/6; sets *x. */
static const char *mul_pattern(const il_graph *g, int k, int *x) {
    for (int i = 0; i < 2; i++) {
        int a = g->nodes[k].inputs[i], b = g->nodes[k].inputs[1 - i], p = pu_producer(g, b);
        if (pu_sole_consumer(g, b) != k) continue;
        if (pu_is(g, p, "Sigmoid") && g->nodes[p].inputs[0] == a) { *x = a; return "SiLU"; }
        if (pu_is(g, p, "HardSigmoid") && g->nodes[p].inputs[0] == a &&
            fabs(il_attr_float(&g->nodes[p], "alpha", 0.2f) - 1.0 / 6) < 1e-6 &&
            fabs(il_attr_float(&g->nodes[p], "beta", 0.5f) - 0.5) < 1e-6) { *x = a; return "HardSwish"; }
        /* x * (Clip(x + 3, 0, 6) / 6) */
        if (pu_is(g, p, "Div") && pu_scalar_is(g, g->nodes[p].inputs[1], 6.0, 1e-6) &&
            relu6_of_x_plus_3(g, g->nodes[p].inputs[0]) == a && pu_sole_consumer(g, g->nodes[p].inputs[0]) == p) {
            *x = a;
            return "HardSwish";
        }
    }
    return NULL;
}

/* Node k divides by 6 (Div by 6 or Mul by 1/6) a Mul(x, Clip(x + 3, 0, 6)); sets *x. */
static const char *scaled_pattern(const il_graph *g, int k, int *x) {
    int m = -1;
    if (pu_is(g, k, "Div") && pu_scalar_is(g, g->nodes[k].inputs[1], 6.0, 1e-6)) m = g->nodes[k].inputs[0];
    if (pu_is(g, k, "Mul"))
        for (int i = 0; i < 2; i++)
            if (pu_scalar_is(g, g->nodes[k].inputs[1 - i], 1.0 / 6, 1e-5)) m = g->nodes[k].inputs[i];
    int mul = pu_producer(g, m);
    if (!pu_is(g, mul, "Mul") || pu_sole_consumer(g, m) != k) return NULL;
    for (int i = 0; i < 2; i++) {
        int a = g->nodes[mul].inputs[i], r = g->nodes[mul].inputs[1 - i];
        if (pu_sole_consumer(g, r) == mul && relu6_of_x_plus_3(g, r) == a) {
            *x = a;
            return "HardSwish";
        }
    }
    return NULL;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        if (g->nodes[k].dead || g->nodes[k].n_inputs != 2 || g->nodes[k].n_outputs != 1) continue;
        int x = -1;
        const char *op = NULL;
        if (pu_is(g, k, "Mul")) op = mul_pattern(g, k, &x);
        if (!op && (pu_is(g, k, "Div") || pu_is(g, k, "Mul"))) op = scaled_pattern(g, k, &x);
        if (!op) continue;
        int y = g->nodes[k].outputs[0];
        int std = !strcmp(op, "HardSwish") && pu_opset(g) >= 14;
        pu_add_node(g, op, std ? "" : IL_DOMAIN, k, "_fused", 1, &x, 1, &y);
        if (!std) pu_use_fused_domain(g);
        pu_kill(g, k);
        il_pass_count(st, !strcmp(op, "SiLU") ? "x*sigmoid(x) made SiLU" : "HardSwish patterns fused", 1);
    }
    return IL_OK;
}

const il_pass il_pass_fuse_elementwise = {"fuse-elementwise", "x*sigmoid(x) -> SiLU, HardSwish patterns -> HardSwish", run};
