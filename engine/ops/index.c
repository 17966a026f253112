/*
 * index.c - ops that pick or place elements by index: Slice, Gather, GatherElements,
 * GatherND, ScatterND, ScatterElements (and its old name Scatter), Trilu, NonZero, Compress.
 *
 * All are flagged IL_OPF_ANY_DTYPE: values move as il_dtype_size bytes, except where a
 * scatter reduction (add/mul/max/min) has to compute, which goes through a small dtype
 * switch. Indices may be int32 or int64 and negative (counted from the end). An index out of
 * range is the user's error: IL_ERR_INVALID naming it, never a read out of bounds.
 */
#include "kernel.h"

/* Row-major strides in elements. */
static void strides_of(int rank, const int64_t *dims, int64_t *st) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) { st[i] = s; s *= dims[i]; }
}

static void next_index(int rank, const int64_t *dims, int64_t *idx) {
    for (int i = rank - 1; i >= 0; i--) {
        if (++idx[i] < dims[i]) return;
        idx[i] = 0;
    }
}

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p = (d[i] < 0 || p < 0) ? -1 : p * d[i];
    return p;
}

static void unknown_rank(il_kctx *c, int i, il_dtype dt) {
    il_tensor *o = il_out(c, i);
    if (o) { o->dtype = dt; o->rank = -1; }
}

static void copy_elem(void *dst, int64_t i, const void *src, int64_t j, size_t es) {
    memcpy((char *)dst + i * (int64_t)es, (const char *)src + j * (int64_t)es, es);
}

/* Index v of an axis of size n, negative counting from the end; -1 (error set) when outside. */
static int64_t norm_index(const il_kctx *c, int64_t v, int64_t n, int axis) {
    int64_t i = v < 0 ? v + n : v;
    if (i < 0 || i >= n) {
        il_kerr(c, IL_ERR_INVALID, "index %lld is out of range for axis %d of size %lld", (long long)v, axis,
                (long long)n);
        return -1;
    }
    return i;
}

static int is_index_dtype(il_dtype t) { return t == IL_I64 || t == IL_I32; }

/* ---------------------------------------------------------------- Slice */

/* Per input axis: first element, step and output length (-1: not known before running). */
typedef struct {
    int64_t start[IL_MAX_RANK], step[IL_MAX_RANK], len[IL_MAX_RANK];
} slice_plan;

/* Slice's int lists: attributes in opset 1, inputs from opset 10. *n = -1 when not known. */
static il_status slice_list(const il_kctx *c, const char *name, int slot, int64_t *v, int *n, int *present) {
    const il_tensor *t = il_in(c, slot);
    *present = 1;
    if (c->opset < 10) {
        const int64_t *a;
        *n = il_attr_ints(c->node, name, &a);
        *present = a != NULL;
        if (*n > IL_MAX_RANK) return il_kerr(c, IL_ERR_INVALID, "%s has %d values, more than the rank", name, *n);
        for (int i = 0; i < *n; i++) v[i] = a[i];
        return IL_OK;
    }
    if (!t) { *present = 0; *n = 0; return IL_OK; }
    if (!t->data) { *n = -1; return IL_OK; }
    if (t->rank != 1 || t->dims[0] > IL_MAX_RANK)
        return il_kerr(c, IL_ERR_INVALID, "%s must be 1-D with at most %d values", name, IL_MAX_RANK);
    *n = (int)t->dims[0];
    for (int i = 0; i < *n; i++) v[i] = il_int_at(t, i);
    return IL_OK;
}

static il_status slice_make(const il_kctx *c, const il_tensor *x, slice_plan *p) {
    int64_t starts[IL_MAX_RANK], ends[IL_MAX_RANK], axes[IL_MAX_RANK], steps[IL_MAX_RANK];
    int ns, ne, na, nst, has_s, has_e, has_a, has_st, r = x->rank;
    il_status st;
    if ((st = slice_list(c, "starts", 1, starts, &ns, &has_s)) || (st = slice_list(c, "ends", 2, ends, &ne, &has_e)) ||
        (st = slice_list(c, "axes", 3, axes, &na, &has_a)) || (st = slice_list(c, "steps", 4, steps, &nst, &has_st)))
        return st;
    if (!has_s || !has_e) return il_kerr(c, IL_ERR_INVALID, "needs starts and ends");
    for (int a = 0; a < r; a++) { p->start[a] = 0; p->step[a] = 1; p->len[a] = x->dims[a]; }
    if (!has_a) { /* default: the first len(starts) axes */
        na = ns;
        for (int i = 0; i < ns; i++) axes[i] = i;
    }
    if (ns < 0 || ne < 0 || na < 0 || nst < 0) { /* values not known yet: the axes they touch are unknown */
        for (int a = 0; a < r; a++)
            if (na < 0) p->len[a] = -1;
        for (int i = 0; i < na; i++)
            if (axes[i] >= -r && axes[i] < r) p->len[axes[i] < 0 ? axes[i] + r : axes[i]] = -1;
        return IL_OK;
    }
    if (ns != ne || ns != na || (has_st && nst != ns))
        return il_kerr(c, IL_ERR_INVALID, "starts, ends, axes and steps differ in length (%d, %d, %d, %d)", ns, ne, na,
                       has_st ? nst : ns);
    int seen[IL_MAX_RANK] = {0};
    for (int i = 0; i < ns; i++) {
        int a;
        if ((st = il_norm_axis(c, axes[i], r, &a))) return st;
        if (seen[a]) return il_kerr(c, IL_ERR_INVALID, "axis %d is sliced twice", a);
        seen[a] = 1;
        int64_t step = has_st ? steps[i] : 1, d = x->dims[a], s = starts[i], e = ends[i];
        if (step == 0) return il_kerr(c, IL_ERR_INVALID, "step on axis %d is 0", a);
        p->step[a] = step;
        if (d < 0) { p->len[a] = -1; continue; }
        /* the ONNX rule: negative counts from the end, then clamp; a negative step walks back
         * from at most d-1 to at least -1 (one before the first element) */
        if (s < 0) s += d;
        if (e < 0) e += d;
        if (step > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            p->len[a] = e > s ? (e - s - 1) / step + 1 : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            p->len[a] = s > e ? (e - s + 1) / step + 1 : 0; /* both negative: no -step overflow */
        }
        p->start[a] = s;
    }
    return IL_OK;
}

static il_status slice_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    slice_plan p;
    if (x->rank < 0) { unknown_rank(c, 0, x->dtype); return IL_OK; }
    il_status st = slice_make(c, x, &p);
    if (st) return st;
    il_set_out(c, 0, x->dtype, x->rank, p.len);
    return IL_OK;
}

/* Output element i (multi-index) reads input element start + i*step on every axis. */
static il_status slice_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_tensor *y = il_out(c, 0);
    slice_plan p;
    int64_t xs[IL_MAX_RANK], idx[IL_MAX_RANK] = {0}, n = il_tensor_numel(y);
    size_t es = il_dtype_size(x->dtype);
    il_status st = slice_make(c, x, &p);
    if (st) return st;
    strides_of(x->rank, x->dims, xs);
    for (int64_t k = 0; k < n; k++) {
        int64_t off = 0;
        for (int a = 0; a < x->rank; a++) off += (p.start[a] + idx[a] * p.step[a]) * xs[a];
        copy_elem(y->data, k, x->data, off, es);
        next_index(y->rank, y->dims, idx);
    }
    return IL_OK;
}

/* Rows along the last axis: one memcpy each when its step is 1; threads split the rows. */
static il_status slice_fast(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_tensor *y = il_out(c, 0);
    slice_plan p;
    int64_t xs[IL_MAX_RANK], n = il_tensor_numel(y), es = (int64_t)il_dtype_size(x->dtype);
    il_status st = slice_make(c, x, &p);
    if (st) return st;
    if (n == 0) return IL_OK;
    if (x->rank == 0) { memcpy(y->data, x->data, (size_t)es); return IL_OK; }
    strides_of(x->rank, x->dims, xs);
    int r = x->rank;
    int64_t run = y->dims[r - 1], rows = n / run;
    IL_PAR_FOR(c, row, rows) {
        int64_t rem = row, off = p.start[r - 1] * xs[r - 1];
        for (int a = r - 2; a >= 0; a--) {
            off += (p.start[a] + rem % y->dims[a] * p.step[a]) * xs[a];
            rem /= y->dims[a];
        }
        char *dst = (char *)y->data + row * run * es;
        const char *src = (const char *)x->data + off * es;
        if (p.step[r - 1] == 1) memcpy(dst, src, (size_t)(run * es));
        else
            for (int64_t j = 0; j < run; j++) memcpy(dst + j * es, src + j * p.step[r - 1] * es, (size_t)es);
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- Gather family */

static il_status gather_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1);
    if (!is_index_dtype(ind->dtype))
        return il_kerr(c, IL_ERR_TYPE, "indices must be int32 or int64, not %s", il_dtype_name(ind->dtype));
    if (x->rank < 0 || ind->rank < 0) { unknown_rank(c, 0, x->dtype); return IL_OK; }
    int axis, r = x->rank + ind->rank - 1;
    int64_t out[IL_MAX_RANK];
    il_status st = il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis);
    if (st) return st;
    if (x->rank == 0) return il_kerr(c, IL_ERR_INVALID, "cannot gather from a scalar");
    if (r > IL_MAX_RANK) return il_kerr(c, IL_ERR_UNSUPPORTED, "output rank %d is above %d", r, IL_MAX_RANK);
    if (ind->data && x->dims[axis] >= 0) /* known indices (constants, or at run time): check now */
        for (int64_t j = 0, n = il_tensor_numel(ind); j < n; j++)
            if (norm_index(c, il_int_at(ind, j), x->dims[axis], axis) < 0) return IL_ERR_INVALID;
    for (int i = 0, j = 0; i < x->rank; i++) {
        if (i != axis) { out[j++] = x->dims[i]; continue; }
        for (int k = 0; k < ind->rank; k++) out[j++] = ind->dims[k];
    }
    il_set_out(c, 0, x->dtype, r, out);
    return IL_OK;
}

/* out[o, j, i] = data[o, indices[j], i] with o over the dims before the axis, i after it. */
static il_status gather_run(il_kctx *c, int fast) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1);
    il_tensor *y = il_out(c, 0);
    int axis;
    il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis);
    int64_t outer = prod(x->dims, 0, axis), inner = prod(x->dims, axis + 1, x->rank), d = x->dims[axis];
    int64_t ni = il_tensor_numel(ind), es = (int64_t)il_dtype_size(x->dtype);
    for (int64_t j = 0; j < ni; j++) /* check them all first: an error leaves no half-written output */
        if (norm_index(c, il_int_at(ind, j), d, axis) < 0) return IL_ERR_INVALID;
    if (!fast) {
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < ni; j++) {
                int64_t k = norm_index(c, il_int_at(ind, j), d, axis);
                for (int64_t i = 0; i < inner; i++)
                    copy_elem(y->data, (o * ni + j) * inner + i, x->data, (o * d + k) * inner + i, (size_t)es);
            }
        return IL_OK;
    }
    IL_PAR_FOR(c, t, outer * ni) {
        int64_t o = t / ni, j = t % ni, k = il_int_at(ind, j);
        if (k < 0) k += d;
        memcpy((char *)y->data + t * inner * es, (const char *)x->data + (o * d + k) * inner * es,
               (size_t)(inner * es));
    }
    return IL_OK;
}

static il_status gather_ref(il_kctx *c) { return gather_run(c, 0); }
static il_status gather_fast(il_kctx *c) { return gather_run(c, 1); }

static il_status gather_elements_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1);
    if (!is_index_dtype(ind->dtype))
        return il_kerr(c, IL_ERR_TYPE, "indices must be int32 or int64, not %s", il_dtype_name(ind->dtype));
    if (x->rank >= 0 && ind->rank >= 0) {
        int axis;
        il_status st = il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis);
        if (st) return st;
        if (ind->rank != x->rank)
            return il_kerr(c, IL_ERR_SHAPE, "indices have rank %d, data rank %d", ind->rank, x->rank);
        for (int i = 0; i < x->rank; i++)
            if (i != axis && x->dims[i] >= 0 && ind->dims[i] > x->dims[i])
                return il_kerr(c, IL_ERR_SHAPE, "indices dim %d (%lld) exceeds the data's (%lld)", i,
                               (long long)ind->dims[i], (long long)x->dims[i]);
    }
    il_set_out(c, 0, x->dtype, ind->rank, ind->dims);
    return IL_OK;
}

/* out[i] = data[i with the axis coordinate replaced by indices[i]]. */
static il_status gather_elements_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1);
    il_tensor *y = il_out(c, 0);
    int axis;
    int64_t xs[IL_MAX_RANK], idx[IL_MAX_RANK] = {0}, n = il_tensor_numel(ind);
    il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis);
    strides_of(x->rank, x->dims, xs);
    for (int64_t k = 0; k < n; k++) {
        int64_t j = norm_index(c, il_int_at(ind, k), x->dims[axis], axis), off = 0;
        if (j < 0) return IL_ERR_INVALID;
        for (int i = 0; i < x->rank; i++) off += (i == axis ? j : idx[i]) * xs[i];
        copy_elem(y->data, k, x->data, off, il_dtype_size(x->dtype));
        next_index(ind->rank, ind->dims, idx);
    }
    return IL_OK;
}

/* GatherND/ScatterND geometry: b batch dims, m = indices.shape[-1] coordinates per tuple. */
static il_status nd_check(il_kctx *c, const il_tensor *x, const il_tensor *ind, int b, int *m) {
    if (!is_index_dtype(ind->dtype))
        return il_kerr(c, IL_ERR_TYPE, "indices must be int32 or int64, not %s", il_dtype_name(ind->dtype));
    if (ind->rank < 1 || b < 0 || b >= ind->rank || b >= x->rank)
        return il_kerr(c, IL_ERR_INVALID, "batch_dims %d does not fit data rank %d and indices rank %d", b, x->rank,
                       ind->rank);
    for (int i = 0; i < b; i++)
        if (x->dims[i] >= 0 && ind->dims[i] >= 0 && x->dims[i] != ind->dims[i])
            return il_kerr(c, IL_ERR_SHAPE, "batch dim %d is %lld in data, %lld in indices", i, (long long)x->dims[i],
                           (long long)ind->dims[i]);
    *m = (int)ind->dims[ind->rank - 1];
    if (ind->dims[ind->rank - 1] >= 0 && (*m < 1 || *m > x->rank - b))
        return il_kerr(c, IL_ERR_INVALID, "indices' last dim %d must be in [1, %d]", *m, x->rank - b);
    return IL_OK;
}

static il_status gather_nd_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1);
    int b = (int)il_attr_int(c->node, "batch_dims", 0), m;
    if (x->rank < 0 || ind->rank < 0 || (ind->rank > 0 && ind->dims[ind->rank - 1] < 0)) {
        unknown_rank(c, 0, x->dtype);
        return IL_OK;
    }
    il_status st = nd_check(c, x, ind, b, &m);
    if (st) return st;
    int64_t out[IL_MAX_RANK];
    int r = 0;
    if (ind->rank - 1 + x->rank - b - m > IL_MAX_RANK)
        return il_kerr(c, IL_ERR_UNSUPPORTED, "output rank is above %d", IL_MAX_RANK);
    for (int i = 0; i < ind->rank - 1; i++) out[r++] = ind->dims[i];
    for (int i = b + m; i < x->rank; i++) out[r++] = x->dims[i];
    il_set_out(c, 0, x->dtype, r, out);
    return IL_OK;
}

/* Offset (in elements, within one batch) of the slice that index tuple t points at. */
static int64_t nd_offset(const il_kctx *c, const il_tensor *x, const il_tensor *ind, int b, int m, int64_t t) {
    int64_t off = 0;
    for (int k = 0; k < m; k++) {
        int64_t j = norm_index(c, il_int_at(ind, t * m + k), x->dims[b + k], b + k);
        if (j < 0) return -1;
        off = off * x->dims[b + k] + j;
    }
    return off * prod(x->dims, b + m, x->rank);
}

static il_status gather_nd_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1);
    il_tensor *y = il_out(c, 0);
    int b = (int)il_attr_int(c->node, "batch_dims", 0), m = (int)ind->dims[ind->rank - 1];
    int64_t batches = prod(x->dims, 0, b), per = prod(ind->dims, b, ind->rank - 1);
    int64_t slice = prod(x->dims, b + m, x->rank), bstride = prod(x->dims, b, x->rank);
    size_t es = il_dtype_size(x->dtype);
    for (int64_t bt = 0; bt < batches; bt++)
        for (int64_t j = 0; j < per; j++) {
            int64_t t = bt * per + j, off = nd_offset(c, x, ind, b, m, t);
            if (off < 0) return IL_ERR_INVALID;
            memcpy((char *)y->data + t * slice * (int64_t)es,
                   (const char *)x->data + (bt * bstride + off) * (int64_t)es, (size_t)slice * es);
        }
    return IL_OK;
}

/* ---------------------------------------------------------------- Scatter family */

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static il_status reduction_of(const il_kctx *c, int *red) {
    const char *s = il_attr_string(c->node, "reduction", "none");
    static const char *names[] = {"none", "add", "mul", "max", "min"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) { *red = i; return IL_OK; }
    return il_kerr(c, IL_ERR_INVALID, "unknown reduction '%s'", s);
}

/* dst = dst (op) src for one element. Integers wrap (through unsigned) instead of overflowing. */
#define RED_INT(T)                                                                   \
    {                                                                                \
        T *d = dst, s = *(const T *)src;                                             \
        if (red == RED_ADD) *d = (T)((uint64_t)*d + (uint64_t)s);                    \
        else if (red == RED_MUL) *d = (T)((uint64_t)*d * (uint64_t)s);               \
        else if (red == RED_MAX) *d = *d > s ? *d : s;                               \
        else *d = *d < s ? *d : s;                                                   \
    } break
#define RED_FLT(T, LOAD, STORE)                                                      \
    {                                                                                \
        T *d = dst;                                                                  \
        double a = LOAD(*d), s = LOAD(*(const T *)src);                              \
        double v = red == RED_ADD ? a + s : red == RED_MUL ? a * s : red == RED_MAX ? fmax(a, s) : fmin(a, s); \
        *d = STORE(v);                                                               \
    } break
#define ID(v) (v)
#define TO_F32(v) ((float)(v))
#define F16_LOAD(v) il_f16_to_f32(v)
#define F16_STORE(v) il_f32_to_f16((float)(v))
#define BF16_LOAD(v) il_bf16_to_f32(v)
#define BF16_STORE(v) il_f32_to_bf16((float)(v))

static void reduce_elem(il_dtype dt, void *dst, const void *src, int red) {
    if (red == RED_NONE) { memcpy(dst, src, il_dtype_size(dt)); return; }
    switch (dt) {
    case IL_F32: RED_FLT(float, ID, TO_F32);
    case IL_F64: RED_FLT(double, ID, ID);
    case IL_F16: RED_FLT(uint16_t, F16_LOAD, F16_STORE);
    case IL_BF16: RED_FLT(uint16_t, BF16_LOAD, BF16_STORE);
    case IL_I8: RED_INT(int8_t);
    case IL_U8: RED_INT(uint8_t);
    case IL_I16: RED_INT(int16_t);
    case IL_U16: RED_INT(uint16_t);
    case IL_I32: RED_INT(int32_t);
    case IL_U32: RED_INT(uint32_t);
    case IL_I64: RED_INT(int64_t);
    case IL_U64: RED_INT(uint64_t);
    case IL_BOOL: { /* add and max are "or", mul and min are "and" */
        uint8_t *d = dst, s = *(const uint8_t *)src != 0;
        *d = (red == RED_ADD || red == RED_MAX) ? (*d || s) : (*d && s);
        break;
    }
    default: break;
    }
}

static il_status scatter_nd_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1), *upd = il_in(c, 2);
    int m, red;
    il_status st = reduction_of(c, &red);
    if (st) return st;
    if (upd->dtype != x->dtype)
        return il_kerr(c, IL_ERR_TYPE, "updates are %s, data %s", il_dtype_name(upd->dtype), il_dtype_name(x->dtype));
    if (il_shape_known(x) && il_shape_known(ind) && il_shape_known(upd)) {
        if ((st = nd_check(c, x, ind, 0, &m))) return st;
        /* updates.shape must be indices.shape[:-1] + data.shape[m:] */
        int ok = upd->rank == ind->rank - 1 + x->rank - m;
        for (int i = 0; ok && i < upd->rank; i++)
            ok = upd->dims[i] == (i < ind->rank - 1 ? ind->dims[i] : x->dims[m + i - (ind->rank - 1)]);
        if (!ok)
            return il_kerr(c, IL_ERR_SHAPE, "updates' shape does not match indices.shape[:-1] + data.shape[%d:]", m);
    }
    il_same_as(c, 0, 0);
    return IL_OK;
}

static il_status scatter_nd_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1), *upd = il_in(c, 2);
    il_tensor *y = il_out(c, 0);
    int red, m = (int)ind->dims[ind->rank - 1];
    int64_t n = prod(ind->dims, 0, ind->rank - 1), slice = prod(x->dims, m, x->rank);
    size_t es = il_dtype_size(x->dtype);
    reduction_of(c, &red);
    for (int64_t t = 0; t < n; t++) /* check every index before writing anything */
        if (nd_offset(c, x, ind, 0, m, t) < 0) return IL_ERR_INVALID;
    if (y->data != x->data) memcpy(y->data, x->data, il_tensor_bytes(y));
    for (int64_t t = 0; t < n; t++) {
        int64_t off = nd_offset(c, x, ind, 0, m, t);
        for (int64_t e = 0; e < slice; e++)
            reduce_elem(x->dtype, (char *)y->data + (off + e) * (int64_t)es,
                        (const char *)upd->data + (t * slice + e) * (int64_t)es, red);
    }
    return IL_OK;
}

static il_status scatter_elements_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1), *upd = il_in(c, 2);
    int red, axis;
    il_status st = reduction_of(c, &red);
    if (st) return st;
    if (!is_index_dtype(ind->dtype))
        return il_kerr(c, IL_ERR_TYPE, "indices must be int32 or int64, not %s", il_dtype_name(ind->dtype));
    if (upd->dtype != x->dtype)
        return il_kerr(c, IL_ERR_TYPE, "updates are %s, data %s", il_dtype_name(upd->dtype), il_dtype_name(x->dtype));
    if (x->rank >= 0 && ind->rank >= 0 && upd->rank >= 0) {
        if ((st = il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis))) return st;
        if (ind->rank != x->rank || upd->rank != ind->rank)
            return il_kerr(c, IL_ERR_SHAPE, "data, indices and updates need one rank (%d, %d, %d)", x->rank, ind->rank,
                           upd->rank);
        for (int i = 0; i < x->rank; i++) {
            if (ind->dims[i] >= 0 && upd->dims[i] >= 0 && ind->dims[i] != upd->dims[i])
                return il_kerr(c, IL_ERR_SHAPE, "updates and indices differ in dim %d", i);
            if (i != axis && x->dims[i] >= 0 && ind->dims[i] > x->dims[i])
                return il_kerr(c, IL_ERR_SHAPE, "indices dim %d (%lld) exceeds the data's (%lld)", i,
                               (long long)ind->dims[i], (long long)x->dims[i]);
        }
    }
    il_same_as(c, 0, 0);
    return IL_OK;
}

/* out = data; then out[i with axis coordinate indices[i]] (op)= updates[i], in index order. */
static il_status scatter_elements_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1), *upd = il_in(c, 2);
    il_tensor *y = il_out(c, 0);
    int axis, red;
    int64_t xs[IL_MAX_RANK], idx[IL_MAX_RANK] = {0}, n = il_tensor_numel(ind);
    size_t es = il_dtype_size(x->dtype);
    il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis);
    reduction_of(c, &red);
    for (int64_t k = 0; k < n; k++)
        if (norm_index(c, il_int_at(ind, k), x->dims[axis], axis) < 0) return IL_ERR_INVALID;
    strides_of(x->rank, x->dims, xs);
    if (y->data != x->data) memcpy(y->data, x->data, il_tensor_bytes(y));
    for (int64_t k = 0; k < n; k++) {
        int64_t j = norm_index(c, il_int_at(ind, k), x->dims[axis], axis), off = 0;
        for (int i = 0; i < x->rank; i++) off += (i == axis ? j : idx[i]) * xs[i];
        reduce_elem(x->dtype, (char *)y->data + off * (int64_t)es, (const char *)upd->data + k * (int64_t)es, red);
        next_index(ind->rank, ind->dims, idx);
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- Trilu */

static il_status trilu_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *k = il_in(c, 1);
    if (x->rank >= 0 && x->rank < 2) return il_kerr(c, IL_ERR_INVALID, "input needs rank >= 2, has %d", x->rank);
    if (k && k->rank >= 0 && il_shape_known(k) && il_tensor_numel(k) != 1)
        return il_kerr(c, IL_ERR_INVALID, "k must be a scalar");
    il_same_as(c, 0, 0);
    return IL_OK;
}

/* Keep element (i, j) of each matrix when j - i >= k (upper) or j - i <= k (lower); else 0. */
static il_status trilu_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *kt = il_in(c, 1);
    il_tensor *y = il_out(c, 0);
    int upper = il_attr_int(c->node, "upper", 1) != 0;
    int64_t k = kt ? il_int_at(kt, 0) : 0, rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    int64_t mats = prod(x->dims, 0, x->rank - 2);
    size_t es = il_dtype_size(x->dtype);
    for (int64_t mt = 0; mt < mats; mt++)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) {
                int64_t e = (mt * rows + i) * cols + j;
                int keep = upper ? j - i >= k : j - i <= k;
                if (keep) copy_elem(y->data, e, x->data, e, es);
                else memset((char *)y->data + e * (int64_t)es, 0, es); /* zero bytes are 0 in every dtype */
            }
    return IL_OK;
}

/* ---------------------------------------------------------------- NonZero / Compress */

/* Whether element i is nonzero; -0.0 counts as zero, NaN as nonzero. */
static int is_nonzero(const il_tensor *t, int64_t i) {
    const unsigned char *p = (const unsigned char *)t->data + i * (int64_t)il_dtype_size(t->dtype);
    switch (t->dtype) {
    case IL_F16: case IL_BF16: { uint16_t v; memcpy(&v, p, 2); return (v & 0x7fff) != 0; }
    case IL_F32: { uint32_t v; memcpy(&v, p, 4); return (v & 0x7fffffffu) != 0; }
    case IL_F64: { uint64_t v; memcpy(&v, p, 8); return (v & 0x7fffffffffffffffull) != 0; }
    default:
        for (size_t k = 0; k < il_dtype_size(t->dtype); k++)
            if (p[k]) return 1;
        return 0;
    }
}

static il_status nonzero_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int64_t out[2] = {x->rank < 0 ? -1 : x->rank > 0 ? x->rank : 1, -1};
    if (x->data) {
        out[1] = 0;
        for (int64_t i = 0, n = il_tensor_numel(x); i < n; i++) out[1] += is_nonzero(x, i);
    }
    il_set_out(c, 0, IL_I64, 2, out);
    return IL_OK;
}

/* Output [rank, count]: column j holds the multi-index of the j-th nonzero, in row-major order.
 * A scalar counts as a 1-D tensor of one element, as numpy does. */
static il_status nonzero_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int64_t n = il_tensor_numel(x), count = 0, idx[IL_MAX_RANK] = {0};
    for (int64_t i = 0; i < n; i++) count += is_nonzero(x, i);
    int64_t dims[2] = {x->rank > 0 ? x->rank : 1, count};
    il_status st = il_kctx_alloc_output(c, 0, IL_I64, 2, dims);
    if (st) return st;
    int64_t *y = il_out(c, 0)->data;
    for (int64_t i = 0, j = 0; i < n; i++) {
        if (is_nonzero(x, i)) {
            for (int a = 0; a < x->rank; a++) y[a * count + j] = idx[a];
            if (x->rank == 0) y[j] = 0;
            j++;
        }
        next_index(x->rank, x->dims, idx);
    }
    return IL_OK;
}

/* Compress keeps the slices along axis (of the flattened input when no axis) whose condition
 * is true; a condition shorter than the axis leaves the rest out. */
static il_status compress_geom(il_kctx *c, const il_tensor *x, const il_tensor *cond, int *axis, int64_t *out) {
    const il_attr *a = il_node_attr(c->node, "axis");
    int64_t len = il_shape_known(x) ? il_tensor_numel(x) : -1;
    if (cond->rank >= 0 && cond->rank != 1)
        return il_kerr(c, IL_ERR_INVALID, "condition must be 1-D, has rank %d", cond->rank);
    *axis = -1;
    if (a) {
        if (x->rank == 0) return il_kerr(c, IL_ERR_INVALID, "a scalar has no axis %lld", (long long)a->i);
        il_status st = il_norm_axis(c, a->i, x->rank, axis);
        if (st) return st;
        len = x->dims[*axis];
    }
    int64_t kept = -1;
    if (cond->data) {
        kept = 0;
        for (int64_t i = 0, n = il_tensor_numel(cond); i < n; i++) {
            if (!is_nonzero(cond, i)) continue;
            if (len >= 0 && i >= len)
                return il_kerr(c, IL_ERR_INVALID, "condition %lld is true past the axis size %lld", (long long)i,
                               (long long)len);
            kept++;
        }
    }
    if (*axis < 0) { out[0] = kept; return IL_OK; }
    memcpy(out, x->dims, sizeof(int64_t) * (size_t)x->rank);
    out[*axis] = kept;
    return IL_OK;
}

static il_status compress_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int axis = -1;
    int64_t out[IL_MAX_RANK];
    if (x->rank < 0) { unknown_rank(c, 0, x->dtype); return IL_OK; }
    il_status st = compress_geom(c, x, il_in(c, 1), &axis, out);
    if (st) return st;
    il_set_out(c, 0, x->dtype, axis < 0 ? 1 : x->rank, out);
    return IL_OK;
}

static il_status compress_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *cond = il_in(c, 1);
    int axis = -1;
    int64_t out[IL_MAX_RANK];
    il_status st = compress_geom(c, x, cond, &axis, out);
    if (st || (st = il_kctx_alloc_output(c, 0, x->dtype, axis < 0 ? 1 : x->rank, out))) return st;
    il_tensor *y = il_out(c, 0);
    /* rows: dims before the axis; each kept slice along it is `inner` contiguous elements */
    int64_t outer = axis < 0 ? 1 : prod(x->dims, 0, axis), d = axis < 0 ? il_tensor_numel(x) : x->dims[axis];
    int64_t inner = axis < 0 ? 1 : prod(x->dims, axis + 1, x->rank), nc = il_tensor_numel(cond), pos = 0;
    int64_t es = (int64_t)il_dtype_size(x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < d && i < nc; i++)
            if (is_nonzero(cond, i)) {
                memcpy((char *)y->data + pos * inner * es, (const char *)x->data + (o * d + i) * inner * es,
                       (size_t)(inner * es));
                pos++;
            }
    return IL_OK;
}

#define ANY IL_OPF_ANY_DTYPE
const il_op il_ops_index[] = {
    {"", "Slice", 1, slice_infer, slice_ref, slice_fast, ANY},
    {"", "Gather", 1, gather_infer, gather_ref, gather_fast, ANY},
    {"", "GatherElements", 11, gather_elements_infer, gather_elements_ref, NULL, ANY},
    {"", "GatherND", 11, gather_nd_infer, gather_nd_ref, NULL, ANY},
    {"", "ScatterND", 11, scatter_nd_infer, scatter_nd_ref, NULL, ANY},
    {"", "ScatterElements", 11, scatter_elements_infer, scatter_elements_ref, NULL, ANY},
    {"", "Scatter", 9, scatter_elements_infer, scatter_elements_ref, NULL, ANY},
    {"", "Trilu", 14, trilu_infer, trilu_ref, NULL, ANY},
    {"", "NonZero", 9, nonzero_infer, nonzero_ref, NULL, ANY | IL_OPF_DYNAMIC_OUT},
    {"", "Compress", 9, compress_infer, compress_ref, NULL, ANY | IL_OPF_DYNAMIC_OUT},
    {0},
};
