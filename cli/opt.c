/*
 * opt.c - `inferlab passes [--plugin P.so]...` lists the optimization passes;
 *         `inferlab opt MODEL.onnx (-p PIPELINE | -O0..-O3) -o OUT.onnx [--verify] [--stats]
 *          [--dump-after NAME] [--plugin P.so]... [--portable] [--batch N] [--dim NAME=V] [--seed S]`
 * rewrites a model with a pass pipeline (passes/passes.h) and writes it back as ONNX.
 */
#include "cli.h"
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

int cmd_passes(int argc, char **argv) {
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: inferlab passes [--plugin P.so]... [--json]\n  lists the passes and the -O presets\n");
            return 0;
        }
        if (!strcmp(argv[i], "--json")) { json = 1; continue; }
        if (strcmp(argv[i], "--plugin")) { fprintf(stderr, "inferlab passes: unknown option '%s'\n", argv[i]); return 2; }
        i++;
    }
    if (!cli_load_plugins(argc, argv)) return 1;
    int n;
    const il_pass *const *all = il_pass_all(&n);
    if (json) {
        printf("{\"passes\":[");
        for (int i = 0; i < n; i++) {
            printf("%s{\"name\":", i ? "," : "");
            cli_json_str(stdout, all[i]->name);
            printf(",\"summary\":");
            cli_json_str(stdout, all[i]->summary ? all[i]->summary : "");
            printf("}");
        }
        printf("],\"presets\":{");
        for (int l = 0; l <= 3; l++) {
            printf("%s\"O%d\":", l ? "," : "", l);
            cli_json_str(stdout, il_pass_preset(l));
        }
        printf("}}\n");
        return 0;
    }
    printf("passes:\n");
    for (int i = 0; i < n; i++) printf("  %-18s %s\n", all[i]->name, all[i]->summary ? all[i]->summary : "");
    printf("\npresets:\n");
    for (int l = 0; l <= 3; l++) printf("  -O%d  %s\n", l, il_pass_preset(l)[0] ? il_pass_preset(l) : "(no passes)");
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: inferlab opt MODEL.onnx (-p PIPELINE | -O0..-O3) -o OUT.onnx [--verify] [--stats]\n"
               "                    [--dump-after NAME|all] [--plugin P.so]... [--portable]\n"
               "                    [--batch N] [--dim NAME=V] [--shape NAME=DIMS] [--seed S] [--rtol R] [--atol A]\n"
               "                    [--min-agree A] [--min-cosine C]\n"
               "  -p             comma-separated pass names (`inferlab passes` lists them)\n"
               "  --verify       after each pass: the IR verifier, then outputs against the original model\n"
               "                 on fresh random inputs (ids within their tables, masks of ones): float32\n"
               "                 |got - want| <= atol x scale + rtol x |want| with scale = max |want| (rtol 1e-3,\n"
               "                 atol 1e-4), cosine >= 1 - 10 rtol, and each row's top-1 unchanged; stops at the\n"
               "                 first pass that breaks equivalence. Outputs that are constant or zero (inputs\n"
               "                 scaled up to x100 first) cannot verify anything: that is an error, not a pass\n"
               "                 Lossy passes (int8) are held to top-1 agreement and cosine instead, on the\n"
               "                 model's evaluation data: --min-agree (0.97) and --min-cosine (0.98)\n"
               "  --stats        per pass: nodes before/after, what it rewrote, time\n"
               "  --portable     write only standard ONNX ops (fused ops are lowered back)\n"
               "  --shape NAME=DIMS  fix an input's shape (e.g. input=1x3x224x224) before the passes, so\n"
               "                 Shape/Gather chains over symbolic dims fold (repeatable)\n");
}

int cmd_opt(int argc, char **argv) {
    const char *path = NULL, *out = NULL, *pipeline = NULL, *dump = NULL;
    int verify = 0, stats = 0, portable = 0, nb = 0;
    long long batch = 0, seed = 1;
    double rtol = 0, atol = 0, min_agree = 0, min_cos = 0;
    il_bind binds[16];
    const char *shapes[16];
    int n_shapes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-p") || !strcmp(a, "--pipeline")) {
            if (!val) { fprintf(stderr, "inferlab opt: %s needs a pipeline\n", a); return 2; }
            if (pipeline) { fprintf(stderr, "inferlab opt: give one pipeline (-p or -O)\n"); return 2; }
            pipeline = val;
            i++;
        } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            if (pipeline) { fprintf(stderr, "inferlab opt: give one pipeline (-p or -O)\n"); return 2; }
            pipeline = il_pass_preset(a[2] - '0');
        } else if (!strcmp(a, "-o")) {
            if (!val) { fprintf(stderr, "inferlab opt: -o needs a file name\n"); return 2; }
            out = val;
            i++;
        } else if (!strcmp(a, "--verify")) verify = 1;
        else if (!strcmp(a, "--stats")) stats = 1;
        else if (!strcmp(a, "--portable")) portable = 1;
        else if (!strcmp(a, "--dump-after")) {
            if (!val) { fprintf(stderr, "inferlab opt: --dump-after needs a pass name\n"); return 2; }
            dump = val;
            i++;
        } else if (!strcmp(a, "--plugin")) {
            if (!val) { fprintf(stderr, "inferlab opt: --plugin needs the path of a .so file\n"); return 2; }
            i++; /* loaded below, before the pipeline is checked */
        } else if (!strcmp(a, "--batch")) { if (!cli_int(a, val, &batch) || batch < 1) return 2; i++; }
        else if (!strcmp(a, "--seed")) { if (!cli_int(a, val, &seed)) return 2; i++; }
        else if (!strcmp(a, "--rtol")) { if (!cli_double(a, val, &rtol) || rtol < 0) return 2; i++; }
        else if (!strcmp(a, "--atol")) { if (!cli_double(a, val, &atol) || atol < 0) return 2; i++; }
        else if (!strcmp(a, "--min-agree") || !strcmp(a, "--min-cosine")) {
            double v;
            if (!cli_double(a, val, &v) || !(v > 0 && v <= 1)) {
                fprintf(stderr, "inferlab opt: %s wants a number in (0, 1]\n", a);
                return 2;
            }
            *(!strcmp(a, "--min-agree") ? &min_agree : &min_cos) = v;
            i++;
        }
        else if (!strcmp(a, "--dim")) { if (!cli_add_bind(val, binds, &nb)) return 2; i++; }
        else if (!strcmp(a, "--shape")) {
            if (!val || n_shapes >= 16) { fprintf(stderr, "inferlab opt: --shape expects NAME=DIMS\n"); return 2; }
            shapes[n_shapes++] = val;
            i++;
        }
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (a[0] == '-') { fprintf(stderr, "inferlab opt: unknown option '%s'\n", a); return 2; }
        else if (path) { fprintf(stderr, "inferlab opt: one model at a time\n"); return 2; }
        else path = a;
    }
    if (!path || !out || !pipeline) {
        fprintf(stderr, "inferlab opt: %s\n", !path ? "no model given" : !out ? "no output file (-o OUT.onnx)" : "no pipeline (-p PIPELINE or -O0..-O3)");
        usage(stderr);
        return 2;
    }
    if (!cli_load_plugins(argc, argv)) return 1;
    /* --portable: the requested passes, then the lowering of whatever they fused */
    char full[8192];
    snprintf(full, sizeof full, "%s%s%s", pipeline, portable && pipeline[0] ? "," : "", portable ? IL_PASS_LOWER : "");
    il_status st = il_pipeline_check(full);
    if (st) return cli_fail(st, NULL);
    il_graph *g = cli_load(path);
    if (!g) return 1;
    /* fixed input shapes first, so the pipeline folds what they make constant */
    if ((st = il_graph_fix_shapes(g, shapes, n_shapes))) {
        il_graph_free(g);
        return cli_fail(st, path);
    }
    il_pass_opts o = {.verify = verify, .stats = stats, .dump_after = dump, .rtol = rtol, .atol = atol,
                      .lossy_agree = min_agree, .lossy_cosine = min_cos,
                      .batch = batch, .binds = binds, .n_binds = nb, .seed = (uint64_t)seed, .log = stdout};
    int before = il_graph_live_nodes(g);
    double t0 = il_now();
    st = il_pipeline_run(g, full, &o, NULL, 0, NULL);
    if (st) {
        il_graph_free(g);
        return cli_fail(st, path);
    }
    double dt = il_now() - t0;
    if ((st = il_onnx_save(g, out))) {
        il_graph_free(g);
        return cli_fail(st, out);
    }
    printf("%s: %d nodes -> %d nodes in %.1f ms%s; wrote %s\n", path, before, il_graph_live_nodes(g), dt * 1e3,
           verify ? ", every pass verified" : "", out);
    il_graph_free(g);
    return 0;
}
