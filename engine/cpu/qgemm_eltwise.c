/*
 * qgemm_eltwise.c - the INT8 kernels around the GEMMs of a quantized CNN: "int8" for QAdd,
 * QLinearAdd and QLinearMul (engine/ops/qfused.c) on same-shape inputs, and for MaxPool on
 * uint8/int8 (what fuse-qdq leaves when a pool's scales match).
 *
 * The binary ops compute exactly what their reference does -- (a - za) * ka + (b - zb) * kb in
 * float32, rounded half to even -- 16 lanes at a time with AVX-512 (one multiply and one add per
 * lane, never fused, as the reference), so they agree bit for bit. (In double, 8 lanes, they
 * were 8% of ResNet-50's INT8 time at batch 8.)
 * The pool takes the maximum of the raw bytes: a monotone quantization commutes with max. (A
 * loop over each window's bytes took 16% of ResNet-18's INT8 time at batch 32.)
 */
#include "compute.h"
#include "qgemm.h"

#include <immintrin.h>
#include <omp.h>

/* ---------------------------------------------------------------- QAdd, QLinearAdd, QLinearMul */

static int qbin_supports(const il_kctx *c) {
    const il_tensor *a = c->in[0], *b = il_in(c, 3);
    if (!a || !b || !il_shape_known(a) || !il_shape_known(b) || a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    static const int params[] = {1, 2, 4, 5, 6, 7};
    for (int i = 0; i < 6; i++)
        if (!il_q_const_or_absent(c, params[i]) || il_q_numel(c, params[i]) != 1) return 0;
    return il_q_is_8bit(b->dtype);
}

static double load8(const void *p, int s8, int64_t i) { return s8 ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i]; }

/* 16 elements of an 8-bit tensor as int32 lanes. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512i load16(const void *p, int s8, __mmask16 k) {
    __m128i v = _mm_maskz_loadu_epi8(k, p);
    return s8 ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void qbin_avx512(const il_qbin *p, const void *a, int as8,
                                                                            const void *b, int bs8, void *y, int64_t n) {
    const __m512i za = _mm512_set1_epi32(p->za), zb = _mm512_set1_epi32(p->zb), zy = _mm512_set1_epi32(p->zy);
    const __m512i lo = _mm512_set1_epi32(p->lo), hi = _mm512_set1_epi32(p->hi);
    const __m512 ka = _mm512_set1_ps(p->ka), kb = _mm512_set1_ps(p->kb);
    const __m512 big = _mm512_set1_ps(2147483520.0f), small = _mm512_set1_ps(-2147483520.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 da = _mm512_cvtepi32_ps(_mm512_sub_epi32(load16((const uint8_t *)a + i, as8, k), za));
        __m512 db = _mm512_cvtepi32_ps(_mm512_sub_epi32(load16((const uint8_t *)b + i, bs8, k), zb));
        __m512 v = p->mul ? _mm512_mul_ps(_mm512_mul_ps(da, db), ka) : _mm512_add_ps(_mm512_mul_ps(da, ka), _mm512_mul_ps(db, kb));
        __m512i q = _mm512_cvtps_epi32(_mm512_max_ps(_mm512_min_ps(v, big), small)); /* half to even */
        q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, zy), lo), hi);
        _mm_mask_storeu_epi8((uint8_t *)y + i, k, _mm512_cvtepi32_epi8(q));
    }
}

il_status il_qbin_apply(il_kctx *c, const void *adata, const void *bdata, void *ydata) {
    int mul = !strcmp(c->node->op_type, "QLinearMul");
    il_qbin p;
    il_status st = il_qbin_params(c, mul, &p);
    if (st) return st;
    const il_tensor *y = c->out[0];
    int as8 = c->in[0]->dtype == IL_I8, bs8 = c->in[3]->dtype == IL_I8, ys8 = y->dtype == IL_I8;
    int64_t n = il_tensor_numel(y), chunk = 4096, chunks = (n + chunk - 1) / chunk;
    int vec = il_qisa_active() == IL_QISA_AVX512VNNI;
    IL_PAR_FOR(c, t, chunks) {
        int64_t i0 = t * chunk, m = n - i0 < chunk ? n - i0 : chunk;
        if (vec) {
            qbin_avx512(&p, (const uint8_t *)adata + i0, as8, (const uint8_t *)bdata + i0, bs8, (uint8_t *)ydata + i0, m);
            continue;
        }
        for (int64_t i = i0; i < i0 + m; i++) {
            float da = (float)(load8(adata, as8, i) - p.za), db = (float)(load8(bdata, bs8, i) - p.zb);
            float prod = da * db, sum = da * p.ka;
            double v = (double)rintf(mul ? prod * p.ka : sum + db * p.kb) + p.zy;
            v = v < p.lo ? p.lo : v > p.hi ? p.hi : v;
            if (ys8) ((int8_t *)ydata)[i] = (int8_t)v;
            else ((uint8_t *)ydata)[i] = (uint8_t)v;
        }
    }
    return IL_OK;
}

static il_status qbin_run(il_kctx *c) { return il_qbin_apply(c, c->in[0]->data, c->in[3]->data, c->out[0]->data); }

/* ---------------------------------------------------------------- MaxPool on bytes */

static int maxpool_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0];
    const int64_t *d;
    int nd = il_attr_ints(c->node, "dilations", &d);
    for (int i = 0; i < nd; i++)
        if (d[i] != 1) return 0;
    return il_q_is_8bit(x->dtype) && x->rank == 4 && il_shape_known(x) && !il_out(c, 1);
}

/* Per node: the geometry and the padded plane each thread fills. */
typedef struct {
    il_conv_geom g;
    int64_t Hp, Wp;
    int s8;
    size_t plane_b; /* one thread's padded plane and output row, with slack */
} maxpool_state;

static il_status maxpool_prepare(il_kctx *c, void **state, size_t *workspace) {
    maxpool_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const il_tensor *x = c->in[0];
    il_status st = il_window_geom(c, x, NULL, (int)il_attr_int(c->node, "ceil_mode", 0), 1, &s->g);
    if (st) {
        free(s);
        return st;
    }
    const il_conv_geom *g = &s->g;
    s->s8 = x->dtype == IL_I8;
    /* every window inside the plane, ceil_mode's last ones included */
    s->Hp = (g->out[0] - 1) * g->stride[0] + g->k[0], s->Wp = (g->out[1] - 1) * g->stride[1] + g->k[1];
    s->Hp = s->Hp > g->pad[0] + g->in[0] ? s->Hp : g->pad[0] + g->in[0];
    s->Wp = s->Wp > g->pad[1] + g->in[1] ? s->Wp : g->pad[1] + g->in[1];
    s->plane_b = (size_t)(s->Hp * s->Wp + g->out[1] + 128);
    *workspace = s->plane_b * (size_t)(c->threads > 0 ? c->threads : 1);
    *state = s;
    return IL_OK;
}

/* One plane: a copy padded with the lowest value (padding never wins), then each output row
 * as the maximum of KH x KW shifted rows, 16 outputs per vector (stride 1: one load; stride
 * 2: the even bytes of two), into a row buffer (the vectors run past the row's end). */
static void pool_plane(const maxpool_state *s, const uint8_t *x, uint8_t *y, uint8_t *pad) {
    const il_conv_geom *g = &s->g;
    int64_t H = g->in[0], W = g->in[1], OW = g->out[1], SH = g->stride[0], SW = g->stride[1];
    uint8_t low = s->s8 ? 0x80 : 0, *row = pad + s->Hp * s->Wp + 64;
    memset(pad, low, (size_t)(s->Hp * s->Wp + 64));
    for (int64_t h = 0; h < H; h++) memcpy(pad + (h + g->pad[0]) * s->Wp + g->pad[1], x + h * W, (size_t)W);
    const __m128i even = _mm_set1_epi16(0xff);
    for (int64_t oh = 0; oh < g->out[0]; oh++) {
        for (int64_t j = 0; j < OW; j += 16) {
            __m128i m = _mm_set1_epi8((char)low);
            for (int64_t kh = 0; kh < g->k[0]; kh++) {
                const uint8_t *src = pad + (oh * SH + kh) * s->Wp + j * SW;
                for (int64_t kw = 0; kw < g->k[1]; kw++) {
                    __m128i v;
                    if (SW == 1) v = _mm_loadu_si128((const __m128i *)(src + kw));
                    else if (SW == 2)
                        v = _mm_packus_epi16(_mm_and_si128(_mm_loadu_si128((const __m128i *)(src + kw)), even),
                                             _mm_and_si128(_mm_loadu_si128((const __m128i *)(src + kw + 16)), even));
                    else {
                        uint8_t t[16];
                        for (int i = 0; i < 16; i++) t[i] = j + i < OW ? src[kw + i * SW] : low;
                        v = _mm_loadu_si128((const __m128i *)t);
                    }
                    m = s->s8 ? _mm_max_epi8(m, v) : _mm_max_epu8(m, v);
                }
            }
            _mm_storeu_si128((__m128i *)(row + j), m);
        }
        memcpy(y + oh * OW, row, (size_t)OW);
    }
}

static il_status maxpool_run(il_kctx *c) {
    const maxpool_state *s = c->state;
    int64_t planes = s->g.n * s->g.c;
    const uint8_t *x = c->in[0]->data;
    uint8_t *y = c->out[0]->data, *ws = c->workspace;
#pragma omp parallel for num_threads(c->threads > 0 ? c->threads : 1) if (c->threads > 1 && planes > 1) schedule(static)
    for (int64_t p = 0; p < planes; p++)
        pool_plane(s, x + p * s->g.in_sp, y + p * s->g.out_sp, ws + (size_t)omp_get_thread_num() * s->plane_b);
    return IL_OK;
}

#define QBIN_KERNEL(DOMAIN, OP)                                                                                \
    {.domain = DOMAIN, .op = OP, .since_version = 1, .backend = "cpu", .name = "int8",                        \
     .dtypes = IL_DT(IL_U8) | IL_DT(IL_I8), .priority = 10, .supports = qbin_supports, .run = qbin_run,       \
     .doc = "same-shape inputs, the reference's double arithmetic 8 lanes at a time (AVX-512) over threads"}

const il_kernel il_kernels_qeltwise[] = {
    QBIN_KERNEL("ai.inferlab", "QAdd"),
    QBIN_KERNEL("com.microsoft", "QLinearAdd"),
    QBIN_KERNEL("com.microsoft", "QLinearMul"),
    {.domain = "", .op = "MaxPool", .since_version = 12, .backend = "cpu", .name = "int8",
     .dtypes = IL_DT(IL_U8) | IL_DT(IL_I8), .priority = 10, .supports = maxpool_supports, .prepare = maxpool_prepare,
     .run = maxpool_run, .release = free,
     .doc = "2-D max pool over uint8/int8 planes: a padded copy per plane, 16 outputs per SSE max"},
    {0},
};
