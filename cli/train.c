/*
 * train.c - `inferlab train`, `inferlab distill` and `inferlab eval`: parse flags, load the
 * data and the model (a zoo name or an ONNX file), call distill/ (il_fit, il_fedavg,
 * il_evaluate), write the trained model with its preprocessing in the metadata.
 */
#include "cli.h"
#include "distill/distill.h"
#include "reports/reports.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct targs {
    const char *model, *data, *test, *out, *teacher, *augment, *normalize, *sched, *resize, *crop, *device;
    int width, threads, federated, rounds, local_epochs, quiet, warmup;
    double dirichlet, step_epochs;
    il_fit_opts fit;
} targs;

static void train_usage(FILE *f, const char *cmd) {
    fprintf(f,
            "usage: inferlab %s %s -o OUT.onnx [options]\n"
            "  --data SPEC        fashion-mnist (default), mnist:DIR, cifar10:DIR, folder:DIR [:train|:test][:N]\n"
            "  --test SPEC        test set (default: the same source, test split)\n"
            "  --epochs E (10)  --batch B (128)  --lr LR  --opt sgd|adamw  --momentum M  --wd WD\n"
            "  --sched cosine|step|const (cosine)  --warmup EPOCHS (0)  --step EPOCHS (step schedule)  --gamma G\n"
            "  --smoothing EPS    label smoothing (0)\n"
            "  --augment none|crop|flip|crop+flip  (crop: random crop, padding 2 at 28x28, 4 at 32x32)\n"
            "  --normalize fit|none|M1,..:S1,..   per-channel mean/std (fit: computed on the training set)\n"
            "  --resize HxW  --crop HxW          bilinear resize, then center crop (train and test alike)\n"
            "  --width W  --seed S (1)  --threads N (all cores)  --quiet\n"
            "  --device cpu|cuda  where the training step runs (cpu); cuda: activations on the GPU, float32\n",
            cmd, strcmp(cmd, "distill") ? "--model zoo:NAME|FILE.onnx" : "--teacher T.onnx --student zoo:NAME|FILE.onnx");
    if (!strcmp(cmd, "distill"))
        fprintf(f, "  --temperature T (4)  --alpha A (0.9)\n"
                   "  --hint-teacher NAME --hint-student NAME [--hint-weight W]   feature distillation, 1x1 adapter\n");
    else
        fprintf(f, "  --federated K --rounds R --local-epochs E --dirichlet ALPHA   FedAvg over K label-skewed clients\n");
}

/* One flag with its value; returns 1 consumed, 0 unknown, -1 bad value. */
static int parse_flag(targs *a, const char *f, const char *v) {
    long long i;
    double d;
#define INT_FLAG(name, dst, lo)                                   \
    if (!strcmp(f, name)) {                                       \
        if (!cli_int(f, v, &i) || i < (lo)) return -1;            \
        dst = (int)i;                                             \
        return 1;                                                 \
    }
#define DBL_FLAG(name, dst, lo)                                                                         \
    if (!strcmp(f, name)) {                                                                             \
        if (!cli_double(f, v, &d) || d < (lo)) return -1;                                               \
        dst = d;                                                                                        \
        return 1;                                                                                       \
    }
#define STR_FLAG(name, dst)                                                              \
    if (!strcmp(f, name)) {                                                              \
        if (!v) { fprintf(stderr, "inferlab: %s needs a value\n", f); return -1; }       \
        dst = v;                                                                         \
        return 1;                                                                        \
    }
    STR_FLAG("--model", a->model) STR_FLAG("--student", a->model) STR_FLAG("--teacher", a->teacher)
    STR_FLAG("--data", a->data) STR_FLAG("--test", a->test) STR_FLAG("-o", a->out) STR_FLAG("--augment", a->augment)
    STR_FLAG("--normalize", a->normalize) STR_FLAG("--sched", a->sched) STR_FLAG("--resize", a->resize)
    STR_FLAG("--crop", a->crop) STR_FLAG("--device", a->device)
    STR_FLAG("--hint-teacher", a->fit.hint_teacher) STR_FLAG("--hint-student", a->fit.hint_student)
    INT_FLAG("--epochs", a->fit.epochs, 1) INT_FLAG("--batch", a->fit.batch, 2) INT_FLAG("--width", a->width, 1)
    INT_FLAG("--threads", a->threads, 1) INT_FLAG("--federated", a->federated, 1) INT_FLAG("--rounds", a->rounds, 1)
    INT_FLAG("--local-epochs", a->local_epochs, 1) INT_FLAG("--warmup", a->warmup, 0)
    DBL_FLAG("--momentum", a->fit.optim.momentum, 0) DBL_FLAG("--smoothing", a->fit.smoothing, 0)
    DBL_FLAG("--temperature", a->fit.temperature, 1e-3) DBL_FLAG("--alpha", a->fit.alpha, 0)
    DBL_FLAG("--hint-weight", a->fit.hint_weight, 0) DBL_FLAG("--dirichlet", a->dirichlet, 1e-6)
    DBL_FLAG("--step", a->step_epochs, 1e-9) DBL_FLAG("--gamma", a->fit.optim.gamma, 0)
    if (!strcmp(f, "--lr")) {
        if (!cli_double(f, v, &d) || !(d > 0)) return -1;
        a->fit.optim.lr = d;
        return 1;
    }
    if (!strcmp(f, "--wd")) {
        if (!cli_double(f, v, &d) || d < 0) return -1;
        a->fit.optim.weight_decay = d;
        return 1;
    }
    if (!strcmp(f, "--seed")) {
        if (!cli_int(f, v, &i) || i < 0) return -1;
        a->fit.seed = (uint64_t)i;
        return 1;
    }
    if (!strcmp(f, "--opt")) {
        if (!v || (strcmp(v, "sgd") && strcmp(v, "adamw"))) {
            fprintf(stderr, "inferlab: --opt expects sgd or adamw, got '%s'\n", v ? v : "");
            return -1;
        }
        il_opt_kind k = !strcmp(v, "sgd") ? IL_OPT_SGD : IL_OPT_ADAMW;
        double m = a->fit.optim.momentum, g = a->fit.optim.gamma;
        il_optim_defaults(&a->fit.optim, k);
        a->fit.optim.momentum = m, a->fit.optim.gamma = g;
        return 1;
    }
    return 0;
}

static int parse_args(targs *a, int argc, char **argv, const char *cmd) {
    memset(a, 0, sizeof *a);
    il_fit_defaults(&a->fit);
    a->data = "fashion-mnist";
    a->augment = "none", a->normalize = "fit", a->sched = "cosine";
    double lr = 0, wd = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            train_usage(stdout, cmd);
            return 0;
        }
        if (!strcmp(argv[i], "--quiet")) { a->quiet = 1; continue; }
        int r = parse_flag(a, argv[i], i + 1 < argc ? argv[i + 1] : NULL);
        if (r < 0) return -2;
        if (r == 0) {
            fprintf(stderr, "inferlab: %s: unknown option '%s'\n", cmd, argv[i]);
            train_usage(stderr, cmd);
            return -2;
        }
        if (!strcmp(argv[i], "--lr")) lr = a->fit.optim.lr;
        if (!strcmp(argv[i], "--wd")) wd = a->fit.optim.weight_decay;
        i++;
    }
    /* --opt resets the optimizer's defaults: reapply explicit --lr/--wd given before it */
    if (lr > 0) a->fit.optim.lr = lr;
    if (wd >= 0) a->fit.optim.weight_decay = wd;
    if (!a->model) {
        fprintf(stderr, "inferlab: %s: give the model with %s zoo:NAME or FILE.onnx\n", cmd,
                strcmp(cmd, "distill") ? "--model" : "--student");
        return -2;
    }
    if (!strcmp(cmd, "distill") && !a->teacher) {
        fprintf(stderr, "inferlab: distill: give the teacher with --teacher T.onnx\n");
        return -2;
    }
    if (!a->out) {
        fprintf(stderr, "inferlab: %s: give the output file with -o OUT.onnx\n", cmd);
        return -2;
    }
    if (!strcmp(a->sched, "cosine")) a->fit.optim.sched = IL_SCHED_COSINE;
    else if (!strcmp(a->sched, "step")) a->fit.optim.sched = IL_SCHED_STEP;
    else if (!strcmp(a->sched, "const")) a->fit.optim.sched = IL_SCHED_CONST;
    else {
        fprintf(stderr, "inferlab: --sched expects cosine, step or const, got '%s'\n", a->sched);
        return -2;
    }
    if (a->federated && (!a->rounds || !a->local_epochs || !(a->dirichlet > 0))) {
        fprintf(stderr, "inferlab: --federated K needs --rounds R, --local-epochs E and --dirichlet ALPHA\n");
        return -2;
    }
    return 1;
}

/* "fashion-mnist:train:5000" -> "fashion-mnist:test" (the limit applies to training only). */
static void test_spec(const char *spec, char *out, size_t n) {
    snprintf(out, n, "%s", spec);
    for (int pass = 0; pass < 2; pass++) {
        char *c = strrchr(out, ':');
        if (c && (!strcmp(c + 1, "train") || !strcmp(c + 1, "test") || (c[1] && strspn(c + 1, "0123456789") == strlen(c + 1))))
            *c = 0;
    }
    strncat(out, ":test", n - strlen(out) - 1);
}

static il_status parse_hw(const char *flag, const char *s, int *h, int *w) {
    if (!s) return IL_OK;
    if (sscanf(s, "%dx%d", h, w) != 2 || *h < 1 || *w < 1)
        return il_error(IL_ERR_INVALID, "%s expects HxW (for example 32x32), got '%s'", flag, s);
    return IL_OK;
}

il_status cli_augment(const char *au, const il_dataset *d, il_preproc *p) {
    p->pad = 0, p->hflip = 0;
    if (!strcmp(au, "crop") || !strcmp(au, "crop+flip")) p->pad = d->h >= 32 ? 4 : 2;
    if (!strcmp(au, "flip") || !strcmp(au, "crop+flip")) p->hflip = 1;
    if (strcmp(au, "none") && !p->pad && !p->hflip)
        return il_error(IL_ERR_INVALID, "--augment expects none, crop, flip or crop+flip, got '%s'", au);
    return IL_OK;
}

/* Preprocessing from the flags: geometry first (applied to both sets), then the statistics
 * of the training set as the model will see it. */
static il_status set_preproc(const targs *a, il_dataset *train, il_dataset *test, il_preproc *p) {
    il_preproc_init(p, train->c);
    p->scale = train->scale;
    il_status st;
    if ((st = parse_hw("--resize", a->resize, &p->resize_h, &p->resize_w)) ||
        (st = parse_hw("--crop", a->crop, &p->crop_h, &p->crop_w)) || (st = il_preproc_geometry(p, train)) ||
        (st = il_preproc_geometry(p, test)))
        return st;
    if ((st = cli_augment(a->augment, train, p))) return st;
    if (!strcmp(a->normalize, "fit")) il_preproc_fit(p, train);
    else if (strcmp(a->normalize, "none")) {
        const char *s = a->normalize;
        for (int part = 0; part < 2; part++) {
            float *dst = part ? p->std : p->mean;
            for (int c = 0; c < train->c && c < IL_DATA_MAXC; c++) {
                char *end;
                dst[c] = strtof(s, &end);
                if (end == s || (part && !(dst[c] > 0)))
                    return il_error(IL_ERR_INVALID, "--normalize expects fit, none or MEAN,..:STD,.. (one per channel)");
                s = *end == ',' || *end == ':' ? end + 1 : end;
            }
        }
    }
    return IL_OK;
}

static il_graph *load_model(const targs *a, const il_dataset *d) {
    il_graph *g = NULL;
    if (!strncmp(a->model, "zoo:", 4)) {
        il_zoo_opts o;
        il_zoo_defaults(&o);
        o.c = d->c, o.h = d->h, o.w = d->w, o.classes = d->n_classes, o.width = a->width, o.seed = a->fit.seed;
        il_status st = il_zoo_build(a->model + 4, &o, &g);
        if (st) cli_fail(st, NULL);
        return g;
    }
    return cli_load(a->model);
}

static void record(il_graph *g, const targs *a, const char *cmd, double top1) {
    char b[64];
    il_graph_set_meta(g, "inferlab.train.command", cmd);
    snprintf(b, sizeof b, "%d", a->fit.epochs);
    il_graph_set_meta(g, "inferlab.train.epochs", b);
    il_graph_set_meta(g, "inferlab.train.opt", a->fit.optim.kind == IL_OPT_SGD ? "sgd" : "adamw");
    snprintf(b, sizeof b, "%g", a->fit.optim.lr);
    il_graph_set_meta(g, "inferlab.train.lr", b);
    snprintf(b, sizeof b, "%llu", (unsigned long long)a->fit.seed);
    il_graph_set_meta(g, "inferlab.train.seed", b);
    snprintf(b, sizeof b, "%.4f", top1);
    il_graph_set_meta(g, "inferlab.train.test_top1", b);
}

static int train_or_distill(int argc, char **argv, const char *cmd) {
    targs a;
    int r = parse_args(&a, argc, argv, cmd);
    if (r <= 0) return r == 0 ? 0 : 2;
    il_dataset *train = NULL, *test = NULL;
    il_graph *g = NULL, *teacher = NULL, *outg = NULL;
    il_trainer *t = NULL;
    il_preproc p;
    double *round_acc = NULL;
    char ts[1024];
    int rc = 1;
    il_status st;
    test_spec(a.data, ts, sizeof ts);
    if ((st = il_data_load(a.data, IL_SPLIT_TRAIN, &train)) || (st = il_data_load(a.test ? a.test : ts, IL_SPLIT_TEST, &test))) {
        cli_fail(st, NULL);
        goto done;
    }
    if ((st = set_preproc(&a, train, test, &p))) { cli_fail(st, NULL); goto done; }
    if (!(g = load_model(&a, train))) goto done;
    if (a.teacher && !(teacher = cli_load(a.teacher))) goto done;
    a.fit.threads = a.threads ? a.threads : il_num_cores();
    a.fit.teacher = teacher;
    a.fit.progress = !a.quiet && isatty(2);
    a.fit.verbose = !a.quiet;
    if (a.warmup) a.fit.optim.warmup_steps = (int64_t)a.warmup * (train->n / a.fit.batch);
    if (a.step_epochs > 0) a.fit.optim.step_size = (int64_t)(a.step_epochs * (double)(train->n / a.fit.batch));
    il_trainer_opts to = {.dtype = IL_F32, .threads = a.fit.threads, .seed = a.fit.seed};
    if (a.device && strcmp(a.device, "cpu") && strcmp(a.device, "cuda")) {
        fprintf(stderr, "inferlab: --device expects cpu or cuda, got '%s'\n", a.device);
        rc = 2;
        goto done;
    }
    char where[300];
    snprintf(where, sizeof where, "%d threads", a.fit.threads);
    if (a.device && !strcmp(a.device, "cuda")) to.backend = a.fit.backend = IL_BACKEND_CUDA;
    if ((st = il_trainer_create(g, &to, &t))) { cli_fail(st, a.model); goto done; }
    if (to.backend == IL_BACKEND_CUDA) snprintf(where, sizeof where, "cuda: %s", il_train_device_name());
    printf("%s: %s, %lld parameters, %lld training / %lld test samples of %dx%dx%d, %s\n", cmd, a.model,
           (long long)il_trainer_param_count(t), (long long)train->n, (long long)test->n, train->c, train->h, train->w,
           where);
    if (a.federated) {
        il_fed_opts fo = {.clients = a.federated, .rounds = a.rounds, .local_epochs = a.local_epochs,
                          .dirichlet = a.dirichlet, .fit = a.fit, .verbose = !a.quiet};
        fo.fit.verbose = 0;
        if (!(round_acc = calloc((size_t)a.rounds, sizeof(double)))) goto done;
        if ((st = il_fedavg(t, train, test, &p, &fo, round_acc))) { cli_fail(st, "federated"); goto done; }
    } else {
        il_fit_result fr;
        if ((st = il_fit(t, train, &p, &a.fit, &fr))) { cli_fail(st, cmd); goto done; }
        printf("trained %lld steps in %.1f s: %.1f images/s (%s)\n", (long long)fr.steps, fr.seconds, fr.images_per_s,
               where);
    }
    if ((st = il_trainer_export(t, &outg))) { cli_fail(st, "export"); goto done; }
    il_preproc_to_meta(&p, train, outg);
    il_eval_result er;
    if ((st = il_evaluate(outg, test, &p, 256, a.fit.threads, &er))) { cli_fail(st, "evaluate"); goto done; }
    printf("test top-1 %.2f%%  top-5 %.2f%%  (%lld samples, exported model through the engine)\n", 100 * er.top1,
           100 * er.top5, (long long)er.n);
    free(er.confusion);
    record(outg, &a, a.federated ? "train --federated" : cmd, er.top1);
    if (round_acc) { /* the per-round global accuracy, as FedAvg reported it */
        char *buf = malloc((size_t)a.rounds * 12 + 1);
        int k = 0;
        for (int i = 0; i < a.rounds; i++) k += sprintf(buf + k, "%s%.4f", i ? "," : "", round_acc[i]);
        il_graph_set_meta(outg, "inferlab.federated.round_top1", buf);
        snprintf(ts, sizeof ts, "clients=%d,dirichlet=%g,rounds=%d,local_epochs=%d", a.federated, a.dirichlet,
                 a.rounds, a.local_epochs);
        il_graph_set_meta(outg, "inferlab.federated", ts);
        free(buf);
    }
    if (teacher) {
        snprintf(ts, sizeof ts, "teacher=%s,temperature=%g,alpha=%g%s%s", a.teacher, a.fit.temperature, a.fit.alpha,
                 a.fit.hint_teacher ? ",hint=" : "", a.fit.hint_teacher ? a.fit.hint_teacher : "");
        il_graph_set_meta(outg, "inferlab.distill", ts);
    }
    if ((st = il_onnx_save(outg, a.out))) { cli_fail(st, a.out); goto done; }
    printf("wrote %s\n", a.out);
    rc = 0;
done:
    free(round_acc);
    il_trainer_free(t);
    il_graph_free(g), il_graph_free(teacher), il_graph_free(outg);
    il_data_free(train), il_data_free(test);
    return rc;
}

int cmd_train(int argc, char **argv) { return train_or_distill(argc, argv, "train"); }
int cmd_distill(int argc, char **argv) { return train_or_distill(argc, argv, "distill"); }

il_status cli_model_data(const il_graph *g, const char *spec, int split, il_dataset **d, il_preproc *p) {
    il_status st = il_data_load(spec, (il_split)split, d);
    if (!st) st = il_preproc_from_meta(g, p);
    if (!st) {
        /* the model's scale replaces the loader's [0,1] scaling only where they differ */
        il_dataset *s = *d;
        if (p->scale != s->scale)
            for (int64_t i = 0; i < s->n * s->c * s->h * s->w; i++) s->x[i] = (float)(s->x[i] / s->scale * p->scale);
        st = il_preproc_geometry(p, s);
    }
    return st;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *data = "fashion-mnist:test", *plot = NULL;
    long long batch = 256, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: inferlab eval MODEL.onnx [--data SPEC (fashion-mnist:test)] [--batch B] [--threads N]\n"
                   "                     [--plot FILE.svg|.png|.pdf]   the confusion matrix as a heat map (gnuplot)\n");
            return 0;
        } else if (!strcmp(argv[i], "--plot")) {
            if (!v) { fprintf(stderr, "inferlab: --plot needs a file name\n"); return 2; }
            plot = v, i++;
        } else if (!strcmp(argv[i], "--data")) {
            if (!v) { fprintf(stderr, "inferlab: --data needs a value\n"); return 2; }
            data = v, i++;
        } else if (!strcmp(argv[i], "--batch")) {
            if (!cli_int("--batch", v, &batch) || batch < 1) return 2;
            i++;
        } else if (!strcmp(argv[i], "--threads")) {
            if (!cli_int("--threads", v, &threads) || threads < 1) return 2;
            i++;
        } else if (argv[i][0] == '-' || model) {
            fprintf(stderr, "inferlab: eval: unexpected argument '%s'\n", argv[i]);
            return 2;
        } else {
            model = argv[i];
        }
    }
    if (!model) {
        fprintf(stderr, "usage: inferlab eval MODEL.onnx [--data SPEC] [--plot FILE.svg]\n");
        return 2;
    }
    const char *ext = plot ? strrchr(plot, '.') : NULL;
    if (plot && (!ext || (strcmp(ext, ".svg") && strcmp(ext, ".png") && strcmp(ext, ".pdf")))) {
        fprintf(stderr, "inferlab: --plot %s: the file name must end in .svg, .png or .pdf\n", plot);
        return 2;
    }
    il_graph *g = cli_load(model);
    if (!g) return 1;
    il_dataset *d = NULL;
    il_preproc p;
    il_eval_result r = {0};
    il_status st = cli_model_data(g, data, IL_SPLIT_TEST, &d, &p);
    if (!st) st = il_evaluate(g, d, &p, (int)batch, threads ? (int)threads : il_num_cores(), &r);
    int rc = 0;
    if (st == IL_ERR_SHAPE && !strcmp(data, "fashion-mnist:test")) /* the default does not fit this model */
        il_error_wrap(st, "%s is evaluated on Fashion-MNIST (1x28x28 images) unless --data SPEC names its data set "
                      "(folder:DIR, mnist:DIR, cifar10:DIR, ...): ", model);
    if (st) rc = cli_fail(st, NULL);
    else {
        const char *lab = il_graph_get_meta(g, "inferlab.labels");
        printf("%s on %s\n", model, data);
        il_eval_print(&r, lab ? lab : d->labels, stdout);
        if (plot) {
            char title[512];
            snprintf(title, sizeof title, "%s on %s: top-1 %.2f%%", model, data, 100 * r.top1);
            if ((st = il_plot_confusion(r.confusion, r.k, lab ? lab : d->labels, title, plot))) rc = cli_fail(st, plot);
            else printf("\nwrote %s\n", plot);
        }
    }
    free(r.confusion);
    il_data_free(d);
    il_graph_free(g);
    return rc;
}
