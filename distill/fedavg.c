/*
 * fedavg.c - federated averaging (McMahan et al. 2017) simulated on one machine.
 *
 * The training set is split into label-skewed shards: for every class, the proportions of its
 * samples going to each client are drawn from Dirichlet(alpha) (Hsu et al. 2019); small alpha
 * gives each client few classes, large alpha approaches an even split. Each round every client
 * starts from the global weights, trains locally (local_epochs over its shard, fresh optimizer
 * moments), and only its weights travel back; the server averages parameters and BatchNorm
 * statistics weighted by shard size. The learning rate decays over rounds (cosine), constant
 * within a round.
 */
#include "distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double randn(uint64_t *r) {
    double u1 = il_rand_uniform(r), u2 = il_rand_uniform(r);
    return sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300)) * cos(2.0 * M_PI * u2);
}

/* Gamma(a, 1): Marsaglia & Tsang 2000, with the a < 1 boost Gamma(a) = Gamma(a+1) U^(1/a). */
static double rgamma(double a, uint64_t *r) {
    if (a < 1) {
        double u = il_rand_uniform(r);
        return rgamma(a + 1, r) * pow(u > 1e-300 ? u : 1e-300, 1.0 / a);
    }
    double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = randn(r), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = il_rand_uniform(r);
        if (u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v))) return d * v;
    }
}

il_status il_fed_shards(const il_dataset *d, int K, double alpha, uint64_t seed, int64_t ***idx_out,
                        int64_t **sizes_out) {
    if (K < 1 || !(alpha > 0)) return il_error(IL_ERR_INVALID, "federated: %d clients, alpha %g", K, alpha);
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 0x1234567;
    int64_t **idx = calloc((size_t)K, sizeof *idx), *sizes = calloc((size_t)K, sizeof *sizes);
    int64_t *members = malloc((size_t)d->n * sizeof(int64_t));
    double *prop = malloc((size_t)K * sizeof(double));
    for (int k = 0; k < K; k++) idx[k] = malloc((size_t)d->n * sizeof(int64_t));
    for (int c = 0; c < d->n_classes; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < d->n; i++)
            if (d->y[i] == c) members[m++] = i;
        for (int64_t i = m - 1; i > 0; i--) {
            int64_t j = (int64_t)(il_rand_u64(&rng) % (uint64_t)(i + 1)), t = members[i];
            members[i] = members[j], members[j] = t;
        }
        double s = 0;
        for (int k = 0; k < K; k++) s += prop[k] = rgamma(alpha, &rng);
        double acc = 0;
        int64_t start = 0;
        for (int k = 0; k < K; k++) {
            acc += prop[k] / s;
            int64_t end = k == K - 1 ? m : (int64_t)llround(acc * m);
            if (end > m) end = m;
            for (int64_t i = start; i < end; i++) idx[k][sizes[k]++] = members[i];
            if (end > start) start = end;
        }
    }
    free(members);
    free(prop);
    *idx_out = idx;
    *sizes_out = sizes;
    return IL_OK;
}

/* The trainer's state (parameters then buffers) as one list of tensors. */
static int n_state(il_trainer *t) { return il_trainer_n_params(t) + il_trainer_n_buffers(t); }
static il_tensor *state(il_trainer *t, int i) {
    il_tensor *w;
    int np = il_trainer_n_params(t);
    if (i < np) {
        il_trainer_param(t, i, &w, NULL);
        return w;
    }
    return il_trainer_buffer(t, i - np);
}

il_status il_fedavg(il_trainer *t, const il_dataset *train, const il_dataset *test, const il_preproc *p,
                    const il_fed_opts *o, double *acc) {
    int64_t **idx, *sizes;
    il_status st = il_fed_shards(train, o->clients, o->dirichlet, o->fit.seed, &idx, &sizes);
    if (st) return st;
    int S = n_state(t);
    il_tensor **global = calloc((size_t)S, sizeof *global);
    double **sum = calloc((size_t)S, sizeof *sum);
    for (int i = 0; i < S; i++) {
        global[i] = il_tensor_clone(state(t, i));
        sum[i] = malloc((size_t)il_tensor_numel(global[i]) * sizeof(double));
    }
    if (o->verbose) {
        printf("federated: %d clients, Dirichlet alpha %g, shard sizes", o->clients, o->dirichlet);
        for (int k = 0; k < o->clients; k++) printf(" %lld", (long long)sizes[k]);
        printf("\n");
    }
    double t0 = il_now();
    for (int r = 0; r < o->rounds && !st; r++) {
        for (int i = 0; i < S; i++) memset(sum[i], 0, (size_t)il_tensor_numel(global[i]) * sizeof(double));
        int64_t total = 0;
        il_fit_opts fo = o->fit;
        fo.epochs = o->local_epochs;
        fo.optim.sched = IL_SCHED_CONST;
        fo.optim.warmup_steps = 0;
        fo.optim.lr = 0.5 * o->fit.optim.lr * (1 + cos(M_PI * r / o->rounds));
        double loss = 0;
        for (int k = 0; k < o->clients && !st; k++) {
            if (sizes[k] < 2) continue;
            for (int i = 0; i < S; i++) memcpy(state(t, i)->data, global[i]->data, il_tensor_bytes(global[i]));
            il_dataset *shard = il_data_subset(train, idx[k], sizes[k]);
            if (!shard) { st = IL_ERR_OOM; break; }
            fo.seed = o->fit.seed * 1000003u + (uint64_t)r * 1009u + (uint64_t)k + 1;
            il_fit_result fr;
            st = il_fit(t, shard, p, &fo, &fr);
            il_data_free(shard);
            if (st) break;
            loss += fr.train_loss * (double)sizes[k];
            for (int i = 0; i < S; i++) {
                il_tensor *w = state(t, i);
                for (int64_t j = 0; j < il_tensor_numel(w); j++) sum[i][j] += (double)sizes[k] * il_tensor_get(w, j);
            }
            total += sizes[k];
        }
        if (st) break;
        for (int i = 0; i < S; i++) {
            for (int64_t j = 0; j < il_tensor_numel(global[i]); j++) il_tensor_set(global[i], j, sum[i][j] / (double)total);
            memcpy(state(t, i)->data, global[i]->data, il_tensor_bytes(global[i]));
        }
        il_eval_result er;
        if ((st = il_evaluate_trainer(t, test, p, 256, &er))) break;
        free(er.confusion);
        if (acc) acc[r] = er.top1;
        if (o->verbose) {
            printf("round %d/%d  lr %.4g  client loss %.4f  global test top-1 %.2f%%  (%.0f s)\n", r + 1, o->rounds,
                   fo.optim.lr, loss / (double)total, 100 * er.top1, il_now() - t0);
            fflush(stdout);
        }
    }
    for (int i = 0; i < S; i++) il_tensor_free(global[i]), free(sum[i]);
    free(global), free(sum);
    for (int k = 0; k < o->clients; k++) free(idx[k]);
    free(idx), free(sizes);
    return st;
}
