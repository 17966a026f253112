/*
 * check.c - `inferlab check PATH...`: run tests in the ONNX backend-test layout
 * (model.onnx + test_data_set_N/{input,output}_K.pb) and compare every output.
 * One line per test, then exactly "N passed, N failed, N skipped"; exit 1 on any failure.
 */
#include "cli.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    double rtol, atol;
    int reference, threads, verbose;
    int passed, failed, skipped;
    FILE *json; /* --json: the results gather here (a memory stream) and print as one object */
} check_opts;

/* One test's result: a line, or an entry of the JSON list. */
static void result(check_opts *o, const char *what, const char *name, const char *why) {
    if (!o->json) {
        printf(why ? "%s %s: %s\n" : "%s %s\n", what, name, why);
        return;
    }
    fprintf(o->json, "%s{\"name\":", o->passed + o->failed + o->skipped ? "," : "");
    cli_json_str(o->json, name);
    fprintf(o->json, ",\"result\":\"%s\"", what);
    if (why) {
        fprintf(o->json, ",\"why\":");
        cli_json_str(o->json, why);
    }
    fputc('}', o->json);
}

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static int is_file(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted entries of dir whose names start with prefix; caller frees. */
static char **list_dir(const char *dir, const char *prefix, int *n) {
    DIR *d = opendir(dir);
    char **v = NULL;
    *n = 0;
    if (!d) return NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix))) continue;
        v = realloc(v, (size_t)(*n + 1) * sizeof *v);
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*n) qsort(v, (size_t)*n, sizeof *v, cmpstr);
    return v;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Load <dir>/<prefix>_K.pb for K = 0.. in numeric order. */
static il_status load_set(const char *dir, const char *prefix, il_tensor ***out, int *n) {
    char path[4096];
    *out = NULL;
    *n = 0;
    for (int k = 0;; k++) {
        snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, k);
        if (!is_file(path)) break;
        il_tensor *t;
        il_status st = il_tensor_load_pb(path, &t, NULL);
        if (st) return st;
        *out = realloc(*out, (size_t)(k + 1) * sizeof **out);
        (*out)[k] = t;
        *n = k + 1;
    }
    return IL_OK;
}

static void free_set(il_tensor **t, int n) {
    for (int i = 0; i < n; i++) il_tensor_free(t[i]);
    free(t);
}

static const char *base(const char *p) {
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    static char b[512];
    size_t s = n;
    while (s > 0 && p[s - 1] != '/') s--;
    snprintf(b, sizeof b, "%.*s", (int)(n - s), p + s);
    return b;
}

static void skip(check_opts *o, const char *name, const char *why) {
    result(o, "SKIP", name, why);
    o->skipped++;
}

static void fail(check_opts *o, const char *name, const char *why) {
    result(o, "FAIL", name, why);
    o->failed++;
}

/* An unsupported op, dtype or data kind is a skip; anything else a failure. */
static void report_error(check_opts *o, const char *name, il_status st) {
    const char *m = il_errmsg();
    if (st == IL_ERR_UNSUPPORTED) skip(o, name, m);
    else fail(o, name, m);
}

/* ONNX's test generator wrote bfloat16 tensors as uint16 (numpy has no bfloat16): take the
 * bits as bfloat16 where the model says so. */
static void bf16_from_u16(il_tensor *t, il_dtype want) {
    if (t && t->dtype == IL_U16 && want == IL_BF16) t->dtype = IL_BF16;
}

static void run_test(check_opts *o, const char *dir) {
    char name[512], path[4096];
    snprintf(name, sizeof name, "%s", base(dir));
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    il_graph *g;
    il_status st = il_onnx_load(path, &g);
    if (st) { report_error(o, name, st); return; }
    st = il_graph_verify(g);
    if (st) { report_error(o, name, st); il_graph_free(g); return; }
    for (int i = 0; i < g->n_inputs; i++) {
        il_dtype t = g->values[g->inputs[i]].dtype;
        if (!il_dtype_is_supported(t)) {
            char why[128];
            snprintf(why, sizeof why, "unsupported dtype %s", t == IL_UNDEFINED ? "sequence/optional" : il_dtype_name(t));
            skip(o, name, why);
            il_graph_free(g);
            return;
        }
    }
    int nsets;
    char **sets = list_dir(dir, "test_data_set_", &nsets);
    il_plan_opts po = {.threads = o->threads, .reference = o->reference, .loose_shapes = 1};
    il_plan *p = NULL;
    int ok = 1, ran = 0;
    for (int s = 0; s < nsets && ok; s++) {
        char sd[4096];
        snprintf(sd, sizeof sd, "%s/%s", dir, sets[s]);
        il_tensor **in = NULL, **want = NULL;
        int nin = 0, nwant = 0;
        st = load_set(sd, "input", &in, &nin);
        if (!st) st = load_set(sd, "output", &want, &nwant);
        if (st) { report_error(o, name, st); ok = 0; }
        for (int i = 0; i < nin && i < g->n_inputs; i++) bf16_from_u16(in[i], g->values[g->inputs[i]].dtype);
        for (int i = 0; i < nwant && i < g->n_outputs; i++) bf16_from_u16(want[i], g->values[g->outputs[i]].dtype);
        if (ok && nin != g->n_inputs) {
            char why[256];
            snprintf(why, sizeof why, "the test gives %d inputs, the model has %d", nin, g->n_inputs);
            fail(o, name, why);
            ok = 0;
        }
        if (ok && !p) {
            st = il_plan_create(g, &po, &p);
            if (st) { report_error(o, name, st); ok = 0; }
        }
        if (ok) {
            st = il_plan_run(p, in, nin);
            if (st) { report_error(o, name, st); ok = 0; }
        }
        for (int k = 0; ok && k < nwant && k < il_plan_n_outputs(p); k++) {
            char msg[512], why[700];
            const il_tensor *got = il_plan_output(p, k);
            if (!il_tensor_allclose(got, want[k], o->rtol, o->atol, NULL, msg, sizeof msg)) {
                snprintf(why, sizeof why, "output %d, %s", k, msg);
                fail(o, name, why);
                ok = 0;
            }
        }
        if (ok) ran++;
        free_set(in, nin);
        free_set(want, nwant);
    }
    if (ok && ran == 0) skip(o, name, "no test data sets");
    else if (ok) { result(o, "PASS", name, NULL); o->passed++; }
    fflush(stdout);
    il_plan_free(p);
    free_list(sets, nsets);
    il_graph_free(g);
}

static void walk(check_opts *o, const char *path) {
    char m[4200];
    snprintf(m, sizeof m, "%s/model.onnx", path);
    if (is_file(m)) { run_test(o, path); return; }
    if (!is_dir(path)) {
        char why[4400];
        snprintf(why, sizeof why, "no such test folder (want %s)", m);
        fail(o, base(path), why);
        return;
    }
    int n;
    char **e = list_dir(path, "", &n);
    int found = 0;
    for (int i = 0; i < n; i++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e[i]);
        snprintf(m, sizeof m, "%s/model.onnx", sub);
        if (is_file(m) || is_dir(sub)) {
            walk(o, sub);
            found = 1;
        }
    }
    if (!found) fail(o, base(path), "folder holds no model.onnx tests");
    free_list(e, n);
}

int cmd_check(int argc, char **argv) {
    check_opts o = {.rtol = 1e-3, .atol = 1e-4, .threads = 0};
    int npaths = 0, json = 0;
    char *jbuf = NULL;
    size_t jlen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--rtol")) { if (!cli_double(a, argv[++i < argc ? i : 0], &o.rtol)) return 2; }
        else if (!strcmp(a, "--atol")) { if (!cli_double(a, argv[++i < argc ? i : 0], &o.atol)) return 2; }
        else if (!strcmp(a, "--reference")) o.reference = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--threads")) {
            long long t;
            if (!cli_int(a, i + 1 < argc ? argv[++i] : NULL, &t)) return 2;
            o.threads = (int)t;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: inferlab check PATH... [--rtol R] [--atol A] [--reference] [--threads T] [--json]\n"
                   "  PATH: a test folder (model.onnx, test_data_set_*/input_*.pb, output_*.pb) or a folder of them\n"
                   "  defaults: rtol 1e-3, atol 1e-4; --reference runs the reference kernels only\n");
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "inferlab check: unknown option '%s'\n", a);
            return 2;
        } else npaths++;
    }
    if (!npaths) { fprintf(stderr, "usage: inferlab check PATH... [--rtol R] [--atol A]\n"); return 2; }
    if (json && !(o.json = open_memstream(&jbuf, &jlen))) { fprintf(stderr, "inferlab check: out of memory\n"); return 1; }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--rtol") || !strcmp(a, "--atol") || !strcmp(a, "--threads")) { i++; continue; }
        if (a[0] == '-' && a[1]) continue;
        walk(&o, a);
    }
    if (o.json) {
        fclose(o.json);
        printf("{\"passed\":%d,\"failed\":%d,\"skipped\":%d,\"tests\":[%s]}\n", o.passed, o.failed, o.skipped,
               jbuf ? jbuf : "");
        free(jbuf);
    } else {
        printf("%d passed, %d failed, %d skipped\n", o.passed, o.failed, o.skipped);
    }
    return o.failed ? 1 : 0;
}
