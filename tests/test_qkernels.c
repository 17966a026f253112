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

/* ---------------------------------------------------------------- the ops' kernels vs their references */

static il_tensor *scalar_t(il_dtype dt, double v) {
    il_tensor *t = il_tensor_new(dt, 0, NULL);
    il_tensor_set(t, 0, v);
    return t;
}

/* Scale and zero point for per-channel parameters: n values (n == 1: a scalar tensor). */
static il_tensor *per(il_dtype dt, int64_t n, double lo, double hi) {
    il_tensor *t = n == 1 ? il_tensor_new(dt, 0, NULL) : il_tensor_new(dt, 1, D(n));
    for (int64_t i = 0; i < n; i++)
        il_tensor_set(t, i, dt == IL_F32 ? lo + (hi - lo) * il_rand_uniform(op_rng()) : lo + op_randint((int64_t)(hi - lo) + 1));
    return t;
}

typedef struct {
    int64_t n, c, h, w, m, kh, kw, stride, pad, dil, group;
    int x_s8, w_u8, y_s8, per_channel, bias, zw;
    const char *act; /* QConv only */
} conv_cfg;

/* A QLinearConv (or QConv with an activation, or ConvInteger) case on random data whose output
 * scale spreads the results over the 8-bit range (some saturate). */
static op_case *qconv_case(const conv_cfg *f, const char *op) {
    int convint = !strcmp(op, "ConvInteger"), one_d = f->h == 0;
    op_case *o = op_new(!strcmp(op, "QConv") ? "ai.inferlab:QConv" : op, 13, convint ? 4 : 9, 1);
    int64_t cg = f->c / f->group, K = cg * f->kh * f->kw, nch = f->per_channel ? f->m : 1;
    il_dtype xdt = f->x_s8 ? IL_I8 : IL_U8, wdt = f->w_u8 ? IL_U8 : IL_I8, ydt = f->y_s8 ? IL_I8 : IL_U8;
    il_tensor *x = one_d ? rnd(xdt, 3, D(f->n, f->c, f->w), f->x_s8 ? -128 : 0, f->x_s8 ? 127 : 255)
                         : rnd(xdt, 4, D(f->n, f->c, f->h, f->w), f->x_s8 ? -128 : 0, f->x_s8 ? 127 : 255);
    il_tensor *w = one_d ? rnd(wdt, 3, D(f->m, cg, f->kw), f->w_u8 ? 0 : -128, f->w_u8 ? 255 : 127)
                         : rnd(wdt, 4, D(f->m, cg, f->kh, f->kw), f->w_u8 ? 0 : -128, f->w_u8 ? 255 : 127);
    double zx = f->x_s8 ? op_randint(40) - 20 : op_randint(256);
    int wx = convint ? 1 : 3;
    op_in(o, 0, x);
    op_in(o, wx, w);
    op_in(o, 2, scalar_t(xdt, zx));
    il_tensor *zw = f->zw ? per(wdt, nch, f->w_u8 ? 100 : -5, f->w_u8 ? 156 : 5) : per(wdt, nch, f->w_u8 ? 128 : 0, f->w_u8 ? 128 : 0);
    op_in(o, convint ? 3 : 5, zw);
    if (!convint) {
        double sx = 0.02, sw = 0.01, sy = sx * sw * sqrt((double)K) * 60;
        op_in(o, 1, scalar_t(IL_F32, sx));
        op_in(o, 4, per(IL_F32, nch, sw * 0.5, sw * 1.5));
        op_in(o, 6, scalar_t(IL_F32, sy));
        op_in(o, 7, scalar_t(ydt, f->y_s8 ? op_randint(20) - 10 : 100 + op_randint(50)));
        if (f->bias) op_in(o, 8, rnd(IL_I32, 1, D(f->m), -3000, 3000));
    }
    SETI(o, "group", f->group);
    if (one_d) {
        SETIS(o, "strides", f->stride), SETIS(o, "dilations", f->dil);
        il_node_set_ints(o->g, o->k, "pads", 2, D(f->pad, f->pad));
    } else {
        il_node_set_ints(o->g, o->k, "strides", 2, D(f->stride, f->stride));
        il_node_set_ints(o->g, o->k, "dilations", 2, D(f->dil, f->dil));
        il_node_set_ints(o->g, o->k, "pads", 4, D(f->pad, f->pad, f->pad, f->pad));
    }
    if (f->act && !strcmp(f->act, "Clip")) {
        SETS(o, "activation", "Clip");
        il_node_set_floats(o->g, o->k, "activation_params", 2, (float[]){-0.5f, 1.5f});
    } else if (f->act) {
        SETS(o, "activation", f->act);
    }
    o->threads = 1 + (int)op_randint(3);
    snprintf(o->label, sizeof o->label, "%s %lldx%lldx%lldx%lld m %lld k %lldx%lld s%lld p%lld d%lld g%lld", op,
             (long long)f->n, (long long)f->c, (long long)f->h, (long long)f->w, (long long)f->m, (long long)f->kh,
             (long long)f->kw, (long long)f->stride, (long long)f->pad, (long long)f->dil, (long long)f->group);
    return o;
}

static const conv_cfg convs[] = {
    /* n  c   h   w   m  kh kw s  p  d  g  xs8 wu8 ys8 pc bias zw act */
    {1, 16, 9, 11, 24, 3, 3, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, NULL},
    {2, 8, 7, 7, 10, 1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, NULL},     /* pointwise */
    {3, 5, 9, 8, 7, 1, 1, 2, 0, 1, 1, 0, 0, 1, 0, 0, 0, NULL},      /* strided 1x1, int8 out */
    {1, 3, 19, 17, 9, 7, 7, 2, 3, 1, 1, 0, 0, 0, 1, 1, 0, NULL},    /* a stem */
    {2, 12, 6, 6, 12, 3, 3, 1, 1, 1, 3, 1, 0, 0, 1, 0, 0, NULL},    /* groups, int8 activations */
    {1, 6, 5, 5, 6, 3, 3, 1, 1, 1, 6, 0, 0, 0, 0, 1, 0, NULL},      /* depthwise */
    {1, 4, 0, 23, 5, 1, 5, 2, 2, 2, 1, 0, 0, 0, 1, 1, 0, NULL},     /* 1-D, dilated */
    {1, 9, 8, 8, 17, 3, 3, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, NULL},     /* uint8 weights with zero points */
    {2, 7, 6, 5, 11, 2, 3, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, NULL},     /* int8 weights with zero points */
    {1, 64, 5, 5, 33, 3, 3, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, NULL},    /* K = 576 */
};

/* The qgemm kernel against each op's reference, bit for bit (op_run), on every ISA. */
static void test_conv_ops_every_isa(void) {
    static const char *const acts[] = {NULL, "Relu", "Clip"};
    for (int isa = 0; isa < IL_QISA_COUNT; isa++) {
        if (!il_qisa_available(isa)) continue;
        il_qisa_force(isa);
        for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) {
            op_case *o = qconv_case(&convs[i], "QLinearConv");
            RUN_OK(o);
            op_free(o);
            conv_cfg f = convs[i];
            f.act = acts[i % 3];
            o = qconv_case(&f, "QConv");
            RUN_OK(o);
            op_free(o);
            o = qconv_case(&convs[i], "ConvInteger");
            RUN_OK(o);
            op_free(o);
        }
    }
    il_qisa_force(-1);
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "QLinearConv", "cpu", "qgemm")));
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("ai.inferlab", "QConv", "cpu", "qgemm")));
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "ConvInteger", "cpu", "qgemm")));
}

/* QLinearMatMul / MatMulInteger / QMatMul: a[..., M, K] x b[K, N]. */
static op_case *qmm_case(const char *op, int rank, const int64_t *adims, int64_t n, int a_s8, int b_u8, int per_col,
                         int bias, int zb, const char *act) {
    int mmint = !strcmp(op, "MatMulInteger"), qmm = !strcmp(op, "QMatMul");
    op_case *o = op_new(qmm ? "ai.inferlab:QMatMul" : op, 13, mmint ? 4 : qmm ? 9 : 8, 1);
    int64_t k = adims[rank - 1], nch = per_col ? n : 1;
    il_dtype adt = a_s8 ? IL_I8 : IL_U8, bdt = b_u8 ? IL_U8 : IL_I8;
    op_in(o, 0, rnd(adt, rank, adims, a_s8 ? -128 : 0, a_s8 ? 127 : 255));
    op_in(o, mmint ? 1 : 3, rnd(bdt, 2, D(k, n), b_u8 ? 0 : -128, b_u8 ? 255 : 127));
    op_in(o, 2, scalar_t(adt, a_s8 ? op_randint(30) - 15 : op_randint(256)));
    op_in(o, mmint ? 3 : 5, zb ? per(bdt, nch, b_u8 ? 90 : -9, b_u8 ? 160 : 9) : per(bdt, nch, b_u8 ? 128 : 0, b_u8 ? 128 : 0));
    if (!mmint) {
        double sa = 0.03, sb = 0.02;
        op_in(o, 1, scalar_t(IL_F32, sa));
        op_in(o, 4, qmm ? per(IL_F32, nch, sb * 0.5, sb * 1.5) : scalar_t(IL_F32, sb));
        op_in(o, 6, scalar_t(IL_F32, sa * sb * sqrt((double)k) * 60));
        op_in(o, 7, scalar_t(IL_U8, 90 + op_randint(60)));
        if (qmm && bias) op_in(o, 8, rnd(IL_I32, 1, D(n), -5000, 5000));
        if (qmm && act) SETS(o, "activation", act);
    }
    o->threads = 1 + (int)op_randint(3);
    snprintf(o->label, sizeof o->label, "%s k %lld n %lld", op, (long long)k, (long long)n);
    return o;
}

static void test_matmul_ops_every_isa(void) {
    for (int isa = 0; isa < IL_QISA_COUNT; isa++) {
        if (!il_qisa_available(isa)) continue;
        il_qisa_force(isa);
        for (int r = 0; r < 6; r++) {
            int64_t m = 1 + op_randint(40), k = 1 + op_randint(150), n = 1 + op_randint(70);
            int a_s8 = r & 1, b_u8 = (r >> 1) & 1, zb = r == 5;
            op_case *o = qmm_case("QLinearMatMul", 2, D(m, k), n, a_s8, b_u8, 0, 0, zb, NULL);
            RUN_OK(o);
            op_free(o);
            o = qmm_case("MatMulInteger", 3, D(2, m, k), n, a_s8, b_u8, 0, 0, zb, NULL);
            RUN_OK(o);
            op_free(o);
            o = qmm_case("QMatMul", 3, D(3, m, k), n, a_s8, b_u8, r & 1, r != 2, zb, r == 3 ? "Relu" : NULL);
            RUN_OK(o);
            op_free(o);
        }
    }
    il_qisa_force(-1);
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "QLinearMatMul", "cpu", "qgemm")));
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("ai.inferlab", "QMatMul", "cpu", "qgemm")));
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "MatMulInteger", "cpu", "qgemm")));
}

/* com.microsoft QGemm: A [M, K] (transA [K, M]) x B [K, N] (transB [N, K]) + C, times alpha;
 * out 0/1: uint8/int8 output, 2: float scaled by y_scale too, 3: float without y_scale.
 * cshape: C absent, [N], [], [1, N], [M, 1], [M, N] (the last two: the reference only). */
static op_case *qgemm_case(int64_t m, int64_t k, int64_t n, int ta, int tb, int a_s8, int b_u8, int per_col, int cshape,
                           int out) {
    op_case *o = op_new("com.microsoft:QGemm", 13, 9, 1);
    il_dtype adt = a_s8 ? IL_I8 : IL_U8, bdt = b_u8 ? IL_U8 : IL_I8;
    int64_t nch = per_col ? n : 1;
    double alpha = 0.25 + 0.5 * (double)op_randint(4), sa = 0.03, sb = 0.02;
    op_in(o, 0, ta ? rnd(adt, 2, D(k, m), a_s8 ? -128 : 0, a_s8 ? 127 : 255) : rnd(adt, 2, D(m, k), a_s8 ? -128 : 0, a_s8 ? 127 : 255));
    op_in(o, 3, tb ? rnd(bdt, 2, D(n, k), b_u8 ? 0 : -128, b_u8 ? 255 : 127) : rnd(bdt, 2, D(k, n), b_u8 ? 0 : -128, b_u8 ? 255 : 127));
    op_in(o, 1, scalar_t(IL_F32, sa));
    op_in(o, 2, scalar_t(adt, a_s8 ? op_randint(30) - 15 : op_randint(256)));
    op_in(o, 4, per(IL_F32, nch, sb * 0.5, sb * 1.5));
    op_in(o, 5, per(bdt, nch, b_u8 ? 100 : -9, b_u8 ? 150 : 9));
    static const int crank[] = {0, 1, 0, 2, 2, 2};
    const int64_t cd[6][2] = {{0, 0}, {n, 0}, {0, 0}, {1, n}, {m, 1}, {m, n}};
    if (cshape) op_in(o, 6, rnd(IL_I32, crank[cshape], cd[cshape], -5000, 5000));
    if (out != 3) op_in(o, 7, scalar_t(IL_F32, alpha * sa * sb * sqrt((double)k) * 60));
    if (out < 2) op_in(o, 8, scalar_t(out ? IL_I8 : IL_U8, out ? op_randint(60) - 30 : 90 + op_randint(60)));
    SETI(o, "transA", ta), SETI(o, "transB", tb), SETF(o, "alpha", (float)alpha);
    o->threads = 1 + (int)op_randint(3);
    snprintf(o->label, sizeof o->label, "QGemm m %lld k %lld n %lld ta %d tb %d C %d out %d", (long long)m, (long long)k,
             (long long)n, ta, tb, cshape, out);
    return o;
}

/* The qgemm kernel against QGemm's reference, bit for bit (both compute the output scale in
 * double in one order and round the float output once), on every ISA; and the reference by hand. */
static void test_qgemm_every_isa(void) {
    for (int isa = 0; isa < IL_QISA_COUNT; isa++) {
        if (!il_qisa_available(isa)) continue;
        il_qisa_force(isa);
        for (int r = 0; r < 12; r++) {
            int64_t m = 1 + op_randint(40), k = 1 + op_randint(150), n = 1 + op_randint(70);
            op_case *o = qgemm_case(m, k, n, r & 1, (r >> 1) & 1, r % 3 == 1, r % 5 == 2, r % 3 != 0, r % 6, r % 4);
            RUN_OK(o);
            op_free(o);
        }
    }
    il_qisa_force(-1);
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("com.microsoft", "QGemm", "cpu", "qgemm")));
    /* (2-1)*3 + (4-1)*5 + 10 = 28; 28 * 0.5*0.1*0.2/0.01 = 28 -> 31 with zero point 3; float: 0.28 */
    for (int fl = 0; fl < 2; fl++) {
        op_case *o = op_new("com.microsoft:QGemm", 13, 9, 1);
        op_in(o, 0, tens(IL_U8, 2, D(1, 2), V(2, 4))), op_in(o, 1, scalar_t(IL_F32, 0.1)), op_in(o, 2, scalar_t(IL_U8, 1));
        op_in(o, 3, tens(IL_I8, 2, D(1, 2), V(3, 5))), op_in(o, 4, scalar_t(IL_F32, 0.2)), op_in(o, 5, scalar_t(IL_I8, 0));
        op_in(o, 6, tens(IL_I32, 1, D(1), V(10)));
        if (!fl) op_in(o, 7, scalar_t(IL_F32, 0.01)), op_in(o, 8, scalar_t(IL_U8, 3));
        SETI(o, "transB", 1), SETF(o, "alpha", 0.5f);
        RUN_OK(o);
        if (fl) EXPECT(o, 0, IL_F32, 2, D(1, 1), V((float)(28 * (0.5 * (double)0.1f * (double)0.2f))));
        else EXPECT(o, 0, IL_U8, 2, D(1, 1), V(31));
        op_free(o);
    }
}

/* A float activation for the dynamic ops: r % 4 picks values across 0, all positive, all
 * negative, all zero (no range: scale 0); r == 5 plants NaNs and values on exact ties. */
static il_tensor *dyn_input(int r, int rank, const int64_t *dims) {
    static const double lo[] = {-3, 0.5, -5, 0}, hi[] = {3, 5, -0.5, 0};
    il_tensor *x = rnd(IL_F32, rank, dims, lo[r % 4], hi[r % 4]);
    float *d = x->data;
    for (int64_t i = 0, n = il_tensor_numel(x); r == 5 && i < n; i += 7) d[i] = i % 2 ? NAN : (float)(i % 5) * 0.5f;
    return x;
}

/* DynamicQuantizeLinear's "fast" kernel (vector range and quantization) and the qgemm kernel of
 * com.microsoft DynamicQuantizeMatMul against their references, bit for bit, on every ISA:
 * uint8 and int8 B, per column or per tensor, with and without B zero points and bias. */
static void test_dynamic_every_isa(void) {
    for (int isa = 0; isa < IL_QISA_COUNT; isa++) {
        if (!il_qisa_available(isa)) continue;
        il_qisa_force(isa);
        for (int r = 0; r < 8; r++) {
            int64_t m = 1 + op_randint(40), k = 1 + op_randint(150), n = 1 + op_randint(70), nch = r & 1 ? n : 1;
            il_dtype bdt = r & 2 ? IL_U8 : IL_I8;
            op_case *o = op_new("com.microsoft:DynamicQuantizeMatMul", 13, 5, 1);
            op_in(o, 0, dyn_input(r, 3, D(2, m, k)));
            op_in(o, 1, rnd(bdt, 2, D(k, n), bdt == IL_U8 ? 0 : -127, bdt == IL_U8 ? 255 : 127));
            op_in(o, 2, per(IL_F32, nch, 0.01, 0.03));
            if (r != 4) op_in(o, 3, r & 4 ? per(bdt, nch, bdt == IL_U8 ? 100 : -9, bdt == IL_U8 ? 150 : 9) : scalar_t(bdt, bdt == IL_U8 ? 128 : 0));
            if (r % 3) op_in(o, 4, rnd(IL_F32, 1, D(n), -2, 2));
            o->threads = 1 + (int)op_randint(3);
            snprintf(o->label, sizeof o->label, "DynamicQuantizeMatMul m %lld k %lld n %lld r %d", (long long)m, (long long)k,
                     (long long)n, r);
            RUN_OK(o);
            op_free(o);
            o = op_new("DynamicQuantizeLinear", 13, 1, 3);
            op_in(o, 0, dyn_input(r, 2, D(m, 1 + op_randint(300))));
            RUN_OK(o);
            op_free(o);
        }
    }
    il_qisa_force(-1);
    /* past 65536 elements A's range and quantization are split over the threads */
    for (int r = 0; r < 4; r++) {
        op_case *o = op_new("com.microsoft:DynamicQuantizeMatMul", 13, 5, 1);
        op_in(o, 0, dyn_input(r, 3, D(2, 300 + op_randint(40), 130)));
        op_in(o, 1, rnd(IL_I8, 2, D(130, 24), -127, 127));
        op_in(o, 2, per(IL_F32, 24, 0.01, 0.03));
        op_in(o, 4, rnd(IL_F32, 1, D(24), -2, 2));
        o->threads = 2 + r % 2;
        RUN_OK(o);
        op_free(o);
    }
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("com.microsoft", "DynamicQuantizeMatMul", "cpu", "qgemm")));
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "DynamicQuantizeLinear", "cpu", "fast")));
}

/* QAdd / QLinearAdd / QLinearMul: the int8 kernel vs the reference (same shapes), and the
 * reference by hand. */
static void test_eltwise_ops(void) {
    static const char *const ops[] = {"ai.inferlab:QAdd", "com.microsoft:QLinearAdd", "com.microsoft:QLinearMul"};
    for (int isa = 0; isa < IL_QISA_COUNT; isa++) {
        if (!il_qisa_available(isa)) continue;
        il_qisa_force(isa);
        for (int i = 0; i < 3; i++)
            for (int r = 0; r < 3; r++) {
                il_dtype dt = r == 1 ? IL_I8 : IL_U8;
                int64_t n = 1 + op_randint(5000);
                op_case *o = op_new(ops[i], 13, 8, 1);
                op_in(o, 0, rnd(dt, 2, D(n, 3), dt == IL_I8 ? -128 : 0, dt == IL_I8 ? 127 : 255));
                op_in(o, 3, rnd(r == 2 ? IL_I8 : IL_U8, 2, D(n, 3), r == 2 ? -128 : 0, r == 2 ? 127 : 255));
                op_in(o, 1, scalar_t(IL_F32, 0.02)), op_in(o, 4, scalar_t(IL_F32, 0.03));
                op_in(o, 2, scalar_t(dt, 10)), op_in(o, 5, scalar_t(o->in[3]->dtype, r == 2 ? -3 : 128));
                op_in(o, 6, scalar_t(IL_F32, i == 2 ? 0.5 : 0.04)), op_in(o, 7, scalar_t(dt, 5));
                if (i == 0 && r == 0) SETS(o, "activation", "Relu");
                RUN_OK(o);
                op_free(o);
            }
    }
    il_qisa_force(-1);
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("ai.inferlab", "QAdd", "cpu", "int8")));
    /* by hand: (10-2)*0.5 + (4-0)*0.25 = 5 -> 5/0.5 + 3 = 13; Mul: 8*4 * (0.5*0.125/0.5) + 3 = 7 */
    for (int mul = 0; mul < 2; mul++) {
        op_case *o = op_new(mul ? "com.microsoft:QLinearMul" : "com.microsoft:QLinearAdd", 13, 8, 1);
        op_in(o, 0, tens(IL_U8, 1, D(1), V(10))), op_in(o, 1, scalar_t(IL_F32, 0.5)), op_in(o, 2, scalar_t(IL_U8, 2));
        op_in(o, 3, tens(IL_U8, 1, D(1), V(4))), op_in(o, 4, scalar_t(IL_F32, mul ? 0.125 : 0.25));
        op_in(o, 5, scalar_t(IL_U8, 0)), op_in(o, 6, scalar_t(IL_F32, 0.5)), op_in(o, 7, scalar_t(IL_U8, 3));
        RUN_OK(o);
        EXPECT(o, 0, IL_U8, 1, D(1), mul ? V(7) : V(13));
        op_free(o);
    }
}

/* MaxPool over bytes: the int8 kernel vs the reference, with pads, strides and ceil_mode. */
static void test_maxpool_int8(void) {
    for (int r = 0; r < 8; r++) {
        il_dtype dt = r & 1 ? IL_I8 : IL_U8;
        int64_t k = 2 + op_randint(2), s = 1 + op_randint(2), p = op_randint(k);
        op_case *o = op_new("MaxPool", 13, 1, 1);
        op_in(o, 0, rnd(dt, 4, D(2, 3, 5 + op_randint(9), 5 + op_randint(9)), dt == IL_I8 ? -128 : 0, dt == IL_I8 ? 127 : 255));
        il_node_set_ints(o->g, o->k, "kernel_shape", 2, D(k, k));
        il_node_set_ints(o->g, o->k, "strides", 2, D(s, s));
        il_node_set_ints(o->g, o->k, "pads", 4, D(p, p, p, p));
        SETI(o, "ceil_mode", r >> 2);
        RUN_OK(o);
        op_free(o);
    }
    CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "MaxPool", "cpu", "int8")));
}

/* QuantizeLinear per tensor: every kernel (the AVX-512 one included) bit for bit against the
 * reference, on values that round at exact ties (k + 0.5 steps), saturate both ways, are
 * infinite or NaN, and sizes with vector tails; uint8 and int8, zero points at both ends. */
static void test_quantize_linear(void) {
    static const double specials[] = {NAN, INFINITY, -INFINITY, 1e30, -1e30, 0.0, -0.0, 1e-40};
    for (int r = 0; r < 8; r++) {
        int s8 = r & 1;
        int64_t n = 1 + op_randint(300), d[2] = {3, n};
        il_tensor *x = rnd(IL_F32, 2, d, -8, 8);
        float sc = 0.0625f * (float)(1 + op_randint(4)); /* x / sc exact, so k + 0.5 steps are ties */
        for (int64_t i = 0; i < 3 * n; i += 3) ((float *)x->data)[i] = sc * (0.5f + (float)(op_randint(60) - 30));
        for (int i = 0; i < 8 && i < 3 * n; i++) ((float *)x->data)[op_randint(3 * n)] = (float)specials[i];
        op_case *o = op_new("QuantizeLinear", 13, 3, 1);
        op_in(o, 0, x);
        op_in(o, 1, scalar_t(IL_F32, sc));
        op_in(o, 2, scalar_t(s8 ? IL_I8 : IL_U8, s8 ? (r & 2 ? -128 : 127) : (r & 2 ? 0 : 255) - (r & 4 ? 3 : 0)));
        o->threads = 1 + (int)op_randint(3);
        RUN_OK(o);
        op_free(o);
    }
    if (__builtin_cpu_supports("avx512bw"))
        CU_ASSERT_TRUE(op_is_covered(il_kernel_find("", "QuantizeLinear", "cpu", "avx512")));
}

/* Bad nodes: a clear error naming the node, never a crash. */
static void test_errors(void) {
    conv_cfg f = convs[0];
    f.act = "Sigmoid";
    op_case *o = qconv_case(&f, "QConv");
    FAILS(o, IL_ERR_UNSUPPORTED, "Relu and Clip");
    op_free(o);
    o = qmm_case("QMatMul", 2, D(3, 5), 4, 0, 0, 1, 1, 0, NULL);
    op_in(o, 3, rnd(IL_I8, 3, D(1, 5, 4), -5, 5));
    FAILS(o, IL_ERR_SHAPE, "rank 3");
    op_free(o);
    o = qmm_case("QMatMul", 2, D(3, 5), 4, 0, 0, 1, 1, 0, NULL);
    op_in(o, 4, rnd(IL_F32, 1, D(3), 0.1, 0.2)); /* 3 scales for 4 columns */
    FAILS(o, IL_ERR_SHAPE, "one per column");
    op_free(o);
    o = qgemm_case(3, 5, 4, 0, 0, 0, 0, 1, 1, 0);
    op_in(o, 7, NULL); /* a zero point says 8-bit output: of which scale? */
    FAILS(o, IL_ERR_INVALID, "without y_scale");
    op_free(o);
    o = qgemm_case(3, 5, 4, 0, 0, 0, 0, 1, 1, 0);
    op_in(o, 6, rnd(IL_I32, 1, D(3), 0, 9)); /* C [3] against N = 4 */
    FAILS(o, IL_ERR_SHAPE, "broadcast");
    op_free(o);
    o = qgemm_case(3, 5, 4, 0, 1, 0, 0, 1, 1, 0);
    op_in(o, 3, rnd(IL_I8, 2, D(4, 6), -5, 5)); /* transB: [N, K] with K = 6, A has 5 */
    FAILS(o, IL_ERR_SHAPE, "K = 5");
    op_free(o);
    o = op_new("ai.inferlab:QAdd", 13, 8, 1);
    op_in(o, 0, rnd(IL_U8, 1, D(4), 0, 255)), op_in(o, 3, rnd(IL_U8, 1, D(4), 0, 255));
    op_in(o, 1, rnd(IL_F32, 1, D(4), 0.1, 0.2)), op_in(o, 4, scalar_t(IL_F32, 0.1)), op_in(o, 6, scalar_t(IL_F32, 0.1));
    op_in(o, 2, scalar_t(IL_U8, 0)), op_in(o, 5, scalar_t(IL_U8, 0)), op_in(o, 7, scalar_t(IL_U8, 0));
    FAILS(o, IL_ERR_SHAPE, "per tensor");
    op_free(o);
}

/* Dynamic quantization: MatMulInteger whose A zero point is DynamicQuantizeLinear's output, known
 * only at run time. qgemm takes it (completing its column terms per run) and must equal the
 * reference exactly, for uint8 and int8 A, with and without B zero points, on fresh inputs. */
static void test_matmul_runtime_zero_point(void) {
    uint64_t rng = 0x5a5a1234;
    for (int variant = 0; variant < 4; variant++) {
        int a_s8 = variant & 1, with_zb = variant >> 1;
        int64_t k = 37, n = 19, ad[3] = {2, 5, 37}, bd[2] = {37, 19}, zd[1] = {19};
        il_graph *g = il_graph_new("mmint");
        il_graph_set_opset(g, "", 13);
        int a = il_graph_value(g, "a"), za = il_graph_value(g, "za"), y = il_graph_value(g, "y");
        g->values[a].dtype = a_s8 ? IL_I8 : IL_U8, g->values[a].rank = 3;
        memcpy(g->values[a].dims, ad, sizeof ad);
        g->values[za].dtype = a_s8 ? IL_I8 : IL_U8, g->values[za].rank = 0;
        il_graph_add_input(g, a);
        il_graph_add_input(g, za);
        il_tensor *b = il_tensor_new(IL_I8, 2, bd), *zb = il_tensor_new(IL_I8, 1, zd);
        for (int64_t i = 0; i < k * n; i++) ((int8_t *)b->data)[i] = (int8_t)((int)(il_rand_u64(&rng) % 255) - 127);
        for (int64_t j = 0; j < n; j++) ((int8_t *)zb->data)[j] = with_zb ? (int8_t)((int)(il_rand_u64(&rng) % 9) - 4) : 0;
        int in[4] = {a, il_graph_add_constant(g, "b", b), za, il_graph_add_constant(g, "zb", zb)};
        il_graph_add_node(g, "MatMulInteger", "", "mm", 4, in, 1, &y);
        il_graph_add_output(g, y);
        il_tensor *x = il_tensor_new(a_s8 ? IL_I8 : IL_U8, 3, ad), *z = il_tensor_new(a_s8 ? IL_I8 : IL_U8, 0, NULL);
        il_plan_opts fo = {.threads = 2, .kernels = "MatMulInteger=qgemm"}, ro = {.reference = 1};
        il_plan *f, *r;
        IL_ASSERT_OK(il_plan_create(g, &fo, &f));
        IL_ASSERT_OK(il_plan_create(g, &ro, &r));
        CU_ASSERT_STRING_EQUAL(il_plan_kernel(f, 0)->name, "qgemm");
        for (int rep = 0; rep < 3; rep++) { /* another zero point every run */
            for (int64_t i = 0; i < il_tensor_numel(x); i++) ((uint8_t *)x->data)[i] = (uint8_t)il_rand_u64(&rng);
            ((uint8_t *)z->data)[0] = (uint8_t)il_rand_u64(&rng);
            il_tensor *ins[2] = {x, z};
            IL_ASSERT_OK(il_plan_run(f, ins, 2));
            IL_ASSERT_OK(il_plan_run(r, ins, 2));
            const il_tensor *yf = il_plan_output(f, 0), *yr = il_plan_output(r, 0);
            CU_ASSERT_EQUAL(memcmp(yf->data, yr->data, il_tensor_bytes(yr)), 0);
        }
        il_plan_free(f);
        il_plan_free(r);
        il_tensor_free(x);
        il_tensor_free(z);
        il_graph_free(g);
    }
}

IL_SUITE("qkernels", {"int8 gemm: every isa bit-exact vs the C reference", test_gemm_every_isa},
         {"int8 gemm: requantization epilogue, every isa", test_requant_every_isa},
         {"QLinearConv, QConv, ConvInteger: qgemm vs reference, every isa", test_conv_ops_every_isa},
         {"QLinearMatMul, MatMulInteger, QMatMul: qgemm vs reference, every isa", test_matmul_ops_every_isa},
         {"QGemm (com.microsoft): qgemm vs reference bit for bit, every isa; by hand", test_qgemm_every_isa},
         {"DynamicQuantizeLinear fast, DynamicQuantizeMatMul qgemm: vs reference bit for bit, every isa",
          test_dynamic_every_isa},
         {"QAdd, QLinearAdd, QLinearMul: int8 vs reference", test_eltwise_ops},
         {"MaxPool over uint8/int8: int8 vs reference", test_maxpool_int8},
         {"QuantizeLinear per tensor: every kernel bit for bit (ties, saturation, NaN, inf)", test_quantize_linear},
         {"MatMulInteger with a run-time A zero point (dynamic): qgemm = reference", test_matmul_runtime_zero_point},
         {"bad nodes: errors, not crashes", test_errors})
