/*
 * test_schema.c - the op schemas (engine/schema.c) and the checks built on them: every built-in
 * op has a schema; nodes with missing, omitted or extra inputs and outputs, wrong-typed or
 * missing required attributes, and opsets the engine does not know are refused by the verifier,
 * for every op in the registry; what passes the verifier plans and runs without a crash.
 * Also the checked element counts (il_shape_numel, il_shape_check) and the memory planner's
 * cost on long chains.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/memplan.h"
#include "engine/schema.h"
#include "test.h"

static void test_every_op_has_a_schema(void) {
    int n;
    const il_op *const *ops = il_op_all(&n);
    CU_ASSERT_TRUE(n > 100);
    for (int i = 0; i < n; i++) {
        const il_schema *s = il_schema_find(ops[i]->domain, ops[i]->name, INT64_MAX);
        if (!s) fprintf(stderr, "\n  no schema for %s.%s\n", ops[i]->domain, ops[i]->name);
        CU_ASSERT_PTR_NOT_NULL(s);
    }
    /* versions: Split takes its sizes as an attribute before opset 13, as an input from 13 */
    CU_ASSERT_EQUAL(il_schema_find("", "Split", 12)->max_in, 1);
    CU_ASSERT_EQUAL(il_schema_find("ai.onnx", "Split", 13)->max_in, 2);
    CU_ASSERT_EQUAL(il_schema_find("", "ReduceMean", 18)->max_in, 2);
    CU_ASSERT_EQUAL(il_schema_find("", "ReduceMean", 17)->max_in, 1);
    CU_ASSERT_PTR_NULL(il_schema_find("", "Frobnicate", 17));
    CU_ASSERT_PTR_NULL(il_schema_find("", "Conv", 0));
}

/* One node of `op` over a float32[2,3] input x; n_in inputs (x, or omitted where omit has the
 * bit), n_out outputs. */
static il_graph *one_node(const il_op *op, int n_in, unsigned omit, int n_out) {
    il_graph *g = il_graph_new("g");
    il_graph_set_opset(g, "", 17);
    if (op->domain[0]) il_graph_set_opset(g, op->domain, 1);
    int x = il_graph_value(g, "x");
    g->values[x].dtype = IL_F32;
    g->values[x].rank = 2;
    g->values[x].dims[0] = 2;
    g->values[x].dims[1] = 3;
    il_graph_add_input(g, x);
    int in[16], out[16];
    for (int i = 0; i < n_in; i++) in[i] = (omit >> i) & 1 ? -1 : x;
    for (int i = 0; i < n_out; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "y%d", i);
        out[i] = il_graph_value(g, nm);
        il_graph_add_output(g, out[i]);
    }
    il_graph_add_node(g, op->name, op->domain, "n", n_in, in, n_out, out);
    return g;
}

/* Verify; when the verifier accepts, plan and run: an error is fine, a crash is not. */
static il_status verify_and_run(il_graph *g) {
    il_status st = il_graph_verify(g);
    if (st) return st;
    int64_t d[2] = {2, 3};
    il_tensor *x = il_tensor_new(IL_F32, 2, d);
    uint64_t rng = 7;
    il_tensor_fill_input(x, &rng);
    il_plan *p = NULL;
    il_plan_opts o = {.threads = 1};
    if (!il_plan_create(g, &o, &p)) il_plan_run(p, &x, 1);
    il_plan_free(p);
    il_tensor_free(x);
    return IL_OK;
}

/* The matrix the issue found ~90 crashes in: every op with no outputs, with no inputs, and with
 * its first input omitted. The verifier must refuse each unless the schema allows it. */
static void test_arity_matrix(void) {
    int n;
    const il_op *const *ops = il_op_all(&n);
    for (int i = 0; i < n; i++) {
        const il_op *op = ops[i];
        const il_schema *s = il_schema_find(op->domain, op->name, op->domain[0] ? 1 : 17);
        if (!s) s = il_schema_find(op->domain, op->name, INT64_MAX);
        if (!s) continue;
        int nin = s->min_in > 0 ? s->min_in : 1;
        if (nin > 8) nin = 8;
        il_graph *g = one_node(op, nin, 0, 0); /* no outputs */
        il_status st = verify_and_run(g);
        if (st != IL_ERR_GRAPH) fprintf(stderr, "\n  %s with no outputs: %s\n", op->name, il_errmsg());
        CU_ASSERT_EQUAL(st, IL_ERR_GRAPH);
        il_graph_free(g);
        g = one_node(op, 0, 0, 1); /* no inputs */
        st = verify_and_run(g);
        if (s->min_in > 0) {
            if (st != IL_ERR_GRAPH) fprintf(stderr, "\n  %s with no inputs: %s\n", op->name, il_errmsg());
            CU_ASSERT_EQUAL(st, IL_ERR_GRAPH);
            CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "node 'n'"));
        }
        il_graph_free(g);
        g = one_node(op, nin, 1, 1); /* the first input omitted ("" in a model) */
        st = verify_and_run(g);
        if (s->inputs[0] != 'o' && s->max_in > 0) {
            CU_ASSERT_EQUAL(st, IL_ERR_GRAPH);
            if (!strstr(il_errmsg(), "input 0 is omitted")) fprintf(stderr, "\n  %s: %s\n", op->name, il_errmsg());
            CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "input 0 is omitted"));
        }
        il_graph_free(g);
        g = one_node(op, s->max_in < 8 ? s->max_in + 1 : 9, 0, 1); /* one input too many */
        if (s->max_in < 8) CU_ASSERT_EQUAL(il_graph_verify(g), IL_ERR_GRAPH);
        il_graph_free(g);
        g = one_node(op, nin, 0, 1); /* the arity it asks for: runs or fails cleanly */
        verify_and_run(g);
        il_graph_free(g);
    }
}

static il_graph *conv_graph(void) {
    il_graph *g = il_graph_new("g");
    il_graph_set_opset(g, "", 17);
    int x = il_graph_value(g, "x"), y = il_graph_value(g, "y");
    g->values[x].dtype = IL_F32;
    g->values[x].rank = 4;
    for (int i = 0; i < 4; i++) g->values[x].dims[i] = i == 1 ? 2 : 3;
    il_graph_add_input(g, x);
    int64_t wd[4] = {2, 1, 1, 1};
    int w = il_graph_add_constant(g, "w", il_tensor_new(IL_F32, 4, wd));
    int in[2] = {x, w};
    il_graph_add_node(g, "Conv", "", "conv", 2, in, 1, &y);
    il_graph_add_output(g, y);
    return g;
}

static void test_attribute_types(void) {
    il_graph *g = conv_graph();
    il_node_set_int(g, 0, "group", 2);
    IL_ASSERT_OK(il_graph_verify(g));
    il_graph_free(g);
    g = conv_graph(); /* group = 2.5 used to run as group 1 */
    il_node_set_float(g, 0, "group", 2.5f);
    CU_ASSERT_EQUAL(il_graph_verify(g), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "node 'conv' (Conv): attribute 'group' is FLOAT"));
    il_graph_free(g);
    g = conv_graph(); /* strides as one INT instead of INTS */
    il_node_set_int(g, 0, "strides", 2);
    CU_ASSERT_EQUAL(il_graph_verify(g), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "'strides' is INT"));
    il_graph_free(g);
    /* a FLOAT attribute given as INT is exact: accepted */
    const il_op *relu = il_op_find("", "LeakyRelu");
    g = one_node(relu, 1, 0, 1);
    il_node_set_int(g, 0, "alpha", 1);
    IL_ASSERT_OK(il_graph_verify(g));
    il_graph_free(g);
    /* a required attribute missing: Cast without 'to' */
    g = one_node(il_op_find("", "Cast"), 1, 0, 1);
    CU_ASSERT_EQUAL(il_graph_verify(g), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "required attribute 'to'"));
    il_graph_free(g);
}

static void test_opsets(void) {
    il_graph *g = conv_graph();
    il_graph_set_opset(g, "", IL_OPSET_MAX);
    IL_ASSERT_OK(il_graph_verify(g));
    il_graph_set_opset(g, "", 99);
    CU_ASSERT_EQUAL(il_graph_verify(g), IL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "opset 99"));
    il_graph_free(g);
}

static void test_checked_sizes(void) {
    int64_t big[3] = {(int64_t)1 << 32, (int64_t)1 << 32, 4};
    CU_ASSERT_EQUAL(il_shape_numel(3, big), INT64_MAX); /* 2^66: saturated, not wrapped to 0 */
    int64_t zero[3] = {0, (int64_t)1 << 40, (int64_t)1 << 40};
    CU_ASSERT_EQUAL(il_shape_numel(3, zero), 0);
    CU_ASSERT_NOT_EQUAL(il_shape_check(3, zero), IL_OK); /* strides past int64 all the same */
    int64_t unk[2] = {-1, 5};
    CU_ASSERT_EQUAL(il_shape_numel(2, unk), -1);
    CU_ASSERT_EQUAL(il_shape_check(2, unk), IL_OK);
    CU_ASSERT_PTR_NULL(il_tensor_new(IL_F32, 3, big));
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "2^40"));
    CU_ASSERT_PTR_NULL(il_tensor_new(IL_F32, 3, zero));
    int64_t ok[2] = {3, 0};
    il_tensor *t = il_tensor_new(IL_F32, 2, ok);
    CU_ASSERT_PTR_NOT_NULL(t);
    il_tensor_free(t);
    /* an inferred shape past 2^40 is refused at plan time, naming the node */
    il_graph *g = one_node(il_op_find("", "Relu"), 1, 0, 1);
    g->values[0].dims[0] = (int64_t)1 << 31;
    g->values[0].dims[1] = (int64_t)1 << 31;
    il_shapes *s = NULL;
    CU_ASSERT_EQUAL(il_infer_shapes(g, 1, NULL, 0, &s), IL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "graph input 'x'"));
    il_shapes_free(s);
    il_graph_free(g);
}

/* A chain of n equal buffers, each alive over two steps, needs two; the planner's search work
 * must grow as n log n (a quadratic planner visits ~n^2/2 = 2e10 buffers here). */
static void test_memplan_long_chain(void) {
    int n = 200000;
    int64_t *size = malloc(n * sizeof *size), *first = malloc(n * sizeof *first), *last = malloc(n * sizeof *last),
            *off = malloc(n * sizeof *off), work = 0;
    for (int i = 0; i < n; i++) {
        size[i] = 4096;
        first[i] = i;
        last[i] = i + 1;
    }
    CU_ASSERT_EQUAL(il_memplan_counted(n, size, first, last, off, &work), 2 * 4096);
    CU_ASSERT_TRUE(work < (int64_t)n * 4 * 18); /* O(log n) nodes per buffer, log2(n) ~ 18 */
    for (int i = 1; i < n; i++) CU_ASSERT_TRUE(off[i] != off[i - 1]);
    free(size);
    free(first);
    free(last);
    free(off);
}

/* The same through the API: a 200k-node Relu chain plans with two buffers (minutes when the
 * planner was quadratic). */
static void test_plan_long_chain(void) {
    int n = 200000;
    il_graph *g = il_graph_new("chain");
    il_graph_set_opset(g, "", 17);
    int v = il_graph_value(g, "x");
    g->values[v].dtype = IL_F32;
    g->values[v].rank = 1;
    g->values[v].dims[0] = 1024;
    il_graph_add_input(g, v);
    for (int i = 0; i < n; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "v%d", i);
        int w = il_graph_value(g, nm);
        il_graph_add_node(g, "Relu", "", NULL, 1, &v, 1, &w);
        v = w;
    }
    il_graph_add_output(g, v);
    il_plan *p = NULL;
    il_plan_opts o = {.threads = 1};
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    CU_ASSERT_EQUAL(il_plan_peak_bytes(p), 2 * 4096);
    il_plan_free(p);
    il_graph_free(g);
}

IL_SUITE("schema", {"every op has a schema", test_every_op_has_a_schema}, {"arity matrix", test_arity_matrix},
         {"attribute types", test_attribute_types}, {"opsets", test_opsets}, {"checked sizes", test_checked_sizes},
         {"memory planner: 200k-buffer chain", test_memplan_long_chain},
         {"plan: 200k-node chain", test_plan_long_chain})
