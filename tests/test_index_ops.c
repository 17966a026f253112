/*
 * test_index_ops.c - the ops of engine/ops/slice.c and index.c that pick or place elements by
 * index (Slice, Gather, GatherElements, GatherND, ScatterND, ScatterElements, Trilu, NonZero,
 * Compress), checked by hand on small cases: negative and clamped indices, reductions on
 * repeated indices, empty results, and out-of-range indices reported as errors.
 *
 * Every case goes through op_run (tests/op_harness.h): plan-time inference against the run,
 * every output element written, the fast kernel bit for bit equal to the reference.
 */
#include "op_harness.h"

/* Slice as from opset 10: n starts, ends and (when not NULL) axes and steps, as inputs. */
static op_case *slice10(il_tensor *x, int n, const int64_t *st, const int64_t *en, const int64_t *ax,
                        const int64_t *sp) {
    op_case *o = op_new("Slice", 13, 5, 1);
    o->in[0] = x;
    o->in[1] = vec64(n, st);
    o->in[2] = vec64(n, en);
    if (ax) o->in[3] = vec64(n, ax);
    if (sp) o->in[4] = vec64(n, sp);
    return o;
}

static void test_slice(void) {
    op_case *o = op1("Slice", 1, iota(IL_F32, 2, D(3, 4), 0), 1); /* opset 1: attributes */
    il_node_set_ints(o->g, o->k, "starts", 2, D(1, -3));
    il_node_set_ints(o->g, o->k, "ends", 2, D(INT64_MAX, 3));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(2, 2), V(5, 6, 9, 10));
    op_free(o);
    o = slice10(iota(IL_F32, 2, D(3, 4), 0), 1, D(-1), D(-INT64_MAX), D(1), D(-2)); /* negative step */
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(3, 2), V(3, 1, 7, 5, 11, 9));
    op_free(o);
    o = slice10(iota(IL_F32, 1, D(5), 0), 1, D(10), D(-10), NULL, D(-1)); /* clamped both ends */
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 1, D(5), V(4, 3, 2, 1, 0));
    op_free(o);
    o = slice10(iota(IL_F16, 2, D(3, 4), 0), 2, D(0, 1), D(INT64_MAX, 100), D(-2, -1), D(2, 2));
    RUN_OK(o);
    EXPECT(o, 0, IL_F16, 2, D(2, 2), V(1, 3, 9, 11));
    op_free(o);
    o = slice10(iota(IL_F32, 1, D(5), 0), 1, D(3), D(1), NULL, NULL); /* empty */
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 1, D(0), NULL);
    op_free(o);
    o = slice10(iota(IL_F32, 1, D(5), 0), 1, D(0), D(5), NULL, D(0));
    FAILS(o, IL_ERR_INVALID, "step");
    op_free(o);
    o = slice10(iota(IL_F32, 1, D(5), 0), 1, D(0), D(5), D(1), NULL);
    FAILS(o, IL_ERR_INVALID, "axis 1");
    op_free(o);
    o = slice10(iota(IL_F32, 2, D(2, 5), 0), 2, D(0, 0), D(5, 5), D(1, -1), NULL);
    FAILS(o, IL_ERR_INVALID, "twice");
    op_free(o);
}

static void test_slice_fast_vs_ref(void) {
    for (int t = 0; t < 300; t++) {
        int64_t st[3], en[3], sp[3];
        for (int a = 0; a < 3; a++) {
            st[a] = op_randint(15) - 7;
            en[a] = op_randint(15) - 7;
            sp[a] = op_randint(7) - 3;
            if (!sp[a]) sp[a] = 1;
        }
        op_case *o = slice10(iota(t % 2 ? IL_F32 : IL_U8, 3, D(4, 5, 6), 0), 3, st, en, D(0, 1, 2), sp);
        RUN_OK(o);
        op_free(o);
    }
}

static void test_gather(void) {
    op_case *o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2), 0), vec64(2, D(-1, 0)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(2, 2), V(4, 5, 0, 1));
    op_free(o);
    o = op2("Gather", 13, iota(IL_F16, 2, D(2, 3), 0), tens(IL_I32, 2, D(2, 2), V(2, 0, 1, -3)));
    SETI(o, "axis", 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_F16, 3, D(2, 2, 2), V(2, 0, 1, 0, 5, 3, 4, 3));
    op_free(o);
    o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2), 0), i64s(0, NULL, D(2))); /* scalar index drops the axis */
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 1, D(2), V(4, 5));
    op_free(o);
    o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2), 0), i64s(1, D(0), NULL));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(0, 2), NULL);
    op_free(o);
    o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2), 0), vec64(2, D(1, 3)));
    FAILS(o, IL_ERR_INVALID, "index 3 is out of range for axis 0 of size 3");
    op_free(o);
    o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2), 0), vec64(1, D(-4)));
    FAILS(o, IL_ERR_INVALID, "index -4");
    op_free(o);
    o = op2("Gather", 13, iota(IL_F32, 2, D(3, 2), 0), tens(IL_F32, 1, D(1), V(0)));
    FAILS(o, IL_ERR_TYPE, "indices");
    op_free(o);
}

static void test_gather_elements_nd(void) {
    op_case *o = op2("GatherElements", 13, iota(IL_F32, 2, D(3, 3), 0), i64s(2, D(2, 3), D(1, 2, 0, 2, 0, -3)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(2, 3), V(3, 7, 2, 6, 1, 2));
    op_free(o);
    o = op2("GatherElements", 13, iota(IL_F32, 2, D(2, 2), 0), i64s(2, D(2, 1), D(1, 0)));
    SETI(o, "axis", 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(2, 1), V(1, 2));
    op_free(o);
    o = op2("GatherElements", 13, iota(IL_F32, 2, D(2, 2), 0), i64s(2, D(1, 1), D(2)));
    FAILS(o, IL_ERR_INVALID, "index 2");
    op_free(o);

    o = op2("GatherND", 13, iota(IL_I32, 3, D(2, 2, 2), 0), i64s(2, D(2, 2), D(0, 1, 1, 0)));
    RUN_OK(o);
    EXPECT(o, 0, IL_I32, 2, D(2, 2), V(2, 3, 4, 5));
    op_free(o);
    o = op2("GatherND", 13, iota(IL_I32, 3, D(2, 2, 2), 0), i64s(2, D(2, 1), D(1, 0))); /* batch_dims 1 */
    SETI(o, "batch_dims", 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_I32, 2, D(2, 2), V(2, 3, 4, 5));
    op_free(o);
    o = op2("GatherND", 13, iota(IL_F32, 2, D(2, 2), 0), i64s(2, D(2, 2), D(0, 0, -1, -1)));
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 1, D(2), V(0, 3));
    op_free(o);
    o = op2("GatherND", 13, iota(IL_F32, 2, D(2, 2), 0), i64s(1, D(3), D(0, 0, 0)));
    FAILS(o, IL_ERR_INVALID, "last dim");
    op_free(o);
    o = op2("GatherND", 13, iota(IL_F32, 2, D(2, 2), 0), i64s(1, D(2), D(0, 2)));
    FAILS(o, IL_ERR_INVALID, "index 2");
    op_free(o);
}

static op_case *scatter(const char *type, int64_t opset, il_tensor *x, il_tensor *ind, il_tensor *upd,
                        const char *red) {
    op_case *o = op_new(type, opset, 3, 1);
    o->in[0] = x;
    o->in[1] = ind;
    o->in[2] = upd;
    if (red) SETS(o, "reduction", red);
    return o;
}

static void test_scatter_nd(void) {
    static const char *reds[] = {NULL, "add", "mul", "max", "min"};
    static const double want[][4] = {{9, 1, 7, 3}, {9, 1, 11, 3}, {0, 1, 2 * 7 * 2, 3}, {9, 1, 7, 3}, {0, 1, 2, 3}};
    for (int r = 0; r < 5; r++) { /* index [2] twice: updates 7 then 2 under add/mul/max/min */
        il_tensor *u = tens(IL_F16, 1, D(3), V(9, 7, 2));
        op_case *o = scatter("ScatterND", 18, iota(IL_F16, 1, D(4), 0), i64s(2, D(3, 1), D(0, 2, -2)), u, reds[r]);
        RUN_OK(o);
        double w[4];
        memcpy(w, want[r], sizeof w);
        if (r == 0) w[2] = 2; /* none: the last write wins */
        EXPECT(o, 0, IL_F16, 1, D(4), w);
        op_free(o);
    }
    op_case *o =
        scatter("ScatterND", 16, iota(IL_I64, 2, D(2, 2), 0), i64s(2, D(1, 1), D(1)), i64s(2, D(1, 2), D(10, 20)),
                "add");
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 2, D(2, 2), V(0, 1, 12, 23));
    op_free(o);
    o = scatter("ScatterND", 16, iota(IL_I64, 2, D(2, 2), 0), i64s(2, D(1, 1), D(1)), i64s(1, D(2), D(10, 20)), NULL);
    FAILS(o, IL_ERR_SHAPE, "updates");
    op_free(o);
    o = scatter("ScatterND", 16, iota(IL_I64, 1, D(2), 0), i64s(2, D(1, 1), D(5)), i64s(1, D(1), D(1)), NULL);
    FAILS(o, IL_ERR_INVALID, "index 5");
    op_free(o);
    o = scatter("ScatterND", 16, iota(IL_I64, 1, D(2), 0), i64s(2, D(1, 1), D(0)), i64s(1, D(1), D(1)), "avg");
    FAILS(o, IL_ERR_INVALID, "reduction");
    op_free(o);
}

static void test_scatter_elements(void) {
    op_case *o = scatter("ScatterElements", 13, tens(IL_F32, 2, D(1, 5), V(1, 2, 3, 4, 5)), i64s(2, D(1, 2), D(1, -2)),
                         tens(IL_F32, 2, D(1, 2), V(1.1, 2.1)), NULL);
    SETI(o, "axis", 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(1, 5), V(1, (float)1.1, 3, (float)2.1, 5));
    op_free(o);
    o = scatter("ScatterElements", 16, iota(IL_I32, 2, D(3, 2), 0), i64s(2, D(2, 2), D(1, 0, 1, 2)),
                tens(IL_I32, 2, D(2, 2), V(10, 20, 30, 40)), "add");
    RUN_OK(o); /* row 1 col 0 gets 10 and 30 */
    EXPECT(o, 0, IL_I32, 2, D(3, 2), V(0, 21, 42, 3, 4, 45));
    op_free(o);
    o = scatter("ScatterElements", 18, tens(IL_BOOL, 1, D(3), V(1, 0, 1)), i64s(1, D(2), D(0, 1)),
                tens(IL_BOOL, 1, D(2), V(0, 1)), "min");
    RUN_OK(o);
    EXPECT(o, 0, IL_BOOL, 1, D(3), V(0, 0, 1));
    op_free(o);
    o = scatter("Scatter", 10, iota(IL_F32, 2, D(2, 2), 0), i64s(2, D(1, 2), D(1, 1)),
                tens(IL_F32, 2, D(1, 2), V(8, 9)), NULL);
    RUN_OK(o); /* the deprecated name */
    EXPECT(o, 0, IL_F32, 2, D(2, 2), V(0, 1, 8, 9));
    op_free(o);
    o = scatter("ScatterElements", 13, iota(IL_F32, 1, D(3), 0), i64s(1, D(1), D(-4)), tens(IL_F32, 1, D(1), V(1)),
                NULL);
    FAILS(o, IL_ERR_INVALID, "index -4");
    op_free(o);
    o = scatter("ScatterElements", 13, iota(IL_F32, 1, D(3), 0), i64s(1, D(2), D(0, 1)), tens(IL_F32, 1, D(1), V(1)),
                NULL);
    FAILS(o, IL_ERR_SHAPE, "differ");
    op_free(o);
}

static void test_trilu(void) {
    op_case *o = op1("Trilu", 14, iota(IL_F32, 2, D(3, 3), 0), 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_F32, 2, D(3, 3), V(0, 1, 2, 0, 4, 5, 0, 0, 8));
    op_free(o);
    o = op2("Trilu", 14, iota(IL_F16, 3, D(2, 2, 3), 0), i64s(0, NULL, D(-1)));
    SETI(o, "upper", 0);
    RUN_OK(o); /* lower with k = -1: strictly below the diagonal */
    EXPECT(o, 0, IL_F16, 3, D(2, 2, 3), V(0, 0, 0, 3, 0, 0, 0, 0, 0, 9, 0, 0));
    op_free(o);
    o = op2("Trilu", 14, iota(IL_I64, 2, D(2, 3), 0), i64s(0, NULL, D(1)));
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 2, D(2, 3), V(0, 1, 2, 0, 0, 5));
    op_free(o);
    o = op1("Trilu", 14, iota(IL_F32, 1, D(3), 0), 1);
    FAILS(o, IL_ERR_INVALID, "rank");
    op_free(o);
}

static void test_nonzero_compress(void) {
    op_case *o = op1("NonZero", 13, tens(IL_F16, 2, D(2, 3), V(0, 1, -0.0, 2, 0, NAN)), 1);
    RUN_OK(o); /* -0.0 is zero, NaN is not */
    EXPECT(o, 0, IL_I64, 2, D(2, 3), V(0, 1, 1, 1, 0, 2));
    op_free(o);
    o = op1("NonZero", 13, tens(IL_I32, 1, D(4), NULL), 1);
    RUN_OK(o);
    EXPECT(o, 0, IL_I64, 2, D(1, 0), NULL);
    op_free(o);
    o = op2("Compress", 13, iota(IL_F32, 2, D(3, 2), 0), tens(IL_BOOL, 1, D(2), V(0, 1)));
    SETI(o, "axis", 0);
    RUN_OK(o); /* a short condition leaves the rest out */
    EXPECT(o, 0, IL_F32, 2, D(1, 2), V(2, 3));
    op_free(o);
    o = op2("Compress", 13, iota(IL_F32, 2, D(3, 2), 0), tens(IL_BOOL, 1, D(5), V(0, 1, 0, 1, 1)));
    RUN_OK(o); /* no axis: the flattened input */
    EXPECT(o, 0, IL_F32, 1, D(3), V(1, 3, 4));
    op_free(o);
    o = op2("Compress", 13, iota(IL_F32, 1, D(2), 0), tens(IL_BOOL, 1, D(3), V(0, 0, 1)));
    FAILS(o, IL_ERR_INVALID, "past the axis");
    op_free(o);
}

IL_SUITE("index_ops", {"slice", test_slice}, {"slice_fast_vs_ref", test_slice_fast_vs_ref},
         {"gather", test_gather}, {"gather_elements_nd", test_gather_elements_nd}, {"scatter_nd", test_scatter_nd},
         {"scatter_elements", test_scatter_elements}, {"trilu", test_trilu},
         {"nonzero_compress", test_nonzero_compress})
