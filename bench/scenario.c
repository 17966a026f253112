/*
 * scenario.c - query schedulers after MLPerf LoadGen: single-stream, offline, server (Poisson
 * arrivals, latency measured from the scheduled arrival so queueing counts), multi-stream, and
 * the search for the highest server QPS whose p99 latency meets a bound.
 *
 * The schedulers only issue queries and read a clock; what a query does is the caller's
 * il_query_fn. Tests drive them with a virtual clock and a fake model of known latency.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const names[IL_SC_COUNT] = {"single-stream", "offline", "server", "multi-stream"};

const char *il_scenario_name(il_scenario_kind k) { return (unsigned)k < IL_SC_COUNT ? names[k] : "?"; }

il_status il_scenario_parse(const char *s, il_scenario_kind *k) {
    for (int i = 0; i < IL_SC_COUNT; i++)
        if (s && !strcmp(s, names[i])) {
            *k = (il_scenario_kind)i;
            return IL_OK;
        }
    return il_error(IL_ERR_INVALID, "unknown scenario '%s' (single-stream, offline, server, multi-stream)",
                    s ? s : "");
}

void il_scenario_defaults(il_scenario *sc, il_scenario_kind k) {
    memset(sc, 0, sizeof *sc);
    sc->kind = k;
    sc->batch = 1;
    sc->samples_per_query = 8;
    sc->warmup = 5;
    sc->min_seconds = 1.0;
    sc->min_queries = 64;
    sc->target_qps = 50;
    sc->latency_bound_ms = 10;
    sc->seed = 1;
}

/* ---- the real clock */

static double real_now(void *ctx) {
    (void)ctx;
    return il_now();
}

/* Sleep most of the way, then spin: nanosleep alone overshoots by tens of microseconds, which
 * would show up as queueing delay in the server scenario. */
static void real_sleep_until(void *ctx, double t) {
    (void)ctx;
    double left = t - il_now();
    if (left > 300e-6) {
        double s = left - 200e-6;
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        while (nanosleep(&ts, &ts) && errno == EINTR) {}
    }
    while (il_now() < t) {}
}

static const il_clock real_clock = {real_now, real_sleep_until, NULL};

#define WARM_K 8        /* latencies per window of the steady-state test */
#define WARM_TOL 0.05   /* two windows' medians this close: steady */

void il_trial_free(il_trial *t) {
    free(t->lat_ms);
    memset(t, 0, sizeof *t);
}

static int samples_per_query(const il_scenario *sc) {
    if (sc->kind == IL_SC_MULTI_STREAM) return sc->samples_per_query > 0 ? sc->samples_per_query : 8;
    return sc->batch > 0 ? sc->batch : 1;
}

/* Append one latency, growing the array. */
static il_status push(il_trial *t, int64_t *cap, double ms) {
    if (t->n == *cap) {
        int64_t nc = *cap ? *cap * 2 : 1024;
        double *p = realloc(t->lat_ms, (size_t)nc * sizeof *p);
        if (!p) return il_error(IL_ERR_OOM, "scenario: out of memory for %lld latencies", (long long)nc);
        t->lat_ms = p;
        *cap = nc;
    }
    t->lat_ms[t->n++] = ms;
    return IL_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(const double *x, int n) {
    double c[WARM_K];
    memcpy(c, x, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    return n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
}

/* Warm-up until steady state: caches, page faults of the first runs, lazily created thread
 * pools and the CPU's clock all settle at different speeds, so a fixed count is either wasted
 * or too short. After the minimum (sc->warmup queries and 0.1 s) it goes on until the median of
 * the last WARM_K latencies is within WARM_TOL of the median of the WARM_K before them, bounded
 * by warmup_max_seconds (default 2 s): a machine that never settles is recorded as such
 * (out->steady = 0), not waited for forever. warmup 0 turns the warm-up off. */
static il_status warm_up(const il_scenario *sc, const il_clock *ck, il_query_fn fn, void *ctx, int spq, il_trial *out) {
    double ring[2 * WARM_K];
    double w0 = ck->now(ck->ctx), limit = sc->warmup_max_seconds > 0 ? sc->warmup_max_seconds : 2.0;
    int64_t i = 0;
    out->warmup_n = 0;
    out->steady = 0;
    if (sc->warmup <= 0) return IL_OK;
    for (;; i++) {
        double t0 = ck->now(ck->ctx);
        il_status st = fn(ctx, spq);
        if (st) return st;
        double t1 = ck->now(ck->ctx);
        ring[i % (2 * WARM_K)] = t1 - t0;
        out->warmup_n = i + 1;
        if (i + 1 < sc->warmup || t1 - w0 < 0.1 || i + 1 < 2 * WARM_K) continue;
        double older[WARM_K], newer[WARM_K];
        for (int j = 0; j < WARM_K; j++) {
            older[j] = ring[(i + 1 + j) % (2 * WARM_K)];
            newer[j] = ring[(i + 1 + WARM_K + j) % (2 * WARM_K)];
        }
        double a = median_of(older, WARM_K), b = median_of(newer, WARM_K);
        if (fabs(a - b) <= WARM_TOL * b) {
            out->steady = 1;
            return IL_OK;
        }
        if (t1 - w0 >= limit) return IL_OK;
    }
}

il_status il_scenario_run(const il_scenario *sc, il_query_fn fn, void *ctx, il_trial *out) {
    const il_clock *ck = sc->clock ? sc->clock : &real_clock;
    int spq = samples_per_query(sc);
    il_status st = IL_OK;
    memset(out, 0, sizeof *out);
    if (sc->kind == IL_SC_SERVER && !(sc->target_qps > 0))
        return il_error(IL_ERR_INVALID, "server scenario: target QPS must be > 0");

    if ((st = warm_up(sc, ck, fn, ctx, spq, out))) return st;

    int64_t cap = 0;
    double start = ck->now(ck->ctx), end = start;
    if (sc->kind != IL_SC_SERVER) {
        for (;;) {
            double t0 = ck->now(ck->ctx);
            if ((st = fn(ctx, spq))) break;
            double t1 = ck->now(ck->ctx);
            if ((st = push(out, &cap, (t1 - t0) * 1e3))) break;
            end = t1;
            if (sc->max_queries > 0 && out->n >= sc->max_queries) break;
            if (out->n >= sc->min_queries && end - start >= sc->min_seconds) break;
        }
    } else {
        /* One worker serves a FIFO queue fed by a Poisson process: arrivals are scheduled up
         * front (independent of how fast the system is), a query starts at its arrival or when
         * the worker frees up, and its latency runs from the arrival. When the system cannot
         * keep up the backlog grows; we stop issuing after 3x the minimum duration so an
         * overloaded probe ends (its p99 then fails the bound, as it should). */
        uint64_t rng = sc->seed ? sc->seed * 0x9E3779B97F4A7C15ULL + 7 : 0x1234567ULL;
        double arrival = start;
        double give_up = start + 3 * (sc->min_seconds > 0.2 ? sc->min_seconds : 0.2);
        for (;;) {
            double u = il_rand_uniform(&rng);
            arrival += -log(1.0 - u) / sc->target_qps;
            double now = ck->now(ck->ctx);
            if (now < arrival) ck->sleep_until(ck->ctx, arrival);
            if ((st = fn(ctx, spq))) break;
            double t1 = ck->now(ck->ctx);
            if ((st = push(out, &cap, (t1 - arrival) * 1e3))) break;
            end = t1;
            if (sc->max_queries > 0 && out->n >= sc->max_queries) break;
            if (out->n >= sc->min_queries && arrival - start >= sc->min_seconds) break;
            if (t1 > give_up) break;
        }
    }
    if (st) {
        il_trial_free(out);
        return st;
    }
    out->seconds = end - start;
    out->samples = out->n * spq;
    out->throughput = out->seconds > 0 ? (double)out->samples / out->seconds : NAN;
    out->qps = out->seconds > 0 ? (double)out->n / out->seconds : NAN;
    il_lat_summarize(out->lat_ms, out->n, &out->lat);
    out->bound_met = !(sc->latency_bound_ms > 0) || out->lat.p99 <= sc->latency_bound_ms;
    return IL_OK;
}

il_status il_measure_query(void *binding, const il_scenario *sc, il_trial *out) {
    il_query_binding *b = binding;
    return il_scenario_run(sc, b->fn, b->ctx, out);
}

/* One probe of the search. A failed bound is measured once more before it counts: on a shared
 * machine one latency spike (another process taking a core for a time slice) fails a short
 * probe's p99 and would send the bisection down for good -- seen in the demo as a max QPS of
 * 95 where neighbouring runs found 567 and 1,015. A system that really misses the bound misses
 * it twice; the trials that follow the search measure the found QPS afresh either way. */
static il_status probe(il_measure_fn measure, void *ctx, const il_scenario *s, il_trial *t) {
    il_status st = measure(ctx, s, t);
    if (st || t->bound_met) return st;
    il_trial again;
    if ((st = measure(ctx, s, &again))) {
        il_trial_free(t);
        return st;
    }
    il_trial_free(t);
    *t = again;
    return IL_OK;
}

il_status il_find_max_qps(const il_scenario *sc, il_measure_fn measure, void *ctx, double lo, double hi,
                          int steps, double *best, il_trial *at) {
    il_scenario s = *sc;
    il_trial t, kept;
    il_status st;
    memset(&kept, 0, sizeof kept);
    *best = 0;
    if (!(lo > 0) || !(hi >= lo)) return il_error(IL_ERR_INVALID, "find-max-qps: need 0 < lo <= hi");
    s.kind = IL_SC_SERVER;
    /* The low end must pass, else nothing does; the high end may pass outright. */
    s.target_qps = lo;
    if ((st = probe(measure, ctx, &s, &t))) return st;
    if (!t.bound_met) {
        if (at) *at = t;
        else il_trial_free(&t);
        return IL_OK;
    }
    *best = lo;
    kept = t;
    s.target_qps = hi;
    if ((st = probe(measure, ctx, &s, &t))) goto fail;
    if (t.bound_met) {
        *best = hi;
        il_trial_free(&kept);
        kept = t;
        steps = 0;
    } else {
        il_trial_free(&t);
    }
    for (int i = 0; i < steps; i++) {
        double mid = sqrt(lo * hi); /* geometric: the range often spans decades */
        s.target_qps = mid;
        if ((st = probe(measure, ctx, &s, &t))) goto fail;
        if (t.bound_met) {
            lo = mid;
            *best = mid;
            il_trial_free(&kept);
            kept = t;
        } else {
            hi = mid;
            il_trial_free(&t);
        }
    }
    if (at) *at = kept;
    else il_trial_free(&kept);
    return IL_OK;
fail:
    il_trial_free(&kept);
    return st;
}
