/*
 * calib_sigma.c - an example calibrator plugin (quantize/quantize.h): the range mean +- 4
 * standard deviations of each tensor, within what was observed. It keeps its own per-tensor
 * state (running sums) through the observe hook, as a calibrator that needs more than the shared
 * histogram would.
 *
 * Build: cc -std=c11 -O2 -fPIC -shared -I. passes/examples/calib_sigma.c -o calib_sigma.so
 * Use:   inferlab quantize model.onnx -o int8.onnx --plugin ./calib_sigma.so --method sigma
 */
#include "passes/passes.h"
#include "quantize/quantize.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    double n, sum, sq;
} sums;

static void *begin(const char *tensor) { return calloc(1, sizeof(sums)); }

static void observe(void *state, const float *x, int64_t n) {
    sums *s = state;
    for (int64_t i = 0; s && i < n; i++) s->n++, s->sum += x[i], s->sq += (double)x[i] * x[i];
}

static il_status range(const il_calib_hist *h, void *state, const il_calib_opts *o, double *lo, double *hi) {
    const sums *s = state;
    if (!s || s->n < 1) return il_error(IL_ERR_INVALID, "sigma: tensor '%s' was not observed", h->name);
    double mean = s->sum / s->n, sd = sqrt(fmax(s->sq / s->n - mean * mean, 0));
    *lo = fmax(h->min, mean - 4 * sd);
    *hi = fmin(h->max, mean + 4 * sd);
    return IL_OK;
}

static const il_calibrator sigma = {
    .name = "sigma", .summary = "mean +- 4 standard deviations (example plugin)", .needs_hist = 0,
    .range = range, .begin = begin, .observe = observe, .end = free,
};

il_status il_plugin_init(int abi) {
    IL_PLUGIN_CHECK_ABI(abi);
    return il_calib_register(&sigma);
}
