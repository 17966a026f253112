/*
 * plan.c - which nodes and tensors a QDQ model quantizes (docs/quantize.md, "the scheme").
 *
 * Ops fall in three kinds, as in ONNX Runtime's QDQ quantizer:
 *  - compute ops with weights (Conv, Gemm, MatMul): activation inputs and the output quantized,
 *    weights int8, bias int32;
 *  - ops with their own range (Add, Mul, Concat, average pools, Relu, Clip, LeakyRelu, Sigmoid):
 *    every activation input and the output quantized, each with its calibrated range;
 *  - data movement (MaxPool, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Identity): kept in
 *    INT8 only when their input is quantized anyway, the output sharing the input's scale and
 *    zero point, so the integer values pass through unchanged.
 * Every other op stays FP32: where its input or output is quantized for a neighbour, it reads
 * the DequantizeLinear output or feeds the QuantizeLinear, "Q/DQ around it". A Concat's inputs
 * take its output's scale where nothing else reads them, so it can stay in INT8 too.
 * A Relu, or a Clip from 0, that is the only consumer of a compute op's or an Add's output is
 * folded into that output's range: with uint8 and zero point 0, QuantizeLinear's saturation
 * computes it, so the node goes.
 */
#include "quant_int.h"

#include <string.h>

enum { K_NONE = 0, K_COMPUTE, K_OWN, K_SHARED };

static const struct {
    const char *op;
    int kind;
    int acts; /* leading inputs that are activations; -1: all */
} optab[] = {
    {"Conv", K_COMPUTE, 1},          {"Gemm", K_COMPUTE, 1},          {"MatMul", K_COMPUTE, 1},
    {"Add", K_OWN, 2},               {"Mul", K_OWN, 2},               {"Concat", K_OWN, -1},
    {"AveragePool", K_OWN, 1},       {"GlobalAveragePool", K_OWN, 1}, {"Relu", K_OWN, 1},
    {"Clip", K_OWN, 1},              {"LeakyRelu", K_OWN, 1},         {"Sigmoid", K_OWN, 1},
    {"MaxPool", K_SHARED, 1},        {"GlobalMaxPool", K_SHARED, 1},  {"Reshape", K_SHARED, 1},
    {"Flatten", K_SHARED, 1},        {"Transpose", K_SHARED, 1},      {"Squeeze", K_SHARED, 1},
    {"Unsqueeze", K_SHARED, 1},      {"Identity", K_SHARED, 1},
};

static int kind_of(const il_node *n, int *acts) {
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx")) return K_NONE;
    for (size_t i = 0; i < sizeof optab / sizeof *optab; i++)
        if (!strcmp(n->op_type, optab[i].op)) {
            *acts = optab[i].acts < 0 || optab[i].acts > n->n_inputs ? n->n_inputs : optab[i].acts;
            return optab[i].kind;
        }
    return K_NONE;
}

/* A float32 value computed by the graph (or a graph input), not a constant. */
static int is_act(const il_graph *g, const il_shapes *s, int v) {
    return v >= 0 && !g->values[v].constant && s->info[v].dtype == IL_F32 && !(s->known && s->known[v]);
}

static int is_fconst(const il_graph *g, int v) {
    return v >= 0 && g->values[v].constant && g->values[v].constant->dtype == IL_F32 && !g->values[v].is_input;
}

/* Whether node k can be quantized at all (exclusions aside). */
static int eligible(const il_graph *g, const il_shapes *s, int k) {
    const il_node *n = &g->nodes[k];
    int acts, kind = kind_of(n, &acts);
    if (kind == K_NONE || n->dead || n->n_outputs < 1 || !is_act(g, s, n->outputs[0])) return 0;
    for (int i = 1; i < n->n_outputs; i++)
        if (n->outputs[i] >= 0) return 0; /* MaxPool's Indices, Dropout's mask */
    for (int i = 0; i < acts; i++)
        if (!is_act(g, s, n->inputs[i])) return 0;
    if (kind != K_COMPUTE) {
        if (!strcmp(n->op_type, "Clip"))
            for (int i = 1; i < n->n_inputs; i++)
                if (n->inputs[i] >= 0 && !g->values[n->inputs[i]].constant) return 0;
        return 1;
    }
    int w = n->n_inputs > 1 ? n->inputs[1] : -1;
    if (!strcmp(n->op_type, "Conv")) return is_fconst(g, w) && g->values[w].constant->rank >= 3;
    if (!strcmp(n->op_type, "Gemm")) return is_fconst(g, w) ? g->values[w].constant->rank == 2 : is_act(g, s, w);
    return is_fconst(g, w) || is_act(g, s, w); /* MatMul */
}

/* A Relu, or a Clip whose minimum is 0, that node k's output can absorb: its only consumer. */
static int foldable_relu(const il_graph *g, int k) {
    const il_node *n = &g->nodes[k];
    int v = n->outputs[0], users[2];
    if (g->values[v].is_output || il_graph_consumers(g, v, users, 2) != 1) return -1;
    const il_node *r = &g->nodes[users[0]];
    if (r->dead || (r->domain && r->domain[0])) return -1;
    if (!strcmp(r->op_type, "Relu")) return users[0];
    if (strcmp(r->op_type, "Clip")) return -1;
    double lo;
    if (r->n_inputs > 1 && r->inputs[1] >= 0) {
        const il_tensor *t = g->values[r->inputs[1]].constant;
        if (!t || il_tensor_numel(t) != 1) return -1;
        lo = il_tensor_get(t, 0);
    } else {
        const il_attr *a = il_node_attr(r, "min"); /* opsets before 11 */
        if (!a) return -1;
        lo = a->f;
    }
    return lo == 0 ? users[0] : -1;
}

/* A Concat stays in INT8 only when its inputs have its output's scale and zero point (the
 * integers are then copied, not requantized): an input that only the Concat reads takes the
 * output's parameters, whose range covers every input's. Not an input a folded Relu makes (its
 * zero point must stay 0 for the fold), nor one sharing its producer's parameters already. */
static void share_concat_inputs(const il_graph *g, il_qplan *p) {
    for (int k = 0; k < g->n_nodes; k++) {
        const il_node *n = &g->nodes[k];
        if (p->qnode[k] != QN_YES || strcmp(n->op_type, "Concat")) continue;
        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i], users[2], pk = g->values[v].producer;
            if (p->tq[v] != TQ_OWN || g->values[v].is_output || g->values[v].is_input) continue;
            if (il_graph_consumers(g, v, users, 2) != 1 || (pk >= 0 && p->qnode[pk] == QN_FOLDED)) continue;
            p->tq[v] = TQ_SHARED;
            p->share[v] = n->outputs[0];
        }
    }
}

void il_qplan_free(il_qplan *p) {
    if (!p) return;
    free(p->qnode);
    free(p->fold);
    free(p->tq);
    free(p->share);
    memset(p, 0, sizeof *p);
}

il_status il_qplan_make(const il_graph *g, const il_shapes *s, const unsigned char *fp32, int asym, int all,
                        il_qplan *p) {
    memset(p, 0, sizeof *p);
    p->qnode = calloc((size_t)g->n_nodes + 1, sizeof *p->qnode);
    p->fold = malloc(((size_t)g->n_nodes + 1) * sizeof *p->fold);
    p->tq = calloc((size_t)g->n_values + 1, sizeof *p->tq);
    p->share = malloc(((size_t)g->n_values + 1) * sizeof *p->share);
    if (!p->qnode || !p->fold || !p->tq || !p->share) {
        il_qplan_free(p);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    for (int k = 0; k < g->n_nodes; k++) p->fold[k] = -1;
    for (int v = 0; v < g->n_values; v++) p->share[v] = -1;
    /* g is sorted: producers come before consumers */
    for (int k = 0; k < g->n_nodes; k++) {
        const il_node *n = &g->nodes[k];
        int acts = 0, kind = kind_of(n, &acts);
        if (p->qnode[k] == QN_FOLDED || !eligible(g, s, k)) continue;
        if (!all && fp32 && fp32[k]) continue;
        if (kind == K_SHARED) {
            /* all: every candidate tensor, so that calibration covers any exclusion */
            if (!all && !p->tq[n->inputs[0]]) continue;
            p->qnode[k] = QN_YES;
            p->tq[n->outputs[0]] = all ? TQ_OWN : TQ_SHARED;
            p->share[n->outputs[0]] = n->inputs[0];
            if (all) p->tq[n->inputs[0]] = p->tq[n->inputs[0]] ? p->tq[n->inputs[0]] : TQ_OWN;
            continue;
        }
        p->qnode[k] = QN_YES;
        for (int i = 0; i < acts; i++)
            if (!p->tq[n->inputs[i]]) p->tq[n->inputs[i]] = TQ_OWN;
        if (kind == K_COMPUTE && n->n_inputs > 1 && is_act(g, s, n->inputs[1]) && !p->tq[n->inputs[1]])
            p->tq[n->inputs[1]] = TQ_OWN; /* MatMul/Gemm of two activations */
        int r = asym && (kind == K_COMPUTE || !strcmp(n->op_type, "Add")) ? foldable_relu(g, k) : -1;
        if (r >= 0 && (all || !fp32 || !fp32[r])) {
            p->fold[k] = r;
            p->qnode[r] = QN_FOLDED;
            p->tq[g->nodes[r].outputs[0]] = TQ_OWN; /* the Relu's output range, produced by Q->DQ */
            if (all) p->tq[n->outputs[0]] = TQ_OWN; /* kept apart when the Relu is excluded */
        } else {
            p->tq[n->outputs[0]] = TQ_OWN;
        }
    }
    if (!all) share_concat_inputs(g, p);
    return IL_OK;
}

int il_qplan_is_compute(const il_node *n) {
    int acts;
    return kind_of(n, &acts) == K_COMPUTE;
}
