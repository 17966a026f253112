/*
 * test_cli_errors.c - bad input through the real command line: every case must end with a
 * one-line message naming the problem and a non-zero exit, never a crash or a hang.
 * The binary comes from $IL_BIN (the Makefile sets it).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnx.pb-c.h"
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

/* ---- hostile models (issue 13): one case per class that fuzzing and hand-made models found */

/* Save g and expect `inferlab CMD model` to fail saying `want`. */
static void expect_model_error(il_graph *g, const char *name, const char *cmd, const char *want) {
    char args[1024];
    save(g, tmp(name));
    snprintf(args, sizeof args, "%s %s", cmd, tmp(name));
    expect_error(args, want);
}

static void test_hostile_arity(void) {
    int x, y;
    il_graph *g = one_input_graph(2, 3, &x); /* ArgMax writing nothing corrupted memory */
    il_graph_add_node(g, "ArgMax", "", "am", 1, &x, 0, NULL);
    il_graph_add_output(g, x);
    expect_model_error(g, "no_outputs.onnx", "run", "node 'am' (ArgMax): has 0 outputs");
    g = one_input_graph(2, 3, &x);
    y = il_graph_value(g, "y");
    il_graph_add_node(g, "Transpose", "", "tr", 0, NULL, 1, &y);
    il_graph_add_output(g, y);
    expect_model_error(g, "no_inputs.onnx", "info", "node 'tr' (Transpose): has 0 inputs");
    g = one_input_graph(2, 3, &x);
    y = il_graph_value(g, "y");
    int none = -1;
    il_graph_add_node(g, "IsInf", "", "isinf", 1, &none, 1, &y);
    il_graph_add_output(g, y);
    char opt[700];
    snprintf(opt, sizeof opt, "opt -O2 -o %s", tmp("opt_out.onnx"));
    expect_model_error(g, "omitted_input.onnx", opt, "input 0 is omitted");
    g = one_input_graph(1, 2, &x); /* Conv group=2.5 ran as group 1 */
    g->values[x].rank = 3;
    g->values[x].dims[2] = 4;
    int64_t wd[3] = {2, 1, 1};
    int w = il_graph_add_constant(g, "w", il_tensor_new(IL_F32, 3, wd)), xw[2] = {x, w};
    y = il_graph_value(g, "y");
    il_node_set_float(g, il_graph_add_node(g, "Conv", "", "conv", 2, xw, 1, &y), "group", 2.5f);
    il_graph_add_output(g, y);
    expect_model_error(g, "conv_group.onnx", "run", "node 'conv' (Conv): attribute 'group' is FLOAT, but Conv takes INT");
}

static void test_hostile_sizes(void) {
    int x, y;
    il_graph *g = one_input_graph((int64_t)1 << 31, (int64_t)1 << 31, &x); /* 2^62: Relu printed it "valid" */
    y = il_graph_value(g, "y");
    il_graph_add_node(g, "Relu", "", NULL, 1, &x, 1, &y);
    il_graph_add_output(g, y);
    expect_model_error(g, "huge_input.onnx", "info", "more than 2^40 elements");
    g = one_input_graph(2, 3, &x);
    y = il_graph_value(g, "y");
    il_graph_add_node(g, "Transpose", "", NULL, 1, &x, 1, &y);
    il_graph_add_output(g, y);
    save(g, tmp("transpose.onnx"));
    /* a .npy whose dims multiply past int64: 2^68 wrapped to 0 gave a tiny buffer */
    const char hdr[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }";
    char npy[128] = "\x93NUMPY\x01";
    size_t hl = sizeof hdr - 1;
    npy[8] = (char)hl;
    memcpy(npy + 10, hdr, hl);
    write_bytes(tmp("huge.npy"), npy, 10 + hl);
    char args[1024];
    snprintf(args, sizeof args, "run %s --input x=%s", tmp("transpose.onnx"), tmp("huge.npy"));
    expect_error(args, "more than 2^40 elements");
}

/* A model whose one initializer W (float32[dims0]) lives in external data at `location`. */
static void write_external_model(const char *path, const char *location, int64_t dims0) {
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT, *ops[1] = {&op};
    Onnx__GraphProto gp = ONNX__GRAPH_PROTO__INIT;
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT, *nodes[1] = {&node};
    Onnx__TensorProto w = ONNX__TENSOR_PROTO__INIT, *inits[1] = {&w};
    Onnx__ValueInfoProto y = ONNX__VALUE_INFO_PROTO__INIT, *outs[1] = {&y};
    Onnx__StringStringEntryProto loc = ONNX__STRING_STRING_ENTRY_PROTO__INIT, *locs[1] = {&loc};
    char *in[1] = {"W"}, *out[1] = {"y"};
    m.has_ir_version = 1, m.ir_version = 8, m.graph = &gp, m.n_opset_import = 1, m.opset_import = ops;
    op.has_version = 1, op.version = 17, op.domain = "";
    node.op_type = "Identity", node.n_input = 1, node.input = in, node.n_output = 1, node.output = out;
    gp.name = "ext", gp.n_node = 1, gp.node = nodes, gp.n_initializer = 1, gp.initializer = inits;
    gp.n_output = 1, gp.output = outs, y.name = "y";
    w.name = "W", w.has_data_type = 1, w.data_type = IL_F32, w.n_dims = 1, w.dims = &dims0;
    w.has_data_location = 1, w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    loc.key = "location", loc.value = (char *)location, w.n_external_data = 1, w.external_data = locs;
    il_test_write_msg(path, &m);
}

static void test_hostile_external_data(void) {
    char dir[600], path[700], args[1600];
    snprintf(dir, sizeof dir, "%s", tmp("extdir"));
    mkdir(dir, 0755);
    /* a symlink out of the model's folder: /etc/passwd was read (and written out by `opt`) */
    snprintf(path, sizeof path, "%s/w.bin", dir);
    CU_ASSERT_EQUAL(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof path, "%s/link.onnx", dir);
    write_external_model(path, "w.bin", 4);
    snprintf(args, sizeof args, "opt %s -O2 -o %s/out.onnx", path, dir);
    expect_error(args, "outside the model's directory");
    /* a FIFO: reading it hung forever */
    snprintf(path, sizeof path, "%s/fifo.bin", dir);
    CU_ASSERT_EQUAL(mkfifo(path, 0600), 0);
    snprintf(path, sizeof path, "%s/fifo.onnx", dir);
    write_external_model(path, "fifo.bin", 4);
    snprintf(args, sizeof args, "info %s", path);
    expect_error(args, "not a regular file");
    /* 3 KB of data claimed as 3e9 floats: refused before allocating 12 GB */
    static const char small[3072];
    snprintf(path, sizeof path, "%s/small.bin", dir);
    write_bytes(path, small, sizeof small);
    snprintf(path, sizeof path, "%s/big.onnx", dir);
    write_external_model(path, "small.bin", 3000000000LL);
    snprintf(args, sizeof args, "run %s", path);
    expect_error(args, "has 3072 bytes");
}

/* Prepend protobuf field `field` (length-delimited, holding b[0..*n)) and then `pre` to b,
 * which has room before it (b is the tail of a buffer). Returns the new start. */
static uint8_t *wrap_field(uint8_t *b, size_t *n, int field, const char *pre, size_t npre) {
    uint8_t v[12];
    size_t nv = 0;
    for (uint64_t x = *n; nv == 0 || x; x >>= 7) v[nv++] = (uint8_t)((x & 0x7f) | (x >> 7 ? 0x80 : 0));
    b -= nv;
    memcpy(b, v, nv);
    *--b = (uint8_t)(field << 3 | 2);
    b -= npre;
    memcpy(b, pre, npre);
    *n += nv + 1 + npre;
    return b;
}

/* If nested `depth` deep, written on the wire (protobuf-c would recurse building it too):
 * graph {node {op_type "If", attribute {name "then_branch", type GRAPH, g graph {...}}}}. */
static void write_nested_if(const char *path, int depth) {
    size_t cap = (size_t)depth * 48 + 64, n = 0;
    uint8_t *buf = malloc(cap), *b = buf + cap;
    static const char attr[] = "\x0a\x0bthen_branch\xa0\x01\x05", node[] = "\x22\x02If";
    for (int d = 0; d < depth; d++) {
        b = wrap_field(b, &n, 6, attr, sizeof attr - 1); /* AttributeProto.g */
        b = wrap_field(b, &n, 5, node, sizeof node - 1); /* NodeProto.attribute */
        b = wrap_field(b, &n, 1, "", 0);                 /* GraphProto.node */
    }
    b = wrap_field(b, &n, 7, "\x08\x08\x42\x02\x10\x11", 6); /* ir_version 8, opset 17, graph */
    write_bytes(path, b, n);
    free(buf);
}

static void test_hostile_nesting(void) {
    char args[1024];
    write_nested_if(tmp("nested.onnx"), 3000); /* overflowed protobuf-c's stack */
    snprintf(args, sizeof args, "info %s", tmp("nested.onnx"));
    expect_error(args, "nested more than");
    write_nested_if(tmp("nested_ok.onnx"), 5); /* parses; If is not an op the engine runs */
    snprintf(args, sizeof args, "info %s", tmp("nested_ok.onnx"));
    expect_error(args, "unsupported op: If");
}

static void test_hostile_silent_results(void) {
    int x, y;
    il_graph *g = one_input_graph(1, 1, &x); /* AveragePool with pads >= kernel gave NaN, exit 0 */
    g->values[x].rank = 4;
    g->values[x].dims[2] = g->values[x].dims[3] = 4;
    y = il_graph_value(g, "y");
    int k = il_graph_add_node(g, "AveragePool", "", "ap", 1, &x, 1, &y);
    int64_t ks[2] = {2, 2}, pads[4] = {2, 2, 2, 2};
    il_node_set_ints(g, k, "kernel_shape", 2, ks);
    il_node_set_ints(g, k, "pads", 4, pads);
    il_graph_add_output(g, y);
    expect_model_error(g, "avgpool_pads.onnx", "run", "wholly in the padding");
    g = one_input_graph(2, 3, &x); /* opset 99 ran without a word */
    il_graph_set_opset(g, "", 99);
    y = il_graph_value(g, "y");
    il_graph_add_node(g, "Relu", "", NULL, 1, &x, 1, &y);
    il_graph_add_output(g, y);
    expect_model_error(g, "opset99.onnx", "run", "opset 99");
    g = one_input_graph(2, 3, &x); /* float8 was "undefined" */
    g->values[x].dtype = (il_dtype)17;
    y = il_graph_value(g, "y");
    il_graph_add_node(g, "Relu", "", NULL, 1, &x, 1, &y);
    il_graph_add_output(g, y);
    expect_model_error(g, "float8.onnx", "run", "float8e4m3fn");
    /* NaN inputs: the summary said "min inf max -inf mean nan" */
    char out[8192], args[1024];
    g = one_input_graph(2, 3, &x);
    y = il_graph_value(g, "y");
    il_graph_add_node(g, "Relu", "", NULL, 1, &x, 1, &y);
    il_graph_add_output(g, y);
    save(g, tmp("relu23.onnx"));
    int64_t d[2] = {2, 3};
    il_tensor *t = il_tensor_new(IL_F32, 2, d);
    for (int i = 0; i < 6; i++) ((float *)t->data)[i] = i < 2 ? NAN : (float)i;
    IL_ASSERT_OK(il_tensor_save_npy(t, tmp("nan.npy")));
    for (int i = 0; i < 6; i++) ((float *)t->data)[i] = NAN;
    IL_ASSERT_OK(il_tensor_save_npy(t, tmp("allnan.npy")));
    il_tensor_free(t);
    snprintf(args, sizeof args, "run %s --input x=%s", tmp("relu23.onnx"), tmp("nan.npy"));
    CU_ASSERT_EQUAL(cli(args, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "min 2  max 5  mean 3.5  2 NaN"));
    snprintf(args, sizeof args, "run %s --input x=%s", tmp("relu23.onnx"), tmp("allnan.npy"));
    CU_ASSERT_EQUAL(cli(args, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "all 6 NaN"));
    CU_ASSERT_PTR_NULL(strstr(out, "inf"));
    /* --input twice silently took the last */
    snprintf(args, sizeof args, "run %s --input x=%s --input x=%s", tmp("relu23.onnx"), tmp("nan.npy"),
             tmp("allnan.npy"));
    expect_error(args, "--input x is given twice");
}

IL_SUITE("cli_errors", {"bad files", test_bad_files}, {"bad graphs", test_bad_graphs}, {"bad inputs", test_bad_inputs},
         {"a good run", test_good_run}, {"hostile: arity and attributes", test_hostile_arity},
         {"hostile: sizes", test_hostile_sizes}, {"hostile: external data", test_hostile_external_data},
         {"hostile: nesting", test_hostile_nesting}, {"hostile: silent results", test_hostile_silent_results})
