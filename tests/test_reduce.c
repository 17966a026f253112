/*
 * test_reduce.c - the reduction and selection ops: Reduce*, ArgMax/ArgMin, TopK, CumSum, Softmax,
 * LogSoftmax and Hardmax. Hand-checked tiny cases per opset, fast kernels against the
 * reference on fresh random inputs, plan-time shape inference with unknown data, and the error
 * paths. The harness (one-node graphs, run, compare) is in tests/op_harness.h.
 */
#include "op_harness.h"

/* A case whose float outputs must be within 1e-6 (absolute and relative) of the hand-computed
 * values, and the fast kernel's within as much of the reference's. */
static op_case *mk(const char *op, int64_t opset, int n_in, int n_out) {
    return op_tol(op_new(op, opset, n_in, n_out), 1e-6, 1e-6);
}

/* ---------------------------------------------------------------- Reduce* */

static const double X23[] = {1, -2, 3, -4, 5, -6};

static void test_reduce_kinds(void) {
    /* each op over axis 1 of [[1,-2,3],[-4,5,-6]] (LogSum on |x|) */
    struct { const char *op; double r0, r1; } cases[] = {
        {"ReduceSum", 2, -5}, {"ReduceMean", 2.0 / 3, -5.0 / 3}, {"ReduceMax", 3, 5}, {"ReduceMin", -2, -6},
        {"ReduceProd", -6, 120}, {"ReduceL1", 6, 15}, {"ReduceL2", sqrt(14), sqrt(77)}, {"ReduceSumSquare", 14, 77},
        {"ReduceLogSum", log(6), log(15)}, {"ReduceLogSumExp", log(exp(1) + exp(-2) + exp(3)), log(exp(-4) + exp(5) + exp(-6))},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int keep = 0; keep < 2; keep++) {
            op_case *t = mk(cases[i].op, 11, 1, 1);
            int islog = !strcmp(cases[i].op, "ReduceLogSum");
            t->in[0] = f32(SHAPE(2, 3), islog ? V(1, 2, 3, 4, 5, 6) : X23);
            SETIS(t, "axes", 1);
            SETI(t, "keepdims", keep);
            if (keep) CHECK(t, f32(SHAPE(2, 1), V(cases[i].r0, cases[i].r1)));
            else CHECK(t, f32(SHAPE(2), V(cases[i].r0, cases[i].r1)));
            op_free(t);
        }
}

static void test_reduce_axes_by_opset(void) {
    /* ReduceSum takes axes as an input from 13, the others from 18 */
    op_case *t = mk("ReduceSum", 13, 2, 1);
    t->in[0] = f32(SHAPE(2, 3), X23);
    t->in[1] = i64(SHAPE(1), V(-1));
    SETI(t, "keepdims", 0);
    CHECK(t, f32(SHAPE(2), V(2, -5)));
    op_free(t);

    t = mk("ReduceMean", 13, 1, 1); /* attribute in 13 */
    t->in[0] = f32(SHAPE(2, 3), X23);
    SETIS(t, "axes", 0);
    CHECK(t, f32(SHAPE(1, 3), V(-1.5, 1.5, -1.5)));
    op_free(t);

    t = mk("ReduceMax", 18, 2, 1); /* input in 18 */
    t->in[0] = f32(SHAPE(2, 3), X23);
    t->in[1] = i64(SHAPE(2), V(1, 0));
    SETI(t, "keepdims", 0);
    CHECK(t, f32(0, NULL, V(5)));
    op_free(t);

    /* opset 11 ReduceSum ignores a second input and reads the attribute */
    t = mk("ReduceSum", 11, 1, 1);
    t->in[0] = f32(SHAPE(2, 1, 3), X23);
    SETIS(t, "axes", 0, 2);
    CHECK(t, f32(SHAPE(1, 1, 1), V(-3)));
    op_free(t);
}

static void test_reduce_empty_axes(void) {
    /* no axes: everything, keepdims keeps rank */
    op_case *t = mk("ReduceSum", 13, 1, 1);
    t->in[0] = f32(SHAPE(2, 3), X23);
    CHECK(t, f32(SHAPE(1, 1), V(-3)));
    op_free(t);

    /* an empty axes input reduces everything too... */
    t = mk("ReduceSum", 13, 2, 1);
    t->in[0] = f32(SHAPE(2, 3), X23);
    t->in[1] = i64(SHAPE(0), NULL);
    SETI(t, "keepdims", 0);
    CHECK(t, f32(0, NULL, V(-3)));
    op_free(t);

    /* ...unless noop_with_empty_axes: then nothing is reduced */
    t = mk("ReduceSum", 13, 2, 1);
    t->in[0] = f32(SHAPE(2, 3), X23);
    t->in[1] = i64(SHAPE(0), NULL);
    SETI(t, "noop_with_empty_axes", 1);
    CHECK(t, f32(SHAPE(2, 3), X23));
    op_free(t);

    /* each element reduced alone: ReduceSumSquare squares, ReduceL1 takes |x| */
    t = mk("ReduceSumSquare", 18, 1, 1);
    t->in[0] = f32(SHAPE(2, 3), X23);
    SETI(t, "noop_with_empty_axes", 1);
    CHECK(t, f32(SHAPE(2, 3), V(1, 4, 9, 16, 25, 36)));
    op_free(t);

    /* before 18, noop_with_empty_axes did not exist for ReduceL1: reduce all */
    t = mk("ReduceL1", 13, 1, 1);
    t->in[0] = f32(SHAPE(2, 3), X23);
    SETI(t, "noop_with_empty_axes", 1);
    SETI(t, "keepdims", 0);
    CHECK(t, f32(0, NULL, V(21)));
    op_free(t);
}

static void test_reduce_empty_set(void) {
    /* reducing a zero-length axis gives each kind's identity */
    struct { const char *op; double v; } cases[] = {
        {"ReduceSum", 0}, {"ReduceProd", 1}, {"ReduceMax", -INFINITY}, {"ReduceMin", INFINITY}, {"ReduceMean", NAN},
        {"ReduceL1", 0}, {"ReduceL2", 0}, {"ReduceSumSquare", 0}, {"ReduceLogSum", -INFINITY}, {"ReduceLogSumExp", -INFINITY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        op_case *t = mk(cases[i].op, 11, 1, 1);
        t->in[0] = f32(SHAPE(2, 0), NULL);
        SETIS(t, "axes", 1);
        SETI(t, "keepdims", 0);
        CHECK(t, f32(SHAPE(2), V(cases[i].v, cases[i].v)));
        op_free(t);
    }
}

static void test_reduce_ints(void) {
    /* int64 stays exact past 2^53 */
    op_case *t = mk("ReduceSum", 13, 1, 1);
    t->in[0] = il_tensor_new(IL_I64, SHAPE(2));
    ((int64_t *)t->in[0]->data)[0] = (INT64_C(1) << 53) + 1;
    ((int64_t *)t->in[0]->data)[1] = 2;
    RUN_OK(t);
    CU_ASSERT_EQUAL(((int64_t *)t->out[0]->data)[0], (INT64_C(1) << 53) + 3);
    op_free(t);

    t = mk("ReduceMean", 13, 1, 1); /* integer mean truncates */
    t->in[0] = tens(IL_I32, SHAPE(2, 2), V(1, 2, -7, 2));
    SETIS(t, "axes", 1);
    CHECK(t, tens(IL_I32, SHAPE(2, 1), V(1, -2)));
    op_free(t);

    t = mk("ReduceMax", 13, 1, 1); /* empty set: the type's lowest value */
    t->in[0] = tens(IL_I32, SHAPE(0, 2), NULL);
    SETIS(t, "axes", 0);
    CHECK(t, tens(IL_I32, SHAPE(1, 2), V(INT32_MIN, INT32_MIN)));
    op_free(t);
}

static void test_reduce_fast_vs_ref(void) {
    static const char *ops[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare"};
    /* last axis, spatial axes, channel axis, leading axis, all, non-contiguous (falls back) */
    const int64_t axes[][3] = {{1, 3}, {2, 2, 3}, {1, 1}, {1, 0}, {0}, {2, 0, 2}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        for (size_t a = 0; a < sizeof axes / sizeof *axes; a++) {
            op_case *t = mk(ops[i], 13, 1, 1);
            if (axes[a][0]) il_node_set_ints(t->g, t->k, "axes", (int)axes[a][0], &axes[a][1]);
            SETI(t, "keepdims", (int64_t)(a & 1));
            /* ReduceProd over many elements under/overflows: keep its blocks short */
            if (!strcmp(ops[i], "ReduceProd")) FAST_VS_REF(t, SHAPE(2, 3, 4, 5), 1e-6, ops[i]);
            else FAST_VS_REF(t, SHAPE(3, 37, 9, 300), 1e-6, ops[i]);
            op_free(t);
        }
}

/* ---------------------------------------------------------------- ArgMax, ArgMin, TopK, CumSum */

static void test_argmax(void) {
    static const double x[] = {2, 2, 1, 1, 3, 3};
    op_case *t = mk("ArgMax", 13, 1, 1);
    t->in[0] = f32(SHAPE(2, 3), x);
    SETI(t, "axis", 1);
    CHECK(t, i64(SHAPE(2, 1), V(0, 1)));
    SETI(t, "select_last_index", 1);
    SETI(t, "keepdims", 0);
    CHECK(t, i64(SHAPE(2), V(1, 2)));
    op_free(t);

    t = mk("ArgMin", 13, 1, 1);
    t->in[0] = tens(IL_I64, SHAPE(2, 3), x);
    CHECK(t, i64(SHAPE(1, 3), V(1, 0, 0))); /* axis 0 by default; ties take the first */
    SETI(t, "select_last_index", 1);
    CHECK(t, i64(SHAPE(1, 3), V(1, 0, 0)));
    SETI(t, "axis", -1);
    CHECK(t, i64(SHAPE(2, 1), V(2, 0)));
    op_free(t);
}

static void test_topk(void) {
    /* ties: the lower index first, for largest and smallest */
    op_case *t = mk("TopK", 11, 2, 2);
    t->in[0] = f32(SHAPE(5), V(3, 1, 3, 2, 1));
    t->in[1] = i64(SHAPE(1), V(3));
    CHECK2(t, f32(SHAPE(3), V(3, 3, 2)), i64(SHAPE(3), V(0, 2, 3)));
    SETI(t, "largest", 0);
    CHECK2(t, f32(SHAPE(3), V(1, 1, 2)), i64(SHAPE(3), V(1, 4, 3)));
    op_free(t);

    /* along axis 0 of a matrix, int32 values; opset 1 takes k as an attribute */
    t = mk("TopK", 1, 1, 2);
    t->in[0] = tens(IL_I32, SHAPE(3, 2), V(5, 0, 7, 9, 6, -1));
    SETI(t, "k", 2);
    SETI(t, "axis", 0);
    CHECK2(t, tens(IL_I32, SHAPE(2, 2), V(7, 9, 6, 0)), i64(SHAPE(2, 2), V(1, 1, 2, 0)));
    op_free(t);

    /* k = 0 and k = dim are legal; k > dim is not */
    t = mk("TopK", 11, 2, 2);
    t->in[0] = f32(SHAPE(2, 2), V(1, 2, 3, 4));
    t->in[1] = i64(SHAPE(1), V(0));
    CHECK2(t, f32(SHAPE(2, 0), NULL), i64(SHAPE(2, 0), NULL));
    ((int64_t *)t->in[1]->data)[0] = 3;
    FAILS(t, IL_ERR_INVALID, "k = 3");
    ((int64_t *)t->in[1]->data)[0] = -1;
    FAILS(t, IL_ERR_INVALID, "negative");
    op_free(t);
}

static void test_cumsum(void) {
    const double want[4][4] = {{1, 3, 6, 10}, {0, 1, 3, 6}, {10, 9, 7, 4}, {9, 7, 4, 0}};
    for (int mode = 0; mode < 4; mode++) {
        op_case *t = mk("CumSum", 14, 2, 1);
        t->in[0] = f32(SHAPE(4), V(1, 2, 3, 4));
        t->in[1] = tens(IL_I32, 0, NULL, V(0));
        SETI(t, "exclusive", mode & 1);
        SETI(t, "reverse", mode >> 1);
        CHECK(t, f32(SHAPE(4), want[mode]));
        op_free(t);
    }
    op_case *t = mk("CumSum", 14, 2, 1);
    t->in[0] = tens(IL_I64, SHAPE(2, 3), V(1, 2, 3, 4, 5, 6));
    t->in[1] = i64(SHAPE(1), V(-2));
    CHECK(t, tens(IL_I64, SHAPE(2, 3), V(1, 2, 3, 5, 7, 9)));
    ((int64_t *)t->in[1]->data)[0] = 2;
    FAILS(t, IL_ERR_INVALID, "axis 2 is out of range for rank 2");
    op_free(t);
}

/* ---------------------------------------------------------------- Softmax family */

static void test_softmax_opsets(void) {
    static const double x[] = {0, 1, 2, 3, 5, 5, 5, 5};
    double e = exp(1), s4 = 1 + e + e * e + e * e * e, s2 = 1 + e;
    /* opset 11: default axis 1 coerces [2,2,2] to [2,4]: softmax over 4 elements */
    op_case *t = mk("Softmax", 11, 1, 1);
    t->in[0] = f32(SHAPE(2, 2, 2), x);
    CHECK(t, f32(SHAPE(2, 2, 2), V(1 / s4, e / s4, e * e / s4, e * e * e / s4, .25, .25, .25, .25)));
    op_free(t);
    /* opset 13: default axis -1: pairs */
    t = mk("Softmax", 13, 1, 1);
    t->in[0] = f32(SHAPE(2, 2, 2), x);
    CHECK(t, f32(SHAPE(2, 2, 2), V(1 / s2, e / s2, 1 / s2, e / s2, .5, .5, .5, .5)));
    /* opset 13 axis 1 is one axis, not the coerced rest */
    SETI(t, "axis", 1);
    double a = 1 / (1 + e * e);
    CHECK(t, f32(SHAPE(2, 2, 2), V(a, a, 1 - a, 1 - a, .5, .5, .5, .5)));
    op_free(t);

    t = mk("LogSoftmax", 11, 1, 1);
    t->in[0] = f32(SHAPE(2, 2, 2), x);
    SETI(t, "axis", 2);
    CHECK(t, f32(SHAPE(2, 2, 2), V(-log(s2), 1 - log(s2), -log(s2), 1 - log(s2), -log(2), -log(2), -log(2), -log(2))));
    op_free(t);

    t = mk("Hardmax", 11, 1, 1);
    t->in[0] = f32(SHAPE(2, 2, 2), x);
    CHECK(t, f32(SHAPE(2, 2, 2), V(0, 0, 0, 1, 1, 0, 0, 0))); /* ties: the first */
    t->opset = 13;
    CHECK(t, f32(SHAPE(2, 2, 2), V(0, 1, 0, 1, 1, 0, 1, 0)));
    op_free(t);

    /* masked (-inf) entries give 0, an all -inf row NaN, as the reference; 9 wide so the fast
     * kernel's vector loop sees them */
    t = mk("Softmax", 13, 1, 1);
    t->in[0] = f32(SHAPE(2, 9), V(0, -INFINITY, 0, -INFINITY, 0, -INFINITY, 0, -INFINITY, 0, -INFINITY, -INFINITY,
                                    -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY));
    CHECK(t, f32(SHAPE(2, 9), V(.2, 0, .2, 0, .2, 0, .2, 0, .2, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN)));
    op_free(t);

    /* large inputs must not overflow */
    t = mk("Softmax", 13, 1, 1);
    t->in[0] = f32(SHAPE(3), V(1000, 1000, -1000));
    CHECK(t, f32(SHAPE(3), V(.5, .5, 0)));
    op_free(t);
}

static void test_softmax_fast_vs_ref(void) {
    for (int op = 0; op < 2; op++) {
        const char *name = op ? "LogSoftmax" : "Softmax";
        op_case *t = mk(name, 13, 1, 1);
        FAST_VS_REF(t, SHAPE(64, 1000), 1e-6, "last axis");
        SETI(t, "axis", 1);
        FAST_VS_REF(t, SHAPE(2, 21, 17, 33), 1e-6, "channel axis");
        SETI(t, "axis", 0);
        FAST_VS_REF(t, SHAPE(5, 700), 1e-6, "first axis");
        t->opset = 11;
        SETI(t, "axis", 1);
        FAST_VS_REF(t, SHAPE(4, 3, 5, 7), 1e-6, "coerced");
        op_free(t);
    }
}

static void test_errors(void) {
    op_case *t = mk("ReduceSum", 11, 1, 1);
    t->in[0] = f32(SHAPE(2, 3), X23);
    SETIS(t, "axes", 3);
    FAILS(t, IL_ERR_INVALID, "axis 3 is out of range for rank 2");
    SETIS(t, "axes", 1, -1);
    FAILS(t, IL_ERR_INVALID, "twice");
    op_free(t);

    t = mk("ReduceMean", 18, 2, 1);
    t->in[0] = f32(SHAPE(2, 3), X23);
    t->in[1] = i64(SHAPE(1), V(-3));
    FAILS(t, IL_ERR_INVALID, "axis -3 is out of range for rank 2");
    op_free(t);

    t = mk("ArgMax", 13, 1, 1);
    t->in[0] = f32(SHAPE(2, 3), X23);
    SETI(t, "axis", 2);
    FAILS(t, IL_ERR_INVALID, "rank 2");
    op_free(t);

    t = mk("Softmax", 13, 1, 1);
    t->in[0] = tens(IL_I32, SHAPE(2), NULL);
    FAILS(t, IL_ERR_UNSUPPORTED, "int32");
    il_tensor_free(t->in[0]);
    t->in[0] = f32(SHAPE(2), NULL);
    SETI(t, "axis", -2);
    FAILS(t, IL_ERR_INVALID, "axis -2");
    op_free(t);
}

static void test_plan_time_infer(void) {
    il_tensor sh[3];
    /* TopK with K unknown: that dim is unknown */
    op_case *t = mk("TopK", 11, 2, 2);
    t->in[0] = shape_only(IL_F32, SHAPE(-1, 10));
    t->in[1] = shape_only(IL_I64, SHAPE(1));
    CU_ASSERT_EQUAL(op_infer(t, OP_PLAN, sh), IL_OK);
    CU_ASSERT(sh[0].rank == 2 && sh[0].dims[0] == -1 && sh[0].dims[1] == -1 && sh[1].dtype == IL_I64);
    op_free(t);

    /* axes input unknown: keepdims keeps the rank, otherwise its length tells the rank */
    t = mk("ReduceSum", 13, 2, 1);
    t->in[0] = shape_only(IL_F32, SHAPE(2, 3, 4));
    t->in[1] = shape_only(IL_I64, SHAPE(1));
    CU_ASSERT_EQUAL(op_infer(t, OP_PLAN, sh), IL_OK);
    CU_ASSERT(sh[0].rank == 3 && sh[0].dims[0] == -1);
    SETI(t, "keepdims", 0);
    CU_ASSERT_EQUAL(op_infer(t, OP_PLAN, sh), IL_OK);
    CU_ASSERT_EQUAL(sh[0].rank, 2);
    op_free(t);

    /* unknown dims pass through */
    t = mk("ReduceMean", 13, 1, 1);
    t->in[0] = shape_only(IL_F32, SHAPE(-1, 3, 4));
    SETIS(t, "axes", 2);
    CU_ASSERT_EQUAL(op_infer(t, OP_PLAN, sh), IL_OK);
    CU_ASSERT(sh[0].rank == 3 && sh[0].dims[0] == -1 && sh[0].dims[1] == 3 && sh[0].dims[2] == 1);
    op_free(t);

    /* Resize with sizes / scales unknown */
    t = mk("Resize", 13, 4, 1);
    t->in[0] = shape_only(IL_F32, SHAPE(1, 3, 8, 8));
    t->in[3] = shape_only(IL_I64, SHAPE(4));
    CU_ASSERT_EQUAL(op_infer(t, OP_PLAN, sh), IL_OK);
    CU_ASSERT(sh[0].rank == 4 && sh[0].dims[2] == -1 && sh[0].dims[3] == -1);
    il_tensor_free(t->in[3]);
    t->in[3] = NULL;
    t->in[2] = shape_only(IL_F32, SHAPE(4));
    CU_ASSERT_EQUAL(op_infer(t, OP_PLAN, sh), IL_OK);
    CU_ASSERT(sh[0].rank == 4 && sh[0].dims[3] == -1);
    op_free(t);

    /* Pad with pads unknown; an unknown-rank input gives an unknown rank */
    t = mk("Pad", 13, 2, 1);
    t->in[0] = shape_only(IL_F16, SHAPE(2, 2));
    t->in[1] = shape_only(IL_I64, SHAPE(4));
    CU_ASSERT_EQUAL(op_infer(t, OP_PLAN, sh), IL_OK);
    CU_ASSERT(sh[0].rank == 2 && sh[0].dims[0] == -1 && sh[0].dtype == IL_F16);
    t->in[0]->rank = -1;
    CU_ASSERT_EQUAL(op_infer(t, OP_PLAN, sh), IL_OK);
    CU_ASSERT_EQUAL(sh[0].rank, -1);
    op_free(t);
}

IL_SUITE("reduce", {"reduce kinds, keepdims both ways", test_reduce_kinds},
         {"reduce axes: attribute or input by opset", test_reduce_axes_by_opset},
         {"reduce empty axes and noop_with_empty_axes", test_reduce_empty_axes},
         {"reduce over an empty set", test_reduce_empty_set}, {"reduce integers", test_reduce_ints},
         {"reduce fast vs ref", test_reduce_fast_vs_ref}, {"ArgMax/ArgMin select_last_index", test_argmax},
         {"TopK ties and k", test_topk}, {"CumSum exclusive/reverse", test_cumsum},
         {"Softmax family opset 11 vs 13", test_softmax_opsets}, {"Softmax fast vs ref", test_softmax_fast_vs_ref},
         {"errors", test_errors}, {"plan-time inference", test_plan_time_infer})
