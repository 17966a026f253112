/*
 * grad_norm.c - the normalizations and the ops that behave differently in training:
 * BatchNormalization (training forward with batch statistics and running-average updates,
 * and its backward), LayerNormalization, Softmax, LogSoftmax, Dropout (training forward with
 * a seeded mask, and its backward).
 *
 * The formulas (x^ the normalized input, r = 1/sqrt(var + eps), m the count normalized over,
 * g = dy * gamma):
 *   dgamma = sum dy x^,  dbeta = sum dy,  dx = r/m (m g - sum g - x^ sum g x^)
 *   softmax:     dx = y (dy - sum dy y)      log-softmax: dx = dy - exp(y) sum dy
 */
#include "grad.h"

#include <stdlib.h>
#include <tgmath.h>

typedef struct bn_saved {
    int64_t c;
    double *mean, *rstd;
} bn_saved;

static void bn_saved_free(bn_saved *s) {
    if (!s) return;
    free(s->mean);
    free(s->rstd);
    free(s);
}

/* Per channel mean and 1/sqrt(var + eps) of x [N, C, ...] (biased variance, two passes). */
static il_status bn_train_forward(gr_ctx *c) {
    il_tensor *x = c->in[0], *sc = c->in[1], *bi = c->in[2], *rm = c->in[3], *rv = c->in[4], *y = c->out[0];
    double eps = il_attr_float(c->node, "epsilon", 1e-5f), mom = il_attr_float(c->node, "momentum", 0.9f);
    int64_t N = x->dims[0], C = x->dims[1], sp = il_tensor_numel(x) / (N > 0 && C > 0 ? N * C : 1), m = N * sp;
    if (m < 2) return gr_err(c, IL_ERR_INVALID, "batch statistics need more than one value per channel (batch 1, 1x1)");
    bn_saved *s = *c->saved;
    if (!s || s->c != C) {
        bn_saved_free(s);
        s = *c->saved = calloc(1, sizeof *s);
        s->c = C;
        s->mean = malloc((size_t)C * sizeof(double));
        s->rstd = malloc((size_t)C * sizeof(double));
    }
    GR_FLOATS(x->dtype, {
        const T *X = x->data, *G = sc->data, *B = bi->data;
        T *Y = y->data, *RM = rm->data, *RV = rv->data;
        IL_PAR_FOR(c, ch, C) {
            double sum = 0, sq = 0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < sp; i++) sum += X[(n * C + ch) * sp + i];
            double mu = sum / m;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < sp; i++) {
                    double d = X[(n * C + ch) * sp + i] - mu;
                    sq += d * d;
                }
            double var = sq / m, r = 1.0 / sqrt(var + eps);
            s->mean[ch] = mu, s->rstd[ch] = r;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < sp; i++) {
                    int64_t k = (n * C + ch) * sp + i;
                    Y[k] = (T)((X[k] - mu) * r * G[ch] + B[ch]);
                }
            /* running statistics as ONNX defines them; the variance unbiased, as PyTorch keeps it */
            RM[ch] = (T)(mom * RM[ch] + (1 - mom) * mu);
            RV[ch] = (T)(mom * RV[ch] + (1 - mom) * sq / (m - 1));
        }
    })
    return IL_OK;
}

static il_status bn_backward(gr_ctx *c) {
    il_tensor *x = c->in[0], *sc = c->in[1], *dy = c->dout[0];
    il_tensor *dx = gr_din(c, 0), *dg = gr_din(c, 1), *db = gr_din(c, 2);
    bn_saved *s = *c->saved;
    if (!s) return gr_err(c, IL_ERR_INTERNAL, "backward without a training forward");
    int64_t N = x->dims[0], C = x->dims[1], sp = il_tensor_numel(x) / (N * C), m = N * sp;
    GR_FLOATS(x->dtype, {
        const T *X = x->data, *G = sc->data, *DY = dy->data;
        IL_PAR_FOR(c, ch, C) {
            double mu = s->mean[ch], r = s->rstd[ch], sg = 0, sgx = 0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < sp; i++) {
                    int64_t k = (n * C + ch) * sp + i;
                    sg += DY[k];
                    sgx += DY[k] * (X[k] - mu) * r;
                }
            if (dg) ((T *)dg->data)[ch] += (T)sgx;
            if (db) ((T *)db->data)[ch] += (T)sg;
            if (dx) {
                T *DX = dx->data;
                double f = G[ch] * r / m;
                for (int64_t n = 0; n < N; n++)
                    for (int64_t i = 0; i < sp; i++) {
                        int64_t k = (n * C + ch) * sp + i;
                        DX[k] += (T)(f * (m * DY[k] - sg - (X[k] - mu) * r * sgx));
                    }
            }
        }
    })
    return IL_OK;
}

static il_status ln_backward(gr_ctx *c) {
    il_tensor *x = c->in[0], *sc = c->in[1], *dy = c->dout[0];
    il_tensor *dx = gr_din(c, 0), *dg = gr_din(c, 1), *db = gr_din(c, 2);
    int axis;
    il_kctx k = gr_kctx(c);
    il_status st = il_norm_axis(&k, il_attr_int(c->node, "axis", -1), x->rank, &axis);
    if (st) return st;
    double eps = il_attr_float(c->node, "epsilon", 1e-5f);
    int64_t D = 1;
    for (int i = axis; i < x->rank; i++) D *= x->dims[i];
    int64_t M = il_tensor_numel(x) / (D ? D : 1);
    if (il_tensor_numel(sc) != D) return gr_err(c, IL_ERR_UNSUPPORTED, "training needs Scale with the normalized size");
    double *mu = malloc((size_t)(2 * M + 1) * sizeof(double)), *rs = mu + M;
    GR_FLOATS(x->dtype, {
        const T *X = x->data, *G = sc->data, *DY = dy->data;
        IL_PAR_FOR(c, row, M) {
            double s = 0, q = 0;
            for (int64_t d = 0; d < D; d++) s += X[row * D + d];
            s /= D;
            for (int64_t d = 0; d < D; d++) q += (X[row * D + d] - s) * (X[row * D + d] - s);
            mu[row] = s, rs[row] = 1.0 / sqrt(q / D + eps);
        }
        if (dg || db) {
            IL_PAR_FOR(c, d, D) {
                double a = 0, b = 0;
                for (int64_t row = 0; row < M; row++) {
                    a += DY[row * D + d] * (X[row * D + d] - mu[row]) * rs[row];
                    b += DY[row * D + d];
                }
                if (dg) ((T *)dg->data)[d] += (T)a;
                if (db) ((T *)db->data)[d] += (T)b;
            }
        }
        if (dx) {
            T *DX = dx->data;
            IL_PAR_FOR(c, row, M) {
                double sg = 0, sgx = 0;
                for (int64_t d = 0; d < D; d++) {
                    double g = DY[row * D + d] * G[d];
                    sg += g, sgx += g * (X[row * D + d] - mu[row]) * rs[row];
                }
                for (int64_t d = 0; d < D; d++) {
                    double g = DY[row * D + d] * G[d], xh = (X[row * D + d] - mu[row]) * rs[row];
                    DX[row * D + d] += (T)(rs[row] / D * (D * g - sg - xh * sgx));
                }
            }
        }
    })
    free(mu);
    return IL_OK;
}

/* The [outer, L, inner] view of the softmax axis: one axis from opset 13, before that the
 * input flattened to 2-D at axis (default 1). */
static il_status softmax_view(gr_ctx *c, int64_t *outer, int64_t *L, int64_t *inner) {
    il_tensor *x = c->in[0];
    int axis;
    il_kctx k = gr_kctx(c);
    il_status st = il_norm_axis(&k, il_attr_int(c->node, "axis", c->opset >= 13 ? -1 : 1), x->rank, &axis);
    if (st) return st;
    *outer = 1, *L = 1, *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= x->dims[i];
    if (c->opset >= 13) {
        *L = x->dims[axis];
        for (int i = axis + 1; i < x->rank; i++) *inner *= x->dims[i];
    } else {
        for (int i = axis; i < x->rank; i++) *L *= x->dims[i];
    }
    return IL_OK;
}

static il_status softmax_backward_kind(gr_ctx *c, int is_log) {
    il_tensor *y = c->out[0], *dy = c->dout[0], *dx = gr_din(c, 0);
    if (!dx) return IL_OK;
    int64_t outer, L, inner;
    il_status st = softmax_view(c, &outer, &L, &inner);
    if (st) return st;
    GR_FLOATS(y->dtype, {
        const T *Y = y->data, *DY = dy->data;
        T *DX = dx->data;
        IL_PAR_FOR(c, oi, outer * inner) {
            int64_t o = oi / inner, i = oi % inner, base = o * L * inner + i;
            double s = 0;
            for (int64_t l = 0; l < L; l++) s += is_log ? DY[base + l * inner] : DY[base + l * inner] * Y[base + l * inner];
            for (int64_t l = 0; l < L; l++) {
                int64_t q = base + l * inner;
                DX[q] += is_log ? (T)(DY[q] - exp(Y[q]) * s) : (T)(Y[q] * (DY[q] - s));
            }
        }
    })
    return IL_OK;
}

static il_status softmax_backward(gr_ctx *c) { return softmax_backward_kind(c, 0); }
static il_status logsoftmax_backward(gr_ctx *c) { return softmax_backward_kind(c, 1); }

/* Dropout keeps each value with probability 1 - ratio and scales it by 1/(1 - ratio). */
static il_status dropout_ratio(gr_ctx *c, double *ratio) {
    il_tensor *r = gr_in(c, 1);
    *ratio = r ? il_tensor_get(r, 0) : il_attr_float(c->node, "ratio", 0.5f);
    if (!(*ratio >= 0 && *ratio < 1)) return gr_err(c, IL_ERR_INVALID, "ratio %g is outside [0, 1)", *ratio);
    return IL_OK;
}

static il_status dropout_train_forward(gr_ctx *c) {
    il_tensor *x = c->in[0], *y = c->out[0], *mk = c->n_out > 1 ? c->out[1] : NULL;
    double ratio;
    il_status st = dropout_ratio(c, &ratio);
    if (st) return st;
    int64_t n = il_tensor_numel(x);
    free(*c->saved);
    unsigned char *mask = *c->saved = malloc((size_t)n + 1);
    /* the mask is drawn on one thread, so it depends on the seed only */
    for (int64_t i = 0; i < n; i++) mask[i] = il_rand_uniform(c->rng) >= ratio;
    double scale = 1.0 / (1.0 - ratio);
    GR_FLOATS(x->dtype, {
        const T *X = x->data;
        T *Y = y->data;
        for (int64_t i = 0; i < n; i++) Y[i] = mask[i] ? (T)(X[i] * scale) : 0;
    })
    if (mk && mk->dtype == IL_BOOL) memcpy(mk->data, mask, (size_t)n);
    return IL_OK;
}

static il_status dropout_backward(gr_ctx *c) {
    il_tensor *dy = c->dout[0], *dx = gr_din(c, 0);
    const unsigned char *mask = *c->saved;
    if (!dx) return IL_OK;
    double ratio;
    il_status st = dropout_ratio(c, &ratio);
    if (st) return st;
    int64_t n = il_tensor_numel(dy);
    double scale = 1.0 / (1.0 - ratio);
    GR_FLOATS(dy->dtype, {
        const T *DY = dy->data;
        T *DX = dx->data;
        for (int64_t i = 0; i < n; i++)
            if (!mask || mask[i]) DX[i] += (T)(DY[i] * (mask ? scale : 1.0));
    })
    return IL_OK;
}

/* Saved state is one malloc block, freed with free(), except BatchNormalization's struct. */
void gr_saved_free(const char *op, void *p) {
    if (p && !strcmp(op, "BatchNormalization")) bn_saved_free(p);
    else free(p);
}

const gr_op gr_ops_norm[] = {
    {"BatchNormalization", bn_backward, bn_train_forward},
    {"LayerNormalization", ln_backward, NULL},
    {"Softmax", softmax_backward, NULL},
    {"LogSoftmax", logsoftmax_backward, NULL},
    {"Dropout", dropout_backward, dropout_train_forward},
    {0},
};
