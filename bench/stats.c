/*
 * stats.c - latency statistics: percentiles, summaries, spread over trials.
 *
 * Percentiles interpolate linearly between the closest ranks (NumPy's default), so a
 * distribution redrawn from the raw latencies in the database with NumPy gives the same figures.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double il_percentile(const double *sorted, int64_t n, double q) {
    if (n <= 0) return NAN;
    if (q <= 0) return sorted[0];
    if (q >= 100) return sorted[n - 1];
    double rank = q / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(rank);
    double frac = rank - (double)lo;
    if (lo + 1 >= n) return sorted[n - 1];
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

void il_lat_summarize(const double *x, int64_t n, il_lat_summary *s) {
    memset(s, 0, sizeof *s);
    s->n = n;
    if (n <= 0) {
        s->mean = s->stddev = s->min = s->p50 = s->p90 = s->p95 = s->p99 = s->max = NAN;
        return;
    }
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) {
        s->n = 0;
        s->mean = s->stddev = s->min = s->p50 = s->p90 = s->p95 = s->p99 = s->max = NAN;
        return;
    }
    memcpy(c, x, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    /* Two passes for the variance: latencies are close to each other, and the one-pass
     * formula loses precision exactly then. */
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += c[i];
    s->mean = sum / (double)n;
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (c[i] - s->mean) * (c[i] - s->mean);
    s->stddev = n > 1 ? sqrt(ss / (double)(n - 1)) : 0;
    s->min = c[0];
    s->max = c[n - 1];
    s->p50 = il_percentile(c, n, 50);
    s->p90 = il_percentile(c, n, 90);
    s->p95 = il_percentile(c, n, 95);
    s->p99 = il_percentile(c, n, 99);
    free(c);
}

void il_spread_of(const double *x, int n, il_spread *s) {
    memset(s, 0, sizeof *s);
    s->n = n;
    if (n <= 0) {
        s->mean = s->stddev = s->min = s->max = NAN;
        return;
    }
    double sum = 0;
    s->min = s->max = x[0];
    for (int i = 0; i < n; i++) {
        sum += x[i];
        if (x[i] < s->min) s->min = x[i];
        if (x[i] > s->max) s->max = x[i];
    }
    s->mean = sum / n;
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (x[i] - s->mean) * (x[i] - s->mean);
    s->stddev = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

void il_record_init(il_run_record *r) {
    memset(r, 0, sizeof *r);
    r->model_bytes = r->params = r->flops = -1;
    r->peak_host_bytes = r->peak_device_bytes = r->peak_activation_bytes = -1;
    r->accuracy_samples = -1;
    r->sparsity = r->throughput = r->throughput_stddev = NAN;
    r->target_qps = r->latency_bound_ms = r->max_qps = NAN;
    r->top1 = r->top5 = r->agree_top1 = r->max_abs_err = r->cosine = NAN;
    r->bound_met = -1;
    il_lat_summarize(NULL, 0, &r->lat);
}

void il_record_free(il_run_record *r) {
    for (int i = 0; i < r->n_trials; i++) il_trial_free(&r->trials[i]);
    free(r->trials);
    free(r->nodes);
    r->trials = NULL;
    r->nodes = NULL;
    r->n_trials = r->n_nodes = 0;
}
