/*
 * test_train.c - distill/: every backward kernel against central finite differences in
 * float64, the losses, a tiny model that must fit a tiny set to 100%, determinism, the data
 * loaders' error paths, preprocessing metadata, Dirichlet shards, and the zoo (builds, runs in
 * the engine, passes onnx.checker).
 *
 * The gradient check: a one- or two-node graph whose weights are initializers, a trainer in
 * float64, loss = sum(R * output) for a fixed random R, so d(loss)/d(output) = R. Each checked
 * element e of every parameter and of the input gets (L(e + h) - L(e - h)) / 2h with h = 1e-6
 * and must match the analytic gradient within 1e-6 + 1e-5 |g|.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../distill/distill.h"
#include "test.h"

/* ---------------------------------------------------------------- tiny graphs */

static uint64_t trng = 12345;

static il_graph *tg_new(int opset) {
    il_graph *g = il_graph_new("t");
    il_graph_set_opset(g, "", opset);
    g->ir_version = 8;
    return g;
}

static int tg_input(il_graph *g, int rank, const int64_t *dims) {
    int v = il_graph_value(g, "x");
    g->values[v].dtype = IL_F32;
    g->values[v].rank = rank;
    memcpy(g->values[v].dims, dims, (size_t)rank * sizeof *dims);
    il_graph_add_input(g, v);
    return v;
}

static int tg_param(il_graph *g, const char *name, int rank, const int64_t *dims, double lo, double hi) {
    il_tensor *t = il_tensor_new(IL_F32, rank, dims);
    il_tensor_fill_random(t, &trng, lo, hi);
    return il_graph_add_constant(g, name, t);
}

static int tg_node(il_graph *g, const char *op, int n_in, const int *in) {
    char nm[32];
    snprintf(nm, sizeof nm, "n%d", g->n_nodes);
    int y = il_graph_new_value(g, nm);
    il_graph_add_node(g, op, "", nm, n_in, in, 1, &y);
    return y;
}
static int last(il_graph *g) { return g->n_nodes - 1; }

/* sum(R * out) in float64 for input x. */
static double tg_loss(il_trainer *t, const il_tensor *x, const il_tensor *R, int training) {
    const il_tensor *y;
    il_status st = il_trainer_forward(t, x, training, &y);
    if (st) {
        fprintf(stderr, "\n  forward: %s\n", il_errmsg());
        return NAN;
    }
    double s = 0;
    for (int64_t i = 0; i < il_tensor_numel(y); i++) s += il_tensor_get(y, i) * il_tensor_get(R, i);
    return s;
}

static int check_tensor(il_trainer *t, il_tensor *x, const il_tensor *R, il_tensor *w, const il_tensor *g,
                        const char *what, int training) {
    int bad = 0;
    int64_t n = il_tensor_numel(w), stride = n > 24 ? n / 24 : 1;
    for (int64_t i = 0; i < n; i += stride) {
        double w0 = il_tensor_get(w, i), h = 1e-6;
        il_tensor_set(w, i, w0 + h);
        double lp = tg_loss(t, x, R, training);
        il_tensor_set(w, i, w0 - h);
        double lm = tg_loss(t, x, R, training);
        il_tensor_set(w, i, w0);
        double num = (lp - lm) / (2 * h), ana = il_tensor_get(g, i);
        if (!(fabs(num - ana) <= 1e-6 + 1e-5 * fabs(num))) {
            if (bad++ < 3) fprintf(stderr, "\n  %s[%lld]: analytic %.9g, numeric %.9g", what, (long long)i, ana, num);
        }
    }
    return bad;
}

/* Check every parameter and the input of graph g (output: the last node's output). */
static void gradcheck(il_graph *g, int y, int training) {
    il_graph_add_output(g, y);
    il_trainer *t;
    il_trainer_opts o = {.dtype = IL_F64, .threads = 2, .input_grad = 1, .seed = 3};
    IL_ASSERT_OK(il_trainer_create(g, &o, &t));
    const il_value *xv = &g->values[g->inputs[0]];
    il_tensor *x = il_tensor_new(IL_F64, xv->rank, xv->dims);
    il_tensor_fill_random(x, &trng, -2, 2);
    const il_tensor *out;
    IL_ASSERT_OK(il_trainer_forward(t, x, training, &out));
    il_tensor *R = il_tensor_new(IL_F64, out->rank, out->dims);
    il_tensor_fill_random(R, &trng, -1, 1);
    il_trainer_zero_grad(t);
    IL_ASSERT_OK(il_trainer_backward(t, R));
    int bad = 0;
    for (int i = 0; i < il_trainer_n_params(t); i++) {
        il_tensor *w, *gw;
        const char *name = il_trainer_param(t, i, &w, &gw);
        il_tensor *gc = il_tensor_clone(gw); /* the loss evaluations below do not touch grads, but be safe */
        bad += check_tensor(t, x, R, w, gc, name, training);
        il_tensor_free(gc);
    }
    il_tensor *gx = il_tensor_clone(il_trainer_input_grad(t, 0));
    bad += check_tensor(t, x, R, x, gx, "input", training);
    if (bad) fprintf(stderr, "\n  (graph %s: %d mismatches)\n", g->nodes[last(g)].op_type, bad);
    CU_ASSERT_EQUAL(bad, 0);
    il_tensor_free(gx), il_tensor_free(R), il_tensor_free(x);
    il_trainer_free(t);
    il_graph_free(g);
}

static void test_grad_conv(void) {
    for (int variant = 0; variant < 3; variant++) {
        il_graph *g = tg_new(17);
        int64_t xd[4] = {2, 4, 7, 6}, wd[4] = {6, variant == 1 ? 2 : 4, 3, 3}, bd = 6;
        if (variant == 2) wd[0] = 4, wd[1] = 1, bd = 4;
        int in[3] = {tg_input(g, 4, xd), tg_param(g, "w", 4, wd, -1, 1), tg_param(g, "b", 1, &bd, -1, 1)};
        int y = tg_node(g, "Conv", 3, in);
        int64_t st[2] = {variant == 0 ? 2 : 1, 2}, pads[4] = {1, 1, 1, 0}, dil[2] = {variant == 1 ? 2 : 1, 1};
        il_node_set_ints(g, last(g), "strides", 2, st);
        il_node_set_ints(g, last(g), "pads", 4, pads);
        il_node_set_ints(g, last(g), "dilations", 2, dil);
        if (variant) il_node_set_int(g, last(g), "group", variant == 1 ? 2 : 4);
        gradcheck(g, y, 1);
    }
}

static void test_grad_gemm_matmul(void) {
    for (int ta = 0; ta < 2; ta++) {
        il_graph *g = tg_new(17);
        int64_t ad[2] = {ta ? 4 : 3, ta ? 3 : 4}, bd[2] = {5, 4}, cd[1] = {5};
        int in[3] = {tg_input(g, 2, ad), tg_param(g, "B", 2, bd, -1, 1), tg_param(g, "C", 1, cd, -1, 1)};
        int y = tg_node(g, "Gemm", 3, in);
        il_node_set_int(g, last(g), "transB", 1);
        il_node_set_int(g, last(g), "transA", ta);
        il_node_set_float(g, last(g), "alpha", 0.7f);
        il_node_set_float(g, last(g), "beta", 1.3f);
        gradcheck(g, y, 1);
    }
    il_graph *g = tg_new(17);
    int64_t xd[3] = {2, 3, 4}, wd[2] = {4, 5}, w3[3] = {2, 5, 3};
    int in[2] = {tg_input(g, 3, xd), tg_param(g, "W", 2, wd, -1, 1)};
    int y = tg_node(g, "MatMul", 2, in);
    int in2[2] = {y, tg_param(g, "W3", 3, w3, -1, 1)};
    gradcheck(g, tg_node(g, "MatMul", 2, in2), 1); /* shared B, then a batched B */
}

static void test_grad_batchnorm(void) {
    il_graph *g = tg_new(17);
    int64_t xd[4] = {4, 3, 3, 2}, c = 3;
    int in[5] = {tg_input(g, 4, xd), tg_param(g, "scale", 1, &c, 0.5, 1.5), tg_param(g, "bias", 1, &c, -1, 1),
                 tg_param(g, "mean", 1, &c, 0, 0), tg_param(g, "var", 1, &c, 1, 1)};
    gradcheck(g, tg_node(g, "BatchNormalization", 5, in), 1);
}

static void test_grad_activations(void) {
    const char *ops[] = {"Relu", "Clip", "HardSwish", "Sigmoid", "Tanh", "Gelu", "Erf", "LeakyRelu"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        il_graph *g = tg_new(!strcmp(ops[i], "Gelu") ? 20 : 17);
        int64_t xd[2] = {3, 8}, pd[2] = {3, 8};
        int in[2] = {tg_input(g, 2, xd), tg_param(g, "p", 2, pd, 0.5, 2.5)};
        int y = tg_node(g, "Mul", 2, in);
        if (!strcmp(ops[i], "Clip")) {
            il_tensor *lo = il_tensor_new(IL_F32, 0, NULL), *hi = il_tensor_new(IL_F32, 0, NULL);
            *(float *)lo->data = -1.3f, *(float *)hi->data = 1.7f;
            int cin[3] = {y, il_graph_add_constant(g, "lo", lo), il_graph_add_constant(g, "hi", hi)};
            y = tg_node(g, "Clip", 3, cin);
        } else {
            y = tg_node(g, ops[i], 1, &y);
        }
        gradcheck(g, y, 1);
    }
}

static void test_grad_pools(void) {
    const char *ops[] = {"MaxPool", "AveragePool", "GlobalAveragePool", "AveragePool"};
    for (int i = 0; i < 4; i++) {
        il_graph *g = tg_new(17);
        int64_t xd[4] = {2, 3, 7, 6}, pd[4] = {1, 3, 7, 6};
        int in[2] = {tg_input(g, 4, xd), tg_param(g, "p", 4, pd, 0.5, 1.5)};
        int y = tg_node(g, "Mul", 2, in);
        y = tg_node(g, ops[i], 1, &y);
        if (i != 2) {
            int64_t k[2] = {3, 2}, s[2] = {2, 2}, p[4] = {1, 0, 1, 1};
            il_node_set_ints(g, last(g), "kernel_shape", 2, k);
            il_node_set_ints(g, last(g), "strides", 2, s);
            il_node_set_ints(g, last(g), "pads", 4, p);
            if (i == 3) il_node_set_int(g, last(g), "count_include_pad", 1);
        }
        gradcheck(g, y, 1);
    }
}

static void test_grad_binary(void) {
    const char *ops[] = {"Add", "Sub", "Mul", "Div"};
    for (int i = 0; i < 4; i++) {
        il_graph *g = tg_new(17);
        int64_t xd[3] = {2, 3, 4}, pd[2] = {3, 1};
        int in[2] = {tg_input(g, 3, xd), tg_param(g, "p", 2, pd, 0.5, 2)};
        int y = tg_node(g, ops[i], 2, in);
        int in2[2] = {tg_param(g, "q", 3, xd, -1, 1), y}; /* same-shape path, operand order swapped */
        gradcheck(g, tg_node(g, ops[i], 2, in2), 1);
    }
}

static void test_grad_shape_ops(void) {
    il_graph *g = tg_new(17);
    int64_t xd[3] = {2, 3, 4}, pd[3] = {2, 2, 4}, shp[2] = {2, 20}, perm[3] = {2, 0, 1}, sizes[2] = {2, 3};
    int x = tg_input(g, 3, xd);
    int cat_in[2] = {x, tg_param(g, "p", 3, pd, -1, 1)};
    int y = tg_node(g, "Concat", 2, cat_in); /* [2,5,4] */
    il_node_set_int(g, last(g), "axis", 1);
    y = tg_node(g, "Transpose", 1, &y); /* [4,2,5] */
    il_node_set_ints(g, last(g), "perm", 3, perm);
    il_tensor *st = il_tensor_new(IL_I64, 1, (int64_t[]){2});
    memcpy(st->data, shp, sizeof shp);
    int rin[2] = {y, il_graph_add_constant(g, "shape", st)};
    y = tg_node(g, "Reshape", 2, rin); /* [2,20] */
    il_tensor *sz = il_tensor_new(IL_I64, 1, (int64_t[]){2});
    memcpy(sz->data, (int64_t[]){8, 12}, sizeof sizes);
    int sin[2] = {y, il_graph_add_constant(g, "split", sz)};
    int outs[2] = {il_graph_new_value(g, "s0"), il_graph_new_value(g, "s1")};
    int k = il_graph_add_node(g, "Split", "", "split", 2, sin, 2, outs);
    il_node_set_int(g, k, "axis", 1);
    int fin[1] = {outs[1]};
    int f = tg_node(g, "Flatten", 1, fin);
    int m[2] = {outs[0], tg_param(g, "q", 2, (int64_t[]){2, 8}, -1, 1)};
    int a = tg_node(g, "Mul", 2, m);
    int r = tg_node(g, "ReduceMean", 1, &a); /* [2,1] */
    il_node_set_ints(g, last(g), "axes", 1, (int64_t[]){1});
    int add[2] = {f, r};
    gradcheck(g, tg_node(g, "Add", 2, add), 1);
}

static void test_grad_softmax_layernorm(void) {
    const char *ops[] = {"Softmax", "LogSoftmax", "LayerNormalization"};
    for (int i = 0; i < 3; i++) {
        il_graph *g = tg_new(17);
        int64_t xd[3] = {2, 3, 5}, pd[1] = {5};
        int in[3] = {tg_input(g, 3, xd), tg_param(g, "p", 1, pd, 0.5, 1.5), tg_param(g, "b", 1, pd, -1, 1)};
        int y = i == 2 ? tg_node(g, ops[i], 3, in) : tg_node(g, ops[i], 1, (int[]){tg_node(g, "Mul", 2, in)});
        il_node_set_int(g, last(g), "axis", i == 1 ? 1 : -1);
        gradcheck(g, y, 1);
    }
}

static void test_dropout(void) {
    il_graph *g = tg_new(17);
    int64_t xd[2] = {4, 50};
    int in[2] = {tg_input(g, 2, xd), tg_param(g, "p", 2, xd, 0.5, 1.5)};
    int y = tg_node(g, "Mul", 2, in);
    il_tensor *r = il_tensor_new(IL_F32, 0, NULL);
    *(float *)r->data = 0.3f;
    int din[2] = {y, il_graph_add_constant(g, "ratio", r)};
    y = tg_node(g, "Dropout", 2, din);
    il_graph_add_output(g, y);
    il_trainer *t;
    il_trainer_opts o = {.dtype = IL_F64, .threads = 1, .input_grad = 1, .seed = 9};
    IL_ASSERT_OK(il_trainer_create(g, &o, &t));
    il_tensor *x = il_tensor_new(IL_F64, 2, xd), *R = il_tensor_new(IL_F64, 2, xd);
    il_tensor_fill_random(x, &trng, 0.5, 2), il_tensor_fill_random(R, &trng, -1, 1);
    const il_tensor *out;
    IL_ASSERT_OK(il_trainer_forward(t, x, 1, &out));
    int dropped = 0, bad = 0;
    il_tensor *w;
    il_trainer_param(t, 0, &w, NULL);
    IL_ASSERT_OK(il_trainer_backward(t, R));
    const il_tensor *gx = il_trainer_input_grad(t, 0);
    /* y = x p mask / 0.7, so dL/dx = R p mask / 0.7 = R y / x: the mask the forward drew */
    for (int64_t i = 0; i < 200; i++) {
        double yv = il_tensor_get(out, i), want = il_tensor_get(R, i) * yv / il_tensor_get(x, i);
        dropped += yv == 0;
        bad += fabs(il_tensor_get(gx, i) - want) > 1e-12;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(dropped > 30 && dropped < 90); /* 30% of 200, loosely */
    IL_ASSERT_OK(il_trainer_forward(t, x, 0, &out)); /* inference: identity */
    for (int64_t i = 0; i < 200; i++) bad += fabs(il_tensor_get(out, i) - il_tensor_get(x, i) * il_tensor_get(w, i)) > 1e-12;
    CU_ASSERT_EQUAL(bad, 0);
    il_tensor_free(x), il_tensor_free(R);
    il_trainer_free(t);
    il_graph_free(g);
}

static void test_losses(void) {
    int64_t d[2] = {3, 5};
    il_tensor *s = il_tensor_new(IL_F64, 2, d), *tch = il_tensor_new(IL_F64, 2, d), *g = il_tensor_new(IL_F64, 2, d);
    il_tensor_fill_random(s, &trng, -3, 3), il_tensor_fill_random(tch, &trng, -3, 3);
    int32_t y[3] = {0, 4, 2};
    for (int kd = 0; kd < 2; kd++) {
        double (*L)(il_tensor *) = NULL;
        (void)L;
        if (kd) il_loss_kd(s, tch, y, 3.0, 0.7, g, NULL);
        else il_loss_ce(s, y, 0.1, g, NULL);
        int bad = 0;
        for (int64_t i = 0; i < 15; i++) {
            double v = il_tensor_get(s, i), h = 1e-6;
            il_tensor_set(s, i, v + h);
            double lp = kd ? il_loss_kd(s, tch, y, 3.0, 0.7, NULL, NULL) : il_loss_ce(s, y, 0.1, NULL, NULL);
            il_tensor_set(s, i, v - h);
            double lm = kd ? il_loss_kd(s, tch, y, 3.0, 0.7, NULL, NULL) : il_loss_ce(s, y, 0.1, NULL, NULL);
            il_tensor_set(s, i, v);
            bad += fabs((lp - lm) / (2 * h) - il_tensor_get(g, i)) > 1e-7;
        }
        CU_ASSERT_EQUAL(bad, 0);
    }
    /* KL of identical distributions is 0: with alpha 1 the loss vanishes */
    CU_ASSERT(fabs(il_loss_kd(s, s, y, 4.0, 1.0, NULL, NULL)) < 1e-12);
    il_tensor_free(s), il_tensor_free(tch), il_tensor_free(g);
}

/* Schedules at known points, and one SGD and one AdamW step against their formulas. */
static void test_optim(void) {
    il_optim_opts o;
    il_optim_defaults(&o, IL_OPT_SGD);
    o.lr = 0.1, o.total_steps = 110, o.warmup_steps = 10;
    CU_ASSERT_DOUBLE_EQUAL(il_optim_lr(&o, 0), 0.01, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(il_optim_lr(&o, 9), 0.1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(il_optim_lr(&o, 60), 0.05, 1e-12); /* cosine half way */
    CU_ASSERT_DOUBLE_EQUAL(il_optim_lr(&o, 110), 0.0, 1e-12);
    o.sched = IL_SCHED_STEP, o.step_size = 30, o.gamma = 0.1;
    CU_ASSERT_DOUBLE_EQUAL(il_optim_lr(&o, 45), 0.01, 1e-12);
    for (int kind = 0; kind < 2; kind++) {
        il_graph *g = tg_new(17);
        int64_t xd[2] = {1, 2}, wd[2] = {2, 2};
        int in[2] = {tg_input(g, 2, xd), tg_param(g, "W", 2, wd, -1, 1)};
        il_graph_add_output(g, tg_node(g, "MatMul", 2, in));
        il_trainer *t;
        il_trainer_opts to = {.dtype = IL_F64, .threads = 1};
        IL_ASSERT_OK(il_trainer_create(g, &to, &t));
        il_tensor *w, *gr;
        il_trainer_param(t, 0, &w, &gr);
        double w0 = il_tensor_get(w, 0), g0 = 0.5;
        il_tensor_set(gr, 0, g0);
        il_optim_defaults(&o, kind ? IL_OPT_ADAMW : IL_OPT_SGD);
        o.lr = 0.1, o.sched = IL_SCHED_CONST;
        il_optim *opt;
        IL_ASSERT_OK(il_optim_create(t, &o, &opt));
        il_optim_step(opt);
        /* SGD: w -= lr (g + wd w); AdamW first step: w -= lr (wd w + g/(|g| + eps)) */
        double want = kind ? w0 - 0.1 * (o.weight_decay * w0 + g0 / (g0 + o.eps)) : w0 - 0.1 * (g0 + o.weight_decay * w0);
        CU_ASSERT_DOUBLE_EQUAL(il_tensor_get(w, 0), want, 1e-12);
        il_optim_free(opt);
        il_trainer_free(t);
        il_graph_free(g);
    }
}

/* ---------------------------------------------------------------- training end to end */

static il_dataset *fmnist(int n) {
    char spec[64];
    snprintf(spec, sizeof spec, "fashion-mnist:train:%d", n);
    il_dataset *d = NULL;
    IL_ASSERT_OK(il_data_load(spec, IL_SPLIT_TRAIN, &d));
    return d;
}

static void test_fit_tiny(void) {
    il_dataset *d = fmnist(64);
    il_zoo_opts zo;
    il_zoo_defaults(&zo);
    zo.width = 64;
    il_graph *g;
    IL_ASSERT_OK(il_zoo_build("mlp", &zo, &g));
    il_trainer *t;
    il_trainer_opts to = {.threads = 2, .seed = 1};
    IL_ASSERT_OK(il_trainer_create(g, &to, &t));
    il_preproc p;
    il_preproc_init(&p, 1);
    il_preproc_fit(&p, d);
    il_fit_opts fo;
    il_fit_defaults(&fo);
    fo.epochs = 60, fo.batch = 16, fo.threads = 2;
    il_optim_defaults(&fo.optim, IL_OPT_ADAMW);
    fo.optim.lr = 3e-3;
    il_fit_result fr;
    IL_ASSERT_OK(il_fit(t, d, &p, &fo, &fr));
    il_eval_result er;
    IL_ASSERT_OK(il_evaluate_trainer(t, d, &p, 32, &er));
    CU_ASSERT_EQUAL(er.top1, 1.0);
    free(er.confusion);
    /* the exported model gives the same answer through the inference engine */
    il_graph *og;
    IL_ASSERT_OK(il_trainer_export(t, &og));
    IL_ASSERT_OK(il_evaluate(og, d, &p, 32, 2, &er));
    CU_ASSERT_EQUAL(er.top1, 1.0);
    free(er.confusion);
    il_graph_free(og), il_graph_free(g);
    il_trainer_free(t);
    il_data_free(d);
}

/* Train lenet5 (conv, pools, gemm) for a few steps with augmentation; the weights. */
static il_graph *train_steps(const il_dataset *d, uint64_t seed) {
    il_zoo_opts zo;
    il_zoo_defaults(&zo);
    zo.seed = seed;
    il_graph *g, *og = NULL;
    IL_ASSERT_OK(il_zoo_build("lenet5", &zo, &g));
    il_trainer *t;
    il_trainer_opts to = {.threads = 2, .seed = seed};
    IL_ASSERT_OK(il_trainer_create(g, &to, &t));
    il_preproc p;
    il_preproc_init(&p, 1);
    p.pad = 2, p.hflip = 1;
    il_fit_opts fo;
    il_fit_defaults(&fo);
    fo.epochs = 1, fo.batch = 32, fo.threads = 2, fo.seed = seed;
    il_fit_result fr;
    IL_ASSERT_OK(il_fit(t, d, &p, &fo, &fr));
    IL_ASSERT_OK(il_trainer_export(t, &og));
    il_trainer_free(t);
    il_graph_free(g);
    return og;
}

static int same_weights(const il_graph *a, const il_graph *b) {
    for (int v = 0; v < a->n_values; v++) {
        const il_tensor *x = a->values[v].constant, *y = b->values[v].constant;
        if (x && (!y || il_tensor_bytes(x) != il_tensor_bytes(y) || memcmp(x->data, y->data, il_tensor_bytes(x))))
            return 0;
    }
    return 1;
}

static void test_determinism(void) {
    il_dataset *d = fmnist(256);
    il_graph *a = train_steps(d, 5), *b = train_steps(d, 5), *c = train_steps(d, 6);
    CU_ASSERT(same_weights(a, b));
    CU_ASSERT(!same_weights(a, c));
    il_graph_free(a), il_graph_free(b), il_graph_free(c);
    il_data_free(d);
}

/* ---------------------------------------------------------------- data */

static void write_gz(const char *path, const unsigned char *b, size_t n) {
    gzFile f = gzopen(path, "wb");
    gzwrite(f, b, (unsigned)n);
    gzclose(f);
}

static void test_data_errors(void) {
    il_dataset *d = NULL;
    il_status st = il_data_load("mnist:/nonexistent/dir", IL_SPLIT_TRAIN, &d);
    CU_ASSERT_EQUAL(st, IL_ERR_IO);
    CU_ASSERT(strstr(il_errmsg(), "no such file") != NULL);
    char dir[] = "/tmp/il_train_XXXXXX", p[256];
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    /* wrong magic: a labels header where images belong */
    unsigned char hdr[16] = {0, 0, 8, 1, 0, 0, 0, 2};
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    write_gz(p, hdr, 8);
    il_tensor *t = NULL;
    st = il_idx_load(p, 3, &t);
    CU_ASSERT_EQUAL(st, IL_ERR_PARSE);
    CU_ASSERT(strstr(il_errmsg(), "wrong magic") != NULL);
    /* truncated: 2 images of 28x28 declared, 100 bytes present */
    unsigned char tr[16 + 100] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
    write_gz(p, tr, sizeof tr);
    st = il_data_load(strcat(strcpy((char[300]){0}, "mnist:"), dir), IL_SPLIT_TRAIN, &d);
    CU_ASSERT_EQUAL(st, IL_ERR_PARSE);
    CU_ASSERT(strstr(il_errmsg(), "truncated") != NULL);
    /* truncated header */
    write_gz(p, tr, 6);
    CU_ASSERT_EQUAL(il_idx_load(p, 3, &t), IL_ERR_PARSE);
    CU_ASSERT(strstr(il_errmsg(), "truncated") != NULL);
    /* CIFAR: a batch that is not whole records */
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    FILE *f = fopen(p, "wb");
    fwrite(tr, 1, sizeof tr, f);
    fclose(f);
    char spec[300];
    snprintf(spec, sizeof spec, "cifar10:%s:test", dir);
    CU_ASSERT_EQUAL(il_data_load(spec, IL_SPLIT_TRAIN, &d), IL_ERR_PARSE);
    CU_ASSERT(strstr(il_errmsg(), "truncated") != NULL);
    CU_ASSERT_EQUAL(il_data_load("imagenet", IL_SPLIT_TRAIN, &d), IL_ERR_INVALID);
    /* a folder of .npy samples with labels */
    for (int i = 0; i < 3; i++) {
        il_tensor *s = il_tensor_new(IL_F32, 3, (int64_t[]){1, 4, 4});
        il_tensor_fill_random(s, &trng, 0, 1);
        snprintf(p, sizeof p, "%s/s%d.npy", dir, i);
        IL_ASSERT_OK(il_tensor_save_npy(s, p));
        il_tensor_free(s);
    }
    snprintf(p, sizeof p, "%s/labels.txt", dir);
    f = fopen(p, "w");
    fprintf(f, "2\n0\n");
    fclose(f);
    snprintf(spec, sizeof spec, "folder:%s", dir);
    CU_ASSERT_EQUAL(il_data_load(spec, IL_SPLIT_TRAIN, &d), IL_ERR_PARSE); /* 3 samples, 2 labels */
    f = fopen(p, "a");
    fprintf(f, "1\n");
    fclose(f);
    IL_ASSERT_OK(il_data_load(spec, IL_SPLIT_TRAIN, &d));
    CU_ASSERT(d->n == 3 && d->c == 1 && d->h == 4 && d->y[0] == 2 && d->n_classes == 3);
    il_data_free(d);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void test_preproc_meta(void) {
    il_dataset *d = fmnist(500);
    il_preproc p, q;
    il_preproc_init(&p, 1);
    il_preproc_fit(&p, d);
    CU_ASSERT(p.mean[0] > 0.2 && p.mean[0] < 0.4 && p.std[0] > 0.25 && p.std[0] < 0.45); /* Fashion-MNIST ~0.286/0.353 */
    p.resize_h = p.resize_w = 32, p.crop_h = p.crop_w = 30;
    il_graph *g = il_graph_new("m");
    il_preproc_to_meta(&p, d, g);
    IL_ASSERT_OK(il_preproc_from_meta(g, &q));
    CU_ASSERT(fabsf(q.mean[0] - p.mean[0]) < 1e-7f && fabsf(q.std[0] - p.std[0]) < 1e-7f);
    CU_ASSERT(q.resize_h == 32 && q.crop_w == 30 && fabs(q.scale - 1.0 / 255) < 1e-15);
    IL_ASSERT_OK(il_preproc_geometry(&q, d));
    CU_ASSERT(d->h == 30 && d->w == 30);
    CU_ASSERT_STRING_EQUAL(il_graph_get_meta(g, "inferlab.dataset"), "fashion-mnist");
    il_graph_free(g);
    /* Dirichlet shards partition the set */
    int64_t **idx, *sizes, total = 0;
    IL_ASSERT_OK(il_fed_shards(d, 10, 0.5, 1, &idx, &sizes));
    for (int k = 0; k < 10; k++) total += sizes[k], free(idx[k]);
    CU_ASSERT_EQUAL(total, d->n);
    free(idx), free(sizes);
    il_data_free(d);
}

/* The trained teacher kept for the demo: its metadata gives the preprocessing, and through the
 * engine it still classifies the test set (94.51% on all 10000 when it was trained). */
static void test_teacher_file(void) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(IL_TESTDATA "/fmnist_teacher.onnx", &g));
    il_preproc p;
    IL_ASSERT_OK(il_preproc_from_meta(g, &p));
    CU_ASSERT(p.std[0] > 0.3 && p.std[0] < 0.4 && p.mean[0] > 0.25 && p.mean[0] < 0.32);
    il_dataset *d;
    IL_ASSERT_OK(il_data_load("fashion-mnist:test:1000", IL_SPLIT_TRAIN, &d));
    il_eval_result r;
    IL_ASSERT_OK(il_evaluate(g, d, &p, 250, 2, &r));
    CU_ASSERT(r.top1 > 0.92);
    free(r.confusion);
    il_data_free(d);
    il_graph_free(g);
}

/* ---------------------------------------------------------------- zoo */

static void test_zoo(void) {
    int n, checker = access("/usr/bin/python3", X_OK) == 0 &&
                     system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0;
    if (!checker) fprintf(stderr, "\n  (python3-onnx missing: onnx.checker skipped)");
    const il_zoo_entry *m = il_zoo_models(&n);
    for (int i = 0; i < n; i++) {
        il_zoo_opts o;
        il_zoo_defaults(&o);
        /* the ImageNet models at 64x64 keep the test fast; their layout is the same */
        o.c = m[i].c, o.h = m[i].h > 64 ? 64 : m[i].h, o.w = m[i].w > 64 ? 64 : m[i].w, o.classes = 7;
        il_graph *g;
        IL_ASSERT_OK(il_zoo_build(m[i].name, &o, &g));
        il_tensor *x = il_tensor_new(IL_F32, 4, (int64_t[]){2, o.c, o.h, o.w}), **outs;
        il_tensor_fill_random(x, &trng, -1, 1);
        int no;
        il_plan_opts po = {.threads = 2, .batch = 2};
        IL_ASSERT_OK(il_run_model(g, &x, 1, &po, &outs, &no));
        CU_ASSERT(no == 1 && outs[0]->dims[0] == 2 && outs[0]->dims[1] == 7);
        for (int64_t j = 0; j < il_tensor_numel(outs[0]); j++) CU_ASSERT(isfinite(il_tensor_get(outs[0], j)));
        il_tensor_free(outs[0]), free(outs), il_tensor_free(x);
        /* every zoo model trains: the trainer finds a backward for each op */
        il_trainer *t;
        il_trainer_opts to = {.threads = 2};
        IL_ASSERT_OK(il_trainer_create(g, &to, &t));
        il_trainer_free(t);
        if (checker) {
            char path[64], cmd[256];
            snprintf(path, sizeof path, "/tmp/il_zoo_%d_%s.onnx", (int)getpid(), m[i].name);
            IL_ASSERT_OK(il_onnx_save(g, path));
            snprintf(cmd, sizeof cmd,
                     "/usr/bin/python3 -c 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), "
                     "full_check=True)' %s",
                     path);
            int rc = system(cmd);
            if (rc) fprintf(stderr, "\n  onnx.checker rejects zoo model %s", m[i].name);
            CU_ASSERT_EQUAL(rc, 0);
            unlink(path);
        }
        il_graph_free(g);
    }
}

IL_SUITE("train", {"grad_conv", test_grad_conv}, {"grad_gemm_matmul", test_grad_gemm_matmul},
         {"grad_batchnorm", test_grad_batchnorm}, {"grad_activations", test_grad_activations},
         {"grad_pools", test_grad_pools}, {"grad_binary", test_grad_binary}, {"grad_shape_ops", test_grad_shape_ops},
         {"grad_softmax_layernorm", test_grad_softmax_layernorm}, {"dropout", test_dropout}, {"losses", test_losses}, {"optim", test_optim},
         {"fit_tiny", test_fit_tiny}, {"determinism", test_determinism}, {"data_errors", test_data_errors},
         {"preproc_meta", test_preproc_meta}, {"teacher_file", test_teacher_file},
         {"zoo", test_zoo})
