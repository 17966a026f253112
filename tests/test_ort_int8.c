/*
 * test_ort_int8.c - a model quantized by ONNX Runtime's own tool (tests/ort_int8: the demo
 * teacher through onnxruntime.quantization.quantize_static 1.30.0, QDQ format, per-channel int8
 * weights, uint8 activations, MinMax over 256 Fashion-MNIST test images; tools/ort_quant.py on
 * the GPU machine, which has ORT's python tools). Its inputs were the images scaled to [0, 1]
 * without the teacher's mean/std, so its accuracy means nothing; agreement with ORT does.
 *
 * - ORT's outputs on two test images (caseK_in.pb, caseK_out.pb: named so that `inferlab check`, which conformance runs over tests/data, does not take them for a test case) against ours, on the QDQ reference
 *   kernels and with -O2 (fuse-qdq: the integer kernels): within 2 steps of the logits' output
 *   scale (ORT runs integer kernels that requantize between layers; the QDQ reference rounds the
 *   same places in float, so a step of difference in a logit is expected, two is the bound).
 * - ORT's top-1 on 1,024 further test images (ort_qdq_argmax.npy) against ours: at least 97%
 *   equal (ORT's own QDQ and QOperator runs of this model agree on 97.9% of them: these inputs
 *   leave many near ties).
 * - The QOperator form of the same quantization (fmnist_teacher_ort_qop.onnx, com.microsoft
 *   QGemm; qop_caseK_*.pb, ort_qop_argmax.npy): the same checks, top-1 held to 99%.
 */
#include "test.h"

#include "distill/distill.h"
#include "passes/passes.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define DIR "tests/ort_int8" /* beside tests/data: conformance runs `check` over that folder */

/* The scale of the DequantizeLinear that produces graph output 0. */
static double output_scale(const il_graph *g) {
    int v = g->outputs[0], k = g->values[v].producer;
    if (k < 0 || strcmp(g->nodes[k].op_type, "DequantizeLinear")) return 0;
    const il_tensor *s = g->values[g->nodes[k].inputs[1]].constant;
    return s ? il_tensor_get(s, 0) : 0;
}

/* ORT's outputs of the two cases DIR/<prefix>K_in.pb, _out.pb against g's, within tol. */
static void check_cases(il_graph *g, const char *prefix, double tol, const char *what) {
    il_plan_opts o = {.threads = 1};
    il_plan *p;
    IL_ASSERT_OK(il_plan_create(g, &o, &p));
    for (int k = 0; k < 2; k++) {
        char path[512];
        il_tensor *x, *want;
        snprintf(path, sizeof path, DIR "/%s%d_in.pb", prefix, k);
        IL_ASSERT_OK(il_tensor_load_pb(path, &x, NULL));
        snprintf(path, sizeof path, DIR "/%s%d_out.pb", prefix, k);
        IL_ASSERT_OK(il_tensor_load_pb(path, &want, NULL));
        IL_ASSERT_OK(il_plan_run(p, &x, 1));
        const il_tensor *got = il_plan_output(p, 0);
        double worst = 0;
        for (int64_t i = 0; i < il_tensor_numel(want); i++)
            worst = fmax(worst, fabs(il_tensor_get(got, i) - il_tensor_get(want, i)));
        if (worst > tol) fprintf(stderr, "\n  %s case %d: |ours - ORT| %.4g > %.4g", what, k, worst, tol);
        CU_ASSERT(worst <= tol);
        il_tensor_free(x);
        il_tensor_free(want);
    }
    il_plan_free(p);
}

/* The share of images 256.. whose top-1 under g is ORT's, run 64 images a call (the models'
 * batch dim is symbolic). */
static double agreement(il_graph *g, const il_dataset *d, const il_tensor *ort) {
    int64_t n = il_tensor_numel(ort), same = 0, px = (int64_t)d->c * d->h * d->w, nb = n % 64 ? 1 : 64;
    il_plan_opts o = {.threads = 1, .batch = nb}; /* one: 2 threads spin-wait on a loaded 2-core machine */
    il_plan *p;
    if (il_plan_create(g, &o, &p)) return -1;
    il_tensor *x = il_tensor_new(IL_F32, 4, (int64_t[]){nb, d->c, d->h, d->w});
    for (int64_t i0 = 0; i0 < n; i0 += nb) {
        memcpy(x->data, d->x + (256 + i0) * px, (size_t)(nb * px) * sizeof(float));
        if (il_plan_run(p, &x, 1)) break;
        const il_tensor *y = il_plan_output(p, 0);
        int64_t classes = il_tensor_numel(y) / nb;
        for (int64_t i = 0; i < nb; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < classes; j++)
                if (il_tensor_get(y, i * classes + j) > il_tensor_get(y, i * classes + best)) best = j;
            same += best == (int64_t)il_tensor_get(ort, i0 + i);
        }
    }
    il_tensor_free(x);
    il_plan_free(p);
    return (double)same / (double)n;
}

/* ORT's top-1 in DIR/argmax (on test images 256..) against g's and f's; -1, -1 without the data. */
static void agreements(il_graph *g, il_graph *f, const char *argmax, double *a, double *b) {
    il_dataset *d = NULL;
    il_tensor *ort = NULL;
    char path[512];
    *a = *b = -1;
    if (il_data_load("fashion-mnist:test", IL_SPLIT_TEST, &d)) {
        printf("skipped: Fashion-MNIST is not installed (make deps) ");
        il_error_clear();
        return;
    }
    snprintf(path, sizeof path, DIR "/%s", argmax);
    IL_ASSERT_OK(il_tensor_load_npy(path, &ort));
    *a = agreement(g, d, ort), *b = agreement(f, d, ort);
    printf("top-1 = ORT on %lld images: %.2f%%, -O2 %.2f%% ", (long long)il_tensor_numel(ort), 100 * *a, 100 * *b);
    il_tensor_free(ort);
    il_data_free(d);
}

static int count_op(const il_graph *g, const char *op) {
    int n = 0;
    for (int k = 0; k < g->n_nodes; k++) n += !g->nodes[k].dead && !strcmp(g->nodes[k].op_type, op);
    return n;
}

static void test_ort_qdq(void) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(DIR "/fmnist_teacher_ort_qdq.onnx", &g));
    double s = output_scale(g);
    CU_ASSERT(s > 0);
    check_cases(g, "case", 2 * s + 1e-6, "QDQ reference");
    il_graph *f = il_graph_clone(g);
    il_pass_opts po = {.seed = 1};
    IL_ASSERT_OK(il_pipeline_run(f, il_pass_preset(2), &po, NULL, 0, NULL));
    CU_ASSERT(count_op(f, "QConv") > 0); /* ORT's QDQ pattern reaches the integer kernels */
    check_cases(f, "case", 2 * s + 1e-6, "-O2 integer kernels");
    double a, b;
    agreements(g, f, "ort_qdq_argmax.npy", &a, &b);
    CU_ASSERT(a < 0 || a >= 0.97);
    CU_ASSERT(b < 0 || b >= 0.97);
    il_graph_free(f);
    il_graph_free(g);
}

/* The same teacher through quantize_static's QOperator format (tools/ort_quant.py, same
 * calibration): QuantizeLinear, QLinearConv, DequantizeLinear, float BatchNormalization and
 * Relu, MaxPool, GlobalAveragePool, and com.microsoft QGemm for the classifier. ORT's outputs on
 * two images (qop_caseK) within 2 output steps; top-1 as ORT's on >= 99% of 1,024 images, as
 * loaded and after -O2, with QGemm on the integer kernel. */
static void test_ort_qop(void) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(DIR "/fmnist_teacher_ort_qop.onnx", &g));
    CU_ASSERT_EQUAL(count_op(g, "QGemm"), 1);
    CU_ASSERT_EQUAL(count_op(g, "QLinearConv"), 6);
    il_shapes *sh; /* MACs as the float teacher's: QLinearConv's weight is input 3, QGemm counted */
    IL_ASSERT_OK(il_infer_shapes(g, 1, NULL, 0, &sh));
    int64_t macs = 0;
    for (int k = 0; k < g->n_nodes; k++) macs += il_node_macs(g, sh, k);
    il_shapes_free(sh);
    CU_ASSERT_EQUAL(macs, 29127168 + 128 * 10);
    double s = output_scale(g);
    CU_ASSERT(s > 0);
    check_cases(g, "qop_case", 2 * s + 1e-6, "QOperator model");
    il_graph *f = il_graph_clone(g);
    il_pass_opts po = {.seed = 1};
    IL_ASSERT_OK(il_pipeline_run(f, il_pass_preset(2), &po, NULL, 0, NULL));
    check_cases(f, "qop_case", 2 * s + 1e-6, "QOperator model -O2");
    il_plan_opts o = {.threads = 1};
    il_plan *p;
    IL_ASSERT_OK(il_plan_create(f, &o, &p));
    int on_qgemm = 0;
    for (int k = 0; k < f->n_nodes; k++)
        if (!f->nodes[k].dead && !strcmp(f->nodes[k].op_type, "QGemm"))
            on_qgemm = il_plan_kernel(p, k) && !strcmp(il_plan_kernel(p, k)->name, "qgemm");
    CU_ASSERT(on_qgemm);
    il_plan_free(p);
    double a, b;
    agreements(g, f, "ort_qop_argmax.npy", &a, &b);
    CU_ASSERT(a < 0 || a >= 0.99);
    CU_ASSERT(b < 0 || b >= 0.99);
    il_graph_free(f);
    il_graph_free(g);
}

IL_SUITE("ort-int8", {"ONNX Runtime's quantize_static model: outputs and top-1 as ORT's", test_ort_qdq},
         {"ONNX Runtime's QOperator model (QLinearConv, com.microsoft QGemm): outputs and top-1 as ORT's", test_ort_qop})
