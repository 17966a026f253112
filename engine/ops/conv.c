/*
 * conv.c - Conv and ConvTranspose: attribute checks, shape inference and the reference
 * kernels, for any number of spatial dims. Also the sliding-window geometry (pads, auto_pad,
 * output size) that pool.c shares.
 *
 * The reference kernels are the ONNX formulas written as loops over output (Conv) or input
 * (ConvTranspose) positions, accumulating in double. The fast float32 kernels (im2col + sgemm,
 * direct depthwise, sgemm + col2im) are in engine/cpu/conv_fast.c.
 */
#include "../cpu/compute.h"

#include <stdio.h>

int64_t il_window_out(int64_t in, int64_t k, int64_t s, int64_t d, const char *auto_pad, int ceil_mode,
                      int64_t *pb, int64_t *pe) {
    int64_t dk = (k - 1) * d + 1; /* extent of the dilated window */
    int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
    if (!strcmp(auto_pad, "VALID")) *pb = *pe = 0;
    if (in < 0 || k < 0) return -1;
    if (same_upper || same_lower) {
        int64_t out = (in + s - 1) / s;
        int64_t total = (out - 1) * s + dk - in;
        if (total < 0) total = 0;
        /* the odd pad goes at the end for SAME_UPPER, at the start for SAME_LOWER */
        *pb = same_upper ? total / 2 : total - total / 2;
        *pe = total - *pb;
        return out;
    }
    int64_t span = in + *pb + *pe - dk;
    if (span < 0) return -2;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* ceil_mode must not start a window in the end padding (PyTorch and ONNX Runtime agree) */
    if (ceil_mode && (out - 1) * s >= in + *pb) out--;
    return out;
}

/* Read an INTS attribute of n entries (or absent: dflt for each) into v. */
static il_status spatial_ints(const il_kctx *c, const char *name, int n, int64_t dflt, int64_t min, int64_t *v) {
    const int64_t *a;
    int na = il_attr_ints(c->node, name, &a);
    if (na && na != n) return il_kerr(c, IL_ERR_INVALID, "%s has %d values, expected %d", name, na, n);
    for (int i = 0; i < n; i++) {
        v[i] = na ? a[i] : dflt;
        if (v[i] < min) return il_kerr(c, IL_ERR_INVALID, "%s[%d] = %lld is below %lld", name, i, (long long)v[i],
                                       (long long)min);
    }
    return IL_OK;
}

il_status il_window_geom(const il_kctx *c, const il_tensor *x, const int64_t *kernel, int ceil_mode, int with_out,
                         il_conv_geom *g) {
    char sx[96];
    memset(g, 0, sizeof *g);
    if (x->rank < 3)
        return il_kerr(c, IL_ERR_SHAPE, "input %s needs rank >= 3 (N, C, spatial...)",
                       il_shape_str(x->rank, x->dims, sx, sizeof sx));
    int nsp = g->nsp = x->rank - 2;
    g->n = x->dims[0];
    g->c = x->dims[1];
    il_status st;
    const int64_t *ks;
    int nk = il_attr_ints(c->node, "kernel_shape", &ks);
    if (nk) {
        if (nk != nsp) return il_kerr(c, IL_ERR_INVALID, "kernel_shape has %d values for %d spatial dims", nk, nsp);
        for (int i = 0; i < nsp; i++) {
            if (ks[i] < 1) return il_kerr(c, IL_ERR_INVALID, "kernel_shape[%d] = %lld", i, (long long)ks[i]);
            if (kernel && kernel[i] >= 0 && kernel[i] != ks[i])
                return il_kerr(c, IL_ERR_SHAPE, "kernel_shape[%d] = %lld but the weight has %lld", i,
                               (long long)ks[i], (long long)kernel[i]);
            g->k[i] = ks[i];
        }
    } else if (kernel) {
        for (int i = 0; i < nsp; i++) g->k[i] = kernel[i];
    } else {
        return il_kerr(c, IL_ERR_INVALID, "kernel_shape is required");
    }
    if ((st = spatial_ints(c, "strides", nsp, 1, 1, g->stride)) || (st = spatial_ints(c, "dilations", nsp, 1, 1, g->dil)))
        return st;
    int64_t pads[2 * IL_MAX_SPATIAL];
    const char *auto_pad = il_attr_string(c->node, "auto_pad", "NOTSET");
    if (strcmp(auto_pad, "NOTSET") && strcmp(auto_pad, "SAME_UPPER") && strcmp(auto_pad, "SAME_LOWER") &&
        strcmp(auto_pad, "VALID"))
        return il_kerr(c, IL_ERR_INVALID, "unknown auto_pad '%s'", auto_pad);
    /* ConvTranspose allows negative pads (cropping); the windowed ops do not */
    if ((st = spatial_ints(c, "pads", 2 * nsp, 0, with_out ? 0 : INT64_MIN, pads))) return st;
    g->in_sp = g->out_sp = g->k_sp = 1;
    for (int i = 0; i < nsp; i++) {
        g->in[i] = x->dims[2 + i];
        g->pad[i] = pads[i];
        g->pad_end[i] = pads[nsp + i];
        if (with_out) {
            g->out[i] = il_window_out(g->in[i], g->k[i], g->stride[i], g->dil[i], auto_pad, ceil_mode, &g->pad[i],
                                      &g->pad_end[i]);
            if (g->out[i] == -2)
                return il_kerr(c, IL_ERR_SHAPE,
                               "kernel %lld (dilation %lld) does not fit input %s padded by %lld+%lld in spatial dim %d",
                               (long long)g->k[i], (long long)g->dil[i], il_shape_str(x->rank, x->dims, sx, sizeof sx),
                               (long long)g->pad[i], (long long)g->pad_end[i], i);
        }
        g->in_sp = g->in[i] < 0 || g->in_sp < 0 ? -1 : g->in_sp * g->in[i];
        g->out_sp = g->out[i] < 0 || g->out_sp < 0 ? -1 : g->out_sp * g->out[i];
        g->k_sp = g->k[i] < 0 || g->k_sp < 0 ? -1 : g->k_sp * g->k[i];
    }
    return IL_OK;
}

/* Checks shared by Conv, ConvTranspose and the quantized convs: ranks and group. The float
 * ops also want matching float32/float64 dtypes (quant: 0). */
static il_status conv_inputs(const il_kctx *c, const il_tensor *x, const il_tensor *w, int quant, int64_t *group) {
    char sx[96], sw[96];
    if (!x || !w) return il_kerr(c, IL_ERR_INVALID, "needs inputs X and W");
    if (!quant && !il_is_f32_f64(x->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    if (!quant && w->dtype != x->dtype)
        return il_kerr(c, IL_ERR_TYPE, "weight is %s, input is %s", il_dtype_name(w->dtype), il_dtype_name(x->dtype));
    if (quant && ((x->dtype != IL_U8 && x->dtype != IL_I8) || (w->dtype != IL_U8 && w->dtype != IL_I8)))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s x %s", il_dtype_name(x->dtype), il_dtype_name(w->dtype));
    if (x->rank >= 0 && w->rank >= 0 && w->rank != x->rank)
        return il_kerr(c, IL_ERR_SHAPE, "weight %s must have the rank of input %s",
                       il_shape_str(w->rank, w->dims, sw, sizeof sw), il_shape_str(x->rank, x->dims, sx, sizeof sx));
    *group = il_attr_int(c->node, "group", 1);
    if (*group < 1) return il_kerr(c, IL_ERR_INVALID, "group %lld must be >= 1", (long long)*group);
    return IL_OK;
}

/* Conv: X [N, C, D...], W [M, C/group, k...], B [M] -> Y [N, M, out...]. */
static il_status conv_geom_of(const il_kctx *c, const il_tensor *x, const il_tensor *w, const il_tensor *b, int quant,
                              il_conv_geom *g) {
    int64_t group = 1, kernel[IL_MAX_SPATIAL] = {0};
    il_status st = conv_inputs(c, x, w, quant, &group);
    if (st) return st;
    int nsp = x->rank - 2, wk = w->rank == x->rank;
    for (int i = 0; i < nsp && i < IL_MAX_SPATIAL; i++) kernel[i] = wk ? w->dims[2 + i] : -1;
    if ((st = il_window_geom(c, x, kernel, 0, 1, g))) return st;
    g->group = group;
    g->m = wk ? w->dims[0] : -1;
    int64_t wc = wk ? w->dims[1] : -1;
    if (g->c >= 0 && wc >= 0 && g->c != wc * group)
        return il_kerr(c, IL_ERR_SHAPE, "input has %lld channels, weight expects %lld (group %lld)", (long long)g->c,
                       (long long)(wc * group), (long long)group);
    if (g->m >= 0 && g->m % group)
        return il_kerr(c, IL_ERR_SHAPE, "weight has %lld output channels, not a multiple of group %lld",
                       (long long)g->m, (long long)group);
    if (b && b->rank >= 0 && (b->rank != 1 || (g->m >= 0 && b->dims[0] >= 0 && b->dims[0] != g->m))) {
        char sb[96];
        return il_kerr(c, IL_ERR_SHAPE, "bias has shape %s, expected [%lld]", il_shape_str(b->rank, b->dims, sb, sizeof sb),
                       (long long)g->m);
    }
    return IL_OK;
}

static il_status conv_geom(const il_kctx *c, il_conv_geom *g) {
    return conv_geom_of(c, il_in(c, 0), il_in(c, 1), il_in(c, 2), 0, g);
}

/* ConvTranspose: X [N, C, D...], W [C, M/group, k...], B [M] -> Y [N, M, out...] where
 * out = stride*(in-1) + output_padding + (k-1)*dilation + 1 - pads, unless output_shape or
 * SAME auto_pad fix out and the pads follow from it. */
static il_status convt_geom(const il_kctx *c, il_conv_geom *g) {
    const il_tensor *x = il_in(c, 0), *w = il_in(c, 1), *b = il_in(c, 2);
    int64_t group, kernel[IL_MAX_SPATIAL], opad[IL_MAX_SPATIAL];
    il_status st = conv_inputs(c, x, w, 0, &group);
    if (st) return st;
    int nsp = x->rank - 2, wk = w->rank == x->rank;
    for (int i = 0; i < nsp && i < IL_MAX_SPATIAL; i++) kernel[i] = wk ? w->dims[2 + i] : -1;
    if ((st = il_window_geom(c, x, kernel, 0, 0, g))) return st;
    g->group = group;
    int64_t wc = wk ? w->dims[0] : -1;
    g->m = wk && w->dims[1] >= 0 ? w->dims[1] * group : -1;
    if (g->c >= 0 && wc >= 0 && g->c != wc)
        return il_kerr(c, IL_ERR_SHAPE, "input has %lld channels, weight expects %lld (group %lld)", (long long)g->c,
                       (long long)wc, (long long)group);
    if (g->c >= 0 && g->c % group)
        return il_kerr(c, IL_ERR_SHAPE, "input has %lld channels, not a multiple of group %lld", (long long)g->c,
                       (long long)group);
    if (b && b->rank >= 0 && (b->rank != 1 || (g->m >= 0 && b->dims[0] >= 0 && b->dims[0] != g->m))) {
        char sb[96];
        return il_kerr(c, IL_ERR_SHAPE, "bias has shape %s, expected [%lld]", il_shape_str(b->rank, b->dims, sb, sizeof sb),
                       (long long)g->m);
    }
    if ((st = spatial_ints(c, "output_padding", nsp, 0, 0, opad))) return st;
    const int64_t *os;
    int nos = il_attr_ints(c->node, "output_shape", &os);
    if (nos && nos != nsp && nos != nsp + 2)
        return il_kerr(c, IL_ERR_INVALID, "output_shape has %d values for %d spatial dims", nos, nsp);
    if (nos == nsp + 2) os += 2; /* some exporters give the full shape */
    const char *auto_pad = il_attr_string(c->node, "auto_pad", "NOTSET");
    int same = !strncmp(auto_pad, "SAME", 4);
    g->out_sp = 1;
    for (int i = 0; i < nsp; i++) {
        int64_t dk = (g->k[i] - 1) * g->dil[i] + 1, in = g->in[i], s = g->stride[i];
        if (!strcmp(auto_pad, "VALID")) g->pad[i] = g->pad_end[i] = 0;
        if (nos || same) {
            int64_t target = nos ? os[i] : (in < 0 ? -1 : in * s);
            g->out[i] = target;
            if (in >= 0 && g->k[i] >= 0 && target >= 0) {
                int64_t total = s * (in - 1) + opad[i] + dk - target;
                /* Python's floor division, as in the ONNX reference: a negative total (output
                 * larger than the full result) pads zeros at the end */
                int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
                g->pad[i] = !strcmp(auto_pad, "SAME_UPPER") ? half : total - half;
                g->pad_end[i] = total - g->pad[i];
            }
        } else {
            g->out[i] = in < 0 || g->k[i] < 0 ? -1 : s * (in - 1) + opad[i] + dk - g->pad[i] - g->pad_end[i];
            if (g->out[i] == 0 || g->out[i] < -1)
                return il_kerr(c, IL_ERR_SHAPE, "output size %lld in spatial dim %d is not positive",
                               (long long)g->out[i], i);
        }
        g->out_sp = g->out[i] < 0 || g->out_sp < 0 ? -1 : g->out_sp * g->out[i];
    }
    return IL_OK;
}

static il_status conv_infer_common(il_kctx *c, int transpose) {
    const il_tensor *x = il_in(c, 0);
    il_conv_geom g;
    if (x && x->rank < 0) { /* nothing to go on before the input's rank is known */
        il_set_out(c, 0, x->dtype, -1, NULL);
        return IL_OK;
    }
    il_status st = transpose ? convt_geom(c, &g) : conv_geom(c, &g);
    if (st) return st;
    int64_t dims[IL_MAX_RANK] = {g.n, g.m};
    for (int i = 0; i < g.nsp; i++) dims[2 + i] = g.out[i];
    il_set_out(c, 0, x->dtype, g.nsp + 2, dims);
    return IL_OK;
}

static il_status conv_infer(il_kctx *c) { return conv_infer_common(c, 0); }
static il_status convt_infer(il_kctx *c) { return conv_infer_common(c, 1); }

/* Conv: the flat input position that output position o meets through kernel tap kk, or -1
 * in the padding: p = o*stride + kk*dilation - pad in each dim. */
static int64_t conv_src(const il_conv_geom *g, const int64_t *o, const int64_t *kk) {
    int64_t flat = 0;
    for (int d = 0; d < g->nsp; d++) {
        int64_t p = o[d] * g->stride[d] + kk[d] * g->dil[d] - g->pad[d];
        if (p < 0 || p >= g->in[d]) return -1;
        flat = flat * g->in[d] + p;
    }
    return flat;
}

/* ConvTranspose: the flat output position that input position i reaches through kernel tap
 * kk (the same formula read the other way), or -1 outside the (cropped) output. */
static int64_t convt_dst(const il_conv_geom *g, const int64_t *i, const int64_t *kk) {
    int64_t flat = 0;
    for (int d = 0; d < g->nsp; d++) {
        int64_t o = i[d] * g->stride[d] + kk[d] * g->dil[d] - g->pad[d];
        if (o < 0 || o >= g->out[d]) return -1;
        flat = flat * g->out[d] + o;
    }
    return flat;
}

/* The sum over ci < C/group and taps kk of (X[n, grp*C/group + ci, o*s + kk*d - pad] - x_zp)
 * * (W[m, ci, kk] - w_zp), grp = m / (M/group): one Conv output before bias. Taps in the
 * padding add nothing (the quantized convs pad with x_zp, which also adds nothing). */
static double conv_at(const il_conv_geom *g, const il_tensor *x, const il_tensor *w, double xzp, double wzp, int64_t n,
                      int64_t m, const int64_t *o) {
    int64_t cg = g->c / g->group, grp = m / (g->m / g->group), kk[IL_MAX_SPATIAL];
    double acc = 0;
    for (int64_t ci = 0; ci < cg; ci++)
        for (int64_t kp = 0; kp < g->k_sp; kp++) {
            il_unravel(kp, g->nsp, g->k, kk);
            int64_t src = conv_src(g, o, kk);
            if (src < 0) continue;
            acc += (il_tensor_get(x, (n * g->c + grp * cg + ci) * g->in_sp + src) - xzp) *
                   (il_tensor_get(w, (m * cg + ci) * g->k_sp + kp) - wzp);
        }
    return acc;
}

/* Y[n, m, o] = B[m] + conv_at(n, m, o) */
static il_status conv_ref(il_kctx *c) {
    il_conv_geom g;
    il_status st = conv_geom(c, &g);
    if (st) return st;
    const il_tensor *x = c->in[0], *w = c->in[1], *b = il_in(c, 2);
    il_tensor *y = c->out[0];
    int64_t o[IL_MAX_SPATIAL];
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t m = 0; m < g.m; m++)
            for (int64_t op = 0; op < g.out_sp; op++) {
                il_unravel(op, g.nsp, g.out, o);
                il_stf(y, (n * g.m + m) * g.out_sp + op, (b ? il_ldf(b, m) : 0) + conv_at(&g, x, w, 0, 0, n, m, o));
            }
    return IL_OK;
}

/* Each input element X[n, c, i] adds X * W[c, mi, kk] to Y[n, grp*M/group + mi, i*s + kk*d - pad]
 * for every output channel mi of its group and every tap kk. */
static il_status convt_ref(il_kctx *c) {
    il_conv_geom g;
    il_status st = convt_geom(c, &g);
    if (st) return st;
    const il_tensor *x = c->in[0], *w = c->in[1], *b = il_in(c, 2);
    il_tensor *y = c->out[0];
    int64_t cg = g.c / g.group, mg = g.m / g.group, i[IL_MAX_SPATIAL], kk[IL_MAX_SPATIAL];
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t m = 0; m < g.m; m++)
            for (int64_t op = 0; op < g.out_sp; op++) il_stf(y, (n * g.m + m) * g.out_sp + op, b ? il_ldf(b, m) : 0);
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t ch = 0; ch < g.c; ch++)
            for (int64_t ip = 0; ip < g.in_sp; ip++) {
                il_unravel(ip, g.nsp, g.in, i);
                double xv = il_ldf(x, (n * g.c + ch) * g.in_sp + ip);
                int64_t grp = ch / cg;
                for (int64_t mi = 0; mi < mg; mi++)
                    for (int64_t kp = 0; kp < g.k_sp; kp++) {
                        il_unravel(kp, g.nsp, g.k, kk);
                        int64_t dst = convt_dst(&g, i, kk);
                        if (dst < 0) continue;
                        int64_t yi = (n * g.m + grp * mg + mi) * g.out_sp + dst;
                        il_stf(y, yi, il_ldf(y, yi) + xv * il_ldf(w, (ch * mg + mi) * g.k_sp + kp));
                    }
            }
    return IL_OK;
}

static il_status conv_fast(il_kctx *c) {
    if (c->in[0]->dtype != IL_F32) return conv_ref(c);
    il_conv_geom g;
    il_status st = conv_geom(c, &g);
    return st ? st : il_conv_fast_f32(c, &g);
}

static il_status convt_fast(il_kctx *c) {
    if (c->in[0]->dtype != IL_F32) return convt_ref(c);
    il_conv_geom g;
    il_status st = convt_geom(c, &g);
    return st ? st : il_conv_transpose_fast_f32(c, &g);
}

/* ConvInteger: int32 Y = conv(X - x_zero_point, W - w_zero_point) over 8-bit X and W.
 * QLinearConv: the same sum plus an int32 bias B, rescaled by x_scale*w_scale[m]/y_scale,
 * rounded half to even, shifted by y_zero_point and saturated to y's 8-bit type. w's zero point
 * and scale are per tensor or per output channel. Reference kernels only. */
static il_status qconv_geom(const il_kctx *c, int qlinear, il_conv_geom *g) {
    if (qlinear && (!il_in(c, 1) || !il_in(c, 2) || !il_in(c, 4) || !il_in(c, 5) || !il_in(c, 6) || !il_in(c, 7)))
        return il_kerr(c, IL_ERR_INVALID, "needs x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point");
    const il_tensor *b = qlinear ? il_in(c, 8) : NULL;
    return conv_geom_of(c, il_in(c, 0), il_in(c, qlinear ? 3 : 1), b, 1, g);
}

static il_status qconv_infer_common(il_kctx *c, int qlinear) {
    const il_tensor *x = il_in(c, 0);
    il_dtype dt = qlinear && il_in(c, 7) ? c->in[7]->dtype : IL_I32;
    il_conv_geom g;
    if (x && x->rank < 0) {
        il_set_out(c, 0, dt, -1, NULL);
        return IL_OK;
    }
    il_status st = qconv_geom(c, qlinear, &g);
    if (st) return st;
    /* the kernel reads w's zero point and scale per tensor or per output channel, the others per
     * tensor: anything else would be read past its end */
    static const struct { int slot; const char *name; int per_m; } cint[] = {{2, "x_zero_point", 0},
        {3, "w_zero_point", 1}}, qlc[] = {{1, "x_scale", 0}, {2, "x_zero_point", 0}, {4, "w_scale", 1},
        {5, "w_zero_point", 1}, {6, "y_scale", 0}, {7, "y_zero_point", 0}};
    for (int i = 0; i < (qlinear ? 6 : 2); i++) {
        const char *name = qlinear ? qlc[i].name : cint[i].name;
        int per_m = qlinear ? qlc[i].per_m : cint[i].per_m;
        const il_tensor *q = il_in(c, qlinear ? qlc[i].slot : cint[i].slot);
        int64_t n = q && il_shape_known(q) ? il_tensor_numel(q) : 1;
        if (n != 1 && (!per_m || n != g.m))
            return il_kerr(c, IL_ERR_SHAPE, "%s has %lld elements; 1%s expected", name, (long long)n,
                           per_m ? " or one per output channel" : "");
    }
    int64_t dims[IL_MAX_RANK] = {g.n, g.m};
    for (int i = 0; i < g.nsp; i++) dims[2 + i] = g.out[i];
    il_set_out(c, 0, dt, g.nsp + 2, dims);
    return IL_OK;
}

static il_status convint_infer(il_kctx *c) { return qconv_infer_common(c, 0); }
static il_status qlconv_infer(il_kctx *c) { return qconv_infer_common(c, 1); }

/* Element i of a per-tensor (one element) or per-channel parameter; 0 when absent. */
static double per_channel(const il_tensor *t, int64_t i) {
    if (!t) return 0;
    return il_tensor_get(t, il_tensor_numel(t) == 1 ? 0 : i);
}

static il_status qconv_ref_common(il_kctx *c, int qlinear) {
    il_conv_geom g;
    il_status st = qconv_geom(c, qlinear, &g);
    if (st) return st;
    const il_tensor *x = c->in[0], *w = c->in[qlinear ? 3 : 1], *b = qlinear ? il_in(c, 8) : NULL;
    const il_tensor *xzp = il_in(c, 2), *wzp = il_in(c, qlinear ? 5 : 3);
    il_tensor *y = c->out[0];
    double lo = y->dtype == IL_U8 ? 0 : -128, hi = y->dtype == IL_U8 ? 255 : 127;
    int64_t o[IL_MAX_SPATIAL];
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t m = 0; m < g.m; m++)
            for (int64_t op = 0; op < g.out_sp; op++) {
                il_unravel(op, g.nsp, g.out, o);
                double acc = conv_at(&g, x, w, per_channel(xzp, 0), per_channel(wzp, m), n, m, o);
                int64_t yi = (n * g.m + m) * g.out_sp + op;
                if (!qlinear) {
                    ((int32_t *)y->data)[yi] = (int32_t)acc;
                    continue;
                }
                acc += per_channel(b, m);
                double scale = il_tensor_get(c->in[1], 0) * per_channel(c->in[4], m) / il_tensor_get(c->in[6], 0);
                double v = nearbyint(acc * scale) + il_tensor_get(c->in[7], 0);
                il_tensor_set(y, yi, v < lo ? lo : v > hi ? hi : v);
            }
    return IL_OK;
}

static il_status convint_ref(il_kctx *c) { return qconv_ref_common(c, 0); }
static il_status qlconv_ref(il_kctx *c) { return qconv_ref_common(c, 1); }

const il_op il_ops_conv[] = {
    {"", "Conv", 1, conv_infer, conv_ref, conv_fast, 0},
    {"", "ConvTranspose", 1, convt_infer, convt_ref, convt_fast, 0},
    {"", "ConvInteger", 10, convint_infer, convint_ref, NULL, 0},
    {"", "QLinearConv", 10, qlconv_infer, qlconv_ref, NULL, 0},
    {0},
};
