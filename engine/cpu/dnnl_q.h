/*
 * dnnl_q.h - private to oneDNN's INT8 kernels (engine/cpu/dnnl_q*.c): 8-bit memory descriptors
 * and the native layout of 8-bit activations, and the attributes that make an int8 primitive
 * requantize: output scales, x's and y's zero points, a folded Relu/Clip as a clip post-op.
 *
 * The native layout of a uint8/int8 activation is channels-last (nwc, nhwc, ndhwc) on every
 * CPU: it is what oneDNN's int8 convolutions and pools compute in, and its bytes are a
 * permutation of the plain tensor's (no padding), so an element-wise kernel reads it as it is.
 * (The float native layout, dnnl_layout.c, may be nChw16c instead.)
 */
#ifndef IL_DNNL_Q_H
#define IL_DNNL_Q_H

#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

/* A descriptor of an 8-bit tensor (IL_U8 or IL_I8; IL_F32 and IL_I32 too), plain or, when
 * native is set and the rank is 3 to 5, channels-last. */
il_status il_dnnl_q_md(const il_kctx *c, dnnl_memory_desc_t *md, il_dtype dt, int native, int rank,
                       const int64_t *dims);

/* How an int8 primitive's int32 sums become y:
 *   y = sat(rint(clip(float(acc) * scales[.], lo, hi)) + zy)
 * with acc taken over (x - zx); lo, hi in y's units less zy (a Relu/Clip of the node), none when
 * has_clip is 0. */
typedef struct {
    const float *scales;
    int64_t n_scales;
    int scale_mask;     /* oneDNN's: 0 one scale, 2 per output channel (dim 1) */
    int32_t zx, zy;
    int has_clip;
    float lo, hi;
} il_dnnl_q_out;

/* The clip of the node's `activation` for y of scale ys, zero point q->zy and type ydt. */
il_status il_dnnl_q_act(const il_kctx *c, double ys, il_dtype ydt, il_dnnl_q_out *q);
/* The primitive descriptor of desc with q's attributes and a user-managed scratchpad. */
il_status il_dnnl_q_pd(const il_kctx *c, const_dnnl_op_desc_t desc, const il_dnnl_q_out *q,
                       dnnl_primitive_desc_t *pd, const char *what);

/* Whether a primitive descriptor was made (st, the maker's status) with a real implementation,
 * not oneDNN's reference loops; pd destroyed and the error cleared (for supports()). */
int il_dnnl_q_fast(il_status st, dnnl_primitive_desc_t pd);

#endif
#endif
