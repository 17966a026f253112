/*
 * inputs.c - what a variant is fed besides the labelled data set: the user's own inputs
 * (`bench --input NAME=FILE`, `--inputs DIR`) or random ones within each input's valid range
 * (passes/inputs.c), for timing and for agreement with the parent of models that the data-set
 * path cannot feed (several inputs, integer ids).
 *
 * A given tensor whose first dim differs from the batch is cut or repeated sample by sample to
 * fit (its other dims must match the model's).
 */
#include "bench_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../passes/passes.h"

/* The user's tensor for input i of g, or *t = NULL when none was given. */
static il_status given_input(const il_bench_opts *o, const il_graph *g, int i, il_tensor **t) {
    const char *name = g->values[g->inputs[i]].name;
    size_t len = strlen(name);
    *t = NULL;
    for (int k = 0; k < o->n_inputs; k++)
        if (!strncmp(o->inputs[k], name, len) && o->inputs[k][len] == '=')
            return il_error_wrap(il_tensor_load(o->inputs[k] + len + 1, t), "--input %s: ", o->inputs[k]);
    if (!o->inputs_dir) return IL_OK;
    /* a folder: NAME.npy / NAME.pb, or the ONNX test-data layout input_K.pb */
    char cand[4][IL_PATH_MAX + 160];
    snprintf(cand[0], sizeof cand[0], "%s/%s.npy", o->inputs_dir, name);
    snprintf(cand[1], sizeof cand[1], "%s/%s.pb", o->inputs_dir, name);
    snprintf(cand[2], sizeof cand[2], "%s/input_%d.pb", o->inputs_dir, i);
    snprintf(cand[3], sizeof cand[3], "%s/input_%d.npy", o->inputs_dir, i);
    for (int c = 0; c < 4; c++)
        if (!access(cand[c], R_OK)) return il_error_wrap(il_tensor_load(cand[c], t), "--inputs %s: ", o->inputs_dir);
    return IL_OK;
}

/* t with its first dim made n: samples cut or repeated. */
static il_status fit_batch(const il_graph *g, int i, il_tensor **t, int64_t n) {
    il_tensor *s = *t;
    const il_value *x = &g->values[g->inputs[i]];
    if (s->rank != x->rank || s->rank < 1)
        return il_error(IL_ERR_SHAPE, "input '%s': the given tensor has rank %d, the model's input %d", x->name, s->rank,
                        x->rank);
    if (s->dtype != x->dtype)
        return il_error(IL_ERR_SHAPE, "input '%s': the given tensor is %s, the model wants %s", x->name,
                        il_dtype_name(s->dtype), il_dtype_name(x->dtype));
    for (int d = 1; d < s->rank; d++)
        if (x->dims[d] >= 0 && s->dims[d] != x->dims[d])
            return il_error(IL_ERR_SHAPE, "input '%s': dim %d of the given tensor is %lld, the model's is %lld", x->name, d,
                            (long long)s->dims[d], (long long)x->dims[d]);
    if (s->dims[0] == n) return IL_OK;
    if (s->dims[0] < 1) return il_error(IL_ERR_SHAPE, "input '%s': the given tensor holds no sample", x->name);
    int64_t dims[IL_MAX_RANK];
    memcpy(dims, s->dims, sizeof dims);
    dims[0] = n;
    il_tensor *f = il_tensor_new(s->dtype, s->rank, dims);
    if (!f) return il_error(IL_ERR_OOM, "out of memory");
    size_t per = il_tensor_bytes(s) / (size_t)s->dims[0];
    for (int64_t k = 0; k < n; k++)
        memcpy((char *)f->data + (size_t)k * per, (const char *)s->data + (size_t)(k % s->dims[0]) * per, per);
    il_tensor_free(s);
    *t = f;
    return IL_OK;
}

int il_bench_has_inputs(const il_bench_opts *o) { return o->n_inputs > 0 || o->inputs_dir; }

il_status il_bench_timing_inputs(const il_bench_opts *o, const il_graph *g, int b, il_tensor **in) {
    for (int k = 0; k < o->n_inputs; k++) {
        const char *eq = strchr(o->inputs[k], '=');
        int found = 0;
        for (int i = 0; eq && i < g->n_inputs && !found; i++)
            found = strlen(g->values[g->inputs[i]].name) == (size_t)(eq - o->inputs[k]) &&
                    !strncmp(g->values[g->inputs[i]].name, o->inputs[k], (size_t)(eq - o->inputs[k]));
        if (!found)
            return il_error(IL_ERR_INVALID, "--input %s: the model has no input named '%.*s'", o->inputs[k],
                            eq ? (int)(eq - o->inputs[k]) : 0, o->inputs[k]);
    }
    il_status st = il_bench_inputs(g, NULL, b, o->seed, in);
    for (int i = 0; !st && i < g->n_inputs; i++) {
        il_tensor *t;
        if ((st = given_input(o, g, i, &t)) || !t) continue;
        if ((st = fit_batch(g, i, &t, in[i]->dims[0]))) {
            il_tensor_free(t);
            break;
        }
        il_tensor_free(in[i]);
        in[i] = t;
    }
    return st;
}

il_status il_bench_eval_inputs(const il_bench_opts *o, const il_graph *g, int64_t n, il_tensor **x, int64_t *got_n) {
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ULL + 5;
    il_status st = IL_OK;
    *got_n = n;
    /* given inputs set the number of samples (the largest first dim among them) */
    for (int i = 0; !st && i < g->n_inputs; i++) {
        st = given_input(o, g, i, &x[i]);
        if (!st && x[i] && x[i]->rank >= 1 && i == 0) *got_n = x[i]->dims[0];
    }
    for (int i = 0; !st && i < g->n_inputs; i++) {
        const il_value *v = &g->values[g->inputs[i]];
        if (x[i]) {
            st = fit_batch(g, i, &x[i], *got_n);
            continue;
        }
        int64_t dims[IL_MAX_RANK];
        if (v->rank < 1) return il_error(IL_ERR_SHAPE, "input '%s' has no batch dim to evaluate over", v->name);
        for (int d = 0; d < v->rank; d++) {
            dims[d] = d == 0 ? *got_n : v->dims[d];
            if (dims[d] < 0)
                return il_error(IL_ERR_SHAPE, "input '%s': dim %d is symbolic; give the inputs with --input", v->name, d);
        }
        if (!(x[i] = il_tensor_new(v->dtype, v->rank, dims))) return il_error(IL_ERR_OOM, "out of memory");
        il_graph_fill_input(g, i, x[i], &rng);
    }
    return st;
}

il_status il_bench_eval_outputs(const il_graph *g, il_tensor **x, int64_t n, int b, const il_plan_opts *po0,
                                il_plan *plan, il_tensor **out) {
    /* a plan of our own needs no more than the samples there are (a parent at batch 256 for 8
     * samples would pad them to 256); the variant's own plan runs at its batch */
    if (!plan && n < b) b = (int)(n > 0 ? n : 1);
    il_plan_opts po = *po0;
    po.batch = b;
    il_plan *p = plan;
    il_tensor **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    il_status st = !in ? IL_ERR_OOM : plan ? IL_OK : il_plan_create(g, &po, &p);
    *out = NULL;
    if (st) {
        free(in);
        return st;
    }
    for (int i = 0; i < g->n_inputs && !st; i++) {
        int64_t dims[IL_MAX_RANK];
        memcpy(dims, x[i]->dims, sizeof dims);
        dims[0] = b;
        if (!(in[i] = il_tensor_new(x[i]->dtype, x[i]->rank, dims))) st = IL_ERR_OOM;
    }
    int64_t per_out = 0;
    for (int64_t s = 0; s < n && !st; s += b) {
        /* the last batch is padded with copies of the last sample; their outputs are dropped */
        for (int i = 0; i < g->n_inputs; i++) {
            size_t per = il_tensor_bytes(x[i]) / (size_t)n;
            for (int64_t j = 0; j < b; j++) {
                int64_t src = s + j < n ? s + j : n - 1;
                memcpy((char *)in[i]->data + (size_t)j * per, (const char *)x[i]->data + (size_t)src * per, per);
            }
        }
        if ((st = il_plan_run(p, in, g->n_inputs))) break;
        const il_tensor *y = il_plan_output(p, 0);
        if (!*out) {
            if (y->rank < 1 || y->dims[0] != b) {
                st = il_error(IL_ERR_SHAPE, "output 0 does not have the batch as its first dim");
                break;
            }
            int64_t od[IL_MAX_RANK];
            memcpy(od, y->dims, sizeof od);
            od[0] = n;
            per_out = il_tensor_numel(y) / b;
            if (!(*out = il_tensor_new(IL_F32, y->rank, od))) {
                st = IL_ERR_OOM;
                break;
            }
        }
        for (int64_t j = 0; j < b && s + j < n; j++)
            for (int64_t k = 0; k < per_out; k++)
                ((float *)(*out)->data)[(s + j) * per_out + k] = (float)il_tensor_get(y, j * per_out + k);
    }
    for (int i = 0; i < g->n_inputs; i++) il_tensor_free(in[i]);
    free(in);
    if (p != plan) il_plan_free(p);
    if (st) {
        il_tensor_free(*out);
        *out = NULL;
    }
    return st;
}
