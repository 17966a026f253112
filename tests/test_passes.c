/*
 * test_passes.c - every built-in pass on tiny hand-built graphs: the rewritten structure (op
 * counts, attributes, output names kept), equal outputs on fresh random inputs, and
 * idempotence (a second run changes nothing). Then the pass manager: --verify catching a
 * broken pass by name, the error paths, lowering to portable ONNX that onnx.checker accepts,
 * and the example plugin built by the Makefile, loaded and run through `opt --verify`.
 * The conformance-model property test is in test_passes_conformance.c; the conv networks' unit
 * fusions (fuse-shuffle, fuse-se-scale) are in test_passes_units.c.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pass_test.h"

static void test_fold_constants(void) {
    for (int dynamic = 0; dynamic < 2; dynamic++) {
        il_graph *g = G(13);
        int x = IN(g, "x", 3, dynamic ? DIMS(-1, 3, 4) : DIMS(2, 3, 4));
        int s = OP(g, "Shape", x), zero = I64(g, 1, DIMS(0));
        il_tensor *i0 = il_tensor_new(IL_I64, 0, NULL); /* a scalar index: Gather gives a scalar */
        int u = OP(g, "Unsqueeze", OP(g, "Gather", s, il_graph_add_constant(g, "i0", i0)), zero);
        int shape = OP(g, "Concat", u, I64(g, 1, DIMS(-1)));
        il_node_set_int(g, last_node, "axis", 0);
        OUT(g, OP(g, "Reshape", x, shape));
        int wt = OP(g, "Transpose", W(g, 2, DIMS(5, 4), -1, 1));
        int k = il_graph_new_value(g, "k");
        int cn = il_graph_add_node(g, "Constant", "", NULL, 0, NULL, 1, &k);
        il_tensor *kv = il_tensor_new(IL_F32, 1, DIMS(1));
        ((float *)kv->data)[0] = 1.5f;
        il_node_set_tensor(g, cn, "value", kv);
        OUT(g, OP(g, "Mul", OP(g, "MatMul", x, wt), k));
        apply(g, "fold-constants");
        CU_ASSERT_EQUAL(count(g, "Transpose"), 0);
        CU_ASSERT_EQUAL(count(g, "Constant"), 0);
        CU_ASSERT_EQUAL(count(g, "MatMul"), 1);
        /* static shapes fold the Shape chain; a symbolic batch keeps it */
        CU_ASSERT_EQUAL(count(g, "Shape"), dynamic);
        CU_ASSERT_EQUAL(count(g, "Concat"), dynamic);
        CU_ASSERT_EQUAL(count(g, "Reshape"), 1);
        il_graph_free(g);
    }
}

static void test_eliminate(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 2, DIMS(-1, 4));
    int a = OP(g, "Dropout", OP(g, "Identity", x));
    int c = OP(g, "Reshape", a, I64(g, 2, DIMS(-1, 4)));
    int d = OP(g, "Transpose", c);
    il_node_set_ints(g, last_node, "perm", 2, DIMS(0, 1));
    int e = OP(g, "Cast", d);
    il_node_set_int(g, last_node, "to", IL_F32);
    int f = OP(g, "Reshape", e, I64(g, 2, DIMS(1, -1))); /* [N,4] -> [1,4N]: not a no-op */
    OUT(g, OP(g, "Relu", f));
    int z = il_graph_value(g, "z"), r = OP(g, "Sigmoid", x);
    il_graph_add_node(g, "Identity", "", NULL, 1, &r, 1, &z);
    OUT(g, z);
    il_pass_stats st = apply(g, "eliminate");
    CU_ASSERT_EQUAL(il_pass_changes(&st), 6);
    CU_ASSERT_EQUAL(count(g, "Identity") + count(g, "Dropout") + count(g, "Transpose") + count(g, "Cast"), 0);
    CU_ASSERT_EQUAL(count(g, "Reshape"), 1);
    CU_ASSERT_STRING_EQUAL(g->values[g->outputs[1]].name, "z"); /* the model's interface is kept */
    il_graph_free(g);
}

static void test_dead_nodes_and_cse(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 2, DIMS(-1, 4));
    int c1 = W(g, 1, DIMS(4), -1, 1), c2 = il_graph_add_constant(g, "c2", il_tensor_clone(g->values[c1].constant));
    int s = OP(g, "Add", OP(g, "Relu", x), OP(g, "Relu", x));
    OUT(g, OP(g, "Add", OP(g, "Mul", s, c1), OP(g, "Mul", s, c2)));
    OP(g, "Sigmoid", OP(g, "Exp", x)); /* read by nothing */
    il_pass_stats st = apply(g, "dead-nodes");
    CU_ASSERT_EQUAL(il_pass_changes(&st), 2);
    CU_ASSERT_EQUAL(count(g, "Sigmoid") + count(g, "Exp"), 0);
    apply(g, "cse");
    CU_ASSERT_EQUAL(count(g, "Relu"), 1);
    CU_ASSERT_EQUAL(count(g, "Mul"), 1); /* the two constants merged, then the two Muls */
    il_graph_free(g);
}

static void test_merge_chains(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 3, DIMS(-1, 3, 4));
    int t1 = OP(g, "Transpose", x);
    il_node_set_ints(g, last_node, "perm", 3, DIMS(0, 2, 1));
    int t2 = OP(g, "Transpose", t1);
    il_node_set_ints(g, last_node, "perm", 3, DIMS(0, 2, 1));
    OUT(g, OP(g, "Relu", t2));
    int t3 = OP(g, "Transpose", x);
    il_node_set_ints(g, last_node, "perm", 3, DIMS(1, 0, 2));
    OUT(g, OP(g, "Transpose", t3));
    il_node_set_ints(g, last_node, "perm", 3, DIMS(0, 2, 1));
    int r1 = OP(g, "Flatten", x);
    OUT(g, OP(g, "Reshape", OP(g, "Reshape", r1, I64(g, 2, DIMS(-1, 2))), I64(g, 3, DIMS(-1, 4, 3))));
    apply(g, "merge-chains");
    CU_ASSERT_EQUAL(count(g, "Transpose"), 1);
    CU_ASSERT_EQUAL(count(g, "Reshape"), 1);
    CU_ASSERT_EQUAL(count(g, "Flatten"), 0);
    il_graph_free(g);
}

static void test_matmul_add_gemm(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 2, DIMS(-1, 8));
    OUT(g, OP(g, "Add", W(g, 1, DIMS(4), -1, 1), OP(g, "MatMul", x, W(g, 2, DIMS(8, 4), -1, 1))));
    OUT(g, OP(g, "Add", OP(g, "MatMul", x, W(g, 2, DIMS(8, 3), -1, 1)), W(g, 3, DIMS(1, 1, 3), -1, 1))); /* rank 3: no */
    apply(g, "matmul-add-gemm");
    CU_ASSERT_EQUAL(count(g, "Gemm"), 1);
    CU_ASSERT_EQUAL(count(g, "MatMul"), 1);
    il_graph_free(g);
}

static int bn(il_graph *g, int x, int64_t c) {
    return OP(g, "BatchNormalization", x, W(g, 1, DIMS(c), 0.5, 1.5), W(g, 1, DIMS(c), -1, 1), W(g, 1, DIMS(c), -1, 1),
              W(g, 1, DIMS(c), 0.5, 1.5));
}

static void test_fold_bn(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 4, DIMS(-1, 3, 6, 6)), x2 = IN(g, "x2", 2, DIMS(-1, 6));
    OUT(g, bn(g, OP(g, "Conv", x, W(g, 4, DIMS(4, 3, 3, 3), -1, 1), W(g, 1, DIMS(4), -1, 1)), 4));
    int ct = OP(g, "ConvTranspose", x, W(g, 4, DIMS(3, 2, 3, 3), -1, 1));
    il_node_set_int(g, last_node, "group", 1);
    OUT(g, bn(g, ct, 2));
    int gm = OP(g, "Gemm", x2, W(g, 2, DIMS(5, 6), -1, 1), W(g, 1, DIMS(5), -1, 1));
    il_node_set_int(g, last_node, "transB", 1);
    il_node_set_float(g, last_node, "beta", 0.5f);
    OUT(g, bn(g, gm, 5));
    il_pass_stats st = apply(g, "fold-bn");
    CU_ASSERT_EQUAL(il_pass_changes(&st), 3);
    CU_ASSERT_EQUAL(count(g, "BatchNormalization"), 0);
    CU_ASSERT_EQUAL(count(g, "Conv") + count(g, "ConvTranspose") + count(g, "Gemm"), 3);
    il_graph_free(g);
}

static void test_fuse_conv_act(void) {
    const char *acts[] = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "HardSigmoid", "Gelu", "Tanh"};
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
        il_graph *g = G(20);
        int x = IN(g, "x", 4, DIMS(-1, 3, 6, 6));
        int c = OP(g, "Conv", x, W(g, 4, DIMS(4, 3, 3, 3), -1, 1));
        il_node_set_ints(g, last_node, "pads", 4, DIMS(1, 1, 1, 1));
        c = OP(g, "Add", c, W(g, 4, DIMS(1, 4, 1, 1), -1, 1)); /* a bias the exporter kept apart */
        if (!strcmp(acts[a], "Clip")) OUT(g, OP(g, "Clip", c, S(g, -0.5f), S(g, 0.5f)));
        else OUT(g, OP(g, acts[a], c));
        if (!strcmp(acts[a], "LeakyRelu")) il_node_set_float(g, last_node, "alpha", 0.3f);
        apply(g, "fuse-conv-act");
        CU_ASSERT_EQUAL(count(g, "FusedConv"), 1);
        CU_ASSERT_EQUAL(g->n_nodes, 1);
        il_graph_free(g);
    }
    il_graph *g = G(20);
    int x = IN(g, "x", 4, DIMS(-1, 3, 5, 5)), x2 = IN(g, "x2", 2, DIMS(-1, 6)), x3 = IN(g, "x3", 3, DIMS(-1, 5, 6));
    OUT(g, OP(g, "Add", OP(g, "Conv", x, W(g, 4, DIMS(4, 3, 1, 1), -1, 1)), W(g, 3, DIMS(4, 1, 1), -1, 1)));
    OUT(g, OP(g, "Relu", OP(g, "Gemm", x2, W(g, 2, DIMS(6, 3), -1, 1), W(g, 1, DIMS(3), -1, 1))));
    OUT(g, OP(g, "Gelu", OP(g, "Add", OP(g, "MatMul", x3, W(g, 2, DIMS(6, 4), -1, 1)), W(g, 1, DIMS(4), -1, 1))));
    apply(g, "fuse-conv-act");
    CU_ASSERT_EQUAL(count(g, "Conv"), 1); /* bias Add folded into a plain Conv */
    CU_ASSERT_EQUAL(count(g, "FusedGemm") + count(g, "FusedMatMul"), 2);
    CU_ASSERT_EQUAL(count(g, "Add") + count(g, "Relu") + count(g, "Gelu"), 0);
    il_graph_free(g);
}

static void test_fuse_residual(void) {
    il_graph *g = G(13);
    int x = IN(g, "x", 4, DIMS(-1, 4, 6, 6)), z1 = IN(g, "z1", 4, DIMS(1, 4, 6, 6));
    int c = OP(g, "Conv", x, W(g, 4, DIMS(4, 4, 3, 3), -1, 1), W(g, 1, DIMS(4), -1, 1));
    il_node_set_ints(g, last_node, "pads", 4, DIMS(1, 1, 1, 1));
    int r = OP(g, "Relu", OP(g, "Add", x, c));
    /* [1,4,6,6] against [N,4,6,6] broadcasts: not a residual the kernel may take */
    int c2 = OP(g, "Conv", r, W(g, 4, DIMS(4, 4, 1, 1), -1, 1));
    OUT(g, OP(g, "Add", c2, z1));
    apply(g, "fuse-residual");
    CU_ASSERT_EQUAL(count(g, "FusedConv"), 1);
    CU_ASSERT_EQUAL(count(g, "Relu"), 0);
    CU_ASSERT_EQUAL(count(g, "Add"), 1);
    CU_ASSERT_EQUAL(count(g, "Conv"), 1);
    il_graph_free(g);
}

static void test_fuse_elementwise(void) {
    il_graph *g = G(14);
    int x = IN(g, "x", 2, DIMS(-1, 8));
    OUT(g, OP(g, "Mul", x, OP(g, "Sigmoid", x)));
    int h = OP(g, "HardSigmoid", x);
    il_node_set_float(g, last_node, "alpha", 1.0f / 6);
    OUT(g, OP(g, "Mul", h, x));
    OUT(g, OP(g, "Div", OP(g, "Mul", x, OP(g, "Clip", OP(g, "Add", x, S(g, 3)), S(g, 0), S(g, 6))), S(g, 6)));
    OUT(g, OP(g, "Mul", OP(g, "Mul", OP(g, "Clip", OP(g, "Add", S(g, 3), x), S(g, 0), S(g, 6)), x), S(g, 1.0f / 6)));
    il_pass_stats st = apply(g, "fuse-elementwise");
    CU_ASSERT_EQUAL(il_pass_changes(&st), 4);
    CU_ASSERT_EQUAL(count(g, "SiLU"), 1);
    CU_ASSERT_EQUAL(count(g, "HardSwish"), 3);
    CU_ASSERT_EQUAL(g->n_nodes, 4);
    il_graph_free(g);
}

static void test_fuse_gelu(void) {
    for (int opset = 13; opset <= 20; opset += 7) {
        il_graph *g = G(opset);
        int x = IN(g, "x", 2, DIMS(-1, 8));
        OUT(g, OP(g, "Mul", OP(g, "Mul", x, OP(g, "Add", OP(g, "Erf", OP(g, "Div", x, S(g, 1.4142135f))), S(g, 1))), S(g, 0.5f)));
        int inner = OP(g, "Add", x, OP(g, "Mul", OP(g, "Pow", x, S(g, 3)), S(g, 0.044715f)));
        int t = OP(g, "Add", OP(g, "Tanh", OP(g, "Mul", inner, S(g, 0.7978845608f))), S(g, 1));
        OUT(g, OP(g, "Mul", OP(g, "Mul", x, S(g, 0.5f)), t));
        apply(g, "fuse-gelu");
        CU_ASSERT_EQUAL(g->n_nodes, 2);
        CU_ASSERT_EQUAL(count(g, "Gelu"), 2);
        CU_ASSERT_STRING_EQUAL(g->nodes[0].domain, opset >= 20 ? "" : "ai.inferlab");
        il_graph_free(g);
    }
}

static void test_fuse_layernorm(void) {
    for (int opset = 13; opset <= 17; opset += 4) {
        il_graph *g = G(opset);
        int x = IN(g, "x", 3, DIMS(-1, 5, 8));
        int m = OP(g, "ReduceMean", x);
        il_node_set_ints(g, last_node, "axes", 1, DIMS(-1));
        int d = OP(g, "Sub", x, m), v = OP(g, "ReduceMean", OP(g, "Pow", d, S(g, 2)));
        il_node_set_ints(g, last_node, "axes", 1, DIMS(-1));
        int n = OP(g, "Div", d, OP(g, "Sqrt", OP(g, "Add", v, S(g, 1e-5f))));
        OUT(g, OP(g, "Add", OP(g, "Mul", n, W(g, 1, DIMS(8), 0.5, 1.5)), W(g, 1, DIMS(8), -1, 1)));
        apply(g, "fuse-layernorm");
        CU_ASSERT_EQUAL(g->n_nodes, 1);
        CU_ASSERT_EQUAL(count(g, "LayerNormalization"), 1);
        CU_ASSERT_STRING_EQUAL(g->nodes[0].domain, opset >= 17 ? "" : "ai.inferlab");
        il_graph_free(g);
    }
}

static il_graph *attention_graph(void) {
    il_graph *g = G(13);
    int q = IN(g, "q", 4, DIMS(-1, 2, 5, 4)), kt = IN(g, "kt", 4, DIMS(-1, 2, 4, 5)), v = IN(g, "v", 4, DIMS(-1, 2, 5, 3));
    int mask = IN(g, "mask", 4, DIMS(-1, 1, 1, 5));
    int p = OP(g, "Softmax", OP(g, "Add", OP(g, "Div", OP(g, "MatMul", q, kt), S(g, 2)), mask));
    il_node_set_int(g, last_node, "axis", -1);
    OUT(g, OP(g, "MatMul", p, v));
    return g;
}

static void test_fuse_attention(void) {
    il_graph *g = attention_graph();
    apply(g, "fuse-attention");
    CU_ASSERT_EQUAL(g->n_nodes, 1);
    CU_ASSERT_EQUAL(count(g, "Attention"), 1);
    CU_ASSERT_DOUBLE_EQUAL(il_attr_float(&g->nodes[0], "scale", 0), 0.5, 1e-7);
    il_graph_free(g);
}

/* The exports' head split and merge around attention: X [B, S, H, D] transposed to [B, H, S, D]
 * (K to [B, H, D, S]), the context back to [B, S, H, D]. Folded into MultiHeadAttention; left as
 * Attention where K's batch broadcasts (1 against N), where the context is not merged by a
 * Transpose, and where a transposed Q has another reader. */
static void test_fuse_attention_heads(void) {
    for (int kind = 0; kind < 4; kind++) {
        il_graph *g = G(17);
        int q = IN(g, "q", 4, DIMS(-1, 5, 2, 4)), k = IN(g, "k", 4, DIMS(kind == 1 ? 1 : -1, 6, 2, 4)),
            v = IN(g, "v", 4, DIMS(-1, 6, 2, 3)), mask = IN(g, "mask", 4, DIMS(-1, 1, 1, 6));
        int qt = OP(g, "Transpose", q);
        il_node_set_ints(g, last_node, "perm", 4, DIMS(0, 2, 1, 3));
        int kt = OP(g, "Transpose", k);
        il_node_set_ints(g, last_node, "perm", 4, DIMS(0, 2, 3, 1));
        int vt = OP(g, "Transpose", v);
        il_node_set_ints(g, last_node, "perm", 4, DIMS(0, 2, 1, 3));
        int p = OP(g, "Softmax", OP(g, "Add", OP(g, "Mul", OP(g, "MatMul", qt, kt), S(g, 0.5f)), mask));
        int y = OP(g, "MatMul", p, vt);
        if (kind != 2) {
            y = OP(g, "Transpose", y);
            il_node_set_ints(g, last_node, "perm", 4, DIMS(0, 2, 1, 3));
        }
        OUT(g, OP(g, "Reshape", y, I64(g, 3, DIMS(0, 0, -1))));
        if (kind == 3) OUT(g, OP(g, "Relu", qt));
        apply(g, "fuse-attention");
        CU_ASSERT_EQUAL(count(g, "MultiHeadAttention"), kind == 0);
        CU_ASSERT_EQUAL(count(g, "Attention"), kind != 0);
        CU_ASSERT_EQUAL(count(g, "Transpose"), kind == 0 ? 0 : kind == 2 ? 3 : 4);
        il_graph_free(g);
    }
}

/* Attention as transformers' SDPA exports spell it: Q and Kt each scaled by sqrt(scale), a mask
 * with a fully masked row (-inf: Softmax gives NaN there), and the NaN guard Where(IsNaN(P), 0,
 * P) before the second MatMul. */
static void test_fuse_attention_nan_guard(void) {
    il_graph *g = G(17);
    int q = IN(g, "q", 4, DIMS(-1, 2, 5, 4)), kt = IN(g, "kt", 4, DIMS(-1, 2, 4, 5)), v = IN(g, "v", 4, DIMS(-1, 2, 5, 3));
    il_tensor *m = il_tensor_new(IL_F32, 4, DIMS(1, 1, 5, 5));
    for (int i = 0; i < 25; i++) ((float *)m->data)[i] = i / 5 == 2 ? -INFINITY : (i % 3 ? 0.0f : -1e9f);
    int mv = il_graph_new_value(g, "mask");
    int mask = il_graph_add_constant(g, g->values[mv].name, m);
    int s = S(g, 0.7071f);
    int sc = OP(g, "Add", OP(g, "MatMul", OP(g, "Mul", q, s), OP(g, "Mul", kt, s)), mask);
    int p = OP(g, "Softmax", sc);
    il_node_set_int(g, last_node, "axis", -1);
    int guarded = OP(g, "Where", OP(g, "IsNaN", p), S(g, 0), p);
    OUT(g, OP(g, "MatMul", guarded, v));
    il_pass_stats st = apply(g, "fuse-attention");
    char b[256];
    CU_ASSERT_PTR_NOT_NULL(strstr(il_pass_stats_str(&st, b, sizeof b), "1 NaN guards moved"));
    CU_ASSERT_EQUAL(count(g, "Attention"), 1);
    CU_ASSERT_EQUAL(count(g, "Softmax"), 0);
    CU_ASSERT_EQUAL(count(g, "IsNaN"), 1);
    CU_ASSERT_EQUAL(count(g, "Where"), 1);
    /* the fully masked row: 0 after the guard, as before the rewrite */
    il_tensor *in[3];
    for (int i = 0; i < 3; i++) {
        int64_t dims[4];
        memcpy(dims, g->values[g->inputs[i]].dims, sizeof dims);
        dims[0] = 1;
        in[i] = il_tensor_new(IL_F32, 4, dims);
        il_tensor_fill_random(in[i], &rng, -1, 1);
    }
    il_tensor **o;
    int no;
    il_plan_opts po = {.batch = 1};
    IL_ASSERT_OK(il_run_model(g, in, 3, &po, &o, &no));
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 3; c++) CU_ASSERT_EQUAL(il_tensor_get(o[0], h * 15 + 2 * 3 + c), 0.0);
    for (int i = 0; i < 3; i++) il_tensor_free(in[i]);
    il_tensor_free(o[0]);
    free(o);
    il_graph_free(g);
}

/* The real transformers exports in tests/data: -O2 fuses both attention blocks of each and the
 * optimized model gives the outputs the export was saved with. */
static void test_fuse_attention_real_bert(void) {
    static const char *const dirs[] = {IL_TESTDATA "/tiny_bert_legacy", IL_TESTDATA "/tiny_bert_dynamo"};
    for (int d = 0; d < 2; d++) {
        char path[512];
        il_graph *g;
        snprintf(path, sizeof path, "%s/model.onnx", dirs[d]);
        IL_ASSERT_OK(il_onnx_load(path, &g));
        IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &(il_pass_opts){.verify = 1}, NULL, 0, NULL));
        CU_ASSERT_EQUAL(count(g, "MultiHeadAttention"), 2); /* the head transposes folded in */
        CU_ASSERT_EQUAL(count(g, "Attention") + count(g, "Transpose") + count(g, "Softmax"), 0);
        il_tensor *in[3], *want;
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dirs[d], i);
            IL_ASSERT_OK(il_tensor_load_pb(path, &in[i], NULL));
        }
        snprintf(path, sizeof path, "%s/test_data_set_0/output_0.pb", dirs[d]);
        IL_ASSERT_OK(il_tensor_load_pb(path, &want, NULL));
        il_tensor **o;
        int no;
        il_plan_opts po = {.batch = in[0]->dims[0]};
        IL_ASSERT_OK(il_run_model(g, in, 3, &po, &o, &no));
        char msg[256];
        int64_t worst;
        int ok = il_tensor_allclose(o[0], want, 1e-3, 1e-4, &worst, msg, sizeof msg);
        if (!ok) fprintf(stderr, "\n  %s: %s\n", dirs[d], msg);
        CU_ASSERT(ok);
        for (int i = 0; i < 3; i++) il_tensor_free(in[i]);
        for (int i = 0; i < no; i++) il_tensor_free(o[i]);
        free(o);
        il_tensor_free(want);
        il_graph_free(g);
    }
}

/* A graph with something for every fusion: conv+BN+relu with a residual, a SiLU, GELU, LayerNorm
 * and attention at opset 13 (so GELU and LayerNorm need ai.inferlab). */
static il_graph *mixed_graph(void) {
    il_graph *g = attention_graph();
    int x = IN(g, "x", 4, DIMS(-1, 4, 5, 5));
    int conv = OP(g, "Conv", x, W(g, 4, DIMS(4, 4, 3, 3), -1, 1));
    il_node_set_ints(g, last_node, "pads", 4, DIMS(1, 1, 1, 1));
    int c = bn(g, conv, 4);
    int y = OP(g, "Relu", OP(g, "Add", c, x));
    int silu = OP(g, "Mul", y, OP(g, "Sigmoid", y));
    int f = OP(g, "Reshape", silu, I64(g, 3, DIMS(-1, 4, 25)));
    int gl = OP(g, "Mul", OP(g, "Mul", f, OP(g, "Add", OP(g, "Erf", OP(g, "Div", f, S(g, 1.4142135f))), S(g, 1))), S(g, 0.5f));
    int m = OP(g, "ReduceMean", gl);
    il_node_set_ints(g, last_node, "axes", 1, DIMS(-1));
    int d = OP(g, "Sub", gl, m), v = OP(g, "ReduceMean", OP(g, "Mul", d, d));
    il_node_set_ints(g, last_node, "axes", 1, DIMS(-1));
    OUT(g, OP(g, "Div", d, OP(g, "Sqrt", OP(g, "Add", v, S(g, 1e-5f)))));
    return g;
}

static void test_pipeline_and_lowering(void) {
    il_graph *g = mixed_graph(), *orig = il_graph_clone(g);
    il_pass_stats st[32];
    int n;
    int before = il_graph_live_nodes(g);
    IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &(il_pass_opts){.verify = 1}, st, 32, &n));
    CU_ASSERT_EQUAL(n, 21); /* the passes of -O2 */
    CU_ASSERT_TRUE(il_graph_live_nodes(g) < before / 3);
    CU_ASSERT_EQUAL(count(g, "FusedConv") + count(g, "Attention") + count(g, "SiLU") + count(g, "Gelu"), 4);
    CU_ASSERT_EQUAL(count(g, "LayerNormalization"), 1);
    char line[256];
    int seen_bn = 0;
    for (int i = 0; i < n; i++)
        seen_bn |= strstr(il_pass_stats_str(&st[i], line, sizeof line), "fold-bn: 1 BatchNormalization folded") != NULL;
    CU_ASSERT_TRUE(seen_bn);
    /* back to standard ops: same outputs, no ai.inferlab left, not even its opset import */
    il_graph *low = il_graph_clone(g);
    il_pass_stats ls = apply(low, IL_PASS_LOWER);
    CU_ASSERT_EQUAL(il_pass_changes(&ls), 5);
    for (int k = 0; k < low->n_nodes; k++) CU_ASSERT_STRING_EQUAL(low->nodes[k].domain, "");
    CU_ASSERT_EQUAL(il_graph_opset(low, "ai.inferlab"), 0);
    IL_ASSERT_OK(il_graph_equivalent(orig, low, NULL, &rng));
    /* both exports load again and run the same; the portable one passes onnx.checker */
    const char *fused_path = il_test_tmp("fused.onnx"), *port_path = il_test_tmp("portable.onnx");
    IL_ASSERT_OK(il_onnx_save(g, fused_path));
    IL_ASSERT_OK(il_onnx_save(low, port_path));
    il_graph *back;
    IL_ASSERT_OK(il_onnx_load(fused_path, &back));
    IL_ASSERT_OK(il_graph_equivalent(orig, back, NULL, &rng));
    il_graph_free(back);
    if (il_test_have_python("onnx")) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, IL_PY " -c 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' %s", port_path);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    il_graph_free(low);
    il_graph_free(g);
    il_graph_free(orig);
}

/* A pass that computes something else: --verify must stop on it, naming it and the element. */
static il_status sabotage(il_graph *g, il_pass_stats *st) {
    for (int k = 0; k < g->n_nodes; k++)
        if (!strcmp(g->nodes[k].op_type, "Relu")) {
            free(g->nodes[k].op_type);
            g->nodes[k].op_type = strdup("Sigmoid");
            il_pass_count(st, "Relu made Sigmoid", 1);
            return IL_OK;
        }
    return IL_OK;
}
static const il_pass sabotage_pass = {"test-sabotage", "a wrong rewrite, for the verifier to catch", sabotage};

static il_status dangle(il_graph *g, il_pass_stats *st) {
    int v = il_graph_value(g, "nowhere");
    g->nodes[0].inputs[0] = v;
    il_pass_count(st, "inputs broken", 1);
    return IL_OK;
}
static const il_pass dangle_pass = {"test-dangle", "an invalid rewrite", dangle};

static void test_verify_and_errors(void) {
    if (!il_pass_find("test-sabotage")) {
        IL_ASSERT_OK(il_pass_register(&sabotage_pass));
        IL_ASSERT_OK(il_pass_register(&dangle_pass));
    }
    CU_ASSERT_EQUAL(il_pass_register(&sabotage_pass), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "already registered"));
    CU_ASSERT_EQUAL(il_pass_register(&(il_pass){"Bad Name", "", sabotage}), IL_ERR_INVALID);
    il_graph *g = G(13);
    int x = IN(g, "x", 2, DIMS(-1, 4));
    OUT(g, OP(g, "Relu", OP(g, "Identity", x)));
    il_graph *g2 = il_graph_clone(g);
    CU_ASSERT_EQUAL(il_pipeline_run(g, "eliminate, test-sabotage,cse", &(il_pass_opts){.verify = 1}, NULL, 0, NULL), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "pass 'test-sabotage' broke equivalence"));
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "worst element"));
    CU_ASSERT_EQUAL(il_pipeline_run(g2, "test-dangle", &(il_pass_opts){.verify = 1}, NULL, 0, NULL), IL_ERR_GRAPH);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "test-dangle"));
    CU_ASSERT_EQUAL(il_pipeline_run(g2, "cse,no-such-pass", NULL, NULL, 0, NULL), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "unknown pass 'no-such-pass'"));
    CU_ASSERT_EQUAL(il_pipeline_run(g2, "cse", &(il_pass_opts){.dump_after = "nope"}, NULL, 0, NULL), IL_ERR_INVALID);
    CU_ASSERT_EQUAL(il_pass_load_plugin("/nonexistent/plugin.so"), IL_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "cannot load plugin"));
    CU_ASSERT_PTR_NULL(il_pass_preset(4));
    il_graph_free(g);
    il_graph_free(g2);
}

static void test_example_plugin(void) {
    char so[PATH_MAX + 64], bin[PATH_MAX + 64], cmd[4 * PATH_MAX];
    snprintf(so, sizeof so, "%s/passes/examples/drop_double_relu.so", build_dir());
    snprintf(bin, sizeof bin, "%s/inferlab", build_dir());
    CU_ASSERT_EQUAL_FATAL(access(so, R_OK), 0); /* built by `make` next to this binary */
    if (!il_pass_find("drop-double-relu")) IL_ASSERT_OK(il_pass_load_plugin(so));
    CU_ASSERT_PTR_NOT_NULL_FATAL(il_pass_find("drop-double-relu"));
    CU_ASSERT_EQUAL(il_pass_load_plugin(so), IL_ERR_INVALID); /* the name is taken now */
    il_graph *g = G(13);
    int x = IN(g, "x", 2, DIMS(-1, 4));
    OUT(g, OP(g, "Relu", OP(g, "Relu", OP(g, "Relu", x))));
    apply(g, "drop-double-relu");
    CU_ASSERT_EQUAL(count(g, "Relu"), 1);
    /* and through the CLI: --plugin, the pipeline, --verify */
    const char *in = il_test_tmp("relu3.onnx"), *out = il_test_tmp("relu1.onnx");
    il_graph *g3 = G(13);
    x = IN(g3, "x", 2, DIMS(-1, 4));
    OUT(g3, OP(g3, "Relu", OP(g3, "Relu", OP(g3, "Relu", x))));
    IL_ASSERT_OK(il_onnx_save(g3, in));
    if (access(bin, X_OK) == 0) {
        snprintf(cmd, sizeof cmd, "%s opt %s -p drop-double-relu,dead-nodes --plugin %s --verify --stats -o %s > /dev/null", bin, in,
                 so, out);
        CU_ASSERT_EQUAL(system(cmd), 0);
        il_graph *back;
        IL_ASSERT_OK(il_onnx_load(out, &back));
        CU_ASSERT_EQUAL(count(back, "Relu"), 1);
        il_graph_free(back);
        snprintf(cmd, sizeof cmd, "%s opt %s -p drop-double-relu -o %s 2> /dev/null", bin, in, out); /* no --plugin */
        CU_ASSERT_NOT_EQUAL(system(cmd), 0);
    } else {
        printf("\n  skipped the CLI half: %s not built\n", bin);
    }
    il_graph_free(g);
    il_graph_free(g3);
}

IL_SUITE("passes", {"fold-constants", test_fold_constants}, {"eliminate", test_eliminate},
         {"dead-nodes and cse", test_dead_nodes_and_cse}, {"merge-chains", test_merge_chains},
         {"matmul-add-gemm", test_matmul_add_gemm}, {"fold-bn", test_fold_bn}, {"fuse-conv-act", test_fuse_conv_act},
         {"fuse-residual", test_fuse_residual}, {"fuse-elementwise", test_fuse_elementwise},
         {"fuse-gelu", test_fuse_gelu}, {"fuse-layernorm", test_fuse_layernorm}, {"fuse-attention", test_fuse_attention},
         {"fuse-attention behind SDPA's NaN guard", test_fuse_attention_nan_guard},
         {"fuse-attention: head transposes folded", test_fuse_attention_heads},
         {"fuse-attention on real BERT exports", test_fuse_attention_real_bert},

         {"-O2 pipeline, lowering, export, onnx.checker", test_pipeline_and_lowering},
         {"--verify catches a wrong pass; errors", test_verify_and_errors}, {"example plugin", test_example_plugin})
