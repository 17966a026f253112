/*
 * pad.c - data movement around the spatial axes: Pad, DepthToSpace and SpaceToDepth.
 *
 * All three only move elements, so they run on any dtype (IL_OPF_ANY_DTYPE) and copy
 * il_dtype_size bytes per element; float16 data stays float16.
 *
 * Pad: pads are [x1_begin, x2_begin, ..., x1_end, x2_end]; an attribute before opset 11 (named
 * `paddings` in opset 1), the second input from 11, with the constant as an optional third input
 * (an attribute `value` before 11) and, from 18, an optional `axes` input naming the axes the
 * pads are for. Negative pads remove elements: the input is cropped first and the mode then
 * pads what is left, so `edge` repeats the new edge. Modes: constant, edge (repeat the border
 * element), reflect (mirror without repeating the border, as numpy; several times when the pad
 * is wider than the axis) and wrap (periodic, opset 19).
 */
#include "kernel.h"

/* Read mode and pads for an input of rank r (kernel.h). */
il_status il_pad_args_get(const il_kctx *c, int r, il_pad_args *p) {
    const char *mode = il_attr_string(c->node, "mode", "constant");
    if (!strcmp(mode, "constant")) p->mode = IL_PAD_CONSTANT;
    else if (!strcmp(mode, "edge")) p->mode = IL_PAD_EDGE;
    else if (!strcmp(mode, "reflect")) p->mode = IL_PAD_REFLECT;
    else if (!strcmp(mode, "wrap")) p->mode = IL_PAD_WRAP;
    else return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported mode '%s'", mode);
    p->known = 1;
    for (int i = 0; i < r; i++) p->begin[i] = p->end[i] = 0;

    int64_t pads[2 * IL_MAX_RANK];
    int axes[IL_MAX_RANK], n_axes = r;
    int64_t n_pads;
    for (int i = 0; i < r; i++) axes[i] = i;
    if (c->opset < 11) {
        const int64_t *a;
        int n = il_attr_ints(c->node, "pads", &a);
        if (!n) n = il_attr_ints(c->node, "paddings", &a);
        if (n > 2 * IL_MAX_RANK) return il_kerr(c, IL_ERR_INVALID, "%d pads for an input of rank %d", n, r);
        for (int i = 0; i < n; i++) pads[i] = a[i];
        n_pads = n;
    } else {
        const il_tensor *pt = il_in(c, 1), *at = il_in(c, 3);
        if (!pt) return il_kerr(c, IL_ERR_INVALID, "Pad needs the pads input");
        if (pt->dtype != IL_I64 && pt->dtype != IL_I32)
            return il_kerr(c, IL_ERR_TYPE, "pads must be int64, got %s", il_dtype_name(pt->dtype));
        if (at && c->opset >= 18) {
            if (at->dtype != IL_I64 && at->dtype != IL_I32)
                return il_kerr(c, IL_ERR_TYPE, "axes must be int64, got %s", il_dtype_name(at->dtype));
            if (!at->data) {
                p->known = 0;
                return IL_OK;
            }
            int64_t na = il_tensor_numel(at);
            if (na > r) return il_kerr(c, IL_ERR_INVALID, "%lld axes for an input of rank %d", (long long)na, r);
            int seen[IL_MAX_RANK] = {0};
            for (int64_t i = 0; i < na; i++) {
                int64_t ax = il_int_at(at, i);
                if (ax < -r || ax >= r)
                    return il_kerr(c, IL_ERR_INVALID, "axis %lld is out of range for rank %d", (long long)ax, r);
                axes[i] = (int)(ax < 0 ? ax + r : ax);
                if (seen[axes[i]]++) return il_kerr(c, IL_ERR_INVALID, "axis %lld appears twice in axes", (long long)ax);
            }
            n_axes = (int)na;
        }
        if (!pt->data) {
            p->known = 0;
            return IL_OK;
        }
        n_pads = il_tensor_numel(pt);
        if (n_pads > 2 * IL_MAX_RANK)
            return il_kerr(c, IL_ERR_INVALID, "%lld pads for an input of rank %d", (long long)n_pads, r);
        for (int64_t i = 0; i < n_pads; i++) pads[i] = il_int_at(pt, i);
    }
    if (n_pads != 2 * n_axes)
        return il_kerr(c, IL_ERR_INVALID, "%lld pads for %d axes: need 2 per axis", (long long)n_pads, n_axes);
    for (int i = 0; i < 2 * n_axes; i++)
        if (pads[i] > ((int64_t)1 << 40) || pads[i] < -((int64_t)1 << 40))
            return il_kerr(c, IL_ERR_INVALID, "pad %lld is out of range", (long long)pads[i]);
    for (int i = 0; i < n_axes; i++) {
        p->begin[axes[i]] = pads[i];
        p->end[axes[i]] = pads[n_axes + i];
    }
    return IL_OK;
}

/* The input index that output coordinate o reads on an axis of size d padded by (b, e), or -1
 * for the constant. Negative pads crop first: [lo, lo + m) is the part of the input kept. */
static int64_t pad_src(int mode, int64_t o, int64_t d, int64_t b, int64_t e) {
    int64_t lo = b < 0 ? -b : 0, m = d - lo - (e < 0 ? -e : 0);
    int64_t j = o - (b > 0 ? b : 0); /* coordinate within the kept part */
    if (j >= 0 && j < m) return lo + j;
    if (mode == IL_PAD_CONSTANT || m <= 0) return -1;
    if (mode == IL_PAD_EDGE) {
        j = j < 0 ? 0 : m - 1;
    } else if (mode == IL_PAD_WRAP) {
        j = ((j % m) + m) % m;
    } else if (m == 1) {
        j = 0; /* reflecting a single element repeats it */
    } else {
        int64_t period = 2 * (m - 1);
        j = ((j % period) + period) % period;
        if (j >= m) j = period - j;
    }
    return lo + j;
}

static il_status pad_infer(il_kctx *c) {
    il_tensor *x = il_in(c, 0);
    if (!x) return il_kerr(c, IL_ERR_INVALID, "missing input 0");
    if (!il_dtype_size(x->dtype)) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    if (x->rank < 0) {
        il_set_out(c, 0, x->dtype, -1, NULL);
        return IL_OK;
    }
    il_pad_args p;
    il_status s = il_pad_args_get(c, x->rank, &p);
    if (s) return s;
    int64_t dims[IL_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        int64_t d = x->dims[i];
        if (!p.known || d < 0) {
            dims[i] = -1;
            continue;
        }
        dims[i] = d + p.begin[i] + p.end[i];
        if (dims[i] < 0)
            return il_kerr(c, IL_ERR_INVALID, "pads (%lld, %lld) remove more than axis %d of size %lld",
                           (long long)p.begin[i], (long long)p.end[i], i, (long long)d);
        int64_t kept = d - (p.begin[i] < 0 ? -p.begin[i] : 0) - (p.end[i] < 0 ? -p.end[i] : 0);
        if (p.mode != IL_PAD_CONSTANT && kept <= 0 && dims[i] > 0)
            return il_kerr(c, IL_ERR_INVALID, "mode '%s' cannot pad axis %d, which has no elements",
                           il_attr_string(c->node, "mode", "constant"), i);
    }
    il_set_out(c, 0, x->dtype, x->rank, dims);
    return IL_OK;
}

/* The constant as bytes of the data's dtype. */
static il_status pad_value(const il_kctx *c, unsigned char *v) {
    const il_tensor *x = c->in[0], *ct = c->opset >= 11 ? il_in(c, 2) : NULL;
    size_t es = il_dtype_size(x->dtype);
    il_tensor out = {0};
    out.dtype = x->dtype;
    out.data = v;
    memset(v, 0, 16);
    if (ct && il_tensor_numel(ct) > 0) {
        if (ct->dtype == x->dtype) memcpy(v, ct->data, es);
        else il_tensor_set(&out, 0, il_tensor_get(ct, 0));
    } else if (c->opset < 11) {
        il_tensor_set(&out, 0, il_attr_float(c->node, "value", 0.0f));
    }
    return IL_OK;
}

/* The input offset that output position pos (flat over y's axes 0..last) comes from, axis by
 * axis from `last` (whose input stride is `stride`) down; *outside when it is in a constant pad. */
static int64_t pad_source(const il_pad_args *p, const il_tensor *x, const il_tensor *y, int last, int64_t pos,
                          int64_t stride, int *outside) {
    int64_t src = 0;
    *outside = 0;
    for (int a = last; a >= 0; a--) {
        int64_t j = pad_src(p->mode, pos % y->dims[a], x->dims[a], p->begin[a], p->end[a]);
        pos /= y->dims[a];
        if (j < 0) *outside = 1;
        src += j * stride;
        stride *= x->dims[a];
    }
    return src;
}

/* Readable version: every output element finds its source element axis by axis. */
static il_status pad_ref(il_kctx *c) {
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0];
    int r = x->rank;
    il_pad_args p;
    unsigned char val[16];
    il_status s = il_pad_args_get(c, r, &p);
    if (s || (s = pad_value(c, val))) return s;
    size_t es = il_dtype_size(x->dtype);
    int64_t n = il_tensor_numel(y);
    for (int64_t o = 0; o < n; o++) {
        int outside;
        int64_t src = pad_source(&p, x, y, r - 1, o, 1, &outside);
        memcpy((char *)y->data + o * es, outside ? (const void *)val : (const char *)x->data + src * es, es);
    }
    return IL_OK;
}

/* Row at a time: the kept middle of each output row is one memcpy. */
static il_status pad_fast(il_kctx *c) {
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0];
    int r = x->rank;
    if (r == 0) return pad_ref(c);
    il_pad_args p;
    unsigned char val[16];
    il_status s = il_pad_args_get(c, r, &p);
    if (s || (s = pad_value(c, val))) return s;
    size_t es = il_dtype_size(x->dtype);
    int64_t w = y->dims[r - 1], dw = x->dims[r - 1];
    if (w == 0) return IL_OK;
    int64_t rows = il_tensor_numel(y) / w, b = p.begin[r - 1], e = p.end[r - 1];
    int64_t lo = b < 0 ? -b : 0, kept = dw - lo - (e < 0 ? -e : 0), pb = b > 0 ? b : 0;
    IL_PAR_FOR(c, row, rows) {
        int outside;
        int64_t src = pad_source(&p, x, y, r - 2, row, dw, &outside);
        char *out = (char *)y->data + row * w * es;
        const char *in = outside ? NULL : (const char *)x->data + src * es; /* src < 0 when outside */
        if (outside) {
            for (int64_t j = 0; j < w; j++) memcpy(out + j * es, val, es);
        } else {
            if (kept > 0) memcpy(out + pb * es, in + lo * es, (size_t)kept * es);
            for (int64_t j = 0; j < w; j++) {
                if (j == pb && kept > 0) j += kept; /* skip the part just copied */
                if (j >= w) break;
                int64_t k = pad_src(p.mode, j, dw, b, e);
                memcpy(out + j * es, k < 0 ? (const char *)val : in + k * es, es);
            }
        }
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- DepthToSpace, SpaceToDepth */

/* Both ops are a reshape + transpose of NCHW:
 *   DepthToSpace DCR: y[n, c, h*b+i, w*b+j] = x[n, (i*b + j)*C' + c, h, w]   (C' = C/b^2)
 *   DepthToSpace CRD: y[n, c, h*b+i, w*b+j] = x[n, c*b*b + i*b + j, h, w]
 *   SpaceToDepth:     y[n, (i*b + j)*C + c, h, w] = x[n, c, h*b+i, w*b+j]  */

static il_status d2s_common(il_kctx *c, int to_space, int64_t *b, int *crd) {
    il_tensor *x = il_in(c, 0);
    if (!x) return il_kerr(c, IL_ERR_INVALID, "missing input 0");
    if (!il_dtype_size(x->dtype)) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    *b = il_attr_int(c->node, "blocksize", 0);
    if (*b <= 0 || *b > 65536)
        return il_kerr(c, IL_ERR_INVALID, "blocksize must be in [1, 65536], got %lld", (long long)*b);
    const char *mode = il_attr_string(c->node, "mode", "DCR");
    *crd = to_space && !strcmp(mode, "CRD"); /* SpaceToDepth has no mode */
    if (to_space && !*crd && strcmp(mode, "DCR"))
        return il_kerr(c, IL_ERR_INVALID, "mode must be DCR or CRD, got '%s'", mode);
    if (x->rank >= 0 && x->rank != 4) return il_kerr(c, IL_ERR_SHAPE, "input must be 4-D (NCHW), got rank %d", x->rank);
    return IL_OK;
}

static il_status d2s_infer_dir(il_kctx *c, int to_space) {
    int64_t b = 1, d[4];
    int crd = 0;
    il_status s = d2s_common(c, to_space, &b, &crd);
    if (s) return s;
    il_tensor *x = c->in[0];
    if (x->rank < 0) {
        il_set_out(c, 0, x->dtype, -1, NULL);
        return IL_OK;
    }
    const int64_t *xd = x->dims;
    if (to_space) {
        if (xd[1] >= 0 && xd[1] % (b * b))
            return il_kerr(c, IL_ERR_SHAPE, "channels %lld are not a multiple of blocksize^2 = %lld", (long long)xd[1],
                           (long long)(b * b));
        d[0] = xd[0];
        d[1] = xd[1] < 0 ? -1 : xd[1] / (b * b);
        d[2] = xd[2] < 0 ? -1 : xd[2] * b;
        d[3] = xd[3] < 0 ? -1 : xd[3] * b;
    } else {
        for (int i = 2; i < 4; i++)
            if (xd[i] >= 0 && xd[i] % b)
                return il_kerr(c, IL_ERR_SHAPE, "axis %d of size %lld is not a multiple of blocksize %lld", i,
                               (long long)xd[i], (long long)b);
        d[0] = xd[0];
        d[1] = xd[1] < 0 ? -1 : xd[1] * b * b;
        d[2] = xd[2] < 0 ? -1 : xd[2] / b;
        d[3] = xd[3] < 0 ? -1 : xd[3] / b;
    }
    il_set_out(c, 0, x->dtype, 4, d);
    return IL_OK;
}

/* Walk the space-side tensor (y for DepthToSpace, x for SpaceToDepth) and copy each element
 * from or to its depth-side place. */
static il_status d2s_run(il_kctx *c, int to_space) {
    int64_t b;
    int crd;
    il_status s = d2s_common(c, to_space, &b, &crd);
    if (s) return s;
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0];
    const il_tensor *sp = to_space ? y : x, *dp = to_space ? x : y;
    size_t es = il_dtype_size(x->dtype);
    int64_t N = sp->dims[0], C = sp->dims[1], H = sp->dims[2], W = sp->dims[3];
    int64_t h = H / b, w = W / b, D = dp->dims[1];
    IL_PAR_FOR(c, nc, N * C) {
        int64_t n = nc / C, ch = nc % C;
        for (int64_t yy = 0; yy < H; yy++)
            for (int64_t xx = 0; xx < W; xx++) {
                int64_t i = yy % b, j = xx % b;
                int64_t dc = crd ? ch * b * b + i * b + j : (i * b + j) * C + ch;
                int64_t sat = ((n * C + ch) * H + yy) * W + xx;
                int64_t dat = ((n * D + dc) * h + yy / b) * w + xx / b;
                if (to_space) memcpy((char *)y->data + sat * es, (const char *)x->data + dat * es, es);
                else memcpy((char *)y->data + dat * es, (const char *)x->data + sat * es, es);
            }
    }
    return IL_OK;
}

static il_status d2s_infer(il_kctx *c) { return d2s_infer_dir(c, 1); }
static il_status s2d_infer(il_kctx *c) { return d2s_infer_dir(c, 0); }
static il_status d2s_ref(il_kctx *c) { return d2s_run(c, 1); }
static il_status s2d_ref(il_kctx *c) { return d2s_run(c, 0); }

const il_op il_ops_pad[] = {
    {"", "Pad", 1, pad_infer, pad_ref, pad_fast, IL_OPF_ANY_DTYPE},
    {"", "DepthToSpace", 1, d2s_infer, d2s_ref, NULL, IL_OPF_ANY_DTYPE},
    {"", "SpaceToDepth", 1, s2d_infer, s2d_ref, NULL, IL_OPF_ANY_DTYPE},
    {0},
};
