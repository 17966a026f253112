/*
 * dnnl_conv.c - Conv and ai.inferlab FusedConv through oneDNN's convolution primitive:
 * Y = act(Conv(X, W) + B + Z), the bias inside the primitive, the residual Z as a "sum"
 * post-op (Y starts as Z and the primitive accumulates into it) and the activation as eltwise
 * post-ops (dnnl_int.h maps each il_act kind).
 *
 * prepare builds the primitive for the node's shapes once and reorders the constant weight into
 * the layout the primitive asks for (blocked, e.g. OIhw16i16o): the prepacked weights. Two
 * kernels differ in how the activations meet the primitive:
 *  - "dnnl-nchw": source and destination stay plain NCHW, no reorder at run time; oneDNN then
 *    often falls back to its own im2col + gemm ("gemm:jit"), except for 1x1 and first layers;
 *  - "dnnl": activations in oneDNN's blocked layout (nChw16c on AVX-512), where its direct
 *    kernels are fast. Where the plan holds X, Y or Z blocked too (engine/plan_layout.c: the
 *    kernels on both sides of the value take it) they are used as they are; where it holds them
 *    plain, run reorders X in and Y (and Z) out around the primitive (dnnl_layout.c).
 * Which one wins, and by how much over im2col-blas, depends on the layer; the tactic timer
 * (`--tactics timed`) measures it per node, and the heuristic takes "dnnl" (figures below and in
 * docs/cpu_speed.md). ScaledConv's per-image channel scale, put into the weight or the image
 * before each call, is dnnl_sconv.c's.
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

#include <omp.h>

/* Float32 1-D to 3-D convolutions with a constant weight of known shape. The bias (if any) is
 * read at run time, so it may vary; the weight may not, since it is packed once. */
static int dconv_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1), *b = il_in(c, 2), *z = il_in(c, 3);
    if (!x || !w || x->dtype != IL_F32 || w->dtype != IL_F32 || x->rank < 3 || x->rank > 5 || w->rank != x->rank)
        return 0;
    if (!il_shape_known(x) || !il_shape_known(w) || !(c->const_mask & 2) || !w->data) return 0;
    if ((b && b->dtype != IL_F32) || (z && z->dtype != IL_F32) || !il_dnnl_act_ok(c)) return 0;
    int64_t grp = il_attr_int(c->node, "group", 1);
    return grp >= 1 && x->dims[1] % grp == 0 && w->dims[0] % grp == 0 && x->dims[1] == w->dims[1] * grp &&
           il_tensor_numel(x) > 0 && il_tensor_numel(w) > 0;
}

/* ScaledConv: a convolution as above whose scale S is one float32 per image and input channel. */
static int sconv_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *sc = il_in(c, 4);
    if (c->n_in != 5 || !sc || sc->dtype != IL_F32 || !il_shape_known(sc) || !dconv_supports(c) || sc->rank != x->rank)
        return 0;
    for (int d = 0; d < x->rank; d++)
        if (sc->dims[d] != (d < 2 ? x->dims[d] : 1)) return 0;
    return 1;
}

/* PooledConv: a convolution as above whose second output is its global average pool. */
static int pconv_supports(const il_kctx *c) { return c->n_out == 2 && c->out[1] && dconv_supports(c); }

/* How a kernel meets oneDNN: plain NCHW activations ("dnnl-nchw"), the native layout ("dnnl"),
 * or Winograd ("dnnl-wino": the primitive's own blocked layout, reordered to and from). */
enum { DCONV_PLAIN, DCONV_NATIVE, DCONV_WINO };
/* How the residual Z meets the primitive: none, a sum post-op (Y starts as a copy of Z), or a
 * binary add post-op reading Z where it lies (Z and Y both native, the primitive's own layout). */
enum { DCONV_Z_NONE, DCONV_Z_SUM, DCONV_Z_ADD };

/* The node's activation and output geometry (ydims: Y's dims), or an error when they do not parse. */
static il_status dconv_geom(il_kctx *c, il_act *act, il_conv_geom *g, int64_t *ydims) {
    const il_tensor *X = c->in[0], *W = c->in[1];
    int64_t kernel[IL_MAX_SPATIAL];
    for (int i = 0; i + 2 < W->rank; i++) kernel[i] = W->dims[2 + i];
    il_status st = il_act_parse(c, act);
    if (!st) st = il_window_geom(c, X, kernel, 0, 1, g);
    if (st) return st;
    g->group = il_attr_int(c->node, "group", 1);
    g->m = W->dims[0];
    ydims[0] = g->n;
    ydims[1] = g->m;
    for (int d = 0; d < g->nsp; d++) ydims[2 + d] = g->out[d];
    return IL_OK;
}

/* Winograd F(4x4,3x3) rather than oneDNN's F(2x2,3x3) (IL_DNNL_WINO4_BYTES): where the weight is
 * small and the plane large. This Xeon, oneDNN 2.6, one thread, the primitive alone with Relu,
 * min of 60, its weight read cold from 30 copies (as in a network) then hot, 2x3 against 4x3:
 * 64 -> 64 at 56x56 0.82 / 0.61 ms (hot 0.80 / 0.56), 32 at 56x56 0.32 / 0.20, 96 at 28x28
 * 0.40 / 0.36, 64 at 28x28 0.20 / 0.18; but 128 at 28x28 0.74 / 0.80 (hot 0.71 / 0.64), 256 at
 * 14x14 1.23 / 1.39, 512 at 7x7 1.87 / 3.13, 64 at 14x14 0.050 / 0.053. Two threads: 64 at
 * 56x56 0.41 / 0.35, 128 at 28x28 0.42 / 0.51. Where a thread runs several images one after the
 * other (a batch run image by image), the weight comes from cache after the first: 8, 4 and 2
 * images in a row (weight cold at the first, min of 20, load 4.5), 256 at 14x14 8.22 / 6.52,
 * 3.96 / 3.76, 2.20 / 2.47 ms; 128 at 28x28 5.71 / 5.29, 2.99 / 2.75, 1.49 / 1.42; 512 at 7x7
 * 14.96 / 20.66 (8); 64 at 14x14 0.20 / 0.22 (4), hence IL_DNNL_WINO4_REUSE and its bounds.
 * Few input channels lose (IL_DNNL_WINO4_MIN_C): SqueezeNet's 16 -> 64 expands at 55x55 took
 * 0.32 against 0.34-0.36 ms in the network though the primitive alone was faster (0.246 / 0.219
 * ms cold); node minimums (100 runs, load 7, 4x3 against 2x3) batch 1 one thread 0.351 / 0.335
 * against 0.327 / 0.311 ms, two threads 0.247 / 0.225 against 0.179 / 0.160; batch 8 (image by
 * image) one thread 3.29 / 2.96 against 3.00 / 2.74, two threads 1.94 / 1.59 against 1.72 / 1.53
 * ms (docs/cpu_speed_sessions.md, session 9); so 2x3 there, also on batches (oneDNN's 2x3 takes
 * one image a call: a batch in one call keeps its 4x3). INFERLAB_DNNL_WINO4=0 keeps 2x3, to
 * compare. */
static const char *wino_prefer(const il_kctx *c, const il_conv_geom *g) {
    int64_t reuse = c->in[0]->dims[0] / (c->threads > 1 ? c->threads : 1);
    int many = reuse >= IL_DNNL_WINO4_REUSE;
    if (g->c / g->group < IL_DNNL_WINO4_MIN_C) return "wino_2x3";
    if ((double)g->c * (double)g->m * 36 * sizeof(float) > (many ? IL_DNNL_WINO4_BYTES_REUSED : IL_DNNL_WINO4_BYTES) ||
        g->out_sp < (many ? IL_DNNL_WINO4_PIXELS_REUSED : IL_DNNL_WINO4_PIXELS))
        return NULL;
    return il_dnnl_env_on("INFERLAB_DNNL_WINO4") ? "wino_4x3" : NULL;
}

/* The primitive descriptor for the node: weights `any` (blocked); src and dst plain
 * ("dnnl-nchw"), or, for "dnnl", the plan's blocked layout where the plan holds X or Y blocked and
 * `any` (the primitive's choice, reordered to and from) where it holds them plain. */
static il_status make_pd(il_kctx *c, int blocked, const il_conv_geom *g, const il_act *act, int zmode,
                         dnnl_primitive_desc_t *pd, dnnl_memory_desc_t *w_user) {
    int wino = blocked == DCONV_WINO;
    const il_tensor *X = c->in[0], *W = c->in[1], *B = il_in(c, 2);
    int r = X->rank, nsp = r - 2;
    dnnl_memory_desc_t src, dst, wmd, bmd;
    int64_t xdims[IL_MAX_RANK], ydims[IL_MAX_RANK] = {g->n, g->m};
    memcpy(xdims, X->dims, sizeof xdims);
    xdims[0] = g->n; /* one image where the batch runs image by image */
    for (int d = 0; d < nsp; d++) ydims[2 + d] = g->out[d];
    il_status st = IL_OK;
    if (blocked) {
        dnnl_dims_t xd, yd;
        for (int i = 0; i < r; i++) xd[i] = xdims[i], yd[i] = ydims[i];
        if ((c->blocked_in & 1) && !wino) st = il_dnnl_native_md(c, &src, r, xdims);
        else IL_DNNL(c, dnnl_memory_desc_init_by_tag(&src, r, xd, dnnl_f32, dnnl_format_tag_any));
        if (st) return st;
        if ((c->blocked_out & 1) && !wino) st = il_dnnl_native_md(c, &dst, r, ydims);
        else IL_DNNL(c, dnnl_memory_desc_init_by_tag(&dst, r, yd, dnnl_f32, dnnl_format_tag_any));
        if (st) return st;
    } else if ((st = il_dnnl_plain_md(c, &src, r, xdims)) || (st = il_dnnl_plain_md(c, &dst, r, ydims))) {
        return st;
    }
    /* grouped: [G, M/G, C/G, k...], which is the ONNX weight's memory read with one more axis */
    int64_t wd[IL_MAX_RANK + 1];
    int wr = 0;
    if (g->group > 1) wd[wr++] = g->group;
    wd[wr++] = W->dims[0] / g->group;
    for (int i = 1; i < W->rank; i++) wd[wr++] = W->dims[i];
    if ((st = il_dnnl_plain_md(c, w_user, wr, wd))) return st;
    dnnl_dims_t wdd, strides, dil, pl, pr;
    for (int i = 0; i < wr; i++) wdd[i] = wd[i];
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&wmd, wr, wdd, dnnl_f32, dnnl_format_tag_any));
    if (B && (st = il_dnnl_plain_md(c, &bmd, 1, &g->m))) return st;
    for (int d = 0; d < nsp; d++) {
        strides[d] = g->stride[d];
        dil[d] = g->dil[d] - 1; /* oneDNN counts the gaps */
        pl[d] = g->pad[d];
        pr[d] = g->pad_end[d];
    }
    dnnl_convolution_desc_t cd;
    IL_DNNL(c, dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                          wino ? dnnl_convolution_winograd : dnnl_convolution_direct, &src,
                                                          &wmd, B ? &bmd : NULL, &dst, strides, dil, pl, pr));
    /* the residual before the activation: act(conv + b + z) */
    if (zmode == DCONV_Z_ADD) {
        if (blocked != DCONV_NATIVE || !(c->blocked_out & 1) || !(c->blocked_in >> 3 & 1) || c->out_cstride)
            return il_kerr(c, IL_ERR_UNSUPPORTED, "a residual add post-op wants Z and Y native");
        return il_dnnl_pd_add(c, &cd, 0, &dst, act, pd, "convolution");
    }
    return il_dnnl_pd_pick(c, &cd, zmode != DCONV_Z_NONE, NULL, act, wino ? wino_prefer(c, g) : NULL, pd, "convolution");
}

/* The steps of one state around primitive descriptor pd: the primitive, the reorders between the
 * layouts the plan holds X, Y and Z in (xuser, yuser, zuser) and pd's, its scratchpad; their
 * buffers laid in the workspace from *off. */
static il_status dconv_steps(il_kctx *c, il_dnnl_state *s, const_dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *xuser,
                             const dnnl_memory_desc_t *yuser, const dnnl_memory_desc_t *zuser,
                             const dnnl_memory_desc_t *wuser, size_t *off) {
    const il_tensor *B = il_in(c, 2);
    const dnnl_memory_desc_t *src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch = scr ? dnnl_memory_desc_get_size(scr) : 0;
    s->zbytes = dnnl_memory_desc_get_size(dst);
    il_status st = il_dnnl_step_make(c, &s->main, pd);
    if (!st) st = il_dnnl_io_make(c, s, xuser, src, yuser, dst, off);
    /* the sum post-op adds what dst holds: Z, in the primitive's layout */
    if (!st && s->has_z && !s->z_add && !s->z_loop && !dnnl_memory_desc_equal(dst, zuser))
        st = il_dnnl_reorder_make(c, &s->z_in, zuser, dst);
    s->yc.relu = s->z_loop == 2;
    s->scratch_off = *off;
    *off += il_dnnl_align(scratch);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SRC, src);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_WEIGHTS, wmd);
    if (!st && B) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_BIAS, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1));
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_DST, dst);
    if (!st && s->z_add) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, zuser);
    if (!st && scratch) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SCRATCHPAD, scr);
    s->ximg = dnnl_memory_desc_get_size(xuser);
    s->yimg = dnnl_memory_desc_get_size(yuser);
    if (c->out_cstride) /* a slice of a wider tensor: an image is the whole tensor's */
        s->yimg = (size_t)(yuser->dims[2] * yuser->dims[3] * c->out_cstride) * sizeof(float);
    s->zimg = dnnl_memory_desc_get_size(zuser);
    if (!st && s->sc.on) { /* ScaledConv: the scaled weight and its packed form, or the scaled image */
        s->sc.off = *off;
        *off += il_dnnl_align(s->sc.by_w ? dnnl_memory_desc_get_size(wuser) : s->ximg);
        s->sc.pk_off = *off;
        if (s->sc.by_w) {
            *off += il_dnnl_align(dnnl_memory_desc_get_size(wmd));
            st = il_dnnl_reorder_make(c, &s->sc.w_re, wuser, wmd);
        }
    }
    return st;
}

/* Whether a batch too large for the caches runs its images in parallel (one per thread, each on a
 * one-thread primitive) rather than one call of the primitive on all threads;
 * INFERLAB_DNNL_IMAGE_PAR=0 turns it off, to compare. */
static int image_parallel(void) { return il_dnnl_env_on("INFERLAB_DNNL_IMAGE_PAR"); }

/* Whether a residual is read by a binary add post-op where it lies rather than copied into Y for a
 * sum post-op: the copy was a serial pass over Z beside a primitive on every thread. ResNet-50
 * batch 1 (16 residual convolutions, channels-last, brgconv with a binary add), sum of the
 * FusedConv node minimums over 30 runs, load 1.4, alternated: 2 threads spinning 24.10 / 24.61
 * ms with the copy against 22.93 / 22.79 without; 1 thread 47.04 / 48.15 against 47.17 / 47.92
 * (level). Where oneDNN has no fast kernel with the add (Winograd), the sum stays.
 * INFERLAB_DNNL_Z_ADD=0 turns it off, to compare. */
static int z_add_on(void) { return il_dnnl_env_on("INFERLAB_DNNL_Z_ADD"); }

/* The workers - 1 more states of a convolution whose images run in parallel: each its own
 * primitive object (the same jitted kernel), memory objects, stream and workspace parts. */
static il_status dconv_workers(il_kctx *c, il_dnnl_state *s, const_dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *xuser,
                               const dnnl_memory_desc_t *yuser, const dnnl_memory_desc_t *zuser,
                               const dnnl_memory_desc_t *wuser, size_t *off) {
    s->more = calloc((size_t)s->workers - 1, sizeof *s->more);
    if (!s->more) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_status st = IL_OK;
    for (int i = 0; i < s->workers - 1 && !st; i++) {
        il_dnnl_state *m = &s->more[i];
        dnnl_stream_t strm;
        m->has_z = s->has_z;
        m->z_add = s->z_add;
        m->z_loop = s->z_loop;
        m->threads = 1;
        m->images = s->images;
        m->sc = s->sc;
        m->pool = s->pool;
        m->silu = s->silu;
        memset(&m->sc.w_re, 0, sizeof m->sc.w_re);
        if (dnnl_stream_create(&strm, il_dnnl_engine(), dnnl_stream_default_flags) != dnnl_success)
            return il_kerr(c, IL_ERR_INTERNAL, "oneDNN could not make a stream");
        st = dconv_steps(c, m, pd, xuser, yuser, zuser, wuser, off);
        m->main.stream = m->src_in.stream = m->dst_out.stream = m->z_in.stream = m->sc.w_re.stream = strm;
    }
    return st;
}

/* Y as the plan holds it: plain, native, or (c->out_cstride, plan_layout.c) a channel slice of a
 * wider channels-last tensor that a Concat joins in place, written through the reorder after the
 * primitive (Winograd's own, from nChw16c; the others' from their dense result). */
static il_status dconv_ymd(const il_kctx *c, dnnl_memory_desc_t *md, const int64_t *ydims) {
    if (!c->out_cstride) return il_dnnl_user_md(c, md, c->blocked_out & 1, c->in[0]->rank, ydims);
    if (c->in[0]->rank != 4 || !(c->blocked_out & 1) || c->out_cstride < ydims[1])
        return il_kerr(c, IL_ERR_INTERNAL, "a strided output of rank 4 only");
    dnnl_dims_t d = {ydims[0], ydims[1], ydims[2], ydims[3]};
    dnnl_dims_t st = {ydims[2] * ydims[3] * c->out_cstride, 1, ydims[3] * c->out_cstride, c->out_cstride};
    IL_DNNL(c, dnnl_memory_desc_init_by_strides(md, 4, d, dnnl_f32, st));
    return IL_OK;
}

/* Winograd with a residual: the primitive without it (and without the Relu, which comes after the
 * add), Z added and Relu taken in the copy loop that brings the nChw16c result out to channels-last
 * (dnnl_layout.c), rather than Z reordered into the primitive's dst first for a sum post-op.
 * Where the loop cannot (another activation, Y or Z not dense channels-last) the sum stays.
 * INFERLAB_DNNL_Z_LOOP=0 turns it off, to compare. Sets s->z_loop and makes *pd where it can. */
static int dconv_z_loop(il_kctx *c, il_dnnl_state *s, int blocked, const il_conv_geom *g, const il_act *act,
                        int64_t *ydims, dnnl_primitive_desc_t *pd, dnnl_memory_desc_t *w_user) {
    const il_act none = {IL_ACT_NONE, 0, 0};
    dnnl_memory_desc_t yu;
    if (!s->has_z || blocked != DCONV_WINO || s->silu || s->sc.on || s->pool.on || !il_dnnl_env_on("INFERLAB_DNNL_Z_LOOP") ||
        (act->kind != IL_ACT_NONE && act->kind != IL_ACT_RELU) || !(c->blocked_in >> 3 & 1) || !il_dnnl_native_last())
        return 0;
    ydims[0] = g->n;
    if (make_pd(c, blocked, g, &none, DCONV_Z_NONE, pd, w_user)) {
        il_error_clear();
        return 0;
    }
    if (il_dnnl_fast_impl(*pd) && !dconv_ymd(c, &yu, ydims) &&
        il_dnnl_ycopy_z_ok(dnnl_primitive_desc_query_md(*pd, dnnl_query_dst_md, 0), &yu)) {
        s->z_loop = act->kind == IL_ACT_RELU ? 2 : 1;
        return 1;
    }
    il_error_clear();
    dnnl_primitive_desc_destroy(*pd);
    return 0;
}

/* prepare: the primitive for the node's shapes, the weight packed, reorders where the layouts the
 * plan holds X, Y and Z in differ from the primitive's, the workspace laid out. */
static il_status dconv_fill(il_kctx *c, il_dnnl_state *s, size_t *workspace, int blocked) {
    const il_tensor *X = c->in[0], *W = c->in[1];
    s->has_z = il_in(c, 3) != NULL;
    il_act act;
    il_conv_geom g;
    int64_t ydims[IL_MAX_RANK];
    il_status st = dconv_geom(c, &act, &g, ydims);
    if (st) return st;
    /* SiLU after the primitive on its output in cache, not as oneDNN's swish post-op (silu_fast.c) */
    s->silu = act.kind == IL_ACT_SILU && il_cpu_silu_ok();
    if (s->silu) act.kind = IL_ACT_NONE;
    if (blocked != DCONV_PLAIN && il_dnnl_conv_own(c, s, blocked == DCONV_WINO, &g, &act, workspace, &st)) return st;
    il_dnnl_use_threads(c, s, (double)g.n * g.m * g.out_sp * (g.c / g.group) * g.k_sp);
    /* A batch whose activations outgrow the caches runs image by image: oneDNN's brgconv on 8
     * images streams them per block of output channels. 1x256x14x14 -> 1024 (1x1, channels-last,
     * one thread, min of 15, load 7-9): 0.59 ms an image against 5.6-13.6 ms for 8 images in one
     * call; 1x64x56x56 -> 256: 0.60-0.63 against 5.6-10.3 ms. On more threads the images are
     * shared out among them, each on a one-thread primitive (docs/cpu_speed_sessions.md). */
    s->images = 1;
    s->workers = 1;
    s->sc.on = c->n_in > 4; /* ScaledConv: one image per call, each with its own scale */
    s->pool.on = c->n_out > 1; /* PooledConv: one image per call, pooled while in cache */
    if (g.n > 1 && (s->sc.on || s->pool.on || (double)(g.c * g.in_sp + g.m * g.out_sp) * g.n * sizeof(float) >= IL_DNNL_IMAGE_BYTES)) {
        if (s->threads > 1 && image_parallel()) {
            s->workers = (int)(g.n < s->threads ? g.n : s->threads);
            s->threads = 1; /* one each: the primitive is made for it */
            omp_set_num_threads(1);
        }
        if (s->threads == 1 || s->sc.on) {
            s->images = g.n;
            g.n = 1;
        }
    }
    if (s->pool.on && c->out_cstride) return il_kerr(c, IL_ERR_INTERNAL, "PooledConv writes no strided output");
    s->pool.last = !!(c->blocked_out & 1);
    s->pool.n = g.n;
    s->pool.c = g.m;
    s->pool.sp = g.out_sp;
    dnnl_primitive_desc_t pd;
    dnnl_memory_desc_t w_user;
    /* the residual read where it lies, where oneDNN has a fast kernel for it; not where Y lies
     * over Z (plan_layout.c): the sum post-op then finds Z in place with nothing to copy, on
     * brgconv, which takes no binary add in oneDNN 2.6 (and oneDNN does not promise that a
     * binary post-op may read the destination's own memory) */
    if (s->has_z && z_add_on() && !(c->out_over_in >> 3 & 1)) {
        if (!make_pd(c, blocked, &g, &act, DCONV_Z_ADD, &pd, &w_user)) {
            if (il_dnnl_fast_impl(pd)) s->z_add = 1;
            else dnnl_primitive_desc_destroy(pd);
        }
        il_error_clear();
    }
    if (!s->z_add && !dconv_z_loop(c, s, blocked, &g, &act, ydims, &pd, &w_user) &&
        (st = make_pd(c, blocked, &g, &act, s->has_z ? DCONV_Z_SUM : DCONV_Z_NONE, &pd, &w_user)))
        return st;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_desc_t xuser, yuser, zuser;
    int64_t xdims[IL_MAX_RANK];
    memcpy(xdims, X->dims, sizeof xdims);
    xdims[0] = g.n;
    ydims[0] = g.n;
    size_t off = 0;
    if (!(st = il_dnnl_user_md(c, &xuser, c->blocked_in & 1, X->rank, xdims)) && !(st = dconv_ymd(c, &yuser, ydims)) &&
        !(st = il_dnnl_user_md(c, &zuser, c->blocked_in >> 3 & 1, X->rank, ydims)) &&
        !(st = il_dnnl_pack(c, &w_user, W->data, wmd, &s->w)) && !(st = il_dnnl_sconv_plan(c, s, &g, &xuser)) &&
        !(st = dconv_steps(c, s, pd, &xuser, &yuser, &zuser, &w_user, &off)) && s->workers > 1)
        st = dconv_workers(c, s, pd, &xuser, &yuser, &zuser, &w_user, &off);
    dnnl_primitive_desc_destroy(pd);
    s->pool.part_off = off; /* PooledConv on several threads: their partial sums */
    if (s->pool.on && s->threads > 1) off += il_dnnl_align((size_t)(s->threads * g.m) * sizeof(float));
    *workspace = off + 64;
    return st;
}

static il_status dconv_prepare_blocked(il_kctx *c, void **state, size_t *ws) {
    return il_dnnl_prepare(c, state, ws, dconv_fill, DCONV_NATIVE);
}
static il_status dconv_prepare_plain(il_kctx *c, void **state, size_t *ws) {
    return il_dnnl_prepare(c, state, ws, dconv_fill, DCONV_PLAIN);
}
static il_status dconv_prepare_wino(il_kctx *c, void **state, size_t *ws) {
    return il_dnnl_prepare(c, state, ws, dconv_fill, DCONV_WINO);
}

/* One call of the primitive of state s (the node's, or a worker's) with the packed weight w on X
 * at x, Y at y and Z at z (the whole batch, or one image). */
static il_status dconv_call(il_kctx *c, il_dnnl_state *s, void *w, char *x, char *y, const char *z, const float *sv,
                            float *pool) {
    const il_tensor *B = il_in(c, 2);
    void *src, *dst = il_dnnl_dst_at(c, s, y);
    il_status st = IL_OK;
    if (sv) {
        char *ws = il_dnnl_ws(c);
        if (s->sc.by_w) {
            il_dnnl_sconv_apply(s, c->in[1]->data, NULL, sv, (float *)(ws + s->sc.off));
            il_dnnl_step_set(&s->sc.w_re, DNNL_ARG_SRC, ws + s->sc.off);
            il_dnnl_step_set(&s->sc.w_re, DNNL_ARG_DST, ws + s->sc.pk_off);
            st = il_dnnl_exec(c, &s->sc.w_re);
            w = ws + s->sc.pk_off;
        } else {
            il_dnnl_sconv_apply(s, NULL, (const float *)x, sv, (float *)(ws + s->sc.off));
            x = ws + s->sc.off;
        }
    }
    if (!st) st = il_dnnl_src_at(c, s, x, &src);
    if (!st && s->has_z && !s->z_add && !s->z_loop) {
        if (s->z_in.prim) {
            il_dnnl_step_set(&s->z_in, DNNL_ARG_SRC, (void *)z);
            il_dnnl_step_set(&s->z_in, DNNL_ARG_DST, dst);
            st = il_dnnl_exec(c, &s->z_in);
        } else if (dst != z) {
            memcpy(dst, z, s->zbytes);
        }
    }
    if (!st) {
        il_dnnl_step_set(&s->main, DNNL_ARG_SRC, src);
        il_dnnl_step_set(&s->main, DNNL_ARG_WEIGHTS, w);
        if (B) il_dnnl_step_set(&s->main, DNNL_ARG_BIAS, B->data);
        il_dnnl_step_set(&s->main, DNNL_ARG_DST, dst);
        if (s->z_add) il_dnnl_step_set(&s->main, DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, (void *)z);
        il_dnnl_step_set(&s->main, DNNL_ARG_SCRATCHPAD, il_dnnl_ws(c) + s->scratch_off);
        st = il_dnnl_exec(c, &s->main);
        /* PooledConv writing Y where it lies, channels-last: the pool's sums in the SiLU's pass */
        if (!st && s->silu && s->pool.on && s->pool.last && dst == (void *)y) {
            il_cpu_silu_means((float *)y, s->pool.n, s->pool.c, s->pool.sp, pool, s->threads,
                              (float *)(il_dnnl_ws(c) + s->pool.part_off));
            return IL_OK;
        }
        if (!st && s->silu) il_cpu_silu(dst, (int64_t)(s->zbytes / sizeof(float)), s->threads);
    }
    if (!st) st = s->z_loop ? il_dnnl_dst_done_z(c, s, dst, y, z) : il_dnnl_dst_done_at(c, s, dst, y);
    if (!st && s->pool.on)
        il_cpu_chan_means((const float *)y, s->pool.last, s->pool.n, s->pool.c, s->pool.sp, pool, s->threads,
                          (float *)(il_dnnl_ws(c) + s->pool.part_off));
    return st;
}

static il_status dconv_run(il_kctx *c) {
    il_dnnl_state *s = c->state;
    const il_tensor *Z = il_in(c, 3), *S = il_in(c, 4);
    char *x = c->in[0]->data, *y = c->out[0]->data;
    const char *z = Z ? Z->data : NULL;
    const float *sv = S ? S->data : NULL;
    float *pool = s->pool.on ? c->out[1]->data : NULL;
    int64_t sn = s->sc.c, pn = s->pool.c; /* scales, means per image */
    il_status st = IL_OK;
    if (s->pw.u) {
        const il_tensor *B = il_in(c, 2);
        const int64_t *yd = c->out[0]->dims;
        il_cpu_pw_run(&s->pw, (const float *)x, B ? B->data : NULL, (float *)y, yd[0] * yd[2] * yd[3], s->threads);
        return IL_OK;
    }
    if (s->wsm) {
        const il_tensor *B = il_in(c, 2);
        il_cpu_wsmall_run(s->wsm, (const float *)x, c->in[0]->dims[0], B ? B->data : NULL, (float *)y, s->pw.cs,
                          c->workspace, s->threads);
        return IL_OK;
    }
    if (s->workers > 1) {
        /* dynamic: on a busy machine one thread may get less of its core than the other */
#pragma omp parallel for num_threads(s->workers) schedule(dynamic, 1)
        for (int64_t i = 0; i < s->images; i++) {
            int t = omp_get_thread_num();
            il_status e = dconv_call(c, t ? &s->more[t - 1] : s, s->w, x + i * s->ximg, y + i * s->yimg,
                                     z ? z + i * s->zimg : NULL, sv ? sv + i * sn : NULL, pool ? pool + i * pn : NULL);
            if (e) {
#pragma omp critical(il_dnnl_conv_err)
                st = e;
            }
        }
        return st;
    }
    for (int64_t i = 0; i < s->images && !st; i++)
        st = dconv_call(c, s, s->w, x + i * s->ximg, y + i * s->yimg, z ? z + i * s->zimg : NULL, sv ? sv + i * sn : NULL,
                        pool ? pool + i * pn : NULL);
    return st;
}

/* Which of X, Z (in) and Y (out) the blocked kernel can hold in the native layout: the sides
 * where oneDNN, left to choose, picks it (then its fast kernel runs on it, and a 3-channel image
 * stays plain); where it picks neither, both when a primitive on native tensors still has a real
 * implementation. Never a reference one: tiny_resnet's 8-channel 3x3 convs forced to nChw16c ran
 * 1.04 ms against 0.002 ms channels-last. */
static void dconv_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    il_kctx v = *c;
    const il_tensor *X = c->in[0];
    il_act act;
    il_conv_geom g;
    int64_t ydims[IL_MAX_RANK];
    if (dconv_geom(&v, &act, &g, ydims)) {
        il_error_clear();
        return;
    }
    int saved = il_dnnl_threads_enter(c->threads), has_z = il_in(c, 3) != NULL;
    dnnl_primitive_desc_t pd;
    dnnl_memory_desc_t w_user, xn, yn;
    v.blocked_in = v.blocked_out = 0;
    if (!il_dnnl_native_md(&v, &xn, X->rank, X->dims) && !il_dnnl_native_md(&v, &yn, X->rank, ydims) &&
        !make_pd(&v, DCONV_NATIVE, &g, &act, has_z, &pd, &w_user)) {
        if (dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), &xn)) *in |= 1;
        if (dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), &yn)) *in |= 8, *out |= 1;
        dnnl_primitive_desc_destroy(pd);
        v.blocked_in = 1;
        v.blocked_out = 1;
        if (!*in && !*out && !make_pd(&v, DCONV_NATIVE, &g, &act, has_z, &pd, &w_user)) {
            if (il_dnnl_fast_impl(pd)) *in = 1 | 8, *out = 1;
            dnnl_primitive_desc_destroy(pd);
        }
    }
    il_dnnl_threads_leave(saved);
    il_error_clear();
}

/* Winograd ("dnnl-wino"): oneDNN's F(2x2,3x3) / F(4x4,3x3) convolutions, for 2-D 3x3 stride-1
 * undilated ungrouped convolutions of at least IL_DNNL_WINO_MACS where oneDNN has one for the
 * node's shapes, activation and residual (it wants channels in whole blocks of 16). They work on
 * nChw16c, which is not the native layout here (channels-last), so the kernel reads and writes
 * the plan's native values (the chain stays native around it) and reorders into its own layout
 * and back: two cheap passes against a convolution 1.3-1.8x faster (1 thread, oneDNN 2.6 on
 * this AVX-512 Xeon, primitive alone, min of 15: 1x256x14x14 -> 256 1.21 -> 0.95 ms, 1x64x56x56
 * 1.32 -> 0.80 ms, 1x128x28x28 1.25 -> 0.71 ms, 1x512x7x7 1.32 -> 1.24 ms). Its rounding differs
 * from direct convolution's (the transforms add and subtract tile values): a few ulps of the
 * output's scale, checked in tests/test_dnnl_layout.c. */
static int dconv_wino_supports(const il_kctx *c) {
    if (!dconv_supports(c)) return 0;
    const il_tensor *X = c->in[0], *W = c->in[1];
    if (X->rank != 4 || W->dims[2] != 3 || W->dims[3] != 3) return 0;
    il_kctx v = *c;
    il_act act;
    il_conv_geom g;
    int64_t ydims[IL_MAX_RANK];
    int ok = 0;
    if (!dconv_geom(&v, &act, &g, ydims) && g.group == 1 && g.stride[0] == 1 && g.stride[1] == 1 && g.dil[0] == 1 &&
        g.dil[1] == 1 && (double)g.n * g.m * g.out_sp * g.c * g.k_sp >= IL_DNNL_WINO_MACS) {
        int saved = il_dnnl_threads_enter(c->threads);
        dnnl_primitive_desc_t pd;
        dnnl_memory_desc_t w_user;
        if (!make_pd(&v, DCONV_WINO, &g, &act, il_in(c, 3) != NULL, &pd, &w_user)) {
            ok = il_dnnl_fast_impl(pd);
            dnnl_primitive_desc_destroy(pd);
        }
        il_dnnl_threads_leave(saved);
    }
    il_error_clear();
    return ok;
}

/* X, Z and Y native: the reorders into the primitive's layout are the kernel's own. */
static void dconv_wino_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    *in |= 1 | 8;
    *out |= 1;
}

/* PooledConv: as the convolution, but Y native only where that is channels-last, the one native
 * layout il_cpu_chan_means reads (P, [N, M, 1, 1], stays plain). */
static void pconv_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    dconv_layouts(c, in, out);
    if (!il_dnnl_native_last()) *out &= ~1u;
}
static int pconv_wino_supports(const il_kctx *c) { return c->n_out == 2 && c->out[1] && dconv_wino_supports(c); }
static void pconv_wino_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    dconv_wino_layouts(c, in, out);
    if (!il_dnnl_native_last()) *out &= ~1u;
}

/* Y may take Z's slot (plan_layout.c): the sum post-op adds what the destination holds, and
 * every path puts Z there before the primitive runs (the reorder into Winograd's layout, or
 * nothing where Y already lies over Z); Winograd's copy loop out of nChw16c (z_loop) reads each
 * element of Z before it writes Y's there. */
static int dconv_over(const il_kctx *c) { return c->n_in > 3 && c->in[3] && c->n_out == 1 ? 3 : -1; }

/* Priorities: "dnnl" (blocked) above im2col-blas / fast (10), so the heuristic picks it: on this
 * project's 2-core AVX-512 machine, one thread, whole models at -O2 (p50 of 20 runs, CPU time in
 * brackets), ResNet-18 78.6 ms (1.22 s) against im2col-blas 325 ms (4.84 s), MobileNet v2
 * 21.7 ms (0.86 s) against 65.9 ms (0.92 s). "dnnl-nchw" was slower than "dnnl" on both
 * (137 ms, 116 ms) but wins some single layers, so it stays below 10 for `--tactics timed`
 * to pick (docs/cpu_speed.md). */
#define DCONV(dom, op_, nm, prio, sup, prep, lay, doc_)                                                            \
    {.domain = dom, .op = op_, .backend = "cpu", .name = nm, .dtypes = IL_DT(IL_F32), .priority = prio,          \
     .supports = sup, .prepare = prep, .run = dconv_run, .release = il_dnnl_release, .doc = doc_,      \
     .layouts = lay, .strided_out = lay != NULL, .writes_over = dconv_over}

const il_kernel il_kernels_dnnl_conv[] = {
    DCONV("ai.inferlab", "FusedConv", "dnnl", 20, dconv_supports, dconv_prepare_blocked, dconv_layouts,
          "oneDNN convolution, bias + residual (sum) + activation as post-ops; weights prepacked, activations "
          "blocked (kept so between blocked kernels, reordered where a chain starts or ends)"),
    DCONV("ai.inferlab", "FusedConv", "dnnl-nchw", 5, dconv_supports, dconv_prepare_plain, NULL,
          "oneDNN convolution with post-ops, weights prepacked, activations kept in plain NCHW (no reorders)"),
    DCONV("ai.inferlab", "FusedConv", "dnnl-wino", 25, dconv_wino_supports, dconv_prepare_wino, dconv_wino_layouts,
          "oneDNN Winograd convolution (3x3, stride 1), post-ops as dnnl; reads and writes the native layout, "
          "reordering into its own"),
    DCONV("ai.inferlab", "ScaledConv", "dnnl", 20, sconv_supports, dconv_prepare_blocked, dconv_layouts,
          "oneDNN convolution of X * S (S a channel scale per image) as dnnl: each image's scale goes into a "
          "copy of the weight, packed again (a weight of at most half an image), or into a copy of the image"),
    {.domain = "ai.inferlab", .op = "PooledConv", .backend = "cpu", .name = "dnnl", .dtypes = IL_DT(IL_F32), .priority = 20,
     .supports = pconv_supports, .prepare = dconv_prepare_blocked, .run = dconv_run, .release = il_dnnl_release,
     .layouts = pconv_layouts,
     .doc = "oneDNN convolution as dnnl, one image per call, each image's channel means taken right after it (in "
            "cache) for the pool output"},
    {.domain = "ai.inferlab", .op = "PooledConv", .backend = "cpu", .name = "dnnl-wino", .dtypes = IL_DT(IL_F32),
     .priority = 25, .supports = pconv_wino_supports, .prepare = dconv_prepare_wino, .run = dconv_run,
     .release = il_dnnl_release, .layouts = pconv_wino_layouts,
     .doc = "oneDNN Winograd convolution as dnnl-wino, one image per call, its channel means taken in cache"},
    DCONV("", "Conv", "dnnl-wino", 25, dconv_wino_supports, dconv_prepare_wino, dconv_wino_layouts,
          "oneDNN Winograd convolution (3x3, stride 1); reads and writes the native layout, reordering into its own"),
    DCONV("", "Conv", "dnnl", 20, dconv_supports, dconv_prepare_blocked, dconv_layouts,
          "oneDNN convolution, weights prepacked, activations blocked (kept so between blocked kernels)"),
    DCONV("", "Conv", "dnnl-nchw", 5, dconv_supports, dconv_prepare_plain, NULL,
          "oneDNN convolution, weights prepacked, activations kept in plain NCHW (no reorders)"),
    {0},
};

#endif
