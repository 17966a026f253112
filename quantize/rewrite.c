/*
 * rewrite.c - the QDQ rewrite: the prepared FP32 model becomes the standard ONNX QDQ form that
 * ONNX Runtime's quantizer writes and every ONNX tool reads.
 *
 *   activation t:  producer -> t_prequant -> QuantizeLinear -> t_quantized -> DequantizeLinear -> t
 *   weight W:      W_quantized (int8, per output channel) -> DequantizeLinear -> the node's input
 *   bias B:        B_quantized (int32, scale x_scale * w_scale, zero point 0) -> DequantizeLinear
 *
 * The DequantizeLinear output keeps the activation's name, so graph outputs keep theirs and a
 * tensor of the FP32 model and its quantized counterpart are found by the same name (--analyze).
 * Activations are uint8 with a zero point (asymmetric) or int8 symmetric; weights int8
 * symmetric over [-127, 127] (the restricted range keeps u8 x s8 pair sums of VNNI/AVX2 dot
 * products within int16 where a kernel needs it).
 */
#include "quant_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct {
    float scale;
    int32_t zp;
    int done;
} qparam;

typedef struct {
    const il_quant_ctx *q;
    il_graph *g;
    il_qplan p;
    qparam *prm;    /* per value of the FP32 graph */
    int asym;
    il_quant_stats st;
} rw;

static const il_calib_hist *hist_of(const il_quant_ctx *q, const char *name) {
    for (int i = 0; i < q->n_t; i++)
        if (!strcmp(q->tnames[i], name)) return &q->hist[i];
    return NULL;
}

/* Scale and zero point of a range, widened to hold 0 exactly. */
static void range_params(double lo, double hi, int asym, qparam *p) {
    lo = fmin(lo, 0), hi = fmax(hi, 0);
    if (!isfinite(lo) || !isfinite(hi) || hi - lo < 1e-30) { /* nothing but zeros seen */
        p->scale = 1, p->zp = 0;
        return;
    }
    if (asym) {
        p->scale = (float)((hi - lo) / 255);
        double z = nearbyint(-lo / p->scale);
        p->zp = (int32_t)(z < 0 ? 0 : z > 255 ? 255 : z);
    } else {
        p->scale = (float)(fmax(-lo, hi) / 127);
        p->zp = 0;
    }
}

static il_status params_of(rw *r, int v) {
    qparam *p = &r->prm[v];
    if (p->done) return IL_OK;
    if (r->p.tq[v] == TQ_SHARED) {
        il_status st = params_of(r, r->p.share[v]);
        if (!st) *p = r->prm[r->p.share[v]];
        return st;
    }
    const il_calib_hist *h = hist_of(r->q, r->q->g->values[v].name);
    if (!h) return il_error(IL_ERR_INTERNAL, "tensor '%s' was not calibrated", r->q->g->values[v].name);
    il_calib_opts co = {.percentile = r->q->o.percentile, .levels = r->asym && h->min >= 0 ? 256 : 128,
                        .symmetric = !r->asym};
    double lo, hi;
    void *state = r->q->states ? r->q->states[h - r->q->hist] : NULL;
    il_status st = r->q->cal->range(h, state, &co, &lo, &hi);
    if (st) return il_error_wrap(st, "calibrator %s on '%s': ", r->q->cal->name, h->name);
    range_params(lo, hi, r->asym, p);
    p->done = 1;
    return IL_OK;
}

/* ---------------------------------------------------------------- building nodes */

static int add_const(il_graph *g, const char *base, il_tensor *t) {
    int v = il_graph_new_value(g, base);
    char *name = strdup(g->values[v].name);
    il_graph_add_constant(g, name, t);
    free(name);
    return v;
}

/* A scale and zero point pair of n elements (n 0: a scalar). */
static void qp_consts(il_graph *g, const char *base, const float *scale, const int32_t *zp, int64_t n, il_dtype zdt,
                      int *vs, int *vz) {
    char nm[600];
    il_tensor *s = il_tensor_new(IL_F32, n ? 1 : 0, &n), *z = il_tensor_new(zdt, n ? 1 : 0, &n);
    for (int64_t i = 0; i < (n ? n : 1); i++) {
        ((float *)s->data)[i] = scale[i];
        il_tensor_set(z, i, zp[i]);
    }
    snprintf(nm, sizeof nm, "%s_scale", base);
    *vs = add_const(g, nm, s);
    snprintf(nm, sizeof nm, "%s_zero_point", base);
    *vz = add_const(g, nm, z);
}

static int add_qdq_node(il_graph *g, const char *op, const char *base, int x, int vs, int vz, int y, int axis) {
    char nm[600];
    snprintf(nm, sizeof nm, "%s_%s", base, op);
    int in[3] = {x, vs, vz};
    int k = il_graph_add_node(g, op, "", nm, 3, in, 1, &y);
    if (axis >= 0) il_node_set_int(g, k, "axis", axis);
    return k;
}

/* Quantize activation v: its producer (or the folded Relu's input) feeds Q, DQ gives v. */
static il_status quantize_act(rw *r, int v, int src) {
    il_graph *g = r->g;
    char base[512];
    snprintf(base, sizeof base, "%s", g->values[v].name);
    il_status st = params_of(r, v);
    if (st) return st;
    il_dtype qt = r->asym ? IL_U8 : IL_I8;
    int vs, vz, out = v;
    qp_consts(g, base, &r->prm[v].scale, &r->prm[v].zp, 0, qt, &vs, &vz);
    if (src < 0) {
        int pk = g->values[v].producer;
        char nm[600];
        snprintf(nm, sizeof nm, "%s_prequant", base);
        if (pk >= 0) { /* the producer writes a new value; v becomes DQ's */
            src = il_graph_new_value(g, nm);
            for (int i = 0; i < g->nodes[pk].n_outputs; i++)
                if (g->nodes[pk].outputs[i] == v) g->nodes[pk].outputs[i] = src;
            g->values[src].producer = pk;
            g->values[src].dtype = IL_F32;
        } else { /* a graph input: its consumers read a new DQ value */
            src = v;
            snprintf(nm, sizeof nm, "%s_dequantized", base);
            out = il_graph_new_value(g, nm);
            for (int k = 0; k < g->n_nodes; k++)
                for (int i = 0; i < g->nodes[k].n_inputs; i++)
                    if (g->nodes[k].inputs[i] == v) g->nodes[k].inputs[i] = out;
        }
    }
    char nm[600];
    snprintf(nm, sizeof nm, "%s_quantized", base);
    int vq = il_graph_new_value(g, nm);
    g->values[vq].dtype = qt;
    add_qdq_node(g, "QuantizeLinear", base, src, vs, vz, vq, -1);
    add_qdq_node(g, "DequantizeLinear", base, vq, vs, vz, out, -1);
    g->values[out].dtype = IL_F32;
    r->st.tensors++;
    return IL_OK;
}

/* Weight w of node k as int8, symmetric, per slice along axis (-1: per tensor); its scales go
 * to *scale (n_out of them) for the bias. Node k's input slot reads the DQ output. */
static il_status quantize_weight(rw *r, int k, int slot, int axis, float **scale, int64_t *n_out) {
    il_graph *g = r->g;
    const il_tensor *w = g->values[g->nodes[k].inputs[slot]].constant;
    int64_t c = axis >= 0 ? w->dims[axis] : 1, inner = 1;
    for (int d = axis + 1; axis >= 0 && d < w->rank; d++) inner *= w->dims[d];
    int64_t n = il_tensor_numel(w);
    float *s = calloc((size_t)c + 1, sizeof *s);
    int32_t *z = calloc((size_t)c + 1, sizeof *z);
    il_tensor *q = il_tensor_new(IL_I8, w->rank, w->dims);
    if (!s || !z || !q) {
        free(s), free(z), il_tensor_free(q);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    const float *wd = w->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t ch = axis >= 0 ? (i / inner) % c : 0;
        if (fabsf(wd[i]) > s[ch]) s[ch] = fabsf(wd[i]);
    }
    for (int64_t ch = 0; ch < c; ch++) s[ch] = s[ch] > 0 ? s[ch] / 127.0f : 1.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = nearbyintf(wd[i] / s[axis >= 0 ? (i / inner) % c : 0]);
        ((int8_t *)q->data)[i] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
    }
    char base[512], nm[600];
    snprintf(base, sizeof base, "%s", g->values[g->nodes[k].inputs[slot]].name);
    snprintf(nm, sizeof nm, "%s_quantized", base);
    int vq = add_const(g, nm, q), vs, vz;
    qp_consts(g, base, s, z, axis >= 0 ? c : 0, IL_I8, &vs, &vz);
    snprintf(nm, sizeof nm, "%s_dequantized", base);
    int out = il_graph_new_value(g, nm);
    g->values[out].dtype = IL_F32;
    add_qdq_node(g, "DequantizeLinear", base, vq, vs, vz, out, axis);
    g->nodes[k].inputs[slot] = out;
    free(z);
    *scale = s;
    *n_out = c;
    r->st.weights++;
    return IL_OK;
}

/* Bias b of node k as int32 with scale x_scale * w_scale[c]. */
static il_status quantize_bias(rw *r, int k, int slot, float xs, const float *ws, int64_t nw) {
    il_graph *g = r->g;
    const il_tensor *b = g->values[g->nodes[k].inputs[slot]].constant;
    int64_t n = il_tensor_numel(b);
    if (b->rank != 1 || (nw != 1 && nw != n)) return IL_OK; /* not a per-channel vector: stays float */
    float *s = malloc((size_t)n * sizeof *s);
    int32_t *z = calloc((size_t)n, sizeof *z);
    il_tensor *q = il_tensor_new(IL_I32, 1, &n);
    if (!s || !z || !q) {
        free(s), free(z), il_tensor_free(q);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        s[i] = xs * ws[nw == 1 ? 0 : i];
        if (!(s[i] > 0)) s[i] = FLT_MIN; /* an underflowed product: the bias saturates below */
        double v = nearbyint((double)((const float *)b->data)[i] / s[i]);
        if (isnan(v)) v = 0;
        ((int32_t *)q->data)[i] = (int32_t)(v < -2147483647.0 ? -2147483647.0 : v > 2147483647.0 ? 2147483647.0 : v);
    }
    char base[512], nm[600];
    snprintf(base, sizeof base, "%s", g->values[g->nodes[k].inputs[slot]].name);
    snprintf(nm, sizeof nm, "%s_quantized", base);
    int vq = add_const(g, nm, q), vs, vz;
    qp_consts(g, base, s, z, nw == 1 ? 0 : n, IL_I32, &vs, &vz);
    snprintf(nm, sizeof nm, "%s_dequantized", base);
    int out = il_graph_new_value(g, nm);
    g->values[out].dtype = IL_F32;
    add_qdq_node(g, "DequantizeLinear", base, vq, vs, vz, out, nw == 1 ? -1 : 0);
    g->nodes[k].inputs[slot] = out;
    free(s), free(z);
    return IL_OK;
}

/* Weights and bias of compute node k. */
static il_status quantize_params(rw *r, int k) {
    il_graph *g = r->g;
    const il_node *n = &g->nodes[k];
    int w = n->n_inputs > 1 ? n->inputs[1] : -1;
    if (w < 0 || !g->values[w].constant) return IL_OK; /* activation x activation */
    int wrank = g->values[w].constant->rank, axis = -1, bias = -1;
    int pc = r->q->per_channel && !r->q->o.per_tensor;
    if (!strcmp(n->op_type, "Conv")) {
        axis = pc ? 0 : -1;
        bias = n->n_inputs > 2 ? 2 : -1;
    } else if (!strcmp(n->op_type, "Gemm")) {
        axis = pc ? (il_attr_int(n, "transB", 0) ? 0 : 1) : -1;
        if (n->n_inputs > 2 && il_attr_float(n, "alpha", 1) == 1 && il_attr_float(n, "beta", 1) == 1) bias = 2;
    } else { /* MatMul */
        axis = pc && wrank == 2 ? 1 : -1;
    }
    float *ws = NULL;
    int64_t nw = 0;
    il_status st = quantize_weight(r, k, 1, axis, &ws, &nw);
    int x = g->nodes[k].inputs[0];
    /* x reads a DQ output now; its scale is its FP32 value's (the same index) */
    if (!st && bias >= 0 && g->nodes[k].inputs[bias] >= 0 && g->values[g->nodes[k].inputs[bias]].constant &&
        g->values[g->nodes[k].inputs[bias]].constant->dtype == IL_F32 && x < r->q->g->n_values && r->prm[x].done)
        st = quantize_bias(r, k, bias, r->prm[x].scale, ws, nw);
    free(ws);
    return st;
}

/* ---------------------------------------------------------------- the recipe */

static void recipe(const rw *r, const unsigned char *fp32, char *buf, size_t n) {
    const il_quant_ctx *q = r->q;
    size_t l = (size_t)snprintf(buf, n,
                                "{\"format\":\"qdq\",\"method\":\"%s\",\"calib\":\"%s\",\"samples\":%lld,"
                                "\"per_channel\":%s,\"activations\":\"%s\",\"weights\":\"int8\",\"bias\":\"int32\"",
                                q->method, q->calib, (long long)q->samples,
                                r->st.per_channel ? "true" : "false", r->asym ? "uint8" : "int8");
    if (!strcmp(q->method, "percentile") && l < n)
        l += (size_t)snprintf(buf + l, n - l, ",\"percentile\":%g", q->o.percentile > 0 ? q->o.percentile : 99.99);
    if (l < n)
        l += (size_t)snprintf(buf + l, n - l, ",\"quantized_nodes\":%d,\"relu_folded\":%d,\"fp32_layers\":[",
                              r->st.quantized, r->st.relu_folded);
    for (int k = 0, i = 0; fp32 && k < q->g->n_nodes && l < n; k++) {
        const char *name = q->g->nodes[k].name;
        if (!fp32[k] || !name || !name[0]) continue;
        l += (size_t)snprintf(buf + l, n - l, "%s\"", i++ ? "," : "");
        for (const char *c = name; *c && l + 8 < n; c++) /* names as JSON strings */
            l += (size_t)(*c == '"' || *c == '\\' ? snprintf(buf + l, n - l, "\\%c", *c)
                          : (unsigned char)*c < 0x20 ? snprintf(buf + l, n - l, "\\u%04x", *c)
                                                      : snprintf(buf + l, n - l, "%c", *c));
        if (l < n) l += (size_t)snprintf(buf + l, n - l, "\"");
    }
    if (l < n) snprintf(buf + l, n - l, "]}");
}

il_status il_quant_apply(const il_quant_ctx *q, const char *const *ex, int n_ex, il_graph **out, il_quant_stats *sto) {
    *out = NULL;
    unsigned char *fp32 = calloc((size_t)q->g->n_nodes + 1, 1);
    if (!fp32) return il_error(IL_ERR_OOM, "out of memory");
    for (int i = 0; i < n_ex; i++) {
        int found = 0;
        for (int k = 0; k < q->g->n_nodes; k++)
            if (q->g->nodes[k].name && !strcmp(q->g->nodes[k].name, ex[i])) fp32[k] = 1, found = 1;
        if (!found) {
            free(fp32);
            return il_error(IL_ERR_INVALID, "--exclude: no node named '%s' in the model", ex[i]);
        }
    }
    il_status st = il_quant_apply_mask(q, fp32, out, sto);
    free(fp32);
    return st;
}

il_status il_quant_apply_mask(const il_quant_ctx *q, const unsigned char *fp32, il_graph **out, il_quant_stats *sto) {
    *out = NULL;
    rw r = {.q = q, .asym = !q->o.symmetric};
    il_status st = il_qplan_make(q->g, q->shapes, fp32, r.asym, 0, &r.p);
    if (st) return st;
    int nv = q->g->n_values, nn = q->g->n_nodes;
    r.prm = calloc((size_t)nv + 1, sizeof *r.prm);
    r.g = il_graph_clone(q->g);
    if (!r.prm || !r.g) st = il_error(IL_ERR_OOM, "out of memory");
    r.st.per_channel = q->per_channel && !q->o.per_tensor;
    /* activation parameters first: biases need their input's scale */
    for (int v = 0; !st && v < nv; v++)
        if (r.p.tq[v]) st = params_of(&r, v);
    for (int k = 0; !st && k < nn; k++) {
        if (r.p.qnode[k] == QN_FOLDED) {
            il_graph_remove_node(r.g, k);
            r.st.relu_folded++;
        } else if (r.p.qnode[k] == QN_YES) {
            r.st.quantized++;
            if (il_qplan_is_compute(&q->g->nodes[k])) st = quantize_params(&r, k);
        } else if (il_qplan_is_compute(&q->g->nodes[k])) {
            r.st.fp32++;
        }
    }
    for (int v = 0; !st && v < nv; v++) {
        if (!r.p.tq[v]) continue;
        /* a folded Relu's output comes from Q -> DQ of its producer's output */
        int pk = q->g->values[v].producer, src = -1;
        if (pk >= 0 && r.p.qnode[pk] == QN_FOLDED) src = q->g->nodes[pk].inputs[0];
        st = quantize_act(&r, v, src);
    }
    if (!st) st = il_graph_sort(r.g);
    il_shapes *s = NULL;
    if (!st && !(st = il_infer_shapes(r.g, 0, NULL, 0, &s))) il_shapes_apply(s, r.g);
    il_shapes_free(s);
    if (!st) {
        char json[8192];
        recipe(&r, fp32, json, sizeof json);
        il_graph_set_meta(r.g, "inferlab.quantize", json);
        st = il_graph_verify(r.g);
        if (st) il_error_wrap(st, "the QDQ model fails the verifier: ");
    }
    free(r.prm);
    il_qplan_free(&r.p);
    if (st) {
        il_graph_free(r.g);
        return st;
    }
    if (sto) *sto = r.st;
    *out = r.g;
    return IL_OK;
}
