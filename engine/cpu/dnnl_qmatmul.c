/*
 * dnnl_qmatmul.c - the INT8 matrix-product kernel "dnnl" of ai.inferlab QMatMul and
 * QLinearMatMul: oneDNN's int8 matmul, A[..., M, K] (uint8/int8, read as the rows of one [M', K]
 * matrix) times a constant int8 B[K, N] reordered once at prepare, the int32 bias as float32,
 * requantized by per-column output scales with a's and y's zero points as attributes and a
 * folded Relu/Clip as a clip (dnnl_q.h). Y is written row by row, where qgemm (qgemm_matmul.c)
 * computes Y^T and stores with a column stride: the difference shows on transformer-size
 * products, not on a classifier head.
 *
 * Held to 1 LSB of the reference, as the convolution (dnnl_qconv.c says why: float32
 * requantization). Declined: uint8 B or B zero points other than 0, outputs other than 8-bit,
 * K past the exact int32 range, and shapes for which oneDNN has only its reference loops.
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_q.h"
#include "qgemm.h"

/* QMatMul and QLinearMatMul share their first eight slots; QMatMul's bias is the ninth. */
enum { A, AS, AZ, B, BS, BZ, YS, YZ, BIAS };

static const il_tensor *bias_of(const il_kctx *c) {
    return strcmp(c->node->op_type, "QMatMul") ? NULL : il_in(c, BIAS);
}

/* The primitive descriptor for [m, k] x [k, n] with the node's requantization. */
static il_status make_pd(const il_kctx *c, int64_t m, int64_t k, int64_t n, const float *scales,
                         dnnl_primitive_desc_t *pd, dnnl_memory_desc_t *w_user) {
    il_dtype ydt = c->in[YZ]->dtype;
    int64_t sd[2] = {m, k}, dd[2] = {m, n}, bd[2] = {1, n};
    dnnl_dims_t wd = {k, n};
    dnnl_memory_desc_t src, wany, bmd, dst;
    il_status st;
    if ((st = il_dnnl_q_md(c, &src, c->in[A]->dtype, 0, 2, sd)) || (st = il_dnnl_q_md(c, &dst, ydt, 0, 2, dd)) ||
        (st = il_dnnl_q_md(c, &bmd, IL_F32, 0, 2, bd)) || (st = il_dnnl_q_md(c, w_user, IL_I8, 0, 2, (int64_t[]){k, n})))
        return st;
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&wany, 2, wd, dnnl_s8, dnnl_format_tag_any));
    dnnl_matmul_desc_t md;
    IL_DNNL(c, dnnl_matmul_desc_init(&md, &src, &wany, bias_of(c) ? &bmd : NULL, &dst));
    int per_col = il_q_numel(c, BS) == n;
    il_dnnl_q_out q = {.scales = scales, .n_scales = per_col ? n : 1, .scale_mask = per_col ? 2 : 0,
                       .zx = (int32_t)il_q_int_at(c, AZ, 0), .zy = (int32_t)il_q_int_at(c, YZ, 0)};
    if ((st = il_dnnl_q_act(c, il_q_get_at(c, YS, 0), ydt, &q))) return st;
    return il_dnnl_q_pd(c, &md, &q, pd, "int8 matmul");
}

/* a_scale * b_scale[j] / y_scale in the reference's order, rounded once to float. */
static float *scales_of(const il_kctx *c) {
    int64_t n = il_q_numel(c, BS);
    float *s = malloc((size_t)n * sizeof *s);
    for (int64_t j = 0; s && j < n; j++)
        s[j] = (float)(il_q_get_at(c, AS, 0) * il_q_get_at(c, BS, j) / il_q_get_at(c, YS, 0));
    return s;
}

static int dqmm_supports(const il_kctx *c) {
    const il_tensor *a = c->in[A], *b = il_in(c, B), *yz = il_in(c, YZ), *bias = bias_of(c);
    if (!a || !b || !yz || !il_q_is_8bit(a->dtype) || b->dtype != IL_I8 || !il_q_is_8bit(yz->dtype)) return 0;
    if (a->rank < 2 || b->rank != 2 || !il_shape_known(a) || il_tensor_numel(a) == 0) return 0;
    for (int i = AS; i <= YZ; i++)
        if (!il_q_const_or_absent(c, i)) return 0;
    if (bias && (!il_q_const_or_absent(c, BIAS) || il_tensor_numel(bias) != b->dims[1])) return 0;
    int64_t k = b->dims[0], n = b->dims[1], nbs = il_q_numel(c, BS), nbz = il_q_numel(c, BZ);
    if (a->dims[a->rank - 1] != k || k <= 0 || k >= 65536 || n <= 0) return 0;
    if (il_q_numel(c, AS) != 1 || il_q_numel(c, AZ) != 1 || il_q_numel(c, YS) != 1 || il_q_numel(c, YZ) != 1 ||
        (nbs != 1 && nbs != n) || (nbz != 1 && nbz != n))
        return 0;
    for (int64_t j = 0; j < nbz; j++)
        if (il_q_int_at(c, BZ, j) != 0) return 0;
    float *sc = scales_of(c);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t w_user;
    int saved = il_dnnl_threads_enter(c->threads);
    il_status st = sc ? make_pd(c, il_tensor_numel(a) / k, k, n, sc, &pd, &w_user) : IL_ERR_OOM;
    int ok = il_dnnl_q_fast(st, pd); /* after make_pd has set pd */
    il_dnnl_threads_leave(saved);
    free(sc);
    return ok;
}

static il_status dqmm_fill(il_kctx *c, il_dnnl_state *s, size_t *workspace, int unused) {
    const il_tensor *Am = c->in[A], *Bm = c->in[B], *bias = bias_of(c);
    int64_t k = Bm->dims[0], n = Bm->dims[1], m = il_tensor_numel(Am) / k;
    il_dnnl_use_threads(c, s, (double)m * n * k);
    float *sc = scales_of(c);
    if (!sc || (bias && !(s->bias = malloc((size_t)n * sizeof(float))))) {
        free(sc);
        return il_kerr(c, IL_ERR_OOM, "out of memory");
    }
    for (int64_t j = 0; bias && j < n; j++) s->bias[j] = (float)il_q_int_at(c, BIAS, j);
    dnnl_primitive_desc_t pd;
    dnnl_memory_desc_t w_user;
    il_status st = make_pd(c, m, k, n, sc, &pd, &w_user);
    free(sc);
    if (st) return st;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch = scr ? dnnl_memory_desc_get_size(scr) : 0;
    st = il_dnnl_pack(c, &w_user, Bm->data, wmd, &s->w);
    if (!st) st = il_dnnl_step_make(c, &s->main, pd);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SRC, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0));
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_WEIGHTS, wmd);
    if (!st && bias) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_BIAS, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1));
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_DST, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0));
    if (!st && scratch) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SCRATCHPAD, scr);
    dnnl_primitive_desc_destroy(pd);
    *workspace = il_dnnl_align(scratch) + 64;
    return st;
}

static il_status dqmm_prepare(il_kctx *c, void **state, size_t *ws) {
    return il_dnnl_prepare(c, state, ws, dqmm_fill, 0);
}

static il_status dqmm_run(il_kctx *c) {
    il_dnnl_state *s = c->state;
    il_dnnl_step_set(&s->main, DNNL_ARG_SRC, c->in[A]->data);
    il_dnnl_step_set(&s->main, DNNL_ARG_WEIGHTS, s->w);
    il_dnnl_step_set(&s->main, DNNL_ARG_BIAS, s->bias);
    il_dnnl_step_set(&s->main, DNNL_ARG_DST, c->out[0]->data);
    il_dnnl_step_set(&s->main, DNNL_ARG_SCRATCHPAD, il_dnnl_ws(c));
    return il_dnnl_exec(c, &s->main);
}

/* Priority 15, above qgemm's 10: the zoo's ViT (width 256, 224x224) quantized, batch 8, 2 threads,
 * load 5-7, its 17 QMatMuls took 23-33 ms against qgemm's 58-62 ms (`run --profile --kernel
 * QMatMul=...`, two rounds each); both kernels' logits within 2 LSB of the QDQ model's. */
#define DQMM(DOMAIN, OP, SINCE)                                                                                  \
    {.domain = DOMAIN, .op = OP, .since_version = SINCE, .backend = "cpu", .name = "dnnl",                       \
     .dtypes = IL_DT(IL_U8) | IL_DT(IL_I8), .priority = 15, .supports = dqmm_supports, .prepare = dqmm_prepare,    \
     .run = dqmm_run, .release = il_dnnl_release,                                                                \
     .doc = "oneDNN int8 matmul against a constant s8 B (prepacked), rows of A in, rows of Y out, requantized " \
            "in float32 by output scales: within 1 LSB of the reference"}

const il_kernel il_kernels_dnnl_qmatmul[] = {
    DQMM("ai.inferlab", "QMatMul", 1),
    DQMM("", "QLinearMatMul", 10),
    {0},
};

#endif
