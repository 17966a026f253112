/*
 * run.c - `inferlab run MODEL.onnx [--input NAME=FILE]... [--batch N] [--seed S] [--threads T]
 *          [--out DIR] [--format npy|pb] [--topk K] [--repeat N] [--warmup N] [--dim NAME=V]
 *          [--reference] [--json] [--quiet]`
 * Inputs come from .pb/.npy files or are random (seeded); outputs are summarized and saved.
 * Timing goes through the harness's single-stream scheduler (bench/scenario.c) with its
 * steady-state warm-up, so `run --repeat N` and `bench` measure the same way.
 */
#include "cli.h"
#include "bench/bench.h"
#include "passes/passes.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void json_output(const char *name, const il_tensor *t, int first) {
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    int64_t n = il_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double x = il_tensor_get(t, i);
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        sum += x;
    }
    printf("%s{\"name\":", first ? "" : ",");
    cli_json_str(stdout, name);
    printf(",\"dtype\":\"%s\",\"shape\":[", il_dtype_name(t->dtype));
    for (int d = 0; d < t->rank; d++) printf("%s%lld", d ? "," : "", (long long)t->dims[d]);
    if (n) printf("],\"min\":%.9g,\"max\":%.9g,\"mean\":%.9g}", mn, mx, sum / (double)n);
    else printf("]}");
}

static void summarize(const char *name, const il_tensor *t, int topk) {
    char b[256];
    int64_t n = il_tensor_numel(t);
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    int64_t nan = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = il_tensor_get(t, i);
        if (isnan(x)) { nan++; continue; } /* NaN compares false: it would leave min inf, max -inf */
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        sum += x;
    }
    printf("output %s: %s%s", name, il_dtype_name(t->dtype), il_shape_str(t->rank, t->dims, b, sizeof b));
    if (n > nan) printf("  min %.6g  max %.6g  mean %.6g", mn, mx, sum / (double)(n - nan));
    if (nan) printf("  %s%lld NaN", nan == n ? "all " : "", (long long)nan);
    printf("\n");
    /* class scores: [N, C] (or [C]) floats; show the top k of the first rows */
    if (topk <= 0 || !il_dtype_is_float(t->dtype) || t->rank < 1 || t->rank > 2) return;
    int64_t rows = t->rank == 2 ? t->dims[0] : 1, cls = t->dims[t->rank - 1];
    if (cls < 2) return;
    int k = topk < cls ? topk : (int)cls;
    for (int64_t r = 0; r < rows && r < 4; r++) {
        printf("  row %lld top-%d:", (long long)r, k);
        int *used = calloc((size_t)cls, sizeof(int));
        for (int j = 0; j < k; j++) {
            int64_t best = -1;
            for (int64_t c = 0; c < cls; c++)
                if (!used[c] && (best < 0 || il_tensor_get(t, r * cls + c) > il_tensor_get(t, r * cls + best))) best = c;
            used[best] = 1;
            printf(" %lld (%.4g)", (long long)best, il_tensor_get(t, r * cls + best));
        }
        free(used);
        printf("\n");
    }
}

/* Time per op type, largest first (--profile): each node's fastest of the runs (on a busy
 * machine one run's times are mostly other processes' time slices). */
static void print_profile(const il_graph *g, const il_plan *p, const double *t, long long runs) {
    const char **op = calloc((size_t)g->n_nodes + 1, sizeof *op);
    double *sum = calloc((size_t)g->n_nodes + 1, sizeof *sum), total = 0;
    int *cnt = calloc((size_t)g->n_nodes + 1, sizeof *cnt), n = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        int j = 0;
        while (j < n && strcmp(op[j], g->nodes[k].op_type)) j++;
        if (j == n) op[n++] = g->nodes[k].op_type;
        sum[j] += t[k];
        cnt[j]++;
        total += t[k];
    }
    printf("profile (min of %lld run%s): %-20s %5s %10s %6s\n", runs, runs == 1 ? "" : "s", "op", "nodes", "ms", "share");
    for (int r = 0; r < n; r++) {
        int best = -1;
        for (int j = 0; j < n; j++)
            if (cnt[j] && (best < 0 || sum[j] > sum[best])) best = j;
        printf("                          %-20s %5d %10.3f %5.1f%%\n", op[best], cnt[best], sum[best] * 1e3,
               total > 0 ? 100 * sum[best] / total : 0);
        cnt[best] = 0;
    }
    /* and the slowest nodes, with their output shapes */
    char b[128];
    const il_shapes *sh = il_plan_shapes(p);
    unsigned char *shown = calloc((size_t)g->n_nodes + 1, 1);
    /* INFERLAB_PROFILE_NODES=N lists N nodes instead of 8 (every node: a large N) */
    const char *e = getenv("INFERLAB_PROFILE_NODES");
    int top = e && atoi(e) > 0 ? atoi(e) : 8;
    printf("slowest nodes:\n");
    for (int r = 0; r < top && r < g->n_nodes; r++) {
        int best = -1;
        for (int k = 0; k < g->n_nodes; k++)
            if (!shown[k] && (best < 0 || t[k] > t[best])) best = k;
        shown[best] = 1;
        const il_node *nd = &g->nodes[best];
        const il_tensor *o = nd->n_outputs && nd->outputs[0] >= 0 ? &sh->info[nd->outputs[0]] : NULL;
        const il_kernel *kn = il_plan_kernel(p, best);
        printf("  %8.3f ms  %-16s %-14s %-24s %s\n", t[best] * 1e3, nd->op_type, kn ? kn->name : "(folded)",
               o ? il_shape_str(o->rank, o->dims, b, sizeof b) : "", nd->name);
    }
    free(shown);
    free(op);
    free(sum);
    free(cnt);
}

static il_status run_once(void *ctx, int samples) {
    void **c = ctx;
    (void)samples;
    il_status st = c[3] ? il_plan_rerun(c[0]) : il_plan_run(c[0], c[1], *(int *)c[2]);
    double *best = c[4]; /* profile: each node's fastest run so far (warm-up runs included) */
    const double *t = best ? il_plan_node_times(c[0]) : NULL;
    if (t)
        for (int k = 0; k < il_plan_graph(c[0])->n_nodes; k++)
            if (best[k] < 0 || t[k] < best[k]) best[k] = t[k];
    return st;
}

int cmd_run(int argc, char **argv) {
    const char *path = NULL, *outdir = NULL, *format = "npy", *wait = "auto";
    long long batch = 0, seed = 1, threads = 0, topk = 5, repeat = 1, warmup = 5;
    int resident = 0;
    int nb = 0, reference = 0, nspec = 0, profile = 0, json = 0, quiet = 0;
    il_bind binds[16];
    const char *spec[64];
    cli_engine e = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int er = cli_engine_arg(argc, argv, &i, &e);
        if (er < 0) return 2;
        if (er) continue;
        if (!strcmp(a, "--batch")) { if (!cli_int(a, val, &batch) || batch < 1) return 2; i++; }
        else if (!strcmp(a, "--seed")) { if (!cli_int(a, val, &seed)) return 2; i++; }
        else if (!strcmp(a, "--threads")) { if (!cli_int(a, val, &threads) || threads < 0) return 2; i++; }
        else if (!strcmp(a, "--topk")) { if (!cli_int(a, val, &topk)) return 2; i++; }
        else if (!strcmp(a, "--resident")) resident = 1;
        else if (!strcmp(a, "--repeat")) { if (!cli_int(a, val, &repeat) || repeat < 1) return 2; i++; }
        else if (!strcmp(a, "--warmup")) { if (!cli_int(a, val, &warmup) || warmup < 0) return 2; i++; }
        else if (!strcmp(a, "--wait")) { if (!cli_wait_flag(val, &wait)) return 2; i++; }
        else if (!strcmp(a, "--dim")) { if (!cli_add_bind(val, binds, &nb)) return 2; i++; }
        else if (!strcmp(a, "--out")) { if (!val) return 2; outdir = val; i++; }
        else if (!strcmp(a, "--format")) {
            if (!val || (strcmp(val, "npy") && strcmp(val, "pb"))) { fprintf(stderr, "inferlab run: --format npy|pb\n"); return 2; }
            format = val;
            i++;
        } else if (!strcmp(a, "--input")) {
            if (!val || !strchr(val, '=') || nspec >= 64) { fprintf(stderr, "inferlab run: --input expects NAME=FILE\n"); return 2; }
            spec[nspec++] = val;
            i++;
        } else if (!strcmp(a, "--reference")) reference = 1;
        else if (!strcmp(a, "--profile")) profile = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: inferlab run MODEL.onnx [--input NAME=FILE]... [--batch N] [--seed S] [--threads T]\n"
                   "                    [--out DIR] [--format npy|pb] [--topk K] [--repeat N] [--warmup N]\n"
                   "                    [--dim NAME=V] [--reference] [--profile] [--wait auto|spin|passive]\n"
                   "                    [--json] [--quiet] [--kernel OP=NAME,...] [--tactics timed|heuristic] [--plugin P.so]\n"
                   "  MODEL may be a plan file from `inferlab build` (loaded as built: its kernels, no passes)\n"
                   "  inputs not given are random (seeded): floats in [-1,1); integer ids below the size of the\n"
                   "  table a Gather looks them up in, masks of ones; FILE is .npy or .pb (ONNX TensorProto)\n"
                   "  --resident  accelerator: time the device alone (inputs stay on it from a first run, outputs\n"
                   "              are not copied back), as GPU figures of PyTorch and TensorRT are taken\n"
                   "  --repeat N  time N runs after a warm-up of at least --warmup N (default 5) runs that goes on\n"
                   "              until the run time settles (as bench does); prints p50, min and max\n"
                   "  --batch N   for a model with a symbolic batch dim; a fixed batch is used as it is\n"
                   "  --json      one JSON object on stdout; --quiet: nothing but errors\n%s",
                   cli_engine_help);
            return 0;
        } else if (a[0] == '-') { fprintf(stderr, "inferlab run: unknown option '%s'\n", a); return 2; }
        else if (path) { fprintf(stderr, "inferlab run: one model at a time\n"); return 2; }
        else path = a;
    }
    if (!path) { fprintf(stderr, "usage: inferlab run MODEL.onnx [options] (see --help)\n"); return 2; }
    if (!cli_engine_check(&e)) return 2;
    cli_wait_policy(wait, 1);
    il_plan *p = NULL;
    il_graph *own = NULL;
    const il_graph *g;
    if (il_plan_file_is(path)) { /* built already: no passes, no kernel choice, no layout */
        double t0 = il_now();
        il_plan_opts lo = {.threads = (int)threads, .profile = profile};
        il_status ls = il_plan_load(path, &lo, &p);
        if (ls) return cli_fail(ls, NULL);
        if (!json && !quiet) printf("loaded plan %s in %.3f ms\n", path, (il_now() - t0) * 1e3);
        g = il_plan_graph(p);
    } else {
        g = own = cli_load(path);
        if (!g) return 1;
    }
    int rc = 1;
    il_tensor **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    int64_t use_batch = 1;
    il_status st = il_graph_batch(g, batch, &use_batch);
    if (!st && !batch && il_graph_fixed_batch(g) > 1 && !json && !quiet)
        printf("batch %lld (fixed by the model)\n", (long long)use_batch);
    batch = use_batch;
    for (int s = 0; s < nspec && !st; s++) {
        const char *eq = strchr(spec[s], '=');
        int found = -1;
        for (int i = 0; i < g->n_inputs; i++)
            if (strlen(g->values[g->inputs[i]].name) == (size_t)(eq - spec[s]) &&
                !strncmp(g->values[g->inputs[i]].name, spec[s], (size_t)(eq - spec[s])))
                found = i;
        if (found < 0) {
            st = il_error(IL_ERR_INVALID, "--input %s: the model has no input named '%.*s'", spec[s], (int)(eq - spec[s]), spec[s]);
            break;
        }
        if (in[found]) {
            st = il_error(IL_ERR_INVALID, "--input %.*s is given twice", (int)(eq - spec[s]), spec[s]);
            break;
        }
        st = il_tensor_load(eq + 1, &in[found]);
    }
    uint64_t rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int i = 0; i < g->n_inputs && !st; i++) {
        if (in[i]) continue;
        in[i] = cli_random_input(g, i, batch, binds, nb, &rng);
        if (!in[i]) st = IL_ERR_INVALID;
    }
    il_plan_opts po = {.batch = batch, .binds = binds, .n_binds = nb, .threads = (int)threads, .reference = reference,
                       .profile = profile};
    cli_engine_apply(&e, &po);
    if (!st && !p) st = il_plan_create(g, &po, &p);
    il_trial t;
    memset(&t, 0, sizeof t);
    double *best = NULL;
    if (!st) {
        il_scenario sc;
        il_scenario_defaults(&sc, IL_SC_SINGLE_STREAM);
        sc.warmup = (int)warmup;
        sc.min_seconds = 0;
        sc.min_queries = sc.max_queries = repeat;
        int n_in = g->n_inputs;
        if (profile) {
            best = malloc(((size_t)il_plan_graph(p)->n_nodes + 1) * sizeof *best);
            for (int k = 0; best && k <= il_plan_graph(p)->n_nodes; k++) best[k] = -1;
        }
        void *ctx[5] = {p, in, &n_in, NULL, best};
        if (resident) { /* one real run puts the inputs on the device; the timed ones reuse them */
            st = il_plan_run(p, in, n_in);
            ctx[3] = p;
        }
        if (!st) st = il_scenario_run(&sc, run_once, ctx, &t);
    }
    if (st) {
        cli_fail(st, path);
        goto done;
    }
    if (json) {
        printf("{\"model\":");
        cli_json_str(stdout, path);
        printf(",\"outputs\":[");
        for (int i = 0; i < il_plan_n_outputs(p); i++) json_output(g->values[g->outputs[i]].name, il_plan_output(p, i), !i);
        printf("],\"time_ms\":{\"runs\":%lld,\"warmup_runs\":%lld,\"steady\":%s,\"p50\":%.6g,\"min\":%.6g,\"max\":%.6g,"
               "\"mean\":%.6g},\"peak_activation_bytes\":%lld,\"wait_policy\":",
               (long long)t.n, (long long)t.warmup_n, t.steady ? "true" : "false", t.lat.p50, t.lat.min, t.lat.max,
               t.lat.mean, (long long)il_plan_peak_bytes(p));
        cli_json_str(stdout, getenv("INFERLAB_WAIT") ? getenv("INFERLAB_WAIT") : "environment");
        printf("}\n");
    } else if (!quiet) {
        for (int i = 0; i < il_plan_n_outputs(p); i++) summarize(g->values[g->outputs[i]].name, il_plan_output(p, i), (int)topk);
        printf("time: p50 %.3f ms over %lld run%s (min %.3f, max %.3f, mean %.3f) after %lld warm-up runs%s; "
               "peak activations %.3f MB\n",
               t.lat.p50, (long long)t.n, t.n == 1 ? "" : "s", t.lat.min, t.lat.max, t.lat.mean, (long long)t.warmup_n,
               warmup == 0 ? " (cold)" : t.steady ? "" : " (not settled)", (double)il_plan_peak_bytes(p) / 1e6);
        if (profile && best) print_profile(g, p, best, (long long)(t.n + t.warmup_n));
    }
    if (outdir) {
        if (mkdir(outdir, 0755) && errno != EEXIST) {
            fprintf(stderr, "inferlab: cannot create %s: %s\n", outdir, strerror(errno));
            goto done;
        }
        for (int i = 0; i < il_plan_n_outputs(p); i++) {
            char fn[4096];
            snprintf(fn, sizeof fn, "%s/output_%d.%s", outdir, i, format);
            const il_tensor *o = il_plan_output(p, i);
            st = !strcmp(format, "pb") ? il_tensor_save_pb(o, g->values[g->outputs[i]].name, fn) : il_tensor_save_npy(o, fn);
            if (st) { cli_fail(st, fn); goto done; }
            if (!json && !quiet) printf("wrote %s\n", fn);
        }
    }
    rc = 0;
done:
    il_trial_free(&t);
    free(best);
    for (int i = 0; i < g->n_inputs; i++) il_tensor_free(in[i]);
    free(in);
    il_plan_free(p);
    il_graph_free(own);
    return rc;
}
