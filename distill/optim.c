/*
 * optim.c - optimizers over a trainer's parameters and learning-rate schedules.
 *
 * SGD with momentum (PyTorch's form: v = mu v + g; w -= lr v, or lr (g + mu v) with
 * Nesterov), L2 weight decay added to the gradient. AdamW (Loshchilov & Hutter 2019): Adam
 * with bias correction, the decay applied to the weight directly (decoupled). Decay applies
 * to weights of rank >= 2 only: decaying BatchNorm/LayerNorm scales and biases fights the
 * normalization and costs accuracy (the usual "no decay on norms and biases" rule).
 *
 * Schedules: linear warm-up over warmup_steps, then constant, step (x gamma every step_size
 * steps) or cosine to 0 at total_steps.
 */
#include "distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct il_optim {
    il_optim_opts o;
    il_trainer *t;
    int n;
    double **m, **v; /* moments per parameter (double: the sums must not lose small updates) */
    int64_t step;
};

void il_optim_defaults(il_optim_opts *o, il_opt_kind kind) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = kind == IL_OPT_SGD ? 0.05 : 2e-3;
    o->momentum = 0.9;
    o->weight_decay = kind == IL_OPT_SGD ? 5e-4 : 0.05;
    o->beta1 = 0.9, o->beta2 = 0.999, o->eps = 1e-8;
    o->sched = IL_SCHED_COSINE;
    o->gamma = 0.1;
}

il_status il_optim_create(il_trainer *t, const il_optim_opts *o, il_optim **out) {
    if (!(o->lr > 0)) return il_error(IL_ERR_INVALID, "learning rate must be positive, got %g", o->lr);
    if (o->momentum < 0 || o->momentum >= 1) return il_error(IL_ERR_INVALID, "momentum %g is outside [0, 1)", o->momentum);
    il_optim *p = calloc(1, sizeof *p);
    p->o = *o;
    p->t = t;
    p->n = il_trainer_n_params(t);
    p->m = calloc((size_t)p->n + 1, sizeof *p->m);
    p->v = calloc((size_t)p->n + 1, sizeof *p->v);
    for (int i = 0; i < p->n; i++) {
        il_tensor *w;
        il_trainer_param(t, i, &w, NULL);
        p->m[i] = calloc((size_t)il_tensor_numel(w) + 1, sizeof(double));
        if (o->kind == IL_OPT_ADAMW) p->v[i] = calloc((size_t)il_tensor_numel(w) + 1, sizeof(double));
    }
    *out = p;
    return IL_OK;
}

void il_optim_free(il_optim *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->m[i]), free(p->v[i]);
    free(p->m), free(p->v), free(p);
}

void il_optim_reset(il_optim *p) {
    for (int i = 0; i < p->n; i++) {
        il_tensor *w;
        il_trainer_param(p->t, i, &w, NULL);
        memset(p->m[i], 0, (size_t)il_tensor_numel(w) * sizeof(double));
        if (p->v[i]) memset(p->v[i], 0, (size_t)il_tensor_numel(w) * sizeof(double));
    }
    p->step = 0;
}

double il_optim_lr(const il_optim_opts *o, int64_t s) {
    if (o->warmup_steps > 0 && s < o->warmup_steps) return o->lr * (double)(s + 1) / (double)o->warmup_steps;
    int64_t s2 = s - o->warmup_steps, span = o->total_steps - o->warmup_steps;
    switch (o->sched) {
    case IL_SCHED_COSINE:
        if (span <= 0) return o->lr;
        if (s2 > span) s2 = span;
        return o->lr * 0.5 * (1 + cos(M_PI * (double)s2 / (double)span));
    case IL_SCHED_STEP:
        return o->step_size > 0 ? o->lr * pow(o->gamma, (double)(s2 / o->step_size)) : o->lr;
    default:
        return o->lr;
    }
}

/* One parameter's update; float32 or float64 storage, double arithmetic. */
#define UPDATE(T)                                                                                         \
    do {                                                                                                  \
        T *W = w->data;                                                                                   \
        const T *G = g->data;                                                                             \
        if (o->kind == IL_OPT_SGD) {                                                                      \
            for (int64_t j = 0; j < n; j++) {                                                             \
                double gj = G[j] + wd * W[j];                                                             \
                m[j] = o->momentum * m[j] + gj;                                                           \
                W[j] -= (T)(lr * (o->nesterov ? gj + o->momentum * m[j] : m[j]));                         \
            }                                                                                             \
        } else {                                                                                          \
            for (int64_t j = 0; j < n; j++) {                                                             \
                double gj = G[j];                                                                         \
                m[j] = o->beta1 * m[j] + (1 - o->beta1) * gj;                                             \
                v[j] = o->beta2 * v[j] + (1 - o->beta2) * gj * gj;                                        \
                W[j] -= (T)(lr * (wd * W[j] + (m[j] / bc1) / (sqrt(v[j] / bc2) + o->eps)));               \
            }                                                                                             \
        }                                                                                                 \
    } while (0)

double il_optim_step(il_optim *p) {
    const il_optim_opts *o = &p->o;
    double lr = il_optim_lr(o, p->step);
    p->step++;
    double bc1 = 1 - pow(o->beta1, (double)p->step), bc2 = 1 - pow(o->beta2, (double)p->step);
#pragma omp parallel for schedule(dynamic) num_threads(il_num_cores())
    for (int i = 0; i < p->n; i++) {
        il_tensor *w, *g;
        il_trainer_param(p->t, i, &w, &g);
        int64_t n = il_tensor_numel(w);
        double *m = p->m[i], *v = p->v[i], wd = w->rank >= 2 ? o->weight_decay : 0;
        if (w->dtype == IL_F64) UPDATE(double);
        else UPDATE(float);
    }
    return lr;
}
