/*
 * dnnl_layout.c - how the oneDNN kernels meet the layouts the plan holds their tensors in
 * (engine/plan_layout.c): plain NCHW, or the CPU's native activation layout where the kernels on
 * both sides of a value take it.
 *
 * The native layout is the one oneDNN's convolutions choose for themselves on this CPU when left
 * free (format `any`), found once per process by asking it for a middling 3x3 convolution:
 * channels-last (acdb, its brgconv kernels) on this project's AVX-512 Xeon with oneDNN 2.6,
 * nChw16c (aBcd16b, its older direct kernels) or nChw8c on others. INFERLAB_DNNL_LAYOUT=nhwc,
 * 16c or 8c forces one, to compare them. Every native layout fits in il_blocked_bytes (channels
 * padded to the block at most), which is what the plan reserves.
 *
 * A primitive computes in the layout it chose (or was given); a tensor held in another layout is
 * reordered into a workspace buffer before the primitive reads it (X) or after it writes it (Y).
 * Inside a chain of native kernels the layouts agree and no reorder is made: prepare compares the
 * descriptors once, and run only follows the reorders that prepare found needed.
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

#include <omp.h>
#include <pthread.h>

enum { NAT_NHWC, NAT_16C, NAT_8C };
static int native;
static pthread_once_t native_once = PTHREAD_ONCE_INIT;

static const dnnl_format_tag_t tags[3][3] = {
    {dnnl_acb, dnnl_acdb, dnnl_acdeb},
    {dnnl_aBc16b, dnnl_aBcd16b, dnnl_aBcde16b},
    {dnnl_aBc8b, dnnl_aBcd8b, dnnl_aBcde8b},
};

/* The source layout oneDNN picks for a 1x64x28x28 3x3 convolution into 64 channels. */
static void find_native(void) {
    const char *e = getenv("INFERLAB_DNNL_LAYOUT");
    native = il_cpu_channel_block() == 16 ? NAT_16C : NAT_8C;
    if (e && *e) {
        native = !strcmp(e, "nhwc") ? NAT_NHWC : !strcmp(e, "8c") ? NAT_8C : NAT_16C;
        return;
    }
    dnnl_memory_desc_t src, wei, dst, want;
    dnnl_dims_t xd = {1, 64, 28, 28}, wd = {64, 64, 3, 3}, one = {1, 1}, zero = {0, 0}, pad = {1, 1};
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd;
    if (!il_dnnl_engine() || dnnl_memory_desc_init_by_tag(&src, 4, xd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&dst, 4, xd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei,
                                                   NULL, &dst, one, zero, pad, pad) ||
        dnnl_primitive_desc_create(&pd, &cd, NULL, il_dnnl_engine(), NULL))
        return;
    const dnnl_memory_desc_t *got = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    for (int k = NAT_NHWC; k <= NAT_8C; k++)
        if (!dnnl_memory_desc_init_by_tag(&want, 4, xd, dnnl_f32, tags[k][1]) && dnnl_memory_desc_equal(got, &want)) {
            native = k;
            break;
        }
    dnnl_primitive_desc_destroy(pd);
}

il_status il_dnnl_native_md(const il_kctx *c, dnnl_memory_desc_t *md, int rank, const int64_t *dims) {
    if (rank < 3 || rank > 5) return il_kerr(c, IL_ERR_INTERNAL, "a native layout for rank %d", rank);
    pthread_once(&native_once, find_native);
    dnnl_dims_t d;
    for (int i = 0; i < rank; i++) d[i] = dims[i];
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(md, rank, d, dnnl_f32, tags[native][rank - 3]));
    return IL_OK;
}

int il_dnnl_native_last(void) {
    pthread_once(&native_once, find_native);
    return native == NAT_NHWC;
}

int il_dnnl_fast_impl(const_dnnl_primitive_desc_t pd) { return strncmp(il_dnnl_impl(pd), "ref", 3) != 0; }

il_status il_dnnl_user_md(const il_kctx *c, dnnl_memory_desc_t *md, int blocked, int rank, const int64_t *dims) {
    return blocked ? il_dnnl_native_md(c, md, rank, dims) : il_dnnl_plain_md(c, md, rank, dims);
}

/* A network's image (3 channels, plain) into a first convolution on channels-last: oneDNN 2.6's
 * reorder (jit:uni) took 1.7x as long as the loop below (1x3x224x224, one thread, hot, min of
 * 200: 0.035 against 0.020 ms), and at batch 8 it is done once per image. 2 to 4 channels, where
 * the loop's reads from each plane stay sequential (a single channel is left to oneDNN). Sets
 * s->last_* where src_in is such a reorder. */
static void find_to_last(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, il_dnnl_state *s) {
    static const dnnl_format_tag_t plain[3] = {dnnl_abc, dnnl_abcd, dnnl_abcde};
    int r = from->ndims;
    dnnl_memory_desc_t a, b;
    if (r < 3 || r > 5 || from->data_type != dnnl_f32 || from->dims[1] < 2 || from->dims[1] > 4 ||
        dnnl_memory_desc_init_by_tag(&a, r, from->dims, dnnl_f32, plain[r - 3]) || !dnnl_memory_desc_equal(&a, from) ||
        dnnl_memory_desc_init_by_tag(&b, r, from->dims, dnnl_f32, tags[NAT_NHWC][r - 3]) || !dnnl_memory_desc_equal(&b, to))
        return;
    s->last_n = from->dims[0];
    s->last_c = from->dims[1];
    s->last_sp = 1;
    for (int d = 2; d < r; d++) s->last_sp *= from->dims[d];
}

#define TO_LAST_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

/* Pixels [p0, p1) of one image's C planes of sp pixels interleaved, C a constant where it is inlined. */
static inline __attribute__((always_inline)) void to_last_image(const float *x, float *y, int64_t sp, int64_t p0,
                                                                int64_t p1, int C) {
    for (int64_t p = p0; p < p1; p++)
        for (int k = 0; k < C; k++) y[p * C + k] = x[k * sp + p];
}

/* Part t of nt of every image (its pixels shared out, so that a batch of 1 uses every thread). */
TO_LAST_CLONES static void to_last_part(const il_dnnl_state *s, const float *x, float *y, int t, int nt) {
    int64_t img = s->last_c * s->last_sp, p0 = s->last_sp * t / nt, p1 = s->last_sp * (t + 1) / nt;
    for (int64_t i = 0; i < s->last_n; i++) switch (s->last_c) {
        case 2: to_last_image(x + i * img, y + i * img, s->last_sp, p0, p1, 2); break;
        case 3: to_last_image(x + i * img, y + i * img, s->last_sp, p0, p1, 3); break;
        default: to_last_image(x + i * img, y + i * img, s->last_sp, p0, p1, 4); break;
        }
}

/* On the node's threads (a worker's state runs on one), and split as the convolution after it
 * reads it: EfficientNet-B0's stem convolution (3 -> 32 channels at 112x112, batch 1, 2 threads
 * spinning, node minimum of 60 runs, load about 2) 0.259 / 0.274 ms -> 0.229 / 0.230. */
static void to_last(const il_dnnl_state *s, const float *x, float *y) {
    int threads = s->threads > 1 ? s->threads : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    to_last_part(s, x, y, omp_get_thread_num(), omp_get_num_threads());
}

/* INFERLAB_DNNL_YCOPY=0: oneDNN's reorders around every primitive (not the copy loops below), to compare. */
static int yc_on(void) { return il_dnnl_env_on("INFERLAB_DNNL_YCOPY"); }

/* Where the reorder after a primitive is from its dense channels-last or nChw16c result (whole
 * blocks: Winograd's) of rank 4 into channels-last values with a pixel stride (a dense Y, or the channels of a Concat
 * written in place), a copy loop does it (sets s->yc): oneDNN 2.6's reorder (jit:uni) into a
 * strided channels-last destination took longer than the 1x1 convolution before it, and the loop
 * shares the pixels among the node's threads as the primitive before it did. SqueezeNet batch 1
 * (its 16 expand convolutions write their Concat's channels; node minimums summed over 150 runs,
 * load 4.4-5.4, alternated twice): 2 threads spinning, the 1x1 expands 0.337 / 0.351 -> 0.295 /
 * 0.294 ms, the Winograd ones 1.075 / 1.142 -> 1.045 / 1.056 ms; 1 thread level (0.454 / 0.451
 * -> 0.451 / 0.451 ms, 1.790 / 1.756 -> 1.779 / 1.793 ms). */
static void find_from_prim(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, il_dnnl_state *s) {
    if (from->ndims != 4 || to->ndims != 4 || from->data_type != dnnl_f32 || to->data_type != dnnl_f32 ||
        from->format_kind != dnnl_blocked || to->format_kind != dnnl_blocked || from->offset0 || to->offset0)
        return;
    const dnnl_dim_t *d = to->dims;
    const dnnl_dims_t cs = {to->format_desc.blocking.strides[3]}, nd = {to->format_desc.blocking.strides[0]};
    dnnl_dims_t st = {nd[0], 1, d[3] * cs[0], cs[0]};
    dnnl_memory_desc_t want;
    if (cs[0] < d[1] || nd[0] < d[2] * d[3] * cs[0] || dnnl_memory_desc_init_by_strides(&want, 4, d, dnnl_f32, st) ||
        !dnnl_memory_desc_equal(&want, to))
        return;
    static const dnnl_format_tag_t tags_from[2] = {dnnl_acdb, dnnl_aBcd16b};
    static const int64_t blks[2] = {0, 16};
    for (int k = 0; k < 2; k++)
        if ((!blks[k] || d[1] % blks[k] == 0) && !dnnl_memory_desc_init_by_tag(&want, 4, from->dims, dnnl_f32, tags_from[k]) &&
            dnnl_memory_desc_equal(&want, from)) {
            s->yc.on = 1;
            s->yc.blk = blks[k];
            s->yc.n = d[0];
            s->yc.c = d[1];
            s->yc.sp = d[2] * d[3];
            s->yc.cs = cs[0];
            s->yc.yn = nd[0];
            s->yc.dn = from->format_desc.blocking.strides[0];
            return;
        }
}

/* Pixels [p0, p1) of every image of the primitive's result d into Y at y (s->yc), a pixel's
 * channels at a time (its blocks gathered), so that Y is written in whole lines. With a residual
 * z (dense channels-last; nChw16c results only) each value is d + z, then Relu where s->yc.relu. */
TO_LAST_CLONES static void from_prim_part(const il_dnnl_state *s, const float *d, float *y, const float *z, int64_t p0,
                                          int64_t p1) {
    int64_t C = s->yc.c, cs = s->yc.cs, sp = s->yc.sp;
    for (int64_t n = 0; n < s->yc.n; n++) {
        const float *dn = d + n * s->yc.dn;
        float *yn = y + n * s->yc.yn;
        for (int64_t p = p0; p < p1; p++) {
            float *yp = yn + p * cs;
            if (z) {
                const float *dp = dn + p * 16, *zp = z + n * C * sp + p * C;
                if (s->yc.relu)
                    for (int64_t ch = 0; ch < C; ch += 16)
                        for (int i = 0; i < 16; i++) {
                            float v = dp[ch * sp + i] + zp[ch + i];
                            yp[ch + i] = v > 0 ? v : 0;
                        }
                else
                    for (int64_t ch = 0; ch < C; ch += 16)
                        for (int i = 0; i < 16; i++) yp[ch + i] = dp[ch * sp + i] + zp[ch + i];
                continue;
            }
            if (!s->yc.blk) {
                const float *dp = dn + p * C;
                for (int64_t ch = 0; ch < C; ch++) yp[ch] = dp[ch];
                continue;
            }
            const float *dp = dn + p * 16;
            for (int64_t ch = 0; ch < C; ch += 16)
                for (int i = 0; i < 16; i++) yp[ch + i] = dp[ch * sp + i];
        }
    }
}

static void from_prim(const il_dnnl_state *s, const float *d, float *y, const float *z) {
    int threads = s->threads > 1 ? s->threads : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        from_prim_part(s, d, y, z, s->yc.sp * t / nt, s->yc.sp * (t + 1) / nt);
    }
}

int il_dnnl_ycopy_z_ok(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
    il_dnnl_state s = {0};
    if (yc_on()) find_from_prim(from, to, &s);
    return s.yc.on && s.yc.blk == 16;
}

/* The other way, before a primitive that computes in nChw16c (Winograd): X dense channels-last of
 * rank 4 and channels in whole blocks of 16 (sets s->xc). oneDNN's reorder took longer on 2
 * threads than on 1 for SqueezeNet's squeeze outputs (1x16x55x55: 0.009 against 0.008 ms,
 * 1x32x27x27 0.006 against 0.002, ONEDNN_VERBOSE minimums). SqueezeNet batch 1, its 8 Winograd
 * expands (node minimums summed, 150 runs, load about 4.5, alternated twice, both loops against
 * neither): 2 threads 1.086 / 1.097 -> 1.013 / 1.017 ms, 1 thread 1.736 / 1.725 -> 1.742 / 1.737 ms.
 * INFERLAB_DNNL_YCOPY=0 turns both loops off. */
static void find_to_blk(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, il_dnnl_state *s) {
    dnnl_memory_desc_t a, b;
    if (from->ndims != 4 || from->data_type != dnnl_f32 || from->dims[1] % 16 ||
        dnnl_memory_desc_init_by_tag(&a, 4, from->dims, dnnl_f32, dnnl_acdb) || !dnnl_memory_desc_equal(&a, from) ||
        dnnl_memory_desc_init_by_tag(&b, 4, from->dims, dnnl_f32, dnnl_aBcd16b) || !dnnl_memory_desc_equal(&b, to))
        return;
    s->xc.on = 1;
    s->xc.n = from->dims[0];
    s->xc.c = from->dims[1];
    s->xc.sp = from->dims[2] * from->dims[3];
}

/* Pixels [p0, p1) of every image of X at x into the primitive's nChw16c at d (s->xc). */
TO_LAST_CLONES static void to_blk_part(const il_dnnl_state *s, const float *x, float *d, int64_t p0, int64_t p1) {
    int64_t C = s->xc.c, sp = s->xc.sp;
    for (int64_t n = 0; n < s->xc.n; n++) {
        const float *xn = x + n * C * sp;
        float *dn = d + n * C * sp;
        for (int64_t p = p0; p < p1; p++)
            for (int64_t ch = 0; ch < C; ch += 16)
                for (int i = 0; i < 16; i++) dn[ch * sp + p * 16 + i] = xn[p * C + ch + i];
    }
}

static void to_blk(const il_dnnl_state *s, const float *x, float *d) {
    int threads = s->threads > 1 ? s->threads : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        to_blk_part(s, x, d, s->xc.sp * t / nt, s->xc.sp * (t + 1) / nt);
    }
}

il_status il_dnnl_io_make(const il_kctx *c, il_dnnl_state *s, const dnnl_memory_desc_t *xuser,
                          const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *yuser,
                          const dnnl_memory_desc_t *dst, size_t *off) {
    il_status st = IL_OK;
    if (!dnnl_memory_desc_equal(src, xuser)) {
        s->src_off = *off;
        *off += il_dnnl_align(dnnl_memory_desc_get_size(src));
        st = il_dnnl_reorder_make(c, &s->src_in, xuser, src);
        find_to_last(xuser, src, s);
        if (yc_on()) find_to_blk(xuser, src, s);
    }
    if (!st && !dnnl_memory_desc_equal(dst, yuser)) {
        s->dst_off = *off;
        *off += il_dnnl_align(dnnl_memory_desc_get_size(dst));
        st = il_dnnl_reorder_make(c, &s->dst_out, dst, yuser);
        if (yc_on()) find_from_prim(dst, yuser, s);
    }
    return st;
}

il_status il_dnnl_src(const il_kctx *c, il_dnnl_state *s, void **src) { return il_dnnl_src_at(c, s, c->in[0]->data, src); }

il_status il_dnnl_src_at(const il_kctx *c, il_dnnl_state *s, void *x, void **src) {
    *src = x;
    if (!s->src_in.prim) return IL_OK;
    *src = il_dnnl_ws(c) + s->src_off;
    if (s->last_c) {
        to_last(s, x, *src);
        return IL_OK;
    }
    if (s->xc.on) {
        /* one block of 16 channels: nChw16c is dense channels-last itself (SqueezeNet's first
         * squeeze outputs), read where it lies */
        if (s->xc.c == 16) *src = x;
        else to_blk(s, x, *src);
        return IL_OK;
    }
    il_dnnl_step_set(&s->src_in, DNNL_ARG_SRC, x);
    il_dnnl_step_set(&s->src_in, DNNL_ARG_DST, *src);
    return il_dnnl_exec(c, &s->src_in);
}

il_status il_dnnl_io_prim(il_kctx *c, il_dnnl_state *s, const_dnnl_primitive_desc_t pd,
                          const dnnl_memory_desc_t *xuser, const dnnl_memory_desc_t *yuser, size_t *workspace) {
    const dnnl_memory_desc_t *src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch = scr ? dnnl_memory_desc_get_size(scr) : 0, off = 0;
    il_status st = il_dnnl_step_make(c, &s->main, pd);
    if (!st) st = il_dnnl_io_make(c, s, xuser, src, yuser, dst, &off);
    s->scratch_off = off;
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SRC, src);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_DST, dst);
    if (!st && scratch) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SCRATCHPAD, scr);
    *workspace = off + il_dnnl_align(scratch) + 64;
    return st;
}

il_status il_dnnl_io_run(il_kctx *c) {
    il_dnnl_state *s = c->state;
    void *src, *dst = il_dnnl_dst(c, s);
    il_status st = il_dnnl_src(c, s, &src);
    if (st) return st;
    il_dnnl_step_set(&s->main, DNNL_ARG_SRC, src);
    il_dnnl_step_set(&s->main, DNNL_ARG_DST, dst);
    il_dnnl_step_set(&s->main, DNNL_ARG_SCRATCHPAD, il_dnnl_ws(c) + s->scratch_off);
    st = il_dnnl_exec(c, &s->main);
    return st ? st : il_dnnl_dst_done(c, s, dst);
}

void *il_dnnl_dst(const il_kctx *c, const il_dnnl_state *s) { return il_dnnl_dst_at(c, s, c->out[0]->data); }

void *il_dnnl_dst_at(const il_kctx *c, const il_dnnl_state *s, void *y) {
    return s->dst_out.prim ? il_dnnl_ws(c) + s->dst_off : y;
}

il_status il_dnnl_dst_done(const il_kctx *c, il_dnnl_state *s, void *dst) {
    return il_dnnl_dst_done_at(c, s, dst, c->out[0]->data);
}

il_status il_dnnl_dst_done_at(const il_kctx *c, il_dnnl_state *s, void *dst, void *y) {
    if (!s->dst_out.prim) return IL_OK;
    if (s->yc.on) {
        from_prim(s, dst, y, NULL);
        return IL_OK;
    }
    il_dnnl_step_set(&s->dst_out, DNNL_ARG_SRC, dst);
    il_dnnl_step_set(&s->dst_out, DNNL_ARG_DST, y);
    return il_dnnl_exec(c, &s->dst_out);
}

il_status il_dnnl_dst_done_z(const il_kctx *c, il_dnnl_state *s, void *dst, void *y, const void *z) {
    if (!s->yc.on || s->yc.blk != 16) return il_kerr(c, IL_ERR_INTERNAL, "a residual added on the way out without the copy loop");
    from_prim(s, dst, y, z);
    return IL_OK;
}

#endif
