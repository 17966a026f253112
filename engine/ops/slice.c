/*
 * slice.c - Slice: a strided box of a tensor, given per axis by a start, an end and a step
 * (attributes in opset 1, inputs from opset 10), negative values counting from the end and
 * clamped the way ONNX says.
 *
 * Flagged IL_OPF_ANY_DTYPE: elements move as il_dtype_size bytes. At plan time, an axis whose
 * start, end or step is not known yet gets an unknown (-1) length.
 */
#include "kernel.h"


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

il_status il_slice_make(const il_kctx *c, const il_tensor *x, il_slice_plan *p) {
    int64_t starts[IL_MAX_RANK], ends[IL_MAX_RANK], axes[IL_MAX_RANK], steps[IL_MAX_RANK];
    int ns = 0, ne = 0, na = 0, nst = 0, has_s = 0, has_e = 0, has_a = 0, has_st = 0, r = x->rank;
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
    il_slice_plan p;
    if (x->rank < 0) { il_set_out(c, 0, x->dtype, -1, NULL); return IL_OK; }
    il_status st = il_slice_make(c, x, &p);
    if (st) return st;
    il_set_out(c, 0, x->dtype, x->rank, p.len);
    return IL_OK;
}

/* Output element i (multi-index) reads input element start + i*step on every axis. */
static il_status slice_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_tensor *y = il_out(c, 0);
    il_slice_plan p;
    int64_t xs[IL_MAX_RANK], idx[IL_MAX_RANK] = {0}, n = il_tensor_numel(y);
    size_t es = il_dtype_size(x->dtype);
    il_status st = il_slice_make(c, x, &p);
    if (st) return st;
    il_strides(x->rank, x->dims, xs);
    for (int64_t k = 0; k < n; k++) {
        int64_t off = 0;
        for (int a = 0; a < x->rank; a++) off += (p.start[a] + idx[a] * p.step[a]) * xs[a];
        memcpy((char *)y->data + k * (int64_t)es, (const char *)x->data + off * (int64_t)es, es);
        il_next_index(y->rank, y->dims, idx);
    }
    return IL_OK;
}

/* Rows along the last axis: one memcpy each when its step is 1; threads split the rows. */
static il_status slice_fast(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_tensor *y = il_out(c, 0);
    il_slice_plan p;
    int64_t xs[IL_MAX_RANK], n = il_tensor_numel(y), es = (int64_t)il_dtype_size(x->dtype);
    il_status st = il_slice_make(c, x, &p);
    if (st) return st;
    if (n == 0) return IL_OK;
    if (x->rank == 0) { memcpy(y->data, x->data, (size_t)es); return IL_OK; }
    il_strides(x->rank, x->dims, xs);
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

const il_op il_ops_slice[] = {
    {"", "Slice", 1, slice_infer, slice_ref, slice_fast, IL_OPF_ANY_DTYPE},
    {0},
};
