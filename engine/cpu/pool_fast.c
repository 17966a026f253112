/*
 * pool_fast.c - float32 MaxPool / AveragePool over 1-D and 2-D inputs (1-D seen as one row),
 * threaded over N*C planes. Each output row clamps its window to the input once instead of
 * testing every tap; the semantics are engine/ops/pool.c's reference, which the tests compare
 * this against.
 */
#include "compute.h"

/* The pool's parameters in one place for pool_at. */
typedef struct {
    int64_t H, W, OH, OW, KW, SW, DH, DW, PW, PWE;
    int kind, count_include_pad, storage_order, two;
} pool_geom;

/* One output (oh, ow) of plane nc, its window clamped to the input (kh_lo..kh_hi rows inside,
 * kh_pad rows inside the padded input), and its Indices entry when idx is given. */
static void pool_at(const pool_geom *p, const float *xp, float *yp, int64_t *idx, int64_t nc, int64_t oh, int64_t ow,
                    int64_t h0, int64_t kh_lo, int64_t kh_hi, int64_t kh_pad) {
    int64_t W = p->W, H = p->H, DH = p->DH, DW = p->DW, KW = p->KW;
    int64_t w0 = ow * p->SW - p->PW, kw_lo = 0, kw_hi = KW, kw_pad = KW;
    while (kw_lo < KW && w0 + kw_lo * DW < 0) kw_lo++;
    while (kw_hi > kw_lo && w0 + (kw_hi - 1) * DW >= W) kw_hi--;
    while (kw_pad > 0 && w0 + (kw_pad - 1) * DW >= W + p->PWE) kw_pad--;
    float r;
    if (p->kind == 0) {
        float best = -INFINITY;
        int64_t at = -1;
        for (int64_t kh = kh_lo; kh < kh_hi; kh++) {
            const float *xr = xp + (h0 + kh * DH) * W + w0;
            for (int64_t kw = kw_lo; kw < kw_hi; kw++)
                if (xr[kw * DW] > best || at < 0) {
                    best = xr[kw * DW];
                    at = (h0 + kh * DH) * W + w0 + kw * DW;
                }
        }
        r = best;
        if (idx) {
            /* storage_order 1 counts the first spatial dim fastest */
            int64_t ih = at / W, iw = at % W;
            idx[oh * p->OW + ow] = at < 0 ? -1 : nc * H * W + (p->storage_order && p->two ? iw * H + ih : at);
        }
    } else {
        float sum = 0;
        for (int64_t kh = kh_lo; kh < kh_hi; kh++) {
            const float *xr = xp + (h0 + kh * DH) * W + w0;
            for (int64_t kw = kw_lo; kw < kw_hi; kw++) sum += xr[kw * DW];
        }
        int64_t n = p->count_include_pad ? kh_pad * kw_pad : (kh_hi - kh_lo) * (kw_hi - kw_lo);
        r = sum / (float)n;
    }
    yp[oh * p->OW + ow] = r;
}

il_status il_pool_fast_f32(il_kctx *c, const il_conv_geom *g, int kind, int count_include_pad,
                           int storage_order) {
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    il_tensor *it = il_out(c, 1);
    int64_t *idx = it ? it->data : NULL;
    int two = g->nsp == 2, L = g->nsp - 1;
    int64_t H = two ? g->in[0] : 1, W = g->in[L], OH = two ? g->out[0] : 1, OW = g->out[L];
    int64_t KH = two ? g->k[0] : 1, KW = g->k[L], SH = two ? g->stride[0] : 1, SW = g->stride[L];
    int64_t DH = two ? g->dil[0] : 1, DW = g->dil[L], PH = two ? g->pad[0] : 0, PW = g->pad[L];
    int64_t PHE = two ? g->pad_end[0] : 0, PWE = g->pad_end[L];
    int64_t planes = g->n * g->c;
    pool_geom pw = {H, W, OH, OW, KW, SW, DH, DW, PW, PWE, kind, count_include_pad, storage_order, two};
    /* Windows that never touch padding (the usual 2x2/2 and 3x3/2 pools of CNNs): tap by tap
     * over a whole output row, a loop the compiler vectorizes. The same taps in the same order
     * as below, so the results are identical (NaN included: a later tap never replaces it). */
    if (!idx && PH == 0 && PW == 0 && (OH - 1) * SH + (KH - 1) * DH < H && (OW - 1) * SW + (KW - 1) * DW < W) {
        IL_PAR_FOR(c, nc, planes) {
            const float *xp = x + nc * H * W;
            float *yp = y + nc * OH * OW;
            for (int64_t oh = 0; oh < OH; oh++) {
                float *yr = yp + oh * OW;
                for (int64_t kh = 0; kh < KH; kh++)
                    for (int64_t kw = 0; kw < KW; kw++) {
                        const float *xr = xp + (oh * SH + kh * DH) * W + kw * DW;
                        if (kh == 0 && kw == 0)
                            for (int64_t ow = 0; ow < OW; ow++) yr[ow] = xr[ow * SW];
                        else if (kind == 0)
                            for (int64_t ow = 0; ow < OW; ow++) yr[ow] = xr[ow * SW] > yr[ow] ? xr[ow * SW] : yr[ow];
                        else
                            for (int64_t ow = 0; ow < OW; ow++) yr[ow] += xr[ow * SW];
                    }
                if (kind != 0)
                    for (int64_t ow = 0; ow < OW; ow++) yr[ow] /= (float)(KH * KW);
            }
        }
        return IL_OK;
    }
    /* Padded windows: per output row, the columns whose window lies inside the input across
     * (all but a few at each end) run tap by tap over the row like the path above, on the rows
     * the window meets; the columns at the ends, and every column when Indices are wanted, take
     * one window at a time (pool_at). The same taps in the same order either way. ResNet's
     * 3x3/2 pad-1 stem pool took 38 ms at 1x64x112x112 one window at a time, measured. */
    int64_t jl = (PW + SW - 1) / SW, jh = W - 1 - (KW - 1) * DW + PW >= 0 ? (W - 1 - (KW - 1) * DW + PW) / SW + 1 : 0;
    if (jl > OW) jl = OW;
    if (jh > OW) jh = OW;
    if (jh < jl || idx) jh = jl;
    IL_PAR_FOR(c, nc, planes) {
        const float *xp = x + nc * H * W;
        float *yp = y + nc * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            /* taps kh with 0 <= oh*SH + kh*DH - PH < H, and those inside the padded input */
            int64_t h0 = oh * SH - PH, kh_lo = 0, kh_hi = KH, kh_pad = KH;
            while (kh_lo < KH && h0 + kh_lo * DH < 0) kh_lo++;
            while (kh_hi > kh_lo && h0 + (kh_hi - 1) * DH >= H) kh_hi--;
            while (kh_pad > 0 && h0 + (kh_pad - 1) * DH >= H + PHE) kh_pad--;
            float *yr = yp + oh * OW;
            int64_t from = jl, to = kh_hi > kh_lo ? jh : jl; /* the row run [from, to) */
            for (int64_t kh = kh_lo; kh < kh_hi && from < to; kh++)
                for (int64_t kw = 0; kw < KW; kw++) {
                    const float *xr = xp + (h0 + kh * DH) * W + kw * DW - PW;
                    if (kh == kh_lo && kw == 0)
                        for (int64_t ow = from; ow < to; ow++) yr[ow] = xr[ow * SW];
                    else if (kind == 0)
                        for (int64_t ow = from; ow < to; ow++) yr[ow] = xr[ow * SW] > yr[ow] ? xr[ow * SW] : yr[ow];
                    else
                        for (int64_t ow = from; ow < to; ow++) yr[ow] += xr[ow * SW];
                }
            if (kind != 0 && from < to) {
                float n = (float)((count_include_pad ? kh_pad : kh_hi - kh_lo) * KW);
                for (int64_t ow = from; ow < to; ow++) yr[ow] /= n;
            }
            for (int64_t ow = 0; ow < OW; ow++) {
                if (ow == from && from < to) ow = to;
                if (ow >= OW) break;
                pool_at(&pw, xp, yp, idx ? idx + nc * OH * OW : NULL, nc, oh, ow, h0, kh_lo, kh_hi, kh_pad);
            }
        }
    }
    return IL_OK;
}
