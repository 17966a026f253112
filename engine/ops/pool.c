/*
 * pool.c - MaxPool, AveragePool, LpPool and the global pools: shape inference and reference
 * kernels for any number of spatial dims; the float32 1-D/2-D fast kernels are in
 * engine/cpu/pool_fast.c. The window geometry (pads, auto_pad, ceil_mode) is conv.c's.
 *
 * Padding never wins a max and adds nothing to a sum; AveragePool divides by the taps inside
 * the input, or with count_include_pad by the taps inside the padded input (not the part of a
 * ceil_mode window hanging past the end pad), as ONNX Runtime and PyTorch do. A window that
 * lies wholly in the padding is refused (check_windows), as ONNX Runtime refuses pads >= kernel.
 */
#include "../cpu/compute.h"

#include <float.h>

enum { POOL_MAX, POOL_AVG, POOL_LP };

static il_status pool_dtype(const il_kctx *c, const il_tensor *x, int kind) {
    int ok = il_is_f32_f64(x->dtype) || (kind == POOL_MAX && (x->dtype == IL_I8 || x->dtype == IL_U8));
    return ok ? IL_OK : il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
}

/* Does the window of output position o along spatial dim d hold at least one input element?
 * Its taps are a + j*dil for j in [0, k), a = o*stride - pad. */
static int window_has_input(const il_conv_geom *g, int d, int64_t o) {
    int64_t a = o * g->stride[d] - g->pad[d], dil = g->dil[d];
    int64_t j = a >= 0 ? 0 : (-a + dil - 1) / dil; /* the first tap at or after 0 */
    return j < g->k[d] && a + j * dil < g->in[d];
}

/* A window lying wholly in the padding has no element to pool: AveragePool would divide 0 by 0
 * (NaN) and MaxPool return -inf. ONNX Runtime refuses pads >= kernel for this reason; we refuse
 * exactly the geometries that have such a window. Taps that reach into the input at both ends of
 * the span leave no gap wider than dil, so when in >= dil only the first and last windows can be
 * empty; otherwise every window is checked (a small input, so few windows reach it). */
static il_status check_windows(const il_kctx *c, const il_conv_geom *g) {
    for (int d = 0; d < g->nsp; d++) {
        if (g->in[d] < 0 || g->out[d] <= 0 || g->dil[d] <= 0) continue;
        int all = g->in[d] < g->dil[d];
        if (all && g->out[d] > (1 << 20))
            return il_kerr(c, IL_ERR_UNSUPPORTED, "spatial axis %d: %lld windows with dilation %lld over %lld elements",
                           d, (long long)g->out[d], (long long)g->dil[d], (long long)g->in[d]);
        for (int64_t o = 0; o < g->out[d]; o++) {
            if (o == 1 && !all) o = g->out[d] - 1; /* the first, then the last */
            if (!window_has_input(g, d, o))
                return il_kerr(c, IL_ERR_INVALID, "the pooling window at output position %lld of spatial axis %d lies "
                               "wholly in the padding (pads %lld/%lld, kernel %lld, dilation %lld, input %lld): it "
                               "pools nothing", (long long)o, d, (long long)g->pad[d], (long long)g->pad_end[d],
                               (long long)g->k[d], (long long)g->dil[d], (long long)g->in[d]);
        }
    }
    return IL_OK;
}

static il_status pool_geom(const il_kctx *c, int kind, il_conv_geom *g) {
    const il_tensor *x = il_in(c, 0);
    if (!x) return il_kerr(c, IL_ERR_INVALID, "needs input X");
    il_status st = pool_dtype(c, x, kind);
    if (st) return st;
    int ceil_mode = (int)il_attr_int(c->node, "ceil_mode", 0);
    if ((st = il_window_geom(c, x, NULL, ceil_mode, 1, g))) return st;
    g->m = g->c;
    return check_windows(c, g);
}

static il_status pool_infer_kind(il_kctx *c, int kind) {
    const il_tensor *x = il_in(c, 0);
    il_conv_geom g;
    if (x && x->rank < 0) {
        il_set_out(c, 0, x->dtype, -1, NULL);
        il_set_out(c, 1, IL_I64, -1, NULL); /* MaxPool's Indices */
        return IL_OK;
    }
    il_status st = pool_geom(c, kind, &g);
    if (st) return st;
    int64_t dims[IL_MAX_RANK] = {g.n, g.c};
    for (int i = 0; i < g.nsp; i++) dims[2 + i] = g.out[i];
    il_set_out(c, 0, x->dtype, g.nsp + 2, dims);
    il_set_out(c, 1, IL_I64, g.nsp + 2, dims); /* MaxPool's Indices */
    return IL_OK;
}

static il_status maxpool_infer(il_kctx *c) {
    if (il_attr_int(c->node, "storage_order", 0) & ~1LL)
        return il_kerr(c, IL_ERR_INVALID, "storage_order must be 0 or 1");
    return pool_infer_kind(c, POOL_MAX);
}
static il_status avgpool_infer(il_kctx *c) { return pool_infer_kind(c, POOL_AVG); }
static il_status lppool_infer(il_kctx *c) { return pool_infer_kind(c, POOL_LP); }

/* One pooling kernel for the three kinds: for each output position, walk the window's taps
 * p = o*stride + kk*dilation - pad. */
static il_status pool_ref_kind(il_kctx *c, int kind) {
    il_conv_geom g;
    il_status st = pool_geom(c, kind, &g);
    if (st) return st;
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0], *idx = il_out(c, 1);
    int include_pad = (int)il_attr_int(c->node, "count_include_pad", 0);
    int col_major = il_attr_int(c->node, "storage_order", 0) == 1;
    double p = kind == POOL_LP ? (double)il_attr_int(c->node, "p", 2) : 0;
    int64_t o[IL_MAX_SPATIAL], kk[IL_MAX_SPATIAL];
    for (int64_t nc = 0; nc < g.n * g.c; nc++)
        for (int64_t op = 0; op < g.out_sp; op++) {
            il_unravel(op, g.nsp, g.out, o);
            double best = -INFINITY, sum = 0;
            int64_t best_at = -1, taps_in = 0, taps_padded = 0;
            for (int64_t kp = 0; kp < g.k_sp; kp++) {
                il_unravel(kp, g.nsp, g.k, kk);
                int inside = 1, in_padded = 1;
                int64_t flat = 0, flat_cm = 0, scale = 1;
                for (int d = 0; d < g.nsp; d++) {
                    int64_t q = o[d] * g.stride[d] + kk[d] * g.dil[d] - g.pad[d];
                    if (q < 0 || q >= g.in[d]) inside = 0;
                    if (q >= g.in[d] + g.pad_end[d]) in_padded = 0;
                    flat = flat * g.in[d] + q;
                    flat_cm += q * scale; /* storage_order 1: the first spatial dim varies fastest */
                    scale *= g.in[d];
                }
                taps_padded += in_padded;
                if (!inside) continue;
                taps_in++;
                double v = il_tensor_get(x, nc * g.in_sp + flat);
                if (kind == POOL_MAX && (v > best || best_at < 0)) {
                    best = v;
                    best_at = nc * g.in_sp + (col_major ? flat_cm : flat);
                }
                if (kind == POOL_AVG) sum += v;
                if (kind == POOL_LP) sum += pow(fabs(v), p);
            }
            double r;
            if (kind == POOL_MAX) r = best;
            else if (kind == POOL_AVG) r = sum / (double)(include_pad ? taps_padded : taps_in);
            else r = pow(sum, 1.0 / p);
            il_tensor_set(y, nc * g.out_sp + op, r);
            if (idx) ((int64_t *)idx->data)[nc * g.out_sp + op] = best_at;
        }
    return IL_OK;
}

static il_status maxpool_ref(il_kctx *c) { return pool_ref_kind(c, POOL_MAX); }
static il_status avgpool_ref(il_kctx *c) { return pool_ref_kind(c, POOL_AVG); }
static il_status lppool_ref(il_kctx *c) { return pool_ref_kind(c, POOL_LP); }

static il_status pool_fast_kind(il_kctx *c, int kind) {
    const il_tensor *x = c->in[0];
    if (x->dtype != IL_F32 || x->rank > 4) return pool_ref_kind(c, kind);
    il_conv_geom g;
    il_status st = pool_geom(c, kind, &g);
    if (st) return st;
    return il_pool_fast_f32(c, &g, kind == POOL_MAX ? 0 : 1, (int)il_attr_int(c->node, "count_include_pad", 0),
                            (int)il_attr_int(c->node, "storage_order", 0));
}

static il_status maxpool_fast(il_kctx *c) { return pool_fast_kind(c, POOL_MAX); }
static il_status avgpool_fast(il_kctx *c) { return pool_fast_kind(c, POOL_AVG); }

/* ---------------------------------------------------------------- global pools */

static il_status global_infer_kind(il_kctx *c, int kind) {
    const il_tensor *x = il_in(c, 0);
    if (!x) return il_kerr(c, IL_ERR_INVALID, "needs input X");
    il_status st = pool_dtype(c, x, kind);
    if (st) return st;
    if (x->rank < 0) {
        il_set_out(c, 0, x->dtype, -1, NULL);
        return IL_OK;
    }
    char sx[96];
    if (x->rank < 2)
        return il_kerr(c, IL_ERR_SHAPE, "input %s needs rank >= 2 (N, C, spatial...)",
                       il_shape_str(x->rank, x->dims, sx, sizeof sx));
    int64_t dims[IL_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = i < 2 ? x->dims[i] : 1;
    il_set_out(c, 0, x->dtype, x->rank, dims);
    return IL_OK;
}

static il_status gmax_infer(il_kctx *c) { return global_infer_kind(c, POOL_MAX); }
static il_status gavg_infer(il_kctx *c) { return global_infer_kind(c, POOL_AVG); }
static il_status glp_infer(il_kctx *c) { return global_infer_kind(c, POOL_LP); }

/* Y[n, c] = max / mean / Lp norm of X[n, c, ...] over all spatial positions. */
static il_status global_ref_kind(il_kctx *c, int kind) {
    const il_tensor *x = c->in[0];
    il_tensor *y = c->out[0];
    int64_t nc = x->dims[0] * x->dims[1], sp = il_shape_numel(x->rank - 2, x->dims + 2);
    double p = kind == POOL_LP ? (double)il_attr_int(c->node, "p", 2) : 0;
    for (int64_t i = 0; i < nc; i++) {
        double best = -INFINITY, sum = 0;
        for (int64_t j = 0; j < sp; j++) {
            double v = il_tensor_get(x, i * sp + j);
            if (v > best) best = v;
            sum += kind == POOL_LP ? pow(fabs(v), p) : v;
        }
        double r = kind == POOL_MAX ? best : kind == POOL_AVG ? sum / (double)sp : pow(sum, 1.0 / p);
        il_tensor_set(y, i, r);
    }
    return IL_OK;
}

static il_status gmax_ref(il_kctx *c) { return global_ref_kind(c, POOL_MAX); }
static il_status gavg_ref(il_kctx *c) { return global_ref_kind(c, POOL_AVG); }
static il_status glp_ref(il_kctx *c) { return global_ref_kind(c, POOL_LP); }

/* float32: one channel per iteration, threaded over N*C. */
static il_status global_fast_kind(il_kctx *c, int kind) {
    const il_tensor *x = c->in[0];
    if (x->dtype != IL_F32) return global_ref_kind(c, kind);
    const float *xd = x->data;
    float *yd = c->out[0]->data;
    int64_t nc = x->dims[0] * x->dims[1], sp = il_shape_numel(x->rank - 2, x->dims + 2);
    IL_PAR_FOR(c, i, nc) {
        const float *xc = xd + i * sp;
        if (kind == POOL_MAX) {
            float best = -INFINITY;
            for (int64_t j = 0; j < sp; j++) best = xc[j] > best ? xc[j] : best;
            yd[i] = best;
        } else {
            double sum = 0;
            for (int64_t j = 0; j < sp; j++) sum += xc[j];
            yd[i] = (float)(sum / (double)sp);
        }
    }
    return IL_OK;
}

static il_status gmax_fast(il_kctx *c) { return global_fast_kind(c, POOL_MAX); }
static il_status gavg_fast(il_kctx *c) { return global_fast_kind(c, POOL_AVG); }

const il_op il_ops_pool[] = {
    {"", "MaxPool", 1, maxpool_infer, maxpool_ref, maxpool_fast, 0},
    {"", "AveragePool", 1, avgpool_infer, avgpool_ref, avgpool_fast, 0},
    {"", "LpPool", 1, lppool_infer, lppool_ref, NULL, 0},
    {"", "GlobalMaxPool", 1, gmax_infer, gmax_ref, gmax_fast, 0},
    {"", "GlobalAveragePool", 1, gavg_infer, gavg_ref, gavg_fast, 0},
    {"", "GlobalLpPool", 1, glp_infer, glp_ref, NULL, 0},
    {0},
};
