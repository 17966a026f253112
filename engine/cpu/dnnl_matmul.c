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

#include <immintrin.h>

/* ---------------------------------------------------------------- GELU after the product
 *
 * oneDNN's gelu_erf post-op took a fifth of ViT's and BERT's fc1 (197x192x768: 0.333 ms plain,
 * 0.420 with it, 0.57 ns an element; 128x256x1024: 0.391 / 0.465). Where the CPU has AVX-512
 * the product runs without it and this pass over its output (still in L2) applies
 * 0.5 x (1 + erf(x / sqrt 2)) with erf as Eigen's generic_fast_erf_float computes it: the
 * argument clamped to [-4, 4] (erf is +-1 in float beyond), an odd polynomial of degree 13 over
 * an even one of degree 8, |error| 4.2e-7 (against math.erf over [-6, 6] in steps of 6e-5),
 * about 20 vector instructions for 16 elements. An exp-based erf (Abramowitz and Stegun 7.1.26)
 * with the same exponential as the attention softmax ran at oneDNN's speed. */
static int own_gelu(const il_act *act) {
    static int avx512 = -1;
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return avx512 && act->kind == IL_ACT_GELU;
}

__attribute__((target("avx512f"))) static void gelu_avx512(float *y, int64_t n) {
    static const float alpha[7] = {-1.60960333262415e-02f, -2.95459980854025e-03f, -7.34990630326855e-04f,
                                   -5.69250639462346e-05f, -2.10102402082508e-06f, 2.77068142495902e-08f,
                                   -2.72614225801306e-10f};
    static const float beta[5] = {-1.42647390514189e-02f, -7.37332916720468e-03f, -1.68282697438203e-03f,
                                  -2.13374055278905e-04f, -1.45660718464996e-05f};
    const __m512 rs2 = _mm512_set1_ps(0.70710678118654752f), four = _mm512_set1_ps(4.0f),
                 mfour = _mm512_set1_ps(-4.0f), half = _mm512_set1_ps(0.5f), two = _mm512_set1_ps(2.0f);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(k, y + j);
        __m512 z = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(x, rs2), four), mfour), z2 = _mm512_mul_ps(z, z);
        __m512 p = _mm512_fmadd_ps(z2, _mm512_set1_ps(alpha[6]), _mm512_set1_ps(alpha[5]));
        for (int i = 4; i >= 0; i--) p = _mm512_fmadd_ps(z2, p, _mm512_set1_ps(alpha[i]));
        p = _mm512_mul_ps(z, p);
        __m512 q = _mm512_fmadd_ps(z2, _mm512_set1_ps(beta[4]), _mm512_set1_ps(beta[3]));
        for (int i = 2; i >= 0; i--) q = _mm512_fmadd_ps(z2, q, _mm512_set1_ps(beta[i]));
        __m512 r = _mm512_rcp14_ps(q);
        r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, two)); /* 1 / q, one Newton step */
        __m512 hx = _mm512_mul_ps(half, x);
        _mm512_mask_storeu_ps(y + j, k, _mm512_fmadd_ps(hx, _mm512_mul_ps(p, r), hx));
    }
}

/* GELU over the m x n output, rows shared out among the node's threads. */
static void gelu_rows(float *y, int64_t m, int64_t n, int threads) {
    int64_t per = m / (threads > 1 ? threads : 1);
    if (threads <= 1 || per < 16 || m * n < 65536) {
        gelu_avx512(y, m * n);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; t++) {
        int64_t r0 = m * t / threads, r1 = m * (t + 1) / threads;
        gelu_avx512(y + r0 * n, (r1 - r0) * n);
    }
}

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
    if (own_gelu(&act)) act.kind = IL_ACT_NONE; /* applied after the product (above) */
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
    il_status st = il_dnnl_exec(c, &s->main);
    il_act act;
    if (!st && !il_act_parse(c, &act) && own_gelu(&act)) {
        const il_tensor *y = c->out[0];
        int64_t n = y->dims[y->rank - 1];
        gelu_rows(y->data, il_tensor_numel(y) / n, n, s->threads);
    }
    return st;
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
