/*
 * finetune.c - pruning with fine-tuning: one-shot (prune, then train with the masks fixed) and
 * Zhu & Gupta's gradual schedule (prune a little, train, prune more, ...).
 *
 * Training is distill/'s il_fit; the masks reach it as il_fit_opts.masks, and il_fit zeroes the
 * masked weights after every optimizer step, so momentum and weight decay cannot bring a pruned
 * weight back. In the gradual schedule each round prunes the current weights: what earlier
 * rounds removed is zero, so it scores lowest and stays removed (the masks only grow).
 */
#include "channel.h"
#include "prune.h"

#include <stdlib.h>
#include <string.h>

/* Fine-tune *g on d with n masks (uint8, one per parameter name; names the trainer does not train,
 * such as BatchNorm statistics, are left out: nothing moves them but the data) held fixed. */
static il_status fit_masked(il_graph **g, const char *const *names, const il_tensor *const *masks, int n,
                            const il_fit_opts *fo, const il_dataset *d, const il_preproc *p, int verbose) {
    const char **pn = calloc((size_t)n + 1, sizeof *pn);
    const il_tensor **pm = calloc((size_t)n + 1, sizeof *pm);
    il_fit_opts o = *fo;
    il_trainer *t = NULL;
    il_graph *out = NULL;
    il_status st = pn && pm ? IL_OK : il_error(IL_ERR_OOM, "out of memory");
    il_trainer_opts to = {.dtype = IL_F32, .threads = fo->threads, .seed = fo->seed};
    il_fit_result fr;
    if (!st) st = il_trainer_create(*g, &to, &t);
    o.n_masks = 0;
    for (int i = 0; i < n && !st; i++)
        for (int k = 0; k < il_trainer_n_params(t); k++)
            if (!strcmp(il_trainer_param(t, k, NULL, NULL), names[i])) {
                pn[o.n_masks] = names[i], pm[o.n_masks++] = masks[i];
                break;
            }
    o.mask_params = pn, o.masks = pm;
    if (!st) st = il_fit(t, d, p, &o, &fr);
    if (!st) st = il_trainer_export(t, &out);
    if (!st && verbose)
        printf("  fine-tuned %lld steps on %lld samples in %.1f s: train loss %.4f, train top-1 %.2f%%\n",
               (long long)fr.steps, (long long)d->n, fr.seconds, fr.train_loss, 100 * fr.train_acc);
    il_trainer_free(t);
    free(pn), free(pm);
    if (st) return st;
    il_graph_free(*g);
    *g = out;
    return IL_OK;
}

il_status il_prune_train(il_graph **g, const il_prune_report *r, const il_fit_opts *fo, const il_dataset *d,
                         const il_preproc *p, int verbose) {
    int nl = r ? r->n : 0, n = 0;
    const char **names = calloc((size_t)nl + 1, sizeof *names);
    const il_tensor **masks = calloc((size_t)nl + 1, sizeof *masks);
    il_status st = names && masks ? IL_OK : il_error(IL_ERR_OOM, "out of memory");
    for (int i = 0; i < nl && !st; i++)
        if (r->layers[i].mask) names[n] = r->layers[i].weight, masks[n++] = r->layers[i].mask;
    if (!st) st = fit_masked(g, names, masks, n, fo, d, p, verbose);
    free(names), free(masks);
    return st;
}

/* Round t of n trains on the t-th of n equal slices of d (the whole schedule sees d once per
 * epoch, as one-shot does); d itself when n is 1. */
static il_status train_round(il_graph **g, const char *const *names, const il_tensor *const *masks, int n_masks,
                             const il_fit_opts *fo, const il_dataset *d, const il_preproc *p, int t, int n,
                             int verbose) {
    int64_t lo = d->n * (t - 1) / n, hi = d->n * t / n;
    int64_t *idx = n > 1 ? malloc((size_t)(hi - lo) * sizeof *idx) : NULL;
    for (int64_t i = 0; idx && i < hi - lo; i++) idx[i] = lo + i;
    il_dataset *slice = idx ? il_data_subset(d, idx, hi - lo) : NULL;
    il_status st = n > 1 && !slice ? il_error(IL_ERR_OOM, "out of memory slicing the training set")
                                   : fit_masked(g, names, masks, n_masks, fo, slice ? slice : d, p, verbose);
    il_data_free(slice);
    free(idx);
    return st;
}

static il_status check_rounds(const il_dataset *d, int n) {
    return d->n < 2 * n ? il_error(IL_ERR_INVALID, "%lld training samples cannot be split into %d rounds",
                                   (long long)d->n, n)
                        : IL_OK;
}

il_status il_prune_finetune(il_graph **g, const il_prune_opts *o, const il_prune_finetune_opts *f, const il_dataset *d,
                            const il_preproc *p, il_prune_report *r) {
    il_prune_report rep = {0};
    int n = f->gradual_steps > 0 ? f->gradual_steps : 1;
    if (f->gradual_steps > 0 && o->scope == IL_PRUNE_NM)
        return il_error(IL_ERR_INVALID, "the gradual schedule raises a sparsity step by step; N:M has a fixed pattern "
                        "(use --schedule oneshot)");
    il_status st = check_rounds(d, n);
    if (st) return st;
    double *ls = calloc((size_t)o->n_layer_sparsity + 1, sizeof *ls);
    const char **names = calloc(1, sizeof *names);
    const il_tensor **masks = calloc(1, sizeof *masks);
    if (!ls || !names || !masks) st = il_error(IL_ERR_OOM, "out of memory");
    for (int t = 1; t <= n && !st; t++) {
        il_prune_opts ot = *o;
        if (f->gradual_steps > 0) {
            ot.sparsity = il_prune_gradual_sparsity(f->initial_sparsity, o->sparsity, t, n);
            for (int i = 0; i < o->n_layer_sparsity; i++)
                ls[i] = il_prune_gradual_sparsity(f->initial_sparsity, o->layer_sparsity[i], t, n);
            ot.layer_sparsity = ls;
        }
        il_prune_report_free(&rep);
        if ((st = il_prune_apply(*g, &ot, &rep))) break;
        if (f->verbose)
            printf("round %d/%d: pruned to %.2f%% of the prunable weights\n", t, n, 100 * il_prune_sparsity(&rep));
        const char **nn = realloc(names, ((size_t)rep.n + 1) * sizeof *names);
        const il_tensor **nm = realloc(masks, ((size_t)rep.n + 1) * sizeof *masks);
        names = nn ? nn : names, masks = nm ? nm : masks;
        if (!nn || !nm) {
            st = il_error(IL_ERR_OOM, "out of memory");
            break;
        }
        int k = 0;
        for (int i = 0; i < rep.n; i++)
            if (rep.layers[i].mask) names[k] = rep.layers[i].weight, masks[k++] = rep.layers[i].mask;
        st = train_round(g, names, masks, k, &f->fit, d, p, t, n, f->verbose);
    }
    free(ls), free(names), free(masks);
    if (!st) il_prune_recount(*g, &rep);
    if (st || !r) il_prune_report_free(&rep);
    else *r = rep;
    return st;
}

/* ---------------------------------------------------------------- channels, gradually */

/* The masks of the gradual channel schedule: per constant that a round zeroed anything of, 1
 * where the value may train, 0 where a round zeroed it. */
typedef struct chmasks {
    int n;
    char **names;
    il_tensor **m;
} chmasks;

static void chmasks_free(chmasks *c) {
    for (int i = 0; i < c->n; i++) free(c->names[i]), il_tensor_free(c->m[i]);
    free(c->names), free(c->m);
}

/* Add to c what a round zeroed: entries of g's constants that are 0 now and were not in before. */
static il_status chmasks_add(chmasks *c, const il_graph *before, const il_graph *g) {
    for (int v = 0; v < g->n_values; v++) {
        const il_tensor *now = g->values[v].constant;
        int b = now && now->dtype == IL_F32 ? il_graph_find_value(before, g->values[v].name) : -1;
        const il_tensor *was = b >= 0 ? before->values[b].constant : NULL;
        if (!was || was->dtype != IL_F32 || il_tensor_numel(was) != il_tensor_numel(now)) continue;
        const float *x = now->data, *y = was->data;
        int64_t n = il_tensor_numel(now), j = 0;
        while (j < n && !(x[j] == 0 && y[j] != 0)) j++;
        if (j == n) continue;
        int i = 0;
        while (i < c->n && strcmp(c->names[i], g->values[v].name)) i++;
        if (i == c->n) {
            char **nn = realloc(c->names, ((size_t)c->n + 1) * sizeof *nn);
            if (nn) c->names = nn;
            il_tensor **nm = nn ? realloc(c->m, ((size_t)c->n + 1) * sizeof *nm) : NULL;
            if (nm) c->m = nm;
            il_tensor *m = nm ? il_tensor_new(IL_U8, now->rank, now->dims) : NULL;
            char *name = m ? strdup(g->values[v].name) : NULL;
            if (!name) {
                il_tensor_free(m);
                return il_error(IL_ERR_OOM, "out of memory");
            }
            memset(m->data, 1, (size_t)n);
            c->names[c->n] = name, c->m[c->n++] = m;
        }
        unsigned char *m = c->m[i]->data;
        for (; j < n; j++)
            if (x[j] == 0 && y[j] != 0) m[j] = 0;
    }
    return IL_OK;
}

/* Every entry a round zeroed is still 0 after training (else removing the channels would change
 * the model): the trainer held the masks, and BatchNorm saw a zero channel's statistics as 0. */
static il_status chmasks_held(const chmasks *c, const il_graph *g) {
    for (int i = 0; i < c->n; i++) {
        int v = il_graph_find_value(g, c->names[i]);
        const il_tensor *w = v >= 0 ? g->values[v].constant : NULL;
        const unsigned char *m = c->m[i]->data;
        int64_t n = w && w->dtype == IL_F32 ? il_tensor_numel(w) : -1, j = 0;
        while (j < n && (m[j] || ((const float *)w->data)[j] == 0)) j++;
        if (n != il_tensor_numel(c->m[i]) || j < n)
            return il_error(IL_ERR_INTERNAL, "gradual channel pruning: '%s' of a zeroed channel changed in training",
                            c->names[i]);
    }
    return IL_OK;
}

il_status il_prune_channels_gradual(il_graph **g, float ratio, int norm, const char *const *exclude, int n_exclude,
                                    const il_prune_finetune_opts *f, const il_dataset *d, const il_preproc *p,
                                    il_channel_report *r) {
    int n = f->gradual_steps > 0 ? f->gradual_steps : 1;
    il_status st = check_rounds(d, n);
    chmasks c = {0};
    for (int t = 1; t <= n && !st; t++) {
        double s = il_prune_gradual_sparsity(f->initial_sparsity, ratio, t, n);
        il_graph *before = il_graph_clone(*g);
        il_channel_report cr;
        if (!before) st = il_error(IL_ERR_OOM, "out of memory");
        if (!st) st = il_prune_channels_ex(*g, (float)s, norm, exclude, n_exclude, IL_CHANNEL_MASK, &cr);
        if (!st) st = chmasks_add(&c, before, *g);
        il_graph_free(before);
        if (!st && f->verbose)
            printf("round %d/%d: %lld of %lld channels zeroed (%.1f%% asked)\n", t, n, (long long)cr.removed,
                   (long long)cr.channels, 100 * s);
        if (!st)
            st = train_round(g, (const char *const *)c.names, (const il_tensor *const *)c.m, c.n, &f->fit, d, p, t, n,
                             f->verbose);
    }
    if (!st) st = chmasks_held(&c, *g);
    chmasks_free(&c);
    /* the zeroed filters score 0: exactly they go, and the function stays */
    return st ? st : il_prune_channels_ex(*g, ratio, norm, exclude, n_exclude, IL_CHANNEL_REMOVE, r);
}
