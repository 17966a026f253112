/*
 * op_harness.h - the one-node harness every op test uses (test_elementwise.c, test_compute.c,
 * test_compute_fast.c, test_shape_ops.c, test_index_ops.c, test_misc_ops.c, test_reduce.c,
 * test_resize.c): build a graph with one node, give it inputs, and run it the way the executor
 * would, checking the kernel contract of engine/ops/README.md on the way.
 *
 * op_run(o) does, in order:
 *  1. infer as at run time (every input's data and dims known);
 *  2. infer as at plan time, four ways: the inputs as given, then with their data hidden, then
 *     with every dim unknown (-1) too, then with the rank unknown too. None of these may fail
 *     where the run-time infer passed, and whatever they do tell (dtype, rank, dims that are not
 *     -1) must agree with the run-time shape;
 *  3. allocate the outputs with the inferred shapes (ops flagged IL_OPF_DYNAMIC_OUT allocate
 *     their own), pre-filled so that an element a kernel forgets to write shows: NaN in float
 *     outputs and 0xA5 bytes in the others for the reference run, 0x7F bytes for the second run;
 *  4. run the reference kernel on one thread into o->out, then every other cpu kernel the
 *     registry has for the op that takes the node (supports, prepare, run, release; o->threads)
 *     into o->fast (when there is none, the reference again), and compare each: bit for
 *     bit when o->rtol and o->atol are 0, otherwise within |fast - ref| <= atol + rtol * |ref|
 *     (integer and bool outputs always exactly, but for oneDNN's INT8 products -- kernel "dnnl"
 *     of QConv, QLinearConv, QMatMul, QLinearMatMul -- whose 8-bit outputs are held to 1 LSB:
 *     they requantize in float32; NaN matches NaN).
 * op_expect then checks both runs' outputs against hand-computed values with the same
 * tolerance, and op_fails checks an error: its status, that the message names the node, and
 * that it says what was wrong.
 *
 * Random inputs come from one generator seeded from the clock (printed once per run); set
 * IL_TEST_SEED to repeat a run. A failure prints the seed.
 *
 * Ownership: op_new returns a case that op_free frees together with its graph, its inputs
 * (o->in[i]: set them directly or with op_in, which frees what was there) and its outputs. The
 * tensor helpers below return new tensors the caller owns (or hands to a case).
 */
#ifndef IL_OP_HARNESS_H
#define IL_OP_HARNESS_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/ops/kernel.h"
#include "test.h"

#define OP_MAX_IN 10
#define OP_MAX_OUT 8

typedef struct op_case {
    il_graph *g;
    int k;                        /* the node, named "node_<Op>" */
    int64_t opset;                /* handed to the kernels; set freely between runs */
    int n_in, n_out;
    int threads;                  /* for the fast kernel (3: an odd count splits work unevenly) */
    double rtol, atol;            /* 0, 0: exact (the default); see op_run */
    const il_op *op;
    il_tensor *in[OP_MAX_IN];     /* owned; NULL for an omitted input */
    il_tensor *out[OP_MAX_OUT];   /* the reference kernel's outputs from the last op_run */
    il_tensor *fast[OP_MAX_OUT];  /* the fast kernel's (or the second reference run's) */
    char label[128];              /* printed with a failure: what the case is */
} op_case;

/* How op_infer shows the inputs to infer. */
typedef enum {
    OP_RUN,     /* as at run time: infer_only 0 */
    OP_PLAN,    /* plan time, inputs as they are (shape_only tensors have no data) */
    OP_NO_DATA, /* plan time, no input data */
    OP_NO_DIMS, /* ... and every dim -1 */
    OP_NO_RANK  /* ... and rank -1 */
} op_mode;

/* A case for op `op` with n_in inputs (all omitted until set) and n_out outputs; "DOMAIN:Op"
 * for an op of another domain (imported at version 1). */
op_case *op_new(const char *op, int64_t opset, int n_in, int n_out);
void op_free(op_case *o);
/* Input i is t (owned by the case from now on); what was there is freed. */
void op_in(op_case *o, int i, il_tensor *t);

/* Infer with the inputs shown as mode says; outs (n_out of them) get dtype/rank/dims. */
il_status op_infer(op_case *o, op_mode mode, il_tensor *outs);
/* Steps 1-4 above. IL_OK, or the status of the infer or kernel that failed (the message is in
 * il_errmsg()); contract violations are CUnit failures. */
il_status op_run(op_case *o);

/* The registry walk: op_run marks each non-reference kernel it compared with the reference; the
 * suite "zz-registry" (run last) fails for a registered kernel that no case covered. */
void op_covered(const il_kernel *k);
int op_is_covered(const il_kernel *k);

/* Output i of both runs has dtype dt, this shape and (unless want is NULL) these values. */
void op_expect_(op_case *o, int i, il_dtype dt, int rank, const int64_t *dims, const double *want, int line);
/* The same with the wanted values in a tensor, which is freed. */
void op_expect_tensor_(op_case *o, int i, il_tensor *want, int line);
/* op_run fails with status st, a message naming the node and containing text (when not NULL). */
void op_fails_(op_case *o, il_status st, const char *text, int line);
/* Input 0 becomes fresh random float32 in [-3, 3) of the given shape; the fast kernel (which
 * the op must have) on 4 threads matches the reference within rtol 1e-5 and atol. */
void op_fast_vs_ref_(op_case *o, int rank, const int64_t *dims, double atol, const char *what, int line);

/* Output 0 of graph g run on inputs in (a copy the caller frees; NULL, the message printed, on
 * failure). The kernels a non-reference run chose count as compared with the reference
 * (op_covered): every caller checks such a run's outputs against a reference run's. */
il_tensor *op_run_graph(const il_graph *g, il_tensor *const *in, const il_plan_opts *opts);

/* The generator random inputs and random test configurations draw from, and its seed. */
uint64_t *op_rng(void);
uint64_t op_seed(void);

/* Uniform in [0, n) from op_rng(), for random test configurations. */
static inline int64_t op_randint(int64_t n) { return (int64_t)(il_rand_u64(op_rng()) % (uint64_t)n); }

/* A tensor of dtype dt from values (NULL: zeros). */
il_tensor *op_tensor(il_dtype dt, int rank, const int64_t *dims, const double *v);

/* ---------------------------------------------------------------- shorthands for tests */

#define D(...) ((int64_t[]){__VA_ARGS__})
#define V(...) ((double[]){__VA_ARGS__})
/* rank, dims of a shape written out: SHAPE(2, 3) is 2, D(2, 3). Scalars: 0, NULL. */
#define SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), D(__VA_ARGS__)

#define SETI(o, name, v) il_node_set_int((o)->g, (o)->k, name, v)
#define SETF(o, name, v) il_node_set_float((o)->g, (o)->k, name, v)
#define SETS(o, name, v) il_node_set_string((o)->g, (o)->k, name, v)
#define SETIS(o, name, ...) \
    il_node_set_ints((o)->g, (o)->k, name, (int)(sizeof(D(__VA_ARGS__)) / sizeof(int64_t)), D(__VA_ARGS__))

#define RUN_OK(o) IL_ASSERT_OK(op_run(o))
#define EXPECT(o, i, dt, rank, dims, want) op_expect_(o, i, dt, rank, dims, want, __LINE__)
#define FAILS(o, st, text) op_fails_(o, st, text, __LINE__)
/* Run, then output 0 (and 1) equal the wanted tensors (freed). */
#define CHECK(o, want)                          \
    do {                                        \
        RUN_OK(o);                              \
        op_expect_tensor_(o, 0, want, __LINE__); \
    } while (0)
#define CHECK2(o, want0, want1)                  \
    do {                                         \
        RUN_OK(o);                               \
        op_expect_tensor_(o, 0, want0, __LINE__); \
        op_expect_tensor_(o, 1, want1, __LINE__); \
    } while (0)
#define FAST_VS_REF(o, shape, atol, what) op_fast_vs_ref_(o, shape, atol, what, __LINE__)

/* o with float outputs compared within rtol and atol; returns o. */
static inline op_case *op_tol(op_case *o, double rtol, double atol) {
    o->rtol = rtol;
    o->atol = atol;
    return o;
}

/* A case whose inputs are given: op1 takes x as its one input, op2 x and y. */
static inline op_case *op1(const char *op, int64_t opset, il_tensor *x, int n_out) {
    op_case *o = op_new(op, opset, 1, n_out);
    o->in[0] = x;
    return o;
}
static inline op_case *op2(const char *op, int64_t opset, il_tensor *x, il_tensor *y) {
    op_case *o = op_new(op, opset, 2, 1);
    o->in[0] = x;
    o->in[1] = y;
    return o;
}

static inline il_tensor *tens(il_dtype dt, int rank, const int64_t *dims, const double *v) {
    return op_tensor(dt, rank, dims, v);
}
static inline il_tensor *f32(int rank, const int64_t *dims, const double *v) {
    return op_tensor(IL_F32, rank, dims, v);
}
static inline il_tensor *i64(int rank, const int64_t *dims, const double *v) {
    return op_tensor(IL_I64, rank, dims, v);
}

/* int64 straight from int64 values (values past 2^53 survive). */
static inline il_tensor *i64s(int rank, const int64_t *dims, const int64_t *v) {
    il_tensor *t = il_tensor_new(IL_I64, rank, dims);
    if (v) memcpy(t->data, v, il_tensor_bytes(t));
    return t;
}
static inline il_tensor *vec64(int n, const int64_t *v) { return i64s(1, D(n), v); }

/* start, start + 1, ... */
static inline il_tensor *iota(il_dtype dt, int rank, const int64_t *dims, double start) {
    il_tensor *t = il_tensor_new(dt, rank, dims);
    for (int64_t i = 0, n = il_tensor_numel(t); i < n; i++) il_tensor_set(t, i, start + (double)i);
    return t;
}

/* Uniform random in [lo, hi) (integers rounded) from op_rng(). */
static inline il_tensor *rnd(il_dtype dt, int rank, const int64_t *dims, double lo, double hi) {
    il_tensor *t = il_tensor_new(dt, rank, dims);
    il_tensor_fill_random(t, op_rng(), lo, hi);
    return t;
}

/* A tensor as plan-time inference sees it: no data; dims may be -1, rank may be -1. */
static inline il_tensor *shape_only(il_dtype dt, int rank, const int64_t *dims) {
    il_tensor *t = calloc(1, sizeof *t);
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    return t;
}

#endif
