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
 */
#include "../cpu/compute.h"
#include "../ops/fused.h"

#ifdef IL_HAVE_CUDA
#include "cuda.h"

static int is_const(const il_kctx *c, int i) { return i < c->n_in && c->in[i] && ((c->const_mask >> i) & 1) && c->in[i]->data; }

static int conv_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1);
    if (!x || !w || x->rank != 4 || w->rank != 4 || x->dtype != IL_F32 || !il_shape_known(x) || !is_const(c, 1))
        return 0;
    if (il_in(c, 2) && !is_const(c, 2)) return 0;
    if (c->blocked_in || c->blocked_out || !il_cudnn_available(NULL)) return 0;
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
                            .precision = c->precision, .lo = 0.0f, .hi = INFINITY};
    d.dt = c->precision == IL_PREC_FP16 ? IL_F16 : c->precision == IL_PREC_BF16 ? IL_BF16 : IL_F32;
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
    *ws = il_cudnn_conv_workspace(cv);
    return IL_OK;
}

static il_status conv_run(il_kctx *c) {
    const il_tensor *z = strcmp(c->node->op_type, "FusedConv") ? NULL : il_in(c, 3);
    return il_cudnn_conv_run(c->state, c->in[0]->data, z ? z->data : NULL, c->out[0]->data, c->workspace,
                             c->workspace_bytes);
}

static void conv_release(void *s) { il_cudnn_conv_free(s); }

#define DNN_K(DOM, OP, DOC)                                                                                        \
    {.domain = DOM, .op = OP, .backend = "cuda", .name = "cudnn", .dtypes = IL_DT(IL_F32), .priority = 20,         \
     .supports = conv_supports, .prepare = conv_prepare, .run = conv_run, .release = conv_release, .doc = DOC}

const il_kernel il_kernels_cudnn[] = {
    DNN_K("", "Conv", "2-D conv on cuDNN (its search picks the algorithm), fp32/tf32/fp16/bf16"),
    DNN_K("ai.inferlab", "FusedConv",
          "2-D conv + bias (+ residual) (+ Relu/Clip) on cuDNN: fused call or one epilogue kernel, whichever is faster"),
    {0},
};
#else
const il_kernel il_kernels_cudnn[] = {{0}};
#endif
