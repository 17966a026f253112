/*
 * test_elementwise.c - the element-wise ops of engine/ops/unary.c and binary.c: hand-checked
 * values per op family (broadcasting, scalars, zero-size, int dtypes, Mod signs, Pow with mixed
 * dtypes, Clip with omitted bounds), the error paths, shape inference on unknown shapes, and
 * fast kernels against the reference on fresh random inputs (|fast-ref| <= 1e-6 + 1e-5*|ref|).
 *
 * Each case is a one-node graph run through tests/op_harness.h, which also checks plan-time
 * inference against the run and that the kernels write every output element.
 */
#include "op_harness.h"

#define N_OF(...) (int)(sizeof((double[]){__VA_ARGS__}) / sizeof(double))

/* A node at opset 18 whose float outputs must be within 1e-6 + 1e-5 * |want|. */
/* Opset 18, except Gelu's (it came in 20: the registry lists no kernel for it before). */
static op_case *node_new(const char *op, int n_in) {
    return op_tol(op_new(op, strcmp(op, "Gelu") ? 18 : 20, n_in, 1), 1e-5, 1e-6);
}

/* Run a one-input op on x (n values of dtype dt, shape [n]) and compare with want. */
static void unary_case(const char *op, il_dtype dt, int n, const double *x, const double *want, const char *attr,
                       double aval) {
    op_case *t = node_new(op, 1);
    if (attr) SETF(t, attr, (float)aval);
    t->in[0] = tens(dt, 1, D(n), x);
    snprintf(t->label, sizeof t->label, "%s %s", op, il_dtype_name(dt));
    RUN_OK(t);
    EXPECT(t, 0, dt, 1, D(n), want);
    op_free(t);
}

/* UNARY("Sqrt", IL_F32, (x values), (wanted values)) */
#define UNPAREN(...) __VA_ARGS__
#define UNARY(op, dt, X, W) unary_case(op, dt, N_OF X, (double[]){UNPAREN X}, (double[]){UNPAREN W}, NULL, 0)
#define UNARY_A(op, attr, a, X, W) unary_case(op, IL_F32, N_OF X, (double[]){UNPAREN X}, (double[]){UNPAREN W}, attr, a)

/* Run t on the inputs in[] (which t takes) and compare output 0 with want; frees t. */
static void multi_case(op_case *t, il_tensor **in, int n_in, il_dtype dt, int rank, const int64_t *dims,
                       const double *want, const char *what) {
    for (int i = 0; i < n_in; i++) t->in[i] = in[i];
    snprintf(t->label, sizeof t->label, "%s", what);
    RUN_OK(t);
    EXPECT(t, 0, dt, rank, dims, want);
    op_free(t);
}

/* ---------------------------------------------------------------- unary */

static void test_math(void) {
    UNARY("Sqrt", IL_F32, (0, 4, 2.25), (0, 2, 1.5));
    UNARY("Sqrt", IL_F64, (-1, 9), (NAN, 3));
    UNARY("Exp", IL_F32, (0, 1, -1), (1, 2.718281828, 0.367879441));
    UNARY("Log", IL_F32, (1, 2.718281828, 0), (0, 1, -INFINITY));
    UNARY("Abs", IL_F32, (-2.5, 3, -0.0), (2.5, 3, 0));
    UNARY("Neg", IL_F64, (-2.5, 3), (2.5, -3));
    UNARY("Reciprocal", IL_F32, (2, -0.5, 4), (0.5, -2, 0.25));
    UNARY("Floor", IL_F32, (1.5, -1.5, 2), (1, -2, 2));
    UNARY("Ceil", IL_F32, (1.5, -1.5, 2), (2, -1, 2));
    UNARY("Round", IL_F32, (0.5, 1.5, 2.5, -0.5, -1.5, 2.3, -2.7), (0, 2, 2, -0.0, -2, 2, -3));
    UNARY("Sign", IL_F32, (-3, 0, 2.5, NAN), (-1, 0, 1, NAN));
    UNARY("Sin", IL_F32, (0, 1.5707963268), (0, 1));
    UNARY("Cos", IL_F32, (0, 3.14159265359), (1, -1));
    UNARY("Tan", IL_F32, (0, 0.7853981634), (0, 1));
    UNARY("Asin", IL_F32, (0, 1), (0, 1.5707963268));
    UNARY("Acos", IL_F32, (1, 0), (0, 1.5707963268));
    UNARY("Atan", IL_F32, (0, 1), (0, 0.7853981634));
    UNARY("Sinh", IL_F32, (0, 1), (0, 1.1752011936));
    UNARY("Cosh", IL_F32, (0, 1), (1, 1.5430806348));
    UNARY("Asinh", IL_F32, (0, 1), (0, 0.8813735870));
    UNARY("Acosh", IL_F32, (1, 2), (0, 1.3169578969));
    UNARY("Atanh", IL_F32, (0, 0.5), (0, 0.5493061443));
    UNARY("Erf", IL_F32, (0, 1, -2), (0, 0.8427007929, -0.9953222650));
    UNARY("Tanh", IL_F32, (0, 1, -20), (0, 0.7615941560, -1));
}

static void test_activations(void) {
    UNARY("Relu", IL_F32, (-1, 0, 2, NAN), (0, 0, 2, NAN));
    UNARY("LeakyRelu", IL_F32, (-1, 2), (-0.01, 2));
    UNARY_A("LeakyRelu", "alpha", 0.1, (-1, 2), (-0.1, 2));
    UNARY("Elu", IL_F32, (-1, 0, 2), (-0.6321205588, 0, 2));
    UNARY_A("Elu", "alpha", 2, (-1, 2), (-1.2642411177, 2));
    UNARY("Selu", IL_F32, (-1, 0, 2), (-1.1113307378, 0, 2.1014020504));
    UNARY("Celu", IL_F32, (-1, 0, 2), (-0.6321205588, 0, 2));
    UNARY_A("Celu", "alpha", 2, (-1, 2), (-0.7869386805, 2));
    UNARY("Sigmoid", IL_F32, (0, 1, -100), (0.5, 0.7310585786, 0));
    UNARY("HardSigmoid", IL_F32, (0, 1, -5, 5), (0.5, 0.7, 0, 1));
    UNARY("HardSwish", IL_F32, (-4, 0, 1, 4), (0, 0, 0.6666666667, 4));
    UNARY("Softplus", IL_F32, (0, 1, 100), (0.6931471806, 1.3132616875, 100));
    UNARY("Mish", IL_F32, (0, 1, -1), (0, 0.8650983883, -0.3034014613));
    UNARY("Softsign", IL_F32, (0, 1, -3), (0, 0.5, -0.75));
    UNARY("ThresholdedRelu", IL_F32, (0.5, 1, 2), (0, 0, 2));
    UNARY_A("ThresholdedRelu", "alpha", 0.2, (0.5, 0.1), (0.5, 0));
    UNARY("Shrink", IL_F32, (-1, -0.2, 0.3, 2), (-1, 0, 0, 2));
    UNARY_A("Shrink", "bias", 0.5, (-1, -0.2, 0.3, 2), (-0.5, 0, 0, 1.5));
    UNARY("Gelu", IL_F32, (0, 1, -1), (0, 0.8413447461, -0.1586552539));
    op_case *t = node_new("Gelu", 1);
    SETS(t, "approximate", "tanh");
    il_tensor *in[1] = {tens(IL_F32, 1, D(3), V(0, 1, -1))};
    multi_case(t, in, 1, IL_F32, 1, D(3), V(0, 0.8411919906, -0.1588080094), "Gelu tanh");
}

static void test_unary_ints(void) {
    UNARY("Abs", IL_I32, (-3, 4, -2147483648.0), (3, 4, -2147483648.0));
    UNARY("Abs", IL_U8, (3, 250), (3, 250));
    UNARY("Neg", IL_I64, (-3, 4), (3, -4));
    UNARY("Sign", IL_I8, (-3, 0, 4), (-1, 0, 1));
    UNARY("Relu", IL_I32, (-3, 0, 4), (0, 0, 4));
    UNARY("Not", IL_BOOL, (0, 1), (1, 0));
    UNARY("BitwiseNot", IL_U8, (0, 5), (255, 250));
    UNARY("BitwiseNot", IL_I32, (0, 5), (-1, -6));
    op_case *t = node_new("IsNaN", 1);
    il_tensor *in[1] = {tens(IL_F32, 1, D(3), V(NAN, 1, INFINITY))};
    multi_case(t, in, 1, IL_BOOL, 1, D(3), V(1, 0, 0), "IsNaN");
    t = node_new("IsInf", 1);
    in[0] = tens(IL_F64, 1, D(4), V(NAN, 1, INFINITY, -INFINITY));
    multi_case(t, in, 1, IL_BOOL, 1, D(4), V(0, 0, 1, 1), "IsInf");
    t = node_new("IsInf", 1);
    SETI(t, "detect_positive", 0);
    in[0] = tens(IL_F32, 1, D(4), V(NAN, 1, INFINITY, -INFINITY));
    multi_case(t, in, 1, IL_BOOL, 1, D(4), V(0, 0, 0, 1), "IsInf detect_positive=0");
}

static void test_clip(void) {
    /* opset 6: min/max attributes */
    op_case *t = node_new("Clip", 1);
    t->opset = 6;
    SETF(t, "min", -1);
    SETF(t, "max", 1);
    il_tensor *in[3] = {tens(IL_F32, 1, D(4), V(-3, -0.5, 0.5, 3))};
    multi_case(t, in, 1, IL_F32, 1, D(4), V(-1, -0.5, 0.5, 1), "Clip-6");
    /* opset 13: inputs; max omitted (NULL), then min omitted; ints; NaN passes */
    t = node_new("Clip", 3);
    in[0] = tens(IL_F32, 2, D(1, 4), V(-3, -0.5, NAN, 3));
    in[1] = tens(IL_F32, 0, NULL, V(0));
    in[2] = NULL;
    multi_case(t, in, 3, IL_F32, 2, D(1, 4), V(0, 0, NAN, 3), "Clip max omitted");
    t = node_new("Clip", 3);
    in[0] = tens(IL_I64, 1, D(4), V(-3, 0, 5, 9));
    in[1] = NULL;
    in[2] = tens(IL_I64, 0, NULL, V(5));
    multi_case(t, in, 3, IL_I64, 1, D(4), V(-3, 0, 5, 5), "Clip int64 min omitted");
    t = node_new("Clip", 1);
    in[0] = tens(IL_U8, 1, D(2), V(0, 255));
    multi_case(t, in, 1, IL_U8, 1, D(2), V(0, 255), "Clip no bounds");
}

/* ---------------------------------------------------------------- binary */

static void bin(const char *op, il_dtype dt, int ra, const int64_t *da, const double *a, int rb, const int64_t *db,
                const double *b, il_dtype dy, int ry, const int64_t *dims, const double *want) {
    op_case *t = node_new(op, 2);
    il_tensor *in[2] = {tens(dt, ra, da, a), tens(dt, rb, db, b)};
    multi_case(t, in, 2, dy, ry, dims, want, op);
}

static void test_broadcast(void) {
    bin("Add", IL_F32, 2, D(2, 3), V(1, 2, 3, 4, 5, 6), 1, D(3), V(10, 20, 30), IL_F32, 2, D(2, 3),
        V(11, 22, 33, 14, 25, 36));
    bin("Mul", IL_F32, 2, D(2, 1), V(1, 2), 2, D(1, 3), V(1, 10, 100), IL_F32, 2, D(2, 3), V(1, 10, 100, 2, 20, 200));
    bin("Sub", IL_F64, 0, NULL, V(10), 2, D(2, 2), V(1, 2, 3, 4), IL_F64, 2, D(2, 2), V(9, 8, 7, 6));
    bin("Div", IL_F32, 2, D(2, 2), V(1, 2, 3, 4), 0, NULL, V(2), IL_F32, 2, D(2, 2), V(0.5, 1, 1.5, 2));
    bin("Add", IL_F32, 0, NULL, V(1), 0, NULL, V(2), IL_F32, 0, NULL, V(3));
    bin("Add", IL_F32, 2, D(0, 3), NULL, 1, D(3), V(1, 2, 3), IL_F32, 2, D(0, 3), NULL);
    bin("Mul", IL_I32, 3, D(2, 1, 2), V(1, 2, 3, 4), 2, D(2, 1), V(10, 100), IL_I32, 3, D(2, 2, 2),
        V(10, 20, 100, 200, 30, 40, 300, 400));
    /* opset 6 legacy broadcast: B [3] aligned to A [2,3,2] at axis 1 */
    op_case *t = node_new("Add", 2);
    t->opset = 6;
    SETI(t, "broadcast", 1);
    SETI(t, "axis", 1);
    il_tensor *in[2] = {tens(IL_F32, 3, D(2, 3, 2), V(0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1)), tens(IL_F32, 1, D(3), V(1, 2, 3))};
    multi_case(t, in, 2, IL_F32, 3, D(2, 3, 2), V(1, 1, 2, 2, 3, 3, 2, 2, 3, 3, 4, 4), "Add-6 axis");
}

static void test_int_arith(void) {
    bin("Add", IL_I8, 1, D(2), V(127, -128), 1, D(2), V(1, -1), IL_I8, 1, D(2), V(-128, 127));
    bin("Add", IL_U16, 1, D(1), V(65535), 1, D(1), V(2), IL_U16, 1, D(1), V(1));
    bin("Mul", IL_I64, 1, D(2), V(-3, 1e12), 1, D(2), V(7, 1e6), IL_I64, 1, D(2), V(-21, 1e18));
    bin("Div", IL_I32, 1, D(5), V(7, -7, 7, -7, 5), 1, D(5), V(2, 2, -2, -2, 0), IL_I32, 1, D(5), V(3, -3, -3, 3, 0));
    bin("Div", IL_I32, 1, D(1), V(-2147483648.0), 1, D(1), V(-1), IL_I32, 1, D(1), V(-2147483648.0));
    bin("Div", IL_U8, 1, D(2), V(200, 7), 1, D(2), V(3, 0), IL_U8, 1, D(2), V(66, 0));
}

static void test_mod(void) {
    /* the ONNX backend test data: fmod=0 takes the divisor's sign, fmod=1 the dividend's */
    bin("Mod", IL_I64, 1, D(6), V(-4, 7, 5, 4, -7, 8), 1, D(6), V(2, -3, 8, -2, 3, 5), IL_I64, 1, D(6),
        V(0, -2, 5, 0, 2, 3));
    bin("Mod", IL_U32, 1, D(2), V(7, 9), 1, D(2), V(3, 0), IL_U32, 1, D(2), V(1, 0));
    bin("Mod", IL_F32, 1, D(3), V(-4.3, 7.2, 5.0), 1, D(3), V(2.1, -3.4, 8.0), IL_F32, 1, D(3), V(2.0, -3.0, 5.0));
    op_case *t = node_new("Mod", 2);
    SETI(t, "fmod", 1);
    il_tensor *in[2] = {tens(IL_I32, 1, D(6), V(-4, 7, 5, 4, -7, 8)), tens(IL_I32, 1, D(6), V(2, -3, 8, -2, 3, 5))};
    multi_case(t, in, 2, IL_I32, 1, D(6), V(0, 1, 5, 0, -1, 3), "Mod fmod=1 int");
    t = node_new("Mod", 2);
    SETI(t, "fmod", 1);
    in[0] = tens(IL_F64, 1, D(3), V(-4.5, 7.5, 5));
    in[1] = tens(IL_F64, 1, D(3), V(2, -3, 8));
    multi_case(t, in, 2, IL_F64, 1, D(3), V(-0.5, 1.5, 5), "Mod fmod=1 float");
}

static void test_pow(void) {
    struct {
        il_dtype a, b, y;
        double want[3];
    } cases[] = {
        {IL_F32, IL_F32, IL_F32, {1, 32, 729}},  {IL_F32, IL_I64, IL_F32, {1, 32, 729}},
        {IL_I32, IL_I32, IL_I32, {1, 32, 729}},  {IL_I64, IL_F32, IL_I64, {1, 32, 729}},
        {IL_F64, IL_I32, IL_F64, {1, 32, 729}},  {IL_U8, IL_I64, IL_U8, {1, 32, 729 % 256}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        op_case *t = node_new("Pow", 2);
        il_tensor *in[2] = {tens(cases[i].a, 1, D(3), V(1, 2, 3)), tens(cases[i].b, 1, D(3), V(4, 5, 6))};
        multi_case(t, in, 2, cases[i].y, 1, D(3), cases[i].want, "Pow mixed dtypes");
    }
    bin("Pow", IL_F32, 1, D(3), V(2, 4, -3), 0, NULL, V(0.5), IL_F32, 1, D(3), V(1.4142135624, 2, NAN));
    bin("Pow", IL_F32, 1, D(3), V(2, 4, -3), 0, NULL, V(2), IL_F32, 1, D(3), V(4, 16, 9));
    bin("Pow", IL_I64, 1, D(4), V(2, 1, -1, -1), 1, D(4), V(-1, -5, -3, -2), IL_I64, 1, D(4), V(0, 1, -1, 1));
}

static void test_compare_logic(void) {
    bin("Equal", IL_I64, 1, D(3), V(1, 2, 3), 0, NULL, V(2), IL_BOOL, 1, D(3), V(0, 1, 0));
    bin("Equal", IL_BOOL, 1, D(2), V(1, 0), 1, D(2), V(1, 1), IL_BOOL, 1, D(2), V(1, 0));
    bin("Less", IL_F32, 2, D(2, 1), V(1, 3), 1, D(2), V(2, 3), IL_BOOL, 2, D(2, 2), V(1, 1, 0, 0));
    bin("Greater", IL_U8, 1, D(2), V(1, 200), 1, D(2), V(2, 100), IL_BOOL, 1, D(2), V(0, 1));
    bin("LessOrEqual", IL_I32, 1, D(3), V(1, 2, 3), 0, NULL, V(2), IL_BOOL, 1, D(3), V(1, 1, 0));
    bin("GreaterOrEqual", IL_F64, 1, D(3), V(1, 2, NAN), 0, NULL, V(2), IL_BOOL, 1, D(3), V(0, 1, 0));
    bin("And", IL_BOOL, 2, D(2, 1), V(0, 1), 1, D(2), V(0, 1), IL_BOOL, 2, D(2, 2), V(0, 0, 0, 1));
    bin("Or", IL_BOOL, 2, D(2, 1), V(0, 1), 1, D(2), V(0, 1), IL_BOOL, 2, D(2, 2), V(0, 1, 1, 1));
    bin("Xor", IL_BOOL, 2, D(2, 1), V(0, 1), 1, D(2), V(0, 1), IL_BOOL, 2, D(2, 2), V(0, 1, 1, 0));
    bin("BitwiseAnd", IL_I32, 1, D(2), V(12, -1), 1, D(2), V(10, 6), IL_I32, 1, D(2), V(8, 6));
    bin("BitwiseOr", IL_U8, 1, D(2), V(12, 1), 1, D(2), V(10, 2), IL_U8, 1, D(2), V(14, 3));
    bin("BitwiseXor", IL_U64, 1, D(2), V(12, 1), 1, D(2), V(10, 1), IL_U64, 1, D(2), V(6, 0));
    for (int left = 0; left < 2; left++) {
        op_case *t = node_new("BitShift", 2);
        SETS(t, "direction", left ? "LEFT" : "RIGHT");
        il_tensor *in[2] = {tens(IL_U8, 1, D(3), V(16, 4, 1)), tens(IL_U8, 1, D(3), V(1, 2, 8))};
        multi_case(t, in, 2, IL_U8, 1, D(3), left ? V(32, 16, 0) : V(8, 1, 0), "BitShift");
    }
}

static void test_prelu_where(void) {
    bin("PRelu", IL_F32, 2, D(2, 3), V(-1, 2, -3, 4, -5, 6), 1, D(3), V(0.1, 0.2, 0.3), IL_F32, 2, D(2, 3),
        V(-0.1, 2, -0.9, 4, -1, 6));
    bin("PRelu", IL_I32, 1, D(3), V(-1, 2, -3), 0, NULL, V(2), IL_I32, 1, D(3), V(-2, 2, -6));
    /* opset 6: a [C] slope applies per channel (dim 1) */
    op_case *t = node_new("PRelu", 2);
    t->opset = 6;
    il_tensor *in[3] = {tens(IL_F32, 3, D(1, 2, 2), V(-1, -2, -3, 4)), tens(IL_F32, 1, D(2), V(0.5, 2))};
    multi_case(t, in, 2, IL_F32, 3, D(1, 2, 2), V(-0.5, -1, -6, 4), "PRelu-6 per channel");
    t = node_new("Where", 3);
    in[0] = tens(IL_BOOL, 2, D(2, 1), V(1, 0)), in[1] = tens(IL_I64, 1, D(3), V(1, 2, 3));
    in[2] = tens(IL_I64, 0, NULL, V(-1));
    multi_case(t, in, 3, IL_I64, 2, D(2, 3), V(1, 2, 3, -1, -1, -1), "Where");
    /* Where moves float16 bits untouched */
    t = node_new("Where", 3);
    in[0] = tens(IL_BOOL, 1, D(2), V(0, 1));
    in[1] = il_tensor_new(IL_F16, 1, D(2));
    in[2] = il_tensor_new(IL_F16, 1, D(2));
    ((uint16_t *)in[1]->data)[0] = ((uint16_t *)in[1]->data)[1] = il_f32_to_f16(1.5f);
    ((uint16_t *)in[2]->data)[0] = ((uint16_t *)in[2]->data)[1] = il_f32_to_f16(-2.0f);
    multi_case(t, in, 3, IL_F16, 1, D(2), V(-2, 1.5), "Where float16");
}

static void test_variadic(void) {
    op_case *t = node_new("Sum", 3);
    il_tensor *in[3] = {tens(IL_F32, 1, D(3), V(1, 2, 3)), tens(IL_F32, 2, D(2, 3), V(10, 20, 30, 40, 50, 60)),
                        tens(IL_F32, 0, NULL, V(100))};
    multi_case(t, in, 3, IL_F32, 2, D(2, 3), V(111, 122, 133, 141, 152, 163), "Sum");
    t = node_new("Mean", 2);
    in[0] = tens(IL_F64, 1, D(2), V(1, 2));
    in[1] = tens(IL_F64, 2, D(2, 1), V(3, 5));
    multi_case(t, in, 2, IL_F64, 2, D(2, 2), V(2, 2.5, 3, 3.5), "Mean");
    t = node_new("Max", 3);
    in[0] = tens(IL_F32, 1, D(3), V(1, NAN, 3));
    in[1] = tens(IL_F32, 1, D(3), V(NAN, 2, 1));
    in[2] = tens(IL_F32, 1, D(3), V(0, 0, 4));
    multi_case(t, in, 3, IL_F32, 1, D(3), V(NAN, NAN, 4), "Max NaN");
    t = node_new("Min", 2);
    in[0] = tens(IL_I32, 1, D(3), V(1, -5, 3));
    in[1] = tens(IL_I32, 0, NULL, V(2));
    multi_case(t, in, 2, IL_I32, 1, D(3), V(1, -5, 2), "Min int");
    t = node_new("Max", 1);
    in[0] = tens(IL_U8, 1, D(2), V(7, 9));
    multi_case(t, in, 1, IL_U8, 1, D(2), V(7, 9), "Max one input");
}

/* ---------------------------------------------------------------- errors and inference */

/* t on the inputs in[] (which t takes) fails with status want and a message naming the node and
 * containing text; frees t. */
static void expect_error(op_case *t, il_tensor **in, int n_in, il_status want, const char *text) {
    for (int i = 0; i < n_in; i++) t->in[i] = in[i];
    FAILS(t, want, text);
    op_free(t);
}

static void test_errors(void) {
    op_case *t = node_new("Add", 2);
    il_tensor *in[3] = {tens(IL_F32, 2, D(2, 3), NULL), tens(IL_F32, 1, D(4), NULL)};
    expect_error(t, in, 2, IL_ERR_SHAPE, "shapes [2,3] and [4] cannot be broadcast");
    t = node_new("Mul", 2);
    in[0] = tens(IL_F32, 1, D(2), NULL), in[1] = tens(IL_I64, 1, D(2), NULL);
    expect_error(t, in, 2, IL_ERR_TYPE, "float32 and int64");
    t = node_new("Add", 1);
    in[0] = tens(IL_F32, 1, D(2), NULL);
    expect_error(t, in, 1, IL_ERR_INVALID, "input 1 is missing");
    t = node_new("Sqrt", 1);
    in[0] = tens(IL_I32, 1, D(2), NULL);
    expect_error(t, in, 1, IL_ERR_UNSUPPORTED, "unsupported dtype int32");
    t = node_new("Neg", 1);
    in[0] = tens(IL_U8, 1, D(2), NULL);
    expect_error(t, in, 1, IL_ERR_UNSUPPORTED, "uint8");
    t = node_new("Gelu", 1);
    SETS(t, "approximate", "erf");
    in[0] = tens(IL_F32, 1, D(2), NULL);
    expect_error(t, in, 1, IL_ERR_INVALID, "approximate");
    t = node_new("Mod", 2);
    SETI(t, "fmod", 2);
    in[0] = tens(IL_I32, 1, D(2), NULL), in[1] = tens(IL_I32, 1, D(2), NULL);
    expect_error(t, in, 2, IL_ERR_INVALID, "fmod");
    t = node_new("BitShift", 2);
    in[0] = tens(IL_U8, 1, D(2), NULL), in[1] = tens(IL_U8, 1, D(2), NULL);
    expect_error(t, in, 2, IL_ERR_INVALID, "direction");
    t = node_new("Where", 3);
    in[0] = tens(IL_F32, 1, D(2), NULL), in[1] = tens(IL_F32, 1, D(2), NULL), in[2] = tens(IL_F32, 1, D(2), NULL);
    expect_error(t, in, 3, IL_ERR_TYPE, "condition must be bool");
    t = node_new("Where", 3);
    in[0] = tens(IL_BOOL, 1, D(2), NULL), in[1] = tens(IL_F32, 1, D(3), NULL), in[2] = tens(IL_F32, 1, D(2), NULL);
    expect_error(t, in, 3, IL_ERR_SHAPE, "cannot be broadcast");
    t = node_new("Clip", 2);
    in[0] = tens(IL_F32, 1, D(2), NULL), in[1] = tens(IL_F32, 1, D(2), NULL);
    expect_error(t, in, 2, IL_ERR_SHAPE, "min must be a scalar");
    t = node_new("Clip", 2);
    in[0] = tens(IL_F32, 1, D(2), NULL), in[1] = tens(IL_F64, 0, NULL, NULL);
    expect_error(t, in, 2, IL_ERR_TYPE, "min is float64");
    t = node_new("PRelu", 2);
    in[0] = tens(IL_F32, 1, D(3), NULL), in[1] = tens(IL_F32, 2, D(2, 3), NULL);
    expect_error(t, in, 2, IL_ERR_SHAPE, "does not broadcast to input shape [3]");
    t = node_new("Sum", 3);
    in[0] = tens(IL_F32, 1, D(2), NULL), in[1] = tens(IL_F32, 1, D(2), NULL), in[2] = tens(IL_F64, 1, D(2), NULL);
    expect_error(t, in, 3, IL_ERR_TYPE, "differ");
    t = node_new("Max", 0);
    expect_error(t, in, 0, IL_ERR_INVALID, "at least 1 input");
    t = node_new("And", 2);
    in[0] = tens(IL_I32, 1, D(2), NULL), in[1] = tens(IL_I32, 1, D(2), NULL);
    expect_error(t, in, 2, IL_ERR_UNSUPPORTED, "int32");
}

/* Plan-time inference: no data, unknown dims (-1) and unknown rank. */
static void test_infer_unknown(void) {
    enum { A, B, U, COND }; /* [?,1,3], [4,3], unknown rank, bool [?] */
    struct {
        const char *op;
        int in[3];
        int n;
        il_dtype dt;
        int rank;
        int64_t dims[3];
    } cases[] = {
        {"Add", {A, B}, 2, IL_F32, 3, {-1, 4, 3}},    {"Less", {B, A}, 2, IL_BOOL, 3, {-1, 4, 3}},
        {"Relu", {A}, 1, IL_F32, 3, {-1, 1, 3}},      {"Mul", {A, U}, 2, IL_F32, -1, {0}},
        {"Sigmoid", {U}, 1, IL_F32, -1, {0}},         {"Where", {COND, B, A}, 3, IL_F32, 3, {-1, 4, 3}},
        {"Sum", {A, B, B}, 3, IL_F32, 3, {-1, 4, 3}}, {"IsNaN", {A}, 1, IL_BOOL, 3, {-1, 1, 3}},
        {"Clip", {A, U}, 2, IL_F32, 3, {-1, 1, 3}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        op_case *t = node_new(cases[i].op, cases[i].n);
        for (int k = 0; k < cases[i].n; k++) {
            int w = cases[i].in[k];
            t->in[k] = w == A ? shape_only(IL_F32, SHAPE(-1, 1, 3))
                       : w == B ? shape_only(IL_F32, SHAPE(4, 3))
                       : w == U ? shape_only(IL_F32, -1, NULL)
                                : shape_only(IL_BOOL, SHAPE(-1));
        }
        il_tensor y;
        IL_ASSERT_OK(op_infer(t, OP_PLAN, &y));
        CU_ASSERT_EQUAL(y.dtype, cases[i].dt);
        CU_ASSERT_EQUAL(y.rank, cases[i].rank);
        for (int d = 0; d < y.rank && d < 3; d++) CU_ASSERT_EQUAL(y.dims[d], cases[i].dims[d]);
        op_free(t);
    }
}

/* ---------------------------------------------------------------- fast against ref */

/* The fast kernel on 4 threads against the reference on t's inputs (op_run compares them
 * within 1e-6 + 1e-5 * |ref|); frees t. */
static void compare_fast(op_case *t) {
    char sa[64], sb[64];
    snprintf(t->label, sizeof t->label, "%s %s %s", t->g->nodes[t->k].op_type,
             il_shape_str(t->in[0]->rank, t->in[0]->dims, sa, sizeof sa),
             t->n_in > 1 && t->in[1] ? il_shape_str(t->in[1]->rank, t->in[1]->dims, sb, sizeof sb) : "");
    t->threads = 4;
    RUN_OK(t);
    op_free(t);
}

static void test_fast_unary(void) {
    static const struct {
        const char *op;
        double lo, hi;
    } ops[] = {
        {"Sqrt", 0, 100},  {"Exp", -20, 20},   {"Log", 1e-3, 100}, {"Reciprocal", 0.1, 10}, {"Floor", -9, 9},
        {"Ceil", -9, 9},   {"Round", -9, 9},   {"Sin", -6, 6},     {"Cos", -6, 6},          {"Tan", -1.4, 1.4},
        {"Asin", -1, 1},   {"Acos", -1, 1},    {"Atan", -9, 9},    {"Sinh", -5, 5},         {"Cosh", -5, 5},
        {"Asinh", -9, 9},  {"Acosh", 1, 9},    {"Atanh", -0.99, 0.99}, {"Erf", -3, 3},      {"Tanh", -5, 5},
        {"Relu", -3, 3},   {"LeakyRelu", -3, 3}, {"Elu", -3, 3},   {"Selu", -3, 3},         {"Celu", -3, 3},
        {"Sigmoid", -9, 9}, {"HardSigmoid", -5, 5}, {"HardSwish", -5, 5}, {"Softplus", -20, 20}, {"Mish", -5, 5},
        {"Softsign", -9, 9}, {"ThresholdedRelu", -3, 3}, {"Shrink", -3, 3}, {"Gelu", -5, 5}, {"Abs", -3, 3},
        {"Neg", -3, 3},    {"Sign", -3, 3},    {"Clip", -3, 3},
    };
    static const int64_t shapes[][3] = {{1000, 1, 1}, {3, 17, 33}, {0, 5, 1}, {300, 300, 1}};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int dt = 0; dt < 2; dt++) {
                op_case *t = node_new(ops[o].op, 1);
                t->in[0] = rnd(dt ? IL_F64 : IL_F32, 3, shapes[s], ops[o].lo, ops[o].hi);
                compare_fast(t);
            }
    /* integer paths of Abs, Neg, Sign, Relu, Clip */
    const char *iops[] = {"Abs", "Neg", "Sign", "Relu", "Clip"};
    for (size_t o = 0; o < 5; o++) {
        op_case *t = node_new(iops[o], 1);
        t->in[0] = rnd(IL_I32, 2, D(200, 300), -1000, 1000);
        compare_fast(t);
    }
}

static void test_fast_binary(void) {
    /* one_way: the output has a's shape (the pairs PRelu's slope may take) */
    static const struct {
        int ra, rb, one_way;
        int64_t a[4], b[4];
    } shapes[] = {
        {3, 3, 1, {4, 5, 6}, {4, 5, 6}},        {2, 1, 1, {2, 3}, {3}},         {2, 2, 0, {2, 1}, {1, 3}},
        {4, 4, 1, {2, 16, 9, 9}, {1, 16, 1, 1}}, {0, 2, 0, {0}, {70, 600}},      {2, 0, 1, {300, 200}, {0}},
        {3, 3, 0, {5, 1, 7}, {1, 6, 1}},         {2, 1, 1, {0, 3}, {3}},         {4, 2, 1, {3, 1, 40, 700}, {40, 1}},
        {3, 3, 1, {1, 1, 1}, {1, 1, 1}},         {2, 2, 1, {256, 512}, {256, 512}},
    };
    const char *ops[] = {"Add", "Sub", "Mul", "Div", "PRelu", "Pow"};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int pw = !strcmp(ops[o], "Pow");
            if (!strcmp(ops[o], "PRelu") && !shapes[s].one_way) continue;
            op_case *t = node_new(ops[o], 2);
            t->in[0] = rnd(IL_F32, shapes[s].ra, shapes[s].a, pw ? 0.1 : -5, 5);
            t->in[1] = rnd(IL_F32, shapes[s].rb, shapes[s].b, 0.5, 3); /* divisors away from 0 */
            compare_fast(t);
        }
    /* And, Or, Xor and Where (4-byte elements; other sizes take the reference through the fast
     * entry), bit for bit, over the same broadcasts and BERT's [batch,1,1,S] & [1,1,S,S] mask */
    static const struct {
        int ra, rb, rc;
        int64_t a[4], b[4], c[4];
    } sel[] = {
        {3, 3, 3, {4, 5, 6}, {4, 5, 6}, {4, 5, 6}},      {2, 1, 0, {2, 3}, {3}, {0}},
        {4, 4, 0, {3, 1, 1, 128}, {1, 1, 128, 128}, {0}}, {3, 3, 3, {5, 1, 7}, {1, 6, 1}, {5, 6, 1}},
        {4, 2, 1, {3, 1, 40, 700}, {40, 1}, {700}},       {2, 2, 2, {0, 3}, {1, 3}, {0, 1}},
        {2, 2, 2, {256, 512}, {256, 512}, {1, 512}},      {0, 0, 0, {0}, {0}, {0}},
    };
    const char *logic[] = {"And", "Or", "Xor"};
    for (size_t s = 0; s < sizeof sel / sizeof *sel; s++) {
        for (size_t o = 0; o < 3; o++) {
            op_case *t = node_new(logic[o], 2);
            t->in[0] = rnd(IL_BOOL, sel[s].ra, sel[s].a, 0, 2);
            t->in[1] = rnd(IL_BOOL, sel[s].rb, sel[s].b, 0, 2);
            compare_fast(t);
        }
        il_dtype wd[] = {IL_F32, IL_I32, IL_F16, IL_I64};
        for (size_t d = 0; d < 4; d++) {
            op_case *t = node_new("Where", 3);
            t->in[0] = rnd(IL_BOOL, sel[s].ra, sel[s].a, 0, 2);
            t->in[1] = rnd(wd[d], sel[s].rb, sel[s].b, -50, 50);
            t->in[2] = rnd(wd[d], sel[s].rc, sel[s].c, -50, 50);
            compare_fast(t);
        }
    }
    /* int and float64 inputs take the reference path through the fast entry */
    op_case *t = node_new("Add", 2);
    t->in[0] = rnd(IL_I64, 2, D(64, 64), -1e6, 1e6);
    t->in[1] = rnd(IL_I64, 1, D(64), -1e6, 1e6);
    compare_fast(t);
}

IL_SUITE("elementwise", {"math", test_math}, {"activations", test_activations}, {"unary_ints", test_unary_ints},
         {"clip", test_clip}, {"broadcast", test_broadcast}, {"int_arith", test_int_arith}, {"mod", test_mod},
         {"pow", test_pow}, {"compare_logic", test_compare_logic}, {"prelu_where", test_prelu_where},
         {"variadic", test_variadic}, {"errors", test_errors}, {"infer_unknown", test_infer_unknown},
         {"fast_unary", test_fast_unary}, {"fast_binary", test_fast_binary})
