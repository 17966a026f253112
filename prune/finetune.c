/*
 * finetune.c - pruning with fine-tuning: one-shot (prune, then train with the masks fixed) and
 * Zhu & Gupta's gradual schedule (prune a little, train, prune more, ...).
 *
 * Training is distill/'s il_fit; the masks reach it as il_fit_opts.masks, and il_fit zeroes the
 * masked weights after every optimizer step, so momentum and weight decay cannot bring a pruned
 * weight back. In the gradual schedule each round prunes the current weights: what earlier
 * rounds removed is zero, so it scores lowest and stays removed (the masks only grow).
 */
#include "prune.h"

#include <stdlib.h>
#include <string.h>

il_status il_prune_train(il_graph **g, const il_prune_report *r, const il_fit_opts *fo, const il_dataset *d,
                         const il_preproc *p, int verbose) {
    int nl = r ? r->n : 0;
    const char **names = calloc((size_t)nl + 1, sizeof *names);
    const il_tensor **masks = calloc((size_t)nl + 1, sizeof *masks);
    il_fit_opts o = *fo;
    il_trainer *t = NULL;
    il_graph *out = NULL;
    il_status st = names && masks ? IL_OK : il_error(IL_ERR_OOM, "out of memory");
    for (int i = 0; i < nl && !st; i++)
        if (r->layers[i].mask) names[o.n_masks] = r->layers[i].weight, masks[o.n_masks++] = r->layers[i].mask;
    o.mask_params = names, o.masks = masks;
    il_trainer_opts to = {.dtype = IL_F32, .threads = fo->threads, .seed = fo->seed};
    il_fit_result fr;
    if (!st) st = il_trainer_create(*g, &to, &t);
    if (!st) st = il_fit(t, d, p, &o, &fr);
    if (!st) st = il_trainer_export(t, &out);
    if (!st && verbose)
        printf("  fine-tuned %lld steps on %lld samples in %.1f s: train loss %.4f, train top-1 %.2f%%\n",
               (long long)fr.steps, (long long)d->n, fr.seconds, fr.train_loss, 100 * fr.train_acc);
    il_trainer_free(t);
    free(names), free(masks);
    if (st) return st;
    il_graph_free(*g);
    *g = out;
    return IL_OK;
}

il_status il_prune_finetune(il_graph **g, const il_prune_opts *o, const il_prune_finetune_opts *f, const il_dataset *d,
                            const il_preproc *p, il_prune_report *r) {
    il_prune_report rep = {0};
    int n = f->gradual_steps > 0 ? f->gradual_steps : 1;
    if (f->gradual_steps > 0 && o->scope == IL_PRUNE_NM)
        return il_error(IL_ERR_INVALID, "the gradual schedule raises a sparsity step by step; N:M has a fixed pattern "
                        "(use --schedule oneshot)");
    if (d->n < 2 * n) return il_error(IL_ERR_INVALID, "%lld training samples cannot be split into %d rounds",
                                      (long long)d->n, n);
    double *ls = calloc((size_t)o->n_layer_sparsity + 1, sizeof *ls);
    int64_t *idx = malloc((size_t)d->n * sizeof *idx);
    il_status st = ls && idx ? IL_OK : il_error(IL_ERR_OOM, "out of memory");
    for (int64_t i = 0; idx && i < d->n; i++) idx[i] = i;
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
        int64_t lo = d->n * (t - 1) / n, hi = d->n * t / n;
        il_dataset *slice = n > 1 ? il_data_subset(d, idx + lo, hi - lo) : NULL;
        if (n > 1 && !slice) st = il_error(IL_ERR_OOM, "out of memory slicing the training set");
        else st = il_prune_train(g, &rep, &f->fit, slice ? slice : d, p, f->verbose);
        il_data_free(slice);
    }
    free(ls), free(idx);
    if (!st) il_prune_recount(*g, &rep);
    if (st || !r) il_prune_report_free(&rep);
    else *r = rep;
    return st;
}
