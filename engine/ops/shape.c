/*
 * shape.c - ops that change a tensor's shape or cut it into pieces without computing values:
 * Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat, Split, Expand, Tile, Identity,
 * Dropout (inference), Shape and Size.
 *
 * They are flagged IL_OPF_ANY_DTYPE: every kernel copies elements as il_dtype_size bytes, so
 * float16 and bfloat16 pass through unconverted. Inference runs with unknown data and dims
 * (-1) at plan time; where a shape input's data is not known yet, the dims it decides are -1.
 * Shape and Size read only their input's dims, never its data (the engine folds them before
 * the input is computed). Transpose's fast kernel is in engine/cpu/transpose.c.
 */
#include "kernel.h"

#include <stdio.h>

/* An output shape stays within IL_MAX_RANK and IL_MAX_NUMEL (unknown dims are skipped). */
static il_status check_numel(const il_kctx *c, int rank, const int64_t *dims) {
    if (rank > IL_MAX_RANK) return il_kerr(c, IL_ERR_UNSUPPORTED, "output rank %d is above %d", rank, IL_MAX_RANK);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) continue; /* unknown at plan time */
        if (dims[i] && n > IL_MAX_NUMEL / dims[i])
            return il_kerr(c, IL_ERR_INVALID, "output dim %d (%lld) makes the tensor too large", i,
                           (long long)dims[i]);
        n *= dims[i];
    }
    return IL_OK;
}

/* "[4,-1,0]": shape values as the user wrote them (il_shape_str would print -1 as "?"). */
static const char *ints_str(int n, const int64_t *v, char *buf, size_t size) {
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < n && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? "," : "", (long long)v[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
    return buf;
}

/* An int list given as an attribute (opset < from) or as input `slot` (opset >= from).
 * *n = -1 when the input is there but its length is unknown; *known = 0 when the values are
 * not known yet (plan time); *present = 0 when neither was given. */
static il_status int_list(const il_kctx *c, const char *attr, int slot, int64_t from, int64_t *v, int max, int *n,
                          int *known, int *present) {
    *known = 1;
    *present = 1;
    if (c->opset < from) {
        const int64_t *a;
        *n = il_attr_ints(c->node, attr, &a);
        *present = il_node_attr(c->node, attr) != NULL;
        if (*n > max) return il_kerr(c, IL_ERR_UNSUPPORTED, "'%s' has %d values, at most %d supported", attr, *n, max);
        for (int i = 0; i < *n; i++) v[i] = a[i];
        return IL_OK;
    }
    const il_tensor *t = il_in(c, slot);
    if (!t) { *n = 0; *present = 0; return IL_OK; }
    if (t->rank > 1) return il_kerr(c, IL_ERR_INVALID, "input %d ('%s') must be 1-D, has rank %d", slot, attr, t->rank);
    int64_t len = t->rank < 0 ? -1 : il_tensor_numel(t);
    if (len > max)
        return il_kerr(c, IL_ERR_UNSUPPORTED, "input '%s' has %lld values, at most %d supported", attr, (long long)len,
                       max);
    *n = (int)len;
    if (!t->data) { *known = 0; return IL_OK; }
    for (int i = 0; i < *n; i++) v[i] = il_int_at(t, i);
    return IL_OK;
}

/* Kernels of ops whose output holds the input's bytes in the same order. */
static il_status copy_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_tensor *y = il_out(c, 0);
    if (y && y->data != x->data) memcpy(y->data, x->data, il_tensor_bytes(y));
    return IL_OK;
}

/* ---------------------------------------------------------------- Reshape */

static il_status reshape_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int64_t shape[IL_MAX_RANK + 1], out[IL_MAX_RANK];
    int n, known, present;
    il_status st = int_list(c, "shape", 1, 5, shape, IL_MAX_RANK, &n, &known, &present);
    if (st) return st;
    if (!present) return il_kerr(c, IL_ERR_INVALID, "needs a shape");
    if (n < 0) { il_set_out(c, 0, x->dtype, -1, NULL); return IL_OK; }
    if (!known) { /* the rank is the shape's length; the dims wait for its data */
        for (int i = 0; i < n; i++) out[i] = -1;
        il_set_out(c, 0, x->dtype, n, out);
        return IL_OK;
    }
    int allowzero = c->opset >= 14 ? (int)il_attr_int(c->node, "allowzero", 0) : 0;
    int infer_at = -1;
    char a[160], b[160];
    for (int i = 0; i < n; i++) {
        if (shape[i] == -1) {
            if (infer_at >= 0)
                return il_kerr(c, IL_ERR_INVALID, "shape %s has more than one -1", ints_str(n, shape, b, sizeof b));
            infer_at = i;
            out[i] = -1;
        } else if (shape[i] < -1) {
            return il_kerr(c, IL_ERR_INVALID, "shape %s has a negative dim", ints_str(n, shape, b, sizeof b));
        } else if (shape[i] == 0 && !allowzero) { /* 0 copies the input's dim */
            if (x->rank >= 0 && i >= x->rank)
                return il_kerr(c, IL_ERR_SHAPE, "shape %s copies dim %d of a rank-%d input",
                               ints_str(n, shape, b, sizeof b), i, x->rank);
            out[i] = x->rank < 0 ? -1 : x->dims[i];
        } else {
            out[i] = shape[i];
        }
    }
    if (allowzero && infer_at >= 0)
        for (int i = 0; i < n; i++)
            if (shape[i] == 0)
                return il_kerr(c, IL_ERR_INVALID, "allowzero shape %s has both 0 and -1",
                               ints_str(n, shape, b, sizeof b));
    if ((st = check_numel(c, n, out))) return st;
    /* Dims a 0 copies are equal on both sides, so they drop out of the element count: the
     * input's other dims decide the -1 even while a copied one (the batch) is unknown. */
    int64_t have = x->rank < 0 ? -1 : 1, want = 1;
    for (int i = 0; i < x->rank; i++)
        if (!(i < n && shape[i] == 0 && !allowzero)) have = (have < 0 || x->dims[i] < 0) ? -1 : have * x->dims[i];
    for (int i = 0; i < n; i++)
        if (i != infer_at && !(shape[i] == 0 && !allowzero)) want *= out[i];
    if (have >= 0) {
        if (infer_at >= 0 && want > 0 && have % want == 0) out[infer_at] = have / want;
        else if (infer_at >= 0 || want != have)
            return il_kerr(c, IL_ERR_SHAPE, "cannot reshape %s (%lld elements) to %s",
                           il_shape_str(x->rank, x->dims, a, sizeof a),
                           (long long)(il_shape_known(x) ? il_tensor_numel(x) : -1), ints_str(n, shape, b, sizeof b));
    }
    il_set_out(c, 0, x->dtype, n, out);
    return IL_OK;
}

/* ---------------------------------------------------------------- Flatten */

static il_status flatten_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int64_t axis = il_attr_int(c->node, "axis", 1), out[2] = {-1, -1};
    if (x->rank >= 0) {
        if (axis < -x->rank || axis > x->rank)
            return il_kerr(c, IL_ERR_INVALID, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
        if (axis < 0) axis += x->rank;
        out[0] = il_dims_prod(x->dims, 0, (int)axis);
        out[1] = il_dims_prod(x->dims, (int)axis, x->rank);
    }
    il_set_out(c, 0, x->dtype, 2, out);
    return IL_OK;
}

/* ---------------------------------------------------------------- Transpose */

static il_status transpose_perm(const il_kctx *c, int rank, int *perm) {
    const int64_t *p;
    int n = il_attr_ints(c->node, "perm", &p);
    if (!p) { /* default: reverse the axes */
        for (int i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        return IL_OK;
    }
    if (n != rank) return il_kerr(c, IL_ERR_INVALID, "perm has %d values for a rank-%d input", n, rank);
    int seen[IL_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        int64_t a = p[i] < 0 ? p[i] + rank : p[i];
        if (a < 0 || a >= rank || seen[a])
            return il_kerr(c, IL_ERR_INVALID, "perm is not a permutation of 0..%d", rank - 1);
        seen[a] = 1;
        perm[i] = (int)a;
    }
    return IL_OK;
}

static il_status transpose_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    if (x->rank < 0) { il_set_out(c, 0, x->dtype, -1, NULL); return IL_OK; }
    int perm[IL_MAX_RANK];
    int64_t out[IL_MAX_RANK];
    il_status st = transpose_perm(c, x->rank, perm);
    if (st) return st;
    for (int i = 0; i < x->rank; i++) out[i] = x->dims[perm[i]];
    il_set_out(c, 0, x->dtype, x->rank, out);
    return IL_OK;
}

/* Output element at multi-index i reads input element at i permuted back. */
static il_status transpose_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_tensor *y = il_out(c, 0);
    int perm[IL_MAX_RANK], r = x->rank;
    int64_t xs[IL_MAX_RANK], idx[IL_MAX_RANK] = {0}, n = il_tensor_numel(y);
    size_t es = il_dtype_size(x->dtype);
    transpose_perm(c, r, perm);
    il_strides(r, x->dims, xs);
    for (int64_t k = 0; k < n; k++) {
        int64_t off = 0;
        for (int i = 0; i < r; i++) off += idx[i] * xs[perm[i]];
        memcpy((char *)y->data + k * es, (const char *)x->data + off * es, es);
        il_next_index(r, y->dims, idx);
    }
    return IL_OK;
}

/* The fast kernel (axis merging, cache tiles, threads) is in engine/cpu/transpose.c. */
static il_status transpose_fast(il_kctx *c) {
    int perm[IL_MAX_RANK];
    il_status st = transpose_perm(c, il_in(c, 0)->rank, perm);
    return st ? st : il_transpose_fast(c, perm);
}

/* ---------------------------------------------------------------- Squeeze / Unsqueeze */

static il_status squeeze_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int64_t axes[IL_MAX_RANK], out[IL_MAX_RANK];
    int n, known, present, r = 0, drop[IL_MAX_RANK] = {0};
    il_status st = int_list(c, "axes", 1, 13, axes, IL_MAX_RANK, &n, &known, &present);
    if (st) return st;
    if (x->rank < 0 || n < 0) { il_set_out(c, 0, x->dtype, -1, NULL); return IL_OK; }
    if (!known) { /* how many go is known, not which */
        if (x->rank - n < 0) return il_kerr(c, IL_ERR_INVALID, "%d axes for a rank-%d input", n, x->rank);
        for (int i = 0; i < x->rank - n; i++) out[i] = -1;
        il_set_out(c, 0, x->dtype, x->rank - n, out);
        return IL_OK;
    }
    if (!present || n == 0) { /* every dim of size 1 */
        for (int i = 0; i < x->rank; i++) {
            if (x->dims[i] < 0) { il_set_out(c, 0, x->dtype, -1, NULL); return IL_OK; }
            drop[i] = x->dims[i] == 1;
        }
    }
    for (int k = 0; k < n; k++) {
        int a;
        if ((st = il_norm_axis(c, axes[k], x->rank, &a))) return st;
        if (drop[a]) return il_kerr(c, IL_ERR_INVALID, "axis %lld is given twice", (long long)axes[k]);
        if (x->dims[a] > 1 || x->dims[a] == 0)
            return il_kerr(c, IL_ERR_SHAPE, "cannot squeeze axis %d of size %lld", a, (long long)x->dims[a]);
        drop[a] = 1;
    }
    for (int i = 0; i < x->rank; i++)
        if (!drop[i]) out[r++] = x->dims[i];
    il_set_out(c, 0, x->dtype, r, out);
    return IL_OK;
}

static il_status unsqueeze_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int64_t axes[IL_MAX_RANK + 1], out[IL_MAX_RANK];
    int n = 0, known = 0, present = 0, add[IL_MAX_RANK] = {0};
    il_status st = int_list(c, "axes", 1, 13, axes, IL_MAX_RANK, &n, &known, &present);
    if (st) return st;
    if (!present) return il_kerr(c, IL_ERR_INVALID, "needs axes");
    if (x->rank < 0 || n < 0) { il_set_out(c, 0, x->dtype, -1, NULL); return IL_OK; }
    int r = x->rank + n;
    if (r > IL_MAX_RANK) return il_kerr(c, IL_ERR_UNSUPPORTED, "output rank %d is above %d", r, IL_MAX_RANK);
    if (!known) {
        for (int i = 0; i < r; i++) out[i] = -1;
        il_set_out(c, 0, x->dtype, r, out);
        return IL_OK;
    }
    for (int k = 0; k < n; k++) {
        int a;
        if ((st = il_norm_axis(c, axes[k], r, &a))) return st;
        if (add[a]) return il_kerr(c, IL_ERR_INVALID, "axis %lld is given twice", (long long)axes[k]);
        add[a] = 1;
    }
    for (int i = 0, j = 0; i < r; i++) out[i] = add[i] ? 1 : x->dims[j++];
    il_set_out(c, 0, x->dtype, r, out);
    return IL_OK;
}

/* ---------------------------------------------------------------- Concat / Split */

static il_status concat_axis(il_kctx *c, int rank, int *axis) {
    const il_attr *a = il_node_attr(c->node, "axis");
    if (!a && c->opset >= 4) return il_kerr(c, IL_ERR_INVALID, "needs an axis");
    return il_norm_axis(c, a ? a->i : 1, rank, axis);
}

static il_status concat_infer(il_kctx *c) {
    const il_tensor *first = NULL;
    for (int k = 0; k < c->n_in; k++) {
        const il_tensor *t = il_in(c, k);
        if (!t) continue;
        if (first && t->dtype != first->dtype)
            return il_kerr(c, IL_ERR_TYPE, "input %d is %s, input 0 is %s", k, il_dtype_name(t->dtype),
                           il_dtype_name(first->dtype));
        if (!first || first->rank < 0) first = t;
    }
    if (!first) return il_kerr(c, IL_ERR_INVALID, "needs at least one input");
    if (first->rank < 0) { il_set_out(c, 0, first->dtype, -1, NULL); return IL_OK; }
    int axis, r = first->rank;
    il_status st = concat_axis(c, r, &axis);
    if (st) return st;
    int64_t out[IL_MAX_RANK];
    for (int i = 0; i < r; i++) out[i] = i == axis ? 0 : -1;
    for (int k = 0; k < c->n_in; k++) {
        const il_tensor *t = il_in(c, k);
        if (!t) continue;
        if (t->rank < 0) { out[axis] = -1; continue; }
        char a[160], b[160];
        if (t->rank != r)
            return il_kerr(c, IL_ERR_SHAPE, "input %d has rank %d, another input rank %d", k, t->rank, r);
        for (int i = 0; i < r; i++) {
            if (i == axis) {
                out[i] = (out[i] < 0 || t->dims[i] < 0) ? -1 : out[i] + t->dims[i];
            } else if (t->dims[i] >= 0) {
                if (out[i] >= 0 && out[i] != t->dims[i])
                    return il_kerr(c, IL_ERR_SHAPE, "input %d has shape %s, which does not fit %s on axis %d", k,
                                   il_shape_str(t->rank, t->dims, a, sizeof a),
                                   il_shape_str(first->rank, first->dims, b, sizeof b), axis);
                out[i] = t->dims[i];
            }
        }
    }
    il_set_out(c, 0, first->dtype, r, out);
    return IL_OK;
}

/* Output row o (dims before the axis) is input 0's row o, then input 1's row o, ... */
static il_status concat_ref(il_kctx *c) {
    il_tensor *y = il_out(c, 0);
    int axis;
    concat_axis(c, y->rank, &axis);
    size_t es = il_dtype_size(y->dtype);
    int64_t outer = il_dims_prod(y->dims, 0, axis), inner = il_dims_prod(y->dims, axis + 1, y->rank), pos = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < c->n_in; k++) {
            const il_tensor *t = il_in(c, k);
            if (!t) continue;
            int64_t run = t->dims[axis] * inner;
            for (int64_t e = 0; e < run; e++, pos++)
                memcpy((char *)y->data + pos * es, (const char *)t->data + (o * run + e) * es, es);
        }
    return IL_OK;
}

/* Same order, one memcpy per (row, input), rows split over threads. */
static il_status concat_fast(il_kctx *c) {
    il_tensor *y = il_out(c, 0);
    int axis;
    concat_axis(c, y->rank, &axis);
    int64_t es = (int64_t)il_dtype_size(y->dtype);
    int64_t outer = il_dims_prod(y->dims, 0, axis), inner = il_dims_prod(y->dims, axis + 1, y->rank) * es;
    IL_PAR_FOR(c, o, outer) {
        char *dst = (char *)y->data + o * y->dims[axis] * inner;
        for (int k = 0; k < c->n_in; k++) {
            const il_tensor *t = il_in(c, k);
            if (!t) continue;
            int64_t run = t->dims[axis] * inner;
            memcpy(dst, (const char *)t->data + o * run, (size_t)run);
            dst += run;
        }
    }
    return IL_OK;
}

/* Sizes of the Split outputs along the axis; sizes[i] = -1 when not known yet. */
static il_status split_sizes(il_kctx *c, const il_tensor *x, int axis, int64_t *sizes) {
    int64_t given[16], dim = x->dims[axis];
    int n, known, present, nout = c->n_out;
    if (nout < 1 || nout > 16) return il_kerr(c, IL_ERR_UNSUPPORTED, "%d outputs, 1 to 16 supported", nout);
    il_status st = int_list(c, "split", 1, 13, given, 16, &n, &known, &present);
    if (st) return st;
    if (present && n != 0) {
        if (n >= 0 && n != nout) return il_kerr(c, IL_ERR_INVALID, "split has %d sizes for %d outputs", n, nout);
        int64_t sum = 0;
        for (int i = 0; i < nout; i++) {
            sizes[i] = known && n >= 0 ? given[i] : -1;
            if (known && given[i] < 0)
                return il_kerr(c, IL_ERR_INVALID, "split size %lld is negative", (long long)given[i]);
            sum += sizes[i];
        }
        if (known && dim >= 0 && sum != dim)
            return il_kerr(c, IL_ERR_SHAPE, "split sizes add up to %lld, axis %d has %lld", (long long)sum, axis,
                           (long long)dim);
        return IL_OK;
    }
    const il_attr *num = c->opset >= 18 ? il_node_attr(c->node, "num_outputs") : NULL;
    if (num && num->i != nout)
        return il_kerr(c, IL_ERR_INVALID, "num_outputs is %lld, the node has %d outputs", (long long)num->i, nout);
    for (int i = 0; i < nout; i++) sizes[i] = -1;
    if (dim < 0) return IL_OK;
    /* equal parts; from opset 18 the last part may be smaller */
    int64_t part = (dim + nout - 1) / nout;
    if (!num && dim % nout)
        return il_kerr(c, IL_ERR_SHAPE, "axis %d of size %lld does not split into %d equal parts", axis, (long long)dim,
                       nout);
    if (part * (nout - 1) > dim)
        return il_kerr(c, IL_ERR_SHAPE, "axis %d of size %lld does not split into %d parts", axis, (long long)dim,
                       nout);
    for (int i = 0; i < nout; i++) sizes[i] = i < nout - 1 ? part : dim - part * (nout - 1);
    return IL_OK;
}

static il_status split_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    if (x->rank < 0) {
        for (int i = 0; i < c->n_out; i++) il_set_out(c, i, x->dtype, -1, NULL);
        return IL_OK;
    }
    int axis;
    int64_t sizes[16], out[IL_MAX_RANK];
    il_status st = il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis);
    if (st || (st = split_sizes(c, x, axis, sizes))) return st;
    memcpy(out, x->dims, sizeof out);
    for (int i = 0; i < c->n_out; i++) {
        out[axis] = sizes[i];
        il_set_out(c, i, x->dtype, x->rank, out);
    }
    return IL_OK;
}

/* The inverse of Concat: each input row is cut into consecutive runs, one per output. */
static il_status split_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int axis;
    int64_t sizes[16];
    il_norm_axis(c, il_attr_int(c->node, "axis", 0), x->rank, &axis);
    il_status st = split_sizes(c, x, axis, sizes);
    if (st) return st;
    int64_t es = (int64_t)il_dtype_size(x->dtype);
    int64_t outer = il_dims_prod(x->dims, 0, axis), inner = il_dims_prod(x->dims, axis + 1, x->rank), pos = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < c->n_out; k++) {
            il_tensor *t = il_out(c, k);
            int64_t run = sizes[k] * inner;
            if (t) memcpy((char *)t->data + o * run * es, (const char *)x->data + pos * es, (size_t)(run * es));
            pos += run;
        }
    return IL_OK;
}

/* ---------------------------------------------------------------- Expand / Tile */

static il_status expand_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int64_t shape[IL_MAX_RANK], out[IL_MAX_RANK];
    int n = 0, known = 0, present = 0, r;
    il_status st = int_list(c, "shape", 1, 8, shape, IL_MAX_RANK, &n, &known, &present);
    if (st) return st;
    if (!present) return il_kerr(c, IL_ERR_INVALID, "needs a shape input");
    if (n < 0 || x->rank < 0) { il_set_out(c, 0, x->dtype, -1, NULL); return IL_OK; }
    for (int i = 0; i < n; i++) {
        if (!known) shape[i] = -1;
        else if (shape[i] < 0) return il_kerr(c, IL_ERR_INVALID, "shape has a negative dim %lld", (long long)shape[i]);
    }
    if ((st = il_broadcast_shape(c, x->rank, x->dims, n, shape, &r, out))) return st;
    if (!known) /* a shape dim of 1 keeps the input's dim; unknown ones could be anything */
        for (int i = 0; i < r; i++) out[i] = -1;
    if ((st = check_numel(c, r, out))) return st;
    il_set_out(c, 0, x->dtype, r, out);
    return IL_OK;
}

static il_status tile_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0), *rep = il_in(c, 1);
    int64_t out[IL_MAX_RANK];
    if (!rep) return il_kerr(c, IL_ERR_INVALID, "needs a repeats input");
    if (x->rank < 0) { il_set_out(c, 0, x->dtype, -1, NULL); return IL_OK; }
    if (rep->rank >= 0 && (rep->rank != 1 || (rep->dims[0] >= 0 && rep->dims[0] != x->rank)))
        return il_kerr(c, IL_ERR_INVALID, "repeats must be 1-D with %d values", x->rank);
    for (int i = 0; i < x->rank; i++) {
        int64_t t = rep->data ? il_int_at(rep, i) : -1;
        if (rep->data && t < 0) return il_kerr(c, IL_ERR_INVALID, "repeat %lld is negative", (long long)t);
        if (t > IL_MAX_NUMEL || (x->dims[i] > 0 && t > IL_MAX_NUMEL / x->dims[i]))
            return il_kerr(c, IL_ERR_INVALID, "repeat %lld is too large", (long long)t);
        out[i] = (t < 0 || x->dims[i] < 0) ? -1 : x->dims[i] * t;
    }
    il_status st = check_numel(c, x->rank, out);
    if (st) return st;
    il_set_out(c, 0, x->dtype, x->rank, out);
    return IL_OK;
}

/* Expand and Tile are one copy: y[i] = x[i mod x's dims], x's shape aligned to the right of
 * y's. Tile repeats the whole input; Expand repeats only its size-1 dims (and adds leading ones). */
static il_status repeat_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_tensor *y = il_out(c, 0);
    int lead = y->rank - x->rank;
    int64_t xs[IL_MAX_RANK], idx[IL_MAX_RANK] = {0}, n = il_tensor_numel(y);
    size_t es = il_dtype_size(x->dtype);
    il_strides(x->rank, x->dims, xs);
    for (int64_t k = 0; k < n; k++) {
        int64_t off = 0;
        for (int i = 0; i < x->rank; i++) off += idx[lead + i] % x->dims[i] * xs[i];
        memcpy((char *)y->data + k * (int64_t)es, (const char *)x->data + off * (int64_t)es, es);
        il_next_index(y->rank, y->dims, idx);
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- Identity / Dropout */

static il_status identity_infer(il_kctx *c) {
    il_same_as(c, 0, 0);
    return IL_OK;
}

/* Inference Dropout passes its input through; the mask (bool from opset 10, the input's
 * dtype before) is all true. */
static il_status dropout_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_same_as(c, 0, 0);
    if (il_out(c, 1)) il_set_out(c, 1, c->opset >= 10 ? IL_BOOL : x->dtype, x->rank, x->dims);
    return IL_OK;
}

static il_status dropout_ref(il_kctx *c) {
    const il_tensor *ratio = il_in(c, 1), *train = il_in(c, 2);
    if (ratio && !il_tensor_numel(ratio)) ratio = NULL;
    if (c->opset >= 12 && train && il_tensor_numel(train) && il_tensor_get(train, 0) != 0 &&
        (!ratio || il_tensor_get(ratio, 0) != 0))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "training_mode (random dropping) is not supported");
    copy_ref(c);
    il_tensor *mask = il_out(c, 1);
    for (int64_t i = 0, n = mask ? il_tensor_numel(mask) : 0; i < n; i++) il_tensor_set(mask, i, 1);
    return IL_OK;
}

/* ---------------------------------------------------------------- Shape / Size */

/* [start, end) of the dims Shape reports (attributes from opset 15), clamped like Python. */
static void shape_range(const il_kctx *c, int rank, int64_t *s, int64_t *e) {
    *s = c->opset >= 15 ? il_attr_int(c->node, "start", 0) : 0;
    *e = c->opset >= 15 ? il_attr_int(c->node, "end", rank) : rank;
    if (*s < 0) *s += rank;
    if (*e < 0) *e += rank;
    *s = *s < 0 ? 0 : *s > rank ? rank : *s;
    *e = *e < 0 ? 0 : *e > rank ? rank : *e;
    if (*e < *s) *e = *s;
}

static il_status shape_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int64_t s, e, len = -1;
    if (x->rank >= 0) { shape_range(c, x->rank, &s, &e); len = e - s; }
    il_set_out(c, 0, IL_I64, 1, &len);
    return IL_OK;
}

static il_status shape_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    int64_t s, e, *y = il_out(c, 0)->data;
    shape_range(c, x->rank, &s, &e);
    for (int64_t i = s; i < e; i++) y[i - s] = x->dims[i];
    return IL_OK;
}

static il_status size_infer(il_kctx *c) {
    il_set_out(c, 0, IL_I64, 0, NULL);
    return IL_OK;
}

static il_status size_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    *(int64_t *)il_out(c, 0)->data = il_shape_known(x) ? il_tensor_numel(x) : -1;
    return IL_OK;
}

#define ANY IL_OPF_ANY_DTYPE
const il_op il_ops_shape[] = {
    {"", "Reshape", 1, reshape_infer, copy_ref, NULL, ANY},
    {"", "Flatten", 1, flatten_infer, copy_ref, NULL, ANY},
    {"", "Transpose", 1, transpose_infer, transpose_ref, transpose_fast, ANY},
    {"", "Squeeze", 1, squeeze_infer, copy_ref, NULL, ANY},
    {"", "Unsqueeze", 1, unsqueeze_infer, copy_ref, NULL, ANY},
    {"", "Concat", 1, concat_infer, concat_ref, concat_fast, ANY},
    {"", "Split", 1, split_infer, split_ref, NULL, ANY},
    {"", "Expand", 8, expand_infer, repeat_ref, NULL, ANY},
    {"", "Tile", 6, tile_infer, repeat_ref, NULL, ANY},
    {"", "Identity", 1, identity_infer, copy_ref, NULL, ANY},
    {"", "Dropout", 1, dropout_infer, dropout_ref, NULL, ANY},
    {"", "Shape", 1, shape_infer, shape_ref, NULL, ANY},
    {"", "Size", 1, size_infer, size_ref, NULL, ANY},
    {0},
};
