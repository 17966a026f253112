/*
 * fit.c - the training loop (plain or distilled), evaluation, and the progress line.
 *
 * One epoch: a seeded Fisher-Yates shuffle of the sample order, then batches: gather and
 * augment (il_preproc_batch), forward, loss (cross-entropy, or KD against the teacher's
 * logits on the same augmented images), backward, optimizer step. Every random draw comes
 * from generators seeded by o->seed, on one thread, so a run is repeatable for a seed and a
 * thread count. A last batch of one sample is dropped (batch statistics need two).
 */
#include "kd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void il_fit_defaults(il_fit_opts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 128;
    o->seed = 1;
    il_optim_defaults(&o->optim, IL_OPT_SGD);
    o->temperature = 4.0;
    o->alpha = 0.9;
    o->hint_weight = 1.0;
}

static void progress(int epoch, int epochs, int64_t done, int64_t total, double loss, double acc, double ips) {
    int w = 24, fill = total ? (int)(w * done / total) : w;
    char bar[32];
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[w] = 0;
    fprintf(stderr, "\r epoch %d/%d [%s] %3d%%  loss %.4f  acc %5.2f%%  %6.0f img/s ", epoch, epochs, bar,
            total ? (int)(100 * done / total) : 100, loss, 100 * acc, ips);
    fflush(stderr);
}

/* Batch of float32 into x, converting when the trainer runs in float64. */
static void to_dtype(const float *src, il_tensor *x) {
    int64_t n = il_tensor_numel(x);
    if (x->dtype == IL_F32) memcpy(x->data, src, (size_t)n * sizeof(float));
    else
        for (int64_t i = 0; i < n; i++) ((double *)x->data)[i] = src[i];
}

/* Teacher logits for every sample, in data set order: with no augmentation the teacher sees
 * each image identically every epoch, so it runs once per sample instead of once per step. */
static il_status teacher_cache(kd_teacher *kd, const il_preproc *tp, const il_dataset *d, int B, float **out,
                               int64_t *k_out) {
    int64_t dims[4] = {B, d->c, d->h, d->w}, k = 0;
    il_tensor *x = il_tensor_new(IL_F32, 4, dims);
    int64_t *idx = malloc((size_t)B * sizeof(int64_t));
    float *cache = NULL;
    il_status st = x && idx ? IL_OK : IL_ERR_OOM;
    for (int64_t b0 = 0; b0 < d->n && !st; b0 += B) {
        int nb = (int)(d->n - b0 < B ? d->n - b0 : B);
        for (int i = 0; i < nb; i++) idx[i] = b0 + i;
        il_preproc_batch(tp, d, idx, nb, 0, NULL, x->data);
        x->dims[0] = nb;
        const il_tensor *tl;
        if ((st = kd_run(kd, x, &tl))) break;
        if (!cache) {
            k = il_tensor_numel(tl) / nb;
            if (!(cache = malloc((size_t)(d->n * k) * sizeof(float)))) st = IL_ERR_OOM;
        }
        for (int64_t i = 0; i < nb * k && !st; i++) cache[b0 * k + i] = (float)il_tensor_get(tl, i);
    }
    il_tensor_free(x);
    free(idx);
    if (st) free(cache), cache = NULL;
    *out = cache;
    *k_out = k;
    return st;
}

/* The trainer's parameter for each mask of o (checked: it exists and has the mask's size). */
static il_status find_masked(il_trainer *t, const il_fit_opts *o, il_tensor **w) {
    for (int i = 0; i < o->n_masks; i++) {
        w[i] = NULL;
        for (int k = 0; k < il_trainer_n_params(t) && !w[i]; k++) {
            il_tensor *v;
            if (!strcmp(il_trainer_param(t, k, &v, NULL), o->mask_params[i])) w[i] = v;
        }
        if (!w[i]) return il_error(IL_ERR_INVALID, "mask for '%s': the model has no trainable parameter by that name",
                                   o->mask_params[i]);
        if (o->masks[i]->dtype != IL_U8 || il_tensor_numel(o->masks[i]) != il_tensor_numel(w[i]))
            return il_error(IL_ERR_SHAPE, "mask for '%s' must be uint8 with %lld elements", o->mask_params[i],
                            (long long)il_tensor_numel(w[i]));
    }
    return IL_OK;
}

static void apply_masks(const il_fit_opts *o, il_tensor **w) {
    for (int i = 0; i < o->n_masks; i++) {
        const unsigned char *m = o->masks[i]->data;
        for (int64_t j = 0; j < il_tensor_numel(w[i]); j++)
            if (!m[j]) il_tensor_set(w[i], j, 0.0);
    }
}

il_status il_fit(il_trainer *t, const il_dataset *d, const il_preproc *p, const il_fit_opts *o, il_fit_result *r) {
    memset(r, 0, sizeof *r);
    if (o->batch < 2 || o->epochs < 1) return il_error(IL_ERR_INVALID, "need batch >= 2 and epochs >= 1");
    if (d->n < 2) return il_error(IL_ERR_INVALID, "a training set of %lld samples", (long long)d->n);
    if (il_trainer_n_params(t) == 0) return il_error(IL_ERR_INVALID, "the model has no trainable parameters");
    il_tensor *w0;
    il_trainer_param(t, 0, &w0, NULL);
    il_dtype dt = w0->dtype;
    int B = o->batch < d->n ? o->batch : (int)d->n;
    int64_t steps_per_epoch = d->n / B + (d->n % B >= 2);
    il_optim_opts oo = o->optim;
    if (!oo.total_steps) oo.total_steps = steps_per_epoch * o->epochs;
    il_optim *opt = NULL;
    kd_teacher *kd = NULL;
    il_tensor **masked = calloc((size_t)o->n_masks + 1, sizeof *masked);
    il_status st = masked ? find_masked(t, o, masked) : IL_ERR_OOM;
    if (st || (st = il_optim_create(t, &oo, &opt))) {
        free(masked);
        return st;
    }
    apply_masks(o, masked);
    if (o->teacher &&
        (st = kd_create(o->teacher, o->hint_teacher, o->hint_student, o->hint_weight, B, o->threads, o->seed, o->backend,
                    &kd))) {
        il_optim_free(opt);
        free(masked);
        return st;
    }
    int64_t sz = (int64_t)d->c * d->h * d->w, dims[4] = {B, d->c, d->h, d->w}, gd[2] = {B, 0};
    int64_t *order = malloc((size_t)d->n * sizeof(int64_t));
    float *buf = malloc((size_t)(B * sz) * sizeof(float)), *tbuf = kd ? malloc((size_t)(B * sz) * sizeof(float)) : NULL;
    il_tensor *x = il_tensor_new(dt, 4, dims), *tx = kd ? il_tensor_new(IL_F32, 4, dims) : NULL, *grad = NULL;
    int32_t *yb = malloc((size_t)B * sizeof(int32_t));
    uint64_t shuf = o->seed * 0x9E3779B97F4A7C15ull + 1, aug = o->seed * 0xBF58476D1CE4E5B9ull + 3;
    for (int64_t i = 0; i < d->n; i++) order[i] = i;
    il_preproc tp;
    if (kd) {
        tp = *kd_preproc(kd);
        tp.pad = p->pad, tp.hflip = p->hflip; /* the teacher sees the same crop and flip */
    }
    double t0 = il_now(), last_print = 0;
    int64_t images = 0, step = 0;
    float *tcache = NULL;
    int64_t tk = 0;
    il_tensor *tlc = NULL;
    if (kd && !p->pad && !p->hflip && !o->hint_teacher) {
        if ((st = teacher_cache(kd, &tp, d, B, &tcache, &tk))) goto out;
        int64_t ld[2] = {B, tk};
        tlc = il_tensor_new(IL_F32, 2, ld);
    }
    for (int ep = 0; ep < o->epochs && !st; ep++) {
        for (int64_t i = d->n - 1; i > 0; i--) {
            int64_t j = (int64_t)(il_rand_u64(&shuf) % (uint64_t)(i + 1)), tmp = order[i];
            order[i] = order[j], order[j] = tmp;
        }
        double sum_loss = 0, te = il_now();
        int64_t seen = 0, correct = 0;
        for (int64_t b0 = 0; b0 + 2 <= d->n && !st; b0 += B) {
            int nb = (int)(d->n - b0 < B ? d->n - b0 : B);
            uint64_t aug_copy = aug;
            il_preproc_batch(p, d, order + b0, nb, 1, &aug, buf);
            for (int i = 0; i < nb; i++) yb[i] = d->y[order[b0 + i]];
            x->dims[0] = nb;
            to_dtype(buf, x);
            const il_tensor *logits, *tl = NULL;
            if ((st = il_trainer_forward(t, x, 1, &logits))) break;
            if (!grad || grad->dims[0] != nb || grad->dtype != logits->dtype) {
                il_tensor_free(grad);
                gd[0] = nb, gd[1] = il_tensor_numel(logits) / nb;
                grad = il_tensor_new(logits->dtype, 2, gd);
            }
            int ok;
            double loss;
            if (kd && tcache) {
                tlc->dims[0] = nb;
                for (int i = 0; i < nb; i++)
                    memcpy((float *)tlc->data + i * tk, tcache + order[b0 + i] * tk, (size_t)tk * sizeof(float));
                tl = tlc;
            } else if (kd) {
                il_preproc_batch(&tp, d, order + b0, nb, 1, &aug_copy, tbuf);
                tx->dims[0] = nb;
                memcpy(tx->data, tbuf, (size_t)(nb * sz) * sizeof(float));
                if ((st = kd_run(kd, tx, &tl))) break;
            }
            if (kd) {
                if (il_tensor_numel(tl) != il_tensor_numel(logits)) {
                    st = il_error(IL_ERR_SHAPE, "teacher gives %lld logits per batch, the student %lld",
                                  (long long)il_tensor_numel(tl), (long long)il_tensor_numel(logits));
                    break;
                }
                loss = il_loss_kd(logits, tl, yb, o->temperature, o->alpha, grad, &ok);
                double hl;
                if ((st = kd_hint(kd, t, il_optim_lr(&oo, step), &hl))) break;
                loss += hl;
            } else {
                loss = il_loss_ce(logits, yb, o->smoothing, grad, &ok);
            }
            if (!isfinite(loss)) {
                st = il_error(IL_ERR_INVALID, "the loss diverged (%g) at epoch %d step %lld: lower the learning rate",
                              loss, ep + 1, (long long)step);
                break;
            }
            if ((st = il_trainer_backward(t, grad))) break;
            il_optim_step(opt);
            apply_masks(o, masked);
            il_trainer_zero_grad(t);
            sum_loss += loss * nb, seen += nb, correct += ok, images += nb, step++;
            double now = il_now();
            if (o->progress && (now - last_print > 0.2 || b0 + B >= d->n)) {
                progress(ep + 1, o->epochs, seen, d->n, sum_loss / seen, (double)correct / seen, seen / (now - te));
                last_print = now;
            }
            if (o->max_steps && step >= o->max_steps) break;
        }
        if (st) break;
        if (o->progress) fprintf(stderr, "\n");
        r->train_loss = seen ? sum_loss / seen : 0;
        r->train_acc = seen ? (double)correct / seen : 0;
        if (o->verbose)
            printf("epoch %d/%d  loss %.4f  train acc %.2f%%  lr %.4g  %.0f img/s\n", ep + 1, o->epochs, r->train_loss,
                   100 * r->train_acc, il_optim_lr(&oo, step > 0 ? step - 1 : 0), seen / (il_now() - te));
        fflush(stdout);
        if (o->max_steps && step >= o->max_steps) break;
    }
out:
    free(tcache);
    il_tensor_free(tlc);
    r->seconds = il_now() - t0;
    r->steps = step;
    r->images_per_s = r->seconds > 0 ? images / r->seconds : 0;
    il_tensor_free(x), il_tensor_free(tx), il_tensor_free(grad);
    free(order), free(buf), free(tbuf), free(yb);
    kd_free(kd);
    il_optim_free(opt);
    free(masked);
    return st;
}

/* ---------------------------------------------------------------- evaluation */

static void score(const il_tensor *logits, const int32_t *y, int nb, il_eval_result *r, int64_t *top1, int64_t *top5,
                  double *loss) {
    int k = r->k;
    for (int i = 0; i < nb; i++) {
        double v = il_tensor_get(logits, (int64_t)i * k + y[i]), m = -INFINITY, s = 0;
        int rank = 0, best = 0;
        for (int j = 0; j < k; j++) {
            double u = il_tensor_get(logits, (int64_t)i * k + j);
            if (u > v || (u == v && j < y[i])) rank++;
            if (u > m) m = u, best = j;
        }
        for (int j = 0; j < k; j++) s += exp(il_tensor_get(logits, (int64_t)i * k + j) - m);
        *loss += m + log(s) - v;
        *top1 += rank == 0;
        *top5 += rank < 5;
        r->confusion[(int64_t)y[i] * k + best]++;
    }
}

/* Shared by both evaluators: run(ctx, x, &logits) computes one batch. */
typedef il_status (*eval_fn)(void *ctx, il_tensor *x, const il_tensor **logits);

static il_status eval_loop(eval_fn run, void *ctx, il_dtype dt, const il_dataset *d, const il_preproc *p, int batch,
                           il_eval_result *r) {
    memset(r, 0, sizeof *r);
    if (batch < 1) batch = 1;
    int64_t sz = (int64_t)d->c * d->h * d->w, dims[4] = {batch, d->c, d->h, d->w}, top1 = 0, top5 = 0;
    float *buf = malloc((size_t)(batch * sz) * sizeof(float));
    int64_t *idx = malloc((size_t)batch * sizeof(int64_t));
    il_tensor *x = il_tensor_new(dt, 4, dims);
    double loss = 0, t0 = il_now();
    il_status st = IL_OK;
    for (int64_t b0 = 0; b0 < d->n; b0 += batch) {
        int nb = (int)(d->n - b0 < batch ? d->n - b0 : batch);
        for (int i = 0; i < nb; i++) idx[i] = b0 + i;
        il_preproc_batch(p, d, idx, nb, 0, NULL, buf);
        x->dims[0] = nb;
        to_dtype(buf, x);
        const il_tensor *lg;
        if ((st = run(ctx, x, &lg))) break;
        int k = (int)(il_tensor_numel(lg) / nb);
        if (!r->confusion) {
            if (k < 1 || k < d->n_classes) {
                st = il_error(IL_ERR_SHAPE, "the model gives %d scores per image, the data set has %d classes", k,
                              d->n_classes);
                break;
            }
            r->k = k;
            r->confusion = calloc((size_t)k * k, sizeof(int64_t));
        }
        score(lg, d->y + b0, nb, r, &top1, &top5, &loss);
    }
    r->n = d->n;
    r->top1 = (double)top1 / d->n, r->top5 = (double)top5 / d->n, r->loss = loss / d->n;
    r->images_per_s = d->n / (il_now() - t0);
    free(buf), free(idx);
    il_tensor_free(x);
    if (st) free(r->confusion), r->confusion = NULL;
    return st;
}

static il_status run_plan(void *ctx, il_tensor *x, const il_tensor **lg) {
    il_status st = il_plan_run(ctx, &x, 1);
    if (!st) *lg = il_plan_output(ctx, 0);
    return st;
}

il_status il_evaluate(const il_graph *g, const il_dataset *d, const il_preproc *p, int batch, int threads,
                      il_eval_result *r) {
    il_plan *plan;
    il_plan_opts po = {.backend = IL_BACKEND_CPU, .threads = threads, .batch = batch};
    il_status st = il_plan_create(g, &po, &plan);
    if (st) return st;
    st = eval_loop(run_plan, plan, IL_F32, d, p, batch, r);
    il_plan_free(plan);
    return st;
}

static il_status run_trainer(void *ctx, il_tensor *x, const il_tensor **lg) { return il_trainer_forward(ctx, x, 0, lg); }

il_status il_evaluate_trainer(il_trainer *t, const il_dataset *d, const il_preproc *p, int batch, il_eval_result *r) {
    il_tensor *w;
    il_trainer_param(t, 0, &w, NULL);
    return eval_loop(run_trainer, t, w->dtype, d, p, batch, r);
}

void il_eval_print(const il_eval_result *r, const char *labels, FILE *f) {
    char names[64][24];
    int k = r->k < 64 ? r->k : 64;
    const char *s = labels ? labels : "";
    for (int i = 0; i < k; i++) {
        size_t n = strcspn(s, ",");
        if (n && *s) snprintf(names[i], sizeof names[i], "%.*s", (int)(n < 23 ? n : 23), s);
        else snprintf(names[i], sizeof names[i], "class %d", i);
        s += n + (s[n] == ',');
    }
    fprintf(f, "samples %lld  top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%.0f images/s)\n\n", (long long)r->n, 100 * r->top1,
            100 * r->top5, r->loss, r->images_per_s);
    fprintf(f, "%-14s %8s %8s\n", "class", "samples", "top-1");
    for (int i = 0; i < k; i++) {
        int64_t tot = 0;
        for (int j = 0; j < r->k; j++) tot += r->confusion[(int64_t)i * r->k + j];
        fprintf(f, "%-14s %8lld %7.2f%%\n", names[i], (long long)tot,
                tot ? 100.0 * r->confusion[(int64_t)i * r->k + i] / tot : 0.0);
    }
    if (r->k > 20) return;
    fprintf(f, "\nconfusion matrix (rows: true class, columns: predicted)\n%-14s", "");
    for (int j = 0; j < k; j++) fprintf(f, " %5d", j);
    fprintf(f, "\n");
    for (int i = 0; i < k; i++) {
        fprintf(f, "%2d %-11.11s", i, names[i]);
        for (int j = 0; j < k; j++) fprintf(f, " %5lld", (long long)r->confusion[(int64_t)i * r->k + j]);
        fprintf(f, "\n");
    }
}
