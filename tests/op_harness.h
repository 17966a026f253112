/*
 * op_harness.h - running one op by hand for the op tests (test_reduce.c, test_resize.c).
 *
 * Each case builds a one-node graph, sets c->opset, calls the op's infer, allocates the outputs
 * it asked for (filled with garbage, so an element a kernel forgets to write shows up) and runs
 * ref or fast; CHECK compares with hand-computed values, FAST_VS_REF compares the fast kernel on
 * 4 threads with the reference on fresh random input, FAILS checks a status and its message.
 * Everything is static inline: each test file takes what it uses.
 */
#ifndef IL_OP_HARNESS_H
#define IL_OP_HARNESS_H

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/ops/kernel.h"
#include "test.h"

/* ---------------------------------------------------------------- harness */

typedef struct {
    il_graph *g;
    int k;
    int64_t opset;
    int n_in, n_out;
    il_tensor *in[6];
    il_tensor *out[3];
    const il_op *op;
} tnode;

/* A node `op` with n_in inputs (set later with t.in[i] = ...) and n_out outputs. */
static inline tnode mk(const char *op, int64_t opset, int n_in, int n_out) {
    tnode t;
    memset(&t, 0, sizeof t);
    t.g = il_graph_new("t");
    int in[6], out[3];
    char name[16];
    for (int i = 0; i < n_in; i++) {
        snprintf(name, sizeof name, "x%d", i);
        in[i] = il_graph_value(t.g, name);
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(name, sizeof name, "y%d", i);
        out[i] = il_graph_value(t.g, name);
    }
    t.k = il_graph_add_node(t.g, op, "", "n", n_in, in, n_out, out);
    t.opset = opset;
    t.n_in = n_in;
    t.n_out = n_out;
    t.op = il_op_find("", op);
    if (!t.op) fprintf(stderr, "\n  op %s is not registered\n", op);
    return t;
}

static inline void done(tnode *t) {
    for (int i = 0; i < t->n_in; i++) il_tensor_free(t->in[i]);
    for (int i = 0; i < t->n_out; i++) il_tensor_free(t->out[i]);
    il_graph_free(t->g);
}

#define SETI(t, name, v) il_node_set_int((t).g, (t).k, name, v)
#define SETF(t, name, v) il_node_set_float((t).g, (t).k, name, v)
#define SETS(t, name, v) il_node_set_string((t).g, (t).k, name, v)
#define SETIS(t, name, ...) \
    il_node_set_ints((t).g, (t).k, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__})
#define SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]) { __VA_ARGS__ }
#define VALS(...) ((const double[]){__VA_ARGS__})

/* A tensor from values (NULL: zeros). */
static inline il_tensor *tens(il_dtype dt, int rank, const int64_t *dims, const double *v) {
    il_tensor *t = il_tensor_new(dt, rank, dims);
    if (v)
        for (int64_t i = 0; i < il_tensor_numel(t); i++) il_tensor_set(t, i, v[i]);
    return t;
}
static inline il_tensor *f32(int rank, const int64_t *dims, const double *v) { return tens(IL_F32, rank, dims, v); }
static inline il_tensor *i64(int rank, const int64_t *dims, const double *v) { return tens(IL_I64, rank, dims, v); }

/* A shape-only tensor as plan-time inference sees it: no data, dims may be -1. */
static inline il_tensor *shape_only(il_dtype dt, int rank, const int64_t *dims) {
    il_tensor *t = calloc(1, sizeof *t);
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->q_axis = -1;
    return t;
}

static inline il_kctx ctx(tnode *t, il_tensor **outs, int threads) {
    il_kctx c = {&t->g->nodes[t->k], t->opset, t->n_in, t->n_out, t->in, outs, threads, 0};
    return c;
}

/* infer, allocate, run ref (fast = 0) or fast (1). */
static inline il_status run(tnode *t, int fast, int threads) {
    il_tensor shell[3], *outs[3];
    memset(shell, 0, sizeof shell);
    for (int i = 0; i < t->n_out; i++) outs[i] = &shell[i];
    il_kctx c = ctx(t, outs, threads);
    if (!t->op) return IL_ERR_UNSUPPORTED;
    il_status s = t->op->infer(&c);
    if (s) return s;
    for (int i = 0; i < t->n_out; i++) {
        il_tensor_free(t->out[i]);
        t->out[i] = il_tensor_new(shell[i].dtype, shell[i].rank, shell[i].dims);
        if (!t->out[i]) return IL_ERR_SHAPE;
        memset(t->out[i]->data, 0x7f, il_tensor_bytes(t->out[i])); /* catch unwritten elements */
    }
    c.out = t->out;
    return (fast && t->op->fast ? t->op->fast : t->op->ref)(&c);
}

/* Plan-time inference with input data absent; the inferred outputs land in shell[]. */
static inline il_status infer_only(tnode *t, il_tensor *shell) {
    il_tensor *outs[3];
    for (int i = 0; i < t->n_out; i++) outs[i] = &shell[i], memset(&shell[i], 0, sizeof shell[i]);
    il_kctx c = ctx(t, outs, 1);
    c.infer_only = 1;
    return t->op ? t->op->infer(&c) : IL_ERR_UNSUPPORTED;
}

static inline int same(const il_tensor *got, const il_tensor *want, double rtol, double atol, int line, const char *what) {
    char msg[256];
    int64_t worst;
    int ok = got && il_tensor_allclose(got, want, rtol, atol, &worst, msg, sizeof msg);
    if (!ok) fprintf(stderr, "\n  line %d (%s): %s\n", line, what, got ? msg : "no output");
    return ok;
}

/* Run ref, then fast when the op has one, and compare output 0 (and 1 when want1) with the
 * wanted tensors, which are freed. */
static inline void check_(tnode *t, il_tensor *want0, il_tensor *want1, int line) {
    for (int fast = 0; fast < 2 && t->op; fast++) {
        if (fast && !t->op->fast) break;
        il_status s = run(t, fast, 2);
        if (s) fprintf(stderr, "\n  line %d: %s\n", line, il_errmsg());
        CU_ASSERT_EQUAL(s, IL_OK);
        if (s) break;
        CU_ASSERT(same(t->out[0], want0, 1e-6, 1e-6, line, fast ? "fast" : "ref"));
        if (want1) CU_ASSERT(same(t->out[1], want1, 0, 0, line, fast ? "fast out 1" : "ref out 1"));
    }
    CU_ASSERT_PTR_NOT_NULL(t->op);
    il_tensor_free(want0);
    il_tensor_free(want1);
}
#define CHECK(t, want) check_(&(t), want, NULL, __LINE__)
#define CHECK2(t, want0, want1) check_(&(t), want0, want1, __LINE__)

/* The op must fail with status st and a message containing `has` (when not NULL). */
static inline void fails_(tnode *t, il_status st, const char *has, int line) {
    il_status s = run(t, 0, 1);
    int ok = s == st && (!has || strstr(il_errmsg(), has));
    if (!ok) fprintf(stderr, "\n  line %d: got %s '%s', want %s with '%s'\n", line, il_status_str(s), il_errmsg(),
                     il_status_str(st), has ? has : "");
    CU_ASSERT(ok);
}
#define FAILS(t, st, has) fails_(&(t), st, has, __LINE__)

static inline uint64_t fresh_seed(void) {
    static uint64_t n;
    return ((uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull) ^ (++n * 0xBF58476D1CE4E5B9ull) ^ ((uint64_t)clock() | 1);
}

/* Fast on 4 threads against ref on fresh random input 0 of the given shape. */
static inline void fast_vs_ref_(tnode *t, int rank, const int64_t *dims, double atol, const char *what, int line) {
    uint64_t seed = fresh_seed(), rng = seed;
    il_tensor_free(t->in[0]);
    t->in[0] = il_tensor_new(IL_F32, rank, dims);
    il_tensor_fill_random(t->in[0], &rng, -3, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t->op);
    CU_ASSERT_PTR_NOT_NULL(t->op->fast);
    il_status s = run(t, 0, 1);
    CU_ASSERT_EQUAL_FATAL(s, IL_OK);
    il_tensor *want = il_tensor_clone(t->out[0]);
    s = run(t, 1, 4);
    CU_ASSERT_EQUAL(s, IL_OK);
    int ok = !s && same(t->out[0], want, 1e-5, atol, line, what);
    if (!ok) fprintf(stderr, "  (seed %llu)\n", (unsigned long long)seed);
    CU_ASSERT(ok);
    il_tensor_free(want);
}
#define FAST_VS_REF(t, shape, atol, what) fast_vs_ref_(&(t), shape, atol, what, __LINE__)

#endif
