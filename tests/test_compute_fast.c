/*
 * test_compute_fast.c - every fast compute kernel against its reference on fresh random inputs,
 * over many random configurations (shapes, strides, pads, dilations, groups, auto_pad,
 * ceil_mode, transposes, broadcasting, einsum patterns); float64 against float32; empty
 * batches. Tolerance rtol 1e-4, atol 1e-5 (float32 BLAS against double accumulation). The
 * configurations and the inputs come from the harness's generator (tests/op_harness.h), whose
 * seed is printed; IL_TEST_SEED repeats a run.
 */
#include "op_harness.h"

/* Opset 17; float outputs within rtol 1e-4 and atol 1e-5 (float32 BLAS against double sums). */
static op_case *node(const char *op, int n_in, int n_out) { return op_tol(op_new(op, 17, n_in, n_out), 1e-4, 1e-5); }

static op_case *einsum(const char *eq, il_tensor *a, il_tensor *b) {
    op_case *r = node("Einsum", b ? 2 : 1, 1);
    r->in[0] = a, r->in[1] = b;
    SETS(r, "equation", eq);
    return r;
}

/* op_run on the case's inputs, label naming the configuration; 1 when nothing failed. */
static int matches(op_case *r, const char *label) {
    unsigned before = CU_get_number_of_failures();
    snprintf(r->label, sizeof r->label, "%s", label);
    il_status st = op_run(r);
    if (st) fprintf(stderr, "\n  %s: %s\n", label, il_errmsg());
    CU_ASSERT_EQUAL(st, IL_OK);
    return CU_get_number_of_failures() == before;
}

static void test_conv_fast_random(void) {
    int fails = 0;
    for (int it = 0; it < 150 && fails < 3; it++) {
        int nsp = 1 + (int)op_randint(3), kind = (int)op_randint(4);
        int64_t group = kind == 1 ? 1 + op_randint(3) : 1;
        int64_t cg = kind == 2 ? 1 : 1 + op_randint(4), mg = 1 + op_randint(4);
        int64_t n = 1 + op_randint(3), xd[8] = {n, cg * group}, wd[8] = {mg * group, cg};
        int64_t st[6], dl[6], pd[12], kk;
        for (int d = 0; d < nsp; d++) {
            kk = kind == 3 ? 1 : 1 + op_randint(3);
            st[d] = kind == 3 ? 1 : 1 + op_randint(2);
            dl[d] = kind == 3 ? 1 : 1 + op_randint(2);
            pd[d] = kind == 3 ? 0 : op_randint(2);
            pd[nsp + d] = kind == 3 ? 0 : op_randint(3);
            xd[2 + d] = 5 + op_randint(nsp == 3 ? 3 : 6);
            wd[2 + d] = kk;
        }
        int depthwise = kind == 2, has_b = (int)op_randint(2);
        if (depthwise) group = xd[1] = 1 + op_randint(5), wd[0] = mg * group;
        op_case *r = node("Conv", 2 + has_b, 1);
        op_in(r, 0, rnd(IL_F32, nsp + 2, xd, -1, 1));
        op_in(r, 1, rnd(IL_F32, nsp + 2, wd, -1, 1));
        if (has_b) op_in(r, 2, rnd(IL_F32, 1, wd, -1, 1));
        il_node_set_int(r->g, r->k, "group", group);
        il_node_set_ints(r->g, r->k, "strides", nsp, st);
        il_node_set_ints(r->g, r->k, "dilations", nsp, dl);
        if (it % 5 == 4) il_node_set_string(r->g, r->k, "auto_pad", it % 10 == 4 ? "SAME_LOWER" : "SAME_UPPER");
        else il_node_set_ints(r->g, r->k, "pads", 2 * nsp, pd);
        char label[96];
        snprintf(label, sizeof label, "Conv it %d nsp %d kind %d group %lld", it, nsp, kind, (long long)group);
        fails += !matches(r, label);
        op_free(r);
    }
}

/* The 3x3 and 5x5 depthwise kernels (MobileNet's, EfficientNet's): strides 1-2, pads 0-2 each
 * side, planes from 3x3 up, channel multipliers 1-2, with and without bias. */
static void test_depthwise3x3_random(void) {
    int fails = 0;
    for (int it = 0; it < 120 && fails < 3; it++) {
        int64_t C = 1 + op_randint(4), mult = 1 + op_randint(2), n = 1 + op_randint(2);
        int64_t k = it % 3 ? 3 : 5;
        int64_t xd[4] = {n, C, k + op_randint(10), k + op_randint(10)}, wd[4] = {C * mult, 1, k, k};
        int64_t st[2] = {1 + op_randint(2), 1 + op_randint(2)};
        int64_t pd[4] = {op_randint(3), op_randint(3), op_randint(3), op_randint(3)};
        int has_b = it % 2;
        op_case *r = node("Conv", 2 + has_b, 1);
        op_in(r, 0, rnd(IL_F32, 4, xd, -1, 1));
        op_in(r, 1, rnd(IL_F32, 4, wd, -1, 1));
        if (has_b) op_in(r, 2, rnd(IL_F32, 1, wd, -1, 1));
        il_node_set_int(r->g, r->k, "group", C);
        il_node_set_ints(r->g, r->k, "strides", 2, st);
        il_node_set_ints(r->g, r->k, "pads", 4, pd);
        char label[96];
        snprintf(label, sizeof label, "depthwise %lldx%lld it %d", (long long)k, (long long)k, it);
        fails += !matches(r, label);
        op_free(r);
    }
}

/* Conv kernel patch-gemm (engine/cpu/patch_conv.c): windows that neither overlap nor leave gaps,
 * as ViT's patch embedding: every kernel that takes the node against the reference (rtol 1e-4,
 * atol 1e-5) on 1-3 threads, patch-gemm among them; sizes that the patches do not divide (the
 * rest of the image unread), one channel, with and without bias. Declined: overlapping or
 * gapped windows, padding, dilation, groups, rows under 8 floats, patches past 1 MB (ViT's at
 * batch 2). */
static void test_patch_conv(void) {
    static const int64_t cases[][7] = {
        /* N  C   H   W   M  KH  KW */
        {2, 3, 32, 48, 12, 16, 16}, {1, 2, 37, 41, 7, 5, 8}, {3, 1, 8, 80, 5, 8, 10}, {1, 4, 16, 16, 33, 16, 16},
    };
    const il_kernel *pk = il_kernel_find("", "Conv", "cpu", "patch-gemm");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
    for (int i = 0; i < 4; i++)
        for (int threads = 1; threads <= 3; threads++) {
            const int64_t *q = cases[i];
            int64_t xd[4] = {q[0], q[1], q[2], q[3]}, wd[4] = {q[4], q[1], q[5], q[6]}, st[2] = {q[5], q[6]};
            int has_b = (i + threads) % 2;
            op_case *r = node("Conv", 2 + has_b, 1);
            op_in(r, 0, rnd(IL_F32, 4, xd, -1, 1));
            op_in(r, 1, rnd(IL_F32, 4, wd, -1, 1));
            if (has_b) op_in(r, 2, rnd(IL_F32, 1, wd, -1, 1));
            il_node_set_ints(r->g, r->k, "strides", 2, st);
            r->threads = threads;
            il_kctx c = {.node = &r->g->nodes[r->k], .opset = 17, .n_in = r->n_in, .n_out = 1, .in = r->in,
                         .threads = threads, .const_mask = ~(uint64_t)1};
            CU_ASSERT_TRUE(il_kernel_accepts(pk, &c));
            char label[96];
            snprintf(label, sizeof label, "patch conv case %d, %d threads", i, threads);
            matches(r, label);
            op_free(r);
        }
    for (int no = 0; no < 6; no++) { /* declined */
        int64_t xd[4] = {1, 2, 32, 32}, wd[4] = {4, 2, 16, no == 4 ? 4 : 16}, st[2] = {16, no == 4 ? 4 : 16};
        if (no == 5) xd[0] = 2, xd[1] = wd[1] = 3, xd[2] = xd[3] = 224;
        int64_t pd[4] = {0, 0, 0, 1}, dl[2] = {1, 2};
        if (no == 0) st[1] = 8;
        if (no == 3) xd[1] = 4;
        op_case *r = node("Conv", 2, 1);
        op_in(r, 0, rnd(IL_F32, 4, xd, -1, 1));
        op_in(r, 1, rnd(IL_F32, 4, wd, -1, 1));
        il_node_set_ints(r->g, r->k, "strides", 2, st);
        if (no == 1) il_node_set_ints(r->g, r->k, "pads", 4, pd);
        if (no == 2) il_node_set_ints(r->g, r->k, "dilations", 2, dl);
        if (no == 3) il_node_set_int(r->g, r->k, "group", 2);
        il_kctx c = {.node = &r->g->nodes[r->k], .opset = 17, .n_in = 2, .n_out = 1, .in = r->in, .threads = 1,
                     .const_mask = ~(uint64_t)1};
        CU_ASSERT_FALSE(il_kernel_accepts(pk, &c));
        op_free(r);
    }
}

static void test_convtranspose_fast_random(void) {
    int fails = 0;
    for (int it = 0; it < 80 && fails < 3; it++) {
        int nsp = 1 + (int)op_randint(3);
        int64_t group = 1 + op_randint(2), cg = 1 + op_randint(3);
        int64_t mg = 1 + op_randint(3);
        int64_t xd[8] = {1 + op_randint(2), cg * group}, wd[8] = {cg * group, mg};
        int64_t st[6], dl[6], pd[12], op[6], os[6];
        for (int d = 0; d < nsp; d++) {
            wd[2 + d] = 1 + op_randint(3);
            st[d] = 1 + op_randint(3);
            dl[d] = 1 + op_randint(2);
            pd[d] = op_randint(2);
            pd[nsp + d] = op_randint(2);
            op[d] = op_randint(st[d]);
            xd[2 + d] = 2 + op_randint(4);
            os[d] = xd[2 + d] * st[d] + op_randint(3) - 1;
            if (st[d] * (xd[2 + d] - 1) + op[d] + (wd[2 + d] - 1) * dl[d] + 1 - pd[d] - pd[nsp + d] < 1)
                pd[d] = pd[nsp + d] = 0; /* pads that would leave no output */
        }
        op_case *r = node("ConvTranspose", 3, 1);
        op_in(r, 0, rnd(IL_F32, nsp + 2, xd, -1, 1));
        op_in(r, 1, rnd(IL_F32, nsp + 2, wd, -1, 1));
        op_in(r, 2, rnd(IL_F32, 1, D(mg * group), -1, 1));
        il_node_set_int(r->g, r->k, "group", group);
        il_node_set_ints(r->g, r->k, "strides", nsp, st);
        il_node_set_ints(r->g, r->k, "dilations", nsp, dl);
        if (it % 4 == 3) il_node_set_ints(r->g, r->k, "output_shape", nsp, os);
        else if (it % 4 == 2) il_node_set_string(r->g, r->k, "auto_pad", "SAME_UPPER");
        else il_node_set_ints(r->g, r->k, "pads", 2 * nsp, pd), il_node_set_ints(r->g, r->k, "output_padding", nsp, op);
        char label[96];
        snprintf(label, sizeof label, "ConvTranspose it %d nsp %d group %lld", it, nsp, (long long)group);
        fails += !matches(r, label);
        op_free(r);
    }
}

static void test_pool_fast_random(void) {
    int fails = 0;
    for (int it = 0; it < 240 && fails < 3; it++) {
        int nsp = 1 + (int)op_randint(2), avg = it % 2;
        int64_t xd[4] = {1 + op_randint(2), 1 + op_randint(3)};
        int64_t k[2], st[2], dl[2], pd[4];
        for (int d = 0; d < nsp; d++) {
            k[d] = 1 + op_randint(3);
            st[d] = 1 + op_randint(3);
            dl[d] = 1 + op_randint(2);
            /* pads below the kernel size; none every 4th case (the fast path for windows inside) */
            pd[d] = it % 4 == 3 ? 0 : op_randint(k[d]);
            pd[nsp + d] = it % 4 == 3 ? 0 : op_randint(k[d]);
            xd[2 + d] = 5 + op_randint(6);
        }
        op_case *r = node(avg ? "AveragePool" : "MaxPool", 1, avg || it % 3 == 0 ? 1 : 2); /* Indices or not */
        op_in(r, 0, rnd(IL_F32, nsp + 2, xd, -1, 1));
        il_node_set_ints(r->g, r->k, "kernel_shape", nsp, k);
        il_node_set_ints(r->g, r->k, "strides", nsp, st);
        if (!avg) il_node_set_ints(r->g, r->k, "dilations", nsp, dl);
        if (it % 6 == 5) il_node_set_string(r->g, r->k, "auto_pad", "SAME_UPPER");
        else il_node_set_ints(r->g, r->k, "pads", 2 * nsp, pd);
        il_node_set_int(r->g, r->k, "ceil_mode", (it / 2) % 2);
        if (avg) il_node_set_int(r->g, r->k, "count_include_pad", (it / 4) % 2);
        else il_node_set_int(r->g, r->k, "storage_order", (it / 4) % 2);
        char label[96];
        snprintf(label, sizeof label, "%s it %d nsp %d", avg ? "AveragePool" : "MaxPool", it, nsp);
        fails += !matches(r, label);
        op_free(r);
    }
    const char *glob[2] = {"GlobalAveragePool", "GlobalMaxPool"};
    for (int i = 0; i < 2; i++) {
        op_case *r = node(glob[i], 1, 1);
        op_in(r, 0, rnd(IL_F32, 4, D(3, 5, 7, 9), -1, 1));
        matches(r, glob[i]);
        op_free(r);
    }
}

static void test_norm_fast_random(void) {
    for (int it = 0; it < 12; it++) {
        int64_t n = 1 + it % 3, ch = 1 + it % 4, xd[4] = {n, ch * 2, 3 + it % 5, 4};
        op_case *r = node("BatchNormalization", 5, 1);
        op_in(r, 0, rnd(IL_F32, 4, xd, -1, 1));
        for (int i = 1; i < 5; i++) op_in(r, i, rnd(IL_F32, 1, D(ch * 2), -1, 1));
        for (int64_t i = 0; i < ch * 2; i++) ((float *)r->in[4]->data)[i] += 1.5f; /* positive variance */
        matches(r, "BatchNormalization");
        op_free(r);

        r = node("InstanceNormalization", 3, 1);
        op_in(r, 0, rnd(IL_F32, 4, xd, -1, 1));
        for (int i = 1; i < 3; i++) op_in(r, i, rnd(IL_F32, 1, D(ch * 2), -1, 1));
        matches(r, "InstanceNormalization");
        op_free(r);

        r = node("GroupNormalization", 3, 1);
        op_in(r, 0, rnd(IL_F32, 4, xd, -1, 1));
        for (int i = 1; i < 3; i++) op_in(r, i, rnd(IL_F32, 1, D(it % 2 ? ch * 2 : 2), -1, 1));
        il_node_set_int(r->g, r->k, "num_groups", 2);
        matches(r, "GroupNormalization");
        op_free(r);

        int axis = (int)(it % 4) - 2;
        r = node("LayerNormalization", 2 + it % 2, 3);
        op_in(r, 0, rnd(IL_F32, 4, xd, -1, 1));
        op_in(r, 1, rnd(IL_F32, 1, D(4), -1, 1));
        if (it % 2) op_in(r, 2, axis == -2 ? rnd(IL_F32, 2, D(xd[2], 4), -1, 1) : rnd(IL_F32, 1, D(4), -1, 1));
        il_node_set_int(r->g, r->k, "axis", axis);
        matches(r, "LayerNormalization");
        op_free(r);
    }
    /* Y alone with Scale and B of the row's length (the transformers' case, statistics in float):
     * rows of 1 to 300, values offset from zero (the mean must not swamp the variance) */
    static const int64_t rows[] = {1, 7, 16, 17, 64, 192, 256, 300};
    for (int it = 0; it < 16; it++) {
        int64_t len = rows[it % 8], xd[3] = {1 + it % 3, 5 + it % 4, len};
        double lo = it % 2 ? 5 : -1, hi = it % 2 ? 7 : 1;
        op_case *r = node("LayerNormalization", 2 + it % 2, 1);
        op_in(r, 0, rnd(IL_F32, 3, xd, lo, hi));
        op_in(r, 1, rnd(IL_F32, 1, D(len), -1, 1));
        if (it % 2) op_in(r, 2, rnd(IL_F32, 1, D(len), -1, 1));
        il_node_set_float(r->g, r->k, "epsilon", it % 4 < 2 ? 1e-12f : 1e-5f);
        matches(r, "LayerNormalization Y alone");
        op_free(r);
    }
    /* SkipLayerNormalization: rows of 1 to 300 (past a vector's width, with tails), beta and bias
     * or not, skip of the input's shape or of its last two dims; Y alone takes the fast kernel,
     * with all four outputs it hands over to the reference (mean and inv_std_var of the row) */
    for (int it = 0; it < 16; it++) {
        int64_t len = rows[it % 8], xd[3] = {1 + it % 3, 5 + it % 4, len};
        int n_in = 3 + it % 3, n_out = it % 4 == 3 ? 4 : 1;
        op_case *r = node("ai.inferlab:SkipLayerNormalization", n_in, n_out);
        op_in(r, 0, rnd(IL_F32, 3, xd, it % 2 ? 5 : -1, it % 2 ? 7 : 1));
        op_in(r, 1, it % 5 == 2 ? rnd(IL_F32, 2, xd + 1, -1, 1) : rnd(IL_F32, 3, xd, -1, 1));
        for (int i = 2; i < n_in; i++) op_in(r, i, rnd(IL_F32, 1, D(len), -1, 1));
        il_node_set_float(r->g, r->k, "epsilon", it % 4 < 2 ? 1e-12f : 1e-5f);
        matches(r, "SkipLayerNormalization");
        op_free(r);
    }
}

static void test_matmul_fast_random(void) {
    static const int64_t shapes[][2][5] = {
        /* rank, dims... for A then B */
        {{2, 7, 5}, {2, 5, 3}},       {{3, 4, 7, 5}, {2, 5, 3}},     {{4, 2, 1, 3, 4}, {3, 5, 4, 6}},
        {{1, 5}, {3, 2, 5, 4}},       {{3, 2, 3, 5}, {1, 5}},        {{3, 9, 64, 32}, {3, 9, 32, 70}},
        {{2, 130, 70}, {2, 70, 90}}, {{4, 1, 2, 8, 16}, {4, 3, 1, 16, 8}},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        op_case *r = node("MatMul", 2, 1);
        op_in(r, 0, rnd(IL_F32, (int)shapes[i][0][0], shapes[i][0] + 1, -1, 1));
        op_in(r, 1, rnd(IL_F32, (int)shapes[i][1][0], shapes[i][1] + 1, -1, 1));
        matches(r, "MatMul");
        op_free(r);
    }
    for (int it = 0; it < 16; it++) {
        int64_t m = 1 + it * 3 % 11, n = 2 + it * 5 % 13, k = 1 + it * 7 % 9;
        int ta = it % 2, tb = it / 2 % 2;
        op_case *r = node("Gemm", 2 + (it % 4 != 0), 1);
        op_in(r, 0, rnd(IL_F32, 2, ta ? D(k, m) : D(m, k), -1, 1));
        op_in(r, 1, rnd(IL_F32, 2, tb ? D(n, k) : D(k, n), -1, 1));
        if (it % 4 == 1) op_in(r, 2, rnd(IL_F32, 1, D(n), -1, 1));
        if (it % 4 == 2) op_in(r, 2, rnd(IL_F32, 2, D(m, 1), -1, 1));
        if (it % 4 == 3) op_in(r, 2, rnd(IL_F32, 2, D(m, n), -1, 1));
        il_node_set_int(r->g, r->k, "transA", ta);
        il_node_set_int(r->g, r->k, "transB", tb);
        il_node_set_float(r->g, r->k, "alpha", 0.5f + (float)it);
        il_node_set_float(r->g, r->k, "beta", it % 3 ? 1.5f : 0);
        matches(r, "Gemm");
        op_free(r);
    }
}

static void test_einsum_fast_random(void) {
    static const struct {
        const char *eq;
        int ra;
        int64_t a[5];
        int rb;
        int64_t b[5];
    } cases[] = {
        {"bhqd,bhkd->bhqk", 4, {2, 3, 5, 8}, 4, {2, 3, 7, 8}},
        {"bhqk,bhkd->bhqd", 4, {2, 3, 5, 7}, 4, {2, 3, 7, 8}},
        {"bij,jk->bik", 3, {3, 4, 5}, 2, {5, 6}},
        {"ij,kj->ik", 2, {4, 5}, 2, {6, 5}},
        {"abc,cd->abd", 3, {2, 3, 4}, 2, {4, 5}},
        {"bqhd,bkhd->bhqk", 4, {2, 5, 3, 4}, 4, {2, 6, 3, 4}},
        {"...qd,...kd->...qk", 4, {2, 3, 5, 8}, 4, {2, 3, 7, 8}},
        {"ij,jk->ki", 2, {3, 4}, 2, {4, 5}},
        {"i,j->ij", 1, {4}, 1, {5}},
        {"bij,bij->b", 3, {2, 3, 4}, 3, {2, 3, 4}},
        {"ij,jk", 2, {3, 4}, 2, {4, 2}},
        {"ii,ij->j", 2, {3, 3}, 2, {3, 4}},   /* diagonal: reference path */
        {"ij,kl->", 2, {2, 3}, 2, {2, 2}},     /* summed within one operand */
        {"bij,jk->bik", 3, {3, 1, 5}, 2, {5, 6}},
        {"abk,kcd->acbd", 3, {2, 3, 4}, 3, {4, 5, 2}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        op_case *r = einsum(cases[i].eq, rnd(IL_F32, cases[i].ra, cases[i].a, -1, 1),
                            rnd(IL_F32, cases[i].rb, cases[i].b, -1, 1));
        matches(r, cases[i].eq);
        op_free(r);
    }
}

static il_tensor *to_f64(const il_tensor *t) {
    il_tensor *d = il_tensor_new(IL_F64, t->rank, t->dims);
    for (int64_t i = 0; i < il_tensor_numel(t); i++) il_tensor_set(d, i, il_tensor_get(t, i));
    return d;
}

/* float64 goes through the reference; it must agree with the float32 result. Integer MatMul and
 * the 8-bit matmul are exact. Zero-size batches run without touching memory. */
static void test_dtypes_and_empty(void) {
    static const struct {
        const char *op;
        int n_in;
        int rank;
        int64_t dims[3][5];
    } cases[] = {
        {"Conv", 3, 4, {{2, 4, 6, 5}, {6, 2, 3, 2}, {6}}},     {"ConvTranspose", 2, 3, {{1, 2, 5}, {2, 3, 3}}},
        {"MatMul", 2, 3, {{2, 3, 4}, {2, 4, 5}}},            {"AveragePool", 1, 4, {{1, 2, 5, 5}}},
        {"MaxPool", 1, 4, {{1, 2, 5, 5}}},                   {"LayerNormalization", 2, 3, {{2, 3, 4}, {4}}},
        {"GlobalAveragePool", 1, 4, {{2, 3, 4, 4}}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        op_case *r = node(cases[i].op, cases[i].n_in, 1);
        if (strstr(cases[i].op, "Pool") && cases[i].op[0] != 'G') il_node_set_ints(r->g, r->k, "kernel_shape", 2, D(2, 3));
        if (!strcmp(cases[i].op, "Conv")) il_node_set_int(r->g, r->k, "group", 2);
        for (int k = 0; k < cases[i].n_in; k++) {
            const int64_t *d = cases[i].dims[k];
            int rank = k == 2 || (k == 1 && cases[i].op[0] == 'L') ? 1 : cases[i].rank;
            op_in(r, k, rnd(IL_F32, rank, d, -1, 1));
        }
        RUN_OK(r);
        il_tensor *want = to_f64(r->fast[0]);
        for (int k = 0; k < cases[i].n_in; k++) op_in(r, k, to_f64(r->in[k]));
        RUN_OK(r);
        char msg[256];
        int64_t worst;
        int ok = il_tensor_allclose(r->fast[0], want, 1e-4, 1e-5, &worst, msg, sizeof msg);
        if (!ok) fprintf(stderr, "\n  %s float64: %s\n", cases[i].op, msg);
        CU_ASSERT(ok);
        /* the same op on an empty batch (MatMul: no rows, as its batch must broadcast) */
        int64_t d0[5];
        memcpy(d0, cases[i].dims[0], sizeof d0);
        d0[strcmp(cases[i].op, "MatMul") ? 0 : 1] = 0;
        op_in(r, 0, rnd(IL_F64, cases[i].rank, d0, -1, 1));
        il_status st = op_run(r);
        if (st) fprintf(stderr, "\n  %s empty batch: %s\n", cases[i].op, il_errmsg());
        CU_ASSERT_EQUAL(st, IL_OK);
        CU_ASSERT(!st && il_tensor_numel(r->out[0]) == 0 && il_tensor_numel(r->fast[0]) == 0);
        il_tensor_free(want);
        op_free(r);
    }

    op_case *r = node("MatMul", 2, 1);
    il_tensor *a = il_tensor_new(IL_I64, 2, D(2, 2)), *b = il_tensor_new(IL_I64, 2, D(2, 1));
    int64_t av[] = {1, 2, 3, 4}, bv[] = {5, -6};
    memcpy(a->data, av, sizeof av), memcpy(b->data, bv, sizeof bv);
    op_in(r, 0, a), op_in(r, 1, b);
    RUN_OK(r);
    EXPECT(r, 0, IL_I64, 2, D(2, 1), V(-7, -9));
    op_free(r);

    /* (A - 1) x (B - 2) over uint8 */
    r = node("MatMulInteger", 4, 1);
    a = il_tensor_new(IL_U8, 2, D(1, 2)), b = il_tensor_new(IL_U8, 2, D(2, 1));
    ((uint8_t *)a->data)[0] = 3, ((uint8_t *)a->data)[1] = 5, ((uint8_t *)b->data)[0] = 4, ((uint8_t *)b->data)[1] = 0;
    op_in(r, 0, a), op_in(r, 1, b);
    op_in(r, 2, il_tensor_new(IL_U8, 0, NULL)), op_in(r, 3, il_tensor_new(IL_U8, 0, NULL));
    ((uint8_t *)r->in[2]->data)[0] = 1, ((uint8_t *)r->in[3]->data)[0] = 2;
    RUN_OK(r);
    EXPECT(r, 0, IL_I32, 2, D(1, 1), V(-4));
    op_free(r);
}

/* Transposes large enough for the fast kernel to split its runs over threads (engine/cpu/
 * transpose.c: from 256 KiB, or 32 KiB where idle threads spin; each thread starts its odometer
 * at its first run), the head splits and merges of the transformers among them, on 3 threads:
 * bit for bit. Then ViT-tiny's heads at batch 1 ([1, 197, 3, 64], 151 KiB: 8x8 register tiles
 * and a 197 % 8 edge). */
static void test_transpose_threads(void) {
    static const int64_t perms[][4] = {{0, 2, 1, 3}, {0, 2, 3, 1}, {2, 0, 1, 3}, {1, 0, 2, 3}, {3, 1, 2, 0},
                                       {0, 2, 3, 1}, {0, 2, 1, 3}};
    for (int p = 0; p < 7; p++) {
        op_case *r = op_new("Transpose", 13, 1, 1);
        r->in[0] = p < 5 ? rnd(IL_F32, 4, D(9, 35, 13, 17), -1, 1) /* 69615 floats, 272 KiB */
                         : rnd(IL_F32, 4, D(1, 197, 3, 64), -1, 1);
        il_node_set_ints(r->g, r->k, "perm", 4, perms[p]);
        char label[64];
        snprintf(label, sizeof label, "Transpose perm %lld%lld%lld%lld, 3 threads", (long long)perms[p][0],
                 (long long)perms[p][1], (long long)perms[p][2], (long long)perms[p][3]);
        matches(r, label);
        op_free(r);
    }
}

IL_SUITE("compute_fast", {"transpose on threads", test_transpose_threads}, {"conv", test_conv_fast_random}, {"convtranspose", test_convtranspose_fast_random},
         {"depthwise 3x3 and 5x5", test_depthwise3x3_random}, {"pool", test_pool_fast_random}, {"norm", test_norm_fast_random}, {"matmul_gemm", test_matmul_fast_random},
         {"einsum", test_einsum_fast_random}, {"dtypes_and_empty", test_dtypes_and_empty},
         {"patch-gemm conv (disjoint patches)", test_patch_conv})
