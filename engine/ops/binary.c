/*
 * binary.c - element-wise ops over inputs that broadcast numpy-style: arithmetic (Add, Sub,
 * Mul, Div, Mod, Pow), comparisons (Equal, Less, ... -> bool), logic (And, Or, Xor), bit ops
 * (BitShift, BitwiseAnd/Or/Xor), PRelu, Where (three inputs) and the variadic Min, Max, Sum,
 * Mean (1..N inputs).
 *
 * Every reference kernel walks the output in row-major order with a broadcast iterator (bcast)
 * that keeps, for each input, the flat offset of the element that maps to the current output
 * element; the per-element formula is written once and instantiated per C type with the
 * EW_* switches of elementwise.h.
 *
 * Integer semantics: Add/Sub/Mul wrap (two's complement, as ORT); Div truncates toward zero;
 * integer division or Mod by zero gives 0 instead of trapping; INT_MIN / -1 wraps.
 *
 * The fast kernels for float32 Add, Sub, Mul, Div and PRelu merge dims the inputs walk alike,
 * then run rows of the innermost dim, where each input is either contiguous or a single value,
 * threaded over c->threads; float32 Pow by one exponent is a threaded loop. Other dtypes and
 * shapes fall back to the reference.
 */
#include "elementwise.h"

/* ---------------------------------------------------------------- broadcast iterator */

typedef struct {
    int rank, n; /* output rank, number of inputs (at most 3) */
    int64_t dims[IL_MAX_RANK], idx[IL_MAX_RANK];
    int64_t stride[3][IL_MAX_RANK]; /* per input, 0 along broadcast dims */
    int64_t off[3];                 /* per input, flat offset of the current element */
} bcast;

static void bc_init(bcast *it, const il_tensor *out, int n, const il_tensor *const *in) {
    memset(it, 0, sizeof *it);
    it->rank = out->rank;
    it->n = n;
    memcpy(it->dims, out->dims, (size_t)out->rank * sizeof(int64_t));
    for (int k = 0; k < n; k++) il_broadcast_strides(in[k], out->rank, out->dims, it->stride[k]);
}

/* Step to the next output element: an odometer over the output shape. */
static inline void bc_next(bcast *it) {
    for (int d = it->rank - 1; d >= 0; d--) {
        if (++it->idx[d] < it->dims[d]) {
            for (int k = 0; k < it->n; k++) it->off[k] += it->stride[k][d];
            return;
        }
        it->idx[d] = 0;
        for (int k = 0; k < it->n; k++) it->off[k] -= it->stride[k][d] * (it->dims[d] - 1);
    }
}

/* The two operands as views, with the broadcasting of opsets before 7 turned into numpy's:
 *  - broadcast=1 with an axis aligned B's dims with A's starting at axis (B [3] against
 *    A [2,3,4] at axis 1 reads as [3,1]);
 *  - PRelu took a [C] slope per channel, dim 1 of X (slope [3] against X [2,3,4,5] reads as
 *    [3,1,1]).
 * Padding B with trailing 1s does both. */
static void operands(const il_kctx *c, il_tensor *a, il_tensor *b) {
    *a = *c->in[0];
    *b = *c->in[1];
    if (c->opset >= 7 || a->rank < 0 || b->rank < 0) return;
    int64_t axis;
    if (!strcmp(c->node->op_type, "PRelu")) {
        if (b->rank != 1 || b->dims[0] == 1 || a->rank < 2) return;
        axis = 1;
    } else {
        const il_attr *ax = il_node_attr(c->node, "axis");
        if (!ax || !il_attr_int(c->node, "broadcast", 0)) return;
        axis = ax->i < 0 ? ax->i + a->rank : ax->i;
    }
    while (axis >= 0 && b->rank < a->rank - axis && b->rank < IL_MAX_RANK) b->dims[b->rank++] = 1;
}

/* out[i] = EXPR over the broadcast of the views A and B; in EXPR, a and b are the elements
 * (types TA, TB). Expects A, B and c in scope. */
#define BIN_LOOP(TA, TB, TO, EXPR)                                  \
    do {                                                            \
        const il_tensor *ab_[2] = {&A, &B};                         \
        const TA *pa_ = A.data;                                     \
        const TB *pb_ = B.data;                                     \
        TO *po_ = c->out[0]->data;                                  \
        int64_t n_ = il_tensor_numel(c->out[0]);                    \
        bcast it_;                                                  \
        bc_init(&it_, c->out[0], 2, ab_);                           \
        for (int64_t i_ = 0; i_ < n_; i_++, bc_next(&it_)) {        \
            TA a = pa_[it_.off[0]];                                 \
            TB b = pb_[it_.off[1]];                                 \
            po_[i_] = (TO)(EXPR);                                   \
        }                                                           \
    } while (0)

/* ---------------------------------------------------------------- shape inference */

static il_status need_inputs(il_kctx *c, int n) {
    for (int i = 0; i < n; i++)
        if (!il_in(c, i)) return il_kerr(c, IL_ERR_INVALID, "expects %d inputs, input %d is missing", n, i);
    return IL_OK;
}

static il_status check_dtype(il_kctx *c, il_dtype t, int allow) {
    if (ew_allowed(t, allow)) return IL_OK;
    return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(t));
}

static il_status check_same(il_kctx *c, il_dtype a, il_dtype b) {
    if (a == b) return IL_OK;
    return il_kerr(c, IL_ERR_TYPE, "input dtypes %s and %s differ", il_dtype_name(a), il_dtype_name(b));
}

/* out = broadcast of t's shape into (*r, dims); rank -1 (unknown) is catching. */
static il_status fold_shape(il_kctx *c, const il_tensor *t, int *r, int64_t *dims) {
    if (*r < 0 || t->rank < 0) {
        *r = -1;
        return IL_OK;
    }
    int64_t cur[IL_MAX_RANK];
    memcpy(cur, dims, sizeof cur);
    return il_broadcast_shape(c, *r, cur, t->rank, t->dims, r, dims);
}

/* Two inputs of allowed dtypes (the same dtype unless mixed), output dtype out (IL_UNDEFINED:
 * the inputs' dtype) with the broadcast shape. */
static il_status bin_infer_as(il_kctx *c, int allow, int mixed, il_dtype out) {
    il_status s = need_inputs(c, 2);
    if (s) return s;
    il_tensor A, B;
    operands(c, &A, &B);
    if ((s = check_dtype(c, A.dtype, allow)) || (s = check_dtype(c, B.dtype, allow))) return s;
    if (!mixed && (s = check_same(c, A.dtype, B.dtype))) return s;
    int r = A.rank;
    int64_t dims[IL_MAX_RANK] = {0};
    if (r > 0) memcpy(dims, A.dims, (size_t)r * sizeof(int64_t));
    if ((s = fold_shape(c, &B, &r, dims))) return s;
    il_set_out(c, 0, out ? out : A.dtype, r, dims);
    return IL_OK;
}

static il_status infer_arith(il_kctx *c) { return bin_infer_as(c, ALLOW_NUM, 0, IL_UNDEFINED); }
static il_status infer_int(il_kctx *c) { return bin_infer_as(c, ALLOW_INT, 0, IL_UNDEFINED); }
static il_status infer_pow(il_kctx *c) { return bin_infer_as(c, ALLOW_NUM, 1, IL_UNDEFINED); }
static il_status infer_equal(il_kctx *c) { return bin_infer_as(c, ALLOW_NUM | ALLOW_BOOL, 0, IL_BOOL); }
static il_status infer_compare(il_kctx *c) { return bin_infer_as(c, ALLOW_NUM, 0, IL_BOOL); }
static il_status infer_logic(il_kctx *c) { return bin_infer_as(c, ALLOW_BOOL, 0, IL_BOOL); }

static il_status infer_mod(il_kctx *c) {
    int64_t fm = il_attr_int(c->node, "fmod", 0);
    if (fm != 0 && fm != 1) return il_kerr(c, IL_ERR_INVALID, "fmod must be 0 or 1, got %lld", (long long)fm);
    return infer_arith(c);
}

static il_status infer_bitshift(il_kctx *c) {
    const char *d = il_attr_string(c->node, "direction", "");
    if (strcmp(d, "LEFT") && strcmp(d, "RIGHT"))
        return il_kerr(c, IL_ERR_INVALID, "direction must be \"LEFT\" or \"RIGHT\", got \"%s\"", d);
    return bin_infer_as(c, ALLOW_UNSIGNED, 0, IL_UNDEFINED);
}

/* PRelu: slope broadcasts to X one way; the output has X's shape. */
static il_status infer_prelu(il_kctx *c) {
    il_status s = bin_infer_as(c, ALLOW_NUM, 0, IL_UNDEFINED);
    if (s) return s;
    const il_tensor *x = c->in[0], *y = c->out[0];
    if (il_shape_known(x) && il_shape_known(y) &&
        (y->rank != x->rank || memcmp(y->dims, x->dims, (size_t)x->rank * sizeof(int64_t)))) {
        char sx[128], ss[128];
        return il_kerr(c, IL_ERR_SHAPE, "slope shape %s does not broadcast to input shape %s",
                       il_shape_str(c->in[1]->rank, c->in[1]->dims, ss, sizeof ss),
                       il_shape_str(x->rank, x->dims, sx, sizeof sx));
    }
    il_same_as(c, 0, 0);
    return IL_OK;
}

/* ---------------------------------------------------------------- arithmetic */

/* Integer arithmetic modulo 2^bits, with no signed overflow. */
#define WRAP(T, a, OP, b) ((T)((uint64_t)(a)OP(uint64_t)(b)))

static inline int64_t idiv_s(int64_t a, int64_t b) {
    if (b == 0) return 0;
    if (b == -1) return (int64_t)(0 - (uint64_t)a); /* INT64_MIN / -1 wraps */
    return a / b;
}

/* Mod: fmod=1 is C fmod/% (sign of the dividend); fmod=0 takes the divisor's sign (Python). */
static inline int64_t imod_s(int64_t a, int64_t b, int fm) {
    if (b == 0 || b == -1) return 0;
    int64_t r = a % b;
    if (!fm && r != 0 && (r < 0) != (b < 0)) r += b;
    return r;
}
static inline double fmod_py(double a, double b, int fm) {
    double r = fmod(a, b);
    if (!fm && r != 0 && (r < 0) != (b < 0)) r += b;
    return r;
}

/* NAME_ref: broadcast the operands A and B, then run LOOPS (BIN_LOOPs in dtype switches). */
#define BINARY_REF(NAME, LOOPS)                 \
    static il_status NAME##_ref(il_kctx *c) {   \
        il_tensor A, B;                         \
        operands(c, &A, &B);                    \
        LOOPS;                                  \
        return IL_OK;                           \
    }

#define ARITH(NAME, FEXPR, IEXPR) \
    BINARY_REF(NAME, EW_FLOATS(A.dtype, BIN_LOOP(T, T, T, FEXPR)) EW_INTS(A.dtype, BIN_LOOP(T, T, T, IEXPR)))

ARITH(Add, a + b, WRAP(T, a, +, b))
ARITH(Sub, a - b, WRAP(T, a, -, b))
ARITH(Mul, a * b, WRAP(T, a, *, b))
ARITH(Div, a / b, EW_IS_SIGNED(T) ? (T)idiv_s(a, b) : (T)(b ? a / b : 0))
ARITH(PRelu, a < 0 ? a * b : a, a < 0 ? WRAP(T, a, *, b) : a)

#define INT_OP(NAME, EXPR) BINARY_REF(NAME, EW_INTS(A.dtype, BIN_LOOP(T, T, T, EXPR)))

INT_OP(BitwiseAnd, a & b)
INT_OP(BitwiseOr, a | b)
INT_OP(BitwiseXor, a ^ b)

static il_status Mod_ref(il_kctx *c) {
    int fm = il_attr_int(c->node, "fmod", 0) != 0;
    il_tensor A, B;
    operands(c, &A, &B);
    EW_FLOATS(A.dtype, BIN_LOOP(T, T, T, fmod_py(a, b, fm)))
    EW_INTS(A.dtype, BIN_LOOP(T, T, T, EW_IS_SIGNED(T) ? (T)imod_s(a, b, fm) : (T)(b ? a % b : 0)))
    return IL_OK;
}

static il_status BitShift_ref(il_kctx *c) {
    int left = !strcmp(il_attr_string(c->node, "direction", ""), "LEFT");
    il_tensor A, B;
    operands(c, &A, &B);
    /* shifting by the width or more is undefined in C; every bit is shifted out */
    EW_INTS(A.dtype, BIN_LOOP(T, T, T, (uint64_t)b >= 8 * sizeof(T) ? 0 : left ? (T)(a << b) : (T)(a >> b)))
    return IL_OK;
}

/* base^e in integers, wrapping; a negative e gives 1/base^|e| truncated. */
static int64_t ipow(int64_t base, int64_t e) {
    if (e < 0) return base == 1 ? 1 : base == -1 ? (e % 2 ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)base;
    for (; e; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return (int64_t)r;
}

/* double to int64 without undefined behaviour: NaN is 0, out of range saturates. */
static int64_t sat_i64(double v) {
    if (isnan(v)) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

/* Pow: the output has the base's dtype; the exponent may be of any numeric dtype. */
static il_status Pow_ref(il_kctx *c) {
    il_tensor A, B;
    operands(c, &A, &B);
    const il_tensor *ab[2] = {&A, &B};
    int64_t n = il_tensor_numel(c->out[0]);
    int float_base = ew_is_float(A.dtype), int_exp = ew_is_int(B.dtype);
    bcast it;
    bc_init(&it, c->out[0], 2, ab);
    EW_NUMERIC(A.dtype, {
        const T *pa = A.data;
        T *po = c->out[0]->data;
        for (int64_t i = 0; i < n; i++, bc_next(&it)) {
            T a = pa[it.off[0]];
            if (float_base) po[i] = (T)pow((double)a, il_tensor_get(&B, it.off[1]));
            else if (int_exp) po[i] = (T)ipow((int64_t)a, il_int_at(&B, it.off[1]));
            else po[i] = (T)sat_i64(pow((double)a, il_tensor_get(&B, it.off[1])));
        }
    })
    return IL_OK;
}

/* ---------------------------------------------------------------- comparisons and logic */

#define COMPARE(NAME, EXPR) BINARY_REF(NAME, EW_ALL(A.dtype, BIN_LOOP(T, T, uint8_t, EXPR)))

COMPARE(Equal, a == b)
COMPARE(Less, a < b)
COMPARE(Greater, a > b)
COMPARE(LessOrEqual, a <= b)
COMPARE(GreaterOrEqual, a >= b)

#define LOGIC(NAME, EXPR) BINARY_REF(NAME, BIN_LOOP(uint8_t, uint8_t, uint8_t, EXPR))

LOGIC(And, a && b)
LOGIC(Or, a || b)
LOGIC(Xor, !a != !b)

/* ---------------------------------------------------------------- Where */

static il_status where_infer(il_kctx *c) {
    il_status s = need_inputs(c, 3);
    if (s) return s;
    const il_tensor *cond = c->in[0], *x = c->in[1], *y = c->in[2];
    if (cond->dtype != IL_BOOL) return il_kerr(c, IL_ERR_TYPE, "condition must be bool, got %s", il_dtype_name(cond->dtype));
    if ((s = check_same(c, x->dtype, y->dtype))) return s;
    if (!il_dtype_size(x->dtype)) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    int r = cond->rank;
    int64_t dims[IL_MAX_RANK] = {0};
    if (r > 0) memcpy(dims, cond->dims, (size_t)r * sizeof(int64_t));
    if ((s = fold_shape(c, x, &r, dims)) || (s = fold_shape(c, y, &r, dims))) return s;
    il_set_out(c, 0, x->dtype, r, dims);
    return IL_OK;
}

/* out = cond ? x : y. Moves elements of any dtype (float16 too), so it copies by element size. */
static il_status where_ref(il_kctx *c) {
    const il_tensor *in[3] = {c->in[0], c->in[1], c->in[2]};
    int64_t n = il_tensor_numel(c->out[0]);
    const uint8_t *cond = in[0]->data;
    bcast it;
    bc_init(&it, c->out[0], 3, in);
#define WHERE_LOOP(U)                                                                      \
    {                                                                                      \
        const U *x = in[1]->data, *y = in[2]->data;                                        \
        U *o = c->out[0]->data;                                                            \
        for (int64_t i = 0; i < n; i++, bc_next(&it)) o[i] = cond[it.off[0]] ? x[it.off[1]] : y[it.off[2]]; \
        break;                                                                             \
    }
    switch (il_dtype_size(c->out[0]->dtype)) {
    case 1: WHERE_LOOP(uint8_t)
    case 2: WHERE_LOOP(uint16_t)
    case 4: WHERE_LOOP(uint32_t)
    case 8: WHERE_LOOP(uint64_t)
    default: return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(c->out[0]->dtype));
    }
#undef WHERE_LOOP
    return IL_OK;
}

/* ---------------------------------------------------------------- Min, Max, Sum, Mean */

/* 1..N inputs of one dtype, all broadcast together. */
static il_status variadic_infer(il_kctx *c, int allow) {
    if (c->n_in < 1) return il_kerr(c, IL_ERR_INVALID, "expects at least 1 input");
    il_status s = need_inputs(c, c->n_in);
    if (s) return s;
    const il_tensor *x = c->in[0];
    if ((s = check_dtype(c, x->dtype, allow))) return s;
    int r = x->rank;
    int64_t dims[IL_MAX_RANK] = {0};
    if (r > 0) memcpy(dims, x->dims, (size_t)r * sizeof(int64_t));
    for (int k = 1; k < c->n_in; k++) {
        if ((s = check_same(c, x->dtype, c->in[k]->dtype))) return s;
        if ((s = fold_shape(c, c->in[k], &r, dims))) return s;
    }
    il_set_out(c, 0, x->dtype, r, dims);
    return IL_OK;
}

static il_status infer_minmax(il_kctx *c) { return variadic_infer(c, ALLOW_NUM); }
static il_status infer_summean(il_kctx *c) { return variadic_infer(c, ALLOW_FLOAT); }

enum { V_MIN, V_MAX, V_SUM, V_MEAN };

/* y = x0 broadcast, then y = op(y, xk) for each further input; Mean divides the sum by N.
 * Min and Max propagate NaN (as numpy's minimum/maximum, the ONNX reference). */
static il_status variadic_ref(il_kctx *c, int op) {
    il_tensor *Y = c->out[0];
    int64_t n = il_tensor_numel(Y);
    EW_NUMERIC(Y->dtype, {
        T *y = Y->data;
        for (int k = 0; k < c->n_in; k++) {
            const T *x = c->in[k]->data;
            const il_tensor *in = c->in[k];
            bcast it;
            bc_init(&it, Y, 1, &in);
            for (int64_t i = 0; i < n; i++, bc_next(&it)) {
                T v = x[it.off[0]], u = y[i];
                if (k == 0) y[i] = v;
                else if (op == V_MIN) y[i] = (u < v || u != u) ? u : v;
                else if (op == V_MAX) y[i] = (u > v || u != u) ? u : v;
                else y[i] = (T)(u + v); /* Sum, Mean: float only */
            }
        }
        if (op == V_MEAN)
            for (int64_t i = 0; i < n; i++) y[i] = (T)(y[i] / c->n_in);
    })
    return IL_OK;
}

static il_status Min_ref(il_kctx *c) { return variadic_ref(c, V_MIN); }
static il_status Max_ref(il_kctx *c) { return variadic_ref(c, V_MAX); }
static il_status Sum_ref(il_kctx *c) { return variadic_ref(c, V_SUM); }
static il_status Mean_ref(il_kctx *c) { return variadic_ref(c, V_MEAN); }

/* ---------------------------------------------------------------- fast float32 kernels */

enum { F_ADD, F_SUB, F_MUL, F_DIV, F_PRELU };

/* One row of m elements; sa, sb are 1 (contiguous) or 0 (one value repeated). Written out per
 * stride pattern so the compiler vectorizes each. */
#define ROW(EXPR)                                                          \
    if (sa && sb)                                                          \
        for (int64_t j = 0; j < m; j++) {                                  \
            float x = a[j], y = b[j];                                      \
            o[j] = EXPR;                                                   \
        }                                                                  \
    else if (sa) {                                                         \
        float y = b[0];                                                    \
        for (int64_t j = 0; j < m; j++) {                                  \
            float x = a[j];                                                \
            o[j] = EXPR;                                                   \
        }                                                                  \
    } else if (sb) {                                                       \
        float x = a[0];                                                    \
        for (int64_t j = 0; j < m; j++) {                                  \
            float y = b[j];                                                \
            o[j] = EXPR;                                                   \
        }                                                                  \
    } else {                                                               \
        float x = a[0], y = b[0], v = EXPR;                                \
        for (int64_t j = 0; j < m; j++) o[j] = v;                          \
    }

static void row(int op, float *o, const float *a, int64_t sa, const float *b, int64_t sb, int64_t m) {
    switch (op) {
    case F_ADD: ROW(x + y) break;
    case F_SUB: ROW(x - y) break;
    case F_MUL: ROW(x * y) break;
    case F_DIV: ROW(x / y) break;
    case F_PRELU: ROW(x < 0 ? x * y : x) break;
    }
}

/* Broadcast geometry of up to three inputs with dims of size 1 dropped and neighbouring dims
 * merged where every input steps through them alike (contiguous, or repeated): same shapes
 * become one dim; [N,C,H,W] + [1,C,1,1] becomes [N, C, H*W]. The last dim's strides are 0 or 1. */
typedef struct {
    int rank, n;
    int64_t dims[IL_MAX_RANK], s[3][IL_MAX_RANK];
} geom;

static void geom_init(geom *g, const il_tensor *out, int n_in, const il_tensor *const *in) {
    int64_t s[3][IL_MAX_RANK];
    g->n = n_in;
    for (int i = 0; i < n_in; i++) il_broadcast_strides(in[i], out->rank, out->dims, s[i]);
    g->rank = 0;
    for (int d = 0; d < out->rank; d++) {
        int64_t n = out->dims[d];
        if (n == 1) continue;
        int r = g->rank - 1, alike = r >= 0;
        for (int i = 0; i < n_in && alike; i++) alike = g->s[i][r] == s[i][d] * n;
        if (alike) {
            g->dims[r] *= n;
        } else {
            r = g->rank++;
            g->dims[r] = n;
        }
        for (int i = 0; i < n_in; i++) g->s[i][r] = s[i][d];
    }
    if (g->rank == 0) { /* every dim is 1: one element */
        g->rank = 1;
        g->dims[0] = 1;
        for (int i = 0; i < n_in; i++) g->s[i][0] = 0;
    }
}

/* Element offsets of row r (all but the last merged dim) in each input. */
static void geom_row(const geom *g, int64_t r, int64_t *off) {
    for (int i = 0; i < g->n; i++) off[i] = 0;
    for (int d = g->rank - 2; d >= 0; d--) {
        int64_t i = r % g->dims[d];
        r /= g->dims[d];
        for (int k = 0; k < g->n; k++) off[k] += i * g->s[k][d];
    }
}

/* Tiles of at most TILE elements of one row each, spread over threads. */
#define TILE 8192

static il_status bin_fast(il_kctx *c, int op, il_kernel_fn ref) {
    il_tensor A, B;
    operands(c, &A, &B);
    if (A.dtype != IL_F32 || B.dtype != IL_F32) return ref(c);
    int64_t n = il_tensor_numel(c->out[0]);
    if (n == 0) return IL_OK;
    geom g;
    const il_tensor *ab[2] = {&A, &B};
    geom_init(&g, c->out[0], 2, ab);
    const float *a = A.data, *b = B.data;
    float *o = c->out[0]->data;
    int last = g.rank - 1;
    int64_t inner = g.dims[last], sa = g.s[0][last], sb = g.s[1][last];
    int64_t tile = inner < TILE ? inner : TILE, per_row = (inner + tile - 1) / tile, tiles = n / inner * per_row;
    int nt = ew_threads(c, n);
    EW_PAR_FOR(nt, t, tiles) {
        int64_t r = t / per_row, j0 = t % per_row * tile, m = inner - j0 < tile ? inner - j0 : tile, off[3];
        geom_row(&g, r, off);
        row(op, o + r * inner + j0, a + off[0] + j0 * sa, sa, b + off[1] + j0 * sb, sb, m);
    }
    return IL_OK;
}

/* Where (elements of 4 bytes) and And, Or, Xor on bool, broadcasting, by rows of the merged
 * geometry: the reference steps a broadcast iterator per element (BERT-mini's [batch, 1, 128,
 * 128] attention mask: And 43 us and Where 44 us of its 6.8 ms at batch 1). */
enum { W_WHERE, W_AND, W_OR, W_XOR };

static void sel_row(int op, int64_t m, void *o, const void *const *p, const int64_t *s) {
    const uint8_t *c = p[0];
    if (op == W_WHERE) {
        const uint32_t *x = p[1], *y = p[2];
        uint32_t *d = o;
        if (s[0] && s[1] && s[2])
            for (int64_t j = 0; j < m; j++) d[j] = c[j] ? x[j] : y[j];
        else
            for (int64_t j = 0; j < m; j++) d[j] = c[j * s[0]] ? x[j * s[1]] : y[j * s[2]];
        return;
    }
    const uint8_t *b = p[1];
    uint8_t *d = o;
    if (s[0] && s[1]) {
        if (op == W_AND) for (int64_t j = 0; j < m; j++) d[j] = c[j] && b[j];
        if (op == W_OR) for (int64_t j = 0; j < m; j++) d[j] = c[j] || b[j];
        if (op == W_XOR) for (int64_t j = 0; j < m; j++) d[j] = !c[j] != !b[j];
    } else {
        for (int64_t j = 0; j < m; j++) {
            uint8_t u = c[j * s[0]], v = b[j * s[1]];
            d[j] = op == W_AND ? u && v : op == W_OR ? u || v : !u != !v;
        }
    }
}

static il_status sel_fast(il_kctx *c, int op, il_kernel_fn ref) {
    int n_in = op == W_WHERE ? 3 : 2;
    size_t es = op == W_WHERE ? 4 : 1;
    if (il_dtype_size(c->out[0]->dtype) != es) return ref(c);
    int64_t n = il_tensor_numel(c->out[0]);
    if (n == 0) return IL_OK;
    geom g;
    const il_tensor *in[3] = {c->in[0], c->in[1], n_in > 2 ? c->in[2] : NULL};
    geom_init(&g, c->out[0], n_in, in);
    int last = g.rank - 1;
    int64_t inner = g.dims[last], s[3] = {g.s[0][last], g.s[1][last], n_in > 2 ? g.s[2][last] : 0};
    int64_t tile = inner < TILE ? inner : TILE, per_row = (inner + tile - 1) / tile, tiles = n / inner * per_row;
    int nt = ew_threads(c, n);
    char *o = c->out[0]->data;
    EW_PAR_FOR(nt, t, tiles) {
        int64_t r = t / per_row, j0 = t % per_row * tile, m = inner - j0 < tile ? inner - j0 : tile, off[3];
        geom_row(&g, r, off);
        const void *p[3];
        for (int i = 0; i < n_in; i++) p[i] = (const char *)in[i]->data + (size_t)(off[i] + j0 * s[i]) * (i ? es : 1);
        sel_row(op, m, o + (size_t)(r * inner + j0) * es, p, s);
    }
    return IL_OK;
}

static il_status Where_fast(il_kctx *c) { return sel_fast(c, W_WHERE, where_ref); }
static il_status And_fast(il_kctx *c) { return sel_fast(c, W_AND, And_ref); }
static il_status Or_fast(il_kctx *c) { return sel_fast(c, W_OR, Or_ref); }
static il_status Xor_fast(il_kctx *c) { return sel_fast(c, W_XOR, Xor_ref); }

static il_status Add_fast(il_kctx *c) { return bin_fast(c, F_ADD, Add_ref); }
static il_status Sub_fast(il_kctx *c) { return bin_fast(c, F_SUB, Sub_ref); }
static il_status Mul_fast(il_kctx *c) { return bin_fast(c, F_MUL, Mul_ref); }
static il_status Div_fast(il_kctx *c) { return bin_fast(c, F_DIV, Div_ref); }
static il_status PRelu_fast(il_kctx *c) { return bin_fast(c, F_PRELU, PRelu_ref); }

/* Pow of float32 by one float32 exponent (x^2 in decomposed norms), threaded; else the ref. */
static il_status Pow_fast(il_kctx *c) {
    const il_tensor *x = c->in[0], *e = c->in[1];
    if (x->dtype != IL_F32 || e->dtype != IL_F32 || il_tensor_numel(e) != 1 || e->rank > x->rank) return Pow_ref(c);
    int64_t n = il_tensor_numel(c->out[0]);
    const float *px = x->data, p = *(const float *)e->data;
    float *o = c->out[0]->data;
    int nt = ew_threads(c, n);
    if (p == 2) {
        EW_PAR_FOR(nt, i, n) o[i] = px[i] * px[i];
    } else {
        EW_PAR_FOR(nt, i, n) o[i] = powf(px[i], p);
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- the table */

const il_op il_ops_binary[] = {
    {"", "Add", 1, infer_arith, Add_ref, Add_fast, 0},
    {"", "Sub", 1, infer_arith, Sub_ref, Sub_fast, 0},
    {"", "Mul", 1, infer_arith, Mul_ref, Mul_fast, 0},
    {"", "Div", 1, infer_arith, Div_ref, Div_fast, 0},
    {"", "Mod", 10, infer_mod, Mod_ref, NULL, 0},
    {"", "Pow", 1, infer_pow, Pow_ref, Pow_fast, 0},
    {"", "PRelu", 1, infer_prelu, PRelu_ref, PRelu_fast, 0},
    {"", "Equal", 1, infer_equal, Equal_ref, NULL, 0},
    {"", "Less", 1, infer_compare, Less_ref, NULL, 0},
    {"", "Greater", 1, infer_compare, Greater_ref, NULL, 0},
    {"", "LessOrEqual", 12, infer_compare, LessOrEqual_ref, NULL, 0},
    {"", "GreaterOrEqual", 12, infer_compare, GreaterOrEqual_ref, NULL, 0},
    {"", "And", 1, infer_logic, And_ref, And_fast, 0},
    {"", "Or", 1, infer_logic, Or_ref, Or_fast, 0},
    {"", "Xor", 1, infer_logic, Xor_ref, Xor_fast, 0},
    {"", "BitShift", 11, infer_bitshift, BitShift_ref, NULL, 0},
    {"", "BitwiseAnd", 18, infer_int, BitwiseAnd_ref, NULL, 0},
    {"", "BitwiseOr", 18, infer_int, BitwiseOr_ref, NULL, 0},
    {"", "BitwiseXor", 18, infer_int, BitwiseXor_ref, NULL, 0},
    {"", "Where", 9, where_infer, where_ref, Where_fast, IL_OPF_ANY_DTYPE},
    {"", "Min", 1, infer_minmax, Min_ref, NULL, 0},
    {"", "Max", 1, infer_minmax, Max_ref, NULL, 0},
    {"", "Sum", 1, infer_summean, Sum_ref, NULL, 0},
    {"", "Mean", 1, infer_summean, Mean_ref, NULL, 0},
    {0},
};
