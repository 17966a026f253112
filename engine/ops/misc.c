/*
 * misc.c - ops that make or convert values rather than move them: Cast, CastLike, Constant,
 * ConstantOfShape, Range, OneHot and EyeLike.
 *
 * Cast handles every pair of dtypes the engine stores, float16 and bfloat16 included, through
 * one load/store pair: an element is read into a double, an int64 or a uint64 (whichever
 * holds it exactly) and written from there. Float to integer truncates toward zero like C;
 * NaN and values past int64 saturate rather than invoke undefined behaviour, and narrower
 * integer types then wrap as numpy's astype does. Strings are not stored: IL_ERR_UNSUPPORTED.
 *
 * To bfloat16, Cast truncates the float32 value (drops its low 16 bits) where the executor's
 * own conversions round to nearest: the ONNX backend tests of every opset expect truncation
 * (test_cast_FLOAT_to_BFLOAT16), so that is what the op means in practice.
 */
#include "kernel.h"

/* ---------------------------------------------------------------- element load / store */

enum { K_FLOAT, K_INT, K_UINT };

typedef struct {
    int kind;
    double f;   /* K_FLOAT */
    int64_t i;  /* K_INT (bool, signed integers) */
    uint64_t u; /* K_UINT */
} num;

static num load(il_dtype t, const void *base, int64_t k) {
    num v = {K_INT, 0, 0, 0};
    switch (t) {
    case IL_F32: v.kind = K_FLOAT; v.f = ((const float *)base)[k]; break;
    case IL_F64: v.kind = K_FLOAT; v.f = ((const double *)base)[k]; break;
    case IL_F16: v.kind = K_FLOAT; v.f = il_f16_to_f32(((const uint16_t *)base)[k]); break;
    case IL_BF16: v.kind = K_FLOAT; v.f = il_bf16_to_f32(((const uint16_t *)base)[k]); break;
    case IL_BOOL: v.i = ((const uint8_t *)base)[k] != 0; break;
    case IL_I8: v.i = ((const int8_t *)base)[k]; break;
    case IL_I16: v.i = ((const int16_t *)base)[k]; break;
    case IL_I32: v.i = ((const int32_t *)base)[k]; break;
    case IL_I64: v.i = ((const int64_t *)base)[k]; break;
    case IL_U8: v.i = ((const uint8_t *)base)[k]; break;
    case IL_U16: v.i = ((const uint16_t *)base)[k]; break;
    case IL_U32: v.i = ((const uint32_t *)base)[k]; break;
    case IL_U64: v.kind = K_UINT; v.u = ((const uint64_t *)base)[k]; break;
    default: break;
    }
    return v;
}

/* The value as int64 bits: floats truncate, saturating at the int64 range (NaN gives 0). */
static uint64_t as_bits(num v) {
    if (v.kind == K_INT) return (uint64_t)v.i;
    if (v.kind == K_UINT) return v.u;
    if (isnan(v.f)) return 0;
    if (v.f >= 18446744073709551616.0) return UINT64_MAX;
    if (v.f >= 9223372036854775808.0) return (uint64_t)v.f; /* only uint64 holds these */
    if (v.f <= -9223372036854775808.0) return (uint64_t)INT64_MIN;
    return (uint64_t)(int64_t)v.f;
}

static double as_double(num v) { return v.kind == K_FLOAT ? v.f : v.kind == K_INT ? (double)v.i : (double)v.u; }

/* From integers directly: one rounding, not two through double. */
static float as_float(num v) { return v.kind == K_FLOAT ? (float)v.f : v.kind == K_INT ? (float)v.i : (float)v.u; }

/* The high half of the float32 bits; a NaN keeps a mantissa bit so it does not become inf. */
static uint16_t f32_to_bf16_trunc(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)(x >> 16);
}

static void store(il_dtype t, void *base, int64_t k, num v) {
    switch (t) {
    case IL_F32: ((float *)base)[k] = as_float(v); break;
    case IL_F64: ((double *)base)[k] = as_double(v); break;
    case IL_F16: ((uint16_t *)base)[k] = il_f32_to_f16(as_float(v)); break;
    case IL_BF16: ((uint16_t *)base)[k] = f32_to_bf16_trunc(as_float(v)); break;
    case IL_BOOL: ((uint8_t *)base)[k] = v.kind == K_FLOAT ? v.f != 0 : v.kind == K_INT ? v.i != 0 : v.u != 0; break;
    case IL_I8: ((int8_t *)base)[k] = (int8_t)as_bits(v); break;
    case IL_I16: ((int16_t *)base)[k] = (int16_t)as_bits(v); break;
    case IL_I32: ((int32_t *)base)[k] = (int32_t)as_bits(v); break;
    case IL_I64: ((int64_t *)base)[k] = (int64_t)as_bits(v); break;
    case IL_U8: ((uint8_t *)base)[k] = (uint8_t)as_bits(v); break;
    case IL_U16: ((uint16_t *)base)[k] = (uint16_t)as_bits(v); break;
    case IL_U32: ((uint32_t *)base)[k] = (uint32_t)as_bits(v); break;
    case IL_U64: ((uint64_t *)base)[k] = as_bits(v); break;
    default: break;
    }
}

static num from_int(int64_t i) { return (num){K_INT, 0, i, 0}; }

static il_status check_dtype(const il_kctx *c, il_dtype t) {
    if (!il_dtype_is_supported(t)) return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(t));
    return IL_OK;
}

/* ---------------------------------------------------------------- Cast / CastLike */

/* Cast's target: an int from opset 6, a name ("FLOAT") in opset 1. */
static il_status cast_to(const il_kctx *c, il_dtype *to) {
    static const char *names[] = {"UNDEFINED", "FLOAT",  "UINT8",     "INT8",       "UINT16",  "INT16",
                                  "INT32",     "INT64",  "STRING",    "BOOL",       "FLOAT16", "DOUBLE",
                                  "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    if (!strcmp(c->node->op_type, "CastLike")) {
        *to = il_in(c, 1) ? il_in(c, 1)->dtype : IL_UNDEFINED;
        return check_dtype(c, *to);
    }
    const il_attr *a = il_node_attr(c->node, "to");
    if (!a) return il_kerr(c, IL_ERR_INVALID, "needs a 'to' attribute");
    *to = IL_UNDEFINED;
    if (a->type == IL_ATTR_STRING) {
        for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
            if (!strcmp(a->s, names[i])) *to = (il_dtype)i;
    } else {
        *to = (il_dtype)a->i;
    }
    return check_dtype(c, *to);
}

static il_status cast_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_dtype to = IL_UNDEFINED;
    il_status st = check_dtype(c, x->dtype);
    if (st || (st = cast_to(c, &to))) return st;
    il_set_out(c, 0, to, x->rank, x->dims);
    return IL_OK;
}

static il_status cast_ref(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_tensor *y = il_out(c, 0);
    for (int64_t i = 0, n = il_tensor_numel(x); i < n; i++) store(y->dtype, y->data, i, load(x->dtype, x->data, i));
    return IL_OK;
}

/* The conversions mixed-precision models run all the time get their own loops. */
static il_status cast_fast(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_tensor *y = il_out(c, 0);
    int64_t n = il_tensor_numel(x);
    il_dtype a = x->dtype, b = y->dtype;
    if (a == b) {
        if (y->data != x->data) memcpy(y->data, x->data, il_tensor_bytes(x));
    } else if (a == IL_F32 && b == IL_F16) {
        IL_PAR_FOR(c, i, n) ((uint16_t *)y->data)[i] = il_f32_to_f16(((const float *)x->data)[i]);
    } else if (a == IL_F16 && b == IL_F32) {
        IL_PAR_FOR(c, i, n) ((float *)y->data)[i] = il_f16_to_f32(((const uint16_t *)x->data)[i]);
    } else if (a == IL_F32 && b == IL_BF16) {
        IL_PAR_FOR(c, i, n) ((uint16_t *)y->data)[i] = f32_to_bf16_trunc(((const float *)x->data)[i]);
    } else if (a == IL_BF16 && b == IL_F32) {
        IL_PAR_FOR(c, i, n) ((float *)y->data)[i] = il_bf16_to_f32(((const uint16_t *)x->data)[i]);
    } else {
        IL_PAR_FOR(c, i, n) store(b, y->data, i, load(a, x->data, i));
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- Constant */

/* Which attribute holds the value; its dtype, shape and bytes (a scalar for value_float/int). */
static il_status constant_value(const il_kctx *c, il_tensor *v) {
    const il_node *n = c->node;
    memset(v, 0, sizeof *v);
    if (n->n_attrs != 1) return il_kerr(c, IL_ERR_INVALID, "needs exactly one value attribute, has %d", n->n_attrs);
    const il_attr *a = &n->attrs[0];
    if (!strcmp(a->name, "value") && a->type == IL_ATTR_TENSOR && a->t) {
        *v = *a->t;
        if (!v->data && il_tensor_numel(v)) return il_kerr(c, IL_ERR_INVALID, "value tensor has no data");
        return check_dtype(c, v->dtype);
    }
    if (!strcmp(a->name, "value_float") || !strcmp(a->name, "value_floats")) {
        int many = a->name[11] == 's';
        v->dtype = IL_F32;
        v->rank = many;
        v->dims[0] = many ? a->n : 1;
        v->data = many ? (void *)a->floats : (void *)&a->f;
        return IL_OK;
    }
    if (!strcmp(a->name, "value_int") || !strcmp(a->name, "value_ints")) {
        int many = a->name[9] == 's';
        v->dtype = IL_I64;
        v->rank = many;
        v->dims[0] = many ? a->n : 1;
        v->data = many ? (void *)a->ints : (void *)&a->i;
        return IL_OK;
    }
    if (!strcmp(a->name, "value_string") || !strcmp(a->name, "value_strings") ||
        (a->type == IL_ATTR_TENSOR && a->t && a->t->dtype == IL_STRING))
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype string");
    return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported value attribute '%s'", a->name);
}

static il_status constant_infer(il_kctx *c) {
    il_tensor v;
    il_status st = constant_value(c, &v);
    if (st) return st;
    il_set_out(c, 0, v.dtype, v.rank, v.dims);
    return IL_OK;
}

static il_status constant_ref(il_kctx *c) {
    il_tensor v;
    il_status st = constant_value(c, &v);
    if (st) return st;
    if (il_tensor_numel(&v)) memcpy(il_out(c, 0)->data, v.data, il_tensor_bytes(&v));
    return IL_OK;
}

/* ---------------------------------------------------------------- ConstantOfShape */

/* The fill value: the one element of attribute 'value', float 0 when absent. */
static il_status fill_value(const il_kctx *c, il_dtype *dt, const void **bytes) {
    static const float zero = 0;
    const il_attr *a = il_node_attr(c->node, "value");
    *dt = IL_F32;
    *bytes = &zero;
    if (!a) return IL_OK;
    if (a->type != IL_ATTR_TENSOR || !a->t || il_tensor_numel(a->t) != 1 || !a->t->data)
        return il_kerr(c, IL_ERR_INVALID, "value must be a tensor of one element");
    *dt = a->t->dtype;
    *bytes = a->t->data;
    return check_dtype(c, *dt);
}

static il_status constant_of_shape_infer(il_kctx *c) {
    const il_tensor *s = il_in(c, 0);
    il_dtype dt;
    const void *bytes;
    int64_t dims[IL_MAX_RANK], n = 1;
    il_status st = fill_value(c, &dt, &bytes);
    if (st) return st;
    if (s->rank > 1) return il_kerr(c, IL_ERR_INVALID, "shape must be 1-D, has rank %d", s->rank);
    int r = s->rank < 0 ? -1 : s->rank == 0 ? 0 : (int)s->dims[0];
    if (r > IL_MAX_RANK) return il_kerr(c, IL_ERR_UNSUPPORTED, "output rank %d is above %d", r, IL_MAX_RANK);
    for (int i = 0; i < r; i++) {
        dims[i] = s->data ? il_int_at(s, i) : -1;
        if (s->data && dims[i] < 0)
            return il_kerr(c, IL_ERR_INVALID, "shape has a negative dim %lld", (long long)dims[i]);
        if (dims[i] > 0 && n > IL_MAX_NUMEL / dims[i]) return il_kerr(c, IL_ERR_INVALID, "shape is too large");
        if (dims[i] >= 0) n *= dims[i];
    }
    il_set_out(c, 0, dt, r, dims);
    return IL_OK;
}

static il_status constant_of_shape_ref(il_kctx *c) {
    il_tensor *y = il_out(c, 0);
    il_dtype dt;
    const void *bytes;
    fill_value(c, &dt, &bytes);
    size_t es = il_dtype_size(dt);
    for (int64_t i = 0, n = il_tensor_numel(y); i < n; i++) memcpy((char *)y->data + i * (int64_t)es, bytes, es);
    return IL_OK;
}

/* ---------------------------------------------------------------- Range */

/* Number of elements: max(ceil((limit - start) / delta), 0), computed exactly for integers. */
static il_status range_count(il_kctx *c, num s, num l, num d, int64_t *n) {
    if (s.kind == K_FLOAT) {
        if (d.f == 0) return il_kerr(c, IL_ERR_INVALID, "delta is 0");
        double k = ceil((l.f - s.f) / d.f);
        if (!(k < (double)IL_MAX_NUMEL)) return il_kerr(c, IL_ERR_INVALID, "range of %g elements is too large", k);
        *n = k > 0 ? (int64_t)k : 0;
        return IL_OK;
    }
    if (d.i == 0) return il_kerr(c, IL_ERR_INVALID, "delta is 0");
    int64_t span;
    if (__builtin_sub_overflow(l.i, s.i, &span)) return il_kerr(c, IL_ERR_INVALID, "range is too large");
    if ((span > 0) != (d.i > 0) || span == 0) { *n = 0; return IL_OK; }
    /* same signs: ceil division without overflow */
    *n = span / d.i + (span % d.i != 0);
    if (*n > IL_MAX_NUMEL) return il_kerr(c, IL_ERR_INVALID, "range of %lld elements is too large", (long long)*n);
    return IL_OK;
}

static il_status range_infer(il_kctx *c) {
    const il_tensor *s = il_in(c, 0), *l = il_in(c, 1), *d = il_in(c, 2);
    if (!s || !l || !d) return il_kerr(c, IL_ERR_INVALID, "needs start, limit and delta");
    if (s->dtype != l->dtype || s->dtype != d->dtype)
        return il_kerr(c, IL_ERR_TYPE, "start, limit and delta differ in dtype (%s, %s, %s)", il_dtype_name(s->dtype),
                       il_dtype_name(l->dtype), il_dtype_name(d->dtype));
    for (int i = 0; i < 3; i++)
        if (il_shape_known(c->in[i]) && il_tensor_numel(c->in[i]) != 1)
            return il_kerr(c, IL_ERR_INVALID, "input %d must be a scalar", i);
    if (s->dtype == IL_U64 || !il_dtype_is_supported(s->dtype) || s->dtype == IL_BOOL)
        return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(s->dtype));
    int64_t n = -1;
    if (s->data && l->data && d->data) {
        il_status st =
            range_count(c, load(s->dtype, s->data, 0), load(l->dtype, l->data, 0), load(d->dtype, d->data, 0), &n);
        if (st) return st;
    }
    il_set_out(c, 0, s->dtype, 1, &n);
    return IL_OK;
}

/* out[i] = start + i * delta (multiplied, not accumulated, so errors do not build up). */
static il_status range_ref(il_kctx *c) {
    const il_tensor *s = il_in(c, 0), *d = il_in(c, 2);
    il_tensor *y = il_out(c, 0);
    num start = load(s->dtype, s->data, 0), delta = load(d->dtype, d->data, 0);
    for (int64_t i = 0, n = il_tensor_numel(y); i < n; i++) {
        num v = start;
        if (v.kind == K_FLOAT) v.f = start.f + (double)i * delta.f;
        else v.i = start.i + i * delta.i; /* stays between start and limit: no overflow */
        store(y->dtype, y->data, i, v);
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- OneHot */

/* An integer read from any numeric element; 0 in *ok when it is no integer (NaN, huge). */
static int64_t int_of(const il_tensor *t, int64_t k, int *ok) {
    num v = load(t->dtype, t->data, k);
    *ok = 1;
    if (v.kind == K_INT) return v.i;
    if (v.kind == K_UINT) { *ok = v.u <= (uint64_t)INT64_MAX; return (int64_t)v.u; }
    *ok = v.f > -9.2e18 && v.f < 9.2e18;
    return *ok ? (int64_t)v.f : 0;
}

static il_status onehot_geom(il_kctx *c, int *axis, int64_t *depth) {
    const il_tensor *ind = il_in(c, 0), *dep = il_in(c, 1), *val = il_in(c, 2);
    if (!ind || !dep || !val) return il_kerr(c, IL_ERR_INVALID, "needs indices, depth and values");
    if (il_shape_known(val) && il_tensor_numel(val) != 2)
        return il_kerr(c, IL_ERR_INVALID, "values must hold [off, on]");
    if (il_shape_known(dep) && il_tensor_numel(dep) != 1) return il_kerr(c, IL_ERR_INVALID, "depth must be a scalar");
    int64_t a = il_attr_int(c->node, "axis", -1);
    int r = ind->rank + 1, ok = 1;
    if (ind->rank >= 0) {
        if (a < -r || a >= r)
            return il_kerr(c, IL_ERR_INVALID, "axis %lld is out of range for rank %d", (long long)a, r);
        if (r > IL_MAX_RANK) return il_kerr(c, IL_ERR_UNSUPPORTED, "output rank %d is above %d", r, IL_MAX_RANK);
        *axis = (int)(a < 0 ? a + r : a);
    }
    *depth = dep->data ? int_of(dep, 0, &ok) : -1;
    if (!ok || (dep->data && (*depth < 0 || *depth > IL_MAX_NUMEL)))
        return il_kerr(c, IL_ERR_INVALID, "depth %g is not a valid size", il_tensor_get(dep, 0));
    if (il_shape_known(ind) && *depth > 0 && il_tensor_numel(ind) > IL_MAX_NUMEL / *depth)
        return il_kerr(c, IL_ERR_INVALID, "output of %lld x %lld elements is too large", (long long)il_tensor_numel(ind),
                       (long long)*depth);
    return IL_OK;
}

static il_status onehot_infer(il_kctx *c) {
    const il_tensor *ind = il_in(c, 0), *val = il_in(c, 2);
    int axis = 0;
    int64_t depth, dims[IL_MAX_RANK];
    il_status st = onehot_geom(c, &axis, &depth);
    if (st) return st;
    if (ind->rank < 0) { il_set_out(c, 0, val->dtype, -1, NULL); return IL_OK; }
    for (int i = 0, j = 0; i <= ind->rank; i++) dims[i] = i == axis ? depth : ind->dims[j++];
    il_set_out(c, 0, val->dtype, ind->rank + 1, dims);
    return IL_OK;
}

/* out[o, d, i] = values[indices[o, i] == d] with o over indices' dims before the axis. An
 * index in [-depth, -1] counts from the end; others out of range give a row of "off". */
static il_status onehot_ref(il_kctx *c) {
    const il_tensor *ind = il_in(c, 0), *val = il_in(c, 2);
    il_tensor *y = il_out(c, 0);
    int axis = 0;
    int64_t depth, inner = 1, outer = 1;
    onehot_geom(c, &axis, &depth);
    for (int i = 0; i < ind->rank; i++) *(i < axis ? &outer : &inner) *= ind->dims[i];
    size_t es = il_dtype_size(val->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int ok;
            int64_t k = int_of(ind, o * inner + i, &ok);
            if (ok && k < 0) k += depth;
            for (int64_t d = 0; d < depth; d++) {
                int on = ok && k == d;
                memcpy((char *)y->data + ((o * depth + d) * inner + i) * (int64_t)es, (const char *)val->data + on * es,
                       es);
            }
        }
    return IL_OK;
}

/* ---------------------------------------------------------------- EyeLike */

static il_status eyelike_type(const il_kctx *c, il_dtype *dt) {
    *dt = (il_dtype)il_attr_int(c->node, "dtype", il_in(c, 0)->dtype);
    return check_dtype(c, *dt);
}

static il_status eyelike_infer(il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    il_dtype dt;
    il_status st = eyelike_type(c, &dt);
    if (st) return st;
    if (x->rank >= 0 && x->rank != 2) return il_kerr(c, IL_ERR_INVALID, "input must be 2-D, has rank %d", x->rank);
    il_set_out(c, 0, dt, x->rank, x->dims);
    return IL_OK;
}

/* Ones on diagonal k (j - i == k), zeros elsewhere. */
static il_status eyelike_ref(il_kctx *c) {
    il_tensor *y = il_out(c, 0);
    int64_t k = il_attr_int(c->node, "k", 0), rows = y->dims[0], cols = y->dims[1];
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) store(y->dtype, y->data, i * cols + j, from_int(j - i == k));
    return IL_OK;
}

#define ANY IL_OPF_ANY_DTYPE
const il_op il_ops_misc[] = {
    {"", "Cast", 1, cast_infer, cast_ref, cast_fast, ANY},
    {"", "CastLike", 15, cast_infer, cast_ref, cast_fast, ANY},
    {"", "Constant", 1, constant_infer, constant_ref, NULL, ANY},
    {"", "ConstantOfShape", 9, constant_of_shape_infer, constant_of_shape_ref, NULL, ANY},
    {"", "Range", 11, range_infer, range_ref, NULL, 0},
    {"", "OneHot", 9, onehot_infer, onehot_ref, NULL, ANY},
    {"", "EyeLike", 9, eyelike_infer, eyelike_ref, NULL, ANY},
    {0},
};
