/*
 * test_onnx.c - ONNX import and export.
 *
 * Real models come from Debian's ONNX backend test data; the Python side (python3-onnx of
 * /usr/bin/python3) checks what we write. Tests that need Python print "skipped" and pass
 * when it is missing, so the suite still runs on a bare machine.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "test.h"

#define PY IL_PY
#define tmp il_test_tmp
#define write_bytes il_test_write_bytes
#define have_python il_test_have_python
#define write_msg il_test_write_msg
#define tensors_equal il_test_tensors_equal

static const char *node_model(const char *test) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s/model.onnx", IL_ONNX_NODE_DIR, test);
    return buf;
}

/* ---------------------------------------------------------------- graph equality */


static int strs_equal(const char *a, const char *b) { return !strcmp(a ? a : "", b ? b : ""); }

static int attrs_equal(const il_attr *a, const il_attr *b) {
    if (strcmp(a->name, b->name) || a->type != b->type || a->n != b->n || !strs_equal(a->ref_attr_name, b->ref_attr_name))
        return 0;
    switch (a->type) {
    case IL_ATTR_FLOAT: return !memcmp(&a->f, &b->f, sizeof a->f);
    case IL_ATTR_INT: return a->i == b->i;
    case IL_ATTR_STRING: return a->slen == b->slen && !memcmp(a->s, b->s, a->slen);
    case IL_ATTR_TENSOR: return tensors_equal(a->t, b->t);
    case IL_ATTR_FLOATS: return !a->n || !memcmp(a->floats, b->floats, (size_t)a->n * sizeof(float));
    case IL_ATTR_INTS: return !a->n || !memcmp(a->ints, b->ints, (size_t)a->n * sizeof(int64_t));
    case IL_ATTR_STRINGS:
        for (int i = 0; i < a->n; i++) if (strcmp(a->strings[i], b->strings[i])) return 0;
        return 1;
    case IL_ATTR_TENSORS:
        for (int i = 0; i < a->n; i++) if (!tensors_equal(a->tensors[i], b->tensors[i])) return 0;
        return 1;
    default: return a->raw_len == b->raw_len && !memcmp(a->raw, b->raw, a->raw_len);
    }
}

/* Same graph, value for value and node for node; *why says where they differ. */
static int graphs_equal(const il_graph *a, const il_graph *b, char *why, size_t n) {
#define DIFF(...) do { snprintf(why, n, __VA_ARGS__); return 0; } while (0)
    if (strcmp(a->name, b->name) || a->ir_version != b->ir_version || a->model_version != b->model_version)
        DIFF("graph name / ir_version / model_version");
    if (!strs_equal(a->producer_name, b->producer_name) || !strs_equal(a->producer_version, b->producer_version) ||
        !strs_equal(a->domain, b->domain) || !strs_equal(a->doc, b->doc))
        DIFF("producer / domain / doc");
    if (a->n_opsets != b->n_opsets) DIFF("%d opsets vs %d", a->n_opsets, b->n_opsets);
    for (int i = 0; i < a->n_opsets; i++)
        if (il_graph_opset(b, a->opsets[i].domain) != a->opsets[i].version) DIFF("opset '%s'", a->opsets[i].domain);
    if (a->n_meta != b->n_meta) DIFF("metadata count");
    for (int i = 0; i < a->n_meta; i++)
        if (!strs_equal(il_graph_get_meta(b, a->meta_keys[i]), a->meta_values[i])) DIFF("metadata '%s'", a->meta_keys[i]);
    /* values are matched by name: a graph built in code numbers them differently from an import */
    if (a->n_values != b->n_values) DIFF("%d values vs %d", a->n_values, b->n_values);
    for (int v = 0; v < a->n_values; v++) {
        const il_value *x = &a->values[v];
        int j = il_graph_find_value(b, x->name);
        if (j < 0) DIFF("value '%s' missing", x->name);
        const il_value *y = &b->values[j];
        if (x->dtype != y->dtype || x->rank != y->rank || x->is_input != y->is_input || x->is_output != y->is_output ||
            strcmp(x->producer < 0 ? "" : a->nodes[x->producer].name, y->producer < 0 ? "" : b->nodes[y->producer].name) ||
            !strs_equal(x->doc, y->doc))
            DIFF("value '%s': dtype/rank/io/producer/doc", x->name);
        for (int i = 0; i < x->rank; i++)
            if (x->dims[i] != y->dims[i] || !strs_equal(x->dim_param[i], y->dim_param[i])) DIFF("value '%s': dim %d", x->name, i);
        if (!tensors_equal(x->constant, y->constant)) DIFF("value '%s': constant data", x->name);
    }
#define VNAME(g, v) ((v) < 0 ? "" : (g)->values[v].name)
    if (a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs) DIFF("graph input/output count");
    for (int i = 0; i < a->n_inputs; i++) if (strcmp(VNAME(a, a->inputs[i]), VNAME(b, b->inputs[i]))) DIFF("graph input %d", i);
    for (int i = 0; i < a->n_outputs; i++) if (strcmp(VNAME(a, a->outputs[i]), VNAME(b, b->outputs[i]))) DIFF("graph output %d", i);
    if (a->n_nodes != b->n_nodes) DIFF("%d nodes vs %d", a->n_nodes, b->n_nodes);
    for (int k = 0; k < a->n_nodes; k++) {
        const il_node *x = &a->nodes[k], *y = &b->nodes[k];
        if (strcmp(x->op_type, y->op_type) || strcmp(x->domain, y->domain) || strcmp(x->name, y->name) ||
            !strs_equal(x->doc, y->doc) || x->n_inputs != y->n_inputs || x->n_outputs != y->n_outputs ||
            x->n_attrs != y->n_attrs)
            DIFF("node %d ('%s')", k, x->name);
        for (int i = 0; i < x->n_inputs; i++)
            if (strcmp(VNAME(a, x->inputs[i]), VNAME(b, y->inputs[i]))) DIFF("node '%s': input %d", x->name, i);
        for (int i = 0; i < x->n_outputs; i++)
            if (strcmp(VNAME(a, x->outputs[i]), VNAME(b, y->outputs[i]))) DIFF("node '%s': output %d", x->name, i);
        for (int i = 0; i < x->n_attrs; i++)
            if (!attrs_equal(&x->attrs[i], &y->attrs[i])) DIFF("node '%s': attribute '%s'", x->name, x->attrs[i].name);
    }
    return 1;
#undef VNAME
#undef DIFF
}

/* Export g, import it again, and require the same graph. */
static int round_trip(const il_graph *g, const char *label) {
    void *buf;
    size_t len;
    il_graph *h = NULL;
    char why[256];
    if (il_onnx_save_buffer(g, &buf, &len)) {
        printf("\n  %s: export: %s\n", label, il_errmsg());
        return 0;
    }
    il_status st = il_onnx_load_buffer(buf, len, g->base_dir, &h);
    free(buf);
    if (st) {
        printf("\n  %s: re-import: %s\n", label, il_errmsg());
        return 0;
    }
    int ok = graphs_equal(g, h, why, sizeof why);
    if (!ok) printf("\n  %s: differs after export: %s\n", label, why);
    /* and exporting is deterministic: the re-imported graph writes the same bytes */
    void *buf2;
    size_t len2;
    if (ok && il_onnx_save_buffer(h, &buf2, &len2) == IL_OK) {
        void *buf3;
        size_t len3;
        IL_ASSERT_OK(il_onnx_save_buffer(g, &buf3, &len3));
        ok = len2 == len3 && !memcmp(buf2, buf3, len2);
        if (!ok) printf("\n  %s: a second export differs\n", label);
        free(buf2);
        free(buf3);
    }
    il_graph_free(h);
    return ok;
}

/* ---------------------------------------------------------------- import of real models */

static void test_load_conv(void) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(node_model("test_conv_with_strides_padding"), &g));
    CU_ASSERT_EQUAL(g->ir_version, 6);
    CU_ASSERT_EQUAL(il_graph_opset(g, ""), 11);
    CU_ASSERT_STRING_EQUAL(g->producer_name, "backend-test");
    CU_ASSERT_STRING_EQUAL(g->name, "test_conv_with_strides_padding");
    CU_ASSERT_EQUAL_FATAL(g->n_nodes, 1);
    CU_ASSERT_EQUAL_FATAL(g->n_inputs, 2);
    CU_ASSERT_EQUAL_FATAL(g->n_outputs, 1);
    const il_node *n = &g->nodes[0];
    CU_ASSERT_STRING_EQUAL(n->op_type, "Conv");
    CU_ASSERT_STRING_EQUAL(n->domain, "");
    CU_ASSERT_STRING_EQUAL(g->values[g->inputs[0]].name, "x");
    CU_ASSERT_STRING_EQUAL(g->values[g->inputs[1]].name, "W");
    CU_ASSERT_STRING_EQUAL(g->values[g->outputs[0]].name, "y");
    CU_ASSERT_EQUAL(n->inputs[0], g->inputs[0]);
    CU_ASSERT_EQUAL(g->values[n->outputs[0]].producer, 0);
    const il_value *x = &g->values[g->inputs[0]];
    CU_ASSERT_EQUAL(x->dtype, IL_F32);
    CU_ASSERT_EQUAL_FATAL(x->rank, 4);
    CU_ASSERT(x->dims[0] == 1 && x->dims[1] == 1 && x->dims[2] == 7 && x->dims[3] == 5);
    const int64_t *v;
    CU_ASSERT_EQUAL(il_attr_ints(n, "kernel_shape", &v), 2);
    CU_ASSERT(v && v[0] == 3 && v[1] == 3);
    CU_ASSERT_EQUAL(il_attr_ints(n, "pads", &v), 4);
    CU_ASSERT(v && v[0] == 1 && v[1] == 1 && v[2] == 1 && v[3] == 1);
    CU_ASSERT_EQUAL(il_attr_ints(n, "strides", &v), 2);
    CU_ASSERT(v && v[0] == 2 && v[1] == 2);
    il_graph_free(g);
}

static void test_load_gemm_reshape(void) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(node_model("test_gemm_default_matrix_bias"), &g));
    CU_ASSERT_EQUAL(g->n_nodes, 1);
    CU_ASSERT_EQUAL(g->nodes[0].n_attrs, 0);
    CU_ASSERT_EQUAL_FATAL(g->n_inputs, 3);
    const int64_t want[3][2] = {{3, 6}, {6, 4}, {3, 4}};
    for (int i = 0; i < 3; i++) {
        const il_value *x = &g->values[g->inputs[i]];
        CU_ASSERT(x->rank == 2 && x->dims[0] == want[i][0] && x->dims[1] == want[i][1]);
    }
    il_graph_free(g);

    IL_ASSERT_OK(il_onnx_load(node_model("test_reshape_negative_dim"), &g));
    CU_ASSERT_EQUAL_FATAL(g->n_inputs, 2);
    const il_value *s = &g->values[g->inputs[1]];
    CU_ASSERT_STRING_EQUAL(s->name, "shape");
    CU_ASSERT(s->dtype == IL_I64 && s->rank == 1 && s->dims[0] == 3);
    il_graph_free(g);
    il_tensor *t;
    char *name;
    IL_ASSERT_OK(il_tensor_load_pb(IL_ONNX_NODE_DIR "/test_reshape_negative_dim/test_data_set_0/input_1.pb", &t, &name));
    CU_ASSERT_STRING_EQUAL(name, "shape");
    CU_ASSERT(t->dtype == IL_I64 && t->rank == 1 && t->dims[0] == 3);
    const int64_t *d = t->data;
    CU_ASSERT(d[0] == 2 && d[1] == -1 && d[2] == 2);
    il_tensor_free(t);
    free(name);
}

/* Constant's TENSOR attribute, initializers from the typed fields, and a graph attribute. */
static void test_load_attrs_initializers(void) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(node_model("test_constant"), &g));
    const il_attr *a = il_node_attr(&g->nodes[0], "value");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL_FATAL(a->type, IL_ATTR_TENSOR);
    il_tensor *want;
    IL_ASSERT_OK(il_tensor_load(IL_ONNX_NODE_DIR "/test_constant/test_data_set_0/output_0.pb", &want));
    CU_ASSERT(tensors_equal(a->t, want));
    il_tensor_free(want);
    il_graph_free(g);

    IL_ASSERT_OK(il_onnx_load(node_model("test_if"), &g));
    a = il_node_attr(&g->nodes[0], "then_branch");
    CU_ASSERT(a && a->type == IL_ATTR_GRAPH && a->raw_len > 0);
    CU_ASSERT(round_trip(g, "test_if"));
    il_graph_free(g);

    /* IR 3: initializers listed among the inputs are constants, not graph inputs */
    IL_ASSERT_OK(il_onnx_load("/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx", &g));
    CU_ASSERT_EQUAL(g->n_inputs, 1);
    int w = il_graph_find_value(g, "1");
    CU_ASSERT_FATAL(w >= 0 && g->values[w].constant);
    CU_ASSERT(g->values[w].rank == 4 && g->values[w].dims[0] == 4 && g->values[w].dims[3] == 2);
    CU_ASSERT(round_trip(g, "test_Conv2d"));
    il_graph_free(g);

    /* int64 scalars stored in int64_data rather than raw_data */
    IL_ASSERT_OK(il_onnx_load("/usr/share/libonnx-testdata/data/simple/test_sequence_model1/model.onnx", &g));
    int p = il_graph_find_value(g, "pos");
    CU_ASSERT_FATAL(p >= 0 && g->values[p].constant);
    CU_ASSERT(g->values[p].constant->dtype == IL_I64 && g->values[p].constant->rank == 0);
    il_graph_free(g);
}

/* Every model in the test data that loads must survive export and import unchanged. */
static void test_round_trip_all(void) {
    const char *dirs[] = {IL_ONNX_NODE_DIR, "/usr/share/libonnx-testdata/data/pytorch-converted",
                          "/usr/share/libonnx-testdata/data/pytorch-operator", "/usr/share/libonnx-testdata/data/simple"};
    int loaded = 0, same = 0;
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s/model.onnx", dirs[d], e->d_name);
            if (e->d_name[0] == '.' || access(path, R_OK)) continue;
            il_graph *g;
            if (il_onnx_load(path, &g)) {
                printf("\n  %s: %s", e->d_name, il_errmsg());
                continue;
            }
            loaded++;
            same += round_trip(g, e->d_name);
            il_graph_free(g);
        }
        closedir(dir);
    }
    CU_ASSERT(loaded > 900);
    CU_ASSERT_EQUAL(same, loaded);
}

/* A re-imported model computes exactly what the original does, on the test data's inputs. */
static void test_round_trip_outputs(void) {
    const char *dirs[] = {IL_ONNX_NODE_DIR "/test_conv_with_strides_padding", IL_ONNX_NODE_DIR "/test_gemm_default_matrix_bias",
                          IL_ONNX_NODE_DIR "/test_reshape_negative_dim", IL_ONNX_NODE_DIR "/test_constant",
                          "/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d"};
    int ran = 0;
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        char path[512];
        il_graph *g, *h;
        snprintf(path, sizeof path, "%s/model.onnx", dirs[d]);
        IL_ASSERT_OK(il_onnx_load(path, &g));
        void *buf;
        size_t len;
        IL_ASSERT_OK(il_onnx_save_buffer(g, &buf, &len));
        IL_ASSERT_OK(il_onnx_load_buffer(buf, len, NULL, &h));
        free(buf);
        il_tensor *in[8] = {0}, **out_g = NULL, **out_h = NULL;
        int n_g = 0, n_h = 0;
        for (int i = 0; i < g->n_inputs && i < 8; i++) {
            snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dirs[d], i);
            IL_ASSERT_OK(il_tensor_load_pb(path, &in[i], NULL));
        }
        il_plan_opts o = {0};
        if (il_run_model(g, in, g->n_inputs, &o, &out_g, &n_g) == IL_OK) {
            ran++;
            IL_ASSERT_OK(il_run_model(h, in, h->n_inputs, &o, &out_h, &n_h));
            CU_ASSERT_EQUAL(n_g, n_h);
            for (int i = 0; i < n_g && i < n_h; i++) CU_ASSERT(tensors_equal(out_g[i], out_h[i]));
        } else {
            printf("\n  %s: the engine cannot run it yet (%s)", dirs[d], il_errmsg());
        }
        for (int i = 0; i < n_g; i++) il_tensor_free(out_g[i]);
        for (int i = 0; i < n_h; i++) il_tensor_free(out_h[i]);
        for (int i = 0; i < 8; i++) il_tensor_free(in[i]);
        free(out_g);
        free(out_h);
        il_graph_free(g);
        il_graph_free(h);
    }
    CU_ASSERT(ran > 0);
}

/* ---------------------------------------------------------------- models built in C */

/* x[batch,3] -MatMul W-> h -Relu-> y; h -ai.inferlab.Probe-> z, the Probe carrying an
 * attribute of every kind, the GRAPH one borrowed from test_if. */
static il_graph *build_graph(void) {
    uint64_t rng = 42;
    il_graph *g = il_graph_new("built");
    il_graph_set_opset(g, "", 13);
    il_graph_set_meta(g, "author", "test_onnx");
    int x = il_graph_value(g, "x"), h = il_graph_value(g, "h"), y = il_graph_value(g, "y"), z = il_graph_value(g, "z");
    const int64_t wd[2] = {3, 4};
    il_value *xv = &g->values[x];
    xv->dtype = IL_F32, xv->rank = 2, xv->dims[0] = -1, xv->dims[1] = 3, xv->dim_param[0] = strdup("batch");
    il_value *hv = &g->values[h];
    hv->dtype = IL_F32, hv->rank = 2, hv->dims[0] = -1, hv->dims[1] = 4, hv->dim_param[0] = strdup("batch");
    g->values[y].dtype = IL_F32, g->values[y].rank = 2, g->values[y].dims[0] = g->values[y].dims[1] = -1;
    g->values[z].dtype = IL_F32, g->values[z].rank = 1, g->values[z].dims[0] = -1; /* an unknown dim */
    il_graph_add_input(g, x);
    il_tensor *w = il_tensor_new(IL_F32, 2, wd);
    il_tensor_fill_random(w, &rng, -1, 1);
    int wv = il_graph_add_constant(g, "W", w);
    il_graph_add_node(g, "MatMul", "", "mm", 2, (int[]){x, wv}, 1, &h);
    il_graph_add_node(g, "Relu", "", NULL, 1, &h, 1, &y);
    int k = il_graph_add_node(g, "Probe", "ai.inferlab", "probe", 3, (int[]){h, -1, wv}, 2, (int[]){z, -1});
    g->nodes[k].doc = strdup("a custom op");
    il_node_set_float(g, k, "alpha", 0.25f);
    il_node_set_int(g, k, "axis", -3);
    il_node_set_string(g, k, "mode", "nearest");
    il_node_set_ints(g, k, "pads", 4, (const int64_t[]){0, 1, 2, 3});
    il_node_set_floats(g, k, "scales", 2, (const float[]){1.5f, -2});
    il_tensor *t = il_tensor_new(IL_I8, 1, (const int64_t[]){5});
    il_tensor_fill_random(t, &rng, -100, 100);
    il_node_set_tensor(g, k, "table", t);
    il_attr *a = il_node_add_attr(g, k, "names", IL_ATTR_STRINGS);
    a->n = 2;
    a->strings = malloc(2 * sizeof(char *));
    a->strings[0] = strdup("a"), a->strings[1] = strdup("");
    a = il_node_add_attr(g, k, "luts", IL_ATTR_TENSORS);
    a->n = 2;
    a->tensors = malloc(2 * sizeof(il_tensor *));
    a->tensors[0] = il_tensor_new(IL_F16, 0, NULL), a->tensors[1] = il_tensor_new(IL_I64, 1, (const int64_t[]){0});
    il_graph *src;
    if (il_onnx_load(node_model("test_if"), &src) == IL_OK) {
        const il_attr *b = il_node_attr(&src->nodes[0], "then_branch");
        a = il_node_add_attr(g, k, "body", IL_ATTR_GRAPH);
        a->raw = malloc(b->raw_len);
        memcpy(a->raw, b->raw, b->raw_len);
        a->raw_len = b->raw_len;
        il_graph_free(src);
    }
    il_graph_add_output(g, y);
    il_graph_add_output(g, z);
    return g;
}

static void test_export_built(void) {
    il_graph *g = build_graph();
    const char *p = tmp("built.onnx");
    IL_ASSERT_OK(il_onnx_save(g, p));
    il_graph *h;
    IL_ASSERT_OK(il_onnx_load(p, &h));
    CU_ASSERT_EQUAL(il_graph_opset(h, "ai.inferlab"), 1); /* added by the exporter */
    CU_ASSERT_EQUAL(il_graph_opset(h, ""), 13);
    CU_ASSERT_STRING_EQUAL(h->producer_name, "inferlab");
    CU_ASSERT_STRING_EQUAL(il_graph_get_meta(h, "author"), "test_onnx");
    int x = il_graph_find_value(h, "x");
    CU_ASSERT_FATAL(x >= 0);
    CU_ASSERT(h->values[x].dims[0] == -1 && h->values[x].dim_param[0] && !strcmp(h->values[x].dim_param[0], "batch"));
    CU_ASSERT_EQUAL_FATAL(h->n_nodes, 3);
    CU_ASSERT_EQUAL(h->nodes[2].inputs[1], -1);
    CU_ASSERT_EQUAL(h->nodes[2].outputs[1], -1);
    CU_ASSERT_EQUAL(h->nodes[2].n_attrs, 9);
    il_graph_free(h);
    /* Graph fields the exporter fills in when missing, so compare after setting them. */
    g->producer_name = strdup("inferlab");
    g->producer_version = strdup(IL_VERSION);
    il_graph_set_opset(g, "ai.inferlab", 1);
    CU_ASSERT(round_trip(g, "built"));
    /* a graph that can fail to round-trip must make round_trip say so */
    il_graph *bad;
    IL_ASSERT_OK(il_onnx_load(p, &bad));
    bad->nodes[2].attrs[0].f = 0.5f;
    CU_ASSERT_FALSE(graphs_equal(g, bad, (char[64]){0}, 64));
    il_graph_free(bad);
    il_graph_free(g);
}

/* The exported files must satisfy ONNX's own checker, including strict shape inference. */
static void test_export_checker(void) {
    if (!have_python("onnx")) return;
    const char *models[] = {"test_conv_with_strides_padding", "test_gemm_default_matrix_bias", "test_reshape_negative_dim",
                            "test_constant", "test_if", "test_loop11", "test_cast_FLOAT_to_FLOAT16"};
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd, PY " -c 'import onnx,sys\nfor f in sys.argv[1:]: "
                                      "onnx.checker.check_model(onnx.load(f), full_check=True)' %s",
                     tmp("built.onnx"));
    il_graph *g = build_graph();
    IL_ASSERT_OK(il_onnx_save(g, tmp("built.onnx")));
    il_graph_free(g);
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.onnx", models[i]);
        IL_ASSERT_OK(il_onnx_load(node_model(models[i]), &g));
        IL_ASSERT_OK(il_onnx_save(g, tmp(name)));
        il_graph_free(g);
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %s", tmp(name));
    }
    IL_ASSERT_OK(il_onnx_load("/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx", &g));
    IL_ASSERT_OK(il_onnx_save(g, tmp("Conv2d.onnx")));
    il_graph_free(g);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " %s", tmp("Conv2d.onnx"));
    CU_ASSERT_EQUAL(system(cmd), 0);
    /* and the checker does reject a broken file: a node reading a value nobody makes */
    g = build_graph();
    g->nodes[1].inputs[0] = il_graph_value(g, "nowhere");
    IL_ASSERT_OK(il_onnx_save(g, tmp("broken.onnx")));
    il_graph_free(g);
    snprintf(cmd, sizeof cmd, PY " -c 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' %s 2>/dev/null",
             tmp("broken.onnx"));
    CU_ASSERT_NOT_EQUAL(system(cmd), 0);
}

/* ---------------------------------------------------------------- protobufs built by hand */

/* A model around one initializer W: Identity(W) -> y. */
typedef struct {
    Onnx__ModelProto m;
    Onnx__OperatorSetIdProto op;
    Onnx__OperatorSetIdProto *ops[1];
    Onnx__GraphProto g;
    Onnx__NodeProto node;
    Onnx__NodeProto *nodes[1];
    char *in[1], *out[1];
    Onnx__TensorProto w;
    Onnx__TensorProto *inits[1];
    Onnx__ValueInfoProto y;
    Onnx__ValueInfoProto *outs[1];
} mini;

static void mini_init(mini *s, const float *data, int64_t *dims, size_t rank) {
    onnx__model_proto__init(&s->m);
    onnx__operator_set_id_proto__init(&s->op);
    onnx__graph_proto__init(&s->g);
    onnx__node_proto__init(&s->node);
    onnx__tensor_proto__init(&s->w);
    onnx__value_info_proto__init(&s->y);
    s->m.has_ir_version = 1, s->m.ir_version = 8;
    s->op.has_version = 1, s->op.version = 13, s->op.domain = "";
    s->ops[0] = &s->op, s->m.n_opset_import = 1, s->m.opset_import = s->ops;
    s->m.graph = &s->g;
    s->g.name = "mini";
    s->in[0] = "W", s->out[0] = "y";
    s->node.op_type = "Identity", s->node.n_input = 1, s->node.input = s->in, s->node.n_output = 1, s->node.output = s->out;
    s->nodes[0] = &s->node, s->g.n_node = 1, s->g.node = s->nodes;
    s->w.name = "W", s->w.has_data_type = 1, s->w.data_type = IL_F32, s->w.n_dims = rank, s->w.dims = dims;
    s->w.has_raw_data = 1, s->w.raw_data.data = (uint8_t *)data, s->w.raw_data.len = (size_t)il_shape_numel((int)rank, dims) * 4;
    s->inits[0] = &s->w, s->g.n_initializer = 1, s->g.initializer = s->inits;
    s->y.name = "y", s->outs[0] = &s->y, s->g.n_output = 1, s->g.output = s->outs;
}


/* Load path; require status want and a message naming the file and containing `about`. */
static void expect_fail(const char *path, il_status want, const char *about) {
    il_graph *g = (il_graph *)1;
    il_status st = il_onnx_load(path, &g);
    if (st != want || !strstr(il_errmsg(), path) || (about && !strstr(il_errmsg(), about)))
        printf("\n  %s: got %s: %s\n", path, il_status_str(st), il_errmsg());
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NULL(g);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), path));
    if (about) CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), about));
}

static void test_load_errors(void) {
    expect_fail(tmp("does_not_exist.onnx"), IL_ERR_IO, "No such file");
    write_bytes(tmp("empty.onnx"), "", 0);
    expect_fail(tmp("empty.onnx"), IL_ERR_PARSE, "not a valid ONNX model");
    uint8_t junk[4096];
    uint64_t rng = 7;
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)il_rand_u64(&rng);
    write_bytes(tmp("random.onnx"), junk, sizeof junk);
    expect_fail(tmp("random.onnx"), IL_ERR_PARSE, "not a valid ONNX model");
    const char *text = "This is a README, not a model.\nIt has two lines.\n";
    write_bytes(tmp("text.onnx"), text, strlen(text));
    expect_fail(tmp("text.onnx"), IL_ERR_PARSE, "not a valid ONNX model");
    /* a real model cut in half (one with weights, so the cut lands inside the graph) */
    FILE *f = fopen("/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx", "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(tmp("half.onnx"), buf, n / 2);
    expect_fail(tmp("half.onnx"), IL_ERR_PARSE, "not a valid ONNX model");
    /* every prefix of a small model: none may crash, and most fail */
    FILE *g0 = fopen(node_model("test_conv_with_strides_padding"), "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g0);
    n = fread(buf, 1, sizeof buf, g0);
    fclose(g0);
    int failed = 0;
    for (size_t cut = 0; cut < n; cut++) {
        il_graph *g;
        if (il_onnx_load_buffer(buf, cut, NULL, &g)) failed++;
        else il_graph_free(g);
    }
    CU_ASSERT(failed > (int)n * 9 / 10);

    float w[6] = {1, 2, 3, 4, 5, 6};
    int64_t dims[2] = {2, 3};
    mini s;
    mini_init(&s, w, dims, 2);
    s.m.ir_version = 2;
    write_msg(tmp("ir2.onnx"), &s.m.base);
    expect_fail(tmp("ir2.onnx"), IL_ERR_UNSUPPORTED, "IR version 2");
    s.m.ir_version = 11;
    write_msg(tmp("ir11.onnx"), &s.m.base);
    expect_fail(tmp("ir11.onnx"), IL_ERR_UNSUPPORTED, "IR version 11");
    s.m.ir_version = 8;
    s.m.graph = NULL;
    write_msg(tmp("nograph.onnx"), &s.m.base);
    expect_fail(tmp("nograph.onnx"), IL_ERR_PARSE, "no graph");
    s.m.graph = &s.g;
    s.w.raw_data.len = 20;
    write_msg(tmp("short.onnx"), &s.m.base);
    expect_fail(tmp("short.onnx"), IL_ERR_PARSE, "initializer 'W'");
    s.w.has_raw_data = 0, s.w.n_float_data = 5, s.w.float_data = w;
    write_msg(tmp("short2.onnx"), &s.m.base);
    expect_fail(tmp("short2.onnx"), IL_ERR_PARSE, "initializer 'W'");
    s.w.n_float_data = 0, s.w.data_type = IL_STRING;
    ProtobufCBinaryData strs[6] = {{1, (uint8_t *)"a"}, {1, (uint8_t *)"b"}, {1, (uint8_t *)"c"},
                                   {1, (uint8_t *)"d"}, {1, (uint8_t *)"e"}, {1, (uint8_t *)"f"}};
    s.w.n_string_data = 6, s.w.string_data = strs;
    write_msg(tmp("string.onnx"), &s.m.base);
    expect_fail(tmp("string.onnx"), IL_ERR_UNSUPPORTED, "unsupported dtype string");
    /* sparse initializers are named and refused */
    mini_init(&s, w, dims, 2);
    Onnx__SparseTensorProto sp = ONNX__SPARSE_TENSOR_PROTO__INIT, *sps[1] = {&sp};
    sp.values = &s.w, sp.n_dims = 2, sp.dims = dims;
    s.g.n_initializer = 0, s.g.n_sparse_initializer = 1, s.g.sparse_initializer = sps;
    write_msg(tmp("sparse.onnx"), &s.m.base);
    expect_fail(tmp("sparse.onnx"), IL_ERR_UNSUPPORTED, "sparse_initializer 'W'");
}

/* Inputs of non-tensor or string type load; later stages decide what to skip. */
static void test_load_odd_types(void) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(node_model("test_sequence_map_add_2_sequences"), &g));
    CU_ASSERT_EQUAL_FATAL(g->n_inputs, 2);
    CU_ASSERT(g->values[g->inputs[0]].dtype == IL_UNDEFINED && g->values[g->inputs[0]].rank == -1);
    il_graph_free(g);
    IL_ASSERT_OK(il_onnx_load(node_model("test_cast_STRING_to_FLOAT"), &g));
    CU_ASSERT_EQUAL(g->values[g->inputs[0]].dtype, IL_STRING);
    il_graph_free(g);
}

/* Two attributes of one name: the IR keeps one per name, so the second is an error rather than
 * a silent override (ONNX's checker refuses them too). */
static void test_load_duplicate_attrs(void) {
    float w[2] = {1, 2};
    int64_t dims[1] = {2};
    mini s;
    mini_init(&s, w, dims, 1);
    Onnx__AttributeProto a[2], *pa[2];
    for (int i = 0; i < 2; i++) {
        onnx__attribute_proto__init(&a[i]), pa[i] = &a[i];
        a[i].name = "axis", a[i].has_type = 1, a[i].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a[i].has_i = 1, a[i].i = i;
    }
    s.node.n_attribute = 2, s.node.attribute = pa;
    write_msg(tmp("dup_attr.onnx"), &s.m.base);
    expect_fail(tmp("dup_attr.onnx"), IL_ERR_PARSE, "attribute 'axis' is given twice");
}

/* Attributes written without `type`, as early exporters did. */
static void test_load_untyped_attrs(void) {
    float w[2] = {1, 2}, fl[2] = {0.5f, 4};
    int64_t dims[1] = {2}, ints[3] = {1, 2, 3};
    mini s;
    mini_init(&s, w, dims, 1);
    Onnx__AttributeProto a[5], *pa[5];
    for (int i = 0; i < 5; i++) onnx__attribute_proto__init(&a[i]), pa[i] = &a[i];
    a[0].name = "i", a[0].has_i = 1, a[0].i = 7;
    a[1].name = "f", a[1].has_f = 1, a[1].f = 2.5f;
    a[2].name = "s", a[2].has_s = 1, a[2].s.len = 3, a[2].s.data = (uint8_t *)"abc";
    a[3].name = "ints", a[3].n_ints = 3, a[3].ints = ints;
    a[4].name = "floats", a[4].n_floats = 2, a[4].floats = fl;
    s.node.n_attribute = 5, s.node.attribute = pa;
    write_msg(tmp("untyped.onnx"), &s.m.base);
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(tmp("untyped.onnx"), &g));
    const il_node *n = &g->nodes[0];
    CU_ASSERT_EQUAL(il_attr_int(n, "i", 0), 7);
    CU_ASSERT_EQUAL(il_attr_float(n, "f", 0), 2.5f);
    CU_ASSERT_STRING_EQUAL(il_attr_string(n, "s", ""), "abc");
    const int64_t *iv;
    const float *fv;
    CU_ASSERT(il_attr_ints(n, "ints", &iv) == 3 && iv[2] == 3);
    CU_ASSERT(il_attr_floats(n, "floats", &fv) == 2 && fv[1] == 4);
    il_graph_free(g);
}

static void test_external_data(void) {
    float w[6] = {1, -2, 3.5f, 4, 5, 6};
    int64_t dims[2] = {2, 3};
    uint8_t file[16 + sizeof w] = "sixteen bytes...";
    memcpy(file + 16, w, sizeof w);
    write_bytes(tmp("w.bin"), file, sizeof file);
    mini s;
    mini_init(&s, w, dims, 2);
    Onnx__StringStringEntryProto e[3], *pe[3];
    const char *kv[3][2] = {{"location", "w.bin"}, {"offset", "16"}, {"length", "24"}};
    for (int i = 0; i < 3; i++)
        onnx__string_string_entry_proto__init(&e[i]), e[i].key = (char *)kv[i][0], e[i].value = (char *)kv[i][1], pe[i] = &e[i];
    s.w.has_raw_data = 0, s.w.has_data_location = 1, s.w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    s.w.n_external_data = 3, s.w.external_data = pe;
    write_msg(tmp("ext.onnx"), &s.m.base);
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(tmp("ext.onnx"), &g));
    int v = il_graph_find_value(g, "W");
    CU_ASSERT_FATAL(v >= 0 && g->values[v].constant);
    CU_ASSERT_EQUAL(memcmp(g->values[v].constant->data, w, sizeof w), 0);
    il_graph_free(g);
    e[1].value = "20";
    write_msg(tmp("ext_short.onnx"), &s.m.base);
    expect_fail(tmp("ext_short.onnx"), IL_ERR_PARSE, "initializer 'W'");
    e[1].value = "16", e[0].value = "../w.bin";
    write_msg(tmp("ext_up.onnx"), &s.m.base);
    expect_fail(tmp("ext_up.onnx"), IL_ERR_INVALID, "relative path");
    e[0].value = "/etc/passwd";
    write_msg(tmp("ext_abs.onnx"), &s.m.base);
    expect_fail(tmp("ext_abs.onnx"), IL_ERR_INVALID, "relative path");
    e[0].value = "nothere.bin";
    write_msg(tmp("ext_missing.onnx"), &s.m.base);
    expect_fail(tmp("ext_missing.onnx"), IL_ERR_IO, "nothere.bin");

    /* what onnx's own external_data_helper writes */
    if (!have_python("onnx")) return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, PY " -c 'import onnx,sys; m=onnx.load(sys.argv[1]); onnx.save_model(m, sys.argv[2], "
                              "save_as_external_data=True, all_tensors_to_one_file=True, location=\"weights.data\", size_threshold=0)' "
                              "/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx %s", tmp("pyext.onnx"));
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    il_graph *ref;
    IL_ASSERT_OK(il_onnx_load("/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx", &ref));
    IL_ASSERT_OK(il_onnx_load(tmp("pyext.onnx"), &g));
    int n_const = 0;
    for (int i = 0; i < ref->n_values; i++) {
        if (!ref->values[i].constant) continue;
        n_const++;
        int j = il_graph_find_value(g, ref->values[i].name);
        CU_ASSERT(j >= 0 && tensors_equal(ref->values[i].constant, g->values[j].constant));
    }
    CU_ASSERT_EQUAL(n_const, 2);
    il_graph_free(ref);
    il_graph_free(g);
}

IL_SUITE("onnx",
         {"load conv", test_load_conv},
         {"load gemm and reshape", test_load_gemm_reshape},
         {"load attributes and initializers", test_load_attrs_initializers},
         {"round trip every test model", test_round_trip_all},
         {"round trip keeps outputs", test_round_trip_outputs},
         {"export a graph built in C", test_export_built},
         {"exports pass onnx.checker", test_export_checker},
         {"load errors", test_load_errors},
         {"non-tensor and string inputs", test_load_odd_types},
         {"attributes without type", test_load_untyped_attrs},
         {"an attribute given twice", test_load_duplicate_attrs},
         {"external data", test_external_data})
