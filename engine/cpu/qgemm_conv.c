/*
 * qgemm_conv.c - the INT8 convolution kernel "qgemm" of QLinearConv, ConvInteger and the
 * ai.inferlab QConv (engine/ops/qfused.c): im2col of uint8 activations, packing, the INT8 GEMM
 * of qgemm.h and its requantizing epilogue, image by image. The im2col reads a padded copy of
 * the input, so each of its rows is a run of 16-byte moves with no bounds checks: written with
 * memset/memcpy around the padding it cost as much as the GEMM itself on ResNet-18's 56x56
 * layers (the calls on 56-byte runs), now a fifth.
 *
 * prepare does everything that does not depend on the activations once: the geometry, the
 * weights packed for the ISA this CPU runs (per group), and per output channel the int32 term
 * that folds the bias and the zero points into the sums,
 *     sum_k (x - zx)(w - zw) + b = sum_k x w - zw sum_k x + (b - zx sum_k w + K zx zw),
 * the requantization scale and the clamp. Padding is filled with x's zero point, so padded
 * taps add nothing, as in the reference. int8 activations are read as uint8 + 128 and uint8
 * weights as int8 - 128 (zero points moved to match), so one u8 x s8 GEMM serves all four
 * combinations. The column sums of x are computed only when some weight zero point is not 0
 * (symmetric weights, the common case, skip them).
 */
#include "compute.h"
#include "qgemm.h"

#include <emmintrin.h>
#include <omp.h>

/* Input slots of the ops this kernel serves (-1: the op has no such input). */
typedef struct {
    int x, xs, xz, w, ws, wz, ys, yz, b;
} qslots;

static const qslots QLINEAR = {0, 1, 2, 3, 4, 5, 6, 7, 8}, CONVINT = {0, -1, 2, 1, -1, 3, -1, -1, -1};

static const qslots *slots_of(const il_kctx *c) {
    return !strcmp(c->node->op_type, "ConvInteger") ? &CONVINT : &QLINEAR;
}

typedef struct {
    il_conv_geom cg;
    int64_t H, W, OH, OW, KH, KW, SH, SW, DH, DW, PH, PW; /* 2-D view (1-D: height 1) */
    int64_t Hp, Wp, ldc;    /* the padded input plane; the im2col row stride (with slack) */
    int64_t K, mg, cgc, osp;
    int pointwise, per_image, threads;
    uint8_t flip, pad;      /* x's int8 -> uint8 flip; the raw byte padding is filled with */
    il_qout out;
    int32_t zp, lo, hi;
    int32_t *row_add, *row_zw; /* m entries; row_zw NULL when every zw is 0 */
    double *scale;
    il_qweights *w;            /* one per group */
    size_t col_b, xp_b, cs_b;  /* workspace pieces of one worker */
} qconv_state;

static void qconv_release(void *p) {
    qconv_state *s = p;
    if (!s) return;
    for (int64_t g = 0; s->w && g < s->cg.group; g++) il_qweights_free(&s->w[g]);
    free(s->w), free(s->row_add), free(s->row_zw), free(s->scale);
    free(s);
}

static int qconv_supports(const il_kctx *c) {
    const qslots *q = slots_of(c);
    const il_tensor *x = c->in[0], *w = il_in(c, q->w);
    if (!x || !w || !il_q_is_8bit(x->dtype) || !il_q_is_8bit(w->dtype) || (x->rank != 3 && x->rank != 4) ||
        w->rank != x->rank || !il_shape_known(x))
        return 0;
    const int need[] = {q->xs, q->xz, q->w, q->ws, q->wz, q->ys, q->yz, q->b};
    for (int i = 0; i < 8; i++)
        if (!il_q_const_or_absent(c, need[i])) return 0;
    int64_t m = w->dims[0], k = il_dims_prod(w->dims, 1, w->rank);
    if (il_q_numel(c, q->xz) != 1 || il_q_numel(c, q->xs) != 1 || il_q_numel(c, q->ys) != 1 ||
        il_q_numel(c, q->yz) != 1)
        return 0;
    int64_t nws = il_q_numel(c, q->ws), nwz = il_q_numel(c, q->wz);
    if ((nws != 1 && nws != m) || (nwz != 1 && nwz != m)) return 0;
    if (q->yz >= 0 && !il_q_is_8bit(c->in[q->yz]->dtype)) return 0;
    /* int32 sums exact: K * 255 * 128 < 2^31 */
    return k > 0 && k < 65536;
}

static size_t up64(size_t b) { return (b + 63) & ~(size_t)63; }

static il_status qconv_prepare(il_kctx *c, void **state, size_t *workspace) {
    const qslots *q = slots_of(c);
    const il_tensor *X = c->in[0], *Wt = c->in[q->w];
    qconv_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    int64_t kernel[IL_MAX_SPATIAL];
    for (int i = 0; i + 2 < Wt->rank; i++) kernel[i] = Wt->dims[2 + i];
    il_status st = il_window_geom(c, X, kernel, 0, 1, &s->cg);
    il_conv_geom *g = &s->cg;
    g->group = il_attr_int(c->node, "group", 1);
    g->m = Wt->dims[0];
    if (!st && (g->group < 1 || g->c % g->group || g->m % g->group))
        st = il_kerr(c, IL_ERR_SHAPE, "group %lld does not divide the channels", (long long)g->group);
    if (st) {
        free(s);
        return st;
    }
    int two = g->nsp == 2, L = g->nsp - 1;
    s->H = two ? g->in[0] : 1, s->W = g->in[L], s->OH = two ? g->out[0] : 1, s->OW = g->out[L];
    s->KH = two ? g->k[0] : 1, s->KW = g->k[L], s->SH = two ? g->stride[0] : 1, s->SW = g->stride[L];
    s->DH = two ? g->dil[0] : 1, s->DW = g->dil[L], s->PH = two ? g->pad[0] : 0, s->PW = g->pad[L];
    s->cgc = g->c / g->group, s->mg = g->m / g->group, s->K = s->cgc * g->k_sp, s->osp = g->out_sp;
    s->pointwise = 1;
    for (int d = 0; d < g->nsp; d++) s->pointwise &= g->k[d] == 1 && g->stride[d] == 1 && g->pad[d] == 0;
    int x_s8 = X->dtype == IL_I8, w_u8 = Wt->dtype == IL_U8;
    int64_t zx = il_q_int_at(c, q->xz, 0);
    s->flip = x_s8 ? 0x80 : 0;
    s->pad = (uint8_t)zx;
    int32_t zxu = (int32_t)(zx + (x_s8 ? 128 : 0));
    il_dtype ydt = q->yz >= 0 ? c->in[q->yz]->dtype : IL_I32;
    s->out = ydt == IL_U8 ? IL_QOUT_U8 : ydt == IL_I8 ? IL_QOUT_S8 : IL_QOUT_S32;
    s->zp = (int32_t)il_q_int_at(c, q->yz, 0);
    if (s->out != IL_QOUT_S32 && (st = il_qact_range(c, il_q_get_at(c, q->ys, 0), s->zp, ydt, &s->lo, &s->hi))) {
        free(s);
        return st;
    }
    int64_t m = g->m;
    s->row_add = calloc((size_t)m, sizeof(int32_t));
    s->row_zw = calloc((size_t)m, sizeof(int32_t));
    s->scale = calloc((size_t)m, sizeof(double));
    s->w = calloc((size_t)g->group, sizeof *s->w);
    if (!s->row_add || !s->row_zw || !s->scale || !s->w) {
        qconv_release(s);
        return il_kerr(c, IL_ERR_OOM, "out of memory");
    }
    il_qisa isa = il_qisa_active();
    for (int64_t gr = 0; gr < g->group && !st; gr++)
        st = il_qweights_pack(isa, (const uint8_t *)Wt->data + gr * s->mg * s->K, w_u8, s->mg, s->K, s->K, &s->w[gr]);
    int any_zw = 0;
    for (int64_t i = 0; i < m && !st; i++) {
        int64_t zw = il_q_int_at(c, q->wz, i) - (w_u8 ? 128 : 0);
        int64_t add = il_q_int_at(c, q->b, i) - (int64_t)zxu * s->w[i / s->mg].rowsum[i % s->mg] + s->K * zxu * zw;
        if (add < INT32_MIN || add > INT32_MAX)
            st = il_kerr(c, IL_ERR_UNSUPPORTED, "channel %lld: bias and zero-point terms exceed int32", (long long)i);
        s->row_add[i] = (int32_t)add;
        s->row_zw[i] = (int32_t)zw;
        any_zw |= zw != 0;
        /* the reference's expression, in its order: x_scale * w_scale[m] / y_scale */
        s->scale[i] = il_q_get_at(c, q->xs, 0) * il_q_get_at(c, q->ws, i) / il_q_get_at(c, q->ys, 0);
    }
    if (st) {
        qconv_release(s);
        return st;
    }
    if (!any_zw) {
        free(s->row_zw);
        s->row_zw = NULL;
    }
    s->threads = c->threads > 0 ? c->threads : 1;
    s->per_image = il_conv_per_image(g->n, s->threads, s->mg * s->osp * s->K);
    /* im2col reads a copy of the group's input with its padding filled in, so each output row
     * of each im2col row is one copy without bounds checks; 16-byte moves may run up to 15
     * bytes (31 read at stride 2) past a segment, into the next one or the slack */
    s->Hp = (s->OH - 1) * s->SH + (s->KH - 1) * s->DH + 1, s->Wp = (s->OW - 1) * s->SW + (s->KW - 1) * s->DW + 1;
    s->Hp = s->Hp > s->H + s->PH ? s->Hp : s->H + s->PH, s->Wp = s->Wp > s->W + s->PW ? s->Wp : s->W + s->PW;
    s->ldc = (s->osp + 31) & ~(int64_t)15;
    s->col_b = s->pointwise ? 0 : up64((size_t)(s->K * s->ldc)) + up64((size_t)(s->cgc * s->Hp * s->Wp) + 64);
    s->xp_b = up64(il_qx_bytes(s->K, s->osp));
    s->cs_b = any_zw ? up64((size_t)s->osp * sizeof(int32_t)) : 0;
    *workspace = (s->col_b + s->xp_b + s->cs_b) * (size_t)(s->per_image ? s->threads : 1);
    *state = s;
    return IL_OK;
}

/* The group's input planes with the padding filled with x's zero point byte. */
static void pad_input(const qconv_state *s, const uint8_t *x, uint8_t *xp, int threads) {
#pragma omp parallel for num_threads(threads) if (threads > 1 && s->cgc > 1) schedule(static)
    for (int64_t ci = 0; ci < s->cgc; ci++) {
        uint8_t *d = xp + ci * s->Hp * s->Wp;
        const uint8_t *xc = x + ci * s->H * s->W;
        for (int64_t h = 0; h < s->Hp; h++, d += s->Wp) {
            int64_t ih = h - s->PH;
            if (ih < 0 || ih >= s->H) {
                memset(d, s->pad, (size_t)s->Wp);
                continue;
            }
            memset(d, s->pad, (size_t)s->PW);
            memcpy(d + s->PW, xc + ih * s->W, (size_t)s->W);
            memset(d + s->PW + s->W, s->pad, (size_t)(s->Wp - s->PW - s->W));
        }
    }
}

/* Row r = (ci, kh, kw) of the im2col matrix from the padded planes: for output row oh,
 * xp[ci, oh*SH + kh*DH, ow*SW + kw*DW] for every ow. */
static void im2col_row(const qconv_state *s, const uint8_t *xp, int64_t r, uint8_t *dst) {
    int64_t ci = r / (s->KH * s->KW), kh = (r / s->KW) % s->KH, kw = r % s->KW;
    const uint8_t *src = xp + ci * s->Hp * s->Wp + kh * s->DH * s->Wp + kw * s->DW;
    const __m128i even = _mm_set1_epi16(0xff);
    for (int64_t oh = 0; oh < s->OH; oh++, dst += s->OW, src += s->SH * s->Wp) {
        if (s->SW == 1) {
            for (int64_t j = 0; j < s->OW; j += 16)
                _mm_storeu_si128((__m128i *)(dst + j), _mm_loadu_si128((const __m128i *)(src + j)));
        } else if (s->SW == 2) { /* the even bytes of 32 */
            for (int64_t j = 0; j < s->OW; j += 16) {
                __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)(src + 2 * j)), even);
                __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i *)(src + 2 * j + 16)), even);
                _mm_storeu_si128((__m128i *)(dst + j), _mm_packus_epi16(a, b));
            }
        } else {
            for (int64_t j = 0; j < s->OW; j++) dst[j] = src[j * s->SW];
        }
    }
}

/* One image on `threads` threads: per group, im2col (unless 1x1), pack, GEMM and epilogue
 * into y. ws: the im2col rows and padded input, the packed columns, their sums. */
static void qconv_image(const qconv_state *s, const uint8_t *x, void *y, uint8_t *ws, int threads) {
    uint8_t *col = ws, *xpad = ws + up64((size_t)(s->K * s->ldc)), *xp = ws + s->col_b;
    int32_t *colsum = s->cs_b ? (int32_t *)(xp + s->xp_b) : NULL;
    int64_t in_sp = s->H * s->W, strips = il_qx_strips(s->osp);
    size_t esz = s->out == IL_QOUT_S32 ? 4 : 1;
    for (int64_t gr = 0; gr < s->cg.group; gr++) {
        const uint8_t *rows = x + gr * s->cgc * in_sp;
        int64_t ld = s->osp;
        if (!s->pointwise) {
            pad_input(s, rows, xpad, threads);
#pragma omp parallel for num_threads(threads) if (threads > 1 && s->K > 1) schedule(static)
            for (int64_t r = 0; r < s->K; r++) im2col_row(s, xpad, r, col + r * s->ldc);
            rows = col, ld = s->ldc;
        }
#pragma omp parallel for num_threads(threads) if (threads > 1 && strips > 1) schedule(static)
        for (int64_t st = 0; st < strips; st++) il_qpack_rows(rows, ld, s->K, s->osp, s->flip, xp, colsum, st, st + 1);
        int64_t m0 = gr * s->mg;
        il_qepi e = {.out = s->out, .row_add = s->row_add + m0, .row_zw = s->row_zw ? s->row_zw + m0 : NULL,
                     .colsum = colsum, .scale = s->scale + m0, .zp = s->zp, .lo = s->lo, .hi = s->hi,
                     .y = (uint8_t *)y + (size_t)(m0 * s->osp) * esz, .rs = s->osp, .cs = 1};
        il_qgemm(&s->w[gr], xp, s->osp, &e, threads);
    }
}

static il_status qconv_run(il_kctx *c) {
    const qconv_state *s = c->state;
    const uint8_t *x = c->in[0]->data;
    uint8_t *y = c->out[0]->data, *ws = c->workspace;
    int64_t n = s->cg.n, xs = s->cg.c * s->H * s->W, ys = s->cg.m * s->osp * (s->out == IL_QOUT_S32 ? 4 : 1);
    size_t wsz = s->col_b + s->xp_b + s->cs_b;
    if (s->osp == 0 || s->cg.m == 0) return IL_OK;
    if (s->per_image) {
        /* images handed out one at a time: on a shared machine a thread that loses its core
         * for a while no longer holds back a fixed half of the batch */
#pragma omp parallel for num_threads(s->threads) schedule(dynamic, 1)
        for (int64_t i = 0; i < n; i++) qconv_image(s, x + i * xs, y + i * ys, ws + (size_t)omp_get_thread_num() * wsz, 1);
    } else {
        for (int64_t i = 0; i < n; i++) qconv_image(s, x + i * xs, y + i * ys, ws, s->threads);
    }
    return IL_OK;
}

#define QCONV_KERNEL(DOMAIN, OP, SINCE)                                                                        \
    {.domain = DOMAIN, .op = OP, .since_version = SINCE, .backend = "cpu", .name = "qgemm",                   \
     .dtypes = IL_DT(IL_U8) | IL_DT(IL_I8), .priority = 10, .supports = qconv_supports,                      \
     .prepare = qconv_prepare, .run = qconv_run, .release = qconv_release,                                     \
     .doc = "INT8 im2col + u8 x s8 GEMM (AVX-512 VNNI / AVX-VNNI / AVX2 / C by CPUID), weights packed once, "  \
            "requantized per tile"}

const il_kernel il_kernels_qconv[] = {
    QCONV_KERNEL("", "QLinearConv", 10),
    QCONV_KERNEL("", "ConvInteger", 10),
    QCONV_KERNEL("ai.inferlab", "QConv", 1),
    {0},
};
