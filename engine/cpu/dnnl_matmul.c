/*
 * dnnl_matmul.c - Gemm, MatMul, ai.inferlab FusedGemm and FusedMatMul through oneDNN's matmul
 * primitive where the right-hand matrix is a constant weight (the linear layers of a CNN head,
 * ViT and BERT): Y = act(alpha * A B' + beta * C), the weight prepacked at prepare into the
 * layout the primitive asks for, the bias inside the primitive and the activation as post-ops.
 *
 * A of any rank >= 2 is read as the matrix [prod(leading dims), K] (a constant B has no batch
 * dims to broadcast against), so one primitive serves BERT's [batch, seq, hidden] activations.
 * alpha is folded into the packed weight and beta into a copy of the bias, once. Declined:
 * a B that changes from run to run (attention's products), transA, and a C that is not a row
 * vector of N (Gemm allows [M, N] and scalars; those stay with the other kernels).
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

static int is_gemm(const il_kctx *c) { return strstr(c->node->op_type, "Gemm") != NULL; }

/* The bias input: Gemm's C (input 2) or FusedMatMul's bias (input 2); plain MatMul has none. */
static const il_tensor *bias_in(const il_kctx *c) {
    return strcmp(c->node->op_type, "MatMul") ? il_in(c, 2) : NULL;
}

static int dmm_supports(const il_kctx *c) {
    const il_tensor *a = c->in[0], *b = il_in(c, 1), *bias = bias_in(c);
    if (!a || !b || a->dtype != IL_F32 || b->dtype != IL_F32 || a->rank < 2 || b->rank != 2) return 0;
    if (!il_shape_known(a) || !il_shape_known(b) || !(c->const_mask & 2) || !b->data) return 0;
    int tb = is_gemm(c) && il_attr_int(c->node, "transB", 0);
    if (is_gemm(c) && (a->rank != 2 || il_attr_int(c->node, "transA", 0))) return 0;
    int64_t k = a->dims[a->rank - 1], n = b->dims[tb ? 0 : 1];
    if (b->dims[tb ? 1 : 0] != k || k == 0 || n == 0 || il_tensor_numel(a) == 0) return 0;
    if (bias) {
        if (bias->dtype != IL_F32 || !il_shape_known(bias) || bias->rank < 1 || bias->rank > 2) return 0;
        if (bias->dims[bias->rank - 1] != n || (bias->rank == 2 && bias->dims[0] != 1)) return 0;
        /* beta other than 1 is folded into a copy, so C must then be constant */
        if (is_gemm(c) && il_attr_float(c->node, "beta", 1.0f) != 1.0f && (!(c->const_mask & 4) || !bias->data))
            return 0;
    }
    return il_dnnl_act_ok(c);
}

static il_status dmm_fill(il_kctx *c, il_dnnl_state *s, size_t *workspace, int unused) {
    const il_tensor *A = c->in[0], *B = c->in[1], *bias = bias_in(c);
    int gemm = is_gemm(c), tb = gemm && il_attr_int(c->node, "transB", 0);
    float alpha = gemm ? il_attr_float(c->node, "alpha", 1.0f) : 1.0f, beta = gemm ? il_attr_float(c->node, "beta", 1.0f) : 1.0f;
    int64_t k = A->dims[A->rank - 1], n = B->dims[tb ? 0 : 1], m = il_dims_prod(A->dims, 0, A->rank - 1);
    il_act act;
    il_status st = il_act_parse(c, &act);
    if (st) return st;
    il_dnnl_use_threads(c, s, (double)m * n * k);
    dnnl_dims_t sd = {m, k}, wd = {k, n}, dd = {m, n}, bd = {1, n};
    dnnl_memory_desc_t src, wany, wuser, bmd, dst;
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&src, 2, sd, dnnl_f32, dnnl_ab));
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&wany, 2, wd, dnnl_f32, dnnl_format_tag_any));
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&wuser, 2, wd, dnnl_f32, tb ? dnnl_ba : dnnl_ab));
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_f32, dnnl_ab));
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    IL_DNNL(c, dnnl_matmul_desc_init(&md, &src, &wany, bias ? &bmd : NULL, &dst));
    dnnl_primitive_desc_t pd;
    if ((st = il_dnnl_pd(c, &md, 0, &act, &pd, "matmul"))) return st;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch = scr ? dnnl_memory_desc_get_size(scr) : 0;
    /* alpha into the weight: a scaled copy packed once */
    const float *wsrc = B->data;
    float *scaled = NULL;
    if (alpha != 1.0f) {
        int64_t nb = il_tensor_numel(B);
        if (!(scaled = malloc((size_t)nb * sizeof(float)))) st = il_kerr(c, IL_ERR_OOM, "out of memory");
        for (int64_t i = 0; !st && i < nb; i++) scaled[i] = alpha * wsrc[i];
        wsrc = scaled;
    }
    if (!st) st = il_dnnl_pack(c, &wuser, wsrc, wmd, &s->w);
    free(scaled);
    if (!st && bias && beta != 1.0f) {
        if (!(s->bias = malloc((size_t)n * sizeof(float)))) st = il_kerr(c, IL_ERR_OOM, "out of memory");
        for (int64_t j = 0; !st && j < n; j++) s->bias[j] = beta * ((const float *)bias->data)[j];
    }
    if (!st) st = il_dnnl_step_make(c, &s->main, pd);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SRC, &src);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_WEIGHTS, wmd);
    if (!st && bias) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_BIAS, &bmd);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_DST, &dst);
    if (!st && scratch) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SCRATCHPAD, scr);
    dnnl_primitive_desc_destroy(pd);
    *workspace = il_dnnl_align(scratch) + 64;
    return st;
}

static il_status dmm_prepare(il_kctx *c, void **state, size_t *workspace) {
    return il_dnnl_prepare(c, state, workspace, dmm_fill, 0);
}

static il_status dmm_run(il_kctx *c) {
    il_dnnl_state *s = c->state;
    const il_tensor *bias = bias_in(c);
    il_dnnl_step_set(&s->main, DNNL_ARG_SRC, c->in[0]->data);
    il_dnnl_step_set(&s->main, DNNL_ARG_WEIGHTS, s->w);
    if (bias) il_dnnl_step_set(&s->main, DNNL_ARG_BIAS, s->bias ? s->bias : bias->data);
    il_dnnl_step_set(&s->main, DNNL_ARG_DST, c->out[0]->data);
    il_dnnl_step_set(&s->main, DNNL_ARG_SCRATCHPAD, il_dnnl_ws(c));
    return il_dnnl_exec(c, &s->main);
}

#define DMM(dom, op_, prio)                                                                                     \
    {.domain = dom, .op = op_, .backend = "cpu", .name = "dnnl", .dtypes = IL_DT(IL_F32), .priority = prio,     \
     .supports = dmm_supports, .prepare = dmm_prepare, .run = dmm_run, .release = il_dnnl_release,                  \
     .doc = "oneDNN matmul against a constant weight (prepacked, alpha folded in), bias and activation as "     \
            "post-ops; A of any rank read as rows"}

/* Priority 20, above the sgemm ("fast") kernels' 10: on this project's 2-core AVX-512 machine,
 * one thread, batch 8, -O2, every matmul forced to "dnnl" against the heuristic before it
 * (p50 over 30 runs, two rounds): tiny_bert 0.44 ms against 1.16 ms, tiny_vit 0.59 against
 * 1.47, a ViT of width 256 at 224x224 (zoo) 178-314 against 598-866 ms. */
const il_kernel il_kernels_dnnl_matmul[] = {
    DMM("", "Gemm", 20),
    DMM("", "MatMul", 20),
    DMM("ai.inferlab", "FusedGemm", 20),
    DMM("ai.inferlab", "FusedMatMul", 20),
    {0},
};

#endif
