/*
 * grad_elem.c - backward of the element-wise ops: activations (Relu, LeakyRelu, Clip,
 * HardSwish, Sigmoid, Tanh, Gelu, Erf, Neg), broadcasting arithmetic (Add, Sub, Mul, Div) and
 * ReduceMean.
 *
 * Broadcasting: an operand smaller than the output receives the sum of the output gradient
 * over the dims it was broadcast along. Operands of the output's own shape are handled in a
 * parallel loop; broadcast ones in one sequential walk, so the sums have a fixed order.
 */
#include "grad.h"

#include <tgmath.h>

/* ---------------------------------------------------------------- activations */

enum { U_RELU, U_LEAKY, U_CLIP, U_HSWISH, U_SIGMOID, U_TANH, U_GELU, U_GELU_TANH, U_ERF, U_NEG };

/* d(out)/d(in) at input x with output y; the activation's parameters in p0, p1. */
#define UNARY_DERIV(k, x, y, p0, p1)                                                                       \
    ((k) == U_RELU      ? ((x) > 0 ? 1.0 : 0.0)                                                            \
     : (k) == U_LEAKY   ? ((x) > 0 ? 1.0 : (p0))                                                           \
     : (k) == U_CLIP    ? ((x) > (p0) && (x) < (p1) ? 1.0 : 0.0)                                           \
     : (k) == U_HSWISH  ? ((x) < -3 ? 0.0 : (x) > 3 ? 1.0 : (2.0 * (x) + 3.0) / 6.0)                      \
     : (k) == U_SIGMOID ? (y) * (1.0 - (y))                                                                \
     : (k) == U_TANH    ? 1.0 - (y) * (y)                                                                  \
     : (k) == U_GELU    ? 0.5 * (1.0 + erf((x) * 0.70710678118654752)) +                                  \
                           (x) * exp(-0.5 * (x) * (x)) * 0.39894228040143268                               \
     : (k) == U_GELU_TANH ? gelu_tanh_deriv(x)                                                             \
     : (k) == U_ERF     ? 1.1283791670955126 * exp(-(x) * (x))                                            \
                        : -1.0)

static double gelu_tanh_deriv(double x) {
    const double a = 0.7978845608028654, b = 0.044715;
    double u = a * (x + b * x * x * x), t = tanh(u);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * a * (1 + 3 * b * x * x);
}

void gr_clip_bounds(const gr_ctx *c, double *lo, double *hi) {
    il_tensor *a = gr_in(c, 1), *b = gr_in(c, 2);
    *lo = c->opset < 11 ? il_attr_float(c->node, "min", -3.4028235e38f) : a && a->data ? il_tensor_get(a, 0) : -INFINITY;
    *hi = c->opset < 11 ? il_attr_float(c->node, "max", 3.4028235e38f) : b && b->data ? il_tensor_get(b, 0) : INFINITY;
}

static il_status unary_backward(gr_ctx *c, int kind) {
    il_tensor *x = c->in[0], *y = c->out[0], *dy = c->dout[0], *dx = gr_din(c, 0);
    if (!dx) return IL_OK;
    double p0 = 0, p1 = 0;
    if (kind == U_LEAKY) p0 = il_attr_float(c->node, "alpha", 0.01f);
    if (kind == U_CLIP) gr_clip_bounds(c, &p0, &p1);
    int64_t n = il_tensor_numel(x);
    GR_FLOATS(x->dtype, {
        const T *X = x->data, *Y = y->data, *DY = dy->data;
        T *DX = dx->data;
        IL_PAR_FOR(c, i, n) {
            double xv = X[i], yv = Y[i];
            DX[i] += (T)(DY[i] * UNARY_DERIV(kind, xv, yv, p0, p1));
        }
    })
    return IL_OK;
}

static il_status relu_bw(gr_ctx *c) { return unary_backward(c, U_RELU); }
static il_status leaky_bw(gr_ctx *c) { return unary_backward(c, U_LEAKY); }
static il_status clip_bw(gr_ctx *c) { return unary_backward(c, U_CLIP); }
static il_status hswish_bw(gr_ctx *c) { return unary_backward(c, U_HSWISH); }
static il_status sigmoid_bw(gr_ctx *c) { return unary_backward(c, U_SIGMOID); }
static il_status tanh_bw(gr_ctx *c) { return unary_backward(c, U_TANH); }
static il_status erf_bw(gr_ctx *c) { return unary_backward(c, U_ERF); }
static il_status neg_bw(gr_ctx *c) { return unary_backward(c, U_NEG); }
static il_status gelu_bw(gr_ctx *c) {
    return unary_backward(c, strcmp(il_attr_string(c->node, "approximate", "none"), "tanh") ? U_GELU : U_GELU_TANH);
}

/* ---------------------------------------------------------------- broadcasting */

/* Walk the output index space (rank r, dims d) with an odometer, keeping each operand's flat
 * offset from its broadcast strides. */
#define BCAST_WALK(r, d, sa, sb, n, BODY)                                             \
    do {                                                                              \
        int64_t idx_[IL_MAX_RANK] = {0}, oa = 0, ob = 0;                              \
        for (int64_t i = 0; i < (n); i++) {                                           \
            BODY;                                                                     \
            for (int k_ = (r) - 1; k_ >= 0; k_--) {                                   \
                oa += (sa)[k_], ob += (sb)[k_];                                       \
                if (++idx_[k_] < (d)[k_]) break;                                      \
                oa -= (sa)[k_] * (d)[k_], ob -= (sb)[k_] * (d)[k_], idx_[k_] = 0;     \
            }                                                                         \
        }                                                                             \
    } while (0)

void gr_reduce_add(il_tensor *din, const il_tensor *dout, double scale) {
    int64_t s[IL_MAX_RANK], z[IL_MAX_RANK] = {0}, n = il_tensor_numel(dout);
    il_broadcast_strides(din, dout->rank, dout->dims, s);
    GR_FLOATS(dout->dtype, {
        const T *DY = dout->data;
        T *DX = din->data;
        BCAST_WALK(dout->rank, dout->dims, s, z, n, DX[oa] += (T)(scale * DY[i]));
    })
}

static int same_shape(const il_tensor *a, const il_tensor *b) {
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

enum { B_ADD, B_SUB, B_MUL, B_DIV };

/* Gradient for operand `which` (0 or 1) of a binary op: g * d(a op b)/d(operand). */
#define BIN_TERM(op, which, g, a, b)                                                                  \
    ((op) == B_ADD   ? (g)                                                                           \
     : (op) == B_SUB ? ((which) ? -(g) : (g))                                                        \
     : (op) == B_MUL ? ((which) ? (g) * (a) : (g) * (b))                                             \
                     : ((which) ? -(g) * (a) / ((b) * (b)) : (g) / (b)))

static il_status binary_backward(gr_ctx *c, int op) {
    il_tensor *a = c->in[0], *b = c->in[1], *dy = c->dout[0];
    il_tensor *d[2] = {gr_din(c, 0), gr_din(c, 1)}, *opnd[2] = {a, b};
    int r = dy->rank;
    int64_t n = il_tensor_numel(dy), sa[IL_MAX_RANK], sb[IL_MAX_RANK];
    il_broadcast_strides(a, r, dy->dims, sa);
    il_broadcast_strides(b, r, dy->dims, sb);
    GR_FLOATS(dy->dtype, {
        const T *A = a->data, *B = b->data, *DY = dy->data;
        for (int w = 0; w < 2; w++) {
            if (!d[w]) continue;
            T *D = d[w]->data;
            if (same_shape(opnd[w], dy) && same_shape(a, b)) {
                IL_PAR_FOR(c, i, n) D[i] += (T)BIN_TERM(op, w, DY[i], A[i], B[i]);
            } else {
                BCAST_WALK(r, dy->dims, sa, sb, n, D[w ? ob : oa] += (T)BIN_TERM(op, w, DY[i], A[oa], B[ob]));
            }
        }
    })
    return IL_OK;
}

static il_status add_bw(gr_ctx *c) { return binary_backward(c, B_ADD); }
static il_status sub_bw(gr_ctx *c) { return binary_backward(c, B_SUB); }
static il_status mul_bw(gr_ctx *c) { return binary_backward(c, B_MUL); }
static il_status div_bw(gr_ctx *c) { return binary_backward(c, B_DIV); }

/* ---------------------------------------------------------------- ReduceMean */

static il_status reducemean_backward(gr_ctx *c) {
    il_tensor *x = c->in[0], *dy = c->dout[0], *dx = gr_din(c, 0);
    if (!dx) return IL_OK;
    int64_t axes[IL_MAX_RANK];
    int na = 0;
    if (c->opset < 18) {
        const int64_t *a;
        na = il_attr_ints(c->node, "axes", &a);
        for (int i = 0; i < na && i < IL_MAX_RANK; i++) axes[i] = a[i];
    } else if (gr_in(c, 1)) {
        na = (int)il_tensor_numel(c->in[1]);
        for (int i = 0; i < na && i < IL_MAX_RANK; i++) axes[i] = il_int_at(c->in[1], i);
    }
    if (na == 0 && il_attr_int(c->node, "noop_with_empty_axes", 0)) {
        gr_reduce_add(dx, dy, 1.0);
        return IL_OK;
    }
    unsigned char red[IL_MAX_RANK] = {0};
    il_kctx k = gr_kctx(c);
    for (int i = 0; i < na; i++) {
        int ax;
        il_status st = il_norm_axis(&k, axes[i], x->rank, &ax);
        if (st) return st;
        red[ax] = 1;
    }
    if (na == 0) memset(red, 1, sizeof red);
    /* dy seen with the reduced dims kept as 1, broadcast back over x */
    int64_t kd[IL_MAX_RANK], count = 1, sk[IL_MAX_RANK], z[IL_MAX_RANK] = {0};
    for (int i = 0; i < x->rank; i++) {
        kd[i] = red[i] ? 1 : x->dims[i];
        if (red[i]) count *= x->dims[i];
    }
    il_tensor view = *dy;
    view.rank = x->rank;
    memcpy(view.dims, kd, sizeof kd);
    il_broadcast_strides(&view, x->rank, x->dims, sk);
    int64_t n = il_tensor_numel(x);
    GR_FLOATS(x->dtype, {
        const T *DY = dy->data;
        T *DX = dx->data;
        BCAST_WALK(x->rank, x->dims, sk, z, n, DX[i] += DY[oa] / (T)count);
    })
    return IL_OK;
}

const gr_op gr_ops_elem[] = {
    {"Relu", relu_bw, NULL},       {"LeakyRelu", leaky_bw, NULL}, {"Clip", clip_bw, NULL},
    {"HardSwish", hswish_bw, NULL}, {"Sigmoid", sigmoid_bw, NULL}, {"Tanh", tanh_bw, NULL},
    {"Gelu", gelu_bw, NULL},       {"Erf", erf_bw, NULL},         {"Neg", neg_bw, NULL},
    {"Add", add_bw, NULL},         {"Sub", sub_bw, NULL},         {"Mul", mul_bw, NULL},
    {"Div", div_bw, NULL},         {"ReduceMean", reducemean_backward, NULL},
    {0},
};
