/*
 * dnnl_eltwise.c - Gelu (ONNX opset 20 and ai.inferlab's) through oneDNN's eltwise primitive,
 * gelu_erf or gelu_tanh: 16 lanes with oneDNN's vector erf/tanh, where the "fast" kernel
 * calls libm's scalar double erf per element (~14 ns each: 1.4 ms for a ViT MLP's 196 x 512
 * hidden, four of which were 30-50% of a dynamically quantized ViT whose products had become
 * cheap). The FP32 path never pays it: fuse-conv-act folds a Gelu after a MatMul into
 * FusedMatMul, whose oneDNN kernel applies the same gelu_erf as a post-op; a Gelu whose
 * producer is another op (DynamicQuantizeMatMul) runs here, with the same arithmetic.
 * The tensor is seen as one plain row of its elements, whatever its shape.
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

static int tanh_approx(const il_kctx *c) { return !strcmp(il_attr_string(c->node, "approximate", "none"), "tanh"); }

static int delt_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0];
    const char *a = il_attr_string(c->node, "approximate", "none");
    return x && x->dtype == IL_F32 && il_shape_known(x) && il_tensor_numel(x) > 0 && (!strcmp(a, "none") || !strcmp(a, "tanh"));
}

static il_status delt_fill(il_kctx *c, il_dnnl_state *s, size_t *workspace, int arg) {
    (void)arg;
    int64_t n = il_tensor_numel(c->in[0]);
    il_dnnl_use_threads(c, s, 20.0 * (double)n); /* an erf costs about twenty multiply-adds */
    dnnl_memory_desc_t md;
    il_status st = il_dnnl_plain_md(c, &md, 1, &n);
    if (st) return st;
    dnnl_eltwise_desc_t ed;
    IL_DNNL(c, dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference,
                                              tanh_approx(c) ? dnnl_eltwise_gelu_tanh : dnnl_eltwise_gelu_erf, &md, 0.0f,
                                              0.0f));
    dnnl_primitive_desc_t pd;
    if ((st = il_dnnl_pd(c, &ed, 0, NULL, &pd, "eltwise"))) return st;
    st = il_dnnl_io_prim(c, s, pd, &md, &md, workspace);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static il_status delt_prepare(il_kctx *c, void **state, size_t *workspace) {
    return il_dnnl_prepare(c, state, workspace, delt_fill, 0);
}

/* Priority 15, above the scalar "fast" (10). */
#define DELT(dom, since)                                                                                          \
    {.domain = dom, .op = "Gelu", .since_version = since, .backend = "cpu", .name = "dnnl", .dtypes = IL_DT(IL_F32), \
     .priority = 15, .supports = delt_supports, .prepare = delt_prepare, .run = il_dnnl_io_run,                   \
     .release = il_dnnl_release, .doc = "oneDNN eltwise gelu_erf / gelu_tanh, 16 lanes (FusedMatMul's post-op)"}

const il_kernel il_kernels_dnnl_eltwise[] = {
    DELT("", 20),
    DELT("ai.inferlab", 1),
    {0},
};

#endif
