/*
 * prune_fixture.h - what the pruning suites share (tests/test_prune.c, tests/test_prune_train.c):
 * a three-layer model with known weights, weight lookups, zero counts, JSON checks through
 * SQLite's JSON functions.
 */
#ifndef IL_TEST_PRUNE_FIXTURE_H
#define IL_TEST_PRUNE_FIXTURE_H

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "../prune/prune.h"
#include "test.h"

static inline int add_input(il_graph *g, const char *name, int rank, const int64_t *dims) {
    int v = il_graph_value(g, name);
    g->values[v].dtype = IL_F32;
    g->values[v].rank = rank;
    memcpy(g->values[v].dims, dims, (size_t)rank * sizeof *dims);
    il_graph_add_input(g, v);
    return v;
}

/* Random weights, |w| all distinct (no ties) and none zero; scaled by scale. */
static inline il_tensor *weights(int rank, const int64_t *dims, uint64_t *rng, double scale) {
    il_tensor *t = il_tensor_new(IL_F32, rank, dims);
    for (int64_t i = 0; i < il_tensor_numel(t); i++) {
        double u = 0.05 + il_rand_uniform(rng);
        ((float *)t->data)[i] = (float)(scale * (il_rand_u64(rng) & 1 ? u : -u) * (1 + 1e-6 * (double)i));
    }
    return t;
}

/* x [2,3,6,6] -> Conv W [4,3,3,3] (cols 27) -> Flatten -> Gemm B [64, 5] (transB 0: the strided
 * layout) -> MatMul M [5, 8] -> y [2, 8]. */
static inline il_graph *three_layer(uint64_t seed, double scale2) {
    uint64_t rng = seed;
    il_graph *g = il_graph_new("three");
    il_graph_set_opset(g, "", 17);
    int64_t xd[4] = {2, 3, 6, 6}, wd[4] = {4, 3, 3, 3}, bd[2] = {64, 5}, md[2] = {5, 8};
    int x = add_input(g, "x", 4, xd);
    int w = il_graph_add_constant(g, "conv.w", weights(4, wd, &rng, 1.0));
    int b = il_graph_add_constant(g, "gemm.b", weights(2, bd, &rng, scale2));
    int m = il_graph_add_constant(g, "mm.w", weights(2, md, &rng, 1.0));
    int c = il_graph_new_value(g, "c"), f = il_graph_new_value(g, "f"), h = il_graph_new_value(g, "h");
    int y = il_graph_value(g, "y");
    int in1[2] = {x, w}, in2[2] = {f, b}, in3[2] = {h, m};
    il_graph_add_node(g, "Conv", "", "conv", 2, in1, 1, &c);
    il_graph_add_node(g, "Flatten", "", "flat", 1, &c, 1, &f);
    il_graph_add_node(g, "Gemm", "", "gemm", 2, in2, 1, &h);
    il_graph_add_node(g, "MatMul", "", "mm", 2, in3, 1, &y);
    g->values[y].dtype = IL_F32;
    il_graph_add_output(g, y);
    IL_ASSERT_OK(il_graph_verify(g));
    return g;
}

static inline const il_tensor *weight(const il_graph *g, const char *name) {
    int v = il_graph_find_value(g, name);
    CU_ASSERT_FATAL(v >= 0);
    return g->values[v].constant;
}

static inline int64_t zeros(const il_tensor *t) {
    int64_t z = 0;
    for (int64_t i = 0; i < il_tensor_numel(t); i++) z += ((const float *)t->data)[i] == 0;
    return z;
}

/* json_extract(doc, path) as text through SQLite's JSON parser ("" when invalid). */
static inline void json_get(const char *doc, const char *path, char *out, size_t n) {
    sqlite3 *db;
    sqlite3_stmt *q;
    out[0] = 0;
    sqlite3_open(":memory:", &db);
    sqlite3_prepare_v2(db, "SELECT json_valid(?1), json_extract(?1, ?2)", -1, &q, NULL);
    sqlite3_bind_text(q, 1, doc, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, path, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) && sqlite3_column_text(q, 1))
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(q, 1));
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static inline void expect_json(const char *doc, const char *path, const char *want) {
    char v[256];
    json_get(doc, path, v, sizeof v);
    if (strcmp(v, want)) fprintf(stderr, "\n  %s: '%s', want '%s'\n", path, v, want);
    CU_ASSERT_STRING_EQUAL(v, want);
}

#endif
