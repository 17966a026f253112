/*
 * qgemm_x86.c - the vector micro-kernels and epilogues of the INT8 GEMM (qgemm.h): AVX-512
 * VNNI, AVX-VNNI and AVX2. The build targets x86-64-v2, so each function carries its own target
 * attribute and runs only where qgemm.c's CPUID check chose its ISA.
 *
 * A micro-kernel keeps an MR x (16*nv) tile of int32 sums in registers: per group of 4 k it
 * loads the packed activations of nv strips and broadcasts each row's 4 weight bytes, one
 * multiply-add per (row, vector) -- 24 accumulators of 32 zmm for AVX-512 (8 rows x 3 strips),
 * 12 of 16 ymm for AVX-VNNI (6 rows x one strip as two ymm), 8 for AVX2 (4 x 2), whose
 * vpmaddubsw + vpmaddwd pair needs registers for the ones and the products.
 */
#include "qgemm.h"

#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))
#define T256V __attribute__((target("avx2,avxvnni,fma")))
#define T256 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------- AVX-512 VNNI */

#define MR512 8

/* GCC keeps an array of 24 accumulator vectors in memory (a copy and a spill per multiply-add,
 * measured at a third of the instruction's throughput), so each kernel names its accumulators:
 * A(m, v) is row m, strip v. */
#define A(m, v) a##m##v
#define DP512(m, v) A(m, v) = _mm512_dpbusd_epi32(A(m, v), x##v, b)
#define ROW512_1(m) { __m512i b = _mm512_set1_epi32(wk[m]); DP512(m, 0); }
#define ROW512_2(m) { __m512i b = _mm512_set1_epi32(wk[m]); DP512(m, 0); DP512(m, 1); }
#define ROW512_3(m) { __m512i b = _mm512_set1_epi32(wk[m]); DP512(m, 0); DP512(m, 1); DP512(m, 2); }
#define EACH8(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7)
#define DECL512_1(m) __m512i A(m, 0) = _mm512_setzero_si512();
#define DECL512_2(m) DECL512_1(m) __m512i A(m, 1) = _mm512_setzero_si512();
#define DECL512_3(m) DECL512_2(m) __m512i A(m, 2) = _mm512_setzero_si512();
#define ST512_1(m) _mm512_storeu_si512(c + (m) * IL_QTILE_LD, A(m, 0));
#define ST512_2(m) ST512_1(m) _mm512_storeu_si512(c + (m) * IL_QTILE_LD + 16, A(m, 1));
#define ST512_3(m) ST512_2(m) _mm512_storeu_si512(c + (m) * IL_QTILE_LD + 32, A(m, 2));
#define LD512_1 __m512i x0 = _mm512_loadu_si512(x + k4 * 64);
#define LD512_2 LD512_1 __m512i x1 = _mm512_loadu_si512(x + sb + k4 * 64);
#define LD512_3 LD512_2 __m512i x2 = _mm512_loadu_si512(x + 2 * sb + k4 * 64);

#define UKR512(NV)                                                                                             \
    T512 static void ukr512_##NV(int64_t k4n, const int32_t *w, const uint8_t *x, int64_t sb, int32_t *c) {   \
        EACH8(DECL512_##NV)                                                                                    \
        for (int64_t k4 = 0; k4 < k4n; k4++) {                                                                 \
            LD512_##NV                                                                                         \
            const int32_t *wk = w + k4 * MR512;                                                                \
            EACH8(ROW512_##NV)                                                                                 \
        }                                                                                                      \
        EACH8(ST512_##NV)                                                                                      \
    }
UKR512(1)
UKR512(2)
UKR512(3)

T512 static void ukr512(int64_t k4n, const int32_t *wa, const int32_t *wb, const uint8_t *x, int64_t sb, int nv,
                        int32_t *c) {
    (void)wb;
    if (nv == 3) ukr512_3(k4n, wa, x, sb, c);
    else if (nv == 2) ukr512_2(k4n, wa, x, sb, c);
    else ukr512_1(k4n, wa, x, sb, c);
}

/* The transposed store (rs = 1: rows m0.. of column j are adjacent in y): per column, the
 * tile's up to 8 rows gathered into one vector, the zero-point terms, then int32 as they are,
 * floats with each row's scale and bias, or 8 bits requantized as the row path does (double
 * product, half-to-even conversion, zero point, clamp): as il_qepi_scalar computes them. */
/* A full panel's 16 columns from jb on, int32 or float: each row's 16 values computed as a row
 * (the per-row terms broadcast), then the 8 x 16 block transposed in registers and stored as
 * 16 columns of 8 adjacent outputs -- the gathers of the column loop below cost a quarter of a
 * dynamic product. */
T512 static void cols16(const int32_t *c, int jb, int64_t m0, int64_t j0, const il_qepi *e) {
    int f32 = e->out == IL_QOUT_F32;
    __m512 v[8];
    for (int r = 0; r < 8; r++) {
        __m512i a = _mm512_add_epi32(_mm512_loadu_si512(c + r * IL_QTILE_LD + jb), _mm512_set1_epi32(e->row_add ? e->row_add[m0 + r] : 0));
        if (e->row_zw)
            a = _mm512_sub_epi32(a, _mm512_mullo_epi32(_mm512_set1_epi32(e->row_zw[m0 + r]), _mm512_loadu_si512(e->colsum + j0 + jb)));
        if (!f32) {
            v[r] = _mm512_castsi512_ps(a);
            continue;
        }
        v[r] = _mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_set1_ps(e->fscale[m0 + r])); /* no fused multiply-add */
        if (e->fbias) v[r] = _mm512_add_ps(v[r], _mm512_set1_ps(e->fbias[m0 + r]));
    }
    /* per 128-bit lane L (columns 4L..4L+3): u[i] holds column 4L+i of rows 0-3, u[4+i] of rows 4-7 */
    __m512 t[8], u[8];
    for (int h = 0; h < 2; h++) {
        t[4 * h + 0] = _mm512_unpacklo_ps(v[4 * h], v[4 * h + 1]), t[4 * h + 1] = _mm512_unpackhi_ps(v[4 * h], v[4 * h + 1]);
        t[4 * h + 2] = _mm512_unpacklo_ps(v[4 * h + 2], v[4 * h + 3]), t[4 * h + 3] = _mm512_unpackhi_ps(v[4 * h + 2], v[4 * h + 3]);
        u[4 * h + 0] = _mm512_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44), u[4 * h + 1] = _mm512_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
        u[4 * h + 2] = _mm512_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44), u[4 * h + 3] = _mm512_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    float *y = (float *)e->y + m0 + (j0 + jb) * e->cs; /* int32 outputs: the same bits */
#define COL4(L)                                                                                   \
    for (int i = 0; i < 4; i++) {                                                                 \
        _mm_storeu_ps(y + (4 * (L) + i) * e->cs, _mm512_extractf32x4_ps(u[i], L));              \
        _mm_storeu_ps(y + (4 * (L) + i) * e->cs + 4, _mm512_extractf32x4_ps(u[4 + i], L));      \
    }
    COL4(0) COL4(1) COL4(2) COL4(3)
#undef COL4
}

T512 static void epi512_cols(const int32_t *c, int rows, int cols, int64_t m0, int64_t j0, const il_qepi *e) {
    int done = 0;
    if (rows == 8 && e->out != IL_QOUT_U8 && e->out != IL_QOUT_S8)
        for (; done + 16 <= cols; done += 16) cols16(c, done, m0, j0, e);
    c += done, j0 += done, cols -= done;
    const __mmask8 k = (__mmask8)((1u << rows) - 1);
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(IL_QTILE_LD));
    __m256i add = e->row_add ? _mm256_maskz_loadu_epi32(k, e->row_add + m0) : _mm256_setzero_si256();
    __m256i zw = e->row_zw ? _mm256_maskz_loadu_epi32(k, e->row_zw + m0) : _mm256_setzero_si256();
    int f32 = e->out == IL_QOUT_F32, q8 = e->out == IL_QOUT_U8 || e->out == IL_QOUT_S8;
    __m256 sc = f32 ? _mm256_maskz_loadu_ps(k, e->fscale + m0) : _mm256_setzero_ps();
    __m512d dsc = q8 ? _mm512_maskz_loadu_pd(k, e->scale + m0) : _mm512_setzero_pd();
    const __m512d big = _mm512_set1_pd(2147483520.0), small = _mm512_set1_pd(-2147483520.0);
    const __m256i zp = _mm256_set1_epi32(e->zp), lo = _mm256_set1_epi32(e->lo), hi = _mm256_set1_epi32(e->hi);
    __m256 bias = f32 && e->fbias ? _mm256_maskz_loadu_ps(k, e->fbias + m0) : _mm256_setzero_ps();
    for (int j = 0; j < cols; j++) {
        __m256i a = _mm256_add_epi32(_mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), k, idx, c + j, 4), add);
        if (e->row_zw) a = _mm256_sub_epi32(a, _mm256_mullo_epi32(zw, _mm256_set1_epi32(e->colsum[j0 + j])));
        int64_t at = m0 + (j0 + j) * e->cs;
        if (q8) {
            __m512d d = _mm512_max_pd(_mm512_min_pd(_mm512_mul_pd(_mm512_cvtepi32_pd(a), dsc), big), small);
            __m256i q = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(_mm512_cvtpd_epi32(d), zp), lo), hi);
            _mm256_mask_cvtepi32_storeu_epi8((uint8_t *)e->y + at, k, q);
            continue;
        }
        if (!f32) {
            _mm256_mask_storeu_epi32((int32_t *)e->y + at, k, a);
            continue;
        }
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(a), sc); /* one rounding each, no fused multiply-add */
        if (e->fbias) f = _mm256_add_ps(f, bias);
        _mm256_mask_storeu_ps((float *)e->y + at, k, f);
    }
}

/* 16 sums of row m from column j on: add the zero-point terms, then store int32 or requantize. */
T512 static void epi512(const int32_t *c, int rows, int cols, int64_t m0, int64_t j0, const il_qepi *e) {
    if (e->rs == 1 && e->cs != 1) {
        epi512_cols(c, rows, cols, m0, j0, e);
        return;
    }
    if (e->cs != 1 || e->out == IL_QOUT_F32) {
        il_qepi_scalar(c, rows, cols, m0, j0, e);
        return;
    }
    const __m512d big = _mm512_set1_pd(2147483520.0), small = _mm512_set1_pd(-2147483520.0);
    const __m512i zp = _mm512_set1_epi32(e->zp), lo = _mm512_set1_epi32(e->lo), hi = _mm512_set1_epi32(e->hi);
    for (int r = 0; r < rows; r++) {
        int64_t m = m0 + r;
        __m512i add = _mm512_set1_epi32(e->row_add ? e->row_add[m] : 0);
        __m512i zw = _mm512_set1_epi32(e->row_zw ? e->row_zw[m] : 0);
        __m512d sc = _mm512_set1_pd(e->scale ? e->scale[m] : 1.0);
        for (int j = 0; j < cols; j += 16) {
            __mmask16 k = cols - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (cols - j)) - 1);
            __m512i a = _mm512_add_epi32(_mm512_loadu_si512(c + r * IL_QTILE_LD + j), add);
            if (e->row_zw) a = _mm512_sub_epi32(a, _mm512_mullo_epi32(zw, _mm512_maskz_loadu_epi32(k, e->colsum + j0 + j)));
            int64_t at = m * e->rs + j0 + j;
            if (e->out == IL_QOUT_S32) {
                _mm512_mask_storeu_epi32((int32_t *)e->y + at, k, a);
                continue;
            }
            /* int32 -> double is exact; one rounded multiply; cvtpd rounds half to even */
            __m512d d0 = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(a)), sc);
            __m512d d1 = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(a, 1)), sc);
            d0 = _mm512_max_pd(_mm512_min_pd(d0, big), small);
            d1 = _mm512_max_pd(_mm512_min_pd(d1, big), small);
            __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtpd_epi32(d0)), _mm512_cvtpd_epi32(d1), 1);
            q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, zp), lo), hi);
            _mm_mask_storeu_epi8((uint8_t *)e->y + at, k, _mm512_cvtepi32_epi8(q));
        }
    }
}

const il_qisa_impl il_qisa_impl_avx512vnni = {MR512, 3, ukr512, epi512};

/* ---------------------------------------------------------------- 256-bit epilogue (AVX2, AVX-VNNI) */

T256 static void epi256(const int32_t *c, int rows, int cols, int64_t m0, int64_t j0, const il_qepi *e) {
    if (e->cs != 1 || e->out == IL_QOUT_S32 || e->out == IL_QOUT_F32) {
        il_qepi_scalar(c, rows, cols, m0, j0, e);
        return;
    }
    const __m256d big = _mm256_set1_pd(2147483520.0), small = _mm256_set1_pd(-2147483520.0);
    const __m256i zp = _mm256_set1_epi32(e->zp), lo = _mm256_set1_epi32(e->lo), hi = _mm256_set1_epi32(e->hi);
    int full = cols & ~7;
    for (int r = 0; r < rows; r++) {
        int64_t m = m0 + r;
        __m256i add = _mm256_set1_epi32(e->row_add ? e->row_add[m] : 0);
        __m256i zw = _mm256_set1_epi32(e->row_zw ? e->row_zw[m] : 0);
        __m256d sc = _mm256_set1_pd(e->scale[m]);
        for (int j = 0; j < full; j += 8) {
            __m256i a = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(c + r * IL_QTILE_LD + j)), add);
            if (e->row_zw)
                a = _mm256_sub_epi32(a, _mm256_mullo_epi32(zw, _mm256_loadu_si256((const __m256i *)(e->colsum + j0 + j))));
            __m256d d0 = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(a)), sc);
            __m256d d1 = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(a, 1)), sc);
            d0 = _mm256_max_pd(_mm256_min_pd(d0, big), small);
            d1 = _mm256_max_pd(_mm256_min_pd(d1, big), small);
            __m256i q = _mm256_set_m128i(_mm256_cvtpd_epi32(d1), _mm256_cvtpd_epi32(d0));
            q = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(q, zp), lo), hi);
            __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
            __m128i p8 = e->out == IL_QOUT_U8 ? _mm_packus_epi16(p16, p16) : _mm_packs_epi16(p16, p16);
            _mm_storel_epi64((__m128i *)((uint8_t *)e->y + m * e->rs + j0 + j), p8);
        }
    }
    if (full < cols) il_qepi_scalar(c + full, rows, cols - full, m0, j0 + full, e);
}

/* ---------------------------------------------------------------- AVX-VNNI (ymm) */

#define MRV 6

#define DPV(m) A(m, 0) = _mm256_dpbusd_avx_epi32(A(m, 0), x0, b), A(m, 1) = _mm256_dpbusd_avx_epi32(A(m, 1), x1, b)
#define ROWV(m) { __m256i b = _mm256_set1_epi32(wk[m]); DPV(m); }
#define DECL256(m) __m256i A(m, 0) = _mm256_setzero_si256(), A(m, 1) = _mm256_setzero_si256();
#define ST256(m) _mm256_storeu_si256((__m256i *)(c + (m) * IL_QTILE_LD), A(m, 0)); \
                 _mm256_storeu_si256((__m256i *)(c + (m) * IL_QTILE_LD + 8), A(m, 1));
#define EACH6(F) F(0) F(1) F(2) F(3) F(4) F(5)
#define EACH4(F) F(0) F(1) F(2) F(3)

T256V static void ukrvnni(int64_t k4n, const int32_t *w, const int32_t *wb, const uint8_t *x, int64_t sb, int nv,
                          int32_t *c) {
    (void)wb, (void)sb, (void)nv; /* one strip: two ymm of 8 columns */
    EACH6(DECL256)
    for (int64_t k4 = 0; k4 < k4n; k4++) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(x + k4 * 64));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + k4 * 64 + 32));
        const int32_t *wk = w + k4 * MRV;
        EACH6(ROWV)
    }
    EACH6(ST256)
}

const il_qisa_impl il_qisa_impl_avxvnni = {MRV, 1, ukrvnni, epi256};

/* ---------------------------------------------------------------- AVX2 */

#define MR2 4

/* acc += the 4-byte dot products of x (u8) and b (s8), exact while |b| <= 64 per byte */
T256 INLINE __m256i dot4(__m256i acc, __m256i x, __m256i b, __m256i ones) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, b), ones));
}

#define DP2(m, w) { __m256i b = _mm256_set1_epi32((w)[k4 * MR2 + (m)]); \
                        A(m, 0) = dot4(A(m, 0), x0, b, ones), A(m, 1) = dot4(A(m, 1), x1, b, ones); }
#define ROW2(m) DP2(m, wa)
#define ROW2B(m) DP2(m, wb)

T256 INLINE void ukr2_body(int64_t k4n, const int32_t *wa, const int32_t *wb, const uint8_t *x, int32_t *c,
                           const int split) {
    const __m256i ones = _mm256_set1_epi16(1);
    EACH4(DECL256)
    for (int64_t k4 = 0; k4 < k4n; k4++) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(x + k4 * 64));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + k4 * 64 + 32));
        EACH4(ROW2)
        if (split) { EACH4(ROW2B) }
    }
    EACH4(ST256)
}

T256 static void ukr2(int64_t k4n, const int32_t *wa, const int32_t *wb, const uint8_t *x, int64_t sb, int nv,
                      int32_t *c) {
    (void)sb, (void)nv;
    if (wb) ukr2_body(k4n, wa, wb, x, c, 1);
    else ukr2_body(k4n, wa, NULL, x, c, 0);
}

const il_qisa_impl il_qisa_impl_avx2 = {MR2, 1, ukr2, epi256};
