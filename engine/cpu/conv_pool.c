/*
 * conv_pool.c - the oneDNN kernel of ai.inferlab ConvPool (engine/ops/conv_pool.c): P =
 * MaxPool(act(Conv(X, W) + B)) without the convolution's output ever written whole. Each image's
 * convolution runs in bands of output rows, each band a oneDNN convolution (brgconv, channels-last)
 * of the input rows it needs, into a buffer that stays in the core's L2; the band's pool rows are
 * taken from it at once (dnnl_pool.c's native row kernel), and the rows the next band's windows
 * share are moved to the buffer's front rather than computed again.
 *
 * Unfused, ResNet's stem writes 64x112x112 floats (3.2 MB an image) that the pool reads back:
 * node minimums at one thread, batch 8: the conv 12.8 ms and the pool 2.4 ms
 * (docs/cpu_speed_sessions.md, session 9).
 *
 * The bands are planned once at prepare: the pool rows are split among the node's threads (each a
 * part with its own buffer, scratchpad and one-thread primitives), each part's rows in bands of
 * at most CPOOL_BAND_BYTES of convolution output; a band's convolution differs from the next only
 * in its rows and its padding at the image's edges, so a handful of primitives serve them all.
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

#include <omp.h>

#define CPOOL_VARIANTS 8
#define CPOOL_PARTS 64

/* Convolution output a band may hold, in bytes: well inside one core's L2 (2 MB here) with the
 * input rows beside it. INFERLAB_CONVPOOL_BAND_KB replaces it, to compare. */
static size_t band_bytes(void) {
    const char *e = getenv("INFERLAB_CONVPOOL_BAND_KB");
    return (size_t)(e && atoi(e) > 0 ? atoi(e) : 512) * 1024;
}

/* One band: pool rows [q0, q1), which read convolution rows [lo, hi); the first `keep` of those
 * are the previous band's last (at row `shift` of the buffer), the rest computed by primitive
 * `var` from input rows starting at `ia`. */
typedef struct {
    int64_t q0, q1, lo, hi, keep, shift, ia;
    int var;
} cpool_band;

typedef struct {
    il_dnnl_step step[CPOOL_VARIANTS];
    dnnl_stream_t strm; /* NULL: the process's; a part of several its own */
    cpool_band *band;
    int nb;
    size_t buf_off, scr_off, tmp_off;
} cpool_part;

typedef struct {
    /* first, so that the shared helpers that read the node's state as an il_dnnl_state (X's
     * reorder into channels-last, il_dnnl_exec's threads) find theirs */
    il_dnnl_state io;
    il_conv_geom cg, pg; /* the convolution over X, the pool over its output */
    int64_t rowf;        /* floats in one row of convolution output (channels-last) */
    int last_out;        /* P channels-last, else plain */
    int nvar, parts;
    int64_t key[CPOOL_VARIANTS][4]; /* input rows, pad top, pad bottom, output rows */
    cpool_part part[CPOOL_PARTS];
} cpool_state;

/* The convolution's and the pool's geometry; Y's dims into ydims. */
static il_status cpool_geom(const il_kctx *c, il_act *act, il_conv_geom *cg, il_conv_geom *pg) {
    const il_tensor *X = c->in[0], *W = c->in[1];
    int64_t kernel[2] = {W->dims[2], W->dims[3]};
    il_status st = il_act_parse(c, act);
    if (!st) st = il_window_geom(c, X, kernel, 0, 1, cg);
    if (st) return st;
    cg->group = il_attr_int(c->node, "group", 1);
    cg->m = W->dims[0];
    il_node pn;
    il_attr at[8];
    if (il_conv_pool_view(c->node, &pn, at, 8) < 0) return il_kerr(c, IL_ERR_INVALID, "too many pool_ attributes");
    il_tensor y = {.dtype = IL_F32, .rank = 4, .dims = {cg->n, cg->m, cg->out[0], cg->out[1]}};
    il_kctx v = *c;
    v.node = &pn;
    if ((st = il_window_geom(&v, &y, NULL, (int)il_attr_int(&pn, "ceil_mode", 0), 1, pg))) return st;
    pg->m = pg->c;
    return IL_OK;
}

/* The band convolution of `rows` output rows from `rin` input rows padded by pt / pb, or (rows 0)
 * the whole image's; weights `any` where wmd is NULL, else wmd. */
static il_status band_pd(const il_kctx *c, const il_conv_geom *g, const il_act *act, int64_t rin, int64_t pt,
                         int64_t pb, int64_t rows, const dnnl_memory_desc_t *wmd, dnnl_primitive_desc_t *pd) {
    const il_tensor *B = il_in(c, 2);
    dnnl_memory_desc_t src, dst, w, b;
    dnnl_dims_t xd = {1, g->c, rin, g->in[1]}, yd = {1, g->m, rows, g->out[1]}, wd = {g->m, g->c, g->k[0], g->k[1]};
    dnnl_dims_t bd = {g->m}, strides = {g->stride[0], g->stride[1]}, dil = {g->dil[0] - 1, g->dil[1] - 1};
    dnnl_dims_t pl = {pt, g->pad[1]}, pr = {pb, g->pad_end[1]};
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&src, 4, xd, dnnl_f32, dnnl_acdb));
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&dst, 4, yd, dnnl_f32, dnnl_acdb));
    if (wmd) w = *wmd;
    else IL_DNNL(c, dnnl_memory_desc_init_by_tag(&w, 4, wd, dnnl_f32, dnnl_format_tag_any));
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_a));
    dnnl_convolution_desc_t cd;
    IL_DNNL(c, dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &w,
                                                          B ? &b : NULL, &dst, strides, dil, pl, pr));
    il_status st = il_dnnl_pd(c, &cd, 0, act, pd, "convolution");
    if (!st && !il_dnnl_fast_impl(*pd)) {
        dnnl_primitive_desc_destroy(*pd);
        return il_kerr(c, IL_ERR_UNSUPPORTED, "oneDNN has no fast convolution for this band");
    }
    return st;
}

/* 2-D float32, one group, a constant weight, no residual, an activation oneDNN has, channels-last
 * the native layout; and oneDNN's convolution for the whole image is a fast one. */
static int cpool_supports(const il_kctx *c) {
    const il_tensor *X = c->in[0], *W = il_in(c, 1), *B = il_in(c, 2);
    if (c->n_in > 3 || c->n_out != 1 || !X || !W || X->dtype != IL_F32 || W->dtype != IL_F32 || X->rank != 4 ||
        W->rank != 4 || !il_shape_known(X) || !il_shape_known(W) || !(c->const_mask & 2) || !W->data ||
        (B && B->dtype != IL_F32) || !il_dnnl_act_ok(c) || !il_dnnl_native_last() || il_tensor_numel(X) == 0)
        return 0;
    il_act act;
    il_conv_geom cg, pg;
    int ok = 0, saved = il_dnnl_threads_enter(1);
    dnnl_primitive_desc_t pd;
    if (!cpool_geom(c, &act, &cg, &pg) && cg.group == 1 && W->dims[1] == X->dims[1] && cg.out_sp > 0 &&
        pg.out_sp > 0 && !band_pd(c, &cg, &act, cg.in[0], cg.pad[0], cg.pad_end[0], cg.out[0], NULL, &pd)) {
        ok = 1;
        dnnl_primitive_desc_destroy(pd);
    }
    il_dnnl_threads_leave(saved);
    il_error_clear();
    return ok;
}

/* X and P channels-last where the plan can hold them so (a network's image stays plain). */
static void cpool_layouts(const il_kctx *c, uint32_t *in, uint32_t *out) {
    (void)c;
    if (!il_dnnl_native_last()) return;
    *in |= 1;
    *out |= 1;
}

static void cpool_release(void *state) {
    cpool_state *s = state;
    if (!s) return;
    for (int p = 0; p < s->parts; p++) {
        for (int v = 0; v < s->nvar; v++) il_dnnl_step_free(&s->part[p].step[v]);
        if (s->part[p].strm) dnnl_stream_destroy(s->part[p].strm);
        free(s->part[p].band);
    }
    il_dnnl_step_free(&s->io.src_in);
    free(s->io.w);
    free(s);
}

/* The variant of primitive for key k, added where new (-1: too many). */
static int variant(cpool_state *s, const int64_t *k) {
    for (int v = 0; v < s->nvar; v++)
        if (!memcmp(s->key[v], k, sizeof s->key[v])) return v;
    if (s->nvar == CPOOL_VARIANTS) return -1;
    memcpy(s->key[s->nvar], k, sizeof s->key[0]);
    return s->nvar++;
}

/* Pool rows [q0, q1) of part pt in bands of at most `per` pool rows. */
static il_status plan_bands(il_kctx *c, cpool_state *s, cpool_part *pt, int64_t q0, int64_t q1, int64_t per) {
    const il_conv_geom *g = &s->cg, *p = &s->pg;
    int64_t spanp = (p->k[0] - 1) * p->dil[0] + 1, spanc = (g->k[0] - 1) * g->dil[0] + 1, blo = 0, bhi = 0;
    pt->band = calloc((size_t)((q1 - q0 + per - 1) / per), sizeof *pt->band);
    if (!pt->band) return il_kerr(c, IL_ERR_OOM, "out of memory");
    for (int64_t a = q0; a < q1; a += per) {
        cpool_band *b = &pt->band[pt->nb++];
        b->q0 = a;
        b->q1 = a + per < q1 ? a + per : q1;
        b->lo = a * p->stride[0] - p->pad[0];
        b->hi = (b->q1 - 1) * p->stride[0] - p->pad[0] + spanp;
        b->lo = b->lo < 0 ? 0 : b->lo > g->out[0] ? g->out[0] : b->lo;
        b->hi = b->hi < b->lo ? b->lo : b->hi > g->out[0] ? g->out[0] : b->hi;
        b->keep = bhi > b->lo && blo <= b->lo ? bhi - b->lo : 0;
        b->shift = b->lo - blo;
        blo = b->lo;
        bhi = b->hi;
        b->var = -1;
        int64_t r0 = b->lo + b->keep, r1 = b->hi;
        if (r1 <= r0) continue;
        int64_t ia = r0 * g->stride[0] - g->pad[0], ie = (r1 - 1) * g->stride[0] - g->pad[0] + spanc;
        int64_t k[4] = {0, ia < 0 ? -ia : 0, ie > g->in[0] ? ie - g->in[0] : 0, r1 - r0};
        b->ia = ia < 0 ? 0 : ia;
        k[0] = (ie > g->in[0] ? g->in[0] : ie) - b->ia;
        if (k[0] <= 0) return il_kerr(c, IL_ERR_UNSUPPORTED, "a band of convolution rows wholly in the padding");
        if ((b->var = variant(s, k)) < 0) return il_kerr(c, IL_ERR_UNSUPPORTED, "too many kinds of band");
    }
    return IL_OK;
}

static il_status cpool_prepare(il_kctx *c, void **state, size_t *workspace) {
    const il_tensor *X = c->in[0], *W = c->in[1], *B = il_in(c, 2);
    cpool_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_act act;
    il_status st = cpool_geom(c, &act, &s->cg, &s->pg);
    const il_conv_geom *g = &s->cg, *p = &s->pg;
    int threads = c->threads > 0 ? c->threads : 1;
    s->parts = (int)(threads < p->out[0] ? threads : p->out[0]);
    if (s->parts > CPOOL_PARTS) s->parts = CPOOL_PARTS;
    s->io.threads = threads;
    s->rowf = g->out[1] * g->m;
    s->last_out = !!(c->blocked_out & 1);
    int64_t spanp = (p->k[0] - 1) * p->dil[0] + 1, rows = (int64_t)(band_bytes() / (size_t)(s->rowf * 4));
    int64_t per = rows > spanp ? (rows - spanp) / p->stride[0] + 1 : 1;
    /* one image's X channels-last: X itself, or reordered from plain into the workspace */
    size_t off = 0;
    dnnl_memory_desc_t xuser, xlast, wuser;
    dnnl_dims_t xd = {1, g->c, g->in[0], g->in[1]}, wd = {g->m, g->c, g->k[0], g->k[1]};
    if (!st) st = il_dnnl_user_md(c, &xuser, c->blocked_in & 1, 4, (int64_t[]){1, g->c, g->in[0], g->in[1]});
    if (!st && dnnl_memory_desc_init_by_tag(&xlast, 4, xd, dnnl_f32, dnnl_acdb)) st = il_kerr(c, IL_ERR_INTERNAL, "md");
    if (!st && dnnl_memory_desc_init_by_tag(&wuser, 4, wd, dnnl_f32, dnnl_abcd)) st = il_kerr(c, IL_ERR_INTERNAL, "md");
    if (!st) st = il_dnnl_io_make(c, &s->io, &xuser, &xlast, &xlast, &xlast, &off);
    for (int i = 0; i < s->parts && !st; i++)
        st = plan_bands(c, s, &s->part[i], p->out[0] * i / s->parts, p->out[0] * (i + 1) / s->parts, per);
    /* the primitives: on one thread each where the parts run side by side */
    int saved = il_dnnl_threads_enter(s->parts > 1 ? 1 : threads);
    dnnl_primitive_desc_t pd[CPOOL_VARIANTS] = {0};
    size_t scratch = 0;
    for (int v = 0; v < s->nvar && !st; v++) {
        const dnnl_memory_desc_t *wmd = v ? dnnl_primitive_desc_query_md(pd[0], dnnl_query_weights_md, 0) : NULL;
        st = band_pd(c, g, &act, s->key[v][0], s->key[v][1], s->key[v][2], s->key[v][3], wmd, &pd[v]);
        const dnnl_memory_desc_t *scr = st ? NULL : dnnl_primitive_desc_query_md(pd[v], dnnl_query_scratchpad_md, 0);
        size_t n = scr ? dnnl_memory_desc_get_size(scr) : 0;
        if (n > scratch) scratch = n;
    }
    if (!st && s->nvar) st = il_dnnl_pack(c, &wuser, W->data, dnnl_primitive_desc_query_md(pd[0], dnnl_query_weights_md, 0), &s->io.w);
    for (int i = 0; i < s->parts && !st; i++) {
        cpool_part *pt = &s->part[i];
        if (s->parts > 1 && dnnl_stream_create(&pt->strm, il_dnnl_engine(), dnnl_stream_default_flags) != dnnl_success)
            st = il_kerr(c, IL_ERR_INTERNAL, "oneDNN could not make a stream");
        int64_t brows = 0;
        for (int b = 0; b < pt->nb; b++)
            if (pt->band[b].hi - pt->band[b].lo > brows) brows = pt->band[b].hi - pt->band[b].lo;
        pt->buf_off = off;
        off += il_dnnl_align((size_t)(brows * s->rowf) * sizeof(float));
        pt->scr_off = off;
        off += il_dnnl_align(scratch);
        pt->tmp_off = off; /* a plain P: the band's pooled rows channels-last first */
        if (!s->last_out) off += il_dnnl_align((size_t)(per * p->out[1] * p->m) * sizeof(float));
        for (int v = 0; v < s->nvar && !st; v++) {
            il_dnnl_step *sp = &pt->step[v];
            st = il_dnnl_step_make(c, sp, pd[v]);
            if (!st) st = il_dnnl_step_arg(c, sp, DNNL_ARG_SRC, dnnl_primitive_desc_query_md(pd[v], dnnl_query_src_md, 0));
            if (!st) st = il_dnnl_step_arg(c, sp, DNNL_ARG_WEIGHTS, dnnl_primitive_desc_query_md(pd[v], dnnl_query_weights_md, 0));
            if (!st && B) st = il_dnnl_step_arg(c, sp, DNNL_ARG_BIAS, dnnl_primitive_desc_query_md(pd[v], dnnl_query_weights_md, 1));
            if (!st) st = il_dnnl_step_arg(c, sp, DNNL_ARG_DST, dnnl_primitive_desc_query_md(pd[v], dnnl_query_dst_md, 0));
            const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md(pd[v], dnnl_query_scratchpad_md, 0);
            if (!st && scr && dnnl_memory_desc_get_size(scr)) st = il_dnnl_step_arg(c, sp, DNNL_ARG_SCRATCHPAD, scr);
            sp->stream = pt->strm;
        }
    }
    for (int v = 0; v < CPOOL_VARIANTS; v++)
        if (pd[v]) dnnl_primitive_desc_destroy(pd[v]);
    il_dnnl_threads_leave(saved);
    if (st) {
        cpool_release(s);
        return st;
    }
    (void)X;
    *workspace = off + 64;
    *state = s;
    return IL_OK;
}

/* Part pt of one image: its bands' convolution rows from x (channels-last) into the buffer, each
 * band's pool rows from there into P's image at y. */
static il_status run_part(const il_kctx *c, const cpool_state *s0, int i, const float *x, float *y) {
    cpool_state *s = (cpool_state *)s0;
    cpool_part *pt = &s->part[i];
    const il_tensor *B = il_in(c, 2);
    const il_conv_geom *g = &s->cg, *p = &s->pg;
    char *ws = il_dnnl_ws(c);
    float *buf = (float *)(ws + pt->buf_off), *tmp = (float *)(ws + pt->tmp_off);
    int64_t M = p->c, OW = p->out[1], xrow = g->in[1] * g->c;
    for (int k = 0; k < pt->nb; k++) {
        const cpool_band *b = &pt->band[k];
        if (b->keep && b->shift) memmove(buf, buf + b->shift * s->rowf, (size_t)(b->keep * s->rowf) * sizeof(float));
        if (b->var >= 0) {
            il_dnnl_step *sp = &pt->step[b->var];
            il_dnnl_step_set(sp, DNNL_ARG_SRC, (void *)(x + b->ia * xrow));
            il_dnnl_step_set(sp, DNNL_ARG_WEIGHTS, s->io.w);
            if (B) il_dnnl_step_set(sp, DNNL_ARG_BIAS, B->data);
            il_dnnl_step_set(sp, DNNL_ARG_DST, buf + b->keep * s->rowf);
            il_dnnl_step_set(sp, DNNL_ARG_SCRATCHPAD, ws + pt->scr_off);
            il_status st = il_dnnl_step_run(c, sp);
            if (st) return st;
        }
        /* the band as an image of its own rows: pool row q's window starts at q * stride - pad - lo */
        il_conv_geom bg = *p;
        bg.in[0] = b->hi - b->lo;
        bg.pad[0] = p->pad[0] + b->lo - b->q0 * p->stride[0];
        float *out = s->last_out ? y + b->q0 * OW * M : tmp;
        for (int64_t q = b->q0; q < b->q1; q++) il_dnnl_pool_row(&bg, buf, out, q - b->q0);
        if (!s->last_out) /* plain P: each channel's rows of the band */
            for (int64_t m = 0; m < M; m++)
                for (int64_t q = b->q0; q < b->q1; q++)
                    for (int64_t j = 0; j < OW; j++) y[(m * p->out[0] + q) * OW + j] = tmp[((q - b->q0) * OW + j) * M + m];
    }
    return IL_OK;
}

static il_status cpool_run(il_kctx *c) {
    cpool_state *s = c->state;
    const il_conv_geom *g = &s->cg, *p = &s->pg;
    int64_t xi = g->c * g->in_sp, yi = p->c * p->out_sp;
    il_status st = IL_OK;
    for (int64_t n = 0; n < g->n && !st; n++) {
        void *x;
        if ((st = il_dnnl_src_at(c, &s->io, (float *)c->in[0]->data + n * xi, &x))) break;
        float *y = (float *)c->out[0]->data + n * yi;
        if (s->parts == 1) {
            int saved = il_dnnl_threads_enter(1);
            st = run_part(c, s, 0, x, y);
            il_dnnl_threads_leave(saved);
            continue;
        }
#pragma omp parallel num_threads(s->parts)
        {
            il_status e = run_part(c, s, omp_get_thread_num(), x, y);
            if (e) {
#pragma omp critical(il_conv_pool_err)
                st = e;
            }
        }
    }
    return st;
}

const il_kernel il_kernels_conv_pool[] = {
    {.domain = "ai.inferlab", .op = "ConvPool", .backend = "cpu", .name = "dnnl", .dtypes = IL_DT(IL_F32),
     .priority = 20, .supports = cpool_supports, .prepare = cpool_prepare, .run = cpool_run, .release = cpool_release,
     .layouts = cpool_layouts,
     .doc = "oneDNN convolution (channels-last) in bands of rows kept in cache, each band max-pooled at once; the "
            "convolution's output never written whole"},
    {0},
};

#endif
