/*
 * test_train_cuda.c - the CUDA trainer against the CPU trainer (the reference) on the zoo's
 * models: logits of a training and an inference forward, BatchNormalization's running
 * statistics, every parameter's gradient and the input's gradient after backward, on fresh
 * random inputs and output gradients. Tolerance: |gpu - cpu| <= 1e-4 + 1e-3 * max|cpu| per
 * tensor (float32 sums in another order). Also: a step repeats bit for bit; an unsupported op
 * and a missing device give an error, not a crash. Without a GPU: "skipped: no GPU".
 */
#include "test.h"

#include "distill/distill.h"

#include <math.h>
#include <string.h>

static int have_gpu(void) {
    il_trainer *t = NULL;
    il_zoo_opts zo;
    il_zoo_defaults(&zo);
    zo.width = 8;
    il_graph *g;
    if (il_zoo_build("mlp", &zo, &g)) return 0;
    il_trainer_opts o = {.dtype = IL_F32, .threads = 1, .backend = IL_BACKEND_CUDA};
    il_status st = il_trainer_create(g, &o, &t);
    il_trainer_free(t);
    il_graph_free(g);
    if (st) printf("skipped: no GPU (%s) ", il_errmsg());
    return !st;
}

/* Mismatches of b against the reference a, printed with the name. */
static int close_enough(const char *what, const il_tensor *a, const il_tensor *b) {
    CU_ASSERT_EQUAL_FATAL(il_tensor_numel(a), il_tensor_numel(b));
    double amax = 0;
    for (int64_t i = 0; i < il_tensor_numel(a); i++) amax = fmax(amax, fabs(il_tensor_get(a, i)));
    double tol = 1e-4 + 1e-3 * amax;
    int bad = 0;
    for (int64_t i = 0; i < il_tensor_numel(a); i++) {
        double x = il_tensor_get(a, i), y = il_tensor_get(b, i);
        if (!(fabs(x - y) <= tol) && bad++ < 3)
            fprintf(stderr, "\n  %s[%lld]: cpu %.7g, cuda %.7g (tolerance %.3g)", what, (long long)i, x, y, tol);
    }
    return bad;
}

static uint64_t rng = 0x5eed;

/* One model, CPU vs CUDA: forward (training), backward, forward (inference). */
static void compare(const char *model, int c, int hw, int width, int batch) {
    il_zoo_opts zo;
    il_zoo_defaults(&zo);
    zo.c = c, zo.h = zo.w = hw, zo.width = width, zo.seed = rng;
    il_graph *g;
    IL_ASSERT_OK(il_zoo_build(model, &zo, &g));
    il_trainer *tc, *tg;
    il_trainer_opts oc = {.dtype = IL_F32, .threads = 2, .input_grad = 1, .seed = 1};
    il_trainer_opts og = oc;
    og.backend = IL_BACKEND_CUDA;
    IL_ASSERT_OK(il_trainer_create(g, &oc, &tc));
    IL_ASSERT_OK(il_trainer_create(g, &og, &tg));
    int64_t xd[4] = {batch, c, hw, hw};
    il_tensor *x = il_tensor_new(IL_F32, 4, xd);
    il_tensor_fill_random(x, &rng, -2, 2);
    const il_tensor *yc, *yg;
    IL_ASSERT_OK(il_trainer_forward(tc, x, 1, &yc));
    IL_ASSERT_OK(il_trainer_forward(tg, x, 1, &yg));
    char what[160];
    int bad = 0;
    snprintf(what, sizeof what, "%s logits (training)", model);
    bad += close_enough(what, yc, yg);
    il_tensor *dy = il_tensor_new(IL_F32, yc->rank, yc->dims);
    il_tensor_fill_random(dy, &rng, -1, 1);
    il_trainer_zero_grad(tc), il_trainer_zero_grad(tg);
    IL_ASSERT_OK(il_trainer_backward(tc, dy));
    IL_ASSERT_OK(il_trainer_backward(tg, dy));
    for (int i = 0; i < il_trainer_n_params(tc); i++) {
        il_tensor *gc, *gg;
        const char *name = il_trainer_param(tc, i, NULL, &gc);
        il_trainer_param(tg, i, NULL, &gg);
        snprintf(what, sizeof what, "%s d%s", model, name);
        bad += close_enough(what, gc, gg);
    }
    snprintf(what, sizeof what, "%s dinput", model);
    bad += close_enough(what, il_trainer_input_grad(tc, 0), il_trainer_input_grad(tg, 0));
    for (int i = 0; i < il_trainer_n_buffers(tc); i++) {
        snprintf(what, sizeof what, "%s buffer %d", model, i);
        bad += close_enough(what, il_trainer_buffer(tc, i), il_trainer_buffer(tg, i));
    }
    IL_ASSERT_OK(il_trainer_forward(tc, x, 0, &yc));
    IL_ASSERT_OK(il_trainer_forward(tg, x, 0, &yg));
    snprintf(what, sizeof what, "%s logits (inference)", model);
    bad += close_enough(what, yc, yg);
    if (bad) fprintf(stderr, "\n  (%s: %d mismatches)\n", model, bad);
    CU_ASSERT_EQUAL(bad, 0);
    il_tensor_free(x), il_tensor_free(dy);
    il_trainer_free(tc), il_trainer_free(tg);
    il_graph_free(g);
}

static void test_cuda_matches_cpu(void) {
    if (!have_gpu()) return;
    compare("mlp", 1, 28, 32, 5);
    compare("lenet5", 1, 28, 0, 7);
    compare("vgg", 1, 28, 8, 6);
    compare("resnet8", 3, 32, 8, 4);
    compare("mobilenet_v2", 3, 32, 8, 3); /* Clip (ReLU6), depthwise and 1x1 convs, strides */
}

/* Two trainers from the same graph and input give the same bits. */
static void test_cuda_repeatable(void) {
    if (!have_gpu()) return;
    il_zoo_opts zo;
    il_zoo_defaults(&zo);
    zo.width = 8;
    il_graph *g;
    IL_ASSERT_OK(il_zoo_build("vgg", &zo, &g));
    int64_t xd[4] = {16, 1, 28, 28};
    il_tensor *x = il_tensor_new(IL_F32, 4, xd), *dy = NULL, *grads[2] = {0};
    il_tensor_fill_random(x, &rng, -1, 1);
    for (int r = 0; r < 2; r++) {
        il_trainer *t;
        il_trainer_opts o = {.dtype = IL_F32, .threads = 2, .backend = IL_BACKEND_CUDA};
        IL_ASSERT_OK(il_trainer_create(g, &o, &t));
        const il_tensor *y;
        IL_ASSERT_OK(il_trainer_forward(t, x, 1, &y));
        if (!dy) {
            dy = il_tensor_new(IL_F32, y->rank, y->dims);
            il_tensor_fill_random(dy, &rng, -1, 1);
        }
        IL_ASSERT_OK(il_trainer_backward(t, dy));
        il_tensor *gw;
        il_trainer_param(t, 0, NULL, &gw);
        grads[r] = il_tensor_clone(gw);
        il_trainer_free(t);
    }
    CU_ASSERT(il_test_tensors_equal(grads[0], grads[1]));
    il_tensor_free(grads[0]), il_tensor_free(grads[1]), il_tensor_free(x), il_tensor_free(dy);
    il_graph_free(g);
}

/* The ViT has LayerNormalization and MatMul, which the CUDA trainer does not run: a clear
 * error naming the op (also what a machine without a GPU says, in its own words). */
static void test_cuda_refuses(void) {
    il_zoo_opts zo;
    il_zoo_defaults(&zo);
    il_graph *g;
    IL_ASSERT_OK(il_zoo_build("vit", &zo, &g));
    il_trainer *t = NULL;
    il_trainer_opts o = {.dtype = IL_F32, .threads = 1, .backend = IL_BACKEND_CUDA};
    il_status st = il_trainer_create(g, &o, &t);
    CU_ASSERT_NOT_EQUAL(st, IL_OK);
    CU_ASSERT_PTR_NULL(t);
    CU_ASSERT(strstr(il_errmsg(), "CUDA") != NULL || strstr(il_errmsg(), "cuda") != NULL);
    il_trainer_opts o64 = {.dtype = IL_F64, .threads = 1, .backend = IL_BACKEND_CUDA};
    CU_ASSERT_NOT_EQUAL(il_trainer_create(g, &o64, &t), IL_OK);
    il_graph_free(g);
}

IL_SUITE("train-cuda", {"cuda trainer matches the cpu trainer", test_cuda_matches_cpu},
         {"cuda training step repeats bit for bit", test_cuda_repeatable},
         {"cuda trainer refuses what it cannot run", test_cuda_refuses})
