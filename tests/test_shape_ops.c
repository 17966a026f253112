/*
 * test_shape_ops.c - the ops of engine/ops/shape.c that reshape, join or cut a tensor without
 * computing values (Reshape, Flatten, Transpose, Squeeze/Unsqueeze, Concat, Split, Expand, Tile,
 * Identity, Dropout, Shape, Size), checked by hand on small cases; and the contract every
 * data-movement op shares: float16 bits pass through untouched, the registry flags them
 * IL_OPF_ANY_DTYPE. Index ops are in test_index_ops.c, Cast and the constants in
 * test_misc_ops.c.
 *
 * Every case goes through op_run (tests/op_harness.h), which also checks plan-time inference
 * with no data, unknown dims and unknown rank against the run, that the kernels write every
 * output element, and that the fast kernel gives the reference's bytes.
 */
#include "op_harness.h"

static void test_reshape(void) {
    op_case *o = op2("Reshape", 13, iota(IL_F32, 2, D(2, 3), 0), vec64(2, D(3, 2)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(3, 2), V(0, 1, 2, 3, 4, 5));
    op_free(o);
    /* 0 copies the input's dim, -1 takes the rest */
    o = op2("Reshape", 13, iota(IL_F32, 3, D(2, 3, 4), 0), vec64(3, D(0, -1, 2)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 3, D(2, 6, 2), NULL);
    op_free(o);
    /* allowzero: 0 is a real zero-size dim */
    o = op2("Reshape", 14, iota(IL_F32, 2, D(0, 3), 0), vec64(2, D(3, 0)));
    SETI(o, "allowzero", 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(3, 0), NULL);
    op_free(o);
    /* opset 1-4: shape is an attribute */
    o = op1("Reshape", 4, iota(IL_I32, 1, D(6), 0), 1);
    il_node_set_ints(o->g, o->k, "shape", 3, D(1, -1, 3));
    RUN_OK(o);
    EXPECT(o, 0, IL_I32, 3, D(1, 2, 3), V(0, 1, 2, 3, 4, 5));
    op_free(o);
}

static void test_reshape_plan_time(void) {
    /* the shape's data is not known before running: the rank is, the dims are not */
    op_case *o = op2("Reshape", 13, iota(IL_F32, 2, D(2, 3), 0), vec64(3, D(1, 2, 3)));
    il_tensor outs[1];
    IL_ASSERT_OK(op_infer(o, OP_NO_DATA, outs));
    CU_ASSERT_EQUAL(outs[0].rank, 3);
    CU_ASSERT_EQUAL(outs[0].dims[0], -1);
    op_free(o);
    /* an unknown batch copied by 0 still lets the -1 be inferred: [?,3,4] -> [0,-1] is [?,12] */
    o = op2("Reshape", 13, iota(IL_F32, 3, D(2, 3, 4), 0), vec64(2, D(0, -1)));
    o->in[0]->dims[0] = -1;
    IL_ASSERT_OK(op_infer(o, OP_PLAN, outs));
    CU_ASSERT_EQUAL(outs[0].rank, 2);
    CU_ASSERT_EQUAL(outs[0].dims[0], -1);
    CU_ASSERT_EQUAL(outs[0].dims[1], 12);
    o->in[0]->dims[0] = 2;
    op_free(o);
}

static void test_reshape_errors(void) {
    op_case *o = op2("Reshape", 13, iota(IL_F32, 2, D(2, 3), 0), vec64(2, D(4, 2)));
    FAILS(o, IL_ERR_SHAPE, "cannot reshape [2,3] (6 elements) to [4,2]");
    op_free(o);
    o = op2("Reshape", 13, iota(IL_F32, 2, D(2, 3), 0), vec64(2, D(-1, 4)));
    FAILS(o, IL_ERR_SHAPE, "cannot reshape");
    op_free(o);
    o = op2("Reshape", 13, iota(IL_F32, 2, D(2, 3), 0), vec64(2, D(-1, -1)));
    FAILS(o, IL_ERR_INVALID, "more than one -1");
    op_free(o);
    o = op2("Reshape", 13, iota(IL_F32, 1, D(6), 0), vec64(2, D(3, 0)));
    FAILS(o, IL_ERR_SHAPE, "copies dim 1");
    op_free(o);
    o = op2("Reshape", 13, iota(IL_F32, 1, D(6), 0), vec64(2, D(-3, -2)));
    FAILS(o, IL_ERR_INVALID, "negative");
    op_free(o);
}

static void test_flatten(void) {
    int64_t axes[] = {0, 1, 3, -1};
    int64_t want[][2] = {{1, 24}, {2, 12}, {24, 1}, {6, 4}};
    for (int i = 0; i < 4; i++) {
        op_case *o = op1("Flatten", 13, iota(IL_F16, 3, D(2, 3, 4), 0), 1);
        SETI(o, "axis", axes[i]);
        RUN_OK(o);
        EXPECT(o, 0, IL_F16, 2, want[i], NULL);
        CU_ASSERT_EQUAL(memcmp(o->out[0]->data, o->in[0]->data, 48), 0);
        op_free(o);
    }
    op_case *o = op1("Flatten", 13, iota(IL_F32, 2, D(2, 3), 0), 1);
    SETI(o, "axis", 3);
    FAILS(o, IL_ERR_INVALID, "axis 3");
    op_free(o);
}

static void test_transpose(void) {
    op_case *o = op1("Transpose", 13, iota(IL_F32, 2, D(2, 3), 0), 1);
    RUN_OK(o); /* default: reverse */
    EXPECT(o, 0, IL_F32, 2, D(3, 2), V(0, 3, 1, 4, 2, 5));
    op_free(o);
    o = op1("Transpose", 13, iota(IL_I64, 3, D(2, 3, 2), 0), 1);
    il_node_set_ints(o->g, o->k, "perm", 3, D(1, 0, 2));
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 3, D(3, 2, 2), V(0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11));
    op_free(o);
    o = op1("Transpose", 13, iota(IL_F32, 2, D(2, 3), 0), 1);
    il_node_set_ints(o->g, o->k, "perm", 2, D(0, 0));
    FAILS(o, IL_ERR_INVALID, "permutation");
    op_free(o);
    o = op1("Transpose", 13, iota(IL_F32, 2, D(2, 3), 0), 1);
    il_node_set_ints(o->g, o->k, "perm", 3, D(0, 1, 2));
    FAILS(o, IL_ERR_INVALID, "perm has 3 values");
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
    for (int s = 0; s < 5; s++)
        for (int t = 0; t < 4; t++)
            for (int p = 0; p < np; p++) {
                op_case *o = op1("Transpose", 13, rnd(dts[t], 4, shapes[s], 0, 100), 1);
                int64_t perm[4] = {perms[p][0], perms[p][1], perms[p][2], perms[p][3]};
                il_node_set_ints(o->g, o->k, "perm", 4, perm);
                RUN_OK(o);
                op_free(o);
            }
}

static void test_squeeze_unsqueeze(void) {
    op_case *o = op1("Squeeze", 11, iota(IL_F32, 4, D(1, 3, 1, 2), 0), 1); /* axes attribute */
    il_node_set_ints(o->g, o->k, "axes", 1, D(-2));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 3, D(1, 3, 2), V(0, 1, 2, 3, 4, 5));
    op_free(o);
    o = op2("Squeeze", 13, iota(IL_F32, 4, D(1, 3, 1, 2), 0), vec64(2, D(0, 2))); /* axes input */
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(3, 2), NULL);
    op_free(o);
    o = op1("Squeeze", 13, iota(IL_F32, 4, D(1, 3, 1, 2), 0), 1); /* no axes: every 1 */
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(3, 2), NULL);
    op_free(o);
    o = op2("Squeeze", 13, iota(IL_F32, 2, D(1, 3), 0), vec64(1, D(1)));
    FAILS(o, IL_ERR_SHAPE, "cannot squeeze axis 1 of size 3");
    op_free(o);
    o = op2("Squeeze", 13, iota(IL_F32, 2, D(1, 3), 0), vec64(1, D(2)));
    FAILS(o, IL_ERR_INVALID, "axis 2");
    op_free(o);

    o = op1("Unsqueeze", 11, iota(IL_F32, 2, D(3, 2), 0), 1);
    il_node_set_ints(o->g, o->k, "axes", 2, D(3, 0)); /* unsorted */
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 4, D(1, 3, 2, 1), V(0, 1, 2, 3, 4, 5));
    op_free(o);
    o = op2("Unsqueeze", 13, iota(IL_F32, 1, D(3), 0), vec64(2, D(-1, 1)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 3, D(3, 1, 1), NULL);
    op_free(o);
    o = op2("Unsqueeze", 13, iota(IL_F32, 0, NULL, 0), vec64(1, D(0)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 1, D(1), V(0));
    op_free(o);
    o = op2("Unsqueeze", 13, iota(IL_F32, 1, D(3), 0), vec64(2, D(0, -3)));
    FAILS(o, IL_ERR_INVALID, "twice");
    op_free(o);
    o = op2("Unsqueeze", 13, iota(IL_F32, 1, D(3), 0), vec64(1, D(5)));
    FAILS(o, IL_ERR_INVALID, "out of range");
    op_free(o);
}

static void test_concat(void) {
    op_case *o = op_new("Concat", 13, 3, 1);
    o->in[0] = iota(IL_F32, 2, D(2, 1), 0);
    o->in[1] = iota(IL_F32, 2, D(2, 0), 0); /* zero-size inputs are legal */
    o->in[2] = tens(IL_F32, 2, D(2, 2), V(10, 11, 12, 13));
    SETI(o, "axis", -1);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(2, 3), V(0, 10, 11, 1, 12, 13));
    op_free(o);
    o = op_new("Concat", 13, 2, 1);
    o->in[0] = tens(IL_BF16, 2, D(1, 2), V(1.5, -2));
    o->in[1] = tens(IL_BF16, 2, D(2, 2), V(3, 4, 5, 6));
    SETI(o, "axis", 0);
    RUN_OK(o);
    EXPECT(o, 0, IL_BF16, 2, D(3, 2), V(1.5, -2, 3, 4, 5, 6));
    op_free(o);
    o = op_new("Concat", 13, 2, 1);
    o->in[0] = iota(IL_F32, 2, D(2, 1), 0);
    o->in[1] = iota(IL_F32, 2, D(3, 1), 0);
    SETI(o, "axis", 1);
    FAILS(o, IL_ERR_SHAPE, "does not fit");
    op_free(o);
    o = op_new("Concat", 13, 2, 1);
    o->in[0] = iota(IL_F32, 2, D(2, 1), 0);
    o->in[1] = iota(IL_F32, 1, D(2), 0);
    SETI(o, "axis", 0);
    FAILS(o, IL_ERR_SHAPE, "rank");
    op_free(o);
    o = op_new("Concat", 13, 2, 1);
    o->in[0] = iota(IL_F32, 1, D(2), 0);
    o->in[1] = iota(IL_F32, 1, D(2), 0);
    FAILS(o, IL_ERR_INVALID, "axis");
    op_free(o);
}

static void test_split(void) {
    op_case *o = op1("Split", 11, iota(IL_F32, 2, D(2, 5), 0), 2); /* split attribute */
    SETI(o, "axis", 1);
    il_node_set_ints(o->g, o->k, "split", 2, D(2, 3));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(2, 2), V(0, 1, 5, 6));
    EXPECT(o, 1, IL_F32, 2, D(2, 3), V(2, 3, 4, 7, 8, 9));
    op_free(o);
    o = op_new("Split", 13, 2, 3); /* split input, a zero-size part */
    o->in[0] = iota(IL_I64, 1, D(4), 0);
    o->in[1] = vec64(3, D(1, 0, 3));
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 1, D(1), V(0));
    EXPECT(o, 1, IL_I64, 1, D(0), NULL);
    EXPECT(o, 2, IL_I64, 1, D(3), V(1, 2, 3));
    op_free(o);
    o = op1("Split", 13, iota(IL_F16, 1, D(6), 0), 3); /* equal parts */
    RUN_OK(o);
    EXPECT(o, 2, IL_F16, 1, D(2), V(4, 5));
    op_free(o);
    o = op1("Split", 18, iota(IL_F32, 1, D(7), 0), 3); /* num_outputs: the last part is smaller */
    SETI(o, "num_outputs", 3);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 1, D(3), V(0, 1, 2));
    EXPECT(o, 1, IL_F32, 1, D(3), V(3, 4, 5));
    EXPECT(o, 2, IL_F32, 1, D(1), V(6));
    op_free(o);
    o = op1("Split", 13, iota(IL_F32, 1, D(7), 0), 3);
    FAILS(o, IL_ERR_SHAPE, "equal parts");
    op_free(o);
    o = op_new("Split", 13, 2, 2);
    o->in[0] = iota(IL_F32, 1, D(4), 0);
    o->in[1] = vec64(2, D(1, 2));
    FAILS(o, IL_ERR_SHAPE, "add up to 3");
    op_free(o);
    o = op1("Split", 18, iota(IL_F32, 1, D(4), 0), 2);
    SETI(o, "num_outputs", 3);
    FAILS(o, IL_ERR_INVALID, "num_outputs");
    op_free(o);
    o = op1("Split", 13, iota(IL_F32, 1, D(4), 0), 0);
    FAILS(o, IL_ERR_UNSUPPORTED, "outputs");
    op_free(o);
}

static void test_expand_tile(void) {
    op_case *o = op2("Expand", 13, iota(IL_F32, 2, D(3, 1), 0), vec64(3, D(2, 1, 2)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 3, D(2, 3, 2), V(0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2));
    op_free(o);
    o = op2("Expand", 13, iota(IL_F32, 2, D(3, 2), 0), vec64(1, D(3)));
    FAILS(o, IL_ERR_SHAPE, "cannot be broadcast");
    op_free(o);
    o = op2("Expand", 13, iota(IL_F32, 1, D(3), 0), vec64(1, D(-2)));
    FAILS(o, IL_ERR_INVALID, "negative");
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 2, D(2, 2), 0), vec64(2, D(2, 3)));
    RUN_OK(o);
    EXPECT(o, 0, IL_U8, 2, D(4, 6), V(0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3));
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 2, D(2, 2), 0), vec64(2, D(0, 1)));
    RUN_OK(o);
    EXPECT(o, 0, IL_U8, 2, D(0, 2), NULL);
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 2, D(2, 2), 0), vec64(1, D(2)));
    FAILS(o, IL_ERR_INVALID, "repeats");
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 1, D(2), 0), vec64(1, D(-1)));
    FAILS(o, IL_ERR_INVALID, "negative");
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 2, D(2, 2), 0), vec64(2, D(INT64_MAX / 4, INT64_MAX / 4)));
    FAILS(o, IL_ERR_INVALID, "too large");
    op_free(o);
    o = op2("Tile", 13, iota(IL_U8, 2, D(1 << 20, 2), 0), vec64(2, D((int64_t)1 << 39, 1)));
    FAILS(o, IL_ERR_INVALID, "too large");
    op_free(o);
}

static void test_identity_dropout(void) {
    op_case *o = op1("Identity", 13, tens(IL_F16, 1, D(3), V(1, -2, 0.5)), 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_F16, 1, D(3), V(1, -2, 0.5));
    op_free(o);
    o = op1("Dropout", 13, iota(IL_F32, 2, D(2, 2), 0), 2);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(2, 2), V(0, 1, 2, 3));
    EXPECT(o, 1, IL_BOOL, 2, D(2, 2), V(1, 1, 1, 1));
    op_free(o);
    o = op1("Dropout", 7, iota(IL_F32, 1, D(2), 0), 2); /* before opset 10 the mask has the input's dtype */
    SETF(o, "ratio", 0.3f);
    RUN_OK(o);
    EXPECT(o, 1, IL_F32, 1, D(2), V(1, 1));
    op_free(o);
    o = op_new("Dropout", 13, 3, 1);
    o->in[0] = iota(IL_F32, 1, D(2), 0);
    o->in[1] = tens(IL_F32, 0, NULL, V(0.5));
    o->in[2] = tens(IL_BOOL, 0, NULL, V(1));
    FAILS(o, IL_ERR_UNSUPPORTED, "training_mode");
    op_free(o);
    o = op_new("Dropout", 13, 3, 1); /* training with ratio 0 drops nothing: fine */
    o->in[0] = iota(IL_F32, 1, D(2), 0);
    o->in[1] = tens(IL_F32, 0, NULL, V(0));
    o->in[2] = tens(IL_BOOL, 0, NULL, V(1));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 1, D(2), V(0, 1));
    op_free(o);
}

static void test_shape_size(void) {
    op_case *o = op1("Shape", 13, iota(IL_F32, 3, D(2, 3, 4), 0), 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 1, D(3), V(2, 3, 4));
    op_free(o);
    int64_t se[][3] = {{1, INT64_MAX, 2}, {-1, INT64_MAX, 1}, {0, -1, 2}, {-10, 10, 3}, {2, 1, 0}};
    for (int i = 0; i < 5; i++) {
        o = op1("Shape", 15, iota(IL_F32, 3, D(2, 3, 4), 0), 1);
        SETI(o, "start", se[i][0]);
        if (se[i][1] != INT64_MAX) SETI(o, "end", se[i][1]);
        RUN_OK(o);
        CU_ASSERT_EQUAL(o->out[0]->dims[0], se[i][2]);
        if (i == 1) CU_ASSERT_EQUAL(((int64_t *)o->out[0]->data)[0], 4);
        op_free(o);
    }
    o = op1("Size", 13, iota(IL_F16, 2, D(5, 7), 0), 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 0, NULL, V(35));
    op_free(o);
    /* the engine folds Shape and Size before the input has data: the kernels read only dims */
    il_tensor *x = il_tensor_wrap(IL_F32, 2, D(6, 9), NULL);
    o = op1("Size", 13, x, 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 0, NULL, V(54));
    op_free(o);
    o = op1("Shape", 13, il_tensor_wrap(IL_F32, 2, D(6, 9), NULL), 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 1, D(2), V(6, 9));
    op_free(o);
}

static void test_half_bits_pass_through(void) {
    static const uint16_t bits[6] = {0x7e01, 0x8000, 0x0001, 0xfc00, 0x3c00, 0x7bff};
    const char *ops[] = {"Reshape", "Transpose", "Gather", "Slice", "Concat", "Identity"};
    for (int k = 0; k < 6; k++) {
        il_tensor *x = il_tensor_new(IL_F16, 2, D(2, 3));
        memcpy(x->data, bits, sizeof bits);
        op_case *o = k == 0   ? op2("Reshape", 13, x, vec64(1, D(6)))
                     : k == 2 ? op2("Gather", 13, x, vec64(2, D(0, 1)))
                     : k == 3 ? op_new("Slice", 13, 3, 1)
                              : op1(ops[k], 13, x, 1);
        if (k == 3) o->in[0] = x, o->in[1] = vec64(1, D(0)), o->in[2] = vec64(1, D(2)); /* rows 0 and 1 */
        if (k == 4) SETI(o, "axis", 0); /* Concat of one input */
        RUN_OK(o);
        CU_ASSERT_EQUAL(o->out[0]->dtype, IL_F16);
        const uint16_t *y = o->out[0]->data;
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
         {"identity_dropout", test_identity_dropout}, {"shape_size", test_shape_size},
         {"half_bits_pass_through", test_half_bits_pass_through}, {"registry_flags", test_registry_flags})
