/*
 * test_qkernels.c - the INT8 kernels (engine/cpu/qgemm*.c, engine/ops/qfused.c, passes/fuse_qdq.c).
 *
 * The GEMM: every instruction-set path this machine runs (forced one by one: c, avx2, avxvnni,
 * avx512vnni) against the plain-C integer reference il_qgemm_naive, bit for bit, on fresh random
 * int8 weights and uint8 activations: odd sizes (M, N, K not multiples of 4, 16 or 64, K = 1),
 * the extreme values (-128 x 255 sums that saturate vpmaddubsw's int16 unless the weights are
 * split), both packings (rows, columns), one and three threads. The epilogue: zero points at
 * both ends of their range, per-row scales, clamps, int8 and uint8 outputs, against the same
 * arithmetic written out in int64 and double -- again bit for bit.
 */
#include <stdlib.h>
#include <string.h>

#include "../engine/cpu/qgemm.h"
#include "op_harness.h"

static int8_t *rand_s8(int64_t n, int lo, int hi) {
    int8_t *p = malloc((size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) p[i] = (int8_t)(lo + (int)op_randint(hi - lo + 1));
    return p;
}

static uint8_t *rand_u8(int64_t n, int lo, int hi) { return (uint8_t *)rand_s8(n, lo, hi); }

/* X (k x n) packed by rows, or from its transpose by columns. */
static uint8_t *pack_x(const uint8_t *x, int64_t k, int64_t n, int by_cols, uint8_t flip, int32_t *colsum) {
    uint8_t *xp = malloc(il_qx_bytes(k, n) + 1);
    if (!by_cols) {
        il_qpack_rows(x, n, k, n, flip, xp, colsum, 0, il_qx_strips(n));
        return xp;
    }
    uint8_t *xt = malloc((size_t)(k * n + 1));
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < n; j++) xt[j * k + i] = x[i * n + j];
    il_qpack_cols(xt, k, k, n, flip, xp, colsum, 0, il_qx_strips(n));
    free(xt);
    return xp;
}

/* One product on one ISA: int32 C exactly the naive one. Returns the number of mismatches. */
static int gemm_case(il_qisa isa, int64_t m, int64_t n, int64_t k, int wlo, int whi, int xlo, int xhi, int by_cols,
                     int threads) {
    int8_t *w = rand_s8(m * k, wlo, whi);
    uint8_t *x = rand_u8(k * n, xlo, xhi);
    int32_t *want = malloc((size_t)(m * n + 1) * 4), *got = malloc((size_t)(m * n + 1) * 4);
    il_qgemm_naive(w, x, m, n, k, want);
    memset(got, 0x5a, (size_t)(m * n + 1) * 4);
    il_qweights pw;
    IL_ASSERT_OK(il_qweights_pack(isa, w, 0, m, k, k, &pw));
    uint8_t *xp = pack_x(x, k, n, by_cols, 0, NULL);
    il_qepi e = {.out = IL_QOUT_S32, .y = got, .rs = n, .cs = 1};
    il_qgemm(&pw, xp, n, &e, threads);
    int bad = 0;
    for (int64_t i = 0; i < m * n; i++) bad += got[i] != want[i];
    if (bad)
        fprintf(stderr, "\n  %s: %lld x %lld x %lld (w [%d,%d], x [%d,%d], %s, %d threads): %d sums differ (seed %llu)\n",
                il_qisa_name(isa), (long long)m, (long long)n, (long long)k, wlo, whi, xlo, xhi, by_cols ? "cols" : "rows",
                threads, bad, (unsigned long long)op_seed());
    il_qweights_free(&pw);
    free(w), free(x), free(want), free(got), free(xp);
    return bad;
}

static void test_gemm_every_isa(void) {
    static const int64_t sizes[][3] = {{1, 1, 1},   {3, 5, 1},    {7, 17, 3},   {8, 48, 4},    {9, 49, 5},
                                       {13, 33, 67}, {64, 100, 147}, {17, 1, 130}, {6, 16, 64},  {5, 47, 259},
                                       {33, 65, 9},  {1, 200, 31}};
    int paths = 0;
    for (int isa = 0; isa < IL_QISA_COUNT; isa++) {
        if (!il_qisa_available(isa)) {
            printf("\n  qgemm path %s: not on this CPU, skipped", il_qisa_name(isa));
            continue;
        }
        paths++;
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            const int64_t *s = sizes[i];
            CU_ASSERT_EQUAL(gemm_case(isa, s[0], s[1], s[2], -128, 127, 0, 255, (int)(i & 1), i % 3 ? 1 : 3), 0);
        }
        /* random shapes */
        for (int r = 0; r < 6; r++)
            CU_ASSERT_EQUAL(gemm_case(isa, 1 + op_randint(40), 1 + op_randint(90), 1 + op_randint(300), -128, 127, 0,
                                      255, r & 1, 1 + (r % 3)), 0);
        /* the extremes: every product -128 x 255 or 127 x 255, sums far past int16 */
        CU_ASSERT_EQUAL(gemm_case(isa, 9, 35, 1031, -128, -128, 255, 255, 0, 2), 0);
        CU_ASSERT_EQUAL(gemm_case(isa, 9, 35, 1031, 127, 127, 255, 255, 1, 2), 0);
        /* 7-bit weights (avx2's one-pass case) and weights just outside it */
        CU_ASSERT_EQUAL(gemm_case(isa, 11, 21, 77, -64, 64, 0, 255, 0, 1), 0);
        CU_ASSERT_EQUAL(gemm_case(isa, 11, 21, 77, -65, 65, 0, 255, 0, 1), 0);
    }
    CU_ASSERT_TRUE(paths >= 1);
}

/* The epilogue on one ISA: y = clamp(rint((sum (x - zx)(w - zw[m]) + b[m]) * scale[m]) + zy),
 * int8 activations flipped to uint8 and uint8 weights seen as int8, as the kernels do. */
static void requant_case(il_qisa isa, int64_t m, int64_t n, int64_t k, int x_s8, int w_u8, int zx, int zw_max,
                         il_qout out, int zy, int lo, int hi) {
    uint8_t *x = rand_u8(k * n, 0, 255), *w = rand_u8(m * k, 0, 255);
    int32_t *zw = malloc((size_t)m * 4), *b = malloc((size_t)m * 4);
    double *scale = malloc((size_t)m * sizeof(double));
    for (int64_t i = 0; i < m; i++) {
        zw[i] = zw_max ? (int32_t)op_randint(zw_max + 1) * (op_randint(2) ? 1 : -1) : 0;
        if (w_u8) zw[i] = zw_max ? (int32_t)op_randint(256) : 128;
        b[i] = (int32_t)op_randint(20001) - 10000;
        scale[i] = (0.5 + il_rand_uniform(op_rng())) * 1e-3;
    }
    /* the arithmetic written out */
    uint8_t *want = malloc((size_t)(m * n + 1)), *got = malloc((size_t)(m * n + 1));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t acc = b[i];
            for (int64_t kk = 0; kk < k; kk++) {
                int xv = x_s8 ? (int8_t)x[kk * n + j] : x[kk * n + j];
                int wv = w_u8 ? w[i * k + kk] : (int8_t)w[i * k + kk];
                acc += (int64_t)(xv - zx) * (wv - zw[i]);
            }
            double v = rint((double)acc * scale[i]) + zy;
            v = v < lo ? lo : v > hi ? hi : v;
            want[i * n + j] = out == IL_QOUT_U8 ? (uint8_t)v : (uint8_t)(int8_t)v;
        }
    /* as the kernels set it up */
    il_qweights pw;
    IL_ASSERT_OK(il_qweights_pack(isa, w, w_u8, m, k, k, &pw));
    int zx_u = x_s8 ? zx + 128 : zx;
    int32_t *row_add = malloc((size_t)m * 4), *row_zw = malloc((size_t)m * 4), *colsum = malloc((size_t)(n + 1) * 4);
    int any_zw = 0;
    for (int64_t i = 0; i < m; i++) {
        int zwi = w_u8 ? zw[i] - 128 : zw[i];
        row_zw[i] = zwi;
        any_zw |= zwi != 0;
        row_add[i] = b[i] - zx_u * pw.rowsum[i] + (int32_t)k * zx_u * zwi;
    }
    uint8_t *xp = pack_x(x, k, n, 0, x_s8 ? 0x80 : 0, colsum);
    il_qepi e = {.out = out, .row_add = row_add, .row_zw = any_zw ? row_zw : NULL, .colsum = colsum, .scale = scale,
                 .zp = zy, .lo = lo, .hi = hi, .y = got, .rs = n, .cs = 1};
    il_qgemm(&pw, xp, n, &e, 2);
    int bad = 0;
    for (int64_t i = 0; i < m * n; i++) bad += got[i] != want[i];
    if (bad)
        fprintf(stderr, "\n  %s requant %lldx%lldx%lld x_s8 %d w_u8 %d zx %d zw<=%d zy %d [%d,%d]: %d differ (seed %llu)\n",
                il_qisa_name(isa), (long long)m, (long long)n, (long long)k, x_s8, w_u8, zx, zw_max, zy, lo, hi, bad,
                (unsigned long long)op_seed());
    CU_ASSERT_EQUAL(bad, 0);
    il_qweights_free(&pw);
    free(x), free(w), free(zw), free(b), free(scale), free(want), free(got), free(row_add), free(row_zw), free(colsum);
    free(xp);
}

static void test_requant_every_isa(void) {
    for (int isa = 0; isa < IL_QISA_COUNT; isa++) {
        if (!il_qisa_available(isa)) continue;
        requant_case(isa, 13, 37, 75, 0, 0, 0, 0, IL_QOUT_U8, 0, 0, 255);      /* zero points 0 */
        requant_case(isa, 13, 37, 75, 0, 0, 255, 0, IL_QOUT_U8, 255, 0, 255);  /* at the top */
        requant_case(isa, 8, 50, 33, 0, 0, 128, 0, IL_QOUT_U8, 7, 7, 255);     /* a folded Relu */
        requant_case(isa, 9, 20, 10, 1, 0, -128, 0, IL_QOUT_S8, -128, -128, 127); /* int8 activations */
        requant_case(isa, 9, 20, 10, 1, 0, 127, 0, IL_QOUT_S8, 127, -100, 90);
        requant_case(isa, 7, 19, 41, 0, 0, 3, 127, IL_QOUT_U8, 100, 0, 255);   /* weight zero points */
        requant_case(isa, 7, 19, 41, 0, 1, 17, 1, IL_QOUT_U8, 100, 0, 255);    /* uint8 weights */
        requant_case(isa, 7, 19, 41, 0, 1, 17, 0, IL_QOUT_U8, 100, 0, 255);    /* uint8 weights, zero point 128 */
        int xs8 = (int)op_randint(2);
        requant_case(isa, 1 + op_randint(30), 1 + op_randint(70), 1 + op_randint(200), xs8, 0,
                     (int)op_randint(256) - 128 * xs8, 0, IL_QOUT_U8, (int)op_randint(256), 0, 255);
    }
}

IL_SUITE("qkernels", {"int8 gemm: every isa bit-exact vs the C reference", test_gemm_every_isa},
         {"int8 gemm: requantization epilogue, every isa", test_requant_every_isa})
