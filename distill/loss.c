/*
 * loss.c - losses on logits: softmax cross-entropy with label smoothing, and knowledge
 * distillation (Hinton et al. 2015).
 *
 * Both return the batch mean and write d(loss)/d(logits), so the trainer's backward starts
 * from the logits. With p = softmax(s), the smoothed target q = (1-eps) onehot(y) + eps/k:
 *   CE = -sum q log p,  dCE/ds = p - q.
 * KD with temperature T, teacher t: pT = softmax(s/T), qT = softmax(t/T),
 *   KL(qT || pT) = sum qT (log qT - log pT),  d(T^2 KL)/ds = T (pT - qT).
 * The T^2 factor keeps the soft term's gradient on the scale of the hard term's as T grows.
 */
#include "distill.h"

#include <math.h>
#include <stdlib.h>

/* log-softmax of row x[k] / temp into out (double). */
static void log_softmax(const il_tensor *x, int64_t row, int k, double temp, double *out) {
    double m = -INFINITY;
    for (int j = 0; j < k; j++) {
        out[j] = il_tensor_get(x, row * k + j) / temp;
        if (out[j] > m) m = out[j];
    }
    double s = 0;
    for (int j = 0; j < k; j++) s += exp(out[j] - m);
    double lse = m + log(s);
    for (int j = 0; j < k; j++) out[j] -= lse;
}

static int argmax_row(const double *v, int k) {
    int b = 0;
    for (int j = 1; j < k; j++)
        if (v[j] > v[b]) b = j;
    return b;
}

double il_loss_ce(const il_tensor *logits, const int32_t *y, double eps, il_tensor *grad, int *correct) {
    int64_t n = logits->dims[0];
    int k = (int)(il_tensor_numel(logits) / (n ? n : 1));
    double *lp = malloc((size_t)k * sizeof(double)), loss = 0;
    int ok = 0;
    for (int64_t i = 0; i < n; i++) {
        log_softmax(logits, i, k, 1.0, lp);
        ok += argmax_row(lp, k) == y[i];
        for (int j = 0; j < k; j++) {
            double q = (j == y[i] ? 1 - eps : 0) + eps / k;
            loss -= q * lp[j];
            if (grad) il_tensor_set(grad, i * k + j, (exp(lp[j]) - q) / n);
        }
    }
    free(lp);
    if (correct) *correct = ok;
    return loss / n;
}

double il_loss_kd(const il_tensor *s, const il_tensor *t, const int32_t *y, double temp, double alpha,
                  il_tensor *grad, int *correct) {
    int64_t n = s->dims[0];
    int k = (int)(il_tensor_numel(s) / (n ? n : 1));
    double *ls = malloc((size_t)k * 3 * sizeof(double)), *lt = ls + k, *l1 = lt + k, loss = 0;
    int ok = 0;
    for (int64_t i = 0; i < n; i++) {
        log_softmax(s, i, k, temp, ls);
        log_softmax(t, i, k, temp, lt);
        log_softmax(s, i, k, 1.0, l1);
        ok += argmax_row(l1, k) == y[i];
        double kl = 0;
        for (int j = 0; j < k; j++) kl += exp(lt[j]) * (lt[j] - ls[j]);
        loss += alpha * temp * temp * kl - (1 - alpha) * l1[y[i]];
        if (grad)
            for (int j = 0; j < k; j++) {
                double soft = temp * (exp(ls[j]) - exp(lt[j]));
                double hard = exp(l1[j]) - (j == y[i]);
                il_tensor_set(grad, i * k + j, (alpha * soft + (1 - alpha) * hard) / n);
            }
    }
    free(ls);
    if (correct) *correct = ok;
    return loss / n;
}
