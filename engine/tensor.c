/*
 * tensor.c - dtypes, tensors, half-precision conversion, seeded random data and the
 * tolerance comparison every test and `inferlab check` uses.
 */
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t il_dtype_size(il_dtype t) {
    switch (t) {
    case IL_F32: case IL_I32: case IL_U32: return 4;
    case IL_U8: case IL_I8: case IL_BOOL: return 1;
    case IL_U16: case IL_I16: case IL_F16: case IL_BF16: return 2;
    case IL_I64: case IL_F64: case IL_U64: return 8;
    default: return 0;
    }
}

const char *il_dtype_name(il_dtype t) {
    switch (t) {
    case IL_F32: return "float32";
    case IL_U8: return "uint8";
    case IL_I8: return "int8";
    case IL_U16: return "uint16";
    case IL_I16: return "int16";
    case IL_I32: return "int32";
    case IL_I64: return "int64";
    case IL_STRING: return "string";
    case IL_BOOL: return "bool";
    case IL_F16: return "float16";
    case IL_F64: return "float64";
    case IL_U32: return "uint32";
    case IL_U64: return "uint64";
    case IL_BF16: return "bfloat16";
    default: break;
    }
    switch ((int)t) { /* ONNX types the engine cannot hold, named so an error can say which */
    case 14: return "complex64";
    case 15: return "complex128";
    case 17: return "float8e4m3fn";
    case 18: return "float8e4m3fnuz";
    case 19: return "float8e5m2";
    case 20: return "float8e5m2fnuz";
    case 21: return "uint4";
    case 22: return "int4";
    case 23: return "float4e2m1";
    default: return "undefined";
    }
}

int il_dtype_is_float(il_dtype t) { return t == IL_F32 || t == IL_F64 || t == IL_F16 || t == IL_BF16; }

int il_dtype_is_supported(il_dtype t) { return il_dtype_size(t) != 0; }

float il_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            man &= 0x3ff;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t il_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    uint32_t man = x & 0x7fffff;
    if (exp == 255) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into the exponent: fine */
    return (uint16_t)(sign | h);
}

float il_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t il_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

int64_t il_shape_numel(int rank, const int64_t *dims) {
    int64_t n = 1;
    int over = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return -1;
        if (dims[i] == 0) return 0; /* the true product, even past an overflow */
        if (!over && __builtin_mul_overflow(n, dims[i], &n)) over = 1;
    }
    return over ? INT64_MAX : n;
}

il_status il_shape_check(int rank, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] <= 0) continue; /* unknown, or zero (which must not hide a huge rest) */
        if (__builtin_mul_overflow(n, dims[i], &n) || n > IL_MAX_NUMEL) {
            char buf[200];
            return il_error(IL_ERR_UNSUPPORTED, "shape %s has more than 2^40 elements",
                            il_shape_str(rank, dims, buf, sizeof buf));
        }
    }
    return IL_OK;
}

static il_tensor *make(il_dtype dt, int rank, const int64_t *dims) {
    if (rank < 0 || rank > IL_MAX_RANK) {
        il_error(IL_ERR_UNSUPPORTED, "tensor rank %d (at most %d supported)", rank, IL_MAX_RANK);
        return NULL;
    }
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0) {
            il_error(IL_ERR_SHAPE, "negative dimension %lld", (long long)dims[i]);
            return NULL;
        }
    if (il_shape_check(rank, dims)) return NULL;
    il_tensor *t = calloc(1, sizeof *t);
    if (!t) { il_error(IL_ERR_OOM, "out of memory"); return NULL; }
    t->dtype = dt;
    t->rank = rank;
    if (rank) memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    return t;
}

il_tensor *il_tensor_new(il_dtype dt, int rank, const int64_t *dims) {
    if (!il_dtype_is_supported(dt)) {
        il_error(IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(dt));
        return NULL;
    }
    il_tensor *t = make(dt, rank, dims);
    if (!t) return NULL;
    size_t n = il_tensor_bytes(t); /* make() bounded the count: no overflow */
    t->data = calloc(n ? n : 1, 1);
    if (!t->data) {
        free(t);
        il_error(IL_ERR_OOM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    t->owns_data = 1;
    return t;
}

il_tensor *il_tensor_wrap(il_dtype dt, int rank, const int64_t *dims, void *data) {
    il_tensor *t = make(dt, rank, dims);
    if (t) t->data = data;
    return t;
}

il_tensor *il_tensor_clone(const il_tensor *s) {
    il_tensor *t = il_tensor_new(s->dtype, s->rank, s->dims);
    if (!t) return NULL;
    if (s->data) memcpy(t->data, s->data, il_tensor_bytes(s));
    return t;
}

void il_tensor_free(il_tensor *t) {
    if (!t) return;
    if (t->owns_data) free(t->data);
    free(t);
}

double il_tensor_get(const il_tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case IL_F32: return ((const float *)d)[i];
    case IL_F64: return ((const double *)d)[i];
    case IL_F16: return il_f16_to_f32(((const uint16_t *)d)[i]);
    case IL_BF16: return il_bf16_to_f32(((const uint16_t *)d)[i]);
    case IL_I8: return ((const int8_t *)d)[i];
    case IL_U8: return ((const uint8_t *)d)[i];
    case IL_BOOL: return ((const uint8_t *)d)[i] != 0;
    case IL_I16: return ((const int16_t *)d)[i];
    case IL_U16: return ((const uint16_t *)d)[i];
    case IL_I32: return ((const int32_t *)d)[i];
    case IL_U32: return ((const uint32_t *)d)[i];
    case IL_I64: return (double)((const int64_t *)d)[i];
    case IL_U64: return (double)((const uint64_t *)d)[i];
    default: return 0;
    }
}

void il_tensor_set(il_tensor *t, int64_t i, double v) {
    void *d = t->data;
    switch (t->dtype) {
    case IL_F32: ((float *)d)[i] = (float)v; break;
    case IL_F64: ((double *)d)[i] = v; break;
    case IL_F16: ((uint16_t *)d)[i] = il_f32_to_f16((float)v); break;
    case IL_BF16: ((uint16_t *)d)[i] = il_f32_to_bf16((float)v); break;
    case IL_I8: ((int8_t *)d)[i] = (int8_t)v; break;
    case IL_U8: ((uint8_t *)d)[i] = (uint8_t)v; break;
    case IL_BOOL: ((uint8_t *)d)[i] = v != 0; break;
    case IL_I16: ((int16_t *)d)[i] = (int16_t)v; break;
    case IL_U16: ((uint16_t *)d)[i] = (uint16_t)v; break;
    case IL_I32: ((int32_t *)d)[i] = (int32_t)v; break;
    case IL_U32: ((uint32_t *)d)[i] = (uint32_t)v; break;
    case IL_I64: ((int64_t *)d)[i] = (int64_t)v; break;
    case IL_U64: ((uint64_t *)d)[i] = (uint64_t)v; break;
    default: break;
    }
}

const char *il_shape_str(int rank, const int64_t *dims, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    if (rank < 0) k += (size_t)snprintf(buf + k, n > k ? n - k : 0, "?");
    for (int i = 0; i < rank && k < n; i++) {
        if (dims[i] < 0) k += (size_t)snprintf(buf + k, n - k, "%s?", i ? "," : "");
        else k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)dims[i]);
    }
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

uint64_t il_rand_u64(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

double il_rand_uniform(uint64_t *s) { return (double)(il_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

void il_tensor_fill_random(il_tensor *t, uint64_t *rng, double lo, double hi) {
    int64_t n = il_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = lo + (hi - lo) * il_rand_uniform(rng);
        if (!il_dtype_is_float(t->dtype)) v = floor(v);
        il_tensor_set(t, i, v);
    }
}

void il_tensor_fill_input(il_tensor *t, uint64_t *rng) {
    if (il_dtype_is_float(t->dtype)) il_tensor_fill_random(t, rng, -1, 1);
    else il_tensor_fill_random(t, rng, 0, 2);
}

int il_tensor_allclose(const il_tensor *got, const il_tensor *want, double rtol, double atol,
                       int64_t *worst, char *msg, size_t msgn) {
    char a[96], b[96];
    if (worst) *worst = -1;
    if (got->dtype != want->dtype) {
        snprintf(msg, msgn, "dtype %s, want %s", il_dtype_name(got->dtype), il_dtype_name(want->dtype));
        return 0;
    }
    if (got->rank != want->rank || memcmp(got->dims, want->dims, (size_t)got->rank * sizeof(int64_t))) {
        snprintf(msg, msgn, "shape %s, want %s", il_shape_str(got->rank, got->dims, a, sizeof a),
                 il_shape_str(want->rank, want->dims, b, sizeof b));
        return 0;
    }
    int64_t n = il_tensor_numel(got), wi = -1;
    double wexcess = 0;
    int isfloat = il_dtype_is_float(got->dtype);
    for (int64_t i = 0; i < n; i++) {
        double x = il_tensor_get(got, i), y = il_tensor_get(want, i);
        if (isnan(x) || isnan(y)) {
            if (isnan(x) && isnan(y)) continue;
            wi = i; wexcess = INFINITY; break;
        }
        if (isinf(x) || isinf(y)) {
            if (x == y) continue;
            wi = i; wexcess = INFINITY; break;
        }
        double tol = isfloat ? atol + rtol * fabs(y) : 0;
        /* int64 beyond 2^53 would compare wrongly through double: compare exactly */
        int bad;
        if (got->dtype == IL_I64) bad = ((const int64_t *)got->data)[i] != ((const int64_t *)want->data)[i];
        else if (got->dtype == IL_U64) bad = ((const uint64_t *)got->data)[i] != ((const uint64_t *)want->data)[i];
        else bad = fabs(x - y) > tol;
        if (bad) {
            double ex = fabs(x - y) - tol;
            if (wi < 0 || ex > wexcess) { wi = i; wexcess = ex; }
        }
    }
    if (wi < 0) return 1;
    if (worst) *worst = wi;
    snprintf(msg, msgn, "worst element %lld, got %.9g, want %.9g", (long long)wi, il_tensor_get(got, wi),
             il_tensor_get(want, wi));
    return 0;
}
