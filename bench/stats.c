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
    r->valid = 1;
    r->p50_lo = r->p50_hi = r->max_spread = NAN;
    r->warmup_queries = -1;
    r->load.load1 = r->load.steal_pct = r->load.busy_pct = NAN;
    r->load.others_running = r->load.cores = -1;
}

/* MLPerf LoadGen marks a result INVALID when the run was too short to mean anything; we add
 * the test that repeated trials agree, since a figure that moves between trials of one run
 * says more about the machine than about the variant. */
void il_run_validate(il_run_record *r, const il_scenario *sc, double max_spread) {
    double p50[256];
    int n = r->n_trials < 256 ? r->n_trials : 256;
    size_t len = 0;
    r->valid = 1;
    r->invalid_reason[0] = 0;
    r->max_spread = max_spread > 0 ? max_spread : 0.10;
    for (int t = 0; t < n; t++) {
        const il_trial *tr = &r->trials[t];
        p50[t] = tr->lat.p50;
        const char *why = tr->n < sc->min_queries           ? "queries"
                          : tr->seconds < sc->min_seconds * 0.999 ? "duration"
                                                                  : NULL;
        if (!why || len) continue;
        r->valid = 0;
        len += (size_t)snprintf(r->invalid_reason, sizeof r->invalid_reason,
                                "trial %d: %lld queries in %.3g s, below the minimum %lld queries and %.3g s", t + 1,
                                (long long)tr->n, tr->seconds, (long long)sc->min_queries, sc->min_seconds);
    }
    if (n == 0) {
        r->valid = 0;
        snprintf(r->invalid_reason, sizeof r->invalid_reason, "no trial was measured");
        return;
    }
    qsort(p50, (size_t)n, sizeof *p50, cmp_double);
    r->p50_lo = p50[0];
    r->p50_hi = p50[n - 1];
    double mid = il_percentile(p50, n, 50), spread = mid > 0 ? (r->p50_hi - r->p50_lo) / mid : 0;
    if (n >= 2 && spread > r->max_spread) {
        r->valid = 0;
        if (len < sizeof r->invalid_reason)
            snprintf(r->invalid_reason + len, sizeof r->invalid_reason - len,
                     "%strial p50s %.4g..%.4g ms differ by %.0f%% of their median, beyond the bound %.0f%%",
                     len ? "; " : "", r->p50_lo, r->p50_hi, 100 * spread, 100 * r->max_spread);
    }
}

void il_record_free(il_run_record *r) {
    for (int i = 0; i < r->n_trials; i++) il_trial_free(&r->trials[i]);
    free(r->trials);
    free(r->nodes);
    r->trials = NULL;
    r->nodes = NULL;
    r->n_trials = r->n_nodes = 0;
}
