/*
 * bench.c - `inferlab bench`: parse the sweep (flags or an experiment file), keep this shard's
 * variants, and hand them to the harness (bench/).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bench/bench.h"
#include "../passes/passes.h"

static void help(void) {
    printf("usage: inferlab bench --model A.onnx[,B.onnx] [options]    or    inferlab bench --experiment FILE.yaml\n"
           "what to measure (comma lists expand to their cross product):\n"
           "  --model LIST          model files\n"
           "  --pipeline LIST       O0 (as is), O1, O2, O3, or passes joined with '+' (default O0)\n"
           "  --engine LIST         inferlab, onnxruntime, pytorch (default inferlab)\n"
           "  --backend LIST        cpu, cuda (default cpu)\n"
           "  --batch LIST          samples per engine call (default 1)\n"
           "  --threads LIST        threads (default: all cores)\n"
           "  --scenario LIST       single-stream, offline, server, multi-stream (default single-stream)\n"
           "  --precision LIST      backend cuda: fp32, tf32, fp16, bf16 (default fp32); the pytorch peer\n"
           "                        computes in the same one\n"
           "  --graphs [on,off]     backend cuda: capture each run as a CUDA graph and replay it (alone: on)\n"
           "  --parent PATH         FP32 parent for agreement (default: the model a pipeline derives from)\n"
           "  --dataset SPEC        labelled set (fashion-mnist, mnist:DIR, folder:DIR ...; none: skip)\n"
           "  --label NAME          variant name in tables\n"
           "  --input NAME=FILE     the model's input NAME from a .npy/.pb file (repeatable), for timing and\n"
           "                        agreement; samples are cut or repeated to the batch\n"
           "  --inputs DIR          inputs from a folder: NAME.npy, NAME.pb or input_K.pb (ONNX test data)\n"
           "  --shape NAME=DIMS     fix an input's shape before the pipeline (Shape/Gather chains fold)\n"
           "  --experiment FILE     YAML sweep and options (docs/bench.md)\n"
           "how to measure:\n"
           "  --trials N            repeated measurements per run (default 3)\n"
           "  --warmup N            queries before measuring (default 5)\n"
           "  --min-seconds S       minimum duration per trial (default 1)\n"
           "  --min-queries N       minimum queries per trial (default 64)\n"
           "  --max-queries N       cap per trial (default none)\n"
           "  --qps Q               server: target queries per second (default 50)\n"
           "  --latency-bound MS    server: p99 bound (default 10)\n"
           "  --find-max-qps        server: search the highest QPS meeting the bound\n"
           "  --spq K               multi-stream: samples per query (default 8)\n"
           "  --profile             per-node times into the database (separate profiled pass)\n"
           "  --accuracy-samples N  evaluation samples (default: the whole test set)\n"
           "  --eval all|inferlab|none  the accuracy/agreement pass after timing: for every variant, for\n"
           "                        inferlab's only (a peer's costs one more process), or none (default all)\n"
           "  --copies              backend cuda: time each run with its host copies (default: the device\n"
           "                        alone, inputs kept on it, as the PyTorch peer is timed)\n"
           "  --seed S              inputs and arrivals (default 1)\n"
           "  --max-spread F        a run whose trials' p50s differ by more than F of their median is\n"
           "                        INVALID (default 0.10); so is one whose trials miss --min-seconds or\n"
           "                        --min-queries\n"
           "  --interleave N        run the trials of N variants in turn, A B A B (default 8; 1: one after\n"
           "                        the other)\n"
           "  --wait auto|spin|passive  OpenMP wait policy (default auto: spin only for single-stream and\n"
           "                        server on an idle machine; recorded with each run)\n"
           "where:\n"
           "  --db PATH             results database (default results.db)\n"
           "  --shard I/N           measure only variants with index %% N == I (I from 0)\n"
           "  --cache DIR           derived models (default: DB.variants/ beside the database)\n"
           "  --peers DIR           folder of ort_bench.js / torch_bench.py\n"
           "  --name NAME           experiment name stored with each run\n"
           "  --plugin P.so         load a pass plugin (its passes may appear in --pipeline)\n"
           "  --quiet               no per-run lines (errors still go to stderr)\n"
           "  --dry-run             list the variants (and check their pipelines) and stop\n"
           "  --no-fork             measure in this process (debugging; host peak memory is not recorded)\n"
           "  --tactics timed|heuristic  inferlab's kernel per node: timed on its shapes at plan time, or by\n"
           "                        priority (default heuristic); --timing-cache FILE keeps timed choices\n");
}

/* A NAME=VALUE flag value appended to list (at most max), or a message and 0. */
static int add_spec(const char *flag, const char *val, const char *what, const char **list, int *n, int max) {
    if (!val || !strchr(val, '=') || *n >= max) {
        fprintf(stderr, "inferlab bench: %s expects NAME=%s%s\n", flag, what, *n >= max ? " (too many)" : "");
        return 0;
    }
    list[(*n)++] = val;
    return 1;
}

int cmd_bench(int argc, char **argv) {
    il_bench_opts o;
    il_sweep sw;
    il_bench_defaults(&o);
    memset(&sw, 0, sizeof sw);
    const char *experiment = NULL;
    long long shard = 0, shards = 1;
    int dry = 0, dims = 0;
    const char *wait = "auto";
    static const char *in_specs[64], *shapes[16];
    int n_in = 0, n_shapes = 0;
    static char cache[IL_PATH_MAX];
    /* The experiment file first, so that flags given with it override its options. */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--experiment")) experiment = argv[i + 1];
    il_variant *v = NULL;
    int n = 0;
    if (experiment) {
        il_status st = il_experiment_load(experiment, &o, &v, &n);
        if (st) return cli_fail(st, NULL);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long long x;
        double d;
        const char **dim = !strcmp(a, "--model") || !strcmp(a, "-m") ? &sw.models
                           : !strcmp(a, "--pipeline")                 ? &sw.pipelines
                           : !strcmp(a, "--engine")                   ? &sw.engines
                           : !strcmp(a, "--backend")                  ? &sw.backends
                           : !strcmp(a, "--batch")                    ? &sw.batches
                           : !strcmp(a, "--threads")                  ? &sw.threads
                           : !strcmp(a, "--scenario")                 ? &sw.scenarios
                           : !strcmp(a, "--parent")                   ? &sw.parent
                           : !strcmp(a, "--dataset")                  ? &sw.dataset
                           : !strcmp(a, "--label")                    ? &sw.label
                           : !strcmp(a, "--precision")                ? &sw.precisions
                                                                      : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            free(v);
            return 0;
        }
        if (dim) {
            if (!val) { fprintf(stderr, "inferlab bench: %s needs a value\n", a); return 2; }
            *dim = val, dims = 1, i++;
        } else if (!strcmp(a, "--graphs")) { /* a flag, or the axis: on, off, on,off */
            int list = val && strspn(val, "onfyesrut01,") == strlen(val) && val[0];
            sw.graphs = list ? val : "on", dims = 1;
            i += list;
        } else if (!strcmp(a, "--experiment")) i++;
        else if (!strcmp(a, "--db")) { if (!val) return 2; o.db = val; i++; }
        else if (!strcmp(a, "--cache")) { if (!val) return 2; o.cache_dir = val; i++; }
        else if (!strcmp(a, "--peers")) { if (!val) return 2; o.peers_dir = val; i++; }
        else if (!strcmp(a, "--name")) { if (!val) return 2; o.experiment = val; i++; }
        else if (!strcmp(a, "--trials")) { if (!cli_int(a, val, &x) || x < 1) return 2; o.trials = (int)x; i++; }
        else if (!strcmp(a, "--warmup")) { if (!cli_int(a, val, &x) || x < 0) return 2; o.sc.warmup = (int)x; i++; }
        else if (!strcmp(a, "--min-seconds")) { if (!cli_double(a, val, &d) || d < 0) return 2; o.sc.min_seconds = d; i++; }
        else if (!strcmp(a, "--min-queries")) { if (!cli_int(a, val, &x) || x < 1) return 2; o.sc.min_queries = x; i++; }
        else if (!strcmp(a, "--max-queries")) { if (!cli_int(a, val, &x) || x < 0) return 2; o.sc.max_queries = x; i++; }
        else if (!strcmp(a, "--qps")) { if (!cli_double(a, val, &d) || !(d > 0)) return 2; o.sc.target_qps = d; i++; }
        else if (!strcmp(a, "--latency-bound")) { if (!cli_double(a, val, &d) || !(d > 0)) return 2; o.sc.latency_bound_ms = d; i++; }
        else if (!strcmp(a, "--spq")) { if (!cli_int(a, val, &x) || x < 1) return 2; o.sc.samples_per_query = (int)x; i++; }
        else if (!strcmp(a, "--accuracy-samples")) { if (!cli_int(a, val, &x) || x < 0) return 2; o.accuracy_samples = x; i++; }
        else if (!strcmp(a, "--seed")) { if (!cli_int(a, val, &x)) return 2; o.seed = (uint64_t)x; i++; }
        else if (!strcmp(a, "--max-spread")) { if (!cli_double(a, val, &d) || !(d > 0)) return 2; o.max_spread = d; i++; }
        else if (!strcmp(a, "--interleave")) { if (!cli_int(a, val, &x) || x < 1) return 2; o.interleave = (int)x; i++; }
        else if (!strcmp(a, "--wait")) { if (!cli_wait_flag(val, &wait)) return 2; i++; }
        else if (!strcmp(a, "--plugin")) { if (!val) return 2; i++; } /* loaded below */
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) o.quiet = 1;
        else if (!strcmp(a, "--input")) { if (!add_spec(a, val, "FILE (.npy or .pb)", in_specs, &n_in, 64)) return 2; i++; }
        else if (!strcmp(a, "--inputs")) { if (!val) return 2; o.inputs_dir = val; i++; }
        else if (!strcmp(a, "--shape")) { if (!add_spec(a, val, "DIMS (e.g. input=1x3x224x224)", shapes, &n_shapes, 16)) return 2; i++; }
        else if (!strcmp(a, "--find-max-qps")) o.find_max_qps = 1;
        else if (!strcmp(a, "--profile")) o.profile = 1;
        else if (!strcmp(a, "--dry-run")) dry = 1;
        else if (!strcmp(a, "--no-fork")) o.no_fork = 1;
        else if (!strcmp(a, "--copies")) o.copies = 1;
        else if (!strcmp(a, "--eval")) {
            if (!val || (strcmp(val, "all") && strcmp(val, "inferlab") && strcmp(val, "none"))) {
                fprintf(stderr, "inferlab bench: --eval all|inferlab|none\n");
                return 2;
            }
            o.eval = !strcmp(val, "all") ? IL_EVAL_ALL : !strcmp(val, "inferlab") ? IL_EVAL_INFERLAB : IL_EVAL_NONE;
            i++;
        }
        else if (!strcmp(a, "--tactics")) {
            if (!val || (strcmp(val, "timed") && strcmp(val, "heuristic"))) { fprintf(stderr, "inferlab bench: --tactics timed|heuristic\n"); return 2; }
            o.tactics = !strcmp(val, "timed") ? IL_TACTICS_TIMED : IL_TACTICS_HEURISTIC;
            i++;
        } else if (!strcmp(a, "--timing-cache")) { if (!val) return 2; o.timing_cache = val; i++; }
        else if (!strcmp(a, "--shard")) {
            if (!val || sscanf(val, "%lld/%lld", &shard, &shards) != 2 || shards < 1 || shard < 0 || shard >= shards) {
                fprintf(stderr, "inferlab bench: --shard expects I/N with 0 <= I < N, got '%s'\n", val ? val : "");
                return 2;
            }
            i++;
        } else {
            fprintf(stderr, "inferlab bench: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    o.inputs = in_specs;
    o.n_inputs = n_in;
    o.shapes = shapes;
    o.n_shapes = n_shapes;
    if (experiment && dims) {
        fprintf(stderr, "inferlab bench: give the sweep in the experiment file or as flags, not both\n");
        free(v);
        return 2;
    }
    if (!experiment) {
        if (!sw.models) {
            fprintf(stderr, "usage: inferlab bench --model A.onnx[,B.onnx] [options] (see --help)\n");
            return 2;
        }
        il_status st = il_sweep_expand(&sw, &v, &n);
        if (st) return cli_fail(st, NULL);
    }
    if (!o.cache_dir) {
        /* beside the database and named after it, so results.db* patterns cover it too */
        snprintf(cache, sizeof cache, "%.*s.variants", IL_PATH_MAX - 16, o.db);
        o.cache_dir = cache;
    }
    /* the OpenMP wait policy first: choosing it may run the program again */
    /* every scenario: an offline query at batch 1 is a single-stream query without the gaps
     * (the demo teacher's offline b1 p50 went 0.49-1.01 ms across three quiet runs, passive) */
    if (!dry) cli_wait_policy(wait, 1);
    if (!cli_load_plugins(argc, argv)) {
        free(v);
        return 1;
    }
    /* a plan file was built for one backend, precision and graphs setting: its variants take them
     * from its header, and asking for others is an error now, not in a measuring child */
    for (int i = 0; i < n; i++) {
        if (!il_plan_file_is(v[i].model)) continue;
        il_variant asked = v[i];
        il_status st = il_bench_plan_target(v[i].model, &v[i]);
        /* what was asked for: a flag given, or in an experiment file a value other than the default */
        int gave_bk = sw.backends || (experiment && strcmp(asked.backend, "cpu"));
        int gave_pr = sw.precisions || (experiment && asked.precision[0]), gave_gr = sw.graphs || (experiment && asked.graphs);
        if (!st && ((gave_bk && strcmp(asked.backend, v[i].backend)) || (gave_pr && strcmp(asked.precision, v[i].precision)) ||
                    (gave_gr && asked.graphs != v[i].graphs)))
            st = il_error(IL_ERR_INVALID, "%s was built for backend %s%s%s%s: give --backend, --precision and --graphs to "
                          "`inferlab build`, not to bench", v[i].model, v[i].backend, v[i].precision[0] ? ", precision " : "",
                          v[i].precision, v[i].graphs ? ", CUDA graphs" : "");
        if (st) {
            cli_fail(st, NULL);
            free(v);
            return 2;
        }
    }
    /* one batch rule: a model with a fixed batch is measured at it (and says so) unless a batch
     * was asked for, which is then an error - found now, not in a measuring child */
    int64_t *fixed_of = calloc((size_t)n + 1, sizeof *fixed_of); /* per variant: its model's fixed batch, 0 if none */
    if (!fixed_of) {
        free(v);
        return cli_fail(il_error(IL_ERR_OOM, "out of memory"), NULL);
    }
    for (int i = 0; i < n; i++) {
        int64_t fixed = 0, use;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            if (!strcmp(v[j].model, v[i].model)) seen = 1, fixed = fixed_of[j];
        if (!seen) {
            il_graph *g = cli_load(v[i].model);
            if (!g) {
                free(v);
                free(fixed_of);
                return 1;
            }
            il_status st = il_graph_fix_shapes(g, shapes, n_shapes); /* --shape may fix the batch too */
            fixed = il_graph_fixed_batch(g);
            if (!st) st = il_graph_batch(g, sw.batches || experiment ? v[i].batch : 0, &use);
            il_graph_free(g);
            if (st) {
                cli_fail(st, v[i].model);
                free(v);
                free(fixed_of);
                return 1;
            }
            if (fixed > 0 && !sw.batches && !experiment && !o.quiet)
                fprintf(stderr, "inferlab bench: %s has a fixed batch of %lld: measured at it\n", v[i].model,
                        (long long)fixed);
        }
        fixed_of[i] = fixed;
        if (fixed > 0) v[i].batch = (int)fixed;
    }
    free(fixed_of);
    /* every pipeline's passes must exist now, not fail later in a measuring child */
    for (int i = 0; i < n; i++) {
        const char *p = v[i].pipeline;
        if (p[0] == 'O' && p[1] >= '0' && p[1] <= '9' && !p[2]) continue;
        char list[256];
        snprintf(list, sizeof list, "%s", p);
        for (char *c = list; *c; c++)
            if (*c == '+') *c = ',';
        il_status st = il_pipeline_check(list);
        if (st) {
            cli_fail(st, p);
            free(v);
            return 1;
        }
    }
    int total = n;
    il_variants_shard(v, &n, (int)shard, (int)shards);
    if (dry || shards > 1)
        printf("%d variant%s%s", n, n == 1 ? "" : "s", shards > 1 ? "" : "\n");
    if (shards > 1) printf(" (shard %lld/%lld of %d)\n", shard, shards, total);
    if (dry) {
        for (int i = 0; i < n; i++) {
            char lab[200];
            il_variant_label(&v[i], lab, sizeof lab);
            printf("  %-30s %-11s %-4s batch %-4d threads %-3d %s\n", lab, v[i].engine, v[i].backend, v[i].batch,
                   v[i].threads, il_scenario_name(v[i].scenario));
        }
        free(v);
        return 0;
    }
    o.progress = isatty(2) && !o.quiet;
    int failed = 0;
    il_status st = il_bench_run(&o, v, n, &failed);
    free(v);
    if (st) return cli_fail(st, NULL);
    if (failed == n) {
        fprintf(stderr, "inferlab bench: %s failed (messages above); nothing was stored in %s\n",
                n == 1 ? "the variant" : "every variant", o.db);
        return 1;
    }
    if (failed) {
        fprintf(stderr, "inferlab bench: %d of %d variants failed (messages above); the other %d are in %s\n", failed,
                n, n - failed, o.db);
        return 1;
    }
    return 0;
}
