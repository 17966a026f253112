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

/* The smallest and largest value of an integer type, as il_int_at would return them. */
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
    int64_t axes[IL_MAX_RANK];
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
            if (len > (r > 0 ? r : 1))
                return il_kerr(c, IL_ERR_INVALID, "%lld axes for an input of rank %d", (long long)len, r);
            if (!a->data && len != 0) {
                *known = 0;
                *n_axes = len < 0 ? -1 : (int)len;
                return IL_OK;
            }
            for (int64_t i = 0; i < len; i++) axes[n++] = il_int_at(a, i);
        }
    } else {
        const int64_t *attr;
        int na = il_attr_ints(c->node, "axes", &attr);
        if (na > (r > 0 ? r : 1))
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

/* Input 0 of a reduction or ArgMax/ArgMin: there, and float32, float64 or an integer type. */
static il_status reduce_input(const il_kctx *c, const il_tensor **x) {
    *x = il_in(c, 0);
    if (!*x) return il_kerr(c, IL_ERR_INVALID, "missing input 0");
    if ((*x)->dtype != IL_F32 && (*x)->dtype != IL_F64 && !is_int_dtype((*x)->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name((*x)->dtype));
    return IL_OK;
}

static il_status reduce_infer(il_kctx *c, int axes_input_since) {
    const il_tensor *x;
    il_status s = reduce_input(c, &x);
    if (s) return s;
    int keep = il_attr_int(c->node, "keepdims", 1) != 0;
    if (x->rank < 0) {
        il_set_out(c, 0, x->dtype, -1, NULL);
        return IL_OK;
    }
    int reduced[IL_MAX_RANK], known, n_axes;
    if ((s = reduce_axes(c, axes_input_since, reduced, &known, &n_axes))) return s;
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
    il_set_out(c, 0, x->dtype, r, dims);
    return IL_OK;
}

/* ---------------------------------------------------------------- reference kernel */

/* The last step of a sum-like kind over n elements. */
static double finish(red_kind k, double acc, int64_t n) {
    if (k == RED_MEAN) return acc / (double)n; /* empty: 0/0 = NaN, as numpy */
    if (k == RED_L2) return sqrt(acc);
    if (k == RED_LOGSUM) return log(acc);
    return acc;
}

/* Some axes of x, walked in row-major order: element j of the walk sits at offset
 * walk_at(w, j) from the walk's first element. */
typedef struct {
    int n;
    int64_t dims[IL_MAX_RANK], stride[IL_MAX_RANK];
} axis_walk;

static int64_t walk_at(const axis_walk *w, int64_t j) {
    int64_t off = 0;
    for (int i = w->n - 1; i >= 0; i--) {
        off += (j % w->dims[i]) * w->stride[i];
        j /= w->dims[i];
    }
    return off;
}

/* The walks over the reduced axes and over the kept axes of x. */
static void make_walks(const il_tensor *x, const int *reduced, axis_walk *red, axis_walk *kept) {
    int64_t stride = 1, st[IL_MAX_RANK];
    for (int i = x->rank - 1; i >= 0; i--) {
        st[i] = stride;
        stride *= x->dims[i];
    }
    red->n = kept->n = 0;
    for (int i = 0; i < x->rank; i++) {
        axis_walk *w = reduced[i] ? red : kept;
        w->dims[w->n] = x->dims[i];
        w->stride[w->n++] = st[i];
    }
}

/* Combine the n elements x[base + walk_at(w, j)] in double; get reads an element. */
static double combine_real(red_kind k, const il_tensor *x, double (*get)(const il_tensor *, int64_t), int64_t base,
                           const axis_walk *w, int64_t n) {
    if (k == RED_LOGSUMEXP) {
        /* subtract the max so exp cannot overflow */
        double m = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            double v = get(x, base + walk_at(w, j));
            if (v > m || isnan(v)) m = v;
        }
        if (isinf(m) || isnan(m)) return m;
        double s = 0;
        for (int64_t j = 0; j < n; j++) s += exp(get(x, base + walk_at(w, j)) - m);
        return m + log(s);
    }
    double acc = k == RED_PROD ? 1 : k == RED_MAX ? -INFINITY : k == RED_MIN ? INFINITY : 0;
    for (int64_t j = 0; j < n; j++) {
        double v = get(x, base + walk_at(w, j));
        switch (k) {
        case RED_MAX: if (v > acc || isnan(v)) acc = v; break; /* NaN sticks, like numpy */
        case RED_MIN: if (v < acc || isnan(v)) acc = v; break;
        case RED_PROD: acc *= v; break;
        case RED_L1: acc += fabs(v); break;
        case RED_L2: case RED_SUMSQ: acc += v * v; break;
        default: acc += v; break; /* SUM, MEAN, LOGSUM */
        }
    }
    return finish(k, acc, n);
}

/* Combine integer elements exactly; unsigned arithmetic so overflow wraps instead of being
 * undefined. */
static int64_t combine_int(red_kind k, const il_tensor *x, int64_t base, const axis_walk *w, int64_t n) {
    int64_t lo, hi;
    int_limits(x->dtype, &lo, &hi);
    if (k == RED_MAX || k == RED_MIN) {
        int64_t best = k == RED_MAX ? lo : hi;
        for (int64_t j = 0; j < n; j++) {
            int64_t v = il_int_at(x, base + walk_at(w, j));
            if (k == RED_MAX ? int_less(x->dtype, best, v) : int_less(x->dtype, v, best)) best = v;
        }
        return best;
    }
    uint64_t acc = k == RED_PROD ? 1 : 0;
    for (int64_t j = 0; j < n; j++) {
        int64_t v = il_int_at(x, base + walk_at(w, j));
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
    int64_t v = il_int_at(t, i);
    return t->dtype == IL_U64 ? (double)(uint64_t)v : (double)v;
}

static il_status reduce_ref(il_kctx *c, red_kind k, int axes_input_since) {
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0];
    int reduced[IL_MAX_RANK], known, n_axes;
    il_status s = reduce_axes(c, axes_input_since, reduced, &known, &n_axes);
    if (s) return s;
    axis_walk red, kept;
    make_walks(x, reduced, &red, &kept);
    int64_t nred = il_shape_numel(red.n, red.dims), nout = il_tensor_numel(y);
    int isint = is_int_dtype(x->dtype);
    for (int64_t o = 0; o < nout; o++) {
        /* the output's flat index walks the kept axes in order */
        int64_t base = walk_at(&kept, o);
        if (!isint) il_tensor_set(y, o, combine_real(k, x, il_tensor_get, base, &red, nred));
        else if (k == RED_L2 || k == RED_LOGSUM || k == RED_LOGSUMEXP)
            int_put_double(y, o, combine_real(k, x, int_as_double, base, &red, nred));
        else int_put(y, o, combine_int(k, x, base, &red, nred));
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- fast float32 kernel */

/* View x as [outer, red, inner] with the middle reduced, when the reduced axes (ignoring
 * size-1 axes, which may count either way) are one contiguous run. 0 when they are not. */
static int reduce_block(const il_tensor *x, const int *reduced, int64_t *outer, int64_t *red, int64_t *inner) {
    int first = -1, last = -1;
    for (int i = 0; i < x->rank; i++)
        if (reduced[i] && x->dims[i] != 1) {
            if (first < 0) first = i;
            last = i;
        }
    *outer = *red = *inner = 1;
    if (first < 0) {
        *outer = il_tensor_numel(x);
        return 1;
    }
    for (int i = first; i <= last; i++)
        if (!reduced[i] && x->dims[i] != 1) return 0;
    for (int i = 0; i < x->rank; i++) {
        if (i < first) *outer *= x->dims[i];
        else if (i <= last) *red *= x->dims[i];
        else *inner *= x->dims[i];
    }
    return 1;
}

/* One contiguous row: four partial sums let the loop vectorize and pipeline. */
static double row_reduce(red_kind k, const float *p, int64_t n) {
    if (k == RED_MAX || k == RED_MIN) {
        float m = k == RED_MAX ? -INFINITY : INFINITY;
        for (int64_t j = 0; j < n; j++)
            if (k == RED_MAX ? (p[j] > m || isnan(p[j])) : (p[j] < m || isnan(p[j]))) m = p[j];
        return m;
    }
    if (k == RED_PROD) {
        double a = 1;
        for (int64_t j = 0; j < n; j++) a *= p[j];
        return a;
    }
    float m = 0;
    if (k == RED_LOGSUMEXP) {
        m = (float)row_reduce(RED_MAX, p, n);
        if (isinf(m) || isnan(m)) return m;
    }
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t j = 0;
#define ROW_LOOP(F)                                                                       \
    for (; j + 4 <= n; j += 4) {                                                          \
        s0 += F(p[j]); s1 += F(p[j + 1]); s2 += F(p[j + 2]); s3 += F(p[j + 3]);           \
    }                                                                                     \
    for (; j < n; j++) s0 += F(p[j]);
#define F_ID(v) (double)(v)
#define F_ABS(v) fabs((double)(v))
#define F_SQ(v) ((double)(v) * (double)(v))
#define F_EXP(v) (double)expf((v) - m)
    switch (k) {
    case RED_L1: ROW_LOOP(F_ABS) break;
    case RED_L2: case RED_SUMSQ: ROW_LOOP(F_SQ) break;
    case RED_LOGSUMEXP: ROW_LOOP(F_EXP) break;
    default: ROW_LOOP(F_ID) break;
    }
    double acc = (s0 + s1) + (s2 + s3);
    if (k == RED_LOGSUMEXP) return m + log(acc);
    return finish(k, acc, n);
}

enum { COL_CHUNK = 256 };

/* Columns [i0, i0+w) of a [red, inner] block: accumulate whole rows at a time so the reads
 * stay contiguous, in double like the reference. */
static void col_reduce(red_kind k, const float *p, int64_t red, int64_t inner, int64_t i0, int64_t w, float *y) {
    double acc[COL_CHUNK];
    float m[COL_CHUNK];
    int isext = k == RED_MAX || k == RED_MIN;
    for (int64_t i = 0; i < w; i++) {
        acc[i] = k == RED_PROD ? 1 : k == RED_MAX ? -INFINITY : k == RED_MIN ? INFINITY : 0;
        m[i] = 0;
    }
    if (k == RED_LOGSUMEXP) {
        col_reduce(RED_MAX, p, red, inner, i0, w, m);
        for (int64_t r = 0; r < red; r++) {
            const float *q = p + r * inner + i0;
            for (int64_t i = 0; i < w; i++) acc[i] += expf(q[i] - m[i]);
        }
        for (int64_t i = 0; i < w; i++) y[i] = isinf(m[i]) || isnan(m[i]) ? m[i] : (float)(m[i] + log(acc[i]));
        return;
    }
    for (int64_t r = 0; r < red; r++) {
        const float *q = p + r * inner + i0;
        switch (k) {
        case RED_MAX: for (int64_t i = 0; i < w; i++) if (q[i] > acc[i] || isnan(q[i])) acc[i] = q[i]; break;
        case RED_MIN: for (int64_t i = 0; i < w; i++) if (q[i] < acc[i] || isnan(q[i])) acc[i] = q[i]; break;
        case RED_PROD: for (int64_t i = 0; i < w; i++) acc[i] *= q[i]; break;
        case RED_L1: for (int64_t i = 0; i < w; i++) acc[i] += fabs((double)q[i]); break;
        case RED_L2: case RED_SUMSQ: for (int64_t i = 0; i < w; i++) acc[i] += (double)q[i] * q[i]; break;
        default: for (int64_t i = 0; i < w; i++) acc[i] += q[i]; break;
        }
    }
    for (int64_t i = 0; i < w; i++) y[i] = (float)(isext ? acc[i] : finish(k, acc[i], red));
}

static il_status reduce_fast(il_kctx *c, red_kind k, int axes_input_since) {
    const il_tensor *x = c->in[0];
    if (x->dtype != IL_F32) return reduce_ref(c, k, axes_input_since);
    int reduced[IL_MAX_RANK], known, n_axes;
    il_status s = reduce_axes(c, axes_input_since, reduced, &known, &n_axes);
    if (s) return s;
    int64_t outer, red, inner;
    if (!reduce_block(x, reduced, &outer, &red, &inner)) return reduce_ref(c, k, axes_input_since);
    const float *xp = x->data;
    float *yp = c->out[0]->data;
    if (inner == 1) {
        IL_PAR_FOR(c, o, outer) yp[o] = (float)row_reduce(k, xp + o * red, red);
    } else {
        /* tasks over (outer, column chunk) so a single outer block still spreads over threads */
        int64_t nch = (inner + COL_CHUNK - 1) / COL_CHUNK, ntask = outer * nch;
        IL_PAR_FOR(c, t, ntask) {
            int64_t o = t / nch, i0 = (t % nch) * COL_CHUNK;
            int64_t w = inner - i0 < COL_CHUNK ? inner - i0 : COL_CHUNK;
            col_reduce(k, xp + o * red * inner, red, inner, i0, w, yp + o * inner + i0);
        }
    }
    return IL_OK;
}

#define REDUCE_OP(NAME, KIND, SINCE)                                                             \
    static il_status NAME##_infer(il_kctx *c) { return reduce_infer(c, SINCE); }                 \
    static il_status NAME##_ref(il_kctx *c) { return reduce_ref(c, KIND, SINCE); }               \
    static il_status NAME##_fast(il_kctx *c) { return reduce_fast(c, KIND, SINCE); }

REDUCE_OP(rsum, RED_SUM, 13)
REDUCE_OP(rmean, RED_MEAN, 18)
REDUCE_OP(rmax, RED_MAX, 18)
REDUCE_OP(rmin, RED_MIN, 18)
REDUCE_OP(rprod, RED_PROD, 18)
REDUCE_OP(rl1, RED_L1, 18)
REDUCE_OP(rl2, RED_L2, 18)
REDUCE_OP(rlogsum, RED_LOGSUM, 18)
REDUCE_OP(rlogsumexp, RED_LOGSUMEXP, 18)
REDUCE_OP(rsumsq, RED_SUMSQ, 18)

/* ---------------------------------------------------------------- ArgMax, ArgMin */

/* Sign of x[i] - x[j] in x's own type (int64 exact); NaN counts as larger than any number
 * when nan_high, smaller otherwise, so numpy's "NaN wins" holds for both ArgMax and ArgMin. */
static int cmp_at(const il_tensor *x, int64_t i, int64_t j, int nan_high) {
    if (is_int_dtype(x->dtype)) {
        int64_t a = il_int_at(x, i), b = il_int_at(x, j);
        return int_less(x->dtype, a, b) ? -1 : int_less(x->dtype, b, a) ? 1 : 0;
    }
    double a = il_tensor_get(x, i), b = il_tensor_get(x, j);
    if (isnan(a) || isnan(b)) {
        if (isnan(a) && isnan(b)) return 0;
        return (isnan(a) ? 1 : -1) * (nan_high ? 1 : -1);
    }
    return a < b ? -1 : a > b ? 1 : 0;
}

static il_status arg_infer(il_kctx *c) {
    const il_tensor *x;
    il_status s = reduce_input(c, &x);
    if (s) return s;
    int keep = il_attr_int(c->node, "keepdims", 1) != 0;
    if (x->rank < 0) {
        il_set_out(c, 0, IL_I64, -1, NULL);
        return IL_OK;
    }
    int64_t axis = il_attr_int(c->node, "axis", 0), dims[IL_MAX_RANK];
    int a, r = 0;
    if (x->rank == 0) return il_kerr(c, IL_ERR_INVALID, "axis %lld is out of range for rank 0", (long long)axis);
    if ((s = il_norm_axis(c, axis, x->rank, &a))) return s;
    for (int i = 0; i < x->rank; i++) {
        if (i != a) dims[r++] = x->dims[i];
        else if (keep) dims[r++] = 1;
    }
    if (x->dims[a] == 0 && il_shape_numel(r, dims) != 0)
        return il_kerr(c, IL_ERR_INVALID, "cannot take %s over axis %d of size 0", c->node->op_type, a);
    il_set_out(c, 0, IL_I64, r, dims);
    return IL_OK;
}

static il_status arg_ref(il_kctx *c, int is_max) {
    const il_tensor *x = c->in[0];
    int a;
    il_status s = il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &a);
    if (s) return s;
    int last = il_attr_int(c->node, "select_last_index", 0) != 0;
    int64_t outer = il_shape_numel(a, x->dims), n = x->dims[a], inner = il_shape_numel(x->rank - a - 1, x->dims + a + 1);
    int64_t *y = c->out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * n * inner + i, best = 0;
            for (int64_t j = 1; j < n; j++) {
                /* d > 0: element j beats the best so far */
                int d = is_max ? cmp_at(x, base + j * inner, base + best * inner, 1)
                               : -cmp_at(x, base + j * inner, base + best * inner, 0);
                if (d > 0 || (d == 0 && last)) best = j;
            }
            y[o * inner + i] = best;
        }
    return IL_OK;
}

static il_status argmax_ref(il_kctx *c) { return arg_ref(c, 1); }
static il_status argmin_ref(il_kctx *c) { return arg_ref(c, 0); }

/* ---------------------------------------------------------------- CumSum */

/* The axis input: a scalar or one-element int tensor. */
static il_status cumsum_axis(const il_kctx *c, int *axis) {
    const il_tensor *x = c->in[0], *ax = il_in(c, 1);
    if (!ax) return il_kerr(c, IL_ERR_INVALID, "CumSum needs the axis input");
    if (ax->dtype != IL_I32 && ax->dtype != IL_I64)
        return il_kerr(c, IL_ERR_TYPE, "axis must be int32 or int64, got %s", il_dtype_name(ax->dtype));
    if (ax->rank > 1 || (ax->rank == 1 && ax->dims[0] != 1 && ax->dims[0] >= 0))
        return il_kerr(c, IL_ERR_INVALID, "axis must be a scalar");
    if (!ax->data) return il_kerr(c, IL_ERR_INVALID, "the axis input has no data");
    int64_t v = il_int_at(ax, 0);
    if (x->rank == 0) return il_kerr(c, IL_ERR_INVALID, "axis %lld is out of range for rank 0", (long long)v);
    return il_norm_axis(c, v, x->rank, axis);
}

static il_status cumsum_infer(il_kctx *c) {
    il_tensor *x = il_in(c, 0), *ax = il_in(c, 1);
    if (!x) return il_kerr(c, IL_ERR_INVALID, "missing input 0");
    if (x->dtype != IL_F32 && x->dtype != IL_F64 && !is_int_dtype(x->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    if (!ax) return il_kerr(c, IL_ERR_INVALID, "CumSum needs the axis input");
    if (ax->data && x->rank >= 0) {
        int a;
        il_status s = cumsum_axis(c, &a);
        if (s) return s;
    }
    il_same_as(c, 0, 0);
    return IL_OK;
}

static il_status cumsum_ref(il_kctx *c) {
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0];
    int a;
    il_status s = cumsum_axis(c, &a);
    if (s) return s;
    int excl = il_attr_int(c->node, "exclusive", 0) != 0, rev = il_attr_int(c->node, "reverse", 0) != 0;
    int isint = is_int_dtype(x->dtype);
    int64_t outer = il_shape_numel(a, x->dims), n = x->dims[a], inner = il_shape_numel(x->rank - a - 1, x->dims + a + 1);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double acc = 0;
            uint64_t iacc = 0; /* wraps on overflow instead of being undefined */
            for (int64_t step = 0; step < n; step++) {
                int64_t j = rev ? n - 1 - step : step, at = (o * n + j) * inner + i;
                /* exclusive: write the sum of the elements before this one, then add it */
                if (!excl) {
                    if (isint) iacc += (uint64_t)il_int_at(x, at);
                    else acc += il_tensor_get(x, at);
                }
                if (isint) int_put(y, at, (int64_t)iacc);
                else il_tensor_set(y, at, acc);
                if (excl) {
                    if (isint) iacc += (uint64_t)il_int_at(x, at);
                    else acc += il_tensor_get(x, at);
                }
            }
        }
    return IL_OK;
}

const il_op il_ops_reduce[] = {
    {"", "ReduceSum", 1, rsum_infer, rsum_ref, rsum_fast, 0},
    {"", "ReduceMean", 1, rmean_infer, rmean_ref, rmean_fast, 0},
    {"", "ReduceMax", 1, rmax_infer, rmax_ref, rmax_fast, 0},
    {"", "ReduceMin", 1, rmin_infer, rmin_ref, rmin_fast, 0},
    {"", "ReduceProd", 1, rprod_infer, rprod_ref, rprod_fast, 0},
    {"", "ReduceL1", 1, rl1_infer, rl1_ref, rl1_fast, 0},
    {"", "ReduceL2", 1, rl2_infer, rl2_ref, rl2_fast, 0},
    {"", "ReduceLogSum", 1, rlogsum_infer, rlogsum_ref, rlogsum_fast, 0},
    {"", "ReduceLogSumExp", 1, rlogsumexp_infer, rlogsumexp_ref, rlogsumexp_fast, 0},
    {"", "ReduceSumSquare", 1, rsumsq_infer, rsumsq_ref, rsumsq_fast, 0},
    {"", "ArgMax", 1, arg_infer, argmax_ref, NULL, 0},
    {"", "ArgMin", 1, arg_infer, argmin_ref, NULL, 0},
    {"", "CumSum", 11, cumsum_infer, cumsum_ref, NULL, 0},
    {0},
};
