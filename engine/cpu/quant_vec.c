/*
 * quant_vec.c - QuantizeLinear kernel "avx512": float32 to uint8/int8 with one scale and zero
 * point (per tensor: a quantized network's input, the activations a float op hands back), 16
 * elements a vector. The reference's arithmetic exactly (engine/ops/quant.c): x / scale divided
 * in float32 (vdivps is IEEE division, as the scalar divss), rounded half to even (vrndscaleps
 * in nearest mode, as nearbyintf), NaN as 0, then + zero point and saturation -- done as a clamp
 * of the integral quotient to [lo - zp, hi - zp] before the add, which is the same on integers.
 *
 * Why: the "fast" kernel's scalar loop took 13.4 ms of MobileNet v2's 130 ms in INT8 at batch 32
 * (the 32x3x224x224 input, 2.8 ns an element) and 9.7 ms of ResNet-18's 198 ms.
 */
#include "qgemm.h"

#include <immintrin.h>

static int qv_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *s = il_in(c, 1), *zp = il_in(c, 2), *y = il_out(c, 0);
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return 0;
    if (!x || !s || !y || x->dtype != IL_F32 || s->dtype != IL_F32 || !il_q_is_8bit(y->dtype)) return 0;
    if (!il_shape_known(x) || !il_shape_known(s) || il_tensor_numel(s) != 1) return 0;
    return !zp || (il_shape_known(zp) && il_tensor_numel(zp) == 1 && zp->dtype == y->dtype);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void quantize16(const float *x, uint8_t *y, int64_t n,
                                                                           float s, int32_t z, int32_t lo, int32_t hi) {
    const __m512 vs = _mm512_set1_ps(s), qlo = _mm512_set1_ps((float)(lo - z)), qhi = _mm512_set1_ps((float)(hi - z));
    const __m512i vz = _mm512_set1_epi32(z);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 q = _mm512_roundscale_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), vs),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(q, q, _CMP_ORD_Q), q); /* NaN -> 0 */
        q = _mm512_min_ps(_mm512_max_ps(q, qlo), qhi);
        _mm512_mask_cvtepi32_storeu_epi8(y + i, k, _mm512_add_epi32(_mm512_cvtps_epi32(q), vz));
    }
}

static il_status qv_run(il_kctx *c) {
    const il_tensor *x = c->in[0], *zp = il_in(c, 2);
    il_tensor *y = c->out[0];
    float s = ((const float *)c->in[1]->data)[0];
    int32_t z = zp ? (int32_t)il_int_at(zp, 0) : 0, lo = y->dtype == IL_U8 ? 0 : -128, hi = lo + 255;
    int64_t n = il_tensor_numel(x), chunk = 16384, chunks = (n + chunk - 1) / chunk;
    IL_PAR_FOR(c, t, chunks) {
        int64_t i0 = t * chunk;
        quantize16((const float *)x->data + i0, (uint8_t *)y->data + i0, n - i0 < chunk ? n - i0 : chunk, s, z, lo, hi);
    }
    return IL_OK;
}

/* ---- DynamicQuantizeLinear's range and quantization (engine/ops/quant.c's, bit for bit) */

/* min_ps(x, m) is x < m ? x : m: a NaN x leaves m, as the reference's `if (x < mn)`; lanes past
 * n load 0, which the range holds anyway. */
__attribute__((target("avx512f"))) static void minmax16(const float *x, int64_t n, float *mn, float *mx) {
    __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        lo = _mm512_min_ps(v, lo), hi = _mm512_max_ps(v, hi);
    }
    *mn = _mm512_reduce_min_ps(lo), *mx = _mm512_reduce_max_ps(hi);
}

void il_dynq_minmax(const float *x, int64_t n, float *mn, float *mx) {
    if (__builtin_cpu_supports("avx512f")) {
        minmax16(x, n, mn, mx);
        return;
    }
    *mn = 0, *mx = 0;
    for (int64_t i = 0; i < n; i++) *mn = x[i] < *mn ? x[i] : *mn, *mx = x[i] > *mx ? x[i] : *mx;
}

void il_dynq_apply(const float *x, uint8_t *y, int64_t n, float scale, uint8_t zp) {
    if (scale > 0 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        quantize16(x, y, n, scale, zp, 0, 255);
    else
        il_dynq_apply_ref(x, y, n, scale, zp);
}

/* Priority 15, above the scalar "fast" (10). */
const il_kernel il_kernels_quant_vec[] = {
    {.domain = "", .op = "QuantizeLinear", .since_version = 10, .backend = "cpu", .name = "avx512",
     .dtypes = IL_DT(IL_F32), .priority = 15, .supports = qv_supports, .run = qv_run,
     .doc = "float32 to 8 bits with one scale and zero point, 16 lanes (AVX-512), the reference's rounding"},
    {0},
};
