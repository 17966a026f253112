/*
 * index.c - ops that pick or place elements by index: Gather, GatherElements, GatherND,
 * ScatterND, ScatterElements (and its old name Scatter); and those that keep elements by
 * position or condition: Trilu, NonZero, Compress. Slice is in slice.c.
 *
 * All are flagged IL_OPF_ANY_DTYPE: values move as il_dtype_size bytes, except where a
 * scatter reduction (add/mul/max/min) has to compute, which goes through a small dtype
 * switch. Indices may be int32 or int64 and negative (counted from the end). An index out of
 * range is the user's error: IL_ERR_INVALID naming it, never a read out of bounds.
 */
#include "kernel.h"

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

/* Indices are int32 or int64. */
static il_status check_indices(const il_kctx *c, const il_tensor *ind) {
    if (ind->dtype == IL_I64 || ind->dtype == IL_I32) return IL_OK;
    return il_kerr(c, IL_ERR_TYPE, "indices must be int32 or int64, not %s", il_dtype_name(ind->dtype));
}

/* ---------------------------------------------------------------- Gather family */

static il_status gather_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1);
    il_status st = check_indices(c, ind);
    if (st) return st;
    if (x->rank < 0 || ind->rank < 0) { il_set_out(c, 0, x->dtype, -1, NULL); return IL_OK; }
    int axis, r = x->rank + ind->rank - 1;
    int64_t out[IL_MAX_RANK];
    if ((st = il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis))) return st;
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
    int64_t outer = il_dims_prod(x->dims, 0, axis), inner = il_dims_prod(x->dims, axis + 1, x->rank), d = x->dims[axis];
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
    il_status st = check_indices(c, ind);
    if (st) return st;
    if (x->rank >= 0 && ind->rank >= 0) {
        int axis;
        if ((st = il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis))) return st;
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
    il_strides(x->rank, x->dims, xs);
    for (int64_t k = 0; k < n; k++) {
        int64_t j = norm_index(c, il_int_at(ind, k), x->dims[axis], axis), off = 0;
        if (j < 0) return IL_ERR_INVALID;
        for (int i = 0; i < x->rank; i++) off += (i == axis ? j : idx[i]) * xs[i];
        copy_elem(y->data, k, x->data, off, il_dtype_size(x->dtype));
        il_next_index(ind->rank, ind->dims, idx);
    }
    return IL_OK;
}

/* GatherND/ScatterND geometry: b batch dims, m = indices.shape[-1] coordinates per tuple. */
static il_status nd_check(il_kctx *c, const il_tensor *x, const il_tensor *ind, int b, int *m) {
    il_status st = check_indices(c, ind);
    if (st) return st;
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
    int b = (int)il_attr_int(c->node, "batch_dims", 0), m = 0;
    if (x->rank < 0 || ind->rank < 0 || (ind->rank > 0 && ind->dims[ind->rank - 1] < 0)) {
        il_set_out(c, 0, x->dtype, -1, NULL);
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
    return off * il_dims_prod(x->dims, b + m, x->rank);
}

static il_status gather_nd_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *ind = il_in(c, 1);
    il_tensor *y = il_out(c, 0);
    int b = (int)il_attr_int(c->node, "batch_dims", 0), m = (int)ind->dims[ind->rank - 1];
    int64_t batches = il_dims_prod(x->dims, 0, b), per = il_dims_prod(ind->dims, b, ind->rank - 1);
    int64_t slice = il_dims_prod(x->dims, b + m, x->rank), bstride = il_dims_prod(x->dims, b, x->rank);
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
    int m = 0, red = 0;
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
    int red = 0, m = (int)ind->dims[ind->rank - 1];
    int64_t n = il_dims_prod(ind->dims, 0, ind->rank - 1), slice = il_dims_prod(x->dims, m, x->rank);
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
    int red = 0, axis = 0;
    il_status st = reduction_of(c, &red);
    if (st || (st = check_indices(c, ind))) return st;
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
    int axis = 0, red = 0;
    int64_t xs[IL_MAX_RANK], idx[IL_MAX_RANK] = {0}, n = il_tensor_numel(ind);
    size_t es = il_dtype_size(x->dtype);
    il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis);
    reduction_of(c, &red);
    for (int64_t k = 0; k < n; k++)
        if (norm_index(c, il_int_at(ind, k), x->dims[axis], axis) < 0) return IL_ERR_INVALID;
    il_strides(x->rank, x->dims, xs);
    if (y->data != x->data) memcpy(y->data, x->data, il_tensor_bytes(y));
    for (int64_t k = 0; k < n; k++) {
        int64_t j = norm_index(c, il_int_at(ind, k), x->dims[axis], axis), off = 0;
        for (int i = 0; i < x->rank; i++) off += (i == axis ? j : idx[i]) * xs[i];
        reduce_elem(x->dtype, (char *)y->data + off * (int64_t)es, (const char *)upd->data + k * (int64_t)es, red);
        il_next_index(ind->rank, ind->dims, idx);
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
    int64_t mats = il_dims_prod(x->dims, 0, x->rank - 2);
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
        il_next_index(x->rank, x->dims, idx);
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
    if (x->rank < 0) { il_set_out(c, 0, x->dtype, -1, NULL); return IL_OK; }
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
    int64_t outer = axis < 0 ? 1 : il_dims_prod(x->dims, 0, axis), d = axis < 0 ? il_tensor_numel(x) : x->dims[axis];
    int64_t inner = axis < 0 ? 1 : il_dims_prod(x->dims, axis + 1, x->rank), nc = il_tensor_numel(cond), pos = 0;
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
