/*
 * pool_fast.c - float32 MaxPool / AveragePool over 1-D and 2-D inputs (1-D seen as one row),
 * threaded over N*C planes. Each output row clamps its window to the input once instead of
 * testing every tap; the semantics are engine/ops/pool.c's reference, which the tests compare
 * this against.
 */
#include "compute.h"

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
    IL_PAR_FOR(c, nc, planes) {
        const float *xp = x + nc * H * W;
        float *yp = y + nc * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            /* taps kh with 0 <= oh*SH + kh*DH - PH < H, and those inside the padded input */
            int64_t h0 = oh * SH - PH, kh_lo = 0, kh_hi = KH, kh_pad = KH;
            while (kh_lo < KH && h0 + kh_lo * DH < 0) kh_lo++;
            while (kh_hi > kh_lo && h0 + (kh_hi - 1) * DH >= H) kh_hi--;
            while (kh_pad > 0 && h0 + (kh_pad - 1) * DH >= H + PHE) kh_pad--;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * SW - PW, kw_lo = 0, kw_hi = KW, kw_pad = KW;
                while (kw_lo < KW && w0 + kw_lo * DW < 0) kw_lo++;
                while (kw_hi > kw_lo && w0 + (kw_hi - 1) * DW >= W) kw_hi--;
                while (kw_pad > 0 && w0 + (kw_pad - 1) * DW >= W + PWE) kw_pad--;
                float r;
                if (kind == 0) {
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
                        idx[nc * OH * OW + oh * OW + ow] =
                            at < 0 ? -1 : nc * H * W + (storage_order && two ? iw * H + ih : at);
                    }
                } else {
                    float sum = 0;
                    for (int64_t kh = kh_lo; kh < kh_hi; kh++) {
                        const float *xr = xp + (h0 + kh * DH) * W + w0;
                        for (int64_t kw = kw_lo; kw < kw_hi; kw++) sum += xr[kw * DW];
                    }
                    int64_t n = count_include_pad ? kh_pad * kw_pad : (kh_hi - kh_lo) * (kw_hi - kw_lo);
                    r = sum / (float)n;
                }
                yp[oh * OW + ow] = r;
            }
        }
    }
    return IL_OK;
}
