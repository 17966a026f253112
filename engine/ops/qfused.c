/*
 * qfused.c - the integer ops that passes/fuse_qdq.c makes of QDQ patterns (ai.inferlab), and
 * ONNX Runtime's com.microsoft QLinearAdd / QLinearMul / QGemm / DynamicQuantizeMatMul of its quantized models.
 * Schemas and readable reference kernels; the fast kernels are engine/cpu/qgemm_*.c.
 *
 *   QConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp [, B])   QLinearConv + activation
 *   QMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp [, bias]) a[..., M, K] x b[K, N]
 *       (+ int32 bias[N]) + activation; b_scale, b_zp per tensor or per column
 *   QAdd / QLinearAdd(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)  (+ activation: QAdd)
 *   QLinearMul(the same)
 *   QGemm(A, a_scale, a_zp, B, b_scale, b_zp [, C, y_scale, y_zp])  com.microsoft (see below)
 *   DynamicQuantizeMatMul(A float, B, b_scale [, b_zp, bias])       com.microsoft (see below)
 *
 * `activation` is Relu or Clip (activation_params [min, max], as the float fused ops): in the
 * quantized domain a monotone activation is a clamp of the output, [q(min), q(max)] with
 * q(v) = sat(rint(v / y_scale) + y_zp), so it costs the kernels nothing. Everything rounds half
 * to even, in the order written in each reference kernel (the products' requantization in
 * double, the element-wise ops in float32); the fast kernels repeat that order, so they agree
 * bit for bit.
 */
#include "../cpu/qgemm.h"
#include "fused.h"

static int is_8bit(il_dtype t) { return t == IL_U8 || t == IL_I8; }

il_status il_qact_range(const il_kctx *c, double y_scale, int32_t y_zp, il_dtype ydt, int32_t *lo, int32_t *hi) {
    il_act act;
    il_status st = il_act_parse(c, &act);
    if (st) return st;
    double tlo = ydt == IL_U8 ? 0 : ydt == IL_I8 ? -128 : -2147483648.0;
    double thi = ydt == IL_U8 ? 255 : ydt == IL_I8 ? 127 : 2147483647.0;
    double l = tlo, h = thi;
    if (act.kind == IL_ACT_RELU) l = y_zp;
    else if (act.kind == IL_ACT_CLIP) {
        l = rint(act.a / y_scale) + y_zp;
        h = rint(act.b / y_scale) + y_zp;
    } else if (act.kind != IL_ACT_NONE) {
        return il_kerr(c, IL_ERR_UNSUPPORTED, "activation %s: an integer op folds only Relu and Clip",
                       il_attr_string(c->node, "activation", "?"));
    }
    /* NaN bounds (a Clip without a min) read as the type's range */
    l = l >= tlo ? l : tlo;
    h = h <= thi ? h : thi;
    *lo = (int32_t)(l <= thi ? l : thi);
    *hi = (int32_t)(h >= *lo ? h : *lo);
    return IL_OK;
}

/* ---------------------------------------------------------------- QConv */

static il_status qconv_infer(il_kctx *c) {
    int32_t lo, hi;
    il_status st = il_op_find("", "QLinearConv")->infer(c);
    return st ? st : il_qact_range(c, 1, 0, IL_U8, &lo, &hi);
}

/* QLinearConv's reference kernel, then the activation as a clamp. */
static il_status qconv_ref(il_kctx *c) {
    il_status st = il_op_find("", "QLinearConv")->ref(c);
    int32_t lo, hi;
    il_tensor *y = c->out[0];
    if (!st) st = il_qact_range(c, il_tensor_get(c->in[6], 0), (int32_t)il_int_at(c->in[7], 0), y->dtype, &lo, &hi);
    if (st) return st;
    for (int64_t i = 0, n = il_tensor_numel(y); i < n; i++) {
        int64_t v = il_int_at(y, i);
        il_tensor_set(y, i, (double)(v < lo ? lo : v > hi ? hi : v));
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- QMatMul */

/* A per-tensor (one element) or per-column (n elements) parameter: its count, or -1. */
static int64_t per_col(const il_tensor *t, int64_t n) {
    if (!t || !il_shape_known(t)) return 1;
    int64_t k = il_tensor_numel(t);
    return k == 1 || k == n ? k : -1;
}

static il_status qmatmul_infer(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[3], *bias = il_in(c, 8);
    if (!is_8bit(a->dtype) || !is_8bit(b->dtype) || !is_8bit(c->in[7]->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtypes %s x %s -> %s (8-bit integers expected)",
                       il_dtype_name(a->dtype), il_dtype_name(b->dtype), il_dtype_name(c->in[7]->dtype));
    if (bias && bias->dtype != IL_I32)
        return il_kerr(c, IL_ERR_UNSUPPORTED, "bias is %s, int32 expected", il_dtype_name(bias->dtype));
    int32_t lo, hi;
    il_status st = il_qact_range(c, 1, 0, IL_U8, &lo, &hi);
    if (st) return st;
    if (b->rank >= 0 && b->rank != 2) return il_kerr(c, IL_ERR_SHAPE, "b has rank %d, 2 expected", b->rank);
    if (a->rank < 0 || b->rank < 0) {
        il_set_out(c, 0, c->in[7]->dtype, -1, NULL);
        return IL_OK;
    }
    if (a->rank < 2) return il_kerr(c, IL_ERR_SHAPE, "a has rank %d, 2 or more expected", a->rank);
    int64_t k = a->dims[a->rank - 1], n = b->dims[1];
    if (k >= 0 && b->dims[0] >= 0 && k != b->dims[0])
        return il_kerr(c, IL_ERR_SHAPE, "a has %lld columns, b %lld rows", (long long)k, (long long)b->dims[0]);
    static const int cols[] = {4, 5, 8};
    for (int i = 0; i < 3; i++)
        if (n >= 0 && per_col(il_in(c, cols[i]), n) < 0)
            return il_kerr(c, IL_ERR_SHAPE, "input %d has %lld elements: 1 or one per column (%lld) expected", cols[i],
                           (long long)il_tensor_numel(c->in[cols[i]]), (long long)n);
    static const int scalars[] = {1, 2, 6, 7}; /* a_scale, a_zp, y_scale, y_zp: per tensor */
    for (int j = 0, i; j < 4 && (i = scalars[j]); j++)
        if (il_shape_known(c->in[i]) && il_tensor_numel(c->in[i]) != 1)
            return il_kerr(c, IL_ERR_SHAPE, "input %d has %lld elements, 1 expected", i,
                           (long long)il_tensor_numel(c->in[i]));
    int64_t dims[IL_MAX_RANK];
    memcpy(dims, a->dims, sizeof dims);
    dims[a->rank - 1] = n;
    il_set_out(c, 0, c->in[7]->dtype, a->rank, dims);
    return IL_OK;
}

static double at_or_first(const il_tensor *t, int64_t i) {
    return t ? il_tensor_get(t, il_tensor_numel(t) == 1 ? 0 : i) : 0;
}

/* y[r][j] = clamp(rint((sum_k (a[r][k] - za) * (b[k][j] - zb[j]) + bias[j]) * (sa * sb[j] / sy)) + zy) */
static il_status qmatmul_ref(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[3], *bias = il_in(c, 8);
    il_tensor *y = c->out[0];
    int64_t k = b->dims[0], n = b->dims[1], rows = k ? il_tensor_numel(a) / k : il_tensor_numel(y) / (n ? n : 1);
    double sa = il_tensor_get(c->in[1], 0), sy = il_tensor_get(c->in[6], 0);
    int64_t za = il_int_at(c->in[2], 0), zy = il_int_at(c->in[7], 0);
    int32_t lo, hi;
    il_status st = il_qact_range(c, sy, (int32_t)zy, y->dtype, &lo, &hi);
    if (st) return st;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) {
            int64_t zb = (int64_t)at_or_first(c->in[5], j), acc = bias ? il_int_at(bias, j) : 0;
            for (int64_t kk = 0; kk < k; kk++) acc += (il_int_at(a, r * k + kk) - za) * (il_int_at(b, kk * n + j) - zb);
            double v = rint((double)acc * (sa * at_or_first(c->in[4], j) / sy)) + (double)zy;
            il_tensor_set(y, r * n + j, v < lo ? lo : v > hi ? hi : v);
        }
    return IL_OK;
}

/* ---------------------------------------------------------------- QGemm (com.microsoft) */

/* QGemm(A, a_scale, a_zp, B, b_scale, b_zp [, C, y_scale, y_zp]), ONNX Runtime's QOperator form
 * of Gemm: A [M, K] (transA: [K, M]), B [K, N] (transB: [N, K]), C int32 unidirectionally
 * broadcast to [M, N] and added to the integer sums; b_scale and b_zp per tensor or per column.
 * With y_zero_point the output is 8-bit (its type), else float32 -- ORT's kernel decides by the
 * zero point, and scales a float output by y_scale too when one is given. */
void il_qgemm_dims(const il_kctx *c, int64_t *m, int64_t *k, int64_t *n) {
    const il_tensor *a = c->in[0], *b = c->in[3];
    int ta = il_attr_int(c->node, "transA", 0) != 0, tb = il_attr_int(c->node, "transB", 0) != 0;
    *m = a->dims[ta ? 1 : 0], *k = a->dims[ta ? 0 : 1], *n = b->dims[tb ? 0 : 1];
}

double il_qgemm_scale(const il_kctx *c, int64_t j) {
    const il_tensor *bs = c->in[4], *ys = il_in(c, 7);
    double v = (double)il_attr_float(c->node, "alpha", 1.0f) * il_tensor_get(c->in[1], 0) *
               il_tensor_get(bs, il_tensor_numel(bs) == 1 ? 0 : j);
    return ys ? v / il_tensor_get(ys, 0) : v;
}

static il_status qgemm_infer(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[3], *bias = il_in(c, 6), *zy = il_in(c, 8);
    if (!is_8bit(a->dtype) || !is_8bit(b->dtype) || (zy && !is_8bit(zy->dtype)))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtypes %s x %s -> %s (8-bit integers expected)",
                       il_dtype_name(a->dtype), il_dtype_name(b->dtype), zy ? il_dtype_name(zy->dtype) : "float");
    if (bias && bias->dtype != IL_I32)
        return il_kerr(c, IL_ERR_UNSUPPORTED, "C is %s, int32 expected", il_dtype_name(bias->dtype));
    if (zy && !il_in(c, 7)) return il_kerr(c, IL_ERR_INVALID, "y_zero_point without y_scale");
    il_dtype ydt = zy ? zy->dtype : IL_F32;
    if ((a->rank >= 0 && a->rank != 2) || (b->rank >= 0 && b->rank != 2))
        return il_kerr(c, IL_ERR_SHAPE, "A and B have ranks %d and %d, 2 expected", a->rank, b->rank);
    static const int scalars[] = {1, 2, 7, 8}; /* a_scale, a_zp, y_scale, y_zp: per tensor */
    for (int j = 0; j < 4; j++) {
        const il_tensor *t = il_in(c, scalars[j]);
        if (t && il_shape_known(t) && il_tensor_numel(t) != 1)
            return il_kerr(c, IL_ERR_SHAPE, "input %d has %lld elements, 1 expected", scalars[j],
                           (long long)il_tensor_numel(t));
    }
    if (a->rank < 0 || b->rank < 0) {
        il_set_out(c, 0, ydt, -1, NULL);
        return IL_OK;
    }
    int64_t m, k, n, kb = b->dims[il_attr_int(c->node, "transB", 0) ? 1 : 0];
    il_qgemm_dims(c, &m, &k, &n);
    if (k >= 0 && kb >= 0 && k != kb)
        return il_kerr(c, IL_ERR_SHAPE, "A gives K = %lld, B %lld", (long long)k, (long long)kb);
    for (int i = 4; i < 6 && n >= 0; i++)
        if (per_col(c->in[i], n) < 0)
            return il_kerr(c, IL_ERR_SHAPE, "input %d has %lld elements: 1 or one per column (%lld) expected", i,
                           (long long)il_tensor_numel(c->in[i]), (long long)n);
    if (bias && bias->rank >= 0) { /* unidirectional: each of C's dims 1 or Y's */
        const int64_t yd[2] = {m, n};
        int bad = bias->rank > 2;
        for (int d = 0; d < bias->rank && !bad; d++) {
            int64_t cd = bias->dims[d], want = yd[2 - bias->rank + d];
            bad = cd >= 0 && want >= 0 && cd != 1 && cd != want;
        }
        if (bad) return il_kerr(c, IL_ERR_SHAPE, "C (rank %d) does not broadcast to [M, N]", bias->rank);
    }
    il_set_out(c, 0, ydt, 2, (int64_t[]){m, n});
    return IL_OK;
}

/* y[i][j] = sat(rint((C[i][j] + sum_k (A[i][k] - za) * (B[k][j] - zb[j])) * scale[j]) + zy), or
 * without y_zp the float (C + sum) * scale[j]; scale[j] = il_qgemm_scale (double). */
static il_status qgemm_ref(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[3], *bias = il_in(c, 6), *zy = il_in(c, 8);
    il_tensor *y = c->out[0];
    int ta = il_attr_int(c->node, "transA", 0) != 0, tb = il_attr_int(c->node, "transB", 0) != 0;
    int64_t m, k, n, za = il_int_at(c->in[2], 0), yz = zy ? il_int_at(zy, 0) : 0, cs[2] = {0, 0};
    il_qgemm_dims(c, &m, &k, &n);
    if (bias) il_broadcast_strides(bias, 2, (int64_t[]){m, n}, cs);
    double lo = y->dtype == IL_U8 ? 0 : -128, hi = y->dtype == IL_U8 ? 255 : 127;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t zb = (int64_t)at_or_first(c->in[5], j), acc = bias ? il_int_at(bias, i * cs[0] + j * cs[1]) : 0;
            for (int64_t kk = 0; kk < k; kk++)
                acc += (il_int_at(a, ta ? kk * m + i : i * k + kk) - za) *
                       (il_int_at(b, tb ? j * k + kk : kk * n + j) - zb);
            double v = (double)acc * il_qgemm_scale(c, j);
            if (zy) {
                v = rint(v) + (double)yz;
                v = v < lo ? lo : v > hi ? hi : v;
            }
            il_tensor_set(y, i * n + j, v);
        }
    return IL_OK;
}

/* ---------------------------------------------------------------- DynamicQuantizeMatMul */

/* com.microsoft DynamicQuantizeMatMul(A, B, b_scale [, b_zero_point, bias]): A float [..., K]
 * quantized as DynamicQuantizeLinear does (uint8, one scale and zero point from its range),
 * times B [K, N] (8-bit), the int32 sums turned to float and scaled by a_scale * b_scale[j]
 * (float32), + bias[j]: the float ops of ONNX Runtime's quantize_dynamic graph, in their order,
 * so that the fused op equals the graph it replaces (passes/fuse_dynq.c) bit for bit. */
static il_status dqmm_infer(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[1], *bz = il_in(c, 3), *bias = il_in(c, 4);
    if (a->dtype != IL_F32 || !is_8bit(b->dtype) || c->in[2]->dtype != IL_F32 || (bz && bz->dtype != b->dtype) ||
        (bias && bias->dtype != IL_F32))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtypes: A %s, B %s (float A, 8-bit B, float scale and bias)",
                       il_dtype_name(a->dtype), il_dtype_name(b->dtype));
    if (b->rank >= 0 && b->rank != 2) return il_kerr(c, IL_ERR_SHAPE, "B has rank %d, 2 expected", b->rank);
    if (a->rank >= 0 && a->rank < 2) return il_kerr(c, IL_ERR_SHAPE, "A has rank %d, 2 or more expected", a->rank);
    if (a->rank < 0 || b->rank < 0) {
        il_set_out(c, 0, IL_F32, -1, NULL);
        return IL_OK;
    }
    int64_t k = a->dims[a->rank - 1], n = b->dims[1];
    if (k >= 0 && b->dims[0] >= 0 && k != b->dims[0])
        return il_kerr(c, IL_ERR_SHAPE, "A has %lld columns, B %lld rows", (long long)k, (long long)b->dims[0]);
    for (int i = 2; i < 5 && n >= 0; i++)
        if (per_col(il_in(c, i), n) < 0 || (i == 4 && bias && il_shape_known(bias) && il_tensor_numel(bias) != n))
            return il_kerr(c, IL_ERR_SHAPE, "input %d has %lld elements: %sone per column (%lld) expected", i,
                           (long long)il_tensor_numel(c->in[i]), i == 4 ? "" : "1 or ", (long long)n);
    int64_t dims[IL_MAX_RANK];
    memcpy(dims, a->dims, sizeof dims);
    dims[a->rank - 1] = n;
    il_set_out(c, 0, IL_F32, a->rank, dims);
    return IL_OK;
}

static il_status dqmm_ref(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[1], *bias = il_in(c, 4);
    int64_t k = b->dims[0], n = b->dims[1], rows = k ? il_tensor_numel(a) / k : il_tensor_numel(c->out[0]) / (n ? n : 1);
    uint8_t *qa = malloc((size_t)il_tensor_numel(a) + 1);
    if (!qa) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const float *x = a->data;
    float mn = 0, mx = 0, as;
    uint8_t az;
    for (int64_t i = 0; i < il_tensor_numel(a); i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    il_dynq_scale(mn, mx, &as, &az);
    il_dynq_apply_ref(x, qa, il_tensor_numel(a), as, az);
    float *y = c->out[0]->data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) {
            int64_t zb = (int64_t)at_or_first(il_in(c, 3), j), acc = 0;
            for (int64_t kk = 0; kk < k; kk++) acc += ((int64_t)qa[r * k + kk] - az) * (il_int_at(b, kk * n + j) - zb);
            float v = (float)acc * (as * (float)at_or_first(c->in[2], j));
            y[r * n + j] = bias ? v + ((const float *)bias->data)[j] : v;
        }
    free(qa);
    return IL_OK;
}

/* ---------------------------------------------------------------- QAdd, QLinearAdd, QLinearMul */

static il_status qbin_infer(il_kctx *c) {
    const il_tensor *a = c->in[0], *b = c->in[3], *zy = il_in(c, 7);
    if (!is_8bit(a->dtype) || !is_8bit(b->dtype) || (zy && zy->dtype != a->dtype))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtypes %s, %s -> %s (8-bit integers, output as a)",
                       il_dtype_name(a->dtype), il_dtype_name(b->dtype), zy ? il_dtype_name(zy->dtype) : "-");
    int32_t lo, hi;
    il_status st = il_qact_range(c, 1, 0, IL_U8, &lo, &hi);
    if (st) return st;
    static const int scalars[] = {1, 2, 4, 5, 6, 7};
    for (int i = 0; i < 6; i++) {
        const il_tensor *t = il_in(c, scalars[i]);
        if (t && il_shape_known(t) && il_tensor_numel(t) != 1)
            return il_kerr(c, IL_ERR_SHAPE, "input %d has %lld elements; scales and zero points are per tensor here",
                           scalars[i], (long long)il_tensor_numel(t));
    }
    if (a->rank < 0 || b->rank < 0) {
        il_set_out(c, 0, a->dtype, -1, NULL);
        return IL_OK;
    }
    int r;
    int64_t dims[IL_MAX_RANK];
    if ((st = il_broadcast_shape(c, a->rank, a->dims, b->rank, b->dims, &r, dims))) return st;
    il_set_out(c, 0, a->dtype, r, dims);
    return IL_OK;
}

/* What the fast kernel (qgemm_eltwise.c) needs, in the reference's order. */
il_status il_qbin_params(const il_kctx *c, int mul, il_qbin *p) {
    const il_tensor *y = c->out[0];
    double sa = il_tensor_get(c->in[1], 0), sb = il_tensor_get(c->in[4], 0), sy = il_tensor_get(c->in[6], 0);
    p->mul = mul;
    p->za = il_in(c, 2) ? (int32_t)il_int_at(c->in[2], 0) : 0;
    p->zb = il_in(c, 5) ? (int32_t)il_int_at(c->in[5], 0) : 0;
    p->zy = il_in(c, 7) ? (int32_t)il_int_at(c->in[7], 0) : 0;
    p->ka = (float)(mul ? sa * sb / sy : sa / sy);
    p->kb = (float)(sb / sy);
    return il_qact_range(c, sy, p->zy, y->dtype, &p->lo, &p->hi);
}

/* y = clamp(rint((a - za) * (sa / sy) + (b - zb) * (sb / sy)) + zy)   (Add)
 * y = clamp(rint((a - za) * (b - zb) * (sa * sb / sy)) + zy)          (Mul), broadcasting,
 * in float32 (the factors rounded to float once). */
static il_status qbin_ref_common(il_kctx *c, int mul) {
    const il_tensor *a = c->in[0], *b = c->in[3];
    il_tensor *y = c->out[0];
    il_qbin p;
    il_status st = il_qbin_params(c, mul, &p);
    if (st) return st;
    int64_t sa[IL_MAX_RANK], sb[IL_MAX_RANK], idx[IL_MAX_RANK] = {0};
    il_broadcast_strides(a, y->rank, y->dims, sa);
    il_broadcast_strides(b, y->rank, y->dims, sb);
    for (int64_t i = 0, n = il_tensor_numel(y); i < n; i++) {
        int64_t ia = 0, ib = 0;
        for (int d = 0; d < y->rank; d++) ia += idx[d] * sa[d], ib += idx[d] * sb[d];
        il_next_index(y->rank, y->dims, idx);
        float da = (float)(il_int_at(a, ia) - p.za), db = (float)(il_int_at(b, ib) - p.zb);
        float prod = da * db, sum = da * p.ka; /* one rounding each: no fused multiply-add */
        double v = (double)rintf(mul ? prod * p.ka : sum + db * p.kb) + p.zy;
        il_tensor_set(y, i, v < p.lo ? p.lo : v > p.hi ? p.hi : v);
    }
    return IL_OK;
}

static il_status qadd_ref(il_kctx *c) { return qbin_ref_common(c, 0); }
static il_status qmul_ref(il_kctx *c) { return qbin_ref_common(c, 1); }

const il_op il_ops_qfused[] = {
    {"ai.inferlab", "QConv", 1, qconv_infer, qconv_ref, NULL, 0},
    {"ai.inferlab", "QMatMul", 1, qmatmul_infer, qmatmul_ref, NULL, 0},
    {"ai.inferlab", "QAdd", 1, qbin_infer, qadd_ref, NULL, 0},
    {"com.microsoft", "QLinearAdd", 1, qbin_infer, qadd_ref, NULL, 0},
    {"com.microsoft", "QLinearMul", 1, qbin_infer, qmul_ref, NULL, 0},
    {"com.microsoft", "QGemm", 1, qgemm_infer, qgemm_ref, NULL, 0},
    {"com.microsoft", "DynamicQuantizeMatMul", 1, dqmm_infer, dqmm_ref, NULL, 0},
    {0},
};
