/*
 * prune.c - `inferlab prune`: parse flags, call prune/ (il_prune_apply, il_prune_finetune,
 * il_prune_scan), evaluate on a labelled set where asked, write the pruned model with its
 * recipe in the metadata (inferlab.prune), print a table or JSON.
 */
#include "cli.h"
#include "bench/bench.h"
#include "engine/cuda/sparselt.h"
#include "prune/channel.h"
#include "prune/prune.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NAMES 256

typedef struct pargs {
    const char *model, *out, *method, *criterion, *nm, *data, *teacher, *schedule, *val, *db, *augment;
    char *exclude_buf, *layers_buf;
    const char *exclude[MAX_NAMES], *layer_names[MAX_NAMES];
    double layer_sparsity[MAX_NAMES], levels[64], max_drop;
    int n_exclude, n_layers, n_levels, has_sparsity, steps, scan, json, list;
    long long finetune, threads, batch, seed;
    il_prune_opts po;
    il_fit_opts fit;
} pargs;

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferlab prune MODEL.onnx -o OUT.onnx --method magnitude|global|nm|channel --sparsity S [options]\n"
            "  --method magnitude   each prunable layer (Conv/Gemm/MatMul weight) loses the fraction S\n"
            "           global      one threshold across all layers removes the fraction S of all their weights\n"
            "           nm          keep N of every M weights along the reduction dimension (--nm 2:4)\n"
            "           channel     remove whole output channels for real (a smaller dense model)\n"
            "  --sparsity S         fraction in [0, 1) of the weights to remove\n"
            "  --nm N:M (2:4)       the N:M pattern of --method nm\n"
            "  --criterion NAME     magnitude (default), l1-filter, l2-filter, or a plugin's (--list);\n"
            "                       channel: l1-filter (default) or l2-filter\n"
            "  --exclude A,B,...    layers left dense: node or weight names, first, last\n"
            "  --layer-sparsity NAME=S,...   per-layer fractions (magnitude)\n"
            "  --finetune EPOCHS --data SPEC (fashion-mnist:train)   train with the masks held fixed\n"
            "     [--teacher T.onnx|self] knowledge distillation (self: the unpruned model)\n"
            "     [--lr LR (0.01)] [--batch B (128)] [--seed S (1)]\n"
            "     [--augment none|crop|flip|crop+flip] random crop (padding 2 at 28x28) and flip while training;\n"
            "                       a teacher sees the same images\n"
            "  --schedule oneshot|gradual [--steps N (4)]  gradual: Zhu & Gupta's polynomial schedule in N rounds,\n"
            "                       fine-tuning on 1/N of the data between rounds\n"
            "  --scan               each layer pruned alone at 10..90%% (--levels L1,L2,..), accuracy on --val;\n"
            "                       with -o: per-layer sparsity, the highest within --max-drop POINTS (1) of dense\n"
            "  --val SPEC           labelled set for accuracy (fashion-mnist:test); given: dense and pruned top-1\n"
            "  --db FILE            record the scan in FILE's table prune_scan (the bench results database)\n"
            "  --plugin P.so        load criteria from a plugin;  --list  list the criteria\n"
            "  --threads N  --json  --quiet\n");
}

/* Split a comma list in place into out (at most MAX_NAMES). */
static int split(char *s, const char **out) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < MAX_NAMES; tok = strtok(NULL, ","))
        if (*tok) out[n++] = tok;
    return n;
}

static int bad(const char *fmt, const char *v) {
    fprintf(stderr, "inferlab: prune: ");
    fprintf(stderr, fmt, v ? v : "");
    fputc('\n', stderr);
    return 0;
}

static int parse_fraction(const char *flag, const char *v, double *out) {
    if (!cli_double(flag, v, out)) return 0;
    if (!(*out >= 0 && *out < 1)) {
        fprintf(stderr, "inferlab: prune: %s %s is outside [0, 1): give the fraction of weights to remove, "
                        "e.g. 0.5\n", flag, v);
        return 0;
    }
    return 1;
}

static int parse_layer_sparsity(pargs *a, const char *v) {
    free(a->layers_buf);
    a->layers_buf = strdup(v);
    const char *items[MAX_NAMES];
    int n = split(a->layers_buf, items);
    for (int i = 0; i < n; i++) {
        char *eq = strchr(items[i], '=');
        if (!eq || eq == items[i]) return bad("--layer-sparsity expects NAME=S,..., got '%s'", items[i]);
        *eq = 0;
        a->layer_names[i] = items[i];
        if (!parse_fraction("--layer-sparsity", eq + 1, &a->layer_sparsity[i])) return 0;
    }
    a->n_layers = n;
    return 1;
}

static int parse_levels(pargs *a, const char *v) {
    char *buf = strdup(v);
    const char *items[64];
    int n = 0;
    for (char *tok = strtok(buf, ","); tok && n < 64; tok = strtok(NULL, ",")) items[n++] = tok;
    int ok = n > 0;
    for (int i = 0; i < n && ok; i++) ok = parse_fraction("--levels", items[i], &a->levels[i]);
    a->n_levels = n;
    free(buf);
    return ok || (!n && bad("--levels expects fractions like 0.1,0.5,0.9, got '%s'", v));
}

/* One flag with its value at argv[*i]; 1 consumed, 0 error (printed). */
static int parse_flag(pargs *a, int argc, char **argv, int *i) {
    const char *f = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    const char **str = !strcmp(f, "-o") ? &a->out : !strcmp(f, "--method") ? &a->method
                     : !strcmp(f, "--criterion") ? &a->criterion : !strcmp(f, "--nm") ? &a->nm
                     : !strcmp(f, "--data") ? &a->data : !strcmp(f, "--teacher") ? &a->teacher
                     : !strcmp(f, "--schedule") ? &a->schedule : !strcmp(f, "--val") ? &a->val
                     : !strcmp(f, "--db") ? &a->db : !strcmp(f, "--augment") ? &a->augment : NULL;
    long long *num = !strcmp(f, "--finetune") ? &a->finetune : !strcmp(f, "--threads") ? &a->threads
                   : !strcmp(f, "--batch") ? &a->batch : !strcmp(f, "--seed") ? &a->seed : NULL;
    if (!strcmp(f, "--scan")) return a->scan = 1;
    if (!strcmp(f, "--json")) return a->json = 1;
    if (!strcmp(f, "--list")) return a->list = 1;
    static const char *const valued[] = {"--plugin", "--sparsity", "--max-drop", "--lr", "--steps", "--exclude",
                                         "--layer-sparsity", "--levels", NULL};
    int known = str || num;
    for (int k = 0; valued[k] && !known; k++) known = !strcmp(f, valued[k]);
    if (!known) return bad("unknown option '%s' (see inferlab prune --help)", f);
    if (!v || (v[0] == '-' && v[1] == '-')) return bad("%s needs a value", f);
    (*i)++;
    if (str) return *str = v, 1;
    if (num) return cli_int(f, v, num) && (*num >= (num == &a->seed || num == &a->finetune ? 0 : 1) ||
                                           bad("%s must be positive", f));
    if (!strcmp(f, "--plugin")) return 1; /* loaded by cli_load_plugins */
    if (!strcmp(f, "--sparsity")) return a->has_sparsity = 1, parse_fraction(f, v, &a->po.sparsity);
    if (!strcmp(f, "--max-drop")) return cli_double(f, v, &a->max_drop) && (a->max_drop >= 0 || bad("%s must be >= 0", f));
    if (!strcmp(f, "--lr")) return cli_double(f, v, &a->fit.optim.lr) && (a->fit.optim.lr > 0 || bad("%s must be > 0", f));
    if (!strcmp(f, "--steps")) {
        long long n;
        if (!cli_int(f, v, &n) || n < 1 || n > 1000) return bad("--steps expects 1..1000 rounds, got '%s'", v);
        return a->steps = (int)n, 1;
    }
    if (!strcmp(f, "--exclude")) {
        free(a->exclude_buf);
        a->exclude_buf = strdup(v);
        return a->n_exclude = split(a->exclude_buf, a->exclude), 1;
    }
    if (!strcmp(f, "--layer-sparsity")) return parse_layer_sparsity(a, v);
    return parse_levels(a, v);
}

/* The method, N:M and schedule into a->po; 0 after printing why not. */
static int check_args(pargs *a) {
    if (!a->model && !a->list) return bad("give the model: inferlab prune MODEL.onnx -o OUT.onnx --method ...%s", "");
    if (a->list) return 1;
    if (!a->method) a->method = a->scan ? "magnitude" : NULL;
    if (!a->method) return bad("give --method magnitude, global, nm or channel%s", "");
    if (!strcmp(a->method, "magnitude")) a->po.scope = IL_PRUNE_LAYERWISE;
    else if (!strcmp(a->method, "global")) a->po.scope = IL_PRUNE_GLOBAL;
    else if (!strcmp(a->method, "nm")) a->po.scope = IL_PRUNE_NM;
    else if (strcmp(a->method, "channel"))
        return bad("unknown --method '%s' (magnitude, global, nm or channel)", a->method);
    if (a->po.scope == IL_PRUNE_NM) {
        const char *s = a->nm ? a->nm : "2:4";
        char tail;
        if (sscanf(s, "%d:%d%c", &a->po.nm_n, &a->po.nm_m, &tail) != 2)
            return bad("--nm expects N:M such as 2:4, got '%s'", s);
        if (a->po.nm_n < 1 || a->po.nm_n >= a->po.nm_m || a->po.nm_m > 64)
            return bad("--nm %s: keep N of every M weights needs 0 < N < M <= 64", s);
    } else if (a->nm) {
        return bad("--nm goes with --method nm (got --method %s)", a->method);
    }
    if (strcmp(a->schedule, "oneshot") && strcmp(a->schedule, "gradual"))
        return bad("--schedule expects oneshot or gradual, got '%s'", a->schedule);
    int needs_s = a->po.scope != IL_PRUNE_NM && !a->scan && !a->n_layers;
    if (needs_s && !a->has_sparsity) return bad("--method %s needs --sparsity S (a fraction in [0, 1))", a->method);
    if (!a->out && !a->scan) return bad("give the output file with -o OUT.onnx%s", "");
    if (!strcmp(a->schedule, "gradual") && !a->finetune)
        return bad("--schedule gradual fine-tunes between rounds: give --finetune EPOCHS%s", "");
    if (a->teacher && !a->finetune) return bad("--teacher is for fine-tuning: give --finetune EPOCHS%s", "");
    if (a->augment && !a->finetune) return bad("--augment is for fine-tuning: give --finetune EPOCHS%s", "");
    if (a->augment && strcmp(a->augment, "none") && strcmp(a->augment, "crop") && strcmp(a->augment, "flip") &&
        strcmp(a->augment, "crop+flip"))
        return bad("--augment expects none, crop, flip or crop+flip, got '%s'", a->augment);
    if ((a->n_layers || (a->scan && a->out)) && a->po.scope != IL_PRUNE_LAYERWISE)
        return bad("per-layer sparsity (--layer-sparsity, or --scan with -o) goes with --method magnitude, not %s",
                   a->method);
    if (!strcmp(a->method, "channel")) {
        if (a->criterion && strcmp(a->criterion, "l1-filter") && strcmp(a->criterion, "l2-filter"))
            return bad("--method channel ranks filters by --criterion l1-filter or l2-filter, not '%s'", a->criterion);
        if (a->scan || a->n_layers)
            return bad("--method channel prunes every layer by the one ratio (no --scan or --layer-sparsity)%s", "");
    }
    return 1;
}

/* ---------------------------------------------------------------- evaluation */

typedef struct evalctx {
    il_dataset *d;
    il_preproc p;
    int threads, quiet;
} evalctx;

static il_status eval_top1(const il_graph *g, void *ctx, double *acc) {
    evalctx *e = ctx;
    il_eval_result r;
    il_status st = il_evaluate(g, e->d, &e->p, 256, e->threads, &r);
    if (st) return st;
    free(r.confusion);
    *acc = r.top1;
    return IL_OK;
}

static void scan_progress(const il_prune_scan_point *p, void *ctx) {
    if (!((evalctx *)ctx)->quiet) fprintf(stderr, "\r  scan: %-28s %3.0f%%  top-1 %.2f%%   ", p->layer, 100 * p->sparsity,
                                          100 * p->accuracy);
}

static void print_scan(FILE *f, const pargs *a, const il_prune_scan_point *p, int n, double dense) {
    fprintf(f, "\nsensitivity scan: top-1 (%%) with one layer pruned, dense %.2f%%\n%-28s", 100 * dense, "layer");
    for (int k = 0; k < a->n_levels; k++) fprintf(f, " %5.0f%%", 100 * a->levels[k]);
    for (int i = 0; i < n; i++) {
        if (i % a->n_levels == 0) fprintf(f, "\n%-28.28s", p[i].layer);
        fprintf(f, " %6.2f", 100 * p[i].accuracy);
    }
    fprintf(f, "\n");
}

static void json_scan(FILE *f, const pargs *a, const il_prune_scan_point *p, int n, double dense) {
    fprintf(f, ",\"scan\":{\"dense\":%.6g,\"levels\":[", dense);
    for (int k = 0; k < a->n_levels; k++) fprintf(f, "%s%.6g", k ? "," : "", a->levels[k]);
    fprintf(f, "],\"layers\":{");
    for (int i = 0; i < n; i++) {
        if (i % a->n_levels == 0) {
            if (i) fprintf(f, "],");
            cli_json_str(f, p[i].layer);
            fprintf(f, ":[");
        }
        fprintf(f, "%s%.6g", i % a->n_levels ? "," : "", p[i].accuracy);
    }
    fprintf(f, "%s}}", n ? "]" : "");
}

/* --method nm: whether anything here turns the pattern into speed, said plainly (never claimed:
 * the cuda kernel takes a product only where it times faster than cuBLAS) */
static void nm_speed_note(const pargs *a, char *buf, size_t n, int *accelerated) {
    const char *no = il_sparse24_not_accelerated();
    *accelerated = 0;
    if (!il_nm_is_2of4(a->po.nm_n, a->po.nm_m))
        snprintf(buf, n, "N:M %d:%d is not accelerated by any kernel here (cuSPARSELt takes 2:4 only); the zeros are "
                 "computed densely", a->po.nm_n, a->po.nm_m);
    else if (no)
        snprintf(buf, n, "%s; the cpu computes these zeros densely (its sparse kernel pays from ~80%% zeros, "
                 "docs/sparsity.md)", no);
    else {
        *accelerated = 1;
#ifdef IL_HAVE_CUDA
        const char *lib = il_sparselt_version();
#else
        const char *lib = "cuSPARSELt"; /* unreachable without cuda (not accelerated), but must link */
#endif
        snprintf(buf, n, "2:4 can run on %s here: fp16/bf16 plans on --device cuda offer the cusparselt-2:4 kernel, "
                 "taken per product only where timed faster than cuBLAS", lib);
    }
}

static void print_layers(const il_prune_report *r) {
    printf("%-28s %-7s %10s %8s %9s\n", "layer", "op", "weights", "asked", "achieved");
    for (int i = 0; i < r->n; i++) {
        const il_prune_layer_stat *s = &r->layers[i];
        printf("%-28.28s %-7s %10lld %7.1f%% %8.2f%%%s%s\n", s->name, s->op, (long long)s->numel, 100 * s->target,
               s->numel ? 100.0 * s->zeros / s->numel : 0.0, s->excluded ? "  " : "", s->excluded ? s->why : "");
    }
    printf("%-28s %-7s %10lld %8s %8.2f%%\n", "all prunable", "", (long long)r->numel, "", 100 * il_prune_sparsity(r));
}

/* ---------------------------------------------------------------- the command */

/* Scan, then (with -o) take per-layer sparsities from it. */
static int run_scan(pargs *a, const il_graph *g, evalctx *e, double *dense, const char ***names, double **sp) {
    il_prune_scan_point *p = NULL;
    int n = 0, nl = 0;
    il_status st = il_prune_scan(g, &a->po, a->levels, a->n_levels, eval_top1, e, dense, &p, &n, scan_progress);
    if (!e->quiet) fprintf(stderr, "\r%70s\r", "");
    char sha[65] = "";
    if (!st && a->db && !(st = il_sha256_file(a->model, sha)))
        st = il_prune_scan_save(a->db, a->model, sha, a->po.criterion, a->val, e->d->n, *dense, p, n);
    if (!st && a->out) {
        st = il_prune_scan_pick(p, n, *dense, a->max_drop / 100, names, sp, &nl);
        for (int i = 0; i < nl && !st; i++) a->layer_names[i] = strdup((*names)[i]), a->layer_sparsity[i] = (*sp)[i];
        a->n_layers = nl;
    }
    if (st) {
        il_prune_scan_free(p, n);
        return cli_fail(st, "scan");
    }
    if (a->json) json_scan(stdout, a, p, n, *dense);
    else {
        print_scan(stdout, a, p, n, *dense);
        if (a->db) printf("recorded %d points in %s, table prune_scan\n", n, a->db);
    }
    il_prune_scan_free(p, n);
    return 0;
}

/* Remove channels for real (prune/channel.h); fine-tuning then needs no masks. */
static int channel_norm(const pargs *a) { return a->criterion && !strcmp(a->criterion, "l2-filter") ? 2 : 1; }

static il_status prune_channels(pargs *a, il_graph *g, il_channel_report *cr) {
    int norm = channel_norm(a);
    return il_prune_channels_ex(g, (float)a->po.sparsity, norm, a->exclude, a->n_exclude, IL_CHANNEL_REMOVE, cr);
}

static int prune_model(pargs *a, il_graph **g, il_prune_report *r, il_channel_report *cr) {
    il_status st;
    int channel = !strcmp(a->method, "channel"), gradual = !strcmp(a->schedule, "gradual");
    /* the unpruned model as its own teacher: copied before channels go (it learned from the
     * pruned one, and stayed at chance, when this came after) */
    il_graph *self = a->finetune && a->teacher && !strcmp(a->teacher, "self") ? il_graph_clone(*g) : NULL;
    if (channel && !gradual && (st = prune_channels(a, *g, cr))) {
        il_graph_free(self);
        return cli_fail(st, a->model);
    }
    if (!a->finetune) {
        st = channel ? IL_OK : il_prune_apply(*g, &a->po, r);
        return st ? cli_fail(st, a->model) : 0;
    }
    il_dataset *d = NULL;
    il_preproc p;
    il_graph *teacher = NULL;
    if ((st = cli_model_data(*g, a->data, IL_SPLIT_TRAIN, &d, &p)) ||
        (st = cli_augment(a->augment ? a->augment : "none", d, &p))) {
        il_data_free(d);
        il_graph_free(self);
        return cli_fail(st, a->data);
    }
    if (self) teacher = self;
    else if (a->teacher && !(teacher = cli_load(a->teacher))) {
        il_data_free(d);
        return 1;
    }
    il_prune_finetune_opts fo = {.fit = a->fit, .verbose = !a->json};
    fo.fit.epochs = (int)a->finetune;
    fo.fit.teacher = teacher;
    fo.fit.progress = !a->json && isatty(2);
    fo.gradual_steps = gradual ? a->steps : 0;
    if (!a->json)
        printf("fine-tuning: %lld epoch%s on %s (%lld samples)%s%s, %s\n", a->finetune, a->finetune == 1 ? "" : "s",
               a->data, (long long)d->n, teacher ? ", distilled from " : "", teacher ? a->teacher : "", a->schedule);
    if (!a->json && (p.pad || p.hflip)) printf("augmentation: %s\n", a->augment);
    if (channel && gradual)
        st = il_prune_channels_gradual(g, (float)a->po.sparsity, channel_norm(a), a->exclude, a->n_exclude, &fo, d, &p, cr);
    else if (channel) st = il_prune_train(g, NULL, &fo.fit, d, &p, fo.verbose);
    else st = il_prune_finetune(g, &a->po, &fo, d, &p, r);
    il_graph_free(teacher);
    il_data_free(d);
    return st ? cli_fail(st, "fine-tuning") : 0;
}

static int run(pargs *a) {
    il_graph *g = cli_load(a->model);
    if (!g) return 1;
    evalctx e = {.threads = (int)a->threads, .quiet = a->json || !isatty(2)};
    il_prune_report r = {0};
    il_channel_report cr = {0};
    int channel = !strcmp(a->method, "channel");
    const char **names = NULL;
    double *sp = NULL, dense = -1, pruned = -1;
    int rc = 0, scan_only = a->scan && !a->out;
    il_status st = IL_OK;
    if (a->json) printf("{\"model\":"), cli_json_str(stdout, a->model);
    if ((a->scan || a->val) && (st = cli_model_data(g, a->val ? a->val : "fashion-mnist:test", IL_SPLIT_TEST, &e.d, &e.p)))
        rc = cli_fail(st, a->val ? a->val : "fashion-mnist:test");
    if (!a->val) a->val = "fashion-mnist:test";
    if (!rc && a->scan) rc = run_scan(a, g, &e, &dense, &names, &sp);
    if (!rc && !scan_only) {
        a->po.layer_names = a->layer_names, a->po.layer_sparsity = a->layer_sparsity;
        a->po.n_layer_sparsity = a->n_layers;
        if (e.d && dense < 0 && (st = eval_top1(g, &e, &dense))) rc = cli_fail(st, "evaluating the dense model");
        if (!rc) rc = prune_model(a, &g, &r, &cr);
        if (!rc && e.d && (st = eval_top1(g, &e, &pruned))) rc = cli_fail(st, "evaluating the pruned model");
    }
    il_prune_recipe rec = {a->scan ? "scan" : a->method, a->schedule, !strcmp(a->schedule, "gradual") ? a->steps : 0,
                           (int)a->finetune, a->data, a->teacher, a->fit.optim.lr,
                           a->augment && strcmp(a->augment, "none") ? a->augment : NULL};
    if (!rc && !scan_only && (st = channel ? il_prune_extend_recipe(g, &rec) : il_prune_set_recipe(g, &a->po, &r, &rec)))
        rc = cli_fail(st, NULL);
    if (!rc && !scan_only && (st = il_onnx_save(g, a->out))) rc = cli_fail(st, a->out);
    if (!rc && !scan_only && a->json) {
        printf(",\"output\":");
        cli_json_str(stdout, a->out);
        printf(",\"recipe\":%s", il_graph_get_meta(g, "inferlab.prune"));
        if (e.d) printf(",\"dense_top1\":%.6g,\"pruned_top1\":%.6g", dense, pruned);
        if (!strcmp(a->method, "nm")) {
            char note[512];
            int acc;
            nm_speed_note(a, note, sizeof note, &acc);
            printf(",\"accelerated\":%s,\"speed_note\":", acc ? "true" : "false");
            cli_json_str(stdout, note);
        }
    } else if (!rc && !scan_only) {
        printf("\n");
        if (channel)
            printf("removed %lld of %lld prunable channels (%d units); parameters %lld -> %lld\n", (long long)cr.removed,
                   (long long)cr.channels, cr.units, (long long)cr.params_before, (long long)cr.params_after);
        else print_layers(&r);
        if (!channel && !strcmp(a->method, "nm")) {
            char note[512];
            int acc;
            nm_speed_note(a, note, sizeof note, &acc);
            printf("%s\n", note);
        }
        if (e.d) printf("top-1 on %s: dense %.2f%%, pruned %.2f%%\n", a->val, 100 * dense, 100 * pruned);
        printf("wrote %s\n", a->out);
    }
    if (a->json) printf("%s}\n", rc ? ",\"error\":true" : "");
    if (names)
        for (int i = 0; i < a->n_layers; i++) free((char *)a->layer_names[i]);
    free(names), free(sp);
    il_prune_report_free(&r);
    il_data_free(e.d);
    il_graph_free(g);
    return rc;
}

static void list_criteria(void) {
    int n;
    const il_prune_criterion *const *c = il_prune_criteria(&n);
    for (int i = 0; i < n; i++)
        printf("  %-14s %-8s %s\n", c[i]->name, c[i]->unit == IL_PRUNE_PER_ROW ? "per row" : "per weight", c[i]->about);
}

int cmd_prune(int argc, char **argv) {
    pargs a;
    memset(&a, 0, sizeof a);
    il_fit_defaults(&a.fit);
    a.fit.optim.lr = 0.01;
    a.schedule = "oneshot", a.data = "fashion-mnist:train", a.max_drop = 1.0, a.steps = 4, a.seed = 1;
    static const double dflt_levels[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
    memcpy(a.levels, dflt_levels, sizeof dflt_levels);
    a.n_levels = 9;
    int ok = 1;
    for (int i = 1; i < argc && ok; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) ok = parse_flag(&a, argc, argv, &i);
        else if (a.model) ok = bad("unexpected argument '%s' (one model at a time)", argv[i]);
        else a.model = argv[i];
    }
    ok = ok && check_args(&a) && cli_load_plugins(argc, argv);
    int rc = 2;
    if (ok && a.list) list_criteria(), rc = 0;
    else if (ok) {
        a.po.criterion = a.criterion;
        a.po.exclude = a.exclude, a.po.n_exclude = a.n_exclude;
        a.threads = a.threads ? a.threads : il_num_cores();
        a.fit.threads = (int)a.threads, a.fit.seed = (uint64_t)a.seed;
        if (a.batch) a.fit.batch = (int)a.batch;
        rc = run(&a);
    }
    free(a.exclude_buf), free(a.layers_buf);
    return rc;
}
