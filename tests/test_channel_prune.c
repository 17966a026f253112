/*
 * test_channel_prune.c - channel pruning (prune/channel.h) on hand-made graphs and zoo models.
 *
 * The oracle: il_prune_channels_ex in ZERO mode keeps every shape and zeroes the weights that read
 * the channels REMOVE takes out (Conv input channels, Gemm/MatMul rows), so the two models compute
 * the same function; their outputs on fresh random inputs must agree within 1e-5 relative (both
 * on the reference kernels; zeros add nothing to a sum, so in practice they agree exactly). On
 * top of that each pruned model must verify, carry shapes equal to a fresh inference, export and
 * import back to the same outputs, and have the shapes the case expects. A model whose pruned
 * channels were all-zero filters must not change at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../distill/distill.h"
#include "../prune/channel.h"
#include "test.h"

/* ---------------------------------------------------------------- building graphs */

static uint64_t rng = 0x5eed1234;

static int input(il_graph *g, const char *name, int rank, const int64_t *dims) {
    return il_test_input(g, name, rank, dims);
}

static int weight(il_graph *g, const char *name, int rank, const int64_t *dims, double lo, double hi) {
    return il_test_const(g, name, rank, dims, &rng, lo, hi);
}

static int node(il_graph *g, const char *op, const char *name, int n_in, const int *in) {
    int y = il_graph_value(g, name);
    il_graph_add_node(g, op, "", name, n_in, in, 1, &y);
    return y;
}

static int node1(il_graph *g, const char *op, const char *name, int x) { return node(g, op, name, 1, &x); }

/* Conv cin -> cout, k x k, pads k/2, with bias; group g. */
static int conv(il_graph *g, int x, const char *name, int64_t cin, int64_t cout, int64_t k, int64_t group) {
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "%s.w", name);
    snprintf(bn, sizeof bn, "%s.b", name);
    int in[3] = {x, weight(g, wn, 4, (int64_t[]){cout, cin / group, k, k}, -1, 1),
                 weight(g, bn, 1, (int64_t[]){cout}, -0.5, 0.5)};
    int y = node(g, "Conv", name, 3, in);
    int kk = g->n_nodes - 1;
    int64_t p = k / 2;
    il_node_set_ints(g, kk, "pads", 4, (int64_t[]){p, p, p, p});
    if (group > 1) il_node_set_int(g, kk, "group", group);
    return y;
}

static int bnorm(il_graph *g, int x, const char *name, int64_t c) {
    char n[4][64];
    const char *suf[4] = {"scale", "bias", "mean", "var"};
    int in[5] = {x};
    for (int i = 0; i < 4; i++) {
        snprintf(n[i], sizeof n[i], "%s.%s", name, suf[i]);
        in[1 + i] = weight(g, n[i], 1, (int64_t[]){c}, i == 3 ? 0.5 : -1, i == 3 ? 2 : 1);
    }
    return node(g, "BatchNormalization", name, 5, in);
}

static il_graph *new_graph(const char *name) {
    il_graph *g = il_graph_new(name);
    il_graph_set_opset(g, "", 17);
    return g;
}

/* ---------------------------------------------------------------- checks */

static il_tensor *run(const il_graph *g, il_tensor *x, int reference) {
    il_plan_opts o = {.threads = 1, .reference = reference};
    il_tensor **out = NULL;
    int n = 0;
    il_status st = il_run_model(g, &x, 1, &o, &out, &n);
    if (st) fprintf(stderr, "\n  run %s: %s\n", g->name, il_errmsg());
    CU_ASSERT_EQUAL_FATAL(st, IL_OK);
    for (int i = 1; i < n; i++) il_tensor_free(out[i]);
    il_tensor *y = out[0];
    free(out);
    return y;
}

static int close_rel(const il_tensor *got, const il_tensor *want, double rtol) {
    double scale = 0;
    for (int64_t i = 0; i < il_tensor_numel(want); i++) {
        double w = il_tensor_get(want, i);
        scale = w > scale ? w : -w > scale ? -w : scale;
    }
    int64_t worst;
    char msg[256];
    int ok = il_tensor_allclose(got, want, rtol, rtol * scale, &worst, msg, sizeof msg);
    if (!ok) fprintf(stderr, "\n  %s\n", msg);
    return ok;
}

/* Every computed value's declared shape is what inference says now. */
static void check_shapes_fresh(const il_graph *g) {
    il_shapes *s;
    IL_ASSERT_OK(il_infer_shapes(g, 0, NULL, 0, &s));
    for (int v = 0; v < g->n_values; v++) {
        const il_value *x = &g->values[v];
        if (x->constant || x->is_input) continue;
        const il_tensor *t = &s->info[v];
        int ok = x->rank == t->rank;
        for (int d = 0; ok && d < t->rank; d++) ok = x->dims[d] == t->dims[d];
        if (!ok) fprintf(stderr, "\n  value '%s' declares rank %d, inference says %d\n", x->name, x->rank, t->rank);
        CU_ASSERT(ok);
    }
    il_shapes_free(s);
}

/* Prune a copy of g at ratio (REMOVE) and another (ZERO); both agree on a random batch of 2, the
 * pruned one verifies, has fresh shapes, round-trips through ONNX. Returns the pruned copy. */
static il_graph *prune_checked(const il_graph *g, float ratio, int norm, const char *const *ex, int nex,
                               int reference, double rtol, il_channel_report *rep) {
    il_graph *a = il_graph_clone(g), *b = il_graph_clone(g);
    il_channel_report ra, rb;
    IL_ASSERT_OK(il_prune_channels_ex(a, ratio, norm, ex, nex, IL_CHANNEL_REMOVE, &ra));
    IL_ASSERT_OK(il_prune_channels_ex(b, ratio, norm, ex, nex, IL_CHANNEL_ZERO, &rb));
    CU_ASSERT_EQUAL(ra.removed, rb.removed);
    if (ra.removed) CU_ASSERT(ra.params_after < ra.params_before);
    IL_ASSERT_OK(il_graph_verify(a));
    check_shapes_fresh(a);
    CU_ASSERT_PTR_NOT_NULL(il_graph_get_meta(a, "inferlab.prune"));
    const il_value *xin = &g->values[g->inputs[0]];
    int64_t dims[IL_MAX_RANK];
    for (int d = 0; d < xin->rank; d++) dims[d] = xin->dims[d] < 0 ? 2 : xin->dims[d];
    il_tensor *x = il_tensor_new(IL_F32, xin->rank, dims);
    il_tensor_fill_random(x, &rng, -1, 1);
    il_tensor *ya = run(a, x, reference), *yb = run(b, x, reference);
    CU_ASSERT(close_rel(ya, yb, rtol));
    /* MASK (the gradual schedule's rounds, half the ratio and then all of it): shapes kept, the
     * same count gone, and REMOVE afterwards takes exactly the zeroed channels (the function
     * stays; another choice would drop live channels and keep dead ones) */
    il_graph *c = il_graph_clone(g);
    il_channel_report rc;
    IL_ASSERT_OK(il_prune_channels_ex(c, ratio / 2, norm, ex, nex, IL_CHANNEL_MASK, NULL));
    IL_ASSERT_OK(il_prune_channels_ex(c, ratio, norm, ex, nex, IL_CHANNEL_MASK, &rc));
    CU_ASSERT_EQUAL(rc.removed, ra.removed);
    CU_ASSERT_EQUAL(rc.params_after, rc.params_before);
    il_tensor *ym = run(c, x, reference);
    IL_ASSERT_OK(il_prune_channels_ex(c, ratio, norm, ex, nex, IL_CHANNEL_REMOVE, &rc));
    CU_ASSERT_EQUAL(rc.params_after, ra.params_after);
    il_tensor *yr = run(c, x, reference);
    CU_ASSERT(close_rel(yr, ym, rtol));
    il_tensor_free(ym), il_tensor_free(yr);
    il_graph_free(c);
    /* export and import: the same model */
    void *buf;
    size_t len;
    il_graph *back = NULL;
    IL_ASSERT_OK(il_onnx_save_buffer(a, &buf, &len));
    IL_ASSERT_OK(il_onnx_load_buffer(buf, len, NULL, &back));
    free(buf);
    il_tensor *yc = run(back, x, reference);
    CU_ASSERT(close_rel(yc, ya, 1e-6));
    il_graph_free(back);
    il_tensor_free(ya), il_tensor_free(yb), il_tensor_free(yc), il_tensor_free(x);
    il_graph_free(b);
    if (rep) *rep = ra;
    return a;
}

static const il_tensor *const_of(const il_graph *g, const char *node_name, int slot) {
    for (int k = 0; k < g->n_nodes; k++)
        if (!strcmp(g->nodes[k].name, node_name)) return g->values[g->nodes[k].inputs[slot]].constant;
    return NULL;
}

static int64_t dim_of(const il_graph *g, const char *node_name, int slot, int d) {
    const il_tensor *t = const_of(g, node_name, slot);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t->dims[d];
}

/* Dimension d of constant input `slot` of node `node` is `want`, for each row. */
typedef struct {
    const char *node;
    int slot, d;
    int64_t want;
} dim_want;

static void check_dims(const il_graph *g, const dim_want *w, int n) {
    for (int i = 0; i < n; i++) {
        int64_t got = dim_of(g, w[i].node, w[i].slot, w[i].d);
        if (got != w[i].want)
            fprintf(stderr, "\n  %s input %d dim %d: %lld, want %lld\n", w[i].node, w[i].slot, w[i].d, (long long)got,
                    (long long)w[i].want);
        CU_ASSERT_EQUAL(got, w[i].want);
    }
}
#define CHECK_DIMS(g, ...) \
    check_dims(g, (const dim_want[]){__VA_ARGS__}, (int)(sizeof((const dim_want[]){__VA_ARGS__}) / sizeof(dim_want)))

/* ---------------------------------------------------------------- cases */

/* Conv -> BN -> Relu -> Conv: the first conv's 4 filters of lowest L1 norm go, with their bias,
 * BN parameters and the second conv's input channels; the last conv writes a graph output. */
static void test_conv_bn_conv(void) {
    il_graph *g = new_graph("conv_bn_conv");
    int x = input(g, "x", 4, (int64_t[]){-1, 3, 8, 8});
    g->values[x].dims[0] = -1;
    g->values[x].dim_param[0] = strdup("N");
    int h = conv(g, x, "c1", 3, 8, 3, 1);
    h = bnorm(g, h, "bn1", 8);
    h = node1(g, "Relu", "r1", h);
    int y = conv(g, h, "c2", 8, 4, 3, 1);
    il_graph_add_output(g, y);
    g->values[y].dtype = IL_F32;
    g->values[y].rank = 4;
    memcpy(g->values[y].dims, (int64_t[]){-1, 4, 8, 8}, 4 * sizeof(int64_t));
    g->values[y].dim_param[0] = strdup("N");
    /* filters scaled so their L1 order is known: channel c by (c * 5) % 8 + 1 */
    il_tensor *w = (il_tensor *)const_of(g, "c1", 1);
    for (int c = 0; c < 8; c++)
        for (int i = 0; i < 27; i++) ((float *)w->data)[c * 27 + i] *= (float)((c * 5) % 8 + 1);
    il_channel_report r;
    il_graph *p = prune_checked(g, 0.5f, 1, NULL, 0, 1, 1e-5, &r);
    CU_ASSERT_EQUAL(r.removed, 4);
    CHECK_DIMS(p, {"c1", 1, 0, 4}, {"c1", 2, 0, 4}, {"bn1", 1, 0, 4}, {"bn1", 2, 0, 4}, {"bn1", 3, 0, 4},
               {"bn1", 4, 0, 4}, {"c2", 1, 1, 4}, {"c2", 1, 0, 4} /* a graph output keeps its channels */);
    /* kept: the scales 5..8, i.e. channels c with (5c) % 8 >= 4, in their original order */
    const il_tensor *pw = const_of(p, "c1", 1);
    int j = 0;
    for (int c = 0; c < 8; c++)
        if ((c * 5) % 8 >= 4) {
            CU_ASSERT_EQUAL(memcmp((float *)pw->data + j * 27, (float *)w->data + c * 27, 27 * sizeof(float)), 0);
            j++;
        }
    /* the output keeps its symbolic batch name */
    int yv = p->outputs[0];
    CU_ASSERT(p->values[yv].dim_param[0] && !strcmp(p->values[yv].dim_param[0], "N"));
    il_graph_free(p);
    /* L2 works too, and "first" keeps the first conv whole: nothing else is prunable */
    il_graph_free(prune_checked(g, 0.5f, 2, NULL, 0, 1, 1e-5, &r));
    CU_ASSERT_EQUAL(r.removed, 4);
    const char *first[1] = {"first"};
    il_graph_free(prune_checked(g, 0.5f, 1, first, 1, 1, 1e-5, &r));
    CU_ASSERT_EQUAL(r.removed, 0);
    il_graph_free(g);
}

/* A residual block: the stream (c0's output) is written by c0 and c2 and read by the Add, c3 and
 * the head; its channels go together, scored jointly. */
static void test_residual(void) {
    il_graph *g = new_graph("residual");
    int x = input(g, "x", 4, (int64_t[]){2, 4, 6, 6});
    int s = node1(g, "Relu", "r0", bnorm(g, conv(g, x, "c0", 4, 8, 1, 1), "bn0", 8));
    int h = node1(g, "Relu", "r1", conv(g, s, "c1", 8, 6, 3, 1));
    int add[2] = {conv(g, h, "c2", 6, 8, 3, 1), s};
    int t = node1(g, "Relu", "r2", node(g, "Add", "add", 2, add));
    int add2[2] = {conv(g, t, "c3", 8, 8, 1, 1), t};
    int u = node(g, "Add", "add2", 2, add2);
    int f = node1(g, "Flatten", "flat", node1(g, "GlobalAveragePool", "gap", u));
    int gm[3] = {f, weight(g, "fc.w", 2, (int64_t[]){5, 8}, -1, 1), weight(g, "fc.b", 1, (int64_t[]){5}, -1, 1)};
    int y = node(g, "Gemm", "fc", 3, gm);
    il_node_set_int(g, g->n_nodes - 1, "transB", 1);
    il_graph_add_output(g, y);
    il_channel_report r;
    il_graph *p = prune_checked(g, 0.5f, 1, NULL, 0, 1, 1e-5, &r);
    CU_ASSERT_EQUAL(r.units, 2); /* {c0, c2, c3} and {c1} */
    CU_ASSERT_EQUAL(r.removed, 4 + 3);
    CHECK_DIMS(p, {"c0", 1, 0, 4}, {"c2", 1, 0, 4}, {"c3", 1, 0, 4}, {"c3", 1, 1, 4}, {"c1", 1, 0, 3}, {"c2", 1, 1, 3},
               {"fc", 1, 1, 4});
    il_graph_free(p);
    il_graph_free(g);
}

/* Concat along channels: each input keeps its own choice, the reader's input channels follow
 * the offsets; a constant broadcast along channels (Mul by [1, C, 1, 1]) is sliced. */
static void test_concat(void) {
    il_graph *g = new_graph("concat");
    int x = input(g, "x", 4, (int64_t[]){2, 3, 5, 5});
    int a = node1(g, "Relu", "ra", conv(g, x, "ca", 3, 6, 3, 1));
    int b = conv(g, x, "cb", 3, 4, 1, 1);
    int cat[2] = {a, b};
    int c = node(g, "Concat", "cat", 2, cat);
    il_node_set_int(g, g->n_nodes - 1, "axis", 1);
    int mul[2] = {c, weight(g, "scale", 4, (int64_t[]){1, 10, 1, 1}, 0.5, 1.5)};
    int m = node(g, "Mul", "mul", 2, mul);
    int y = conv(g, m, "cout", 10, 5, 3, 1);
    il_graph_add_output(g, y);
    il_channel_report r;
    il_graph *p = prune_checked(g, 0.5f, 2, NULL, 0, 1, 1e-5, &r);
    CU_ASSERT_EQUAL(r.removed, 3 + 2);
    CHECK_DIMS(p, {"ca", 1, 0, 3}, {"cb", 1, 0, 2}, {"mul", 1, 1, 5}, {"cout", 1, 1, 5});
    il_graph_free(p);
    il_graph_free(g);
}

/* Expand -> depthwise (multiplier 2) -> project: the depthwise conv follows its input. */
static void test_depthwise(void) {
    il_graph *g = new_graph("depthwise");
    int x = input(g, "x", 4, (int64_t[]){2, 3, 7, 7});
    int e = conv(g, x, "expand", 3, 8, 1, 1);
    int clip[3] = {e, il_graph_add_constant(g, "lo", il_tensor_new(IL_F32, 0, NULL)), -1};
    il_tensor *hi = il_tensor_new(IL_F32, 0, NULL);
    *(float *)hi->data = 6;
    clip[2] = il_graph_add_constant(g, "hi", hi);
    int h = node(g, "Clip", "relu6", 3, clip);
    h = node1(g, "Relu", "r", bnorm(g, conv(g, h, "dw", 8, 16, 3, 8), "dwbn", 16));
    int y = conv(g, h, "project", 16, 4, 1, 1);
    il_graph_add_output(g, y);
    il_channel_report r;
    il_graph *p = prune_checked(g, 0.5f, 1, NULL, 0, 1, 1e-5, &r);
    CU_ASSERT_EQUAL(r.removed, 4);
    CHECK_DIMS(p, {"expand", 1, 0, 4}, {"dw", 1, 0, 8}, {"dw", 2, 0, 8}, {"dwbn", 1, 0, 8}, {"project", 1, 1, 8});
    for (int k = 0; k < p->n_nodes; k++)
        if (!strcmp(p->nodes[k].name, "dw")) CU_ASSERT_EQUAL(il_attr_int(&p->nodes[k], "group", 0), 4);
    il_graph_free(p);
    il_graph_free(g);
}

/* Conv -> pool -> Flatten (or Reshape to an explicit [0, C*H*W]) -> Gemm -> Relu -> MatMul: each
 * channel is H*W rows of the Gemm; the Gemm's units are the MatMul's rows. */
static void test_flatten_gemm(void) {
    for (int reshape = 0; reshape < 2; reshape++) {
        il_graph *g = new_graph("flatten_gemm");
        int x = input(g, "x", 4, (int64_t[]){2, 2, 4, 4});
        int h = node1(g, "Relu", "r", conv(g, x, "c", 2, 6, 3, 1));
        h = node1(g, "MaxPool", "pool", h);
        il_node_set_ints(g, g->n_nodes - 1, "kernel_shape", 2, (int64_t[]){2, 2});
        il_node_set_ints(g, g->n_nodes - 1, "strides", 2, (int64_t[]){2, 2});
        if (reshape) {
            il_tensor *shape = il_tensor_new(IL_I64, 1, (int64_t[]){2});
            ((int64_t *)shape->data)[1] = 24;
            int in[2] = {h, il_graph_add_constant(g, "shape", shape)};
            h = node(g, "Reshape", "flat", 2, in);
        } else {
            h = node1(g, "Flatten", "flat", h);
        }
        int64_t wd[2] = {reshape ? 24 : 7, reshape ? 7 : 24};
        int gm[3] = {h, weight(g, "fc.w", 2, wd, -1, 1), weight(g, "fc.b", 2, (int64_t[]){1, 7}, -1, 1)};
        h = node1(g, "Relu", "r2", node(g, "Gemm", "fc", 3, gm));
        if (!reshape) il_node_set_int(g, g->n_nodes - 2, "transB", 1);
        int mm[2] = {h, weight(g, "out.w", 2, (int64_t[]){7, 3}, -1, 1)};
        int y = node(g, "MatMul", "out", 2, mm);
        il_graph_add_output(g, y);
        il_channel_report r;
        il_graph *p = prune_checked(g, 0.5f, 1, NULL, 0, 1, 1e-5, &r);
        CU_ASSERT_EQUAL(r.removed, 3 + 3);
        CHECK_DIMS(p, {"c", 1, 0, 3}, {"fc", 1, reshape ? 0 : 1, 12}, {"fc", 1, reshape ? 1 : 0, 4}, {"fc", 2, 1, 4},
                   {"out", 1, 0, 4});
        if (reshape) CU_ASSERT_EQUAL(((const int64_t *)const_of(p, "flat", 1)->data)[1], 12);
        il_graph_free(p);
        il_graph_free(g);
    }
}

/* Channels that meet an op mixing them (Softmax over channels), or a graph output, stay; bad
 * arguments are refused with a message. */
static void test_blockers_and_errors(void) {
    il_graph *g = new_graph("blocked");
    int x = input(g, "x", 4, (int64_t[]){1, 3, 4, 4});
    int h = conv(g, x, "c1", 3, 6, 3, 1);
    int sm = node1(g, "Softmax", "sm", h);
    il_node_set_int(g, g->n_nodes - 1, "axis", 1);
    int y = conv(g, sm, "c2", 6, 6, 1, 1);
    il_graph_add_output(g, y);
    il_channel_report r;
    il_graph_free(prune_checked(g, 0.5f, 1, NULL, 0, 1, 1e-5, &r));
    CU_ASSERT_EQUAL(r.removed, 0);
    CU_ASSERT_EQUAL(r.channels, 0);
    char err[256] = "";
    CU_ASSERT_EQUAL(il_prune_channels(g, 1.0f, 1, NULL, 0, err, sizeof err), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ratio"));
    CU_ASSERT_EQUAL(il_prune_channels(g, 0.5f, 3, NULL, 0, NULL, 0), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "norm"));
    const char *ex[1] = {"nosuchlayer"};
    CU_ASSERT_EQUAL(il_prune_channels(g, 0.5f, 1, ex, 1, NULL, 0), IL_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "nosuchlayer"));
    il_graph_free(g);
}

/* Channels whose filters and bias are all zero: removing them changes nothing at all. */
static void test_zero_channels_unchanged(void) {
    il_graph *g = new_graph("zeros");
    int x = input(g, "x", 4, (int64_t[]){2, 3, 6, 6});
    int h = node1(g, "Relu", "r", conv(g, x, "c1", 3, 8, 3, 1));
    int y = conv(g, h, "c2", 8, 5, 3, 1);
    il_graph_add_output(g, y);
    il_tensor *w = (il_tensor *)const_of(g, "c1", 1), *b = (il_tensor *)const_of(g, "c1", 2);
    for (int c = 1; c < 8; c += 2) {
        memset((float *)w->data + c * 27, 0, 27 * sizeof(float));
        ((float *)b->data)[c] = 0;
    }
    il_graph *p = il_graph_clone(g);
    il_channel_report r;
    IL_ASSERT_OK(il_prune_channels_ex(p, 0.5f, 1, NULL, 0, IL_CHANNEL_REMOVE, &r));
    CU_ASSERT_EQUAL(r.removed, 4);
    il_tensor *in = il_tensor_new(IL_F32, 4, (int64_t[]){2, 3, 6, 6});
    il_tensor_fill_random(in, &rng, -1, 1);
    il_tensor *y0 = run(g, in, 1), *y1 = run(p, in, 1);
    CU_ASSERT(close_rel(y1, y0, 1e-6));
    il_tensor_free(y0), il_tensor_free(y1), il_tensor_free(in);
    il_graph_free(p);
    il_graph_free(g);
}

/* Zoo ResNet-18 and MobileNet v2 (narrow, 32x32 so that it stays fast): 50% pruned, they run on
 * the default kernels, agree with the ZERO oracle, are smaller; ONNX Runtime (Node) runs the
 * pruned file to the same outputs and onnx.checker accepts it where they are installed. */
static void test_zoo(void) {
    const char *names[2] = {"resnet18", "mobilenet_v2"};
    for (int i = 0; i < 2; i++) {
        il_zoo_opts o;
        il_zoo_defaults(&o);
        o.c = 3, o.h = o.w = 32, o.width = 8;
        il_graph *g;
        IL_ASSERT_OK(il_zoo_build(names[i], &o, &g));
        il_channel_report r;
        il_graph *p = prune_checked(g, 0.5f, 1, NULL, 0, 0, 1e-4, &r);
        CU_ASSERT(r.removed > 0);
        CU_ASSERT(r.params_after < 0.6 * r.params_before);
        const char *path = il_test_tmp(i ? "mv2_pruned.onnx" : "r18_pruned.onnx");
        IL_ASSERT_OK(il_onnx_save(p, path));
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 IL_PY " -c 'import onnx; onnx.checker.check_model(onnx.load(\"%s\"), full_check=True)'", path);
        if (il_test_have_python("onnx")) CU_ASSERT_EQUAL(system(cmd), 0);
        if (system("node -e \"require('./node_modules/onnxruntime-node')\" >/dev/null 2>&1") == 0) {
            il_tensor *x = il_tensor_new(IL_F32, 4, (int64_t[]){2, 3, 32, 32});
            il_tensor_fill_random(x, &rng, -1, 1);
            const char *xin = il_test_tmp("prune_x.npy"), *yout = il_test_tmp("prune_y.npy");
            IL_ASSERT_OK(il_tensor_save_npy(x, xin));
            snprintf(cmd, sizeof cmd,
                     "node bench/peers/ort_bench.js --model %s --batch 2 --threads 1 --eval-in %s --eval-out %s"
                     " >/dev/null",
                     path, xin, yout);
            CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
            il_tensor *yo = NULL, *ours = run(p, x, 0);
            IL_ASSERT_OK(il_tensor_load_npy(yout, &yo));
            CU_ASSERT(close_rel(yo, ours, 1e-4));
            il_tensor_free(yo), il_tensor_free(ours), il_tensor_free(x);
        } else {
            printf("\n  skipped: onnxruntime-node not in node_modules (make deps)");
        }
        il_graph_free(p);
        il_graph_free(g);
    }
}

IL_SUITE("channel-prune", {"Conv -> BN -> Relu -> Conv", test_conv_bn_conv}, {"residual Add", test_residual},
         {"Concat and a broadcast constant", test_concat}, {"depthwise with a multiplier", test_depthwise},
         {"Flatten/Reshape -> Gemm -> MatMul", test_flatten_gemm}, {"blockers and errors", test_blockers_and_errors},
         {"all-zero channels leave outputs unchanged", test_zero_channels_unchanged},
         {"zoo ResNet-18 and MobileNet v2 at 50%", test_zoo})
