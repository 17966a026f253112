/*
 * dnnl_sconv.c - ScaledConv's channel scale (X * S, one float per image and input channel) for
 * the oneDNN convolution kernels (dnnl_conv.c): the primitive runs on plain X and W, so before
 * each image's call its scale goes into a copy of the weight (packed again) or of the image.
 * Apart from dnnl_conv.c because where the scale lands (weight or image, the loops cloned per
 * ISA, the split over threads) is a choice of its own, independent of how the convolution meets
 * oneDNN's layouts.
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

#include <omp.h>

/* ScaledConv: how each image's scale is applied. Into the weight where the weight is at most an
 * eighth of an image (a 1x1 projection of a large plane: the scaled weight is packed again per
 * image, and the product never exists), else into a copy of the image in the workspace, in cache
 * while the primitive reads it (channels-last or plain images only; any other layout scales the
 * weight). EfficientNet-B0 batch 8, one thread, per block (Mul + projection before, ScaledConv
 * after, min of 21 runs, load 7): 32@112x112 -> 16 3.07 -> 1.42 ms, 144@56x56 -> 24 2.86 -> 1.84
 * ms by the weight; 240@14x14 -> 80 (weight 0.41 of an image) 0.94 -> 1.15 ms by the weight, so
 * such layers scale the image. */
il_status il_dnnl_sconv_plan(il_kctx *c, il_dnnl_state *s, const il_conv_geom *g, const dnnl_memory_desc_t *xuser) {
    if (!s->sc.on) return IL_OK;
    const il_tensor *W = c->in[1];
    dnnl_memory_desc_t last;
    dnnl_dims_t d;
    for (int i = 0; i < c->in[0]->rank; i++) d[i] = i ? c->in[0]->dims[i] : 1;
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(&last, c->in[0]->rank, d, dnnl_f32, c->in[0]->rank == 4 ? dnnl_acdb :
                                            c->in[0]->rank == 5 ? dnnl_acdeb : dnnl_acb));
    s->sc.m = g->m;
    s->sc.mg = g->m / g->group;
    s->sc.cg = g->c / g->group;
    s->sc.k = g->k_sp;
    s->sc.c = g->c;
    s->sc.sp = g->in_sp;
    s->sc.last = !!(c->blocked_in & 1);
    int image_ok = !s->sc.last || dnnl_memory_desc_equal(xuser, &last);
    s->sc.by_w = !image_ok || 8 * il_tensor_numel(W) <= g->c * g->in_sp;
    return IL_OK;
}

/* Cloned for AVX-512 and AVX2 (the build's baseline is SSE4.2), as oneDNN's own binary kernel is. */
#define SCONV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

/* Output channels [o0, o1) of the scaled weight. */
SCONV_CLONES static void sconv_weight(const il_dnnl_state *s, const float *w, const float *sv, float *out, int64_t o0,
                                      int64_t o1) {
    for (int64_t o = o0; o < o1; o++) {
        const float *sg = sv + o / s->sc.mg * s->sc.cg;
        for (int64_t i = 0; i < s->sc.cg; i++) {
            const float f = sg[i], *wi = w + (o * s->sc.cg + i) * s->sc.k;
            float *oi = out + (o * s->sc.cg + i) * s->sc.k;
            for (int64_t j = 0; j < s->sc.k; j++) oi[j] = wi[j] * f;
        }
    }
}

/* Part [i0, i1) of the scaled image: pixels where it is channels-last, channels where plain. */
SCONV_CLONES static void sconv_image(const il_dnnl_state *s, const float *x, const float *sv, float *out, int64_t i0,
                                     int64_t i1) {
    int64_t C = s->sc.c, sp = s->sc.sp;
    if (s->sc.last)
        for (int64_t p = i0; p < i1; p++)
            for (int64_t ch = 0; ch < C; ch++) out[p * C + ch] = x[p * C + ch] * sv[ch];
    else
        for (int64_t ch = i0; ch < i1; ch++)
            for (int64_t p = 0; p < sp; p++) out[ch * sp + p] = x[ch * sp + p] * sv[ch];
}

/* The scale of one image into the weight (by_w) or into the image, on the node's threads: a
 * batch of 1 on two threads otherwise leaves the second idle for a pass over the weight or the
 * image before each convolution. EfficientNet-B0 batch 1, 2 threads spinning, its 16 ScaledConv
 * node minimums summed (60 runs, load about 1.8, alternated): 1.560 / 1.565 ms -> 1.447 / 1.450.
 * An image run by a worker is scaled by that worker (one thread). */
void il_dnnl_sconv_apply(const il_dnnl_state *s, const float *w, const float *x, const float *sv, float *out) {
    int64_t n = s->sc.by_w ? s->sc.m : s->sc.last ? s->sc.sp : s->sc.c;
    int threads = s->threads > 1 && n >= s->threads ? s->threads : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t i0 = n * t / nt, i1 = n * (t + 1) / nt;
        if (s->sc.by_w) sconv_weight(s, w, sv, out, i0, i1);
        else sconv_image(s, x, sv, out, i0, i1);
    }
}

#endif
