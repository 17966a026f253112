/*
 * tune.c - accuracy-aware quantization (--target-drop): keep the layers that cost most in FP32,
 * one at a time, until the QDQ model's accuracy on a validation split is within the target of
 * the FP32 model's.
 *
 * A layer's cost is measured alone: the model with only that layer quantized (every other
 * layer excluded), its output's SQNR against FP32 on the validation samples. Measuring each
 * layer inside the fully quantized model instead would blame the last layers for the error all
 * the earlier ones accumulated.
 */
#include "quant_int.h"

#include <math.h>
#include <string.h>

typedef struct {
    const char *name;
    double sqnr;
} cost;

static int by_cost(const void *a, const void *b) {
    double x = ((const cost *)a)->sqnr, y = ((const cost *)b)->sqnr;
    return x < y ? -1 : x > y;
}

static int listed(const char *name, const char *const *ex, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(ex[i], name)) return 1;
    return 0;
}

/* Each layer's output SQNR when only it is quantized, worst first. */
static il_status rank_layers(const il_quant_ctx *q, const il_calib_data *val, const char *const *ex, int n_ex,
                             int threads, cost *c, int *nc) {
    const char *const *layers;
    int nl = il_quant_layers(q, &layers);
    const char **others = calloc((size_t)(nl + n_ex) + 1, sizeof *others);
    if (!others) return il_error(IL_ERR_OOM, "out of memory");
    il_status st = IL_OK;
    *nc = 0;
    int64_t n = val->n < 256 ? val->n : 256;
    for (int i = 0; i < nl && !st; i++) {
        if (listed(layers[i], ex, n_ex)) continue;
        int m = 0;
        for (int j = 0; j < nl; j++)
            if (j != i) others[m++] = layers[j];
        il_graph *solo;
        if ((st = il_quant_apply(q, others, m, &solo, NULL))) break;
        c[*nc].name = layers[i];
        st = il_quant_output_sqnr(q->g, solo, val, n, threads, &c[*nc].sqnr);
        il_graph_free(solo);
        (*nc)++;
    }
    free(others);
    if (!st) qsort(c, (size_t)*nc, sizeof *c, by_cost);
    return st;
}

il_status il_quant_tune(const il_quant_ctx *q, const il_calib_data *val, double target, const char *const *exclude,
                        int n_exclude, int threads, FILE *log, il_graph **out, il_quant_tune_result *r) {
    memset(r, 0, sizeof *r);
    *out = NULL;
    const char *const *layers;
    int nl = il_quant_layers(q, &layers);
    const char **ex = calloc((size_t)(nl + n_exclude) + 1, sizeof *ex);
    cost *c = calloc((size_t)nl + 1, sizeof *c);
    r->kept = calloc((size_t)nl + 1, sizeof *r->kept);
    if (!ex || !c || !r->kept) {
        free(ex), free(c);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    int n_ex = 0, nc = 0, next = 0;
    for (int i = 0; i < n_exclude; i++) ex[n_ex++] = exclude[i];
    il_graph *g = NULL;
    il_status st = il_quant_top1(q->g, q->g, val, threads, &r->fp32);
    while (!st) {
        il_graph_free(g);
        if ((st = il_quant_apply(q, ex, n_ex, &g, NULL)) || (st = il_quant_top1(g, q->g, val, threads, &r->int8))) break;
        double drop = 100 * (r->fp32 - r->int8);
        if (log)
            fprintf(log, "target-drop: %d layer%s in FP32: top-1 %.2f%% (FP32 %.2f%%, drop %.2f points)\n", r->n_kept,
                    r->n_kept == 1 ? "" : "s", 100 * r->int8, 100 * r->fp32, drop);
        if (drop <= target) break;
        if (!nc && !next && (st = rank_layers(q, val, ex, n_ex, threads, c, &nc))) break;
        if (next >= nc) {
            if (log) fprintf(log, "target-drop: every layer is in FP32 and the drop is still %.2f points\n", drop);
            break;
        }
        if (log) fprintf(log, "target-drop: keeping %s in FP32 (alone it gives an output SQNR of %.1f dB)\n", c[next].name, c[next].sqnr);
        ex[n_ex++] = c[next].name;
        r->kept[r->n_kept++] = strdup(c[next].name);
        next++;
    }
    free(ex);
    free(c);
    if (st) {
        il_graph_free(g);
        return st;
    }
    *out = g;
    return IL_OK;
}
