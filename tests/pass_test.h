/*
 * pass_test.h - building tiny graphs in tests of passes (tests/test_passes.c, test_verify.c):
 * inputs, constants, nodes by op name, op counts, and apply() - run a pass and check that it
 * changed something, verifies, keeps the outputs and is idempotent.
 */
#ifndef IL_TEST_PASS_TEST_H
#define IL_TEST_PASS_TEST_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../passes/passes.h"
#include "test.h"

static uint64_t rng = 4242; /* each test file its own stream */

static inline il_graph *G(int64_t opset) {
    il_graph *g = il_graph_new("t");
    il_graph_set_opset(g, "", opset);
    return g;
}

/* A float input; a negative first dim is the symbolic batch "N". */
static inline int IN(il_graph *g, const char *name, int rank, const int64_t *dims) {
    int v = il_graph_value(g, name);
    g->values[v].dtype = IL_F32;
    g->values[v].rank = rank;
    memcpy(g->values[v].dims, dims, (size_t)rank * sizeof(int64_t));
    if (dims[0] < 0) g->values[v].dim_param[0] = strdup("N");
    il_graph_add_input(g, v);
    return v;
}

static inline int W(il_graph *g, int rank, const int64_t *dims, double lo, double hi) {
    il_tensor *t = il_tensor_new(IL_F32, rank, dims);
    il_tensor_fill_random(t, &rng, lo, hi);
    int v = il_graph_new_value(g, "w"); /* may move g->values: index after */
    return il_graph_add_constant(g, g->values[v].name, t);
}

static inline int S(il_graph *g, float x) { /* float scalar */
    il_tensor *t = il_tensor_new(IL_F32, 0, NULL);
    ((float *)t->data)[0] = x;
    int v = il_graph_new_value(g, "s"); /* may move g->values: index after */
    return il_graph_add_constant(g, g->values[v].name, t);
}

static inline int I64(il_graph *g, int n, const int64_t *v) {
    int64_t d = n;
    il_tensor *t = il_tensor_new(IL_I64, 1, &d);
    memcpy(t->data, v, (size_t)n * sizeof(int64_t));
    int nv = il_graph_new_value(g, "i"); /* may move g->values: index after */
    return il_graph_add_constant(g, g->values[nv].name, t);
}

static int last_node;
static inline int op_(il_graph *g, const char *op, const int *in, int n) {
    int y = il_graph_new_value(g, op);
    last_node = il_graph_add_node(g, op, "", NULL, n, in, 1, &y);
    return y;
}
#define OP(g, name, ...) op_(g, name, (int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)))
#define OUT(g, v) il_graph_add_output(g, v)
#define DIMS(...) (const int64_t[]){__VA_ARGS__}

static inline int count(const il_graph *g, const char *op) {
    int c = 0;
    for (int k = 0; k < g->n_nodes; k++) c += !g->nodes[k].dead && !strcmp(g->nodes[k].op_type, op);
    return c;
}

/* Run pass on g and check: it changed something, the graph verifies, outputs equal the
 * original's on fresh random inputs, and running it again changes nothing. */
static inline il_pass_stats apply(il_graph *g, const char *pass) {
    il_graph *orig = il_graph_clone(g);
    il_pass_stats st, again;
    IL_ASSERT_OK(il_pass_run(g, pass, &st));
    char b[256];
    if (!il_pass_changes(&st)) fprintf(stderr, "\n  %s changed nothing\n", pass);
    CU_ASSERT_TRUE(il_pass_changes(&st) > 0);
    IL_ASSERT_OK(il_graph_verify(g));
    IL_ASSERT_OK(il_graph_equivalent(orig, g, NULL, &rng));
    IL_ASSERT_OK(il_graph_equivalent(orig, g, &(il_pass_opts){.batch = 5}, &rng));
    int nodes = il_graph_live_nodes(g);
    IL_ASSERT_OK(il_pass_run(g, pass, &again));
    if (il_pass_changes(&again)) fprintf(stderr, "\n  not idempotent: %s\n", il_pass_stats_str(&again, b, sizeof b));
    CU_ASSERT_EQUAL(il_pass_changes(&again), 0);
    CU_ASSERT_EQUAL(il_graph_live_nodes(g), nodes);
    il_graph_free(orig);
    return st;
}

/* The directory of this test binary: the build dir, where the Makefile put the plugin and CLI. */
static inline const char *build_dir(void) {
    static char d[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", d, sizeof d - 1);
    if (n <= 0) return ".";
    d[n] = 0;
    *strrchr(d, '/') = 0;
    return d;
}

#endif
