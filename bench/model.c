/*
 * model.c - what the harness needs to know about a model besides its speed: the derived file a
 * pipeline produces, file and graph facts (size, hash, parameters, sparsity, precision, FLOPs),
 * the evaluation set and its inputs, and accuracy / agreement with the FP32 parent.
 */
#include "bench_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../distill/distill.h"
#include "../passes/passes.h"

void il_bench_timestamp(char *buf, size_t n) {
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    char s[32];
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03dZ", s, (int)(tv.tv_usec / 1000));
}

static il_status mkdirs(const char *dir) {
    char b[IL_PATH_MAX];
    snprintf(b, sizeof b, "%s", dir);
    for (char *p = b + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(b, 0755) && errno != EEXIST) return il_error(IL_ERR_IO, "cannot create %s: %s", b, strerror(errno));
            *p = '/';
        }
    if (mkdir(b, 0755) && errno != EEXIST) return il_error(IL_ERR_IO, "cannot create %s: %s", b, strerror(errno));
    return IL_OK;
}

/* The derived file's name, MODEL-PATHHASH.PIPELINE.onnx: the model's name, a hash of its real
 * path (two folders named resnet50/ hold two models, and every ONNX zoo file is model.onnx)
 * and the pipeline, spelled as given when it is short and plain, else cut with a hash of it. */
static void hex8(const char *s, char out[9]) {
    unsigned char h[32];
    il_sha256(s, strlen(s), h);
    snprintf(out, 9, "%02x%02x%02x%02x", h[0], h[1], h[2], h[3]);
}

static void cache_stem(const il_variant *v, char *stem, size_t ns, char *tag, size_t nt) {
    char real[IL_PATH_MAX], name[96], h[9];
    il_model_name(v->model, name, sizeof name);
    for (char *c = name; *c; c++)
        if (*c == ' ' || *c == '\'') *c = '_';
    if (!realpath(v->model, real)) snprintf(real, sizeof real, "%s", v->model);
    hex8(real, h);
    snprintf(stem, ns, "%s-%s", name, h);
    int plain = strlen(v->pipeline) <= 40;
    snprintf(tag, nt, "%.40s", v->pipeline);
    for (char *c = tag; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
              *c == '+' || *c == '_'))
            *c = '+', plain = 0;
    if (!plain) {
        hex8(v->pipeline, h);
        snprintf(tag + strlen(tag), nt - strlen(tag), "-%s", h);
    }
}

il_status il_bench_derive(const il_bench_opts *o, const il_variant *v, char *path, size_t n) {
    char pipeline[1024]; /* a preset (-O2 is over 256 characters) or a list given with + */
    if ((!v->pipeline[0] || !strcmp(v->pipeline, "O0")) && !o->n_shapes) {
        snprintf(path, n, "%s", v->model);
        return IL_OK;
    }
    if (v->pipeline[0] == 'O' && v->pipeline[1] >= '0' && v->pipeline[1] <= '9' && !v->pipeline[2]) {
        const char *p = il_pass_preset(v->pipeline[1] - '0');
        if (!p) return il_error(IL_ERR_INVALID, "unknown pipeline preset '%s'", v->pipeline);
        snprintf(pipeline, sizeof pipeline, "%s", p);
    } else {
        snprintf(pipeline, sizeof pipeline, "%s", v->pipeline);
        for (char *c = pipeline; *c; c++)
            if (*c == '+') *c = ',';
    }
    il_graph *g;
    il_status st = il_onnx_load(v->model, &g);
    if (st) return st;
    if ((st = il_graph_fix_shapes(g, o->shapes, o->n_shapes))) { /* --shape: before the passes */
        il_graph_free(g);
        return il_error_wrap(st, "%s: ", v->model);
    }
    if (pipeline[0] && (st = il_pipeline_run(g, pipeline, NULL, NULL, 0, NULL))) {
        il_graph_free(g);
        return il_error_wrap(st, "%s: pipeline %s: ", v->model, v->pipeline);
    }
    /* The derived file sits beside the database (cache_dir), named after model and pipeline;
     * written to a temporary name and renamed, so shards deriving the same file do not see a
     * half-written one. */
    char stem[128], tmp[IL_PATH_MAX + 32], tag[64];
    cache_stem(v, stem, sizeof stem, tag, sizeof tag);
    if (o->n_shapes) { /* fixed shapes make another file: name it apart */
        char all[1024] = "", h[9];
        for (int i = 0; i < o->n_shapes; i++) snprintf(all + strlen(all), sizeof all - strlen(all), "%s;", o->shapes[i]);
        hex8(all, h);
        snprintf(tag + strlen(tag), sizeof tag - strlen(tag), "-shape%s", h);
    }
    const char *dir = o->cache_dir ? o->cache_dir : "bench-cache";
    if ((st = mkdirs(dir))) {
        il_graph_free(g);
        return st;
    }
    snprintf(path, n, "%s/%s.%s.onnx", dir, stem, tag);
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    il_graph_set_meta(g, "inferlab.pipeline", v->pipeline);
    il_graph_set_meta(g, "inferlab.parent", v->model);
    st = il_onnx_save(g, tmp);
    il_graph_free(g);
    if (!st && rename(tmp, path)) st = il_error(IL_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
    if (st) unlink(tmp);
    return st;
}

static int is_int8_op(const il_node *n) {
    static const char *const ops[] = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                                      "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "QGemm", NULL};
    for (int i = 0; ops[i]; i++)
        if (!strcmp(n->op_type, ops[i])) return 1;
    return strstr(n->op_type, "Int8") != NULL || strstr(n->op_type, "QLinear") != NULL;
}

/* s as a JSON string (quotes, backslashes and control characters escaped) appended at out[*at],
 * never past n - 1; 0 when it did not fit (out is then left as it was). */
static int json_put(char *out, size_t n, size_t *at, const char *s, int quote) {
    size_t k = *at;
    if (quote && k + 1 < n) out[k++] = '"';
    for (; *s && k + 7 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (quote && (c == '"' || c == '\\')) out[k++] = '\\', out[k++] = (char)c;
        else if (quote && c < 0x20) k += (size_t)snprintf(out + k, n - k, "\\u%04x", c);
        else out[k++] = (char)c;
    }
    if (*s || k + 2 >= n) return 0;
    if (quote) out[k++] = '"';
    out[k] = 0;
    *at = k;
    return 1;
}

/* {"quantize": ..., "prune": ...} from the model's metadata; each value is the JSON object the
 * command wrote, kept as it is when it looks like one, else as a string. */
static void model_recipe(const il_graph *g, char *out, size_t n) {
    static const char *const keys[] = {"quantize", "prune"};
    size_t at = 0;
    out[0] = 0;
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof key, "inferlab.%s", keys[i]);
        const char *v = il_graph_get_meta(g, key);
        if (!v || !v[0]) continue;
        size_t keep = at;
        int obj = v[0] == '{' && v[strlen(v) - 1] == '}';
        if (!json_put(out, n, &at, at ? ", " : "{", 0) || !json_put(out, n, &at, keys[i], 1) ||
            !json_put(out, n, &at, ": ", 0) || !json_put(out, n, &at, v, !obj)) {
            at = keep; /* too long for the record: left out whole, never cut inside */
            out[at] = 0;
        }
    }
    if (at && !json_put(out, n, &at, "}", 0)) out[0] = 0;
}

/* {node: zero fraction of its constant weight} over Conv, Gemm and MatMul (and their fused
 * forms); layers past what fits are left out and counted in "...": N. */
static void layer_sparsity(const il_graph *g, char *out, size_t n) {
    size_t at = 0;
    int left = 0, any = 0;
    out[0] = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const il_node *nd = &g->nodes[k];
        if (nd->dead || nd->n_inputs < 2 || nd->inputs[1] < 0) continue;
        if (!strstr(nd->op_type, "Conv") && !strstr(nd->op_type, "Gemm") && !strstr(nd->op_type, "MatMul")) continue;
        const il_tensor *w = g->values[nd->inputs[1]].constant;
        if (!w || !il_dtype_is_float(w->dtype) || w->rank < 2) continue;
        int64_t z = 0, m = il_tensor_numel(w);
        for (int64_t i = 0; i < m; i++) z += il_tensor_get(w, i) == 0.0;
        char num[32];
        snprintf(num, sizeof num, ": %.4f", m ? (double)z / (double)m : 0.0);
        size_t keep = at;
        if (!left && (!json_put(out, n - 24, &at, any ? ", " : "{", 0) ||
                      !json_put(out, n - 24, &at, nd->name ? nd->name : "", 1) || !json_put(out, n - 24, &at, num, 0))) {
            at = keep;
            out[at] = 0;
        }
        if (at == keep) left++;
        else any = 1;
    }
    if (left && any) at += (size_t)snprintf(out + at, n - at, ", \"...\": %d", left);
    if (any) snprintf(out + at, n - at, "}");
}

il_status il_bench_model_facts(const char *path, const il_graph *g, il_run_record *r) {
    struct stat sb;
    il_status st;
    if (stat(path, &sb)) return il_error(IL_ERR_IO, "%s: %s", path, strerror(errno));
    r->model_bytes = (int64_t)sb.st_size;
    /* External weights count towards the size on disk: add model.onnx.data when present. */
    char data[IL_PATH_MAX + 8];
    snprintf(data, sizeof data, "%s.data", path);
    if (!stat(data, &sb)) r->model_bytes += (int64_t)sb.st_size;
    if ((st = il_sha256_file(path, r->model_sha256))) return st;
    int64_t params = 0, wz = 0, wn = 0, f32 = 0, f16 = 0, i8 = 0;
    for (int i = 0; i < g->n_values; i++) {
        const il_tensor *t = g->values[i].constant;
        if (!t) continue;
        int64_t n = il_tensor_numel(t);
        params += n;
        if (t->dtype == IL_F32) f32 += n;
        if (t->dtype == IL_F16 || t->dtype == IL_BF16) f16 += n;
        if (t->dtype == IL_I8 || t->dtype == IL_U8) i8 += n;
        if (t->rank >= 2 && il_dtype_is_float(t->dtype)) {
            for (int64_t k = 0; k < n; k++) wz += il_tensor_get(t, k) == 0.0;
            wn += n;
        }
    }
    r->params = params;
    r->sparsity = wn ? (double)wz / (double)wn : NAN;
    int int8 = 0;
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[k].dead && is_int8_op(&g->nodes[k])) int8 = 1;
    /* fused integer ops have names of their own: most weights in 8 bits says int8 as well */
    if (i8 > f32) int8 = 1;
    model_recipe(g, r->recipe, sizeof r->recipe);
    layer_sparsity(g, r->layer_sparsity, sizeof r->layer_sparsity);
    snprintf(r->precision, sizeof r->precision, "%s", int8 ? "int8" : f16 > f32 ? "fp16" : "fp32");
    il_shapes *s;
    if (!il_infer_shapes(g, 1, NULL, 0, &s)) {
        int64_t macs = 0;
        for (int k = 0; k < g->n_nodes; k++)
            if (!g->nodes[k].dead) macs += il_node_macs(g, s, k);
        r->flops = 2 * macs;
        il_shapes_free(s);
    }
    il_error_clear();
    /* named after the model given, not the derived file measured (DB.variants/...) */
    il_model_name(r->v.model[0] ? r->v.model : path, r->model_name, sizeof r->model_name);
    if (!r->model_name[0] || !strcmp(r->model_name, "model"))
        snprintf(r->model_name, sizeof r->model_name, "%s", g->name && g->name[0] ? g->name : "model");
    return IL_OK;
}

void il_evalset_free(il_evalset *e) {
    il_tensor_free(e->x);
    free(e->y);
    memset(e, 0, sizeof *e);
}

/* The data set a model was made for: its metadata says, or its shape does (Fashion-MNIST is
 * the embedded default: 1x28x28 or 784 inputs, 10 classes). */
static const char *guess_dataset(const il_graph *g) {
    const char *m = il_graph_get_meta(g, "inferlab.dataset");
    if (m && m[0]) return m;
    if (g->n_inputs != 1 || g->n_outputs < 1) return NULL;
    const il_value *x = &g->values[g->inputs[0]], *y = &g->values[g->outputs[0]];
    int64_t per = 1;
    for (int d = 1; d < x->rank; d++) per *= x->dims[d];
    if (x->dtype == IL_F32 && per == 784 && y->rank == 2 && y->dims[1] == 10) return "fashion-mnist";
    return NULL;
}

il_status il_bench_evalset(const il_graph *g, const il_variant *v, int64_t limit, uint64_t seed, il_evalset *e) {
    memset(e, 0, sizeof *e);
    if (g->n_inputs != 1) return IL_OK; /* accuracy and agreement are for single-input models */
    const il_value *x = &g->values[g->inputs[0]];
    if (x->dtype != IL_F32 || x->rank < 1) return IL_OK;
    int64_t dims[IL_MAX_RANK], per = 1;
    for (int d = 1; d < x->rank; d++) {
        if (x->dims[d] < 0) return IL_OK;
        dims[d] = x->dims[d];
        per *= x->dims[d];
    }
    const char *spec = v->dataset[0] ? v->dataset : guess_dataset(g);
    il_status st;
    if (spec && strcmp(spec, "none")) {
        char full[300];
        il_dataset *d;
        il_preproc p;
        snprintf(full, sizeof full, "%s%s", spec, strchr(spec, ':') ? "" : ":test");
        if ((st = il_data_load(full, IL_SPLIT_TEST, &d))) return il_error_wrap(st, "data set %s: ", full);
        if ((st = il_preproc_from_meta(g, &p)) || (st = il_preproc_geometry(&p, d))) {
            il_data_free(d);
            return st;
        }
        if ((int64_t)d->c * d->h * d->w != per) {
            il_data_free(d);
            return il_error(IL_ERR_SHAPE, "data set %s has %dx%dx%d samples; the model's input takes %lld values",
                            full, d->c, d->h, d->w, (long long)per);
        }
        int64_t n = limit > 0 && limit < d->n ? limit : d->n;
        dims[0] = n;
        e->x = il_tensor_new(IL_F32, x->rank, dims);
        e->y = malloc((size_t)n * sizeof *e->y);
        int64_t *idx = malloc((size_t)n * sizeof *idx);
        if (!e->x || !e->y || !idx) {
            free(idx);
            il_data_free(d);
            il_evalset_free(e);
            return il_error(IL_ERR_OOM, "out of memory for %lld evaluation samples", (long long)n);
        }
        for (int64_t i = 0; i < n; i++) idx[i] = i, e->y[i] = d->y[i];
        il_preproc_batch(&p, d, idx, (int)n, 0, NULL, e->x->data);
        free(idx);
        e->n = n;
        snprintf(e->name, sizeof e->name, "%.*s", (int)sizeof e->name - 1, full);
        il_data_free(d);
        return IL_OK;
    }
    /* No labelled set: seeded random inputs still measure agreement with the parent. */
    int64_t n = limit > 0 && limit < 256 ? limit : 256;
    dims[0] = n;
    if (!(e->x = il_tensor_new(IL_F32, x->rank, dims))) return IL_ERR_OOM;
    uint64_t rng = seed * 0x9E3779B97F4A7C15ULL + 3;
    il_tensor_fill_random(e->x, &rng, -1, 1);
    e->n = n;
    snprintf(e->name, sizeof e->name, "random");
    return IL_OK;
}

il_status il_bench_inputs(const il_graph *g, const il_evalset *e, int b, uint64_t seed, il_tensor **in) {
    uint64_t rng = seed * 0x9E3779B97F4A7C15ULL + 11;
    for (int i = 0; i < g->n_inputs; i++) {
        const il_value *x = &g->values[g->inputs[i]];
        int64_t dims[IL_MAX_RANK];
        if (x->rank < 0) return il_error(IL_ERR_SHAPE, "input '%s' has no shape in the model", x->name);
        for (int d = 0; d < x->rank; d++) {
            dims[d] = x->dims[d];
            if (d == 0 && (dims[d] < 0 || x->dim_param[d])) dims[d] = b;
            else if (dims[d] < 0)
                return il_error(IL_ERR_SHAPE, "input '%s': dim %d ('%s') is symbolic; bench binds only the batch dim",
                                x->name, d, x->dim_param[d] ? x->dim_param[d] : "?");
        }
        if (!(in[i] = il_tensor_new(x->dtype, x->rank, dims))) return il_error_wrap(IL_ERR_OOM, "input '%s': ", x->name);
        if (e && e->x && i == 0 && in[i]->dtype == IL_F32) {
            /* the evaluation set's first samples, repeated when the batch is larger than it */
            int64_t per = il_tensor_numel(in[i]) / (dims[0] ? dims[0] : 1);
            for (int64_t s = 0; s < dims[0]; s++)
                memcpy((float *)in[i]->data + s * per, (float *)e->x->data + (s % e->n) * per, (size_t)per * 4);
        } else {
            il_graph_fill_input(g, i, in[i], &rng);
        }
    }
    return IL_OK;
}

il_status il_bench_outputs(const il_graph *g, const il_evalset *e, int b, il_backend bk, int threads, il_tensor **out) {
    il_tensor *x = e->x;
    il_plan_opts po = {.backend = bk, .threads = threads};
    return il_bench_eval_outputs(g, &x, e->n, b, &po, NULL, out);
}

static int64_t argmax(const float *v, int64_t k) {
    int64_t best = 0;
    for (int64_t i = 1; i < k; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

void il_bench_accuracy(const il_tensor *out, const il_evalset *e, il_run_record *r) {
    if (!out || !e->y || out->dtype != IL_F32) return;
    int64_t n = e->n, k = il_tensor_numel(out) / n, c1 = 0, c5 = 0;
    const float *o = out->data;
    for (int64_t i = 0; i < n; i++) {
        const float *v = o + i * k;
        float want = v[e->y[i]];
        int64_t above = 0; /* classes scored strictly higher than the true one */
        for (int64_t j = 0; j < k; j++) above += v[j] > want;
        c1 += above == 0;
        c5 += above < 5;
    }
    r->top1 = (double)c1 / (double)n;
    r->top5 = k >= 5 ? (double)c5 / (double)n : NAN;
    r->accuracy_samples = n;
    snprintf(r->dataset, sizeof r->dataset, "%s", e->name);
}

void il_bench_agreement(const il_tensor *out, const il_tensor *parent, il_run_record *r) {
    if (!out || !parent || il_tensor_numel(out) != il_tensor_numel(parent) || out->rank < 1) return;
    int64_t n = out->dims[0], k = il_tensor_numel(out) / n, agree = 0;
    const float *a = out->data, *b = parent->data;
    double cos_sum = 0, mx = 0;
    int64_t cos_n = 0;
    for (int64_t i = 0; i < n; i++) {
        agree += argmax(a + i * k, k) == argmax(b + i * k, k);
        double dot = 0, na = 0, nb = 0;
        for (int64_t j = 0; j < k; j++) {
            double x = a[i * k + j], y = b[i * k + j];
            dot += x * y, na += x * x, nb += y * y;
            if (fabs(x - y) > mx || isnan(x - y)) mx = fabs(x - y);
        }
        /* cosine per sample, averaged: one bad sample is not hidden by many large ones */
        if (na > 0 && nb > 0) cos_sum += dot / sqrt(na * nb), cos_n++;
    }
    r->agree_top1 = (double)agree / (double)n;
    r->max_abs_err = mx;
    r->cosine = cos_n ? cos_sum / (double)cos_n : NAN;
}
