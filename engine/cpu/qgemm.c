/*
 * qgemm.c - the INT8 GEMM (qgemm.h): which instruction set runs (CPUID), packing of weights and
 * activations, the driver that walks the product tile by tile over threads, and the portable C
 * path with its scalar epilogue. The vector micro-kernels live in qgemm_x86.c.
 */
#include "qgemm.h"

#include <cpuid.h>
#include <emmintrin.h>

/* ---------------------------------------------------------------- which ISA */

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int detect(il_qisa isa) {
    unsigned a, b, c, d;
    if (isa == IL_QISA_C) return 1;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; /* OSXSAVE */
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 6) != 6) return 0; /* the OS saves SSE and AVX state */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    switch (isa) {
    case IL_QISA_AVX2: return avx2;
    case IL_QISA_AVXVNNI: {
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        return avx2 && ((a1 >> 4) & 1);
    }
    case IL_QISA_AVX512VNNI:
        /* avx512f, bw, vl and vnni, and the OS saves the opmask and zmm state */
        return avx2 && ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1) && ((c >> 11) & 1) &&
               (xcr0 & 0xe0) == 0xe0;
    default: return 0;
    }
}

const char *il_qisa_name(il_qisa isa) {
    static const char *const names[] = {"c", "avx2", "avxvnni", "avx512vnni"};
    return isa >= 0 && isa < IL_QISA_COUNT ? names[isa] : "?";
}

int il_qisa_available(il_qisa isa) {
    static int known[IL_QISA_COUNT], have[IL_QISA_COUNT];
    if (isa < 0 || isa >= IL_QISA_COUNT) return 0;
    if (!known[isa]) {
        have[isa] = detect(isa);
        known[isa] = 1;
    }
    return have[isa];
}

static int forced = -1;

void il_qisa_force(int isa) { forced = isa >= 0 && isa < IL_QISA_COUNT && il_qisa_available(isa) ? isa : -1; }

il_qisa il_qisa_active(void) {
    if (forced >= 0) return (il_qisa)forced;
    const char *env = getenv("IL_QISA");
    for (int i = IL_QISA_COUNT - 1; env && i >= 0; i--)
        if (!strcmp(env, il_qisa_name(i)) && il_qisa_available(i)) return (il_qisa)i;
    for (int i = IL_QISA_COUNT - 1; i > 0; i--)
        if (il_qisa_available(i)) return (il_qisa)i;
    return IL_QISA_C;
}

static const il_qisa_impl *impl_of(il_qisa isa) {
    switch (isa) {
    case IL_QISA_AVX2: return &il_qisa_impl_avx2;
    case IL_QISA_AVXVNNI: return &il_qisa_impl_avxvnni;
    case IL_QISA_AVX512VNNI: return &il_qisa_impl_avx512vnni;
    default: return &il_qisa_impl_c;
    }
}

/* ---------------------------------------------------------------- packing */

static int32_t word4(const int8_t *b) { /* 4 bytes as one little-endian word */
    int32_t v;
    memcpy(&v, b, 4);
    return v;
}

il_status il_qweights_pack(il_qisa isa, const void *w, int w_is_u8, int64_t m, int64_t k, int64_t ldw,
                           il_qweights *out) {
    const il_qisa_impl *im = impl_of(isa);
    memset(out, 0, sizeof *out);
    out->isa = isa, out->m = m, out->k = k, out->k4 = il_qx_k4(k), out->mr = im->mr;
    int64_t panels = (m + im->mr - 1) / im->mr, words = panels * out->k4 * im->mr;
    out->wa = calloc((size_t)(words ? words : 1), sizeof(int32_t));
    out->rowsum = calloc((size_t)(m ? m : 1), sizeof(int32_t));
    int split = 0;
    if (isa == IL_QISA_AVX2) {
        out->wb = calloc((size_t)(words ? words : 1), sizeof(int32_t));
        if (!out->wb) goto oom;
    }
    if (!out->wa || !out->rowsum) goto oom;
    for (int64_t r = 0; r < m; r++) {
        const uint8_t *row = (const uint8_t *)w + r * ldw;
        int64_t p = r / im->mr, mi = r % im->mr, sum = 0;
        for (int64_t k4 = 0; k4 < out->k4; k4++) {
            int8_t a[4] = {0}, b[4] = {0};
            for (int j = 0; j < 4 && 4 * k4 + j < k; j++) {
                int v = w_is_u8 ? (int)row[4 * k4 + j] - 128 : (int)(int8_t)row[4 * k4 + j];
                sum += v;
                if (out->wb) {
                    a[j] = (int8_t)(v / 2); /* toward 0: both halves within [-64, 64] */
                    b[j] = (int8_t)(v - v / 2);
                    split |= v < -64 || v > 64;
                } else {
                    a[j] = (int8_t)v;
                }
            }
            int64_t at = (p * out->k4 + k4) * im->mr + mi;
            out->wa[at] = word4(a);
            if (out->wb) out->wb[at] = word4(b);
        }
        out->rowsum[r] = (int32_t)sum;
    }
    if (out->wb && !split) { /* 7-bit weights: one vpmaddubsw pass on the unsplit weights */
        for (int64_t i = 0; i < words; i++) {
            int8_t a[4], b[4], s[4];
            memcpy(a, &out->wa[i], 4);
            memcpy(b, &out->wb[i], 4);
            for (int j = 0; j < 4; j++) s[j] = (int8_t)(a[j] + b[j]);
            out->wa[i] = word4(s);
        }
        free(out->wb);
        out->wb = NULL;
    }
    return IL_OK;
oom:
    il_qweights_free(out);
    return il_error(IL_ERR_OOM, "out of memory packing %lld x %lld int8 weights", (long long)m, (long long)k);
}

void il_qweights_free(il_qweights *w) {
    free(w->wa);
    free(w->wb);
    free(w->rowsum);
    memset(w, 0, sizeof *w);
}

/* Four rows of 16 bytes interleaved into 64: column j's 4 bytes at 4j. */
static void interleave4(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2, const uint8_t *r3, __m128i flip,
                        uint8_t *dst) {
    __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)r0), flip);
    __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)r1), flip);
    __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)r2), flip);
    __m128i d = _mm_xor_si128(_mm_loadu_si128((const __m128i *)r3), flip);
    __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
    __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
    _mm_storeu_si128((__m128i *)dst, _mm_unpacklo_epi16(ab0, cd0));
    _mm_storeu_si128((__m128i *)(dst + 16), _mm_unpackhi_epi16(ab0, cd0));
    _mm_storeu_si128((__m128i *)(dst + 32), _mm_unpacklo_epi16(ab1, cd1));
    _mm_storeu_si128((__m128i *)(dst + 48), _mm_unpackhi_epi16(ab1, cd1));
}

void il_qpack_rows(const uint8_t *x, int64_t ldx, int64_t k, int64_t n, uint8_t flip, uint8_t *dst, int32_t *colsum,
                   int64_t s0, int64_t s1) {
    static const uint8_t zero[IL_QSTRIP];
    int64_t k4n = il_qx_k4(k);
    __m128i fl = _mm_set1_epi8((char)flip);
    for (int64_t s = s0; s < s1; s++) {
        int64_t j0 = s * IL_QSTRIP, nj = n - j0 < IL_QSTRIP ? n - j0 : IL_QSTRIP;
        uint8_t *d = dst + s * k4n * 64;
        uint8_t tail[4][IL_QSTRIP];
        for (int64_t k4 = 0; k4 < k4n; k4++) {
            const uint8_t *r[4];
            for (int i = 0; i < 4; i++) {
                int64_t kk = 4 * k4 + i;
                if (kk >= k) r[i] = zero; /* any value: the weights there are 0 */
                else if (nj == IL_QSTRIP) r[i] = x + kk * ldx + j0;
                else {
                    memset(tail[i], 0, IL_QSTRIP);
                    memcpy(tail[i], x + kk * ldx + j0, (size_t)nj);
                    r[i] = tail[i];
                }
            }
            interleave4(r[0], r[1], r[2], r[3], fl, d + k4 * 64);
        }
        if (colsum)
            for (int64_t j = 0; j < nj; j++) {
                int32_t sum = 0;
                for (int64_t kk = 0; kk < k; kk++) sum += (uint8_t)(x[kk * ldx + j0 + j] ^ flip);
                colsum[j0 + j] = sum;
            }
    }
}

void il_qpack_cols(const uint8_t *x, int64_t ldx, int64_t k, int64_t n, uint8_t flip, uint8_t *dst, int32_t *colsum,
                   int64_t s0, int64_t s1) {
    int64_t k4n = il_qx_k4(k), kfull = k / 4;
    for (int64_t s = s0; s < s1; s++) {
        int64_t j0 = s * IL_QSTRIP, nj = n - j0 < IL_QSTRIP ? n - j0 : IL_QSTRIP;
        uint8_t *d = dst + s * k4n * 64;
        if (nj < IL_QSTRIP) memset(d, 0, (size_t)(k4n * 64));
        for (int64_t j = 0; j < nj; j++) {
            const uint8_t *col = x + (j0 + j) * ldx;
            int32_t sum = 0;
            for (int64_t k4 = 0; k4 < kfull; k4++) {
                uint32_t v;
                memcpy(&v, col + 4 * k4, 4);
                v ^= flip * 0x01010101u;
                memcpy(d + k4 * 64 + 4 * j, &v, 4);
            }
            for (int64_t kk = 4 * kfull; kk < 4 * k4n; kk++)
                d[(kk / 4) * 64 + 4 * j + kk % 4] = kk < k ? (uint8_t)(col[kk] ^ flip) : 0;
            if (colsum) {
                for (int64_t kk = 0; kk < k; kk++) sum += (uint8_t)(col[kk] ^ flip);
                colsum[j0 + j] = sum;
            }
        }
    }
}

/* ---------------------------------------------------------------- the portable path */

#define C_MR 4

static void ukr_c(int64_t k4n, const int32_t *wa, const int32_t *wb, const uint8_t *x, int64_t sb, int nv,
                  int32_t *c) {
    (void)wb, (void)sb, (void)nv; /* one strip per tile, never split */
    int32_t acc[C_MR][IL_QSTRIP] = {{0}};
    for (int64_t k4 = 0; k4 < k4n; k4++) {
        const uint8_t *xk = x + k4 * 64;
        for (int m = 0; m < C_MR; m++) {
            int8_t w[4];
            memcpy(w, &wa[k4 * C_MR + m], 4);
            for (int j = 0; j < IL_QSTRIP; j++)
                acc[m][j] += xk[4 * j] * w[0] + xk[4 * j + 1] * w[1] + xk[4 * j + 2] * w[2] + xk[4 * j + 3] * w[3];
        }
    }
    for (int m = 0; m < C_MR; m++) memcpy(c + m * IL_QTILE_LD, acc[m], sizeof acc[m]);
}

void il_qepi_scalar(const int32_t *c, int rows, int cols, int64_t m0, int64_t j0, const il_qepi *e) {
    for (int r = 0; r < rows; r++) {
        int64_t m = m0 + r;
        int64_t add = e->row_add ? e->row_add[m] : 0, zw = e->row_zw ? e->row_zw[m] : 0;
        for (int j = 0; j < cols; j++) {
            /* int32 wrap-around as the vector paths (sums past 2^31 are refused before this) */
            int32_t acc = (int32_t)(uint32_t)((int64_t)c[r * IL_QTILE_LD + j] + add -
                                              (zw ? zw * e->colsum[j0 + j] : 0));
            int64_t at = m * e->rs + (j0 + j) * e->cs;
            if (e->out == IL_QOUT_S32) {
                ((int32_t *)e->y)[at] = acc;
                continue;
            }
            if (e->out == IL_QOUT_F32) {
                float f = (float)acc * e->fscale[m];
                ((float *)e->y)[at] = e->fbias ? f + e->fbias[m] : f;
                continue;
            }
            double v = rint((double)acc * e->scale[m]) + e->zp;
            v = v < e->lo ? e->lo : v > e->hi ? e->hi : v;
            if (e->out == IL_QOUT_U8) ((uint8_t *)e->y)[at] = (uint8_t)v;
            else ((int8_t *)e->y)[at] = (int8_t)v;
        }
    }
}

const il_qisa_impl il_qisa_impl_c = {C_MR, 1, ukr_c, il_qepi_scalar};

/* ---------------------------------------------------------------- kernel helpers */

int il_q_const_or_absent(const il_kctx *c, int i) {
    if (i < 0 || !il_in(c, i)) return 1;
    return ((c->const_mask >> i) & 1) && c->in[i]->data && il_shape_known(c->in[i]);
}

int64_t il_q_numel(const il_kctx *c, int i) { return i >= 0 && il_in(c, i) ? il_tensor_numel(c->in[i]) : 1; }

int64_t il_q_int_at(const il_kctx *c, int i, int64_t at) {
    if (i < 0 || !il_in(c, i)) return 0;
    return il_int_at(c->in[i], il_tensor_numel(c->in[i]) == 1 ? 0 : at);
}

double il_q_get_at(const il_kctx *c, int i, int64_t at) {
    if (i < 0 || !il_in(c, i)) return 1;
    return il_tensor_get(c->in[i], il_tensor_numel(c->in[i]) == 1 ? 0 : at);
}

/* ---------------------------------------------------------------- driver */

void il_qgemm(const il_qweights *w, const uint8_t *xp, int64_t n, const il_qepi *e, int threads) {
    const il_qisa_impl *im = impl_of(w->isa);
    int64_t panels = (w->m + im->mr - 1) / im->mr, strips = il_qx_strips(n);
    int64_t groups = (strips + im->nv - 1) / im->nv, sb = w->k4 * 64, tasks = groups * panels;
    if (threads < 1) threads = 1;
    /* strip-group major: consecutive tasks reuse one packed X block from cache against every
     * weight panel; handed out in chunks of a few, so a thread that loses its core on a shared
     * machine does not hold back a fixed share */
    int64_t chunk = tasks / (8 * (int64_t)threads) > 1 ? tasks / (8 * (int64_t)threads) : 1;
#pragma omp parallel for num_threads(threads) if (threads > 1 && tasks > 1) schedule(dynamic, chunk)
    for (int64_t t = 0; t < tasks; t++) {
        int32_t tile[8 * IL_QTILE_LD] __attribute__((aligned(64)));
        int64_t g = t / panels, p = t % panels, s = g * im->nv;
        int nvu = (int)(strips - s < im->nv ? strips - s : im->nv);
        int64_t off = p * w->k4 * im->mr;
        im->ukr(w->k4, w->wa + off, w->wb ? w->wb + off : NULL, xp + s * sb, sb, nvu, tile);
        int64_t m0 = p * im->mr, j0 = s * IL_QSTRIP;
        int rows = (int)(w->m - m0 < im->mr ? w->m - m0 : im->mr);
        int cols = (int)(n - j0 < IL_QSTRIP * nvu ? n - j0 : IL_QSTRIP * nvu);
        im->epi(tile, rows, cols, m0, j0, e);
    }
}

void il_qgemm_naive(const int8_t *w, const uint8_t *x, int64_t m, int64_t n, int64_t k, int32_t *c) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int32_t acc = 0;
            for (int64_t kk = 0; kk < k; kk++) acc += (int32_t)w[i * k + kk] * (int32_t)x[kk * n + j];
            c[i * n + j] = acc;
        }
}
