/*
 * reduce.c - reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
 * ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare, ArgMax, ArgMin and CumSum.
 *
 * Every Reduce* op is one function of (kind, axes, keepdims): an output element combines the
 * input elements that share its multi-index on the kept axes. The axes come from the `axes`
 * attribute before opset 18 (ReduceSum: before 13) and from the optional second input after.
 * Empty axes reduce every axis, unless noop_with_empty_axes is set: then no axis is reduced and
 * each element is combined alone, so ReduceSum is the identity, ReduceSumSquare squares and
 * ReduceL1 takes |x| (the ONNX reference does the same). Reducing an empty set gives the
 * identity of the combination: sum 0, prod 1, max -inf, min +inf, log-sum -inf, mean NaN.
 *
 * Float inputs are combined in double; integer inputs in 64-bit integers (wrapping like the
 * C types do) so int64 stays exact. The fast kernel covers float32 when the reduced axes are
 * one contiguous run (the last axis, the spatial axes of NCHW, the channel axis...).
 */
#include "kernel.h"

typedef enum {
    RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_PROD, RED_L1, RED_L2, RED_LOGSUM, RED_LOGSUMEXP, RED_SUMSQ
} red_kind;

/* ---------------------------------------------------------------- integer helpers */

/* Element i of an integer tensor widened to int64; uint64 keeps its bit pattern. */
static int64_t int_get(const il_tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case IL_I8: return ((const int8_t *)d)[i];
    case IL_U8: return ((const uint8_t *)d)[i];
    case IL_I16: return ((const int16_t *)d)[i];
    case IL_U16: return ((const uint16_t *)d)[i];
    case IL_I32: return ((const int32_t *)d)[i];
    case IL_U32: return ((const uint32_t *)d)[i];
    case IL_I64: return ((const int64_t *)d)[i];
    case IL_U64: return (int64_t)((const uint64_t *)d)[i];
    default: return 0;
    }
}

/* Store v truncated to t's integer type (two's complement wrap, like a C cast). */
static void int_put(il_tensor *t, int64_t i, int64_t v) {
    void *d = t->data;
    switch (t->dtype) {
    case IL_I8: ((int8_t *)d)[i] = (int8_t)v; break;
    case IL_U8: ((uint8_t *)d)[i] = (uint8_t)v; break;
    case IL_I16: ((int16_t *)d)[i] = (int16_t)v; break;
    case IL_U16: ((uint16_t *)d)[i] = (uint16_t)v; break;
    case IL_I32: ((int32_t *)d)[i] = (int32_t)v; break;
    case IL_U32: ((uint32_t *)d)[i] = (uint32_t)v; break;
    case IL_I64: ((int64_t *)d)[i] = v; break;
    case IL_U64: ((uint64_t *)d)[i] = (uint64_t)v; break;
    default: break;
    }
}

/* a < b in t's integer type (uint64 needs an unsigned compare). */
static int int_less(il_dtype dt, int64_t a, int64_t b) { return dt == IL_U64 ? (uint64_t)a < (uint64_t)b : a < b; }

/* The smallest and largest value of an integer type, as int_get would return them. */
static void int_limits(il_dtype dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case IL_I8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case IL_U8: *lo = 0; *hi = UINT8_MAX; break;
    case IL_I16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case IL_U16: *lo = 0; *hi = UINT16_MAX; break;
    case IL_I32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    case IL_U32: *lo = 0; *hi = UINT32_MAX; break;
    case IL_U64: *lo = 0; *hi = -1; break; /* bit pattern of UINT64_MAX */
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

/* A double result stored into an integer type: truncated like numpy's astype, clamped so the
 * conversion is defined (NaN gives 0). */
static void int_put_double(il_tensor *t, int64_t i, double v) {
    int64_t lo, hi;
    int_limits(t->dtype, &lo, &hi);
    if (isnan(v)) v = 0;
    if (t->dtype == IL_U64) {
        int_put(t, i, v <= 0 ? 0 : v >= 18446744073709551615.0 ? -1 : (int64_t)(uint64_t)v);
        return;
    }
    if (v <= (double)lo) int_put(t, i, lo);
    else if (v >= (double)hi) int_put(t, i, hi);
    else int_put(t, i, (int64_t)v);
}

static int is_int_dtype(il_dtype dt) {
    return dt == IL_I8 || dt == IL_U8 || dt == IL_I16 || dt == IL_U16 || dt == IL_I32 || dt == IL_U32 ||
           dt == IL_I64 || dt == IL_U64;
}

/* ---------------------------------------------------------------- axes */

/* Which axes of input 0 are reduced. axes_input_since: the opset from which axes is input 1
 * (13 for ReduceSum, 18 for the others). *known is 0 at plan time when the axes input has no
 * data yet; then *n_axes is its length, or -1 when even that is unknown. */
static il_status reduce_axes(const il_kctx *c, int axes_input_since, int *reduced, int *known, int *n_axes) {
    const il_tensor *x = il_in(c, 0);
    int r = x->rank;
    int64_t axes[64];
    int n = 0;
    *known = 1;
    *n_axes = 0;
    if (c->opset >= axes_input_since) {
        const il_tensor *a = il_in(c, 1);
        if (a) {
            if (a->rank > 1) return il_kerr(c, IL_ERR_INVALID, "axes must be a 1-D tensor, got rank %d", a->rank);
            if (a->dtype != IL_I64 && a->dtype != IL_I32)
                return il_kerr(c, IL_ERR_TYPE, "axes must be int64, got %s", il_dtype_name(a->dtype));
            int64_t len = a->rank == 0 ? 1 : a->dims[0];
            if (!a->data && len != 0) {
                *known = 0;
                *n_axes = len < 0 ? -1 : (int)len;
                return IL_OK;
            }
            if (len > 64 || len > (r > 0 ? r : 1))
                return il_kerr(c, IL_ERR_INVALID, "%lld axes for an input of rank %d", (long long)len, r);
            for (int64_t i = 0; i < len; i++) axes[n++] = il_int_at(a, i);
        }
    } else {
        const int64_t *attr;
        int na = il_attr_ints(c->node, "axes", &attr);
        if (na > 64 || na > (r > 0 ? r : 1))
            return il_kerr(c, IL_ERR_INVALID, "%d axes for an input of rank %d", na, r);
        for (int i = 0; i < na; i++) axes[n++] = attr[i];
    }
    *n_axes = n;
    /* noop_with_empty_axes exists from the opset that moved axes to an input */
    int noop = c->opset >= axes_input_since && il_attr_int(c->node, "noop_with_empty_axes", 0) != 0;
    for (int i = 0; i < r; i++) reduced[i] = n == 0 && !noop;
    if (n == 0) {
        if (!noop) *n_axes = r;
        return IL_OK;
    }
    for (int i = 0; i < n; i++) {
        int ax;
        if (r == 0) return il_kerr(c, IL_ERR_INVALID, "axis %lld is out of range for rank 0", (long long)axes[i]);
        il_status s = il_norm_axis(c, axes[i], r, &ax);
        if (s) return s;
        if (reduced[ax]) return il_kerr(c, IL_ERR_INVALID, "axis %lld appears twice in axes", (long long)axes[i]);
        reduced[ax] = 1;
    }
    return IL_OK;
}

static il_status reduce_infer(il_kctx *c, red_kind kind, int axes_input_since) {
    il_tensor *x = il_in(c, 0);
    if (!x) return il_kerr(c, IL_ERR_INVALID, "missing input 0");
    if (x->dtype != IL_F32 && x->dtype != IL_F64 && !is_int_dtype(x->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    int keep = il_attr_int(c->node, "keepdims", 1) != 0;
    if (x->rank < 0) {
        il_set_out(c, 0, x->dtype, -1, NULL);
        return IL_OK;
    }
    int reduced[IL_MAX_RANK], known, n_axes;
    il_status s = reduce_axes(c, axes_input_since, reduced, &known, &n_axes);
    if (s) return s;
    int64_t dims[IL_MAX_RANK];
    int r = 0;
    if (!known) {
        /* which axes go is not known before running: only the rank may be */
        r = keep ? x->rank : n_axes >= 0 ? x->rank - n_axes : -1;
        if (r < -1) return il_kerr(c, IL_ERR_INVALID, "%d axes for an input of rank %d", n_axes, x->rank);
        for (int i = 0; i < r; i++) dims[i] = -1;
    } else {
        for (int i = 0; i < x->rank; i++) {
            if (!reduced[i]) dims[r++] = x->dims[i];
            else if (keep) dims[r++] = 1;
        }
    }
    (void)kind;
    il_set_out(c, 0, x->dtype, r, dims);
    return IL_OK;
}

/* ---------------------------------------------------------------- reference kernel */

/* Combine the n elements x[base + off[j]] in double; get reads an element. */
static double combine_real(red_kind k, const il_tensor *x, double (*get)(const il_tensor *, int64_t), int64_t base,
                           const int64_t *off, int64_t n) {
    if (k == RED_LOGSUMEXP) {
        /* subtract the max so exp cannot overflow */
        double m = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            double v = get(x, base + off[j]);
            if (v > m || isnan(v)) m = v;
        }
        if (isinf(m) || isnan(m)) return m;
        double s = 0;
        for (int64_t j = 0; j < n; j++) s += exp(get(x, base + off[j]) - m);
        return m + log(s);
    }
    double acc = k == RED_PROD ? 1 : k == RED_MAX ? -INFINITY : k == RED_MIN ? INFINITY : 0;
    for (int64_t j = 0; j < n; j++) {
        double v = get(x, base + off[j]);
        switch (k) {
        case RED_MAX: if (v > acc || isnan(v)) acc = v; break; /* NaN sticks, like numpy */
        case RED_MIN: if (v < acc || isnan(v)) acc = v; break;
        case RED_PROD: acc *= v; break;
        case RED_L1: acc += fabs(v); break;
        case RED_L2: case RED_SUMSQ: acc += v * v; break;
        default: acc += v; break; /* SUM, MEAN, LOGSUM */
        }
    }
    if (k == RED_MEAN) return acc / (double)n; /* empty: 0/0 = NaN, as numpy */
    if (k == RED_L2) return sqrt(acc);
    if (k == RED_LOGSUM) return log(acc);
    return acc;
}

/* Combine integer elements exactly; unsigned arithmetic so overflow wraps instead of being
 * undefined. */
static int64_t combine_int(red_kind k, const il_tensor *x, int64_t base, const int64_t *off, int64_t n) {
    int64_t lo, hi;
    int_limits(x->dtype, &lo, &hi);
    if (k == RED_MAX || k == RED_MIN) {
        int64_t best = k == RED_MAX ? lo : hi;
        for (int64_t j = 0; j < n; j++) {
            int64_t v = int_get(x, base + off[j]);
            if (k == RED_MAX ? int_less(x->dtype, best, v) : int_less(x->dtype, v, best)) best = v;
        }
        return best;
    }
    uint64_t acc = k == RED_PROD ? 1 : 0;
    for (int64_t j = 0; j < n; j++) {
        int64_t v = int_get(x, base + off[j]);
        switch (k) {
        case RED_PROD: acc *= (uint64_t)v; break;
        case RED_L1: acc += (uint64_t)(v < 0 && x->dtype != IL_U64 ? -(uint64_t)v : (uint64_t)v); break;
        case RED_SUMSQ: acc += (uint64_t)v * (uint64_t)v; break;
        default: acc += (uint64_t)v; break; /* SUM, MEAN */
        }
    }
    if (k == RED_MEAN) {
        if (n == 0) return 0;
        return x->dtype == IL_U64 ? (int64_t)(acc / (uint64_t)n) : (int64_t)acc / n;
    }
    return (int64_t)acc;
}

/* An integer element as a double, for the kinds that need real math (L2, log-sums). */
static double int_as_double(const il_tensor *t, int64_t i) {
    int64_t v = int_get(t, i);
    return t->dtype == IL_U64 ? (double)(uint64_t)v : (double)v;
}

static il_status reduce_ref(il_kctx *c, red_kind k, int axes_input_since) {
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0];
    int reduced[IL_MAX_RANK], known, n_axes, r = x->rank;
    il_status s = reduce_axes(c, axes_input_since, reduced, &known, &n_axes);
    if (s) return s;
    int64_t stride[IL_MAX_RANK], nred = 1;
    for (int i = r - 1; i >= 0; i--) stride[i] = i == r - 1 ? 1 : stride[i + 1] * x->dims[i + 1];
    for (int i = 0; i < r; i++)
        if (reduced[i]) nred *= x->dims[i];
    /* offsets of every element of one reduced block, relative to its first element */
    int64_t *off = malloc((size_t)(nred ? nred : 1) * sizeof(int64_t));
    if (!off) return il_kerr(c, IL_ERR_OOM, "out of memory");
    for (int64_t j = 0; j < nred; j++) {
        int64_t rem = j, o = 0;
        for (int i = r - 1; i >= 0; i--)
            if (reduced[i]) {
                o += (rem % x->dims[i]) * stride[i];
                rem /= x->dims[i];
            }
        off[j] = o;
    }
    int64_t nout = il_tensor_numel(y);
    int isint = is_int_dtype(x->dtype);
    for (int64_t o = 0; o < nout; o++) {
        /* the output's flat index walks the kept axes in order */
        int64_t rem = o, base = 0;
        for (int i = r - 1; i >= 0; i--)
            if (!reduced[i]) {
                base += (rem % x->dims[i]) * stride[i];
                rem /= x->dims[i];
            }
        if (!isint) il_tensor_set(y, o, combine_real(k, x, il_tensor_get, base, off, nred));
        else if (k == RED_L2 || k == RED_LOGSUM || k == RED_LOGSUMEXP)
            int_put_double(y, o, combine_real(k, x, int_as_double, base, off, nred));
        else int_put(y, o, combine_int(k, x, base, off, nred));
    }
    free(off);
    return IL_OK;
}
