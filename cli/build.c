/*
 * build.c - `inferlab build MODEL.onnx -o MODEL.plan [-O0..-O3 | -p PIPELINE] [--batch N] ...`:
 * the seed notes' build step. The passes run, the plan is built (each node's kernel chosen by
 * a forced name, the heuristic or timing, its state prepared, the memory laid out) and written
 * as a plan file that `inferlab run` and `inferlab bench --model` load without doing any of it
 * again. --verbose lists every node's kernel and placement.
 *
 * A cuda plan (--backend cuda [--precision P] [--graphs]) is for the GPU it was built on and its
 * CUDA libraries (the header records them; another GPU refuses it). cuda kernels save no state
 * yet: loading runs their prepare again (uploads, descriptors), which is what the load time shows.
 */
#include "cli.h"
#include "passes/passes.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f, "usage: inferlab build MODEL.onnx -o OUT.plan [-O0..-O3 | -p PIPELINE] [--backend cpu|cuda]\n"
               "                      [--precision fp32|tf32|fp16|bf16] [--graphs]\n"
               "                      [--batch N] [--dim NAME=V] [--shape NAME=DIMS] [--threads T] [--verbose]\n"
               "                      [--kernel OP=NAME,...] [--tactics timed|heuristic] [--timing-cache F] [--plugin P.so]\n"
               "  -O2 by default; the plan is for this machine's CPU, or with --backend cuda for this GPU and its\n"
               "  CUDA libraries (another CPU, GPU or version refuses it); run and bench take its precision and\n"
               "  graphs from the file\n%s",
            cli_engine_help);
}

int cmd_build(int argc, char **argv) {
    const char *shapes[16];
    int n_shapes = 0;
    const char *path = NULL, *out = NULL, *pipeline = NULL;
    long long batch = 1, threads = 0;
    int nb = 0, verbose = 0;
    il_bind binds[16];
    cli_engine e = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_engine_arg(argc, argv, &i, &e);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "-p") || !strcmp(a, "--pipeline")) {
            if (!val || pipeline) { fprintf(stderr, "inferlab build: give one pipeline (-p PIPELINE or -O)\n"); return 2; }
            pipeline = val;
            i++;
        } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            if (pipeline) { fprintf(stderr, "inferlab build: give one pipeline (-p PIPELINE or -O)\n"); return 2; }
            pipeline = il_pass_preset(a[2] - '0');
        } else if (!strcmp(a, "-o")) {
            if (!val) { fprintf(stderr, "inferlab build: -o needs a file name\n"); return 2; }
            out = val;
            i++;
        } else if (!strcmp(a, "--batch")) { if (!cli_int(a, val, &batch) || batch < 1) return 2; i++; }
        else if (!strcmp(a, "--threads")) { if (!cli_int(a, val, &threads) || threads < 0) return 2; i++; }
        else if (!strcmp(a, "--dim")) { if (!cli_add_bind(val, binds, &nb)) return 2; i++; }
        else if (!strcmp(a, "--shape")) { if (!val || n_shapes >= 16) return 2; shapes[n_shapes++] = val; i++; }
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) verbose = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (a[0] == '-') { fprintf(stderr, "inferlab build: unknown option '%s'\n", a); return 2; }
        else if (path) { fprintf(stderr, "inferlab build: one model at a time\n"); return 2; }
        else path = a;
    }
    if (!path || !out) {
        fprintf(stderr, "inferlab build: %s\n", !path ? "no model given" : "no output file (-o OUT.plan)");
        usage(stderr);
        return 2;
    }
    if (!pipeline) pipeline = il_pass_preset(2);
    if (!cli_engine_check(&e)) return 2;
    il_status st = il_pipeline_check(pipeline);
    if (st) return cli_fail(st, NULL);
    il_graph *g = cli_load(path);
    if (!g) return 1;
    if ((st = il_graph_fix_shapes(g, shapes, n_shapes))) { /* before the passes: they fold what it fixes */
        il_graph_free(g);
        return cli_fail(st, path);
    }
    double t0 = il_now();
    il_pass_opts po = {.batch = batch, .binds = binds, .n_binds = nb, .seed = 1};
    if (pipeline[0] && (st = il_pipeline_run(g, pipeline, &po, NULL, 0, NULL))) {
        il_graph_free(g);
        return cli_fail(st, path);
    }
    il_graph_compact(g);
    double t1 = il_now();
    il_plan_opts o = {.batch = batch, .binds = binds, .n_binds = nb, .threads = (int)threads};
    cli_engine_apply(&e, &o);
    il_plan *p;
    if ((st = il_plan_create(g, &o, &p))) {
        il_graph_free(g);
        return cli_fail(st, path);
    }
    double t2 = il_now();
    if ((st = il_plan_save(p, out))) {
        il_plan_free(p);
        il_graph_free(g);
        return cli_fail(st, out);
    }
    double t3 = il_now();
    /* kernels by name, and the nodes' placements */
    const char *names[64];
    int counts[64], nn = 0, live = 0, timed, cached;
    for (int k = 0; k < g->n_nodes; k++) {
        const il_kernel *kn = il_plan_kernel(p, k);
        if (g->nodes[k].dead) continue;
        live++;
        const char *name = kn ? kn->name : "(folded)";
        int j = 0;
        while (j < nn && strcmp(names[j], name)) j++;
        if (j == nn && nn < 64) names[nn] = name, counts[nn++] = 0;
        if (j < nn) counts[j]++;
        const char *why = il_plan_kernel_why(p, k);
        if (verbose)
            printf("  %-40.40s %-20s %-4s %s%s%s\n", g->nodes[k].name, g->nodes[k].op_type,
                   il_plan_on_acc(p, k) ? "cuda" : "cpu", kn ? kn->name : "(folded at build)", why ? "  # " : "",
                   why ? why : "");
    }
    il_plan_tactic_stats(p, &timed, &cached);
    struct stat sb;
    long long fsize = stat(out, &sb) ? -1 : (long long)sb.st_size;
    if (e.backend == IL_BACKEND_CUDA) {
        int acc, fb;
        int64_t up, down;
        il_plan_copies(p, &acc, &fb, &up, &down);
        printf("built %s: %d nodes, %d on cuda (%s%s), %d fell back to the cpu; kernels:", out, live, acc,
               il_precision_name(e.precision), e.graphs ? ", CUDA graphs" : "", fb);
    } else {
        printf("built %s: %d nodes on cpu (no fallback: one backend); kernels:", out, live);
    }
    for (int j = 0; j < nn; j++) printf(" %s x%d%s", names[j], counts[j], j + 1 < nn ? "," : "");
    printf("\n  tactics %s", e.tactics == IL_TACTICS_TIMED ? "timed" : "heuristic");
    if (e.tactics == IL_TACTICS_TIMED) {
        int segs, seg_timed, seg_cached;
        il_plan_segment_stats(p, &segs, &seg_timed, &seg_cached);
        printf(" (%d nodes timed, %d from the cache; picks unlike the heuristic's charged in the plan: ", timed, cached);
        if (seg_cached) printf("from the cache)");
        else if (seg_timed) printf("%d segment%s, plans run)", segs, segs == 1 ? "" : "s");
        else printf("none to charge)");
    }
    printf("; peak activations %.3f MB; file %.3f MB\n", (double)il_plan_peak_bytes(p) / 1e6, (double)fsize / 1e6);
    printf("  build %.3f s: passes %.3f s, plan %.3f s, write %.3f s\n", t3 - t0, t1 - t0, t2 - t1, t3 - t2);
    char head[4096];
    if (e.backend == IL_BACKEND_CUDA && !il_plan_file_read(out, head, sizeof head, NULL)) {
        /* what the header pins the plan to, as it was written */
        const char *gpu = strstr(head, "\ngpu="), *libs = strstr(head, "\ncuda=");
        printf("  for %.*s and %.*s only; cuda kernels keep no saved state: loading prepares them again\n",
               gpu ? (int)strcspn(gpu + 5, "\n") : 0, gpu ? gpu + 5 : "", libs ? (int)strcspn(libs + 6, "\n") : 0,
               libs ? libs + 6 : "");
    }
    il_plan_free(p);
    il_graph_free(g);
    return 0;
}
