/*
 * test_cli_errors.c - bad input through the real command line: every case must end with a
 * one-line message naming the problem and a non-zero exit, never a crash or a hang.
 * The binary comes from $IL_BIN (the Makefile sets it).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* Run `inferlab ARGS`, capture stdout+stderr into out; return the exit code (-1 on a signal). */
static int cli(const char *args, char *out, size_t n) { return il_test_cli(args, out, n); }

#define tmp il_test_tmp
#define write_bytes il_test_write_bytes

/* The process must exit with code 1 or 2 (not crash, not 124 = timeout) and say `want`. */
static void expect_error(const char *args, const char *want) {
    char out[8192];
    int rc = cli(args, out, sizeof out);
    if (rc != 1 && rc != 2) fprintf(stderr, "\n  `inferlab %s` exited %d:\n%s\n", args, rc, out);
    CU_ASSERT_TRUE(rc == 1 || rc == 2);
    if (!strstr(out, want)) fprintf(stderr, "\n  `inferlab %s`: want '%s' in:\n%s\n", args, want, out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    CU_ASSERT_PTR_NULL(strstr(out, "Sanitizer"));
}

static il_graph *one_input_graph(int64_t d0, int64_t d1, int *x) {
    il_graph *g = il_graph_new("g");
    il_graph_set_opset(g, "", 17);
    *x = il_graph_value(g, "x");
    g->values[*x].dtype = IL_F32;
    g->values[*x].rank = 2;
    g->values[*x].dims[0] = d0;
    g->values[*x].dims[1] = d1;
    il_graph_add_input(g, *x);
    return g;
}

static void save(il_graph *g, const char *path) {
    IL_ASSERT_OK(il_onnx_save(g, path));
    il_graph_free(g);
}

static void test_bad_files(void) {
    char args[1024];
    write_bytes(tmp("empty.onnx"), "", 0);
    snprintf(args, sizeof args, "info %s", tmp("empty.onnx"));
    expect_error(args, "empty.onnx");
    unsigned char junk[4096];
    uint64_t rng = 99;
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)il_rand_u64(&rng);
    write_bytes(tmp("random.onnx"), junk, sizeof junk);
    snprintf(args, sizeof args, "run %s", tmp("random.onnx"));
    expect_error(args, "random.onnx");
    write_bytes(tmp("text.onnx"), "this is not a model\n", 20);
    snprintf(args, sizeof args, "info %s", tmp("text.onnx"));
    expect_error(args, "text.onnx");
    snprintf(args, sizeof args, "info %s", tmp("does_not_exist.onnx"));
    expect_error(args, "does_not_exist.onnx");
    /* a real model cut in half */
    const char *src = IL_ONNX_NODE_DIR "/test_conv_with_strides_padding/model.onnx";
    FILE *f = fopen(src, "rb");
    if (!f) return;
    unsigned char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(tmp("half.onnx"), buf, n / 2);
    snprintf(args, sizeof args, "run %s", tmp("half.onnx"));
    expect_error(args, "half.onnx");
}

static void test_bad_graphs(void) {
    char args[1024];
    int x;
    /* unknown ops, every one named */
    il_graph *g = one_input_graph(1, 4, &x);
    int a = il_graph_value(g, "a"), b = il_graph_value(g, "b");
    il_graph_add_node(g, "Frobnicate", "", NULL, 1, &x, 1, &a);
    il_graph_add_node(g, "Wibble", "", NULL, 1, &a, 1, &b);
    il_graph_add_output(g, b);
    save(g, tmp("unknown.onnx"));
    snprintf(args, sizeof args, "info %s", tmp("unknown.onnx"));
    expect_error(args, "Frobnicate, Wibble");
    /* a cycle */
    g = one_input_graph(1, 4, &x);
    a = il_graph_value(g, "a");
    b = il_graph_value(g, "b");
    int xa[2] = {x, b};
    il_graph_add_node(g, "Add", "", NULL, 2, xa, 1, &a);
    il_graph_add_node(g, "Relu", "", NULL, 1, &a, 1, &b);
    il_graph_add_output(g, b);
    save(g, tmp("cycle.onnx"));
    snprintf(args, sizeof args, "run %s", tmp("cycle.onnx"));
    expect_error(args, "cycle");
    /* a value nothing produces */
    g = one_input_graph(1, 4, &x);
    a = il_graph_value(g, "phantom");
    b = il_graph_value(g, "b");
    int xp[2] = {x, a};
    il_graph_add_node(g, "Add", "", NULL, 2, xp, 1, &b);
    il_graph_add_output(g, b);
    save(g, tmp("phantom.onnx"));
    snprintf(args, sizeof args, "run %s", tmp("phantom.onnx"));
    expect_error(args, "phantom");
    /* MatMul [1,4] x [3,3] */
    g = one_input_graph(1, 4, &x);
    int64_t d[2] = {3, 3};
    int w = il_graph_add_constant(g, "w", il_tensor_new(IL_F32, 2, d));
    b = il_graph_value(g, "y");
    int xw[2] = {x, w};
    il_graph_add_node(g, "MatMul", "", "mm", 2, xw, 1, &b);
    il_graph_add_output(g, b);
    save(g, tmp("matmul.onnx"));
    snprintf(args, sizeof args, "run %s", tmp("matmul.onnx"));
    expect_error(args, "[3,3]");
    snprintf(args, sizeof args, "info %s", tmp("matmul.onnx"));
    expect_error(args, "mm");
}

static void test_bad_inputs(void) {
    char args[1024];
    int x;
    il_graph *g = one_input_graph(2, 3, &x);
    int y = il_graph_value(g, "y");
    il_graph_add_node(g, "Relu", "", NULL, 1, &x, 1, &y);
    il_graph_add_output(g, y);
    save(g, tmp("relu.onnx"));
    int64_t d[2] = {3, 2};
    il_tensor *t = il_tensor_new(IL_F32, 2, d);
    IL_ASSERT_OK(il_tensor_save_npy(t, tmp("wrong_shape.npy")));
    il_tensor_free(t);
    int64_t e[2] = {2, 3};
    t = il_tensor_new(IL_I64, 2, e);
    IL_ASSERT_OK(il_tensor_save_npy(t, tmp("wrong_dtype.npy")));
    il_tensor_free(t);
    snprintf(args, sizeof args, "run %s --input x=%s", tmp("relu.onnx"), tmp("wrong_shape.npy"));
    expect_error(args, "shape [3,2]");
    snprintf(args, sizeof args, "run %s --input x=%s", tmp("relu.onnx"), tmp("wrong_dtype.npy"));
    expect_error(args, "int64");
    snprintf(args, sizeof args, "run %s --input x=%s", tmp("relu.onnx"), tmp("missing.npy"));
    expect_error(args, "missing.npy");
    snprintf(args, sizeof args, "run %s --input nosuch=%s", tmp("relu.onnx"), tmp("wrong_shape.npy"));
    expect_error(args, "nosuch");
    snprintf(args, sizeof args, "run %s --batch zero", tmp("relu.onnx"));
    expect_error(args, "--batch");
    expect_error("frobnicate", "unknown command");
    snprintf(args, sizeof args, "check %s", tmp("no_such_dir"));
    expect_error(args, "0 passed, 1 failed");
    snprintf(args, sizeof args, "train --model zoo:mlp --data fashion-mnist:train:64 --epochs 1 --device gpu -o %s",
             tmp("m.onnx"));
    expect_error(args, "--device expects cpu or cuda");
    snprintf(args, sizeof args, "eval %s --data fashion-mnist:test:10 --plot %s", IL_TESTDATA "/fmnist_teacher.onnx",
             tmp("cm.jpg"));
    expect_error(args, "must end in .svg, .png or .pdf");
    /* the ViT has ops the CUDA trainer does not run; without a GPU the message says that instead */
    snprintf(args, sizeof args, "train --model zoo:vit --data fashion-mnist:train:64 --epochs 1 --device cuda -o %s",
             tmp("m.onnx"));
    expect_error(args, "CUDA");
}

static void test_good_run(void) {
    char out[8192], args[1024];
    int x;
    il_graph *g = one_input_graph(-1, 3, &x);
    int y = il_graph_value(g, "y");
    il_graph_add_node(g, "Relu", "", NULL, 1, &x, 1, &y);
    il_graph_add_output(g, y);
    save(g, tmp("relu_dyn.onnx"));
    snprintf(args, sizeof args, "run %s --batch 4 --out %s", tmp("relu_dyn.onnx"), tmp("outdir"));
    CU_ASSERT_EQUAL(cli(args, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "float32[4,3]"));
    il_tensor *t;
    char p[600];
    snprintf(p, sizeof p, "%s/output_0.npy", tmp("outdir"));
    IL_ASSERT_OK(il_tensor_load(p, &t));
    CU_ASSERT_EQUAL(t->dims[0], 4);
    for (int i = 0; i < 12; i++) CU_ASSERT_TRUE(((float *)t->data)[i] >= 0);
    il_tensor_free(t);
    snprintf(args, sizeof args, "info %s --json --batch 2", tmp("relu_dyn.onnx"));
    CU_ASSERT_EQUAL(cli(args, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"shape\":[2,3]"));
    CU_ASSERT_EQUAL(cli("--version", out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, IL_VERSION));
}

IL_SUITE("cli_errors", {"bad files", test_bad_files}, {"bad graphs", test_bad_graphs}, {"bad inputs", test_bad_inputs},
         {"a good run", test_good_run})
