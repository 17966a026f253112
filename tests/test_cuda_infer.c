/*
 * test_cuda_infer.c - the cuda backend behind the backend interface (engine/backend.c,
 * engine/plan_device.c, engine/cuda/kernels_cuda.c): plans placed on the GPU against the cpu
 * reference kernels on fresh random inputs (rtol 1e-3, atol 1e-4: cuBLAS sums in another
 * order), with nodes the GPU has no kernel for falling back to the cpu and the copies counted;
 * every registered cuda kernel must be used by some case. Without a GPU each test prints
 * "skipped: no GPU".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/plan_int.h"
#include "../passes/passes.h"
#include "test.h"

static int have_gpu(void) {
    const il_backend_iface *b = il_backend_find("cuda");
    const char *why = "not built with CUDA";
    if (b && b->available(&why)) return 1;
    printf("skipped: no GPU (%s) ", why ? why : "?");
    return 0;
}

static const il_kernel *used[64];
static int n_used;

static void mark_used(const il_plan *p, const il_graph *g) {
    for (int k = 0; k < g->n_nodes; k++) {
        const il_kernel *kn = il_plan_kernel(p, k);
        if (!kn || !il_plan_on_acc(p, k)) continue;
        int seen = 0;
        for (int i = 0; i < n_used; i++) seen |= used[i] == kn;
        if (!seen && n_used < 64) used[n_used++] = kn;
    }
}

/* g on the GPU with options o (backend cuda, batch set here) against the cpu reference kernels,
 * twice on different inputs (the second run reuses the uploaded weights and staging buffers, or
 * replays the captured graph). tol 0: float32 (rtol 1e-3, atol 1e-4: cuBLAS/cuDNN sum in another
 * order); else rtol tol and atol tol * max|reference| (TF32 and half precision). Returns the
 * number of nodes that fell back to the cpu. */
static int check_with(const il_graph *g, int64_t batch, const char *what, il_plan_opts go, double tol) {
    il_tensor *in[8] = {0};
    uint64_t rng = 42;
    for (int i = 0; i < g->n_inputs; i++) {
        const il_value *x = &g->values[g->inputs[i]];
        int64_t d[IL_MAX_RANK];
        for (int j = 0; j < x->rank; j++) d[j] = x->dims[j] < 0 ? batch : x->dims[j];
        in[i] = il_tensor_new(IL_F32, x->rank, d);
    }
    il_plan_opts ro = {.reference = 1, .threads = 2, .batch = batch};
    go.backend = IL_BACKEND_CUDA, go.batch = batch;
    il_plan *r, *p;
    IL_ASSERT_OK(il_plan_create(g, &ro, &r));
    IL_ASSERT_OK(il_plan_create(g, &go, &p));
    mark_used(p, g);
    int acc, fb;
    int64_t up, down;
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < g->n_inputs; i++) il_tensor_fill_random(in[i], &rng, -1, 1);
        IL_ASSERT_OK(il_plan_run(r, in, g->n_inputs));
        IL_ASSERT_OK(il_plan_run(p, in, g->n_inputs));
        for (int o = 0; o < il_plan_n_outputs(p); o++) {
            char msg[256];
            int64_t w;
            const il_tensor *ref = il_plan_output(r, o);
            double rtol = tol ? tol : 1e-3, atol = 1e-4;
            if (tol) {
                double mx = 0;
                for (int64_t e = 0; e < il_tensor_numel(ref); e++) {
                    double v = fabs(il_tensor_get(ref, e));
                    mx = v > mx ? v : mx;
                }
                atol = tol * (mx > 0 ? mx : 1);
            }
            int ok = il_tensor_allclose(il_plan_output(p, o), ref, rtol, atol, &w, msg, sizeof msg);
            if (!ok)
                fprintf(stderr, "\n  %s (%s) output %d run %d, gpu vs cpu reference: %s\n", what,
                        il_precision_name(go.precision), o, rep, msg);
            CU_ASSERT_TRUE(ok);
        }
    }
    il_plan_copies(p, &acc, &fb, &up, &down);
    CU_ASSERT(acc > 0);
    CU_ASSERT(down >= il_plan_n_outputs(p)); /* the outputs at least come back */
    il_plan_free(r);
    il_plan_free(p);
    for (int i = 0; i < g->n_inputs; i++) il_tensor_free(in[i]);
    return fb;
}

static int check_gpu(const il_graph *g, int64_t batch, const char *what) {
    return check_with(g, batch, what, (il_plan_opts){0}, 0);
}

static void test_teacher(void) {
    if (!have_gpu()) return;
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(IL_TESTDATA "/fmnist_teacher.onnx", &g));
    CU_ASSERT_EQUAL(check_gpu(g, 3, "teacher -O0"), 0); /* Conv, BatchNormalization, Relu, MaxPool, GAP, Flatten, Gemm */
    il_pass_opts po = {.seed = 1};
    IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &po, NULL, 0, NULL));
    CU_ASSERT_EQUAL(check_gpu(g, 5, "teacher -O2"), 0); /* FusedConv */
    il_plan_opts im2col = {.kernels = "Conv=im2col-cublas,FusedConv=im2col-cublas"};
    CU_ASSERT_EQUAL(check_with(g, 3, "teacher -O2 im2col", im2col, 0), 0);
    il_graph *g0;
    IL_ASSERT_OK(il_onnx_load(IL_TESTDATA "/fmnist_teacher.onnx", &g0));
    CU_ASSERT_EQUAL(check_with(g0, 3, "teacher -O0 im2col", im2col, 0), 0);
    il_graph_free(g0);
    il_graph_free(g);
}

/* cuDNN convolutions in every precision, and the half-precision storage: ops without a half
 * kernel fall back to the cpu, so values cross as float32 <-> half both ways. Tolerances: TF32
 * rounds the products' inputs to 10 bits (2e-2 of the output's range); fp16 stores 10-bit
 * mantissas between layers (3e-2); bf16 7 bits (1e-1). */
static void test_precisions(void) {
    if (!have_gpu()) return;
    const char *models[] = {IL_TESTDATA "/fmnist_teacher.onnx", IL_TESTDATA "/tiny_resnet_legacy/model.onnx"};
    const double tol[4] = {0, 2e-2, 3e-2, 1e-1};
    for (int m = 0; m < 2; m++) {
        il_graph *g;
        IL_ASSERT_OK(il_onnx_load(models[m], &g));
        for (int o = 0; o < 2; o++) {
            if (o) {
                il_pass_opts po = {.seed = 1};
                IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &po, NULL, 0, NULL));
            }
            for (int prec = IL_PREC_FP32; prec <= IL_PREC_BF16; prec++) {
                char what[128];
                snprintf(what, sizeof what, "%s -O%d", m ? "tiny resnet" : "teacher", o ? 2 : 0);
                check_with(g, 4, what, (il_plan_opts){.precision = prec}, tol[prec]);
            }
            /* half precision computed NCHW (the channels-last layouts off) */
            setenv("INFERLAB_CUDA_NCHW", "1", 1);
            check_with(g, 4, m ? "tiny resnet NCHW" : "teacher NCHW", (il_plan_opts){.precision = IL_PREC_FP16}, tol[2]);
            unsetenv("INFERLAB_CUDA_NCHW");
        }
        il_graph_free(g);
    }
}

/* CUDA graphs: the captured run replayed on new inputs equals the cpu, in fp32 and fp16; a plan
 * with a cpu node runs node by node (no capture) and is still right. */
static void test_graphs(void) {
    if (!have_gpu()) return;
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(IL_TESTDATA "/fmnist_teacher.onnx", &g));
    il_pass_opts po = {.seed = 1};
    IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &po, NULL, 0, NULL));
    CU_ASSERT_EQUAL(check_with(g, 8, "teacher -O2 graphs", (il_plan_opts){.graphs = 1}, 0), 0);
    check_with(g, 8, "teacher -O2 graphs fp16", (il_plan_opts){.graphs = 1, .precision = IL_PREC_FP16}, 3e-2);
    il_plan_opts go = {.backend = IL_BACKEND_CUDA, .graphs = 1, .batch = 2};
    il_plan *p;
    IL_ASSERT_OK(il_plan_create(g, &go, &p));
    il_tensor *x = il_tensor_new(IL_F32, 4, (int64_t[]){2, 1, 28, 28});
    uint64_t rng = 9;
    il_tensor_fill_random(x, &rng, 0, 1);
    for (int rep = 0; rep < 3; rep++) IL_ASSERT_OK(il_plan_run(p, &x, 1));
    int64_t up, down;
    il_plan_copies(p, NULL, NULL, &up, &down);
    CU_ASSERT_EQUAL(up, 1);   /* the input, once per run */
    CU_ASSERT_EQUAL(down, 1); /* the logits */
    IL_ASSERT_OK(il_plan_rerun(p)); /* resident: replays on the inputs already there */
    il_plan_free(p);
    go.graphs = 0, go.kernels = "MaxPool=ref"; /* a cpu node: no resident rerun */
    IL_ASSERT_OK(il_plan_create(g, &go, &p));
    IL_ASSERT_OK(il_plan_run(p, &x, 1));
    CU_ASSERT_NOT_EQUAL(il_plan_rerun(p), IL_OK);
    il_error_clear();
    il_plan_free(p);
    il_tensor_free(x);
    il_graph_free(g);
}

/* The zoo's ResNet-8: residual Adds (FusedConv with Z after -O2), Clip-free; and a graph with an
 * op the GPU lacks in the middle, so values cross twice. */
static void test_fallback_and_residual(void) {
    if (!have_gpu()) return;
    il_graph *g = il_graph_new("mixed");
    il_graph_set_opset(g, "", 13);
    uint64_t rng = 5;
    int64_t xd[4] = {-1, 4, 10, 10}, wd[4] = {4, 4, 3, 3}, cd[1] = {1};
    int x = il_graph_value(g, "x");
    g->values[x].dtype = IL_F32;
    g->values[x].rank = 4;
    memcpy(g->values[x].dims, xd, sizeof xd);
    il_graph_add_input(g, x);
    il_tensor *w = il_tensor_new(IL_F32, 4, wd), *lo = il_tensor_new(IL_F32, 0, cd), *hi = il_tensor_new(IL_F32, 0, cd);
    il_tensor_fill_random(w, &rng, -0.5, 0.5);
    ((float *)lo->data)[0] = -0.25f, ((float *)hi->data)[0] = 0.5f;
    int wv = il_graph_add_constant(g, "w", w), lov = il_graph_add_constant(g, "lo", lo), hiv = il_graph_add_constant(g, "hi", hi);
    int a = il_graph_value(g, "a"), b = il_graph_value(g, "b"), c = il_graph_value(g, "c"), d = il_graph_value(g, "d"),
        e = il_graph_value(g, "e"), f = il_graph_value(g, "f"), y = il_graph_value(g, "y");
    int cin[2] = {x, wv};
    int k = il_graph_add_node(g, "Conv", "", "conv", 2, cin, 1, &a);
    int64_t pads[4] = {1, 1, 1, 1};
    il_node_set_ints(g, k, "pads", 4, pads);
    il_graph_add_node(g, "Sigmoid", "", "sig", 1, &a, 1, &b); /* no cuda kernel: the cpu runs it */
    int add[2] = {b, x};
    il_graph_add_node(g, "Add", "", "add", 2, add, 1, &c);
    int clip[3] = {c, lov, hiv};
    il_graph_add_node(g, "Clip", "", "clip", 3, clip, 1, &d);
    il_graph_add_node(g, "Identity", "", "id", 1, &d, 1, &e);
    int64_t axes_d[1] = {1};
    il_tensor *axes = il_tensor_new(IL_I64, 1, axes_d);
    ((int64_t *)axes->data)[0] = 0;
    int unsq[2] = {e, il_graph_add_constant(g, "axes", axes)};
    il_graph_add_node(g, "Unsqueeze", "", "unsq", 2, unsq, 1, &f);
    il_tensor *shape = il_tensor_new(IL_I64, 1, (int64_t[]){2});
    ((int64_t *)shape->data)[0] = -1, ((int64_t *)shape->data)[1] = 100;
    il_tensor *axes2 = il_tensor_clone(axes);
    int f2 = il_graph_value(g, "f2"), sq[2] = {f, il_graph_add_constant(g, "axes2", axes2)};
    il_graph_add_node(g, "Squeeze", "", "squeeze", 2, sq, 1, &f2);
    int rs[2] = {f2, il_graph_add_constant(g, "shape", shape)};
    il_graph_add_node(g, "Reshape", "", "reshape", 2, rs, 1, &y);
    il_graph_add_output(g, y);
    /* Sigmoid on the cpu (forced): values cross twice */
    CU_ASSERT_EQUAL(check_with(g, 2, "mixed", (il_plan_opts){.kernels = "Sigmoid=ref"}, 0), 1);
    il_graph_free(g);
    il_graph *r;
    IL_ASSERT_OK(il_onnx_load(IL_TESTDATA "/tiny_resnet_legacy/model.onnx", &r));
    check_gpu(r, 2, "tiny resnet");
    il_pass_opts po = {.seed = 1};
    IL_ASSERT_OK(il_pipeline_run(r, il_pass_preset(2), &po, NULL, 0, NULL));
    check_gpu(r, 2, "tiny resnet -O2");
    il_graph_free(r);
}

/* Last: every registered cuda convolution kernel was placed by some case above (the other ops'
 * kernels have the cuda-ops suite). */
static void test_every_cuda_kernel_used(void) {
    if (!have_gpu()) return;
    int n, missing = 0;
    const il_kernel *const *all = il_kernel_all(&n);
    for (int i = 0; i < n; i++) {
        if (strcmp(all[i]->backend, "cuda") || all[i]->role != IL_KERNEL_FORWARD ||
            (strcmp(all[i]->op, "Conv") && strcmp(all[i]->op, "FusedConv")))
            continue; /* the GPU trainer's kernels (role backward) have train-cuda */
        int seen = 0;
        for (int j = 0; j < n_used; j++) seen |= used[j] == all[i];
        if (!seen) {
            fprintf(stderr, "\n  cuda kernel %s/%s: no case runs it", all[i]->op, all[i]->name);
            missing++;
        }
    }
    CU_ASSERT_EQUAL(missing, 0);
}

/* Squeeze-excitation's product fused into its convolution (pass fuse-se-scale's ScaledConv, a
 * cpu kernel only): a plan for the GPU splits it into Mul and FusedConv again on its own copy, so
 * both run there; the split graph computes what the fused one does (no GPU needed for that half),
 * and on a GPU every node of the plan is placed there and matches the cpu reference. */
static il_graph *se_graph(void) {
    uint64_t rng = 11;
    il_graph *g = il_graph_new("se");
    il_graph_set_opset(g, "", 17);
    int x = il_graph_value(g, "x"), p = il_graph_value(g, "p"), s = il_graph_value(g, "s"), m = il_graph_value(g, "m"),
        y = il_graph_value(g, "y");
    g->values[x].dtype = IL_F32;
    g->values[x].rank = 4;
    memcpy(g->values[x].dims, (int64_t[]){2, 16, 9, 9}, 4 * sizeof(int64_t));
    il_graph_add_input(g, x);
    il_graph_add_node(g, "GlobalAveragePool", "", "gap", 1, &x, 1, &p);
    il_graph_add_node(g, "Relu", "", "act", 1, &p, 1, &s); /* SE's Sigmoid has no cuda kernel */
    il_graph_add_node(g, "Mul", "", "mul", 2, (int[]){s, x}, 1, &m);
    il_tensor *w = il_tensor_new(IL_F32, 4, (int64_t[]){8, 16, 1, 1}), *b = il_tensor_new(IL_F32, 1, (int64_t[]){8});
    il_tensor_fill_random(w, &rng, -0.5, 0.5);
    il_tensor_fill_random(b, &rng, -0.5, 0.5);
    int in[3] = {m, il_graph_add_constant(g, "w", w), il_graph_add_constant(g, "b", b)};
    il_graph_add_node(g, "Conv", "", "proj", 3, in, 1, &y);
    il_graph_add_output(g, y);
    return g;
}

/* c, g split for the accelerator, verifies, computes what g does (random inputs, seeded) and
 * holds no `op` any more. */
static void split_done(const il_graph *g, const il_graph *c, const char *op, uint64_t rng) {
    IL_ASSERT_OK(il_graph_verify(c));
    IL_ASSERT_OK(il_graph_equivalent(g, c, NULL, &rng));
    int left = 0;
    for (int k = 0; k < c->n_nodes; k++) left += !c->nodes[k].dead && !strcmp(c->nodes[k].op_type, op);
    CU_ASSERT_EQUAL(left, 0);
}

static void test_scaled_conv_split(void) {
    il_graph *g = se_graph();
    IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &(il_pass_opts){0}, NULL, 0, NULL));
    int fused = 0;
    for (int k = 0; k < g->n_nodes; k++) fused += !g->nodes[k].dead && !strcmp(g->nodes[k].op_type, "ScaledConv");
    CU_ASSERT_EQUAL(fused, 1);
    const il_backend_iface *acc = il_backend_find("cuda");
    if (!acc) {
        printf("skipped: not built with CUDA ");
        il_graph_free(g);
        return;
    }
    il_graph *c = il_graph_clone(g);
    CU_ASSERT_EQUAL(il_plan_split_scaled(acc, c), 1);
    split_done(g, c, "ScaledConv", 5);
    il_graph_free(c);
    if (have_gpu()) CU_ASSERT_EQUAL(check_gpu(g, 2, "ScaledConv split"), 0); /* no node falls back */
    il_graph_free(g);
}

/* The -O2 graphs of two tiny exports split for an accelerator without the kernel of `op`: split
 * makes `want` splits in each, the split graph computes what the fused one does
 * (il_graph_equivalent: random inputs, rtol 1e-3), verifies and holds no `op`; the cpu, which
 * has the kernel, splits nothing. Needs no GPU: the split asks only the registry. */
static void check_split(const char *m0, const char *m1, int (*split)(const il_backend_iface *, il_graph *), int want,
                        const char *op, uint64_t rng) {
    const char *models[2] = {m0, m1};
    const il_backend_iface cuda = {.name = "cuda"};
    for (int m = 0; m < 2; m++) {
        il_graph *g;
        IL_ASSERT_OK(il_onnx_load(models[m], &g));
        IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &(il_pass_opts){.seed = 1}, NULL, 0, NULL));
        il_graph *c = il_graph_clone(g);
        CU_ASSERT_EQUAL(split(&cuda, c), want);
        split_done(g, c, op, rng);
        CU_ASSERT_EQUAL(split(&(il_backend_iface){.name = "cpu"}, g), 0);
        il_graph_free(c);
        il_graph_free(g);
    }
}

/* fuse-skip-layernorm's SkipLayerNormalization has no cuda kernel: the plan splits each back into
 * Add and LayerNormalization (tiny BERT's post-LN blocks, tiny ViT's pre-LN ones whose sum is
 * read again). */
static void test_skip_layernorm_split(void) {
    check_split(IL_TESTDATA "/tiny_bert_legacy/model.onnx", IL_TESTDATA "/tiny_vit_legacy/model.onnx",
                il_plan_split_skipln, 4, "SkipLayerNormalization", 7);
}

/* fuse-attention's MultiHeadAttention (the head transposes folded into the attention) has no
 * cuda kernel: the plan writes the Transposes and an Attention back (tiny BERT, both exports). */
static void test_heads_split(void) {
    check_split(IL_TESTDATA "/tiny_bert_legacy/model.onnx", IL_TESTDATA "/tiny_bert_dynamo/model.onnx",
                il_plan_split_heads, 2, "MultiHeadAttention", 9);
}

IL_SUITE("cuda-infer", {"teacher on the GPU = cpu reference", test_teacher},
         {"fallback to the cpu, residuals, copies", test_fallback_and_residual},
         {"cuDNN convs in fp32/tf32/fp16/bf16, half storage", test_precisions},
         {"CUDA graph replay = cpu", test_graphs},
         {"ScaledConv split for the GPU", test_scaled_conv_split},
         {"SkipLayerNormalization split for the GPU", test_skip_layernorm_split},
         {"MultiHeadAttention split for the GPU", test_heads_split}, {"every cuda kernel is run", test_every_cuda_kernel_used})
