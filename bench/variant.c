/*
 * variant.c - what to measure: cross products of comma lists, shards of a sweep, and
 * experiment files (YAML, read with libyaml) that declare a sweep and its options.
 */
#include "bench_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void il_bench_defaults(il_bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->db = "results.db";
    il_scenario_defaults(&o->sc, IL_SC_SINGLE_STREAM);
    o->trials = 3;
    o->accuracy_samples = 0;
    o->seed = 1;
    o->cache_dir = NULL;
    o->experiment = "";
}

/* ---- comma lists */

#define MAX_ITEMS 64

static int split(const char *s, const char *dflt, char items[][IL_PATH_MAX], int max) {
    const char *p = s && s[0] ? s : dflt;
    int n = 0;
    while (p && *p && n < max) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        while (len && (*p == ' ')) p++, len--;
        while (len && p[len - 1] == ' ') len--;
        if (len) snprintf(items[n++], IL_PATH_MAX, "%.*s", (int)len, p);
        p = c ? c + 1 : NULL;
    }
    return n;
}

static il_status parse_int(const char *what, const char *s, int lo, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > 1 << 20)
        return il_error(IL_ERR_INVALID, "%s: expected an integer >= %d, got '%s'", what, lo, s);
    *out = (int)v;
    return IL_OK;
}

static int known(const char *s, const char *const *set) {
    for (; *set; set++)
        if (!strcmp(s, *set)) return 1;
    return 0;
}

/* Folders that say how a model was stored, not what it is (transformers' exports put
 * model.onnx in onnx/): the name is taken one level up. */
static int generic_folder(const char *s, size_t len) {
    return !len || (len == 1 && s[0] == '.') || (len == 4 && !strncmp(s, "onnx", 4));
}

void il_model_name(const char *path, char *buf, size_t n) {
    char full[IL_PATH_MAX];
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".onnx")) len -= 5;
    if (!(len == 5 && !strncmp(base, "model", 5))) {
        snprintf(buf, n, "%.*s", (int)len, base);
        return;
    }
    /* model.onnx (the ONNX zoo and export layout): the folder names the model */
    if (!realpath(path, full)) snprintf(full, sizeof full, "%s", path);
    char *end = strrchr(full, '/');
    while (end && end > full) {
        *end = 0;
        char *start = strrchr(full, '/');
        start = start ? start + 1 : full;
        if (!generic_folder(start, strlen(start))) {
            snprintf(buf, n, "%s", start);
            return;
        }
        end = start - 1;
    }
    snprintf(buf, n, "model");
}

void il_label_short(const char *label, size_t width, char *out, size_t n) {
    unsigned char h[32];
    if (strlen(label) <= width || width < 10) {
        snprintf(out, n, "%s", label);
        return;
    }
    il_sha256(label, strlen(label), h);
    snprintf(out, n, "%.*s~%02x%02x%02x%02x", (int)(width - 9), label, h[0], h[1], h[2], h[3]);
}

void il_variant_label(const il_variant *v, char *buf, size_t n) {
    if (v->label[0]) {
        snprintf(buf, n, "%s", v->label);
        return;
    }
    char name[128], full[IL_PATH_MAX + 300], arith[32];
    il_model_name(v->model, name, sizeof name);
    /* the arithmetic asked for and CUDA graphs belong to what a row is: "resnet50 O0 fp16 graphs" */
    snprintf(arith, sizeof arith, "%s%s%s", v->precision[0] ? " " : "", v->precision, v->graphs ? " graphs" : "");
    if (strcmp(v->engine, "inferlab")) snprintf(full, sizeof full, "%s %s%s [%s]", name, v->pipeline, arith, v->engine);
    else snprintf(full, sizeof full, "%s %s%s", name, v->pipeline, arith);
    /* Too long for the table (a long pass list): cut, keeping it unique with a hash of the whole
     * label, so two pipelines sharing a prefix never share a row name. */
    il_label_short(full, n - 1, buf, n);
}

/* "on"/"off" (and 1/0, yes/no, true/false) for --graphs. */
static il_status parse_onoff(const char *s, int *on) {
    static const char *const yes[] = {"on", "1", "yes", "true", NULL}, *const no[] = {"off", "0", "no", "false", NULL};
    if (known(s, yes)) *on = 1;
    else if (known(s, no)) *on = 0;
    else return il_error(IL_ERR_INVALID, "graphs: expected on or off, got '%s'", s);
    return IL_OK;
}

/* What an engine/backend can run: a precision other than fp32 and CUDA graphs are the GPU's,
 * and the ONNX Runtime peer measures neither. */
static il_status arith_check(const char *engine, const char *backend, const char *prec, int graphs) {
    int other = prec[0] && strcmp(prec, "fp32");
    if ((other || graphs) && strcmp(backend, "cuda"))
        return il_error(IL_ERR_INVALID, "%s%s%s is for --backend cuda (the %s computes float32): measure the %s "
                        "variants in another command or experiment group", other ? "precision " : "", other ? prec : "",
                        graphs ? (other ? " and graphs" : "graphs") : "", backend, backend);
    if ((other || graphs) && !strcmp(engine, "onnxruntime"))
        return il_error(IL_ERR_INVALID, "engine onnxruntime: the peer measures fp32 without graphs only (precision "
                        "and graphs apply to inferlab and pytorch)");
    return IL_OK;
}

il_status il_sweep_expand(const il_sweep *s, il_variant **out, int *n) {
    static const char *const engines[] = {"inferlab", "onnxruntime", "pytorch", NULL};
    static const char *const backends[] = {"cpu", "cuda", NULL};
    static char m[MAX_ITEMS][IL_PATH_MAX], pl[MAX_ITEMS][IL_PATH_MAX], en[8][IL_PATH_MAX], bk[4][IL_PATH_MAX];
    static char ba[MAX_ITEMS][IL_PATH_MAX], th[16][IL_PATH_MAX], sc[8][IL_PATH_MAX];
    int nm = split(s->models, NULL, m, MAX_ITEMS), np = split(s->pipelines, "O0", pl, MAX_ITEMS);
    int ne = split(s->engines, "inferlab", en, 8), nk = split(s->backends, "cpu", bk, 4);
    int nb = split(s->batches, "1", ba, MAX_ITEMS), nt = split(s->threads, "0", th, 16);
    int ns = split(s->scenarios, "single-stream", sc, 8);
    static char pr[4][IL_PATH_MAX], gr[2][IL_PATH_MAX];
    int npr = split(s->precisions, NULL, pr, 4), ngr = split(s->graphs, "off", gr, 2), gv[2];
    if (!npr) pr[0][0] = 0, npr = 1; /* not asked for: one unnamed precision */
    il_status st;
    *out = NULL;
    *n = 0;
    if (nm == 0) return il_error(IL_ERR_INVALID, "no model given (--model a.onnx[,b.onnx])");
    for (int i = 0; i < ne; i++)
        if (!known(en[i], engines))
            return il_error(IL_ERR_INVALID, "unknown engine '%s' (inferlab, onnxruntime, pytorch)", en[i]);
    for (int i = 0; i < nk; i++)
        if (!known(bk[i], backends)) return il_error(IL_ERR_INVALID, "unknown backend '%s' (cpu, cuda)", bk[i]);
    int bv[MAX_ITEMS], tv[16];
    il_scenario_kind sv[8];
    for (int i = 0; i < np; i++)
        if (strlen(pl[i]) > 255) return il_error(IL_ERR_INVALID, "pipeline '%.40s...' is longer than 255 characters", pl[i]);
    for (int i = 0; i < nb; i++)
        if ((st = parse_int("batch", ba[i], 1, &bv[i]))) return st;
    for (int i = 0; i < nt; i++) {
        if ((st = parse_int("threads", th[i], 0, &tv[i]))) return st;
        if (tv[i] == 0) tv[i] = il_num_cores(); /* record the real count, not "default" */
    }
    for (int i = 0; i < ns; i++)
        if ((st = il_scenario_parse(sc[i], &sv[i]))) return st;
    for (int i = 0; i < npr; i++)
        if (pr[i][0] && il_precision_parse(pr[i]) < 0)
            return il_error(IL_ERR_INVALID, "unknown precision '%s' (fp32, tf32, fp16, bf16)", pr[i]);
    for (int i = 0; i < ngr; i++)
        if ((st = parse_onoff(gr[i], &gv[i]))) return st;
    for (int c = 0; c < ne; c++)
        for (int d = 0; d < nk; d++)
            for (int i = 0; i < npr; i++)
                for (int j = 0; j < ngr; j++)
                    if ((st = arith_check(en[c], bk[d], pr[i], gv[j]))) return st;
    size_t total = (size_t)nm * np * ne * nk * nb * nt * ns * npr * ngr;
    il_variant *v = calloc(total ? total : 1, sizeof *v);
    if (!v) return il_error(IL_ERR_OOM, "out of memory for %zu variants", total);
    int k = 0;
    for (int a = 0; a < nm; a++)
        for (int b = 0; b < np; b++)
            for (int c = 0; c < ne; c++)
                for (int d = 0; d < nk; d++)
                    for (int e = 0; e < nb; e++)
                        for (int f = 0; f < nt; f++)
                            for (int g = 0; g < ns; g++)
                                for (int h = 0; h < npr * ngr; h++, k++) {
                                snprintf(v[k].model, sizeof v[k].model, "%.*s", IL_PATH_MAX - 1, m[a]);
                                snprintf(v[k].pipeline, sizeof v[k].pipeline, "%.255s", pl[b]);
                                snprintf(v[k].engine, sizeof v[k].engine, "%.15s", en[c]);
                                snprintf(v[k].backend, sizeof v[k].backend, "%.15s", bk[d]);
                                v[k].batch = bv[e];
                                v[k].threads = tv[f];
                                v[k].scenario = sv[g];
                                if (s->parent) snprintf(v[k].parent, sizeof v[k].parent, "%s", s->parent);
                                if (s->dataset) snprintf(v[k].dataset, sizeof v[k].dataset, "%s", s->dataset);
                                if (s->label) snprintf(v[k].label, sizeof v[k].label, "%s", s->label);
                                snprintf(v[k].precision, sizeof v[k].precision, "%.7s", pr[h / ngr]);
                                v[k].graphs = gv[h % ngr];
                            }
    *out = v;
    *n = k;
    return IL_OK;
}

void il_variants_shard(il_variant *v, int *n, int shard, int of) {
    int k = 0;
    for (int i = 0; i < *n; i++)
        if (i % of == shard) v[k++] = v[i];
    *n = k;
}

/* ---- experiment files */

/* Strings from the file that options point at; they live until the next load. */
static char arena[1 << 16];
static size_t arena_used;

static const char *keep(const char *s) {
    size_t len = strlen(s) + 1;
    if (arena_used + len > sizeof arena) return NULL;
    char *p = arena + arena_used;
    memcpy(p, s, len);
    arena_used += len;
    return p;
}

/* A scalar, or a sequence of scalars joined with commas (commas inside an item - an explicit
 * pipeline - become '+', which the harness reads as the same separator). */
static il_status value_text(yaml_document_t *d, yaml_node_t *v, const char *key, const char **out) {
    char buf[8192];
    buf[0] = 0;
    if (v->type == YAML_SCALAR_NODE) {
        snprintf(buf, sizeof buf, "%.*s", (int)v->data.scalar.length, (const char *)v->data.scalar.value);
    } else if (v->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            yaml_node_t *x = yaml_document_get_node(d, *it);
            if (!x || x->type != YAML_SCALAR_NODE)
                return il_error(IL_ERR_PARSE, "line %zu: '%s' must be a scalar or a list of scalars",
                                v->start_mark.line + 1, key);
            size_t used = strlen(buf);
            snprintf(buf + used, sizeof buf - used, "%s%.*s", used ? "," : "", (int)x->data.scalar.length,
                     (const char *)x->data.scalar.value);
            for (char *p = buf + used + (used ? 1 : 0); *p; p++)
                if (*p == ',') *p = '+';
        }
    } else {
        return il_error(IL_ERR_PARSE, "line %zu: '%s' must be a scalar or a list", v->start_mark.line + 1, key);
    }
    if (!(*out = keep(buf))) return il_error(IL_ERR_OOM, "experiment file too large");
    return IL_OK;
}

static il_status num(const char *key, const char *s, double *out) {
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (errno || end == s || *end) return il_error(IL_ERR_PARSE, "'%s' expects a number, got '%s'", key, s);
    return IL_OK;
}

/* Dimension keys of a sweep (top level: defaults; in a group: that group's values). */
static const char **sweep_field(il_sweep *s, const char *key) {
    if (!strcmp(key, "model") || !strcmp(key, "models")) return &s->models;
    if (!strcmp(key, "pipeline") || !strcmp(key, "pipelines")) return &s->pipelines;
    if (!strcmp(key, "engine") || !strcmp(key, "engines")) return &s->engines;
    if (!strcmp(key, "backend") || !strcmp(key, "backends")) return &s->backends;
    if (!strcmp(key, "batch") || !strcmp(key, "batches")) return &s->batches;
    if (!strcmp(key, "threads")) return &s->threads;
    if (!strcmp(key, "scenario") || !strcmp(key, "scenarios")) return &s->scenarios;
    if (!strcmp(key, "parent")) return &s->parent;
    if (!strcmp(key, "dataset")) return &s->dataset;
    if (!strcmp(key, "label")) return &s->label;
    if (!strcmp(key, "precision") || !strcmp(key, "precisions")) return &s->precisions;
    if (!strcmp(key, "graphs")) return &s->graphs;
    return NULL;
}

static il_status option(il_bench_opts *o, const char *key, const char *val) {
    double x;
    il_status st = IL_OK;
    if (!strcmp(key, "name")) o->experiment = val;
    else if (!strcmp(key, "db")) o->db = val;
    else if (!strcmp(key, "cache")) o->cache_dir = val;
    else if (!strcmp(key, "profile")) o->profile = !strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "yes");
    else if (!strcmp(key, "find_max_qps"))
        o->find_max_qps = !strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "yes");
    else if ((st = num(key, val, &x))) return il_error_wrap(st, "experiment option: ");
    /* converting a double outside the target type's range is undefined: every numeric option
     * fits an int (counts) or stays below 2^53 (seeds, query counts) - found by fuzzing */
    else if (!(fabs(x) <= 9007199254740992.0))
        return il_error(IL_ERR_PARSE, "experiment option %s: %s is out of range", key, val);
    else if ((!strcmp(key, "trials") || !strcmp(key, "warmup") || !strcmp(key, "samples_per_query")) &&
             !(fabs(x) <= 2147483647.0))
        return il_error(IL_ERR_PARSE, "experiment option %s: %s is out of range", key, val);
    else if (!strcmp(key, "seed") && x < 0)
        return il_error(IL_ERR_PARSE, "experiment option seed: %s is negative", val);
    else if (!strcmp(key, "trials")) o->trials = (int)x;
    else if (!strcmp(key, "warmup")) o->sc.warmup = (int)x;
    else if (!strcmp(key, "min_seconds")) o->sc.min_seconds = x;
    else if (!strcmp(key, "min_queries")) o->sc.min_queries = (int64_t)x;
    else if (!strcmp(key, "max_queries")) o->sc.max_queries = (int64_t)x;
    else if (!strcmp(key, "target_qps")) o->sc.target_qps = x;
    else if (!strcmp(key, "latency_bound_ms")) o->sc.latency_bound_ms = x;
    else if (!strcmp(key, "samples_per_query")) o->sc.samples_per_query = (int)x;
    else if (!strcmp(key, "accuracy_samples")) o->accuracy_samples = (int64_t)x;
    else if (!strcmp(key, "seed")) o->seed = (uint64_t)x;
    else return il_error(IL_ERR_PARSE, "unknown key '%s'", key);
    if (o->trials < 1) return il_error(IL_ERR_PARSE, "trials must be >= 1");
    return IL_OK;
}

/* Append the cross product of group g (over defaults top) to *out. */
static il_status add_group(const il_sweep *top, const il_sweep *g, il_variant **out, int *n) {
    il_sweep s = *top;
    const char *const *src = (const char *const *)g;
    const char **dst = (const char **)&s;
    for (size_t i = 0; i < sizeof s / sizeof(char *); i++)
        if (src[i]) dst[i] = src[i];
    il_variant *v;
    int k;
    il_status st = il_sweep_expand(&s, &v, &k);
    if (st) return st;
    il_variant *all = realloc(*out, (size_t)(*n + k) * sizeof *all);
    if (!all) {
        free(v);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    memcpy(all + *n, v, (size_t)k * sizeof *v);
    free(v);
    *out = all;
    *n += k;
    return IL_OK;
}

static il_status load_doc(yaml_document_t *d, il_bench_opts *o, il_variant **out, int *n) {
    yaml_node_t *root = yaml_document_get_root_node(d);
    il_sweep top;
    memset(&top, 0, sizeof top);
    yaml_node_t *groups = NULL;
    il_status st;
    if (!root || root->type != YAML_MAPPING_NODE) return il_error(IL_ERR_PARSE, "the top level must be a mapping");
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key), *v = yaml_document_get_node(d, p->value);
        if (!k || k->type != YAML_SCALAR_NODE) return il_error(IL_ERR_PARSE, "keys must be scalars");
        const char *key = (const char *)k->data.scalar.value;
        const char **field = sweep_field(&top, key), *val;
        if (!strcmp(key, "variants")) {
            if (v->type != YAML_SEQUENCE_NODE)
                return il_error(IL_ERR_PARSE, "line %zu: 'variants' must be a list of groups", v->start_mark.line + 1);
            groups = v;
            continue;
        }
        if ((st = value_text(d, v, key, &val))) return st;
        if (field) *field = val;
        else if ((st = option(o, key, val))) return il_error_wrap(st, "line %zu: ", k->start_mark.line + 1);
    }
    if (!groups) return add_group(&top, &(il_sweep){0}, out, n);
    for (yaml_node_item_t *it = groups->data.sequence.items.start; it < groups->data.sequence.items.top; it++) {
        yaml_node_t *gn = yaml_document_get_node(d, *it);
        il_sweep g;
        memset(&g, 0, sizeof g);
        if (!gn || gn->type != YAML_MAPPING_NODE)
            return il_error(IL_ERR_PARSE, "line %zu: each variants entry must be a mapping",
                            gn ? gn->start_mark.line + 1 : 0);
        for (yaml_node_pair_t *p = gn->data.mapping.pairs.start; p < gn->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(d, p->key), *v = yaml_document_get_node(d, p->value);
            const char *key = (const char *)k->data.scalar.value;
            const char **field = sweep_field(&g, key);
            if (!field)
                return il_error(IL_ERR_PARSE, "line %zu: unknown variant key '%s' (model, pipeline, engine, backend,"
                                " batch, threads, scenario, precision, graphs, parent, dataset, label)",
                                k->start_mark.line + 1, key);
            if ((st = value_text(d, v, key, field))) return st;
        }
        if ((st = add_group(&top, &g, out, n))) return il_error_wrap(st, "group at line %zu: ", gn->start_mark.line + 1);
    }
    return IL_OK;
}

il_status il_experiment_load(const char *path, il_bench_opts *o, il_variant **out, int *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return il_error(IL_ERR_IO, "%s: cannot open experiment file: %s", path, strerror(errno));
    yaml_parser_t p;
    yaml_document_t d;
    il_status st = IL_OK;
    *out = NULL;
    *n = 0;
    arena_used = 0;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    if (!yaml_parser_load(&p, &d)) {
        st = il_error(IL_ERR_PARSE, "%s:%zu:%zu: %s", path, p.problem_mark.line + 1, p.problem_mark.column + 1,
                      p.problem ? p.problem : "YAML syntax error");
    } else {
        st = load_doc(&d, o, out, n);
        if (st) il_error_wrap(st, "%s: ", path);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    fclose(f);
    if (st) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return st;
}
