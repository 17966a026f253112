/*
 * dynamic.c - dynamic quantization of MatMul and Gemm, as ONNX Runtime's quantize_dynamic
 * writes it: the weight is int8 ahead of time, the activation gets its scale and zero point
 * from its own range at run time.
 *
 *   A -> DynamicQuantizeLinear -> (A_q uint8, a_scale, a_zero_point)
 *   MatMulInteger(A_q, W_q, a_zero_point, w_zero_point) -> int32 -> Cast float
 *   * (a_scale * w_scale [* alpha])  [+ beta * C]  -> Y (the node's output name)
 *
 * No calibration: nothing to observe, so transformers with data-dependent activation ranges
 * (BERT, ViT) quantize without a data set.
 */
#include "quant_int.h"

#include <math.h>
#include <string.h>

static int new_val(il_graph *g, const char *base, const char *suffix, il_dtype dt) {
    char nm[600];
    snprintf(nm, sizeof nm, "%s%s", base, suffix);
    int v = il_graph_new_value(g, nm);
    g->values[v].dtype = dt;
    return v;
}

static int new_const(il_graph *g, const char *base, const char *suffix, il_tensor *t) {
    int v = new_val(g, base, suffix, t->dtype);
    char *name = strdup(g->values[v].name);
    il_graph_add_constant(g, name, t);
    free(name);
    return v;
}

static int node(il_graph *g, const char *op, const char *base, int n_in, const int *in, int n_out, const int *out) {
    char nm[600];
    snprintf(nm, sizeof nm, "%s_%s", base, op);
    return il_graph_add_node(g, op, "", nm, n_in, in, n_out, out);
}

/* W as [K, N] int8 per column (or per tensor), scales times alpha into *s. */
static il_tensor *weight_kn(const il_tensor *w, int trans, int per_tensor, float alpha, il_tensor **s, il_tensor **zp) {
    int64_t k = trans ? w->dims[1] : w->dims[0], n = trans ? w->dims[0] : w->dims[1], dims[2] = {k, n};
    int64_t ns = per_tensor ? 1 : n;
    il_tensor *q = il_tensor_new(IL_I8, 2, dims);
    *s = il_tensor_new(IL_F32, per_tensor ? 0 : 1, &ns);
    *zp = il_tensor_new(IL_I8, per_tensor ? 0 : 1, &ns);
    if (!q || !*s || !*zp) return NULL;
    const float *wd = w->data;
    float *sd = (*s)->data;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < n; j++) {
            float v = fabsf(wd[trans ? j * k + i : i * n + j]);
            if (v > sd[per_tensor ? 0 : j]) sd[per_tensor ? 0 : j] = v;
        }
    for (int64_t j = 0; j < ns; j++) sd[j] = sd[j] > 0 ? sd[j] / 127.0f : 1.0f;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < n; j++) {
            float v = nearbyintf(wd[trans ? j * k + i : i * n + j] / sd[per_tensor ? 0 : j]);
            ((int8_t *)q->data)[i * n + j] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
        }
    for (int64_t j = 0; j < ns; j++) sd[j] *= alpha;
    return q;
}

/* Node k rewritten; dq[v] caches the DynamicQuantizeLinear of activation v (-1: none yet). */
static il_status rewrite(il_graph *g, int k, int per_tensor, int *dq) {
    il_node *n = &g->nodes[k];
    int gemm = !strcmp(n->op_type, "Gemm"), a = n->inputs[0], y = n->outputs[0];
    int c = gemm && n->n_inputs > 2 ? n->inputs[2] : -1;
    float alpha = gemm ? il_attr_float(n, "alpha", 1) : 1, beta = gemm ? il_attr_float(n, "beta", 1) : 1;
    il_tensor *s, *zp, *wq = weight_kn(g->values[n->inputs[1]].constant, gemm && il_attr_int(n, "transB", 0), per_tensor,
                                        alpha, &s, &zp);
    if (!wq) return il_error(IL_ERR_OOM, "out of memory");
    char base[512];
    snprintf(base, sizeof base, "%s", g->nodes[k].name && g->nodes[k].name[0] ? g->nodes[k].name : g->values[y].name);
    il_graph_remove_node(g, k); /* n is not used past here: adding nodes may move it */
    if (dq[a] < 0) {
        char an[512];
        snprintf(an, sizeof an, "%s", g->values[a].name);
        int outs[3];
        outs[0] = new_val(g, an, "_quantized", IL_U8);
        outs[1] = new_val(g, an, "_scale", IL_F32);
        outs[2] = new_val(g, an, "_zero_point", IL_U8);
        node(g, "DynamicQuantizeLinear", an, 1, &a, 3, outs);
        dq[a] = outs[0];
    }
    int aq = dq[a], as = aq + 1, azp = aq + 2; /* made one after the other above */
    int in[4] = {aq, -1, azp, -1};
    in[1] = new_const(g, base, "_weight_quantized", wq);
    in[3] = new_const(g, base, "_weight_zero_point", zp);
    int acc = new_val(g, base, "_int32", IL_I32);
    int f = new_val(g, base, "_float", IL_F32);
    node(g, "MatMulInteger", base, 4, in, 1, &acc);
    int kc = node(g, "Cast", base, 1, &acc, 1, &f);
    il_node_set_int(g, kc, "to", IL_F32);
    int sc[2] = {as, -1};
    sc[1] = new_const(g, base, "_weight_scale", s);
    int scale = new_val(g, base, "_scale", IL_F32);
    node(g, "Mul", base, 2, sc, 1, &scale);
    int has_bias = c >= 0 && beta != 0;
    int m[2] = {f, scale};
    int prod = has_bias ? new_val(g, base, "_unbiased", IL_F32) : y;
    char mn[600];
    snprintf(mn, sizeof mn, "%s_rescale", base);
    il_graph_add_node(g, "Mul", "", mn, 2, m, 1, &prod);
    if (has_bias) {
        int cb = c;
        if (beta != 1) {
            il_tensor *t = il_tensor_clone(g->values[c].constant);
            if (!t) return il_error(IL_ERR_OOM, "out of memory");
            for (int64_t i = 0; i < il_tensor_numel(t); i++) ((float *)t->data)[i] *= beta;
            cb = new_const(g, base, "_bias", t);
        }
        int ad[2] = {prod, cb};
        node(g, "Add", base, 2, ad, 1, &y);
    }
    return IL_OK;
}

/* MatMul or Gemm with a constant 2-D float weight and a float activation (Gemm: A not
 * transposed; a bias, if any, constant). */
static int dynamic_candidate(const il_graph *g, const il_shapes *s, int k) {
    const il_node *n = &g->nodes[k];
    int gemm = !strcmp(n->op_type, "Gemm");
    if (n->dead || (n->domain && n->domain[0]) || (!gemm && strcmp(n->op_type, "MatMul")) || n->n_inputs < 2) return 0;
    const il_tensor *w = g->values[n->inputs[1]].constant;
    int a = n->inputs[0];
    if (!w || w->dtype != IL_F32 || w->rank != 2 || g->values[n->inputs[1]].is_input) return 0;
    if (g->values[a].constant || s->info[a].dtype != IL_F32 || s->info[a].rank < 1) return 0;
    if (gemm && il_attr_int(n, "transA", 0)) return 0;
    if (gemm && n->n_inputs > 2 && n->inputs[2] >= 0) {
        const il_tensor *c = g->values[n->inputs[2]].constant;
        if (!c || c->dtype != IL_F32) return 0;
    }
    return 1;
}

il_status il_quant_dynamic(il_graph *g, const char *const *ex, int n_ex, int per_tensor, int *n_done) {
    *n_done = 0;
    if (il_quant_is_quantized(g))
        return il_error(IL_ERR_INVALID, "the model is quantized already (it has QuantizeLinear/DequantizeLinear or "
                        "integer ops); quantize its FP32 original");
    if (il_graph_opset(g, "") < 11)
        return il_error(IL_ERR_UNSUPPORTED, "the model imports opset %lld; DynamicQuantizeLinear needs 11",
                        (long long)il_graph_opset(g, ""));
    for (int i = 0; i < n_ex; i++) {
        int found = 0;
        for (int k = 0; k < g->n_nodes && !found; k++) found = g->nodes[k].name && !strcmp(g->nodes[k].name, ex[i]);
        if (!found) return il_error(IL_ERR_INVALID, "--exclude: no node named '%s' in the model", ex[i]);
    }
    il_shapes *s;
    il_status st = il_infer_shapes(g, 0, NULL, 0, &s);
    if (st) return il_error_wrap(st, "dynamic quantization: ");
    int nv = g->n_values, nn = g->n_nodes;
    int *dq = malloc(((size_t)nv + 1) * sizeof *dq), *todo = calloc((size_t)nn + 1, sizeof *todo);
    if (!dq || !todo) st = il_error(IL_ERR_OOM, "out of memory");
    for (int v = 0; !st && v < nv; v++) dq[v] = -1;
    for (int k = 0; !st && k < nn; k++) {
        int skip = 0;
        for (int i = 0; i < n_ex; i++) skip |= g->nodes[k].name && !strcmp(g->nodes[k].name, ex[i]);
        todo[k] = !skip && dynamic_candidate(g, s, k);
    }
    il_shapes_free(s);
    for (int k = 0; !st && k < nn; k++)
        if (todo[k] && !(st = rewrite(g, k, per_tensor, dq))) ++*n_done;
    free(dq);
    free(todo);
    if (!st) st = il_graph_sort(g);
    if (!st && !(st = il_infer_shapes(g, 0, NULL, 0, &s))) {
        il_shapes_apply(s, g);
        il_shapes_free(s);
    }
    return st;
}
