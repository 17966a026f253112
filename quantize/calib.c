/*
 * calib.c - the observer (a tensor's range and histogram) and the calibrators that choose a
 * quantization range from it: minmax, percentile, entropy (TensorRT's KL-divergence threshold
 * over a 2048-bin histogram of |x|) and mse. All but minmax choose a threshold T on |x| and
 * return [max(min, -T), min(max, T)], so a tensor that never goes negative (after Relu) keeps
 * its whole uint8 range on [0, T].
 */
#include "quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- histograms */

void il_calib_hist_add(il_calib_hist *h, const float *x, int64_t n, int first_pass) {
    if (first_pass) {
        for (int64_t i = 0; i < n; i++) {
            double v = x[i];
            if (!isfinite(v)) continue; /* a NaN or an infinity has no place on a finite range */
            if (h->n == 0 || v < h->min) h->min = v;
            if (h->n == 0 || v > h->max) h->max = v;
            h->n++;
        }
        return;
    }
    if (!h->nbins) {
        if (h->min >= 0) h->lo = 0, h->hi = h->max, h->nbins = IL_CALIB_BINS;
        else if (h->max <= 0) h->lo = h->min, h->hi = 0, h->nbins = IL_CALIB_BINS;
        else h->hi = fmax(-h->min, h->max), h->lo = -h->hi, h->nbins = 2 * IL_CALIB_BINS;
        h->count = calloc((size_t)h->nbins, sizeof *h->count);
        if (!h->count) h->nbins = 0;
    }
    if (!h->nbins) return;
    double w = h->hi - h->lo, k = w > 0 ? h->nbins / w : 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) continue;
        double b = ((double)x[i] - h->lo) * k;
        int j = b < 0 ? 0 : b >= h->nbins ? h->nbins - 1 : (int)b;
        h->count[j]++;
    }
}

void il_calib_hist_free(il_calib_hist *h, int n) {
    for (int i = 0; h && i < n; i++) free(h[i].name), free(h[i].count);
    free(h);
}

int il_calib_side_hist(const il_calib_hist *h, int side, double *out, double *width) {
    memset(out, 0, IL_CALIB_BINS * sizeof *out);
    if (!h->nbins || !h->count) return 0;
    *width = fmax(fabs(h->lo), fabs(h->hi)) / IL_CALIB_BINS;
    if (h->nbins == IL_CALIB_BINS) { /* one-sided: [0, max] as it is, [min, 0] mirrored */
        int neg = h->lo < 0;
        if ((side > 0 && neg) || (side < 0 && !neg)) return 0;
        for (int j = 0; j < IL_CALIB_BINS; j++) out[j] = neg ? h->count[IL_CALIB_BINS - 1 - j] : h->count[j];
    } else { /* [-a, a]: one half, or both folded around zero */
        for (int j = 0; j < IL_CALIB_BINS; j++)
            out[j] = (side >= 0 ? h->count[IL_CALIB_BINS + j] : 0) + (side <= 0 ? h->count[IL_CALIB_BINS - 1 - j] : 0);
    }
    double sum = 0;
    for (int j = 0; j < IL_CALIB_BINS; j++) sum += out[j];
    return sum > 0;
}

/* A calibrator that picks a threshold T on a one-sided histogram (bins of width w): the range
 * is [-T, T] for a symmetric quantization, each side's own threshold for an asymmetric one
 * (an image normalized to [-0.8, 2] has its mode at -0.8: folded onto |x|, it would clip the
 * bright side at 0.8), always within the observed [min, max]. */
typedef il_status (*threshold_fn)(const double *a, double w, const il_calib_opts *o, double *t);

static il_status by_threshold(const il_calib_hist *h, const il_calib_opts *o, threshold_fn f, double *lo, double *hi) {
    double a[IL_CALIB_BINS], w, tp = 0, tn = 0;
    il_status st = IL_OK;
    *lo = h->min, *hi = h->max;
    if (o && o->symmetric) {
        if (il_calib_side_hist(h, 0, a, &w) && !(st = f(a, w, o, &tp))) *lo = fmax(h->min, -tp), *hi = fmin(h->max, tp);
        return st;
    }
    if (il_calib_side_hist(h, 1, a, &w) && !(st = f(a, w, o, &tp))) *hi = fmin(h->max, tp);
    if (!st && il_calib_side_hist(h, -1, a, &w) && !(st = f(a, w, o, &tn))) *lo = fmax(h->min, -tn);
    return st;
}

/* ---------------------------------------------------------------- the calibrators */

static il_status minmax_range(const il_calib_hist *h, void *s, const il_calib_opts *o, double *lo, double *hi) {
    *lo = h->min;
    *hi = h->max;
    return IL_OK;
}

/* The smallest T with at least p% of the values at or below it, interpolated inside its bin. */
static il_status percentile_t(const double *a, double w, const il_calib_opts *o, double *t) {
    double total = 0, p = o && o->percentile > 0 ? o->percentile : 99.99;
    if (p > 100) return il_error(IL_ERR_INVALID, "percentile %g is above 100", p);
    for (int j = 0; j < IL_CALIB_BINS; j++) total += a[j];
    double want = total * p / 100, cum = 0;
    *t = IL_CALIB_BINS * w;
    for (int j = 0; j < IL_CALIB_BINS; j++) {
        if (a[j] > 0 && cum + a[j] >= want) {
            *t = (j + (want - cum) / a[j]) * w;
            break;
        }
        cum += a[j];
    }
    return IL_OK;
}

/* TensorRT's entropy calibration: for each candidate threshold i (in bins, from `levels` up),
 * P is the histogram cut at i with everything beyond added to its last bin, Q is P's first i
 * bins merged into `levels` quantization bins and spread back over the bins where P is nonzero
 * (as MXNet's and TensorRT's calibrators do); the threshold minimizes KL(P || Q). */
static il_status entropy_t(const double *hist, double w, const il_calib_opts *o, double *t) {
    int levels = o && o->levels > 1 ? o->levels : 128;
    double *a = malloc(IL_CALIB_BINS * sizeof *a), *p = malloc(IL_CALIB_BINS * sizeof *p),
           *q = malloc(IL_CALIB_BINS * sizeof *q);
    if (!a || !p || !q) {
        free(a), free(p), free(q);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    memcpy(a, hist, IL_CALIB_BINS * sizeof *a);
    /* The first bin holds every exact zero (half of a Relu's outputs): a spike no merged bin
     * can reproduce, which would drive the threshold to the smallest candidate. NVIDIA's
     * TensorRT calibration tools (pytorch-quantization) level it with its neighbour; so here. */
    a[0] = a[1];
    double beyond = 0;
    for (int j = 0; j < IL_CALIB_BINS; j++) beyond += a[j];
    int best = IL_CALIB_BINS;
    double best_kl = INFINITY;
    for (int j = 0; j < levels && j < IL_CALIB_BINS; j++) beyond -= a[j];
    for (int i = levels; i <= IL_CALIB_BINS; i++) {
        memcpy(p, a, (size_t)i * sizeof *p);
        p[i - 1] += beyond; /* the outliers clipped into the last bin */
        if (i < IL_CALIB_BINS) beyond -= a[i];
        for (int g = 0; g < levels; g++) {
            int b0 = (int)((int64_t)g * i / levels), b1 = (int)((int64_t)(g + 1) * i / levels);
            double mass = 0;
            int nz = 0;
            for (int j = b0; j < b1; j++) mass += a[j], nz += p[j] > 0;
            for (int j = b0; j < b1; j++) q[j] = p[j] > 0 ? mass / nz : 0;
        }
        double sp = 0, sq = 0, kl = 0;
        for (int j = 0; j < i; j++) sp += p[j], sq += q[j];
        if (sp <= 0 || sq <= 0) continue;
        for (int j = 0; j < i; j++) {
            if (p[j] <= 0) continue;
            /* a bin P has and Q lacks (a group whose mass is all outliers) costs as if Q had
             * a tiny mass there, as the smoothing of MXNet's calibrator does */
            double pj = p[j] / sp, qj = q[j] > 0 ? q[j] / sq : 1e-12;
            kl += pj * log(pj / qj);
        }
        if (kl < best_kl) best_kl = kl, best = i;
    }
    free(a), free(p), free(q);
    *t = best * w;
    return IL_OK;
}

/* The threshold T minimizing the expected squared error of quantizing to `levels` steps over
 * [0, T]: rounding error inside, clipping error beyond, each bin's values at its center. */
static il_status mse_t(const double *a, double w, const il_calib_opts *o, double *t) {
    int levels = o && o->levels > 1 ? o->levels : 128, best = IL_CALIB_BINS;
    double best_err = INFINITY;
    for (int i = 16; i <= IL_CALIB_BINS; i++) {
        double th = i * w, step = th / (levels - 1), err = 0;
        for (int j = 0; j < IL_CALIB_BINS; j++) {
            if (a[j] <= 0) continue;
            double c = (j + 0.5) * w, qv = c >= th ? th : nearbyint(c / step) * step;
            err += a[j] * (c - qv) * (c - qv);
        }
        if (err < best_err) best_err = err, best = i;
    }
    *t = best * w;
    return IL_OK;
}

static il_status percentile_range(const il_calib_hist *h, void *s, const il_calib_opts *o, double *lo, double *hi) {
    return by_threshold(h, o, percentile_t, lo, hi);
}
static il_status entropy_range(const il_calib_hist *h, void *s, const il_calib_opts *o, double *lo, double *hi) {
    return by_threshold(h, o, entropy_t, lo, hi);
}
static il_status mse_range(const il_calib_hist *h, void *s, const il_calib_opts *o, double *lo, double *hi) {
    return by_threshold(h, o, mse_t, lo, hi);
}

static const il_calibrator builtin[] = {
    {"minmax", "the observed minimum and maximum", 0, minmax_range, NULL, NULL, NULL},
    {"percentile", "clip at a percentile of the histogram (--percentile, 99.99), each side apart for uint8", 1, percentile_range, NULL, NULL, NULL},
    {"entropy", "KL-divergence threshold over a 2048-bin histogram (TensorRT)", 1, entropy_range, NULL, NULL, NULL},
    {"mse", "the threshold with the least expected squared quantization error", 1, mse_range, NULL, NULL, NULL},
};

static const il_calibrator **reg;
static int n_reg, cap_reg;

static void reg_init(void) {
    if (reg) return;
    cap_reg = 16;
    reg = malloc((size_t)cap_reg * sizeof *reg);
    if (!reg) abort(); /* a few pointers at start-up */
    for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++) reg[n_reg++] = &builtin[i];
}

il_status il_calib_register(const il_calibrator *c) {
    reg_init();
    if (!c || !c->name || !c->name[0] || !c->range) return il_error(IL_ERR_INVALID, "a calibrator needs a name and a range function");
    if (il_calib_find(c->name)) return il_error(IL_ERR_INVALID, "a calibrator named '%s' is already registered", c->name);
    if (n_reg == cap_reg) {
        const il_calibrator **r = realloc(reg, (size_t)(cap_reg * 2) * sizeof *r);
        if (!r) return il_error(IL_ERR_OOM, "out of memory");
        reg = r, cap_reg *= 2;
    }
    reg[n_reg++] = c;
    return IL_OK;
}

const il_calibrator *il_calib_find(const char *name) {
    reg_init();
    for (int i = 0; name && i < n_reg; i++)
        if (!strcmp(reg[i]->name, name)) return reg[i];
    return NULL;
}

const il_calibrator *const *il_calib_all(int *n) {
    reg_init();
    *n = n_reg;
    return reg;
}
