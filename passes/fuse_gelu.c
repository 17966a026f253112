/*
 * fuse_gelu.c - pass "fuse-gelu": the GELU formulas exporters write out become one Gelu.
 *
 *   erf form  (PyTorch nn.GELU()):        x * 0.5 * (1 + Erf(x / sqrt(2)))
 *   tanh form (GPT-2/BERT "gelu_new"):    x * 0.5 * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
 *
 * found from the Erf or Tanh node outwards: its argument must be x/sqrt(2) (Div or Mul by
 * 1/sqrt(2)), respectively sqrt(2/pi) * (x + 0.044715 * x^3) (Pow(x, 3) or x*x*x); then
 * Add 1, and a Mul with x and a Mul with 0.5 in any of the orders exporters use. Gelu is the
 * standard op from opset 20 and ai.inferlab.Gelu before (approximate="tanh" for the tanh form).
 */
#include "pass_util.h"

/* Node k is a Mul of v by the constant c (either order): 1. */
static int mul_by(const il_graph *g, int k, int v, double c) {
    return pu_is(g, k, "Mul") && pu_other_input(g, k, v) >= 0 && pu_scalar_is(g, pu_other_input(g, k, v), c, 1e-4);
}

/* The argument of the Erf: x / sqrt(2) or x * (1/sqrt(2)); returns x or -1. */
static int erf_arg(const il_graph *g, int v) {
    int k = pu_producer(g, v);
    if (pu_sole_consumer(g, v) < 0) return -1;
    if (pu_is(g, k, "Div") && pu_scalar_is(g, g->nodes[k].inputs[1], sqrt(2.0), 1e-4)) return g->nodes[k].inputs[0];
    if (pu_is(g, k, "Mul"))
        for (int i = 0; i < 2; i++)
            if (pu_scalar_is(g, g->nodes[k].inputs[1 - i], sqrt(0.5), 1e-4)) return g->nodes[k].inputs[i];
    return -1;
}

/* v = x*x*x or Pow(x, 3): returns x or -1. */
static int cube_of(const il_graph *g, int v) {
    int k = pu_producer(g, v);
    if (pu_is(g, k, "Pow") && pu_scalar_is(g, g->nodes[k].inputs[1], 3.0, 1e-6)) return g->nodes[k].inputs[0];
    if (!pu_is(g, k, "Mul")) return -1;
    for (int i = 0; i < 2; i++) {
        int sq = pu_producer(g, g->nodes[k].inputs[i]), x = g->nodes[k].inputs[1 - i];
        if (pu_is(g, sq, "Mul") && g->nodes[sq].inputs[0] == x && g->nodes[sq].inputs[1] == x) return x;
    }
    return -1;
}

/* The argument of the Tanh: sqrt(2/pi) * (x + 0.044715 * x^3); returns x or -1. */
static int tanh_arg(const il_graph *g, int v) {
    int k = pu_producer(g, v), inner = -1;
    if (!pu_is(g, k, "Mul") || pu_sole_consumer(g, v) < 0) return -1;
    for (int i = 0; i < 2; i++)
        if (pu_scalar_is(g, g->nodes[k].inputs[1 - i], sqrt(2.0 / M_PI), 1e-3)) inner = g->nodes[k].inputs[i];
    int add = pu_producer(g, inner);
    if (!pu_is(g, add, "Add")) return -1;
    for (int i = 0; i < 2; i++) {
        int x = g->nodes[add].inputs[i], t = pu_producer(g, g->nodes[add].inputs[1 - i]);
        if (!pu_is(g, t, "Mul")) continue;
        for (int j = 0; j < 2; j++)
            if (pu_scalar_is(g, g->nodes[t].inputs[1 - j], 0.044715, 1e-3) && cube_of(g, g->nodes[t].inputs[j]) == x)
                return x;
    }
    return -1;
}

/* From t = 1 + core, find the node writing x * 0.5 * t; returns its node index or -1. */
static int gelu_tail(const il_graph *g, int t, int x) {
    int m1 = pu_sole_consumer(g, t);
    if (!pu_is(g, m1, "Mul")) return -1;
    int o = pu_other_input(g, m1, t), out1 = g->nodes[m1].outputs[0];
    if (o == x) { /* (x * t) * 0.5 */
        int m2 = pu_sole_consumer(g, out1);
        return mul_by(g, m2, out1, 0.5) ? m2 : -1;
    }
    int h = pu_producer(g, o);
    if (mul_by(g, h, x, 0.5)) return m1; /* (x * 0.5) * t */
    if (pu_scalar_is(g, o, 0.5, 1e-6)) { /* (t * 0.5) * x */
        int m2 = pu_sole_consumer(g, out1);
        return pu_is(g, m2, "Mul") && pu_other_input(g, m2, out1) == x ? m2 : -1;
    }
    return -1;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        int erf = pu_is(g, k, "Erf"), th = pu_is(g, k, "Tanh");
        if (!erf && !th) continue;
        int x = erf ? erf_arg(g, g->nodes[k].inputs[0]) : tanh_arg(g, g->nodes[k].inputs[0]);
        int e = g->nodes[k].outputs[0], add = pu_sole_consumer(g, e);
        if (x < 0 || !pu_is(g, add, "Add") || !pu_scalar_is(g, pu_other_input(g, add, e), 1.0, 1e-6)) continue;
        int last = gelu_tail(g, g->nodes[add].outputs[0], x);
        if (last < 0) continue;
        int y = g->nodes[last].outputs[0], std = pu_opset(g) >= 20;
        int j = pu_add_node(g, "Gelu", std ? "" : IL_DOMAIN, k, "_gelu", 1, &x, 1, &y);
        if (th) il_node_set_string(g, j, "approximate", "tanh");
        if (!std) pu_use_fused_domain(g);
        pu_kill(g, last);
        il_pass_count(st, erf ? "erf-form GELU fused" : "tanh-form GELU fused", 1);
    }
    return IL_OK;
}

const il_pass il_pass_fuse_gelu = {"fuse-gelu", "erf-form and tanh-form GELU formulas -> Gelu", run};
