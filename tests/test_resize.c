/*
 * test_resize.c - the resampling ops: Pad (every mode, pads as attribute or input, axes,
 * negative pads), DepthToSpace/SpaceToDepth, Resize and Upsample. Hand-checked tiny cases,
 * fast kernels against the reference on fresh random inputs, and the error paths. The harness
 * is in tests/op_harness.h.
 */
#include "op_harness.h"

/* A case whose float outputs must be within 1e-6 (absolute and relative) of the hand-computed
 * values, and the fast kernel's within as much of the reference's. */
static op_case *mk(const char *op, int64_t opset, int n_in, int n_out) {
    return op_tol(op_new(op, opset, n_in, n_out), 1e-6, 1e-6);
}

/* ---------------------------------------------------------------- Pad */

static void test_pad_modes(void) {
    static const char *modes[] = {"constant", "edge", "reflect", "wrap"};
    const double want[4][7] = {
        {0, 0, 1, 2, 3, 0, 0}, {1, 1, 1, 2, 3, 3, 3}, {3, 2, 1, 2, 3, 2, 1}, {2, 3, 1, 2, 3, 1, 2}};
    for (int m = 0; m < 4; m++) {
        op_case *t = mk("Pad", 13, 2, 1);
        t->in[0] = f32(SHAPE(3), V(1, 2, 3));
        t->in[1] = i64(SHAPE(2), V(2, 2));
        SETS(t, "mode", modes[m]);
        CHECK(t, f32(SHAPE(7), want[m]));
        op_free(t);
    }
    /* the constant as input 2; a 2-D reflect; reflect wider than the axis repeats, as numpy */
    op_case *t = mk("Pad", 11, 3, 1);
    t->in[0] = f32(SHAPE(3), V(1, 2, 3));
    t->in[1] = i64(SHAPE(2), V(1, 2));
    t->in[2] = f32(0, NULL, V(9));
    CHECK(t, f32(SHAPE(6), V(9, 1, 2, 3, 9, 9)));
    SETS(t, "mode", "reflect");
    ((int64_t *)t->in[1]->data)[0] = 5;
    ((int64_t *)t->in[1]->data)[1] = 0;
    CHECK(t, f32(SHAPE(8), V(2, 1, 2, 3, 2, 1, 2, 3)));
    op_free(t);

    t = mk("Pad", 13, 2, 1);
    t->in[0] = f32(SHAPE(2, 2), V(1, 2, 3, 4));
    t->in[1] = i64(SHAPE(4), V(1, 0, 0, 1));
    SETS(t, "mode", "reflect");
    CHECK(t, f32(SHAPE(3, 3), V(3, 4, 3, 1, 2, 1, 3, 4, 3)));
    op_free(t);
}

static void test_pad_versions(void) {
    /* opset 2: pads and value are attributes */
    op_case *t = mk("Pad", 2, 1, 1);
    t->in[0] = f32(SHAPE(1, 2), V(1, 2));
    SETIS(t, "pads", 0, 1, 0, 0);
    SETF(t, "value", 7);
    CHECK(t, f32(SHAPE(1, 3), V(7, 1, 2)));
    op_free(t);

    /* opset 18: axes says which axes the pads are for */
    t = mk("Pad", 18, 4, 1);
    t->in[0] = f32(SHAPE(2, 2), V(1, 2, 3, 4));
    t->in[1] = i64(SHAPE(2), V(1, 1));
    t->in[3] = i64(SHAPE(1), V(-1));
    CHECK(t, f32(SHAPE(2, 4), V(0, 1, 2, 0, 0, 3, 4, 0)));
    op_free(t);

    /* negative pads crop first; the mode pads what is left */
    t = mk("Pad", 13, 3, 1);
    t->in[0] = f32(SHAPE(4), V(1, 2, 3, 4));
    t->in[1] = i64(SHAPE(2), V(-1, 2));
    t->in[2] = f32(SHAPE(1), V(9));
    CHECK(t, f32(SHAPE(5), V(2, 3, 4, 9, 9)));
    SETS(t, "mode", "edge");
    ((int64_t *)t->in[1]->data)[1] = 1;
    CHECK(t, f32(SHAPE(4), V(2, 3, 4, 4)));
    SETS(t, "mode", "reflect");
    ((int64_t *)t->in[1]->data)[0] = 1;
    ((int64_t *)t->in[1]->data)[1] = -2;
    CHECK(t, f32(SHAPE(3), V(2, 1, 2)));
    op_free(t);

    /* any dtype: float16 bytes are copied as they are */
    t = mk("Pad", 13, 3, 1);
    t->in[0] = il_tensor_new(IL_F16, SHAPE(2));
    t->in[1] = i64(SHAPE(2), V(1, 0));
    t->in[2] = il_tensor_new(IL_F16, 0, NULL);
    uint16_t *h = t->in[0]->data;
    h[0] = 0x3c00, h[1] = 0xc000; /* 1, -2 */
    *(uint16_t *)t->in[2]->data = 0x7bff; /* 65504 */
    RUN_OK(t);
    for (int fast = 0; fast < 2; fast++) {
        const il_tensor *y = fast ? t->fast[0] : t->out[0];
        const uint16_t *o = y->data;
        CU_ASSERT(y->dtype == IL_F16 && o[0] == 0x7bff && o[1] == 0x3c00 && o[2] == 0xc000);
    }
    op_free(t);
}

static void test_pad_fast_vs_ref(void) {
    static const char *modes[] = {"constant", "edge", "reflect", "wrap"};
    for (int m = 0; m < 4; m++) {
        op_case *t = mk("Pad", 13, 3, 1);
        t->in[1] = i64(SHAPE(8), V(0, 2, -1, 3, 1, 0, 4, -2));
        t->in[2] = f32(0, NULL, V(0.5));
        SETS(t, "mode", modes[m]);
        FAST_VS_REF(t, SHAPE(2, 3, 11, 13), 0, modes[m]);
        op_free(t);
    }
}

static void test_pad_errors(void) {
    op_case *t = mk("Pad", 13, 2, 1);
    t->in[0] = f32(SHAPE(2, 2), V(1, 2, 3, 4));
    t->in[1] = i64(SHAPE(2), V(1, 1));
    FAILS(t, IL_ERR_INVALID, "2 pads for 2 axes");
    il_tensor_free(t->in[1]);
    t->in[1] = i64(SHAPE(4), V(0, -3, 0, 0));
    FAILS(t, IL_ERR_INVALID, "axis 1 of size 2");
    il_tensor_free(t->in[0]);
    t->in[0] = f32(SHAPE(2, 0), NULL);
    ((int64_t *)t->in[1]->data)[1] = 1;
    SETS(t, "mode", "reflect");
    FAILS(t, IL_ERR_INVALID, "no elements");
    SETS(t, "mode", "mirror");
    FAILS(t, IL_ERR_UNSUPPORTED, "mirror");
    op_free(t);
}

/* ---------------------------------------------------------------- DepthToSpace, SpaceToDepth */

static void test_depth_to_space(void) {
    op_case *t = mk("DepthToSpace", 13, 1, 1);
    t->in[0] = f32(SHAPE(1, 8, 1, 1), V(0, 1, 2, 3, 4, 5, 6, 7));
    SETI(t, "blocksize", 2);
    CHECK(t, f32(SHAPE(1, 2, 2, 2), V(0, 2, 4, 6, 1, 3, 5, 7))); /* DCR by default */
    SETS(t, "mode", "CRD");
    CHECK(t, f32(SHAPE(1, 2, 2, 2), V(0, 1, 2, 3, 4, 5, 6, 7)));
    op_free(t);

    /* SpaceToDepth undoes DepthToSpace (DCR) */
    t = mk("DepthToSpace", 13, 1, 1);
    t->in[0] = rnd(IL_I32, SHAPE(2, 12, 3, 5), -100, 100);
    SETI(t, "blocksize", 2);
    RUN_OK(t);
    op_case *u = mk("SpaceToDepth", 13, 1, 1);
    u->in[0] = il_tensor_clone(t->out[0]);
    SETI(u, "blocksize", 2);
    CHECK(u, il_tensor_clone(t->in[0]));
    op_free(u);

    SETI(t, "blocksize", 5);
    FAILS(t, IL_ERR_SHAPE, "multiple of blocksize^2");
    SETI(t, "blocksize", 0);
    FAILS(t, IL_ERR_INVALID, "blocksize");
    op_free(t);
}

/* ---------------------------------------------------------------- Resize, Upsample */

static const double X22[] = {1, 2, 3, 4};

static void test_resize_2x2_to_4x4(void) {
    op_case *t = mk("Resize", 13, 3, 1);
    t->in[0] = f32(SHAPE(1, 1, 2, 2), X22);
    t->in[2] = f32(SHAPE(4), V(1, 1, 2, 2));
    CHECK(t, f32(SHAPE(1, 1, 4, 4), V(1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4)));
    SETS(t, "mode", "linear"); /* half_pixel by default */
    CHECK(t, f32(SHAPE(1, 1, 4, 4), V(1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4)));
    SETS(t, "coordinate_transformation_mode", "align_corners");
    double a = 1.0 / 3;
    CHECK(t, f32(SHAPE(1, 1, 4, 4), V(1, 1 + a, 1 + 2 * a, 2, 1 + 2 * a, 2, 2 + a, 2 + 2 * a, 2 + a, 2 + 2 * a, 3, 3 + a,
                                         3, 3 + a, 3 + 2 * a, 4)));
    op_free(t);

    /* the same through sizes */
    t = mk("Resize", 13, 4, 1);
    t->in[0] = f32(SHAPE(1, 1, 2, 2), X22);
    t->in[3] = i64(SHAPE(4), V(1, 1, 4, 4));
    SETS(t, "mode", "linear");
    CHECK(t, f32(SHAPE(1, 1, 4, 4), V(1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4)));
    op_free(t);

    /* opset 18: axes, and keep_aspect_ratio_policy */
    t = mk("Resize", 18, 4, 1);
    t->in[0] = f32(SHAPE(1, 1, 2, 2), X22);
    t->in[3] = i64(SHAPE(2), V(8, 4));
    SETIS(t, "axes", 2, 3);
    SETS(t, "keep_aspect_ratio_policy", "not_larger");
    CHECK(t, f32(SHAPE(1, 1, 4, 4), V(1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4)));
    op_free(t);
}

static void test_resize_modes(void) {
    /* nearest_mode on a 1-D upsample by 4/3 (asymmetric: x = 0, .75, 1.5, 2.25) */
    static const char *nm[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const double want[4][4] = {{1, 2, 2, 3}, {1, 2, 3, 3}, {1, 1, 2, 3}, {1, 2, 3, 3}};
    for (int m = 0; m < 4; m++) {
        op_case *t = mk("Resize", 13, 4, 1);
        t->in[0] = f32(SHAPE(3), V(1, 2, 3));
        t->in[3] = i64(SHAPE(1), V(4));
        SETS(t, "coordinate_transformation_mode", "asymmetric");
        SETS(t, "nearest_mode", nm[m]);
        CHECK(t, f32(SHAPE(4), want[m]));
        op_free(t);
    }
    /* antialias (opset 18) halving [1,2,3,4]: triangle twice as wide, weights 1,3,3,1 / 8 */
    op_case *t = mk("Resize", 18, 3, 1);
    t->in[0] = f32(SHAPE(4), V(1, 2, 3, 4));
    t->in[2] = f32(SHAPE(1), V(0.5));
    SETS(t, "mode", "linear");
    SETI(t, "antialias", 1);
    CHECK(t, f32(SHAPE(2), V(1.625, 3.375)));
    op_free(t);

    /* Upsample: scales as attribute (7) or input (9), x = y / scale */
    t = mk("Upsample", 9, 2, 1);
    t->in[0] = f32(SHAPE(1, 1, 2, 2), X22);
    t->in[1] = f32(SHAPE(4), V(1, 1, 2, 3));
    CHECK(t, f32(SHAPE(1, 1, 4, 6), V(1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4)));
    op_free(t);
    t = mk("Upsample", 7, 1, 1);
    t->in[0] = f32(SHAPE(1, 3), V(1, 2, 3));
    il_node_set_floats(t->g, t->k, "scales", 2, (const float[]){1, 2});
    SETS(t, "mode", "linear");
    CHECK(t, f32(SHAPE(1, 6), V(1, 1.5, 2, 2.5, 3, 3)));
    op_free(t);
}

static void test_resize_fast_vs_ref(void) {
    struct { const char *mode, *coord; double sh, sw; int antialias; } cases[] = {
        {"nearest", "half_pixel", 2, 2, 0},        {"nearest", "asymmetric", 1.7, 0.6, 0},
        {"linear", "half_pixel", 2, 2, 0},         {"linear", "align_corners", 1.5, 0.7, 0},
        {"linear", "pytorch_half_pixel", 0.5, 3, 0}, {"cubic", "half_pixel", 1.3, 2.1, 0},
        {"cubic", "asymmetric", 0.6, 0.8, 1},      {"linear", "half_pixel", 0.3, 0.45, 1},
        {"linear", "tf_crop_and_resize", 1.5, 1.2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        op_case *t = mk("Resize", 18, 3, 1);
        t->in[1] = f32(SHAPE(8), V(0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3));
        t->in[2] = f32(SHAPE(4), V(1, 1, cases[i].sh, cases[i].sw));
        SETS(t, "mode", cases[i].mode);
        SETS(t, "coordinate_transformation_mode", cases[i].coord);
        SETI(t, "antialias", cases[i].antialias);
        SETF(t, "extrapolation_value", -7);
        FAST_VS_REF(t, SHAPE(2, 3, 17, 23), 1e-5, cases[i].mode);
        op_free(t);
    }
    /* a channel axis resized too: the fast kernel hands over to the reference */
    op_case *t = mk("Resize", 13, 3, 1);
    t->in[2] = f32(SHAPE(4), V(1, 2, 2, 2));
    SETS(t, "mode", "linear");
    FAST_VS_REF(t, SHAPE(1, 3, 5, 5), 1e-5, "channels");
    op_free(t);
}

static void test_resize_errors(void) {
    op_case *t = mk("Resize", 13, 4, 1);
    t->in[0] = f32(SHAPE(1, 1, 2, 2), X22);
    t->in[2] = f32(SHAPE(4), V(1, 1, 2, 2));
    t->in[3] = i64(SHAPE(4), V(1, 1, 4, 4));
    FAILS(t, IL_ERR_INVALID, "only one of scales and sizes");
    il_tensor_free(t->in[3]);
    t->in[3] = NULL;
    ((float *)t->in[2]->data)[3] = 0;
    FAILS(t, IL_ERR_INVALID, "not positive");
    il_tensor_free(t->in[2]);
    t->in[2] = f32(SHAPE(2), V(2, 2));
    FAILS(t, IL_ERR_INVALID, "2 scales for 4 axes");
    il_tensor_free(t->in[2]);
    t->in[2] = NULL;
    FAILS(t, IL_ERR_INVALID, "one of scales and sizes must be given");
    t->in[2] = f32(SHAPE(4), V(1, 1, 2, 2));
    SETS(t, "mode", "area");
    FAILS(t, IL_ERR_UNSUPPORTED, "area");
    op_free(t);
}

IL_SUITE("resize", {"Pad modes", test_pad_modes}, {"Pad by opset, axes, negative pads, f16", test_pad_versions},
         {"Pad fast vs ref", test_pad_fast_vs_ref}, {"Pad errors", test_pad_errors},
         {"DepthToSpace DCR/CRD and SpaceToDepth", test_depth_to_space},
         {"Resize 2x2 to 4x4", test_resize_2x2_to_4x4}, {"Resize modes and Upsample", test_resize_modes},
         {"Resize fast vs ref", test_resize_fast_vs_ref}, {"Resize errors", test_resize_errors})
