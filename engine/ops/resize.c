/*
 * resize.c - Resize and the deprecated Upsample: nearest, (multi-)linear and cubic
 * interpolation, following the ONNX reference implementation.
 *
 * Interpolation is separable, so everything is described per axis: output index y maps to an
 * input coordinate x by the coordinate_transformation_mode, and x becomes a few taps (input
 * index, weight). An output element is the sum over every combination of its axes' taps of the
 * product of weights times the input element. Axis tables are built once per run; the
 * reference kernel walks all axes, the fast one handles the usual case where only the last two
 * axes change.
 *
 * The window of taps: with xi = ceil(x) - 1 and ratio = x - xi in (0, 1] (so an integer x leans
 * on its left neighbour, as the reference does), n taps cover xi - n/2 + 1 .. xi + n/2. Taps
 * outside the input repeat the border (edge padding), unless exclude_outside drops them.
 * Nearest has one tap chosen by nearest_mode. Antialias (opset 18) widens the linear and cubic
 * kernels by 1/scale when downsampling.
 *
 * Versions: Upsample-7 takes scales as an attribute, Upsample-9 and Resize-10 as input 1; all
 * three use x = y / scale, and their nearest picks floor(x) (ceil(x) when shrinking, as
 * onnxruntime does). Resize-11 adds roi, sizes and the modes; Resize-18 adds axes,
 * keep_aspect_ratio_policy and antialias; half_pixel_symmetric is from opset 19.
 */
#include "kernel.h"

enum { RS_NEAREST, RS_LINEAR, RS_CUBIC };
enum { CT_HALF_PIXEL, CT_HALF_PIXEL_SYM, CT_PYTORCH, CT_ALIGN_CORNERS, CT_ASYMMETRIC, CT_TF_CROP, CT_TF_HALF_PIXEL_NN };
enum { NM_PREFER_FLOOR, NM_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };

typedef struct {
    int mode, coord, nearest, exclude_outside, antialias;
    double cubic_a, extrapolation;
    int known;                       /* 0 at plan time when the output size needs unknown data */
    int resized[IL_MAX_RANK];        /* axes the scales/sizes/roi talk about */
    int64_t out[IL_MAX_RANK];        /* output dims, -1 unknown */
    double scale[IL_MAX_RANK];       /* the scale the coordinate transforms use */
    double out_len[IL_MAX_RANK];     /* scale * input length (the reference's float output width) */
    double roi0[IL_MAX_RANK], roi1[IL_MAX_RANK];
} rs_args;

static int pick(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* Modes and attributes. */
static il_status rs_modes(const il_kctx *c, rs_args *a) {
    int legacy = strcmp(c->node->op_type, "Resize") || c->opset < 11;
    static const char *const modes[] = {"nearest", "linear", "cubic", "bilinear"};
    static const char *const coords[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                         "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn"};
    static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const char *m = il_attr_string(c->node, "mode", "nearest");
    a->mode = pick(m, modes, legacy ? 4 : 3);
    if (a->mode == 3) a->mode = RS_LINEAR; /* Upsample-1 spelled linear "bilinear" */
    if (a->mode < 0 || (legacy && a->mode == RS_CUBIC)) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported mode '%s'", m);
    if (legacy) {
        a->coord = CT_ASYMMETRIC;
        a->nearest = NM_SIMPLE;
    } else {
        const char *ct = il_attr_string(c->node, "coordinate_transformation_mode", "half_pixel");
        const char *nm = il_attr_string(c->node, "nearest_mode", "round_prefer_floor");
        a->coord = pick(ct, coords, 7);
        a->nearest = pick(nm, nearests, 4);
        if (a->coord < 0) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported coordinate_transformation_mode '%s'", ct);
        if (a->nearest < 0) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported nearest_mode '%s'", nm);
    }
    a->cubic_a = il_attr_float(c->node, "cubic_coeff_a", -0.75f);
    a->exclude_outside = il_attr_int(c->node, "exclude_outside", 0) != 0;
    a->extrapolation = il_attr_float(c->node, "extrapolation_value", 0.0f);
    a->antialias = il_attr_int(c->node, "antialias", 0) != 0 && a->mode != RS_NEAREST;
    return IL_OK;
}

/* 1: the optional input has values, 0: omitted or empty, -1: cannot tell before running. */
static int rs_present(const il_tensor *t) {
    if (!t) return 0;
    if (t->rank < 0) return -1;
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] == 0) return 0;
        if (t->dims[i] < 0) n = -1;
    }
    return n < 0 ? -1 : 1;
}

/* Everything a run needs: modes, which axes, scales and output sizes. */
static il_status rs_args_get(const il_kctx *c, const il_tensor *x, rs_args *a) {
    il_status s = rs_modes(c, a);
    if (s) return s;
    int r = x->rank, is_resize = !strcmp(c->node->op_type, "Resize");
    int axes[IL_MAX_RANK], na = r;
    for (int i = 0; i < r; i++) {
        axes[i] = i;
        a->resized[i] = 1;
        a->out[i] = x->dims[i];
        a->scale[i] = 1;
        a->out_len[i] = (double)x->dims[i];
        a->roi0[i] = 0;
        a->roi1[i] = 1;
    }
    a->known = 1;
    const int64_t *attr_axes;
    int n_attr_axes = is_resize && c->opset >= 18 ? il_attr_ints(c->node, "axes", &attr_axes) : 0;
    if (n_attr_axes) {
        if (n_attr_axes > r) return il_kerr(c, IL_ERR_INVALID, "%d axes for an input of rank %d", n_attr_axes, r);
        for (int i = 0; i < r; i++) a->resized[i] = 0;
        for (int i = 0; i < n_attr_axes; i++) {
            if (r == 0) return il_kerr(c, IL_ERR_INVALID, "axis %lld is out of range for rank 0", (long long)attr_axes[i]);
            s = il_norm_axis(c, attr_axes[i], r, &axes[i]);
            if (s) return s;
            if (a->resized[axes[i]]++)
                return il_kerr(c, IL_ERR_INVALID, "axis %lld appears twice in axes", (long long)attr_axes[i]);
        }
        na = n_attr_axes;
    }

    /* where scales / sizes come from */
    const il_tensor *sc = NULL, *sz = NULL, *roi = NULL;
    float attr_scales_buf[IL_MAX_RANK];
    il_tensor attr_scales = {0};
    if (!is_resize && c->opset < 9) {
        const float *f;
        int n = il_attr_floats(c->node, "scales", &f);
        if (n != r) return il_kerr(c, IL_ERR_INVALID, "%d scales for an input of rank %d", n, r);
        if (n) memcpy(attr_scales_buf, f, (size_t)n * sizeof(float));
        attr_scales.dtype = IL_F32;
        attr_scales.rank = 1;
        attr_scales.dims[0] = n;
        attr_scales.data = attr_scales_buf;
        sc = &attr_scales;
    } else if (!is_resize || c->opset < 11) {
        sc = il_in(c, 1);
        if (!sc) return il_kerr(c, IL_ERR_INVALID, "missing the scales input");
    } else {
        roi = il_in(c, 1);
        sc = il_in(c, 2);
        sz = il_in(c, 3);
    }
    int psc = rs_present(sc), psz = rs_present(sz);
    if (psc == 1 && psz == 1) return il_kerr(c, IL_ERR_INVALID, "only one of scales and sizes may be given");
    if (psc == 0 && psz == 0) return il_kerr(c, IL_ERR_INVALID, "one of scales and sizes must be given");
    int use_sizes = psz != 0 && psc != 1;
    const il_tensor *src = use_sizes ? sz : sc;
    if ((psc == -1 && psz == -1) || !src->data) {
        /* sizes follow from data not known yet */
        a->known = 0;
        for (int i = 0; i < r; i++)
            if (a->resized[i]) a->out[i] = -1;
        return IL_OK;
    }
    if (il_tensor_numel(src) != na)
        return il_kerr(c, IL_ERR_INVALID, "%lld %s for %d axes", (long long)il_tensor_numel(src),
                       use_sizes ? "sizes" : "scales", na);

    if (use_sizes) {
        if (sz->dtype != IL_I64 && sz->dtype != IL_I32)
            return il_kerr(c, IL_ERR_TYPE, "sizes must be int64, got %s", il_dtype_name(sz->dtype));
        const char *pol = il_attr_string(c->node, "keep_aspect_ratio_policy", "stretch");
        int policy = c->opset >= 18 ? pick(pol, (const char *const[]){"stretch", "not_larger", "not_smaller"}, 3) : 0;
        if (policy < 0) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported keep_aspect_ratio_policy '%s'", pol);
        double common = policy == 1 ? INFINITY : -INFINITY;
        for (int i = 0; i < na; i++) {
            int64_t v = il_int_at(sz, i), d = x->dims[axes[i]];
            if (v < 0 || v > ((int64_t)1 << 50))
                return il_kerr(c, IL_ERR_INVALID, "size %lld for axis %d is out of range", (long long)v, axes[i]);
            a->out[axes[i]] = v;
            a->out_len[axes[i]] = (double)v;
            a->scale[axes[i]] = d > 0 ? (double)v / (double)d : 1;
            if (policy == 1 && a->scale[axes[i]] < common) common = a->scale[axes[i]];
            if (policy == 2 && a->scale[axes[i]] > common) common = a->scale[axes[i]];
        }
        if (policy)
            for (int i = 0; i < na; i++) {
                int64_t d = x->dims[axes[i]];
                a->scale[axes[i]] = common;
                a->out[axes[i]] = d < 0 ? -1 : (int64_t)(common * (double)d + 0.5);
                a->out_len[axes[i]] = common * (double)d;
            }
    } else {
        if (!il_dtype_is_float(sc->dtype))
            return il_kerr(c, IL_ERR_TYPE, "scales must be float, got %s", il_dtype_name(sc->dtype));
        for (int i = 0; i < na; i++) {
            double v = il_tensor_get(sc, i);
            int64_t d = x->dims[axes[i]];
            if (!(v > 0) || isinf(v)) return il_kerr(c, IL_ERR_INVALID, "scale %g for axis %d is not positive", v, axes[i]);
            if (d > 0 && (double)d * v > 1e15)
                return il_kerr(c, IL_ERR_INVALID, "scale %g makes axis %d too large", v, axes[i]);
            a->scale[axes[i]] = v;
            /* computed in double as the reference does: floor(input * scale) */
            a->out[axes[i]] = d < 0 ? -1 : (int64_t)floor((double)d * v);
            a->out_len[axes[i]] = (double)d * v;
        }
    }
    for (int i = 0; i < r; i++)
        if (x->dims[i] == 0 && a->out[i] > 0)
            return il_kerr(c, IL_ERR_INVALID, "cannot resize axis %d of size 0 to %lld", i, (long long)a->out[i]);

    if (a->coord == CT_TF_CROP) {
        if (rs_present(roi) == 0) return il_kerr(c, IL_ERR_INVALID, "tf_crop_and_resize needs the roi input");
        if (!roi->data) return IL_OK; /* plan time: sizes are known, the roi is not needed yet */
        if (il_tensor_numel(roi) != 2 * na)
            return il_kerr(c, IL_ERR_INVALID, "roi has %lld values for %d axes: need 2 per axis",
                           (long long)il_tensor_numel(roi), na);
        for (int i = 0; i < na; i++) {
            a->roi0[axes[i]] = il_tensor_get(roi, i);
            a->roi1[axes[i]] = il_tensor_get(roi, na + i);
        }
    }
    return IL_OK;
}

static il_status rs_infer(il_kctx *c) {
    il_tensor *x = il_in(c, 0);
    if (!x) return il_kerr(c, IL_ERR_INVALID, "missing input 0");
    if (x->dtype == IL_BOOL || !il_dtype_size(x->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    if (x->rank < 0) {
        rs_args a;
        il_status s = rs_modes(c, &a);
        if (s) return s;
        il_set_out(c, 0, x->dtype, -1, NULL);
        return IL_OK;
    }
    rs_args a;
    il_status s = rs_args_get(c, x, &a);
    if (s) return s;
    il_set_out(c, 0, x->dtype, x->rank, a.out);
    return IL_OK;
}

/* ---------------------------------------------------------------- per-axis taps */

typedef il_resize_axis rs_axis; /* kernel.h */

/* Input coordinate of output index y on one axis (the coordinate_transformation_mode). */
static double rs_coord(const rs_args *a, int ax, int64_t y, int64_t in) {
    double s = a->scale[ax], len = a->out_len[ax], yy = (double)y;
    switch (a->coord) {
    case CT_ALIGN_CORNERS: return len == 1 ? 0 : yy * (double)(in - 1) / (len - 1);
    case CT_ASYMMETRIC: return yy / s;
    case CT_TF_HALF_PIXEL_NN: return (yy + 0.5) / s;
    case CT_PYTORCH: return len == 1 ? -0.5 : (yy + 0.5) / s - 0.5;
    case CT_TF_CROP: {
        double r0 = a->roi0[ax], r1 = a->roi1[ax];
        double x = len == 1 ? (r1 - r0) * (double)(in - 1) / 2 : yy * (r1 - r0) * (double)(in - 1) / (len - 1);
        return x + r0 * (double)(in - 1);
    }
    case CT_HALF_PIXEL_SYM: {
        double adj = (double)a->out[ax] / len, center = (double)in / 2;
        return center * (1 - adj) + (yy + 0.5) / s - 0.5;
    }
    default: return (yy + 0.5) / s - 0.5; /* half_pixel */
    }
}

static double cubic_w(double t, double A) {
    t = fabs(t);
    if (t <= 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
    if (t < 2) return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
    return 0;
}

/* First input index of the n-tap window around x: n/2 taps on each side, the left side taking
 * x itself when x is an integer. Placed the way the ONNX reference places it, from x + n/2 in
 * floating point, so a coordinate within rounding of an integer (3.0000000000000004) picks the
 * same taps as the reference outputs were made with. */
static int64_t window_start(double x, int64_t n) {
    int64_t pad = (n + 1) / 2;
    double xp = x + (double)pad, pf = floor(xp);
    return (int64_t)pf - n / 2 + (xp == pf ? 0 : 1) - pad;
}

/* Taps for every output index of axis ax (input length in, output length out). */
static il_status rs_axis_build(const rs_args *a, int ax, int64_t in, int64_t out, rs_axis *t) {
    memset(t, 0, sizeof *t);
    t->identity = fabs(a->scale[ax] - 1) <= 1e-9 && out == in &&
                  (a->coord != CT_TF_CROP || (fabs(a->roi0[ax]) <= 1e-9 && fabs(a->roi1[ax] - 1) <= 1e-9));
    /* kernel support: antialias stretches it by 1/scale when shrinking */
    double s = a->antialias && a->scale[ax] < 1 ? a->scale[ax] : 1;
    double taps = a->mode == RS_LINEAR ? 2 - 2 * (floor(-1 / s) + 1) : 2 - 2 * (floor(-2 / s) + 1);
    if (taps > 65536) return IL_ERR_UNSUPPORTED;
    t->n = t->identity || a->mode == RS_NEAREST ? 1 : (int64_t)taps;
    t->idx = malloc((size_t)(out * t->n + 1) * sizeof *t->idx);
    t->w = malloc((size_t)(out * t->n + 1) * sizeof *t->w);
    t->outside = calloc((size_t)out + 1, 1);
    if (!t->idx || !t->w || !t->outside) return IL_ERR_OOM;
    for (int64_t y = 0; y < out; y++) {
        int64_t *idx = t->idx + y * t->n;
        double *w = t->w + y * t->n;
        if (t->identity) {
            idx[0] = y, w[0] = 1;
            continue;
        }
        double x = rs_coord(a, ax, y, in);
        if (a->coord == CT_TF_CROP && (x < 0 || x > (double)(in - 1))) t->outside[y] = 1;
        if (!(fabs(x) < 1e15)) x = x > 0 ? 1e15 : -1e15; /* a far-off roi: clamp before int casts */
        /* xi + ratio = x with ratio in (0, 1]: an integer x leans on its left neighbour */
        double fl = floor(x), xi = x == fl ? fl - 1 : fl, ratio = x - xi, sum = 0;
        int64_t first = window_start(x, a->mode == RS_NEAREST ? 2 : t->n);
        if (a->mode == RS_NEAREST) {
            /* the left or right tap of a two-tap window */
            int right;
            if (ratio == 1) right = 1;
            else if (a->nearest == NM_SIMPLE) right = a->scale[ax] < 1;
            else if (a->nearest == NM_FLOOR) right = 0;
            else if (a->nearest == NM_CEIL) right = 1;
            else if (a->nearest == NM_PREFER_CEIL) right = ratio >= 0.5;
            else right = ratio > 0.5;
            int64_t i = first + right;
            idx[0] = i < 0 ? 0 : i >= in ? in - 1 : i;
            w[0] = 1;
            continue;
        }
        int64_t start = 1 - t->n / 2;
        for (int64_t k = 0; k < t->n; k++) {
            double d = (double)(start + k) - ratio; /* signed distance from x, in input pixels */
            if (a->mode == RS_LINEAR) w[k] = a->antialias ? fmax(0, 1 - fabs(d * s)) : (k == 0 ? 1 - ratio : ratio);
            else w[k] = cubic_w(d * s, a->cubic_a);
            int64_t i = first + k;
            if (a->exclude_outside && (i < 0 || i >= in)) w[k] = 0;
            idx[k] = i < 0 ? 0 : i >= in ? in - 1 : i;
            sum += w[k];
        }
        /* antialias and exclude_outside renormalize; plain kernels already sum to 1 */
        if ((a->antialias || a->exclude_outside) && sum != 0)
            for (int64_t k = 0; k < t->n; k++) w[k] /= sum;
    }
    return IL_OK;
}

static void rs_axes_free(rs_axis *t, int r) {
    for (int i = 0; i < r; i++) {
        free(t[i].idx);
        free(t[i].w);
        free(t[i].outside);
    }
}

/* Build the taps of every axis for this run. */
static il_status rs_prepare(il_kctx *c, rs_args *a, rs_axis *t) {
    const il_tensor *x = c->in[0];
    il_status s = rs_args_get(c, x, a);
    if (s) return s;
    for (int i = 0; i < x->rank; i++) {
        s = rs_axis_build(a, i, x->dims[i], c->out[0]->dims[i], &t[i]);
        if (s) {
            rs_axes_free(t, i + 1);
            if (s == IL_ERR_UNSUPPORTED)
                return il_kerr(c, s, "antialias at scale %g needs too wide a kernel on axis %d", a->scale[i], i);
            return il_kerr(c, IL_ERR_OOM, "out of memory");
        }
    }
    return IL_OK;
}

/* Store an interpolated value: integer outputs round to nearest (even) and saturate. */
static void rs_store(il_tensor *y, int64_t i, double v) {
    if (!il_dtype_is_float(y->dtype)) {
        double lo = 0, hi = 0;
        switch (y->dtype) {
        case IL_I8: lo = -128, hi = 127; break;
        case IL_U8: hi = 255; break;
        case IL_I16: lo = -32768, hi = 32767; break;
        case IL_U16: hi = 65535; break;
        case IL_I32: lo = -2147483648.0, hi = 2147483647.0; break;
        case IL_U32: hi = 4294967295.0; break;
        case IL_U64: hi = 18446744073709549568.0; break;
        default: lo = -9223372036854775808.0, hi = 9223372036854774784.0; break;
        }
        v = isnan(v) ? 0 : nearbyint(v);
        v = v < lo ? lo : v > hi ? hi : v;
    }
    il_tensor_set(y, i, v);
}

/* The weighted sum over the taps of axes 0..a for output coordinates yc, with `at` the offset
 * the axes above a already chose. Axis 0's sum is the innermost, as in the reference, which
 * resizes axis 0 first: the same order of additions makes integer outputs round the same way. */
static double rs_taps(const rs_axis *t, const il_tensor *x, const int64_t *xs, const int64_t *yc, int a, int64_t at) {
    if (a < 0) return il_tensor_get(x, at);
    const int64_t *idx = t[a].idx + yc[a] * t[a].n;
    const double *w = t[a].w + yc[a] * t[a].n;
    double s = 0;
    for (int64_t k = 0; k < t[a].n; k++) s += w[k] * rs_taps(t, x, xs, yc, a - 1, at + idx[k] * xs[a]);
    return s;
}

/* Readable version: each output element sums its axes' taps. */
static il_status rs_ref(il_kctx *c) {
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0];
    int r = x->rank;
    rs_args a;
    rs_axis t[IL_MAX_RANK];
    il_status s = rs_prepare(c, &a, t);
    if (s) return s;
    int64_t xs[IL_MAX_RANK], n = il_tensor_numel(y);
    for (int i = r - 1; i >= 0; i--) xs[i] = i == r - 1 ? 1 : xs[i + 1] * x->dims[i + 1];
    for (int64_t o = 0; o < n; o++) {
        int64_t yc[IL_MAX_RANK], rem = o;
        int outside = 0;
        for (int i = r - 1; i >= 0; i--) {
            yc[i] = rem % y->dims[i];
            rem /= y->dims[i];
            outside |= t[i].outside[yc[i]];
        }
        if (outside) {
            rs_store(y, o, a.extrapolation);
            continue;
        }
        double sum = rs_taps(t, x, xs, yc, r - 1, 0);
        rs_store(y, o, sum);
    }
    rs_axes_free(t, r);
    return IL_OK;
}

static int any_set(const unsigned char *v, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (v[i]) return 1;
    return 0;
}

/* float32 when only the last two axes change (NCHW images). One output row at a time: its few
 * source rows, and per output column the W taps, with weights as floats; nearest (one tap)
 * and linear (two) get loops of their own. */
static void rs_row(const float *src, int64_t W, const rs_axis *th, int64_t oy, const float *whf, const rs_axis *tw,
                   const float *wwf, int64_t OW, float ext, float *dst) {
    const int64_t *ih = th->idx + oy * th->n, *iw = tw->idx;
    int64_t nh = th->n, nw = tw->n;
    if (th->outside[oy]) {
        for (int64_t ox = 0; ox < OW; ox++) dst[ox] = ext;
        return;
    }
    if (nh == 1 && nw == 1) {
        const float *row = src + ih[0] * W;
        for (int64_t ox = 0; ox < OW; ox++) dst[ox] = row[iw[ox]];
    } else if (nw == 2) {
        for (int64_t ox = 0; ox < OW; ox++) {
            int64_t i0 = iw[2 * ox], i1 = iw[2 * ox + 1];
            float a = wwf[2 * ox], b = wwf[2 * ox + 1], acc = 0;
            for (int64_t i = 0; i < nh; i++) {
                const float *row = src + ih[i] * W;
                acc += whf[i] * (a * row[i0] + b * row[i1]);
            }
            dst[ox] = acc;
        }
    } else {
        for (int64_t ox = 0; ox < OW; ox++) {
            float acc = 0;
            for (int64_t i = 0; i < nh; i++) {
                const float *row = src + ih[i] * W;
                float part = 0;
                for (int64_t j = 0; j < nw; j++) part += wwf[ox * nw + j] * row[iw[ox * nw + j]];
                acc += whf[i] * part;
            }
            dst[ox] = acc;
        }
    }
    if (any_set(tw->outside, OW))
        for (int64_t ox = 0; ox < OW; ox++)
            if (tw->outside[ox]) dst[ox] = ext;
}

static il_status rs_fast(il_kctx *c) {
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0];
    int r = x->rank;
    if (x->dtype != IL_F32 || r < 2) return rs_ref(c);
    rs_args a;
    rs_axis t[IL_MAX_RANK];
    il_status s = rs_prepare(c, &a, t);
    if (s) return s;
    int plain = 1;
    for (int i = 0; i < r - 2; i++) plain &= t[i].identity;
    const rs_axis *th = &t[r - 2], *tw = &t[r - 1];
    int64_t H = x->dims[r - 2], W = x->dims[r - 1], OH = y->dims[r - 2], OW = y->dims[r - 1];
    float *whf = malloc((size_t)(OH * th->n + 1) * sizeof *whf), *wwf = malloc((size_t)(OW * tw->n + 1) * sizeof *wwf);
    if (!plain || !whf || !wwf) {
        free(whf);
        free(wwf);
        rs_axes_free(t, r);
        return plain ? il_kerr(c, IL_ERR_OOM, "out of memory") : rs_ref(c);
    }
    for (int64_t i = 0; i < OH * th->n; i++) whf[i] = (float)th->w[i];
    for (int64_t i = 0; i < OW * tw->n; i++) wwf[i] = (float)tw->w[i];
    int64_t planes = il_shape_numel(r - 2, x->dims);
    const float *xp = x->data;
    float *yp = y->data;
    float ext = (float)a.extrapolation;
    IL_PAR_FOR(c, task, planes * OH) {
        int64_t oy = task % OH;
        rs_row(xp + task / OH * H * W, W, th, oy, whf + oy * th->n, tw, wwf, OW, ext, yp + task * OW);
    }
    free(whf);
    free(wwf);
    rs_axes_free(t, r);
    return IL_OK;
}

const il_op il_ops_resize[] = {
    {"", "Resize", 10, rs_infer, rs_ref, rs_fast, 0},
    {"", "Upsample", 1, rs_infer, rs_ref, rs_fast, 0},
    {0},
};

il_status il_resize_taps(il_kctx *c, il_resize_axis *t, double *extrapolation) {
    rs_args a;
    il_status s = rs_prepare(c, &a, t);
    if (!s) *extrapolation = a.extrapolation;
    return s;
}

void il_resize_taps_free(il_resize_axis *t, int rank) { rs_axes_free(t, rank); }
