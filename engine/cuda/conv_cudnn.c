/*
 * conv_cudnn.c - Conv and FusedConv (bias, residual, Relu/Clip) on cuDNN, the cuda backend's
 * first choice for 2-D convolutions in every precision (cudnn.cu does the work).
 *
 * prepare builds the node's cuDNN state from the host copies the planner hands it: the weights
 * (and bias) must be constants, converted once to the plan's type and kept on the device by the
 * node; cuDNN's search picks the algorithm on the node's shapes and says how much workspace it
 * needs, which the plan's shared device workspace then covers. Anything cuDNN cannot express
 * exactly (asymmetric padding that changes the output size, activations other than Relu/Clip,
 * weights computed at run time) is left to the other kernels.
 *
 * Half-precision plans compute channels-last, the layout cuDNN's tensor-core kernels read and
 * write: these kernels tell the planner (il_kernel.layouts) that they take and give NHWC, so a
 * value between two of them stays NHWC (engine/plan_layout.c) and only the edges of such a run
 * of nodes change layout. The pools come along for the same reason: a network's convolutions
 * and pools then never leave channels-last. INFERLAB_CUDA_NCHW=1 turns this off (for A/B).
 */
#include "../cpu/compute.h"
#include "../ops/fused.h"

#ifdef IL_HAVE_CUDA
#include "cuda.h"

static int half(const il_kctx *c) { return c->precision == IL_PREC_FP16 || c->precision == IL_PREC_BF16; }
static int use_nhwc(const il_kctx *c) { return half(c) && !getenv("INFERLAB_CUDA_NCHW"); }
static il_dtype plan_dtype(const il_kctx *c) {
    return c->precision == IL_PREC_FP16 ? IL_F16 : c->precision == IL_PREC_BF16 ? IL_BF16 : IL_F32;
}

static int is_const(const il_kctx *c, int i) { return i < c->n_in && c->in[i] && ((c->const_mask >> i) & 1) && c->in[i]->data; }

static int conv_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1);
    if (!x || !w || x->rank != 4 || w->rank != 4 || x->dtype != IL_F32 || !il_shape_known(x) || !is_const(c, 1))
        return 0;
    if (il_in(c, 2) && !is_const(c, 2)) return 0;
    if (!il_cudnn_available(NULL)) return 0;
    if (!strcmp(c->node->op_type, "FusedConv")) {
        il_act a;
        if (il_act_parse(c, &a)) {
            il_error_clear();
            return 0;
        }
        if (a.kind != IL_ACT_NONE && a.kind != IL_ACT_RELU && a.kind != IL_ACT_CLIP) return 0;
        const il_tensor *z = il_in(c, 3);
        if (z && (z->dtype != IL_F32 || il_tensor_numel(z) != il_tensor_numel(c->out[0]))) return 0;
    }
    return 1;
}

static il_status conv_prepare(il_kctx *c, void **state, size_t *ws) {
    const il_tensor *w = c->in[1];
    il_conv_geom g;
    int64_t k[2] = {w->dims[2], w->dims[3]};
    il_status st = il_window_geom(c, c->in[0], k, 0, 1, &g);
    if (st) return st;
    il_cudnn_conv_desc d = {.n = g.n, .c = g.c, .h = g.in[0], .w = g.in[1], .m = w->dims[0], .kh = k[0], .kw = k[1],
                            .oh = g.out[0], .ow = g.out[1], .sh = g.stride[0], .sw = g.stride[1], .dh = g.dil[0],
                            .dw = g.dil[1], .ph = g.pad[0], .pw = g.pad[1], .group = il_attr_int(c->node, "group", 1),
                            .precision = c->precision, .lo = 0.0f, .hi = INFINITY, .nhwc = use_nhwc(c),
                            .x_nhwc = c->blocked_in & 1, .z_nhwc = (c->blocked_in >> 3) & 1,
                            .y_nhwc = c->blocked_out & 1};
    d.dt = plan_dtype(c);
    if (!strcmp(c->node->op_type, "FusedConv")) {
        il_act a;
        if ((st = il_act_parse(c, &a))) return st;
        if (a.kind == IL_ACT_RELU) d.act = 1;
        if (a.kind == IL_ACT_CLIP) d.act = 1, d.lo = a.a, d.hi = a.b;
        d.has_z = il_in(c, 3) != NULL;
    }
    il_cudnn_conv *cv;
    if ((st = il_cudnn_conv_create(&d, w->data, il_in(c, 2) ? il_in(c, 2)->data : NULL, &cv)))
        return il_kerr(c, st, "%s", il_errmsg());
    *state = cv;
    *ws = il_cudnn_conv_workspace_total(cv);
    return IL_OK;
}

/* x, the residual z and y may be channels-last in a half-precision plan */
static void conv_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    *in = *out = use_nhwc(c) ? 1u : 0u;
    if (*in && il_in(c, 3)) *in |= 1u << 3;
}

static il_status conv_run(il_kctx *c) {
    const il_tensor *z = strcmp(c->node->op_type, "FusedConv") ? NULL : il_in(c, 3);
    return il_cudnn_conv_run(c->state, c->in[0]->data, z ? z->data : NULL, c->out[0]->data, c->workspace,
                             c->workspace_bytes);
}

static void conv_release(void *s) { il_cudnn_conv_free(s); }

/* ---------------------------------------------------------------- pools */

typedef struct {
    il_cudnn_pool *pl;
    int transpose, to_nhwc;
    int64_t n, c, s;
    size_t es;
} pool_state;

static int pool_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0];
    if (!x || x->rank != 4 || x->dtype != IL_F32 || !il_shape_known(x) || c->n_out != 1 || !il_cudnn_available(NULL))
        return 0;
    if (!strcmp(c->node->op_type, "GlobalAveragePool")) return 1;
    if (il_attr_int(c->node, "storage_order", 0) || il_attr_int(c->node, "ceil_mode", 0)) return 0;
    const il_attr *dil = il_node_attr(c->node, "dilations");
    for (int i = 0; dil && i < dil->n; i++)
        if (dil->ints[i] != 1) return 0;
    il_conv_geom g;
    if (il_window_geom(c, x, NULL, 0, 1, &g) || g.nsp != 2) {
        il_error_clear();
        return 0;
    }
    /* cuDNN pads both ends alike: the output must come out the same */
    for (int i = 0; i < 2; i++)
        if ((g.in[i] + 2 * g.pad[i] - g.k[i]) / g.stride[i] + 1 != g.out[i]) return 0;
    return 1;
}

static il_status pool_prepare(il_kctx *c, void **state, size_t *ws) {
    const il_tensor *x = c->in[0];
    il_cudnn_pool_desc d = {.n = x->dims[0], .c = x->dims[1], .h = x->dims[2], .w = x->dims[3], .oh = 1, .ow = 1,
                            .kh = x->dims[2], .kw = x->dims[3], .sh = 1, .sw = 1, .mode = 1, .dt = plan_dtype(c),
                            .nhwc = c->blocked_in & 1};
    if (strcmp(c->node->op_type, "GlobalAveragePool")) {
        il_conv_geom g;
        il_status st = il_window_geom(c, x, NULL, 0, 1, &g);
        if (st) return st;
        d.oh = g.out[0], d.ow = g.out[1], d.kh = g.k[0], d.kw = g.k[1], d.sh = g.stride[0], d.sw = g.stride[1];
        d.ph = g.pad[0], d.pw = g.pad[1];
        d.mode = !strcmp(c->node->op_type, "MaxPool") ? 0 : il_attr_int(c->node, "count_include_pad", 0) ? 1 : 2;
    }
    pool_state *ps = calloc(1, sizeof *ps);
    if (!ps) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_status st = il_cudnn_pool_create(&d, &ps->pl);
    if (st) {
        free(ps);
        return il_kerr(c, st, "%s", il_errmsg());
    }
    /* y held in the other layout than x: pooled into the workspace, then transposed */
    ps->n = d.n, ps->c = d.c, ps->s = d.oh * d.ow, ps->es = d.dt == IL_F32 ? 4 : 2, ps->to_nhwc = !d.nhwc;
    ps->transpose = d.oh * d.ow > 1 && (c->blocked_in & 1) != (c->blocked_out & 1);
    *state = ps;
    *ws = ps->transpose ? (size_t)(ps->n * ps->c * ps->s) * ps->es : 0;
    return IL_OK;
}

static il_status pool_run(il_kctx *c) {
    const pool_state *ps = c->state;
    void *y = ps->transpose ? c->workspace : c->out[0]->data;
    il_status st = il_cudnn_pool_run(ps->pl, c->in[0]->data, y);
    if (!st && ps->transpose) {
        il_cuda_nchw_nhwc(y, c->out[0]->data, ps->n, ps->c, ps->s, ps->es, ps->to_nhwc);
        st = il_cuda_check("layout change after a pool");
    }
    return st;
}

static void pool_release(void *s) {
    pool_state *ps = s;
    if (ps) il_cudnn_pool_free(ps->pl);
    free(ps);
}

/* a pool reads and writes one layout: both channels-last, or neither; a global pool's output
 * [N, C, 1, 1] has the same bytes in both, so it is left plain for what follows (Flatten...) */
static void pool_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    int g = !strcmp(c->node->op_type, "GlobalAveragePool");
    *in = use_nhwc(c) ? 1u : 0u;
    *out = g ? 0u : *in;
}

#define DNN_K(DOM, OP, SUP, PREP, RUN, REL, LAY, DOC)                                                             \
    {.domain = DOM, .op = OP, .backend = "cuda", .name = "cudnn", .dtypes = IL_DT(IL_F32), .priority = 20,         \
     .supports = SUP, .prepare = PREP, .run = RUN, .release = REL, .layouts = LAY, .doc = DOC}

const il_kernel il_kernels_cudnn[] = {
    DNN_K("", "Conv", conv_supports, conv_prepare, conv_run, conv_release, conv_layouts,
          "2-D conv on cuDNN (its search picks the algorithm), fp32/tf32/fp16/bf16; NHWC in half precision"),
    DNN_K("ai.inferlab", "FusedConv", conv_supports, conv_prepare, conv_run, conv_release, conv_layouts,
          "2-D conv + bias (+ residual) (+ Relu/Clip) on cuDNN: fused call or one epilogue kernel, whichever is faster"),
    DNN_K("", "MaxPool", pool_supports, pool_prepare, pool_run, pool_release, pool_layouts,
          "2-D max pool on cuDNN (symmetric padding, no ceil_mode/dilations/Indices), NCHW or NHWC"),
    DNN_K("", "AveragePool", pool_supports, pool_prepare, pool_run, pool_release, pool_layouts,
          "2-D average pool on cuDNN (symmetric padding, no ceil_mode), NCHW or NHWC"),
    DNN_K("", "GlobalAveragePool", pool_supports, pool_prepare, pool_run, pool_release, pool_layouts,
          "global average pool on cuDNN (a window over the whole plane), NCHW or NHWC"),
    {0},
};
#else
const il_kernel il_kernels_cudnn[] = {{0}};
#endif
