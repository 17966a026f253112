/*
 * softmax.c - ops that look at a whole slice along one axis: Softmax, LogSoftmax, Hardmax and
 * TopK.
 *
 * The softmax family changed meaning in opset 13. Before it, the input is coerced to a matrix at
 * `axis` (default 1), [d0*..*d(axis-1), d(axis)*..*d(n-1)], and each row of that matrix is one
 * slice. From 13 a slice runs along `axis` alone (default -1). Both are the view
 * [outer, n, inner] of the input, with inner = 1 before opset 13, so one kernel serves both.
 *
 * TopK sorts each slice by value with ties broken by the lower index (the order the ONNX
 * reference and onnxruntime give); NaN counts as larger than every number.
 */
#include "kernel.h"

/* ---------------------------------------------------------------- Softmax family */

/* The [outer, n, inner] view of x for this node's axis and opset. */
static il_status sm_view(const il_kctx *c, const il_tensor *x, int64_t *outer, int64_t *n, int64_t *inner) {
    int r = x->rank, a;
    int per_axis = c->opset >= 13;
    int64_t axis = il_attr_int(c->node, "axis", per_axis ? -1 : 1);
    *outer = *n = *inner = 1;
    if (r == 0) return IL_OK; /* a scalar is one slice of one element */
    if (per_axis) {
        il_status s = il_norm_axis(c, axis, r, &a);
        if (s) return s;
        *inner = il_shape_numel(r - a - 1, x->dims + a + 1);
        *n = x->dims[a];
    } else {
        /* coercion takes axis in [-r, r]: axis r makes every row a single element */
        a = (int)(axis < 0 ? axis + r : axis);
        if (axis < -r || axis > r)
            return il_kerr(c, IL_ERR_INVALID, "axis %lld is out of range for rank %d", (long long)axis, r);
        *n = il_shape_numel(r - a, x->dims + a);
    }
    *outer = il_shape_numel(a, x->dims);
    return IL_OK;
}

static il_status sm_infer(il_kctx *c) {
    il_tensor *x = il_in(c, 0);
    if (!x) return il_kerr(c, IL_ERR_INVALID, "missing input 0");
    if (x->dtype != IL_F32 && x->dtype != IL_F64)
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    if (x->rank >= 0) {
        int64_t outer, n, inner;
        il_status s = sm_view(c, x, &outer, &n, &inner);
        if (s) return s;
    }
    il_same_as(c, 0, 0);
    return IL_OK;
}

enum { SM_SOFTMAX, SM_LOGSOFTMAX, SM_HARDMAX };

/* Readable version: for each slice, its max (subtracted so exp cannot overflow), the sum of
 * exponentials, then each element. Hardmax puts 1 at the first maximum. */
static il_status sm_ref(il_kctx *c, int kind) {
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0];
    int64_t outer, n, inner;
    il_status s = sm_view(c, x, &outer, &n, &inner);
    if (s) return s;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * n * inner + i, best = 0;
            double m = -INFINITY, sum = 0;
            for (int64_t j = 0; j < n; j++) {
                double v = il_tensor_get(x, base + j * inner);
                if (v > m) m = v, best = j;
            }
            for (int64_t j = 0; j < n; j++) sum += exp(il_tensor_get(x, base + j * inner) - m);
            for (int64_t j = 0; j < n; j++) {
                double v = il_tensor_get(x, base + j * inner), r;
                if (kind == SM_SOFTMAX) r = exp(v - m) / sum;
                else if (kind == SM_LOGSOFTMAX) r = (v - m) - log(sum);
                else r = j == best;
                il_tensor_set(y, base + j * inner, r);
            }
        }
    return IL_OK;
}

/* One contiguous slice (the usual last-axis case). Rows holding NaN or infinities take the
 * plain expf loop so they come out as the reference's (NaN where it gives NaN). */
static void sm_row(const float *x, float *y, int64_t n, int is_log) {
    float m = -INFINITY;
    int bad = 0;
#pragma omp simd reduction(max : m) reduction(| : bad)
    for (int64_t j = 0; j < n; j++) {
        m = x[j] > m ? x[j] : m;
        bad |= x[j] != x[j];
    }
    bad |= isinf(m);
    double sum = 0;
    if (!is_log) {
        if (bad) {
            for (int64_t j = 0; j < n; j++) sum += y[j] = expf(x[j] - m);
        } else {
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < n; j++) {
                float e = il_exp_le0(x[j] - m);
                y[j] = e;
                sum += e;
            }
        }
        float inv = (float)(1.0 / sum);
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] *= inv;
    } else {
        if (bad) {
            for (int64_t j = 0; j < n; j++) sum += expf(x[j] - m);
        } else {
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < n; j++) sum += il_exp_le0(x[j] - m);
        }
        /* (x - m) - log(sum): both terms <= 0, so no cancellation */
        float ls = (float)log(sum);
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = (x[j] - m) - ls;
    }
}

enum { SM_CHUNK = 256 };

/* max(a, b) for numbers, as a bit select so the loop around it vectorizes. */
static inline float max_sel(float a, float b) {
    union { float f; int32_t i; } ua = {a}, ub = {b};
    int32_t take_a = -(int32_t)(a > b);
    ua.i = (ua.i & take_a) | (ub.i & ~take_a);
    return ua.f;
}

/* Columns [0, w) of a strided [n, inner] slice block (softmax over the channel axis of NCHW):
 * walk whole rows so the reads stay contiguous. */
static void sm_cols(const float *x, float *y, int64_t n, int64_t inner, int64_t w, int is_log) {
    float m[SM_CHUNK];
    double sum[SM_CHUNK];
    int bad = 0;
    for (int64_t i = 0; i < w; i++) m[i] = -INFINITY, sum[i] = 0;
    for (int64_t j = 0; j < n; j++) {
        const float *xr = x + j * inner;
#pragma omp simd reduction(| : bad)
        for (int64_t i = 0; i < w; i++) {
            m[i] = max_sel(xr[i], m[i]);
            bad |= xr[i] != xr[i];
        }
    }
    for (int64_t i = 0; i < w; i++) bad |= isinf(m[i]);
    for (int64_t j = 0; j < n; j++) {
        const float *xr = x + j * inner;
        float *yr = y + j * inner;
        if (bad) {
            for (int64_t i = 0; i < w; i++) sum[i] += is_log ? expf(xr[i] - m[i]) : (yr[i] = expf(xr[i] - m[i]));
        } else if (is_log) {
#pragma omp simd
            for (int64_t i = 0; i < w; i++) sum[i] += il_exp_le0(xr[i] - m[i]);
        } else {
#pragma omp simd
            for (int64_t i = 0; i < w; i++) sum[i] += yr[i] = il_exp_le0(xr[i] - m[i]);
        }
    }
    float f[SM_CHUNK]; /* 1/sum, or log(sum) */
    for (int64_t i = 0; i < w; i++) f[i] = (float)(is_log ? log(sum[i]) : 1.0 / sum[i]);
    for (int64_t j = 0; j < n; j++) {
        const float *xr = x + j * inner;
        float *yr = y + j * inner;
        if (is_log) {
#pragma omp simd
            for (int64_t i = 0; i < w; i++) yr[i] = (xr[i] - m[i]) - f[i];
        } else {
#pragma omp simd
            for (int64_t i = 0; i < w; i++) yr[i] *= f[i];
        }
    }
}

static il_status sm_fast(il_kctx *c, int is_log) {
    const il_tensor *x = c->in[0];
    if (x->dtype != IL_F32) return sm_ref(c, is_log ? SM_LOGSOFTMAX : SM_SOFTMAX);
    int64_t outer, n, inner;
    il_status s = sm_view(c, x, &outer, &n, &inner);
    if (s) return s;
    const float *xp = x->data;
    float *yp = c->out[0]->data;
    if (inner == 1) {
        IL_PAR_FOR(c, o, outer) sm_row(xp + o * n, yp + o * n, n, is_log);
    } else {
        int64_t nch = (inner + SM_CHUNK - 1) / SM_CHUNK, ntask = outer * nch;
        IL_PAR_FOR(c, t, ntask) {
            int64_t o = t / nch, i0 = (t % nch) * SM_CHUNK, w = inner - i0 < SM_CHUNK ? inner - i0 : SM_CHUNK;
            int64_t at = o * n * inner + i0;
            sm_cols(xp + at, yp + at, n, inner, w, is_log);
        }
    }
    return IL_OK;
}

static il_status softmax_ref(il_kctx *c) { return sm_ref(c, SM_SOFTMAX); }
static il_status logsoftmax_ref(il_kctx *c) { return sm_ref(c, SM_LOGSOFTMAX); }
static il_status hardmax_ref(il_kctx *c) { return sm_ref(c, SM_HARDMAX); }
static il_status softmax_fast(il_kctx *c) { return sm_fast(c, 0); }
static il_status logsoftmax_fast(il_kctx *c) { return sm_fast(c, 1); }

/* ---------------------------------------------------------------- TopK */

static int topk_dtype_ok(il_dtype dt) {
    switch (dt) {
    case IL_F32: case IL_F64: case IL_I8: case IL_U8: case IL_I16: case IL_U16: case IL_I32: case IL_U32:
    case IL_I64: case IL_U64: return 1;
    default: return 0;
    }
}

/* k from the attribute (opset 1) or the one-element input (opset 10 on). *known is 0 while the
 * input has no data (plan time). */
static il_status topk_k(const il_kctx *c, int64_t *k, int *known) {
    *known = 1;
    if (c->opset < 10) {
        const il_attr *a = il_node_attr(c->node, "k");
        if (!a) return il_kerr(c, IL_ERR_INVALID, "TopK-1 needs the k attribute");
        *k = a->i;
    } else {
        const il_tensor *kt = il_in(c, 1);
        if (!kt) return il_kerr(c, IL_ERR_INVALID, "TopK needs the K input");
        if (kt->dtype != IL_I64 && kt->dtype != IL_I32)
            return il_kerr(c, IL_ERR_TYPE, "K must be int64, got %s", il_dtype_name(kt->dtype));
        if (kt->rank > 1 || (il_shape_known(kt) && il_tensor_numel(kt) != 1))
            return il_kerr(c, IL_ERR_INVALID, "K must hold exactly one value");
        if (!kt->data) {
            *known = 0;
            return IL_OK;
        }
        *k = il_int_at(kt, 0);
    }
    if (*k < 0) return il_kerr(c, IL_ERR_INVALID, "k = %lld is negative", (long long)*k);
    return IL_OK;
}

static il_status topk_infer(il_kctx *c) {
    il_tensor *x = il_in(c, 0);
    if (!x) return il_kerr(c, IL_ERR_INVALID, "missing input 0");
    if (!topk_dtype_ok(x->dtype)) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    int64_t k = -1;
    int known, a;
    il_status s = topk_k(c, &k, &known);
    if (s) return s;
    if (x->rank < 0) {
        il_set_out(c, 0, x->dtype, -1, NULL);
        il_set_out(c, 1, IL_I64, -1, NULL);
        return IL_OK;
    }
    int64_t axis = il_attr_int(c->node, "axis", -1), dims[IL_MAX_RANK];
    if (x->rank == 0) return il_kerr(c, IL_ERR_INVALID, "axis %lld is out of range for rank 0", (long long)axis);
    s = il_norm_axis(c, axis, x->rank, &a);
    if (s) return s;
    if (known && x->dims[a] >= 0 && k > x->dims[a])
        return il_kerr(c, IL_ERR_INVALID, "k = %lld is larger than axis %d of size %lld", (long long)k, a,
                       (long long)x->dims[a]);
    memcpy(dims, x->dims, (size_t)x->rank * sizeof *dims);
    dims[a] = known ? k : -1;
    il_set_out(c, 0, x->dtype, x->rank, dims);
    il_set_out(c, 1, IL_I64, x->rank, dims);
    return IL_OK;
}

/* A sort key: floats compare by f (n = 0), integers by n (f = 0), then the index. */
typedef struct {
    double f;
    int64_t n;
    int64_t idx;
} topk_key;

static int key_value_cmp(const topk_key *a, const topk_key *b) {
    if (isnan(a->f) || isnan(b->f)) return !!isnan(a->f) - !!isnan(b->f); /* NaN is the largest */
    if (a->f != b->f) return a->f < b->f ? -1 : 1;
    return a->n < b->n ? -1 : a->n > b->n;
}

static int key_idx_cmp(const topk_key *a, const topk_key *b) { return a->idx < b->idx ? -1 : a->idx > b->idx; }

static int key_smallest_first(const void *pa, const void *pb) {
    int d = key_value_cmp(pa, pb);
    return d ? d : key_idx_cmp(pa, pb);
}

static int key_largest_first(const void *pa, const void *pb) {
    int d = key_value_cmp(pb, pa);
    return d ? d : key_idx_cmp(pa, pb);
}

static topk_key topk_key_at(const il_tensor *x, int64_t at, int64_t idx) {
    topk_key key = {0, 0, idx};
    switch (x->dtype) {
    case IL_F32: case IL_F64: key.f = il_tensor_get(x, at); break;
    case IL_I64: key.n = ((const int64_t *)x->data)[at]; break;
    /* flipping the top bit maps uint64 order onto int64 order */
    case IL_U64: key.n = (int64_t)(((const uint64_t *)x->data)[at] ^ (UINT64_C(1) << 63)); break;
    default: key.n = (int64_t)il_tensor_get(x, at); break; /* narrower ints are exact in double */
    }
    return key;
}

/* Sorts each whole slice (sorted = 0 allows any order, so sorted output is always right). */
static il_status topk_ref(il_kctx *c) {
    const il_tensor *x = c->in[0];
    il_tensor *vals = c->out[0], *idxs = il_out(c, 1);
    int64_t k;
    int known, a;
    il_status s = topk_k(c, &k, &known);
    if (s) return s;
    s = il_norm_axis(c, il_attr_int(c->node, "axis", -1), x->rank, &a);
    if (s) return s;
    int64_t n = x->dims[a], outer = il_shape_numel(a, x->dims), inner = il_shape_numel(x->rank - a - 1, x->dims + a + 1);
    if (k > n) return il_kerr(c, IL_ERR_INVALID, "k = %lld is larger than axis %d of size %lld", (long long)k, a, (long long)n);
    int largest = il_attr_int(c->node, "largest", 1) != 0;
    size_t es = il_dtype_size(x->dtype);
    topk_key *keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
    if (!keys) return il_kerr(c, IL_ERR_OOM, "out of memory");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            for (int64_t j = 0; j < n; j++) keys[j] = topk_key_at(x, (o * n + j) * inner + i, j);
            qsort(keys, (size_t)n, sizeof *keys, largest ? key_largest_first : key_smallest_first);
            for (int64_t t = 0; t < k; t++) {
                int64_t to = (o * k + t) * inner + i, from = (o * n + keys[t].idx) * inner + i;
                if (vals) memcpy((char *)vals->data + to * es, (const char *)x->data + from * es, es);
                if (idxs) ((int64_t *)idxs->data)[to] = keys[t].idx;
            }
        }
    free(keys);
    return IL_OK;
}

const il_op il_ops_softmax[] = {
    {"", "Softmax", 1, sm_infer, softmax_ref, softmax_fast, 0},
    {"", "LogSoftmax", 1, sm_infer, logsoftmax_ref, logsoftmax_fast, 0},
    {"", "Hardmax", 1, sm_infer, hardmax_ref, NULL, 0},
    {"", "TopK", 1, topk_infer, topk_ref, NULL, 0},
    {0},
};
