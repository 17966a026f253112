/*
 * test_verify.c - what `opt --verify` compares and on which inputs (issue 14): outputs relative
 * to their scale, "cannot verify" for constant outputs, a wrong plugin pass caught through the
 * real binary; integer inputs within their tables; --shape letting Shape/Gather chains fold.
 */
#include <math.h>

#include "pass_test.h"

/* Issue 14 item 2: outputs of 1e-9 (real exports) swamped by an absolute tolerance let a wrong
 * pass through; all-zero outputs "agreed". The wrong pass is the example plugin residual-sub,
 * run through the real binary. */
static il_graph *tiny_output_graph(float out_scale) {
    il_graph *g = G(13);
    int x = IN(g, "x", 2, DIMS(-1, 8));
    int h = OP(g, "MatMul", x, W(g, 2, DIMS(8, 8), -1, 1));
    int r = OP(g, "Add", h, OP(g, "Relu", x)); /* a residual Add of two computed values */
    OUT(g, OP(g, "Mul", r, S(g, out_scale)));
    return g;
}

static void test_verify_relative(void) {
    char so[PATH_MAX + 64], args[4 * PATH_MAX], out[8192];
    snprintf(so, sizeof so, "%s/passes/examples/residual_sub.so", build_dir());
    CU_ASSERT_EQUAL_FATAL(access(so, R_OK), 0);
    const char *tiny = il_test_tmp("tiny_out.onnx"), *zero = il_test_tmp("zero_out.onnx"), *o = il_test_tmp("o.onnx");
    il_graph *t = tiny_output_graph(1e-9f), *z = tiny_output_graph(0.0f);
    IL_ASSERT_OK(il_onnx_save(t, tiny));
    IL_ASSERT_OK(il_onnx_save(z, zero));
    il_graph_free(t);
    il_graph_free(z);
    snprintf(args, sizeof args, "opt %s -p residual-sub --plugin %s --verify -o %s", tiny, so, o);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 1);
    if (!strstr(out, "pass 'residual-sub' broke equivalence")) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "pass 'residual-sub' broke equivalence"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "of the scale"));
    snprintf(args, sizeof args, "opt %s -p residual-sub --plugin %s --verify -o %s", zero, so, o);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 1);
    if (!strstr(out, "cannot verify")) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cannot verify after pass 'residual-sub': cannot verify: output 0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "zero or too small"));
    /* a right pass on the tiny outputs still verifies */
    snprintf(args, sizeof args, "opt %s -O2 --verify -o %s", tiny, o);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    /* an output that is zero on inputs in [-1, 1) becomes informative on larger ones */
    il_graph *g = G(13);
    int x = IN(g, "x", 2, DIMS(-1, 4));
    OUT(g, OP(g, "Relu", OP(g, "Sub", x, S(g, 5))));
    IL_ASSERT_OK(il_graph_equivalent(g, g, NULL, &rng));
    il_graph *c = G(13);
    x = IN(c, "x", 2, DIMS(-1, 4));
    OUT(c, OP(c, "Add", OP(c, "Mul", x, S(c, 0)), S(c, 3))); /* constant 3 */
    CU_ASSERT_EQUAL(il_graph_equivalent(c, c, NULL, &rng), IL_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "is constant on random inputs"));
    il_graph_free(g);
    il_graph_free(c);
}

/* Issue 14 item 4: integer inputs within their valid range - BERT's ids below the embedding
 * table's size, its mask all ones. */
static void test_informative_inputs(void) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(IL_TESTDATA "/tiny_bert_legacy/model.onnx", &g));
    CU_ASSERT_EQUAL_FATAL(g->n_inputs, 3);
    int64_t dims[2] = {4, 16};
    double mx[3] = {0, 0, 0}, mn[3] = {1e9, 1e9, 1e9};
    for (int i = 0; i < 3; i++) {
        il_tensor *t = il_tensor_new(IL_I64, 2, dims);
        il_graph_fill_input(g, i, t, &rng);
        for (int64_t k = 0; k < 64; k++) {
            double v = il_tensor_get(t, k);
            mx[i] = v > mx[i] ? v : mx[i];
            mn[i] = v < mn[i] ? v : mn[i];
        }
        il_tensor_free(t);
    }
    CU_ASSERT_STRING_EQUAL(g->values[g->inputs[0]].name, "input_ids");
    CU_ASSERT(mx[0] > 1 && mn[0] >= 0); /* ids spread over the vocabulary, not 0/1 */
    int64_t vocab = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].constant && g->values[v].constant->rank == 2 && g->values[v].constant->dims[1] == 64 &&
            g->values[v].constant->dims[0] > vocab)
            vocab = g->values[v].constant->dims[0];
    CU_ASSERT(mx[0] < vocab);
    CU_ASSERT(mn[1] == 1 && mx[1] == 1); /* attention_mask: ones */
    CU_ASSERT(mx[2] <= 1);               /* token_type_ids: a table of 2 */
    il_graph_free(g);
}

/* Issue 14 item 12: ShuffleNet-like Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains over
 * the symbolic batch stay until `opt --shape` fixes the input's shape; then they fold. */
static void test_fixed_shapes_fold(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 3, DIMS(-1, 3, 4));
    int s = OP(g, "Shape", x);
    int64_t zero = 0, twelve = 12;
    il_tensor *idx = il_tensor_new(IL_I64, 0, NULL);
    ((int64_t *)idx->data)[0] = 0;
    int iv = il_graph_new_value(g, "idx");
    int ic = il_graph_add_constant(g, g->values[iv].name, idx);
    int b = OP(g, "Gather", s, ic);
    int u = OP(g, "Unsqueeze", b, I64(g, 1, &zero));
    int c = OP(g, "Concat", u, I64(g, 1, &twelve));
    il_node_set_int(g, last_node, "axis", 0);
    OUT(g, OP(g, "Relu", OP(g, "Reshape", x, c)));
    const char *in = il_test_tmp("shapes.onnx"), *o = il_test_tmp("shapes_o.onnx");
    IL_ASSERT_OK(il_onnx_save(g, in));
    char args[2048], out[8192];
    snprintf(args, sizeof args, "opt %s -O2 --verify -o %s", in, o);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    il_graph *r;
    IL_ASSERT_OK(il_onnx_load(o, &r));
    CU_ASSERT_EQUAL(count(r, "Shape"), 1); /* over a symbolic batch: nothing to fold */
    il_graph_free(r);
    snprintf(args, sizeof args, "opt %s -O2 --shape x=2x3x4 --verify -o %s", in, o);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 0);
    if (!strstr(out, "nodes ->")) fprintf(stderr, "\n%s\n", out);
    IL_ASSERT_OK(il_onnx_load(o, &r));
    CU_ASSERT_EQUAL(count(r, "Shape") + count(r, "Gather") + count(r, "Unsqueeze") + count(r, "Concat"), 0);
    CU_ASSERT_EQUAL(r->values[r->inputs[0]].dims[0], 2);
    il_graph_free(r);
    snprintf(args, sizeof args, "opt %s -O2 --shape y=2x3x4 -o %s", in, o);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no input named 'y'"));
    snprintf(args, sizeof args, "opt %s -O2 --shape x=2x5x4 -o %s", in, o);
    CU_ASSERT_EQUAL(il_test_cli(args, out, sizeof out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "dim 1 of input 'x' is fixed at 3"));
    il_graph_free(g);
}

IL_SUITE("verify", {"--verify relative to the output's scale", test_verify_relative},
         {"informative integer inputs", test_informative_inputs}, {"--shape folds Shape/Gather chains", test_fixed_shapes_fold})
