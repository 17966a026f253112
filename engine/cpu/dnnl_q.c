/*
 * dnnl_q.c - what oneDNN's INT8 kernels share (dnnl_q.h): 8-bit descriptors, the channels-last
 * native layout of 8-bit activations and the requantizing attributes of a primitive.
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_q.h"
#include "qgemm.h"

#if __has_include(<oneapi/dnnl/dnnl_debug.h>)
#include <oneapi/dnnl/dnnl_debug.h>
#else
#include <dnnl_debug.h>
#endif

static dnnl_data_type_t dnnl_type(il_dtype t) {
    switch (t) {
    case IL_U8: return dnnl_u8;
    case IL_I8: return dnnl_s8;
    case IL_I32: return dnnl_s32;
    case IL_F32: return dnnl_f32;
    default: return dnnl_data_type_undef;
    }
}

il_status il_dnnl_q_md(const il_kctx *c, dnnl_memory_desc_t *md, il_dtype dt, int native, int rank,
                       const int64_t *dims) {
    static const dnnl_format_tag_t last[] = {dnnl_acb, dnnl_acdb, dnnl_acdeb};
    if (rank < 1 || rank > 6 || dnnl_type(dt) == dnnl_data_type_undef)
        return il_kerr(c, IL_ERR_UNSUPPORTED, "oneDNN int8 kernels: a %s tensor of rank %d", il_dtype_name(dt), rank);
    if (native && (rank < 3 || rank > 5)) return il_kerr(c, IL_ERR_INTERNAL, "a native layout for rank %d", rank);
    dnnl_dims_t d;
    for (int i = 0; i < rank; i++) d[i] = dims[i];
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(md, rank, d, dnnl_type(dt), native ? last[rank - 3] : il_dnnl_plain_tag(rank)));
    return IL_OK;
}

il_status il_dnnl_q_act(const il_kctx *c, double ys, il_dtype ydt, il_dnnl_q_out *q) {
    int32_t lo, hi;
    il_status st = il_qact_range(c, ys, q->zy, ydt, &lo, &hi);
    if (st) return st;
    int32_t tlo = ydt == IL_U8 ? 0 : -128, thi = ydt == IL_U8 ? 255 : 127;
    q->has_clip = lo > tlo || hi < thi;
    q->lo = (float)(lo - q->zy);
    q->hi = (float)(hi - q->zy);
    return IL_OK;
}

il_status il_dnnl_q_pd(const il_kctx *c, const_dnnl_op_desc_t desc, const il_dnnl_q_out *q,
                       dnnl_primitive_desc_t *pd, const char *what) {
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po = NULL;
    IL_DNNL(c, dnnl_primitive_attr_create(&attr));
    dnnl_status_t s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success) s = dnnl_primitive_attr_set_output_scales(attr, q->n_scales, q->scale_mask, q->scales);
    if (s == dnnl_success && q->zx) s = dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &q->zx);
    if (s == dnnl_success && q->zy) s = dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_DST, 1, 0, &q->zy);
    if (s == dnnl_success && q->has_clip) {
        s = dnnl_post_ops_create(&po);
        if (s == dnnl_success) s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, q->lo, q->hi);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, po);
        if (po) dnnl_post_ops_destroy(po);
    }
    if (s == dnnl_success) s = dnnl_primitive_desc_create(pd, desc, attr, il_dnnl_engine(), NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        return il_kerr(c, s == dnnl_unimplemented ? IL_ERR_UNSUPPORTED : IL_ERR_INTERNAL,
                       "oneDNN has no %s primitive for this node: %s", what, dnnl_status2str(s));
    return IL_OK;
}

int il_dnnl_q_fast(il_status st, dnnl_primitive_desc_t pd) {
    int ok = 0;
    if (!st) {
        ok = il_dnnl_fast_impl(pd);
        dnnl_primitive_desc_destroy(pd);
    }
    il_error_clear();
    return ok;
}

#endif
