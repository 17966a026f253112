/*
 * test_misc_ops.c - the ops of engine/ops/misc.c: Cast and CastLike (float16/bfloat16 bit
 * patterns, rounding, every pair of dtypes), Constant, ConstantOfShape, Range, OneHot and
 * EyeLike, checked by hand on small cases, with their error paths.
 *
 * Every case goes through op_run (tests/op_harness.h): plan-time inference against the run,
 * every output element written, the fast kernel bit for bit equal to the reference.
 */
#include "op_harness.h"

static op_case *cast(il_tensor *x, il_dtype to) {
    op_case *o = op1("Cast", 13, x, 1);
    SETI(o, "to", to);
    return o;
}

static void test_cast_values(void) {
    /* float32 -> float16 bits: 1, 65504 (largest), 1e5 (overflows to inf), 0.1 (rounded), -0 */
    op_case *o = cast(tens(IL_F32, 1, D(5), V(1, 65504, 1e5, 0.1, -0.0)), IL_F16);
    RUN_OK(o);
    const uint16_t *h = o->out[0]->data;
    CU_ASSERT_EQUAL(h[0], 0x3c00);
    CU_ASSERT_EQUAL(h[1], 0x7bff);
    CU_ASSERT_EQUAL(h[2], 0x7c00);
    CU_ASSERT_EQUAL(h[3], 0x2e66);
    CU_ASSERT_EQUAL(h[4], 0x8000);
    op_free(o);
    /* float16 -> float32 is exact */
    o = cast(tens(IL_F16, 1, D(2), V(0.1, -3.5)), IL_F32);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 1, D(2), V(il_f16_to_f32(0x2e66), -3.5));
    op_free(o);
    /* float32 -> bfloat16 truncates as the ONNX backend tests expect; a NaN whose payload sits
     * in the dropped half stays NaN */
    il_tensor *x = il_tensor_new(IL_F32, 1, D(4));
    memcpy(x->data, (uint32_t[]){0x3f800000, 0x3f81c000, 0x7f800001, 0xbf51b000}, 16);
    o = cast(x, IL_BF16);
    RUN_OK(o);
    h = o->out[0]->data;
    CU_ASSERT_EQUAL(h[0], 0x3f80);
    CU_ASSERT_EQUAL(h[1], 0x3f81);
    CU_ASSERT_TRUE(isnan(il_bf16_to_f32(h[2])));
    CU_ASSERT_EQUAL(h[3], 0xbf51);
    op_free(o);
    o = cast(tens(IL_BF16, 1, D(2), V(2.5, -1)), IL_F16);
    RUN_OK(o);
    EXPECT(o, 0, IL_F16, 1, D(2), V(2.5, -1));
    op_free(o);
    /* to integers: truncation toward zero; NaN and huge values do not crash */
    o = cast(tens(IL_F32, 1, D(5), V(-1.7, 2.9, 300, NAN, 1e30)), IL_I32);
    RUN_OK(o);
    CU_ASSERT_EQUAL(((int32_t *)o->out[0]->data)[0], -1);
    CU_ASSERT_EQUAL(((int32_t *)o->out[0]->data)[1], 2);
    CU_ASSERT_EQUAL(((int32_t *)o->out[0]->data)[2], 300);
    op_free(o);
    o = cast(tens(IL_F16, 1, D(3), V(-2.5, 7, 0)), IL_I8);
    RUN_OK(o);
    EXPECT(o, 0, IL_I8, 1, D(3), V(-2, 7, 0));
    op_free(o);
    o = cast(tens(IL_F64, 1, D(4), V(0, -0.5, NAN, 3)), IL_BOOL);
    RUN_OK(o);
    EXPECT(o, 0, IL_BOOL, 1, D(4), V(0, 1, 1, 1));
    op_free(o);
    o = cast(tens(IL_BOOL, 1, D(2), V(1, 0)), IL_F16);
    RUN_OK(o);
    EXPECT(o, 0, IL_F16, 1, D(2), V(1, 0));
    op_free(o);
    /* int64 keeps all its bits through uint64 and back; -1 wraps to 255 in uint8 */
    o = cast(i64s(1, D(2), D(INT64_MAX, -1)), IL_U64);
    RUN_OK(o);
    CU_ASSERT_EQUAL(((uint64_t *)o->out[0]->data)[0], (uint64_t)INT64_MAX);
    CU_ASSERT_EQUAL(((uint64_t *)o->out[0]->data)[1], UINT64_MAX);
    op_free(o);
    o = cast(i64s(1, D(2), D(-1, 258)), IL_U8);
    RUN_OK(o);
    EXPECT(o, 0, IL_U8, 1, D(2), V(255, 2));
    op_free(o);
    o = cast(i64s(1, D(1), D((1LL << 53) + 1)), IL_F64);
    RUN_OK(o);
    CU_ASSERT_EQUAL(((double *)o->out[0]->data)[0], 9007199254740992.0);
    op_free(o);
}

static void test_cast_opsets_and_errors(void) {
    op_case *o = op1("Cast", 1, tens(IL_I32, 1, D(2), V(3, -4)), 1); /* opset 1: 'to' is a name */
    SETS(o, "to", "DOUBLE");
    RUN_OK(o);
    EXPECT(o, 0, IL_F64, 1, D(2), V(3, -4));
    op_free(o);
    o = op2("CastLike", 15, tens(IL_F32, 1, D(2), V(1.5, -2)), tens(IL_F16, 0, NULL, V(0)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F16, 1, D(2), V(1.5, -2));
    op_free(o);
    o = cast(tens(IL_F32, 1, D(1), V(1)), IL_STRING);
    FAILS(o, IL_ERR_UNSUPPORTED, "unsupported dtype string");
    op_free(o);
    o = cast(tens(IL_F32, 1, D(1), V(1)), (il_dtype)14);
    FAILS(o, IL_ERR_UNSUPPORTED, "unsupported dtype");
    op_free(o);
    o = op1("Cast", 13, tens(IL_F32, 1, D(1), V(1)), 1);
    FAILS(o, IL_ERR_INVALID, "'to'");
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
            il_tensor *x = tens(dts[a], 1, D(4), V(0, 1, 7, 100));
            if (dts[a] == IL_BOOL) il_tensor_set(x, 2, 1), il_tensor_set(x, 3, 1);
            op_case *o = cast(x, dts[b]);
            RUN_OK(o);
            for (int i = 0; i < 4; i++) {
                double want = il_tensor_get(x, i);
                if (dts[b] == IL_BOOL) want = want != 0;
                CU_ASSERT_EQUAL(il_tensor_get(o->out[0], i), want);
            }
            op_free(o);
        }
}

static void test_constant(void) {
    op_case *o = op_new("Constant", 13, 0, 1);
    il_node_set_tensor(o->g, o->k, "value", tens(IL_F16, 2, D(1, 2), V(0.5, 3)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F16, 2, D(1, 2), V(0.5, 3));
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    SETF(o, "value_float", 2.5f);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 0, NULL, V(2.5));
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    il_node_set_ints(o->g, o->k, "value_ints", 3, D(4, -5, INT64_MAX));
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 1, D(3), NULL);
    CU_ASSERT_EQUAL(((int64_t *)o->out[0]->data)[2], INT64_MAX);
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    il_node_set_floats(o->g, o->k, "value_floats", 2, (float[]){1, -1});
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 1, D(2), V(1, -1));
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    SETI(o, "value_int", -7);
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 0, NULL, V(-7));
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    SETS(o, "value_string", "hi");
    FAILS(o, IL_ERR_UNSUPPORTED, "unsupported dtype string");
    op_free(o);
    o = op_new("Constant", 13, 0, 1);
    FAILS(o, IL_ERR_INVALID, "exactly one");
    op_free(o);
}

static void test_constant_of_shape(void) {
    op_case *o = op1("ConstantOfShape", 13, vec64(2, D(2, 3)), 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(2, 3), V(0, 0, 0, 0, 0, 0));
    op_free(o);
    o = op1("ConstantOfShape", 13, vec64(1, D(3)), 1);
    il_node_set_tensor(o->g, o->k, "value", tens(IL_I32, 1, D(1), V(-4)));
    RUN_OK(o);
    EXPECT(o, 0, IL_I32, 1, D(3), V(-4, -4, -4));
    op_free(o);
    o = op1("ConstantOfShape", 13, vec64(1, D(0)), 1); /* a zero-size dim */
    il_node_set_tensor(o->g, o->k, "value", tens(IL_F16, 1, D(1), V(1)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F16, 1, D(0), NULL);
    op_free(o);
    o = op1("ConstantOfShape", 13, i64s(1, D(0), NULL), 1); /* an empty shape: a scalar */
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 0, NULL, V(0));
    op_free(o);
    o = op1("ConstantOfShape", 13, vec64(1, D(-1)), 1);
    FAILS(o, IL_ERR_INVALID, "negative");
    op_free(o);
    o = op1("ConstantOfShape", 13, vec64(1, D(2)), 1);
    il_node_set_tensor(o->g, o->k, "value", tens(IL_I32, 1, D(2), V(1, 2)));
    FAILS(o, IL_ERR_INVALID, "one element");
    op_free(o);
}

static op_case *range(il_dtype dt, double s, double l, double d) {
    op_case *o = op_new("Range", 13, 3, 1);
    o->in[0] = tens(dt, 0, NULL, V(s));
    o->in[1] = tens(dt, 0, NULL, V(l));
    o->in[2] = tens(dt, 0, NULL, V(d));
    return o;
}

static void test_range(void) {
    op_case *o = range(IL_F32, 1, 2, 0.25);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 1, D(4), V(1, 1.25, 1.5, 1.75));
    op_free(o);
    o = range(IL_I32, 10, 4, -3);
    RUN_OK(o);
    EXPECT(o, 0, IL_I32, 1, D(2), V(10, 7));
    op_free(o);
    o = range(IL_I64, 10, 4, 3); /* empty */
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 1, D(0), NULL);
    op_free(o);
    o = range(IL_F64, 0, 1, 0);
    FAILS(o, IL_ERR_INVALID, "delta is 0");
    op_free(o);
    o = range(IL_F32, 0, 1e30, 1e-30);
    FAILS(o, IL_ERR_INVALID, "too large");
    op_free(o);
    o = op_new("Range", 13, 3, 1);
    o->in[0] = tens(IL_F32, 0, NULL, V(0));
    o->in[1] = tens(IL_I32, 0, NULL, V(3));
    o->in[2] = tens(IL_F32, 0, NULL, V(1));
    FAILS(o, IL_ERR_TYPE, "differ in dtype");
    op_free(o);
}

static op_case *onehot(il_tensor *ind, double depth, il_tensor *vals) {
    op_case *o = op_new("OneHot", 13, 3, 1);
    o->in[0] = ind;
    o->in[1] = tens(IL_F32, 0, NULL, V(depth));
    o->in[2] = vals;
    return o;
}

static void test_onehot(void) {
    /* negative indices count from the end; out of range gives all "off" */
    op_case *o = onehot(i64s(1, D(4), D(0, -1, 3, 2)), 3, tens(IL_F16, 1, D(2), V(-1, 5)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F16, 2, D(4, 3), V(5, -1, -1, -1, -1, 5, -1, -1, -1, -1, -1, 5));
    op_free(o);
    o = onehot(tens(IL_F32, 1, D(2), V(1, 0)), 2, i64s(1, D(2), D(0, 1)));
    SETI(o, "axis", 0);
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 2, D(2, 2), V(0, 1, 1, 0));
    op_free(o);
    o = onehot(i64s(2, D(1, 2), D(1, 0)), 2, tens(IL_F32, 1, D(2), V(0, 1)));
    SETI(o, "axis", -2);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 3, D(1, 2, 2), V(0, 1, 1, 0));
    op_free(o);
    o = onehot(i64s(1, D(1), D(0)), 2, tens(IL_F32, 1, D(3), V(0, 1, 2)));
    FAILS(o, IL_ERR_INVALID, "values");
    op_free(o);
    o = onehot(i64s(1, D(1), D(0)), -2, tens(IL_F32, 1, D(2), V(0, 1)));
    FAILS(o, IL_ERR_INVALID, "depth");
    op_free(o);
    o = onehot(i64s(1, D(1), D(0)), NAN, tens(IL_F32, 1, D(2), V(0, 1)));
    FAILS(o, IL_ERR_INVALID, "depth");
    op_free(o);
    o = onehot(i64s(1, D(4096), NULL), 1e12, tens(IL_F32, 1, D(2), V(0, 1)));
    FAILS(o, IL_ERR_INVALID, "too large");
    op_free(o);
    o = onehot(i64s(1, D(1), D(0)), 2, tens(IL_F32, 1, D(2), V(0, 1)));
    SETI(o, "axis", 2);
    FAILS(o, IL_ERR_INVALID, "axis 2");
    op_free(o);
}

static void test_eyelike(void) {
    op_case *o = op1("EyeLike", 13, iota(IL_I32, 2, D(2, 3), 0), 1);
    SETI(o, "k", 1);
    SETI(o, "dtype", IL_F16);
    RUN_OK(o);
    EXPECT(o, 0, IL_F16, 2, D(2, 3), V(0, 1, 0, 0, 0, 1));
    op_free(o);
    o = op1("EyeLike", 13, iota(IL_BF16, 2, D(2, 2), 0), 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_BF16, 2, D(2, 2), V(1, 0, 0, 1));
    op_free(o);
    o = op1("EyeLike", 13, iota(IL_F32, 1, D(2), 0), 1);
    FAILS(o, IL_ERR_INVALID, "2-D");
    op_free(o);
}

/* Ops that move bytes must carry float16/bfloat16 bit patterns through unchanged (NaN
 * payloads, -0, subnormals), since the engine does not convert them for IL_OPF_ANY_DTYPE. */
IL_SUITE("misc_ops", {"cast_values", test_cast_values}, {"cast_opsets_and_errors", test_cast_opsets_and_errors},
         {"cast_all_pairs", test_cast_all_pairs}, {"constant", test_constant},
         {"constant_of_shape", test_constant_of_shape}, {"range", test_range}, {"onehot", test_onehot},
         {"eyelike", test_eyelike})
