/*
 * data.c - the samples calibration, analysis and tuning run a model on (a labelled data set with
 * the model's own preprocessing, a folder of .npy inputs, or random inputs), and the batch loop
 * that runs a model over them with chosen intermediate values as extra outputs.
 */
#include "quant_int.h"

#include "distill/distill.h"
#include "passes/passes.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void il_calib_data_free(il_calib_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n_inputs; i++) il_tensor_free(d->x[i]);
    free(d->x);
    free(d->y);
    free(d);
}

/* Whether g takes one float input of 1x28x28 (or 784) values per sample and gives 10 classes. */
static int fmnist_shaped(const il_graph *g) {
    if (g->n_inputs != 1 || g->n_outputs < 1) return 0;
    const il_value *x = &g->values[g->inputs[0]];
    int64_t per = 1;
    if (x->dtype != IL_F32 || x->rank < 2) return 0;
    for (int d = 1; d < x->rank; d++) per = x->dims[d] > 0 ? per * x->dims[d] : -1;
    return per == 784;
}

const char *il_calib_default_spec(const il_graph *g) { return fmnist_shaped(g) ? "fashion-mnist:train:512" : "random:64"; }

const char *il_calib_default_val(const il_graph *g, int *from_end) {
    *from_end = fmnist_shaped(g);
    return *from_end ? "fashion-mnist:train:1000" : "random:256";
}

/* The dims of one sample of input i: the model's dims after the first, symbolic ones bound by
 * name or 1. */
static il_status sample_dims(const il_graph *g, int i, const il_bind *b, int nb, int64_t *dims) {
    const il_value *x = &g->values[g->inputs[i]];
    if (x->rank < 1)
        return il_error(IL_ERR_SHAPE, "input '%s' has no batch dimension (rank %d): samples cannot be stacked",
                        x->name, x->rank);
    for (int d = 1; d < x->rank; d++) {
        dims[d] = x->dims[d];
        for (int j = 0; dims[d] < 0 && j < nb; j++)
            if (x->dim_param[d] && !strcmp(b[j].name, x->dim_param[d])) dims[d] = b[j].value;
        if (dims[d] < 0) dims[d] = 1;
    }
    return IL_OK;
}

static il_status load_random(const il_graph *g, long long n, const il_bind *b, int nb, il_calib_data *d) {
    uint64_t rng = 0x51D3C0DEULL;
    d->n = n;
    for (int i = 0; i < g->n_inputs; i++) {
        int64_t dims[IL_MAX_RANK];
        il_status st = sample_dims(g, i, b, nb, dims);
        if (st) return st;
        dims[0] = n;
        if (!(d->x[i] = il_tensor_new(g->values[g->inputs[i]].dtype, g->values[g->inputs[i]].rank, dims)))
            return IL_ERR_OOM;
        il_graph_fill_input(g, i, d->x[i], &rng);
    }
    return IL_OK;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A folder of .npy files: each a sample (the input's shape without the batch dim) or a batch. */
static il_status load_folder(const il_graph *g, const char *dir, il_calib_data *d) {
    if (g->n_inputs != 1)
        return il_error(IL_ERR_UNSUPPORTED, "a folder of inputs calibrates single-input models; this one has %d inputs "
                        "(use random:N)", g->n_inputs);
    DIR *dp = opendir(dir);
    if (!dp) return il_error(IL_ERR_IO, "cannot open the folder %s", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".npy")) continue;
        if (n == cap) names = realloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    il_status st = IL_OK;
    if (!n) st = il_error(IL_ERR_INVALID, "the folder %s holds no .npy files", dir);
    qsort(names, (size_t)n, sizeof *names, by_name);
    const il_value *x = &g->values[g->inputs[0]];
    int64_t dims[IL_MAX_RANK] = {0}, per = 1;
    if (!st) st = sample_dims(g, 0, NULL, 0, dims);
    for (int k = 1; k < x->rank; k++) per *= dims[k];
    il_tensor **parts = calloc((size_t)n + 1, sizeof *parts);
    int64_t total = 0;
    for (int i = 0; i < n && !st; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if ((st = il_tensor_load_npy(path, &parts[i]))) break;
        il_tensor *t = parts[i];
        int one = t->rank == x->rank - 1, ok = t->dtype == x->dtype && (one || t->rank == x->rank);
        for (int k = 1; ok && k < x->rank; k++) ok = t->dims[one ? k - 1 : k] == dims[k];
        if (!ok) {
            char have[128], want[128];
            il_shape_str(t->rank, t->dims, have, sizeof have);
            dims[0] = -1;
            il_shape_str(x->rank, x->dims, want, sizeof want);
            st = il_error(IL_ERR_SHAPE, "%s is %s %s; input '%s' takes %s samples (with or without the batch dim)", path,
                          il_dtype_name(t->dtype), have, x->name, want);
        }
        total += il_tensor_numel(t) / (per ? per : 1);
    }
    if (!st) {
        dims[0] = total;
        if (!(d->x[0] = il_tensor_new(x->dtype, x->rank, dims))) st = IL_ERR_OOM;
    }
    size_t off = 0;
    for (int i = 0; i < n && !st; i++) {
        memcpy((char *)d->x[0]->data + off, parts[i]->data, il_tensor_bytes(parts[i]));
        off += il_tensor_bytes(parts[i]);
    }
    d->n = total;
    for (int i = 0; i < n; i++) free(names[i]), il_tensor_free(parts[i]);
    free(names);
    free(parts);
    return st;
}

/* A labelled set, preprocessed as the model says (the same steps as `inferlab eval`). */
static il_status load_set(const il_graph *g, const char *spec, int test, int from_end, il_calib_data *d) {
    if (g->n_inputs != 1) return il_error(IL_ERR_UNSUPPORTED, "a data set feeds single-input models; this one has %d",
                                          g->n_inputs);
    /* from_end: load the split whole and keep its last N */
    char buf[300];
    long long want = -1;
    snprintf(buf, sizeof buf, "%s", spec);
    char *colon = strrchr(buf, ':');
    if (from_end && colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1))
        want = atoll(colon + 1), *colon = 0;
    il_dataset *ds;
    il_preproc p;
    il_status st = il_data_load(buf, test ? IL_SPLIT_TEST : IL_SPLIT_TRAIN, &ds);
    if (st) return il_error_wrap(st, "calibration data %s: ", spec);
    if (want >= 0 && want < ds->n) {
        int64_t *idx = malloc((size_t)want * sizeof *idx);
        for (int64_t i = 0; i < want; i++) idx[i] = ds->n - want + i;
        il_dataset *s = il_data_subset(ds, idx, want);
        free(idx);
        il_data_free(ds);
        if (!(ds = s)) return IL_ERR_OOM;
    }
    if (!(st = il_preproc_from_meta(g, &p))) {
        if (p.scale != ds->scale)
            for (int64_t i = 0; i < ds->n * ds->c * ds->h * ds->w; i++) ds->x[i] = (float)(ds->x[i] / ds->scale * p.scale);
        st = il_preproc_geometry(&p, ds);
    }
    const il_value *x = &g->values[g->inputs[0]];
    int64_t dims[IL_MAX_RANK] = {0}, per = 1;
    if (!st) st = sample_dims(g, 0, NULL, 0, dims);
    for (int k = 1; k < x->rank; k++) per *= dims[k];
    if (!st && (x->dtype != IL_F32 || per != (int64_t)ds->c * ds->h * ds->w))
        st = il_error(IL_ERR_SHAPE, "data set %s has %dx%dx%d samples; the model's input '%s' takes %lld %s values", spec,
                      ds->c, ds->h, ds->w, x->name, (long long)per, il_dtype_name(x->dtype));
    if (!st) {
        dims[0] = ds->n;
        d->x[0] = il_tensor_new(IL_F32, x->rank, dims);
        d->y = malloc((size_t)(ds->n ? ds->n : 1) * sizeof *d->y);
        int64_t *idx = malloc((size_t)(ds->n ? ds->n : 1) * sizeof *idx);
        if (!d->x[0] || !d->y || !idx) st = IL_ERR_OOM;
        for (int64_t i = 0; !st && i < ds->n; i++) idx[i] = i, d->y[i] = ds->y[i];
        /* in chunks: il_preproc_batch takes an int count */
        for (int64_t i = 0; !st && i < ds->n; i += 4096) {
            int64_t m = ds->n - i < 4096 ? ds->n - i : 4096;
            il_preproc_batch(&p, ds, idx + i, (int)m, 0, NULL, (float *)d->x[0]->data + i * per);
        }
        free(idx);
        d->n = ds->n;
    }
    il_data_free(ds);
    return st;
}

il_status il_calib_data_load(const il_graph *g, const char *spec, int test, int from_end, const il_bind *binds,
                             int n_binds, il_calib_data **out) {
    *out = NULL;
    if (!spec || !*spec) return il_error(IL_ERR_INVALID, "an empty data spec");
    il_calib_data *d = calloc(1, sizeof *d);
    if (!d || !(d->x = calloc((size_t)g->n_inputs + 1, sizeof *d->x))) {
        free(d);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    d->n_inputs = g->n_inputs;
    snprintf(d->spec, sizeof d->spec, "%s", spec);
    struct stat sb;
    il_status st;
    if (!strncmp(spec, "random:", 7)) {
        char *end;
        long long n = strtoll(spec + 7, &end, 10);
        if (end == spec + 7 || *end || n < 1 || n > 1000000)
            st = il_error(IL_ERR_INVALID, "random:N wants a sample count from 1 to 1000000, got '%s'", spec);
        else st = load_random(g, n, binds, n_binds, d);
    } else if (!stat(spec, &sb) && S_ISDIR(sb.st_mode)) {
        st = load_folder(g, spec, d);
    } else {
        st = load_set(g, spec, test, from_end, d);
    }
    if (!st && d->n < 1) st = il_error(IL_ERR_INVALID, "data %s has no samples", spec);
    if (st) {
        il_calib_data_free(d);
        return st;
    }
    *out = d;
    return IL_OK;
}

/* ---------------------------------------------------------------- running in batches */

struct il_qrun {
    il_graph *g;     /* the model with the extra outputs */
    il_plan *p;
    int64_t batch, fixed;
    il_tensor **in;
    const il_tensor **outs;
};

void il_qrun_close(il_qrun *r) {
    if (!r) return;
    for (int i = 0; r->in && i < r->g->n_inputs; i++) il_tensor_free(r->in[i]);
    free(r->in);
    free(r->outs);
    il_plan_free(r->p);
    il_graph_free(r->g);
    free(r);
}

il_status il_qrun_open(const il_graph *g, const char *const *extra, int n_extra, int64_t batch, int threads,
                       il_qrun **out) {
    il_qrun *r = calloc(1, sizeof *r);
    il_status st = IL_OK;
    *out = NULL;
    if (!r || !(r->g = il_graph_clone(g))) {
        free(r);
        return il_error(IL_ERR_OOM, "out of memory cloning the model");
    }
    for (int i = 0; i < n_extra && !st; i++) {
        int v = il_graph_find_value(r->g, extra[i]);
        if (v < 0) st = il_error(IL_ERR_INVALID, "no value named '%s' in the model", extra[i]);
        else il_graph_add_output(r->g, v); /* a value already an output is listed twice: fine */
    }
    r->fixed = il_graph_fixed_batch(r->g);
    r->batch = r->fixed > 0 ? r->fixed : batch > 0 ? batch : 32;
    il_plan_opts po = {.batch = r->batch, .threads = threads > 0 ? threads : il_num_cores()};
    if (!st) st = il_plan_create(r->g, &po, &r->p);
    r->in = calloc((size_t)r->g->n_inputs + 1, sizeof *r->in);
    r->outs = calloc((size_t)r->g->n_outputs + 1, sizeof *r->outs);
    if (!st && (!r->in || !r->outs)) st = il_error(IL_ERR_OOM, "out of memory");
    if (st) {
        il_qrun_close(r);
        return st;
    }
    *out = r;
    return IL_OK;
}

int64_t il_qrun_batch(const il_qrun *r) { return r->batch; }

il_status il_qrun_step(il_qrun *r, const il_calib_data *d, int64_t first, int64_t count, const il_tensor *const **outs,
                       int *n_outs) {
    if (d->n_inputs != r->g->n_inputs)
        return il_error(IL_ERR_INVALID, "the data has %d inputs, the model %d", d->n_inputs, r->g->n_inputs);
    for (int i = 0; i < d->n_inputs; i++) {
        const il_tensor *x = d->x[i];
        int64_t dims[IL_MAX_RANK];
        memcpy(dims, x->dims, sizeof dims);
        size_t per = il_tensor_bytes(x) / (size_t)(x->dims[0] ? x->dims[0] : 1);
        dims[0] = count;
        il_tensor_free(r->in[i]);
        r->in[i] = il_tensor_wrap(x->dtype, x->rank, dims, (char *)x->data + (size_t)first * per);
    }
    il_status st = il_plan_run(r->p, r->in, d->n_inputs);
    if (st) return st;
    for (int i = 0; i < r->g->n_outputs; i++) r->outs[i] = il_plan_output(r->p, i);
    *outs = r->outs;
    *n_outs = r->g->n_outputs;
    return IL_OK;
}

/* The samples a fixed-batch model can take: whole batches only. */
int64_t il_qrun_usable(const il_qrun *r, int64_t n) { return r->fixed > 0 ? n / r->fixed * r->fixed : n; }

il_status il_quant_run_batches(const il_graph *g, const il_calib_data *d, const char *const *extra, int n_extra,
                               int64_t batch, int threads, il_quant_batch_fn fn, void *ctx) {
    il_qrun *r;
    il_status st = il_qrun_open(g, extra, n_extra, batch, threads, &r);
    if (st) return st;
    int64_t n = il_qrun_usable(r, d->n), b = r->batch;
    for (int64_t first = 0; !st && first < n; first += b) {
        int64_t count = n - first < b ? n - first : b;
        const il_tensor *const *outs;
        int no;
        if (!(st = il_qrun_step(r, d, first, count, &outs, &no))) st = fn(ctx, outs, no, first, count);
    }
    il_qrun_close(r);
    return st;
}

/* ---------------------------------------------------------------- top-1 */

typedef struct {
    const il_calib_data *d;
    int32_t *pred;
} top1_ctx;

static il_status take_top1(void *ctx, const il_tensor *const *outs, int n_outs, int64_t first, int64_t count) {
    top1_ctx *t = ctx;
    const il_tensor *y = outs[0];
    int64_t k = y->rank >= 1 ? y->dims[y->rank - 1] : 1, rows = k ? il_tensor_numel(y) / k : 0;
    if (rows != count)
        return il_error(IL_ERR_SHAPE, "output 0 has %lld rows for a batch of %lld: top-1 needs one row per sample",
                        (long long)rows, (long long)count);
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (il_tensor_get(y, r * k + j) > il_tensor_get(y, r * k + best)) best = j;
        t->pred[first + r] = (int32_t)best;
    }
    return IL_OK;
}

static il_status predict(const il_graph *g, const il_calib_data *d, int threads, int32_t **pred) {
    top1_ctx t = {d, calloc((size_t)d->n, sizeof(int32_t))};
    if (!t.pred) return il_error(IL_ERR_OOM, "out of memory");
    for (int64_t i = 0; i < d->n; i++) t.pred[i] = -1;
    il_status st = il_quant_run_batches(g, d, NULL, 0, 64, threads, take_top1, &t);
    if (st) free(t.pred), t.pred = NULL;
    *pred = t.pred;
    return st;
}

il_status il_quant_top1(const il_graph *g, const il_graph *ref, const il_calib_data *d, int threads, double *acc) {
    int32_t *p = NULL, *q = NULL;
    if (!d->y && !ref) return il_error(IL_ERR_INVALID, "data %s has no labels and there is no reference model", d->spec);
    il_status st = predict(g, d, threads, &p);
    if (!st && !d->y) st = predict(ref, d, threads, &q);
    if (!st) {
        int64_t hit = 0, n = 0;
        for (int64_t i = 0; i < d->n; i++)
            if (p[i] >= 0) n++, hit += p[i] == (d->y ? d->y[i] : q[i]);
        *acc = n ? (double)hit / (double)n : 0;
    }
    free(p);
    free(q);
    return st;
}
