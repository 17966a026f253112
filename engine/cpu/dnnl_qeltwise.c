/*
 * dnnl_qeltwise.c - the element-wise 8-bit kernel "dnnl" of QAdd, QLinearAdd and QLinearMul,
 * which keeps a quantized CNN's activations channels-last (dnnl_q.h) between oneDNN's INT8
 * convolutions (dnnl_qconv.c) instead of reordering them back to NCHW around every residual Add
 * (the stem's MaxPool is dnnl_pool.c's). It is the "int8" kernel's arithmetic (qgemm_eltwise.c,
 * bit for bit the reference's), which is element-wise and so reads any one layout shared by its
 * operands. The plan decides each value's layout on its own (engine/plan_layout.c), so the
 * operands may come in different layouts: the kernel computes in y's and reorders an operand
 * held in the other one into the workspace first (a residual whose branch starts plain).
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_q.h"
#include "qgemm.h"

/* ---------------------------------------------------------------- QAdd, QLinearAdd, QLinearMul */

/* What the "int8" kernel takes (same shapes, per-tensor constants), as activations. */
static int qbin_supports(const il_kctx *c) {
    const il_kernel *k = il_kernel_find(c->node->domain, c->node->op_type, "cpu", "int8");
    const il_tensor *a = c->in[0];
    return k && k->supports(c) && a->rank >= 3 && a->rank <= 5 && il_tensor_numel(a) > 0;
}

/* Operand i (0: a, 1: b) is reordered into y's layout when the plan holds it in the other. The
 * state's src_in / src_off serve a, z_in / dst_off b. */
static il_status qbin_fill(il_kctx *c, il_dnnl_state *s, size_t *workspace, int unused) {
    int yn = c->blocked_out & 1, n_in[2] = {c->blocked_in & 1, c->blocked_in >> 3 & 1};
    il_dnnl_step *steps[2] = {&s->src_in, &s->z_in};
    size_t *offs[2] = {&s->src_off, &s->dst_off}, off = 0;
    for (int i = 0; i < 2; i++) {
        if (n_in[i] == yn) continue;
        const il_tensor *t = c->in[i ? 3 : 0];
        dnnl_memory_desc_t from, to;
        il_status st = il_dnnl_q_md(c, &from, t->dtype, n_in[i], t->rank, t->dims);
        if (!st) st = il_dnnl_q_md(c, &to, t->dtype, yn, t->rank, t->dims);
        if (!st) st = il_dnnl_reorder_make(c, steps[i], &from, &to);
        if (st) return st;
        *offs[i] = off;
        off += il_dnnl_align(il_tensor_bytes(t));
    }
    *workspace = off + 64;
    return IL_OK;
}

static il_status qbin_prepare(il_kctx *c, void **state, size_t *ws) {
    return il_dnnl_prepare(c, state, ws, qbin_fill, 0);
}

/* Operand i in y's layout: itself, or its reorder into the workspace. */
static il_status operand(il_kctx *c, il_dnnl_step *st, size_t off, const il_tensor *t, const void **p) {
    *p = t->data;
    if (!st->prim) return IL_OK;
    void *to = il_dnnl_ws(c) + off;
    il_dnnl_step_set(st, DNNL_ARG_SRC, t->data);
    il_dnnl_step_set(st, DNNL_ARG_DST, to);
    *p = to;
    return il_dnnl_exec(c, st);
}

static il_status qbin_run(il_kctx *c) {
    il_dnnl_state *s = c->state;
    const void *a, *b;
    il_status st = operand(c, &s->src_in, s->src_off, c->in[0], &a);
    if (!st) st = operand(c, &s->z_in, s->dst_off, c->in[3], &b);
    return st ? st : il_qbin_apply(c, a, b, c->out[0]->data);
}

static void qbin_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    *in |= 1 | 8;
    *out |= 1;
}

/* Priority 15, above "int8" (10): between the channels-last convolutions the heuristic picks,
 * so their activations stay channels-last across the residual Adds. */
#define DQBIN(DOMAIN, OP)                                                                                       \
    {.domain = DOMAIN, .op = OP, .since_version = 1, .backend = "cpu", .name = "dnnl",                         \
     .dtypes = IL_DT(IL_U8) | IL_DT(IL_I8), .priority = 15, .supports = qbin_supports, .prepare = qbin_prepare, \
     .run = qbin_run, .release = il_dnnl_release, .layouts = qbin_layouts,                                     \
     .doc = "the int8 kernel's arithmetic on operands in any one layout (channels-last between oneDNN int8 "   \
            "kernels); an operand held in the other layout reordered first"}

const il_kernel il_kernels_dnnl_qeltwise[] = {
    DQBIN("ai.inferlab", "QAdd"),
    DQBIN("com.microsoft", "QLinearAdd"),
    DQBIN("com.microsoft", "QLinearMul"),
    {0},
};

#endif
