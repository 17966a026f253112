/*
 * unary.c - element-wise ops with one input and one output of the same shape: math functions
 * (Sqrt, Exp, Sin, Erf, ...), activations (Relu, Sigmoid, Gelu, Selu, ...), Clip, and the tests
 * and logic that output or take bool (IsNaN, IsInf, Not, BitwiseNot).
 *
 * Most ops are one line: FLOAT_OP(Name, defaults, expression of x) declares the formula once and
 * instantiates it twice, in double and in float (<tgmath.h> picks expf or exp from the type):
 *   - Name_ref computes in double for float32 and float64 alike: the readable oracle;
 *   - Name_fast computes float32 in float precision, threaded over c->threads.
 * NUM_OP adds an integer formula for ops ONNX also defines on ints (Abs, Neg, Sign, Relu).
 * Attributes (alpha, beta, gamma, lambd, bias, approximate, detect_*) are read into a uprm
 * whose defaults each op gives as ONNX specifies them.
 *
 * PRelu, whose slope broadcasts, lives in binary.c.
 */
#include "elementwise.h"

#include <tgmath.h>

/* The attributes any op here may have, with the op's defaults filled in. */
typedef struct {
    float alpha, beta, gamma, lambd, bias;
    int tanh_approx;            /* Gelu approximate="tanh" */
    int detect_neg, detect_pos; /* IsInf */
} uprm;

#define DFLT(...) ((uprm){__VA_ARGS__})
#define NOPRM DFLT(.alpha = 0)

static uprm params(const il_kctx *c, uprm d) {
    const il_node *n = c->node;
    uprm p = d;
    p.alpha = il_attr_float(n, "alpha", d.alpha);
    p.beta = il_attr_float(n, "beta", d.beta);
    p.gamma = il_attr_float(n, "gamma", d.gamma);
    p.lambd = il_attr_float(n, "lambd", d.lambd);
    p.bias = il_attr_float(n, "bias", d.bias);
    p.tanh_approx = !strcmp(il_attr_string(n, "approximate", "none"), "tanh");
    p.detect_neg = il_attr_int(n, "detect_negative", 1) != 0;
    p.detect_pos = il_attr_int(n, "detect_positive", 1) != 0;
    return p;
}

/* ---------------------------------------------------------------- shape inference */

/* Check that input 0 is there and of an allowed dtype class. */
static il_status check_input(il_kctx *c, int allow) {
    const il_tensor *x = il_in(c, 0);
    if (!x) return il_kerr(c, IL_ERR_INVALID, "expects 1 input, got none");
    if (!ew_allowed(x->dtype, allow)) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    return IL_OK;
}

static il_status same_as_input(il_kctx *c, int allow) {
    il_status s = check_input(c, allow);
    if (s) return s;
    il_same_as(c, 0, 0);
    return IL_OK;
}

static il_status infer_float(il_kctx *c) { return same_as_input(c, ALLOW_FLOAT); }
static il_status infer_signed(il_kctx *c) { return same_as_input(c, ALLOW_FLOAT | ALLOW_SIGNED); }
static il_status infer_numeric(il_kctx *c) { return same_as_input(c, ALLOW_NUM); }
static il_status infer_bool(il_kctx *c) { return same_as_input(c, ALLOW_BOOL); }
static il_status infer_int(il_kctx *c) { return same_as_input(c, ALLOW_INT); }

/* IsNaN, IsInf: float in, bool out. */
static il_status infer_float_test(il_kctx *c) {
    il_status s = check_input(c, ALLOW_FLOAT);
    if (s) return s;
    il_set_out(c, 0, IL_BOOL, c->in[0]->rank, c->in[0]->dims);
    return IL_OK;
}

static il_status infer_gelu(il_kctx *c) {
    const char *a = il_attr_string(c->node, "approximate", "none");
    if (strcmp(a, "none") && strcmp(a, "tanh"))
        return il_kerr(c, IL_ERR_INVALID, "approximate must be \"none\" or \"tanh\", got \"%s\"", a);
    return infer_float(c);
}

/* ---------------------------------------------------------------- float formulas */

/* Clamp that keeps NaN (fmin/fmax would drop it). */
#define CLAMP(v, lo, hi) ((v) < (lo) ? (lo) : (v) > (hi) ? (hi) : (v))

/* tanh in float through expm1f: tanh|x| = -e / (2 + e) with e = expm1(-2|x|), as accurate as
 * tanhf (expm1 keeps small |x| exact) and about twice as fast in glibc. TANH picks it for
 * float and libm's tanh for double. */
static inline float tanh_s(float x) {
    float e = expm1f(-2 * fabsf(x));
    return copysignf(-e / (2 + e), x);
}
#define TANH(x) _Generic((x), float: tanh_s, default: tanh)(x)

/* 1 / (1 + exp(-x)) with one exp that cannot overflow: e = exp(-|x|). */
static inline double sigmoid_d(double x) {
    double e = exp(-fabs(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}
static inline float sigmoid_s(float x) {
    float e = expf(-fabsf(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}
#define SIGMOID(x) _Generic((x), float: sigmoid_s, default: sigmoid_d)(x)

/* FLOAT_OP(Name, defaults, expr): see the file comment. In expr, x is the element, p the
 * attributes and T the type the formula is instantiated in (double or float). */
#define FLOAT_OP(NAME, D, EXPR)                                                          \
    static inline double NAME##_d(double x, const uprm *p) {                             \
        typedef double T;                                                                \
        (void)p, (void)sizeof(T);                                                        \
        return (EXPR);                                                                   \
    }                                                                                    \
    static inline float NAME##_s(float x, const uprm *p) {                               \
        typedef float T;                                                                 \
        (void)p, (void)sizeof(T);                                                        \
        return (float)(EXPR);                                                            \
    }                                                                                    \
    static il_status NAME##_ref(il_kctx *c) { return float_ref(c, NAME##_d, D); }        \
    static il_status NAME##_fast(il_kctx *c) {                                           \
        uprm p = params(c, D);                                                           \
        int64_t n = il_tensor_numel(c->in[0]);                                           \
        int nt = ew_threads(c, n);                                                       \
        if (c->in[0]->dtype == IL_F32) {                                                 \
            const float *x = c->in[0]->data;                                             \
            float *y = c->out[0]->data;                                                  \
            EW_PAR_FOR(nt, i, n) y[i] = NAME##_s(x[i], &p);                              \
        } else {                                                                         \
            const double *x = c->in[0]->data;                                            \
            double *y = c->out[0]->data;                                                 \
            EW_PAR_FOR(nt, i, n) y[i] = NAME##_d(x[i], &p);                              \
        }                                                                                \
        return IL_OK;                                                                    \
    }

/* The reference loop of every FLOAT_OP: y = f(x) in double, stored in the input's type. */
static il_status float_ref(il_kctx *c, double (*f)(double, const uprm *), uprm d) {
    uprm p = params(c, d);
    int64_t n = il_tensor_numel(c->in[0]);
    EW_FLOATS(c->in[0]->dtype, {
        const T *x = c->in[0]->data;
        T *y = c->out[0]->data;
        for (int64_t i = 0; i < n; i++) y[i] = (T)f((double)x[i], &p);
    })
    return IL_OK;
}

/* Math functions. */
FLOAT_OP(Sqrt, NOPRM, sqrt(x))
FLOAT_OP(Exp, NOPRM, exp(x))
FLOAT_OP(Log, NOPRM, log(x))
FLOAT_OP(Reciprocal, NOPRM, 1 / x)
FLOAT_OP(Floor, NOPRM, floor(x))
FLOAT_OP(Ceil, NOPRM, ceil(x))
FLOAT_OP(Round, NOPRM, nearbyint(x)) /* the default rounding mode: half to even */
FLOAT_OP(Sin, NOPRM, sin(x))
FLOAT_OP(Cos, NOPRM, cos(x))
FLOAT_OP(Tan, NOPRM, tan(x))
FLOAT_OP(Asin, NOPRM, asin(x))
FLOAT_OP(Acos, NOPRM, acos(x))
FLOAT_OP(Atan, NOPRM, atan(x))
FLOAT_OP(Sinh, NOPRM, sinh(x))
FLOAT_OP(Cosh, NOPRM, cosh(x))
FLOAT_OP(Asinh, NOPRM, asinh(x))
FLOAT_OP(Acosh, NOPRM, acosh(x))
FLOAT_OP(Atanh, NOPRM, atanh(x))
FLOAT_OP(Erf, NOPRM, erf(x))
FLOAT_OP(Tanh, NOPRM, TANH(x))

/* Activations. Formulas follow the ONNX operator docs; expm1/log1p forms avoid cancellation. */
FLOAT_OP(LeakyRelu, DFLT(.alpha = 0.01f), x < 0 ? p->alpha * x : x)
FLOAT_OP(Elu, DFLT(.alpha = 1.0f), x < 0 ? p->alpha * expm1(x) : x)
FLOAT_OP(Selu, DFLT(.alpha = 1.67326319217681884765625f, .gamma = 1.05070102519989013671875f),
         x > 0 ? p->gamma * x : p->gamma * p->alpha * expm1(x))
FLOAT_OP(Celu, DFLT(.alpha = 1.0f), x > 0 ? x : p->alpha * expm1(x / p->alpha))
FLOAT_OP(Sigmoid, NOPRM, SIGMOID(x))
FLOAT_OP(HardSigmoid, DFLT(.alpha = 0.2f, .beta = 0.5f), CLAMP(p->alpha * x + p->beta, 0, 1))
FLOAT_OP(HardSwish, NOPRM, x * CLAMP(x / 6 + (T)0.5, 0, 1))
FLOAT_OP(Softplus, NOPRM, (x > 0 ? x : 0) + log1p(exp(-fabs(x))))
FLOAT_OP(Mish, NOPRM, x * TANH((x > 0 ? x : 0) + log1p(exp(-fabs(x)))))
FLOAT_OP(Softsign, NOPRM, x / (1 + fabs(x)))
FLOAT_OP(ThresholdedRelu, DFLT(.alpha = 1.0f), x > p->alpha ? x : 0)
FLOAT_OP(Shrink, DFLT(.lambd = 0.5f), x < -p->lambd ? x + p->bias : x > p->lambd ? x - p->bias : 0)
/* approximate="none": x * Phi(x); "tanh": the tanh approximation with sqrt(2/pi). */
FLOAT_OP(Gelu, NOPRM,
         p->tanh_approx ? (T)0.5 * x * (1 + TANH((T)0.7978845608028654 * (x + (T)0.044715 * x * x * x)))
                        : (T)0.5 * x * (1 + erf(x * (T)0.7071067811865476)))

/* ---------------------------------------------------------------- ops on floats and ints */

/* Two's-complement negation without signed overflow (-INT_MIN wraps to INT_MIN, as ORT). */
#define NEG_WRAP(T, v) ((T)(0 - (uint64_t)(v)))

/* NUM_OP(Name, float expr, int expr): FLOAT_OP for float32/float64 plus an integer loop. */
#define NUM_OP(NAME, FEXPR, IEXPR)                                                                       \
    FLOAT_OP(NAME##_float, NOPRM, FEXPR)                                                                 \
    static il_status NAME##_int(il_kctx *c, int nt) {                                                    \
        int64_t n = il_tensor_numel(c->in[0]);                                                           \
        EW_INTS(c->in[0]->dtype, {                                                                       \
            const T *xs = c->in[0]->data;                                                                \
            T *y = c->out[0]->data;                                                                      \
            EW_PAR_FOR(nt, i, n) {                                                                       \
                T x = xs[i];                                                                             \
                y[i] = (T)(IEXPR);                                                                       \
            }                                                                                            \
        })                                                                                               \
        return IL_OK;                                                                                    \
    }                                                                                                    \
    static il_status NAME##_ref(il_kctx *c) {                                                            \
        return ew_is_int(c->in[0]->dtype) ? NAME##_int(c, 1) : NAME##_float_ref(c);                      \
    }                                                                                                    \
    static il_status NAME##_fast(il_kctx *c) {                                                           \
        int nt = ew_threads(c, il_tensor_numel(c->in[0]));                                               \
        return ew_is_int(c->in[0]->dtype) ? NAME##_int(c, nt) : NAME##_float_fast(c);                    \
    }

NUM_OP(Abs, fabs(x), x < 0 ? NEG_WRAP(T, x) : x)
NUM_OP(Neg, -x, NEG_WRAP(T, x))
NUM_OP(Sign, x > 0 ? 1 : x < 0 ? -1 : x, (x > 0) - (x < 0)) /* float NaN stays NaN */
NUM_OP(Relu, x < 0 ? 0 : x, x < 0 ? 0 : x)                  /* float NaN stays NaN */

/* ---------------------------------------------------------------- bool results and inputs */

static il_status isnan_ref(il_kctx *c) {
    int64_t n = il_tensor_numel(c->in[0]);
    uint8_t *y = c->out[0]->data;
    EW_FLOATS(c->in[0]->dtype, {
        const T *x = c->in[0]->data;
        for (int64_t i = 0; i < n; i++) y[i] = isnan(x[i]) != 0;
    })
    return IL_OK;
}

/* IsInf: true for +inf when detect_positive, for -inf when detect_negative. */
static il_status isinf_ref(il_kctx *c) {
    uprm p = params(c, NOPRM);
    int64_t n = il_tensor_numel(c->in[0]);
    uint8_t *y = c->out[0]->data;
    EW_FLOATS(c->in[0]->dtype, {
        const T *x = c->in[0]->data;
        for (int64_t i = 0; i < n; i++) y[i] = isinf(x[i]) && (x[i] > 0 ? p.detect_pos : p.detect_neg);
    })
    return IL_OK;
}

static il_status not_ref(il_kctx *c) {
    int64_t n = il_tensor_numel(c->in[0]);
    const uint8_t *x = c->in[0]->data;
    uint8_t *y = c->out[0]->data;
    for (int64_t i = 0; i < n; i++) y[i] = !x[i];
    return IL_OK;
}

static il_status bitwise_not_ref(il_kctx *c) {
    int64_t n = il_tensor_numel(c->in[0]);
    EW_INTS(c->in[0]->dtype, {
        const T *x = c->in[0]->data;
        T *y = c->out[0]->data;
        for (int64_t i = 0; i < n; i++) y[i] = (T)~x[i];
    })
    return IL_OK;
}

/* ---------------------------------------------------------------- Clip */

/* Clip: min/max are float attributes before opset 11, optional scalar inputs 1 and 2 since. */
static il_status clip_infer(il_kctx *c) {
    il_status s = check_input(c, c->opset < 11 ? ALLOW_FLOAT : ALLOW_NUM);
    if (s) return s;
    for (int i = 1; i <= 2 && c->opset >= 11; i++) {
        const il_tensor *b = il_in(c, i);
        if (!b) continue;
        const char *what = i == 1 ? "min" : "max";
        if (b->dtype != c->in[0]->dtype)
            return il_kerr(c, IL_ERR_TYPE, "%s is %s but the input is %s", what, il_dtype_name(b->dtype),
                           il_dtype_name(c->in[0]->dtype));
        if (il_shape_known(b) && il_tensor_numel(b) != 1) {
            char sb[128];
            return il_kerr(c, IL_ERR_SHAPE, "%s must be a scalar, got shape %s", what,
                           il_shape_str(b->rank, b->dims, sb, sizeof sb));
        }
    }
    il_same_as(c, 0, 0);
    return IL_OK;
}

/* y = min(max(x, lo), hi), each bound applied only when given (so NaN passes through). */
static il_status clip_run(il_kctx *c, int nt) {
    const il_tensor *mn = c->opset >= 11 ? il_in(c, 1) : NULL, *mx = c->opset >= 11 ? il_in(c, 2) : NULL;
    const il_attr *amn = c->opset < 11 ? il_node_attr(c->node, "min") : NULL;
    const il_attr *amx = c->opset < 11 ? il_node_attr(c->node, "max") : NULL;
    int64_t n = il_tensor_numel(c->in[0]);
    EW_NUMERIC(c->in[0]->dtype, {
        int has_lo = mn || amn, has_hi = mx || amx;
        T lo = mn ? *(const T *)mn->data : amn ? (T)il_attr_float(c->node, "min", 0) : 0;
        T hi = mx ? *(const T *)mx->data : amx ? (T)il_attr_float(c->node, "max", 0) : 0;
        const T *x = c->in[0]->data;
        T *y = c->out[0]->data;
        EW_PAR_FOR(nt, i, n) {
            T v = x[i];
            if (has_lo && v < lo) v = lo;
            if (has_hi && v > hi) v = hi;
            y[i] = v;
        }
    })
    return IL_OK;
}

static il_status clip_ref(il_kctx *c) { return clip_run(c, 1); }
static il_status clip_fast(il_kctx *c) { return clip_run(c, ew_threads(c, il_tensor_numel(c->in[0]))); }

/* ---------------------------------------------------------------- the table */

#define FOP(NAME, SINCE) {"", #NAME, SINCE, infer_float, NAME##_ref, NAME##_fast, 0}

const il_op il_ops_unary[] = {
    FOP(Sqrt, 1),
    FOP(Exp, 1),
    FOP(Log, 1),
    FOP(Reciprocal, 1),
    FOP(Floor, 1),
    FOP(Ceil, 1),
    FOP(Round, 11),
    FOP(Sin, 7),
    FOP(Cos, 7),
    FOP(Tan, 7),
    FOP(Asin, 7),
    FOP(Acos, 7),
    FOP(Atan, 7),
    FOP(Sinh, 9),
    FOP(Cosh, 9),
    FOP(Asinh, 9),
    FOP(Acosh, 9),
    FOP(Atanh, 9),
    FOP(Erf, 9),
    FOP(Tanh, 1),
    FOP(LeakyRelu, 1),
    FOP(Elu, 1),
    FOP(Selu, 1),
    FOP(Celu, 12),
    FOP(Sigmoid, 1),
    FOP(HardSigmoid, 1),
    FOP(HardSwish, 14),
    FOP(Softplus, 1),
    FOP(Mish, 18),
    FOP(Softsign, 1),
    FOP(ThresholdedRelu, 10),
    FOP(Shrink, 9),
    {"", "Gelu", 20, infer_gelu, Gelu_ref, Gelu_fast, 0},
    {"", "Abs", 1, infer_numeric, Abs_ref, Abs_fast, 0},
    {"", "Neg", 1, infer_signed, Neg_ref, Neg_fast, 0},
    {"", "Sign", 9, infer_numeric, Sign_ref, Sign_fast, 0},
    {"", "Relu", 1, infer_signed, Relu_ref, Relu_fast, 0},
    {"", "Clip", 1, clip_infer, clip_ref, clip_fast, 0},
    {"", "IsNaN", 9, infer_float_test, isnan_ref, NULL, 0},
    {"", "IsInf", 10, infer_float_test, isinf_ref, NULL, 0},
    {"", "Not", 1, infer_bool, not_ref, NULL, 0},
    {"", "BitwiseNot", 18, infer_int, bitwise_not_ref, NULL, 0},
    {0},
};
