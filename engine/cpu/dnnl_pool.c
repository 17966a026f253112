/*
 * dnnl_pool.c - MaxPool, AveragePool and the global pools through oneDNN's pooling primitive
 * (pooling_v2, which takes dilations), on plain NCHW tensors, or blocked ones where the plan keeps
 * the pool inside a chain of blocked kernels (engine/plan_layout.c). MaxPool on uint8/int8 too
 * (a quantized CNN's stem pool: max over the bytes is the reference's, quantization being
 * monotone), computed channels-last, the layout of the INT8 kernels around it (dnnl_q.h). A pool reads each input once,
 * so on its own it stays plain: reordering into a blocked layout and back would cost more than
 * the pool itself.
 *
 * Where ONNX and oneDNN agree and where they do not: oneDNN wants the end padding that makes
 * its floor formula give the output size, so a ceil_mode window hanging past the input becomes
 * end padding. That is harmless for MaxPool (padding never wins) and for AveragePool without
 * count_include_pad (only the taps inside the input count); AveragePool with count_include_pad
 * would count that overhang as padding where ONNX does not, so supports() declines it. MaxPool's
 * Indices output is not offered (oneDNN's workspace is not ONNX's index), nor pads as large as
 * the window (oneDNN refuses them).
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_q.h"

/* The geometry oneDNN is given: ONNX's, with the end pads that its floor formula needs. */
static il_status dpool_geom(const il_kctx *c, il_conv_geom *g, dnnl_dims_t pr) {
    int ceil_mode = (int)il_attr_int(c->node, "ceil_mode", 0);
    il_status st = il_window_geom(c, c->in[0], NULL, ceil_mode, 1, g);
    if (st) return st;
    for (int d = 0; d < g->nsp; d++) pr[d] = (g->out[d] - 1) * g->stride[d] + (g->k[d] - 1) * g->dil[d] + 1 - g->in[d] - g->pad[d];
    return IL_OK;
}

static int dpool_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0];
    if (!x || x->rank < 3 || x->rank > 5 || !il_shape_known(x) || il_tensor_numel(x) == 0) return 0;
    /* bytes: the maximum only (an average would round where the reference does not) */
    int bytes_max = (x->dtype == IL_U8 || x->dtype == IL_I8) && !strcmp(c->node->op_type, "MaxPool");
    if (x->dtype != IL_F32 && !bytes_max) return 0;
    if (il_out(c, 1)) return 0; /* MaxPool's Indices */
    il_conv_geom g;
    dnnl_dims_t pr;
    il_status st = dpool_geom(c, &g, pr);
    il_error_clear();
    if (st) return 0;
    int avg = !strcmp(c->node->op_type, "AveragePool");
    int include_pad = avg && il_attr_int(c->node, "count_include_pad", 0);
    for (int d = 0; d < g.nsp; d++) {
        int64_t span = (g.k[d] - 1) * g.dil[d] + 1;
        if (g.pad[d] >= span || pr[d] >= span) return 0;
        if (include_pad && pr[d] != g.pad_end[d]) return 0;
    }
    return 1;
}

static dnnl_alg_kind_t pool_alg(const il_kctx *c) {
    const char *op = c->node->op_type;
    if (!strcmp(op, "GlobalAveragePool")) return dnnl_pooling_avg_exclude_padding;
    if (!strcmp(op, "AveragePool"))
        return il_attr_int(c->node, "count_include_pad", 0) ? dnnl_pooling_avg_include_padding
                                                            : dnnl_pooling_avg_exclude_padding;
    return dnnl_pooling_max;
}

/* A descriptor of X's type: float32 plain or in the plan's native layout (dnnl_layout.c), 8-bit
 * plain or channels-last (dnnl_q.h). */
static il_status pool_md(const il_kctx *c, dnnl_memory_desc_t *md, int native, int rank, const int64_t *dims) {
    il_dtype dt = c->in[0]->dtype;
    return dt == IL_F32 ? il_dnnl_user_md(c, md, native, rank, dims) : il_dnnl_q_md(c, md, dt, native, rank, dims);
}

/* The pooling primitive in X's layout for source and destination (oneDNN's fast pools take no
 * mix), Y reordered after it where the plan holds it otherwise: the smaller side. 8-bit pools
 * run channels-last whatever the plan holds (oneDNN has them in no other layout). arg: 1 for the
 * global pools, whose window is the whole of each channel's plane. */
static il_status dpool_fill(il_kctx *c, il_dnnl_state *s, size_t *workspace, int arg) {
    int global = arg & 1, probe = arg & 2;
    const il_tensor *X = c->in[0];
    il_conv_geom g;
    dnnl_dims_t pr, strides, kernel, dil, pl;
    il_status st = IL_OK;
    if (global) {
        g = (il_conv_geom){.n = X->dims[0], .c = X->dims[1], .nsp = X->rank - 2, .out_sp = 1, .k_sp = 1};
        for (int d = 0; d < g.nsp; d++) {
            g.in[d] = g.k[d] = X->dims[2 + d];
            g.out[d] = g.stride[d] = g.dil[d] = 1;
            g.k_sp *= g.k[d];
            pr[d] = 0;
        }
    } else if ((st = dpool_geom(c, &g, pr))) {
        return st;
    }
    if (!probe) il_dnnl_use_threads(c, s, (double)g.n * g.c * g.out_sp * g.k_sp); /* taps, each about a MAC */
    int64_t ydims[IL_MAX_RANK] = {g.n, g.c};
    for (int d = 0; d < g.nsp; d++) {
        ydims[2 + d] = g.out[d];
        strides[d] = g.stride[d];
        kernel[d] = g.k[d];
        dil[d] = g.dil[d] - 1;
        pl[d] = g.pad[d];
    }
    int blocked = (c->blocked_in & 1) || X->dtype != IL_F32;
    dnnl_memory_desc_t src, dst, xuser, yuser;
    if ((st = pool_md(c, &src, blocked, X->rank, X->dims)) || (st = pool_md(c, &dst, blocked, X->rank, ydims)) ||
        (st = pool_md(c, &xuser, c->blocked_in & 1, X->rank, X->dims)) ||
        (st = pool_md(c, &yuser, c->blocked_out & 1, X->rank, ydims)))
        return st;
    if (probe) { /* dpool_layouts: whether oneDNN has a real pool on native tensors */
        dnnl_pooling_v2_desc_t pdesc;
        dnnl_primitive_desc_t pd;
        int ok = !pool_md(c, &src, 1, X->rank, X->dims) && !pool_md(c, &dst, 1, X->rank, ydims) &&
                 !dnnl_pooling_v2_forward_desc_init(&pdesc, dnnl_forward_inference, pool_alg(c), &src, &dst, strides,
                                                    kernel, dil, pl, pr) &&
                 !il_dnnl_pd(c, &pdesc, 0, NULL, &pd, "pooling");
        if (ok) ok = il_dnnl_fast_impl(pd), dnnl_primitive_desc_destroy(pd);
        il_error_clear();
        return ok ? IL_OK : IL_ERR_UNSUPPORTED;
    }
    dnnl_alg_kind_t alg = pool_alg(c);
    dnnl_pooling_v2_desc_t pdesc;
    IL_DNNL(c, dnnl_pooling_v2_forward_desc_init(&pdesc, dnnl_forward_inference, alg, &src, &dst, strides, kernel, dil,
                                                 pl, pr));
    dnnl_primitive_desc_t pd;
    if ((st = il_dnnl_pd(c, &pdesc, 0, NULL, &pd, "pooling"))) return st;
    st = il_dnnl_io_prim(c, s, pd, &xuser, &yuser, workspace);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static il_status dpool_prepare(il_kctx *c, void **state, size_t *workspace) {
    return il_dnnl_prepare(c, state, workspace, dpool_fill, 0);
}

static il_status dgpool_prepare(il_kctx *c, void **state, size_t *workspace) {
    return il_dnnl_prepare(c, state, workspace, dpool_fill, 1);
}

/* Pools read and write X and Y in either layout, where oneDNN has a real pool on native ones. */
static void dpool_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    il_kctx v = *c;
    v.blocked_in = v.blocked_out = 0;
    int global = !strncmp(c->node->op_type, "Global", 6);
    if (dpool_fill(&v, NULL, NULL, 2 | global)) return;
    *in = 1;
    *out = 1;
}

static int dgpool_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0];
    return x && x->dtype == IL_F32 && x->rank >= 3 && x->rank <= 5 && il_shape_known(x) && il_tensor_numel(x) > 0;
}

/* ---------------------------------------------------------------- MaxPool channels-last */

/* MaxPool "native": a 2-D float32 max pool between channels-last values (the native layout on
 * this project's machines), each output pixel the maximum of its window's pixels, a vector of
 * channels at a time. oneDNN 2.6's jit pool on channels-last took 1.5-2x as long (one thread,
 * min of 200, primitive alone): 128@55x55 3x3/2 -> 27x27 83 us against 44 us; 64@111x111 214
 * against 140 us; 256@27x27 35 against 17 us (SqueezeNet's three pools, ResNet's stem pool).
 * Where either side is held plain, or the native layout is blocked, or the pool is not 2-D, it is
 * the "dnnl" kernel's work and this one hands it over (state->inner). */
typedef struct {
    il_conv_geom g;
    il_dnnl_state *inner; /* the dnnl kernel's state, where it computes */
    int threads;
} npool_state;

static int npool_supports(const il_kctx *c) {
    return c->in[0] && c->in[0]->dtype == IL_F32 && dpool_supports(c);
}

static void npool_release(void *state) {
    npool_state *s = state;
    if (s) il_dnnl_release(s->inner);
    free(s);
}

static il_status npool_prepare(il_kctx *c, void **state, size_t *workspace) {
    npool_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    *workspace = 0;
    dnnl_dims_t pr;
    il_status st = dpool_geom(c, &s->g, pr);
    if (!st && !(c->in[0]->rank == 4 && (c->blocked_in & 1) && (c->blocked_out & 1) && il_dnnl_native_last()))
        st = dpool_prepare(c, (void **)&s->inner, workspace);
    /* threads only where the pool is large enough to pay for waking them: 4M taps where idle threads
     * sleep; where they spin (the bound il_dnnl_serial_macs gives then, or below), a fifth of that
     * bound, 0.1M taps: a pool reads what a convolution on every thread wrote, half of it in the
     * other core's cache. SqueezeNet batch 1, 2 threads spinning, node minimums over 100 runs,
     * load about 4, three runs each: 64@111x111 3x3/2 (1.7M taps) 0.145 ms serial -> 0.055-0.060
     * ms threaded; 256@27x27 3x3/2 (0.39M taps) 0.032-0.033 -> 0.012-0.014 ms. */
    double bound = il_dnnl_serial_macs() <= IL_DNNL_SERIAL_MACS_SPIN ? il_dnnl_serial_macs() / 5 : 4e6;
    s->threads = c->threads > 1 && (double)s->g.n * s->g.c * s->g.out_sp * s->g.k_sp >= bound ? c->threads : 1;
    if (st) {
        npool_release(s);
        return st;
    }
    *state = s;
    return IL_OK;
}

/* Native on both sides for a 2-D pool where the native layout is channels-last (any window:
 * this kernel computes it); otherwise as the dnnl kernel, which then computes. */
static void npool_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    if (c->in[0]->rank == 4 && il_dnnl_native_last()) {
        *in |= 1;
        *out |= 1;
        return;
    }
    dpool_layouts(c, in, out);
}

#define NPOOL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

/* The taps t of a window starting at s0 (t * dil from it) that fall inside [0, n): [*lo, *hi). */
static void npool_taps(int64_t s0, int64_t k, int64_t dil, int64_t n, int64_t *lo, int64_t *hi) {
    *lo = s0 < 0 ? (-s0 + dil - 1) / dil : 0;
    *hi = s0 >= n ? 0 : (n - s0 + dil - 1) / dil;
    if (*hi > k) *hi = k;
}

/* B channels of one output pixel: the maximum over nh x nw taps from p (dh, dw apart), kept in
 * registers (B a constant where it is inlined) and stored once; the first tap taken as it is, a
 * later one only where greater, as the reference does (a NaN wins only as the first tap). */
static inline __attribute__((always_inline)) void npool_block(const float *p, float *yo, int64_t nh, int64_t nw,
                                                              int64_t dh, int64_t dw, int B) {
    float acc[64];
    for (int i = 0; i < B; i++) acc[i] = p[i];
    for (int64_t th = 0; th < nh; th++)
        for (int64_t tw = th ? 0 : 1; tw < nw; tw++) {
            const float *q = p + th * dh + tw * dw;
            for (int i = 0; i < B; i++) acc[i] = q[i] > acc[i] ? q[i] : acc[i];
        }
    for (int i = 0; i < B; i++) yo[i] = acc[i];
}

/* Output row oh of one image, each pixel's channels 64 at a time, then the rest's multiple of 8
 * together, then 1 at a time; the window's taps inside the input found once per pixel rather
 * than tested tap by tap. A window with no tap inside gives -inf, as the reference. */
NPOOL_CLONES void il_dnnl_pool_row(const il_conv_geom *g, const float *x, float *y, int64_t oh) {
    int64_t C = g->c, W = g->in[1], OW = g->out[1], dh = g->dil[0] * W * C, dw = g->dil[1] * C;
    int64_t h0 = oh * g->stride[0] - g->pad[0], kh0, kh1;
    npool_taps(h0, g->k[0], g->dil[0], g->in[0], &kh0, &kh1);
    for (int64_t ow = 0; ow < OW; ow++) {
        float *yo = y + (oh * OW + ow) * C;
        int64_t w0 = ow * g->stride[1] - g->pad[1], kw0, kw1;
        npool_taps(w0, g->k[1], g->dil[1], W, &kw0, &kw1);
        int64_t nh = kh1 - kh0, nw = kw1 - kw0, ch = 0;
        if (nh <= 0 || nw <= 0) {
            for (; ch < C; ch++) yo[ch] = -INFINITY;
            continue;
        }
        const float *p = x + ((h0 + kh0 * g->dil[0]) * W + w0 + kw0 * g->dil[1]) * C;
        for (; ch + 64 <= C; ch += 64) npool_block(p + ch, yo + ch, nh, nw, dh, dw, 64);
        switch ((C - ch) & ~7) { /* the rest in one pass over the taps (ShuffleNet's 24 channels) */
        case 8: npool_block(p + ch, yo + ch, nh, nw, dh, dw, 8); break;
        case 16: npool_block(p + ch, yo + ch, nh, nw, dh, dw, 16); break;
        case 24: npool_block(p + ch, yo + ch, nh, nw, dh, dw, 24); break;
        case 32: npool_block(p + ch, yo + ch, nh, nw, dh, dw, 32); break;
        case 40: npool_block(p + ch, yo + ch, nh, nw, dh, dw, 40); break;
        case 48: npool_block(p + ch, yo + ch, nh, nw, dh, dw, 48); break;
        case 56: npool_block(p + ch, yo + ch, nh, nw, dh, dw, 56); break;
        }
        for (ch += (C - ch) & ~7; ch < C; ch++) npool_block(p + ch, yo + ch, nh, nw, dh, dw, 1);
    }
}

static il_status npool_run(il_kctx *c) {
    npool_state *s = c->state;
    if (s->inner) {
        c->state = s->inner;
        il_status st = il_dnnl_io_run(c);
        c->state = s;
        return st;
    }
    const il_conv_geom *g = &s->g;
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    int64_t rows = g->n * g->out[0], xi = g->c * g->in_sp, yi = g->c * g->out_sp;
    int threads = s->threads;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) il_dnnl_pool_row(g, x + r / g->out[0] * xi, y + r / g->out[0] * yi, r % g->out[0]);
    return IL_OK;
}

/* Priority 20, above the "fast" pools (10): ResNet-18's 3x3/2 pad-1 stem pool at 1x64x112x112,
 * one thread, 0.54 ms against 0.69 ms (38 ms before pool_fast.c ran padded rows tap by tap);
 * tiny_resnet's at batch 8, 0.010 against 0.040 ms (`run --profile`, load 10 on 2 cores). */
#define DPOOL(op_, dts, sup, prep, doc_)                                                                          \
    {.op = op_, .backend = "cpu", .name = "dnnl", .dtypes = dts, .priority = 20, .supports = sup,                \
     .prepare = prep, .run = il_dnnl_io_run, .release = il_dnnl_release, .layouts = dpool_layouts, .doc = doc_}

const il_kernel il_kernels_dnnl_pool[] = {
    DPOOL("MaxPool", IL_DT(IL_F32) | IL_DT(IL_U8) | IL_DT(IL_I8), dpool_supports, dpool_prepare,
          "oneDNN pooling, plain or blocked (no Indices output); uint8/int8 channels-last, exact"),
    {.op = "MaxPool", .backend = "cpu", .name = "native", .dtypes = IL_DT(IL_F32), .priority = 22,
     .supports = npool_supports, .prepare = npool_prepare, .run = npool_run, .release = npool_release,
     .layouts = npool_layouts,
     .doc = "2-D max pool between channels-last values, channels vectorized; other layouts and ranks as dnnl"},
    DPOOL("AveragePool", IL_DT(IL_F32), dpool_supports, dpool_prepare,
          "oneDNN pooling, plain or blocked (count_include_pad with a ceil_mode overhang declined)"),
    DPOOL("GlobalAveragePool", IL_DT(IL_F32), dgpool_supports, dgpool_prepare,
          "oneDNN pooling over each whole plane, plain or blocked"),
    DPOOL("GlobalMaxPool", IL_DT(IL_F32), dgpool_supports, dgpool_prepare,
          "oneDNN pooling over each whole plane, plain or blocked"),
    {0},
};

#endif
