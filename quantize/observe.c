/*
 * observe.c - observers fed by running the FP32 model on the calibration set, and the
 * calibration cache that keeps what they saw.
 *
 * Observing takes two passes over the data: the first finds each tensor's range, the second
 * counts its values into a histogram laid out on that range (a histogram grown while the range
 * is still unknown would have to be re-binned, losing resolution). A calibrator that needs only
 * the range (minmax) skips the second pass, unless a cache is written for other methods.
 *
 * The cache is an ONNX file, read and written with the engine's own protobuf code: one float64
 * initializer per tensor (min, max, n, lo, hi, then the bins) and the key - the model's and the
 * calibration set's fingerprint - in its metadata.
 */
#include "quantize.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    il_calib_hist *h;
    int n, first_pass, skip;
    const il_calibrator *c;
    void **states;
} observe_ctx;

static il_status observe_batch(void *ctx, const il_tensor *const *outs, int n_outs, int64_t first, int64_t count) {
    observe_ctx *o = ctx;
    for (int i = 0; i < o->n; i++) {
        const il_tensor *t = outs[o->skip + i];
        if (t->dtype != IL_F32) continue;
        il_calib_hist_add(&o->h[i], t->data, il_tensor_numel(t), o->first_pass);
        if (o->first_pass && o->c && o->c->observe && o->states) o->c->observe(o->states[i], t->data, il_tensor_numel(t));
    }
    return IL_OK;
}

il_status il_calib_collect(const il_graph *g, const il_calib_data *d, const char *const *names, int n, int hist,
                           const il_calibrator *c, void **states, int threads, il_calib_hist **out) {
    il_calib_hist *h = calloc((size_t)n + 1, sizeof *h);
    if (!h) return il_error(IL_ERR_OOM, "out of memory");
    for (int i = 0; i < n; i++) h[i].name = strdup(names[i]);
    observe_ctx o = {h, n, 1, g->n_outputs, c, states};
    il_status st = il_quant_run_batches(g, d, names, n, 32, threads, observe_batch, &o);
    if (!st && hist) {
        o.first_pass = 0;
        st = il_quant_run_batches(g, d, names, n, 32, threads, observe_batch, &o);
    }
    if (st) {
        il_calib_hist_free(h, n);
        return il_error_wrap(st, "calibration on %s: ", d->spec);
    }
    *out = h;
    return IL_OK;
}

/* ---------------------------------------------------------------- the cache file */

#define CACHE_KEY "inferlab.calib_cache.key"
#define HEAD 5 /* min, max, n, lo, hi */

il_status il_calib_cache_save(const char *path, const char *key, const il_calib_hist *h, int n) {
    il_graph *g = il_graph_new("calibration_cache");
    if (!g) return il_error(IL_ERR_OOM, "out of memory");
    il_graph_set_opset(g, "", 13);
    il_graph_set_meta(g, CACHE_KEY, key);
    il_status st = IL_OK;
    for (int i = 0; i < n && !st; i++) {
        int64_t len = HEAD + h[i].nbins;
        il_tensor *t = il_tensor_new(IL_F64, 1, &len);
        if (!t) {
            st = IL_ERR_OOM;
            break;
        }
        double *v = t->data;
        v[0] = h[i].min, v[1] = h[i].max, v[2] = (double)h[i].n, v[3] = h[i].lo, v[4] = h[i].hi;
        if (h[i].nbins) memcpy(v + HEAD, h[i].count, (size_t)h[i].nbins * sizeof *v);
        il_graph_add_constant(g, h[i].name, t);
    }
    if (!st) st = il_onnx_save(g, path);
    il_graph_free(g);
    return st ? il_error_wrap(st, "calibration cache %s: ", path) : IL_OK;
}

il_status il_calib_cache_load(const char *path, const char *key, const char *const *names, int n,
                              il_calib_hist **out) {
    il_graph *g;
    *out = NULL;
    il_status st = il_onnx_load(path, &g);
    if (st) return il_error_wrap(st, "calibration cache %s: ", path);
    const char *k = il_graph_get_meta(g, CACHE_KEY);
    if (!k || strcmp(k, key)) {
        il_graph_free(g);
        return il_error(IL_ERR_INVALID, "calibration cache %s is stale: it was made for another model or data set", path);
    }
    il_calib_hist *h = calloc((size_t)n + 1, sizeof *h);
    for (int i = 0; h && i < n && !st; i++) {
        int v = il_graph_find_value(g, names[i]);
        const il_tensor *t = v >= 0 ? g->values[v].constant : NULL;
        int64_t len = t && t->dtype == IL_F64 && t->rank == 1 ? t->dims[0] : 0;
        int nb = (int)(len - HEAD);
        if (len < HEAD || (nb != 0 && nb != IL_CALIB_BINS && nb != 2 * IL_CALIB_BINS)) {
            st = il_error(IL_ERR_INVALID, "calibration cache %s has no usable entry for '%s'", path, names[i]);
            break;
        }
        const double *d = t->data;
        h[i].name = strdup(names[i]);
        h[i].min = d[0], h[i].max = d[1], h[i].n = (int64_t)d[2], h[i].lo = d[3], h[i].hi = d[4];
        h[i].nbins = nb;
        if (nb && !(h[i].count = malloc((size_t)nb * sizeof *h[i].count))) st = IL_ERR_OOM;
        else if (nb) memcpy(h[i].count, d + HEAD, (size_t)nb * sizeof *d);
    }
    il_graph_free(g);
    if (!h) return il_error(IL_ERR_OOM, "out of memory");
    if (st) {
        il_calib_hist_free(h, n);
        return st;
    }
    *out = h;
    return IL_OK;
}
