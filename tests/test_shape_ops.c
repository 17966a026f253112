/*
 * test_shape_ops.c - data-movement, indexing and misc ops (engine/ops/shape.c, index.c,
 * misc.c) on one-node graphs, checked by hand against small cases.
 *
 * Every case goes through run_op, which also checks the contract around the kernel: shape
 * inference with no data (plan time), with unknown dims and with unknown rank must not fail
 * where the run succeeds and must agree with the run's shape; the reference kernel must write
 * every output element (outputs start as garbage); and the fast kernel, where there is one,
 * must give the same bytes as the reference.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../engine/ops/kernel.h"

#define D(...) ((int64_t[]){__VA_ARGS__})
#define V(...) ((double[]){__VA_ARGS__})
#define I64MAX INT64_MAX

/* A tensor of dtype dt and shape dims, filled from vals (NULL: zeros). */
static il_tensor *mk(il_dtype dt, int rank, const int64_t *dims, const double *vals) {
    il_tensor *t = il_tensor_new(dt, rank, dims);
    for (int64_t i = 0, n = il_tensor_numel(t); vals && i < n; i++) il_tensor_set(t, i, vals[i]);
    return t;
}

/* int64 tensor straight from int64 values (values past 2^53 survive). */
static il_tensor *mk64(int rank, const int64_t *dims, const int64_t *vals) {
    il_tensor *t = il_tensor_new(IL_I64, rank, dims);
    if (vals) memcpy(t->data, vals, il_tensor_bytes(t));
    return t;
}

static il_tensor *vec64(int n, const int64_t *vals) { return mk64(1, D(n), vals); }

typedef struct {
    il_graph *g;
    int k; /* the node */
    int64_t opset;
    int n_in, n_out;
    il_tensor *in[8]; /* owned; NULL for an omitted input */
    il_tensor out[8];
    const il_op *op;
    int threads;
} op_case;

static op_case *op_new(const char *type, int64_t opset, int n_in, int n_out) {
    op_case *o = calloc(1, sizeof *o);
    int in[8], out[8];
    o->g = il_graph_new("t");
    il_graph_set_opset(o->g, "", opset);
    for (int i = 0; i < n_in; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "x%d", i);
        in[i] = il_graph_value(o->g, nm);
    }
    for (int i = 0; i < n_out; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "y%d", i);
        out[i] = il_graph_value(o->g, nm);
    }
    o->k = il_graph_add_node(o->g, type, "", "n", n_in, in, n_out, out);
    o->opset = opset;
    o->n_in = n_in;
    o->n_out = n_out;
    o->op = il_op_find("", type);
    o->threads = 3;
    CU_ASSERT_PTR_NOT_NULL_FATAL(o->op);
    return o;
}

static void op_free(op_case *o) {
    for (int i = 0; i < 8; i++) {
        il_tensor_free(o->in[i]);
        if (o->out[i].owns_data) free(o->out[i].data);
    }
    il_graph_free(o->g);
    free(o);
}

static il_status infer_with(op_case *o, il_tensor *ins, int mode, il_tensor *outs) {
    il_tensor *in[8], *out[8];
    for (int i = 0; i < o->n_in; i++) {
        in[i] = NULL;
        if (!o->in[i]) continue;
        ins[i] = *o->in[i];
        ins[i].owns_data = 0;
        if (mode >= 1) ins[i].data = NULL;
        for (int d = 0; mode >= 2 && d < ins[i].rank; d++) ins[i].dims[d] = -1;
        if (mode >= 3) ins[i].rank = -1;
        in[i] = &ins[i];
    }
    for (int i = 0; i < o->n_out; i++) {
        memset(&outs[i], 0, sizeof outs[i]);
        outs[i].rank = -1;
        outs[i].q_axis = -1;
        out[i] = &outs[i];
    }
    il_kctx c = {.node = &o->g->nodes[o->k], .opset = o->opset, .n_in = o->n_in, .n_out = o->n_out,
                 .in = in, .out = out, .threads = o->threads, .infer_only = mode >= 1};
    return o->op->infer(&c);
}

static il_status kernel_with(op_case *o, il_kernel_fn fn, il_tensor *outs) {
    il_tensor *out[8];
    for (int i = 0; i < o->n_out; i++) out[i] = &outs[i];
    il_kctx c = {.node = &o->g->nodes[o->k], .opset = o->opset, .n_in = o->n_in, .n_out = o->n_out,
                 .in = o->in, .out = out, .threads = o->threads, .infer_only = 0};
    return fn(&c);
}

/* Outputs as the executor gives them: garbage-filled buffers of the inferred shape, or none
 * for dynamic-output ops. */
static void alloc_outputs(op_case *o, il_tensor *outs) {
    for (int i = 0; i < o->n_out; i++) {
        outs[i].data = NULL;
        outs[i].owns_data = 0;
        if (o->op->flags & IL_OPF_DYNAMIC_OUT) continue;
        size_t n = il_tensor_bytes(&outs[i]);
        outs[i].data = malloc(n + 1);
        memset(outs[i].data, 0xA5, n + 1);
        outs[i].owns_data = 1;
    }
}

/* Infer (plan time, then run time), run ref, run fast and compare. The run's status. */
static il_status run_op(op_case *o) {
    il_tensor ins[8], plan[8];
    il_status st = infer_with(o, ins, 0, o->out);
    for (int mode = 1; mode <= 3; mode++) {
        il_status pst = infer_with(o, ins, mode, plan);
        if (st != IL_OK) continue;
        if (pst != IL_OK) fprintf(stderr, "\n  plan-time infer (mode %d) failed: %s\n", mode, il_errmsg());
        CU_ASSERT_EQUAL(pst, IL_OK);
        for (int i = 0; i < o->n_out && pst == IL_OK; i++) {
            if (plan[i].rank < 0) continue;
            CU_ASSERT_EQUAL(plan[i].rank, o->out[i].rank);
            CU_ASSERT_EQUAL(plan[i].dtype, o->out[i].dtype);
            for (int d = 0; d < plan[i].rank && plan[i].rank == o->out[i].rank; d++)
                if (plan[i].dims[d] >= 0) CU_ASSERT_EQUAL(plan[i].dims[d], o->out[i].dims[d]);
        }
    }
    if (st) return st;
    if (!(o->op->flags & IL_OPF_DYNAMIC_OUT))
        for (int i = 0; i < o->n_out; i++) CU_ASSERT_TRUE_FATAL(il_shape_known(&o->out[i]));
    alloc_outputs(o, o->out);
    if ((st = kernel_with(o, o->op->ref, o->out))) return st;
    if (!o->op->fast) return IL_OK;
    il_tensor fo[8];
    CU_ASSERT_EQUAL_FATAL(infer_with(o, ins, 0, fo), IL_OK);
    alloc_outputs(o, fo);
    il_status fst = kernel_with(o, o->op->fast, fo);
    CU_ASSERT_EQUAL(fst, IL_OK);
    for (int i = 0; i < o->n_out && !fst; i++) {
        CU_ASSERT_EQUAL(fo[i].rank, o->out[i].rank);
        CU_ASSERT_EQUAL(fo[i].dtype, o->out[i].dtype);
        CU_ASSERT_EQUAL(memcmp(fo[i].dims, o->out[i].dims, sizeof(int64_t) * (size_t)fo[i].rank), 0);
        CU_ASSERT_EQUAL(memcmp(fo[i].data, o->out[i].data, il_tensor_bytes(&fo[i])), 0);
    }
    for (int i = 0; i < o->n_out; i++)
        if (fo[i].owns_data) free(fo[i].data);
    return IL_OK;
}

/* Output i has this dtype, shape and values. */
static void expect(const op_case *o, int i, il_dtype dt, int rank, const int64_t *dims, const double *vals) {
    const il_tensor *t = &o->out[i];
    CU_ASSERT_EQUAL_FATAL(t->rank, rank);
    CU_ASSERT_EQUAL(t->dtype, dt);
    for (int d = 0; d < rank; d++) CU_ASSERT_EQUAL_FATAL(t->dims[d], dims[d]);
    for (int64_t k = 0, n = il_tensor_numel(t); vals && k < n; k++) {
        double got = il_tensor_get(t, k);
        if (isnan(vals[k])) CU_ASSERT_TRUE(isnan(got))
        else {
            if (got != vals[k]) fprintf(stderr, "\n  element %lld: got %g, want %g\n", (long long)k, got, vals[k]);
            CU_ASSERT_EQUAL(got, vals[k]);
        }
    }
}

/* The run fails with status s and a message containing text. */
static void expect_err(op_case *o, il_status s, const char *text) {
    il_status st = run_op(o);
    if (st != s) fprintf(stderr, "\n  status %s, want %s (%s)\n", il_status_str(st), il_status_str(s), il_errmsg());
    CU_ASSERT_EQUAL(st, s);
    if (text && !strstr(il_errmsg(), text)) fprintf(stderr, "\n  message '%s' lacks '%s'\n", il_errmsg(), text);
    if (text) CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), text));
}

static op_case *op1(const char *type, int64_t opset, il_tensor *x, int n_out) {
    op_case *o = op_new(type, opset, 1, n_out);
    o->in[0] = x;
    return o;
}

static op_case *op2(const char *type, int64_t opset, il_tensor *x, il_tensor *y) {
    op_case *o = op_new(type, opset, 2, 1);
    o->in[0] = x;
    o->in[1] = y;
    return o;
}

static il_tensor *iota(il_dtype dt, int rank, const int64_t *dims) {
    il_tensor *t = il_tensor_new(dt, rank, dims);
    for (int64_t i = 0, n = il_tensor_numel(t); i < n; i++) il_tensor_set(t, i, (double)i);
    return t;
}

/* ---------------------------------------------------------------- shape.c */

static void test_reshape(void) {
    op_case *o = op2("Reshape", 13, iota(IL_F32, 2, D(2, 3)), vec64(2, D(3, 2)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(3, 2), V(0, 1, 2, 3, 4, 5));
    op_free(o);
    /* 0 copies the input's dim, -1 takes the rest */
    o = op2("Reshape", 13, iota(IL_F32, 3, D(2, 3, 4)), vec64(3, D(0, -1, 2)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 3, D(2, 6, 2), NULL);
    op_free(o);
    /* allowzero: 0 is a real zero-size dim */
    o = op2("Reshape", 14, iota(IL_F32, 2, D(0, 3)), vec64(2, D(3, 0)));
    il_node_set_int(o->g, o->k, "allowzero", 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(3, 0), NULL);
    op_free(o);
    /* opset 1-4: shape is an attribute */
    o = op1("Reshape", 4, iota(IL_I32, 1, D(6)), 1);
    il_node_set_ints(o->g, o->k, "shape", 3, D(1, -1, 3));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I32, 3, D(1, 2, 3), V(0, 1, 2, 3, 4, 5));
    op_free(o);
}

static void test_reshape_plan_time(void) {
    /* the shape's data is not known before running: the rank is, the dims are not */
    op_case *o = op2("Reshape", 13, iota(IL_F32, 2, D(2, 3)), vec64(3, D(1, 2, 3)));
    il_tensor ins[8], outs[8];
    IL_ASSERT_OK(infer_with(o, ins, 1, outs));
    CU_ASSERT_EQUAL(outs[0].rank, 3);
    CU_ASSERT_EQUAL(outs[0].dims[0], -1);
    op_free(o);
    /* an unknown batch copied by 0 still lets the -1 be inferred: [?,3,4] -> [0,-1] is [?,12] */
    o = op2("Reshape", 13, iota(IL_F32, 3, D(2, 3, 4)), vec64(2, D(0, -1)));
    o->in[0]->dims[0] = -1;
    IL_ASSERT_OK(infer_with(o, ins, 0, outs));
    CU_ASSERT_EQUAL(outs[0].rank, 2);
    CU_ASSERT_EQUAL(outs[0].dims[0], -1);
    CU_ASSERT_EQUAL(outs[0].dims[1], 12);
    o->in[0]->dims[0] = 2;
    op_free(o);
}

static void test_reshape_errors(void) {
    op_case *o = op2("Reshape", 13, iota(IL_F32, 2, D(2, 3)), vec64(2, D(4, 2)));
    expect_err(o, IL_ERR_SHAPE, "cannot reshape [2,3] (6 elements) to [4,2]");
    op_free(o);
    o = op2("Reshape", 13, iota(IL_F32, 2, D(2, 3)), vec64(2, D(-1, 4)));
    expect_err(o, IL_ERR_SHAPE, "cannot reshape");
    op_free(o);
    o = op2("Reshape", 13, iota(IL_F32, 2, D(2, 3)), vec64(2, D(-1, -1)));
    expect_err(o, IL_ERR_INVALID, "more than one -1");
    op_free(o);
    o = op2("Reshape", 13, iota(IL_F32, 1, D(6)), vec64(2, D(3, 0)));
    expect_err(o, IL_ERR_SHAPE, "copies dim 1");
    op_free(o);
    o = op2("Reshape", 13, iota(IL_F32, 1, D(6)), vec64(2, D(-3, -2)));
    expect_err(o, IL_ERR_INVALID, "negative");
    op_free(o);
}

static void test_flatten(void) {
    int64_t axes[] = {0, 1, 3, -1};
    int64_t want[][2] = {{1, 24}, {2, 12}, {24, 1}, {6, 4}};
    for (int i = 0; i < 4; i++) {
        op_case *o = op1("Flatten", 13, iota(IL_F16, 3, D(2, 3, 4)), 1);
        il_node_set_int(o->g, o->k, "axis", axes[i]);
        IL_ASSERT_OK(run_op(o));
        expect(o, 0, IL_F16, 2, want[i], NULL);
        CU_ASSERT_EQUAL(memcmp(o->out[0].data, o->in[0]->data, 48), 0);
        op_free(o);
    }
    op_case *o = op1("Flatten", 13, iota(IL_F32, 2, D(2, 3)), 1);
    il_node_set_int(o->g, o->k, "axis", 3);
    expect_err(o, IL_ERR_INVALID, "axis 3");
    op_free(o);
}

static void test_transpose(void) {
    op_case *o = op1("Transpose", 13, iota(IL_F32, 2, D(2, 3)), 1);
    IL_ASSERT_OK(run_op(o)); /* default: reverse */
    expect(o, 0, IL_F32, 2, D(3, 2), V(0, 3, 1, 4, 2, 5));
    op_free(o);
    o = op1("Transpose", 13, iota(IL_I64, 3, D(2, 3, 2)), 1);
    il_node_set_ints(o->g, o->k, "perm", 3, D(1, 0, 2));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 3, D(3, 2, 2), V(0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11));
    op_free(o);
    o = op1("Transpose", 13, iota(IL_F32, 2, D(2, 3)), 1);
    il_node_set_ints(o->g, o->k, "perm", 2, D(0, 0));
    expect_err(o, IL_ERR_INVALID, "permutation");
    op_free(o);
    o = op1("Transpose", 13, iota(IL_F32, 2, D(2, 3)), 1);
    il_node_set_ints(o->g, o->k, "perm", 3, D(0, 1, 2));
    expect_err(o, IL_ERR_INVALID, "perm has 3 values");
    op_free(o);
}

/* The fast kernel (runs, tiles, threads) against the reference on every permutation of a few
 * shapes, with 1-, 2-, 4- and 8-byte elements and zero-size and size-1 dims. */
static void test_transpose_fast_vs_ref(void) {
    static const int64_t shapes[][4] = {{3, 37, 41, 1}, {2, 1, 70, 33}, {5, 4, 3, 2}, {64, 1, 1, 65}, {3, 0, 4, 5}};
    static const il_dtype dts[] = {IL_U8, IL_F16, IL_F32, IL_F64};
    int perms[24][4], np = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++)
                for (int d = 0; d < 4; d++)
                    if (a != b && a != c && a != d && b != c && b != d && c != d) {
                        perms[np][0] = a; perms[np][1] = b; perms[np][2] = c; perms[np][3] = d;
                        np++;
                    }
    uint64_t rng = 42;
    for (int s = 0; s < 5; s++)
        for (int t = 0; t < 4; t++)
            for (int p = 0; p < np; p++) {
                il_tensor *x = il_tensor_new(dts[t], 4, shapes[s]);
                il_tensor_fill_random(x, &rng, 0, 100);
                op_case *o = op1("Transpose", 13, x, 1);
                int64_t perm[4] = {perms[p][0], perms[p][1], perms[p][2], perms[p][3]};
                il_node_set_ints(o->g, o->k, "perm", 4, perm);
                IL_ASSERT_OK(run_op(o));
                op_free(o);
            }
}

static void test_squeeze_unsqueeze(void) {
    op_case *o = op1("Squeeze", 11, iota(IL_F32, 4, D(1, 3, 1, 2)), 1); /* axes attribute */
    il_node_set_ints(o->g, o->k, "axes", 1, D(-2));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 3, D(1, 3, 2), V(0, 1, 2, 3, 4, 5));
    op_free(o);
    o = op2("Squeeze", 13, iota(IL_F32, 4, D(1, 3, 1, 2)), vec64(2, D(0, 2))); /* axes input */
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(3, 2), NULL);
    op_free(o);
    o = op1("Squeeze", 13, iota(IL_F32, 4, D(1, 3, 1, 2)), 1); /* no axes: every 1 */
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(3, 2), NULL);
    op_free(o);
    o = op2("Squeeze", 13, iota(IL_F32, 2, D(1, 3)), vec64(1, D(1)));
    expect_err(o, IL_ERR_SHAPE, "cannot squeeze axis 1 of size 3");
    op_free(o);
    o = op2("Squeeze", 13, iota(IL_F32, 2, D(1, 3)), vec64(1, D(2)));
    expect_err(o, IL_ERR_INVALID, "axis 2");
    op_free(o);

    o = op1("Unsqueeze", 11, iota(IL_F32, 2, D(3, 2)), 1);
    il_node_set_ints(o->g, o->k, "axes", 2, D(3, 0)); /* unsorted */
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 4, D(1, 3, 2, 1), V(0, 1, 2, 3, 4, 5));
    op_free(o);
    o = op2("Unsqueeze", 13, iota(IL_F32, 1, D(3)), vec64(2, D(-1, 1)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 3, D(3, 1, 1), NULL);
    op_free(o);
    o = op2("Unsqueeze", 13, iota(IL_F32, 0, NULL), vec64(1, D(0)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 1, D(1), V(0));
    op_free(o);
    o = op2("Unsqueeze", 13, iota(IL_F32, 1, D(3)), vec64(2, D(0, -3)));
    expect_err(o, IL_ERR_INVALID, "twice");
    op_free(o);
    o = op2("Unsqueeze", 13, iota(IL_F32, 1, D(3)), vec64(1, D(5)));
    expect_err(o, IL_ERR_INVALID, "out of range");
    op_free(o);
}

static void test_concat(void) {
    op_case *o = op_new("Concat", 13, 3, 1);
    o->in[0] = iota(IL_F32, 2, D(2, 1));
    o->in[1] = iota(IL_F32, 2, D(2, 0)); /* zero-size inputs are legal */
    o->in[2] = mk(IL_F32, 2, D(2, 2), V(10, 11, 12, 13));
    il_node_set_int(o->g, o->k, "axis", -1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(2, 3), V(0, 10, 11, 1, 12, 13));
    op_free(o);
    o = op_new("Concat", 13, 2, 1);
    o->in[0] = mk(IL_BF16, 2, D(1, 2), V(1.5, -2));
    o->in[1] = mk(IL_BF16, 2, D(2, 2), V(3, 4, 5, 6));
    il_node_set_int(o->g, o->k, "axis", 0);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_BF16, 2, D(3, 2), V(1.5, -2, 3, 4, 5, 6));
    op_free(o);
    o = op_new("Concat", 13, 2, 1);
    o->in[0] = iota(IL_F32, 2, D(2, 1));
    o->in[1] = iota(IL_F32, 2, D(3, 1));
    il_node_set_int(o->g, o->k, "axis", 1);
    expect_err(o, IL_ERR_SHAPE, "does not fit");
    op_free(o);
    o = op_new("Concat", 13, 2, 1);
    o->in[0] = iota(IL_F32, 2, D(2, 1));
    o->in[1] = iota(IL_F32, 1, D(2));
    il_node_set_int(o->g, o->k, "axis", 0);
    expect_err(o, IL_ERR_SHAPE, "rank");
    op_free(o);
    o = op_new("Concat", 13, 2, 1);
    o->in[0] = iota(IL_F32, 1, D(2));
    o->in[1] = iota(IL_F32, 1, D(2));
    expect_err(o, IL_ERR_INVALID, "axis");
    op_free(o);
}

static void test_split(void) {
    op_case *o = op1("Split", 11, iota(IL_F32, 2, D(2, 5)), 2); /* split attribute */
    il_node_set_int(o->g, o->k, "axis", 1);
    il_node_set_ints(o->g, o->k, "split", 2, D(2, 3));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(2, 2), V(0, 1, 5, 6));
    expect(o, 1, IL_F32, 2, D(2, 3), V(2, 3, 4, 7, 8, 9));
    op_free(o);
    o = op_new("Split", 13, 2, 3); /* split input, a zero-size part */
    o->in[0] = iota(IL_I64, 1, D(4));
    o->in[1] = vec64(3, D(1, 0, 3));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 1, D(1), V(0));
    expect(o, 1, IL_I64, 1, D(0), NULL);
    expect(o, 2, IL_I64, 1, D(3), V(1, 2, 3));
    op_free(o);
    o = op1("Split", 13, iota(IL_F16, 1, D(6)), 3); /* equal parts */
    IL_ASSERT_OK(run_op(o));
    expect(o, 2, IL_F16, 1, D(2), V(4, 5));
    op_free(o);
    o = op1("Split", 18, iota(IL_F32, 1, D(7)), 3); /* num_outputs: the last part is smaller */
    il_node_set_int(o->g, o->k, "num_outputs", 3);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 1, D(3), V(0, 1, 2));
    expect(o, 1, IL_F32, 1, D(3), V(3, 4, 5));
    expect(o, 2, IL_F32, 1, D(1), V(6));
    op_free(o);
    o = op1("Split", 13, iota(IL_F32, 1, D(7)), 3);
    expect_err(o, IL_ERR_SHAPE, "equal parts");
    op_free(o);
    o = op_new("Split", 13, 2, 2);
    o->in[0] = iota(IL_F32, 1, D(4));
    o->in[1] = vec64(2, D(1, 2));
    expect_err(o, IL_ERR_SHAPE, "add up to 3");
    op_free(o);
    o = op1("Split", 18, iota(IL_F32, 1, D(4)), 2);
    il_node_set_int(o->g, o->k, "num_outputs", 3);
    expect_err(o, IL_ERR_INVALID, "num_outputs");
    op_free(o);
    o = op1("Split", 13, iota(IL_F32, 1, D(4)), 0);
    expect_err(o, IL_ERR_UNSUPPORTED, "outputs");
    op_free(o);
}

static void test_expand_tile(void) {
    op_case *o = op2("Expand", 13, iota(IL_F32, 2, D(3, 1)), vec64(3, D(2, 1, 2)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 3, D(2, 3, 2), V(0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2));
    op_free(o);
    o = op2("Expand", 13, iota(IL_F32, 2, D(3, 2)), vec64(1, D(3)));
    expect_err(o, IL_ERR_SHAPE, "cannot be broadcast");
    op_free(o);
    o = op2("Expand", 13, iota(IL_F32, 1, D(3)), vec64(1, D(-2)));
    expect_err(o, IL_ERR_INVALID, "negative");
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 2, D(2, 2)), vec64(2, D(2, 3)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_U8, 2, D(4, 6), V(0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3));
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 2, D(2, 2)), vec64(2, D(0, 1)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_U8, 2, D(0, 2), NULL);
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 2, D(2, 2)), vec64(1, D(2)));
    expect_err(o, IL_ERR_INVALID, "repeats");
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 1, D(2)), vec64(1, D(-1)));
    expect_err(o, IL_ERR_INVALID, "negative");
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 2, D(2, 2)), vec64(2, D(I64MAX / 4, I64MAX / 4)));
    expect_err(o, IL_ERR_INVALID, "too large");
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 2, D(1 << 20, 2)), vec64(2, D((int64_t)1 << 39, 1)));
    expect_err(o, IL_ERR_INVALID, "too large");
    op_free(o);
}

static void test_identity_dropout(void) {
    op_case *o = op1("Identity", 13, mk(IL_F16, 1, D(3), V(1, -2, 0.5)), 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F16, 1, D(3), V(1, -2, 0.5));
    op_free(o);
    o = op1("Dropout", 13, iota(IL_F32, 2, D(2, 2)), 2);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(2, 2), V(0, 1, 2, 3));
    expect(o, 1, IL_BOOL, 2, D(2, 2), V(1, 1, 1, 1));
    op_free(o);
    o = op1("Dropout", 7, iota(IL_F32, 1, D(2)), 2); /* before opset 10 the mask has the input's dtype */
    il_node_set_float(o->g, o->k, "ratio", 0.3f);
    IL_ASSERT_OK(run_op(o));
    expect(o, 1, IL_F32, 1, D(2), V(1, 1));
    op_free(o);
    o = op_new("Dropout", 13, 3, 1);
    o->in[0] = iota(IL_F32, 1, D(2));
    o->in[1] = mk(IL_F32, 0, NULL, V(0.5));
    o->in[2] = mk(IL_BOOL, 0, NULL, V(1));
    expect_err(o, IL_ERR_UNSUPPORTED, "training_mode");
    op_free(o);
    o = op_new("Dropout", 13, 3, 1); /* training with ratio 0 drops nothing: fine */
    o->in[0] = iota(IL_F32, 1, D(2));
    o->in[1] = mk(IL_F32, 0, NULL, V(0));
    o->in[2] = mk(IL_BOOL, 0, NULL, V(1));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 1, D(2), V(0, 1));
    op_free(o);
}

static void test_shape_size(void) {
    op_case *o = op1("Shape", 13, iota(IL_F32, 3, D(2, 3, 4)), 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 1, D(3), V(2, 3, 4));
    op_free(o);
    int64_t se[][3] = {{1, I64MAX, 2}, {-1, I64MAX, 1}, {0, -1, 2}, {-10, 10, 3}, {2, 1, 0}};
    for (int i = 0; i < 5; i++) {
        o = op1("Shape", 15, iota(IL_F32, 3, D(2, 3, 4)), 1);
        il_node_set_int(o->g, o->k, "start", se[i][0]);
        if (se[i][1] != I64MAX) il_node_set_int(o->g, o->k, "end", se[i][1]);
        IL_ASSERT_OK(run_op(o));
        CU_ASSERT_EQUAL(o->out[0].dims[0], se[i][2]);
        if (i == 1) CU_ASSERT_EQUAL(((int64_t *)o->out[0].data)[0], 4);
        op_free(o);
    }
    o = op1("Size", 13, iota(IL_F16, 2, D(5, 7)), 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 0, NULL, V(35));
    op_free(o);
    /* the engine folds Shape and Size before the input has data: the kernels read only dims */
    il_tensor *x = il_tensor_wrap(IL_F32, 2, D(6, 9), NULL);
    o = op1("Size", 13, x, 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 0, NULL, V(54));
    op_free(o);
    o = op1("Shape", 13, il_tensor_wrap(IL_F32, 2, D(6, 9), NULL), 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 1, D(2), V(6, 9));
    op_free(o);
}

/* ---------------------------------------------------------------- index.c */

static op_case *slice10(il_tensor *x, int n, const int64_t *st, const int64_t *en, const int64_t *ax,
                        const int64_t *sp) {
    op_case *o = op_new("Slice", 13, 5, 1);
    o->in[0] = x;
    o->in[1] = vec64(n, st);
    o->in[2] = vec64(n, en);
    if (ax) o->in[3] = vec64(n, ax);
    if (sp) o->in[4] = vec64(n, sp);
    return o;
}

static void test_slice(void) {
    op_case *o = op1("Slice", 1, iota(IL_F32, 2, D(3, 4)), 1); /* opset 1: attributes */
    il_node_set_ints(o->g, o->k, "starts", 2, D(1, -3));
    il_node_set_ints(o->g, o->k, "ends", 2, D(I64MAX, 3));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(2, 2), V(5, 6, 9, 10));
    op_free(o);
    o = slice10(iota(IL_F32, 2, D(3, 4)), 1, D(-1), D(-I64MAX), D(1), D(-2)); /* negative step */
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(3, 2), V(3, 1, 7, 5, 11, 9));
    op_free(o);
    o = slice10(iota(IL_F32, 1, D(5)), 1, D(10), D(-10), NULL, D(-1)); /* clamped both ends */
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 1, D(5), V(4, 3, 2, 1, 0));
    op_free(o);
    o = slice10(iota(IL_F16, 2, D(3, 4)), 2, D(0, 1), D(I64MAX, 100), D(-2, -1), D(2, 2));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F16, 2, D(2, 2), V(1, 3, 9, 11));
    op_free(o);
    o = slice10(iota(IL_F32, 1, D(5)), 1, D(3), D(1), NULL, NULL); /* empty */
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 1, D(0), NULL);
    op_free(o);
    o = slice10(iota(IL_F32, 1, D(5)), 1, D(0), D(5), NULL, D(0));
    expect_err(o, IL_ERR_INVALID, "step");
    op_free(o);
    o = slice10(iota(IL_F32, 1, D(5)), 1, D(0), D(5), D(1), NULL);
    expect_err(o, IL_ERR_INVALID, "axis 1");
    op_free(o);
    o = slice10(iota(IL_F32, 2, D(2, 5)), 2, D(0, 0), D(5, 5), D(1, -1), NULL);
    expect_err(o, IL_ERR_INVALID, "twice");
    op_free(o);
}

static void test_slice_fast_vs_ref(void) {
    uint64_t rng = 9;
    for (int t = 0; t < 300; t++) {
        int64_t st[3], en[3], sp[3];
        for (int a = 0; a < 3; a++) {
            st[a] = (int64_t)(il_rand_u64(&rng) % 15) - 7;
            en[a] = (int64_t)(il_rand_u64(&rng) % 15) - 7;
            sp[a] = (int64_t)(il_rand_u64(&rng) % 7) - 3;
            if (!sp[a]) sp[a] = 1;
        }
        op_case *o = slice10(iota(t % 2 ? IL_F32 : IL_U8, 3, D(4, 5, 6)), 3, st, en, D(0, 1, 2), sp);
        IL_ASSERT_OK(run_op(o));
        op_free(o);
    }
}

static void test_gather(void) {
    op_case *o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2)), vec64(2, D(-1, 0)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(2, 2), V(4, 5, 0, 1));
    op_free(o);
    o = op2("Gather", 13, iota(IL_F16, 2, D(2, 3)), mk(IL_I32, 2, D(2, 2), V(2, 0, 1, -3)));
    il_node_set_int(o->g, o->k, "axis", 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F16, 3, D(2, 2, 2), V(2, 0, 1, 0, 5, 3, 4, 3));
    op_free(o);
    o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2)), mk64(0, NULL, D(2))); /* scalar index drops the axis */
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 1, D(2), V(4, 5));
    op_free(o);
    o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2)), mk64(1, D(0), NULL));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(0, 2), NULL);
    op_free(o);
    o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2)), vec64(2, D(1, 3)));
    expect_err(o, IL_ERR_INVALID, "index 3 is out of range for axis 0 of size 3");
    op_free(o);
    o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2)), vec64(1, D(-4)));
    expect_err(o, IL_ERR_INVALID, "index -4");
    op_free(o);
    o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2)), mk(IL_F32, 1, D(1), V(0)));
    expect_err(o, IL_ERR_TYPE, "indices");
    op_free(o);
}

static void test_gather_elements_nd(void) {
    op_case *o = op2("GatherElements", 13, iota(IL_F32, 2, D(3, 3)), mk64(2, D(2, 3), D(1, 2, 0, 2, 0, -3)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(2, 3), V(3, 7, 2, 6, 1, 2));
    op_free(o);
    o = op2("GatherElements", 13, iota(IL_F32, 2, D(2, 2)), mk64(2, D(2, 1), D(1, 0)));
    il_node_set_int(o->g, o->k, "axis", 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(2, 1), V(1, 2));
    op_free(o);
    o = op2("GatherElements", 13, iota(IL_F32, 2, D(2, 2)), mk64(2, D(1, 1), D(2)));
    expect_err(o, IL_ERR_INVALID, "index 2");
    op_free(o);

    o = op2("GatherND", 13, iota(IL_I32, 3, D(2, 2, 2)), mk64(2, D(2, 2), D(0, 1, 1, 0)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I32, 2, D(2, 2), V(2, 3, 4, 5));
    op_free(o);
    o = op2("GatherND", 13, iota(IL_I32, 3, D(2, 2, 2)), mk64(2, D(2, 1), D(1, 0))); /* batch_dims 1 */
    il_node_set_int(o->g, o->k, "batch_dims", 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I32, 2, D(2, 2), V(2, 3, 4, 5));
    op_free(o);
    o = op2("GatherND", 13, iota(IL_F32, 2, D(2, 2)), mk64(2, D(2, 2), D(0, 0, -1, -1)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 1, D(2), V(0, 3));
    op_free(o);
    o = op2("GatherND", 13, iota(IL_F32, 2, D(2, 2)), mk64(1, D(3), D(0, 0, 0)));
    expect_err(o, IL_ERR_INVALID, "last dim");
    op_free(o);
    o = op2("GatherND", 13, iota(IL_F32, 2, D(2, 2)), mk64(1, D(2), D(0, 2)));
    expect_err(o, IL_ERR_INVALID, "index 2");
    op_free(o);
}

static op_case *scatter(const char *type, int64_t opset, il_tensor *x, il_tensor *ind, il_tensor *upd,
                        const char *red) {
    op_case *o = op_new(type, opset, 3, 1);
    o->in[0] = x;
    o->in[1] = ind;
    o->in[2] = upd;
    if (red) il_node_set_string(o->g, o->k, "reduction", red);
    return o;
}

static void test_scatter_nd(void) {
    static const char *reds[] = {NULL, "add", "mul", "max", "min"};
    static const double want[][4] = {{9, 1, 7, 3}, {9, 1, 11, 3}, {0, 1, 2 * 7 * 2, 3}, {9, 1, 7, 3}, {0, 1, 2, 3}};
    for (int r = 0; r < 5; r++) { /* index [2] twice: updates 7 then 2 under add/mul/max/min */
        il_tensor *u = mk(IL_F16, 1, D(3), V(9, 7, 2));
        op_case *o = scatter("ScatterND", 18, iota(IL_F16, 1, D(4)), mk64(2, D(3, 1), D(0, 2, -2)), u, reds[r]);
        IL_ASSERT_OK(run_op(o));
        double w[4];
        memcpy(w, want[r], sizeof w);
        if (r == 0) w[2] = 2; /* none: the last write wins */
        expect(o, 0, IL_F16, 1, D(4), w);
        op_free(o);
    }
    op_case *o =
        scatter("ScatterND", 16, iota(IL_I64, 2, D(2, 2)), mk64(2, D(1, 1), D(1)), mk64(2, D(1, 2), D(10, 20)), "add");
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 2, D(2, 2), V(0, 1, 12, 23));
    op_free(o);
    o = scatter("ScatterND", 16, iota(IL_I64, 2, D(2, 2)), mk64(2, D(1, 1), D(1)), mk64(1, D(2), D(10, 20)), NULL);
    expect_err(o, IL_ERR_SHAPE, "updates");
    op_free(o);
    o = scatter("ScatterND", 16, iota(IL_I64, 1, D(2)), mk64(2, D(1, 1), D(5)), mk64(1, D(1), D(1)), NULL);
    expect_err(o, IL_ERR_INVALID, "index 5");
    op_free(o);
    o = scatter("ScatterND", 16, iota(IL_I64, 1, D(2)), mk64(2, D(1, 1), D(0)), mk64(1, D(1), D(1)), "avg");
    expect_err(o, IL_ERR_INVALID, "reduction");
    op_free(o);
}

static void test_scatter_elements(void) {
    op_case *o = scatter("ScatterElements", 13, mk(IL_F32, 2, D(1, 5), V(1, 2, 3, 4, 5)), mk64(2, D(1, 2), D(1, -2)),
                         mk(IL_F32, 2, D(1, 2), V(1.1, 2.1)), NULL);
    il_node_set_int(o->g, o->k, "axis", 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(1, 5), V(1, (float)1.1, 3, (float)2.1, 5));
    op_free(o);
    o = scatter("ScatterElements", 16, iota(IL_I32, 2, D(3, 2)), mk64(2, D(2, 2), D(1, 0, 1, 2)),
                mk(IL_I32, 2, D(2, 2), V(10, 20, 30, 40)), "add");
    IL_ASSERT_OK(run_op(o)); /* row 1 col 0 gets 10 and 30 */
    expect(o, 0, IL_I32, 2, D(3, 2), V(0, 21, 42, 3, 4, 45));
    op_free(o);
    o = scatter("ScatterElements", 18, mk(IL_BOOL, 1, D(3), V(1, 0, 1)), mk64(1, D(2), D(0, 1)),
                mk(IL_BOOL, 1, D(2), V(0, 1)), "min");
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_BOOL, 1, D(3), V(0, 0, 1));
    op_free(o);
    o = scatter("Scatter", 10, iota(IL_F32, 2, D(2, 2)), mk64(2, D(1, 2), D(1, 1)), mk(IL_F32, 2, D(1, 2), V(8, 9)),
                NULL);
    IL_ASSERT_OK(run_op(o)); /* the deprecated name */
    expect(o, 0, IL_F32, 2, D(2, 2), V(0, 1, 8, 9));
    op_free(o);
    o = scatter("ScatterElements", 13, iota(IL_F32, 1, D(3)), mk64(1, D(1), D(-4)), mk(IL_F32, 1, D(1), V(1)), NULL);
    expect_err(o, IL_ERR_INVALID, "index -4");
    op_free(o);
    o = scatter("ScatterElements", 13, iota(IL_F32, 1, D(3)), mk64(1, D(2), D(0, 1)), mk(IL_F32, 1, D(1), V(1)), NULL);
    expect_err(o, IL_ERR_SHAPE, "differ");
    op_free(o);
}

static void test_trilu(void) {
    op_case *o = op1("Trilu", 14, iota(IL_F32, 2, D(3, 3)), 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(3, 3), V(0, 1, 2, 0, 4, 5, 0, 0, 8));
    op_free(o);
    o = op2("Trilu", 14, iota(IL_F16, 3, D(2, 2, 3)), mk64(0, NULL, D(-1)));
    il_node_set_int(o->g, o->k, "upper", 0);
    IL_ASSERT_OK(run_op(o)); /* lower with k = -1: strictly below the diagonal */
    expect(o, 0, IL_F16, 3, D(2, 2, 3), V(0, 0, 0, 3, 0, 0, 0, 0, 0, 9, 0, 0));
    op_free(o);
    o = op2("Trilu", 14, iota(IL_I64, 2, D(2, 3)), mk64(0, NULL, D(1)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 2, D(2, 3), V(0, 1, 2, 0, 0, 5));
    op_free(o);
    o = op1("Trilu", 14, iota(IL_F32, 1, D(3)), 1);
    expect_err(o, IL_ERR_INVALID, "rank");
    op_free(o);
}

static void test_nonzero_compress(void) {
    op_case *o = op1("NonZero", 13, mk(IL_F16, 2, D(2, 3), V(0, 1, -0.0, 2, 0, NAN)), 1);
    IL_ASSERT_OK(run_op(o)); /* -0.0 is zero, NaN is not */
    expect(o, 0, IL_I64, 2, D(2, 3), V(0, 1, 1, 1, 0, 2));
    op_free(o);
    o = op1("NonZero", 13, mk(IL_I32, 1, D(4), NULL), 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 2, D(1, 0), NULL);
    op_free(o);
    o = op2("Compress", 13, iota(IL_F32, 2, D(3, 2)), mk(IL_BOOL, 1, D(2), V(0, 1)));
    il_node_set_int(o->g, o->k, "axis", 0);
    IL_ASSERT_OK(run_op(o)); /* a short condition leaves the rest out */
    expect(o, 0, IL_F32, 2, D(1, 2), V(2, 3));
    op_free(o);
    o = op2("Compress", 13, iota(IL_F32, 2, D(3, 2)), mk(IL_BOOL, 1, D(5), V(0, 1, 0, 1, 1)));
    IL_ASSERT_OK(run_op(o)); /* no axis: the flattened input */
    expect(o, 0, IL_F32, 1, D(3), V(1, 3, 4));
    op_free(o);
    o = op2("Compress", 13, iota(IL_F32, 1, D(2)), mk(IL_BOOL, 1, D(3), V(0, 0, 1)));
    expect_err(o, IL_ERR_INVALID, "past the axis");
    op_free(o);
}

/* ---------------------------------------------------------------- misc.c */

static op_case *cast(il_tensor *x, il_dtype to) {
    op_case *o = op1("Cast", 13, x, 1);
    il_node_set_int(o->g, o->k, "to", to);
    return o;
}

static void test_cast_values(void) {
    /* float32 -> float16 bits: 1, 65504 (largest), 1e5 (overflows to inf), 0.1 (rounded), -0 */
    op_case *o = cast(mk(IL_F32, 1, D(5), V(1, 65504, 1e5, 0.1, -0.0)), IL_F16);
    IL_ASSERT_OK(run_op(o));
    const uint16_t *h = o->out[0].data;
    CU_ASSERT_EQUAL(h[0], 0x3c00);
    CU_ASSERT_EQUAL(h[1], 0x7bff);
    CU_ASSERT_EQUAL(h[2], 0x7c00);
    CU_ASSERT_EQUAL(h[3], 0x2e66);
    CU_ASSERT_EQUAL(h[4], 0x8000);
    op_free(o);
    /* float16 -> float32 is exact */
    o = cast(mk(IL_F16, 1, D(2), V(0.1, -3.5)), IL_F32);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 1, D(2), V(il_f16_to_f32(0x2e66), -3.5));
    op_free(o);
    /* float32 -> bfloat16 truncates as the ONNX backend tests expect; a NaN whose payload sits
     * in the dropped half stays NaN */
    il_tensor *x = il_tensor_new(IL_F32, 1, D(4));
    memcpy(x->data, (uint32_t[]){0x3f800000, 0x3f81c000, 0x7f800001, 0xbf51b000}, 16);
    o = cast(x, IL_BF16);
    IL_ASSERT_OK(run_op(o));
    h = o->out[0].data;
    CU_ASSERT_EQUAL(h[0], 0x3f80);
    CU_ASSERT_EQUAL(h[1], 0x3f81);
    CU_ASSERT_TRUE(isnan(il_bf16_to_f32(h[2])));
    CU_ASSERT_EQUAL(h[3], 0xbf51);
    op_free(o);
    o = cast(mk(IL_BF16, 1, D(2), V(2.5, -1)), IL_F16);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F16, 1, D(2), V(2.5, -1));
    op_free(o);
    /* to integers: truncation toward zero; NaN and huge values do not crash */
    o = cast(mk(IL_F32, 1, D(5), V(-1.7, 2.9, 300, NAN, 1e30)), IL_I32);
    IL_ASSERT_OK(run_op(o));
    CU_ASSERT_EQUAL(((int32_t *)o->out[0].data)[0], -1);
    CU_ASSERT_EQUAL(((int32_t *)o->out[0].data)[1], 2);
    CU_ASSERT_EQUAL(((int32_t *)o->out[0].data)[2], 300);
    op_free(o);
    o = cast(mk(IL_F16, 1, D(3), V(-2.5, 7, 0)), IL_I8);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I8, 1, D(3), V(-2, 7, 0));
    op_free(o);
    o = cast(mk(IL_F64, 1, D(4), V(0, -0.5, NAN, 3)), IL_BOOL);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_BOOL, 1, D(4), V(0, 1, 1, 1));
    op_free(o);
    o = cast(mk(IL_BOOL, 1, D(2), V(1, 0)), IL_F16);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F16, 1, D(2), V(1, 0));
    op_free(o);
    /* int64 keeps all its bits through uint64 and back; -1 wraps to 255 in uint8 */
    o = cast(mk64(1, D(2), D(I64MAX, -1)), IL_U64);
    IL_ASSERT_OK(run_op(o));
    CU_ASSERT_EQUAL(((uint64_t *)o->out[0].data)[0], (uint64_t)I64MAX);
    CU_ASSERT_EQUAL(((uint64_t *)o->out[0].data)[1], UINT64_MAX);
    op_free(o);
    o = cast(mk64(1, D(2), D(-1, 258)), IL_U8);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_U8, 1, D(2), V(255, 2));
    op_free(o);
    o = cast(mk64(1, D(1), D((1LL << 53) + 1)), IL_F64);
    IL_ASSERT_OK(run_op(o));
    CU_ASSERT_EQUAL(((double *)o->out[0].data)[0], 9007199254740992.0);
    op_free(o);
}

static void test_cast_opsets_and_errors(void) {
    op_case *o = op1("Cast", 1, mk(IL_I32, 1, D(2), V(3, -4)), 1); /* opset 1: 'to' is a name */
    il_node_set_string(o->g, o->k, "to", "DOUBLE");
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F64, 1, D(2), V(3, -4));
    op_free(o);
    o = op2("CastLike", 15, mk(IL_F32, 1, D(2), V(1.5, -2)), mk(IL_F16, 0, NULL, V(0)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F16, 1, D(2), V(1.5, -2));
    op_free(o);
    o = cast(mk(IL_F32, 1, D(1), V(1)), IL_STRING);
    expect_err(o, IL_ERR_UNSUPPORTED, "unsupported dtype string");
    op_free(o);
    o = cast(mk(IL_F32, 1, D(1), V(1)), (il_dtype)14);
    expect_err(o, IL_ERR_UNSUPPORTED, "unsupported dtype");
    op_free(o);
    o = op1("Cast", 13, mk(IL_F32, 1, D(1), V(1)), 1);
    expect_err(o, IL_ERR_INVALID, "'to'");
    op_free(o);
}

/* Every pair of stored dtypes: fast (where it has its own loop) against ref, and a round trip
 * of small integers, which every dtype holds exactly. */
static void test_cast_all_pairs(void) {
    static const il_dtype dts[] = {IL_F32,  IL_U8,  IL_I8,  IL_U16, IL_I16, IL_I32, IL_I64,
                                   IL_BOOL, IL_F16, IL_F64, IL_U32, IL_U64, IL_BF16};
    int n = (int)(sizeof dts / sizeof *dts);
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            il_tensor *x = mk(dts[a], 1, D(4), V(0, 1, 7, 100));
            if (dts[a] == IL_BOOL) il_tensor_set(x, 2, 1), il_tensor_set(x, 3, 1);
            op_case *o = cast(x, dts[b]);
            IL_ASSERT_OK(run_op(o));
            for (int i = 0; i < 4; i++) {
                double want = il_tensor_get(x, i);
                if (dts[b] == IL_BOOL) want = want != 0;
                CU_ASSERT_EQUAL(il_tensor_get(&o->out[0], i), want);
            }
            op_free(o);
        }
}

static void test_constant(void) {
    op_case *o = op_new("Constant", 13, 0, 1);
    il_node_set_tensor(o->g, o->k, "value", mk(IL_F16, 2, D(1, 2), V(0.5, 3)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F16, 2, D(1, 2), V(0.5, 3));
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    il_node_set_float(o->g, o->k, "value_float", 2.5f);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 0, NULL, V(2.5));
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    il_node_set_ints(o->g, o->k, "value_ints", 3, D(4, -5, I64MAX));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 1, D(3), NULL);
    CU_ASSERT_EQUAL(((int64_t *)o->out[0].data)[2], I64MAX);
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    il_node_set_floats(o->g, o->k, "value_floats", 2, (float[]){1, -1});
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 1, D(2), V(1, -1));
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    il_node_set_int(o->g, o->k, "value_int", -7);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 0, NULL, V(-7));
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    il_node_set_string(o->g, o->k, "value_string", "hi");
    expect_err(o, IL_ERR_UNSUPPORTED, "unsupported dtype string");
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    expect_err(o, IL_ERR_INVALID, "exactly one");
    op_free(o);
}

static void test_constant_of_shape(void) {
    op_case *o = op1("ConstantOfShape", 13, vec64(2, D(2, 3)), 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 2, D(2, 3), V(0, 0, 0, 0, 0, 0));
    op_free(o);
    o = op1("ConstantOfShape", 13, vec64(1, D(3)), 1);
    il_node_set_tensor(o->g, o->k, "value", mk(IL_I32, 1, D(1), V(-4)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I32, 1, D(3), V(-4, -4, -4));
    op_free(o);
    o = op1("ConstantOfShape", 13, vec64(1, D(0)), 1); /* a zero-size dim */
    il_node_set_tensor(o->g, o->k, "value", mk(IL_F16, 1, D(1), V(1)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F16, 1, D(0), NULL);
    op_free(o);
    o = op1("ConstantOfShape", 13, mk64(1, D(0), NULL), 1); /* an empty shape: a scalar */
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 0, NULL, V(0));
    op_free(o);
    o = op1("ConstantOfShape", 13, vec64(1, D(-1)), 1);
    expect_err(o, IL_ERR_INVALID, "negative");
    op_free(o);
    o = op1("ConstantOfShape", 13, vec64(1, D(2)), 1);
    il_node_set_tensor(o->g, o->k, "value", mk(IL_I32, 1, D(2), V(1, 2)));
    expect_err(o, IL_ERR_INVALID, "one element");
    op_free(o);
}

static op_case *range(il_dtype dt, double s, double l, double d) {
    op_case *o = op_new("Range", 13, 3, 1);
    o->in[0] = mk(dt, 0, NULL, V(s));
    o->in[1] = mk(dt, 0, NULL, V(l));
    o->in[2] = mk(dt, 0, NULL, V(d));
    return o;
}

static void test_range(void) {
    op_case *o = range(IL_F32, 1, 2, 0.25);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 1, D(4), V(1, 1.25, 1.5, 1.75));
    op_free(o);
    o = range(IL_I32, 10, 4, -3);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I32, 1, D(2), V(10, 7));
    op_free(o);
    o = range(IL_I64, 10, 4, 3); /* empty */
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 1, D(0), NULL);
    op_free(o);
    o = range(IL_F64, 0, 1, 0);
    expect_err(o, IL_ERR_INVALID, "delta is 0");
    op_free(o);
    o = range(IL_F32, 0, 1e30, 1e-30);
    expect_err(o, IL_ERR_INVALID, "too large");
    op_free(o);
    o = op_new("Range", 13, 3, 1);
    o->in[0] = mk(IL_F32, 0, NULL, V(0));
    o->in[1] = mk(IL_I32, 0, NULL, V(3));
    o->in[2] = mk(IL_F32, 0, NULL, V(1));
    expect_err(o, IL_ERR_TYPE, "differ in dtype");
    op_free(o);
}

static op_case *onehot(il_tensor *ind, double depth, il_tensor *vals) {
    op_case *o = op_new("OneHot", 13, 3, 1);
    o->in[0] = ind;
    o->in[1] = mk(IL_F32, 0, NULL, V(depth));
    o->in[2] = vals;
    return o;
}

static void test_onehot(void) {
    /* negative indices count from the end; out of range gives all "off" */
    op_case *o = onehot(mk64(1, D(4), D(0, -1, 3, 2)), 3, mk(IL_F16, 1, D(2), V(-1, 5)));
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F16, 2, D(4, 3), V(5, -1, -1, -1, -1, 5, -1, -1, -1, -1, -1, 5));
    op_free(o);
    o = onehot(mk(IL_F32, 1, D(2), V(1, 0)), 2, mk64(1, D(2), D(0, 1)));
    il_node_set_int(o->g, o->k, "axis", 0);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_I64, 2, D(2, 2), V(0, 1, 1, 0));
    op_free(o);
    o = onehot(mk64(2, D(1, 2), D(1, 0)), 2, mk(IL_F32, 1, D(2), V(0, 1)));
    il_node_set_int(o->g, o->k, "axis", -2);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F32, 3, D(1, 2, 2), V(0, 1, 1, 0));
    op_free(o);
    o = onehot(mk64(1, D(1), D(0)), 2, mk(IL_F32, 1, D(3), V(0, 1, 2)));
    expect_err(o, IL_ERR_INVALID, "values");
    op_free(o);
    o = onehot(mk64(1, D(1), D(0)), -2, mk(IL_F32, 1, D(2), V(0, 1)));
    expect_err(o, IL_ERR_INVALID, "depth");
    op_free(o);
    o = onehot(mk64(1, D(1), D(0)), NAN, mk(IL_F32, 1, D(2), V(0, 1)));
    expect_err(o, IL_ERR_INVALID, "depth");
    op_free(o);
    o = onehot(mk64(1, D(4096), NULL), 1e12, mk(IL_F32, 1, D(2), V(0, 1)));
    expect_err(o, IL_ERR_INVALID, "too large");
    op_free(o);
    o = onehot(mk64(1, D(1), D(0)), 2, mk(IL_F32, 1, D(2), V(0, 1)));
    il_node_set_int(o->g, o->k, "axis", 2);
    expect_err(o, IL_ERR_INVALID, "axis 2");
    op_free(o);
}

static void test_eyelike(void) {
    op_case *o = op1("EyeLike", 13, iota(IL_I32, 2, D(2, 3)), 1);
    il_node_set_int(o->g, o->k, "k", 1);
    il_node_set_int(o->g, o->k, "dtype", IL_F16);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_F16, 2, D(2, 3), V(0, 1, 0, 0, 0, 1));
    op_free(o);
    o = op1("EyeLike", 13, iota(IL_BF16, 2, D(2, 2)), 1);
    IL_ASSERT_OK(run_op(o));
    expect(o, 0, IL_BF16, 2, D(2, 2), V(1, 0, 0, 1));
    op_free(o);
    o = op1("EyeLike", 13, iota(IL_F32, 1, D(2)), 1);
    expect_err(o, IL_ERR_INVALID, "2-D");
    op_free(o);
}

/* Ops that move bytes must carry float16/bfloat16 bit patterns through unchanged (NaN
 * payloads, -0, subnormals), since the engine does not convert them for IL_OPF_ANY_DTYPE. */
static void test_half_bits_pass_through(void) {
    static const uint16_t bits[6] = {0x7e01, 0x8000, 0x0001, 0xfc00, 0x3c00, 0x7bff};
    const char *ops[] = {"Reshape", "Transpose", "Gather", "Slice", "Concat", "Identity"};
    for (int k = 0; k < 6; k++) {
        il_tensor *x = il_tensor_new(IL_F16, 2, D(2, 3));
        memcpy(x->data, bits, sizeof bits);
        op_case *o;
        if (k == 0) o = op2("Reshape", 13, x, vec64(1, D(6)));
        else if (k == 1) o = op1("Transpose", 13, x, 1);
        else if (k == 2) o = op2("Gather", 13, x, vec64(2, D(0, 1)));
        else if (k == 3) o = slice10(x, 1, D(0), D(2), NULL, NULL);
        else if (k == 4) { o = op_new("Concat", 13, 1, 1); o->in[0] = x; il_node_set_int(o->g, o->k, "axis", 0); }
        else o = op1("Identity", 13, x, 1);
        IL_ASSERT_OK(run_op(o));
        CU_ASSERT_EQUAL(o->out[0].dtype, IL_F16);
        const uint16_t *y = o->out[0].data;
        for (int i = 0; i < 6; i++) {
            int src = k == 1 ? (i % 2) * 3 + i / 2 : i; /* the transpose reads column-wise */
            if (y[i] != bits[src]) fprintf(stderr, "\n  %s element %d: %04x, want %04x\n", ops[k], i, y[i], bits[src]);
            CU_ASSERT_EQUAL(y[i], bits[src]);
        }
        op_free(o);
    }
}

static void test_registry_flags(void) {
    static const char *moving[] = {
        "Reshape", "Flatten",        "Transpose",       "Squeeze",   "Unsqueeze",       "Concat", "Split",
        "Expand",  "Tile",           "Identity",        "Dropout",   "Shape",           "Size",   "Slice",
        "Gather",  "GatherElements", "GatherND",        "ScatterND", "ScatterElements", "Trilu",  "NonZero",
        "Cast",    "CastLike",       "ConstantOfShape", "OneHot"};
    for (size_t i = 0; i < sizeof moving / sizeof *moving; i++) {
        const il_op *op = il_op_find("ai.onnx", moving[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(op);
        CU_ASSERT_TRUE(op->flags & IL_OPF_ANY_DTYPE);
    }
    CU_ASSERT_TRUE(il_op_find("", "NonZero")->flags & IL_OPF_DYNAMIC_OUT);
    CU_ASSERT_PTR_NOT_NULL(il_op_find("", "Range"));
}

IL_SUITE("shape_ops", {"reshape", test_reshape}, {"reshape_plan_time", test_reshape_plan_time},
         {"reshape_errors", test_reshape_errors}, {"flatten", test_flatten}, {"transpose", test_transpose},
         {"transpose_fast_vs_ref", test_transpose_fast_vs_ref}, {"squeeze_unsqueeze", test_squeeze_unsqueeze},
         {"concat", test_concat}, {"split", test_split}, {"expand_tile", test_expand_tile},
         {"identity_dropout", test_identity_dropout}, {"shape_size", test_shape_size}, {"slice", test_slice},
         {"slice_fast_vs_ref", test_slice_fast_vs_ref}, {"gather", test_gather},
         {"gather_elements_nd", test_gather_elements_nd}, {"scatter_nd", test_scatter_nd},
         {"scatter_elements", test_scatter_elements}, {"trilu", test_trilu},
         {"nonzero_compress", test_nonzero_compress}, {"cast_values", test_cast_values},
         {"cast_opsets_and_errors", test_cast_opsets_and_errors}, {"cast_all_pairs", test_cast_all_pairs},
         {"constant", test_constant}, {"constant_of_shape", test_constant_of_shape}, {"range", test_range},
         {"onehot", test_onehot}, {"eyelike", test_eyelike}, {"half_bits_pass_through", test_half_bits_pass_through},
         {"registry_flags", test_registry_flags})
