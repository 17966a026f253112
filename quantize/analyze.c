/*
 * analyze.c - where INT8 costs accuracy: every quantized tensor of a QDQ model against the same
 * tensor of the FP32 model on the same inputs (SQNR and cosine similarity, ranked worst first),
 * and the agreement between two models' predictions (`opt --verify` after a lossy pass).
 *
 * The QDQ rewrite keeps each activation's name on its DequantizeLinear output, so the pairs are
 * found by name; the error measured at a tensor is what the next layer sees, accumulated over
 * every quantized layer before it.
 */
#include "quant_int.h"

#include <math.h>
#include <string.h>

typedef struct {
    double xx, ee, xy, yy;
} acc4;

static void accumulate(acc4 *a, const il_tensor *x, const il_tensor *y) {
    int64_t n = il_tensor_numel(x);
    if (y->dtype != IL_F32 || x->dtype != IL_F32 || il_tensor_numel(y) != n) return;
    const float *xd = x->data, *yd = y->data;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)xd[i] - yd[i];
        a->xx += (double)xd[i] * xd[i], a->ee += e * e, a->xy += (double)xd[i] * yd[i], a->yy += (double)yd[i] * yd[i];
    }
}

/* Rows of two [.., k] outputs whose top-1 is the same. */
static void agree_rows(const il_tensor *x, const il_tensor *y, int64_t *rows, int64_t *same) {
    int64_t k = x->rank >= 1 ? x->dims[x->rank - 1] : 1, n = il_tensor_numel(x);
    if (k < 2 || n % k || il_tensor_numel(y) != n) return;
    for (int64_t r = 0; r < n / k; r++) {
        int64_t bx = 0, by = 0;
        for (int64_t j = 1; j < k; j++) {
            if (il_tensor_get(x, r * k + j) > il_tensor_get(x, r * k + bx)) bx = j;
            if (il_tensor_get(y, r * k + j) > il_tensor_get(y, r * k + by)) by = j;
        }
        ++*rows;
        *same += bx == by;
    }
}

static double sqnr_db(const acc4 *a) { return a->ee > 0 ? 10 * log10(a->xx / a->ee) : INFINITY; }
static double cosine(const acc4 *a) { return a->xx > 0 && a->yy > 0 ? a->xy / sqrt(a->xx * a->yy) : (a->xx == a->yy); }

/* Run both models in lockstep on the first n samples of d, comparing value na[i] of a with
 * nb[i] of b and, when out0/rows are set, output 0. */
static il_status compare(const il_graph *a, const il_graph *b, const il_calib_data *d, int64_t n,
                         const char *const *na, const char *const *nb, int nn, int threads, acc4 *acc, acc4 *out0,
                         int64_t *rows, int64_t *same) {
    il_qrun *ra = NULL, *rb = NULL;
    il_status st = il_qrun_open(a, na, nn, 32, threads, &ra);
    if (!st) st = il_qrun_open(b, nb, nn, il_qrun_batch(ra), threads, &rb);
    if (!st) n = il_qrun_usable(ra, n < d->n ? n : d->n);
    int64_t bs = st ? 0 : il_qrun_batch(ra);
    for (int64_t first = 0; !st && first < n; first += bs) {
        int64_t count = n - first < bs ? n - first : bs;
        const il_tensor *const *oa, *const *ob;
        int na, nb;
        if ((st = il_qrun_step(ra, d, first, count, &oa, &na)) || (st = il_qrun_step(rb, d, first, count, &ob, &nb))) break;
        int sa = na - nn, sb = nb - nn;
        for (int i = 0; i < nn; i++) accumulate(&acc[i], oa[sa + i], ob[sb + i]);
        if (out0) accumulate(out0, oa[0], ob[0]);
        if (rows) agree_rows(oa[0], ob[0], rows, same);
    }
    il_qrun_close(ra);
    il_qrun_close(rb);
    return st;
}

static int by_sqnr(const void *a, const void *b) {
    double x = ((const il_quant_layer *)a)->sqnr, y = ((const il_quant_layer *)b)->sqnr;
    return x < y ? -1 : x > y;
}

il_status il_quant_analyze(const il_graph *fp32, const il_graph *qdq, const il_calib_data *d, int threads,
                           il_quant_layer **out, int *n) {
    *out = NULL;
    *n = 0;
    /* the activations: DQ outputs fed by a Q, under a name the FP32 model has too */
    const char **names = calloc((size_t)qdq->n_nodes + 1, sizeof *names),
               **fnames = calloc((size_t)qdq->n_nodes + 1, sizeof *fnames);
    il_quant_layer *l = calloc((size_t)qdq->n_nodes + 1, sizeof *l);
    if (!names || !fnames || !l) {
        free(names), free(fnames), free(l);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    int nn = 0;
    for (int k = 0; k < qdq->n_nodes; k++) {
        const il_node *dq = &qdq->nodes[k];
        if (dq->dead || strcmp(dq->op_type, "DequantizeLinear") || dq->inputs[0] < 0) continue;
        int pk = qdq->values[dq->inputs[0]].producer;
        if (pk < 0 || strcmp(qdq->nodes[pk].op_type, "QuantizeLinear")) continue;
        const char *name = qdq->values[dq->outputs[0]].name;
        int v = il_graph_find_value(fp32, name);
        /* a graph input keeps its name on the Q side (its DQ output has a new one) */
        if (v < 0) v = il_graph_find_value(fp32, qdq->values[qdq->nodes[pk].inputs[0]].name);
        if (v < 0 || fp32->values[v].constant) continue;
        names[nn] = name;
        fnames[nn] = fp32->values[v].name;
        il_quant_layer *x = &l[nn++];
        snprintf(x->tensor, sizeof x->tensor, "%s", fp32->values[v].name);
        int p = fp32->values[v].producer;
        snprintf(x->node, sizeof x->node, "%s", p >= 0 && fp32->nodes[p].name ? fp32->nodes[p].name : "(input)");
        snprintf(x->op, sizeof x->op, "%s", p >= 0 ? fp32->nodes[p].op_type : "input");
    }
    acc4 *acc = calloc((size_t)nn + 1, sizeof *acc);
    il_status st = acc ? compare(fp32, qdq, d, d->n, fnames, names, nn, threads, acc, NULL, NULL, NULL) : il_error(IL_ERR_OOM, "out of memory");
    for (int i = 0; !st && i < nn; i++) l[i].sqnr = sqnr_db(&acc[i]), l[i].cosine = cosine(&acc[i]);
    free(acc);
    free(names);
    free(fnames);
    if (st) {
        free(l);
        return st;
    }
    qsort(l, (size_t)nn, sizeof *l, by_sqnr);
    *out = l;
    *n = nn;
    return IL_OK;
}

il_status il_quant_output_sqnr(const il_graph *a, const il_graph *b, const il_calib_data *d, int64_t n, int threads,
                               double *sqnr) {
    acc4 o = {0};
    il_status st = compare(a, b, d, n, NULL, NULL, 0, threads, NULL, &o, NULL, NULL);
    if (!st) *sqnr = sqnr_db(&o);
    return st;
}

il_status il_quant_agreement(const il_graph *want, const il_graph *got, int64_t n, double *agree,
                             double *cos) {
    char spec[64];
    const char *dflt = il_calib_default_spec(want);
    if (n < 1) n = 1000;
    /* the test split of the model's data set, never the training images that calibrated it */
    if (!strncmp(dflt, "random:", 7)) snprintf(spec, sizeof spec, "random:%lld", (long long)n);
    else snprintf(spec, sizeof spec, "%.*s:test:%lld", (int)strcspn(dflt, ":"), dflt, (long long)n);
    il_calib_data *d;
    il_status st = il_calib_data_load(want, spec, 1, 0, NULL, 0, &d);
    if (st) return st;
    acc4 o = {0};
    int64_t rows = 0, same = 0;
    st = compare(want, got, d, d->n, NULL, NULL, 0, 0, NULL, &o, &rows, &same);
    il_calib_data_free(d);
    if (st) return st;
    *agree = rows ? (double)same / (double)rows : 1;
    *cos = cosine(&o);
    return IL_OK;
}
