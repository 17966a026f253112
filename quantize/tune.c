/*
 * tune.c - accuracy-aware quantization (--target-drop): keep the layers that cost most in FP32,
 * one at a time, until the QDQ model's accuracy on a validation split is within the target of
 * the FP32 model's.
 *
 * A layer's cost is measured alone: the model with only that layer quantized (every other node
 * FP32), its output's SQNR against FP32 on the validation samples. Measuring each layer inside
 * the fully quantized model instead would blame the last layers for the error all the earlier
 * ones accumulated. Keeping a layer FP32 keeps the Relu folded into it FP32 too.
 */
#include "quant_int.h"

#include <math.h>
#include <string.h>

typedef struct {
    int layer; /* index into q->layers */
    double sqnr;
} cost;

static int by_cost(const void *a, const void *b) {
    double x = ((const cost *)a)->sqnr, y = ((const cost *)b)->sqnr;
    return x < y ? -1 : x > y;
}

/* Each layer's output SQNR when it alone is quantized (every other node FP32), worst first.
 * Layers already kept FP32 in mask are skipped. */
static il_status rank_layers(const il_quant_ctx *q, const il_calib_data *val, const unsigned char *mask, int threads,
                             cost *c, int *nc) {
    int nn = q->g->n_nodes;
    unsigned char *only = malloc((size_t)nn + 1);
    if (!only) return il_error(IL_ERR_OOM, "out of memory");
    il_status st = IL_OK;
    int64_t n = val->n < 256 ? val->n : 256;
    *nc = 0;
    for (int i = 0; i < q->n_layers && !st; i++) {
        if (mask[q->layer_node[i]]) continue;
        memset(only, 1, (size_t)nn);
        only[q->layer_node[i]] = 0;
        if (q->layer_fold[i] >= 0) only[q->layer_fold[i]] = 0;
        il_graph *solo;
        if ((st = il_quant_apply_mask(q, only, &solo, NULL))) break;
        c[*nc].layer = i;
        st = il_quant_output_sqnr(q->g, solo, val, n, threads, &c[*nc].sqnr);
        il_graph_free(solo);
        (*nc)++;
    }
    free(only);
    if (!st) qsort(c, (size_t)*nc, sizeof *c, by_cost);
    return st;
}

il_status il_quant_tune(const il_quant_ctx *q, const il_calib_data *val, double target, const char *const *exclude,
                        int n_exclude, int threads, FILE *log, il_graph **out, il_quant_tune_result *r) {
    memset(r, 0, sizeof *r);
    *out = NULL;
    int nn = q->g->n_nodes, nc = 0, next = 0;
    unsigned char *mask = calloc((size_t)nn + 1, 1);
    cost *c = calloc((size_t)q->n_layers + 1, sizeof *c);
    r->kept = calloc((size_t)q->n_layers + 1, sizeof *r->kept);
    if (!mask || !c || !r->kept) {
        free(mask), free(c);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    il_status st = IL_OK;
    for (int i = 0; i < n_exclude && !st; i++) {
        int found = 0;
        for (int k = 0; k < nn; k++)
            if (q->g->nodes[k].name && !strcmp(q->g->nodes[k].name, exclude[i])) mask[k] = 1, found = 1;
        if (!found) st = il_error(IL_ERR_INVALID, "--exclude: no node named '%s' in the model", exclude[i]);
    }
    il_graph *g = NULL;
    if (!st) st = il_quant_top1(q->g, q->g, val, threads, &r->fp32);
    while (!st) {
        il_graph_free(g);
        if ((st = il_quant_apply_mask(q, mask, &g, &r->stats)) || (st = il_quant_top1(g, q->g, val, threads, &r->int8))) break;
        double drop = 100 * (r->fp32 - r->int8);
        if (log)
            fprintf(log, "target-drop: %d layer%s in FP32: top-1 %.2f%% (FP32 %.2f%%, drop %.2f points)\n", r->n_kept,
                    r->n_kept == 1 ? "" : "s", 100 * r->int8, 100 * r->fp32, drop);
        if (drop <= target) break;
        if (!nc && !next && (st = rank_layers(q, val, mask, threads, c, &nc))) break;
        if (next >= nc) {
            if (log) fprintf(log, "target-drop: every layer is in FP32 and the drop is still %.2f points\n", drop);
            break;
        }
        int i = c[next++].layer;
        if (log)
            fprintf(log, "target-drop: keeping %s in FP32 (quantized alone, the output's SQNR is %.1f dB)\n", q->layers[i],
                    c[next - 1].sqnr);
        /* the layer and the Relu its output range would have absorbed */
        mask[q->layer_node[i]] = 1;
        if (q->layer_fold[i] >= 0) mask[q->layer_fold[i]] = 1;
        r->kept[r->n_kept++] = strdup(q->layers[i]);
    }
    free(mask);
    free(c);
    if (st) {
        il_graph_free(g);
        return st;
    }
    *out = g;
    return IL_OK;
}
