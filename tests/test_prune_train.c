/*
 * test_prune_train.c - pruning with training and around it: Zhu & Gupta's schedule, masks that
 * survive fine-tuning (and il_fit's mask hook), the sensitivity scan and its table, a criterion
 * plugin, and `inferlab prune` through the real binary (errors and whole runs).
 */
#include "../bench/bench.h"
#include "../passes/passes.h"
#include "prune_fixture.h"

/* ---------------------------------------------------------------- schedule and fine-tuning */

static void test_gradual_schedule(void) {
    CU_ASSERT_DOUBLE_EQUAL(il_prune_gradual_sparsity(0, 0.8, 0, 4), 0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(il_prune_gradual_sparsity(0, 0.8, 4, 4), 0.8, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(il_prune_gradual_sparsity(0, 0.8, 2, 4), 0.8 - 0.8 / 8, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(il_prune_gradual_sparsity(0.2, 0.8, 1, 4), 0.8 - 0.6 * 27.0 / 64, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(il_prune_gradual_sparsity(0, 0.8, 9, 4), 0.8, 1e-12); /* clamped */
    for (int t = 1; t <= 10; t++) /* rises, fast first */
        CU_ASSERT(il_prune_gradual_sparsity(0, 0.9, t, 10) > il_prune_gradual_sparsity(0, 0.9, t - 1, 10));
}

static il_graph *mlp(void) {
    il_zoo_opts zo;
    il_zoo_defaults(&zo);
    zo.width = 32;
    il_graph *g;
    IL_ASSERT_OK(il_zoo_build("mlp", &zo, &g));
    return g;
}

/* Zeroed weights stay zero through fine-tuning; the rest train. */
static void test_masks_fixed(void) {
    il_dataset *d = NULL;
    IL_ASSERT_OK(il_data_load("fashion-mnist:train:96", IL_SPLIT_TRAIN, &d));
    il_preproc p;
    il_preproc_init(&p, 1);
    for (int gradual = 0; gradual <= 1; gradual++) {
        il_graph *g = mlp(), *before = NULL;
        il_prune_opts o = {.scope = gradual ? IL_PRUNE_GLOBAL : IL_PRUNE_LAYERWISE, .sparsity = 0.7};
        il_prune_finetune_opts f = {.gradual_steps = gradual ? 3 : 0};
        il_fit_defaults(&f.fit);
        f.fit.epochs = 1, f.fit.batch = 16, f.fit.threads = 2;
        f.fit.optim.lr = 0.05, f.fit.optim.weight_decay = 0.01; /* decay and momentum push every weight */
        if (!gradual) { /* the masks of a one-shot prune, to compare with */
            before = il_graph_clone(g);
            IL_ASSERT_OK(il_prune_apply(before, &o, NULL));
        }
        il_prune_report r;
        IL_ASSERT_OK(il_prune_finetune(&g, &o, &f, d, &p, &r));
        CU_ASSERT_EQUAL(r.zeros, llround(0.7 * (double)r.numel));
        CU_ASSERT_STRING_EQUAL(r.layers[0].op, "Gemm"); /* the report outlives the graph it was made from */
        int64_t moved = 0;
        for (int i = 0; i < r.n; i++) {
            const il_tensor *w = weight(g, r.layers[i].weight);
            const unsigned char *m = r.layers[i].mask->data;
            for (int64_t j = 0; j < il_tensor_numel(w); j++) {
                if (!m[j]) CU_ASSERT_EQUAL(((float *)w->data)[j], 0.0f);
                if (before) {
                    float b = ((float *)weight(before, r.layers[i].weight)->data)[j];
                    CU_ASSERT_EQUAL(b == 0, !m[j]); /* one-shot: the masks are the ones pruning chose */
                    moved += m[j] && b != ((float *)w->data)[j];
                }
            }
        }
        if (before) CU_ASSERT(moved > r.numel / 4); /* training did change the kept weights */
        il_prune_report_free(&r);
        il_graph_free(g), il_graph_free(before);
    }
    il_data_free(d);
}

/* il_fit's mask hook directly: a bad name or size is refused before training. */
static void test_fit_mask_errors(void) {
    il_dataset *d = NULL;
    IL_ASSERT_OK(il_data_load("fashion-mnist:train:32", IL_SPLIT_TRAIN, &d));
    il_preproc p;
    il_preproc_init(&p, 1);
    il_graph *g = mlp();
    il_trainer *t;
    il_trainer_opts to = {.threads = 1, .seed = 1};
    IL_ASSERT_OK(il_trainer_create(g, &to, &t));
    il_fit_opts fo;
    il_fit_defaults(&fo);
    fo.epochs = 1, fo.batch = 16, fo.threads = 1;
    int64_t dims[1] = {3};
    il_tensor *m = il_tensor_new(IL_U8, 1, dims);
    const char *name = "nosuch";
    const il_tensor *masks[1] = {m};
    fo.n_masks = 1, fo.mask_params = &name, fo.masks = masks;
    il_fit_result fr;
    CU_ASSERT_EQUAL(il_fit(t, d, &p, &fo, &fr), IL_ERR_INVALID);
    CU_ASSERT(strstr(il_errmsg(), "nosuch") != NULL);
    il_tensor *w;
    name = il_trainer_param(t, 0, &w, NULL);
    CU_ASSERT_EQUAL(il_fit(t, d, &p, &fo, &fr), IL_ERR_SHAPE); /* 3 elements, not the parameter's */
    il_tensor_free(m);
    il_trainer_free(t);
    il_graph_free(g);
    il_data_free(d);
}

/* ---------------------------------------------------------------- scan */

/* A stand-in accuracy: 1 minus the zeroed fraction of one layer's weights, so each layer's
 * curve is known in advance. */
static il_status fake_accuracy(const il_graph *g, void *ctx, double *acc) {
    const il_tensor *w = weight(g, "gemm.b");
    *acc = 1.0 - (double)zeros(w) / (double)il_tensor_numel(w);
    (*(int *)ctx)++;
    return IL_OK;
}

static void test_scan(void) {
    il_graph *g = three_layer(9, 1.0);
    const double levels[] = {0.25, 0.5, 0.75};
    const char *ex[] = {"mm"};
    il_prune_opts o = {.exclude = ex, .n_exclude = 1};
    il_prune_scan_point *p;
    int n, calls = 0;
    double dense;
    IL_ASSERT_OK(il_prune_scan(g, &o, levels, 3, fake_accuracy, &calls, &dense, &p, &n, NULL));
    CU_ASSERT_EQUAL_FATAL(n, 6); /* conv and gemm, 3 levels each */
    CU_ASSERT_EQUAL(calls, 7);   /* and the dense model once */
    CU_ASSERT_DOUBLE_EQUAL(dense, 1.0, 1e-12);
    CU_ASSERT_STRING_EQUAL(p[0].layer, "conv");
    CU_ASSERT_STRING_EQUAL(p[3].layer, "gemm");
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_DOUBLE_EQUAL(p[k].accuracy, 1.0, 1e-12); /* conv pruned alone: gemm untouched */
        CU_ASSERT_DOUBLE_EQUAL(p[3 + k].accuracy, 1.0 - levels[k], 1e-12);
    }
    CU_ASSERT_EQUAL(il_tensor_numel(weight(g, "gemm.b")) - zeros(weight(g, "gemm.b")), 320); /* g untouched */
    const char **names;
    double *sp;
    int nl;
    IL_ASSERT_OK(il_prune_scan_pick(p, n, dense, 0.3, &names, &sp, &nl));
    CU_ASSERT_EQUAL_FATAL(nl, 2);
    CU_ASSERT_DOUBLE_EQUAL(sp[0], 0.75, 1e-12); /* conv: no loss at any level */
    CU_ASSERT_DOUBLE_EQUAL(sp[1], 0.25, 1e-12); /* gemm: 0.5 would cost 0.5 > 0.3 */
    free(names), free(sp);
    /* the table beside the bench store's, which still opens the file */
    const char *db = il_test_tmp("scan.db");
    IL_ASSERT_OK(il_prune_scan_save(db, "three.onnx", "abc", "magnitude", "fake", 10, dense, p, n));
    IL_ASSERT_OK(il_prune_scan_save(db, "three.onnx", "abc", "magnitude", "fake", 10, dense, p, n));
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM prune_scan"), 12);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM prune_scan WHERE scan = 2"), 6);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT round(100*accuracy) FROM prune_scan WHERE layer='gemm' AND "
                                          "sparsity=0.75 LIMIT 1"), 25);
    il_store *s;
    IL_ASSERT_OK(il_store_open(db, &s));
    il_store_close(s);
    il_prune_scan_free(p, n);
    /* an exclusion that names nothing is an error here too */
    const char *bad[] = {"nosuch"};
    o.exclude = bad;
    CU_ASSERT_EQUAL(il_prune_scan(g, &o, levels, 3, fake_accuracy, &calls, &dense, &p, &n, NULL), IL_ERR_INVALID);
    il_graph_free(g);
}

/* ---------------------------------------------------------------- plugin */

static void test_plugin_criterion(void) {
    if (!il_prune_find_criterion("random")) IL_ASSERT_OK(il_pass_load_plugin(il_test_plugin("prune_random")));
    CU_ASSERT_PTR_NOT_NULL_FATAL(il_prune_find_criterion("random"));
    il_graph *a = three_layer(10, 1.0), *b = il_graph_clone(a);
    il_prune_opts o = {.criterion = "random", .scope = IL_PRUNE_GLOBAL, .sparsity = 0.5};
    il_prune_report r;
    IL_ASSERT_OK(il_prune_apply(a, &o, &r));
    CU_ASSERT_EQUAL(r.zeros, 234);
    il_prune_report_free(&r);
    IL_ASSERT_OK(il_prune_apply(b, &o, NULL)); /* seeded: the same weights go */
    CU_ASSERT(il_test_tensors_equal(weight(a, "gemm.b"), weight(b, "gemm.b")));
    /* a second registration under the name is refused */
    CU_ASSERT_EQUAL(il_prune_register_criterion(il_prune_find_criterion("random")), IL_ERR_INVALID);
    il_graph_free(a), il_graph_free(b);
}

/* ---------------------------------------------------------------- the command */

static void expect_fail(const char *args, const char *want) {
    char out[8192];
    int rc = il_test_cli(args, out, sizeof out);
    if ((rc != 1 && rc != 2) || !strstr(out, want))
        fprintf(stderr, "\n  `inferlab %s` exited %d, want '%s' in:\n%s\n", args, rc, want, out);
    CU_ASSERT(rc == 1 || rc == 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    CU_ASSERT_PTR_NULL(strstr(out, "Sanitizer"));
}

static void test_cli(void) {
    const char *in = il_test_tmp("dense.onnx"), *out = il_test_tmp("pruned.onnx");
    il_graph *g = three_layer(12, 1.0);
    IL_ASSERT_OK(il_onnx_save(g, in));
    il_graph_free(g);
    char args[2048];
    static const struct {
        const char *flags, *want;
    } bad[] = {
        {"--method magnitude --sparsity 1.5", "--sparsity 1.5 is outside [0, 1)"},
        {"--method nosuch --sparsity 0.5", "unknown --method 'nosuch'"},
        {"--method nm --nm 5:4", "--nm 5:4"},
        {"--method nm --nm two", "--nm expects N:M"},
        {"--method magnitude", "needs --sparsity"},
        {"--method magnitude --sparsity 0.5 --exclude nosuch", "'nosuch': no prunable layer"},
        {"--method magnitude --sparsity 0.5 --bogus 1", "unknown option '--bogus'"},
        {"--method global --sparsity 0.5 --criterion l2-filter", "l2-filter"},
        {"--method magnitude --sparsity 0.5 --schedule gradual", "--finetune"},
        {"--method channel --sparsity 0.5 --criterion magnitude", "l1-filter or l2-filter"},
        {"--method global --sparsity 0.5 --layer-sparsity gemm=0.2", "goes with --method magnitude"},
        {"--method channel --sparsity 0.5 --augment crop", "--augment is for fine-tuning"},
        {"--method channel --sparsity 0.5 --finetune 1 --augment rotate", "--augment expects none, crop, flip"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(args, sizeof args, "prune %s -o %s %s", in, out, bad[i].flags);
        expect_fail(args, bad[i].want);
    }
    snprintf(args, sizeof args, "prune %s --method magnitude --sparsity 0.5", in);
    expect_fail(args, "-o OUT.onnx");
    snprintf(args, sizeof args, "prune /nonexistent.onnx -o %s --method magnitude --sparsity 0.5", out);
    expect_fail(args, "nonexistent.onnx");
    /* a whole run: the file has the zeros and the recipe, the JSON says so */
    char o[16384];
    snprintf(args, sizeof args, "prune %s -o %s --method global --sparsity 0.5 --exclude last --json", in, out);
    CU_ASSERT_EQUAL_FATAL(il_test_cli(args, o, sizeof o), 0);
    char v[256];
    expect_json(o, "$.recipe.method", "global");
    expect_json(o, "$.recipe.excluded[0]", "mm");
    json_get(o, "$.recipe.pruned_weights", v, sizeof v);
    CU_ASSERT_EQUAL(atoll(v), 214); /* round(0.5 * 428) */
    il_graph *p;
    IL_ASSERT_OK(il_onnx_load(out, &p));
    CU_ASSERT_EQUAL(zeros(weight(p, "conv.w")) + zeros(weight(p, "gemm.b")), 214);
    expect_json(il_graph_get_meta(p, "inferlab.prune"), "$.scope", "global");
    il_graph_free(p);
    /* channels removed for real (prune/channel.h), the recipe theirs with our schedule added */
    snprintf(args, sizeof args, "prune %s -o %s --method channel --sparsity 0.5 --json", in, out);
    CU_ASSERT_EQUAL_FATAL(il_test_cli(args, o, sizeof o), 0);
    expect_json(o, "$.recipe.method", "channel");
    expect_json(o, "$.recipe.schedule", "oneshot");
    IL_ASSERT_OK(il_onnx_load(out, &p));
    CU_ASSERT_EQUAL(weight(p, "conv.w")->dims[0], 2); /* 4 filters -> 2 */
    il_graph_free(p);
    /* the teacher: a scan on 64 test images into a database, per-layer sparsity from it (a drop of
     * up to 100 points allowed: every layer takes the highest level), fine-tuned on 64 images */
    const char *db = il_test_tmp("cli_scan.db");
    snprintf(args, sizeof args, "prune %s/fmnist_teacher.onnx --scan --levels 0.5,0.9 --val fashion-mnist:test:64 "
             "--db %s --max-drop 100 -o %s --finetune 1 --data fashion-mnist:train:64 --batch 32 --json",
             IL_TESTDATA, db, out);
    CU_ASSERT_EQUAL_FATAL(il_test_cli(args, o, sizeof o), 0);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(*) FROM prune_scan WHERE samples = 64"), 14);
    CU_ASSERT_EQUAL(il_test_db_scalar(db, "SELECT count(DISTINCT layer) FROM prune_scan"), 7);
    json_get(o, "$.scan.layers.fc[1]", v, sizeof v);
    CU_ASSERT(v[0] != 0);
    expect_json(o, "$.recipe.method", "scan");
    expect_json(o, "$.recipe.finetune_epochs", "1");
    expect_json(o, "$.recipe.layers.fc.asked", "0.9");
    expect_json(o, "$.recipe.layers.fc.achieved", "0.9"); /* the mask held through fine-tuning */
    /* channels removed, then distilled from the unpruned model ("self"): it must learn from the
     * dense teacher (about 75% on 1,024 images), not from itself pruned (chance, 10%) */
    snprintf(args, sizeof args, "prune %s/fmnist_teacher.onnx -o %s --method channel --sparsity 0.5 --finetune 1 "
             "--data fashion-mnist:train:1024 --teacher self --val fashion-mnist:test:500 --json", IL_TESTDATA, out);
    CU_ASSERT_EQUAL_FATAL(il_test_cli(args, o, sizeof o), 0);
    json_get(o, "$.pruned_top1", v, sizeof v);
    CU_ASSERT(atof(v) > 0.4);
    CU_ASSERT(strstr(o, "\"augment\":null") != NULL);
    /* --augment reaches the trainer: the same run (seed, data, teacher) with crop+flip trains other weights */
    const char *aug = il_test_tmp("pruned_aug.onnx");
    snprintf(args, sizeof args, "prune %s/fmnist_teacher.onnx -o %s --method channel --sparsity 0.5 --finetune 1 "
             "--data fashion-mnist:train:256 --batch 64 --teacher self --augment crop+flip --json", IL_TESTDATA, aug);
    CU_ASSERT_EQUAL_FATAL(il_test_cli(args, o, sizeof o), 0);
    expect_json(o, "$.recipe.augment", "crop+flip");
    snprintf(args, sizeof args, "prune %s/fmnist_teacher.onnx -o %s --method channel --sparsity 0.5 --finetune 1 "
             "--data fashion-mnist:train:256 --batch 64 --teacher self --augment none --json", IL_TESTDATA, out);
    CU_ASSERT_EQUAL_FATAL(il_test_cli(args, o, sizeof o), 0);
    il_graph *ga, *gn;
    IL_ASSERT_OK(il_onnx_load(aug, &ga));
    IL_ASSERT_OK(il_onnx_load(out, &gn));
    const il_tensor *wa = weight(ga, "block1.1.conv.weight"), *wn = weight(gn, "block1.1.conv.weight");
    CU_ASSERT_FATAL(wa && wn && il_tensor_numel(wa) == il_tensor_numel(wn));
    CU_ASSERT(memcmp(wa->data, wn->data, (size_t)il_tensor_numel(wa) * sizeof(float)) != 0);
    il_graph_free(ga), il_graph_free(gn);
    /* channels on the gradual schedule: zeroed in 2 rounds with training in between (the run
     * fails if a zeroed entry moved), then removed: the one-shot model's size */
    snprintf(args, sizeof args, "prune %s/fmnist_teacher.onnx -o %s --method channel --sparsity 0.5 --finetune 1 "
             "--schedule gradual --steps 2 --data fashion-mnist:train:128 --batch 32 --teacher self --json",
             IL_TESTDATA, out);
    CU_ASSERT_EQUAL_FATAL(il_test_cli(args, o, sizeof o), 0);
    expect_json(o, "$.recipe.schedule", "gradual");
    expect_json(o, "$.recipe.gradual_steps", "2");
    expect_json(o, "$.recipe.params_after", "73114");
    /* criteria listed, a plugin's among them */
    snprintf(args, sizeof args, "prune --list --plugin %s", il_test_plugin("prune_random"));
    CU_ASSERT_EQUAL(il_test_cli(args, o, sizeof o), 0);
    CU_ASSERT(strstr(o, "l1-filter") && strstr(o, "random"));
}

IL_SUITE("prune_train", {"gradual schedule", test_gradual_schedule}, {"masks fixed", test_masks_fixed},
         {"fit mask errors", test_fit_mask_errors}, {"scan", test_scan}, {"plugin criterion", test_plugin_criterion},
         {"cli", test_cli})
