/*
 * preproc.c - input preprocessing shared by training, evaluation and benchmarks: geometry
 * (bilinear resize, center crop), per-channel normalization, training augmentation (random
 * crop with zero padding, horizontal flip), and its record in the model's metadata.
 *
 * Order, the same everywhere: raw * scale -> resize -> center crop -> [augment] -> normalize.
 * Augmentation pads with 0 before normalizing, i.e. black pixels, as torchvision does.
 */
#include "distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define META "inferlab.preprocess."

void il_preproc_init(il_preproc *p, int channels) {
    memset(p, 0, sizeof *p);
    p->c = channels;
    p->scale = 1.0 / 255.0;
    for (int i = 0; i < IL_DATA_MAXC; i++) p->mean[i] = 0, p->std[i] = 1;
}

void il_preproc_fit(il_preproc *p, const il_dataset *d) {
    int64_t hw = (int64_t)d->h * d->w;
    p->c = d->c;
    p->scale = d->scale;
    for (int c = 0; c < d->c && c < IL_DATA_MAXC; c++) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < d->n; i++) {
            const float *x = d->x + (i * d->c + c) * hw;
            for (int64_t j = 0; j < hw; j++) s += x[j], s2 += (double)x[j] * x[j];
        }
        double m = s / ((double)d->n * hw), v = s2 / ((double)d->n * hw) - m * m;
        p->mean[c] = (float)m;
        p->std[c] = (float)(v > 1e-12 ? sqrt(v) : 1.0);
    }
}

/* Bilinear with half-pixel centers (ONNX Resize's default coordinate mode). */
static void resize_plane(const float *src, int h, int w, float *dst, int oh, int ow) {
    for (int i = 0; i < oh; i++) {
        double sy = (i + 0.5) * h / oh - 0.5;
        if (sy < 0) sy = 0;
        int y0 = (int)sy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
        double fy = sy - y0;
        for (int j = 0; j < ow; j++) {
            double sx = (j + 0.5) * w / ow - 0.5;
            if (sx < 0) sx = 0;
            int x0 = (int)sx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            double fx = sx - x0;
            double a = src[y0 * w + x0] * (1 - fx) + src[y0 * w + x1] * fx;
            double b = src[y1 * w + x0] * (1 - fx) + src[y1 * w + x1] * fx;
            dst[i * ow + j] = (float)(a * (1 - fy) + b * fy);
        }
    }
}

il_status il_preproc_geometry(const il_preproc *p, il_dataset *d) {
    int rh = p->resize_h ? p->resize_h : d->h, rw = p->resize_w ? p->resize_w : d->w;
    int ch = p->crop_h ? p->crop_h : rh, cw = p->crop_w ? p->crop_w : rw;
    if (ch > rh || cw > rw)
        return il_error(IL_ERR_INVALID, "center crop %dx%d is larger than the image %dx%d", ch, cw, rh, rw);
    if (rh == d->h && rw == d->w && ch == rh && cw == rw) return IL_OK;
    int64_t nsz = (int64_t)d->c * ch * cw;
    float *nx = malloc((size_t)(d->n * nsz + 1) * sizeof(float)), *tmp = malloc((size_t)rh * rw * sizeof(float));
    if (!nx || !tmp) {
        free(nx), free(tmp);
        return il_error(IL_ERR_OOM, "out of memory resizing %lld samples", (long long)d->n);
    }
    int oy = (rh - ch) / 2, ox = (rw - cw) / 2;
    for (int64_t i = 0; i < d->n; i++)
        for (int c = 0; c < d->c; c++) {
            const float *src = d->x + (i * d->c + c) * d->h * d->w;
            if (rh != d->h || rw != d->w) resize_plane(src, d->h, d->w, tmp, rh, rw);
            else memcpy(tmp, src, (size_t)rh * rw * sizeof(float));
            float *dst = nx + i * nsz + (int64_t)c * ch * cw;
            for (int y = 0; y < ch; y++) memcpy(dst + y * cw, tmp + (y + oy) * rw + ox, (size_t)cw * sizeof(float));
        }
    free(tmp);
    free(d->x);
    d->x = nx, d->h = ch, d->w = cw;
    return IL_OK;
}

void il_preproc_batch(const il_preproc *p, const il_dataset *d, const int64_t *idx, int n, int train, uint64_t *rng,
                      float *out) {
    int C = d->c, H = d->h, W = d->w;
    int64_t sz = (int64_t)C * H * W;
    for (int b = 0; b < n; b++) {
        const float *src = d->x + idx[b] * sz;
        float *dst = out + b * sz;
        int dy = 0, dx = 0, flip = 0;
        if (train && p->pad > 0) {
            /* the crop window's offset in the padded image, minus the padding */
            dy = (int)(il_rand_u64(rng) % (uint64_t)(2 * p->pad + 1)) - p->pad;
            dx = (int)(il_rand_u64(rng) % (uint64_t)(2 * p->pad + 1)) - p->pad;
        }
        if (train && p->hflip) flip = il_rand_u64(rng) & 1;
        for (int c = 0; c < C; c++) {
            float m = c < IL_DATA_MAXC ? p->mean[c] : 0, is = 1.0f / (c < IL_DATA_MAXC ? p->std[c] : 1);
            const float *sp = src + (int64_t)c * H * W;
            float *dp = dst + (int64_t)c * H * W;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
                    float v = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? sp[sy * W + sx] : 0.0f;
                    dp[y * W + x] = (v - m) * is;
                }
        }
    }
}

static void put_list(il_graph *g, const char *key, const float *v, int n) {
    char buf[256];
    int k = 0;
    for (int i = 0; i < n; i++) k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%.9g", i ? "," : "", v[i]);
    il_graph_set_meta(g, key, buf);
}

void il_preproc_to_meta(const il_preproc *p, const il_dataset *d, il_graph *g) {
    char buf[64];
    int c = p->c < IL_DATA_MAXC ? p->c : IL_DATA_MAXC;
    snprintf(buf, sizeof buf, "%.17g", p->scale);
    il_graph_set_meta(g, META "scale", buf);
    if (p->resize_h) {
        snprintf(buf, sizeof buf, "%dx%d", p->resize_h, p->resize_w);
        il_graph_set_meta(g, META "resize", buf);
    }
    if (p->crop_h) {
        snprintf(buf, sizeof buf, "%dx%d", p->crop_h, p->crop_w);
        il_graph_set_meta(g, META "crop", buf);
    }
    put_list(g, META "mean", p->mean, c);
    put_list(g, META "std", p->std, c);
    il_graph_set_meta(g, META "layout", "NCHW");
    if (d) {
        il_graph_set_meta(g, "inferlab.dataset", d->name);
        if (d->labels[0]) il_graph_set_meta(g, "inferlab.labels", d->labels);
    }
    if (p->pad) snprintf(buf, sizeof buf, "random-crop-pad%d%s", p->pad, p->hflip ? ",hflip" : "");
    else snprintf(buf, sizeof buf, "%s", p->hflip ? "hflip" : "none");
    il_graph_set_meta(g, "inferlab.train.augment", buf);
}

static il_status get_list(const il_graph *g, const char *key, float *v, int max, int *n) {
    const char *s = il_graph_get_meta(g, key);
    *n = 0;
    if (!s) return IL_OK;
    while (*s && *n < max) {
        char *end;
        double x = strtod(s, &end);
        if (end == s) return il_error(IL_ERR_PARSE, "metadata %s = '%s' is not a list of numbers", key, s);
        v[(*n)++] = (float)x;
        s = *end == ',' ? end + 1 : end;
    }
    return IL_OK;
}

static il_status get_hw(const il_graph *g, const char *key, int *h, int *w) {
    const char *s = il_graph_get_meta(g, key);
    if (!s) return IL_OK;
    if (sscanf(s, "%dx%d", h, w) != 2 || *h <= 0 || *w <= 0)
        return il_error(IL_ERR_PARSE, "metadata %s = '%s' is not HxW", key, s);
    return IL_OK;
}

il_status il_preproc_from_meta(const il_graph *g, il_preproc *p) {
    int c = 1;
    if (g->n_inputs > 0) {
        const il_value *x = &g->values[g->inputs[0]];
        if (x->rank == 4 && x->dims[1] > 0) c = (int)x->dims[1];
    }
    il_preproc_init(p, c);
    const char *s = il_graph_get_meta(g, META "scale");
    if (s) {
        char *end;
        p->scale = strtod(s, &end);
        if (end == s || p->scale <= 0) return il_error(IL_ERR_PARSE, "metadata " META "scale = '%s'", s);
    }
    int nm, ns;
    il_status st;
    if ((st = get_list(g, META "mean", p->mean, IL_DATA_MAXC, &nm)) ||
        (st = get_list(g, META "std", p->std, IL_DATA_MAXC, &ns)))
        return st;
    for (int i = 0; i < ns; i++)
        if (!(p->std[i] > 0)) return il_error(IL_ERR_PARSE, "metadata " META "std has a non-positive value");
    if ((st = get_hw(g, META "resize", &p->resize_h, &p->resize_w)) ||
        (st = get_hw(g, META "crop", &p->crop_h, &p->crop_w)))
        return st;
    return IL_OK;
}
