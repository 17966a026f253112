/*
 * engine_opts.c - the flags every command that builds a plan shares: which kernels run
 * (--kernel OP=NAME,..., --tactics timed|heuristic, --timing-cache FILE) and plugins that
 * register passes or kernels (--plugin P.so).
 */
#include "cli.h"
#include "passes/passes.h"

#include <stdio.h>
#include <string.h>

int cli_engine_arg(int argc, char **argv, int *i, cli_engine *e) {
    const char *a = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "--kernel")) {
        if (!val) { fprintf(stderr, "inferlab: --kernel needs OP=NAME[,OP=NAME...] (`inferlab ops` lists them)\n"); return -1; }
        size_t used = strlen(e->kernels_buf);
        if (used + strlen(val) + 2 > sizeof e->kernels_buf) { fprintf(stderr, "inferlab: --kernel: too long\n"); return -1; }
        snprintf(e->kernels_buf + used, sizeof e->kernels_buf - used, "%s%s", used ? "," : "", val);
        e->kernels = e->kernels_buf;
    } else if (!strcmp(a, "--tactics")) {
        if (!val || (strcmp(val, "timed") && strcmp(val, "heuristic"))) {
            fprintf(stderr, "inferlab: --tactics timed|heuristic\n");
            return -1;
        }
        e->tactics = !strcmp(val, "timed") ? IL_TACTICS_TIMED : IL_TACTICS_HEURISTIC;
    } else if (!strcmp(a, "--backend")) {
        if (!val || (strcmp(val, "cpu") && strcmp(val, "cuda"))) { fprintf(stderr, "inferlab: --backend cpu|cuda\n"); return -1; }
        e->backend = strcmp(val, "cuda") ? IL_BACKEND_CPU : IL_BACKEND_CUDA;
    } else if (!strcmp(a, "--precision")) {
        if ((e->precision = il_precision_parse(val)) < 0) {
            fprintf(stderr, "inferlab: --precision fp32|tf32|fp16|bf16\n");
            return -1;
        }
    } else if (!strcmp(a, "--graphs")) {
        e->graphs = 1;
        return 1;
    } else if (!strcmp(a, "--timing-cache")) {
        if (!val) { fprintf(stderr, "inferlab: --timing-cache needs a file name\n"); return -1; }
        e->timing_cache = val;
    } else if (!strcmp(a, "--plugin")) {
        if (!val) { fprintf(stderr, "inferlab: --plugin needs the path of a .so file\n"); return -1; }
        il_status st = il_pass_load_plugin(val);
        if (st) { cli_fail(st, NULL); return -1; }
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

int cli_engine_check(const cli_engine *e) {
    if ((e->precision || e->graphs) && e->backend == IL_BACKEND_CPU) {
        fprintf(stderr, "inferlab: --precision %s%s: an accelerator's options (add --backend cuda); the cpu "
                "computes float32\n", il_precision_name(e->precision), e->graphs ? " / --graphs" : "");
        return 0;
    }
    il_status st = il_kernel_spec_check(e->kernels);
    if (st) { cli_fail(st, NULL); return 0; }
    return 1;
}

void cli_engine_apply(const cli_engine *e, il_plan_opts *o) {
    o->kernels = e->kernels;
    o->tactics = e->tactics;
    o->timing_cache = e->timing_cache;
    o->backend = e->backend;
    o->precision = e->precision;
    o->graphs = e->graphs;
}

const char *cli_engine_help =
    "  --kernel OP=NAME[,...]   force kernels by op type (`*=ref`: every node); `inferlab ops` lists them\n"
    "  --tactics timed|heuristic  choose each node's kernel by timing the candidates on its shapes, or by a\n"
    "                           fixed preference (default heuristic)\n"
    "  --timing-cache FILE      timed tactics: remember choices per op/shape for this machine\n"
    "  --plugin P.so            load a plugin that registers passes or kernels (repeatable)\n"
    "  --backend cpu|cuda       where nodes run: cuda places each node its kernels support on the GPU and\n"
    "                           the rest on the cpu, copying values across (default cpu)\n"
    "  --precision fp32|tf32|fp16|bf16  the accelerator's arithmetic (default fp32, as exact as the cpu)\n"
    "  --graphs                 accelerator: capture the first run (no cpu node) and replay it\n";
