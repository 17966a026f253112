/*
 * dnnl_native.c - the cheap ops that would otherwise break a chain of native-layout values
 * (engine/plan_layout.c) in two: Mul and Add of an image by a per-channel scale (the
 * squeeze-excitation blocks of EfficientNet and MobileNetV3) or by a tensor of its own shape, and
 * Concat along the channels (SqueezeNet's Fire modules, ShuffleNet's units), through oneDNN's
 * binary and concat primitives, which take any layout; and ShuffleNet's channel shuffle and
 * channel Slices, gathers of channels in either layout (below).
 *
 * Run by inferlab's own plain kernels, such an op made its producer reorder its output to plain
 * and its consumer reorder it back: on EfficientNet-B0 (batch 1, one thread) 2.5 ms of reorders
 * in a 14.5 ms run, besides the global pools and Muls reading plain tensors. Here the op reads
 * and writes the plan's native values as they are, one pass over the data.
 *
 * Both are exact: a product, a sum or a copy of each element, as the reference computes it
 * (Mul and Add commute bit for bit, so the image-shaped input is always oneDNN's first source).
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

/* ---------------------------------------------------------------- Mul, Add */

/* Which input has the output's shape ("big") and whether the other one broadcasts over the
 * spatial dims only ([N or 1, C, 1, ...]); -1 when the pair is not one this kernel takes: rank 4
 * or 5 float32 tensors of known shape, equal ranks, the other input either the same shape or a
 * per-channel (per image and channel) scale of a plane larger than one element. */
static int bin_big(const il_kctx *c, int *bcast) {
    const il_tensor *a = il_in(c, 0), *b = il_in(c, 1);
    if (c->n_in != 2 || !a || !b || a->dtype != IL_F32 || b->dtype != IL_F32 || a->rank != b->rank || a->rank < 4 ||
        a->rank > 5 || !il_shape_known(a) || !il_shape_known(b) || il_tensor_numel(a) == 0 || il_tensor_numel(b) == 0)
        return -1;
    int same = 1;
    for (int i = 0; i < a->rank; i++) same &= a->dims[i] == b->dims[i];
    *bcast = !same;
    if (same) return 0;
    for (int big = 0; big < 2; big++) {
        const il_tensor *x = c->in[big], *s = c->in[1 - big];
        int ok = (s->dims[0] == 1 || s->dims[0] == x->dims[0]) && s->dims[1] == x->dims[1] && x->dims[1] > 1;
        int64_t plane = 1;
        for (int i = 2; i < x->rank; i++) ok &= s->dims[i] == 1, plane *= x->dims[i];
        if (ok && plane > 1) return big;
    }
    return -1;
}

static int bin_supports(const il_kctx *c) {
    int bcast;
    return bin_big(c, &bcast) >= 0;
}

/* The binary primitive for the node, one image at a time where the scale differs per image.
 * arg: bit 0 probe (layouts: whether oneDNN has a real implementation with the held layouts
 * c->blocked_in / blocked_out; returns IL_ERR_UNSUPPORTED when not). X (the big input) and Y are
 * computed in X's layout; the scale is read in the layout the plan holds it in where oneDNN has a
 * real kernel for that, else reordered first into X's (s->z_in). */
static il_status bin_fill(il_kctx *c, il_dnnl_state *s, size_t *workspace, int arg) {
    int bcast, big = bin_big(c, &bcast), probe = arg & 1;
    if (big < 0) return il_kerr(c, IL_ERR_UNSUPPORTED, "not a per-channel or same-shape pair");
    const il_tensor *X = c->in[big], *S = c->in[1 - big];
    int r = X->rank, xnat = c->blocked_in >> big & 1, snat = c->blocked_in >> (1 - big) & 1;
    int ynat = c->blocked_out & 1;
    int64_t xd[IL_MAX_RANK], sd[IL_MAX_RANK];
    memcpy(xd, X->dims, sizeof xd);
    memcpy(sd, S->dims, sizeof sd);
    int64_t images = bcast && S->dims[0] > 1 ? X->dims[0] : 1; /* oneDNN's jit kernels broadcast over all but C */
    if (images > 1) xd[0] = sd[0] = 1;
    dnnl_memory_desc_t xmd, smd, swork, ymd;
    il_status st;
    if ((st = il_dnnl_user_md(c, &xmd, xnat, r, xd)) || (st = il_dnnl_user_md(c, &smd, snat, r, sd)) ||
        (st = il_dnnl_user_md(c, &swork, xnat, r, sd)) || (st = il_dnnl_user_md(c, &ymd, ynat, r, xd)))
        return st;
    dnnl_alg_kind_t alg = !strcmp(c->node->op_type, "Mul") ? dnnl_binary_mul : dnnl_binary_add;
    if (!probe) il_dnnl_use_threads(c, s, (double)il_tensor_numel(X)); /* before the primitive: its work split */
    dnnl_primitive_desc_t pd = NULL;
    int reorder_s = 0;
    for (int pass = 0; pass < 2 && !pd; pass++) {
        dnnl_binary_desc_t bd;
        reorder_s = pass == 1;
        if (reorder_s && dnnl_memory_desc_equal(&smd, &swork)) break;
        if (dnnl_binary_desc_init(&bd, alg, &xmd, reorder_s ? &swork : &smd, &xmd) != dnnl_success ||
            il_dnnl_pd(c, &bd, 0, NULL, &pd, "binary")) {
            pd = NULL;
            continue;
        }
        if (!il_dnnl_fast_impl(pd)) dnnl_primitive_desc_destroy(pd), pd = NULL;
    }
    il_error_clear();
    if (!pd) return il_kerr(c, IL_ERR_UNSUPPORTED, "oneDNN has no fast binary primitive for these layouts");
    if (probe) {
        dnnl_primitive_desc_destroy(pd);
        return reorder_s ? IL_ERR_UNSUPPORTED : IL_OK;
    }
    s->images = images;
    s->ximg = dnnl_memory_desc_get_size(&xmd);
    s->zimg = dnnl_memory_desc_get_size(&smd);
    s->yimg = dnnl_memory_desc_get_size(&ymd);
    size_t off = 0;
    const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch = scr ? dnnl_memory_desc_get_size(scr) : 0;
    st = il_dnnl_step_make(c, &s->main, pd);
    if (!st) st = il_dnnl_io_make(c, s, &xmd, &xmd, &ymd, &xmd, &off);
    if (!st && reorder_s) {
        s->src_off = off; /* io_make reorders no X: src_off is free for the scale */
        off += il_dnnl_align(dnnl_memory_desc_get_size(&swork));
        st = il_dnnl_reorder_make(c, &s->z_in, &smd, &swork);
    }
    s->scratch_off = off;
    off += il_dnnl_align(scratch);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SRC_0, &xmd);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SRC_1, reorder_s ? &swork : &smd);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_DST, &xmd);
    if (!st && scratch) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SCRATCHPAD, scr);
    dnnl_primitive_desc_destroy(pd);
    *workspace = off + 64;
    return st;
}

static il_status bin_prepare(il_kctx *c, void **state, size_t *workspace) {
    return il_dnnl_prepare(c, state, workspace, bin_fill, 0);
}

static il_status bin_run(il_kctx *c) {
    il_dnnl_state *s = c->state;
    int bcast, big = bin_big(c, &bcast);
    char *x = c->in[big]->data, *sc = c->in[1 - big]->data, *y = c->out[0]->data;
    il_status st = IL_OK;
    for (int64_t i = 0; i < s->images && !st; i++) {
        char *xi = x + i * s->ximg, *si = sc + i * s->zimg, *yi = y + i * s->yimg;
        void *dst = il_dnnl_dst_at(c, s, yi), *src1 = si;
        if (s->z_in.prim) {
            src1 = il_dnnl_ws(c) + s->src_off;
            il_dnnl_step_set(&s->z_in, DNNL_ARG_SRC, si);
            il_dnnl_step_set(&s->z_in, DNNL_ARG_DST, src1);
            st = il_dnnl_exec(c, &s->z_in);
        }
        if (st) break;
        il_dnnl_step_set(&s->main, DNNL_ARG_SRC_0, xi);
        il_dnnl_step_set(&s->main, DNNL_ARG_SRC_1, src1);
        il_dnnl_step_set(&s->main, DNNL_ARG_DST, dst);
        il_dnnl_step_set(&s->main, DNNL_ARG_SCRATCHPAD, il_dnnl_ws(c) + s->scratch_off);
        st = il_dnnl_exec(c, &s->main);
        if (!st) st = il_dnnl_dst_done_at(c, s, dst, yi);
    }
    return st;
}

/* X and Y native where oneDNN has a real binary kernel on native tensors; the scale (or the
 * second same-shaped input) native too where it has one for that mix. */
static void bin_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    int bcast, big = bin_big(c, &bcast);
    if (big < 0) return;
    il_kctx v = *c;
    int saved = il_dnnl_threads_enter(c->threads);
    v.blocked_out = 1;
    v.blocked_in = 3;
    if (!bin_fill(&v, NULL, NULL, 1)) {
        *in |= 3;
        *out |= 1;
    } else {
        v.blocked_in = 1u << big;
        if (!bin_fill(&v, NULL, NULL, 1)) *in |= 1u << big, *out |= 1;
    }
    il_dnnl_threads_leave(saved);
    il_error_clear();
}

/* ---------------------------------------------------------------- Concat */

/* Float32 rank 4-5 tensors of known shape joined along the channels; at most 6 of them (a step
 * holds 8 arguments: the sources, the destination and a scratchpad). */
static int cat_supports(const il_kctx *c) {
    const il_tensor *a = il_in(c, 0);
    if (c->n_in < 1 || c->n_in > 6 || !a || a->rank < 4 || a->rank > 5) return 0;
    int64_t axis = il_attr_int(c->node, "axis", 0);
    if (axis < 0) axis += a->rank;
    if (axis != 1) return 0;
    for (int i = 0; i < c->n_in; i++) {
        const il_tensor *t = c->in[i];
        if (!t || t->dtype != IL_F32 || t->rank != a->rank || !il_shape_known(t) || il_tensor_numel(t) == 0) return 0;
        for (int d = 0; d < a->rank; d++)
            if (d != 1 && t->dims[d] != a->dims[d]) return 0;
    }
    return 1;
}

/* The concat primitive from the layouts the plan holds the inputs in into Y's; where oneDNN has
 * none for that mix (a native blocked layout whose blocks the channel offsets cut), into a plain
 * Y in the workspace, reordered after. arg bit 0: probe for a real implementation (layouts). */
static il_status cat_fill(il_kctx *c, il_dnnl_state *s, size_t *workspace, int arg) {
    int n = c->n_in, r = c->in[0]->rank;
    dnnl_memory_desc_t src[6], ymd, yplain;
    int64_t yd[IL_MAX_RANK];
    memcpy(yd, c->in[0]->dims, sizeof yd);
    yd[1] = 0;
    il_status st = IL_OK;
    for (int i = 0; i < n && !st; i++) {
        yd[1] += c->in[i]->dims[1];
        st = il_dnnl_user_md(c, &src[i], c->blocked_in >> i & 1, r, c->in[i]->dims);
    }
    if (st || (st = il_dnnl_user_md(c, &ymd, c->blocked_out & 1, r, yd)) || (st = il_dnnl_plain_md(c, &yplain, r, yd)))
        return st;
    double numel = 1;
    for (int d = 0; d < r; d++) numel *= (double)yd[d];
    if (!(arg & 1)) il_dnnl_use_threads(c, s, numel);
    dnnl_primitive_attr_t attr;
    IL_DNNL(c, dnnl_primitive_attr_create(&attr));
    dnnl_primitive_desc_t pd = NULL;
    const dnnl_memory_desc_t *dst = &ymd;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success ||
        dnnl_concat_primitive_desc_create(&pd, &ymd, n, 1, src, attr, il_dnnl_engine()) != dnnl_success) {
        pd = NULL;
        dst = &yplain;
        if (!(arg & 1) && dnnl_concat_primitive_desc_create(&pd, &yplain, n, 1, src, attr, il_dnnl_engine()) != dnnl_success)
            pd = NULL;
    }
    dnnl_primitive_attr_destroy(attr);
    if (!pd) return il_kerr(c, IL_ERR_UNSUPPORTED, "oneDNN has no concat primitive for these layouts");
    if (arg & 1) {
        dnnl_primitive_desc_destroy(pd);
        return IL_OK;
    }
    s->images = 1;
    size_t off = 0;
    const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch = scr ? dnnl_memory_desc_get_size(scr) : 0;
    st = il_dnnl_step_make(c, &s->main, pd);
    if (!st && dst != &ymd) {
        s->dst_off = off;
        off += il_dnnl_align(dnnl_memory_desc_get_size(dst));
        st = il_dnnl_reorder_make(c, &s->dst_out, dst, &ymd);
    }
    s->scratch_off = off;
    off += il_dnnl_align(scratch);
    for (int i = 0; i < n && !st; i++) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_MULTIPLE_SRC + i, &src[i]);
    if (!st) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_DST, dst);
    if (!st && scratch) st = il_dnnl_step_arg(c, &s->main, DNNL_ARG_SCRATCHPAD, scr);
    dnnl_primitive_desc_destroy(pd);
    *workspace = off + 64;
    return st;
}

static il_status cat_prepare(il_kctx *c, void **state, size_t *workspace) {
    return il_dnnl_prepare(c, state, workspace, cat_fill, 0);
}

/* Whether the producers may write the inputs straight into their channels of Y (plan_layout.c):
 * all native, joined along the channels of a rank-4 channels-last Y. */
static int cat_in_place(const il_kctx *c) {
    return c->in[0]->rank == 4 && il_dnnl_native_last() && (c->blocked_out & 1) &&
           c->blocked_in == (1u << c->n_in) - 1;
}

static il_status cat_run(il_kctx *c) {
    il_dnnl_state *s = c->state;
    /* written in place already when every input sits at its channels of Y */
    int done = cat_in_place(c);
    for (int i = 0, c0 = 0; i < c->n_in && done; c0 += (int)c->in[i]->dims[1], i++)
        done = c->in[i]->data == (char *)c->out[0]->data + (size_t)c0 * sizeof(float);
    if (done) return IL_OK;
    for (int i = 0; i < c->n_in; i++) il_dnnl_step_set(&s->main, DNNL_ARG_MULTIPLE_SRC + i, c->in[i]->data);
    void *dst = il_dnnl_dst(c, s);
    il_dnnl_step_set(&s->main, DNNL_ARG_DST, dst);
    il_dnnl_step_set(&s->main, DNNL_ARG_SCRATCHPAD, il_dnnl_ws(c) + s->scratch_off);
    il_status st = il_dnnl_exec(c, &s->main);
    return st ? st : il_dnnl_dst_done(c, s, dst);
}

/* Every input and Y native where oneDNN can join the native tensors directly. */
static void cat_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    il_kctx v = *c;
    v.blocked_in = (1u << c->n_in) - 1;
    v.blocked_out = 1;
    if (!cat_fill(&v, NULL, NULL, 1)) *in |= v.blocked_in, *out |= 1;
    il_error_clear();
}

/* ---------------------------------------------------------------- ChannelShuffle, Slice */

/* ShuffleNet's units: the channel shuffle (ai.inferlab ChannelShuffle, passes/fuse_shuffle.c)
 * and the two Slices along the channels that split its result. Run by the plain kernels they
 * kept the shuffled value plain: a reorder out of the Concat before it and one into each conv
 * after. Both are a gather of channels, Y[n, o, p] = X[n, src(o), p]; in channels-last each
 * pixel's channel vector is gathered in place, so these kernels read and write either layout
 * (strides) and the plan keeps the unit native. Not oneDNN's shuffle primitive: oneDNN 2.6 has
 * a jit one for the channel-blocked layouts only, and its "ref" one on channels-last took 0.14-0.37
 * ms against 0.07 plain on ShuffleNet b8's 8x48x28x28 (ONEDNN_VERBOSE, one thread), besides the
 * reorder to the plain Slice after it. Exact: copies.
 *
 * A ChannelShuffle that fuse-shuffle gave the unit's Concat (several inputs) and split (several
 * outputs) gathers each output straight from the branches: one pass over the data instead of
 * three (join, shuffle, split).
 *
 * Each output Y_m is described by its sources: Y_m[n, j*g + k, p] = X_in[k][n, off[k] + j, p]
 * for j < len, k < g. Shuffle of the join J of the inputs into m equal parts of `part`
 * channels: J channel k*(C/g) + j goes to shuffled channel j*g + k, so part m takes, for each k,
 * the J channels k*(C/g) + m*part/g + [0, part/g), which must lie within one input (and g divide
 * part). Slice (step 1 along the channels): g = 1, off its start. */
#define CHAN_MAX_G 8
#define CHAN_MAX_OUT 8
typedef struct {
    int64_t g, len;
    int in[CHAN_MAX_G];
    int64_t off[CHAN_MAX_G];
} chan_src;

/* The sources of ChannelShuffle output m; 0 when they are not of that form. */
static int shuf_src(const il_kctx *c, int m, chan_src *s) {
    int64_t g = il_attr_int(c->node, "groups", 0), total = 0;
    for (int i = 0; i < c->n_in; i++) total += c->in[i]->dims[1];
    if (g < 1 || g > CHAN_MAX_G || total % g || total % c->n_out) return 0;
    int64_t part = total / c->n_out;
    if (part % g) return 0;
    s->g = g, s->len = part / g;
    for (int64_t k = 0; k < g; k++) {
        int64_t j0 = k * (total / g) + m * s->len;
        int i = 0;
        while (j0 >= c->in[i]->dims[1]) j0 -= c->in[i++]->dims[1];
        if (j0 + s->len > c->in[i]->dims[1]) return 0;
        s->in[k] = i, s->off[k] = j0;
    }
    return 1;
}

/* Y[2j] = a[j], Y[2j+1] = b[j]: the shuffle of two groups between native tensors. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static void
interleave2(float *restrict y, const float *restrict a, const float *restrict b, int64_t len) {
    for (int64_t j = 0; j < len; j++) y[2 * j] = a[j], y[2 * j + 1] = b[j];
}

/* Every output m of src[m] in one parallel loop: a native output by pixels (its channel vector
 * contiguous), a plain one by planes. */
static void chan_gather(const il_kctx *c, const chan_src *src) {
    const il_tensor *X0 = c->in[0];
    int64_t n = X0->dims[0], P = il_dims_prod(X0->dims, 2, X0->rank), items[CHAN_MAX_OUT + 1], total = 0;
    int nout = c->n_out < CHAN_MAX_OUT ? c->n_out : CHAN_MAX_OUT;
    for (int m = 0; m < nout; m++) {
        items[m] = total;
        total += c->blocked_out >> m & 1 ? n * P : n * c->out[m]->dims[1];
    }
    items[nout] = total;
    IL_PAR_FOR(c, t, total) {
        int m = 0;
        while (t >= items[m + 1]) m++;
        const chan_src *s = &src[m];
        const il_tensor *Y = c->out[m];
        int64_t yc = Y->dims[1], it = t - items[m];
        const float *xp[CHAN_MAX_G];
        int64_t xs[CHAN_MAX_G]; /* stride between consecutive source channels */
        int nat = 1;
        if (c->blocked_out >> m & 1) { /* pixel it of the batch: b * P + p */
            int64_t b = it / P, p = it % P;
            for (int64_t k = 0; k < s->g; k++) {
                const il_tensor *X = c->in[s->in[k]];
                int64_t xc = X->dims[1], xn = c->blocked_in >> s->in[k] & 1;
                xp[k] = (const float *)X->data + (xn ? it * xc : b * xc * P + p) + s->off[k] * (xn ? 1 : P);
                xs[k] = xn ? 1 : P;
                nat &= (int)xn;
            }
            float *y = (float *)Y->data + it * yc;
            if (nat && s->g == 1) memcpy(y, xp[0], (size_t)s->len * sizeof *y);
            else if (nat && s->g == 2) interleave2(y, xp[0], xp[1], s->len);
            else
                for (int64_t j = 0; j < s->len; j++)
                    for (int64_t k = 0; k < s->g; k++) y[j * s->g + k] = xp[k][j * xs[k]];
        } else { /* plane it: image b, channel o = j * g + k */
            int64_t b = it / yc, o = it % yc, k = o % s->g, j = o / s->g;
            const il_tensor *X = c->in[s->in[k]];
            int64_t xc = X->dims[1], xn = c->blocked_in >> s->in[k] & 1, ch = s->off[k] + j;
            const float *x = (const float *)X->data + b * xc * P + (xn ? ch : ch * P);
            float *y = (float *)Y->data + (b * yc + o) * P;
            if (!xn) memcpy(y, x, (size_t)P * sizeof *y);
            else
                for (int64_t p = 0; p < P; p++) y[p] = x[p * xc];
        }
    }
}

/* Whether the plan's native layout of a rank 4-5 tensor of these dims is dense channels-last,
 * the layout chan_gather's strides describe (INFERLAB_DNNL_LAYOUT=16c makes it blocked). */
static int native_is_nhwc(const il_kctx *c, int rank, const int64_t *dims) {
    dnnl_memory_desc_t nat, nhwc;
    int ok = !il_dnnl_native_md(c, &nat, rank, dims) &&
             dnnl_memory_desc_init_by_tag(&nhwc, rank, dims, dnnl_f32, rank == 4 ? dnnl_acdb : dnnl_acdeb) ==
                 dnnl_success &&
             dnnl_memory_desc_equal(&nat, &nhwc);
    il_error_clear();
    return ok;
}

/* Every input and output in either layout where the native one is channels-last. */
static void gather_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    int nin = strcmp(c->node->op_type, "Slice") ? c->n_in : 1; /* a Slice's other inputs are its parameters */
    for (int i = 0; i < nin; i++)
        if (!native_is_nhwc(c, c->in[i]->rank, c->in[i]->dims)) return;
    for (int i = 0; i < c->n_out; i++)
        if (!il_shape_known(c->out[i]) || !native_is_nhwc(c, c->out[i]->rank, c->out[i]->dims)) return;
    *in |= (1u << nin) - 1, *out |= (1u << c->n_out) - 1;
}

static int image_f32(const il_tensor *x) {
    return x && x->dtype == IL_F32 && x->rank >= 4 && x->rank <= 5 && il_shape_known(x) && il_tensor_numel(x) > 0;
}

static int shuf_supports(const il_kctx *c) {
    if (c->n_in > 31 || c->n_out > CHAN_MAX_OUT) return 0;
    for (int i = 0; i < c->n_in; i++) {
        const il_tensor *x = c->in[i];
        if (!image_f32(x) || x->rank != c->in[0]->rank || x->dims[0] != c->in[0]->dims[0]) return 0;
        for (int d = 2; d < x->rank; d++)
            if (x->dims[d] != c->in[0]->dims[d]) return 0;
    }
    chan_src s;
    for (int m = 0; m < c->n_out; m++)
        if (!shuf_src(c, m, &s)) return 0;
    return 1;
}

static il_status shuf_run(il_kctx *c) {
    chan_src src[CHAN_MAX_OUT];
    for (int m = 0; m < c->n_out; m++)
        if (!shuf_src(c, m, &src[m])) return il_kerr(c, IL_ERR_UNSUPPORTED, "not a shuffle this kernel gathers");
    chan_gather(c, src);
    return IL_OK;
}

/* A Slice of consecutive channels (step 1) and whole other axes, its parameters constants of the
 * plan (initializers, or Shape arithmetic folded at plan time); sets the first channel. */
static int slice_channels(const il_kctx *c, int64_t *start) {
    const il_tensor *x = il_in(c, 0);
    if (!image_f32(x) || c->opset < 10) return 0;
    for (int i = 1; i < c->n_in; i++)
        if (c->in[i] && (!(c->const_mask >> i & 1) || !c->in[i]->data)) return 0;
    il_slice_plan p;
    int ok = !il_slice_make(c, x, &p);
    il_error_clear();
    for (int a = 0; ok && a < x->rank; a++)
        ok = p.step[a] == 1 && p.len[a] >= 0 && (a == 1 ? p.len[a] > 0 : p.start[a] == 0 && p.len[a] == x->dims[a]);
    *start = ok ? p.start[1] : 0;
    return ok;
}

static int cslice_supports(const il_kctx *c) {
    int64_t s;
    return slice_channels(c, &s);
}

static il_status cslice_run(il_kctx *c) {
    chan_src s = {.g = 1, .len = c->out[0]->dims[1]};
    if (!slice_channels(c, &s.off[0])) return il_kerr(c, IL_ERR_UNSUPPORTED, "not a constant slice of channels");
    chan_gather(c, &s);
    return IL_OK;
}

/* ---------------------------------------------------------------- ReduceMean over the image */

/* torchvision's ShuffleNetV2 ends with x.mean([2, 3]), a ReduceMean, not a GlobalAveragePool:
 * run by the plain kernel it made the last conv reorder its 8x1024x7x7 output to plain (0.25 ms
 * at batch 8, one thread) before the 0.13 ms mean. This kernel reads the plain or channels-last
 * value: in channels-last, sums along the pixels are vector adds along the channels. Partial
 * sums of 64 pixels in float, totals in double (the reference sums in double). */
static int rmean_spatial(const il_kctx *c) {
    const il_tensor *x = il_in(c, 0);
    if (!image_f32(x)) return 0;
    int r = x->rank, n = 0, seen[IL_MAX_RANK] = {0};
    int64_t axes[IL_MAX_RANK];
    if (c->opset >= 18) {
        const il_tensor *a = il_in(c, 1);
        if (!a || !(c->const_mask & 2) || !a->data || a->rank != 1 || a->dims[0] > r) return 0;
        for (int64_t i = 0; i < a->dims[0]; i++) axes[n++] = il_int_at(a, i);
    } else {
        const int64_t *at;
        int na = il_attr_ints(c->node, "axes", &at);
        if (na > r) return 0;
        for (int i = 0; i < na; i++) axes[n++] = at[i];
    }
    if (n != r - 2) return 0;
    for (int i = 0; i < n; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + r : axes[i];
        if (ax < 2 || ax >= r || seen[ax]) return 0;
        seen[ax] = 1;
    }
    return 1;
}

static int rmean_supports(const il_kctx *c) { return c->n_in <= 2 && rmean_spatial(c); }

static void rmean_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    if (native_is_nhwc(c, c->in[0]->rank, c->in[0]->dims)) *in |= 1;
}

static il_status rmean_run(il_kctx *c) {
    const il_tensor *X = c->in[0];
    int64_t n = X->dims[0], ch = X->dims[1], P = il_dims_prod(X->dims, 2, X->rank);
    const float *x = X->data;
    float *y = c->out[0]->data;
    if (c->blocked_in & 1) { /* channels-last: image b's pixel p at x[(b * P + p) * ch] */
        IL_PAR_FOR(c, b, n) {
            double tot[256];
            float part[256];
            for (int64_t c0 = 0; c0 < ch; c0 += 256) {
                int64_t cn = ch - c0 < 256 ? ch - c0 : 256;
                for (int64_t j = 0; j < cn; j++) tot[j] = 0;
                for (int64_t p0 = 0; p0 < P; p0 += 64) {
                    int64_t pe = P - p0 < 64 ? P : p0 + 64;
                    for (int64_t j = 0; j < cn; j++) part[j] = 0;
                    for (int64_t p = p0; p < pe; p++) {
                        const float *xp = x + (b * P + p) * ch + c0;
#pragma omp simd
                        for (int64_t j = 0; j < cn; j++) part[j] += xp[j];
                    }
                    for (int64_t j = 0; j < cn; j++) tot[j] += part[j];
                }
                for (int64_t j = 0; j < cn; j++) y[b * ch + c0 + j] = (float)(tot[j] / (double)P);
            }
        }
    } else { /* plain: one contiguous plane per (image, channel) */
        IL_PAR_FOR(c, i, n * ch) {
            const float *xp = x + i * P;
            double tot = 0;
            for (int64_t p0 = 0; p0 < P; p0 += 64) {
                int64_t pe = P - p0 < 64 ? P : p0 + 64;
                float part = 0;
#pragma omp simd reduction(+ : part)
                for (int64_t p = p0; p < pe; p++) part += xp[p];
                tot += part;
            }
            y[i] = (float)(tot / (double)P);
        }
    }
    return IL_OK;
}

/* Priority 20, above the plain "fast" kernels (10), so that the heuristic keeps a chain native
 * through them (docs/cpu_speed.md has the figures); only image-shaped float32 tensors qualify,
 * which leaves the transformers' and the shape computations' Mul, Add and Concat alone. */
#define DNATIVE(op_, sup, prep, run_, lay, doc_)                                                                   \
    {.op = op_, .backend = "cpu", .name = "dnnl", .dtypes = IL_DT(IL_F32), .priority = 20, .supports = sup,      \
     .prepare = prep, .run = run_, .release = il_dnnl_release, .layouts = lay, .doc = doc_}

const il_kernel il_kernels_dnnl_native[] = {
    DNATIVE("Mul", bin_supports, bin_prepare, bin_run, bin_layouts,
            "oneDNN binary: image times a per-channel scale or a same-shaped tensor (rank 4-5), native layout kept"),
    DNATIVE("Add", bin_supports, bin_prepare, bin_run, bin_layouts,
            "oneDNN binary: image plus a per-channel term or a same-shaped tensor (rank 4-5), native layout kept"),
    {.op = "Concat", .backend = "cpu", .name = "dnnl", .dtypes = IL_DT(IL_F32), .priority = 20,
     .supports = cat_supports, .prepare = cat_prepare, .run = cat_run, .release = il_dnnl_release,
     .layouts = cat_layouts, .in_place = cat_in_place,
     .doc = "oneDNN concat along the channels (rank 4-5, up to 6 inputs), native layout kept; inputs written "
            "in place by their producers where they can"},
    {.domain = "ai.inferlab", .op = "ChannelShuffle", .backend = "cpu", .name = "native", .dtypes = IL_DT(IL_F32),
     .priority = 20, .supports = shuf_supports, .run = shuf_run, .layouts = gather_layouts,
     .doc = "ai.inferlab ChannelShuffle as a gather of channels (rank 4-5), plain or channels-last native"},
    {.op = "Slice", .backend = "cpu", .name = "native", .dtypes = IL_DT(IL_F32), .priority = 20,
     .supports = cslice_supports, .run = cslice_run, .layouts = gather_layouts,
     .doc = "Slice of consecutive channels, constant parameters (rank 4-5), plain or channels-last native"},
    {.op = "ReduceMean", .backend = "cpu", .name = "native", .dtypes = IL_DT(IL_F32), .priority = 20,
     .supports = rmean_supports, .run = rmean_run, .layouts = rmean_layouts,
     .doc = "ReduceMean over every spatial dim (rank 4-5), plain or channels-last native input"},
    {0},
};

#endif
