/*
 * test_prune.c - magnitude pruning (prune/): every criterion and scope on weights with known
 * answers, exclusions, bad options, outputs against hand-zeroed weights, the recipe.
 * Fine-tuning, the scan, the plugin and the command: tests/test_prune_train.c.
 */
#include "prune_fixture.h"

/* Every removed weight of `before` is no larger than every kept one (the smallest went). */
static int smallest_removed(const il_tensor *before, const il_tensor *after) {
    double max_removed = 0, min_kept = INFINITY;
    for (int64_t i = 0; i < il_tensor_numel(before); i++) {
        double a = fabs(((const float *)before->data)[i]), b = ((const float *)after->data)[i];
        if (b == 0) max_removed = fmax(max_removed, a);
        else {
            min_kept = fmin(min_kept, a);
            if (b != ((const float *)before->data)[i]) return 0; /* kept weights untouched */
        }
    }
    return max_removed <= min_kept;
}

/* ---------------------------------------------------------------- criteria and scopes */

static void test_layers(void) {
    il_graph *g = three_layer(1, 1.0);
    il_prune_layer *l;
    int n;
    IL_ASSERT_OK(il_prune_find_layers(g, &l, &n));
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(l[0].name, "conv");
    CU_ASSERT(l[0].rows == 4 && l[0].cols == 27 && l[0].rs == 27 && l[0].cs == 1);
    /* Gemm B [K=64, N=5]: rows are the 5 outputs, walking K strides by 5 */
    CU_ASSERT(l[1].rows == 5 && l[1].cols == 64 && l[1].rs == 1 && l[1].cs == 5);
    CU_ASSERT(l[2].rows == 8 && l[2].cols == 5 && l[2].rs == 1 && l[2].cs == 8);
    il_prune_layers_free(l, n);
    il_graph_free(g);
}

static void test_magnitude_exact(void) {
    const double levels[] = {0.0, 0.3, 0.5, 0.9};
    for (size_t k = 0; k < sizeof levels / sizeof *levels; k++) {
        il_graph *g = three_layer(2, 1.0), *dense = il_graph_clone(g);
        il_prune_opts o = {.scope = IL_PRUNE_LAYERWISE, .sparsity = levels[k]};
        il_prune_report r;
        IL_ASSERT_OK(il_prune_apply(g, &o, &r));
        const char *names[] = {"conv.w", "gemm.b", "mm.w"};
        for (int i = 0; i < 3; i++) {
            const il_tensor *w = weight(g, names[i]);
            CU_ASSERT_EQUAL(zeros(w), llround(levels[k] * (double)il_tensor_numel(w)));
            CU_ASSERT_EQUAL(r.layers[i].zeros, zeros(w));
            CU_ASSERT(smallest_removed(weight(dense, names[i]), w));
            /* the mask says the same as the zeros */
            for (int64_t j = 0; j < il_tensor_numel(w); j++)
                CU_ASSERT_EQUAL(((unsigned char *)r.layers[i].mask->data)[j], ((float *)w->data)[j] != 0);
        }
        il_prune_report_free(&r);
        il_graph_free(g), il_graph_free(dense);
    }
}

/* One threshold across layers whose weights differ 100x in scale: the small layer goes first. */
static void test_global_threshold(void) {
    il_graph *g = three_layer(3, 0.01), *dense = il_graph_clone(g);
    int64_t total = 108 + 320 + 40;
    il_prune_opts o = {.scope = IL_PRUNE_GLOBAL, .sparsity = 0.5};
    il_prune_report r;
    IL_ASSERT_OK(il_prune_apply(g, &o, &r));
    CU_ASSERT_EQUAL(r.zeros, llround(0.5 * (double)total));
    /* all 234 from the 0.01-scale layer (|w| < 0.0106 there, > 0.05 elsewhere) */
    CU_ASSERT_EQUAL(zeros(weight(g, "gemm.b")), 234);
    CU_ASSERT_EQUAL(zeros(weight(g, "conv.w")) + zeros(weight(g, "mm.w")), 0);
    /* whatever the layer: removed |w| <= threshold < kept |w| */
    const char *names[] = {"conv.w", "gemm.b", "mm.w"};
    for (int i = 0; i < 3; i++) {
        const il_tensor *a = weight(dense, names[i]), *b = weight(g, names[i]);
        for (int64_t j = 0; j < il_tensor_numel(a); j++) {
            double v = fabs(((float *)a->data)[j]);
            CU_ASSERT(((float *)b->data)[j] == 0 ? v <= r.threshold : v > r.threshold);
        }
    }
    il_prune_report_free(&r);
    il_graph_free(g);
    /* 70%: now the big layers lose 328 - 320 = 8 between them, the smallest of them */
    g = three_layer(3, 0.01);
    o.sparsity = 0.7;
    IL_ASSERT_OK(il_prune_apply(g, &o, &r));
    CU_ASSERT_EQUAL(r.zeros, llround(0.7 * (double)total));
    CU_ASSERT_EQUAL(zeros(weight(g, "conv.w")) + zeros(weight(g, "mm.w")), llround(0.7 * (double)total) - 320);
    il_prune_report_free(&r);
    il_graph_free(g), il_graph_free(dense);
}

/* Every group of m consecutive weights along the reduction keeps exactly n, its largest. */
static void check_nm(const il_tensor *before, const il_tensor *after, const il_prune_layer *l, int n, int m) {
    const float *a = before->data, *b = after->data;
    for (int64_t r = 0; r < l->rows; r++)
        for (int64_t g0 = 0; g0 < l->cols; g0 += m) {
            int kept = 0;
            double min_kept = INFINITY, max_removed = 0;
            for (int i = 0; i < m; i++) {
                int64_t j = r * l->rs + (g0 + i) * l->cs;
                if (b[j] != 0) kept++, min_kept = fmin(min_kept, fabs(a[j]));
                else max_removed = fmax(max_removed, fabs(a[j]));
            }
            CU_ASSERT_EQUAL(kept, n);
            CU_ASSERT(max_removed <= min_kept);
        }
}

static void test_nm(void) {
    const int pat[][2] = {{2, 4}, {1, 4}, {4, 8}};
    for (int p = 0; p < 3; p++) {
        il_graph *g = three_layer(4, 1.0), *dense = il_graph_clone(g);
        il_prune_opts o = {.scope = IL_PRUNE_NM, .nm_n = pat[p][0], .nm_m = pat[p][1]};
        il_prune_report r;
        IL_ASSERT_OK(il_prune_apply(g, &o, &r));
        il_prune_layer *l;
        int n;
        IL_ASSERT_OK(il_prune_find_layers(dense, &l, &n));
        /* conv (cols 27) and mm (cols 5) are not multiples of 4: left dense, said why */
        CU_ASSERT(r.layers[0].excluded && strstr(r.layers[0].why, "27"));
        CU_ASSERT(r.layers[2].excluded && zeros(weight(g, "mm.w")) == 0);
        CU_ASSERT_FALSE(r.layers[1].excluded);
        check_nm(weight(dense, "gemm.b"), weight(g, "gemm.b"), &l[1], pat[p][0], pat[p][1]);
        CU_ASSERT_EQUAL(zeros(weight(g, "gemm.b")), 320 - 320 * pat[p][0] / pat[p][1]);
        il_prune_layers_free(l, n);
        il_prune_report_free(&r);
        il_graph_free(g), il_graph_free(dense);
    }
}

/* Rows with known norms: L1 and L2 disagree on which row is weaker. */
static void test_filter_norms(void) {
    il_graph *g = il_graph_new("f");
    il_graph_set_opset(g, "", 17);
    int64_t xd[2] = {1, 4}, bd[2] = {3, 4};
    int x = add_input(g, "x", 2, xd), y = il_graph_value(g, "y");
    il_tensor *b = il_tensor_new(IL_F32, 2, bd);
    const float rows[3][4] = {{3, 0, 0, 0}, {1, 1, 1, 1}, {5, 5, 5, 5}}; /* L1 3, 4, 20; L2 3, 2, 10 */
    memcpy(b->data, rows, sizeof rows);
    int in[2] = {x, il_graph_add_constant(g, "fc.w", b)};
    int k = il_graph_add_node(g, "Gemm", "", "fc", 2, in, 1, &y);
    il_node_set_int(g, k, "transB", 1);
    il_graph_add_output(g, y);
    for (int p = 1; p <= 2; p++) {
        il_graph *c = il_graph_clone(g);
        il_prune_opts o = {.criterion = p == 1 ? "l1-filter" : "l2-filter", .sparsity = 0.34}; /* round(1.02): one row */
        IL_ASSERT_OK(il_prune_apply(c, &o, NULL));
        const float *w = weight(c, "fc.w")->data;
        int gone = p == 1 ? 0 : 1; /* L1 drops {3,0,0,0}; L2 drops {1,1,1,1} */
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 4; j++) CU_ASSERT_EQUAL(w[r * 4 + j], r == gone ? 0.0f : rows[r][j]);
        il_graph_free(c);
    }
    /* a row criterion cannot set one global threshold or N:M groups */
    il_prune_opts bad = {.criterion = "l1-filter", .scope = IL_PRUNE_GLOBAL, .sparsity = 0.5};
    CU_ASSERT_EQUAL(il_prune_apply(g, &bad, NULL), IL_ERR_INVALID);
    bad.scope = IL_PRUNE_NM, bad.nm_n = 2, bad.nm_m = 4;
    CU_ASSERT_EQUAL(il_prune_apply(g, &bad, NULL), IL_ERR_INVALID);
    CU_ASSERT_EQUAL(zeros(weight(g, "fc.w")), 3); /* refused: unchanged (the three zeros of row 0) */
    il_graph_free(g);
}

static void test_exclusions(void) {
    il_graph *g = three_layer(5, 1.0);
    const char *ex[] = {"first", "mm"};
    il_prune_opts o = {.sparsity = 0.5, .exclude = ex, .n_exclude = 2};
    il_prune_report r;
    IL_ASSERT_OK(il_prune_apply(g, &o, &r));
    CU_ASSERT_EQUAL(zeros(weight(g, "conv.w")), 0);
    CU_ASSERT_EQUAL(zeros(weight(g, "gemm.b")), 160);
    CU_ASSERT_EQUAL(zeros(weight(g, "mm.w")), 0);
    CU_ASSERT(r.layers[0].excluded && r.layers[2].excluded && !r.layers[0].mask);
    il_prune_report_free(&r);
    /* "last" and a weight's name; per-layer sparsity by name */
    const char *ex2[] = {"last", "conv.w"}, *ln[] = {"gemm"};
    const double ls[] = {0.25};
    il_prune_opts o2 = {.sparsity = 0.9, .exclude = ex2, .n_exclude = 2, .layer_names = ln, .layer_sparsity = ls,
                        .n_layer_sparsity = 1};
    il_graph_free(g);
    g = three_layer(5, 1.0);
    IL_ASSERT_OK(il_prune_apply(g, &o2, NULL));
    CU_ASSERT_EQUAL(zeros(weight(g, "conv.w")) + zeros(weight(g, "mm.w")), 0);
    CU_ASSERT_EQUAL(zeros(weight(g, "gemm.b")), 80);
    /* an unknown name is an error naming the model's layers, and changes nothing */
    il_graph_free(g);
    g = three_layer(5, 1.0);
    const char *ex3[] = {"nosuch"};
    il_prune_opts o3 = {.sparsity = 0.5, .exclude = ex3, .n_exclude = 1};
    CU_ASSERT_EQUAL(il_prune_apply(g, &o3, NULL), IL_ERR_INVALID);
    CU_ASSERT(strstr(il_errmsg(), "nosuch") && strstr(il_errmsg(), "conv, gemm, mm"));
    CU_ASSERT_EQUAL(zeros(weight(g, "gemm.b")), 0);
    il_graph_free(g);
}

static void test_bad_options(void) {
    il_graph *g = three_layer(6, 1.0);
    il_prune_opts o = {.sparsity = 1.5};
    CU_ASSERT_EQUAL(il_prune_apply(g, &o, NULL), IL_ERR_INVALID);
    CU_ASSERT(strstr(il_errmsg(), "1.5") != NULL);
    o.sparsity = -0.1;
    CU_ASSERT_EQUAL(il_prune_apply(g, &o, NULL), IL_ERR_INVALID);
    o.sparsity = NAN;
    CU_ASSERT_EQUAL(il_prune_apply(g, &o, NULL), IL_ERR_INVALID);
    il_prune_opts nm = {.scope = IL_PRUNE_NM, .nm_n = 5, .nm_m = 4};
    CU_ASSERT_EQUAL(il_prune_apply(g, &nm, NULL), IL_ERR_INVALID);
    CU_ASSERT(strstr(il_errmsg(), "5:4") != NULL);
    il_prune_opts cr = {.criterion = "nosuch", .sparsity = 0.5};
    CU_ASSERT_EQUAL(il_prune_apply(g, &cr, NULL), IL_ERR_INVALID);
    CU_ASSERT(strstr(il_errmsg(), "magnitude") != NULL); /* the known ones are listed */
    CU_ASSERT_EQUAL(zeros(weight(g, "conv.w")) + zeros(weight(g, "gemm.b")) + zeros(weight(g, "mm.w")), 0);
    il_graph_free(g);
}

/* The pruned model computes what the dense model computes with the same weights zeroed by
 * hand: the engine's reference kernels, outputs equal to the bit. */
static void test_outputs_match_hand_zeroed(void) {
    il_graph *g = three_layer(7, 1.0), *hand = il_graph_clone(g);
    il_prune_opts o = {.sparsity = 0.6};
    IL_ASSERT_OK(il_prune_apply(g, &o, NULL));
    const char *names[] = {"conv.w", "gemm.b", "mm.w"};
    for (int i = 0; i < 3; i++) { /* zero the round(0.6 n) smallest |w|, found by a plain selection */
        il_tensor *w = hand->values[il_graph_find_value(hand, names[i])].constant;
        float *d = w->data;
        int64_t n = il_tensor_numel(w), k = llround(0.6 * (double)n);
        for (int64_t z = 0; z < k; z++) {
            int64_t best = -1;
            for (int64_t j = 0; j < n; j++)
                if (d[j] != 0 && (best < 0 || fabsf(d[j]) < fabsf(d[best]))) best = j;
            d[best] = 0;
        }
    }
    int64_t xd[4] = {2, 3, 6, 6};
    il_tensor *x = il_tensor_new(IL_F32, 4, xd);
    uint64_t rng = 11;
    il_tensor_fill_random(x, &rng, -1, 1);
    il_plan_opts po = {.threads = 1, .reference = 1};
    il_tensor **a, **b;
    int na, nb;
    IL_ASSERT_OK(il_run_model(g, &x, 1, &po, &a, &na));
    IL_ASSERT_OK(il_run_model(hand, &x, 1, &po, &b, &nb));
    CU_ASSERT(il_test_tensors_equal(a[0], b[0]));
    for (int i = 0; i < na; i++) il_tensor_free(a[i]);
    for (int i = 0; i < nb; i++) il_tensor_free(b[i]);
    free(a), free(b);
    il_tensor_free(x);
    il_graph_free(g), il_graph_free(hand);
}

/* ---------------------------------------------------------------- recipe */

static void test_recipe(void) {
    il_graph *g = three_layer(8, 1.0);
    const char *ex[] = {"la\"st"};
    il_prune_opts o = {.scope = IL_PRUNE_NM, .nm_n = 2, .nm_m = 4};
    il_prune_report r;
    IL_ASSERT_OK(il_prune_apply(g, &o, &r));
    il_prune_recipe rc = {"nm", "oneshot", 0, 1, "fashion-mnist:train:64", NULL, 0.05};
    IL_ASSERT_OK(il_prune_set_recipe(g, &o, &r, &rc));
    const char *j = il_graph_get_meta(g, "inferlab.prune");
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    char v[256];
    expect_json(j, "$.method", "nm");
    expect_json(j, "$.nm", "2:4");
    expect_json(j, "$.sparsity", "0.5");
    expect_json(j, "$.finetune_epochs", "1");
    expect_json(j, "$.data", "fashion-mnist:train:64");
    expect_json(j, "$.lr", "0.05");
    json_get(j, "$.pruned_weights", v, sizeof v);
    CU_ASSERT_EQUAL(atoll(v), 160);
    expect_json(j, "$.layers.gemm.achieved", "0.5");
    expect_json(j, "$.layers.conv.asked", "0");
    json_get(j, "$.skipped.conv", v, sizeof v);
    CU_ASSERT(strstr(v, "not a multiple of 4") != NULL);
    json_get(j, "$.achieved", v, sizeof v);
    CU_ASSERT_DOUBLE_EQUAL(atof(v), 160.0 / 468, 1e-5);
    /* the recipe survives export and reload */
    const char *path = il_test_tmp("recipe.onnx");
    IL_ASSERT_OK(il_onnx_save(g, path));
    il_graph *back;
    IL_ASSERT_OK(il_onnx_load(path, &back));
    CU_ASSERT_STRING_EQUAL(il_graph_get_meta(back, "inferlab.prune"), j);
    il_graph_free(back);
    /* names that need escaping stay valid JSON */
    free(r.layers[0].name);
    r.layers[0].name = strdup(ex[0]);
    char *s = il_prune_recipe_json(&o, &r, NULL);
    sqlite3 *db;
    sqlite3_stmt *q;
    sqlite3_open(":memory:", &db);
    sqlite3_prepare_v2(db, "SELECT key FROM json_each(?1, '$.layers') LIMIT 1", -1, &q, NULL);
    sqlite3_bind_text(q, 1, s, -1, SQLITE_STATIC);
    CU_ASSERT(sqlite3_step(q) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(q, 0), ex[0]));
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(s);
    il_prune_report_free(&r);
    /* a recipe written elsewhere (channel pruning's) gains the schedule; none: an error */
    il_graph_set_meta(g, "inferlab.prune", "{\"method\":\"channel\",\"sparsity\":0.5}");
    il_prune_recipe gr = {"channel", "oneshot", 0, 2, "fashion-mnist:train", "self"};
    IL_ASSERT_OK(il_prune_extend_recipe(g, &gr));
    j = il_graph_get_meta(g, "inferlab.prune");
    expect_json(j, "$.method", "channel");
    expect_json(j, "$.finetune_epochs", "2");
    expect_json(j, "$.teacher", "self");
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "\"lr\":null")); /* no learning rate given: null */
    il_graph_set_meta(g, "inferlab.prune", "[1,2]");
    CU_ASSERT_EQUAL(il_prune_extend_recipe(g, &gr), IL_ERR_INVALID);
    il_graph_free(g);
    g = three_layer(8, 1.0);
    CU_ASSERT_EQUAL(il_prune_extend_recipe(g, &gr), IL_ERR_INVALID);
    il_graph_free(g);
}

IL_SUITE("prune", {"layers", test_layers}, {"magnitude exact", test_magnitude_exact},
         {"global threshold", test_global_threshold}, {"n:m", test_nm}, {"filter norms", test_filter_norms},
         {"exclusions", test_exclusions}, {"bad options", test_bad_options},
         {"outputs match hand-zeroed", test_outputs_match_hand_zeroed}, {"recipe", test_recipe})
