/*
 * quant.c - QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear: the linear
 * quantization ops that carry INT8 in the graph IR (docs/quantize.md). There is no other
 * representation: a quantized model is a graph with these nodes and their scale and zero-point
 * initializers, so export is lossless and every ONNX tool reads it.
 *
 *   Q:  y = saturate(round_half_even(x / scale) + zero_point)    to y's integer type
 *   DQ: y = (x - zero_point) * scale
 *
 * Scale and zero point are per tensor (one element), per axis (1-D, one per slice along
 * `axis`, opset 13) or per block (opset 21: same rank as x, dims[axis] = ceil(D / block_size)).
 * The division and the rounding are done in float32, as ONNX's reference and ONNX Runtime do,
 * so a value exactly halfway between two steps rounds to the even one in all three.
 */
#include "../cpu/qgemm.h"

#include <stdint.h>

/* The integer types a quantized tensor may have here, with their saturation bounds. */
static int qrange(il_dtype t, double *lo, double *hi) {
    switch (t) {
    case IL_U8: *lo = 0, *hi = 255; return 1;
    case IL_I8: *lo = -128, *hi = 127; return 1;
    case IL_U16: *lo = 0, *hi = 65535; return 1;
    case IL_I16: *lo = -32768, *hi = 32767; return 1;
    default: return 0;
    }
}

/* Where element i of x finds its scale and zero point. */
typedef struct {
    int mode;        /* 0 per tensor, 1 per axis, 2 per block */
    int64_t d;       /* x's extent along the axis */
    int64_t inner;   /* elements after the axis */
    int64_t sd;      /* the scale's extent along the axis (per block: ceil(d / block)) */
    int64_t block;
} qparam_map;

static int64_t qparam_index(const qparam_map *m, int64_t i) {
    if (m->mode == 0) return 0;
    int64_t c = (i / m->inner) % m->d;
    if (m->mode == 1) return c;
    int64_t outer = i / (m->inner * m->d), r = i % m->inner;
    return (outer * m->sd + c / m->block) * m->inner + r;
}

/* Check scale (input 1) and zero point (input 2) against x (input 0) and fill the map. At plan
 * time shapes may be unknown: then nothing is checked. */
static il_status qparams(il_kctx *c, qparam_map *m) {
    const il_tensor *x = c->in[0], *s = c->in[1], *zp = il_in(c, 2);
    memset(m, 0, sizeof *m);
    if (!il_shape_known(x) || !il_shape_known(s)) return IL_OK;
    int64_t block = c->opset >= 21 ? il_attr_int(c->node, "block_size", 0) : 0;
    if (block < 0) return il_kerr(c, IL_ERR_INVALID, "block_size %lld is negative", (long long)block);
    /* ONNX asks for equal shapes; ONNX Runtime's quantizer writes a [1] scale beside a scalar
     * zero point (and its runtime takes it): one element each is per tensor either way */
    if (zp && il_shape_known(zp) && (zp->rank != s->rank || memcmp(zp->dims, s->dims, (size_t)s->rank * sizeof(int64_t))) &&
        !(zp->rank <= 1 && s->rank <= 1 && il_tensor_numel(zp) == 1 && il_tensor_numel(s) == 1))
        return il_kerr(c, IL_ERR_SHAPE, "the zero point's shape differs from the scale's");
    int64_t ns = il_tensor_numel(s);
    if (block == 0 && s->rank <= 1 && ns == 1) return IL_OK; /* per tensor */
    if (c->opset < 13)
        return il_kerr(c, IL_ERR_SHAPE, "opset %lld takes a scalar scale only (per-axis needs opset 13)",
                       (long long)c->opset);
    int axis;
    il_status st = il_norm_axis(c, il_attr_int(c->node, "axis", 1), x->rank, &axis);
    if (st) return st;
    m->d = x->dims[axis];
    m->inner = il_dims_prod(x->dims, axis + 1, x->rank);
    if (block == 0) {
        if (s->rank != 1 || ns != m->d)
            return il_kerr(c, IL_ERR_SHAPE, "a per-axis scale has one element per slice along axis %d (%lld), got %lld",
                           axis, (long long)m->d, (long long)ns);
        m->mode = 1;
        return IL_OK;
    }
    m->block = block;
    m->sd = (m->d + block - 1) / block;
    if (s->rank != x->rank) return il_kerr(c, IL_ERR_SHAPE, "a blocked scale has x's rank %d, got %d", x->rank, s->rank);
    for (int k = 0; k < x->rank; k++)
        if (s->dims[k] != (k == axis ? m->sd : x->dims[k]))
            return il_kerr(c, IL_ERR_SHAPE, "a blocked scale along axis %d with block %lld has dim %d = %lld, got %lld",
                           axis, (long long)block, k, (long long)(k == axis ? m->sd : x->dims[k]), (long long)s->dims[k]);
    m->mode = 2;
    if (m->inner == 0 || m->d == 0) m->mode = 0; /* nothing to index */
    return IL_OK;
}

/* ---------------------------------------------------------------- QuantizeLinear */

static il_status q_out_dtype(il_kctx *c, il_dtype *out) {
    const il_tensor *zp = il_in(c, 2);
    int64_t odt = c->opset >= 21 ? il_attr_int(c->node, "output_dtype", 0) : 0;
    double lo, hi;
    *out = zp ? zp->dtype : odt ? (il_dtype)odt : IL_U8;
    if (zp && odt && odt != (int64_t)zp->dtype)
        return il_kerr(c, IL_ERR_TYPE, "output_dtype %lld differs from the zero point's %s", (long long)odt,
                       il_dtype_name(zp->dtype));
    if (!qrange(*out, &lo, &hi))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s (uint8, int8, uint16, int16 are)",
                       il_dtype_name(*out));
    return IL_OK;
}

static il_status q_infer(il_kctx *c) {
    const il_tensor *x = c->in[0], *s = c->in[1];
    il_dtype dt;
    qparam_map m;
    il_status st = q_out_dtype(c, &dt);
    if (st) return st;
    if (x->dtype != IL_F32 && x->dtype != IL_F64 && x->dtype != IL_I32)
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s for x", il_dtype_name(x->dtype));
    if (!il_dtype_is_float(s->dtype)) return il_kerr(c, IL_ERR_TYPE, "the scale is %s, not a float", il_dtype_name(s->dtype));
    if ((st = qparams(c, &m))) return st;
    il_set_out(c, 0, dt, x->rank, x->dims);
    return IL_OK;
}

/* round(x / s) half to even, plus zp, saturated to [lo, hi]; NaN counts as 0. */
static double quantize_one(float x, float s, double zp, double lo, double hi) {
    float q = nearbyintf(x / s); /* float32 division and rounding, as ONNX's reference does */
    double v = isnan(q) ? zp : (double)q + zp;
    return v < lo ? lo : v > hi ? hi : v;
}

static il_status q_ref(il_kctx *c) {
    const il_tensor *x = c->in[0], *s = c->in[1], *zp = il_in(c, 2);
    il_tensor *y = c->out[0];
    qparam_map m;
    double lo = 0, hi = 255;
    il_status st = qparams(c, &m);
    if (st) return st;
    qrange(y->dtype, &lo, &hi);
    int64_t n = il_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = qparam_index(&m, i);
        il_tensor_set(y, i, quantize_one((float)il_tensor_get(x, i), (float)il_tensor_get(s, k),
                                         zp ? (double)il_int_at(zp, k) : 0, lo, hi));
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- DequantizeLinear */

static il_status dq_infer(il_kctx *c) {
    const il_tensor *x = c->in[0], *s = c->in[1], *zp = il_in(c, 2);
    double lo, hi;
    qparam_map m;
    if (!qrange(x->dtype, &lo, &hi) && x->dtype != IL_I32)
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s for x", il_dtype_name(x->dtype));
    if (zp && zp->dtype != x->dtype)
        return il_kerr(c, IL_ERR_TYPE, "the zero point is %s, x is %s", il_dtype_name(zp->dtype), il_dtype_name(x->dtype));
    if (!il_dtype_is_float(s->dtype)) return il_kerr(c, IL_ERR_TYPE, "the scale is %s, not a float", il_dtype_name(s->dtype));
    il_status st = qparams(c, &m);
    if (st) return st;
    il_set_out(c, 0, s->dtype, x->rank, x->dims);
    return IL_OK;
}

static il_status dq_ref(il_kctx *c) {
    const il_tensor *x = c->in[0], *s = c->in[1], *zp = il_in(c, 2);
    il_tensor *y = c->out[0];
    qparam_map m;
    il_status st = qparams(c, &m);
    if (st) return st;
    int64_t n = il_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = qparam_index(&m, i);
        int64_t q = il_int_at(x, i) - (zp ? il_int_at(zp, k) : 0);
        il_tensor_set(y, i, (float)q * (float)il_tensor_get(s, k));
    }
    return IL_OK;
}

/* The common case without il_tensor_get per element, for both directions: float32 values and
 * scale, 8-bit integers, per tensor or per axis; the references' arithmetic. A run is a slice of
 * elements sharing one scale and zero point. */
static il_status qdq_fast(il_kctx *c, int dequant) {
    const il_tensor *s = c->in[1], *zp = il_in(c, 2);
    il_tensor *q = dequant ? c->in[0] : c->out[0], *f = dequant ? c->out[0] : c->in[0]; /* integer side, float side */
    qparam_map m;
    il_status st = qparams(c, &m);
    if (st) return st;
    if (f->dtype != IL_F32 || s->dtype != IL_F32 || (q->dtype != IL_U8 && q->dtype != IL_I8) || m.mode == 2)
        return dequant ? dq_ref(c) : q_ref(c);
    int64_t n = il_tensor_numel(f);
    if (n == 0) return IL_OK;
    int64_t runs = m.mode ? n / m.inner : 1, len = m.mode ? m.inner : n;
    int u8 = q->dtype == IL_U8;
    double lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
    IL_PAR_FOR(c, r, runs) {
        int64_t k = m.mode ? r % m.d : 0;
        float sc = ((const float *)s->data)[k];
        int32_t z = zp ? (int32_t)il_int_at(zp, k) : 0;
        float *fr = (float *)f->data + r * len;
        uint8_t *ur = (uint8_t *)q->data + r * len;
        int8_t *ir = (int8_t *)q->data + r * len;
        for (int64_t i = 0; i < len; i++) {
            if (dequant) fr[i] = (float)((u8 ? (int32_t)ur[i] : (int32_t)ir[i]) - z) * sc;
            else if (u8) ur[i] = (uint8_t)quantize_one(fr[i], sc, z, lo, hi);
            else ir[i] = (int8_t)quantize_one(fr[i], sc, z, lo, hi);
        }
    }
    return IL_OK;
}

static il_status q_fast(il_kctx *c) { return qdq_fast(c, 0); }
static il_status dq_fast(il_kctx *c) { return qdq_fast(c, 1); }

/* ---------------------------------------------------------------- DynamicQuantizeLinear */

/* uint8 with scale and zero point from x's own range, widened to hold 0:
 *   scale = (max(x_max, 0) - min(x_min, 0)) / 255,  zp = saturate(round(-min(x_min, 0) / scale)).
 * An all-zero (or empty) x has no range: scale 0 is kept, as ONNX Runtime does, with zp 0
 * and y all 0, instead of dividing by it. */
static il_status dynq_infer(il_kctx *c) {
    const il_tensor *x = c->in[0];
    if (x->dtype != IL_F32) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s for x", il_dtype_name(x->dtype));
    il_set_out(c, 0, IL_U8, x->rank, x->dims);
    il_set_out(c, 1, IL_F32, 0, NULL);
    il_set_out(c, 2, IL_U8, 0, NULL);
    return IL_OK;
}

void il_dynq_scale(float mn, float mx, float *scale, uint8_t *zp) {
    *scale = (mx - mn) / 255.0f;
    *zp = 0;
    if (*scale > 0) {
        float z = nearbyintf(0.0f - mn / *scale);
        *zp = (uint8_t)(z < 0 ? 0 : z > 255 ? 255 : z);
    }
}

void il_dynq_apply_ref(const float *x, uint8_t *y, int64_t n, float scale, uint8_t zp) {
    for (int64_t i = 0; i < n; i++) y[i] = scale > 0 ? (uint8_t)quantize_one(x[i], scale, zp, 0, 255) : 0;
}

static il_status dynq_ref(il_kctx *c) {
    const float *x = c->in[0]->data;
    int64_t n = il_tensor_numel(c->in[0]);
    float mn = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    float scale;
    uint8_t zp;
    il_dynq_scale(mn, mx, &scale, &zp);
    il_dynq_apply_ref(x, c->out[0]->data, n, scale, zp);
    *(float *)c->out[1]->data = scale;
    *(uint8_t *)c->out[2]->data = zp;
    return IL_OK;
}

/* The same with the range and the quantization 16 lanes a vector (engine/cpu/quant_vec.c). */
static il_status dynq_fast(il_kctx *c) {
    const float *x = c->in[0]->data;
    int64_t n = il_tensor_numel(c->in[0]);
    float mn, mx, scale;
    uint8_t zp;
    il_dynq_minmax(x, n, &mn, &mx);
    il_dynq_scale(mn, mx, &scale, &zp);
    il_dynq_apply(x, c->out[0]->data, n, scale, zp);
    *(float *)c->out[1]->data = scale;
    *(uint8_t *)c->out[2]->data = zp;
    return IL_OK;
}

const il_op il_ops_quant[] = {
    {"", "QuantizeLinear", 10, q_infer, q_ref, q_fast, 0},
    {"", "DequantizeLinear", 10, dq_infer, dq_ref, dq_fast, 0},
    {"", "DynamicQuantizeLinear", 11, dynq_infer, dynq_ref, dynq_fast, 0},
    {0},
};
