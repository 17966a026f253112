/*
 * test_graph.c - the graph IR: building, lookup, rewriting, topological order, the verifier,
 * cloning; and the memory planner's invariants.
 */
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "engine/memplan.h"
#include "test.h"

/* x -> Relu -> a -> Neg -> b -> Add(a, b) -> y */
static il_graph *small_graph(void) {
    il_graph *g = il_graph_new("t");
    il_graph_set_opset(g, "", 17);
    int x = il_graph_value(g, "x"), a = il_graph_value(g, "a"), b = il_graph_value(g, "b"), y = il_graph_value(g, "y");
    g->values[x].dtype = IL_F32;
    g->values[x].rank = 2;
    g->values[x].dims[0] = 2;
    g->values[x].dims[1] = 3;
    il_graph_add_input(g, x);
    il_graph_add_node(g, "Relu", "", "relu", 1, &x, 1, &a);
    il_graph_add_node(g, "Neg", "", "neg", 1, &a, 1, &b);
    int ab[2] = {a, b};
    il_graph_add_node(g, "Add", "", "add", 2, ab, 1, &y);
    il_graph_add_output(g, y);
    return g;
}

static void test_build_and_lookup(void) {
    il_graph *g = small_graph();
    CU_ASSERT_EQUAL(g->n_nodes, 3);
    CU_ASSERT_EQUAL(il_graph_find_value(g, "a"), 1);
    CU_ASSERT_EQUAL(il_graph_find_value(g, "nope"), -1);
    CU_ASSERT_EQUAL(g->values[il_graph_find_value(g, "b")].producer, 1);
    int n[4];
    CU_ASSERT_EQUAL(il_graph_consumers(g, il_graph_find_value(g, "a"), n, 4), 2);
    /* many values: the hash index must keep finding them after it grows */
    char name[32];
    for (int i = 0; i < 2000; i++) { snprintf(name, sizeof name, "v%d", i); il_graph_value(g, name); }
    CU_ASSERT_EQUAL(il_graph_find_value(g, "v1234"), 4 + 1234);
    int u = il_graph_new_value(g, "a");
    CU_ASSERT_STRING_EQUAL(g->values[u].name, "a_1");
    CU_ASSERT_EQUAL(il_graph_opset(g, "ai.onnx"), 17);
    CU_ASSERT_EQUAL(il_graph_opset(g, "com.x"), 0);
    il_graph_free(g);
}

static void test_attrs(void) {
    il_graph *g = small_graph();
    int64_t pads[4] = {1, 2, 3, 4};
    il_node_set_int(g, 0, "axis", -1);
    il_node_set_float(g, 0, "alpha", 0.5f);
    il_node_set_string(g, 0, "mode", "constant");
    il_node_set_ints(g, 0, "pads", 4, pads);
    il_node_set_int(g, 0, "axis", 2); /* replaces */
    const il_node *n = &g->nodes[0];
    const int64_t *p;
    CU_ASSERT_EQUAL(n->n_attrs, 4);
    CU_ASSERT_EQUAL(il_attr_int(n, "axis", 0), 2);
    CU_ASSERT_EQUAL(il_attr_int(n, "missing", 7), 7);
    CU_ASSERT_DOUBLE_EQUAL(il_attr_float(n, "alpha", 0), 0.5, 1e-9);
    CU_ASSERT_STRING_EQUAL(il_attr_string(n, "mode", ""), "constant");
    CU_ASSERT_EQUAL(il_attr_ints(n, "pads", &p), 4);
    CU_ASSERT_EQUAL(p[3], 4);
    il_graph_free(g);
}

static void test_rewrite_and_compact(void) {
    il_graph *g = small_graph();
    /* drop the Neg: Add reads a twice */
    int a = il_graph_find_value(g, "a"), b = il_graph_find_value(g, "b");
    il_graph_replace_uses(g, b, a);
    il_graph_remove_node(g, 1);
    CU_ASSERT_EQUAL(il_graph_verify(g), IL_OK);
    il_graph_compact(g);
    CU_ASSERT_EQUAL(g->n_nodes, 2);
    CU_ASSERT_EQUAL(il_graph_find_value(g, "b"), -1);
    CU_ASSERT_STRING_EQUAL(g->nodes[1].op_type, "Add");
    CU_ASSERT_EQUAL(g->nodes[1].inputs[0], g->nodes[1].inputs[1]);
    CU_ASSERT_EQUAL(g->values[g->outputs[0]].producer, 1);
    CU_ASSERT_EQUAL(il_graph_verify(g), IL_OK);
    il_graph_free(g);
}

static void test_topo_and_sort(void) {
    il_graph *g = small_graph();
    /* reverse the node array: sort must restore a valid order */
    il_node t = g->nodes[0];
    g->nodes[0] = g->nodes[2];
    g->nodes[2] = t;
    for (int k = 0; k < 3; k++) g->values[g->nodes[k].outputs[0]].producer = k;
    int order[3], m;
    IL_ASSERT_OK(il_graph_topo_order(g, order, &m));
    CU_ASSERT_EQUAL(m, 3);
    CU_ASSERT_EQUAL(order[0], 2);
    IL_ASSERT_OK(il_graph_sort(g));
    CU_ASSERT_STRING_EQUAL(g->nodes[0].op_type, "Relu");
    CU_ASSERT_STRING_EQUAL(g->nodes[2].op_type, "Add");
    il_graph_free(g);
}

static void test_verify_errors(void) {
    /* a cycle: Relu reads the Add's output */
    il_graph *g = small_graph();
    g->nodes[0].inputs[0] = il_graph_find_value(g, "y");
    CU_ASSERT_EQUAL(il_graph_verify(g), IL_ERR_GRAPH);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "cycle"));
    il_graph_free(g);
    /* a value nothing produces */
    g = small_graph();
    g->nodes[1].inputs[0] = il_graph_value(g, "ghost");
    CU_ASSERT_EQUAL(il_graph_verify(g), IL_ERR_GRAPH);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "ghost"));
    il_graph_free(g);
    /* unknown ops are all named at once */
    g = small_graph();
    free(g->nodes[0].op_type);
    g->nodes[0].op_type = strdup("Frobnicate");
    free(g->nodes[1].op_type);
    g->nodes[1].op_type = strdup("Wibble");
    CU_ASSERT_EQUAL(il_graph_verify(g), IL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "Frobnicate"));
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "Wibble"));
    il_graph_free(g);
    /* two producers of one value */
    g = small_graph();
    g->nodes[1].outputs[0] = il_graph_find_value(g, "a");
    CU_ASSERT_EQUAL(il_graph_verify(g), IL_ERR_GRAPH);
    il_graph_free(g);
}

static void test_clone(void) {
    il_graph *g = small_graph();
    int64_t d[1] = {3};
    il_tensor *t = il_tensor_new(IL_F32, 1, d);
    ((float *)t->data)[2] = 5;
    il_graph_add_constant(g, "w", t);
    il_node_set_ints(g, 2, "k", 1, d);
    il_graph_set_meta(g, "mean", "0.5");
    il_graph *h = il_graph_clone(g);
    CU_ASSERT_EQUAL(h->n_nodes, g->n_nodes);
    CU_ASSERT_EQUAL(h->n_values, g->n_values);
    int w = il_graph_find_value(h, "w");
    CU_ASSERT_TRUE(w >= 0 && h->values[w].constant && ((float *)h->values[w].constant->data)[2] == 5);
    CU_ASSERT_PTR_NOT_EQUAL(h->values[w].constant->data, t->data);
    CU_ASSERT_STRING_EQUAL(il_graph_get_meta(h, "mean"), "0.5");
    CU_ASSERT_EQUAL(il_graph_verify(h), IL_OK);
    il_graph_free(g);
    il_graph_free(h);
}

/* Random lifetimes: no two buffers alive at one step may overlap; the peak is at most the sum
 * and at least the largest set alive at one step. */
static void test_memplan_invariants(void) {
    uint64_t rng = 42;
    for (int trial = 0; trial < 50; trial++) {
        int n = 1 + (int)(il_rand_u64(&rng) % 60);
        int64_t size[64], first[64], last[64], off[64];
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            size[i] = (int64_t)(il_rand_u64(&rng) % 5000);
            first[i] = (int64_t)(il_rand_u64(&rng) % 30);
            last[i] = first[i] + (int64_t)(il_rand_u64(&rng) % 10);
            sum += (size[i] + 63) / 64 * 64;
        }
        int64_t peak = il_memplan(n, size, first, last, off);
        CU_ASSERT_TRUE(peak <= sum);
        int64_t maxlive = 0;
        for (int s = 0; s < 40; s++) {
            int64_t live = 0;
            for (int i = 0; i < n; i++)
                if (size[i] && first[i] <= s && s <= last[i]) live += size[i];
            if (live > maxlive) maxlive = live;
        }
        CU_ASSERT_TRUE(peak >= maxlive);
        for (int i = 0; i < n; i++) {
            if (!size[i]) { CU_ASSERT_EQUAL(off[i], -1); continue; }
            CU_ASSERT_EQUAL(off[i] % 64, 0);
            CU_ASSERT_TRUE(off[i] + size[i] <= peak);
            for (int j = 0; j < i; j++) {
                if (!size[j] || first[i] > last[j] || first[j] > last[i]) continue;
                int disjoint = off[i] + size[i] <= off[j] || off[j] + size[j] <= off[i];
                CU_ASSERT_TRUE(disjoint);
            }
        }
    }
}

/* A chain a->b->c->d of equal sizes needs two buffers, not four. */
static void test_memplan_chain(void) {
    int64_t size[4] = {1024, 1024, 1024, 1024}, first[4] = {0, 1, 2, 3}, last[4] = {1, 2, 3, 4}, off[4];
    CU_ASSERT_EQUAL(il_memplan(4, size, first, last, off), 2048);
}

static void test_tensor_basics(void) {
    CU_ASSERT_EQUAL(il_dtype_size(IL_F16), 2);
    CU_ASSERT_EQUAL(il_dtype_size(IL_STRING), 0);
    float vals[] = {0.f, 1.f, -2.5f, 65504.f, 1e-7f, 3.14159f};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        float r = il_f16_to_f32(il_f32_to_f16(vals[i]));
        CU_ASSERT_DOUBLE_EQUAL(r, vals[i], fabsf(vals[i]) * 1e-3 + 1e-7);
        float b = il_bf16_to_f32(il_f32_to_bf16(vals[i]));
        CU_ASSERT_DOUBLE_EQUAL(b, vals[i], fabsf(vals[i]) * 1e-2 + 1e-38);
    }
    CU_ASSERT_EQUAL(il_f32_to_f16(1e6f), 0x7c00); /* overflow to inf */
    int64_t d[2] = {2, 2};
    il_tensor *a = il_tensor_new(IL_F32, 2, d), *b = il_tensor_new(IL_F32, 2, d);
    char msg[256];
    int64_t worst;
    ((float *)a->data)[3] = 1.0f;
    ((float *)b->data)[3] = 1.0005f;
    CU_ASSERT_TRUE(il_tensor_allclose(a, b, 1e-3, 0, &worst, msg, sizeof msg));
    ((float *)b->data)[1] = 0.1f;
    CU_ASSERT_FALSE(il_tensor_allclose(a, b, 1e-3, 1e-4, &worst, msg, sizeof msg));
    CU_ASSERT_EQUAL(worst, 1);
    int64_t e[1] = {-1};
    CU_ASSERT_PTR_NULL(il_tensor_new(IL_F32, 1, e));
    CU_ASSERT_PTR_NULL(il_tensor_new(IL_STRING, 1, d));
    il_tensor_free(a);
    il_tensor_free(b);
}

IL_SUITE("graph", {"build and lookup", test_build_and_lookup}, {"attributes", test_attrs},
         {"rewrite and compact", test_rewrite_and_compact}, {"topological order", test_topo_and_sort},
         {"verifier errors", test_verify_errors}, {"clone", test_clone},
         {"memory planner invariants", test_memplan_invariants}, {"memory planner chain", test_memplan_chain},
         {"tensor basics", test_tensor_basics})
