/*
 * test_compute_fast.c - every fast compute kernel against its reference on fresh random inputs,
 * over many random configurations (shapes, strides, pads, dilations, groups, auto_pad,
 * ceil_mode, transposes, broadcasting, einsum patterns); float64 against float32; empty
 * batches. Tolerance rtol 1e-4, atol 1e-5 (float32 BLAS against double accumulation).
 */
#include <stdlib.h>
#include <string.h>

#include "compute_rig.h"

static void test_conv_fast_random(void) {
    int fails = 0;
    for (int it = 0; it < 150 && fails < 3; it++) {
        int nsp = 1 + (int)(il_rand_u64(&cr_rng) % 3), kind = (int)(il_rand_u64(&cr_rng) % 4);
        int64_t group = kind == 1 ? 1 + (int64_t)(il_rand_u64(&cr_rng) % 3) : 1;
        int64_t cg = kind == 2 ? 1 : 1 + (int64_t)(il_rand_u64(&cr_rng) % 4), mg = 1 + (int64_t)(il_rand_u64(&cr_rng) % 4);
        int64_t n = 1 + (int64_t)(il_rand_u64(&cr_rng) % 3), xd[8] = {n, cg * group}, wd[8] = {mg * group, cg};
        int64_t st[6], dl[6], pd[12], kk;
        for (int d = 0; d < nsp; d++) {
            kk = kind == 3 ? 1 : 1 + (int64_t)(il_rand_u64(&cr_rng) % 3);
            st[d] = kind == 3 ? 1 : 1 + (int64_t)(il_rand_u64(&cr_rng) % 2);
            dl[d] = kind == 3 ? 1 : 1 + (int64_t)(il_rand_u64(&cr_rng) % 2);
            pd[d] = kind == 3 ? 0 : (int64_t)(il_rand_u64(&cr_rng) % 2);
            pd[nsp + d] = kind == 3 ? 0 : (int64_t)(il_rand_u64(&cr_rng) % 3);
            xd[2 + d] = 5 + (int64_t)(il_rand_u64(&cr_rng) % (nsp == 3 ? 3 : 6));
            wd[2 + d] = kk;
        }
        int depthwise = kind == 2, has_b = (int)(il_rand_u64(&cr_rng) % 2);
        if (depthwise) group = xd[1] = 1 + (int64_t)(il_rand_u64(&cr_rng) % 5), wd[0] = mg * group;
        cr_rig *r = cr_new("Conv", 2 + has_b, 1);
        cr_in(r, 0, cr_rand(IL_F32, nsp + 2, xd));
        cr_in(r, 1, cr_rand(IL_F32, nsp + 2, wd));
        if (has_b) cr_in(r, 2, cr_rand(IL_F32, 1, wd));
        il_node_set_int(r->g, 0, "group", group);
        il_node_set_ints(r->g, 0, "strides", nsp, st);
        il_node_set_ints(r->g, 0, "dilations", nsp, dl);
        if (it % 5 == 4) il_node_set_string(r->g, 0, "auto_pad", it % 10 == 4 ? "SAME_LOWER" : "SAME_UPPER");
        else il_node_set_ints(r->g, 0, "pads", 2 * nsp, pd);
        char label[96];
        snprintf(label, sizeof label, "Conv it %d nsp %d kind %d group %lld", it, nsp, kind, (long long)group);
        fails += !cr_fast_matches_ref(r, label);
        cr_free(r);
    }
}

static void test_convtranspose_fast_random(void) {
    int fails = 0;
    for (int it = 0; it < 80 && fails < 3; it++) {
        int nsp = 1 + (int)(il_rand_u64(&cr_rng) % 3);
        int64_t group = 1 + (int64_t)(il_rand_u64(&cr_rng) % 2), cg = 1 + (int64_t)(il_rand_u64(&cr_rng) % 3);
        int64_t mg = 1 + (int64_t)(il_rand_u64(&cr_rng) % 3);
        int64_t xd[8] = {1 + (int64_t)(il_rand_u64(&cr_rng) % 2), cg * group}, wd[8] = {cg * group, mg};
        int64_t st[6], dl[6], pd[12], op[6], os[6];
        for (int d = 0; d < nsp; d++) {
            wd[2 + d] = 1 + (int64_t)(il_rand_u64(&cr_rng) % 3);
            st[d] = 1 + (int64_t)(il_rand_u64(&cr_rng) % 3);
            dl[d] = 1 + (int64_t)(il_rand_u64(&cr_rng) % 2);
            pd[d] = (int64_t)(il_rand_u64(&cr_rng) % 2);
            pd[nsp + d] = (int64_t)(il_rand_u64(&cr_rng) % 2);
            op[d] = (int64_t)(il_rand_u64(&cr_rng) % st[d]);
            xd[2 + d] = 2 + (int64_t)(il_rand_u64(&cr_rng) % 4);
            os[d] = xd[2 + d] * st[d] + (int64_t)(il_rand_u64(&cr_rng) % 3) - 1;
        }
        cr_rig *r = cr_new("ConvTranspose", 3, 1);
        cr_in(r, 0, cr_rand(IL_F32, nsp + 2, xd));
        cr_in(r, 1, cr_rand(IL_F32, nsp + 2, wd));
        cr_in(r, 2, cr_rand(IL_F32, 1, D(mg * group)));
        il_node_set_int(r->g, 0, "group", group);
        il_node_set_ints(r->g, 0, "strides", nsp, st);
        il_node_set_ints(r->g, 0, "dilations", nsp, dl);
        if (it % 4 == 3) il_node_set_ints(r->g, 0, "output_shape", nsp, os);
        else if (it % 4 == 2) il_node_set_string(r->g, 0, "auto_pad", "SAME_UPPER");
        else il_node_set_ints(r->g, 0, "pads", 2 * nsp, pd), il_node_set_ints(r->g, 0, "output_padding", nsp, op);
        char label[96];
        snprintf(label, sizeof label, "ConvTranspose it %d nsp %d group %lld", it, nsp, (long long)group);
        fails += !cr_fast_matches_ref(r, label);
        cr_free(r);
    }
}

static void test_pool_fast_random(void) {
    int fails = 0;
    for (int it = 0; it < 120 && fails < 3; it++) {
        int nsp = 1 + (int)(il_rand_u64(&cr_rng) % 2), avg = it % 2;
        int64_t xd[4] = {1 + (int64_t)(il_rand_u64(&cr_rng) % 2), 1 + (int64_t)(il_rand_u64(&cr_rng) % 3)};
        int64_t k[2], st[2], dl[2], pd[4];
        for (int d = 0; d < nsp; d++) {
            k[d] = 1 + (int64_t)(il_rand_u64(&cr_rng) % 3);
            st[d] = 1 + (int64_t)(il_rand_u64(&cr_rng) % 3);
            dl[d] = 1 + (int64_t)(il_rand_u64(&cr_rng) % 2);
            pd[d] = (int64_t)(il_rand_u64(&cr_rng) % (uint64_t)k[d]); /* pads below the kernel size */
            pd[nsp + d] = (int64_t)(il_rand_u64(&cr_rng) % (uint64_t)k[d]);
            xd[2 + d] = 5 + (int64_t)(il_rand_u64(&cr_rng) % 6);
        }
        cr_rig *r = cr_new(avg ? "AveragePool" : "MaxPool", 1, avg ? 1 : 2);
        cr_in(r, 0, cr_rand(IL_F32, nsp + 2, xd));
        il_node_set_ints(r->g, 0, "kernel_shape", nsp, k);
        il_node_set_ints(r->g, 0, "strides", nsp, st);
        if (!avg) il_node_set_ints(r->g, 0, "dilations", nsp, dl);
        if (it % 6 == 5) il_node_set_string(r->g, 0, "auto_pad", "SAME_UPPER");
        else il_node_set_ints(r->g, 0, "pads", 2 * nsp, pd);
        il_node_set_int(r->g, 0, "ceil_mode", (it / 2) % 2);
        if (avg) il_node_set_int(r->g, 0, "count_include_pad", (it / 4) % 2);
        else il_node_set_int(r->g, 0, "storage_order", (it / 4) % 2);
        char label[96];
        snprintf(label, sizeof label, "%s it %d nsp %d", avg ? "AveragePool" : "MaxPool", it, nsp);
        fails += !cr_fast_matches_ref(r, label);
        cr_free(r);
    }
    const char *glob[2] = {"GlobalAveragePool", "GlobalMaxPool"};
    for (int i = 0; i < 2; i++) {
        cr_rig *r = cr_new(glob[i], 1, 1);
        cr_in(r, 0, cr_rand(IL_F32, 4, D(3, 5, 7, 9)));
        cr_fast_matches_ref(r, glob[i]);
        cr_free(r);
    }
}

static void test_norm_fast_random(void) {
    for (int it = 0; it < 12; it++) {
        int64_t n = 1 + it % 3, ch = 1 + it % 4, xd[4] = {n, ch * 2, 3 + it % 5, 4};
        cr_rig *r = cr_new("BatchNormalization", 5, 1);
        cr_in(r, 0, cr_rand(IL_F32, 4, xd));
        for (int i = 1; i < 5; i++) cr_in(r, i, cr_rand(IL_F32, 1, D(ch * 2)));
        for (int64_t i = 0; i < ch * 2; i++) ((float *)r->in[4]->data)[i] += 1.5f; /* positive variance */
        cr_fast_matches_ref(r, "BatchNormalization");
        cr_free(r);

        r = cr_new("InstanceNormalization", 3, 1);
        cr_in(r, 0, cr_rand(IL_F32, 4, xd));
        for (int i = 1; i < 3; i++) cr_in(r, i, cr_rand(IL_F32, 1, D(ch * 2)));
        cr_fast_matches_ref(r, "InstanceNormalization");
        cr_free(r);

        r = cr_new("GroupNormalization", 3, 1);
        cr_in(r, 0, cr_rand(IL_F32, 4, xd));
        for (int i = 1; i < 3; i++) cr_in(r, i, cr_rand(IL_F32, 1, D(it % 2 ? ch * 2 : 2)));
        il_node_set_int(r->g, 0, "num_groups", 2);
        cr_fast_matches_ref(r, "GroupNormalization");
        cr_free(r);

        int axis = (int)(it % 4) - 2;
        r = cr_new("LayerNormalization", 2 + it % 2, 3);
        cr_in(r, 0, cr_rand(IL_F32, 4, xd));
        cr_in(r, 1, cr_rand(IL_F32, 1, D(4)));
        if (it % 2) cr_in(r, 2, axis == -2 ? cr_rand(IL_F32, 2, D(xd[2], 4)) : cr_rand(IL_F32, 1, D(4)));
        il_node_set_int(r->g, 0, "axis", axis);
        cr_fast_matches_ref(r, "LayerNormalization");
        cr_free(r);
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
        cr_rig *r = cr_new("MatMul", 2, 1);
        cr_in(r, 0, cr_rand(IL_F32, (int)shapes[i][0][0], shapes[i][0] + 1));
        cr_in(r, 1, cr_rand(IL_F32, (int)shapes[i][1][0], shapes[i][1] + 1));
        cr_fast_matches_ref(r, "MatMul");
        cr_free(r);
    }
    for (int it = 0; it < 16; it++) {
        int64_t m = 1 + it * 3 % 11, n = 2 + it * 5 % 13, k = 1 + it * 7 % 9;
        int ta = it % 2, tb = it / 2 % 2;
        cr_rig *r = cr_new("Gemm", 2 + (it % 4 != 0), 1);
        cr_in(r, 0, cr_rand(IL_F32, 2, ta ? D(k, m) : D(m, k)));
        cr_in(r, 1, cr_rand(IL_F32, 2, tb ? D(n, k) : D(k, n)));
        if (it % 4 == 1) cr_in(r, 2, cr_rand(IL_F32, 1, D(n)));
        if (it % 4 == 2) cr_in(r, 2, cr_rand(IL_F32, 2, D(m, 1)));
        if (it % 4 == 3) cr_in(r, 2, cr_rand(IL_F32, 2, D(m, n)));
        il_node_set_int(r->g, 0, "transA", ta);
        il_node_set_int(r->g, 0, "transB", tb);
        il_node_set_float(r->g, 0, "alpha", 0.5f + (float)it);
        il_node_set_float(r->g, 0, "beta", it % 3 ? 1.5f : 0);
        cr_fast_matches_ref(r, "Gemm");
        cr_free(r);
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
        cr_rig *r = cr_einsum(cases[i].eq, cr_rand(IL_F32, cases[i].ra, cases[i].a), cr_rand(IL_F32, cases[i].rb, cases[i].b));
        cr_fast_matches_ref(r, cases[i].eq);
        cr_free(r);
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
        cr_rig *r = cr_new(cases[i].op, cases[i].n_in, 1);
        if (strstr(cases[i].op, "Pool") && cases[i].op[0] != 'G') il_node_set_ints(r->g, 0, "kernel_shape", 2, D(2, 3));
        if (!strcmp(cases[i].op, "Conv")) il_node_set_int(r->g, 0, "group", 2);
        for (int k = 0; k < cases[i].n_in; k++) {
            const int64_t *d = cases[i].dims[k];
            int rank = k == 2 || (k == 1 && cases[i].op[0] == 'L') ? 1 : cases[i].rank;
            cr_in(r, k, cr_rand(IL_F32, rank, d));
        }
        IL_ASSERT_OK(cr_run(r, 1));
        il_tensor *f32 = r->out[1][0];
        r->out[1][0] = NULL;
        for (int k = 0; k < cases[i].n_in; k++) cr_in(r, k, to_f64(r->in[k]));
        IL_ASSERT_OK(cr_run(r, 1));
        il_tensor *want = to_f64(f32);
        char msg[256];
        int64_t worst;
        int ok = il_tensor_allclose(r->out[1][0], want, 1e-4, 1e-5, &worst, msg, sizeof msg);
        if (!ok) fprintf(stderr, "\n  %s float64: %s\n", cases[i].op, msg);
        CU_ASSERT(ok);
        /* the same op on an empty batch (MatMul: no rows, as its batch must broadcast) */
        int64_t d0[5];
        memcpy(d0, cases[i].dims[0], sizeof d0);
        d0[strcmp(cases[i].op, "MatMul") ? 0 : 1] = 0;
        cr_in(r, 0, cr_rand(IL_F64, cases[i].rank, d0));
        for (int fast = 0; fast < 2; fast++) {
            il_status st = cr_run(r, fast);
            if (st) fprintf(stderr, "\n  %s empty batch: %s\n", cases[i].op, il_errmsg());
            CU_ASSERT_EQUAL(st, IL_OK);
            CU_ASSERT(!st && il_tensor_numel(r->out[fast][0]) == 0);
        }
        il_tensor_free(f32);
        il_tensor_free(want);
        cr_free(r);
    }

    cr_rig *r = cr_new("MatMul", 2, 1);
    il_tensor *a = il_tensor_new(IL_I64, 2, D(2, 2)), *b = il_tensor_new(IL_I64, 2, D(2, 1));
    int64_t av[] = {1, 2, 3, 4}, bv[] = {5, -6};
    memcpy(a->data, av, sizeof av), memcpy(b->data, bv, sizeof bv);
    cr_in(r, 0, a), cr_in(r, 1, b);
    cr_expect(r, 0, 2, D(2, 1), F(-7, -9));
    cr_free(r);

    /* (A - 1) x (B - 2) over uint8 */
    r = cr_new("MatMulInteger", 4, 1);
    a = il_tensor_new(IL_U8, 2, D(1, 2)), b = il_tensor_new(IL_U8, 2, D(2, 1));
    ((uint8_t *)a->data)[0] = 3, ((uint8_t *)a->data)[1] = 5, ((uint8_t *)b->data)[0] = 4, ((uint8_t *)b->data)[1] = 0;
    cr_in(r, 0, a), cr_in(r, 1, b);
    cr_in(r, 2, il_tensor_new(IL_U8, 0, NULL)), cr_in(r, 3, il_tensor_new(IL_U8, 0, NULL));
    ((uint8_t *)r->in[2]->data)[0] = 1, ((uint8_t *)r->in[3]->data)[0] = 2;
    cr_expect(r, 0, 2, D(1, 1), F(-4));
    cr_free(r);
}

IL_SUITE("compute_fast", {"conv", test_conv_fast_random}, {"convtranspose", test_convtranspose_fast_random},
         {"pool", test_pool_fast_random}, {"norm", test_norm_fast_random}, {"matmul_gemm", test_matmul_fast_random},
         {"einsum", test_einsum_fast_random}, {"dtypes_and_empty", test_dtypes_and_empty})
