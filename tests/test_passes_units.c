/*
 * test_passes_units.c - the passes that take a conv network's whole unit into one node:
 * fuse-shuffle (ShuffleNetV2's Reshape/Transpose/Reshape channel shuffle, then the unit's Concat
 * and chunk Slices taken in) and fuse-se-scale (squeeze-excitation's Mul into the conv it feeds),
 * on tiny hand-built graphs as test_passes.c does: structure, equal outputs on fresh random
 * inputs, idempotence, and what is left alone.
 */
#include <stdlib.h>
#include <string.h>

#include "pass_test.h"

/* Channel shuffles as torchvision's ShuffleNetV2 exports them (shapes from Shape, symbolic batch)
 * and with constant shapes (0 copying the batch), 3 and 2 groups; a Transpose of other axes and
 * a shuffle whose transposed value is also an output stay as they are. */
static int shuffle_chain(il_graph *g, int x, int shape1, int shape2, const int64_t *perm) {
    int t = OP(g, "Transpose", OP(g, "Reshape", x, shape1));
    il_node_set_ints(g, last_node, "perm", 5, perm);
    return OP(g, "Reshape", t, shape2);
}

static void test_fuse_shuffle(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 4, DIMS(-1, 12, 5, 4));
    const int64_t *swap = DIMS(0, 2, 1, 3, 4);
    il_tensor *i0 = il_tensor_new(IL_I64, 0, NULL);
    int n = OP(g, "Unsqueeze", OP(g, "Gather", OP(g, "Shape", x), il_graph_add_constant(g, "i0", i0)), I64(g, 1, DIMS(0)));
    int s1 = OP(g, "Concat", n, I64(g, 4, DIMS(3, 4, 5, 4)));
    il_node_set_int(g, last_node, "axis", 0);
    int s2 = OP(g, "Concat", n, I64(g, 3, DIMS(12, 5, 4)));
    il_node_set_int(g, last_node, "axis", 0);
    int a = shuffle_chain(g, x, s1, s2, swap);
    int b = shuffle_chain(g, OP(g, "Relu", a), I64(g, 5, DIMS(0, 2, 6, 5, 4)), I64(g, 4, DIMS(0, -1, 5, 4)), swap);
    OUT(g, b);
    OUT(g, shuffle_chain(g, x, I64(g, 5, DIMS(0, 2, 6, 5, 4)), I64(g, 4, DIMS(0, -1, 5, 4)), DIMS(0, 1, 2, 4, 3)));
    int t = OP(g, "Transpose", OP(g, "Reshape", b, I64(g, 5, DIMS(0, 4, 3, 5, 4))));
    il_node_set_ints(g, last_node, "perm", 5, swap);
    OUT(g, t);
    OUT(g, OP(g, "Reshape", t, I64(g, 4, DIMS(0, -1, 5, 4))));
    il_pass_stats st = apply(g, "fuse-shuffle");
    CU_ASSERT_EQUAL(il_pass_changes(&st), 2);
    CU_ASSERT_EQUAL(count(g, "ChannelShuffle"), 2);
    CU_ASSERT_EQUAL(count(g, "Transpose"), 2);
    CU_ASSERT_EQUAL(count(g, "Shape"), 0);
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[k].dead && !strcmp(g->nodes[k].op_type, "ChannelShuffle")) {
            int64_t want = !strcmp(g->values[g->nodes[k].inputs[0]].name, "x") ? 3 : 2; /* apply compacts */
            CU_ASSERT_EQUAL(il_attr_int(&g->nodes[k], "groups", 0), want);
        }
    /* lower-fused writes them back as standard ops (apply checks the outputs) */
    il_pass_stats ls = apply(g, IL_PASS_LOWER);
    CU_ASSERT_EQUAL(il_pass_changes(&ls), 2);
    CU_ASSERT_EQUAL(count(g, "ChannelShuffle"), 0);
    il_graph_free(g);
}

/* Squeeze-excitation's product feeding a convolution (EfficientNet): Mul(scale, x) -> Conv and
 * Mul(x, scale) -> 3x3 Conv become ScaledConv; a product also read elsewhere, and a scale of one
 * image broadcast over a symbolic batch, stay. lower-fused writes the Muls back. */
static void test_fuse_se_scale(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 4, DIMS(-1, 6, 5, 5));
    int sc = OP(g, "Sigmoid", OP(g, "GlobalAveragePool", x));
    OUT(g, OP(g, "Conv", OP(g, "Mul", sc, x), W(g, 4, DIMS(4, 6, 1, 1), -1, 1), W(g, 1, DIMS(4), -1, 1)));
    OUT(g, OP(g, "Conv", OP(g, "Mul", x, sc), W(g, 4, DIMS(3, 6, 3, 3), -1, 1)));
    il_node_set_ints(g, last_node, "pads", 4, DIMS(1, 1, 1, 1));
    int shared = OP(g, "Mul", sc, OP(g, "Relu", x));
    OUT(g, shared);
    OUT(g, OP(g, "Conv", shared, W(g, 4, DIMS(2, 6, 1, 1), -1, 1)));
    OUT(g, OP(g, "Conv", OP(g, "Mul", x, W(g, 4, DIMS(1, 6, 1, 1), -1, 1)), W(g, 4, DIMS(2, 6, 1, 1), -1, 1)));
    il_pass_stats st = apply(g, "fuse-se-scale");
    CU_ASSERT_EQUAL(il_pass_changes(&st), 2);
    CU_ASSERT_EQUAL(count(g, "ScaledConv"), 2);
    CU_ASSERT_EQUAL(count(g, "Mul"), 2);
    il_pass_stats ls = apply(g, IL_PASS_LOWER);
    CU_ASSERT_EQUAL(il_pass_changes(&ls), 2);
    CU_ASSERT_EQUAL(count(g, "ScaledConv"), 0);
    CU_ASSERT_EQUAL(count(g, "Mul"), 4);
    il_graph_free(g);
}

/* A ShuffleNet unit as torchvision exports it: Concat of two branches, the shuffle (shapes from
 * Shape), torch.chunk's two Slices with bounds computed from Shape; then a join of three inputs
 * shuffled in 3 groups and split by constant Slices (the end past the channels). The shuffle takes
 * in the Concat and the Slices. Left alone: Slices of unequal parts, and a Concat that is also an
 * output. Outputs equal (apply), and lowered back equal again. */
static int shape_shuffle(il_graph *g, int x, int64_t c, int64_t groups) {
    il_tensor *i0 = il_tensor_new(IL_I64, 0, NULL);
    int n = OP(g, "Unsqueeze", OP(g, "Gather", OP(g, "Shape", x), il_graph_add_constant(g, "i0", i0)), I64(g, 1, DIMS(0)));
    int s1 = OP(g, "Concat", n, I64(g, 4, DIMS(groups, c / groups, 5, 4)));
    il_node_set_int(g, last_node, "axis", 0);
    int s2 = OP(g, "Concat", n, I64(g, 3, DIMS(c, 5, 4)));
    il_node_set_int(g, last_node, "axis", 0);
    return shuffle_chain(g, x, s1, s2, DIMS(0, 2, 1, 3, 4));
}

static int cat_c(il_graph *g, int n, const int *in) {
    int y = il_graph_new_value(g, "cat");
    last_node = il_graph_add_node(g, "Concat", "", NULL, n, in, 1, &y);
    il_node_set_int(g, last_node, "axis", 1);
    return y;
}

static void test_fuse_shuffle_unit(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 4, DIMS(-1, 8, 5, 4));
    int y = shape_shuffle(g, cat_c(g, 2, (int[]){OP(g, "Relu", x), OP(g, "Sigmoid", x)}), 16, 2);
    /* chunk(2): half = Shape(y)[1] / 2; Slice [0, half) and [half, 2 half) */
    il_tensor *i1 = il_tensor_new(IL_I64, 0, NULL);
    ((int64_t *)i1->data)[0] = 1;
    int ch = OP(g, "Gather", OP(g, "Shape", y), il_graph_add_constant(g, "i1", i1));
    int half = OP(g, "Div", OP(g, "Unsqueeze", ch, I64(g, 1, DIMS(0))), I64(g, 1, DIMS(2)));
    int end = OP(g, "Mul", half, I64(g, 1, DIMS(2)));
    int lo = OP(g, "Slice", y, I64(g, 1, DIMS(0)), half, I64(g, 1, DIMS(1)));
    int hi = OP(g, "Slice", y, half, end, I64(g, 1, DIMS(1)), I64(g, 1, DIMS(1)));
    OUT(g, OP(g, "Tanh", lo));
    /* three inputs of 4, 3 groups, two parts of 6 channels: constant bounds, one end past C */
    int three[3] = {OP(g, "Relu", hi), OP(g, "Neg", hi), OP(g, "Abs", hi)};
    for (int i = 0; i < 3; i++) {
        three[i] = OP(g, "Slice", three[i], I64(g, 1, DIMS(2 * i)), I64(g, 1, DIMS(2 * i + 4)), I64(g, 1, DIMS(-3)));
    }
    int z = shape_shuffle(g, cat_c(g, 3, three), 12, 3);
    OUT(g, OP(g, "Slice", z, I64(g, 1, DIMS(6)), I64(g, 1, DIMS(1000)), I64(g, 1, DIMS(1))));
    OUT(g, OP(g, "Slice", z, I64(g, 1, DIMS(0)), I64(g, 1, DIMS(6)), I64(g, 1, DIMS(1))));
    /* unequal parts (5 + 11) stay Slices; a Concat that is an output stays */
    int cw = cat_c(g, 2, (int[]){OP(g, "Sigmoid", x), x});
    OUT(g, cw);
    int w = shape_shuffle(g, cw, 16, 2);
    OUT(g, OP(g, "Slice", w, I64(g, 1, DIMS(0)), I64(g, 1, DIMS(5)), I64(g, 1, DIMS(1))));
    OUT(g, OP(g, "Slice", w, I64(g, 1, DIMS(5)), I64(g, 1, DIMS(16)), I64(g, 1, DIMS(1))));
    il_pass_stats st = apply(g, "fuse-shuffle");
    CU_ASSERT_EQUAL(count(g, "ChannelShuffle"), 3);
    CU_ASSERT_EQUAL(count(g, "Concat"), 1); /* the output one */
    CU_ASSERT_EQUAL(count(g, "Slice"), 3 + 2); /* the three inputs' and the unequal parts */
    CU_ASSERT_EQUAL(count(g, "Shape"), 0);
    int shapes[3][2] = {{0}}, n = 0;
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[k].dead && !strcmp(g->nodes[k].op_type, "ChannelShuffle") && n < 3)
            shapes[n][0] = g->nodes[k].n_inputs, shapes[n++][1] = g->nodes[k].n_outputs;
    int seen221 = 0, seen32 = 0, seen11 = 0;
    for (int i = 0; i < n; i++) {
        seen221 += shapes[i][0] == 2 && shapes[i][1] == 2;
        seen32 += shapes[i][0] == 3 && shapes[i][1] == 2;
        seen11 += shapes[i][0] == 1 && shapes[i][1] == 1;
    }
    CU_ASSERT_TRUE(seen221 == 1 && seen32 == 1 && seen11 == 1);
    char b[256];
    CU_ASSERT_PTR_NOT_NULL(strstr(il_pass_stats_str(&st, b, sizeof b), "Concat joined"));
    il_pass_stats ls = apply(g, IL_PASS_LOWER);
    CU_ASSERT_EQUAL(il_pass_changes(&ls), 3);
    CU_ASSERT_EQUAL(count(g, "ChannelShuffle"), 0);
    il_graph_free(g);
}

IL_SUITE("passes-units", {"fuse-shuffle", test_fuse_shuffle},
         {"fuse-shuffle: a unit's Concat and split", test_fuse_shuffle_unit}, {"fuse-se-scale", test_fuse_se_scale})
