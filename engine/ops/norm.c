/*
 * norm.c - BatchNormalization, InstanceNormalization, LayerNormalization and
 * GroupNormalization: shape inference, reference kernels (double accumulation, two passes:
 * mean, then variance of the differences) and float32 fast kernels threaded over the
 * independent rows / channels.
 *
 * All four are y = (x - mean) / sqrt(var + epsilon) * scale + bias; they differ in which
 * elements share a mean and variance, and where the mean and variance come from (BatchNorm in
 * inference mode reads them as inputs; the others compute them, with the biased variance).
 */
#include "../cpu/compute.h"

#include <stdio.h>

static il_status float_input(const il_kctx *c, const il_tensor *x) {
    if (!x) return il_kerr(c, IL_ERR_INVALID, "needs input X");
    if (!il_is_f32_f64(x->dtype)) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(x->dtype));
    return IL_OK;
}

/* Input i must hold n elements (per-channel parameters); n or its dims may be unknown (-1). */
static il_status param_size(const il_kctx *c, int i, const char *what, int64_t n) {
    const il_tensor *p = il_in(c, i);
    if (p && !il_is_f32_f64(p->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s for %s", il_dtype_name(p->dtype), what);
    if (!p || p->rank < 0 || n < 0 || !il_shape_known(p)) return IL_OK;
    if (il_tensor_numel(p) != n) {
        char sp[96];
        return il_kerr(c, IL_ERR_SHAPE, "%s has shape %s, expected %lld elements", what,
                       il_shape_str(p->rank, p->dims, sp, sizeof sp), (long long)n);
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- BatchNormalization */

/* Training mode: opset 14 has the attribute; before, asking for the extra outputs meant it. */
static int bn_training(const il_kctx *c) {
    if (c->opset >= 14) return il_attr_int(c->node, "training_mode", 0) != 0;
    return c->opset >= 9 && il_out(c, 1) != NULL;
}

/* Elements per parameter entry: C (spatial, the usual) or C*D1*... (spatial=0, opsets < 9). */
static int64_t bn_params(const il_kctx *c, const il_tensor *x) {
    int spatial = c->opset < 9 ? (int)il_attr_int(c->node, "spatial", 1) : 1;
    return spatial ? x->dims[1] : il_shape_numel(x->rank - 1, x->dims + 1);
}

static il_status bn_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_status st = float_input(c, x);
    if (st) return st;
    for (int i = 1; i < 5; i++)
        if (!il_in(c, i)) return il_kerr(c, IL_ERR_INVALID, "needs 5 inputs (X, scale, B, mean, var)");
    if (x->rank < 0) {
        for (int i = 0; i < c->n_out; i++) il_set_out(c, i, x->dtype, -1, NULL);
        return IL_OK;
    }
    char sx[96];
    if (x->rank < 2) return il_kerr(c, IL_ERR_SHAPE, "input %s needs rank >= 2", il_shape_str(x->rank, x->dims, sx, sizeof sx));
    int64_t np = il_shape_known(x) ? bn_params(c, x) : -1;
    static const char *names[] = {"", "scale", "B", "mean", "var"};
    for (int i = 1; i < 5; i++)
        if ((st = param_size(c, i, names[i], np))) return st;
    il_same_as(c, 0, 0);
    for (int i = 1; i < c->n_out; i++) il_same_as(c, i, 3); /* running / saved mean and var */
    return IL_OK;
}

/* Batch statistics over every axis but 1 (training mode), biased variance. */
static void bn_batch_stats(const il_tensor *x, int64_t n, int64_t ch, int64_t sp, int64_t k, double *mean, double *var) {
    double cnt = (double)(n * sp);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < sp; j++) s += il_ldf(x, (i * ch + k) * sp + j);
    *mean = s / cnt;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < sp; j++) {
            double d = il_ldf(x, (i * ch + k) * sp + j) - *mean;
            s2 += d * d;
        }
    *var = s2 / cnt;
}

/* Y[n, c, ...] = (X - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + B[c]. With spatial=0 the
 * parameters have one entry per (c, position) instead of per c. */
static il_status bn_ref(il_kctx *c) {
    const il_tensor *x = c->in[0], *scale = c->in[1], *bias = c->in[2], *mean = c->in[3], *var = c->in[4];
    il_tensor *y = c->out[0];
    double eps = il_attr_float(c->node, "epsilon", 1e-5f), momentum = il_attr_float(c->node, "momentum", 0.9f);
    int64_t n = x->dims[0], np = bn_params(c, x), per_sample = il_shape_numel(x->rank - 1, x->dims + 1);
    int64_t sp = per_sample / (np ? np : 1); /* elements sharing one parameter within a sample */
    int training = bn_training(c);
    if (training && np != x->dims[1])
        return il_kerr(c, IL_ERR_UNSUPPORTED, "training mode with spatial=0 is not supported");
    for (int64_t k = 0; k < np; k++) {
        double mu = il_ldf(mean, k), v = il_ldf(var, k);
        if (training) {
            double bm, bv;
            bn_batch_stats(x, n, np, sp, k, &bm, &bv);
            /* running statistics (opset 14) or saved batch statistics (outputs 3 and 4, older) */
            if (il_out(c, 1)) il_stf(c->out[1], k, mu * momentum + bm * (1 - momentum));
            if (il_out(c, 2)) il_stf(c->out[2], k, v * momentum + bv * (1 - momentum));
            if (il_out(c, 3)) il_stf(c->out[3], k, bm);
            if (il_out(c, 4)) il_stf(c->out[4], k, bv);
            mu = bm;
            v = bv;
        }
        double inv = 1.0 / sqrt(v + eps), s = il_ldf(scale, k), b = il_ldf(bias, k);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < sp; j++) {
                int64_t at = (i * np + k) * sp + j;
                il_stf(y, at, (il_ldf(x, at) - mu) * inv * s + b);
            }
    }
    return IL_OK;
}

/* float32 inference: fold each channel into y = a*x + b, threaded over N*C planes. */
static il_status bn_fast(il_kctx *c) {
    const il_tensor *x = c->in[0];
    if (x->dtype != IL_F32 || bn_training(c) || c->in[1]->dtype != IL_F32 || c->in[3]->dtype != IL_F32) return bn_ref(c);
    const float *scale = c->in[1]->data, *bias = c->in[2]->data, *mean = c->in[3]->data, *var = c->in[4]->data;
    const float *xd = x->data;
    float *yd = c->out[0]->data;
    float eps = il_attr_float(c->node, "epsilon", 1e-5f);
    int64_t np = bn_params(c, x), sp = il_shape_numel(x->rank - 1, x->dims + 1) / (np ? np : 1);
    int64_t planes = x->dims[0] * np;
    IL_PAR_FOR(c, p, planes) {
        int64_t k = p % np;
        float a = scale[k] / sqrtf(var[k] + eps), b = bias[k] - mean[k] * a;
        const float *xp = xd + p * sp;
        float *yp = yd + p * sp;
        for (int64_t j = 0; j < sp; j++) yp[j] = a * xp[j] + b;
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- Instance / Group norm */

/* Mean and biased variance of n consecutive elements of x from offset at. */
static void stats(const il_tensor *x, int64_t at, int64_t n, double *mean, double *var) {
    double s = 0, s2 = 0;
    for (int64_t j = 0; j < n; j++) s += il_ldf(x, at + j);
    *mean = n ? s / (double)n : 0;
    for (int64_t j = 0; j < n; j++) {
        double d = il_ldf(x, at + j) - *mean;
        s2 += d * d;
    }
    *var = n ? s2 / (double)n : 0;
}

/* Mean and variance of n floats, summed in double. The sums may be reordered (omp simd, with the
 * widest vectors the CPU has): one accumulator chain made LayerNorm latency-bound, 21 us for
 * tiny_bert's 128 rows of 64 (4 cycles per add, two passes); the order changes rounding by far
 * less than the float result holds. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static void
stats_f32(const float *x, int64_t n, double *mean, double *var) {
    double s = 0, s2 = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) s += x[j];
    double mu = n ? s / (double)n : 0;
#pragma omp simd reduction(+ : s2)
    for (int64_t j = 0; j < n; j++) {
        double d = x[j] - mu;
        s2 += d * d;
    }
    *mean = mu;
    *var = n ? s2 / (double)n : 0;
}

/* InstanceNormalization: X [N, C, ...], scale [C], B [C]; statistics per (n, c).
 * GroupNormalization: num_groups groups of C/num_groups channels; scale and B per group
 * (opset 18) or per channel (opset 21), told apart by their size. */
static il_status group_geom(const il_kctx *c, int instance, int64_t *groups) {
    const il_tensor *x = il_in(c, 0);
    il_status st = float_input(c, x);
    if (st) return st;
    if (!il_in(c, 1) || !il_in(c, 2)) return il_kerr(c, IL_ERR_INVALID, "needs inputs X, scale and B");
    if (x->rank < 0) return IL_OK;
    char sx[96];
    if (x->rank < 2) return il_kerr(c, IL_ERR_SHAPE, "input %s needs rank >= 2", il_shape_str(x->rank, x->dims, sx, sizeof sx));
    int64_t ch = x->dims[1];
    *groups = instance ? ch : il_attr_int(c->node, "num_groups", -1);
    if (!instance && *groups < 1) return il_kerr(c, IL_ERR_INVALID, "num_groups must be >= 1");
    if (ch >= 0 && !instance && ch % *groups)
        return il_kerr(c, IL_ERR_SHAPE, "%lld channels do not split into %lld groups", (long long)ch, (long long)*groups);
    for (int i = 1; i < 3; i++) {
        const il_tensor *p = il_in(c, i);
        if (instance || !il_shape_known(p) || il_tensor_numel(p) != *groups)
            if ((st = param_size(c, i, i == 1 ? "scale" : "B", ch))) return st;
    }
    return IL_OK;
}

static il_status instnorm_infer(il_kctx *c) {
    int64_t groups = 1;
    il_status st = group_geom(c, 1, &groups);
    if (!st) il_same_as(c, 0, 0);
    return st;
}

static il_status groupnorm_infer(il_kctx *c) {
    int64_t groups = 1;
    il_status st = group_geom(c, 0, &groups);
    if (!st) il_same_as(c, 0, 0);
    return st;
}

/* Y = (X - mean_g) / sqrt(var_g + epsilon) * scale + B, with mean_g, var_g over each (n, group). */
static il_status group_ref(il_kctx *c, int instance) {
    const il_tensor *x = c->in[0], *scale = c->in[1], *bias = c->in[2];
    il_tensor *y = c->out[0];
    int64_t groups = 1;
    il_status st = group_geom(c, instance, &groups);
    if (st) return st;
    double eps = il_attr_float(c->node, "epsilon", 1e-5f);
    int64_t ch = x->dims[1], sp = il_shape_numel(x->rank - 2, x->dims + 2), cpg = ch / groups;
    int per_channel = il_tensor_numel(scale) == ch;
    for (int64_t n = 0; n < x->dims[0]; n++)
        for (int64_t g = 0; g < groups; g++) {
            int64_t at = (n * ch + g * cpg) * sp;
            double mean, var;
            stats(x, at, cpg * sp, &mean, &var);
            double inv = 1.0 / sqrt(var + eps);
            for (int64_t j = 0; j < cpg * sp; j++) {
                int64_t k = per_channel ? g * cpg + j / sp : g;
                il_stf(y, at + j, (il_ldf(x, at + j) - mean) * inv * il_ldf(scale, k) + il_ldf(bias, k));
            }
        }
    return IL_OK;
}

static il_status group_fast(il_kctx *c, int instance) {
    const il_tensor *x = c->in[0], *scale = c->in[1], *bias = c->in[2];
    if (x->dtype != IL_F32 || scale->dtype != IL_F32 || bias->dtype != IL_F32) return group_ref(c, instance);
    int64_t groups = 1;
    il_status st = group_geom(c, instance, &groups);
    if (st) return st;
    const float *xd = x->data, *sd = scale->data, *bd = bias->data;
    float *yd = c->out[0]->data;
    double eps = il_attr_float(c->node, "epsilon", 1e-5f);
    int64_t ch = x->dims[1], sp = il_shape_numel(x->rank - 2, x->dims + 2), cpg = ch / groups;
    int per_channel = il_tensor_numel(scale) == ch;
    IL_PAR_FOR(c, ng, x->dims[0] * groups) {
        int64_t g = ng % groups, at = ng * cpg * sp;
        double mean, var;
        stats_f32(xd + at, cpg * sp, &mean, &var);
        float inv = (float)(1.0 / sqrt(var + eps)), mu = (float)mean;
        for (int64_t cc = 0; cc < cpg; cc++) {
            int64_t k = per_channel ? g * cpg + cc : g;
            float a = inv * sd[k], b = bd[k] - mu * a;
            for (int64_t j = 0; j < sp; j++) yd[at + cc * sp + j] = a * xd[at + cc * sp + j] + b;
        }
    }
    return IL_OK;
}

static il_status instnorm_ref(il_kctx *c) { return group_ref(c, 1); }
static il_status instnorm_fast(il_kctx *c) { return group_fast(c, 1); }
static il_status groupnorm_ref(il_kctx *c) { return group_ref(c, 0); }
static il_status groupnorm_fast(il_kctx *c) { return group_fast(c, 0); }

/* ---------------------------------------------------------------- LayerNormalization */

/* X is seen as [outer, inner] with inner = X.shape[axis:]; Scale and B broadcast to
 * X.shape[axis:] (numpy rules, aligned at the end). Mean and InvStdDev: X.shape[:axis] + 1s. */
static il_status ln_geom(const il_kctx *c, int *axis) {
    const il_tensor *x = il_in(c, 0), *s = il_in(c, 1), *b = il_in(c, 2);
    il_status st = float_input(c, x);
    if (st) return st;
    if (!s) return il_kerr(c, IL_ERR_INVALID, "needs inputs X and Scale");
    if (x->rank < 0) return IL_OK;
    if ((st = il_norm_axis(c, il_attr_int(c->node, "axis", -1), x->rank, axis))) return st;
    int nr = x->rank - *axis;
    for (int k = 0; k < 2; k++) { /* by index: Scale and B may be one tensor (the same value twice) */
        const il_tensor *p = k ? b : s;
        if (!p) continue;
        if (!il_is_f32_f64(p->dtype))
            return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s for %s", il_dtype_name(p->dtype), k ? "B" : "Scale");
        if (p->rank < 0) continue;
        char sp[96], sx[96];
        int bad = p->rank > nr;
        for (int i = 0; !bad && i < p->rank; i++) {
            int64_t d = p->dims[p->rank - 1 - i], want = x->dims[x->rank - 1 - i];
            bad = d >= 0 && want >= 0 && d != 1 && d != want;
        }
        if (bad)
            return il_kerr(c, IL_ERR_SHAPE, "%s %s does not broadcast to the normalized shape of %s (axis %d)",
                           k ? "B" : "Scale", il_shape_str(p->rank, p->dims, sp, sizeof sp),
                           il_shape_str(x->rank, x->dims, sx, sizeof sx), *axis);
    }
    return IL_OK;
}

/* Y like X; Mean and InvStdDev (outputs 1, 2): X.shape[:axis] + 1s; every output unknown with X's rank. */
static void ln_outputs(il_kctx *c, const il_tensor *x, int axis) {
    if (x->rank < 0) {
        for (int i = 0; i < c->n_out; i++) il_set_out(c, i, x->dtype, -1, NULL);
        return;
    }
    il_same_as(c, 0, 0);
    int64_t dims[IL_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = i < axis ? x->dims[i] : 1;
    il_set_out(c, 1, x->dtype, x->rank, dims);
    il_set_out(c, 2, x->dtype, x->rank, dims);
}

static il_status ln_infer(il_kctx *c) {
    int axis = 0;
    il_status st = ln_geom(c, &axis);
    if (!st) ln_outputs(c, il_in(c, 0), axis);
    return st;
}

/* Flat offsets into Scale / B for each of the inner positions (0 along broadcast dims). */
static int64_t *ln_param_index(const il_tensor *x, int axis, const il_tensor *p) {
    int nr = x->rank - axis;
    int64_t inner = il_shape_numel(nr, x->dims + axis), str[IL_MAX_RANK], idx[IL_MAX_RANK] = {0};
    int64_t *off = malloc((size_t)(inner ? inner : 1) * sizeof *off);
    if (!off) return NULL;
    il_broadcast_strides(p, nr, x->dims + axis, str);
    for (int64_t j = 0; j < inner; j++) {
        int64_t o = 0, r = j;
        for (int d = nr - 1; d >= 0; d--) {
            idx[d] = r % x->dims[axis + d];
            r /= x->dims[axis + d];
            o += idx[d] * str[d];
        }
        off[j] = o;
    }
    return off;
}

/* One row of the fast kernel with Scale and B (NULL: none) of the row's length. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static void
ln_row(const float *restrict x, float *restrict y, int64_t n, float mu, float inv, const float *restrict s,
       const float *restrict b) {
    if (b) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = (x[j] - mu) * inv * s[j] + b[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = (x[j] - mu) * inv * s[j] + 0.0f;
    }
}

/* The statistics of a row of the fast kernel when Scale and B have the row's length and Mean and
 * InvStdDev are not asked for, in float (two passes summed in the vector lanes: the partial sums
 * of a row of hundreds keep far more bits than the float result needs), then ln_row. ViT-tiny's
 * 25 LayerNorms of rows of 192: 0.46 -> 0.35 ms at batch 1 (each node's fastest of 36 runs). */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static void
ln_row_summed(const float *restrict x, float *restrict y, int64_t n, float sum, float eps, const float *restrict s,
              const float *restrict b) {
    float mu = sum / (float)n, s2 = 0;
#pragma omp simd reduction(+ : s2)
    for (int64_t j = 0; j < n; j++) {
        float d = x[j] - mu;
        s2 += d * d;
    }
    ln_row(x, y, n, mu, 1.0f / sqrtf(s2 / (float)n + eps), s, b);
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static void
ln_row_f32(const float *restrict x, float *restrict y, int64_t n, float eps, const float *restrict s,
           const float *restrict b) {
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; j++) sum += x[j];
    ln_row_summed(x, y, n, sum, eps, s, b);
}

/* Y = (X - mean) * inv_std * Scale + B per row of inner elements; optional Mean, InvStdDev. */
static il_status ln_run(il_kctx *c, int fast) {
    const il_tensor *x = c->in[0], *s = c->in[1], *b = il_in(c, 2);
    il_tensor *y = c->out[0], *om = il_out(c, 1), *oi = il_out(c, 2);
    int axis = 0;
    il_status st = ln_geom(c, &axis);
    if (st) return st;
    double eps = il_attr_float(c->node, "epsilon", 1e-5f);
    int64_t outer = il_shape_numel(axis, x->dims), inner = il_shape_numel(x->rank - axis, x->dims + axis);
    /* Scale and B of the normalized shape itself (the usual [hidden]) are read as they are */
    fast = fast && x->dtype == IL_F32 && s->dtype == IL_F32 && (!b || b->dtype == IL_F32);
    int direct = fast && il_tensor_numel(s) == inner && (!b || il_tensor_numel(b) == inner);
    int64_t *so = direct ? NULL : ln_param_index(x, axis, s), *bo = b && !direct ? ln_param_index(x, axis, b) : NULL;
    if ((!direct && !so) || (b && !direct && !bo)) {
        free(so);
        free(bo);
        return il_kerr(c, IL_ERR_OOM, "out of memory");
    }
    if (fast) {
        const float *xd = x->data, *sd = s->data, *bd = b ? b->data : NULL;
        float *yd = y->data;
        if (direct && !om && !oi && inner > 0) {
            IL_PAR_FOR(c, r, outer) ln_row_f32(xd + r * inner, yd + r * inner, inner, (float)eps, sd, bd);
            free(so);
            free(bo);
            return IL_OK;
        }
        IL_PAR_FOR(c, r, outer) {
            double mean, var;
            stats_f32(xd + r * inner, inner, &mean, &var);
            float mu = (float)mean, inv = (float)(1.0 / sqrt(var + eps));
            const float *xr = xd + r * inner;
            float *yr = yd + r * inner;
            if (direct) ln_row(xr, yr, inner, mu, inv, sd, bd);
            else
                for (int64_t j = 0; j < inner; j++) yr[j] = (xr[j] - mu) * inv * sd[so[j]] + (bd ? bd[bo[j]] : 0.0f);
            if (om) il_stf(om, r, mean);
            if (oi) il_stf(oi, r, 1.0 / sqrt(var + eps));
        }
    } else {
        for (int64_t r = 0; r < outer; r++) {
            double mean, var;
            stats(x, r * inner, inner, &mean, &var);
            double inv = 1.0 / sqrt(var + eps);
            for (int64_t j = 0; j < inner; j++)
                il_stf(y, r * inner + j,
                       (il_ldf(x, r * inner + j) - mean) * inv * il_ldf(s, so[j]) + (b ? il_ldf(b, bo[j]) : 0));
            if (om) il_stf(om, r, mean);
            if (oi) il_stf(oi, r, inv);
        }
    }
    free(so);
    free(bo);
    return IL_OK;
}

static il_status ln_ref(il_kctx *c) { return ln_run(c, 0); }
static il_status ln_fast(il_kctx *c) { return ln_run(c, 1); }

/* ---------------------------------------------------------------- SkipLayerNormalization */

/* ai.inferlab SkipLayerNormalization(input, skip, gamma [, beta, bias]) -> Y [, mean, inv_std_var,
 * sum], ONNX Runtime's com.microsoft op: sum = input + skip [+ bias], Y its LayerNormalization
 * over the last axis times gamma plus beta. The residual Add of a transformer block and the
 * LayerNorm that reads it (pass fuse-skip-layernorm) in one pass over the row, which stays in
 * cache: the sum is written only where something else reads it (pre-LN blocks). skip has the
 * input's shape or its last dims; gamma, beta and bias the last dim's length. */
static il_status sln_geom(const il_kctx *c, int64_t *hidden) {
    const il_tensor *x = c->in[0], *sk = c->in[1];
    il_status st = float_input(c, x);
    if (!st) st = float_input(c, sk);
    if (st || x->rank < 0) return st;
    if (x->rank < 1) return il_kerr(c, IL_ERR_SHAPE, "input must have at least one dim");
    *hidden = x->dims[x->rank - 1];
    char a[96], b[96];
    int bad = sk->rank >= 0 && (sk->rank < 1 || sk->rank > x->rank);
    for (int i = 0; !bad && sk->rank >= 0 && i < sk->rank; i++) {
        int64_t d = sk->dims[sk->rank - 1 - i], want = x->dims[x->rank - 1 - i];
        bad = d >= 0 && want >= 0 && d != want;
    }
    if (bad)
        return il_kerr(c, IL_ERR_SHAPE, "skip %s must have the shape of input %s or of its last dims",
                       il_shape_str(sk->rank, sk->dims, a, sizeof a), il_shape_str(x->rank, x->dims, b, sizeof b));
    static const char *const what[] = {"gamma", "beta", "bias"};
    for (int i = 2; i < 5; i++) {
        const il_tensor *p = il_in(c, i);
        if (!p) continue;
        if ((st = float_input(c, p))) return st;
        if (p->rank >= 0 && *hidden >= 0 && (p->rank != 1 || (p->dims[0] >= 0 && p->dims[0] != *hidden)))
            return il_kerr(c, IL_ERR_SHAPE, "%s %s must be one value per element of the last dim (%lld)", what[i - 2],
                           il_shape_str(p->rank, p->dims, a, sizeof a), (long long)*hidden);
    }
    return IL_OK;
}

static il_status sln_infer(il_kctx *c) {
    const il_tensor *x = c->in[0];
    int64_t hidden = -1;
    il_status st = sln_geom(c, &hidden);
    if (st) return st;
    ln_outputs(c, x, x->rank - 1);
    if (x->rank >= 0) il_same_as(c, 3, 0); /* the sum */
    return IL_OK;
}

/* In double, element by element. */
static il_status sln_ref(il_kctx *c) {
    const il_tensor *x = c->in[0], *sk = c->in[1], *ga = c->in[2], *be = il_in(c, 3), *bi = il_in(c, 4);
    il_tensor *y = c->out[0], *om = il_out(c, 1), *oi = il_out(c, 2), *os = il_out(c, 3);
    int64_t h = 0;
    il_status st = sln_geom(c, &h);
    if (st) return st;
    int64_t rows = h ? il_tensor_numel(x) / h : 0, ns = il_tensor_numel(sk);
    double eps = il_attr_float(c->node, "epsilon", 1e-5f), *sum = malloc((size_t)(h ? h : 1) * sizeof *sum);
    if (!sum) return il_kerr(c, IL_ERR_OOM, "out of memory");
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < h; j++) {
            int64_t i = r * h + j;
            sum[j] = il_ldf(x, i) + il_ldf(sk, i % ns) + (bi ? il_ldf(bi, j) : 0);
            if (os) il_stf(os, i, sum[j]);
            mean += sum[j];
        }
        mean /= (double)h;
        for (int64_t j = 0; j < h; j++) var += (sum[j] - mean) * (sum[j] - mean);
        double inv = 1.0 / sqrt(var / (double)h + eps);
        for (int64_t j = 0; j < h; j++)
            il_stf(y, r * h + j, (sum[j] - mean) * inv * il_ldf(ga, j) + (be ? il_ldf(be, j) : 0));
        if (om) il_stf(om, r, mean);
        if (oi) il_stf(oi, r, inv);
    }
    free(sum);
    return IL_OK;
}

/* One row: the sum into t (the sum output, or a row on the stack) and its total in one pass,
 * the variance over t in cache and the row (ln_row_summed). Float sums in the vector lanes, as ln_row_f32. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static void
sln_row(const float *restrict x, const float *restrict sk, const float *restrict bi, float *restrict t,
        float *restrict y, int64_t n, float eps, const float *restrict g, const float *restrict b) {
    float sum = 0;
    if (bi) {
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < n; j++) {
            t[j] = x[j] + sk[j] + bi[j];
            sum += t[j];
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < n; j++) {
            t[j] = x[j] + sk[j];
            sum += t[j];
        }
    }
    ln_row_summed(t, y, n, sum, eps, g, b);
}

enum { SLN_ROW = 4096 }; /* the longest row summed on the stack (16 KiB) where the sum is not an output */

static il_status sln_fast(il_kctx *c) {
    const il_tensor *x = c->in[0], *sk = c->in[1], *be = il_in(c, 3), *bi = il_in(c, 4);
    il_tensor *y = c->out[0], *os = il_out(c, 3);
    int64_t h = 0;
    il_status st = sln_geom(c, &h);
    if (st) return st;
    int all_f32 = 1;
    for (int i = 0; i < c->n_in; i++) all_f32 &= !c->in[i] || c->in[i]->dtype == IL_F32;
    /* the training outputs (mean, inv_std_var) and rows longer than the stack's buffer: the reference */
    if (!all_f32 || il_out(c, 1) || il_out(c, 2) || h <= 0 || (!os && h > SLN_ROW)) return sln_ref(c);
    int64_t rows = il_tensor_numel(x) / h, ns = il_tensor_numel(sk);
    const float *xd = x->data, *sd = sk->data, *gd = c->in[2]->data, *bd = be ? be->data : NULL, *bid = bi ? bi->data : NULL;
    float *yd = y->data, *sumd = os ? os->data : NULL;
    float eps = il_attr_float(c->node, "epsilon", 1e-5f);
    IL_PAR_FOR(c, r, rows) {
        float row[SLN_ROW] __attribute__((aligned(64)));
        float *t = sumd ? sumd + r * h : row;
        sln_row(xd + r * h, sd + (r * h) % ns, bid, t, yd + r * h, h, eps, gd, bd);
    }
    return IL_OK;
}

const il_op il_ops_norm[] = {
    {"", "BatchNormalization", 1, bn_infer, bn_ref, bn_fast, 0},
    {"", "InstanceNormalization", 1, instnorm_infer, instnorm_ref, instnorm_fast, 0},
    {"", "LayerNormalization", 1, ln_infer, ln_ref, ln_fast, 0},
    {"", "GroupNormalization", 1, groupnorm_infer, groupnorm_ref, groupnorm_fast, 0},
    {"ai.inferlab", "SkipLayerNormalization", 1, sln_infer, sln_ref, sln_fast, 0},
    {0},
};
