/*
 * main.c - `inferlab SUBCOMMAND ...`: dispatch, help, version, shared argument helpers.
 */
#include "cli.h"
#include "bench/bench.h"
#include "passes/passes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"info", cmd_info, "inputs, outputs, ops, parameters, per-node shapes and FLOPs, peak activation memory"},
    {"run", cmd_run, "run a model on given or random inputs; summarize and save outputs"},
    {"check", cmd_check, "run ONNX backend-test folders and compare outputs"},
    {"passes", cmd_passes, "list the optimization passes"},
    {"opt", cmd_opt, "optimize a model with a pass pipeline"},
    {"build", cmd_build, "build a model into a plan file (passes, kernels chosen, memory laid out)"},
    {"ops", cmd_ops, "list the ops and their kernels per backend"},
    {"zoo", cmd_zoo, "build a model from the zoo (mlp, lenet5, resnet, mobilenet_v2, vit...)"},
    {"train", cmd_train, "train a model (Fashion-MNIST by default), optionally federated"},
    {"distill", cmd_distill, "train a student from a teacher with knowledge distillation"},
    {"eval", cmd_eval, "accuracy, per-class accuracy and confusion matrix on a labelled set"},
    {"quantize", cmd_quantize, "INT8 post-training quantization (QDQ), dynamic quantization, per-layer error analysis"},
    {"prune", cmd_prune, "prune weights (magnitude, global, N:M), sensitivity scans, fine-tuning with fixed masks"},
    {"bench", cmd_bench, "benchmark variants (scenarios, peers) into a SQLite database"},
    {"db", cmd_db, "list, show, export and merge benchmark databases"},
    {"report", cmd_report, "HTML and PDF report with plots from a results database"},
};

static void usage(FILE *f) {
    fprintf(f, "inferlab %s - an inference optimization workbench\n\nusage: inferlab COMMAND [ARGS]\n\ncommands:\n", IL_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (commands[i].fn) fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-8s %s\n", "help", "this text; `help COMMAND`: that command's options");
    fprintf(f, "\n`inferlab COMMAND --help` tells a command's options. Every command takes --quiet (only errors,\n"
               "on stderr); info, run, check, passes and zoo take --json.\n");
}

int cli_fail(il_status st, const char *what) {
    const char *m = il_errmsg();
    if (what) fprintf(stderr, "inferlab: %s: %s\n", what, m[0] ? m : il_status_str(st));
    else fprintf(stderr, "inferlab: %s\n", m[0] ? m : il_status_str(st));
    return 1;
}

int cli_int(const char *flag, const char *s, long long *out) {
    char *end;
    errno = 0;
    if (!s) { fprintf(stderr, "inferlab: %s needs a value\n", flag); return 0; }
    *out = strtoll(s, &end, 10);
    if (errno || end == s || *end) {
        fprintf(stderr, "inferlab: %s expects an integer, got '%s'\n", flag, s);
        return 0;
    }
    return 1;
}

int cli_double(const char *flag, const char *s, double *out) {
    char *end;
    errno = 0;
    if (!s) { fprintf(stderr, "inferlab: %s needs a value\n", flag); return 0; }
    *out = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "inferlab: %s expects a number, got '%s'\n", flag, s);
        return 0;
    }
    return 1;
}

il_graph *cli_load(const char *path) {
    il_graph *g;
    if (il_plan_file_is(path)) { /* a built plan: its graph (after passes), without building it (a cuda
                                    plan would start the GPU here, in a process bench forks from) */
        il_status st = il_plan_file_read(path, NULL, 0, &g);
        if (st) { cli_fail(st, NULL); return NULL; }
        if ((st = il_graph_verify(g))) { il_graph_free(g); cli_fail(st, path); return NULL; }
        return g;
    }
    il_status st = il_onnx_load(path, &g);
    if (st) { cli_fail(st, NULL); return NULL; }
    st = il_graph_verify(g);
    if (st) {
        cli_fail(st, path);
        il_graph_free(g);
        return NULL;
    }
    return g;
}

int cli_add_bind(const char *s, il_bind *binds, int *nb) {
    static char names[16][64];
    const char *eq = s ? strchr(s, '=') : NULL;
    long long v;
    if (!eq || eq == s || (size_t)(eq - s) >= sizeof names[0] || *nb >= 16) {
        fprintf(stderr, "inferlab: --dim expects NAME=VALUE, got '%s'\n", s ? s : "");
        return 0;
    }
    if (!cli_int("--dim", eq + 1, &v) || v < 0) return 0;
    memcpy(names[*nb], s, (size_t)(eq - s));
    names[*nb][eq - s] = 0;
    binds[*nb].name = names[*nb];
    binds[*nb].value = v;
    (*nb)++;
    return 1;
}

il_tensor *cli_random_input(const il_graph *g, int i, int64_t batch, const il_bind *b, int nb, uint64_t *rng) {
    const il_value *x = &g->values[g->inputs[i]];
    int64_t dims[IL_MAX_RANK];
    if (x->rank < 0) {
        il_error(IL_ERR_SHAPE, "input '%s' has no shape in the model: give it with --input", x->name);
        return NULL;
    }
    for (int d = 0; d < x->rank; d++) {
        dims[d] = x->dims[d];
        if (dims[d] >= 0) continue;
        for (int j = 0; j < nb; j++)
            if (x->dim_param[d] && !strcmp(b[j].name, x->dim_param[d])) dims[d] = b[j].value;
        if (dims[d] < 0) dims[d] = (d == 0 && batch > 0) ? batch : 1;
    }
    il_tensor *t = il_tensor_new(x->dtype, x->rank, dims);
    if (!t) return NULL;
    il_graph_fill_input(g, i, t, rng);
    return t;
}

/* libgomp reads its wait policy from the environment when it is loaded, before main, so a
 * policy is set by running the program again. Spinning (GOMP_SPINCOUNT=3000000) saves a futex
 * wake-up per parallel region on an idle machine (the server scenario's idle gaps: p50 2.05 ms
 * passive against 1.08 ms spinning, demo teacher at 100 QPS) but starves the working thread when
 * another process is busy (bench/load.c has the figures), so `run` and `bench` choose by the
 * scenario and the machine's load (il_bench_choose_wait) and record the choice. A policy the
 * user set in the environment is kept. */
static char **main_argv;

void cli_wait_policy(const char *want, int spin_helps) {
    char why[160];
    if (getenv("INFERLAB_WAIT")) return; /* chosen already: this is the second run */
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY")) return;
    const char *pol = want && strcmp(want, "auto") ? want : il_bench_choose_wait(spin_helps, why, sizeof why);
    if (want && strcmp(want, "auto")) snprintf(why, sizeof why, "%s: --wait %s", want, want);
    if (!strcmp(pol, "spin")) setenv("GOMP_SPINCOUNT", "3000000", 1);
    else setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv("INFERLAB_WAIT", why, 1);
    setenv("INFERLAB_SET_GOMP", "1", 1); /* bench/peers.c gives the peers their own defaults */
    fflush(stdout);
    execv("/proc/self/exe", main_argv); /* returns only on failure: then run as we are */
}

int cli_wait_flag(const char *val, const char **out) {
    if (!val || (strcmp(val, "auto") && strcmp(val, "spin") && strcmp(val, "passive"))) {
        fprintf(stderr, "inferlab: --wait expects auto, spin or passive, got '%s'\n", val ? val : "");
        return 0;
    }
    *out = val;
    return 1;
}

void cli_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

int cli_load_plugins(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--plugin")) {
            if (i + 1 >= argc) { fprintf(stderr, "inferlab: --plugin needs the path of a .so file\n"); return 0; }
            il_status st = il_pass_load_plugin(argv[i + 1]);
            if (st) { cli_fail(st, NULL); return 0; }
        }
    return 1;
}

/* --quiet on every command: the commands that print progress or results of their own (run,
 * bench, info, train, distill) read it themselves; for the others it means "nothing on stdout,
 * errors still on stderr", done here once by dropping the flag and sending stdout to
 * /dev/null. Returns the new argc. */
static int quiet_for_all(const char *cmd, int argc, char **argv) {
    static const char *const own[] = {"run", "bench", "info", "train", "distill", NULL};
    for (int i = 0; own[i]; i++)
        if (!strcmp(cmd, own[i])) return argc;
    int quiet = 0, k = 2;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) quiet = 1;
        else argv[k++] = argv[i];
    }
    argv[k] = NULL;
    if (quiet && !freopen("/dev/null", "w", stdout)) fprintf(stderr, "inferlab: --quiet: cannot silence stdout\n");
    return k;
}

int main(int argc, char **argv) {
    il_blas_fix_core(argv);
    if (argc < 2) { usage(stderr); return 2; }
    main_argv = argv;
    const char *c = argv[1];
    if (!strcmp(c, "--version") || !strcmp(c, "version")) {
        printf("inferlab %s\n", IL_VERSION);
        return 0;
    }
    if ((!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) && argc > 2) {
        /* `help COMMAND`: that command's own --help */
        for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
            if (commands[i].fn && !strcmp(argv[2], commands[i].name)) {
                char *h[] = {argv[2], "--help", NULL};
                return commands[i].fn(2, h);
            }
        fprintf(stderr, "inferlab: no command '%s' (see `inferlab help`)\n", argv[2]);
        return 2;
    }
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
        usage(stdout);
        return 0;
    }
    argc = quiet_for_all(c, argc, argv);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (commands[i].fn && !strcmp(c, commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "inferlab: unknown command '%s' (see `inferlab help`)\n", c);
    return 2;
}
