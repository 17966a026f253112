/*
 * calibrate.c - the quantization context: the FP32 model prepared for quantization (fused ops
 * lowered, BatchNormalization folded into convolutions, constants folded) and the histograms of
 * every tensor a QDQ model of it may quantize, from the calibration set or the cache file.
 */
#include "quant_int.h"

#include "passes/passes.h"

#include <string.h>

#define PREPARE "lower-fused,fold-constants,eliminate,dead-nodes,fold-bn,dead-nodes"

void il_quant_free(il_quant_ctx *q) {
    if (!q) return;
    for (int i = 0; i < q->n_t; i++) {
        if (q->states && q->cal->end) q->cal->end(q->states[i]);
        free(q->tnames[i]);
    }
    free(q->states);
    free(q->tnames);
    il_calib_hist_free(q->hist, q->n_t);
    free(q->layers);
    free(q->layer_node);
    free(q->layer_fold);
    il_shapes_free(q->shapes);
    il_graph_free(q->g);
    free(q);
}

const il_graph *il_quant_fp32(const il_quant_ctx *q) { return q->g; }
int il_quant_cache_hit(const il_quant_ctx *q) { return q->cache_hit; }
const char *il_quant_calib_spec(const il_quant_ctx *q) { return q->calib; }

int il_quant_layers(const il_quant_ctx *q, const char *const **names) {
    *names = q->layers;
    return q->n_layers;
}

/* FNV-1a over the prepared model's bytes and the calibration set: the cache's key. */
static il_status cache_key(const il_quant_ctx *q, char *key, size_t n) {
    void *buf;
    size_t len;
    il_status st = il_onnx_save_buffer(q->g, &buf, &len);
    if (st) return st;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ ((const unsigned char *)buf)[i]) * 1099511628211ULL;
    free(buf);
    snprintf(key, n, "model:%016llx calib:%s bins:%d", (unsigned long long)h, q->calib, IL_CALIB_BINS);
    return IL_OK;
}

int il_quant_is_quantized(const il_graph *g) {
    static const char *const ops[] = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
                                      "ConvInteger", "QLinearConv", "QLinearMatMul", "QGemm", NULL};
    for (int k = 0; k < g->n_nodes; k++) {
        const il_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int i = 0; ops[i]; i++)
            if (!strcmp(n->op_type, ops[i])) return 1;
        if (n->domain && (!strcmp(n->domain, "ai.inferlab") || !strcmp(n->domain, "com.microsoft")) &&
            (strstr(n->op_type, "Int8") || strstr(n->op_type, "QLinear")))
            return 1;
    }
    return 0;
}

static il_status prepare(il_quant_ctx *q, const il_graph *g) {
    if (il_quant_is_quantized(g))
        return il_error(IL_ERR_INVALID, "the model is quantized already (it has QuantizeLinear/DequantizeLinear or "
                        "integer ops); quantize its FP32 original");
    int64_t opset = il_graph_opset(g, "");
    if (opset < 10)
        return il_error(IL_ERR_UNSUPPORTED, "the model imports opset %lld; QuantizeLinear needs 10 (13 per channel)",
                        (long long)opset);
    q->per_channel = opset >= 13;
    if (!(q->g = il_graph_clone(g))) return il_error(IL_ERR_OOM, "out of memory cloning the model");
    il_status st = il_pipeline_run(q->g, PREPARE, NULL, NULL, 0, NULL);
    if (!st) st = il_graph_sort(q->g);
    if (!st) st = il_infer_shapes(q->g, 0, NULL, 0, &q->shapes);
    if (st) return il_error_wrap(st, "preparing the FP32 model: ");
    il_shapes_apply(q->shapes, q->g);
    return IL_OK;
}

/* The tensors to observe (every one a plan may quantize) and the layers to choose among. */
static il_status candidates(il_quant_ctx *q) {
    il_qplan p;
    il_status st = il_qplan_make(q->g, q->shapes, NULL, !q->o.symmetric, 1, &p);
    if (st) return st;
    q->tnames = calloc((size_t)q->g->n_values + 1, sizeof *q->tnames);
    q->layers = calloc((size_t)q->g->n_nodes + 1, sizeof *q->layers);
    q->layer_node = calloc((size_t)q->g->n_nodes + 1, sizeof *q->layer_node);
    q->layer_fold = calloc((size_t)q->g->n_nodes + 1, sizeof *q->layer_fold);
    if (!q->tnames || !q->layers || !q->layer_node || !q->layer_fold) st = il_error(IL_ERR_OOM, "out of memory");
    for (int v = 0; !st && v < q->g->n_values; v++)
        if (p.tq[v]) q->tnames[q->n_t++] = strdup(q->g->values[v].name);
    for (int k = 0; !st && k < q->g->n_nodes; k++)
        if (p.qnode[k] == QN_YES && il_qplan_is_compute(&q->g->nodes[k]) && q->g->nodes[k].name) {
            q->layer_node[q->n_layers] = k;
            q->layer_fold[q->n_layers] = p.fold[k];
            q->layers[q->n_layers++] = q->g->nodes[k].name;
        }
    il_qplan_free(&p);
    return st;
}

il_status il_quant_calibrate(const il_graph *g, const il_quant_opts *o, il_quant_ctx **out) {
    *out = NULL;
    il_quant_ctx *q = calloc(1, sizeof *q);
    if (!q) return il_error(IL_ERR_OOM, "out of memory");
    q->o = *o;
    snprintf(q->method, sizeof q->method, "%s", o->method ? o->method : "entropy");
    snprintf(q->calib, sizeof q->calib, "%s", o->calib ? o->calib : il_calib_default_spec(g));
    snprintf(q->cache, sizeof q->cache, "%s", o->cache ? o->cache : "");
    q->o.method = q->method, q->o.calib = q->calib, q->o.cache = o->cache ? q->cache : NULL;
    il_status st = IL_OK;
    if (!(q->cal = il_calib_find(q->method))) {
        int n;
        const il_calibrator *const *all = il_calib_all(&n);
        char names[512] = "";
        for (int i = 0; i < n; i++) snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", all[i]->name);
        st = il_error(IL_ERR_INVALID, "unknown calibration method '%s' (%s)", q->method, names);
    }
    if (!st) st = prepare(q, g);
    if (!st) st = candidates(q);
    il_calib_data *d = NULL;
    char key[512] = "";
    if (!st && q->o.cache && !q->cal->observe) {
        if (!(st = cache_key(q, key, sizeof key)) &&
            !il_calib_cache_load(q->o.cache, key, (const char *const *)q->tnames, q->n_t, &q->hist)) {
            q->cache_hit = 1;
            if (o->log) fprintf(o->log, "calibration: %d tensors from the cache %s\n", q->n_t, q->o.cache);
        }
        il_error_clear();
    }
    if (!st && !q->cache_hit) {
        double t0 = il_now();
        st = il_calib_data_load(q->g, q->calib, 0, 0, o->binds, o->n_binds, &d);
        if (!st && q->cal->observe) {
            q->states = calloc((size_t)q->n_t + 1, sizeof *q->states);
            for (int i = 0; q->states && i < q->n_t; i++) q->states[i] = q->cal->begin ? q->cal->begin(q->tnames[i]) : NULL;
        }
        if (!st) {
            q->samples = d->n;
            st = il_calib_collect(q->g, d, (const char *const *)q->tnames, q->n_t, q->cal->needs_hist || q->o.cache,
                                  q->cal, q->states, o->threads, &q->hist);
        }
        if (!st && o->log)
            fprintf(o->log, "calibration: %d tensors observed on %s (%lld samples) in %.1f s\n", q->n_t, q->calib,
                    (long long)d->n, il_now() - t0);
        if (!st && q->o.cache && key[0]) {
            st = il_calib_cache_save(q->o.cache, key, q->hist, q->n_t);
            if (!st && o->log) fprintf(o->log, "calibration: cache written to %s\n", q->o.cache);
        }
    }
    il_calib_data_free(d);
    if (st) {
        il_quant_free(q);
        return st;
    }
    *out = q;
    return IL_OK;
}
