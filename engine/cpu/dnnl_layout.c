/*
 * dnnl_layout.c - how the oneDNN kernels meet the layouts the plan holds their tensors in
 * (engine/plan_layout.c): plain NCHW, or channel-blocked (the block of il_cpu_channel_block(),
 * oneDNN's aBcd16b = nChw16c on AVX-512) where the kernels on both sides of a value take it.
 *
 * A primitive computes in the layout it chose (or was given); a tensor held in another layout
 * is reordered into a workspace buffer before the primitive reads it (X) or after it writes it
 * (Y). Inside a chain of blocked kernels the layouts agree and no reorder is made: prepare
 * compares the descriptors once, and run only follows the reorders that prepare found needed.
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

il_status il_dnnl_blocked_md(const il_kctx *c, dnnl_memory_desc_t *md, int rank, const int64_t *dims) {
    static const dnnl_format_tag_t b16[] = {dnnl_aBc16b, dnnl_aBcd16b, dnnl_aBcde16b};
    static const dnnl_format_tag_t b8[] = {dnnl_aBc8b, dnnl_aBcd8b, dnnl_aBcde8b};
    if (rank < 3 || rank > 5) return il_kerr(c, IL_ERR_INTERNAL, "a blocked layout for rank %d", rank);
    dnnl_dims_t d;
    for (int i = 0; i < rank; i++) d[i] = dims[i];
    dnnl_format_tag_t tag = il_cpu_channel_block() == 16 ? b16[rank - 3] : b8[rank - 3];
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(md, rank, d, dnnl_f32, tag));
    return IL_OK;
}

il_status il_dnnl_user_md(const il_kctx *c, dnnl_memory_desc_t *md, int blocked, int rank, const int64_t *dims) {
    return blocked ? il_dnnl_blocked_md(c, md, rank, dims) : il_dnnl_plain_md(c, md, rank, dims);
}

il_status il_dnnl_io_make(const il_kctx *c, il_dnnl_state *s, const dnnl_memory_desc_t *xuser,
                          const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *yuser,
                          const dnnl_memory_desc_t *dst, size_t *off) {
    il_status st = IL_OK;
    if (!dnnl_memory_desc_equal(src, xuser)) {
        s->src_off = *off;
        *off += il_dnnl_align(dnnl_memory_desc_get_size(src));
        st = il_dnnl_reorder_make(c, &s->src_in, xuser, src);
    }
    if (!st && !dnnl_memory_desc_equal(dst, yuser)) {
        s->dst_off = *off;
        *off += il_dnnl_align(dnnl_memory_desc_get_size(dst));
        st = il_dnnl_reorder_make(c, &s->dst_out, dst, yuser);
    }
    return st;
}

il_status il_dnnl_src(const il_kctx *c, il_dnnl_state *s, void **src) {
    void *x = c->in[0]->data;
    *src = x;
    if (!s->src_in.prim) return IL_OK;
    *src = il_dnnl_ws(c) + s->src_off;
    il_dnnl_step_set(&s->src_in, DNNL_ARG_SRC, x);
    il_dnnl_step_set(&s->src_in, DNNL_ARG_DST, *src);
    return il_dnnl_exec(c, &s->src_in);
}

void *il_dnnl_dst(const il_kctx *c, const il_dnnl_state *s) {
    return s->dst_out.prim ? il_dnnl_ws(c) + s->dst_off : c->out[0]->data;
}

il_status il_dnnl_dst_done(const il_kctx *c, il_dnnl_state *s, void *dst) {
    if (!s->dst_out.prim) return IL_OK;
    il_dnnl_step_set(&s->dst_out, DNNL_ARG_SRC, dst);
    il_dnnl_step_set(&s->dst_out, DNNL_ARG_DST, c->out[0]->data);
    return il_dnnl_exec(c, &s->dst_out);
}

#endif
