/*
 * zoo.c - `inferlab zoo [NAME -o model.onnx ...]`: list the model zoo, or build one model
 * with seeded Kaiming weights and write it as ONNX.
 */
#include "cli.h"
#include "distill/distill.h"

#include <stdlib.h>
#include <string.h>

static void zoo_usage(FILE *f) {
    fprintf(f, "usage: inferlab zoo [list] [--json]      list the models with parameters and MACs\n"
               "       inferlab zoo NAME -o model.onnx [--classes K] [--input CxHxW] [--width W] [--seed S]\n");
}

/* "CxHxW" into three positive ints. */
static int cli_parse_chw(const char *s, int *c, int *h, int *w) {
    if (!s || sscanf(s, "%dx%dx%d", c, h, w) != 3 || *c < 1 || *h < 1 || *w < 1) {
        fprintf(stderr, "inferlab: --input expects CxHxW (for example 1x28x28), got '%s'\n", s ? s : "");
        return 0;
    }
    return 1;
}

static int list_models(int json) {
    int n;
    const il_zoo_entry *m = il_zoo_models(&n);
    if (json) printf("{\"models\":[");
    else printf("%-13s %-10s %10s %12s  %s\n", "model", "input", "params", "MACs", "about");
    for (int i = 0; i < n; i++) {
        il_zoo_opts o;
        il_zoo_defaults(&o);
        o.c = m[i].c, o.h = m[i].h, o.w = m[i].w;
        il_graph *g;
        int64_t params = 0, macs = 0;
        il_status st = il_zoo_build(m[i].name, &o, &g);
        if (!st) {
            st = il_model_stats(g, &params, &macs);
            il_graph_free(g);
        }
        if (st) return cli_fail(st, m[i].name);
        char in[32];
        snprintf(in, sizeof in, "%dx%dx%d", m[i].c, m[i].h, m[i].w);
        if (json) {
            printf("%s{\"name\":", i ? "," : "");
            cli_json_str(stdout, m[i].name);
            printf(",\"input\":[%d,%d,%d],\"params\":%lld,\"macs\":%lld,\"about\":", m[i].c, m[i].h, m[i].w,
                   (long long)params, (long long)macs);
            cli_json_str(stdout, m[i].about);
            printf("}");
            continue;
        }
        printf("%-13s %-10s %10lld %12lld  %s\n", m[i].name, in, (long long)params, (long long)macs, m[i].about);
    }
    if (json) {
        printf("]}\n");
        return 0;
    }
    printf("\nMACs are multiply-accumulates for one image (FLOPs ~ 2 x MACs); any model takes --input and --width.\n");
    return 0;
}

int cmd_zoo(int argc, char **argv) {
    if (argc < 2 || (argc == 2 && !strcmp(argv[1], "list"))) return list_models(0);
    if ((argc == 2 && !strcmp(argv[1], "--json")) || (argc == 3 && !strcmp(argv[1], "list") && !strcmp(argv[2], "--json")))
        return list_models(1);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        zoo_usage(stdout);
        return 0;
    }
    const char *name = argv[1], *outp = NULL;
    il_zoo_opts o;
    il_zoo_defaults(&o);
    int n;
    const il_zoo_entry *m = il_zoo_models(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(m[i].name, name)) o.c = m[i].c, o.h = m[i].h, o.w = m[i].w;
    for (int i = 2; i < argc; i++) {
        long long v;
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-o")) {
            if (!val) { fprintf(stderr, "inferlab: -o needs a file name\n"); return 2; }
            outp = val, i++;
        } else if (!strcmp(a, "--classes")) {
            if (!cli_int(a, val, &v) || v < 2 || v > 100000) return 2;
            o.classes = (int)v, i++;
        } else if (!strcmp(a, "--width")) {
            if (!cli_int(a, val, &v) || v < 1 || v > 4096) return 2;
            o.width = (int)v, i++;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_int(a, val, &v) || v < 0) return 2;
            o.seed = (uint64_t)v, i++;
        } else if (!strcmp(a, "--input")) {
            if (!cli_parse_chw(val, &o.c, &o.h, &o.w)) return 2;
            i++;
        } else {
            fprintf(stderr, "inferlab: zoo: unknown option '%s'\n", a);
            zoo_usage(stderr);
            return 2;
        }
    }
    if (!outp) {
        fprintf(stderr, "inferlab: zoo %s: give the output file with -o model.onnx\n", name);
        return 2;
    }
    il_graph *g;
    il_status st = il_zoo_build(name, &o, &g);
    if (st) return cli_fail(st, NULL);
    int64_t params, macs;
    if ((st = il_model_stats(g, &params, &macs)) || (st = il_onnx_save(g, outp))) {
        il_graph_free(g);
        return cli_fail(st, outp);
    }
    printf("%s: %s %dx%dx%d -> %d classes, %lld parameters, %lld MACs per image\n", outp, name, o.c, o.h, o.w,
           o.classes, (long long)params, (long long)macs);
    il_graph_free(g);
    return 0;
}
